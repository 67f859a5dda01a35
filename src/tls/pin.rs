//! Certificate and public-key pins: Mercurial's `hostsecurity.<host>:fingerprints`,
//! the legacy `[hostfingerprints]` section, and this extension's
//! `hostsecurity.<host>:pubkeys`.
//!
//! A certificate pin is a digest of the whole leaf certificate (DER), as
//! Mercurial and `openssl x509 -fingerprint` compute it. A public-key pin is
//! the SHA-256 of the leaf's SubjectPublicKeyInfo, as HPKP's `pin-sha256`
//! (RFC 7469, section 2.4): it survives a renewal that keeps the key.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine as _};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::cert;

/// The digest algorithm of a certificate fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-1: accepted for compatibility with old configurations only.
    Sha1,
    /// SHA-256: what Mercurial suggests and prints.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// The prefix Mercurial writes before the digest, without the colon.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// The digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// One pinned identity of a server; any match lets the connection through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// A digest of the leaf certificate's DER.
    Cert {
        /// The digest algorithm.
        alg: HashAlg,
        /// The digest, `alg.digest_len()` bytes.
        digest: Vec<u8>,
    },
    /// A SHA-1 digest of the leaf certificate's DER from the legacy
    /// `[hostfingerprints]` section: a match earns Mercurial's nudge to move
    /// it to `[hostsecurity]`, which a `sha1:` pin written there does not.
    Legacy {
        /// The digest, 20 bytes.
        digest: Vec<u8>,
    },
    /// The SHA-256 of the leaf's SubjectPublicKeyInfo DER.
    PublicKey {
        /// The digest.
        digest: [u8; 32],
    },
}

/// A pin setting that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinError {
    /// The offending entry, as written.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fingerprint '{}': {}", self.input, self.reason)
    }
}

impl std::error::Error for PinError {}

impl Pin {
    /// Parses one `hostsecurity.<host>:fingerprints` entry, such as
    /// `sha256:20:de:b3:...`.
    ///
    /// As in Mercurial the prefix (`sha1:`, `sha256:` or `sha512:`) is
    /// required and must be lowercase, colons in the digest are ignored and
    /// its hex digits may be in either case. Unlike Mercurial, a digest of the
    /// wrong length is an error rather than a pin that can never match.
    pub fn parse_fingerprint(s: &str) -> Result<Pin, PinError> {
        let s = s.trim();
        let Some((alg, hex)) = split_prefix(s) else {
            return Err(error(
                s,
                "must begin with \"sha1:\", \"sha256:\" or \"sha512:\"",
            ));
        };
        let digest = decode_hex(s, hex, alg)?;
        Ok(Pin::Cert { alg, digest })
    }

    /// Parses one legacy `[hostfingerprints]` entry: a bare SHA-1 digest in
    /// hex, colons optional. A `sha1:` prefix is refused: stock Mercurial
    /// keeps it as part of the digest, which then never matches, so such an
    /// entry must not pin here either.
    pub fn parse_legacy(s: &str) -> Result<Pin, PinError> {
        let hex = s.trim();
        if hex.starts_with("sha1:") {
            return Err(error(
                s,
                "[hostfingerprints] takes a bare SHA-1 fingerprint without the \
                 'sha1:' prefix (stock Mercurial never matches one with it); \
                 or move it to hostsecurity.<host>:fingerprints, which takes the prefix",
            ));
        }
        if hex.starts_with("sha256:") || hex.starts_with("sha512:") {
            return Err(error(
                s,
                "[hostfingerprints] takes SHA-1 fingerprints only; \
                 put other digests in hostsecurity.<host>:fingerprints",
            ));
        }
        let digest = decode_hex(s, hex, HashAlg::Sha1)?;
        Ok(Pin::Legacy { digest })
    }

