//! Where trust comes from: the user's CA file, else the platform's store,
//! else the bundled Mozilla roots.
//!
//! Mercurial semantics: a CA file (`hostsecurity.<host>:verifycertsfile` or
//! `web.cacerts`) replaces the default roots, and is read (and must exist and
//! hold certificates) even when pins or `--insecure` make it moot, so a typo
//! in its path is reported the same way every time.

use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, TrustAnchor};

use super::pem;
use super::policy::{TlsPolicy, TlsSetupError};

/// The trust anchors webpki searches, each with the certificate it was made
/// from where that is known, so the verifier can apply to it the rules webpki
/// leaves out (see [`super::anchor`]).
#[derive(Debug, Default)]
pub(crate) struct Roots {
    anchors: Vec<TrustAnchor<'static>>,
    origins: Vec<Option<CertificateDer<'static>>>,
}

impl Roots {
    /// Every certificate webpki can read as an anchor. The others (one with
    /// a malformed extension, say) still count for the trusted-as-itself
    /// check, so they are not an error here.
    pub(crate) fn from_certs(certs: &[CertificateDer<'static>]) -> Roots {
        let mut roots = Roots::default();
        for der in certs {
            if let Ok(anchor) = webpki::anchor_from_trusted_cert(der) {
                roots.anchors.push(anchor.to_owned());
                roots.origins.push(Some(der.clone()));
            }
        }
        roots
    }

    /// The bundled Mozilla roots: curated anchors without their certificates.
    fn bundled() -> Roots {
        let anchors = webpki_roots::TLS_SERVER_ROOTS.to_vec();
        let origins = vec![None; anchors.len()];
        Roots { anchors, origins }
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The certificate `anchor` (one of [`Self::anchors`], by address) was
    /// made from; `None` for a bundled root.
    pub(crate) fn origin(&self, anchor: &TrustAnchor<'_>) -> Option<&CertificateDer<'static>> {
        let index = self
            .anchors
            .iter()
            .position(|a| std::ptr::addr_eq(a, anchor))?;
        self.origins.get(index)?.as_ref()
    }

    pub(crate) fn len(&self) -> usize {
        self.anchors.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// The trust anchors of one connection.
#[derive(Debug)]
pub(crate) enum Anchors {
    /// Nothing to check a chain against: every CA check fails.
    None,
    /// The platform store, or the bundled Mozilla roots where it has none.
    Default(Arc<Roots>),
    /// The user's CA file.
    CaFile {
        /// The path, as configured, for messages.
        path: String,
        /// Its certificates that webpki can read as anchors.
        roots: Roots,
        /// All its certificates as written, for the trusted-as-itself check
        /// and as intermediates a server may have left out (as OpenSSL uses
        /// them).
        certs: Vec<CertificateDer<'static>>,
    },
}

/// The anchors `policy` asks for. The default roots are loaded only when they
/// will be used (no CA file, no pins, not insecure).
pub(crate) fn load(policy: &TlsPolicy) -> Result<Anchors, TlsSetupError> {
    if let Some(path) = &policy.ca_file {
        let certs = read_ca_file(path)?;
        return Ok(Anchors::CaFile {
            path: path.display().to_string(),
            roots: Roots::from_certs(&certs),
            certs,
        });
    }
    if policy.load_default_roots
        && policy.pins.is_empty()
        && !policy.dangerous.skips_ca_and_name_checks()
    {
        return Ok(Anchors::Default(default_roots()));
    }
    Ok(Anchors::None)
}

/// The certificates of a PEM file.
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => TlsSetupError::CaFileMissing {
            path: shown.clone(),
        },
        _ => TlsSetupError::CaFileUnreadable {
            path: shown.clone(),
            reason: e.to_string(),
        },
    })?;
    let certs = pem::certificates(&bytes).map_err(|e| TlsSetupError::CaFileUnreadable {
        path: shown.clone(),
        reason: format!("bad PEM: {e}"),
    })?;
    if certs.is_empty() {
        return Err(TlsSetupError::CaFileHasNoCertificates { path: shown });
    }
    Ok(certs)
}

/// Where the default roots came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultRootsSource {
    /// The platform's store (rustls-native-certs).
    System,
    /// The Mozilla roots bundled at build time (webpki-roots).
    Bundled,
}

/// Where the default roots come from on this machine, and how many there are
/// (for `hg debugsmtp`). Loads them if no connection has yet.
pub fn default_roots_source() -> (DefaultRootsSource, usize) {
    let (roots, source) = default_roots_and_source();
    (*source, roots.len())
}

fn default_roots() -> Arc<Roots> {
    Arc::clone(&default_roots_and_source().0)
}

/// The default roots, loaded once per process: reading the platform store
/// costs milliseconds and one `hg` run may connect more than once.
fn default_roots_and_source() -> &'static (Arc<Roots>, DefaultRootsSource) {
    static ROOTS: OnceLock<(Arc<Roots>, DefaultRootsSource)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        // Errors name unreadable files in the store; whatever did load is
        // used. The system's certificates are kept: an expired root or one
        // that is no CA is refused as OpenSSL refuses it.
        let (certs, fallback) = system_certs();
        let roots = Roots::from_certs(&certs);
        if roots.is_empty() && fallback {
            (Arc::new(Roots::bundled()), DefaultRootsSource::Bundled)
        } else {
            (Arc::new(roots), DefaultRootsSource::System)
        }
    })
}

