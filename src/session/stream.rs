//! How mail is sent: a series of messages over one session, each written by
//! [`Session::submit`], which returns once the message is on the wire without
//! waiting for its verdict; [`Session::confirm`] waits for every reply still
//! due and returns one [`Outcome`] per message. A single message is a series
//! of one. Every command written puts its expected reply on the queue
//! ([`super::queue`]), and every reply read settles the queue's front, so
//! the verdicts of all three modes below come from one set of rules.
//!
//! What goes ahead of what (RFC 2920 3.1, RFC 3030 4):
//! - PIPELINING and CHUNKING: `RSET` (when the last transaction may be left
//!   open), `MAIL`, the `RCPT`s and every `BDAT` with its data follow the
//!   previous message at once. The whole series is one group.
//! - PIPELINING alone: `DATA` must end a group, and its body waits for 354.
//!   The previous message's final dot, then `MAIL`, the `RCPT`s and `DATA`
//!   go together: one round trip per message.
//! - Neither (or `smtp.pipelining = false`): lock-step, each command waits
//!   for its reply, and a message's verdict is known when `submit` returns.
//!
//! Round trips: about one for the whole series with CHUNKING, one per
//! message with PIPELINING alone, 3 + recipients per message in lock-step.
//!
//! Between writes, and between the slices of a large body, replies that have
//! already arrived are read and settled, so neither side's buffers fill.
//! Bodies are encoded a slice at a time ([`Encoder`]): the session never
//! holds a normalised copy of a whole message.
//!
//! Left out: DSN (RFC 3461), BINARYMIME (RFC 3030 3).

use std::borrow::Cow;

use super::queue::{Expect, Outcome, ReplyQueue};
use super::Session;
use crate::error::{Error, Stage};
use crate::smtp::data::{self, Encoder, Slices};
use crate::smtp::{sanitize, Command, CommandError, Reply};
use crate::tls;

/// Bytes per BDAT chunk: large messages go in bounded chunks, all pipelined.
const BDAT_CHUNK: usize = 1 << 20;

/// Message bytes encoded per write of a DATA body.
const DATA_SLICE: usize = 256 * 1024;

/// A BDAT chunk of at most this size rides in the same write as the
/// commands before it.
const INLINE_CHUNK: usize = 64 * 1024;

impl Session {
    /// Write one message of a series, tagged `id`, without waiting for its
    /// verdict (which [`Session::confirm`] returns). Without PIPELINING the
    /// message is sent in lock-step and its verdict is ready at once.
    ///
    /// An error means the connection failed: every message in flight then
    /// has its outcome (accepted, refused, not sent, or unknown when its
    /// verdict was lost), ready for `confirm`, and the session is done.
    pub fn submit(
        &mut self,
        id: u64,
        from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), Error> {
        if self.broken {
            self.queue.record(id, Outcome::NotSent);
            return Err(Error::Closed { stage: Stage::Mail });
        }
        if let Err(e) = self.proof() {
            self.queue.record(id, Outcome::NotSent);
            return Err(e);
        }
        let (mail, rcpts) = match self.envelope(from, recipients, message) {
            Ok(envelope) => envelope,
            Err(e) => {
                self.queue.record(id, Outcome::Refused(e));
                return Ok(());
            }
        };
        self.queue.begin(id, recipients);
        let result = if !self.pipelines() {
            self.lockstep(id, &mail, &rcpts, message)
        } else if self.caps.chunking() {
            self.stream_chunked(id, &mail, &rcpts, message)
        } else {
            self.stream_data(id, &mail, &rcpts, message)
        };
        result.map_err(|e| self.lose(e))
    }

    /// Wait for every reply still due; the outcomes decided since the last
    /// call, and the failure that ended the connection if one did.
    pub fn confirm(&mut self) -> (Vec<(u64, Outcome)>, Option<Error>) {
        let mut failure = None;
        while self.queue.expecting() {
            if let Err(e) = self.settle_next() {
                failure = Some(self.lose(e));
                break;
            }
        }
        (self.queue.take_done(), failure)
    }

    /// One command, one reply: for a server without PIPELINING. Each reply
    /// is settled before the next command; the first refusal ends the
    /// message (the next one starts with RSET).
    fn lockstep(
        &mut self,
        id: u64,
        mail: &Command,
        rcpts: &[Command],
        message: &[u8],
    ) -> Result<(), Error> {
        if self.queue.needs_reset() {
            self.exchange(None, &Command::Rset, Expect::Reset)?;
        }
        self.exchange(Some(id), mail, Expect::Mail)?;
        for (i, rcpt) in rcpts.iter().enumerate() {
            if self.queue.refused(id) {
                break;
            }
            self.exchange(Some(id), rcpt, Expect::Rcpt(i))?;
        }
        if !self.queue.refused(id) {
            self.exchange(Some(id), &Command::Data, Expect::Data)?;
            if self
                .queue
                .data_reply(id)
                .is_some_and(|(r, _)| r.starts_mail_input())
            {
                self.queue.expect(Some(id), Expect::EndOfData);
                self.write_data_body(message)?;
                self.queue.end_written(id, true);
                self.settle_next()?;
            }
        }
        self.queue.seal(id);
        Ok(())
    }

