//! The channel a session writes to, and the proof it takes to write anything
//! that matters on it (RFC 3207 5: nothing after STARTTLS until the server is
//! verified).
//!
//! A [`Channel`] owns the [`Transport`] and is the only way to write to it.
//! Before TLS it carries the few commands of the cleartext phase (EHLO, HELO,
//! STARTTLS, QUIT); every other byte (AUTH, MAIL, RCPT, the message, and
//! anything at all once TLS has begun) needs a [`Secured`] value. The only
//! ways to get one are a completed handshake whose verifier said yes, and the
//! configured choice of no TLS at all (`smtp.tls = none`): the compiler, not
//! a check someone may forget, keeps credentials and messages off a channel
//! that was not verified. This is rustls's `ServerCertVerified::assertion()`
//! trick applied to the channel instead of the certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::smtp::Command;
use crate::tls::{Verdict, VerdictSlot};
use crate::transport::{Interrupt, IoFailure, TlsInfo, Transport};

/// Proof that the channel may carry credentials and messages. It has no
/// public constructor: [`Channel`] makes one from a passing verdict or from
/// the configured absence of TLS, and nothing else can.
#[derive(Clone, Copy, Debug)]
pub(super) struct Secured {
    _private: (),
}

/// How the channel stands.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Cleartext before STARTTLS (or before implicit TLS): only the commands
    /// of that phase may go out.
    BeforeTls,
    /// Verified TLS, or cleartext by the user's choice.
    Secured(Secured),
    /// TLS began and did not end in a passing verdict (failed, or let through
    /// for a report in inspect mode): nothing may go out.
    Unverified,
}

/// A write that the channel refused to make.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The transport failed.
    Io(IoFailure),
    /// The command may not go out on this channel as it stands.
    NotSecured,
}

impl From<IoFailure> for WriteError {
    fn from(e: IoFailure) -> WriteError {
        WriteError::Io(e)
    }
}

/// The transport of a session, with the proof rules above.
pub(super) struct Channel {
    transport: Box<dyn Transport>,
    state: State,
}

impl Channel {
    /// A channel over `transport`. `cleartext_by_choice` is true only when the
    /// user configured no TLS at all.
    pub(super) fn new(transport: Box<dyn Transport>, cleartext_by_choice: bool) -> Channel {
        let state = if cleartext_by_choice {
            State::Secured(Secured { _private: () })
        } else {
            State::BeforeTls
        };
        Channel { transport, state }
    }

    /// The proof, when the channel has one.
    pub(super) fn proof(&self) -> Option<Secured> {
        match self.state {
            State::Secured(proof) => Some(proof),
            State::BeforeTls | State::Unverified => None,
        }
    }

    /// Whether anything at all may still be written.
    pub(super) fn may_speak(&self) -> bool {
        !matches!(self.state, State::Unverified)
    }

    /// Write bytes that need the proof: anything after TLS began, and AUTH,
    /// MAIL, RCPT, DATA, BDAT and the message at any time.
    pub(super) fn write(
        &mut self,
        bytes: &[u8],
        _proof: Secured,
        interrupt: &mut dyn Interrupt,
    ) -> Result<(), IoFailure> {
        self.transport.write_all(bytes, interrupt)
    }

    /// Write `cmd` without proof: only EHLO, HELO, STARTTLS and QUIT, and only
    /// while no TLS has begun.
    pub(super) fn write_before_tls(
        &mut self,
        cmd: &Command,
        interrupt: &mut dyn Interrupt,
    ) -> Result<(), WriteError> {
        let allowed = matches!(
            cmd,
            Command::Ehlo(_) | Command::Helo(_) | Command::StartTls | Command::Quit
        );
        if !allowed || !matches!(self.state, State::BeforeTls) {
            return Err(WriteError::NotSecured);
        }
        Ok(self.transport.write_all(&cmd.to_wire(), interrupt)?)
    }

    /// Run the TLS handshake and take the verifier's verdict. The channel is
    /// secured only when the handshake completed and the verdict passed;
    /// from the moment the handshake starts it is otherwise unverified, so a
    /// failure part way leaves nothing writable.
    pub(super) fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        slot: &VerdictSlot,
        interrupt: &mut dyn Interrupt,
    ) -> (Result<(), IoFailure>, Option<Verdict>) {
        self.state = State::Unverified;
        let result = self.transport.start_tls(config, name, slot, interrupt);
        // The verifier leaves its verdict in the slot whether it passed or not.
        let verdict = slot.lock().map(|mut v| v.take()).unwrap_or(None);
        if result.is_ok() && verdict.as_ref().is_some_and(|v| v.result.is_ok()) {
            self.state = State::Secured(Secured { _private: () });
        }
        (result, verdict)
    }

    /// Read some bytes by `deadline`; see [`Transport::read_some`].
    pub(super) fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        interrupt: &mut dyn Interrupt,
    ) -> Result<usize, IoFailure> {
        self.transport.read_some(buf, deadline, interrupt)
    }

    /// Bytes that have already arrived, without waiting; see
    /// [`Transport::read_ready`].
    pub(super) fn read_ready(&mut self, buf: &mut [u8]) -> Result<usize, IoFailure> {
        self.transport.read_ready(buf)
    }

    /// The address connected to.
    pub(super) fn peer(&self) -> SocketAddr {
        self.transport.peer()
    }

    /// Negotiated TLS parameters, once the handshake is done.
    pub(super) fn tls_info(&self) -> Option<TlsInfo> {
        self.transport.tls_info()
    }

    /// Change how long the peer may take to accept written data.
    pub(super) fn set_idle(&mut self, idle: Duration) {
        self.transport.set_idle(idle);
    }

    /// Close the transport; nothing may be written afterwards.
    pub(super) fn close(&mut self) {
        self.state = State::Unverified;
        self.transport.close();
    }
}
