//! Host name checks for the two paths webpki does not cover: a certificate
//! trusted as itself because it is in the user's CA file (webpki refuses such
//! certificates as end entities when they carry CA:TRUE), and the legacy
//! common-name fallback for a certificate with no subjectAltName at all.
//!
//! Matching follows RFC 6125, section 6.4: DNS names compare without regard
//! to ASCII case; a wildcard is accepted only as the whole leftmost label
//! (`*.example.org`, never `w*.example.org`, `www.*.org` or `*.org`) and
//! matches exactly one non-empty label; an IP address matches only an
//! iPAddress subjectAltName of the same address (the same rules as webpki,
//! which checks names on the chain-validated path). International names are
//! compared in their ASCII (`xn--`) form, as they are in certificates;
//! [`ascii_host`] turns a host name as the user wrote it into that form with
//! UTS-46 / IDNA 2008 (so `faß.de` is `xn--fa-hia.de`, not IDNA 2003's
//! `fass.de`, another domain).
//!
//! [`why_not`] explains a mismatch where a name that looks right did not
//! count, so the user is not told "certificate is for localhost, not
//! localhost".

use std::net::IpAddr;

use rustls::pki_types::ServerName;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

/// `host` in the ASCII form DNS and certificates use: unchanged when it is
/// already ASCII, else converted with UTS-46 (non-transitional, IDNA 2008
/// rules, STD3 ASCII rules) and checked for DNS lengths. `None` if it cannot
/// be a host name.
pub fn ascii_host(host: &str) -> Option<String> {
    if host.is_ascii() {
        return Some(host.to_owned());
    }
    idna::domain_to_ascii_strict(host).ok()
}

/// Whether the common name may stand in for a missing subjectAltName on the
/// path that was validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommonName {
    /// The user's own CA file vouches, and no CA on the path constrains names.
    Allowed,
    /// The chain leads to the system store or bundled roots.
    OnlyForTheCaFile,
    /// A CA on the path has name constraints, which the common name escapes.
    NameConstrained,
}

/// Why the certificate does not count for `name` although one of its names
/// looks as if it should; `None` when it simply names other hosts.
pub(crate) fn why_not(
    cert: &X509Certificate<'_>,
    name: &ServerName<'_>,
    common_name: CommonName,
) -> Option<String> {
    let dns_sans: Vec<&str> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(dns) => Some(*dns),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    match name {
        ServerName::IpAddress(ip) => {
            let ip = IpAddr::from(*ip);
            if dns_sans
                .iter()
                .any(|d| d.parse::<IpAddr>().ok() == Some(ip))
            {
                return Some(format!(
                    "{ip} is listed as a DNS name, not an IP address (an iPAddress \
                     subjectAltName is needed)"
                ));
            }
        }
        ServerName::DnsName(host) => {
            let host = host.as_ref();
            if let Some(pattern) = dns_sans.iter().find(|p| partial_wildcard_matches(p, host)) {
                return Some(format!(
                    "{pattern} is a partial wildcard, which is not accepted (RFC 6125: \
                     only a whole leftmost * label matches)"
                ));
            }
            if let Some(pattern) = dns_sans
                .iter()
                .find(|p| top_level_wildcard_matches(p, host))
            {
                return Some(format!(
                    "{pattern} is a wildcard over a whole top-level domain, which is not \
                     accepted"
                ));
            }
        }
        _ => {}
    }
    let cn_names = common_names(cert.subject());
    let cn_fits = cn_names.iter().any(|cn| match name {
        ServerName::DnsName(host) => dns_matches(cn, host.as_ref()),
        ServerName::IpAddress(ip) => cn.parse::<IpAddr>().ok() == Some(IpAddr::from(*ip)),
        _ => false,
    });
    if !cn_fits {
        return None;
    }
    if has_san(cert) {
        return Some(
            "its common name is not used because it has a subjectAltName (RFC 6125)".to_owned(),
        );
    }
    match common_name {
        CommonName::OnlyForTheCaFile => Some(
            "it has no subjectAltName, and its common name is only used for a CA in your \
             own CA file"
                .to_owned(),
        ),
        CommonName::NameConstrained => Some(
            "it has no subjectAltName, and its common name is not used when a CA of its \
             chain has name constraints"
                .to_owned(),
        ),
        CommonName::Allowed => None,
    }
}

