//! The replies a series still waits for, and what they decide.
//!
//! Every command the session writes for a message puts one [`Expect`] on
//! the queue, tagged with its message, and every reply read settles the
//! queue's front: replies arrive in command order (one at a time in
//! lock-step, and by RFC 2920 3.1 when commands are pipelined). Lock-step uses the queue as a
//! pipelined series does, with one reply due at a time, so the verdicts of
//! every mode come from the same rules. When a message's last expected
//! reply is settled, its [`Outcome`] is final and waits in
//! [`ReplyQueue::take_done`].
//!
//! When the connection fails, every message still in flight gets an outcome
//! from what is known: a refusal already read stands; after a 421 (the
//! server closes in order, so it processed nothing after the command it
//! answered) the rest were not accepted; after a drop or a timeout, a message
//! whose end of data went out may have been delivered ([`Outcome::Unknown`])
//! and one whose end of data did not go out was not ([`Outcome::NotSent`]).
//! Only `NotSent` messages may be sent again.
//!
//! Pure: no I/O, so the rules are tested here with plain replies, and the
//! `reply_queue` fuzz target drives the queue as the session does.

use std::collections::VecDeque;

use crate::error::{Error, Stage};
use crate::smtp::Reply;

/// A command whose reply is still due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// RSET before a message, belonging to none.
    Reset,
    /// MAIL FROM.
    Mail,
    /// RCPT TO, for the recipient at this index.
    Rcpt(usize),
    /// DATA (354 expected).
    Data,
    /// The end of a DATA body (the final dot).
    EndOfData,
    /// One BDAT chunk.
    Chunk,
}

impl Expect {
    /// The stage a failure while waiting for this reply is reported at.
    pub fn stage(self) -> Stage {
        match self {
            Expect::Reset => Stage::Reset,
            Expect::Mail => Stage::Mail,
            Expect::Rcpt(_) => Stage::Rcpt,
            Expect::Data => Stage::Data,
            Expect::EndOfData | Expect::Chunk => Stage::Body,
        }
    }
}

/// What the server accepted of one message.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Recipients the server accepted.
    pub accepted: Vec<String>,
    /// Recipients the server refused, with its reply.
    pub refused: Vec<(String, Reply)>,
    /// The server's final reply for the message (queued as ...).
    pub reply: Reply,
}

/// What became of one message.
#[derive(Debug)]
pub enum Outcome {
    /// The server accepted it (for the recipients listed).
    Accepted(Delivery),
    /// The server refused it, at the stage in the error.
    Refused(Error),
    /// Its end of data never reached the server: safe to send again.
    NotSent,
    /// Its end of data went out but the verdict was lost with the
    /// connection: it may have been delivered; never resent silently.
    Unknown,
}

/// One message on the wire.
#[derive(Debug)]
struct Flight {
    id: u64,
    recipients: Vec<String>,
    mail: Option<Reply>,
    rcpts: Vec<Option<Reply>>,
    data: Option<Reply>,
    /// The first refused BDAT chunk.
    chunk_refused: Option<Reply>,
    /// The last end-of-data or BDAT reply.
    last: Option<Reply>,
    outstanding: usize,
    /// No more commands will be written for it.
    sealed: bool,
    /// Its end of data (final dot, or `BDAT LAST` and its bytes) was written.
    end_written: bool,
    /// The transaction is over on the server once the writes arrive (a
    /// DATA body ended by its dot), whatever the verdict.
    closes_itself: bool,
}

impl Flight {
    /// A refusal already known, whatever replies are still due.
    fn refusal(&self) -> Option<Error> {
        if let Some(r) = self.mail.as_ref().filter(|r| !r.is_positive()) {
            return Some(Error::reply_at(Stage::Mail, r.clone()));
        }
        if self
            .rcpts
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| !r.is_positive()))
        {
            let refused = self
                .recipients
                .iter()
                .cloned()
                .zip(self.rcpts.iter().flatten().cloned())
                .collect();
            return Some(Error::RecipientsRefused { refused });
        }
        if let Some(r) = self.data.as_ref().filter(|r| !r.starts_mail_input()) {
            return Some(Error::reply_at(Stage::Data, r.clone()));
        }
        if let Some(r) = &self.chunk_refused {
            return Some(Error::reply_at(Stage::Body, r.clone()));
        }
        None
    }

    fn outcome(self) -> Outcome {
        if let Some(e) = self.refusal() {
            return Outcome::Refused(e);
        }
        let Some(reply) = self.last else {
            return Outcome::Unknown;
        };
        if !reply.is_positive() {
            return Outcome::Refused(Error::reply_at(Stage::Body, reply));
        }
        let mut accepted = Vec::new();
        let mut refused = Vec::new();
        for (rcpt, reply) in self.recipients.into_iter().zip(self.rcpts) {
            match reply {
                Some(r) if !r.is_positive() => refused.push((rcpt, r)),
                _ => accepted.push(rcpt),
            }
        }
        Outcome::Accepted(Delivery {
            accepted,
            refused,
            reply,
        })
    }
}

