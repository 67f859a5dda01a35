//! The closed set of certificates the verifier judges (RFC 5280 DER, as
//! OpenSSL 3 decodes it), and the extensions it understands.
//!
//! Matching OpenSSL's verifier rule by rule never converges: every part of a
//! certificate nobody compared is a new place where the two may differ. So
//! before any rule is applied, every certificate a verdict rests on (the
//! server's certificate, each intermediate of the path, the anchor, a
//! certificate trusted as itself) passes [`strict`]:
//!
//! - its DER is what OpenSSL's decoder reads ([`decodes`]): one certificate,
//!   minimal lengths, a serial that is not empty, names whose values are
//!   strings OpenSSL canonicalises and that decode (UTF-8, BMP, Universal),
//!   or a BIT STRING (x500UniqueIdentifier);
//! - its validity times are `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ`
//!   (GeneralizedTime), the only forms OpenSSL's time check takes;
//! - no extension is there twice, and each is on [`ALLOWED`] with a
//!   criticality the list allows, and decodes.
//!
//! Anything else is refused, naming the certificate, the field or extension,
//! and the way out (a pin, which replaces the CA checks as in Mercurial).
//! Every such refusal is a row of docs/security.md's "stricter than stock".
//!
//! A pinned chain (and one accepted with `--insecure`) is held to
//! [`decodes`] only: stock Mercurial turns OpenSSL's verification off for a
//! pin, but OpenSSL still decodes every certificate of the handshake.
//!
//! A trust file (CA file, `SSL_CERT_FILE`, the default store file) is read
//! by [`super::pem`], which applies [`decodes`] to every certificate block
//! and [`private_key_decodes`] / [`crl_decodes`] to the other blocks OpenSSL
//! decodes.
//!
//! Left out: the signature algorithm and key parameters (webpki and ring
//! are stricter than OpenSSL there already).

use std::fmt;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

use super::cert;

/// How an allowed extension may be marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Criticality {
    /// Critical or not: OpenSSL and this verifier both enforce it.
    Either,
    /// Only non-critical: OpenSSL refuses it as an "unhandled critical
    /// extension" when critical.
    NonCritical,
}

/// How much of an allowed extension's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decode {
    /// x509-parser reads it (OpenSSL decodes it while verifying and marks
    /// the certificate invalid when it cannot).
    Parsed,
    /// OpenSSL never decodes it while verifying; its value must still be
    /// one DER element.
    Opaque,
}

/// One extension on the allow-list.
struct Allowed {
    oid: &'static str,
    name: &'static str,
    criticality: Criticality,
    decode: Decode,
}

const fn allow(
    oid: &'static str,
    name: &'static str,
    criticality: Criticality,
    decode: Decode,
) -> Allowed {
    Allowed {
        oid,
        name,
        criticality,
        decode,
    }
}

use Criticality::{Either, NonCritical};
use Decode::{Opaque, Parsed};

