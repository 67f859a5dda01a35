//! One error type for the whole session: what failed, at which stage, and the
//! server's reply when there was one. The Python binding maps each variant to
//! a `kind` the shim turns into `error.SecurityError` or `error.Abort` with a
//! hint naming the setting to change.

use std::fmt;
use std::time::Duration;

use crate::smtp::{CommandError, Reply, ReplyError, SaslError};
use crate::tls::{TlsSetupError, VerifyFailure};

/// Where in the session something went wrong, in the words a user knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Resolving and connecting.
    Connect,
    /// The server's 220 greeting.
    Greeting,
    /// EHLO or HELO.
    Hello,
    /// The STARTTLS command.
    StartTls,
    /// The TLS handshake.
    Handshake,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// DATA or BDAT.
    Data,
    /// The message body and its end.
    Body,
    /// RSET after a failed transaction.
    Reset,
    /// QUIT.
    Quit,
}

impl Stage {
    /// The name shown to the user.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Hello => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Handshake => "TLS handshake",
            Stage::Auth => "AUTH",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO (recipients)",
            Stage::Data => "DATA",
            Stage::Body => "end of data",
            Stage::Reset => "RSET",
            Stage::Quit => "QUIT",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can end a session or a transaction.
#[derive(Debug)]
pub enum Error {
    /// A setting is unusable (CA file missing, unknown cipher, bad pin).
    Config {
        /// Which setting, as the binding knows it (e.g. "fingerprints").
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The host name did not resolve.
    Resolve { server: String, reason: String },
    /// No address of the host accepted a connection.
    Connect { server: String, reason: String },
    /// The server stayed silent (or did not read) for the idle timeout.
    Timeout { stage: Stage, after: Duration },
    /// The server closed the connection.
    Closed { stage: Stage },
    /// An operating-system I/O error.
    Io { stage: Stage, reason: String },
    /// The server's bytes are not SMTP.
    Protocol { stage: Stage, reason: String },
    /// The server answered with a refusal (4yz/5yz) or an unexpected code.
    Reply { stage: Stage, reply: Reply },
    /// STARTTLS was required but the server does not advertise it.
    StartTlsNotOffered { server: String },
    /// Bytes arrived after the 220 to STARTTLS and before the handshake: a
    /// response-injection attempt (CVE-2011-0411 class).
    StartTlsInjection { server: String, bytes: usize },
    /// The certificate failed verification; nothing was sent.
    Verify {
        server: String,
        failure: VerifyFailure,
        /// The chain as presented, leaf first (for the fingerprint hint).
        chain: Vec<Vec<u8>>,
    },
    /// The handshake failed for a reason other than the certificate.
    Tls { server: String, reason: String },
    /// The server cannot speak a TLS version we accept.
    /// `certain` is false when the server just hung up on a client that
    /// offered only the minimum (asyncio-based servers do that instead of
    /// sending a protocol_version alert).
    TlsVersion {
        server: String,
        minimum: &'static str,
        certain: bool,
    },
    /// AUTH requested but the server offers none of the allowed mechanisms.
    AuthUnavailable {
        /// What the server offers.
        offered: Vec<String>,
        /// What the user allowed (`smtp.auth`), or empty for the default.
        allowed: Vec<&'static str>,
    },
    /// The server refused the login (a 4yz/5yz reply to AUTH or to an
    /// answer).
    AuthRefused {
        /// The mechanism that was run.
        mechanism: &'static str,
        /// The refusal.
        reply: Reply,
        /// The server's decoded OAuth2 error challenge, if it sent one.
        detail: Option<String>,
    },
    /// The exchange failed on the client's side: a challenge it cannot
    /// answer, or a SCRAM server that did not prove it knows the password.
    AuthExchange {
        /// The mechanism that was run.
        mechanism: &'static str,
        /// What went wrong.
        failure: SaslError,
    },
    /// AUTH would go over a cleartext connection to a remote host.
    CleartextAuth { server: String },
    /// Every recipient was refused; nothing was sent.
    RecipientsRefused { refused: Vec<(String, Reply)> },
    /// An address or host name that cannot be put on the wire safely.
    BadInput(CommandError),
    /// The user interrupted.
    Interrupted,
}

impl Error {
    /// The category the Python shim dispatches on.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Resolve { .. } | Error::Connect { .. } => "connect",
            Error::Timeout { .. } => "timeout",
            Error::Closed { .. } | Error::Io { .. } => "io",
            Error::Protocol { .. } => "protocol",
            Error::Reply {
                stage: Stage::Auth, ..
            } => "auth",
            Error::Reply { .. } => "reply",
            Error::StartTlsNotOffered { .. } => "starttls",
            Error::StartTlsInjection { .. } => "injection",
            Error::Verify { .. } => "verify",
            Error::Tls { .. } => "tls",
            Error::TlsVersion { .. } => "tlsversion",
            Error::AuthUnavailable { .. } => "authmech",
            Error::AuthRefused { .. } => "auth",
            Error::AuthExchange {
                failure: SaslError::ServerSignature | SaslError::MissingServerSignature,
                ..
            } => "authserver",
            Error::AuthExchange { .. } => "authprotocol",
            Error::CleartextAuth { .. } => "cleartextauth",
            Error::RecipientsRefused { .. } => "recipients",
            Error::BadInput(_) => "input",
            Error::Interrupted => "interrupted",
        }
    }

