//! TLS client configuration and server verification (RFC 6125 names,
//! RFC 7469-style public-key pins), with Mercurial's trust semantics.
//!
//! [`client_config`] turns a [`TlsPolicy`] (built from hgrc by the settings
//! layer) into a rustls `ClientConfig` for one connection. Its verifier runs
//! inside the handshake, so nothing is sent to a server that has not passed,
//! and leaves a [`Verdict`] (the chain and why it was or was not trusted) in
//! the returned [`VerdictSlot`] for messages, warnings and `hg debugsmtp`.
//! [`describe_chain`] summarises a chain for people.
//!
//! Path validation, name checks and signatures are rustls/webpki's, with
//! the ring provider built explicitly (no process-wide default is
//! installed). This module adds only what Mercurial's semantics need on top:
//! pins, the CA-file-replaces-defaults rule, a self-signed leaf trusted as
//! itself when it is in the CA file, and the common-name fallback for a
//! certificate without subjectAltName. What weakens verification is in the
//! private `danger` module. Before any of it, every certificate the verdict
//! rests on passes one strict profile (`profile`: DER as OpenSSL decodes
//! it, and only extensions whose handling matches OpenSSL's), so that trust
//! is decided from a closed set.
//!
//! A client certificate ([`ClientCert`]) is presented when the caller
//! gives one.
//!
//! Left out: revocation (CRL, OCSP), TLS below 1.2,
//! session resumption (every connection is verified in full).
//!
//! No socket I/O, no SMTP, no Python here.

mod anchor;
mod cert;
mod client_cert;
mod constraints;
mod danger;
mod names;
mod pem;
mod pin;
mod policy;
mod profile;
mod report;
mod roots;
// OpenSSL's way of reading a store: the default store on Unix (but macOS),
// SSL_CERT_FILE and SSL_CERT_DIR on Windows.
#[cfg(any(windows, test, all(unix, not(target_os = "macos"))))]
mod store;
mod suites;
mod verifier;

#[cfg(test)]
mod testutil;

use std::net::Ipv6Addr;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::Resumption;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::ClientConfig;

pub use anchor::AnchorProblem;
pub use client_cert::{ClientCert, ClientCertError};
pub use danger::Dangerous;
pub use names::ascii_host;
pub use pin::{fingerprint, spki_pin, HashAlg, Pin, PinError};
pub use policy::{MinVersion, TlsPolicy, TlsSetupError};
pub use profile::{Fault, Refusal, Role};
pub use report::{describe_chain, describe_chain_at, CertSummary};
pub use roots::{default_roots_source, DefaultRootsSource};
pub use suites::{cipher_suite_name, supported_cipher_suites};
pub use verifier::{Trust, Verdict, VerdictSlot, VerifyFailure};

#[allow(unused_imports)] // for tests and for callers that drive rustls themselves
pub(crate) use verifier::{verifier, Verifier};

/// The rustls config for one connection to `policy.server_name`.
///
/// The verifier stores its [`Verdict`] in the slot on every handshake,
/// success or failure, before returning to rustls. Session resumption is
/// off: a resumed session would skip the certificate check.
pub fn client_config(
    policy: &TlsPolicy,
) -> Result<(Arc<ClientConfig>, VerdictSlot), TlsSetupError> {
    client_config_with_cert(policy, None)
}

/// [`client_config`], presenting `client_cert` when the server asks for one.
pub fn client_config_with_cert(
    policy: &TlsPolicy,
    client_cert: Option<&ClientCert>,
) -> Result<(Arc<ClientConfig>, VerdictSlot), TlsSetupError> {
    let provider = CryptoProvider {
        cipher_suites: suites::select(policy.ciphers.as_deref())?,
        ..ring::default_provider()
    };
    let (verifier, slot) = verifier::verifier(policy)?;
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(policy.min_version.versions())
        // suites::select keeps a TLS 1.3 suite in every list, so this guards
        // against a future change there rather than a reachable setting.
        .map_err(|_| TlsSetupError::NoCiphersForVersion)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(cert) => builder.with_client_cert_resolver(cert.resolver()),
        None => builder.with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    Ok((Arc::new(config), slot))
}