/// The extensions whose handling matches OpenSSL's. Critical where OpenSSL
/// supports them critically (`X509_supported_extension`) and this verifier
/// or webpki enforces them; otherwise non-critical only, where OpenSSL
/// ignores them as this verifier does. Each `Parsed` one is read by
/// OpenSSL's `ossl_x509v3_cache_extensions` or its policy code, and a
/// certificate where it does not decode is invalid to OpenSSL.
const ALLOWED: &[Allowed] = &[
    // Enforced by webpki and super::anchor.
    allow("2.5.29.19", "basicConstraints", Either, Parsed),
    allow("2.5.29.15", "keyUsage", Either, Parsed),
    allow("2.5.29.37", "extendedKeyUsage", Either, Parsed),
    allow("2.5.29.17", "subjectAltName", Either, Parsed),
    allow("2.5.29.30", "nameConstraints", Either, Parsed),
    // Restricts nothing without policy constraints, which are refused.
    allow("2.5.29.32", "certificatePolicies", Either, Parsed),
    // super::anchor::check_server_purpose.
    allow(
        "2.16.840.1.113730.1.1",
        "Netscape certificate type",
        Either,
        Parsed,
    ),
    // Used by OpenSSL for path building only (see docs/security.md).
    allow("2.5.29.14", "subjectKeyIdentifier", NonCritical, Parsed),
    allow("2.5.29.35", "authorityKeyIdentifier", NonCritical, Parsed),
    allow("2.5.29.31", "cRLDistributionPoints", NonCritical, Parsed),
    // Never read by OpenSSL's verifier when not critical.
    allow(
        "1.3.6.1.5.5.7.1.1",
        "authorityInfoAccess",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.3.6.1.5.5.7.1.11",
        "subjectInfoAccess",
        NonCritical,
        Opaque,
    ),
    allow("1.3.6.1.4.1.11129.2.4.2", "SCT list", NonCritical, Opaque),
    allow("2.5.29.18", "issuerAltName", NonCritical, Opaque),
    allow("2.5.29.16", "privateKeyUsagePeriod", NonCritical, Opaque),
    allow(
        "2.5.29.9",
        "subjectDirectoryAttributes",
        NonCritical,
        Opaque,
    ),
    allow("2.5.29.46", "freshestCRL", NonCritical, Opaque),
    allow("1.3.6.1.5.5.7.1.3", "qcStatements", NonCritical, Opaque),
    allow("1.3.6.1.5.5.7.1.12", "logotype", NonCritical, Opaque),
    allow("1.3.6.1.5.5.7.1.24", "TLS feature", NonCritical, Opaque),
    allow("1.3.6.1.5.5.7.48.1.5", "OCSP no check", NonCritical, Opaque),
    allow(
        "2.16.840.1.113730.1.13",
        "Netscape comment",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.2.840.113533.7.65.0",
        "Entrust version",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.2.840.113549.1.9.15",
        "S/MIME capabilities",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.3.6.1.4.1.311.20.2",
        "Microsoft certificate type",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.3.6.1.4.1.311.21.1",
        "Microsoft CA version",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.3.6.1.4.1.311.21.2",
        "Microsoft previous CA hash",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.3.6.1.4.1.311.21.7",
        "Microsoft certificate template",
        NonCritical,
        Opaque,
    ),
    allow(
        "1.3.6.1.4.1.311.21.10",
        "Microsoft application policies",
        NonCritical,
        Opaque,
    ),
    // SET's hashedRootKey, on a root of Debian's ca-certificates.
    allow("2.23.42.7.0", "SET hashedRootKey", NonCritical, Opaque),
];

/// Extensions OpenSSL enforces and this verifier does not: named in the
/// refusal so the reader knows why.
const ENFORCED_ELSEWHERE: &[(&str, &str)] = &[
    ("1.3.6.1.5.5.7.1.7", "RFC 3779 IP address blocks"),
    ("1.3.6.1.5.5.7.1.8", "RFC 3779 AS identifiers"),
    ("1.3.6.1.5.5.7.1.14", "proxyCertInfo"),
    ("1.3.6.1.5.5.7.1.10", "proxyCertInfo (draft)"),
    ("2.5.29.36", "policyConstraints"),
    ("2.5.29.33", "policyMappings"),
    ("2.5.29.54", "inhibitAnyPolicy"),
    ("1.3.6.1.4.1.11129.2.4.3", "certificate transparency poison"),
];

/// The name of an extension OID, for messages.
fn extension_name(oid: &str) -> Option<&'static str> {
    ALLOWED
        .iter()
        .map(|a| (a.oid, a.name))
        .chain(ENFORCED_ELSEWHERE.iter().copied())
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| name)
}