/// The platform store's certificates, and whether an empty result may fall
/// back to the bundled roots: on Unix (but macOS) as OpenSSL reads its
/// default file and hashed directories ([`super::store`]), elsewhere through
/// the platform's own API.
#[cfg(all(unix, not(target_os = "macos")))]
fn system_certs() -> (Vec<CertificateDer<'static>>, bool) {
    (super::store::load(), true)
}

/// On Windows: the current user's ROOT store, unless `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is set. Then only what they name, read OpenSSL's way
/// (stock reads them beside the system stores: reading them alone is
/// stricter, never looser), and nothing in them is no reason to trust the
/// bundled roots, which stock would not.
#[cfg(windows)]
fn system_certs() -> (Vec<CertificateDer<'static>>, bool) {
    windows_certs(
        std::env::var_os("SSL_CERT_FILE"),
        std::env::var_os("SSL_CERT_DIR"),
    )
}

/// [`system_certs`] on Windows, given the two variables: rustls-native-certs
/// would read them instead of the store, and every file of a directory,
/// where OpenSSL finds only hash-named ones.
#[cfg(any(windows, test))]
fn windows_certs(
    file: Option<std::ffi::OsString>,
    dirs: Option<std::ffi::OsString>,
) -> (Vec<CertificateDer<'static>>, bool) {
    if file.is_none() && dirs.is_none() {
        return (rustls_native_certs::load_native_certs().certs, true);
    }
    let dirs = dirs
        .as_deref()
        .map(super::store::split_dirs)
        .unwrap_or_default();
    let certs = super::store::load_from(file.as_deref().map(Path::new), &dirs);
    (certs, false)
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
fn system_certs() -> (Vec<CertificateDer<'static>>, bool) {
    (rustls_native_certs::load_native_certs().certs, true)
}

#[cfg(test)]
mod tests {
    use super::super::danger::Dangerous;
    use super::super::testutil::{self, TempFile};
    use super::*;

    fn policy_with(ca_file: Option<&Path>) -> TlsPolicy {
        TlsPolicy {
            ca_file: ca_file.map(Path::to_path_buf),
            ..testutil::policy("localhost")
        }
    }

    #[test]
    fn a_missing_ca_file_is_reported_at_setup() {
        let path = std::env::temp_dir().join("securesmtp-no-such-file.pem");
        let err = load(&policy_with(Some(&path))).unwrap_err();
        assert_eq!(
            err,
            TlsSetupError::CaFileMissing {
                path: path.display().to_string()
            }
        );
    }

    #[test]
    fn a_directory_as_ca_file_is_unreadable() {
        let dir = std::env::temp_dir();
        let err = load(&policy_with(Some(&dir))).unwrap_err();
        assert!(
            matches!(err, TlsSetupError::CaFileUnreadable { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let file = TempFile::new("just a note\n");
        let err = load(&policy_with(Some(file.path()))).unwrap_err();
        assert!(matches!(err, TlsSetupError::CaFileHasNoCertificates { .. }));
        let key_only = TempFile::new(&rcgen::KeyPair::generate().unwrap().serialize_pem());
        let err = load(&policy_with(Some(key_only.path()))).unwrap_err();
        assert!(matches!(err, TlsSetupError::CaFileHasNoCertificates { .. }));
    }

    #[test]
    fn a_ca_file_with_a_broken_pem_section_is_unreadable() {
        let file = TempFile::new("-----BEGIN CERTIFICATE-----\nAAAA\n");
        let err = load(&policy_with(Some(file.path()))).unwrap_err();
        assert!(
            matches!(err, TlsSetupError::CaFileUnreadable { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_ca_file_replaces_the_default_roots_and_keeps_every_certificate() {
        let ca = testutil::Ca::new("Test CA");
        let pem = format!("{}{}", ca.pem(), testutil::HG_PUB_PEM);
        let file = TempFile::new(&pem);
        match load(&policy_with(Some(file.path()))).unwrap() {
            Anchors::CaFile { roots, certs, path } => {
                assert_eq!(certs.len(), 2);
                assert_eq!(certs[0].as_ref(), ca.der());
                assert_eq!(roots.len(), 2);
                assert_eq!(roots.origin(&roots.anchors()[1]), Some(&certs[1]));
                assert_eq!(path, file.path().display().to_string());
            }
            other => panic!("expected the CA file, got {other:?}"),
        }
    }

    #[test]
    fn a_ca_file_is_read_even_when_pins_make_it_moot() {
        let path = std::env::temp_dir().join("securesmtp-no-such-file.pem");
        let policy = TlsPolicy {
            pins: vec![testutil::any_pin()],
            dangerous: Dangerous::none().skip_ca_and_name_checks(),
            ..policy_with(Some(&path))
        };
        assert!(matches!(
            load(&policy),
            Err(TlsSetupError::CaFileMissing { .. })
        ));
    }

    #[test]
    fn default_roots_are_never_empty() {
        match load(&policy_with(None)).unwrap() {
            Anchors::Default(roots) => {
                assert!(!roots.is_empty());
                assert_eq!(default_roots_source().1, roots.len());
            }
            other => panic!("expected default roots, got {other:?}"),
        }
    }

    /// On Windows the default roots are the current user's ROOT store, not
    /// the bundled ones. Under Wine (`make windows`) that store holds the
    /// host's certificates, which Wine copies into it. SSL_CERT_FILE or
    /// SSL_CERT_DIR would replace the store (rustls-native-certs), so the
    /// check needs them unset, as scripts/windows.sh runs it.
    #[cfg(windows)]
    #[test]
    fn on_windows_the_default_roots_are_the_root_store() {
        if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some()
        {
            return;
        }
        let store = rustls_native_certs::load_native_certs().certs;
        let (source, count) = default_roots_source();
        assert_eq!(source, DefaultRootsSource::System);
        assert!(count > 0);
        assert_eq!(count, Roots::from_certs(&store).len());
    }

    /// Windows with SSL_CERT_DIR set (the logic runs on every platform; the
    /// Windows build uses it): a stray `.pem` is not read, and a store that
    /// holds nothing then is not replaced by the bundled roots.
    #[test]
    fn windows_reads_ssl_cert_dir_by_hash_and_never_falls_back_from_it() {
        let dir = std::env::temp_dir().join(format!("securesmtp-win-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stray = testutil::Ca::new("Stray CA");
        std::fs::write(dir.join("stray.pem"), stray.pem()).unwrap();
        let (certs, fallback) = windows_certs(None, Some(dir.clone().into_os_string()));
        let missing = dir.join("missing.pem").into_os_string();
        let (none, fallback_missing) = windows_certs(Some(missing), None);
        let hashed = testutil::Ca::new("Hashed CA");
        let hash = super::super::store::name_hash(
            super::super::cert::parse(hashed.der()).unwrap().subject(),
        );
        std::fs::write(dir.join(format!("{hash:08x}.0")), hashed.pem()).unwrap();
        let (found, _) = windows_certs(None, Some(dir.clone().into_os_string()));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(certs.is_empty() && !fallback);
        assert!(none.is_empty() && !fallback_missing);
        assert_eq!(found, vec![CertificateDer::from(hashed.der().to_vec())]);
    }

    #[test]
    fn no_roots_are_loaded_when_disabled_pinned_or_insecure() {
        let disabled = TlsPolicy {
            load_default_roots: false,
            ..policy_with(None)
        };
        let pinned = TlsPolicy {
            pins: vec![testutil::any_pin()],
            ..policy_with(None)
        };
        let insecure = TlsPolicy {
            dangerous: Dangerous::none().skip_ca_and_name_checks(),
            ..policy_with(None)
        };
        for policy in [disabled, pinned, insecure] {
            assert!(matches!(load(&policy).unwrap(), Anchors::None));
        }
    }
}
