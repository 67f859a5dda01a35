//! A TLS client certificate, for servers that authenticate the client by
//! certificate (often with SASL EXTERNAL afterwards).
//!
//! Certificate and key are PEM (the key in the certificate file or its own
//! file). The key is loaded into a signing key at once, so a key that does
//! not match the certificate, an unsupported key type or an encrypted key
//! is a setup error before any connection, never a handshake failure.
//!
//! Left out: encrypted keys (there is no passphrase prompt; decrypt the
//! key, e.g. `openssl pkey -in enc.pem -out key.pem`), PKCS#12 files,
//! hardware tokens.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

/// A client certificate chain with its signing key. `Debug` shows neither.
#[derive(Clone)]
pub struct ClientCert {
    key: Arc<CertifiedKey>,
}

/// Why a client certificate cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCertError {
    /// A file cannot be read.
    Unreadable {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// The certificate file has no `CERTIFICATE` section.
    NoCertificate {
        /// The path as given.
        path: String,
    },
    /// No private key where one was expected.
    NoKey {
        /// The path as given.
        path: String,
    },
    /// The key is encrypted with a passphrase.
    Encrypted {
        /// The path as given.
        path: String,
    },
    /// The key is of a type rustls cannot sign with, or does not belong to
    /// the certificate.
    BadKey {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for ClientCertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCertError::Unreadable { path, reason } => {
                write!(f, "cannot read client certificate file {path}: {reason}")
            }
            ClientCertError::NoCertificate { path } => {
                write!(f, "no PEM certificate in client certificate file {path}")
            }
            ClientCertError::NoKey { path } => write!(f, "no PEM private key in {path}"),
            ClientCertError::Encrypted { path } => write!(
                f,
                "the client key in {path} is encrypted with a passphrase, which is not supported; \
                 decrypt it (openssl pkey -in {path} -out KEY) and keep the result private"
            ),
            ClientCertError::BadKey { path, reason } => {
                write!(f, "the client key in {path} cannot be used: {reason}")
            }
        }
    }
}

impl std::error::Error for ClientCertError {}

impl ClientCert {
    /// Loads the chain (leaf first) from `cert` and the key from `key`, or
    /// from `cert` too when `key` is `None`.
    pub fn load(cert: &Path, key: Option<&Path>) -> Result<ClientCert, ClientCertError> {
        let cert_pem = read(cert)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(ClientCertError::NoCertificate { path: shown(cert) });
        }
        let key_path = key.unwrap_or(cert);
        let key_pem = match key {
            Some(path) => read(path)?,
            None => cert_pem,
        };
        if is_encrypted(&key_pem) {
            return Err(ClientCertError::Encrypted {
                path: shown(key_path),
            });
        }
        let der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| ClientCertError::NoKey {
            path: shown(key_path),
        })?;
        let bad = |reason: String| ClientCertError::BadKey {
            path: shown(key_path),
            reason,
        };
        let signer = ring::default_provider()
            .key_provider
            .load_private_key(der)
            .map_err(|e| bad(e.to_string()))?;
        let certified = CertifiedKey::new(chain, signer);
        certified.keys_match().map_err(|e| bad(e.to_string()))?;
        Ok(ClientCert {
            key: Arc::new(certified),
        })
    }

    /// The resolver rustls asks during the handshake: always this certificate.
    pub(crate) fn resolver(&self) -> Arc<dyn ResolvesClientCert> {
        Arc::new(Always(self.key.clone()))
    }
}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCert")
            .field("certificates", &self.key.cert.len())
            .finish_non_exhaustive()
    }
}

struct Always(Arc<CertifiedKey>);

impl fmt::Debug for Always {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientCertResolver")
    }
}

impl ResolvesClientCert for Always {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ClientCertError> {
    std::fs::read(path).map_err(|e| ClientCertError::Unreadable {
        path: shown(path),
        reason: e.to_string(),
    })
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY`, or the legacy OpenSSL form with a
/// `Proc-Type: 4,ENCRYPTED` header (which the PEM reader would skip).
fn is_encrypted(pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(pem);
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{der_to_pem, Ca, KeyKind, Leaf, TempFile};
    use super::*;

    fn pems(leaf: &Leaf) -> (String, String) {
        (der_to_pem(&leaf.der), leaf.key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_load_from_one_file_or_two() {
        let ca = Ca::new("Client CA");
        let (cert_pem, key_pem) = pems(&ca.leaf(&["alice.example"], KeyKind::Ecdsa));
        let both = TempFile::new(&format!("{cert_pem}{key_pem}"));
        let cert = TempFile::new(&cert_pem);
        let key = TempFile::new(&key_pem);
        assert!(ClientCert::load(both.path(), None).is_ok());
        let loaded = ClientCert::load(cert.path(), Some(key.path())).unwrap();
        assert_eq!(format!("{loaded:?}"), "ClientCert { certificates: 1, .. }");
    }

    #[test]
    fn unusable_files_are_setup_errors() {
        let ca = Ca::new("Client CA");
        let (cert_pem, key_pem) = pems(&ca.leaf(&["alice.example"], KeyKind::Ecdsa));
        let (_, other_key) = pems(&ca.leaf(&["bob.example"], KeyKind::Ecdsa));
        let cert = TempFile::new(&cert_pem);
        let wrong_key = TempFile::new(&other_key);
        assert!(matches!(
            ClientCert::load(cert.path(), Some(wrong_key.path())),
            Err(ClientCertError::BadKey { .. })
        ));
        assert!(matches!(
            ClientCert::load(cert.path(), None),
            Err(ClientCertError::NoKey { .. })
        ));
        let key_only = TempFile::new(&key_pem);
        assert!(matches!(
            ClientCert::load(key_only.path(), None),
            Err(ClientCertError::NoCertificate { .. })
        ));
        assert!(matches!(
            ClientCert::load(Path::new("/nonexistent/cert.pem"), None),
            Err(ClientCertError::Unreadable { .. })
        ));
        let encrypted = TempFile::new(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let err = ClientCert::load(cert.path(), Some(encrypted.path())).unwrap_err();
        assert!(matches!(err, ClientCertError::Encrypted { .. }));
        assert!(err.to_string().contains("encrypted with a passphrase"));
        let legacy = TempFile::new(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        );
        assert!(matches!(
            ClientCert::load(cert.path(), Some(legacy.path())),
            Err(ClientCertError::Encrypted { .. })
        ));
    }
}
