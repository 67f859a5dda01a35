//! What a certificate in a trust store may vouch for, by the rules OpenSSL
//! (and so stock Mercurial) applies to the certificates it loads from
//! `web.cacerts`, `hostsecurity.<host>:verifycertsfile` or the system store.
//!
//! webpki takes a trust anchor as a bare (subject, key, name constraints)
//! triple and ignores everything else in the certificate it came from. That
//! would let a self-signed CA:FALSE server certificate, an expired CA or an
//! intermediate in the CA file vouch for any server. The verifier therefore
//! maps each candidate path's anchor back to its certificate and applies
//! [`as_anchor`]; [`as_itself`] is the rule for a server certificate found
//! verbatim in the CA file. Where OpenSSL is more lenient (a v1 or
//! keyUsage-only root without basicConstraints, anyExtendedKeyUsage on a
//! leaf trusted as itself), these rules are stricter, never looser.

use std::fmt;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    Oid, OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_CERTIFICATE_POLICIES, OID_X509_EXT_CERT_TYPE,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_NAME_CONSTRAINTS,
    OID_X509_EXT_SUBJECT_ALT_NAME,
};

use super::cert;

/// Why a certificate in a trust store cannot vouch for the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorProblem {
    /// Its basicConstraints say CA:FALSE, or it has none.
    NotCa {
        /// Whether basicConstraints is present (and says CA:FALSE).
        ca_false: bool,
    },
    /// It is issued by another CA: only a self-signed root ends a chain.
    NotSelfSigned {
        /// Its issuer.
        issuer: String,
    },
    /// Its keyUsage does not include keyCertSign.
    NoCertSign,
    /// Its extendedKeyUsage does not include serverAuth.
    NotForServerAuth,
    /// It has a critical extension this verifier does not enforce.
    CriticalExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// Its notAfter has passed.
    Expired {
        /// Its notAfter.
        not_after: String,
    },
    /// Its notBefore has not come yet.
    NotYetValid {
        /// Its notBefore.
        not_before: String,
    },
    /// More intermediate CAs below it than its pathLenConstraint allows.
    PathLength {
        /// Its pathLenConstraint.
        allowed: u32,
        /// The intermediate CAs on the path.
        used: usize,
    },
    /// Its keyUsage allows none of digitalSignature, keyEncipherment and
    /// keyAgreement, so it cannot serve TLS (OpenSSL's KU_TLS).
    KeyUsageNotForTls,
    /// Its Netscape certificate type does not include SSL server.
    NotAnSslServerType,
    /// x509-parser cannot read it, or one of its extensions.
    Malformed,
}

impl fmt::Display for AnchorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCa { ca_false: true } => {
                f.write_str("is not a CA certificate (basicConstraints CA:FALSE)")
            }
            Self::NotCa { ca_false: false } => {
                f.write_str("is not a CA certificate (no basicConstraints CA:TRUE)")
            }
            Self::NotSelfSigned { issuer } => {
                write!(f, "is not self-signed (its issuer is {issuer})")
            }
            Self::NoCertSign => {
                f.write_str("may not sign certificates (keyUsage lacks keyCertSign)")
            }
            Self::NotForServerAuth => {
                f.write_str("is not for TLS servers (extendedKeyUsage lacks serverAuth)")
            }
            Self::CriticalExtension { oid } => {
                write!(f, "has an unsupported critical extension ({oid})")
            }
            Self::Expired { not_after } => write!(f, "expired on {not_after}"),
            Self::NotYetValid { not_before } => write!(f, "is not valid before {not_before}"),
            Self::PathLength { allowed, used } => write!(
                f,
                "allows {allowed} intermediate CA(s) below it but the chain has {used} \
                 (path length constraint exceeded)"
            ),
            Self::KeyUsageNotForTls => f.write_str(
                "has a keyUsage that allows none of digitalSignature, keyEncipherment \
                 and keyAgreement",
            ),
            Self::NotAnSslServerType => f.write_str(
                "is not for TLS servers (its Netscape certificate type lacks SSL server)",
            ),
            Self::Malformed => f.write_str("cannot be read"),
        }
    }
}

