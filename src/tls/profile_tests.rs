//! Tests of the strict profile: each family of certificates OpenSSL reads
//! differently from x509-parser or webpki is outside it.

use rcgen::CustomExtension;

use super::super::testutil::{self, Ca, KeyKind, TempFile};
use super::*;
use crate::tls::{verify_offline, TlsPolicy, VerifyFailure};

/// The raw elements (tag, length and contents) of a DER sequence's contents.
fn elements(content: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut reader = Reader::new(content);
    let mut before = content.len();
    while reader.next().is_some() {
        let after = reader.rest.len();
        let start = content.len() - before;
        out.push(content[start..content.len() - after].to_vec());
        before = after;
    }
    assert!(reader.done(), "test input is DER");
    out
}

fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut out = vec![tag];
    if n < 0x80 {
        out.push(u8::try_from(n).unwrap()); // n < 0x80
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap()); // at most 8 bytes
        out.extend(bytes);
    }
    out.extend(content);
    out
}

/// `der` with its TBSCertificate's fields passed through `edit` (the
/// signature is kept, so it no longer verifies: the profile does not look).
fn edited(der: &[u8], edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let outer = Reader::new(der).next().unwrap().content;
    let parts = elements(outer);
    let mut fields = elements(Reader::new(&parts[0]).next().unwrap().content);
    edit(&mut fields);
    let tbs = wrap(SEQUENCE, &fields.concat());
    wrap(
        SEQUENCE,
        &[tbs, parts[1].clone(), parts[2].clone()].concat(),
    )
}

/// Index of the validity in a v3 TBSCertificate (version, serial,
/// signature, issuer, validity).
const VALIDITY: usize = 4;
const SERIAL: usize = 1;

fn with_times(der: &[u8], not_before: (u8, &str), not_after: (u8, &str)) -> Vec<u8> {
    edited(der, |fields| {
        let times = [
            wrap(not_before.0, not_before.1.as_bytes()),
            wrap(not_after.0, not_after.1.as_bytes()),
        ]
        .concat();
        fields[VALIDITY] = wrap(SEQUENCE, &times);
    })
}

fn ca_with(edit: impl FnOnce(&mut rcgen::CertificateParams)) -> Ca {
    let mut params = testutil::ca_params("Profile CA");
    edit(&mut params);
    Ca::from_params(params)
}

fn ext(oid: &[u64], content: &[u8], critical: bool) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(oid, content.to_vec());
    ext.set_criticality(critical);
    ext
}

const SKI: &[u64] = &[2, 5, 29, 14];
const AKI: &[u64] = &[2, 5, 29, 35];
const CRLDP: &[u64] = &[2, 5, 29, 31];
const NS_CERT_TYPE: &[u64] = &[2, 16, 840, 1, 113_730, 1, 1];
const SCT: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2];
const IP_BLOCKS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 7];
const AS_IDS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 8];
const PROXY_CERT_INFO: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 14];

/// A CA file holding `ca`, and the verdict on a leaf it signed.
fn verdict_under(ca: &Ca) -> Result<crate::tls::Trust, VerifyFailure> {
    let file = TempFile::new(&ca.pem());
    let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
    chain_verdict(&file, &[leaf.der])
}

fn chain_verdict(file: &TempFile, chain: &[Vec<u8>]) -> Result<crate::tls::Trust, VerifyFailure> {
    let policy = TlsPolicy {
        ca_file: Some(file.path().to_path_buf()),
        ..testutil::policy("localhost")
    };
    verify_offline(&policy, chain, testutil::now())
        .unwrap()
        .result
}

fn fault_of(result: Result<crate::tls::Trust, VerifyFailure>) -> (Role, Fault) {
    match result {
        Err(VerifyFailure::OutsideProfile(refusal)) => (refusal.role, refusal.fault),
        other => panic!("not refused by the profile: {other:?}"),
    }
}

