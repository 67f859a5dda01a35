//! The system's trust store, read the way OpenSSL (and so stock Mercurial's
//! `load_default_certs`) reads it on Unix.
//!
//! OpenSSL loads its default file (`SSL_CERT_FILE`, else the one it was
//! built with) whole, and looks issuers up in its certificate directories
//! (`SSL_CERT_DIR`, colon-separated, else the built-in one) by name: only
//! files called `<subject hash>.<n>` (n from 0 up, without gaps), and only
//! the certificates in them whose subject has that hash. A reader that
//! trusted every file in the directory, as rustls-native-certs does, would
//! trust a stray `.pem` that stock never reads.
//!
//! The subject hash is OpenSSL's `X509_NAME_hash`: SHA-1 of the name's
//! canonical encoding (strings as UTF-8, whitespace trimmed and collapsed,
//! ASCII lower-cased), the first four bytes read little-endian.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use sha1::{Digest, Sha1};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::x509::X509Name;

use super::{cert, pem};

/// The certificates of the default store.
#[cfg(all(unix, not(target_os = "macos")))]
pub(crate) fn load() -> Vec<CertificateDer<'static>> {
    let probed = openssl_probe::probe();
    let file = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or(probed.cert_file);
    let dirs = match std::env::var_os("SSL_CERT_DIR") {
        Some(dirs) => split_dirs(&dirs),
        None => probed.cert_dir,
    };
    load_from(file.as_deref(), &dirs)
}

/// A file read whole and directories looked up by hash, as OpenSSL does.
pub(crate) fn load_from(file: Option<&Path>, dirs: &[PathBuf]) -> Vec<CertificateDer<'static>> {
    let mut certs = file.map(read_whole).unwrap_or_default();
    for dir in dirs {
        certs.extend(hashed_dir(dir));
    }
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    certs
}

/// `SSL_CERT_DIR`'s directories (`:`-separated on Unix, `;` on Windows).
pub(crate) fn split_dirs(dirs: &std::ffi::OsStr) -> Vec<PathBuf> {
    std::env::split_paths(dirs)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// Every certificate of a PEM file, or none if OpenSSL would refuse it.
fn read_whole(path: &Path) -> Vec<CertificateDer<'static>> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| pem::certificates(&bytes).ok())
        .unwrap_or_default()
}

/// The certificates OpenSSL's directory lookup can find in `dir`.
fn hashed_dir(dir: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut hashes: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            // OpenSSL names the files with "%08lx": lower-case hex.
            let hash = name.strip_suffix(".0")?;
            let hex =
                hash.len() == 8 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            hex.then(|| u32::from_str_radix(hash, 16).ok()).flatten()
        })
        .collect();
    hashes.sort_unstable();
    let mut out = Vec::new();
    for hash in hashes {
        // OpenSSL tries <hash>.0, .1, ... and stops at the first missing one.
        for n in 0.. {
            let path = dir.join(format!("{hash:08x}.{n}"));
            if !path.is_file() {
                break;
            }
            out.extend(
                read_whole(&path)
                    .into_iter()
                    .filter(|der| cert::parse(der).is_some_and(|c| name_hash(c.subject()) == hash)),
            );
        }
    }
    out
}

/// OpenSSL's `X509_NAME_hash_ex` of a name.
pub(crate) fn name_hash(name: &X509Name<'_>) -> u32 {
    let mut canonical = Vec::new();
    for rdn in name.iter() {
        let mut set: Vec<Vec<u8>> = rdn
            .iter()
            .map(|attr| {
                let oid = der(0x06, attr.attr_type().as_bytes());
                let value = attr.attr_value();
                let encoded = match canonical_text(value.tag(), value.data) {
                    Some(text) => der(0x0c, text.as_bytes()),
                    // Not a string: its DER as written.
                    None => der(value.tag().0 as u8 | class_bits(value), value.data),
                };
                der(0x30, &[oid, encoded].concat())
            })
            .collect();
        set.sort();
        canonical.extend(der(0x31, &set.concat()));
    }
    let digest = Sha1::digest(&canonical);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn class_bits(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> u8 {
    let header = &value.header;
    ((header.class() as u8) << 6) | if header.is_constructed() { 0x20 } else { 0 }
}

/// The canonical form of a string value (`asn1_string_canon`), or None for
/// a value OpenSSL does not canonicalise.
fn canonical_text(tag: Tag, data: &[u8]) -> Option<String> {
    let text: String = match tag {
        Tag::Utf8String => String::from_utf8_lossy(data).into_owned(),
        Tag::PrintableString | Tag::Ia5String | Tag::VisibleString | Tag::T61String => {
            data.iter().map(|&b| char::from(b)).collect()
        }
        Tag::BmpString => char::decode_utf16(
            data.chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        Tag::UniversalString => data
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                char::from_u32(u32::from_be_bytes(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        _ => return None,
    };
    // OpenSSL's isspace: space, \t, \n, \v, \f, \r.
    let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r');
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.trim_matches(space).chars() {
        if space(c) {
            gap = true;
            continue;
        }
        if gap {
            out.push(' ');
            gap = false;
        }
        out.push(c.to_ascii_lowercase());
    }
    Some(out)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend(&bytes[skip..]);
    }
    out.extend(content);
    out
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{self, TempFile};
    use super::*;

    /// `openssl x509 -subject_hash` of a PEM certificate, where the
    /// command exists.
    #[cfg(unix)]
    fn openssl_hash(pem_text: &str) -> Option<u32> {
        let file = TempFile::new(pem_text);
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-subject_hash", "-in"])
            .arg(file.path())
            .output()
            .ok()?;
        u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).ok()
    }

    #[cfg(unix)]
    #[test]
    fn the_subject_hash_is_openssls() {
        let mut checked = 0;
        for name in ["Test CA", "  Mixed   CASE\tName ", "Ünïcode Wörld CA"] {
            let ca = testutil::Ca::new(name);
            let Some(expected) = openssl_hash(&ca.pem()) else {
                continue;
            };
            let parsed = cert::parse(ca.der()).unwrap();
            assert_eq!(name_hash(parsed.subject()), expected, "{name}");
            checked += 1;
        }
        assert!(
            checked > 0 || std::process::Command::new("openssl").output().is_err(),
            "openssl ran but printed no hash"
        );
    }

    #[test]
    fn only_hashed_names_with_the_right_hash_are_read_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("securesmtp-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = testutil::Ca::new("Hashed CA");
        let stray = testutil::Ca::new("Stray CA");
        let hash = name_hash(cert::parse(good.der()).unwrap().subject());
        std::fs::write(dir.join(format!("{hash:08x}.0")), good.pem()).unwrap();
        // Right hash name, wrong certificate; a plain .pem; a gap in numbers.
        std::fs::write(dir.join(format!("{hash:08x}.1")), stray.pem()).unwrap();
        std::fs::write(dir.join("stray.pem"), stray.pem()).unwrap();
        let other = name_hash(cert::parse(stray.der()).unwrap().subject());
        std::fs::write(dir.join(format!("{other:08x}.1")), stray.pem()).unwrap();
        let found = hashed_dir(&dir);
        let through_the_store = load_from(None, std::slice::from_ref(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, vec![CertificateDer::from(good.der().to_vec())]);
        assert_eq!(through_the_store, found);
    }
}