    /// The stage, where one applies.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Error::Timeout { stage, .. }
            | Error::Closed { stage }
            | Error::Io { stage, .. }
            | Error::Protocol { stage, .. }
            | Error::Reply { stage, .. } => Some(*stage),
            Error::Resolve { .. } | Error::Connect { .. } => Some(Stage::Connect),
            Error::StartTlsNotOffered { .. } | Error::StartTlsInjection { .. } => {
                Some(Stage::StartTls)
            }
            Error::Verify { .. } | Error::Tls { .. } | Error::TlsVersion { .. } => {
                Some(Stage::Handshake)
            }
            Error::AuthUnavailable { .. }
            | Error::CleartextAuth { .. }
            | Error::AuthRefused { .. }
            | Error::AuthExchange { .. } => Some(Stage::Auth),
            Error::RecipientsRefused { .. } => Some(Stage::Rcpt),
            _ => None,
        }
    }

    /// The server reply behind this error, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Error::Reply { reply, .. } | Error::AuthRefused { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// The error to report after `stage` failed with a reply.
    pub(crate) fn reply_at(stage: Stage, reply: Reply) -> Error {
        Error::Reply { stage, reply }
    }

    pub(crate) fn from_reply_error(stage: Stage, e: ReplyError) -> Error {
        Error::Protocol {
            stage,
            reason: e.to_string(),
        }
    }

    pub(crate) fn from_setup(e: TlsSetupError) -> Error {
        let setting = match e {
            TlsSetupError::CaFileMissing { .. }
            | TlsSetupError::CaFileUnreadable { .. }
            | TlsSetupError::CaFileHasNoCertificates { .. } => "cacerts",
            TlsSetupError::UnknownCipher { .. } | TlsSetupError::NoCiphersForVersion => "ciphers",
            TlsSetupError::BadServerName { .. } => "host",
        };
        Error::Config {
            setting,
            message: e.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { message, .. } => f.write_str(message),
            Error::Resolve { server, reason } => write!(f, "cannot resolve {server}: {reason}"),
            Error::Connect { server, reason } => write!(f, "cannot connect to {server}: {reason}"),
            Error::Timeout { stage, after } => write!(
                f,
                "timed out at {stage}: the server neither answered nor took data for {} seconds",
                after.as_secs()
            ),
            Error::Closed { stage } => write!(f, "the server closed the connection at {stage}"),
            Error::Io { stage, reason } => write!(f, "connection error at {stage}: {reason}"),
            Error::Protocol { stage, reason } => {
                write!(f, "bad reply from the server at {stage}: {reason}")
            }
            Error::Reply { stage, reply } if reply.code() == 421 => {
                write!(
                    f,
                    "the server is closing the connection (at {stage}): {reply}"
                )
            }
            Error::Reply { stage, reply } if reply.code() == 221 => {
                write!(f, "the server ended the session at {stage}: {reply}")
            }
            Error::Reply { stage, reply } if reply.is_positive() => {
                write!(f, "unexpected reply to {stage}: {reply}")
            }
            Error::Reply { stage, reply } => write!(f, "the server refused {stage}: {reply}"),
            Error::StartTlsNotOffered { server } => write!(
                f,
                "{server} does not offer STARTTLS; refusing to continue without encryption"
            ),
            Error::StartTlsInjection { server, bytes } => write!(
                f,
                "{server} sent {bytes} unexpected bytes after agreeing to STARTTLS \
                 (possible command injection by a man in the middle); connection dropped"
            ),
            Error::Verify {
                server, failure, ..
            } => {
                write!(
                    f,
                    "certificate of {server} could not be verified: {failure}"
                )
            }
            Error::Tls { server, reason } => {
                write!(f, "TLS handshake with {server} failed: {reason}")
            }
            Error::TlsVersion {
                server,
                minimum,
                certain: true,
            } => write!(
                f,
                "TLS handshake with {server} failed: the server does not support {minimum} or newer"
            ),
            Error::TlsVersion {
                server,
                minimum,
                certain: false,
            } => write!(
                f,
                "TLS handshake with {server} failed: the server closed the connection; \
                 it probably does not support {minimum}"
            ),
            Error::AuthUnavailable { offered, allowed } => {
                if offered.is_empty() {
                    f.write_str("the server offers no authentication")?;
                } else if allowed.is_empty() {
                    write!(
                        f,
                        "the server offers no password mechanism this client uses \
                         (offered: {})",
                        offered.join(" ")
                    )?;
                } else {
                    write!(
                        f,
                        "the server offers none of the mechanisms in smtp.auth ({}); \
                         it offers: {}",
                        allowed.join(" "),
                        offered.join(" ")
                    )?;
                }
                Ok(())
            }
            Error::AuthRefused {
                mechanism,
                reply,
                detail,
            } => {
                write!(f, "the server refused AUTH {mechanism}: {reply}")?;
                if let Some(detail) = detail {
                    write!(f, " (server's reason: {detail})")?;
                }
                Ok(())
            }
            Error::AuthExchange { mechanism, failure } => {
                write!(f, "AUTH {mechanism} failed: {failure}")
            }
            Error::CleartextAuth { server } => write!(
                f,
                "refusing to send the password to {server} over an unencrypted connection"
            ),
            Error::RecipientsRefused { refused } => {
                f.write_str("the server refused every recipient:")?;
                for (addr, reply) in refused {
                    write!(f, "\n  {addr}: {reply}")?;
                }
                Ok(())
            }
            Error::BadInput(e) => write!(f, "{e}"),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {}