#[test]
fn certificates_as_real_cas_make_them_are_inside_the_profile() {
    let ca = Ca::new("Profile CA");
    assert_eq!(strict(ca.der()), Ok(()));
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], KeyKind::Rsa);
    assert_eq!(strict(&leaf.der), Ok(()));
    assert_eq!(strict(&testutil::pem_to_der(testutil::HG_PUB_PEM)), Ok(()));
    assert_eq!(strict(&testutil::pem_to_der(testutil::V1_PEM)), Ok(()));
    assert!(verdict_under(&ca).is_ok());
}

#[test]
fn an_empty_serial_is_not_decoded_as_openssl_refuses_it() {
    let ca = Ca::new("Profile CA");
    let empty = edited(ca.der(), |f| f[SERIAL] = vec![INTEGER, 0]);
    assert_eq!(decodes(&empty), Err(Fault::EmptySerial));
    // A CA file holding it is refused whole, as OpenSSL refuses it.
    let text = format!("{}{}", ca.pem(), testutil::der_to_pem(&empty));
    assert!(matches!(
        super::super::pem::certificates(text.as_bytes()),
        Err(super::super::pem::PemError::Undecodable { .. })
    ));
}

#[test]
fn only_the_two_time_forms_openssl_reads_are_inside() {
    let ca = Ca::new("Profile CA");
    let good_after = (GENERALIZED_TIME, "20990101000000Z");
    assert_eq!(
        strict(&with_times(
            ca.der(),
            (UTC_TIME, "200101000000Z"),
            good_after
        )),
        Ok(())
    );
    for (tag, text) in [
        (UTC_TIME, "200101000000+0000"),
        (UTC_TIME, "2001010000+0000"),
        (UTC_TIME, "200101000000-0500"),
        (UTC_TIME, "2001010000Z"),
        (GENERALIZED_TIME, "20200101000000.5Z"),
        (GENERALIZED_TIME, "20200101000000"),
        (UTC_TIME, "201301000000Z"),
    ] {
        let der = with_times(ca.der(), (tag, text), good_after);
        // Some of them x509-parser cannot read either; all are outside.
        assert!(
            matches!(
                strict(&der),
                Err(Fault::TimeForm {
                    field: "notBefore",
                    ..
                } | Fault::Undecodable)
            ),
            "{text}"
        );
    }
}

#[test]
fn an_anchor_with_a_lenient_time_form_is_refused_naming_it() {
    // webpki uses only the anchor's subject and key, so the edited
    // signature does not matter; x509-parser reads the offset form.
    let ca = Ca::new("Profile CA");
    let lenient = with_times(
        ca.der(),
        (UTC_TIME, "200101000000+0000"),
        (GENERALIZED_TIME, "20990101000000Z"),
    );
    let file = TempFile::new(&testutil::der_to_pem(&lenient));
    let leaf = ca.leaf(&["localhost"], KeyKind::Ecdsa);
    let failure = chain_verdict(&file, &[leaf.der]).unwrap_err();
    assert_eq!(
        failure.to_string(),
        "the trusted CA (CN=Profile CA) has its notBefore time as \"200101000000+0000\", not \
         YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ, so it cannot be judged as stock Mercurial judges \
         it; to send anyway, pin the server's certificate"
    );
}

#[test]
fn a_self_signed_certificate_trusted_as_itself_is_held_to_the_time_forms() {
    let key = KeyKind::Ecdsa.key();
    let der = testutil::openssl_style_self_signed(&key, &["localhost"]);
    let lenient = with_times(
        &der,
        (GENERALIZED_TIME, "20200101000000.25Z"),
        (GENERALIZED_TIME, "20990101000000Z"),
    );
    let file = TempFile::new(&testutil::der_to_pem(&lenient));
    let (role, fault) = fault_of(chain_verdict(&file, &[lenient]));
    assert_eq!(role, Role::Itself);
    assert!(matches!(fault, Fault::TimeForm { .. }), "{fault:?}");
}

#[test]
fn rfc3779_resources_are_refused_on_any_certificate() {
    // OpenSSL checks IP and AS resources against the issuer's; this
    // verifier does not, so a certificate carrying them is not judged.
    for oid in [IP_BLOCKS, AS_IDS] {
        let ca = ca_with(|p| p.custom_extensions.push(ext(oid, &[0x30, 0x00], false)));
        let (role, fault) = fault_of(verdict_under(&ca));
        assert_eq!(role, Role::Anchor);
        assert!(
            matches!(
                fault,
                Fault::ExtensionNotAllowed {
                    critical: false,
                    ..
                }
            ),
            "{fault:?}"
        );
        assert!(fault.to_string().contains("RFC 3779"), "{fault}");
    }
}