/// Extensions whose criticality the verifier honours: the ones it or webpki
/// enforce, and certificate policies (which restrict nothing without policy
/// constraints, themselves refused when critical). The key identifiers are
/// not among them: OpenSSL refuses them as unhandled when critical.
const UNDERSTOOD: [&Oid<'static>; 6] = [
    &OID_X509_EXT_BASIC_CONSTRAINTS,
    &OID_X509_EXT_KEY_USAGE,
    &OID_X509_EXT_EXTENDED_KEY_USAGE,
    &OID_X509_EXT_SUBJECT_ALT_NAME,
    &OID_X509_EXT_NAME_CONSTRAINTS,
    &OID_X509_EXT_CERTIFICATE_POLICIES,
];

/// Whether `cert` may end a chain as its trust anchor, at `now` (seconds
/// since the epoch), with `intermediates` CA certificates (not counting
/// self-issued ones, as OpenSSL) between it and the server's certificate.
pub(crate) fn as_anchor(
    cert: &X509Certificate<'_>,
    now: i64,
    intermediates: usize,
) -> Result<(), AnchorProblem> {
    let constraints = cert
        .basic_constraints()
        .map_err(|_| AnchorProblem::Malformed)?;
    let path_len = match constraints {
        Some(bc) if bc.value.ca => bc.value.path_len_constraint,
        other => {
            return Err(AnchorProblem::NotCa {
                ca_false: other.is_some(),
            })
        }
    };
    if !is_self_signed(cert) {
        return Err(AnchorProblem::NotSelfSigned {
            issuer: cert::dn(cert.issuer()),
        });
    }
    match cert.key_usage().map_err(|_| AnchorProblem::Malformed)? {
        Some(ku) if !ku.value.key_cert_sign() => return Err(AnchorProblem::NoCertSign),
        _ => {}
    }
    check_eku(cert)?;
    check_critical(cert)?;
    check_dates(cert, now)?;
    match path_len {
        Some(allowed) if usize::try_from(allowed).is_ok_and(|a| intermediates > a) => {
            Err(AnchorProblem::PathLength {
                allowed,
                used: intermediates,
            })
        }
        _ => Ok(()),
    }
}

/// Whether `cert`, sent by the server and found verbatim in the CA file, may
/// be trusted as itself at `now`: it must be self-signed, fit for a TLS
/// server, and within its dates. The host name is checked separately.
pub(crate) fn as_itself(cert: &X509Certificate<'_>, now: i64) -> Result<(), AnchorProblem> {
    if !is_self_signed(cert) {
        return Err(AnchorProblem::NotSelfSigned {
            issuer: cert::dn(cert.issuer()),
        });
    }
    check_eku(cert)?;
    check_server_purpose(cert)?;
    check_critical(cert)?;
    check_dates(cert, now)
}

/// OpenSSL's rules for an SSL server certificate that webpki leaves out:
/// where keyUsage is present it must allow digitalSignature,
/// keyEncipherment or keyAgreement; where the Netscape certificate type is
/// present it must include SSL server.
pub(crate) fn check_server_purpose(cert: &X509Certificate<'_>) -> Result<(), AnchorProblem> {
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::NSCertType(ns) if !ns.ssl_server() => {
                return Err(AnchorProblem::NotAnSslServerType)
            }
            ParsedExtension::NSCertType(_) => {}
            // Present but unreadable: it may say anything.
            _ if ext.oid == OID_X509_EXT_CERT_TYPE => return Err(AnchorProblem::Malformed),
            _ => {}
        }
    }
    match cert.key_usage().map_err(|_| AnchorProblem::Malformed)? {
        Some(ku)
            if !(ku.value.digital_signature()
                || ku.value.key_encipherment()
                || ku.value.key_agreement()) =>
        {
            Err(AnchorProblem::KeyUsageNotForTls)
        }
        _ => Ok(()),
    }
}

/// Whether an intermediate CA may sign: keyCertSign where keyUsage is present
/// (webpki checks CA:TRUE, pathLen, EKU and dates of intermediates itself).
pub(crate) fn intermediate_may_sign(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.key_usage(), Ok(None))
        || matches!(cert.key_usage(), Ok(Some(ku)) if ku.value.key_cert_sign())
}

/// Whether the certificate carries name constraints.
pub(crate) fn has_name_constraints(cert: &X509Certificate<'_>) -> bool {
    !matches!(cert.name_constraints(), Ok(None))
}

