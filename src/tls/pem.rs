//! Reading a CA file the way OpenSSL reads it (`X509_load_cert_crl_file`,
//! which Python's `load_verify_locations` and so stock Mercurial use): the
//! whole file or nothing.
//!
//! OpenSSL splits the file at LF, strips every trailing byte up to and
//! including the space from each line, skips lines until a
//! `-----BEGIN <label>-----` line, and then wants base64 lines up to the
//! matching `-----END <label>-----` line. A block that breaks those rules,
//! or a certificate block that is not a certificate, fails the whole file
//! (no "skip what cannot be read"), and so does a file with no certificate
//! at all. A more forgiving reader would trust certificates from a file
//! stock refuses: CR-only line ends, a second BEGIN inside a block, text
//! after the END dashes, a blank line between base64 lines.
//!
//! Every block OpenSSL decodes must decode, or the file is refused as
//! OpenSSL refuses it (`[X509] PEM lib`): certificates as OpenSSL's decoder
//! reads them ([`super::profile::decodes`]), `TRUSTED CERTIFICATE`, `X509
//! CRL` and every `... PRIVATE KEY` but the encrypted one. Other blocks
//! must be well framed and are then skipped, as OpenSSL skips them.
//!
//! Left out: `TRUSTED CERTIFICATE` blocks are decoded but their
//! certificates are not trusted (OpenSSL's trust settings are not
//! modelled: stricter); PEM headers (`Proc-Type:`, only for encrypted keys)
//! fail the file.

use std::fmt;

use base64::Engine;
use rustls::pki_types::CertificateDer;

use super::{cert, profile};

/// Why a CA file cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PemError {
    /// A BEGIN line with no END line for it.
    NoEnd { line: usize, label: String },
    /// The END line does not close the block it ends.
    BadEnd { line: usize },
    /// A line inside a block that is not base64 (a second BEGIN, a blank
    /// line between base64 lines, a PEM header).
    BadLine { line: usize },
    /// The base64 of a block does not decode.
    BadBase64 { line: usize },
    /// A CERTIFICATE block that is not a DER certificate.
    NotACertificate { line: usize },
    /// A block OpenSSL decodes (a certificate outside what it decodes, a
    /// key, a CRL) that does not decode.
    Undecodable { line: usize, what: String },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoEnd { line, label } => {
                write!(f, "line {line}: no -----END {label}----- line")
            }
            Self::BadEnd { line } => write!(f, "line {line}: malformed END line"),
            Self::BadLine { line } => write!(f, "line {line}: not a base64 line"),
            Self::BadBase64 { line } => write!(f, "block at line {line}: bad base64"),
            Self::NotACertificate { line } => {
                write!(f, "block at line {line}: not a valid certificate")
            }
            Self::Undecodable { line, what } => write!(f, "block at line {line}: {what}"),
        }
    }
}

/// The PEM labels OpenSSL reads as a plain certificate.
const CERTIFICATE_LABELS: [&[u8]; 2] = [b"CERTIFICATE", b"X509 CERTIFICATE"];

/// Why a block OpenSSL decodes (other than a certificate) does not decode,
/// or `None` if it does or is a kind OpenSSL skips.
fn undecodable(label: &[u8], der: &[u8]) -> Option<String> {
    let shown = String::from_utf8_lossy(label);
    let fails = match label {
        b"TRUSTED CERTIFICATE" => !profile::trusted_certificate_decodes(der),
        b"X509 CRL" => !profile::crl_decodes(der),
        // OpenSSL 3 decodes every block whose label ends so, except the
        // encrypted one (kept undecoded until a password is given).
        _ if label.ends_with(b"PRIVATE KEY") && label != b"ENCRYPTED PRIVATE KEY" => {
            !profile::private_key_decodes(label, der)
        }
        _ => false,
    };
    fails.then(|| format!("a {shown} block that does not decode"))
}