    /// One command and its reply, settled. [`Session::command`] refuses to
    /// write while unasked-for bytes wait, so a reply injected between two
    /// lock-step commands ends the session instead of shifting verdicts.
    fn exchange(&mut self, id: Option<u64>, cmd: &Command, what: Expect) -> Result<(), Error> {
        self.queue.expect(id, what);
        let reply = self.command(cmd, what.stage())?;
        self.queue.settle(reply)
    }

    fn stream_chunked(
        &mut self,
        id: u64,
        mail: &Command,
        rcpts: &[Command],
        message: &[u8],
    ) -> Result<(), Error> {
        let mut out = self.envelope_group(id, mail, rcpts);
        let mut expect = |queue: &mut ReplyQueue| queue.expect(Some(id), Expect::Chunk);
        self.write_chunks(&mut out, message, &mut expect)?;
        self.queue.end_written(id, false);
        self.queue.seal(id);
        self.pump()
    }

    fn stream_data(
        &mut self,
        id: u64,
        mail: &Command,
        rcpts: &[Command],
        message: &[u8],
    ) -> Result<(), Error> {
        let mut out = self.envelope_group(id, mail, rcpts);
        self.log_command(&Command::Data);
        Command::Data.write_to(&mut out);
        self.queue.expect(Some(id), Expect::Data);
        self.write(&out, Stage::Mail)?;
        // RFC 2920 3.1: DATA ends the group; the body waits for its 354
        // (reading it settles the previous message's verdict on the way).
        while self.queue.awaits(id, Expect::Data) {
            self.settle_next()?;
        }
        let go_ahead = self
            .queue
            .data_reply(id)
            .filter(|(reply, _)| reply.starts_mail_input())
            .map(|(_, deliverable)| deliverable);
        if let Some(deliverable) = go_ahead {
            self.queue.expect(Some(id), Expect::EndOfData);
            if deliverable {
                self.write_data_body(message)?;
            } else {
                // The server reads a body whatever happened before: an empty
                // one, and the envelope's refusal is the verdict.
                self.write_body(b".\r\n", 0)?;
            }
            self.queue.end_written(id, true);
        }
        self.queue.seal(id);
        self.pump()
    }