/// OpenSSL's notion of self-signed (`X509_self_signed` without checking the
/// signature, as OpenSSL 3.0 decides which certificates end a chain): issuer
/// and subject are the same name; where the authority key identifier gives
/// a key identifier and the subject key identifier is present they are
/// equal, a serial it gives is the certificate's own, and an issuer name it
/// gives is the certificate's issuer; and the signature algorithm is one
/// for the certificate's own key type.
pub(crate) fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    if !cert::is_self_issued(cert) || !signature_fits_own_key(cert) {
        return false;
    }
    let mut ski = None;
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(id) = ext.parsed_extension() {
            ski = Some(id.0);
        }
    }
    for ext in cert.extensions() {
        let ParsedExtension::AuthorityKeyIdentifier(aki) = ext.parsed_extension() else {
            continue;
        };
        if let (Some(key), Some(ski)) = (&aki.key_identifier, ski) {
            if key.0 != ski {
                return false;
            }
        }
        if let Some(serial) = aki.authority_cert_serial {
            if !same_integer(serial, cert.raw_serial()) {
                return false;
            }
        }
        // OpenSSL compares the first directory name it lists.
        let named = aki
            .authority_cert_issuer
            .iter()
            .flatten()
            .find_map(|n| match n {
                GeneralName::DirectoryName(name) => Some(name),
                _ => None,
            });
        if named.is_some_and(|name| name.as_raw() != cert.issuer().as_raw()) {
            return false;
        }
    }
    true
}

/// Two DER INTEGER contents as OpenSSL's `ASN1_INTEGER_cmp` compares them:
/// by value (a redundant leading zero byte does not count).
fn same_integer(a: &[u8], b: &[u8]) -> bool {
    fn trimmed(v: &[u8]) -> &[u8] {
        match v {
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            _ => v,
        }
    }
    trimmed(a) == trimmed(b)
}

/// OpenSSL's `check_sig_alg_match` on a certificate and its own key: the
/// signature algorithm belongs to the key's type (RSA-PSS also fits an RSA
/// key).
fn signature_fits_own_key(cert: &X509Certificate<'_>) -> bool {
    let signature = cert.signature_algorithm.algorithm.to_id_string();
    let key = cert.public_key().algorithm.algorithm.to_id_string();
    let signature_key = match signature.as_str() {
        // sha1/sha224/sha256/sha384/sha512 (and md5) WithRSAEncryption
        s if s.starts_with("1.2.840.113549.1.1.") && s != RSASSA_PSS && s != RSA => RSA,
        RSASSA_PSS => return key == RSA || key == RSASSA_PSS,
        // ecdsa-with-SHA1 and ecdsa-with-SHA2 family
        s if s == "1.2.840.10045.4.1" || s.starts_with("1.2.840.10045.4.3.") => EC,
        ED25519 => ED25519,
        ED448 => ED448,
        // DSA and algorithms this verifier does not know: whether OpenSSL
        // would call it self-signed is not known here, so it is not.
        _ => return false,
    };
    key == signature_key
}

const RSA: &str = "1.2.840.113549.1.1.1";
const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
const EC: &str = "1.2.840.10045.2.1";
const ED25519: &str = "1.3.101.112";
const ED448: &str = "1.3.101.113";

/// An extendedKeyUsage, where present, must include serverAuth (OpenSSL 3
/// refuses anyExtendedKeyUsage alone for the SSL server purpose).
fn check_eku(cert: &X509Certificate<'_>) -> Result<(), AnchorProblem> {
    match cert
        .extended_key_usage()
        .map_err(|_| AnchorProblem::Malformed)?
    {
        Some(eku) if !eku.value.server_auth => Err(AnchorProblem::NotForServerAuth),
        _ => Ok(()),
    }
}

fn check_critical(cert: &X509Certificate<'_>) -> Result<(), AnchorProblem> {
    match cert
        .extensions()
        .iter()
        .find(|ext| ext.critical && !UNDERSTOOD.contains(&&ext.oid))
    {
        Some(ext) => Err(AnchorProblem::CriticalExtension {
            oid: ext.oid.to_id_string(),
        }),
        None => Ok(()),
    }
}

/// The validity check webpki applies to the certificates it validates;
/// notAfter is inclusive.
pub(crate) fn check_dates(cert: &X509Certificate<'_>, now: i64) -> Result<(), AnchorProblem> {
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    if now < not_before {
        Err(AnchorProblem::NotYetValid {
            not_before: cert::utc(not_before),
        })
    } else if now > not_after {
        Err(AnchorProblem::Expired {
            not_after: cert::utc(not_after),
        })
    } else {
        Ok(())
    }
}
