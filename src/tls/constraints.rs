//! Email name constraints on the subject's emailAddress, as OpenSSL applies
//! them (`NAME_CONSTRAINTS_check`, `nc_email`) and webpki does not.
//!
//! A CA's rfc822Name subtrees constrain the emailAddress attributes in the
//! subjects of the certificates below it (the leaf, and intermediates that
//! are not self-issued). Were they ignored, a CA the user trusts only for
//! `example.org` mail could vouch for a server whose certificate names
//! another domain's address, and stock Mercurial refuses that chain.
//! A subtree `.example.org` matches any address in a subdomain, `example.org`
//! the domain itself (case-insensitive), `user@example.org` that mailbox
//! (local part case-sensitive).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, GeneralSubtree};
use x509_parser::oid_registry::OID_PKCS9_EMAIL_ADDRESS;

use super::cert;

/// Why `ca`'s email constraints refuse one of `below`, or None.
pub(crate) fn email_problem(
    ca: &X509Certificate<'_>,
    below: &[&X509Certificate<'_>],
) -> Option<String> {
    let constraints = match ca.name_constraints() {
        Ok(Some(nc)) => nc.value.clone(),
        _ => return None,
    };
    let bases = |trees: &Option<Vec<GeneralSubtree<'_>>>| -> Vec<String> {
        trees
            .iter()
            .flatten()
            .filter_map(|t| match &t.base {
                GeneralName::RFC822Name(base) => Some((*base).to_owned()),
                _ => None,
            })
            .collect()
    };
    let permitted = bases(&constraints.permitted_subtrees);
    let excluded = bases(&constraints.excluded_subtrees);
    if permitted.is_empty() && excluded.is_empty() {
        return None;
    }
    for (index, subject) in below.iter().enumerate() {
        // OpenSSL leaves self-issued CA certificates out (key rollover), not
        // the leaf.
        if index > 0 && cert::is_self_issued(subject) {
            continue;
        }
        for attr in subject.subject().iter_attributes() {
            if attr.attr_type() != &OID_PKCS9_EMAIL_ADDRESS {
                continue;
            }
            // OpenSSL wants an IA5String here and refuses any other syntax.
            let email = match attr.attr_value().header.tag() {
                x509_parser::der_parser::asn1_rs::Tag::Ia5String => attr.as_str().ok(),
                _ => None,
            };
            let Some(email) = email else {
                return Some("an emailAddress that is not an IA5String".to_owned());
            };
            if !permitted.is_empty() && !permitted.iter().any(|b| email_matches(b, email)) {
                return Some(format!("{email} is not within its permitted email names"));
            }
            if let Some(base) = excluded.iter().find(|b| email_matches(b, email)) {
                return Some(format!(
                    "{email} is within its excluded email names ({base})"
                ));
            }
        }
    }
    None
}

/// OpenSSL's `nc_email`.
fn email_matches(base: &str, email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if base.starts_with('.') {
        return email.len() > base.len()
            && email
                .get(email.len() - base.len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(base));
    }
    let host = match base.split_once('@') {
        Some((base_local, host)) => {
            if !base_local.is_empty() && base_local != local {
                return false;
            }
            host
        }
        None => base,
    };
    host.eq_ignore_ascii_case(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_subtrees_match_as_openssl_matches_them() {
        assert!(email_matches(".example.org", "a@mail.example.org"));
        assert!(!email_matches(".example.org", "a@example.org"));
        assert!(email_matches("example.org", "a@EXAMPLE.org"));
        assert!(!email_matches("example.org", "a@mail.example.org"));
        assert!(email_matches("a@example.org", "a@example.org"));
        assert!(!email_matches("a@example.org", "A@example.org"));
        assert!(!email_matches("example.org", "no-at-sign"));
    }
}