/// What puts a certificate outside the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Its DER is not one certificate as OpenSSL decodes it.
    Undecodable,
    /// Its serial number INTEGER is empty.
    EmptySerial,
    /// A string of its subject or issuer name is of a type OpenSSL does not
    /// canonicalise, or does not decode.
    NameString {
        /// `subject` or `issuer`.
        name: &'static str,
    },
    /// A validity time is not in one of the two forms OpenSSL reads.
    TimeForm {
        /// `notBefore` or `notAfter`.
        field: &'static str,
        /// The time as encoded.
        found: String,
    },
    /// An extension appears more than once.
    Twice {
        /// The OID, dotted.
        oid: String,
    },
    /// An extension's value does not decode.
    ExtensionUndecodable {
        /// The OID, dotted.
        oid: String,
    },
    /// An extension not on the allow-list, or critical where the list
    /// allows it only non-critical.
    ExtensionNotAllowed {
        /// The OID, dotted.
        oid: String,
        /// Whether it is marked critical.
        critical: bool,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = |oid: &str| match extension_name(oid) {
            Some(name) => format!("{name} ({oid})"),
            None => oid.to_owned(),
        };
        match self {
            Self::Undecodable => f.write_str("is not DER that OpenSSL decodes"),
            Self::EmptySerial => f.write_str("has an empty serial number"),
            Self::NameString { name } => write!(
                f,
                "has a string in its {name} name of a type or encoding OpenSSL does not decode"
            ),
            Self::TimeForm { field, found } => write!(
                f,
                "has its {field} time as {found:?}, not YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ"
            ),
            Self::Twice { oid } => write!(f, "has the extension {} twice", named(oid)),
            Self::ExtensionUndecodable { oid } => {
                write!(f, "has an extension {} that does not decode", named(oid))
            }
            Self::ExtensionNotAllowed { oid, critical } => write!(
                f,
                "has {} extension {}, which this verifier does not check as OpenSSL does",
                if *critical { "the critical" } else { "the" },
                named(oid)
            ),
        }
    }
}

/// Where a refused certificate stands in the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The server's certificate.
    Server,
    /// The n-th certificate the server sent (1 is the first after its own).
    Sent(usize),
    /// An intermediate CA of the path.
    Intermediate,
    /// The trust anchor, from the CA file or the system store.
    Anchor,
    /// The server's certificate, found in the CA file, trusted as itself.
    Itself,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Server => f.write_str("the server's certificate"),
            Self::Sent(n) => write!(f, "certificate {} of the chain the server sent", n + 1),
            Self::Intermediate => f.write_str("the intermediate CA"),
            Self::Anchor => f.write_str("the trusted CA"),
            Self::Itself => f.write_str("the server's certificate (trusted as itself)"),
        }
    }
}

/// A certificate of the verdict that is outside the profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Where it stands.
    pub role: Role,
    /// Its subject, `?` when it cannot be read.
    pub subject: String,
    /// What is outside the profile.
    pub fault: Fault,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) {}, so it cannot be judged as stock Mercurial judges it; to send \
             anyway, pin the server's certificate",
            self.role, self.subject, self.fault
        )
    }
}

impl Refusal {
    pub(crate) fn new(role: Role, der: &[u8], fault: Fault) -> Refusal {
        Refusal {
            role,
            subject: cert::subject(der),
            fault,
        }
    }
}

/// Whether `der` is one certificate as OpenSSL's `d2i_X509` reads it, and
/// as x509-parser reads it (a certificate one of them cannot read is not
/// judged).
pub(crate) fn decodes(der: &[u8]) -> Result<(), Fault> {
    outline(der)?;
    cert::parse(der).map(|_| ()).ok_or(Fault::Undecodable)
}

/// Whether `der`, a certificate the verdict rests on, is inside the profile.
pub(crate) fn strict(der: &[u8]) -> Result<(), Fault> {
    let outline = outline(der)?;
    let parsed = cert::parse(der).ok_or(Fault::Undecodable)?;
    for (field, time) in [
        ("notBefore", outline.not_before),
        ("notAfter", outline.not_after),
    ] {
        if !time_form(time) {
            return Err(Fault::TimeForm {
                field,
                found: String::from_utf8_lossy(time.content).into_owned(),
            });
        }
    }
    extensions(&parsed, outline.extensions)
}

/// [`strict`] as a verifier refusal.
pub(crate) fn check(role: Role, der: &[u8]) -> Result<(), Refusal> {
    strict(der).map_err(|fault| Refusal::new(role, der, fault))
}