/// The verdict of the handshake's own verifier on `chain` (DER, leaf first,
/// as a server sends it) at `now`, without a connection: for the
/// differential tests that hold it against OpenSSL and Mercurial. Nothing
/// here is weaker than a connection (the same [`verifier::verifier`], the
/// same rustls entry point); only the handshake signature, which needs a
/// peer, is not part of it.
pub fn verify_offline(
    policy: &TlsPolicy,
    chain: &[Vec<u8>],
    now: UnixTime,
) -> Result<Verdict, TlsSetupError> {
    let (verifier, slot) = verifier::verifier(policy)?;
    let name = server_name(policy)?;
    let certs: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Ok(Verdict {
            chain: Vec::new(),
            result: Err(VerifyFailure::Other("no certificate".to_owned())),
        });
    };
    if let Some(bits) = short_rsa_key(leaf) {
        // In a handshake the server's signature is checked with ring, which
        // refuses RSA keys under 2048 bits; without a handshake the same
        // refusal is stated here.
        return Ok(Verdict {
            chain: chain.to_vec(),
            result: Err(VerifyFailure::Other(format!(
                "the server's RSA key has {bits} bits; the handshake needs 2048 or more"
            ))),
        });
    }
    let passed = verifier
        .verify_server_cert(leaf, intermediates, &name, &[], now)
        .is_ok();
    let verdict = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    // The verifier leaves a verdict on every call; should that ever change,
    // a missing one must not read as a pass.
    Ok(verdict.unwrap_or(Verdict {
        chain: chain.to_vec(),
        result: Err(VerifyFailure::Other(format!(
            "no verdict (passed: {passed})"
        ))),
    }))
}

/// The size of the certificate's RSA key when it is under 2048 bits.
fn short_rsa_key(der: &[u8]) -> Option<usize> {
    let parsed = cert::parse(der)?;
    match parsed.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => {
            Some(rsa.key_size())
        }
        _ => None,
    }
}