/// Whether `pattern` is a wildcard other than a whole leftmost `*` label
/// (`f*.example.org`) that would match `host` if such wildcards counted, as
/// they do in stock Mercurial's matcher.
fn partial_wildcard_matches(pattern: &str, host: &str) -> bool {
    let (Some((label, rest)), Some((host_label, host_rest))) =
        (pattern.split_once('.'), host.split_once('.'))
    else {
        return false;
    };
    if label == "*" || !label.contains('*') || !rest.eq_ignore_ascii_case(host_rest) {
        return false;
    }
    let (prefix, suffix) = label.split_once('*').unwrap_or((label, ""));
    !suffix.contains('*')
        && host_label.len() >= prefix.len() + suffix.len()
        && host_label
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        && host_label
            .get(host_label.len() - suffix.len()..)
            .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
}

/// Whether `pattern` is `*.<one label>` (`*.org`, `*.localhost`) and would
/// match `host` if such wildcards counted, as they do in stock Mercurial.
fn top_level_wildcard_matches(pattern: &str, host: &str) -> bool {
    let (Some(parent), Some((label, rest))) = (pattern.strip_prefix("*."), host.split_once('.'))
    else {
        return false;
    };
    !parent.is_empty()
        && !parent.contains(['.', '*'])
        && !label.is_empty()
        && rest.trim_end_matches('.').eq_ignore_ascii_case(parent)
}

/// The names a certificate presents, for messages: its DNS and IP
/// subjectAltNames, or its common names when it has no subjectAltName.
pub(crate) fn presented(cert: &X509Certificate<'_>) -> Vec<String> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => common_names(cert.subject()),
        // Unreadable or duplicated extension: it names nothing usable.
        Err(_) => Vec::new(),
    }
}

/// Whether the certificate has a subjectAltName extension at all (even an
/// empty or unreadable one): only certificates without one may fall back to
/// the common name.
pub(crate) fn has_san(cert: &X509Certificate<'_>) -> bool {
    !matches!(cert.subject_alternative_name(), Ok(None))
}

/// Whether one of the certificate's subjectAltNames matches `name`.
pub(crate) fn san_matches(cert: &X509Certificate<'_>, name: &ServerName<'_>) -> bool {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value
        .general_names
        .iter()
        .any(|general| match (general, name) {
            (GeneralName::DNSName(pattern), ServerName::DnsName(host)) => {
                dns_matches(pattern, host.as_ref())
            }
            (GeneralName::IPAddress(bytes), ServerName::IpAddress(ip)) => {
                ip_from_bytes(bytes) == Some(IpAddr::from(*ip))
            }
            _ => false,
        })
}

/// Whether a common name of a certificate without subjectAltName matches
/// `name` (Mercurial's fallback for its own test certificate). For an IP
/// address the common name must be the address as the user wrote it
/// (`written`), compared as text as stock compares it: comparing values
/// (`::1` and `0:0:0:0:0:0:0:1`) would accept what stock refuses.
pub(crate) fn cn_matches(cert: &X509Certificate<'_>, name: &ServerName<'_>, written: &str) -> bool {
    if has_san(cert) {
        return false;
    }
    common_names(cert.subject()).iter().any(|cn| match name {
        ServerName::DnsName(host) => dns_matches(cn, host.as_ref()),
        ServerName::IpAddress(_) => cn.eq_ignore_ascii_case(written),
        _ => false,
    })
}

/// RFC 6125 DNS name matching; see the module docs.
pub(crate) fn dns_matches(pattern: &str, host: &str) -> bool {
    // The RFC 6125 exception is a trailing dot on the host only; a name in
    // the certificate that ends in a dot matches just that text, as in
    // stock's matcher (webpki never matches it).
    let host = match pattern.ends_with('.') {
        true => host,
        false => host.strip_suffix('.').unwrap_or(host),
    };
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(parent) => {
            !parent.contains('*')
                && parent.contains('.')
                && host.split_once('.').is_some_and(|(label, rest)| {
                    !label.is_empty() && rest.eq_ignore_ascii_case(parent)
                })
        }
        None => !pattern.contains('*') && pattern.eq_ignore_ascii_case(host),
    }
}