fn extensions(parsed: &X509Certificate<'_>, raw: Vec<Tlv<'_>>) -> Result<(), Fault> {
    let mut seen: Vec<&[u8]> = Vec::new();
    for ext in &raw {
        // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT
        // FALSE, extnValue OCTET STRING }
        let mut fields = Reader::new(ext.content);
        let oid = fields.expect(OID).ok_or(Fault::Undecodable)?;
        let mut next = fields.next().ok_or(Fault::Undecodable)?;
        if next.tag == BOOLEAN {
            // Only 00 and FF: what else a BER decoder makes of other bytes
            // is not something to depend on.
            if next.content != [0x00] && next.content != [0xff] {
                return Err(Fault::Undecodable);
            }
            next = fields.next().ok_or(Fault::Undecodable)?;
        }
        if next.tag != OCTET_STRING || !fields.done() {
            return Err(Fault::Undecodable);
        }
        if seen.contains(&oid.content) {
            let dotted = dotted(oid.content);
            return Err(Fault::Twice { oid: dotted });
        }
        seen.push(oid.content);
    }
    for ext in parsed.extensions() {
        let oid = ext.oid.to_id_string();
        let allowed = ALLOWED.iter().find(|a| a.oid == oid);
        let Some(allowed) = allowed.filter(|a| !ext.critical || a.criticality == Either) else {
            return Err(Fault::ExtensionNotAllowed {
                oid,
                critical: ext.critical,
            });
        };
        // The value is one DER element with nothing after it.
        let mut value = Reader::new(ext.value);
        if value.next().is_none() || !value.done() {
            return Err(Fault::ExtensionUndecodable { oid });
        }
        if allowed.decode == Parsed
            && matches!(
                ext.parsed_extension(),
                ParsedExtension::ParseError { .. } | ParsedExtension::UnsupportedExtension { .. }
            )
        {
            return Err(Fault::ExtensionUndecodable { oid });
        }
    }
    Ok(())
}

// -- DER, as far as the profile reads it ----------------------------------------

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const NUMERIC_STRING: u8 = 0x12;
const PRINTABLE_STRING: u8 = 0x13;
const T61_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const UNIVERSAL_STRING: u8 = 0x1c;
const BMP_STRING: u8 = 0x1e;
const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// One DER element: its (single-byte) tag and its contents.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
}

/// Reads DER elements one after another: definite, minimal lengths only
/// (BER's other forms are where decoders disagree).
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    bad: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            rest: bytes,
            bad: false,
        }
    }

    /// The next element; `None` at the end or at bytes that are not one.
    pub(crate) fn next(&mut self) -> Option<Tlv<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        // High tag numbers (0x1f) appear in no field the profile reads.
        let parsed = (tag & 0x1f != 0x1f)
            .then(|| length(rest))
            .flatten()
            .and_then(|(len, rest)| (rest.len() >= len).then(|| rest.split_at(len)));
        match parsed {
            Some((content, rest)) => {
                self.rest = rest;
                Some(Tlv { tag, content })
            }
            None => {
                self.bad = true;
                self.rest = &[];
                None
            }
        }
    }

    /// The next element if it has `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Option<Tlv<'a>> {
        self.next().filter(|t| t.tag == tag)
    }

    /// The next element if it has `tag`, else nothing consumed.
    fn optional(&mut self, tag: u8) -> Option<Tlv<'a>> {
        if self.rest.first() == Some(&tag) {
            self.next()
        } else {
            None
        }
    }

    /// Whether everything was read and was well formed.
    pub(crate) fn done(&self) -> bool {
        self.rest.is_empty() && !self.bad
    }
}

/// A DER length (minimal: short form under 128, no leading zero byte) and
/// what follows it.
fn length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (&first, rest) = bytes.split_first()?;
    if first < 0x80 {
        return Some((usize::from(first), rest));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 || rest.len() < count || rest[0] == 0 {
        return None;
    }
    let (digits, rest) = rest.split_at(count);
    let len = digits
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    (len >= 0x80).then_some((len, rest))
}

