//! Reading certificate fields (names, dates) with x509-parser.
//!
//! Path validation and signature checks are webpki's (through rustls); this
//! module only reads what a message or the report shows, and the few fields
//! the self-signed and common-name paths of the verifier compare.

use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

/// Parses a DER certificate; `None` if x509-parser cannot read it.
pub(crate) fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert)
}

/// A distinguished name as `CN=Test CA, O=Example`.
pub(crate) fn dn(name: &X509Name<'_>) -> String {
    let text = name.to_string();
    if text.is_empty() {
        "(empty name)".to_owned()
    } else {
        text
    }
}

/// The subject of a DER certificate, `?` if it does not parse.
pub(crate) fn subject(der: &[u8]) -> String {
    parse(der).map_or_else(|| "?".to_owned(), |c| dn(c.subject()))
}

/// The issuer of a DER certificate, `?` if it does not parse.
pub(crate) fn issuer(der: &[u8]) -> String {
    parse(der).map_or_else(|| "?".to_owned(), |c| dn(c.issuer()))
}

/// Whether the certificate names itself as its issuer. This is the shape of a
/// self-signed certificate; the signature itself is not checked here.
pub(crate) fn is_self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

/// Seconds since the Unix epoch as `2020-02-01 00:00:00 UTC`.
pub(crate) fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`, http://howardhinnant.github.io/date_algorithms.html).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_prints_calendar_dates_across_leap_years_and_the_epoch() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_580_515_200), "2020-02-01 00:00:00 UTC");
        assert_eq!(utc(1_582_934_399), "2020-02-28 23:59:59 UTC");
        assert_eq!(utc(1_582_934_400), "2020-02-29 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_102_444_800), "2100-01-01 00:00:00 UTC");
        assert_eq!(utc(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(utc(2_208_988_800 + 3661), "2040-01-01 01:01:01 UTC");
    }

    #[test]
    fn unparsable_certificates_read_as_question_marks() {
        assert!(parse(b"junk").is_none());
        assert_eq!(subject(b"junk"), "?");
        assert_eq!(issuer(b""), "?");
    }
}
