//! One error type for the whole session: what failed, at which stage, and the
//! server's reply when there was one. [`Kind`], [`Stage`] and [`Setting`] are
//! the typed values the Python binding hands to the shim, which turns them
//! into `error.SecurityError` or `error.Abort` with a hint naming the setting
//! to change; the shim never reads the message text to decide.

use std::fmt;
use std::time::Duration;

use crate::smtp::reply::code;
use crate::smtp::{CommandError, Reply, ReplyError, SaslError};
use crate::tls::{TlsSetupError, VerifyFailure};

/// Where in the session something went wrong, in the words a user knows.
#[cfg_attr(
    feature = "python",
    pyo3::pyclass(
        eq,
        frozen,
        hash,
        module = "securesmtp._core",
        rename_all = "SCREAMING_SNAKE_CASE"
    )
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

/// What kind of failure an [`Error`] is: what the shim dispatches on.
#[cfg_attr(
    feature = "python",
    pyo3::pyclass(
        eq,
        frozen,
        hash,
        module = "securesmtp._core",
        rename_all = "SCREAMING_SNAKE_CASE"
    )
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A setting is unusable.
    Config,
    /// The host did not resolve or no address accepted a connection.
    Connect,
    /// Resolving or connecting did not finish within the timeout.
    ConnectTimeout,
    /// The server did not answer (or read) within the timeout.
    Timeout,
    /// The connection broke (closed, reset, an OS error).
    Io,
    /// The server's bytes are not SMTP, or out of step.
    Protocol,
    /// AUTH was refused.
    Auth,
    /// A refusal or an unexpected reply at some other stage.
    Reply,
    /// STARTTLS required and not offered.
    StartTls,
    /// Bytes injected around STARTTLS.
    Injection,
    /// The certificate failed verification.
    Verify,
    /// The TLS handshake failed for another reason.
    Tls,
    /// No TLS version in common.
    TlsVersion,
    /// No AUTH mechanism in common.
    AuthMechanism,
    /// The server failed to prove itself in a SASL exchange (SCRAM's server
    /// signature wrong or missing).
    AuthServer,
    /// A SASL exchange went wrong in another way.
    AuthProtocol,
    /// AUTH would go over cleartext to a remote host.
    CleartextAuth,
    /// Every recipient was refused.
    Recipients,
    /// An address or name that cannot go on the wire.
    Input,
    /// The user interrupted.
    Interrupted,
    /// The session was already ended (QUIT) when it was used again; nothing
    /// was sent.
    SessionClosed,
    /// A bug in this extension: a panic caught at the Python binding.
    Internal,
}

/// The setting a [`Error::Config`] is about; the shim names it as the user
/// writes it in hgrc (with the host, where the setting is per host).
#[cfg_attr(
    feature = "python",
    pyo3::pyclass(
        eq,
        frozen,
        hash,
        module = "securesmtp._core",
        rename_all = "SCREAMING_SNAKE_CASE"
    )
)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// `smtp.host`
    Host,
    /// `smtp.port`
    Port,
    /// `smtp.tls`
    Tls,
    /// `smtp.timeout`
    Timeout,
    /// `hostsecurity.minimumprotocol` or `hostsecurity.HOST:minimumprotocol`
    MinimumProtocol,
    /// `hostsecurity.HOST:fingerprints`
    Fingerprints,
    /// `hostfingerprints.HOST`
    HostFingerprints,
    /// `hostsecurity.HOST:pubkeys`
    Pubkeys,
    /// `hostsecurity.ciphers` or `hostsecurity.HOST:ciphers`
    Ciphers,
    /// `web.cacerts` or `hostsecurity.HOST:verifycertsfile`
    CaCerts,
    /// `hostsecurity.HOST:clientcert` and `:clientkey`
    ClientCert,
    /// `smtp.auth`
    Auth,
    /// `smtp.username`
    Username,
}

/// Everything that can end a session or a transaction.
#[derive(Debug)]
pub enum Error {
    /// A setting is unusable (CA file missing, unknown cipher, bad pin).
    Config {
        /// Which setting.
        setting: Setting,
        /// What is wrong with it.
        message: String,
    },
    /// The host name did not resolve.
    Resolve {
        server: String,
        reason: String,
        /// The resolver did not answer within the timeout.
        timed_out: bool,
    },
    /// No address of the host accepted a connection.
    Connect {
        server: String,
        reason: String,
        /// Every attempt ran into the timeout.
        timed_out: bool,
    },
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
    /// The server wanted a client certificate and got none, or refused the
    /// one it got (`hostsecurity.HOST:clientcert`).
    ClientCertRefused { server: String, reason: String },
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
    /// The session was used after it ended (QUIT); nothing was sent.
    SessionClosed,
    /// A bug in this extension, caught where it surfaced (a panic at the
    /// Python binding): `context` says where, never what the panic said,
    /// which could quote a secret.
    Internal { context: String },
}