/// A line as OpenSSL's PEM reader sees it: the trailing bytes up to and
/// including the space removed (`sanitize_line`, EAY-compatible mode).
fn sanitized(line: &[u8]) -> &[u8] {
    let end = line.iter().rposition(|&b| b > b' ').map_or(0, |i| i + 1);
    &line[..end]
}

fn begin_label(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"-----BEGIN ")?;
    rest.strip_suffix(b"-----")
}

/// Every certificate in `bytes`, or why the file as a whole is refused.
/// An empty result is for the caller to refuse.
pub(crate) fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    // A UTF-8 byte order mark before the first line is skipped, as OpenSSL.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    let mut certs = Vec::new();
    while let Some((index, raw)) = lines.next() {
        let Some(label) = begin_label(sanitized(raw)) else {
            continue;
        };
        let start = index + 1;
        let mut b64 = Vec::new();
        // OpenSSL's reader allows one blank line straight after BEGIN (an
        // empty header); then lines of 64 characters, a shorter one last.
        let mut after_header = false;
        let mut short_seen = false;
        let mut first = true;
        let mut closed = false;
        for (index, raw) in lines.by_ref() {
            let line = sanitized(raw);
            let number = index + 1;
            if let Some(rest) = line.strip_prefix(b"-----END ") {
                if rest.strip_suffix(b"-----") != Some(label) {
                    return Err(PemError::BadEnd { line: number });
                }
                closed = true;
                break;
            }
            if line.is_empty() {
                if !first {
                    return Err(PemError::BadLine { line: number });
                }
                first = false;
                after_header = true;
                continue;
            }
            first = false;
            if short_seen || (after_header && line.len() > 64) {
                return Err(PemError::BadLine { line: number });
            }
            if after_header && line.len() < 64 {
                short_seen = true;
            }
            // Spaces and tabs inside a line are skipped by OpenSSL's
            // decoder; anything else that is not base64 fails it.
            b64.extend(line.iter().filter(|&&b| b != b' ' && b != b'\t'));
        }
        if !closed {
            return Err(PemError::NoEnd {
                line: start,
                label: String::from_utf8_lossy(label).into_owned(),
            });
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .map_err(|_| PemError::BadBase64 { line: start })?;
        if CERTIFICATE_LABELS.contains(&label) {
            // OpenSSL's d2i reads the first DER object and ignores what
            // follows it in the block; a certificate must be readable.
            let rest = match x509_parser::parse_x509_certificate(&der) {
                Ok((rest, _)) => rest.len(),
                Err(_) => return Err(PemError::NotACertificate { line: start }),
            };
            let used = &der[..der.len() - rest];
            profile::decodes(used).map_err(|fault| PemError::Undecodable {
                line: start,
                what: format!("certificate {}: it {fault}", cert::subject(used)),
            })?;
            certs.push(CertificateDer::from(used.to_vec()));
        } else if let Some(what) = undecodable(label, &der) {
            return Err(PemError::Undecodable { line: start, what });
        }
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::super::testutil;
    use super::*;

    fn pem(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let body: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap()) // base64 is ASCII
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            body.join("\n")
        )
    }

    fn a_cert() -> Vec<u8> {
        testutil::Ca::new("PEM test CA").der().to_vec()
    }

    #[test]
    fn a_well_formed_file_gives_every_certificate_with_text_around_them() {
        let der = a_cert();
        let text = format!("Subject: x\n{}\nnotes\r\n{}", pem(&der), pem(&der));
        let certs = certificates(text.as_bytes()).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), &der[..]);
    }

    #[test]
    fn crlf_line_ends_and_trailing_spaces_are_read() {
        let der = a_cert();
        let text = pem(&der).replace('\n', " \r\n");
        assert_eq!(certificates(text.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn cr_only_line_ends_fail_the_file() {
        // One line: its BEGIN "label" runs to the last END, which never comes.
        let text = pem(&a_cert()).replace('\n', "\r");
        assert!(certificates(text.as_bytes()).is_err());
    }

    #[test]
    fn a_second_begin_inside_a_block_fails_the_file() {
        let one = pem(&a_cert());
        let (head, tail) = one.split_at(one.len() / 2);
        let text = format!("{head}\n-----BEGIN CERTIFICATE-----\n{tail}");
        assert!(certificates(text.as_bytes()).is_err());
    }

    #[test]
    fn text_after_the_end_dashes_fails_the_file() {
        let text = pem(&a_cert()).replace("CERTIFICATE-----\n", "CERTIFICATE-----junk\n");
        // The BEGIN line is read as text (it no longer ends in dashes), the
        // END line is wrong for nothing: no certificate. Only the END:
        let only_end = pem(&a_cert()).replace("END CERTIFICATE-----", "END CERTIFICATE-----x");
        assert!(matches!(
            certificates(only_end.as_bytes()),
            Err(PemError::BadEnd { .. })
        ));
        assert_eq!(certificates(text.as_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn a_blank_line_between_base64_lines_fails_the_file() {
        let one = pem(&a_cert());
        let text = one.replacen('\n', "\n\n", 3).replacen("\n\n", "\n", 1);
        assert!(matches!(
            certificates(text.as_bytes()),
            Err(PemError::BadLine { .. })
        ));
    }

    #[test]
    fn a_blank_line_right_after_begin_is_an_empty_header() {
        let text = pem(&a_cert()).replacen('\n', "\n\n", 1);
        assert_eq!(certificates(text.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn a_certificate_block_that_is_not_der_fails_the_file() {
        let der = a_cert();
        let text = format!("{}{}", pem(&der), pem(b"not a certificate at all"));
        assert!(matches!(
            certificates(text.as_bytes()),
            Err(PemError::NotACertificate { .. })
        ));
    }

    #[test]
    fn a_block_without_end_fails_the_file() {
        for text in [
            "-----BEGIN CERTIFICATE-----\nAAAA",
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
        ] {
            assert!(certificates(text.as_bytes()).is_err(), "{text:?}");
        }
    }

    #[test]
    fn other_blocks_are_skipped_but_must_be_well_framed() {
        let der = a_cert();
        let key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let text = format!("{key}{}", pem(&der));
        assert_eq!(certificates(text.as_bytes()).unwrap().len(), 1);
        let bad = format!(
            "-----BEGIN FOO-----\n!!!!\n-----END FOO-----\n{}",
            pem(&der)
        );
        assert!(certificates(bad.as_bytes()).is_err());
    }

    fn block(label: &str, der: &[u8]) -> String {
        pem(der).replace("CERTIFICATE", label)
    }

    #[test]
    fn every_block_openssl_decodes_must_decode_or_the_file_is_refused() {
        let der = a_cert();
        let junk = [0x30, 0x03, 0x02, 0x01, 0x05];
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "DSA PRIVATE KEY",
            "X509 CRL",
            "TRUSTED CERTIFICATE",
        ] {
            let text = format!("{}{}", pem(&der), block(label, &junk));
            assert!(
                matches!(
                    certificates(text.as_bytes()),
                    Err(PemError::Undecodable { .. })
                ),
                "{label}"
            );
        }
        // Blocks OpenSSL does not decode in a CA file are skipped.
        for label in ["ENCRYPTED PRIVATE KEY", "PUBLIC KEY", "CERTIFICATE REQUEST"] {
            let text = format!("{}{}", pem(&der), block(label, &junk));
            assert_eq!(certificates(text.as_bytes()).unwrap().len(), 1, "{label}");
        }
        // A key that decodes is no reason to refuse the file.
        let key = testutil::KeyKind::Ecdsa.key().serialize_der();
        let text = format!("{}{}", block("PRIVATE KEY", &key), pem(&der));
        assert_eq!(certificates(text.as_bytes()).unwrap().len(), 1);
    }
}
