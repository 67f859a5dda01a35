//! SASL for SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login).
//!
//! Both mechanisms send the password as base64, which is encoding, not
//! protection: the session only runs them over a verified TLS channel (or to
//! loopback, or when the user explicitly allows it). [`Credentials`] keeps
//! the password out of `Debug` and has no `Display`; [`secret_forms`] lists
//! every string that would give the password away, so tests and the
//! transcript redactor can look for all of them.
//!
//! PLAIN is preferred: one round trip with the initial response, and it is
//! the standard one. LOGIN remains for servers that offer nothing else.
//!
//! Left out: CRAM-MD5 and DIGEST-MD5 (obsolete, RFC 6331), SCRAM, XOAUTH2 and
//! OAUTHBEARER (they need a token source), and an authorization identity
//! different from the user (PLAIN's authzid is left empty). Secrets are not
//! zeroized on drop.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::smtp::capability::Capabilities;

/// A user name and password for AUTH.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials for `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The user name (authentication identity).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password. Callers must not log or display it.
    pub fn password(&self) -> &str {
        &self.password
    }
}

/// Shows the user name only: `Credentials { username: "alice", password: <redacted> }`.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted;
        impl fmt::Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("<redacted>")
            }
        }
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &Redacted)
            .finish()
    }
}

/// A SASL mechanism this client can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// PLAIN (RFC 4616), sent as an initial response with AUTH.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): user name and password each
    /// answer a 334 challenge.
    Login,
}

impl Mechanism {
    /// The name on the wire: `"PLAIN"` or `"LOGIN"`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// The mechanism to use with a server offering `caps`: PLAIN when
    /// offered, else LOGIN, else none.
    pub fn choose(caps: &Capabilities) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::Login]
            .into_iter()
            .find(|m| caps.supports_auth(m.name()))
    }
}

/// The PLAIN initial response: base64 of `NUL user NUL password` (empty
/// authorization identity), standard alphabet with padding.
pub fn plain_initial_response(c: &Credentials) -> String {
    STANDARD.encode(plain_message(c))
}

fn plain_message(c: &Credentials) -> Vec<u8> {
    let mut message = Vec::with_capacity(c.username.len() + c.password.len() + 2);
    message.push(0);
    message.extend_from_slice(c.username.as_bytes());
    message.push(0);
    message.extend_from_slice(c.password.as_bytes());
    message
}

/// The LOGIN answer to the user name challenge: base64 of the user name.
pub fn login_username(c: &Credentials) -> String {
    STANDARD.encode(&c.username)
}

/// The LOGIN answer to the password challenge: base64 of the password.
pub fn login_password(c: &Credentials) -> String {
    STANDARD.encode(&c.password)
}

/// Every string that would reveal the password on the wire or in output:
/// the password itself, its base64 (the LOGIN answer) and the PLAIN initial
/// response. Empty strings are left out (an empty password cannot be
/// searched for, and every text would "contain" it).
pub fn secret_forms(c: &Credentials) -> Vec<String> {
    let mut forms = vec![
        c.password.clone(),
        login_password(c),
        plain_initial_response(c),
    ];
    forms.retain(|f| !f.is_empty());
    forms.dedup();
    forms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::{Command, Reply};

    fn alice() -> Credentials {
        Credentials::new("alice", "s3cr3t-Pa55")
    }

    fn caps(auth_line: &str) -> Capabilities {
        Capabilities::from_ehlo(&Reply::new(
            250,
            vec![b"host".to_vec(), auth_line.as_bytes().to_vec()],
        ))
    }

    #[test]
    fn plain_initial_response_matches_rfc_4616() {
        // RFC 4616 section 4 example without authzid: "\0tim\0tanstaaftanstaaf".
        let tim = Credentials::new("tim", "tanstaaftanstaaf");
        assert_eq!(plain_initial_response(&tim), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        assert_eq!(
            STANDARD.decode(plain_initial_response(&alice())).unwrap(),
            b"\0alice\0s3cr3t-Pa55"
        );
    }

    #[test]
    fn login_answers_are_base64_with_padding() {
        assert_eq!(login_username(&alice()), "YWxpY2U=");
        assert_eq!(login_password(&alice()), "czNjcjN0LVBhNTU=");
    }

    #[test]
    fn non_ascii_credentials_are_encoded_as_utf8() {
        let c = Credentials::new("jörg", "pässwörd");
        assert_eq!(
            STANDARD.decode(plain_initial_response(&c)).unwrap(),
            "\0jörg\0pässwörd".as_bytes()
        );
    }

    #[test]
    fn debug_of_credentials_shows_the_user_but_not_the_password() {
        let c = alice();
        assert_eq!(
            format!("{c:?}"),
            "Credentials { username: \"alice\", password: <redacted> }"
        );
        let pretty = format!("{c:#?}");
        for secret in secret_forms(&c) {
            assert!(!pretty.contains(&secret));
        }
    }

    #[test]
    fn secret_forms_cover_password_login_answer_and_plain_blob() {
        let c = alice();
        let forms = secret_forms(&c);
        assert!(forms.contains(&"s3cr3t-Pa55".to_owned()));
        assert!(forms.contains(&login_password(&c)));
        assert!(forms.contains(&plain_initial_response(&c)));
        assert!(!forms.contains(&login_username(&c)));
    }

    #[test]
    fn secret_forms_of_an_empty_password_contain_no_empty_string() {
        let forms = secret_forms(&Credentials::new("alice", ""));
        assert!(forms.iter().all(|f| !f.is_empty()));
        assert_eq!(
            forms,
            [plain_initial_response(&Credentials::new("alice", ""))]
        );
    }

    #[test]
    fn auth_commands_built_from_credentials_never_show_a_secret() {
        let c = alice();
        let commands = [
            Command::Auth {
                mechanism: Mechanism::Plain.name().into(),
                initial_response: Some(plain_initial_response(&c)),
            },
            Command::AuthResponse(login_username(&c)),
            Command::AuthResponse(login_password(&c)),
        ];
        for cmd in &commands {
            for secret in secret_forms(&c) {
                assert!(!format!("{cmd:?}").contains(&secret));
                assert!(!cmd.to_string().contains(&secret));
                assert!(!cmd.transcript().contains(&secret));
            }
        }
        assert!(String::from_utf8(commands[0].to_wire())
            .unwrap()
            .contains(&plain_initial_response(&c)));
    }

    #[test]
    fn plain_is_preferred_then_login() {
        assert_eq!(
            Mechanism::choose(&caps("AUTH LOGIN PLAIN")),
            Some(Mechanism::Plain)
        );
        assert_eq!(
            Mechanism::choose(&caps("AUTH CRAM-MD5 LOGIN")),
            Some(Mechanism::Login)
        );
        assert_eq!(
            Mechanism::choose(&caps("AUTH=login")),
            Some(Mechanism::Login)
        );
        assert_eq!(Mechanism::choose(&caps("AUTH CRAM-MD5 XOAUTH2")), None);
        assert_eq!(Mechanism::choose(&Capabilities::none()), None);
    }

    #[test]
    fn mechanism_names_are_the_wire_names() {
        assert_eq!(Mechanism::Plain.name(), "PLAIN");
        assert_eq!(Mechanism::Login.name(), "LOGIN");
    }
}