    /// Parses one `hostsecurity.<host>:pubkeys` entry: `sha256:` followed by
    /// the SHA-256 of the server's SubjectPublicKeyInfo, either
    ///
    /// - in base64, 44 characters, as HPKP's `pin-sha256` and as
    ///   [`spki_pin`] prints it (the trailing `=` may be left out), or
    /// - in hex, 64 digits, colons optional and case ignored.
    pub fn parse_pubkey(s: &str) -> Result<Pin, PinError> {
        let s = s.trim();
        let Some(value) = s.strip_prefix("sha256:") else {
            return Err(error(s, "public-key pins must begin with \"sha256:\""));
        };
        let is_hex = value.contains(':')
            || (value.len() == 2 * HashAlg::Sha256.digest_len()
                && value.bytes().all(|b| b.is_ascii_hexdigit()));
        let digest = if is_hex {
            decode_hex(s, value, HashAlg::Sha256)?
        } else {
            BASE64_LENIENT.decode(value).map_err(|_| {
                error(
                    s,
                    "expected the SHA-256 in base64 (44 characters) or in hex (64 digits)",
                )
            })?
        };
        let digest: [u8; 32] = digest.try_into().map_err(|d: Vec<u8>| {
            error(
                s,
                &format!("a SHA-256 digest is 32 bytes, this one has {}", d.len()),
            )
        })?;
        Ok(Pin::PublicKey { digest })
    }

    /// Parses a whole setting value: entries separated by commas and/or
    /// whitespace, each parsed with `parse`; empty entries are ignored. The
    /// first bad entry is the error.
    pub fn parse_list(
        value: &str,
        parse: fn(&str) -> Result<Pin, PinError>,
    ) -> Result<Vec<Pin>, PinError> {
        value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(parse)
            .collect()
    }

    /// Whether the leaf certificate (DER) has this fingerprint or public key.
    /// A certificate that cannot be parsed matches no public-key pin.
    pub fn matches(&self, leaf_der: &[u8]) -> bool {
        match self {
            Pin::Cert { alg, digest } => alg.digest(leaf_der) == *digest,
            Pin::Legacy { digest } => HashAlg::Sha1.digest(leaf_der) == *digest,
            Pin::PublicKey { digest } => {
                spki_digest(leaf_der).is_some_and(|spki| spki[..] == digest[..])
            }
        }
    }

    /// Whether this pin came from `[hostfingerprints]` (Mercurial nudges
    /// users off those when one matches).
    pub fn is_legacy(&self) -> bool {
        matches!(self, Pin::Legacy { .. })
    }

    /// Whether this pin is a digest of the whole certificate.
    pub fn is_certificate(&self) -> bool {
        !matches!(self, Pin::PublicKey { .. })
    }
}

/// Prints the pin as it is written in configuration: certificate pins as
/// [`fingerprint`] prints them, public-key pins as [`spki_pin`] does.
impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::Cert { alg, digest } => f.write_str(&format_fingerprint(*alg, digest)),
            Pin::Legacy { digest } => f.write_str(&format_fingerprint(HashAlg::Sha1, digest)),
            Pin::PublicKey { digest } => write!(f, "sha256:{}", BASE64.encode(digest)),
        }
    }
}

/// The leaf's fingerprint as Mercurial prints it: `sha256:aa:bb:...`,
/// lowercase hex with colons.
pub fn fingerprint(leaf_der: &[u8], alg: HashAlg) -> String {
    format_fingerprint(alg, &alg.digest(leaf_der))
}

/// The leaf's public-key pin, `sha256:<base64 of SHA-256(SPKI DER)>`, the form
/// [`Pin::parse_pubkey`] accepts. An error if the certificate does not parse.
pub fn spki_pin(leaf_der: &[u8]) -> Result<String, String> {
    let digest = spki_digest(leaf_der).ok_or("the certificate cannot be parsed")?;
    Ok(Pin::PublicKey { digest }.to_string())
}

fn spki_digest(leaf_der: &[u8]) -> Option<[u8; 32]> {
    let cert = cert::parse(leaf_der)?;
    Some(Sha256::digest(cert.public_key().raw).into())
}