/// The parts of a certificate the profile checks itself.
struct Outline<'a> {
    not_before: Tlv<'a>,
    not_after: Tlv<'a>,
    extensions: Vec<Tlv<'a>>,
}

/// Walks `der` as RFC 5280's Certificate, checking what OpenSSL's decoder
/// refuses (an empty serial, undecodable name strings) on the way.
fn outline(der: &[u8]) -> Result<Outline<'_>, Fault> {
    let bad = Fault::Undecodable;
    let mut whole = Reader::new(der);
    let certificate = whole.expect(SEQUENCE).ok_or(bad.clone())?;
    if !whole.done() {
        return Err(bad);
    }
    let mut parts = Reader::new(certificate.content);
    let tbs = parts.expect(SEQUENCE).ok_or(bad.clone())?;
    parts.expect(SEQUENCE).ok_or(bad.clone())?;
    parts.expect(0x03).ok_or(bad.clone())?;
    if !parts.done() {
        return Err(bad);
    }
    let mut tbs = Reader::new(tbs.content);
    tbs.optional(0xa0);
    let serial = tbs.expect(INTEGER).ok_or(bad.clone())?;
    if serial.content.is_empty() {
        return Err(Fault::EmptySerial);
    }
    tbs.expect(SEQUENCE).ok_or(bad.clone())?;
    let issuer = tbs.expect(SEQUENCE).ok_or(bad.clone())?;
    name_strings(issuer.content).ok_or(Fault::NameString { name: "issuer" })?;
    let validity = tbs.expect(SEQUENCE).ok_or(bad.clone())?;
    let mut times = Reader::new(validity.content);
    let not_before = times.next().ok_or(bad.clone())?;
    let not_after = times.next().ok_or(bad.clone())?;
    if !times.done() {
        return Err(bad);
    }
    let subject = tbs.expect(SEQUENCE).ok_or(bad.clone())?;
    name_strings(subject.content).ok_or(Fault::NameString { name: "subject" })?;
    tbs.expect(SEQUENCE).ok_or(bad.clone())?;
    tbs.optional(0x81);
    tbs.optional(0x82);
    let mut extensions = Vec::new();
    if let Some(wrapper) = tbs.optional(0xa3) {
        let mut wrapper = Reader::new(wrapper.content);
        let list = wrapper.expect(SEQUENCE).ok_or(bad.clone())?;
        if !wrapper.done() {
            return Err(bad);
        }
        let mut list = Reader::new(list.content);
        while let Some(ext) = list.next() {
            if ext.tag != SEQUENCE {
                return Err(bad);
            }
            extensions.push(ext);
        }
        if !list.done() || extensions.is_empty() {
            return Err(bad);
        }
    }
    if !tbs.done() {
        return Err(bad);
    }
    Ok(Outline {
        not_before,
        not_after,
        extensions,
    })
}

/// `Some` when every attribute value of the Name is a string OpenSSL
/// canonicalises (`x509_name_canon`) and that decodes in its encoding.
fn name_strings(name: &[u8]) -> Option<()> {
    let mut rdns = Reader::new(name);
    while let Some(rdn) = rdns.next() {
        if rdn.tag != SET {
            return None;
        }
        let mut attributes = Reader::new(rdn.content);
        let mut any = false;
        while let Some(attribute) = attributes.next() {
            any = true;
            if attribute.tag != SEQUENCE {
                return None;
            }
            let mut fields = Reader::new(attribute.content);
            fields.expect(OID)?;
            let value = fields.next()?;
            if !fields.done() || !string_decodes(value) {
                return None;
            }
        }
        if !any || !attributes.done() {
            return None;
        }
    }
    rdns.done().then_some(())
}