    /// MAIL FROM with its parameters and one RCPT TO per recipient.
    fn envelope(
        &self,
        from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(Command, Vec<Command>), Error> {
        let mut params = Vec::new();
        if self.caps.size().is_some() {
            // RFC 1870 3: the size with CRLF endings, not counting dot-stuffing.
            params.push(format!("SIZE={}", data::wire_size(message)));
        }
        if self.caps.eight_bit_mime() && data::is_eight_bit(message) {
            params.push("BODY=8BITMIME".to_owned());
        }
        let from = self.envelope_address(from)?;
        let recipients = recipients
            .iter()
            .map(|r| self.envelope_address(r))
            .collect::<Result<Vec<_>, _>>()?;
        let needs_utf8 =
            data::needs_smtputf8(&from) || recipients.iter().any(|r| data::needs_smtputf8(r));
        if needs_utf8 {
            // Only with the server's SMTPUTF8 is an address still non-ASCII.
            params.push("SMTPUTF8".to_owned());
        }
        let mail = Command::mail(&from, params).map_err(Error::BadInput)?;
        let rcpts = recipients
            .iter()
            .map(|r| Command::rcpt(r).map_err(Error::BadInput))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((mail, rcpts))
    }

    /// An address as it can go to this server. A server without SMTPUTF8
    /// (RFC 6531) takes ASCII only: an internationalised domain goes as its
    /// A-label (UTS-46, as host names do), and a non-ASCII local part has no
    /// ASCII form, so the message cannot be sent there at all.
    fn envelope_address<'a>(&self, address: &'a str) -> Result<Cow<'a, str>, Error> {
        if address.is_ascii() || self.caps.smtp_utf8() {
            return Ok(Cow::Borrowed(address));
        }
        let bad = |reason| {
            Error::BadInput(CommandError::BadAddress {
                address: sanitize(address.as_bytes()),
                reason,
            })
        };
        let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
        if !local.is_ascii() {
            return Err(bad(
                "its local part is not ASCII and the server does not offer SMTPUTF8",
            ));
        }
        let domain = tls::ascii_host(domain)
            .ok_or_else(|| bad("its domain is not a valid internationalised domain name"))?;
        Ok(Cow::Owned(format!("{local}@{domain}")))
    }

    /// Whether commands may be sent ahead of their replies (RFC 2920).
    fn pipelines(&self) -> bool {
        self.config.pipelining && self.caps.pipelining()
    }

    /// RSET when the last transaction may still be open, MAIL, the RCPTs,
    /// each with its reply queued.
    fn envelope_group(&mut self, id: u64, mail: &Command, rcpts: &[Command]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.queue.needs_reset() {
            self.log_command(&Command::Rset);
            Command::Rset.write_to(&mut out);
            self.queue.expect(None, Expect::Reset);
        }
        self.log_command(mail);
        mail.write_to(&mut out);
        self.queue.expect(Some(id), Expect::Mail);
        for (i, rcpt) in rcpts.iter().enumerate() {
            self.log_command(rcpt);
            rcpt.write_to(&mut out);
            self.queue.expect(Some(id), Expect::Rcpt(i));
        }
        out
    }

    /// Write the message as BDAT chunks after the commands in `out`, one
    /// [`BDAT_CHUNK`] of the message encoded at a time; `expect` is called
    /// once per chunk. Returns the number of chunks.
    fn write_chunks(
        &mut self,
        out: &mut Vec<u8>,
        message: &[u8],
        expect: &mut dyn FnMut(&mut ReplyQueue),
    ) -> Result<usize, Error> {
        let mut slices = Slices::new(Encoder::for_bdat(), message, BDAT_CHUNK);
        let mut chunk = Vec::new();
        let mut count = 0;
        while let Some(last) = slices.next_into(&mut chunk) {
            let bdat = Command::Bdat {
                size: chunk.len(),
                last,
            };
            self.log_command(&bdat);
            bdat.write_to(out);
            if self.observer.wants_transcript() {
                self.observer
                    .transcript(&format!("C: <message data, {} bytes>", chunk.len()));
            }
            expect(&mut self.queue);
            count += 1;
            if chunk.len() <= INLINE_CHUNK {
                out.extend_from_slice(&chunk);
            } else {
                self.write(out, Stage::Data)?;
                out.clear();
                self.write(&chunk, Stage::Data)?;
                self.pump()?;
            }
        }
        if !out.is_empty() {
            self.write(out, Stage::Data)?;
            out.clear();
        }
        Ok(count)
    }

    /// The message dot-stuffed with its end-of-data line, a slice at a time,
    /// settling replies that arrive in between.
    fn write_data_body(&mut self, message: &[u8]) -> Result<(), Error> {
        if self.observer.wants_transcript() {
            self.observer
                .transcript(&format!("C: <message body, {} bytes>", message.len()));
            self.observer.transcript("C: .");
        }
        let mut slices = Slices::new(Encoder::for_data(), message, DATA_SLICE);
        let mut buf = Vec::new();
        while let Some(last) = slices.next_into(&mut buf) {
            self.write(&buf, Stage::Body)?;
            if !last {
                self.pump()?;
            }
        }
        Ok(())
    }

    fn write_body(&mut self, body: &[u8], size: usize) -> Result<(), Error> {
        if self.observer.wants_transcript() {
            self.observer
                .transcript(&format!("C: <message body, {size} bytes>"));
            self.observer.transcript("C: .");
        }
        self.write(body, Stage::Body)
    }

    /// Read and settle the reply due next, waiting for it.
    fn settle_next(&mut self) -> Result<(), Error> {
        let stage = self.queue.next_stage().unwrap_or(Stage::Body);
        let reply = self.read_reply(stage)?;
        self.queue.settle(reply)
    }

    /// Take in whatever the server has already sent, without waiting, and
    /// settle the complete replies against the queue; stop when nothing
    /// more has arrived or nothing more is due.
    fn pump(&mut self) -> Result<(), Error> {
        loop {
            while let Some(stage) = self.queue.next_stage() {
                match self.buffered_reply(stage)? {
                    Some(reply) => self.queue.settle(reply)?,
                    None => break,
                }
            }
            let Some(stage) = self.queue.next_stage() else {
                return Ok(());
            };
            let n = self
                .conn
                .read_ready(&mut self.read_buf)
                .map_err(|e| self.io_error(stage, e))?;
            if n == 0 {
                return Ok(());
            }
            self.parser.feed(&self.read_buf[..n]);
        }
    }

    /// The connection failed: settle what was in flight, and the session
    /// is done.
    fn lose(&mut self, mut e: Error) -> Error {
        if e.reply().is_none() && !matches!(e, Error::Interrupted) {
            // A write that failed because the server had closed: what it said
            // before closing (verdicts, and the 421 that explains the close)
            // may still be waiting to be read. A read that fails now adds
            // nothing to the error already in hand.
            if let Err(said) = self.pump() {
                if said.reply().is_some_and(Reply::is_closing) {
                    e = said;
                }
            }
        }
        let orderly = e.reply().is_some_and(Reply::is_closing);
        self.broken = true;
        self.queue.lose(orderly);
        e
    }
}