/// The queue of expected replies and the messages they belong to.
#[derive(Debug, Default)]
pub struct ReplyQueue {
    queue: VecDeque<(Option<u64>, Expect)>,
    flights: VecDeque<Flight>,
    done: Vec<(u64, Outcome)>,
    /// The last finished transaction may have left the server mid-way (a
    /// refusal before the data ended it): RSET before the next MAIL.
    dirty: bool,
}

impl ReplyQueue {
    /// A message is about to be written.
    pub fn begin(&mut self, id: u64, recipients: &[String]) {
        self.flights.push_back(Flight {
            id,
            recipients: recipients.to_vec(),
            mail: None,
            rcpts: vec![None; recipients.len()],
            data: None,
            chunk_refused: None,
            last: None,
            outstanding: 0,
            sealed: false,
            end_written: false,
            closes_itself: false,
        });
    }

    /// A command was queued for writing: its reply is due.
    pub fn expect(&mut self, id: Option<u64>, what: Expect) {
        if let Some(f) = id.and_then(|id| self.flight(id)) {
            f.outstanding += 1;
        }
        if what == Expect::Reset {
            self.dirty = false;
        }
        self.queue.push_back((id, what));
    }

    /// The message's end of data was written in full; `closes_itself` when
    /// that ends the transaction on the server whatever it answers (DATA).
    pub fn end_written(&mut self, id: u64, closes_itself: bool) {
        if let Some(f) = self.flight(id) {
            f.end_written = true;
            f.closes_itself = closes_itself;
        }
    }

    /// No more commands will be written for the message.
    pub fn seal(&mut self, id: u64) {
        if let Some(f) = self.flight(id) {
            f.sealed = true;
        }
        self.finish_ready();
    }

    /// A message refused before anything of it was written (a bad address),
    /// or decided without the queue (lock-step).
    pub fn record(&mut self, id: u64, outcome: Outcome) {
        self.flights.retain(|f| f.id != id);
        self.done.push((id, outcome));
    }

    /// Whether the next MAIL must be preceded by RSET: a finished
    /// transaction left the server mid-way, or a message written before
    /// (sealed; the one being begun is not) may leave it so.
    pub fn needs_reset(&self) -> bool {
        self.dirty || self.flights.iter().any(|f| f.sealed && !f.closes_itself)
    }

