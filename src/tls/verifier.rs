//! The certificate verifier, run by rustls inside the handshake, before any
//! application byte is exchanged.
//!
//! Order, as Mercurial's `sslutil`:
//! 0. every certificate sent must decode as OpenSSL decodes it, and every
//!    certificate a verdict below rests on must pass the strict profile
//!    ([`super::profile`]) before any rule is applied to it;
//! 1. pins: when any are configured, the leaf must match one, and nothing
//!    else is checked (no CA, no name), even with `--insecure`;
//! 2. `--insecure`: no CA or name check (see [`super::danger`]);
//! 3. a self-signed leaf found verbatim in the user's CA file is trusted as
//!    itself, when it is fit for a TLS server and within its dates
//!    ([`super::anchor::as_itself`]), after a host name check (RFC 6125,
//!    [`super::names`]);
//! 4. otherwise webpki builds and validates the chain to the CA file's or
//!    the default roots; every candidate path is also held to the rules
//!    OpenSSL applies to its anchor and intermediates and webpki leaves out
//!    ([`super::anchor::as_anchor`]: CA:TRUE, self-signed, keyCertSign,
//!    serverAuth, critical extensions, dates, pathLen); then the leaf's
//!    keyUsage and the host name (DNS and IP subjectAltNames);
//! 5. the common name counts only for a certificate with no subjectAltName
//!    at all that the user's own CA file vouches for (steps 3 or 4) through
//!    a path without name constraints, which the common name would bypass.
//!
//! The handshake signature is always checked with the ring provider's
//! algorithms, whatever the outcome above. Revocation (CRLs, OCSP) is not
//! checked, as in Mercurial.

use std::cell::RefCell;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, verify_tls13_signature_with_raw_key,
    WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, PeerMisbehaved, SignatureScheme,
};
use webpki::{EndEntityCert, VerifiedPath};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Version;

use super::anchor::{self, AnchorProblem};
use super::danger::Dangerous;
use super::pin::Pin;
use super::policy::{TlsPolicy, TlsSetupError};
use super::profile::{self, Refusal, Role};
use super::roots::{self, Anchors, Roots};
use super::{cert, constraints, names};

/// Why the server was trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The chain leads to a trusted root and the host name matches.
    CaChain,
    /// The leaf is in the user's CA file verbatim, is in its validity period
    /// and names the host.
    SelfInCaFile,
    /// The leaf has no subjectAltName; its common name names the host and the
    /// user's CA file vouches for it. The caller warns.
    CommonNameFallback,
    /// The leaf matched a configured pin; nothing else was checked.
    Pin {
        /// The pin that matched, as [`super::fingerprint`] or
        /// [`super::spki_pin`] prints it.
        pin: String,
        /// A `[hostfingerprints]` (SHA-1) pin: the caller suggests the
        /// SHA-256 `[hostsecurity]` line, as Mercurial does.
        legacy_sha1: bool,
    },
    /// Nothing was checked (`--insecure`). The caller warns.
    Insecure,
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CaChain => f.write_str("verified by a trusted certificate authority"),
            Self::SelfInCaFile => f.write_str("trusted as itself (found in the CA file)"),
            Self::CommonNameFallback => {
                f.write_str("trusted by its common name (no subjectAltName)")
            }
            Self::Pin { pin, .. } => write!(f, "matches the pinned {pin}"),
            Self::Insecure => f.write_str("not verified (insecure)"),
        }
    }
}

/// Why the server was not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFailure {
    /// The chain does not lead to a trusted root.
    UnknownIssuer {
        /// The issuer of the topmost certificate the server sent.
        issuer: String,
    },
    /// A lone self-signed leaf that is neither trusted nor pinned.
    SelfSigned {
        /// Its subject.
        subject: String,
    },
    /// The certificate does not name the host.
    NameMismatch {
        /// The host connected to.
        expected: String,
        /// Its DNS and IP subjectAltNames, or its common name if it has none.
        presented: Vec<String>,
        /// Why a presented name that looks right did not count, if one did.
        why: Option<String>,
    },
    /// A CA the chain leads to may not vouch for it, by the rules OpenSSL
    /// applies to trust anchors.
    AnchorRefused {
        /// The CA's subject.
        subject: String,
        /// Where it is: `your CA file (<path>)` or `the system trust store`.
        source: String,
        /// What is wrong with it.
        problem: Box<AnchorProblem>,
    },
    /// An intermediate CA of the chain may not sign certificates.
    IntermediateMayNotSign {
        /// Its subject.
        subject: String,
    },
    /// The server's certificate is in the CA file but may not be trusted as
    /// itself (not self-signed, not for TLS servers, out of its dates).
    NotTrustedAsItself {
        /// The CA file.
        path: String,
        /// What is wrong with it.
        problem: Box<AnchorProblem>,
    },
    /// The server's certificate is not fit for a TLS server.
    LeafUnfit {
        /// What is wrong with it.
        problem: Box<AnchorProblem>,
    },
    /// The chain failed, and the CA file holds no CA certificate at all
    /// (stock Mercurial then says no CA certificates were loaded).
    NoCaInFile {
        /// The CA file.
        path: String,
        /// Why the chain failed.
        failure: Box<VerifyFailure>,
    },
    /// A certificate of the chain has expired.
    Expired {
        /// Its notAfter, `2020-02-01 00:00:00 UTC`.
        not_after: String,
    },
    /// A certificate of the chain is not valid yet.
    NotYetValid {
        /// Its notBefore.
        not_before: String,
    },
    /// No configured pin matches the leaf.
    PinMismatch {
        /// The configured pins, printed.
        pins: Vec<String>,
        /// Whether any of them pins the whole certificate.
        certificates: bool,
        /// Whether any of them pins the public key.
        public_keys: bool,
    },
    /// A certificate the verdict rests on is outside the strict profile
    /// (`tls::profile`).
    OutsideProfile(Box<Refusal>),
    /// No CA file, default roots disabled, no pins: nothing can be trusted.
    NoTrustAnchors,
    /// Any other reason, in words.
    Other(String),
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownIssuer { issuer } => write!(
                f,
                "certificate is signed by an unknown authority (issuer: {issuer})"
            ),
            Self::SelfSigned { subject } => write!(f, "certificate is self-signed ({subject})"),
            Self::NameMismatch {
                expected,
                presented,
                why: Some(why),
            } => write!(
                f,
                "certificate for {} is not valid for {expected}: {why}",
                presented.join(", ")
            ),
            Self::NameMismatch {
                expected,
                presented,
                why: None,
            } if presented.is_empty() => {
                write!(
                    f,
                    "certificate names no host, so it is not valid for {expected}"
                )
            }
            Self::NameMismatch {
                expected,
                presented,
                why: None,
            } => write!(
                f,
                "certificate is for {}, not {expected}",
                presented.join(", ")
            ),
            Self::AnchorRefused {
                subject,
                source,
                problem,
            } if matches!(**problem, AnchorProblem::NotCa { .. }) => write!(
                f,
                "the certificate {subject} in {source} {problem}, so it cannot vouch for \
                 another certificate; a server certificate in a CA file is trusted only \
                 as itself, and only when it is self-signed"
            ),
            Self::AnchorRefused {
                subject,
                source,
                problem,
            } if matches!(**problem, AnchorProblem::NotSelfSigned { .. }) => write!(
                f,
                "the CA {subject} in {source} {problem}; a chain must end at a \
                 self-signed root CA, so add the root that issued it"
            ),
            Self::AnchorRefused {
                subject,
                source,
                problem,
            } => write!(f, "the CA {subject} in {source} {problem}"),
            Self::IntermediateMayNotSign { subject } => write!(
                f,
                "the intermediate CA {subject} may not sign certificates (keyUsage lacks \
                 keyCertSign)"
            ),
            Self::NotTrustedAsItself { path, problem } => write!(
                f,
                "certificate is in your CA file ({path}) but cannot be trusted as itself: \
                 it {problem}"
            ),
            Self::LeafUnfit { problem } => write!(f, "certificate {problem}"),
            Self::NoCaInFile { path, failure } => write!(
                f,
                "{failure} (your CA file {path} holds no CA certificate, so no CA \
                 certificates were loaded)"
            ),
            Self::Expired { not_after } => write!(f, "certificate expired on {not_after}"),
            Self::NotYetValid { not_before } => {
                write!(f, "certificate is not valid before {not_before}")
            }
            Self::PinMismatch {
                pins,
                certificates,
                public_keys,
            } => {
                let what = match (certificates, public_keys) {
                    (true, true) => {
                        "certificate does not match the pinned fingerprints or public keys"
                    }
                    (false, true) => {
                        "certificate's public key does not match the pinned public keys"
                    }
                    _ => "certificate fingerprint does not match the pinned fingerprints",
                };
                write!(f, "{what} ({})", pins.join(", "))
            }
            Self::NoTrustAnchors => f.write_str("no trusted CA certificates are loaded"),
            Self::OutsideProfile(refusal) => refusal.fmt(f),
            Self::Other(words) => f.write_str(words),
        }
    }
}