impl Error {
    /// The category the Python shim dispatches on.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config { .. } => Kind::Config,
            Error::Resolve {
                timed_out: true, ..
            }
            | Error::Connect {
                timed_out: true, ..
            } => Kind::ConnectTimeout,
            Error::Resolve { .. } | Error::Connect { .. } => Kind::Connect,
            Error::Timeout { .. } => Kind::Timeout,
            Error::Closed { .. } | Error::Io { .. } => Kind::Io,
            Error::Protocol { .. } => Kind::Protocol,
            Error::Reply {
                stage: Stage::Auth, ..
            } => Kind::Auth,
            Error::Reply { .. } => Kind::Reply,
            Error::StartTlsNotOffered { .. } => Kind::StartTls,
            Error::StartTlsInjection { .. } => Kind::Injection,
            Error::Verify { .. } => Kind::Verify,
            Error::Tls { .. } | Error::ClientCertRefused { .. } => Kind::Tls,
            Error::TlsVersion { .. } => Kind::TlsVersion,
            Error::AuthUnavailable { .. } => Kind::AuthMechanism,
            Error::AuthRefused { .. } => Kind::Auth,
            Error::AuthExchange {
                failure: SaslError::ServerSignature | SaslError::MissingServerSignature,
                ..
            } => Kind::AuthServer,
            Error::AuthExchange { .. } => Kind::AuthProtocol,
            Error::CleartextAuth { .. } => Kind::CleartextAuth,
            Error::RecipientsRefused { .. } => Kind::Recipients,
            Error::BadInput(_) => Kind::Input,
            Error::Interrupted => Kind::Interrupted,
            Error::SessionClosed => Kind::SessionClosed,
            Error::Internal { .. } => Kind::Internal,
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
            Error::Verify { .. }
            | Error::Tls { .. }
            | Error::ClientCertRefused { .. }
            | Error::TlsVersion { .. } => Some(Stage::Handshake),
            Error::AuthUnavailable { .. }
            | Error::CleartextAuth { .. }
            | Error::AuthRefused { .. }
            | Error::AuthExchange { .. } => Some(Stage::Auth),
            Error::RecipientsRefused { .. } => Some(Stage::Rcpt),
            _ => None,
        }
    }

    /// The setting to change, where the error alone says which.
    pub fn setting(&self) -> Option<Setting> {
        match self {
            Error::Config { setting, .. } => Some(*setting),
            Error::ClientCertRefused { .. } => Some(Setting::ClientCert),
            // A login was asked of a server that offers none here.
            Error::AuthUnavailable { offered, .. } if offered.is_empty() => Some(Setting::Username),
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
            | TlsSetupError::CaFileHasNoCertificates { .. } => Setting::CaCerts,
            TlsSetupError::UnknownCipher { .. }
            | TlsSetupError::NoTls12Cipher { .. }
            | TlsSetupError::NoCiphersForVersion => Setting::Ciphers,
            TlsSetupError::BadServerName { .. } => Setting::Host,
        };
        Error::Config {
            setting,
            message: e.to_string(),
        }
    }
}

