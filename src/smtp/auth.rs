//! SASL for SMTP AUTH (RFC 4954): SCRAM-SHA-256 (RFC 5802, 7677), PLAIN
//! (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195),
//! XOAUTH2, OAUTHBEARER (RFC 7628) and EXTERNAL (RFC 4422).
//!
//! PLAIN and LOGIN send the password as base64, which is encoding, not
//! protection: the session only runs them over a verified TLS channel (or to
//! loopback, or when the user explicitly allows it). SCRAM never sends the
//! password and makes the server prove it knows it. [`Credentials`] keeps
//! the secret (password or OAuth2 access token) out of `Debug` and has no
//! `Display`; [`secret_forms`] lists every string that would give the
//! password away, so tests and the transcript redactor can look for all of
//! them.
//!
//! Which mechanism: the caller names the allowed ones in order of
//! preference ([`Mechanism::choose`]); by default the strongest password
//! mechanism both sides offer ([`Mechanism::DEFAULT`]). OAuth2 needs a token,
//! not a password, and CRAM-MD5 is obsolete (RFC 6331 era, MD5): neither is
//! ever picked unless named.
//!
//! An [`Exchange`] is one run of a mechanism, pure: the session feeds it the
//! server's 334 challenges and final reply and writes what it answers.
//!
//! Left out: DIGEST-MD5 (obsolete), the SCRAM `-PLUS` variants (channel
//! binding), and an authorization identity different from the user. Secrets are not zeroized on drop.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::smtp::capability::Capabilities;
use crate::smtp::oauth;
use crate::smtp::reply::Reply;
use crate::smtp::sasl::SaslError;
use crate::smtp::scram::Scram;

/// A user name and its secret for AUTH: a password, or for XOAUTH2 and
/// OAUTHBEARER an OAuth2 access token.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials for `username` with `secret` (password or token).
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: secret.into(),
        }
    }

    /// The user name (authentication identity).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password or token. Callers must not log or display it.
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
    /// SCRAM-SHA-256 (RFC 7677): challenge-response, mutual authentication.
    ScramSha256,
    /// PLAIN (RFC 4616), sent as an initial response with AUTH.
    Plain,
    /// LOGIN (draft-murchison-sasl-login): user name and password each
    /// answer a 334 challenge.
    Login,
    /// CRAM-MD5 (RFC 2195): HMAC-MD5 of the server's challenge. Obsolete;
    /// only when the user names it.
    CramMd5,
    /// XOAUTH2 (Google, Microsoft): an OAuth2 bearer token.
    XOAuth2,
    /// OAUTHBEARER (RFC 7628): an OAuth2 bearer token, the standard form.
    OAuthBearer,
    /// EXTERNAL (RFC 4422 appendix A): the identity the server already
    /// knows, here from the TLS client certificate; no secret.
    External,
}

impl Mechanism {
    /// Every mechanism, in the order `smtp.auth` documents them.
    pub const ALL: [Mechanism; 7] = [
        Mechanism::XOAuth2,
        Mechanism::OAuthBearer,
        Mechanism::ScramSha256,
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::External,
    ];

    /// The choice when the user named none: password mechanisms, strongest first.
    pub const DEFAULT: [Mechanism; 3] =
        [Mechanism::ScramSha256, Mechanism::Plain, Mechanism::Login];

    /// The name on the wire, e.g. `"SCRAM-SHA-256"`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// The mechanism called `name` (any case), if this client has it.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Whether the secret is an OAuth2 access token rather than a password.
    pub fn is_oauth(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }

    /// The first of `allowed` that the server offering `caps` offers too.
    pub fn choose(allowed: &[Mechanism], caps: &Capabilities) -> Option<Mechanism> {
        allowed
            .iter()
            .copied()
            .find(|m| caps.supports_auth(m.name()))
    }
}

/// One run of a mechanism. Holds the secret: no `Debug`.
pub struct Exchange {
    mechanism: Mechanism,
    credentials: Credentials,
    state: State,
    /// The decoded OAuth2 error challenge, for the error message.
    detail: Option<String>,
}

enum State {
    Start,
    Scram(Box<Scram>),
    LoginUser,
    LoginPassword,
    Answered,
}

/// How many 334 challenges any mechanism here may see: SCRAM needs two,
/// LOGIN two; a server that keeps challenging is out of step.
pub const MAX_CHALLENGES: usize = 4;