impl std::error::Error for VerifyFailure {}

impl VerifyFailure {
    /// The rustls error for the handshake, chosen so the alert sent to the
    /// server is the standard one.
    fn to_rustls(&self) -> Error {
        let error = match self {
            Self::UnknownIssuer { .. } | Self::SelfSigned { .. } | Self::NoTrustAnchors => {
                CertificateError::UnknownIssuer
            }
            Self::NameMismatch { .. } => CertificateError::NotValidForName,
            Self::Expired { .. } => CertificateError::Expired,
            Self::NotYetValid { .. } => CertificateError::NotValidYet,
            Self::AnchorRefused { .. }
            | Self::IntermediateMayNotSign { .. }
            | Self::NotTrustedAsItself { .. }
            | Self::NoCaInFile { .. } => CertificateError::UnknownIssuer,
            Self::LeafUnfit { .. } => CertificateError::InvalidPurpose,
            Self::OutsideProfile(_) => CertificateError::BadEncoding,
            Self::PinMismatch { .. } | Self::Other(_) => {
                CertificateError::Other(OtherError(Arc::new(self.clone())))
            }
        };
        Error::InvalidCertificate(error)
    }
}

/// The outcome of one certificate check, with the chain the server sent.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The certificates as sent (DER), leaf first.
    pub chain: Vec<Vec<u8>>,
    /// Why the server is trusted, or why not.
    pub result: Result<Trust, VerifyFailure>,
}

impl Verdict {
    /// The leaf certificate (DER).
    pub fn leaf(&self) -> &[u8] {
        self.chain.first().map_or(&[], Vec::as_slice)
    }
}

/// Where the verifier leaves the [`Verdict`] of the connection's handshake.
pub type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// The verifier of one connection, bound to `TlsPolicy::server_name`.
#[derive(Debug)]
pub(crate) struct Verifier {
    name: ServerName<'static>,
    /// The host as the user wrote it (brackets of an IPv6 literal removed),
    /// for the common-name fallback, which stock compares as text.
    written: String,
    pins: Vec<Pin>,
    dangerous: Dangerous,
    anchors: Anchors,
    algorithms: WebPkiSupportedAlgorithms,
    slot: VerdictSlot,
}

/// The verifier for `policy`, and the slot it writes its verdicts to.
pub(crate) fn verifier(policy: &TlsPolicy) -> Result<(Arc<Verifier>, VerdictSlot), TlsSetupError> {
    let slot = VerdictSlot::default();
    let verifier = Verifier {
        name: super::server_name(policy)?,
        written: policy
            .server_name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        pins: policy.pins.clone(),
        dangerous: policy.dangerous,
        anchors: roots::load(policy)?,
        algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        slot: Arc::clone(&slot),
    };
    Ok((Arc::new(verifier), slot))
}

/// Where the chain's trust comes from, for the rules and the messages.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The platform store or the bundled roots.
    Default,
    /// The user's CA file (its path and all its certificates).
    CaFile(&'a str, &'a [CertificateDer<'static>]),
}

impl Source<'_> {
    fn describe(&self) -> String {
        match self {
            Source::Default => "the system trust store".to_owned(),
            Source::CaFile(path, _) => format!("your CA file ({path})"),
        }
    }
}

/// Why one candidate path was refused by the rules webpki leaves out.
fn path_problem(
    roots: &Roots,
    source: Source<'_>,
    path: &VerifiedPath<'_>,
    now: i64,
) -> Result<(), VerifyFailure> {
    let malformed = || VerifyFailure::Other("certificate is malformed".to_owned());
    let leaf_der = path.end_entity().der();
    // The closed set first: no rule below is applied to a certificate
    // whose fields have not all been matched to OpenSSL's reading.
    profile::check(Role::Server, &leaf_der).map_err(outside)?;
    for ca in path.intermediate_certificates() {
        profile::check(Role::Intermediate, &ca.der()).map_err(outside)?;
    }
    let leaf = cert::parse(&leaf_der).ok_or_else(malformed)?;
    let cas: Vec<_> = path
        .intermediate_certificates()
        .map(|ca| ca.der())
        .collect();
    let mut below = vec![&leaf];
    let parsed_cas = cas
        .iter()
        .map(|der| cert::parse(der).ok_or_else(malformed))
        .collect::<Result<Vec<_>, _>>()?;
    let mut intermediates = 0;
    for parsed in &parsed_cas {
        email_constraints(parsed, &below)?;
        below.push(parsed);
        if !anchor::intermediate_may_sign(parsed) {
            return Err(VerifyFailure::IntermediateMayNotSign {
                subject: cert::dn(parsed.subject()),
            });
        }
        // OpenSSL does not count self-issued CAs (key rollover) against pathLen.
        if !cert::is_self_issued(parsed) {
            intermediates += 1;
        }
    }
    // A bundled root comes without its certificate: it is curated, and
    // webpki's (subject, key, name constraints) is all there is to check.
    let Some(origin) = roots.origin(path.anchor()) else {
        return Ok(());
    };
    profile::check(Role::Anchor, origin).map_err(outside)?;
    let Some(parsed) = cert::parse(origin) else {
        return Err(VerifyFailure::Other(
            "a trusted CA certificate is malformed".to_owned(),
        ));
    };
    email_constraints(&parsed, &below)?;
    anchor::as_anchor(&parsed, now, intermediates).map_err(|problem| VerifyFailure::AnchorRefused {
        subject: cert::dn(parsed.subject()),
        source: source.describe(),
        problem: Box::new(problem),
    })
}

fn outside(refusal: Refusal) -> VerifyFailure {
    VerifyFailure::OutsideProfile(Box::new(refusal))
}