fn common_names(name: &X509Name<'_>) -> Vec<String> {
    name.iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_owned)
        .collect()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rustls::client::verify_server_name;
    use rustls::pki_types::CertificateDer;
    use rustls::server::ParsedCertificate;

    use super::super::{cert, testutil};
    use super::*;

    fn host(name: &str) -> ServerName<'static> {
        ServerName::try_from(name.to_owned()).unwrap()
    }

    /// (SAN in the certificate, host connected to, whether it matches)
    const CASES: &[(&str, &str, bool)] = &[
        ("localhost", "localhost", true),
        ("LocalHost", "localhost", true),
        ("localhost", "LOCALHOST", true),
        ("mail.example.org", "example.org", false),
        ("mail.example.org", "mail.example.org.", true),
        ("*.example.org", "mail.example.org", true),
        ("*.example.org", "MAIL.Example.ORG", true),
        ("*.example.org", "example.org", false),
        ("*.example.org", "a.b.example.org", false),
        ("*.example.org", "mail.example.org.evil.test", false),
        ("mail.*.org", "mail.example.org", false),
        ("m*.example.org", "mail.example.org", false),
        ("*mail.example.org", "mail.example.org", false),
        ("*.*.example.org", "a.b.example.org", false),
        ("*.org", "example.org", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("::1", "::1", true),
        ("::1", "0:0:0:0:0:0:0:1", true),
        ("::1", "127.0.0.1", false),
        ("localhost", "127.0.0.1", false),
    ];

    #[test]
    fn wildcards_ips_and_case_follow_rfc_6125() {
        for &(san, name, expected) in CASES {
            let der = testutil::leaf_with_sans(&[san]);
            let cert = cert::parse(&der).unwrap();
            assert_eq!(
                san_matches(&cert, &host(name)),
                expected,
                "SAN {san} vs {name}"
            );
        }
    }

    #[test]
    fn the_own_matcher_agrees_with_webpki_on_every_case() {
        for &(san, name, _) in CASES {
            let der = testutil::leaf_with_sans(&[san]);
            let cert = cert::parse(&der).unwrap();
            let der = CertificateDer::from(der.clone());
            let parsed = ParsedCertificate::try_from(&der).unwrap();
            assert_eq!(
                san_matches(&cert, &host(name)),
                verify_server_name(&parsed, &host(name)).is_ok(),
                "SAN {san} vs {name}"
            );
        }
    }

    #[test]
    fn dns_patterns_that_are_empty_or_odd_never_match() {
        assert!(!dns_matches("", "localhost"));
        assert!(!dns_matches("*", "localhost"));
        assert!(!dns_matches("*.", "localhost"));
        assert!(!dns_matches("localhost", ""));
        assert!(!dns_matches("*.example.org", ".example.org"));
    }

    #[test]
    fn presented_names_list_dns_and_ip_sans() {
        let der = testutil::leaf_with_sans(&["mail.example.org", "192.0.2.7", "2001:db8::1"]);
        let cert = cert::parse(&der).unwrap();
        assert_eq!(
            presented(&cert),
            ["mail.example.org", "192.0.2.7", "2001:db8::1"]
        );
        assert!(has_san(&cert));
    }

    #[test]
    fn a_certificate_without_san_presents_its_common_name_and_may_fall_back_to_it() {
        let der = testutil::pem_to_der(testutil::HG_PUB_PEM);
        let cert = cert::parse(&der).unwrap();
        assert!(!has_san(&cert));
        assert_eq!(presented(&cert), ["localhost"]);
        assert!(cn_matches(&cert, &host("localhost"), "localhost"));
        assert!(cn_matches(&cert, &host("LOCALHOST"), "LOCALHOST"));
        assert!(!cn_matches(&cert, &host("127.0.0.1"), "127.0.0.1"));
        assert!(!san_matches(&cert, &host("localhost")));
    }

    #[test]
    fn a_common_name_never_counts_when_a_san_is_present() {
        let der = testutil::leaf_with_sans(&["mail.example.org"]);
        let cert = cert::parse(&der).unwrap();
        // testutil names the subject CN after the first SAN's host part.
        assert!(!cn_matches(
            &cert,
            &host("mail.example.org"),
            "mail.example.org"
        ));
        assert!(san_matches(&cert, &host("mail.example.org")));
    }

    #[test]
    fn an_ip_host_matches_a_common_name_only_as_written() {
        for (cn, written, matches) in [
            ("127.0.0.1", "127.0.0.1", true),
            ("::1", "::1", true),
            ("0:0:0:0:0:0:0:1", "::1", false),
            ("::1", "0:0:0:0:0:0:0:1", false),
            ("::ffff:7f00:1", "127.0.0.1", false),
            ("127.0.0.2", "127.0.0.1", false),
        ] {
            let der = testutil::no_san_self_signed(cn);
            let cert = cert::parse(&der).unwrap();
            assert_eq!(
                cn_matches(&cert, &host(written), written),
                matches,
                "{cn} against {written}"
            );
        }
    }

    #[test]
    fn a_trailing_dot_counts_on_the_host_only() {
        assert!(dns_matches("mail.example.org", "mail.example.org."));
        assert!(!dns_matches("mail.example.org.", "mail.example.org"));
        assert!(dns_matches("mail.example.org.", "mail.example.org."));
        assert!(!dns_matches("*.example.org.", "mail.example.org"));
        let der = testutil::no_san_self_signed("localhost.");
        let cert = cert::parse(&der).unwrap();
        assert!(!cn_matches(&cert, &host("localhost"), "localhost"));
    }

    #[test]
    fn international_names_become_their_uts46_ascii_form() {
        for (written, ascii) in [
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            // IDNA 2008 keeps ß and ς (IDNA 2003 mapped them to ss and σ).
            ("faß.de", "xn--fa-hia.de"),
            ("ελληνικά.example", "xn--hxargifdar.example"),
            ("mail.example.org", "mail.example.org"),
            ("Mail.Example.ORG", "Mail.Example.ORG"),
            ("127.0.0.1", "127.0.0.1"),
        ] {
            assert_eq!(ascii_host(written).as_deref(), Some(ascii), "{written}");
        }
    }

    #[test]
    fn what_cannot_be_an_international_host_name_is_refused() {
        for bad in ["bü cher.example", "bü_cher.example", "bücher..example"] {
            assert_eq!(ascii_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_common_name_that_matches_is_explained_when_it_did_not_count() {
        let der = testutil::no_san_self_signed("localhost");
        let cert = cert::parse(&der).unwrap();
        let name = host("localhost");
        assert_eq!(
            why_not(&cert, &name, CommonName::OnlyForTheCaFile).as_deref(),
            Some(
                "it has no subjectAltName, and its common name is only used for a CA in \
                 your own CA file"
            )
        );
        assert_eq!(why_not(&cert, &name, CommonName::Allowed), None);
        assert_eq!(
            why_not(
                &cert,
                &host("mail.example.org"),
                CommonName::OnlyForTheCaFile
            ),
            None
        );
        let mut params = testutil::leaf_params(&["mail.example.org"]);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let der = testutil::self_signed(&params, &testutil::KeyKind::Ecdsa.key());
        let cert = cert::parse(&der).unwrap();
        assert_eq!(
            why_not(&cert, &name, CommonName::Allowed).as_deref(),
            Some("its common name is not used because it has a subjectAltName (RFC 6125)")
        );
    }

    #[test]
    fn wildcards_over_a_top_level_domain_are_explained() {
        let der = testutil::leaf_with_sans(&["*.example"]);
        let cert = cert::parse(&der).unwrap();
        assert_eq!(
            why_not(&cert, &host("mail.example"), CommonName::Allowed).as_deref(),
            Some("*.example is a wildcard over a whole top-level domain, which is not accepted")
        );
        assert_eq!(
            why_not(&cert, &host("mail.other"), CommonName::Allowed),
            None
        );
        assert!(!top_level_wildcard_matches(
            "*.example.org",
            "mail.example.org"
        ));
        assert!(!top_level_wildcard_matches("*.example", "example"));
    }

    #[test]
    fn partial_wildcards_are_recognised_only_where_they_would_have_matched() {
        assert!(partial_wildcard_matches(
            "f*.example.org",
            "foo.example.org"
        ));
        assert!(partial_wildcard_matches(
            "*o.example.org",
            "foo.example.org"
        ));
        assert!(!partial_wildcard_matches(
            "b*.example.org",
            "foo.example.org"
        ));
        assert!(!partial_wildcard_matches(
            "*.example.org",
            "foo.example.org"
        ));
        assert!(!partial_wildcard_matches(
            "f*.example.net",
            "foo.example.org"
        ));
        assert!(!partial_wildcard_matches(
            "foo*bar.example.org",
            "fo.example.org"
        ));
    }
}
