//! What the user asked for, and what can go wrong turning it into a config.

use std::fmt;
use std::path::PathBuf;

use rustls::SupportedProtocolVersion;

use super::danger::Dangerous;
use super::pin::Pin;

/// The lowest TLS version offered (`hostsecurity.minimumprotocol`). TLS 1.0
/// and 1.1 are not offered at all; the settings layer refuses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 or 1.3 (the default).
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl MinVersion {
    /// The versions offered, best first.
    pub(crate) fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        const TLS12_UP: &[&SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        match self {
            Self::Tls12 => TLS12_UP,
            Self::Tls13 => TLS13_ONLY,
        }
    }
}

/// How one connection's server is verified. Built by the settings layer
/// from Mercurial's configuration for `server_name`.
#[derive(Clone, Debug)]
pub struct TlsPolicy {
    /// The host as the user wrote `smtp.host`: a DNS name or an IP literal
    /// (IPv6 without brackets).
    pub server_name: String,
    /// A PEM bundle (`hostsecurity.<host>:verifycertsfile` or `web.cacerts`);
    /// when set it replaces the default roots.
    pub ca_file: Option<PathBuf>,
    /// False for `devel.disableloaddefaultcerts`.
    pub load_default_roots: bool,
    /// Certificate and public-key pins. When any are set, they replace the
    /// CA and name checks (one match passes), even with `--insecure`.
    pub pins: Vec<Pin>,
    /// What the user chose to weaken (`--insecure`, `hg debugsmtp`).
    pub dangerous: Dangerous,
    /// The lowest TLS version offered.
    pub min_version: MinVersion,
    /// The raw `hostsecurity.ciphers` value; see [`super::suites`].
    pub ciphers: Option<String>,
}

/// A configuration that cannot become a TLS client config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSetupError {
    /// The CA file does not exist.
    CaFileMissing {
        /// The path as configured.
        path: String,
    },
    /// The CA file exists but cannot be read or is not PEM.
    CaFileUnreadable {
        /// The path as configured.
        path: String,
        /// Why.
        reason: String,
    },
    /// The CA file has no `CERTIFICATE` section.
    CaFileHasNoCertificates {
        /// The path as configured.
        path: String,
    },
    /// A name in `hostsecurity.ciphers` is not a supported suite.
    UnknownCipher {
        /// The name as written.
        name: String,
        /// The supported suites, OpenSSL-style names.
        supported: Vec<String>,
    },
    /// `hostsecurity.ciphers` names no TLS 1.2 suite (stock's
    /// `set_ciphers` refuses such a list).
    NoTls12Cipher {
        /// The supported suites, OpenSSL-style names.
        supported: Vec<String>,
    },
    /// No configured suite can be used with the offered TLS versions.
    NoCiphersForVersion,
    /// The host is neither a DNS name nor an IP address.
    BadServerName {
        /// The host as configured.
        name: String,
    },
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CaFileMissing { path } => write!(f, "CA file {path} does not exist"),
            // Worded as stock Mercurial's abort ("error loading CA file").
            Self::CaFileUnreadable { path, reason } => {
                write!(f, "error loading CA file {path}: {reason}")
            }
            Self::CaFileHasNoCertificates { path } => write!(
                f,
                "error loading CA file {path}: no PEM certificate found (file is empty or \
                 malformed?)"
            ),
            Self::UnknownCipher { name, supported } => write!(
                f,
                "unknown or unsupported cipher suite '{name}' (supported: {})",
                supported.join(", ")
            ),
            Self::NoTls12Cipher { supported } => write!(
                f,
                "no TLS 1.2 cipher suite named (as in stock Mercurial, the list must name at \
                 least one, by its OpenSSL name; supported: {})",
                supported.join(", ")
            ),
            Self::NoCiphersForVersion => f.write_str(
                "none of the configured cipher suites can be used with the allowed TLS versions",
            ),
            Self::BadServerName { name } => {
                write!(f, "'{name}' is not a valid host name or IP address")
            }
        }
    }
}

impl std::error::Error for TlsSetupError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls12_minimum_offers_both_versions_and_tls13_only_itself() {
        assert_eq!(MinVersion::Tls12.versions().len(), 2);
        assert_eq!(
            MinVersion::Tls13.versions()[0].version,
            rustls::ProtocolVersion::TLSv1_3
        );
        assert_eq!(MinVersion::Tls13.versions().len(), 1);
    }

    #[test]
    fn setup_errors_read_as_sentences() {
        let err = TlsSetupError::UnknownCipher {
            name: "RC4-MD5".into(),
            supported: vec!["A".into(), "B".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown or unsupported cipher suite 'RC4-MD5' (supported: A, B)"
        );
        assert_eq!(
            TlsSetupError::CaFileMissing {
                path: "/x.pem".into()
            }
            .to_string(),
            "CA file /x.pem does not exist"
        );
    }
}