/// The rustls server name for `policy.server_name`: an IP literal becomes an
/// IP address (an IPv6 literal may also be written in brackets), anything
/// else must be a valid DNS name, an internationalised one in its UTS-46
/// ASCII form ([`ascii_host`]).
pub fn server_name(policy: &TlsPolicy) -> Result<ServerName<'static>, TlsSetupError> {
    let bad = || TlsSetupError::BadServerName {
        name: policy.server_name.clone(),
    };
    let host = policy.server_name.as_str();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .filter(|h| h.parse::<Ipv6Addr>().is_ok())
        .unwrap_or(host);
    let host = ascii_host(host).ok_or_else(bad)?;
    ServerName::try_from(host).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use rustls::{CipherSuite, ProtocolVersion};

    use super::testutil::{self, handshake, Ca, KeyKind, Server, TempFile};
    use super::*;

    fn policy_trusting(file: &TempFile) -> TlsPolicy {
        TlsPolicy {
            ca_file: Some(file.path().to_path_buf()),
            ..testutil::policy("localhost")
        }
    }

    fn verdict(slot: &VerdictSlot) -> Verdict {
        slot.lock()
            .unwrap()
            .clone()
            .expect("the verifier left a verdict")
    }

    #[test]
    fn server_name_turns_ip_literals_into_addresses() {
        for (host, is_ip) in [
            ("localhost", false),
            ("mail.example.org", false),
            ("127.0.0.1", true),
            ("::1", true),
            ("[::1]", true),
            ("bücher.example", false),
        ] {
            let name = server_name(&testutil::policy(host)).unwrap();
            assert_eq!(matches!(name, ServerName::IpAddress(_)), is_ip, "{host}");
        }
    }

    #[test]
    fn server_name_refuses_what_is_neither_a_host_nor_an_address() {
        for host in [
            "",
            "bad name",
            "[localhost]",
            "mail..example.org",
            "bü cher.example",
        ] {
            let err = server_name(&testutil::policy(host)).unwrap_err();
            assert_eq!(
                err,
                TlsSetupError::BadServerName {
                    name: host.to_owned()
                }
            );
        }
    }

    #[test]
    fn a_handshake_with_a_ca_signed_ecdsa_server_is_verified_over_tls13_and_tls12() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        for (server, version) in [
            (Server::new(&leaf), ProtocolVersion::TLSv1_3),
            (Server::new(&leaf).tls12_only(), ProtocolVersion::TLSv1_2),
        ] {
            let (config, slot) = client_config(&policy_trusting(&file)).unwrap();
            let done = handshake(config, "localhost", &server).unwrap();
            assert_eq!(done.version, version);
            let verdict = verdict(&slot);
            assert_eq!(verdict.result, Ok(Trust::CaChain));
            assert_eq!(verdict.leaf(), leaf.der.as_slice());
        }
    }

    #[test]
    fn a_handshake_with_an_rsa_server_checks_pss_and_pkcs1_signatures() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost", "127.0.0.1"], KeyKind::Rsa);
        for server in [Server::new(&leaf), Server::new(&leaf).tls12_only()] {
            let policy = TlsPolicy {
                server_name: "127.0.0.1".into(),
                ..policy_trusting(&file)
            };
            let (config, slot) = client_config(&policy).unwrap();
            handshake(config, "127.0.0.1", &server).unwrap();
            assert_eq!(verdict(&slot).result, Ok(Trust::CaChain));
        }
    }

    #[test]
    fn a_handshake_with_an_untrusted_server_fails_and_leaves_the_reason() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let evil = Ca::new("Evil CA");
        let leaf = evil.leaf(&["localhost"], KeyKind::Ecdsa);
        let (config, slot) = client_config(&policy_trusting(&file)).unwrap();
        let err = handshake(config, "localhost", &Server::new(&leaf)).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );
        assert_eq!(
            verdict(&slot).result,
            Err(VerifyFailure::UnknownIssuer {
                issuer: "CN=Evil CA".into()
            })
        );
    }

    #[test]
    fn inspect_only_lets_a_failing_handshake_complete_with_the_failure_recorded() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["mail.example.org"], KeyKind::Ecdsa);
        let policy = TlsPolicy {
            dangerous: Dangerous::none().complete_failed_handshakes_for_inspection(),
            ..policy_trusting(&file)
        };
        let (config, slot) = client_config(&policy).unwrap();
        handshake(config, "localhost", &Server::new(&leaf)).unwrap();
        let failure = verdict(&slot).result.unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is for mail.example.org, not localhost"
        );
    }

    #[test]
    fn a_self_signed_ca_true_server_in_the_ca_file_completes_a_real_handshake() {
        let key = KeyKind::Ecdsa.key();
        let der = testutil::openssl_style_self_signed(&key, &["localhost"]);
        let file = TempFile::new(&testutil::der_to_pem(&der));
        let policy = TlsPolicy {
            ca_file: Some(file.path().to_path_buf()),
            ..testutil::policy("localhost")
        };
        let (config, slot) = client_config(&policy).unwrap();
        let server = Server::with_chain(vec![der], &key);
        handshake(config, "localhost", &server).unwrap();
        assert_eq!(verdict(&slot).result, Ok(Trust::SelfInCaFile));
    }

    #[test]
    fn a_version_1_self_signed_server_in_the_ca_file_completes_a_real_handshake() {
        // Stock Mercurial (OpenSSL) trusts it as itself; webpki cannot read a
        // v1 certificate, so its handshake signature is checked with its key.
        let der = testutil::pem_to_der(testutil::V1_PEM);
        let key = testutil::v1_key();
        let file = TempFile::new(testutil::V1_PEM);
        for tls12 in [false, true] {
            let (config, slot) = client_config(&policy_trusting(&file)).unwrap();
            let server = Server::with_chain(vec![der.clone()], &key);
            let server = if tls12 { server.tls12_only() } else { server };
            handshake(config, "localhost", &server).unwrap();
            assert_eq!(verdict(&slot).result, Ok(Trust::CommonNameFallback));
        }
        // Signed by another key, it fails on either version.
        for tls12 in [false, true] {
            let (config, _) = client_config(&policy_trusting(&file)).unwrap();
            let server = Server::with_chain(vec![der.clone()], &KeyKind::Ecdsa.key());
            let server = if tls12 { server.tls12_only() } else { server };
            assert!(handshake(config, "localhost", &server).is_err());
        }
        // Not in the CA file, it is refused in words.
        let other = TempFile::new(&Ca::new("Test CA").pem());
        let (config, slot) = client_config(&policy_trusting(&other)).unwrap();
        assert!(handshake(config, "localhost", &Server::with_chain(vec![der], &key)).is_err());
        assert_eq!(
            verdict(&slot).result.unwrap_err().to_string(),
            "certificate is an X.509 version 1 certificate, which is trusted only as itself, \
             when it is in your CA file"
        );
    }

    #[test]
    fn insecure_mode_still_refuses_a_server_without_the_certificates_key() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let impostor_key = KeyKind::Ecdsa.key();
        let server = Server::with_chain(vec![leaf.der.clone()], &impostor_key);
        for version in [MinVersion::Tls12, MinVersion::Tls13] {
            let policy = TlsPolicy {
                dangerous: Dangerous::none().skip_ca_and_name_checks(),
                min_version: version,
                ..testutil::policy("localhost")
            };
            let (config, slot) = client_config(&policy).unwrap();
            let server = if version == MinVersion::Tls12 {
                server.clone().tls12_only()
            } else {
                server.clone()
            };
            let err = handshake(config, "localhost", &server).unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
                ),
                "{err:?}"
            );
            assert_eq!(verdict(&slot).result, Ok(Trust::Insecure));
        }
    }

    #[test]
    fn a_tls13_minimum_refuses_a_tls12_only_server() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let policy = TlsPolicy {
            min_version: MinVersion::Tls13,
            ..policy_trusting(&file)
        };
        let (config, _) = client_config(&policy).unwrap();
        assert!(handshake(config, "localhost", &Server::new(&leaf).tls12_only()).is_err());
    }

    #[test]
    fn configured_ciphers_are_the_ones_offered() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let server = Server::new(&leaf).tls12_only();
        let policy = TlsPolicy {
            ciphers: Some("ECDHE-ECDSA-CHACHA20-POLY1305".into()),
            ..policy_trusting(&file)
        };
        let (config, _) = client_config(&policy).unwrap();
        let done = handshake(config, "localhost", &server).unwrap();
        assert_eq!(
            done.suite,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        );
        // An RSA-only suite cannot serve an ECDSA certificate.
        let policy = TlsPolicy {
            ciphers: Some("ECDHE-RSA-AES128-GCM-SHA256".into()),
            ..policy
        };
        let (config, _) = client_config(&policy).unwrap();
        assert!(handshake(config, "localhost", &server).is_err());
        // TLS 1.3 stays available when only 1.2 suites are named.
        let (config, _) = client_config(&policy).unwrap();
        let done = handshake(config, "localhost", &Server::new(&leaf)).unwrap();
        assert_eq!(done.version, ProtocolVersion::TLSv1_3);
    }

    #[test]
    fn client_config_reports_setup_errors() {
        let policy = TlsPolicy {
            ciphers: Some("RC4-MD5".into()),
            ..testutil::policy("localhost")
        };
        assert!(matches!(
            client_config(&policy),
            Err(TlsSetupError::UnknownCipher { .. })
        ));
        let policy = TlsPolicy {
            ca_file: Some(std::env::temp_dir().join("securesmtp-missing-ca.pem")),
            ..testutil::policy("localhost")
        };
        assert!(matches!(
            client_config(&policy),
            Err(TlsSetupError::CaFileMissing { .. })
        ));
    }

    #[test]
    fn a_verifier_refuses_a_connection_to_another_host_than_configured() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost", "mail.example.org"], KeyKind::Ecdsa);
        let (config, slot) = client_config(&policy_trusting(&file)).unwrap();
        assert!(handshake(config, "mail.example.org", &Server::new(&leaf)).is_err());
        let failure = verdict(&slot).result.unwrap_err();
        assert_eq!(
            failure.to_string(),
            "the connection is to mail.example.org but was configured for localhost"
        );
    }
}
