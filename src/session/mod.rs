//! The send engine: an SMTP submission session (RFC 5321) with STARTTLS
//! (RFC 3207), implicit TLS (RFC 8314), AUTH (RFC 4954), PIPELINING
//! (RFC 2920) and CHUNKING (RFC 3030).
//!
//! A [`Session`] is connected, greeted, secured and EHLO'd by
//! [`Session::connect`] (this file), optionally logged in by
//! [`Session::authenticate`] (`auth.rs`), then sends a series of messages
//! with [`Session::submit`] and [`Session::confirm`] (`stream.rs`, the only
//! way mail is sent), and ends with [`Session::quit`].
//!
//! The files of the engine:
//! - `mod.rs`: connect, greeting, EHLO/HELO, STARTTLS, the TLS handshake
//!   and its verdict, one command and its reply, reading replies within the
//!   timeout, QUIT, and turning transport failures into [`Error`]s;
//! - `auth.rs`: AUTH, its initial response and challenges;
//! - `stream.rs`: submit/confirm, in lock-step, with PIPELINING, or with
//!   PIPELINING and CHUNKING;
//! - [`queue`]: the replies still due and the outcome of each message they
//!   decide (pure, no I/O);
//! - `channel.rs`: the transport behind the proof every write past the
//!   cleartext phase needs.
//!
//! The security contract lives here and in `channel.rs`: nothing after the
//! TLS handshake is sent unless the certificate verifier said yes (the
//! channel hands out the proof every such write needs only then); STARTTLS
//! that is not offered, refused, or followed by injected bytes ends the
//! session; capabilities learned in cleartext are forgotten; AUTH never goes
//! over cleartext to a remote host unless the caller allowed it.
//!
//! Left out: DSN, BINARYMIME, SMTP over a proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use self::channel::{Channel, Secured, WriteError};
use self::queue::ReplyQueue;
use crate::error::{Error, Setting, Stage};
use crate::smtp::reply::code;
use crate::smtp::{sanitize, Capabilities, Command, Reply, ReplyParser};
use crate::tls::{self, MinVersion, TlsPolicy, Verdict, VerdictSlot};
use crate::transport::{ConnectFailure, Connection, Interrupt, IoFailure, TlsInfo, Transport};

mod auth;
mod channel;
pub mod queue;
mod stream;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// No TLS at all (`smtp.tls = none`).
    None,
    /// Cleartext first, then STARTTLS before anything else (RFC 3207).
    StartTls,
    /// TLS from the first byte (RFC 8314 "implicit TLS", `smtp.tls = smtps`).
    Implicit,
}

/// Everything a session needs to know before connecting.
#[derive(Clone, Debug)]
pub struct Config {
    /// Host to connect to, as configured.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Cleartext, STARTTLS or implicit TLS.
    pub security: Security,
    /// The name sent with EHLO.
    pub hello_name: String,
    /// Bound on each connection attempt.
    pub connect_timeout: Duration,
    /// Bound on how long the server may stay silent.
    pub timeout: Duration,
    /// How the server's certificate is verified.
    pub tls: TlsPolicy,
    /// Use PIPELINING and CHUNKING when offered.
    pub pipelining: bool,
    /// Allow AUTH over cleartext to a host that is not loopback.
    pub allow_cleartext_auth: bool,
    /// A certificate to present when the server asks for one.
    pub client_cert: Option<tls::ClientCert>,
}

/// Progress reports and the `--debug` transcript go here; it is also the
/// interrupt hook for the transport.
pub trait Observer: Interrupt {
    /// One line of the protocol transcript: "C: ..." or "S: ...".
    fn transcript(&mut self, line: &str);
    /// Whether transcript lines are wanted at all (avoids formatting them).
    fn wants_transcript(&self) -> bool;
    /// A line for the user while the session waits: what it waits for and
    /// the likely cause, long before the timeout says so.
    fn notice(&mut self, _line: &str) {}
}

