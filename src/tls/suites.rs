//! `hostsecurity.ciphers`: choosing cipher suites by name.
//!
//! Names are split on `:`, `,` or whitespace and compared as OpenSSL
//! compares them, case and all: a TLS 1.2 suite by its OpenSSL name
//! (`ECDHE-RSA-AES128-GCM-SHA256`), a TLS 1.3 suite by the name OpenSSL
//! gives it (`TLS_AES_128_GCM_SHA256`). An unknown name is an error listing
//! the supported names; it is never ignored. OpenSSL keywords and operators
//! (`HIGH`, `!aNULL`, `@STRENGTH`) are not understood: the ring provider's
//! suites are all modern AEAD suites, so name the ones you want.
//!
//! Stock Mercurial hands the value to `SSLContext.set_ciphers`, which sets
//! TLS 1.2 suites only and refuses a list with none it knows; so does this
//! module (a list of TLS 1.3 suites alone, or of names in another case, is
//! a config error in both). As with OpenSSL, a list that names only TLS 1.2
//! suites keeps all TLS 1.3 suites; naming TLS 1.3 suites as well restricts
//! TLS 1.3 to them (stricter than stock, which ignores them there). An empty
//! value means the provider's defaults, as an empty setting does in
//! Mercurial.

use rustls::crypto::ring;
use rustls::{CipherSuite, SupportedCipherSuite};

use super::policy::TlsSetupError;

/// OpenSSL names of the ring provider's suites (IANA names for TLS 1.3, as
/// OpenSSL uses them).
const OPENSSL_NAMES: &[(CipherSuite, &str)] = &[
    (
        CipherSuite::TLS13_AES_256_GCM_SHA384,
        "TLS_AES_256_GCM_SHA384",
    ),
    (
        CipherSuite::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_128_GCM_SHA256",
    ),
    (
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "ECDHE-RSA-AES256-GCM-SHA384",
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
    (
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        "ECDHE-RSA-CHACHA20-POLY1305",
    ),
];

/// The OpenSSL name of a suite, or its rustls name for one not in the table.
pub fn cipher_suite_name(suite: &SupportedCipherSuite) -> String {
    let id = suite.suite();
    OPENSSL_NAMES
        .iter()
        .find(|(known, _)| *known == id)
        .map_or_else(|| format!("{id:?}"), |(_, name)| (*name).to_owned())
}

/// The OpenSSL names of every suite `hostsecurity.ciphers` may name.
pub fn supported_cipher_suites() -> Vec<String> {
    ring::ALL_CIPHER_SUITES
        .iter()
        .map(cipher_suite_name)
        .collect()
}

/// The suites to offer for a `hostsecurity.ciphers` value, in the order
/// written (duplicates dropped); `None` or an empty value: the defaults.
pub(crate) fn select(ciphers: Option<&str>) -> Result<Vec<SupportedCipherSuite>, TlsSetupError> {
    let names: Vec<&str> = ciphers
        .unwrap_or_default()
        .split(|c: char| c == ':' || c == ',' || c.is_whitespace())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(ring::DEFAULT_CIPHER_SUITES.to_vec());
    }
    let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
    for name in names {
        let suite = find(name).ok_or_else(|| TlsSetupError::UnknownCipher {
            name: name.to_owned(),
            supported: supported_cipher_suites(),
        })?;
        if !chosen.iter().any(|c| c.suite() == suite.suite()) {
            chosen.push(suite);
        }
    }
    if !chosen.iter().any(|s| s.tls13().is_none()) {
        return Err(TlsSetupError::NoTls12Cipher {
            supported: supported_cipher_suites(),
        });
    }
    if !chosen.iter().any(|s| s.tls13().is_some()) {
        let tls13 = ring::DEFAULT_CIPHER_SUITES
            .iter()
            .filter(|s| s.tls13().is_some());
        chosen.splice(0..0, tls13.copied());
    }
    Ok(chosen)
}

/// The suite `name` is OpenSSL's name for, compared case-sensitively as
/// OpenSSL's cipher list compares it.
fn find(name: &str) -> Option<SupportedCipherSuite> {
    ring::ALL_CIPHER_SUITES
        .iter()
        .copied()
        .find(|suite| cipher_suite_name(suite) == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(suites: &[SupportedCipherSuite]) -> Vec<CipherSuite> {
        suites.iter().map(|s| s.suite()).collect()
    }

    #[test]
    fn no_or_empty_cipher_setting_means_the_provider_defaults() {
        let defaults = ids(ring::DEFAULT_CIPHER_SUITES);
        assert_eq!(ids(&select(None).unwrap()), defaults);
        assert_eq!(ids(&select(Some(" : ")).unwrap()), defaults);
    }

    #[test]
    fn every_provider_suite_has_an_openssl_name() {
        let names = supported_cipher_suites();
        assert_eq!(names.len(), ring::ALL_CIPHER_SUITES.len());
        assert!(names
            .iter()
            .all(|n| !n.starts_with("TLS13_") && !n.contains("_WITH_")));
    }

    #[test]
    fn names_are_openssls_and_case_sensitive_as_in_stock() {
        let rsa12 = CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;
        let chosen = ids(&select(Some("ECDHE-RSA-AES128-GCM-SHA256")).unwrap());
        assert_eq!(chosen.last(), Some(&rsa12));
        // Stock's set_ciphers refuses each of these ("No cipher can be
        // selected").
        for name in [
            "ecdhe-rsa-aes128-gcm-sha256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "tls_aes_128_gcm_sha256",
            "TLS13_AES_128_GCM_SHA256",
        ] {
            assert!(
                matches!(select(Some(name)), Err(TlsSetupError::UnknownCipher { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn a_list_of_tls13_suites_alone_is_refused_as_stock_refuses_it() {
        for list in [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        ] {
            assert!(
                matches!(select(Some(list)), Err(TlsSetupError::NoTls12Cipher { .. })),
                "{list}"
            );
        }
    }

    #[test]
    fn a_list_of_only_tls12_suites_keeps_the_tls13_suites_first() {
        let chosen = select(Some(
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384, ECDHE-ECDSA-CHACHA20-POLY1305",
        ))
        .unwrap();
        let tls13 = chosen.iter().filter(|s| s.tls13().is_some()).count();
        assert_eq!(tls13, 3);
        assert_eq!(
            ids(&chosen[3..]),
            [
                CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
            ]
        );
    }

    #[test]
    fn naming_a_tls13_suite_restricts_tls13_to_it() {
        let chosen = select(Some(
            "TLS_CHACHA20_POLY1305_SHA256 ECDHE-RSA-AES128-GCM-SHA256",
        ))
        .unwrap();
        assert_eq!(
            ids(&chosen),
            [
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            ]
        );
    }

    #[test]
    fn an_unknown_cipher_is_an_error_listing_the_supported_names() {
        for name in ["RC4-MD5", "HIGH", "!aNULL"] {
            let err = select(Some(&format!("ECDHE-RSA-AES128-GCM-SHA256:{name}"))).unwrap_err();
            let TlsSetupError::UnknownCipher {
                name: bad,
                supported,
            } = err
            else {
                panic!("expected UnknownCipher for {name}")
            };
            assert_eq!(bad, name);
            assert!(supported.contains(&"ECDHE-ECDSA-CHACHA20-POLY1305".to_owned()));
            assert!(supported.contains(&"TLS_AES_128_GCM_SHA256".to_owned()));
        }
    }
}