impl Exchange {
    /// An exchange of `mechanism`. `host` and `port` go into OAUTHBEARER;
    /// `nonce` is SCRAM's client nonce (see [`crate::smtp::scram::client_nonce`]).
    pub fn new(mechanism: Mechanism, credentials: &Credentials, nonce: String) -> Exchange {
        let state = match mechanism {
            Mechanism::ScramSha256 => State::Scram(Box::new(Scram::new(
                &credentials.username,
                &credentials.password,
                nonce,
            ))),
            Mechanism::Login => State::LoginUser,
            _ => State::Start,
        };
        Exchange {
            mechanism,
            credentials: credentials.clone(),
            state,
            detail: None,
        }
    }

    /// The mechanism run.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The base64 initial response to send with AUTH, if the mechanism has one.
    pub fn initial_response(&self, host: &str, port: u16) -> Option<String> {
        let c = &self.credentials;
        match (&self.state, self.mechanism) {
            (_, Mechanism::Plain) => Some(plain_initial_response(c)),
            (_, Mechanism::XOAuth2) => {
                Some(STANDARD.encode(oauth::xoauth2_message(&c.username, &c.password)))
            }
            (_, Mechanism::OAuthBearer) => Some(STANDARD.encode(oauth::oauthbearer_message(
                &c.username,
                &c.password,
                host,
                port,
            ))),
            (State::Scram(scram), _) => Some(STANDARD.encode(scram.client_first())),
            // An empty authorization identity: "act as the certificate's
            // identity" (RFC 4422 A.1), sent as "=".
            (_, Mechanism::External) => Some(String::new()),
            _ => None,
        }
    }

    /// The base64 answer to a 334 challenge (its text, still base64).
    pub fn answer(&mut self, challenge: &str) -> Result<String, SaslError> {
        let decoded = STANDARD.decode(challenge.trim());
        let c = &self.credentials;
        match (&mut self.state, self.mechanism) {
            (_, Mechanism::XOAuth2 | Mechanism::OAuthBearer) => {
                // After the token, a challenge is the error report: keep it
                // and give the answer that lets the server send its 5xx.
                let bytes = decoded.unwrap_or_else(|_| challenge.as_bytes().to_vec());
                self.detail = Some(oauth::describe_error(&bytes));
                self.state = State::Answered;
                Ok(if self.mechanism == Mechanism::XOAuth2 {
                    String::new()
                } else {
                    STANDARD.encode([1u8])
                })
            }
            (State::LoginUser, _) => {
                self.state = State::LoginPassword;
                Ok(login_username(c))
            }
            (State::LoginPassword, _) => {
                let answer = login_password(c);
                self.state = State::Answered;
                Ok(answer)
            }
            (State::Start, Mechanism::CramMd5) => {
                let challenge = decoded
                    .map_err(|_| SaslError::BadChallenge("the challenge is not base64".into()))?;
                self.state = State::Answered;
                Ok(cram_md5_response(c, &challenge))
            }
            (State::Scram(scram), _) => {
                let message = decoded
                    .map_err(|_| SaslError::BadChallenge("the challenge is not base64".into()))?;
                if scram.awaiting_server_final() {
                    // RFC 4954: the server-final comes as a challenge,
                    // answered with an empty line once verified.
                    scram.verify_server_final(&message)?;
                    Ok(String::new())
                } else {
                    Ok(STANDARD.encode(scram.client_final(&message)?))
                }
            }
            _ => Err(SaslError::UnexpectedChallenge),
        }
    }

    /// Checks the server's 235: for SCRAM, the server must have proved it
    /// knows the password, in a challenge before or in the 235 itself.
    pub fn finish(&mut self, success: &Reply) -> Result<(), SaslError> {
        let State::Scram(scram) = &mut self.state else {
            return Ok(());
        };
        if scram.verified() {
            return Ok(());
        }
        if !scram.awaiting_server_final() {
            return Err(SaslError::MissingServerSignature);
        }
        // Some servers put the server-final in the 235's text, as base64
        // after the enhanced status code if any.
        for word in success.text().split_whitespace() {
            if let Ok(message) = STANDARD.decode(word) {
                if message.starts_with(b"v=") || message.starts_with(b"e=") {
                    return scram.verify_server_final(&message);
                }
            }
        }
        Err(SaslError::MissingServerSignature)
    }