/// An open SMTP session.
pub struct Session {
    conn: Channel,
    parser: ReplyParser,
    caps: Capabilities,
    verdict: Option<Verdict>,
    greeting: Option<Reply>,
    cleartext_caps: Option<Capabilities>,
    config: Config,
    observer: Box<dyn Observer + Send>,
    read_buf: Vec<u8>,
    /// The connection is out of step or gone (timeout, interrupt, a close or
    /// garbage mid-transaction): QUIT would only wait for nothing.
    broken: bool,
    /// The replies still due for the messages of the series, in lock-step
    /// as well as pipelined ([`Session::submit`]).
    queue: ReplyQueue,
}

/// How long a silent server may leave the greeting unsent before the user
/// is told what is being waited for (the wait itself lasts `smtp.timeout`).
const GREETING_PATIENCE: Duration = Duration::from_secs(5);

/// How long QUIT may wait for its reply: the messages are already sent, and
/// a user who pressed Ctrl-C must not wait a full idle timeout again.
const QUIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the connection is still usable after `e`: the server refused
/// something in an orderly way and is waiting for the next command.
fn in_step(e: &Error) -> bool {
    e.reply().is_some_and(|r| !r.ends_session())
        || matches!(e, Error::RecipientsRefused { .. } | Error::BadInput(_))
}