fn format_fingerprint(alg: HashAlg, digest: &[u8]) -> String {
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{}", alg.name(), hex.join(":"))
}

fn split_prefix(s: &str) -> Option<(HashAlg, &str)> {
    [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha512]
        .into_iter()
        .find_map(|alg| {
            let rest = s.strip_prefix(alg.name())?.strip_prefix(':')?;
            Some((alg, rest))
        })
}

fn decode_hex(input: &str, hex: &str, alg: HashAlg) -> Result<Vec<u8>, PinError> {
    let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
    if let Some(&bad) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(error(
            input,
            &format!("'{}' is not a hexadecimal digit", bad.escape_ascii()),
        ));
    }
    if digits.len() != 2 * alg.digest_len() {
        return Err(error(
            input,
            &format!(
                "a {} fingerprint has {} hex digits, this one has {}",
                alg.name(),
                2 * alg.digest_len(),
                digits.len()
            ),
        ));
    }
    Ok(digits
        .chunks(2)
        .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
        .collect())
}

fn hex_value(digit: u8) -> u8 {
    // decode_hex passes hex digits only, so the fallback is never taken.
    char::from(digit).to_digit(16).map_or(0, |v| v as u8)
}

fn error(input: &str, reason: &str) -> PinError {
    PinError {
        input: input.to_owned(),
        reason: reason.to_owned(),
    }
}

