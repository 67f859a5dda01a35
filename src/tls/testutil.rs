//! Test certificates (made with rcgen at test time), temporary CA files and
//! an in-memory handshake against a rustls server.
//!
//! testdata/hg-pub.pem is Mercurial 7.2.4's tests/sslcerts/pub.pem: the
//! self-signed, CA:TRUE, CN-only certificate of Mercurial's own TLS tests.
//! testdata/rsa2048.key.pem is a throwaway RSA key (`openssl genpkey`),
//! because rcgen with ring cannot generate RSA keys.
//! testdata/v1-localhost.pem is an X.509 version 1 certificate (no
//! extensions), self-signed, CN=localhost, valid to 2126, with its throwaway
//! P-256 key in v1-localhost.key.pem (`openssl x509 -req -signkey`), because
//! rcgen only makes version 3 certificates.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::danger::Dangerous;

use base64::Engine as _;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{
    CipherSuite, ClientConfig, ClientConnection, ConnectionCommon, ProtocolVersion, ServerConfig,
    ServerConnection,
};

use super::pin::{HashAlg, Pin};
use super::policy::{MinVersion, TlsPolicy};

pub(crate) const HG_PUB_PEM: &str = include_str!("testdata/hg-pub.pem");
const RSA_KEY_PEM: &str = include_str!("testdata/rsa2048.key.pem");
pub(crate) const V1_PEM: &str = include_str!("testdata/v1-localhost.pem");
const V1_KEY_PEM: &str = include_str!("testdata/v1-localhost.key.pem");

/// The key of [`V1_PEM`].
pub(crate) fn v1_key() -> KeyPair {
    KeyPair::from_pem(V1_KEY_PEM).expect("test key")
}

/// A policy for `host` with the defaults the settings layer uses.
pub(crate) fn policy(host: &str) -> TlsPolicy {
    TlsPolicy {
        server_name: host.to_owned(),
        ca_file: None,
        load_default_roots: true,
        pins: Vec::new(),
        min_version: MinVersion::Tls12,
        ciphers: None,
        dangerous: Dangerous::none(),
    }
}

/// A pin no certificate matches.
pub(crate) fn any_pin() -> Pin {
    Pin::Cert {
        alg: HashAlg::Sha256,
        digest: vec![0; 32],
    }
}

pub(crate) fn pem_to_der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("test PEM holds a certificate")
        .to_vec()
}

pub(crate) fn der_to_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Midnight UTC of a date, as rustls passes the time to a verifier.
pub(crate) fn unix(year: i32, month: u8, day: u8) -> UnixTime {
    let secs = date_time_ymd(year, month, day).unix_timestamp();
    UnixTime::since_unix_epoch(Duration::from_secs(secs.try_into().expect("after 1970")))
}