impl Session {
    /// Connect, read the greeting, EHLO, secure the channel as configured and
    /// EHLO again. On return the channel is as secure as the config asked for.
    pub fn connect(
        config: Config,
        mut observer: Box<dyn Observer + Send>,
    ) -> Result<Session, Error> {
        let server = server_label(&config.host, config.port);
        // Build the TLS config first: a bad CA file or cipher list is a
        // config error, reported before any byte goes out.
        let tls = tls_settings(&config)?;
        let conn = Connection::open(
            &config.host,
            config.port,
            config.connect_timeout,
            config.timeout,
            observer.as_mut(),
        )
        .map_err(|e| match e {
            ConnectFailure::Interrupted => Error::Interrupted,
            ConnectFailure::Resolve(e) => Error::Resolve {
                server: server.clone(),
                timed_out: e.kind() == std::io::ErrorKind::TimedOut,
                reason: e.to_string(),
            },
            ConnectFailure::Refused(tries) => Error::Connect {
                server: server.clone(),
                timed_out: tries
                    .iter()
                    .all(|(_, e)| e.kind() == std::io::ErrorKind::TimedOut),
                reason: tries
                    .iter()
                    .map(|(addr, e)| format!("{addr}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        })?;
        Session::establish(config, Box::new(conn), tls, observer)
    }

    /// [`Session::connect`] over a transport that is already open.
    #[cfg(test)]
    pub(crate) fn over(
        config: Config,
        transport: Box<dyn Transport>,
        observer: Box<dyn Observer + Send>,
    ) -> Result<Session, Error> {
        let tls = tls_settings(&config)?;
        Session::establish(config, transport, tls, observer)
    }

    fn establish(
        config: Config,
        transport: Box<dyn Transport>,
        tls: Option<TlsSettings>,
        observer: Box<dyn Observer + Send>,
    ) -> Result<Session, Error> {
        let mut session = Session {
            conn: Channel::new(transport, config.security == Security::None),
            parser: ReplyParser::new(),
            caps: Capabilities::none(),
            verdict: None,
            greeting: None,
            cleartext_caps: None,
            config,
            observer,
            read_buf: vec![0; 16 * 1024],
            broken: false,
            queue: ReplyQueue::default(),
        };
        match session.open(tls) {
            Ok(()) => Ok(session),
            Err(e) => {
                // RFC 5321 4.1.1.10 (and 3.1 for a refused greeting): say
                // QUIT when the server is still in step with us, so it does
                // not log a dropped connection; not when it is closing, out
                // of step, or the channel may not be spoken on.
                if in_step(&e) || matches!(e, Error::StartTlsNotOffered { .. }) {
                    let _ = session.quit();
                } else {
                    session.conn.close();
                }
                Err(e)
            }
        }
    }

    /// Greeting, EHLO, TLS as configured, EHLO again.
    fn open(&mut self, mut tls: Option<TlsSettings>) -> Result<(), Error> {
        if self.config.security == Security::Implicit {
            // Some(..) whenever security is not None, built above.
            let ((cfg, slot), name) = tls.take().expect("TLS settings for implicit TLS");
            self.handshake(cfg, slot, name)?;
        }
        let greeting = self.read_greeting()?;
        if greeting.code() != code::READY {
            return Err(Error::reply_at(Stage::Greeting, greeting));
        }
        self.greeting = Some(greeting);
        if !self.may_speak() {
            // Inspect mode with a failed verdict: report only, send nothing.
            return Ok(());
        }
        self.hello()?;
        if self.config.security == Security::StartTls {
            let (cfg, name) = tls.take().expect("TLS settings for STARTTLS");
            self.start_tls(cfg, name)?;
        }
        Ok(())
    }

    /// The verification verdict of the handshake, if TLS is in use.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.verdict.as_ref()
    }

    /// Capabilities the server announced on the current channel.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Capabilities announced before STARTTLS, for reports only (they were
    /// discarded as untrusted).
    pub fn cleartext_capabilities(&self) -> Option<&Capabilities> {
        self.cleartext_caps.as_ref()
    }

    /// The setting to change after `e`: the error's own, or `smtp.tls` when
    /// this cleartext session left unused the STARTTLS the server offers and
    /// the server then had no AUTH for us or answered 530 (RFC 3207's "must
    /// issue a STARTTLS command first"; RFC 4954's authentication required,
    /// which such servers offer only after STARTTLS).
    pub fn setting_at_fault(&self, e: &Error) -> Option<Setting> {
        let starttls_unused = self.config.security == Security::None && self.caps.starttls();
        let wants_tls = matches!(e, Error::AuthUnavailable { .. })
            || e.reply().is_some_and(|r| r.code() == code::AUTH_REQUIRED);
        if starttls_unused && wants_tls {
            return Some(Setting::Tls);
        }
        e.setting()
    }

    /// The server's greeting.
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    /// The negotiated TLS parameters.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.conn.tls_info()
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.conn.peer()
    }

    /// How long the server may stay silent from now on.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.config.timeout = timeout;
        self.conn.set_idle(timeout);
    }

    /// End the session politely. Errors are returned but the connection is
    /// closed either way.
    pub fn quit(&mut self) -> Result<(), Error> {
        if !self.may_speak() || self.broken {
            self.conn.close();
            return Ok(());
        }
        self.conn.set_idle(self.quit_timeout());
        let result = self.command(&Command::Quit, Stage::Quit).map(|_| ());
        self.conn.close();
        result
    }

    /// EHLO, falling back to HELO when the server refuses EHLO (RFC 5321
    /// 3.2). A server that refuses both ends the session.
    fn hello(&mut self) -> Result<(), Error> {
        let name = self.config.hello_name.clone();
        let ehlo = Command::ehlo(&name).map_err(Error::BadInput)?;
        let reply = self.command(&ehlo, Stage::Hello)?;
        // Only 250 is a greeting (RFC 5321 4.1.1.1); a 220 or 221 here is
        // reported as what it is, not later as missing capabilities.
        if reply.code() == code::OK {
            self.caps = Capabilities::from_ehlo(&reply);
            return Ok(());
        }
        if !reply.is_permanent() {
            return Err(Error::reply_at(Stage::Hello, reply));
        }
        let helo = Command::helo(&name).map_err(Error::BadInput)?;
        let reply = self.command(&helo, Stage::Hello)?;
        if reply.code() != code::OK {
            return Err(Error::reply_at(Stage::Hello, reply));
        }
        self.caps = Capabilities::none();
        Ok(())
    }

    fn start_tls(
        &mut self,
        (config, slot): (Arc<ClientConfig>, VerdictSlot),
        name: ServerName<'static>,
    ) -> Result<(), Error> {
        let server = server_label(&self.config.host, self.config.port);
        if !self.caps.starttls() {
            return Err(Error::StartTlsNotOffered { server });
        }
        let reply = self.command(&Command::StartTls, Stage::StartTls)?;
        if reply.code() != code::READY {
            return Err(Error::reply_at(Stage::StartTls, reply));
        }
        // Anything already buffered was sent before the handshake by someone
        // who wants it read as if it came over TLS.
        let injected = self.parser.buffered();
        if injected > 0 {
            return Err(Error::StartTlsInjection {
                server,
                bytes: injected,
            });
        }
        self.handshake(config, slot, name)?;
        // RFC 3207 4.2: forget everything learned in cleartext.
        self.cleartext_caps = Some(std::mem::replace(&mut self.caps, Capabilities::none()));
        if !self.may_speak() {
            return Ok(());
        }
        self.hello()
    }

    /// Whether anything may be sent: not on a TLS channel the verifier
    /// refused (only inspect mode leaves one open), nor on a closed one.
    fn may_speak(&self) -> bool {
        self.conn.may_speak()
    }

    /// Credentials and messages go only over a verified channel, or over
    /// cleartext when the user chose no TLS at all; the channel holds the
    /// proof of which.
    fn proof(&self) -> Result<Secured, Error> {
        self.conn.proof().ok_or_else(|| self.not_secured())
    }

    fn not_secured(&self) -> Error {
        Error::Tls {
            server: server_label(&self.config.host, self.config.port),
            reason: "the server's certificate was not verified; nothing may be sent".into(),
        }
    }

    /// How long QUIT may wait for its reply.
    fn quit_timeout(&self) -> Duration {
        QUIT_TIMEOUT.min(self.config.timeout)
    }

    fn reply_timeout(&self, stage: Stage) -> Duration {
        if stage == Stage::Quit {
            self.quit_timeout()
        } else {
            self.config.timeout
        }
    }

    fn handshake(
        &mut self,
        config: Arc<ClientConfig>,
        slot: VerdictSlot,
        name: ServerName<'static>,
    ) -> Result<(), Error> {
        let server = server_label(&self.config.host, self.config.port);
        let (result, verdict) = self
            .conn
            .start_tls(config, name, &slot, self.observer.as_mut());
        match result {
            Ok(()) => self.take_verdict(server, verdict),
            Err(IoFailure::Tls(e)) => {
                if let Some(reason) = client_cert_refusal(&e, self.config.client_cert.is_some()) {
                    return Err(Error::ClientCertRefused { server, reason });
                }
                if let Some(Verdict {
                    chain,
                    result: Err(failure),
                }) = verdict
                {
                    return Err(Error::Verify {
                        server,
                        failure,
                        chain,
                    });
                }
                Err(tls_error(server, e, self.config.tls.min_version))
            }
            // After STARTTLS's 220 the server owes us a TLS record; SMTP text
            // in its place came from someone else, however it was timed.
            Err(IoFailure::Cleartext(bytes)) if self.config.security == Security::StartTls => {
                Err(Error::StartTlsInjection { server, bytes })
            }
            Err(IoFailure::Cleartext(_)) => Err(Error::Tls {
                server,
                reason: "the server answered with SMTP instead of TLS; \
                         is this port for plain SMTP (smtp.tls=starttls)?"
                    .into(),
            }),
            Err(IoFailure::Closed) if self.config.tls.min_version == MinVersion::Tls13 => {
                Err(Error::TlsVersion {
                    server,
                    minimum: "TLS 1.3",
                    certain: false,
                })
            }
            Err(e) => Err(self.io_error(Stage::Handshake, e)),
        }
    }

    /// A completed handshake: keep its verdict, which must have passed
    /// (only in inspect mode does a failed one get this far, and the
    /// channel then stays unverified, so nothing more is sent on it).
    fn take_verdict(&mut self, server: String, verdict: Option<Verdict>) -> Result<(), Error> {
        let verdict = verdict.ok_or_else(|| Error::Tls {
            server: server.clone(),
            reason: "handshake finished without certificate verification".into(),
        })?;
        match &verdict.result {
            Ok(_) => {}
            Err(_) if self.config.tls.dangerous.inspects() => {}
            Err(failure) => {
                return Err(Error::Verify {
                    server,
                    failure: failure.clone(),
                    chain: verdict.chain.clone(),
                })
            }
        }
        self.verdict = Some(verdict);
        if self.observer.wants_transcript() {
            if let Some(info) = self.conn.tls_info() {
                self.observer.transcript(&format!(
                    "-- TLS established: {} {} {}",
                    info.version, info.cipher_suite, info.key_exchange
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self, cmd: &Command, stage: Stage) -> Result<Reply, Error> {
        // A reply we did not ask for means the server and we are out of step
        // (or someone is injecting): stop rather than misattribute replies.
        if self.parser.buffered() > 0 {
            return Err(Error::Protocol {
                stage,
                reason: "the server sent data before the command".into(),
            });
        }
        self.log_command(cmd);
        match self.conn.proof() {
            Some(_) => self.write(&cmd.to_wire(), stage)?,
            None => self
                .conn
                .write_before_tls(cmd, self.observer.as_mut())
                .map_err(|e| match e {
                    WriteError::Io(e) => self.io_error(stage, e),
                    WriteError::NotSecured => self.not_secured(),
                })?,
        }
        self.read_reply(stage)
    }

    fn log_command(&mut self, cmd: &Command) {
        if self.observer.wants_transcript() {
            self.observer
                .transcript(&format!("C: {}", cmd.transcript()));
        }
    }

    /// Every write but the few commands of the cleartext phase goes through
    /// here and needs the channel's proof.
    fn write(&mut self, bytes: &[u8], stage: Stage) -> Result<(), Error> {
        let proof = self.proof()?;
        self.conn
            .write(bytes, proof, self.observer.as_mut())
            .map_err(|e| self.io_error(stage, e))
    }

    /// The greeting, within the timeout. A server that says nothing for
    /// [`GREETING_PATIENCE`] is most often one that waits for the client to
    /// speak first (implicit TLS, or another protocol): the user is told so
    /// then, and the wait goes on to the timeout.
    fn read_greeting(&mut self) -> Result<Reply, Error> {
        let started = Instant::now();
        let deadline = started + self.reply_timeout(Stage::Greeting);
        let soon = started + GREETING_PATIENCE;
        if soon < deadline {
            match self.read_reply_by(Stage::Greeting, soon) {
                Err(Error::Timeout { .. }) => {
                    let notice = self.silent_greeting_notice();
                    self.observer.notice(&notice);
                }
                done => return done,
            }
        }
        self.read_reply_by(Stage::Greeting, deadline)
    }

    fn silent_greeting_notice(&self) -> String {
        let server = server_label(&self.config.host, self.config.port);
        let waited = GREETING_PATIENCE.as_secs();
        let limit = self.config.timeout.as_secs();
        match self.config.security {
            Security::Implicit => format!(
                "{server} has sent no greeting in {waited} seconds after TLS began; \
                 waiting up to smtp.timeout ({limit} seconds)"
            ),
            _ => format!(
                "{server} has sent no greeting in {waited} seconds: a port for \
                 implicit TLS (usually 465) waits for the client to speak first; \
                 if this is one, set smtp.tls = smtps. Waiting up to smtp.timeout \
                 ({limit} seconds)"
            ),
        }
    }

    /// One whole reply, which must arrive within the timeout however the
    /// server paces its bytes.
    fn read_reply(&mut self, stage: Stage) -> Result<Reply, Error> {
        let deadline = Instant::now() + self.reply_timeout(stage);
        self.read_reply_by(stage, deadline)
    }

    /// One whole reply by `deadline`.
    fn read_reply_by(&mut self, stage: Stage, deadline: Instant) -> Result<Reply, Error> {
        loop {
            if let Some(reply) = self.buffered_reply(stage)? {
                return Ok(reply);
            }
            let n = self
                .conn
                .read_some(&mut self.read_buf, deadline, self.observer.as_mut())
                .map_err(|e| self.io_error(stage, e))?;
            self.parser.feed(&self.read_buf[..n]);
        }
    }

    /// The next complete reply already read, if any.
    fn buffered_reply(&mut self, stage: Stage) -> Result<Option<Reply>, Error> {
        match self.parser.next_reply() {
            Ok(Some(reply)) => {
                if self.observer.wants_transcript() {
                    self.log_reply(&reply);
                }
                if reply.is_closing() && stage != Stage::Quit {
                    // RFC 5321 3.8: the server is closing. Report this
                    // reply, not the closed socket the next read would
                    // find (in a pipelined group more replies were due).
                    self.conn.close();
                    return Err(Error::reply_at(stage, reply));
                }
                Ok(Some(reply))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(Error::from_reply_error(stage, e)),
        }
    }

    fn log_reply(&mut self, reply: &Reply) {
        let lines = reply.lines();
        if lines.is_empty() {
            self.observer.transcript(&format!("S: {}", reply.code()));
        }
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            self.observer
                .transcript(&format!("S: {}{sep}{}", reply.code(), sanitize(line)));
        }
    }

    fn io_error(&self, stage: Stage, e: IoFailure) -> Error {
        match e {
            IoFailure::Timeout => Error::Timeout {
                stage,
                after: self.reply_timeout(stage),
            },
            IoFailure::Closed => Error::Closed { stage },
            IoFailure::Interrupted => Error::Interrupted,
            IoFailure::Os(e) => Error::Io {
                stage,
                reason: e.to_string(),
            },
            IoFailure::Tls(e) => {
                let server = server_label(&self.config.host, self.config.port);
                match client_cert_refusal(&e, self.config.client_cert.is_some()) {
                    Some(reason) => Error::ClientCertRefused { server, reason },
                    None => Error::Tls {
                        server,
                        reason: e.to_string(),
                    },
                }
            }
            IoFailure::Cleartext(n) => Error::Protocol {
                stage,
                reason: format!("{n} bytes of cleartext inside TLS"),
            },
        }
    }
}

/// The rustls config, its verdict slot and the server name, when TLS is used.
type TlsSettings = ((Arc<ClientConfig>, VerdictSlot), ServerName<'static>);

fn tls_settings(config: &Config) -> Result<Option<TlsSettings>, Error> {
    Ok(match config.security {
        Security::None => None,
        _ => Some((
            tls::client_config_with_cert(&config.tls, config.client_cert.as_ref())
                .map_err(Error::from_setup)?,
            tls::server_name(&config.tls).map_err(Error::from_setup)?,
        )),
    })
}

/// A handshake failure that is not about the certificate, in words. A
/// protocol-version alert or "no common version" means the server is too old
/// for our minimum.
fn tls_error(server: String, e: rustls::Error, min: MinVersion) -> Error {
    use rustls::{AlertDescription, Error as E, PeerIncompatible};
    let minimum = match min {
        MinVersion::Tls12 => "TLS 1.2",
        MinVersion::Tls13 => "TLS 1.3",
    };
    match e {
        E::AlertReceived(AlertDescription::ProtocolVersion)
        | E::PeerIncompatible(PeerIncompatible::ServerDoesNotSupportTls12Or13)
        | E::PeerIncompatible(PeerIncompatible::Tls12NotOffered)
        | E::PeerIncompatible(PeerIncompatible::SupportedVersionsExtensionRequired) => {
            Error::TlsVersion {
                server,
                minimum,
                certain: true,
            }
        }
        // A TLS 1.3-only client talking to a TLS 1.2 server often sees a
        // handshake_failure alert instead: name the likely cause.
        E::AlertReceived(AlertDescription::HandshakeFailure) if min == MinVersion::Tls13 => {
            Error::TlsVersion {
                server,
                minimum,
                certain: false,
            }
        }
        E::InvalidMessage(_) => Error::Tls {
            server,
            reason: format!(
                "the server did not answer with TLS ({e}); \
                 is this port for plain SMTP or another protocol?"
            ),
        },
        other => Error::Tls {
            server,
            reason: other.to_string(),
        },
    }
}

/// The words for a server that refused the client's certificate, or wanted
/// one and got none. With TLS 1.3 this alert arrives after the client's
/// side of the handshake, on the first read.
fn client_cert_refusal(e: &rustls::Error, have_cert: bool) -> Option<String> {
    use rustls::{AlertDescription as A, Error as E};
    match e {
        E::AlertReceived(A::CertificateRequired) => {
            Some("the server requires a client certificate (it sent certificate_required)".into())
        }
        E::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied),
        ) if have_cert => Some(format!(
            "the server refused the client certificate (alert {alert:?})"
        )),
        _ => None,
    }
}

/// "host:port", with brackets around an IPv6 literal.
fn server_label(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests;
