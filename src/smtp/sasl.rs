//! What the SASL mechanisms share (RFC 4422): how an exchange fails on the
//! client's side, and how a user name is written inside a mechanism's
//! message.

use std::fmt;

/// Why an exchange failed on the client's side (the server's refusals are
/// replies, reported as such).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaslError {
    /// A 334 challenge where the mechanism expects none.
    UnexpectedChallenge,
    /// A challenge the mechanism cannot read.
    BadChallenge(String),
    /// SCRAM: the server's signature is wrong: it does not know the
    /// password, so it is not the server the password was set up with.
    ServerSignature,
    /// SCRAM: the server accepted the login without proving it knows the
    /// password.
    MissingServerSignature,
    /// SCRAM: the server's `e=` error.
    ServerError(String),
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaslError::UnexpectedChallenge => {
                f.write_str("the server sent a challenge the mechanism has no answer for")
            }
            SaslError::BadChallenge(why) => write!(f, "unreadable challenge: {why}"),
            SaslError::ServerSignature => f.write_str(
                "the server's SCRAM signature is wrong: it does not know your password \
                 (it may not be the server you think it is)",
            ),
            SaslError::MissingServerSignature => f.write_str(
                "the server accepted the login without proving it knows your password \
                 (no SCRAM server signature)",
            ),
            SaslError::ServerError(e) => write!(
                f,
                "the server ended the SCRAM exchange with error '{}'",
                crate::smtp::sanitize(e.as_bytes())
            ),
        }
    }
}

/// RFC 5802 5.1: `=` and `,` in a user name are written `=3D` and `=2C`.
pub(crate) fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}