    /// Whether any reply is still due.
    pub fn expecting(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The stage of the reply due next, for errors while reading it.
    pub fn next_stage(&self) -> Option<Stage> {
        self.queue.front().map(|(_, e)| e.stage())
    }

    /// Whether a reply for the given message and command is still due.
    pub fn awaits(&self, id: u64, what: Expect) -> bool {
        self.queue.iter().any(|&(i, e)| i == Some(id) && e == what)
    }

    /// Whether a refusal of the message is already known (lock-step stops
    /// writing its commands there).
    pub fn refused(&self, id: u64) -> bool {
        self.flights
            .iter()
            .find(|f| f.id == id)
            .map_or(true, |f| f.refusal().is_some())
    }

    /// The DATA reply of a message, once read, and whether its envelope
    /// leaves anyone to deliver to.
    pub fn data_reply(&self, id: u64) -> Option<(&Reply, bool)> {
        let f = self.flights.iter().find(|f| f.id == id)?;
        let deliverable = f.mail.as_ref().is_some_and(Reply::is_positive)
            && f.rcpts
                .iter()
                .any(|r| r.as_ref().is_some_and(Reply::is_positive));
        f.data.as_ref().map(|d| (d, deliverable))
    }

    /// Settle the reply due next. A reply nobody asked for means the server
    /// and we are out of step.
    pub fn settle(&mut self, reply: Reply) -> Result<(), Error> {
        let Some((id, what)) = self.queue.pop_front() else {
            return Err(Error::Protocol {
                stage: Stage::Body,
                reason: "the server sent a reply nobody asked for".into(),
            });
        };
        let Some(f) = id.and_then(|id| self.flight(id)) else {
            // RSET: only a failure to reset matters, and that shows in the
            // next message's MAIL reply.
            return Ok(());
        };
        f.outstanding -= 1;
        match what {
            Expect::Reset => {}
            Expect::Mail => f.mail = Some(reply),
            Expect::Rcpt(i) => f.rcpts[i] = Some(reply),
            Expect::Data => f.data = Some(reply),
            Expect::EndOfData => f.last = Some(reply),
            Expect::Chunk => {
                if !reply.is_positive() && f.chunk_refused.is_none() {
                    f.chunk_refused = Some(reply.clone());
                }
                f.last = Some(reply);
            }
        }
        self.finish_ready();
        Ok(())
    }

    /// The connection is gone: every message in flight gets its outcome.
    /// `orderly` when the server said 421 (it processed nothing after).
    pub fn lose(&mut self, orderly: bool) {
        self.queue.clear();
        for f in std::mem::take(&mut self.flights) {
            let outcome = match f.refusal() {
                Some(e) => Outcome::Refused(e),
                None if f.end_written && !orderly => Outcome::Unknown,
                None => Outcome::NotSent,
            };
            self.done.push((f.id, outcome));
        }
        self.dirty = false;
    }

    /// Outcomes decided since the last call, in the order they were decided.
    pub fn take_done(&mut self) -> Vec<(u64, Outcome)> {
        std::mem::take(&mut self.done)
    }

    fn flight(&mut self, id: u64) -> Option<&mut Flight> {
        self.flights.iter_mut().find(|f| f.id == id)
    }

    fn finish_ready(&mut self) {
        while let Some(pos) = self
            .flights
            .iter()
            .position(|f| f.sealed && f.outstanding == 0)
        {
            let Some(f) = self.flights.remove(pos) else {
                break;
            };
            let id = f.id;
            let closes_itself = f.closes_itself;
            let outcome = f.outcome();
            self.dirty = !closes_itself && !matches!(outcome, Outcome::Accepted(_));
            self.done.push((id, outcome));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::ReplyParser;

    fn reply(wire: &str) -> Reply {
        let mut p = ReplyParser::new();
        p.feed(wire.as_bytes());
        p.next_reply().unwrap().unwrap()
    }

    fn rcpts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}@example.test")).collect()
    }

    /// Queue a chunked message: MAIL, RCPTs, one `BDAT LAST`.
    fn chunked(p: &mut ReplyQueue, id: u64, n: usize) {
        p.begin(id, &rcpts(n));
        p.expect(Some(id), Expect::Mail);
        for i in 0..n {
            p.expect(Some(id), Expect::Rcpt(i));
        }
        p.expect(Some(id), Expect::Chunk);
        p.end_written(id, false);
        p.seal(id);
    }

    fn status(o: &Outcome) -> String {
        match o {
            Outcome::Accepted(d) => format!("accepted {}", d.accepted.len()),
            Outcome::Refused(e) => format!("refused {}", e.stage().map_or("-", |s| s.name())),
            Outcome::NotSent => "not sent".into(),
            Outcome::Unknown => "unknown".into(),
        }
    }

    fn statuses(p: &mut ReplyQueue) -> Vec<(u64, String)> {
        p.take_done()
            .iter()
            .map(|(id, o)| (*id, status(o)))
            .collect()
    }

    #[test]
    fn replies_settle_the_messages_they_belong_to_in_order() {
        let mut p = ReplyQueue::default();
        chunked(&mut p, 1, 2);
        p.expect(None, Expect::Reset);
        chunked(&mut p, 2, 1);
        assert!(p.needs_reset());
        for r in [
            "250 ok\r\n",
            "250 ok\r\n",
            "550 no such user\r\n",
            "250 queued\r\n",
        ] {
            p.settle(reply(r)).unwrap();
        }
        assert_eq!(statuses(&mut p), [(1, "accepted 1".to_string())]);
        assert_eq!(p.next_stage(), Some(Stage::Reset));
        for r in [
            "250 reset\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 queued\r\n",
        ] {
            p.settle(reply(r)).unwrap();
        }
        assert_eq!(statuses(&mut p), [(2, "accepted 1".to_string())]);
        assert!(!p.expecting());
        assert!(!p.needs_reset());
        assert!(p.settle(reply("250 extra\r\n")).is_err());
    }

    #[test]
    fn a_refusal_in_the_middle_belongs_to_its_message_alone() {
        let mut p = ReplyQueue::default();
        for id in 1..=2 {
            chunked(&mut p, id, 1);
        }
        let wire = [
            "250 ok\r\n",
            "250 ok\r\n",
            "250 queued 1\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "552 5.3.4 message too big\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "250 queued 3\r\n",
        ];
        for (i, r) in wire.iter().enumerate() {
            p.settle(reply(r)).unwrap();
            if i == 5 {
                // Message 2's transaction did not end well: RSET before
                // the next MAIL, even with nothing else in flight.
                assert!(p.needs_reset());
                chunked(&mut p, 3, 1);
            }
        }
        let done = p.take_done();
        assert_eq!(done.len(), 3);
        assert!(matches!(&done[0].1, Outcome::Accepted(d) if d.reply.text().contains("queued 1")));
        match &done[1].1 {
            Outcome::Refused(e) => {
                assert_eq!(e.stage(), Some(Stage::Body));
                assert_eq!(e.reply().map(Reply::code), Some(552));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&done[2].1, Outcome::Accepted(_)));
        assert!(!p.needs_reset());
    }

    #[test]
    fn refused_sender_and_refused_recipients_are_reported_at_their_stage() {
        let mut p = ReplyQueue::default();
        chunked(&mut p, 1, 1);
        chunked(&mut p, 2, 2);
        for r in [
            "553 bad sender\r\n",
            "503 need MAIL\r\n",
            "503 need RCPT\r\n",
        ] {
            p.settle(reply(r)).unwrap();
        }
        for r in [
            "250 ok\r\n",
            "550 a\r\n",
            "550 b\r\n",
            "554 no valid recipients\r\n",
        ] {
            p.settle(reply(r)).unwrap();
        }
        let done = p.take_done();
        assert!(matches!(&done[0].1, Outcome::Refused(e) if e.stage() == Some(Stage::Mail)));
        match &done[1].1 {
            Outcome::Refused(Error::RecipientsRefused { refused }) => assert_eq!(refused.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_drop_leaves_sent_messages_unknown_and_unsent_ones_not_sent() {
        let mut p = ReplyQueue::default();
        chunked(&mut p, 1, 1);
        chunked(&mut p, 2, 1);
        chunked(&mut p, 3, 1);
        // Message 4 was being written when the connection dropped.
        p.begin(4, &rcpts(1));
        p.expect(Some(4), Expect::Mail);
        for r in ["250 ok\r\n", "250 ok\r\n", "250 queued\r\n", "250 ok\r\n"] {
            p.settle(reply(r)).unwrap();
        }
        p.lose(false);
        assert_eq!(
            statuses(&mut p),
            [
                (1, "accepted 1".to_string()),
                (2, "unknown".to_string()),
                (3, "unknown".to_string()),
                (4, "not sent".to_string()),
            ]
        );
        assert!(!p.expecting());
    }

    #[test]
    fn after_a_421_nothing_still_in_flight_was_accepted_but_refusals_stand() {
        let mut p = ReplyQueue::default();
        chunked(&mut p, 1, 1);
        chunked(&mut p, 2, 1);
        chunked(&mut p, 3, 1);
        for r in [
            "250 ok\r\n",
            "250 ok\r\n",
            "250 queued\r\n",
            "250 ok\r\n",
            "550 no\r\n",
        ] {
            p.settle(reply(r)).unwrap();
        }
        // The 421 came instead of message 2's BDAT reply.
        p.lose(true);
        assert_eq!(
            statuses(&mut p),
            [
                (1, "accepted 1".to_string()),
                (2, "refused RCPT TO (recipients)".to_string()),
                (3, "not sent".to_string()),
            ]
        );
    }

    #[test]
    fn data_mode_needs_no_reset_after_the_dot_and_one_after_a_refused_data() {
        let mut p = ReplyQueue::default();
        p.begin(1, &rcpts(1));
        p.expect(Some(1), Expect::Mail);
        p.expect(Some(1), Expect::Rcpt(0));
        p.expect(Some(1), Expect::Data);
        for r in ["250 ok\r\n", "250 ok\r\n", "354 go\r\n"] {
            p.settle(reply(r)).unwrap();
        }
        assert_eq!(
            p.data_reply(1).map(|(r, ok)| (r.code(), ok)),
            Some((354, true))
        );
        p.expect(Some(1), Expect::EndOfData);
        p.end_written(1, true);
        p.seal(1);
        assert!(!p.needs_reset());
        p.begin(2, &rcpts(1));
        p.expect(Some(2), Expect::Mail);
        p.expect(Some(2), Expect::Rcpt(0));
        p.expect(Some(2), Expect::Data);
        for r in [
            "250 queued\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            "451 try later\r\n",
        ] {
            p.settle(reply(r)).unwrap();
        }
        p.seal(2);
        assert_eq!(
            statuses(&mut p),
            [
                (1, "accepted 1".to_string()),
                (2, "refused DATA".to_string())
            ]
        );
        assert!(p.needs_reset());
        p.expect(None, Expect::Reset);
        assert!(!p.needs_reset());
    }
}