/// The time the verifier tests run at: inside every "valid" certificate.
pub(crate) fn now() -> UnixTime {
    unix(2025, 6, 1)
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyKind {
    Ecdsa,
    Rsa,
    Ed25519,
}

impl KeyKind {
    pub(crate) fn key(self) -> KeyPair {
        match self {
            Self::Ecdsa => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Self::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            Self::Rsa => KeyPair::from_pem(RSA_KEY_PEM),
        }
        .expect("test key")
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

/// A CA's parameters: CA:TRUE, keyCertSign, valid 2020 to 2099.
pub(crate) fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    params
}

/// A server certificate's parameters: the SANs, CN = the first SAN,
/// serverAuth, valid 2020 to 2099.
pub(crate) fn leaf_params(sans: &[&str]) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(sans.clone()).expect("valid test SANs");
    params.distinguished_name = dn(sans.first().map_or("server", String::as_str));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    params
}

pub(crate) fn self_signed(params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
    params.self_signed(key).expect("self-signed").der().to_vec()
}

/// A self-signed ECDSA server certificate for `sans`.
pub(crate) fn leaf_with_sans(sans: &[&str]) -> Vec<u8> {
    self_signed(&leaf_params(sans), &KeyKind::Ecdsa.key())
}

/// A self-signed certificate for `host` issued on January 1st of `year`.
pub(crate) fn self_signed_with(key: &KeyPair, host: &str, year: i32) -> Vec<u8> {
    let mut params = leaf_params(&[host]);
    params.not_before = date_time_ymd(year, 1, 1);
    self_signed(&params, key)
}

/// What `openssl req -x509 -addext subjectAltName=...` makes: self-signed,
/// CA:TRUE, no key usage limits.
pub(crate) fn openssl_style_self_signed(key: &KeyPair, sans: &[&str]) -> Vec<u8> {
    let mut params = leaf_params(sans);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.extended_key_usages.clear();
    params.key_usages.clear();
    params.use_authority_key_identifier_extension = false;
    self_signed(&params, key)
}

/// Like Mercurial's test certificate: self-signed, CA:TRUE, no SAN, CN only.
pub(crate) fn no_san_self_signed(cn: &str) -> Vec<u8> {
    let mut params = ca_params(cn);
    params.key_usages.clear();
    self_signed(&params, &KeyKind::Ecdsa.key())
}

/// A certificate authority (ECDSA P-256) valid 2020 to 2099.
pub(crate) struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A server certificate and its key.
pub(crate) struct Leaf {
    pub(crate) der: Vec<u8>,
    pub(crate) key: KeyPair,
}

impl Ca {
    pub(crate) fn new(cn: &str) -> Ca {
        let params = ca_params(cn);
        let key = KeyKind::Ecdsa.key();
        Ca {
            der: self_signed(&params, &key),
            issuer: Issuer::new(params, key),
        }
    }

    /// A self-signed CA (or any self-signed certificate that signs others)
    /// made from `params`.
    pub(crate) fn from_params(params: CertificateParams) -> Ca {
        let key = KeyKind::Ecdsa.key();
        Ca {
            der: self_signed(&params, &key),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one.
    pub(crate) fn intermediate(&self, cn: &str) -> Ca {
        self.intermediate_from(ca_params(cn))
    }

    /// An intermediate made from `params`, signed by this one.
    pub(crate) fn intermediate_from(&self, params: CertificateParams) -> Ca {
        let key = KeyKind::Ecdsa.key();
        Ca {
            der: self.sign(&params, &key),
            issuer: Issuer::new(params, key),
        }
    }

    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn pem(&self) -> String {
        der_to_pem(&self.der)
    }

    pub(crate) fn sign(&self, params: &CertificateParams, key: &KeyPair) -> Vec<u8> {
        params
            .signed_by(key, &self.issuer)
            .expect("signed")
            .der()
            .to_vec()
    }

    pub(crate) fn leaf(&self, sans: &[&str], kind: KeyKind) -> Leaf {
        let key = kind.key();
        Leaf {
            der: self.sign(&leaf_params(sans), &key),
            key,
        }
    }

    /// A leaf for `host` valid from 2020-01-01 to 2020-02-01.
    pub(crate) fn expired_leaf(&self, host: &str) -> Vec<u8> {
        let mut params = leaf_params(&[host]);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2020, 2, 1);
        self.sign(&params, &KeyKind::Ecdsa.key())
    }
}

/// A PEM file in the temporary directory, removed when dropped.
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    pub(crate) fn new(contents: &str) -> TempFile {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "securesmtp-tls-{}-{}.pem",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("temporary CA file");
        TempFile(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A rustls server that presents `chain` and signs with `key`, which need
/// not belong together (to test that the client checks the signature).
#[derive(Clone, Debug)]
pub(crate) struct Server {
    certified: Arc<CertifiedKey>,
    tls12_only: bool,
}

impl Server {
    pub(crate) fn new(leaf: &Leaf) -> Server {
        Server::with_chain(vec![leaf.der.clone()], &leaf.key)
    }

    pub(crate) fn with_chain(chain: Vec<Vec<u8>>, key: &KeyPair) -> Server {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let key: Arc<dyn SigningKey> = ring::default_provider()
            .key_provider
            .load_private_key(key)
            .expect("usable test key");
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        Server {
            certified: Arc::new(CertifiedKey::new(chain, key)),
            tls12_only: false,
        }
    }

    pub(crate) fn tls12_only(mut self) -> Server {
        self.tls12_only = true;
        self
    }

    fn config(&self) -> Arc<ServerConfig> {
        let versions: &[_] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("server versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(Arc::clone(&self.certified))));
        Arc::new(config)
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// What a finished handshake negotiated.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) version: ProtocolVersion,
    pub(crate) suite: CipherSuite,
}

/// Runs a handshake between a client with `config` connecting to `host` and
/// `server`, in memory. The error is the client's if it failed, else the
/// server's.
pub(crate) fn handshake(
    config: Arc<ClientConfig>,
    host: &str,
    server: &Server,
) -> Result<Done, rustls::Error> {
    let name = ServerName::try_from(host.to_owned()).expect("test host name");
    let mut client = ClientConnection::new(config, name)?;
    let mut server = ServerConnection::new(server.config())?;
    for _ in 0..16 {
        let to_server = drain(&mut client);
        if let Err(server_error) = feed(&mut server, &to_server) {
            let alert = drain(&mut server);
            return Err(feed(&mut client, &alert).err().unwrap_or(server_error));
        }
        let to_client = drain(&mut server);
        feed(&mut client, &to_client)?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(Done {
                version: client.protocol_version().expect("negotiated"),
                suite: client
                    .negotiated_cipher_suite()
                    .expect("negotiated")
                    .suite(),
            });
        }
    }
    panic!("the in-memory handshake did not finish");
}

fn drain<D>(conn: &mut ConnectionCommon<D>) -> Vec<u8> {
    let mut bytes = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut bytes).expect("writing to a Vec");
    }
    bytes
}

fn feed<D>(conn: &mut ConnectionCommon<D>, mut bytes: &[u8]) -> Result<(), rustls::Error> {
    while !bytes.is_empty() {
        conn.read_tls(&mut bytes).expect("reading from a slice");
        conn.process_new_packets()?;
    }
    Ok(())
}
