//! A readable summary of the chain a server sent, for `hg debugsmtp` and
//! for the hints printed with a verification failure (the fingerprint and
//! public-key pin lines to paste into hgrc).

use std::time::{SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::objects::{oid2sn, oid_registry};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_NIST_EC_P384, OID_NIST_EC_P521, OID_SIG_ED25519, OID_SIG_ED448,
};
use x509_parser::public_key::PublicKey;

use super::pin::{fingerprint, spki_pin, HashAlg};
use super::{cert, names};

/// One certificate of a chain, in words. Fields that cannot be read are `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// DNS and IP subjectAltNames (the common name when there is no SAN).
    pub sans: Vec<String>,
    /// notBefore, `2020-02-01 00:00:00 UTC`.
    pub not_before: String,
    /// notAfter.
    pub not_after: String,
    /// Whole days until notAfter; negative once expired.
    pub days_left: i64,
    /// Signature algorithm, as OpenSSL names it (`sha256WithRSAEncryption`).
    pub signature_algorithm: String,
    /// Public key: `RSA 2048`, `ECDSA P-256`, `Ed25519`.
    pub key: String,
    /// `sha256:aa:bb:...` fingerprint, as Mercurial prints it.
    pub sha256: String,
    /// `sha1:...` fingerprint.
    pub sha1: String,
    /// `sha512:...` fingerprint.
    pub sha512: String,
    /// Public-key pin, `sha256:<base64>`.
    pub spki_sha256: String,
    /// The certificate names itself as its issuer.
    pub self_signed: bool,
}

/// Summaries of a chain as sent (DER, leaf first), as of now.
pub fn describe_chain(chain: &[Vec<u8>]) -> Vec<CertSummary> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    describe_chain_at(chain, now)
}

/// Summaries of a chain as of `now` (seconds since the Unix epoch).
pub fn describe_chain_at(chain: &[Vec<u8>], now: i64) -> Vec<CertSummary> {
    chain.iter().map(|der| describe(der, now)).collect()
}

fn describe(der: &[u8], now: i64) -> CertSummary {
    let unknown = || "?".to_owned();
    let parsed = cert::parse(der);
    let (not_before, not_after) = parsed.as_ref().map_or((None, None), |c| {
        let validity = c.validity();
        (
            Some(validity.not_before.timestamp()),
            Some(validity.not_after.timestamp()),
        )
    });
    CertSummary {
        subject: parsed
            .as_ref()
            .map_or_else(unknown, |c| cert::dn(c.subject())),
        issuer: parsed
            .as_ref()
            .map_or_else(unknown, |c| cert::dn(c.issuer())),
        sans: parsed.as_ref().map(names::presented).unwrap_or_default(),
        not_before: not_before.map_or_else(unknown, cert::utc),
        not_after: not_after.map_or_else(unknown, cert::utc),
        days_left: not_after.map_or(0, |t| (t.saturating_sub(now)).div_euclid(86_400)),
        signature_algorithm: parsed.as_ref().map_or_else(unknown, signature_algorithm),
        key: parsed.as_ref().map_or_else(unknown, key),
        sha256: fingerprint(der, HashAlg::Sha256),
        sha1: fingerprint(der, HashAlg::Sha1),
        sha512: fingerprint(der, HashAlg::Sha512),
        spki_sha256: spki_pin(der).unwrap_or_else(|_| unknown()),
        self_signed: parsed.as_ref().is_some_and(cert::is_self_issued),
    }
}

fn signature_algorithm(cert: &X509Certificate<'_>) -> String {
    let oid = &cert.signature_algorithm.algorithm;
    oid2sn(oid, oid_registry()).map_or_else(|_| oid.to_id_string(), str::to_owned)
}