#[test]
fn proxy_cert_info_is_refused_on_a_ca_and_on_a_leaf() {
    let ca = ca_with(|p| {
        p.custom_extensions
            .push(ext(PROXY_CERT_INFO, &[0x30, 0x00], false))
    });
    assert_eq!(fault_of(verdict_under(&ca)).0, Role::Anchor);
    let ca = Ca::new("Profile CA");
    let mut params = testutil::leaf_params(&["localhost"]);
    params
        .custom_extensions
        .push(ext(PROXY_CERT_INFO, &[0x30, 0x00], false));
    let leaf = ca.sign(&params, &KeyKind::Ecdsa.key());
    let file = TempFile::new(&ca.pem());
    assert_eq!(fault_of(chain_verdict(&file, &[leaf])).0, Role::Server);
}

#[test]
fn a_critical_sct_list_is_refused_and_a_plain_one_is_not() {
    let ca = Ca::new("Profile CA");
    let file = TempFile::new(&ca.pem());
    for critical in [false, true] {
        let mut params = testutil::leaf_params(&["localhost"]);
        params
            .custom_extensions
            .push(ext(SCT, &[0x04, 0x02, 0x00, 0x00], critical));
        let leaf = ca.sign(&params, &KeyKind::Ecdsa.key());
        let verdict = chain_verdict(&file, &[leaf]);
        assert_eq!(verdict.is_ok(), !critical, "{verdict:?}");
        // And on an intermediate.
        let mut params = testutil::ca_params("Profile Intermediate");
        params
            .custom_extensions
            .push(ext(SCT, &[0x04, 0x02, 0x00, 0x00], critical));
        let intermediate = ca.intermediate_from(params);
        let leaf = intermediate.leaf(&["localhost"], KeyKind::Ecdsa);
        let verdict = chain_verdict(&file, &[leaf.der, intermediate.der().to_vec()]);
        assert_eq!(verdict.is_ok(), !critical, "{verdict:?}");
        if critical {
            assert_eq!(fault_of(verdict).0, Role::Intermediate);
        }
    }
}

#[test]
fn a_ca_with_a_duplicated_or_undecodable_extension_is_refused() {
    let bad_content: &[u8] = &[0x02, 0x01, 0x00]; // an INTEGER where none belongs
    let cases: [(&[u64], &[u8]); 4] = [
        (SKI, &[0x04, 0x02, 0x01, 0x02]),
        (AKI, &[0x30, 0x04, 0x80, 0x02, 0x01, 0x02]),
        (NS_CERT_TYPE, &[0x03, 0x02, 0x02, 0x04]),
        (
            CRLDP,
            // One distribution point with a URI full name.
            &[
                0x30, 0x0c, 0x30, 0x0a, 0xa0, 0x08, 0xa0, 0x06, 0x86, 0x04, b'h', b't', b't', b'p',
            ],
        ),
    ];
    for (oid, good) in cases {
        let once = ca_with(|p| p.custom_extensions.push(ext(oid, good, false)));
        let twice = ca_with(|p| {
            p.custom_extensions.push(ext(oid, good, false));
            p.custom_extensions.push(ext(oid, good, false));
        });
        let broken = ca_with(|p| p.custom_extensions.push(ext(oid, bad_content, false)));
        // rcgen writes its own SKI (and the once case is then a duplicate).
        if oid != SKI {
            assert_eq!(strict(once.der()), Ok(()), "{oid:?}");
        }
        assert!(
            matches!(strict(twice.der()), Err(Fault::Twice { .. })),
            "{oid:?}"
        );
        let expected = if oid == SKI {
            matches!(strict(broken.der()), Err(Fault::Twice { .. }))
        } else {
            matches!(
                strict(broken.der()),
                Err(Fault::ExtensionUndecodable { .. })
            )
        };
        assert!(expected, "{oid:?}: {:?}", strict(broken.der()));
        // Refused, by the profile or before it (webpki refuses some
        // duplicates when it reads the CA as a candidate issuer).
        assert!(verdict_under(&twice).is_err(), "{oid:?}");
        assert!(verdict_under(&broken).is_err(), "{oid:?}");
    }
}