/// A duration as users set it in `smtp.timeout`: "60 seconds", "0.5 seconds".
fn seconds(d: std::time::Duration) -> String {
    let secs = d.as_secs_f64();
    if d.subsec_millis() == 0 {
        format!(
            "{} second{}",
            d.as_secs(),
            if d.as_secs() == 1 { "" } else { "s" }
        )
    } else {
        format!("{} seconds", (secs * 1000.0).round() / 1000.0)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { message, .. } => f.write_str(message),
            Error::Resolve { server, reason, .. } => write!(f, "cannot resolve {server}: {reason}"),
            Error::Connect { server, reason, .. } => {
                write!(f, "cannot connect to {server}: {reason}")
            }
            Error::Timeout { stage, after } => write!(
                f,
                "timed out at {stage}: the server neither answered nor took data for {}",
                seconds(*after)
            ),
            Error::Closed { stage } => write!(f, "the server closed the connection at {stage}"),
            Error::Io { stage, reason } => write!(f, "connection error at {stage}: {reason}"),
            Error::Protocol { stage, reason } => {
                write!(f, "bad reply from the server at {stage}: {reason}")
            }
            Error::Reply { stage, reply } if reply.is_closing() => {
                write!(
                    f,
                    "the server is closing the connection (at {stage}): {reply}"
                )
            }
            Error::Reply { stage, reply } if reply.code() == code::GOODBYE => {
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
            Error::Tls { server, reason } | Error::ClientCertRefused { server, reason } => {
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
                if reply.is_transient() {
                    // RFC 4954 6: "454 4.7.0 Temporary authentication
                    // failure" says nothing about the secret: the server
                    // could not check it (its password database is down).
                    write!(
                        f,
                        "the server could not check the login just now (AUTH {mechanism}): {reply}"
                    )?;
                } else {
                    write!(f, "the server refused AUTH {mechanism}: {reply}")?;
                }
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
            Error::SessionClosed => f.write_str("the SMTP session is closed"),
            Error::Internal { context } => write!(f, "internal error in securesmtp ({context})"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_client_certificate_is_a_tls_failure_that_blames_its_setting() {
        let refused = Error::ClientCertRefused {
            server: "localhost:465".into(),
            reason: "the server requires a client certificate".into(),
        };
        assert_eq!(refused.kind(), Kind::Tls);
        assert_eq!(refused.setting(), Some(Setting::ClientCert));
        let other = Error::Tls {
            server: "localhost:465".into(),
            reason: "a client certificate is mentioned in this text".into(),
        };
        assert_eq!(other.setting(), None);
    }

    #[test]
    fn a_timeout_is_shown_in_the_units_it_was_set_in() {
        let shown = |ms| {
            Error::Timeout {
                stage: Stage::Data,
                after: std::time::Duration::from_millis(ms),
            }
            .to_string()
        };
        assert!(
            shown(60_000).ends_with("for 60 seconds"),
            "{}",
            shown(60_000)
        );
        assert!(shown(1_000).ends_with("for 1 second"), "{}", shown(1_000));
        assert!(shown(500).ends_with("for 0.5 seconds"), "{}", shown(500));
    }

    fn reply(code: u16, text: &str) -> Reply {
        Reply::new(code, vec![text.as_bytes().to_vec()])
    }

    #[test]
    fn a_connection_that_timed_out_is_its_own_kind() {
        let timed_out = |timed_out| Error::Connect {
            server: "mail.test:25".into(),
            reason: "connection timed out".into(),
            timed_out,
        };
        assert_eq!(timed_out(true).kind(), Kind::ConnectTimeout);
        assert_eq!(timed_out(false).kind(), Kind::Connect);
        let resolve = Error::Resolve {
            server: "mail.test:25".into(),
            reason: "name resolution timed out after 1 seconds".into(),
            timed_out: true,
        };
        assert_eq!(resolve.kind(), Kind::ConnectTimeout);
        assert_eq!(resolve.stage(), Some(Stage::Connect));
    }

    #[test]
    fn a_refusal_at_auth_is_an_auth_failure_and_elsewhere_a_reply() {
        let at = |stage| Error::reply_at(stage, reply(535, "no"));
        assert_eq!(at(Stage::Auth).kind(), Kind::Auth);
        assert_eq!(at(Stage::Mail).kind(), Kind::Reply);
        assert_eq!(at(Stage::Mail).reply().map(Reply::code), Some(535));
    }

    #[test]
    fn a_temporary_failure_at_auth_is_not_called_a_refusal() {
        let shown = |code, text| {
            Error::AuthRefused {
                mechanism: "PLAIN",
                reply: reply(code, text),
                detail: None,
            }
            .to_string()
        };
        assert_eq!(
            shown(454, "4.7.0 Temporary authentication failure"),
            "the server could not check the login just now (AUTH PLAIN): \
             454 4.7.0 Temporary authentication failure"
        );
        assert_eq!(
            shown(535, "5.7.8 Error: authentication failed"),
            "the server refused AUTH PLAIN: 535 5.7.8 Error: authentication failed"
        );
    }

    #[test]
    fn positive_replies_out_of_turn_are_not_called_refusals() {
        let shown = |code, text| Error::reply_at(Stage::Hello, reply(code, text)).to_string();
        assert_eq!(
            shown(220, "mail.test ESMTP"),
            "unexpected reply to EHLO: 220 mail.test ESMTP"
        );
        assert_eq!(
            shown(221, "bye"),
            "the server ended the session at EHLO: 221 bye"
        );
        assert_eq!(shown(550, "no"), "the server refused EHLO: 550 no");
        assert!(shown(421, "going away").starts_with("the server is closing the connection"));
    }

    #[test]
    fn a_closed_session_is_an_error_of_its_own_kind_with_no_stage_or_reply() {
        let e = Error::SessionClosed;
        assert_eq!(e.kind(), Kind::SessionClosed);
        assert_eq!(e.stage(), None);
        assert!(e.reply().is_none());
        assert_eq!(e.setting(), None);
        assert_eq!(e.to_string(), "the SMTP session is closed");
    }

    #[test]
    fn an_internal_error_says_where_and_is_of_kind_internal() {
        let e = Error::Internal {
            context: "at src/python.rs:1".into(),
        };
        assert_eq!(e.kind(), Kind::Internal);
        assert_eq!(
            e.to_string(),
            "internal error in securesmtp (at src/python.rs:1)"
        );
    }

    #[test]
    fn a_config_error_carries_its_setting() {
        let e = Error::Config {
            setting: Setting::Timeout,
            message: "smtp.timeout must be ...".into(),
        };
        assert_eq!(e.kind(), Kind::Config);
        assert_eq!(e.stage(), None);
    }
}