fn key(cert: &X509Certificate<'_>) -> String {
    let spki = cert.public_key();
    let algorithm = &spki.algorithm.algorithm;
    if *algorithm == OID_SIG_ED25519 {
        return "Ed25519".to_owned();
    }
    if *algorithm == OID_SIG_ED448 {
        return "Ed448".to_owned();
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => "ECDSA P-256".to_owned(),
                Some(c) if c == OID_NIST_EC_P384 => "ECDSA P-384".to_owned(),
                Some(c) if c == OID_NIST_EC_P521 => "ECDSA P-521".to_owned(),
                Some(c) => format!("ECDSA {}", c.to_id_string()),
                None => format!("ECDSA {} bits", point.key_size()),
            }
        }
        Ok(PublicKey::DSA(_)) => "DSA".to_owned(),
        _ => oid2sn(algorithm, oid_registry())
            .map_or_else(|_| algorithm.to_id_string(), str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, Ca, KeyKind};
    use super::*;

    // 2025-06-01 00:00:00 UTC
    const NOW: i64 = 1_748_736_000;

    #[test]
    fn mercurials_test_certificate_is_described_in_full() {
        let der = testutil::pem_to_der(testutil::HG_PUB_PEM);
        let [summary] = describe_chain_at(&[der], NOW).try_into().unwrap();
        assert_eq!(summary.subject, "CN=localhost, Email=hg@localhost");
        assert_eq!(summary.issuer, summary.subject);
        assert!(summary.self_signed);
        assert_eq!(summary.sans, ["localhost"]);
        assert_eq!(summary.not_before, "2016-07-13 04:17:12 UTC");
        assert_eq!(summary.not_after, "2041-03-04 04:17:12 UTC");
        assert_eq!(summary.days_left, 5755);
        assert_eq!(summary.signature_algorithm, "sha256WithRSAEncryption");
        assert_eq!(summary.key, "RSA 2048");
        assert!(summary.sha256.starts_with("sha256:20:de:b3:ad"));
        assert!(summary.sha1.starts_with("sha1:ec:d8:7c"));
        assert!(summary.sha512.starts_with("sha512:8f:44:28"));
        assert_eq!(
            summary.spki_sha256,
            "sha256:XVLkcxvmjAKBT9hL8cZLKhaha9au30Eqkf+qgeb6NPY="
        );
    }

    #[test]
    fn a_ca_signed_chain_names_keys_issuers_and_sans() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost", "127.0.0.1"], KeyKind::Ed25519);
        let summaries = describe_chain_at(&[leaf.der.clone(), ca.der().to_vec()], NOW);
        assert_eq!(summaries.len(), 2);
        assert_eq!(summaries[0].subject, "CN=localhost");
        assert_eq!(summaries[0].issuer, "CN=Test CA");
        assert_eq!(summaries[0].sans, ["localhost", "127.0.0.1"]);
        assert_eq!(summaries[0].key, "Ed25519");
        assert_eq!(summaries[0].signature_algorithm, "ecdsa-with-SHA256");
        assert!(!summaries[0].self_signed);
        assert_eq!(summaries[1].key, "ECDSA P-256");
        assert!(summaries[1].self_signed);
        let rsa = ca.leaf(&["localhost"], KeyKind::Rsa);
        assert_eq!(describe_chain_at(&[rsa.der], NOW)[0].key, "RSA 2048");
    }

    #[test]
    fn an_expired_certificate_has_negative_days_left() {
        let ca = Ca::new("Test CA");
        let leaf = ca.expired_leaf("localhost");
        let summary = &describe_chain_at(&[leaf], NOW)[0];
        assert_eq!(summary.not_after, "2020-02-01 00:00:00 UTC");
        assert!(summary.days_left < -1900, "{}", summary.days_left);
    }

    #[test]
    fn unparsable_certificates_are_described_with_question_marks() {
        let summary = &describe_chain(&[b"junk".to_vec()])[0];
        assert_eq!(summary.subject, "?");
        assert_eq!(summary.key, "?");
        assert_eq!(summary.not_after, "?");
        assert_eq!(summary.spki_sha256, "?");
        assert!(summary.sha256.starts_with("sha256:"));
        assert!(!summary.self_signed && summary.sans.is_empty());
    }
}