fn string_decodes(value: Tlv<'_>) -> bool {
    let bytes = value.content;
    match value.tag {
        UTF8_STRING => std::str::from_utf8(bytes).is_ok(),
        // Read byte for byte (as Latin-1 where not ASCII) by OpenSSL. Not
        // VisibleString: OpenSSL's name decoder (ASN1_PRINTABLE) does not
        // take it, and refuses the certificate (found by the generator).
        PRINTABLE_STRING | T61_STRING | IA5_STRING | NUMERIC_STRING => true,
        // x500UniqueIdentifier: kept as it is by OpenSSL's canonical form
        // (real certificates carry it; cryptography-vectors'
        // scottishpower-bitstring-dn.pem).
        BIT_STRING => bytes.first().is_some_and(|&unused| unused <= 7),
        BMP_STRING => {
            bytes.len() % 2 == 0 && bytes.chunks(2).all(|c| !(0xd8..=0xdf).contains(&c[0]))
        }
        UNIVERSAL_STRING => {
            bytes.len() % 4 == 0
                && bytes.chunks(4).all(|c| {
                    let v = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                    char::from_u32(v).is_some()
                })
        }
        _ => false,
    }
}

/// The two time forms OpenSSL's `X509_cmp_time` reads, with each field in
/// its range.
fn time_form(time: Tlv<'_>) -> bool {
    let digits = match (time.tag, time.content.len()) {
        (UTC_TIME, 13) => 12,
        (GENERALIZED_TIME, 15) => 14,
        _ => return false,
    };
    let text = time.content;
    if text[digits] != b'Z' || !text[..digits].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let field = |i: usize| u32::from(text[i] - b'0') * 10 + u32::from(text[i + 1] - b'0');
    // Month, day, hour, minute, second, after the year.
    let at = digits - 10;
    (1..=12).contains(&field(at))
        && (1..=31).contains(&field(at + 2))
        && field(at + 4) <= 23
        && field(at + 6) <= 59
        && field(at + 8) <= 59
}

/// An OID's contents, dotted (for messages).
fn dotted(content: &[u8]) -> String {
    x509_parser::oid_registry::Oid::new(content.into()).to_id_string()
}

/// Whether a `* PRIVATE KEY` block decodes as a private key: PKCS #8
/// (`PRIVATE KEY`) or PKCS #1 (`RSA PRIVATE KEY`) as ring reads them.
/// OpenSSL decodes every such block of a CA file and refuses the file when
/// one does not; a key ring cannot read (an EC key in SEC1 form, a curve
/// ring lacks) refuses the file too: stricter.
pub(crate) fn private_key_decodes(label: &[u8], der: &[u8]) -> bool {
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
    match label {
        b"PRIVATE KEY" => {
            let rng = SystemRandom::new();
            RsaKeyPair::from_pkcs8(der).is_ok()
                || Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).is_ok()
                || [
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                ]
                .into_iter()
                .any(|alg| EcdsaKeyPair::from_pkcs8(alg, der, &rng).is_ok())
        }
        b"RSA PRIVATE KEY" => RsaKeyPair::from_der(der).is_ok(),
        _ => false,
    }
}

/// Whether an `X509 CRL` block decodes: one CRL, as x509-parser reads it.
pub(crate) fn crl_decodes(der: &[u8]) -> bool {
    let mut whole = Reader::new(der);
    whole.expect(SEQUENCE).is_some()
        && whole.done()
        && x509_parser::parse_x509_crl(der).is_ok_and(|(rest, crl)| {
            rest.is_empty()
                && crl
                    .iter_revoked_certificates()
                    .all(|r| !r.raw_serial().is_empty())
                && crl
                    .extensions()
                    .iter()
                    .all(|e| !matches!(e.parsed_extension(), ParsedExtension::ParseError { .. }))
        })
}

/// Whether a `TRUSTED CERTIFICATE` block decodes (`d2i_X509_AUX`): a
/// certificate, then nothing or one SEQUENCE of trust settings.
pub(crate) fn trusted_certificate_decodes(der: &[u8]) -> bool {
    let mut parts = Reader::new(der);
    if parts.expect(SEQUENCE).is_none() {
        return false;
    }
    let used = der.len() - parts.rest.len();
    if decodes(&der[..used]).is_err() {
        return false;
    }
    match parts.next() {
        None => parts.done(),
        Some(aux) => aux.tag == SEQUENCE && parts.done(),
    }
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