#[test]
fn an_unknown_extension_is_refused_even_when_not_critical_and_named_with_the_way_out() {
    let ca = Ca::new("Profile CA");
    let file = TempFile::new(&ca.pem());
    let mut params = testutil::leaf_params(&["localhost"]);
    params
        .custom_extensions
        .push(ext(&[1, 3, 6, 1, 4, 1, 55555, 1, 1], &[0x05, 0x00], false));
    let leaf = ca.sign(&params, &KeyKind::Ecdsa.key());
    assert_eq!(
        chain_verdict(&file, &[leaf]).unwrap_err().to_string(),
        "the server's certificate (CN=localhost) has the extension 1.3.6.1.4.1.55555.1.1, \
         which this verifier does not check as OpenSSL does, so it cannot be judged as stock \
         Mercurial judges it; to send anyway, pin the server's certificate"
    );
}

#[test]
fn a_pinned_chain_is_held_only_to_what_openssl_decodes() {
    let ca = Ca::new("Profile CA");
    let mut params = testutil::leaf_params(&["localhost"]);
    params
        .custom_extensions
        .push(ext(PROXY_CERT_INFO, &[0x30, 0x00], true));
    let leaf = ca.sign(&params, &KeyKind::Ecdsa.key());
    let pin = crate::tls::Pin::Cert {
        alg: crate::tls::HashAlg::Sha256,
        digest: crate::tls::HashAlg::Sha256.digest(&leaf),
    };
    let policy = TlsPolicy {
        pins: vec![pin],
        ..testutil::policy("localhost")
    };
    let verdict = verify_offline(&policy, std::slice::from_ref(&leaf), testutil::now()).unwrap();
    assert!(verdict.result.is_ok(), "{:?}", verdict.result);
    // What OpenSSL's decoder refuses is refused even pinned.
    let empty = edited(&leaf, |f| f[SERIAL] = vec![INTEGER, 0]);
    let verdict = verify_offline(&policy, &[empty], testutil::now()).unwrap();
    assert!(matches!(
        verdict.result,
        Err(VerifyFailure::OutsideProfile(_) | VerifyFailure::PinMismatch { .. })
    ));
}

#[test]
fn name_strings_openssl_cannot_decode_are_refused() {
    let ca = Ca::new("Profile CA");
    // The issuer name is the second SEQUENCE after the serial: replace the
    // CN's UTF8String with invalid UTF-8 and with an odd-length BMPString.
    for (tag, value) in [
        (UTF8_STRING, &b"\xff\xfe"[..]),
        (BMP_STRING, &b"\x00a\x00"[..]),
        (UNIVERSAL_STRING, &b"\x00\x00\x00"[..]),
        // VisibleString: OpenSSL refuses a CA file holding one in a name.
        (0x1a, &b"localhost"[..]),
        (0x04, &b"ab"[..]),
    ] {
        let name = wrap(
            SEQUENCE,
            &wrap(
                SET,
                &wrap(
                    SEQUENCE,
                    &[wrap(OID, &[0x55, 0x04, 0x03]), wrap(tag, value)].concat(),
                ),
            ),
        );
        let der = edited(ca.der(), |f| f[3] = name.clone());
        assert_eq!(
            decodes(&der),
            Err(Fault::NameString { name: "issuer" }),
            "{tag}"
        );
    }
    // A BIT STRING (x500UniqueIdentifier) is read by OpenSSL as it is.
    let unique = wrap(
        SEQUENCE,
        &wrap(
            SET,
            &wrap(
                SEQUENCE,
                &[wrap(OID, &[0x55, 0x04, 0x2d]), wrap(BIT_STRING, &[0, 1])].concat(),
            ),
        ),
    );
    assert_eq!(
        decodes(&edited(ca.der(), |f| f[3] = unique.clone())),
        Ok(())
    );
}

