//! A series streamed over one session: [`Session::submit`] writes a message
//! and returns once it is on the wire, without waiting for its verdict;
//! [`Session::confirm`] waits for every reply still due and returns one
//! [`Outcome`] per message. Between writes, and between the slices of a
//! large body, replies that have already arrived are read and settled
//! against the queue ([`crate::pipeline`]), so neither side's buffers fill.
//!
//! What goes ahead of what (RFC 2920 3.1, RFC 3030 4):
//! - PIPELINING and CHUNKING: `RSET` (when the last transaction may be left
//!   open), `MAIL`, the `RCPT`s and every `BDAT` with its data follow the
//!   previous message at once. The whole series is one group.
//! - PIPELINING alone: `DATA` must end a group, and its body waits for 354.
//!   The previous message's final dot, then `MAIL`, the `RCPT`s and `DATA`
//!   go together: one round trip per message.
//! - Neither: lock-step, each message confirmed before the next.
//!
//! Bodies are encoded a slice at a time ([`data::Encoder`]): the session
//! never holds a normalised copy of a whole message.

use super::*;
use crate::pipeline::{Expect, Outcome};
use crate::smtp::data::{Encoder, Slices};

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
            self.pipeline.record(id, Outcome::NotSent);
            return Err(Error::Closed { stage: Stage::Mail });
        }
        if let Err(e) = self.proof() {
            self.pipeline.record(id, Outcome::NotSent);
            return Err(e);
        }
        let (mail, rcpts) = match self.envelope(from, recipients, message) {
            Ok(envelope) => envelope,
            Err(e) => {
                self.pipeline.record(id, Outcome::Refused(e));
                return Ok(());
            }
        };
        if !self.pipelines() {
            return self.submit_lockstep(id, from, recipients, message);
        }
        self.pipeline.begin(id, recipients);
        let result = if self.caps.chunking() {
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
        while self.pipeline.expecting() {
            if let Err(e) = self.settle_next() {
                failure = Some(self.lose(e));
                break;
            }
        }
        (self.pipeline.take_done(), failure)
    }

    fn submit_lockstep(
        &mut self,
        id: u64,
        from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), Error> {
        match self.send(from, recipients, message) {
            Ok(delivery) => {
                self.pipeline.record(id, Outcome::Accepted(delivery));
                Ok(())
            }
            Err(e) if in_step(&e) => {
                self.pipeline.record(id, Outcome::Refused(e));
                Ok(())
            }
            Err(e) => {
                // Lost while the body or its verdict was under way: it may
                // have arrived. A 421 is the server's orderly refusal.
                let lost_verdict = e.stage() == Some(Stage::Body) && e.reply().is_none();
                let outcome = if lost_verdict {
                    Outcome::Unknown
                } else {
                    Outcome::NotSent
                };
                self.pipeline.record(id, outcome);
                Err(e)
            }
        }
    }

    fn stream_chunked(
        &mut self,
        id: u64,
        mail: &Command,
        rcpts: &[Command],
        message: &[u8],
    ) -> Result<(), Error> {
        let mut out = self.envelope_group(id, mail, rcpts);
        let mut expect = |pipeline: &mut Pipeline| pipeline.expect(Some(id), Expect::Chunk);
        self.write_chunks(&mut out, message, &mut expect)?;
        self.pipeline.end_written(id, false);
        self.pipeline.seal(id);
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
        self.pipeline.expect(Some(id), Expect::Data);
        self.write(&out, Stage::Mail)?;
        // RFC 2920 3.1: DATA ends the group; the body waits for its 354
        // (reading it settles the previous message's verdict on the way).
        while self.pipeline.awaits(id, Expect::Data) {
            self.settle_next()?;
        }
        let answer = self
            .pipeline
            .data_reply(id)
            .map(|(reply, deliverable)| (reply.code(), deliverable));
        if let Some((354, deliverable)) = answer {
            self.pipeline.expect(Some(id), Expect::EndOfData);
            if deliverable {
                self.write_data_body(message)?;
            } else {
                // The server reads a body whatever happened before: an empty
                // one, and the envelope's refusal is the verdict.
                self.write_body(b".\r\n", 0)?;
            }
            self.pipeline.end_written(id, true);
        }
        self.pipeline.seal(id);
        self.pump()
    }

    /// RSET when the last transaction may still be open, MAIL, the RCPTs,
    /// each with its reply queued.
    fn envelope_group(&mut self, id: u64, mail: &Command, rcpts: &[Command]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.pipeline.needs_reset() {
            self.log_command(&Command::Rset);
            Command::Rset.write_to(&mut out);
            self.pipeline.expect(None, Expect::Reset);
        }
        self.log_command(mail);
        mail.write_to(&mut out);
        self.pipeline.expect(Some(id), Expect::Mail);
        for (i, rcpt) in rcpts.iter().enumerate() {
            self.log_command(rcpt);
            rcpt.write_to(&mut out);
            self.pipeline.expect(Some(id), Expect::Rcpt(i));
        }
        out
    }

    /// Write the message as BDAT chunks after the commands in `out`, one
    /// [`BDAT_CHUNK`] of the message encoded at a time; `expect` is called
    /// once per chunk. Returns the number of chunks.
    pub(super) fn write_chunks(
        &mut self,
        out: &mut Vec<u8>,
        message: &[u8],
        expect: &mut dyn FnMut(&mut Pipeline),
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
            expect(&mut self.pipeline);
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
    pub(super) fn write_data_body(&mut self, message: &[u8]) -> Result<(), Error> {
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

    /// Read and settle the reply due next, waiting for it.
    fn settle_next(&mut self) -> Result<(), Error> {
        let stage = self.pipeline.next_stage().unwrap_or(Stage::Body);
        let reply = self.read_reply(stage)?;
        self.pipeline.settle(reply)
    }

    /// Take in whatever the server has already sent, without waiting, and
    /// settle the complete replies against the queue.
    pub(super) fn pump(&mut self) -> Result<(), Error> {
        loop {
            while let Some(stage) = self.pipeline.next_stage() {
                match self.buffered_reply(stage)? {
                    Some(reply) => self.pipeline.settle(reply)?,
                    None => break,
                }
            }
            let stage = self.pipeline.next_stage().unwrap_or(Stage::Body);
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
            // may still be waiting to be read.
            if let Err(said) = self.settle_leftovers() {
                if said.reply().is_some_and(|r| r.code() == 421) {
                    e = said;
                }
            }
        }
        let orderly = e.reply().is_some_and(|r| r.code() == 421);
        self.broken = true;
        self.pipeline.lose(orderly);
        e
    }

    /// Settle the replies that arrived before the connection failed; the
    /// error is the reply that ended it, if one did.
    fn settle_leftovers(&mut self) -> Result<(), Error> {
        loop {
            while let Some(stage) = self.pipeline.next_stage() {
                match self.buffered_reply(stage)? {
                    Some(reply) => self.pipeline.settle(reply)?,
                    None => break,
                }
            }
            if !self.pipeline.expecting() {
                return Ok(());
            }
            match self.conn.read_ready(&mut self.read_buf) {
                Ok(n) if n > 0 => self.parser.feed(&self.read_buf[..n]),
                _ => return Ok(()),
            }
        }
    }
}