fn email_constraints(
    ca: &X509Certificate<'_>,
    below: &[&X509Certificate<'_>],
) -> Result<(), VerifyFailure> {
    match constraints::email_problem(ca, below) {
        Some(problem) => Err(VerifyFailure::Other(format!(
            "the name constraints of {} refuse the chain: {problem}",
            cert::dn(ca.subject())
        ))),
        None => Ok(()),
    }
}

/// Whether any CA on the path (the anchor included) constrains names, so the
/// common name, which name constraints do not reach, may not stand in for a
/// subjectAltName.
fn constrains_names(path: &VerifiedPath<'_>) -> bool {
    path.anchor().name_constraints.is_some()
        || path
            .intermediate_certificates()
            .any(|ca| cert::parse(&ca.der()).is_some_and(|c| anchor::has_name_constraints(&c)))
}

fn secs(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

impl Verifier {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Trust, VerifyFailure> {
        // OpenSSL decodes every certificate of the handshake whatever is
        // then checked (a pin and --insecure turn its verification off, not
        // its decoder); stock refuses a chain it cannot decode.
        for (index, der) in std::iter::once(end_entity).chain(intermediates).enumerate() {
            profile::decodes(der).map_err(|fault| {
                let role = if index == 0 {
                    Role::Server
                } else {
                    Role::Sent(index)
                };
                VerifyFailure::OutsideProfile(Box::new(Refusal::new(role, der, fault)))
            })?;
        }
        if !self.pins.is_empty() {
            return check_pins(&self.pins, end_entity);
        }
        if self.dangerous.skips_ca_and_name_checks() {
            return Ok(Trust::Insecure);
        }
        match &self.anchors {
            Anchors::None => Err(VerifyFailure::NoTrustAnchors),
            Anchors::Default(roots) => {
                self.check_chain(roots, Source::Default, end_entity, intermediates, now)
            }
            Anchors::CaFile { path, roots, certs } => {
                let verbatim = certs.contains(end_entity);
                if verbatim && cert::parse(end_entity).is_some_and(|c| anchor::is_self_signed(&c)) {
                    return self.trust_as_itself(path, end_entity, now);
                }
                let source = Source::CaFile(path, certs);
                match self.check_chain(roots, source, end_entity, intermediates, now) {
                    Err(VerifyFailure::UnknownIssuer { .. }) if verbatim => {
                        Err(VerifyFailure::NotTrustedAsItself {
                            path: path.clone(),
                            problem: Box::new(AnchorProblem::NotSelfSigned {
                                issuer: cert::issuer(end_entity),
                            }),
                        })
                    }
                    Err(
                        failure @ (VerifyFailure::UnknownIssuer { .. }
                        | VerifyFailure::SelfSigned { .. }),
                    ) if !has_ca_certificate(certs) => Err(VerifyFailure::NoCaInFile {
                        path: path.clone(),
                        failure: Box::new(failure),
                    }),
                    other => other,
                }
            }
        }
    }

    /// A self-signed leaf the user put in their CA file. webpki would refuse
    /// it if it carries CA:TRUE (as `openssl req -x509` makes them), so it is
    /// checked here as OpenSSL checks a chain of that one certificate; the
    /// signature on it is moot.
    fn trust_as_itself(
        &self,
        path: &str,
        leaf: &[u8],
        now: UnixTime,
    ) -> Result<Trust, VerifyFailure> {
        let cert = cert::parse(leaf)
            .ok_or_else(|| VerifyFailure::Other("certificate is malformed".to_owned()))?;
        profile::check(Role::Itself, leaf).map_err(outside)?;
        anchor::as_itself(&cert, secs(now)).map_err(|problem| match problem {
            AnchorProblem::Expired { not_after } => VerifyFailure::Expired { not_after },
            AnchorProblem::NotYetValid { not_before } => VerifyFailure::NotYetValid { not_before },
            problem => VerifyFailure::NotTrustedAsItself {
                path: path.to_owned(),
                problem: Box::new(problem),
            },
        })?;
        if names::san_matches(&cert, &self.name) {
            Ok(Trust::SelfInCaFile)
        } else if names::cn_matches(&cert, &self.name, &self.written)
            && !anchor::has_name_constraints(&cert)
        {
            Ok(Trust::CommonNameFallback)
        } else {
            // Its own name constraints turn the common name off; saying so
            // keeps the message from reading "for x, not x".
            let common_name = if anchor::has_name_constraints(&cert) {
                names::CommonName::NameConstrained
            } else {
                names::CommonName::Allowed
            };
            Err(self.name_mismatch(Some(&cert), common_name))
        }
    }

    fn check_chain(
        &self,
        roots: &Roots,
        source: Source<'_>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<Trust, VerifyFailure> {
        let fail = |e| self.chain_failure(e, end_entity, intermediates);
        let leaf = cert::parse(end_entity)
            .ok_or_else(|| VerifyFailure::Other("certificate is malformed".to_owned()))?;
        let parsed = EndEntityCert::try_from(end_entity).map_err(fail)?;
        // As OpenSSL does, the CA file's other certificates may complete a
        // chain the server sent without its intermediates.
        let mut pool = intermediates.to_vec();
        if let Source::CaFile(_, certs) = source {
            let extra: Vec<_> = certs
                .iter()
                .filter(|c| !intermediates.contains(c))
                .collect();
            pool.extend(extra.into_iter().cloned());
        }
        let refusals = RefCell::new(Vec::new());
        let rules = |path: &VerifiedPath<'_>| {
            path_problem(roots, source, path, secs(now)).map_err(|refusal| {
                refusals.borrow_mut().push(refusal);
                // Lowest in webpki's ranking, so a more specific error from
                // another candidate path wins; the refusal is kept above.
                webpki::Error::UnknownIssuer
            })
        };
        let verified = parsed.verify_for_usage(
            self.algorithms.all,
            roots.anchors(),
            &pool,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&rules),
        );
        let constrained = match &verified {
            Ok(path) => constrains_names(path),
            Err(e) => {
                return Err(match refusals.into_inner().into_iter().next() {
                    Some(refusal) => refusal,
                    None => fail(e.clone()),
                })
            }
        };
        anchor::check_server_purpose(&leaf).map_err(|problem| VerifyFailure::LeafUnfit {
            problem: Box::new(problem),
        })?;
        if parsed.verify_is_valid_for_subject_name(&self.name).is_ok() {
            return Ok(Trust::CaChain);
        }
        let common_name = match source {
            Source::Default => names::CommonName::OnlyForTheCaFile,
            Source::CaFile(..) if constrained => names::CommonName::NameConstrained,
            Source::CaFile(..) => names::CommonName::Allowed,
        };
        if common_name == names::CommonName::Allowed
            && names::cn_matches(&leaf, &self.name, &self.written)
        {
            return Ok(Trust::CommonNameFallback);
        }
        Err(self.name_mismatch(Some(&leaf), common_name))
    }

    fn chain_failure(
        &self,
        error: webpki::Error,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> VerifyFailure {
        use webpki::Error as E;
        let leaf = cert::parse(end_entity);
        let lone_self_signed =
            intermediates.is_empty() && leaf.as_ref().is_some_and(cert::is_self_issued);
        let leaf_is_ca = leaf.as_ref().is_some_and(|c| c.is_ca());
        // The deprecated variants are matched too: webpki may still produce them.
        #[allow(deprecated)]
        match error {
            E::UnknownIssuer if lone_self_signed => VerifyFailure::SelfSigned {
                subject: cert::subject(end_entity),
            },
            E::UnknownIssuer => VerifyFailure::UnknownIssuer {
                issuer: cert::issuer(intermediates.last().map_or(end_entity.as_ref(), |c| c)),
            },
            E::CertExpired { not_after, .. } => VerifyFailure::Expired {
                not_after: utc(not_after),
            },
            E::CertNotValidYet { not_before, .. } => VerifyFailure::NotYetValid {
                not_before: utc(not_before),
            },
            E::InvalidCertValidity => VerifyFailure::Other(
                "certificate has a validity period that ends before it begins".to_owned(),
            ),
            E::CertNotValidForName(_) => {
                self.name_mismatch(leaf.as_ref(), names::CommonName::Allowed)
            }
            // webpki refuses a CA certificate as the end entity before it
            // looks for an issuer; a lone self-signed one is the usual case.
            E::CaUsedAsEndEntity if lone_self_signed => VerifyFailure::SelfSigned {
                subject: cert::subject(end_entity),
            },
            E::CaUsedAsEndEntity if leaf_is_ca => VerifyFailure::Other(
                "certificate is a CA certificate, not a server certificate".to_owned(),
            ),
            E::EndEntityUsedAsCa => VerifyFailure::Other(
                "a certificate of the chain that is not a CA (basicConstraints CA:FALSE) \
                 signed the certificate below it"
                    .to_owned(),
            ),
            E::PathLenConstraintViolated => VerifyFailure::Other(
                "path length constraint exceeded: an intermediate CA allows fewer CAs \
                 below it than the chain has"
                    .to_owned(),
            ),
            E::NameConstraintViolation => VerifyFailure::Other(
                "certificate names a host outside the name constraints of a CA of its chain"
                    .to_owned(),
            ),
            E::BadDer | E::BadDerTime | E::TrailingData(_) | E::MalformedExtensions => {
                VerifyFailure::Other("certificate is malformed".to_owned())
            }
            E::UnsupportedCertVersion => VerifyFailure::Other(
                "certificate is an X.509 version 1 certificate, which is trusted only as \
                 itself, when it is in your CA file"
                    .to_owned(),
            ),
            E::InvalidSignatureForPublicKey => {
                VerifyFailure::Other("certificate has an invalid signature".to_owned())
            }
            E::UnsupportedSignatureAlgorithm
            | E::UnsupportedSignatureAlgorithmContext(_)
            | E::UnsupportedSignatureAlgorithmForPublicKey
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => VerifyFailure::Other(
                "certificate is signed with an unsupported algorithm".to_owned(),
            ),
            E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
                VerifyFailure::Other("certificate is not for TLS server authentication".to_owned())
            }
            E::UnsupportedCriticalExtension => {
                VerifyFailure::Other("certificate has an unsupported critical extension".to_owned())
            }
            other => VerifyFailure::Other(format!("certificate rejected: {other}")),
        }
    }

    fn name_mismatch(
        &self,
        leaf: Option<&X509Certificate<'_>>,
        common_name: names::CommonName,
    ) -> VerifyFailure {
        let presented = leaf.map(names::presented).unwrap_or_default();
        // An address is shown as the user wrote it: its normal form may be
        // the very text the certificate presents (0:0:0:0:0:0:0:1 and ::1).
        let (expected, address) = match &self.name {
            ServerName::IpAddress(ip) => (self.written.clone(), Some(std::net::IpAddr::from(*ip))),
            name => (name.to_str().into_owned(), None),
        };
        let written_otherwise = presented.iter().find(|p| {
            address.is_some() && p.parse().ok() == address && !p.eq_ignore_ascii_case(&expected)
        });
        let why = leaf
            .and_then(|c| names::why_not(c, &self.name, common_name))
            .or_else(|| {
                written_otherwise.map(|p| {
                    format!(
                        "its common name {p} is the same address written otherwise, and a \
                         common name is compared as text (as stock Mercurial compares it)"
                    )
                })
            });
        VerifyFailure::NameMismatch {
            expected,
            presented,
            why,
        }
    }
}