#[test]
fn private_keys_and_crls_in_a_trust_file_must_decode() {
    let key = KeyKind::Ecdsa.key();
    assert!(private_key_decodes(b"PRIVATE KEY", &key.serialize_der()));
    assert!(!private_key_decodes(
        b"PRIVATE KEY",
        &[0x30, 0x03, 0x02, 0x01, 0x05]
    ));
    assert!(!private_key_decodes(b"EC PRIVATE KEY", &[0x30, 0x00]));
    assert!(!crl_decodes(&[0x30, 0x03, 0x02, 0x01, 0x05]));
    let ca = Ca::new("Profile CA");
    assert!(trusted_certificate_decodes(ca.der()));
    assert!(trusted_certificate_decodes(
        &[ca.der(), &[0x30, 0x00][..]].concat()
    ));
    assert!(!trusted_certificate_decodes(
        &[ca.der(), &[0x01, 0x02][..]].concat()
    ));
}

#[test]
fn non_minimal_lengths_are_not_der() {
    assert!(Reader::new(&[0x04, 0x81, 0x01, 0x00]).next().is_none());
    assert!(Reader::new(&[0x04, 0x82, 0x00, 0x01, 0x00])
        .next()
        .is_none());
    assert!(Reader::new(&[0x04, 0x01, 0x00]).next().is_some());
}

/// Debian's ca-certificates: the Mozilla roots as files.
const DEBIAN_ROOTS: &str = "/usr/share/ca-certificates/mozilla";

#[test]
fn every_debian_root_is_inside_the_profile_as_an_anchor() {
    let Ok(entries) = std::fs::read_dir(DEBIAN_ROOTS) else {
        // The pytest suite's test_trust_roots.py fails where the
        // package is missing; here only the profile is under test.
        eprintln!("{DEBIAN_ROOTS} is missing: install ca-certificates");
        return;
    };
    let mut checked = 0;
    let mut outside = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let certs = super::super::pem::certificates(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for der in certs {
            checked += 1;
            if let Err(fault) = strict(&der) {
                outside.push(format!("{}: {fault}", path.display()));
            }
        }
    }
    assert!(checked >= 100, "only {checked} roots read");
    assert!(outside.is_empty(), "{}", outside.join("\n"));
}

#[test]
fn every_webpki_root_found_in_debians_store_is_inside_the_profile() {
    // webpki-roots bundles each root's subject, key and name constraints,
    // not its certificate: what is there must read as the profile reads
    // names, and each root whose certificate Debian ships (matched by
    // subject and key) must pass the profile.
    let debian: Vec<Vec<u8>> = std::fs::read_dir(DEBIAN_ROOTS)
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .filter_map(|bytes| super::super::pem::certificates(&bytes).ok())
                .flatten()
                .map(|der| der.to_vec())
                .collect()
        })
        .unwrap_or_default();
    let mut matched = 0;
    for anchor in webpki_roots::TLS_SERVER_ROOTS {
        assert!(
            name_strings(anchor.subject.as_ref()).is_some(),
            "{:?}",
            anchor.subject
        );
        let certificate = debian.iter().find(|der| {
            let der = rustls::pki_types::CertificateDer::from(der.as_slice());
            webpki::anchor_from_trusted_cert(&der).is_ok_and(|a| {
                a.subject.as_ref() == anchor.subject.as_ref()
                    && a.subject_public_key_info.as_ref() == anchor.subject_public_key_info.as_ref()
            })
        });
        if let Some(der) = certificate {
            matched += 1;
            assert_eq!(strict(der), Ok(()), "{}", cert::subject(der));
        }
    }
    if !debian.is_empty() {
        // Debian 12's list (2023) trails webpki-roots' (Mozilla, 2025): 95
        // match; a drop means the matching broke.
        assert!(
            matched >= 90,
            "only {matched} webpki roots found in Debian's store"
        );
    }
    eprintln!(
        "{matched} of {} webpki roots matched in Debian's store",
        webpki_roots::TLS_SERVER_ROOTS.len()
    );
}
