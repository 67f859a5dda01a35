//! The queue of replies a series waits for (`session::queue::ReplyQueue`),
//! driven as the session drives it: messages begun in DATA or BDAT mode,
//! their commands' replies expected, replies of any code settled in any
//! number, the connection lost (in order after a 421, or dropped) at any
//! point.
//!
//! Checked for every run:
//! - nothing panics; a reply is refused exactly when none is due;
//! - no message is settled twice, and after the connection is lost every
//!   message begun has exactly one outcome;
//! - `Accepted` only with a 2xx reply to its end of data (the final dot, or
//!   its last BDAT chunk), and that is the reply it reports;
//! - `NotSent` only when its end of data was never written or the server
//!   closed in order (421) before answering it; `Unknown` only when its end
//!   of data was written and its verdict never came.
//!
//! Input layout: a stream of operations, one byte each (some take the next
//! byte as an argument).

#![no_main]

use std::collections::{HashMap, HashSet, VecDeque};

use libfuzzer_sys::fuzz_target;
use securesmtp::session::queue::{Expect, Outcome, ReplyQueue};
use securesmtp::smtp::{Reply, ReplyParser};

/// Codes a server may answer anything with.
const CODES: [u16; 12] = [250, 251, 354, 221, 235, 334, 421, 450, 452, 503, 550, 552];

/// What the driver knows of one message.
#[derive(Default)]
struct Message {
    /// DATA mode, waiting for the 354 before its body.
    awaiting_354: bool,
    /// Its end of data went out.
    end_written: bool,
    /// The reply to its end of data (last chunk or final dot), if one came.
    end_reply: Option<u16>,
    /// Replies expected for its end of data that are still due.
    ends_due: usize,
}

fuzz_target!(|data: &[u8]| {
    let mut p = ReplyQueue::default();
    let mut due: VecDeque<(Option<u64>, Expect)> = VecDeque::new();
    let mut messages: HashMap<u64, Message> = HashMap::new();
    let mut settled: HashSet<u64> = HashSet::new();
    let mut next_id = 1u64;
    let mut orderly = None;
    let mut bytes = data.iter().copied();

    while let Some(op) = bytes.next() {
        match op % 4 {
            0 if messages.len() - settled.len() < 16 => {
                let id = next_id;
                next_id += 1;
                let rcpts: Vec<String> =
                    (0..1 + op as usize / 4 % 3).map(|i| format!("r{i}@example.test")).collect();
                let mut expect = |p: &mut ReplyQueue, id: Option<u64>, what: Expect| {
                    p.expect(id, what);
                    due.push_back((id, what));
                };
                let reset = p.needs_reset();
                p.begin(id, &rcpts);
                if reset {
                    expect(&mut p, None, Expect::Reset);
                }
                expect(&mut p, Some(id), Expect::Mail);
                for i in 0..rcpts.len() {
                    expect(&mut p, Some(id), Expect::Rcpt(i));
                }
                let mut m = Message::default();
                if op & 0x80 != 0 {
                    let chunks = 1 + op as usize / 16 % 3;
                    for _ in 0..chunks {
                        expect(&mut p, Some(id), Expect::Chunk);
                    }
                    p.end_written(id, false);
                    m.end_written = true;
                    m.ends_due = chunks;
                    p.seal(id);
                } else {
                    expect(&mut p, Some(id), Expect::Data);
                    m.awaiting_354 = true;
                }
                messages.insert(id, m);
            }
            1 => {
                let code = CODES[usize::from(bytes.next().unwrap_or(0)) % CODES.len()];
                let front = due.pop_front();
                let result = p.settle(reply(code));
                assert_eq!(result.is_ok(), front.is_some(), "a reply {code} with {front:?} due");
                let Some((Some(id), what)) = front else {
                    continue;
                };
                let m = messages.get_mut(&id).expect("a begun message");
                match what {
                    Expect::Chunk | Expect::EndOfData => {
                        m.ends_due -= 1;
                        if m.ends_due == 0 {
                            m.end_reply = Some(code);
                        }
                    }
                    Expect::Data => {
                        // The session writes the body only after a 354, and
                        // an empty one when nobody is left to deliver to.
                        m.awaiting_354 = false;
                        if p.data_reply(id).map(|(r, _)| r.code()) == Some(354) {
                            p.expect(Some(id), Expect::EndOfData);
                            due.push_back((Some(id), Expect::EndOfData));
                            p.end_written(id, true);
                            m.end_written = true;
                            m.ends_due = 1;
                        }
                        p.seal(id);
                    }
                    _ => {}
                }
            }
            2 => {
                orderly = Some(op & 0x80 != 0);
                break;
            }
            _ => {}
        }
        check(&mut p, &messages, &mut settled, None);
    }
    p.lose(orderly.unwrap_or(false));
    check(&mut p, &messages, &mut settled, Some(orderly.unwrap_or(false)));
    assert_eq!(settled.len(), messages.len(), "a message without an outcome");
    assert!(!p.expecting());
});

/// The outcomes decided since the last call, against what the driver saw.
/// `lost`: the connection is gone, in order (421) or not.
fn check(
    p: &mut ReplyQueue,
    messages: &HashMap<u64, Message>,
    settled: &mut HashSet<u64>,
    lost: Option<bool>,
) {
    for (id, outcome) in p.take_done() {
        assert!(settled.insert(id), "message {id} settled twice");
        let m = &messages[&id];
        match outcome {
            Outcome::Accepted(d) => {
                assert!(!m.awaiting_354, "message {id} accepted before its body");
                let code = m.end_reply.expect("accepted without a reply to its end of data");
                assert!((200..300).contains(&code), "message {id} accepted with {code}");
                assert_eq!(d.reply.code(), code);
            }
            Outcome::NotSent => assert!(
                !m.end_written || lost == Some(true),
                "message {id} not sent, but its end of data went out"
            ),
            Outcome::Unknown => {
                assert!(lost.is_some(), "message {id} unknown on a live connection");
                assert!(m.end_written && m.end_reply.is_none(), "message {id} unknown");
            }
            Outcome::Refused(_) => {}
        }
    }
}

fn reply(code: u16) -> Reply {
    let mut parser = ReplyParser::new();
    parser.feed(format!("{code} fuzz\r\n").as_bytes());
    parser.next_reply().expect("a well-formed reply").expect("a whole reply")
}