const BASE64: GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Standard alphabet; the `=` padding may be present or left out.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, HG_PUB_PEM};
    use super::*;

    // Mercurial's tests/sslcerts/pub.pem and the fingerprints its own tests
    // (test-https.t) print for it; the SPKI pin is from
    // `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256 | base64`.
    const HG_SHA1: &str = "sha1:ec:d8:7c:d6:b3:86:d0:4f:c1:b8:b4:1c:9d:8f:5e:16:8e:ef:1c:03";
    const HG_SHA256: &str = "sha256:20:de:b3:ad:b4:cd:a5:42:f0:74:41:1c:a2:70:1e:da:6e:c0:5c:16:9e:e7:22:0f:f1:b7:e5:6e:e4:92:af:7e";
    const HG_SPKI: &str = "sha256:XVLkcxvmjAKBT9hL8cZLKhaha9au30Eqkf+qgeb6NPY=";

    fn hg_pub() -> Vec<u8> {
        testutil::pem_to_der(HG_PUB_PEM)
    }

    #[test]
    fn fingerprint_prints_what_mercurial_prints_for_its_test_certificate() {
        assert_eq!(fingerprint(&hg_pub(), HashAlg::Sha1), HG_SHA1);
        assert_eq!(fingerprint(&hg_pub(), HashAlg::Sha256), HG_SHA256);
        let sha512 = fingerprint(&hg_pub(), HashAlg::Sha512);
        assert!(sha512.starts_with("sha512:8f:44:28:df:"), "{sha512}");
        assert_eq!(sha512.len(), "sha512:".len() + 64 * 3 - 1);
    }

    #[test]
    fn spki_pin_matches_openssl_and_the_webpki_view_of_the_key() {
        let der = hg_pub();
        assert_eq!(spki_pin(&der).unwrap(), HG_SPKI);
        let cert_der = rustls::pki_types::CertificateDer::from(der.clone());
        let parsed = rustls::server::ParsedCertificate::try_from(&cert_der).unwrap();
        let webpki_spki = parsed.subject_public_key_info();
        assert_eq!(
            format!("sha256:{}", BASE64.encode(Sha256::digest(webpki_spki))),
            HG_SPKI
        );
    }

    #[test]
    fn spki_pin_of_garbage_is_an_error() {
        assert!(spki_pin(b"not a certificate").is_err());
    }

    #[test]
    fn fingerprint_parses_with_colons_in_either_case_and_matches() {
        let digest = HG_SHA256.strip_prefix("sha256:").unwrap();
        for entry in [
            HG_SHA256.to_owned(),
            format!("sha256:{}", digest.replace(':', "")),
            format!("sha256:{}", digest.to_uppercase()),
        ] {
            let pin = Pin::parse_fingerprint(&entry).unwrap();
            assert!(pin.matches(&hg_pub()), "{entry}");
            assert_eq!(pin.to_string(), HG_SHA256);
        }
    }

    #[test]
    fn fingerprint_parses_each_algorithm() {
        let sha1 = Pin::parse_fingerprint("sha1:ecd87cd6b386d04fc1b8b41c9d8f5e168eef1c03").unwrap();
        // A sha1: pin written in [hostsecurity] is not a legacy one.
        assert!(!sha1.is_legacy() && sha1.is_certificate() && sha1.matches(&hg_pub()));
        let sha512 = fingerprint(&hg_pub(), HashAlg::Sha512);
        let pin = Pin::parse_fingerprint(&sha512).unwrap();
        assert!(!pin.is_legacy() && pin.matches(&hg_pub()));
        assert_eq!(pin.to_string(), sha512);
    }

    #[test]
    fn fingerprint_without_a_lowercase_prefix_is_refused() {
        for entry in [
            "ecd87cd6b386d04fc1b8b41c9d8f5e168eef1c03",
            "SHA1:ecd87cd6b386d04fc1b8b41c9d8f5e168eef1c03",
            "md5:00112233445566778899aabbccddeeff",
            "sha256",
        ] {
            let err = Pin::parse_fingerprint(entry).unwrap_err();
            assert_eq!(err.input, entry);
            assert!(err.reason.contains("must begin with"), "{err}");
        }
    }

    #[test]
    fn fingerprint_of_the_wrong_length_is_refused() {
        let err =
            Pin::parse_fingerprint("sha256:ecd87cd6b386d04fc1b8b41c9d8f5e168eef1c03").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid fingerprint 'sha256:ecd87cd6b386d04fc1b8b41c9d8f5e168eef1c03': \
             a sha256 fingerprint has 64 hex digits, this one has 40"
        );
        assert!(Pin::parse_fingerprint("sha1:ecd87cd6b386d04fc1b8b41c9d8f5e168eef1c").is_err());
        assert!(Pin::parse_fingerprint("sha1:").is_err());
    }

    #[test]
    fn fingerprint_with_a_non_hex_digit_is_refused() {
        let err =
            Pin::parse_fingerprint("sha1:zcd87cd6b386d04fc1b8b41c9d8f5e168eef1c03").unwrap_err();
        assert!(
            err.reason.contains("'z' is not a hexadecimal digit"),
            "{err}"
        );
    }

    #[test]
    fn a_list_splits_on_commas_and_whitespace_and_skips_empty_entries() {
        let value =
            format!(" sha1:deadbeefdeadbeefdeadbeefdeadbeefdeadbeef,{HG_SHA256}\n\t,, {HG_SHA1} ");
        let pins = Pin::parse_list(&value, Pin::parse_fingerprint).unwrap();
        assert_eq!(pins.len(), 3);
        assert!(!pins[0].matches(&hg_pub()));
        assert!(pins[1].matches(&hg_pub()) && pins[2].matches(&hg_pub()));
        assert_eq!(Pin::parse_list(" , ", Pin::parse_fingerprint), Ok(vec![]));
    }

    #[test]
    fn a_list_reports_its_first_bad_entry() {
        let err = Pin::parse_list(
            &format!("{HG_SHA256}, sha256:beef, sha9:00"),
            Pin::parse_fingerprint,
        )
        .unwrap_err();
        assert_eq!(err.input, "sha256:beef");
    }

    #[test]
    fn legacy_entries_are_bare_sha1_and_a_prefix_is_refused_as_stock_never_matches_it() {
        let err = Pin::parse_legacy(HG_SHA1).unwrap_err();
        assert!(err.reason.contains("without the 'sha1:' prefix"), "{err}");
        for entry in [
            "ec:d8:7c:d6:b3:86:d0:4f:c1:b8:b4:1c:9d:8f:5e:16:8e:ef:1c:03",
            "ECD87CD6B386D04FC1B8B41C9D8F5E168EEF1C03",
        ] {
            let pin = Pin::parse_legacy(entry).unwrap();
            assert!(
                pin.is_legacy() && pin.is_certificate() && pin.matches(&hg_pub()),
                "{entry}"
            );
            assert_eq!(pin.to_string(), HG_SHA1);
        }
    }

    #[test]
    fn legacy_entries_refuse_other_digests() {
        let err = Pin::parse_legacy(HG_SHA256).unwrap_err();
        assert!(err.reason.contains("SHA-1 fingerprints only"), "{err}");
        assert!(Pin::parse_legacy("ec:d8:7c").is_err());
    }

    #[test]
    fn pubkey_pins_parse_from_base64_with_or_without_padding() {
        let pin = Pin::parse_pubkey(HG_SPKI).unwrap();
        assert!(pin.matches(&hg_pub()));
        assert!(!pin.is_legacy() && !pin.is_certificate());
        assert_eq!(pin.to_string(), HG_SPKI);
        let unpadded = Pin::parse_pubkey(HG_SPKI.trim_end_matches('=')).unwrap();
        assert_eq!(unpadded, pin);
    }

    #[test]
    fn pubkey_pins_parse_from_hex_with_or_without_colons() {
        let pin = Pin::parse_pubkey(HG_SPKI).unwrap();
        let Pin::PublicKey { digest } = &pin else {
            unreachable!("parse_pubkey makes public-key pins")
        };
        let hex = format_fingerprint(HashAlg::Sha256, digest);
        let digits = hex.strip_prefix("sha256:").unwrap();
        for entry in [
            hex.clone(),
            format!("sha256:{}", digits.replace(':', "")),
            format!("sha256:{}", digits.to_uppercase()),
        ] {
            assert_eq!(Pin::parse_pubkey(&entry).unwrap(), pin, "{entry}");
        }
    }

    #[test]
    fn pubkey_pins_refuse_other_prefixes_lengths_and_alphabets() {
        assert!(Pin::parse_pubkey(HG_SPKI.trim_start_matches("sha256:")).is_err());
        assert!(Pin::parse_pubkey(&HG_SPKI.replace("sha256", "sha1")).is_err());
        assert!(Pin::parse_pubkey(&HG_SPKI.replace("sha256", "SHA256")).is_err());
        let short = Pin::parse_pubkey("sha256:AAAA").unwrap_err();
        assert!(short.reason.contains("32 bytes, this one has 3"), "{short}");
        assert!(Pin::parse_pubkey("sha256:!!!!").is_err());
        assert!(Pin::parse_pubkey(&format!("{HG_SPKI}AAAA")).is_err());
    }

    #[test]
    fn a_pubkey_pin_survives_a_renewal_with_the_same_key_and_a_cert_pin_does_not() {
        let key = rcgen::KeyPair::generate().unwrap();
        let first = testutil::self_signed_with(&key, "localhost", 2020);
        let renewed = testutil::self_signed_with(&key, "localhost", 2021);
        let spki = Pin::parse_pubkey(&spki_pin(&first).unwrap()).unwrap();
        let cert = Pin::parse_fingerprint(&fingerprint(&first, HashAlg::Sha256)).unwrap();
        assert!(spki.matches(&first) && spki.matches(&renewed));
        assert!(cert.matches(&first) && !cert.matches(&renewed));
    }

    #[test]
    fn a_public_key_pin_matches_nothing_unparsable() {
        let pin = Pin::parse_pubkey(HG_SPKI).unwrap();
        assert!(!pin.matches(b"garbage"));
    }
}