/// Whether any certificate of the CA file could be an anchor at some time
/// (stock Mercurial warns that none were loaded when none is).
fn has_ca_certificate(certs: &[CertificateDer<'static>]) -> bool {
    certs.iter().any(|der| {
        cert::parse(der)
            .is_some_and(|c| matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca))
    })
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // Pins and CA file were chosen for the configured host; checking
        // another name against them would apply one host's trust to another.
        let result = if *server_name == self.name {
            self.decide(end_entity, intermediates, now)
        } else {
            Err(VerifyFailure::Other(format!(
                "the connection is to {} but was configured for {}",
                server_name.to_str(),
                self.name.to_str()
            )))
        };
        let outcome = match &result {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            // The verdict (a failure) is recorded; the channel stays
            // unverified, so nothing is sent on it.
            Err(_) if self.dangerous.inspects() => Ok(ServerCertVerified::assertion()),
            Err(failure) => Err(failure.to_rustls()),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        // A poisoned lock only means another thread panicked mid-write; the
        // verdict written now replaces whatever it left.
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Verdict { chain, result });
        outcome
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let Some(spki) = v1_key(cert) else {
            return verify_tls12_signature(message, cert, dss, &self.algorithms);
        };
        let key = webpki::RawPublicKeyEntity::try_from(&spki)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let algorithms = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        if algorithms
            .iter()
            .any(|alg| key.verify_signature(*alg, message, dss.signature()).is_ok())
        {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match v1_key(cert) {
            Some(spki) => {
                verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
            }
            None => verify_tls13_signature(message, cert, dss, &self.algorithms),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The key of an X.509 version 1 certificate, which webpki cannot read as a
/// certificate (it has no extensions, so no CA may vouch for it); one can
/// still be trusted as itself from the CA file, as stock Mercurial trusts
/// it, or pinned, and its handshake signature is checked with this key.
fn v1_key(cert: &[u8]) -> Option<SubjectPublicKeyInfoDer<'static>> {
    let parsed = cert::parse(cert)?;
    (parsed.version() == X509Version::V1)
        .then(|| SubjectPublicKeyInfoDer::from(parsed.public_key().raw.to_vec()))
}

fn check_pins(pins: &[Pin], leaf: &[u8]) -> Result<Trust, VerifyFailure> {
    match pins.iter().find(|pin| pin.matches(leaf)) {
        Some(pin) => Ok(Trust::Pin {
            pin: pin.to_string(),
            legacy_sha1: pin.is_legacy(),
        }),
        None => Err(VerifyFailure::PinMismatch {
            pins: pins.iter().map(Pin::to_string).collect(),
            certificates: pins.iter().any(Pin::is_certificate),
            public_keys: pins.iter().any(|p| !p.is_certificate()),
        }),
    }
}

fn utc(time: UnixTime) -> String {
    cert::utc(i64::try_from(time.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::super::pin::{fingerprint, spki_pin, HashAlg};
    use super::super::testutil::{self, Ca, KeyKind, TempFile};
    use super::*;

    /// Runs the verifier the way rustls does, at `now`.
    fn verify_at(policy: &TlsPolicy, chain: &[&[u8]], now: UnixTime) -> (bool, Verdict) {
        let (verifier, slot) = verifier(policy).unwrap();
        let certs: Vec<CertificateDer<'_>> =
            chain.iter().map(|der| CertificateDer::from(*der)).collect();
        let name = super::super::server_name(policy).unwrap();
        let passed = verifier
            .verify_server_cert(&certs[0], &certs[1..], &name, &[], now)
            .is_ok();
        let verdict = slot
            .lock()
            .unwrap()
            .take()
            .expect("a verdict on every call");
        (passed, verdict)
    }

    fn verify(policy: &TlsPolicy, chain: &[&[u8]]) -> Result<Trust, VerifyFailure> {
        let (passed, verdict) = verify_at(policy, chain, testutil::now());
        assert_eq!(passed, verdict.result.is_ok(), "{:?}", verdict.result);
        verdict.result
    }

    fn trusting(file: &TempFile, host: &str) -> TlsPolicy {
        TlsPolicy {
            ca_file: Some(file.path().to_path_buf()),
            ..testutil::policy(host)
        }
    }

    #[test]
    fn a_leaf_signed_by_the_ca_file_is_trusted_for_each_key_type() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        for kind in [KeyKind::Ecdsa, KeyKind::Rsa, KeyKind::Ed25519] {
            let leaf = ca.leaf(&["localhost", "127.0.0.1", "::1"], kind);
            for host in ["localhost", "127.0.0.1", "::1"] {
                assert_eq!(
                    verify(&trusting(&file, host), &[&leaf.der]),
                    Ok(Trust::CaChain),
                    "{kind:?} {host}"
                );
            }
        }
    }

    #[test]
    fn the_verdict_keeps_the_chain_as_sent_leaf_first() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let (passed, verdict) = verify_at(
            &trusting(&file, "localhost"),
            &[&leaf.der, ca.der()],
            testutil::now(),
        );
        assert!(passed);
        assert_eq!(verdict.chain, [leaf.der.clone(), ca.der().to_vec()]);
        assert_eq!(verdict.leaf(), leaf.der.as_slice());
    }

    #[test]
    fn a_leaf_for_another_name_is_a_name_mismatch_listing_its_names() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["mail.example.org"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::NameMismatch {
                expected: "localhost".into(),
                presented: vec!["mail.example.org".into()],
                why: None,
            }
        );
        assert_eq!(
            failure.to_string(),
            "certificate is for mail.example.org, not localhost"
        );
        let leaf = ca.leaf(&["localhost", "192.0.2.1"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "127.0.0.1"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is for localhost, 192.0.2.1, not 127.0.0.1"
        );
    }

    #[test]
    fn an_expired_leaf_says_when_it_expired() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.expired_leaf("localhost");
        let failure = verify(&trusting(&file, "localhost"), &[&leaf]).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::Expired {
                not_after: "2020-02-01 00:00:00 UTC".into()
            }
        );
        assert_eq!(
            failure.to_string(),
            "certificate expired on 2020-02-01 00:00:00 UTC"
        );
    }

    #[test]
    fn a_leaf_not_yet_valid_says_from_when() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let (passed, verdict) = verify_at(
            &trusting(&file, "localhost"),
            &[&leaf.der],
            testutil::unix(2019, 6, 1),
        );
        assert!(!passed);
        let failure = verdict.result.unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is not valid before 2020-01-01 00:00:00 UTC"
        );
    }

    #[test]
    fn a_leaf_from_another_ca_is_signed_by_an_unknown_authority() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let evil = Ca::new("Evil CA");
        let leaf = evil.leaf(&["localhost"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is signed by an unknown authority (issuer: CN=Evil CA)"
        );
        // The issuer named is the one of the topmost certificate sent.
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der, evil.der()]).unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::UnknownIssuer {
                issuer: "CN=Evil CA".into()
            }
        );
    }

    #[test]
    fn a_leaf_from_an_intermediate_is_trusted_only_with_the_intermediate_sent() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let intermediate = ca.intermediate("Test Intermediate");
        let leaf = intermediate.leaf(&["localhost"], KeyKind::Ecdsa);
        let policy = trusting(&file, "localhost");
        assert_eq!(
            verify(&policy, &[&leaf.der, intermediate.der()]),
            Ok(Trust::CaChain)
        );
        assert_eq!(
            verify(&policy, &[&leaf.der]),
            Err(VerifyFailure::UnknownIssuer {
                issuer: "CN=Test Intermediate".into()
            })
        );
    }

    #[test]
    fn an_untrusted_self_signed_leaf_is_reported_as_self_signed_with_or_without_ca_true() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let key = KeyKind::Ecdsa.key();
        let plain = testutil::self_signed(&testutil::leaf_params(&["localhost"]), &key);
        let openssl_style = testutil::openssl_style_self_signed(&key, &["localhost"]);
        for der in [plain, openssl_style] {
            let failure = verify(&trusting(&file, "localhost"), &[&der]).unwrap_err();
            assert_eq!(
                failure,
                VerifyFailure::SelfSigned {
                    subject: "CN=localhost".into()
                }
            );
            assert_eq!(
                failure.to_string(),
                "certificate is self-signed (CN=localhost)"
            );
        }
    }

    #[test]
    fn a_ca_certificate_sent_as_leaf_with_a_chain_is_refused_in_words() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let intermediate = ca.intermediate("localhost");
        let failure = verify(
            &trusting(&file, "localhost"),
            &[intermediate.der(), ca.der()],
        )
        .unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is a CA certificate, not a server certificate"
        );
    }

    #[test]
    fn a_self_signed_ca_true_leaf_in_the_ca_file_is_trusted_as_itself() {
        let key = KeyKind::Ecdsa.key();
        let der = testutil::openssl_style_self_signed(&key, &["localhost", "127.0.0.1"]);
        let other = Ca::new("Unrelated CA");
        let file = TempFile::new(&format!("{}{}", other.pem(), testutil::der_to_pem(&der)));
        for host in ["localhost", "LOCALHOST", "127.0.0.1"] {
            assert_eq!(
                verify(&trusting(&file, host), &[&der]),
                Ok(Trust::SelfInCaFile),
                "{host}"
            );
        }
        let failure = verify(&trusting(&file, "mail.example.org"), &[&der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is for localhost, 127.0.0.1, not mail.example.org"
        );
    }

    #[test]
    fn a_leaf_trusted_as_itself_must_still_be_within_its_dates() {
        let key = KeyKind::Ecdsa.key();
        let der = testutil::openssl_style_self_signed(&key, &["localhost"]);
        let file = TempFile::new(&testutil::der_to_pem(&der));
        let policy = trusting(&file, "localhost");
        let (_, verdict) = verify_at(&policy, &[&der], testutil::unix(2099, 1, 2));
        assert_eq!(
            verdict.result,
            Err(VerifyFailure::Expired {
                not_after: "2099-01-01 00:00:00 UTC".into()
            })
        );
        let (_, verdict) = verify_at(&policy, &[&der], testutil::unix(2019, 12, 31));
        assert_eq!(
            verdict.result,
            Err(VerifyFailure::NotYetValid {
                not_before: "2020-01-01 00:00:00 UTC".into()
            })
        );
    }

    #[test]
    fn mercurials_test_certificate_in_the_ca_file_passes_by_its_common_name() {
        let der = testutil::pem_to_der(testutil::HG_PUB_PEM);
        let file = TempFile::new(testutil::HG_PUB_PEM);
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&der]),
            Ok(Trust::CommonNameFallback)
        );
        assert_eq!(
            verify(&trusting(&file, "127.0.0.1"), &[&der]),
            Err(VerifyFailure::NameMismatch {
                expected: "127.0.0.1".into(),
                presented: vec!["localhost".into()],
                why: None,
            })
        );
        let (_, verdict) = verify_at(
            &trusting(&file, "localhost"),
            &[&der],
            testutil::unix(2041, 3, 5),
        );
        assert_eq!(
            verdict.result.unwrap_err().to_string(),
            "certificate expired on 2041-03-04 04:17:12 UTC"
        );
    }

    #[test]
    fn mercurials_test_certificate_without_the_ca_file_is_self_signed() {
        let der = testutil::pem_to_der(testutil::HG_PUB_PEM);
        let other = Ca::new("Test CA");
        let file = TempFile::new(&other.pem());
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&der]),
            Err(VerifyFailure::SelfSigned {
                subject: "CN=localhost, Email=hg@localhost".into()
            })
        );
    }

    #[test]
    fn a_ca_signed_leaf_without_san_falls_back_to_its_common_name_only_under_the_users_ca_file() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let mut params = testutil::leaf_params(&[]);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let der = ca.sign(&params, &KeyKind::Ecdsa.key());
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&der]),
            Ok(Trust::CommonNameFallback)
        );
        assert_eq!(
            verify(&trusting(&file, "mail.example.org"), &[&der]),
            Err(VerifyFailure::NameMismatch {
                expected: "mail.example.org".into(),
                presented: vec!["localhost".into()],
                why: None,
            })
        );
    }

    #[test]
    fn a_common_name_is_ignored_when_the_certificate_has_a_san() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let mut params = testutil::leaf_params(&["mail.example.org"]);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let der = ca.sign(&params, &KeyKind::Ecdsa.key());
        assert!(matches!(
            verify(&trusting(&file, "localhost"), &[&der]),
            Err(VerifyFailure::NameMismatch { .. })
        ));
    }

    #[test]
    fn the_default_roots_do_not_trust_a_private_ca() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        assert_eq!(
            verify(&testutil::policy("localhost"), &[&leaf.der, ca.der()]),
            Err(VerifyFailure::UnknownIssuer {
                issuer: "CN=Test CA".into()
            })
        );
    }

    #[test]
    fn without_ca_file_default_roots_or_pins_nothing_is_trusted() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let policy = TlsPolicy {
            load_default_roots: false,
            ..testutil::policy("localhost")
        };
        let failure = verify(&policy, &[&leaf.der]).unwrap_err();
        assert_eq!(failure, VerifyFailure::NoTrustAnchors);
        assert_eq!(failure.to_string(), "no trusted CA certificates are loaded");
    }

    #[test]
    fn a_matching_pin_replaces_the_ca_and_name_checks() {
        let key = KeyKind::Ecdsa.key();
        let der = testutil::openssl_style_self_signed(&key, &["mail.example.org"]);
        let sha256 = fingerprint(&der, HashAlg::Sha256);
        let policy = TlsPolicy {
            load_default_roots: false,
            pins: vec![
                testutil::any_pin(),
                Pin::parse_fingerprint(&sha256).unwrap(),
            ],
            ..testutil::policy("localhost")
        };
        assert_eq!(
            verify(&policy, &[&der]),
            Ok(Trust::Pin {
                pin: sha256,
                legacy_sha1: false
            })
        );
    }

    #[test]
    fn a_legacy_sha1_pin_match_is_flagged() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Rsa);
        let sha1 = fingerprint(&leaf.der, HashAlg::Sha1);
        let policy = TlsPolicy {
            pins: vec![Pin::parse_legacy(sha1.trim_start_matches("sha1:")).unwrap()],
            ..testutil::policy("localhost")
        };
        assert_eq!(
            verify(&policy, &[&leaf.der]),
            Ok(Trust::Pin {
                pin: sha1,
                legacy_sha1: true
            })
        );
    }

    #[test]
    fn a_public_key_pin_match_names_the_spki_pin() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Ed25519);
        let spki = spki_pin(&leaf.der).unwrap();
        let policy = TlsPolicy {
            pins: vec![Pin::parse_pubkey(&spki).unwrap()],
            ..testutil::policy("localhost")
        };
        assert_eq!(
            verify(&policy, &[&leaf.der]),
            Ok(Trust::Pin {
                pin: spki,
                legacy_sha1: false
            })
        );
    }

    #[test]
    fn pins_are_enforced_even_when_insecure_and_even_over_a_trusted_chain() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let pin = testutil::any_pin();
        for insecure in [false, true] {
            let dangerous = if insecure {
                Dangerous::none().skip_ca_and_name_checks()
            } else {
                Dangerous::none()
            };
            let policy = TlsPolicy {
                pins: vec![pin.clone()],
                dangerous,
                ..trusting(&file, "localhost")
            };
            let failure = verify(&policy, &[&leaf.der]).unwrap_err();
            assert_eq!(
                failure,
                VerifyFailure::PinMismatch {
                    pins: vec![pin.to_string()],
                    certificates: true,
                    public_keys: false,
                }
            );
            assert_eq!(
                failure.to_string(),
                format!("certificate fingerprint does not match the pinned fingerprints ({pin})")
            );
        }
    }

    #[test]
    fn insecure_mode_accepts_any_certificate_without_pins() {
        let evil = Ca::new("Evil CA");
        let leaf = evil.leaf(&["mail.example.org"], KeyKind::Ecdsa);
        let policy = TlsPolicy {
            dangerous: Dangerous::none().skip_ca_and_name_checks(),
            load_default_roots: false,
            ..testutil::policy("localhost")
        };
        assert_eq!(verify(&policy, &[&leaf.der]), Ok(Trust::Insecure));
        // OpenSSL still decodes what it does not verify, and so does this.
        assert!(matches!(
            verify(&policy, &[b"not even a certificate"]),
            Err(VerifyFailure::OutsideProfile(_))
        ));
    }

    #[test]
    fn inspect_only_passes_the_handshake_but_records_the_failure() {
        let evil = Ca::new("Evil CA");
        let leaf = evil.leaf(&["localhost"], KeyKind::Ecdsa);
        let policy = TlsPolicy {
            dangerous: Dangerous::none().complete_failed_handshakes_for_inspection(),
            ..testutil::policy("localhost")
        };
        let (passed, verdict) = verify_at(&policy, &[&leaf.der], testutil::now());
        assert!(passed);
        assert!(matches!(
            verdict.result,
            Err(VerifyFailure::UnknownIssuer { .. })
        ));
    }

    #[test]
    fn a_malformed_leaf_is_refused_in_words() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let failure = verify(&trusting(&file, "localhost"), &[b"garbage"]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "the server's certificate (?) is not DER that OpenSSL decodes, so it cannot be \
             judged as stock Mercurial judges it; to send anyway, pin the server's certificate"
        );
    }

    #[test]
    fn a_leaf_not_for_server_authentication_is_refused_in_words() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let mut params = testutil::leaf_params(&["localhost"]);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
        let der = ca.sign(&params, &KeyKind::Ecdsa.key());
        let failure = verify(&trusting(&file, "localhost"), &[&der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate is not for TLS server authentication"
        );
    }

    #[test]
    fn failures_carry_the_matching_rustls_error_for_the_alert() {
        let cases = [
            (
                VerifyFailure::NoTrustAnchors,
                CertificateError::UnknownIssuer,
            ),
            (
                VerifyFailure::Expired {
                    not_after: "x".into(),
                },
                CertificateError::Expired,
            ),
            (
                VerifyFailure::NameMismatch {
                    expected: "x".into(),
                    presented: vec![],
                    why: None,
                },
                CertificateError::NotValidForName,
            ),
        ];
        for (failure, expected) in cases {
            assert_eq!(failure.to_rustls(), Error::InvalidCertificate(expected));
        }
        let Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) =
            VerifyFailure::PinMismatch {
                pins: vec![],
                certificates: true,
                public_keys: false,
            }
            .to_rustls()
        else {
            panic!("a pin mismatch is an Other certificate error")
        };
        assert!(inner.downcast_ref::<VerifyFailure>().is_some());
    }

    #[test]
    fn a_name_mismatch_without_any_name_still_reads_as_a_sentence() {
        let failure = VerifyFailure::NameMismatch {
            expected: "localhost".into(),
            presented: vec![],
            why: None,
        };
        assert_eq!(
            failure.to_string(),
            "certificate names no host, so it is not valid for localhost"
        );
    }

    // -- the CA file by OpenSSL's rules --------------------------------------

    fn refused(failure: &VerifyFailure) -> &AnchorProblem {
        match failure {
            VerifyFailure::AnchorRefused { problem, .. } => problem,
            other => panic!("expected an anchor refusal, got {other:?}"),
        }
    }

    /// A change to a certificate's parameters, for tables of cases.
    type Edit = fn(&mut rcgen::CertificateParams);

    fn ca_with(edit: impl FnOnce(&mut rcgen::CertificateParams)) -> Ca {
        let mut params = testutil::ca_params("Test CA");
        edit(&mut params);
        Ca::from_params(params)
    }

    fn unknown_critical_extension() -> rcgen::CustomExtension {
        let mut ext =
            rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
        ext.set_criticality(true);
        ext
    }

    #[test]
    fn a_self_signed_ca_false_server_certificate_in_the_ca_file_vouches_only_for_itself() {
        // What the README tells users to put in web.cacerts for their own
        // server, made the way `openssl req -x509 -addext basicConstraints=CA:FALSE` does.
        let server = ca_with(|p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "localhost");
            p.subject_alt_names = vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
            p.is_ca = rcgen::IsCa::ExplicitNoCa;
            p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        });
        let file = TempFile::new(&server.pem());
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[server.der()]),
            Ok(Trust::SelfInCaFile)
        );
        // Its key signs a certificate for another host: stock refuses
        // ("invalid CA certificate"), and so does this verifier.
        let forged = server.leaf(&["mail.example.org"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "mail.example.org"), &[&forged.der]).unwrap_err();
        assert_eq!(refused(&failure), &AnchorProblem::NotCa { ca_false: true });
        let text = failure.to_string();
        assert!(
            text.starts_with(&format!(
                "the certificate CN=localhost in your CA file ({}) is not a CA certificate \
                 (basicConstraints CA:FALSE), so it cannot vouch for another certificate; \
                 a server certificate in a CA file is trusted only as itself",
                file.path().display()
            )),
            "{text}"
        );
        // Sent along with the forged leaf, it is no intermediate either.
        assert!(verify(
            &trusting(&file, "mail.example.org"),
            &[&forged.der, server.der()]
        )
        .is_err());
    }

    #[test]
    fn an_expired_or_not_yet_valid_ca_in_the_ca_file_is_refused_with_its_date() {
        let ca = ca_with(|p| p.not_after = rcgen::date_time_ymd(2024, 1, 1));
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            format!(
                "the CA CN=Test CA in your CA file ({}) expired on 2024-01-01 00:00:00 UTC",
                file.path().display()
            )
        );
        let ca = ca_with(|p| p.not_before = rcgen::date_time_ymd(2026, 1, 1));
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            refused(&failure),
            &AnchorProblem::NotYetValid {
                not_before: "2026-01-01 00:00:00 UTC".into()
            }
        );
    }

    #[test]
    fn a_renewed_ca_with_the_same_key_stands_in_for_an_expired_one_in_the_same_file() {
        let key = KeyKind::Ecdsa.key();
        let mut old = testutil::ca_params("Test CA");
        old.not_after = rcgen::date_time_ymd(2024, 1, 1);
        let old = testutil::self_signed(&old, &key);
        let renewed = testutil::ca_params("Test CA");
        let issuer = rcgen::Issuer::new(renewed.clone(), key);
        let renewed = testutil::self_signed(&renewed, issuer.key());
        let leaf_key = KeyKind::Ecdsa.key();
        let leaf = testutil::leaf_params(&["localhost"])
            .signed_by(&leaf_key, &issuer)
            .unwrap()
            .der()
            .to_vec();
        let pem = format!(
            "{}{}",
            testutil::der_to_pem(&old),
            testutil::der_to_pem(&renewed)
        );
        let file = TempFile::new(&pem);
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&leaf]),
            Ok(Trust::CaChain)
        );
    }

    #[test]
    fn an_intermediate_alone_in_the_ca_file_is_not_a_trust_anchor() {
        let root = Ca::new("Test Root");
        let intermediate = root.intermediate("Test Intermediate");
        let leaf = intermediate.leaf(&["localhost"], KeyKind::Ecdsa);
        let file = TempFile::new(&intermediate.pem());
        let failure = verify(
            &trusting(&file, "localhost"),
            &[&leaf.der, intermediate.der()],
        )
        .unwrap_err();
        assert_eq!(
            refused(&failure),
            &AnchorProblem::NotSelfSigned {
                issuer: "CN=Test Root".into()
            }
        );
        assert!(
            failure
                .to_string()
                .contains("a chain must end at a self-signed root CA"),
            "{failure}"
        );
        // With its root in the file too, the file's intermediate completes a
        // chain the server sent without it, as OpenSSL does.
        let file = TempFile::new(&format!("{}{}", intermediate.pem(), root.pem()));
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&leaf.der]),
            Ok(Trust::CaChain)
        );
    }

    #[test]
    fn a_leaf_in_the_ca_file_that_is_not_self_signed_is_not_trusted_as_itself() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        let file = TempFile::new(&testutil::der_to_pem(&leaf.der));
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            format!(
                "certificate is in your CA file ({}) but cannot be trusted as itself: it is \
                 not self-signed (its issuer is CN=Test CA)",
                file.path().display()
            )
        );
    }

    #[test]
    fn a_self_signed_certificate_in_the_ca_file_must_be_fit_for_a_tls_server_to_be_trusted_as_itself(
    ) {
        let key = KeyKind::Ecdsa.key();
        let cases: [(Edit, AnchorProblem); 2] = [
            (
                |p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
                AnchorProblem::NotForServerAuth,
            ),
            (
                |p| p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign],
                AnchorProblem::KeyUsageNotForTls,
            ),
        ];
        // An unknown critical extension is outside the profile.
        let mut params = testutil::leaf_params(&["localhost"]);
        params.custom_extensions = vec![unknown_critical_extension()];
        let der = testutil::self_signed(&params, &key);
        let file = TempFile::new(&testutil::der_to_pem(&der));
        assert!(matches!(
            verify(&trusting(&file, "localhost"), &[&der]),
            Err(VerifyFailure::OutsideProfile(refusal)) if refusal.role == Role::Itself
        ));
        for (edit, problem) in cases {
            let mut params = testutil::leaf_params(&["localhost"]);
            edit(&mut params);
            let der = testutil::self_signed(&params, &key);
            let file = TempFile::new(&testutil::der_to_pem(&der));
            let failure = verify(&trusting(&file, "localhost"), &[&der]).unwrap_err();
            assert_eq!(
                failure,
                VerifyFailure::NotTrustedAsItself {
                    path: file.path().display().to_string(),
                    problem: Box::new(problem),
                }
            );
        }
    }

    #[test]
    fn the_anchors_path_length_constraint_limits_the_intermediates_below_it() {
        let root = ca_with(|p| p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0)));
        let file = TempFile::new(&root.pem());
        let direct = root.leaf(&["localhost"], KeyKind::Ecdsa);
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&direct.der]),
            Ok(Trust::CaChain)
        );
        let intermediate = root.intermediate("Test Intermediate");
        let leaf = intermediate.leaf(&["localhost"], KeyKind::Ecdsa);
        let failure = verify(
            &trusting(&file, "localhost"),
            &[&leaf.der, intermediate.der()],
        )
        .unwrap_err();
        assert_eq!(
            refused(&failure),
            &AnchorProblem::PathLength {
                allowed: 0,
                used: 1
            }
        );
        assert!(
            failure
                .to_string()
                .ends_with("(path length constraint exceeded)"),
            "{failure}"
        );
    }

    #[test]
    fn an_anchor_must_be_allowed_to_sign_certificates_and_serve_tls() {
        let cases: [(Edit, AnchorProblem); 5] = [
            (
                |p| p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature],
                AnchorProblem::NoCertSign,
            ),
            // Critical and supported by OpenSSL, but not enforced here.
            (
                |p| {
                    let mut ns = rcgen::CustomExtension::from_oid_content(
                        &[2, 16, 840, 1, 113_730, 1, 1],
                        vec![3, 2, 2, 4],
                    );
                    ns.set_criticality(true);
                    p.custom_extensions = vec![ns];
                },
                AnchorProblem::CriticalExtension {
                    oid: "2.16.840.1.113730.1.1".into(),
                },
            ),
            (
                |p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
                AnchorProblem::NotForServerAuth,
            ),
            // OpenSSL 3 refuses anyExtendedKeyUsage alone for a TLS server CA.
            (
                |p| p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::Any],
                AnchorProblem::NotForServerAuth,
            ),
            (
                |p| p.is_ca = rcgen::IsCa::NoCa,
                AnchorProblem::NotCa { ca_false: false },
            ),
        ];
        for (edit, problem) in cases {
            let ca = ca_with(edit);
            let file = TempFile::new(&ca.pem());
            let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
            let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
            assert_eq!(refused(&failure), &problem);
        }
        let ca = ca_with(|p| {
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        });
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&leaf.der]),
            Ok(Trust::CaChain)
        );
    }

    #[test]
    fn an_intermediate_must_be_allowed_to_sign_certificates() {
        let root = Ca::new("Test Root");
        let mut params = testutil::ca_params("Test Intermediate");
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let intermediate = root.intermediate_from(params);
        let leaf = intermediate.leaf(&["localhost"], KeyKind::Ecdsa);
        let file = TempFile::new(&root.pem());
        let failure = verify(
            &trusting(&file, "localhost"),
            &[&leaf.der, intermediate.der()],
        )
        .unwrap_err();
        assert_eq!(
            failure,
            VerifyFailure::IntermediateMayNotSign {
                subject: "CN=Test Intermediate".into()
            }
        );
    }

    #[test]
    fn a_server_certificate_whose_key_usage_excludes_tls_is_refused() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        for (usage, accepted) in [
            (rcgen::KeyUsagePurpose::DigitalSignature, true),
            (rcgen::KeyUsagePurpose::KeyEncipherment, true),
            (rcgen::KeyUsagePurpose::KeyAgreement, true),
            (rcgen::KeyUsagePurpose::DataEncipherment, false),
            (rcgen::KeyUsagePurpose::ContentCommitment, false),
        ] {
            let mut params = testutil::leaf_params(&["localhost"]);
            params.key_usages = vec![usage];
            let der = ca.sign(&params, &KeyKind::Ecdsa.key());
            let result = verify(&trusting(&file, "localhost"), &[&der]);
            if accepted {
                assert_eq!(result, Ok(Trust::CaChain), "{usage:?}");
            } else {
                assert_eq!(
                    result.unwrap_err().to_string(),
                    "certificate has a keyUsage that allows none of digitalSignature, \
                     keyEncipherment and keyAgreement",
                    "{usage:?}"
                );
            }
        }
    }

    #[test]
    fn name_constraints_on_the_path_turn_the_common_name_fallback_off() {
        let ca = ca_with(|p| {
            p.name_constraints = Some(rcgen::NameConstraints {
                permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("other.example".into())],
                excluded_subtrees: vec![],
            });
        });
        let file = TempFile::new(&ca.pem());
        let mut params = testutil::leaf_params(&[]);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let der = ca.sign(&params, &KeyKind::Ecdsa.key());
        let failure = verify(&trusting(&file, "localhost"), &[&der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate for localhost is not valid for localhost: it has no subjectAltName, \
             and its common name is not used when a CA of its chain has name constraints"
        );
        // A SAN outside the constraints is webpki's refusal.
        let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
        assert!(verify(&trusting(&file, "localhost"), &[&leaf.der]).is_err());
    }

    #[test]
    fn a_ca_file_without_any_ca_certificate_says_so() {
        let key = KeyKind::Ecdsa.key();
        let mut params = testutil::leaf_params(&["mail.example.org"]);
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        let own = testutil::self_signed(&params, &key);
        let file = TempFile::new(&testutil::der_to_pem(&own));
        let evil = Ca::new("Evil CA");
        let leaf = evil.leaf(&["localhost"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "localhost"), &[&leaf.der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            format!(
                "certificate is signed by an unknown authority (issuer: CN=Evil CA) (your CA \
                 file {} holds no CA certificate, so no CA certificates were loaded)",
                file.path().display()
            )
        );
    }

    #[test]
    fn an_expired_root_of_the_system_store_is_refused_as_openssl_refuses_it() {
        let expired = ca_with(|p| p.not_after = rcgen::date_time_ymd(2024, 1, 1));
        let leaf = expired.leaf(&["localhost"], KeyKind::Ecdsa);
        let (verifier, slot) = verifier(&testutil::policy("localhost")).unwrap();
        let verifier = Verifier {
            anchors: Anchors::Default(Arc::new(Roots::from_certs(&[CertificateDer::from(
                expired.der().to_vec(),
            )]))),
            ..Arc::into_inner(verifier).unwrap()
        };
        let name = ServerName::try_from("localhost").unwrap();
        let cert = CertificateDer::from(leaf.der.as_slice());
        assert!(verifier
            .verify_server_cert(&cert, &[], &name, &[], testutil::now())
            .is_err());
        let failure = slot.lock().unwrap().take().unwrap().result.unwrap_err();
        assert_eq!(
            failure.to_string(),
            "the CA CN=Test CA in the system trust store expired on 2024-01-01 00:00:00 UTC"
        );
    }

    #[test]
    fn a_sha1_pin_written_in_hostsecurity_is_not_legacy() {
        let ca = Ca::new("Test CA");
        let leaf = ca.leaf(&["localhost"], KeyKind::Rsa);
        let sha1 = fingerprint(&leaf.der, HashAlg::Sha1);
        let policy = TlsPolicy {
            pins: vec![Pin::parse_fingerprint(&sha1).unwrap()],
            ..testutil::policy("localhost")
        };
        assert_eq!(
            verify(&policy, &[&leaf.der]),
            Ok(Trust::Pin {
                pin: sha1,
                legacy_sha1: false
            })
        );
    }

    // -- why a name did not count --------------------------------------------

    #[test]
    fn an_address_written_otherwise_than_the_common_name_is_shown_as_written() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let mut params = testutil::leaf_params(&[]);
        params.subject_alt_names.clear();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "::1");
        let leaf = ca.sign(&params, &KeyKind::Ecdsa.key());
        assert_eq!(
            verify(&trusting(&file, "::1"), &[&leaf]),
            Ok(Trust::CommonNameFallback)
        );
        let failure = verify(&trusting(&file, "0:0:0:0:0:0:0:1"), &[&leaf]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate for ::1 is not valid for 0:0:0:0:0:0:0:1: its common name ::1 is the \
             same address written otherwise, and a common name is compared as text (as stock \
             Mercurial compares it)"
        );
    }

    #[test]
    fn a_name_constrained_certificate_trusted_as_itself_says_why_its_common_name_is_not_used() {
        let mut params = testutil::leaf_params(&[]);
        params.subject_alt_names.clear();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("localhost".into())],
            excluded_subtrees: Vec::new(),
        });
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let der = testutil::self_signed(&params, &KeyKind::Ecdsa.key());
        let file = TempFile::new(&testutil::der_to_pem(&der));
        assert_eq!(
            verify(&trusting(&file, "localhost"), &[&der])
                .unwrap_err()
                .to_string(),
            "certificate for localhost is not valid for localhost: it has no subjectAltName, \
             and its common name is not used when a CA of its chain has name constraints"
        );
    }

    #[test]
    fn an_ip_address_written_as_a_dns_name_is_explained() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let mut params = testutil::leaf_params(&["localhost"]);
        params.subject_alt_names = vec![rcgen::SanType::DnsName("127.0.0.1".try_into().unwrap())];
        let der = ca.sign(&params, &KeyKind::Ecdsa.key());
        let failure = verify(&trusting(&file, "127.0.0.1"), &[&der]).unwrap_err();
        assert_eq!(
            failure.to_string(),
            "certificate for 127.0.0.1 is not valid for 127.0.0.1: 127.0.0.1 is listed as a \
             DNS name, not an IP address (an iPAddress subjectAltName is needed)"
        );
    }

    #[test]
    fn a_partial_wildcard_is_explained() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["f*.example.org"], KeyKind::Ecdsa);
        let failure = verify(&trusting(&file, "foo.example.org"), &[&leaf.der]).unwrap_err();
        assert!(
            failure
                .to_string()
                .ends_with("f*.example.org is a partial wildcard, which is not accepted (RFC 6125: only a whole leftmost * label matches)"),
            "{failure}"
        );
    }

    #[test]
    fn an_international_host_is_checked_in_its_uts46_ascii_form() {
        let ca = Ca::new("Test CA");
        let file = TempFile::new(&ca.pem());
        let leaf = ca.leaf(&["xn--fa-hia.example"], KeyKind::Ecdsa);
        assert_eq!(
            verify(&trusting(&file, "faß.example"), &[&leaf.der]),
            Ok(Trust::CaChain)
        );
        // IDNA 2003 would have made it fass.example, another domain.
        let other = ca.leaf(&["fass.example"], KeyKind::Ecdsa);
        assert!(verify(&trusting(&file, "faß.example"), &[&other.der]).is_err());
    }
}
