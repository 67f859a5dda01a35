//! SCRAM-SHA-256 (RFC 5802, RFC 7677), the client side, without channel
//! binding (`n,,`): TLS already authenticated the server, and the SMTP
//! servers that offer SCRAM rarely offer the `-PLUS` variants.
//!
//! The password never crosses the wire: the client proves it knows it, and
//! the server proves in turn that it knows the salted password (its
//! `v=` signature), which a server that only relays the exchange cannot
//! forge. A wrong or missing server signature fails the exchange, so the
//! session stops before any mail goes out.
//!
//! Left out: SASLprep of the user name and password (RFC 4013); both are
//! sent as UTF-8 as given, which is the same for every ASCII password.
//! The salted password is not zeroized on drop.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::smtp::sasl::{saslname, SaslError};

type HmacSha256 = Hmac<Sha256>;

/// Iteration counts above this are refused: a hostile server could
/// otherwise make the client spin for minutes (RFC 7677 asks for at
/// least 4096; common servers use 4096 to 100000).
const MAX_ITERATIONS: u32 = 1_000_000;

/// A fresh client nonce: 18 random bytes as 24 base64 characters (never a
/// comma, never padding).
pub fn client_nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 18];
    // The system RNG fails only when the OS has none (no /dev/urandom,
    // no getrandom): nothing in this process could be secure then.
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random number generator");
    STANDARD.encode(bytes)
}

/// One SCRAM-SHA-256 exchange.
pub struct Scram {
    client_first_bare: String,
    nonce: String,
    password: String,
    /// The signature the server must send, once the client-final is built.
    expected_server_signature: Option<[u8; 32]>,
    verified: bool,
}

impl Scram {
    /// Starts an exchange for `username` with the given client nonce.
    pub fn new(username: &str, password: &str, nonce: String) -> Scram {
        Scram {
            client_first_bare: format!("n={},r={nonce}", saslname(username)),
            nonce,
            password: password.to_owned(),
            expected_server_signature: None,
            verified: false,
        }
    }

    /// The client-first message (RFC 5802 7), before base64.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message (with the proof) for the server-first message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<String, SaslError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| SaslError::BadChallenge("the server-first message is not UTF-8".into()))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for (i, attr) in server_first.split(',').enumerate() {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                // RFC 5802 5.1: a mandatory extension we do not know.
                Some(("m", _)) if i == 0 => {
                    return Err(SaslError::BadChallenge(
                        "the server requires a SCRAM extension this client does not know".into(),
                    ))
                }
                Some(("e", v)) => return Err(SaslError::ServerError(v.to_owned())),
                _ => {}
            }
        }
        let bad = |what: &str| SaslError::BadChallenge(format!("server-first message: {what}"));
        let nonce = nonce.ok_or_else(|| bad("no nonce"))?;
        // The server's nonce must extend ours, or this is a replay.
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("the nonce does not extend the client's"));
        }
        if nonce
            .bytes()
            .any(|b| !(0x21..=0x7e).contains(&b) || b == b',')
        {
            return Err(bad("the nonce has characters SCRAM does not allow"));
        }
        let salt = STANDARD
            .decode(salt.ok_or_else(|| bad("no salt"))?)
            .map_err(|_| bad("the salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or_else(|| bad("no iteration count"))?
            .parse()
            .map_err(|_| bad("the iteration count is not a number"))?;
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(bad(&format!(
                "iteration count {iterations} is outside 1..={MAX_ITERATIONS}"
            )));
        }

        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2::<HmacSha256>(self.password.as_bytes(), &salt, iterations, &mut salted)
            // Only an invalid output length fails, and 32 bytes is valid.
            .expect("PBKDF2 into 32 bytes");
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        // "biws" is base64("n,,"): no channel binding, no authzid.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks the server-final message (`v=...` or `e=...`).
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), SaslError> {
        let expected = self
            .expected_server_signature
            .ok_or(SaslError::UnexpectedChallenge)?;
        let text = std::str::from_utf8(server_final).unwrap_or("");
        for attr in text.split(',') {
            if let Some(error) = attr.strip_prefix("e=") {
                return Err(SaslError::ServerError(error.to_owned()));
            }
            if let Some(v) = attr.strip_prefix("v=") {
                let got = STANDARD.decode(v).map_err(|_| SaslError::ServerSignature)?;
                // Not secret (the server sends it in the clear of TLS), so a
                // plain comparison is fine.
                if got != expected {
                    return Err(SaslError::ServerSignature);
                }
                self.verified = true;
                return Ok(());
            }
        }
        Err(SaslError::BadChallenge(
            "the server-final message has no signature".into(),
        ))
    }

    /// Whether the server's signature was checked and right.
    pub fn verified(&self) -> bool {
        self.verified
    }

    /// Whether the client-final was sent (the next message is the server's final one).
    pub fn awaiting_server_final(&self) -> bool {
        self.expected_server_signature.is_some()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7677 section 3.
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_exchange() -> Scram {
        Scram::new("user", "pencil", NONCE.into())
    }

    #[test]
    fn client_messages_match_the_rfc_7677_example() {
        let mut scram = rfc_exchange();
        assert_eq!(scram.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            scram.client_final(SERVER_FIRST.as_bytes()).unwrap(),
            CLIENT_FINAL
        );
        assert!(!scram.verified());
        scram.verify_server_final(SERVER_FINAL.as_bytes()).unwrap();
        assert!(scram.verified());
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let mut scram = rfc_exchange();
        scram.client_final(SERVER_FIRST.as_bytes()).unwrap();
        let forged = format!("v={}", STANDARD.encode([7u8; 32]));
        assert_eq!(
            scram.verify_server_final(forged.as_bytes()),
            Err(SaslError::ServerSignature)
        );
        assert_eq!(
            scram.verify_server_final(b"v=not base64!"),
            Err(SaslError::ServerSignature)
        );
        assert!(!scram.verified());
    }

    #[test]
    fn a_server_final_before_the_client_final_is_refused() {
        assert_eq!(
            rfc_exchange().verify_server_final(SERVER_FINAL.as_bytes()),
            Err(SaslError::UnexpectedChallenge)
        );
    }

    #[test]
    fn a_server_error_is_reported() {
        let mut scram = rfc_exchange();
        scram.client_final(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            scram.verify_server_final(b"e=invalid-proof"),
            Err(SaslError::ServerError("invalid-proof".into()))
        );
    }

    #[test]
    fn a_nonce_that_does_not_extend_ours_is_refused() {
        for first in [
            "r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            assert!(matches!(
                rfc_exchange().client_final(first.as_bytes()),
                Err(SaslError::BadChallenge(_))
            ));
        }
    }

    #[test]
    fn absurd_or_missing_parameters_are_refused() {
        for first in [
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4000000000",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
            "r=rOprNGfwEbeRWgbNEkqOxyz,s=***,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOxyz,i=4096",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            assert!(
                matches!(
                    rfc_exchange().client_final(first.as_bytes()),
                    Err(SaslError::BadChallenge(_))
                ),
                "{first}"
            );
        }
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(saslname("a=b,c"), "a=3Db=2Cc");
        let scram = Scram::new("a,b", "x", "n".into());
        assert_eq!(scram.client_first(), "n,,n=a=2Cb,r=n");
    }

    #[test]
    fn client_nonces_are_fresh_and_safe() {
        let a = client_nonce();
        let b = client_nonce();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|c| c.is_ascii_graphic() && c != b','));
    }
}