    /// What the server said about a refused token (OAuth2), decoded.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
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

/// The CRAM-MD5 answer (RFC 2195): base64 of `user SP hex(HMAC-MD5(password, challenge))`.
pub fn cram_md5_response(c: &Credentials, challenge: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac =
        Hmac::<md5::Md5>::new_from_slice(c.password.as_bytes()).expect("HMAC accepts any key");
    mac.update(challenge);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    STANDARD.encode(format!("{} {digest}", c.username))
}

/// Every string that would reveal the password on the wire or in output:
/// the password itself, its base64 (the LOGIN answer), the PLAIN initial
/// response and the XOAUTH2 one. Empty strings are left out (an empty
/// password cannot be searched for, and every text would "contain" it).
pub fn secret_forms(c: &Credentials) -> Vec<String> {
    let mut forms = vec![
        c.password.clone(),
        login_password(c),
        plain_initial_response(c),
        STANDARD.encode(oauth::xoauth2_message(&c.username, &c.password)),
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
        assert!(forms.contains(&plain_initial_response(&Credentials::new("alice", ""))));
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
    fn default_choice_is_the_strongest_password_mechanism_offered() {
        let d = &Mechanism::DEFAULT;
        assert_eq!(
            Mechanism::choose(d, &caps("AUTH LOGIN PLAIN SCRAM-SHA-256")),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(
            Mechanism::choose(d, &caps("AUTH LOGIN PLAIN")),
            Some(Mechanism::Plain)
        );
        assert_eq!(
            Mechanism::choose(d, &caps("AUTH CRAM-MD5 LOGIN")),
            Some(Mechanism::Login)
        );
        assert_eq!(
            Mechanism::choose(d, &caps("AUTH=login")),
            Some(Mechanism::Login)
        );
        // Never OAuth2 (needs a token) or CRAM-MD5 (obsolete) by default.
        assert_eq!(
            Mechanism::choose(d, &caps("AUTH CRAM-MD5 XOAUTH2 OAUTHBEARER")),
            None
        );
        assert_eq!(Mechanism::choose(d, &Capabilities::none()), None);
    }

    #[test]
    fn a_listed_order_is_followed() {
        let listed = [Mechanism::XOAuth2, Mechanism::Plain];
        assert_eq!(
            Mechanism::choose(&listed, &caps("AUTH PLAIN XOAUTH2")),
            Some(Mechanism::XOAuth2)
        );
        assert_eq!(
            Mechanism::choose(&listed, &caps("AUTH PLAIN SCRAM-SHA-256")),
            Some(Mechanism::Plain)
        );
        assert_eq!(
            Mechanism::choose(&[Mechanism::CramMd5], &caps("AUTH CRAM-MD5 PLAIN")),
            Some(Mechanism::CramMd5)
        );
        assert_eq!(Mechanism::choose(&listed, &caps("AUTH LOGIN")), None);
    }

    #[test]
    fn mechanism_names_are_the_wire_names_and_parse_in_any_case() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(Mechanism::from_name(&m.name().to_lowercase()), Some(m));
        }
        assert_eq!(Mechanism::Plain.name(), "PLAIN");
        assert_eq!(Mechanism::ScramSha256.name(), "SCRAM-SHA-256");
        assert_eq!(Mechanism::from_name("digest-md5"), None);
        assert!(Mechanism::XOAuth2.is_oauth() && !Mechanism::Plain.is_oauth());
    }

    #[test]
    fn external_sends_an_empty_initial_response() {
        let mut ex = Exchange::new(
            Mechanism::External,
            &Credentials::new("alice", ""),
            String::new(),
        );
        assert_eq!(ex.initial_response("h", 25), Some(String::new()));
        let cmd = Command::Auth {
            mechanism: "EXTERNAL".into(),
            initial_response: ex.initial_response("h", 25),
        };
        assert_eq!(cmd.to_wire(), b"AUTH EXTERNAL =\r\n");
        assert_eq!(ex.answer(""), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn cram_md5_matches_rfc_2195() {
        let tim = Credentials::new("tim", "tanstaaftanstaaf");
        let challenge = "<1896.697170952@postoffice.reston.mci.net>";
        assert_eq!(
            cram_md5_response(&tim, challenge.as_bytes()),
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        );
        let mut ex = Exchange::new(Mechanism::CramMd5, &tim, String::new());
        assert_eq!(ex.initial_response("h", 25), None);
        assert_eq!(
            ex.answer("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")
                .unwrap(),
            "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
        );
        assert_eq!(ex.answer("eA=="), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn login_exchange_answers_user_then_password_then_nothing() {
        let mut ex = Exchange::new(Mechanism::Login, &alice(), String::new());
        assert_eq!(ex.initial_response("h", 25), None);
        assert_eq!(ex.answer("VXNlcm5hbWU6").unwrap(), "YWxpY2U=");
        assert_eq!(ex.answer("UGFzc3dvcmQ6").unwrap(), "czNjcjN0LVBhNTU=");
        assert_eq!(ex.answer("eA=="), Err(SaslError::UnexpectedChallenge));
    }

    #[test]
    fn plain_exchange_has_no_answer_to_a_challenge() {
        let mut ex = Exchange::new(Mechanism::Plain, &alice(), String::new());
        assert_eq!(
            ex.initial_response("h", 25),
            Some(plain_initial_response(&alice()))
        );
        assert_eq!(ex.answer(""), Err(SaslError::UnexpectedChallenge));
        assert_eq!(ex.finish(&Reply::new(235, vec![b"ok".to_vec()])), Ok(()));
    }

    #[test]
    fn oauth_error_challenges_are_answered_as_each_mechanism_requires() {
        let token = Credentials::new("alice@example.com", "ya29.TOKEN");
        let json = STANDARD
            .encode(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
        let mut x = Exchange::new(Mechanism::XOAuth2, &token, String::new());
        assert_eq!(
            STANDARD
                .decode(x.initial_response("h", 587).unwrap())
                .unwrap(),
            b"user=alice@example.com\x01auth=Bearer ya29.TOKEN\x01\x01"
        );
        assert_eq!(x.answer(&json).unwrap(), "");
        assert_eq!(
            x.detail(),
            Some("status=401, schemes=bearer, scope=https://mail.google.com/")
        );
        let mut o = Exchange::new(Mechanism::OAuthBearer, &token, String::new());
        assert_eq!(
            STANDARD.decode(o.initial_response("mx.example", 587).unwrap()).unwrap(),
            b"n,a=alice@example.com,\x01host=mx.example\x01port=587\x01auth=Bearer ya29.TOKEN\x01\x01"
        );
        assert_eq!(o.answer(&json).unwrap(), "AQ==");
        assert!(o.detail().unwrap().contains("status=401"));
    }

    fn rfc7677() -> Exchange {
        Exchange::new(
            Mechanism::ScramSha256,
            &Credentials::new("user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        )
    }

    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    #[test]
    fn scram_exchange_with_the_server_final_in_a_challenge() {
        let mut ex = rfc7677();
        assert_eq!(
            STANDARD
                .decode(ex.initial_response("h", 25).unwrap())
                .unwrap(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let client_final = ex.answer(&STANDARD.encode(SERVER_FIRST)).unwrap();
        assert!(String::from_utf8(STANDARD.decode(client_final).unwrap())
            .unwrap()
            .ends_with(",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        assert_eq!(ex.answer(&STANDARD.encode(SERVER_FINAL)).unwrap(), "");
        assert_eq!(
            ex.finish(&Reply::new(235, vec![b"2.7.0 ok".to_vec()])),
            Ok(())
        );
    }

    #[test]
    fn scram_exchange_with_the_server_final_in_the_235() {
        let mut ex = rfc7677();
        ex.answer(&STANDARD.encode(SERVER_FIRST)).unwrap();
        let line = format!("2.7.0 {}", STANDARD.encode(SERVER_FINAL));
        assert_eq!(ex.finish(&Reply::new(235, vec![line.into_bytes()])), Ok(()));
    }

    #[test]
    fn scram_success_without_a_server_signature_is_refused() {
        let mut ex = rfc7677();
        ex.answer(&STANDARD.encode(SERVER_FIRST)).unwrap();
        assert_eq!(
            ex.finish(&Reply::new(
                235,
                vec![b"2.7.0 Authentication successful".to_vec()]
            )),
            Err(SaslError::MissingServerSignature)
        );
        let mut early = rfc7677();
        assert_eq!(
            early.finish(&Reply::new(235, vec![b"ok".to_vec()])),
            Err(SaslError::MissingServerSignature)
        );
    }

    #[test]
    fn scram_wrong_server_signature_in_the_235_is_refused() {
        let mut ex = rfc7677();
        ex.answer(&STANDARD.encode(SERVER_FIRST)).unwrap();
        let forged = STANDARD.encode(format!("v={}", STANDARD.encode([0u8; 32])));
        assert_eq!(
            ex.finish(&Reply::new(235, vec![forged.into_bytes()])),
            Err(SaslError::ServerSignature)
        );
    }
}
