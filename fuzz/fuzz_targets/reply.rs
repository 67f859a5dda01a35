//! Server bytes, in whatever pieces the socket delivers, into
//! `smtp::ReplyParser`, and every reply into `smtp::Capabilities::from_ehlo`.
//!
//! Checked for every input:
//! - nothing panics;
//! - the parser never holds more than its limits allow (one unterminated line
//!   plus the lines of one unfinished reply) while the stream is good;
//! - feeding the input in arbitrary pieces gives exactly the replies (and the
//!   error) that feeding it at once gives;
//! - everything that would be shown to a user (reply `Display`, `text`,
//!   capability keywords, error messages) has no control character left.
//!
//! Input layout: byte 0 picks the parser limits (the defaults, or small ones
//! so that short inputs reach the limit errors), byte 1 seeds the split
//! points, the rest is the wire.

#![no_main]

use libfuzzer_sys::fuzz_target;
use securesmtp::smtp::{sanitize, Capabilities, Limits, Reply, ReplyError, ReplyParser};

fuzz_target!(|data: &[u8]| {
    let [mode, seed, wire @ ..] = data else {
        return;
    };
    let limits = match mode % 4 {
        0 => Limits::default(),
        1 => Limits { max_line: 8, max_lines: 2 },
        2 => Limits { max_line: 64, max_lines: 4 },
        _ => Limits { max_line: 512, max_lines: 16 },
    };

    let whole = {
        let mut parser = ReplyParser::with_limits(limits);
        parser.feed(wire);
        drain(&mut parser, limits)
    };

    let pieces = {
        let mut parser = ReplyParser::with_limits(limits);
        let mut out = Outcome::default();
        let mut rng = XorShift(u32::from(*seed).wrapping_mul(2_654_435_761) | 1);
        let mut rest = wire;
        while !rest.is_empty() {
            // Mostly small pieces, sometimes large ones, sometimes one byte.
            let n = match rng.next() % 8 {
                0 => 1,
                1 => rest.len(),
                k => 1 + (rng.next() as usize % (4 << k)),
            }
            .min(rest.len());
            parser.feed(&rest[..n]);
            rest = &rest[n..];
            let more = drain(&mut parser, limits);
            out.replies.extend(more.replies);
            if out.error.is_none() {
                out.error = more.error;
            }
        }
        out
    };

    assert_eq!(whole.replies, pieces.replies, "split input gave other replies");
    assert_eq!(whole.error, pieces.error, "split input gave another error");

    for reply in &whole.replies {
        check_reply(reply, limits);
        let caps = Capabilities::from_ehlo(reply);
        for keyword in caps.keywords() {
            assert_shown_safely(keyword);
        }
        for mechanism in caps.auth_mechanisms() {
            assert_shown_safely(mechanism);
        }
        let _ = (
            caps.starttls(),
            caps.pipelining(),
            caps.chunking(),
            caps.eight_bit_mime(),
            caps.smtp_utf8(),
            caps.enhanced_status_codes(),
            caps.size(),
            caps.supports_auth("PLAIN"),
        );
    }
    if let Some(e) = &whole.error {
        assert_shown_safely(&e.to_string());
    }
});

#[derive(Default)]
struct Outcome {
    replies: Vec<Reply>,
    error: Option<ReplyError>,
}

/// Every reply that is complete, then the error if the stream went bad.
fn drain(parser: &mut ReplyParser, limits: Limits) -> Outcome {
    let mut out = Outcome::default();
    loop {
        match parser.next_reply() {
            Ok(Some(reply)) => out.replies.push(reply),
            Ok(None) => break,
            Err(e) => {
                // An error is final: asking again gives the same one.
                assert_eq!(parser.next_reply(), Err(e.clone()));
                out.error = Some(e);
                return out;
            }
        }
    }
    // Everything complete was taken out: what is left is at most one
    // unfinished reply (its lines within the limits) and one unterminated
    // line shorter than the line limit.
    let bound = limits.max_line * (limits.max_lines + 1);
    assert!(
        parser.buffered() <= bound,
        "parser holds {} bytes, bound {bound}",
        parser.buffered()
    );
    out
}

fn check_reply(reply: &Reply, limits: Limits) {
    assert!((200..600).contains(&reply.code()), "code {}", reply.code());
    assert!(!reply.lines().is_empty() && reply.lines().len() <= limits.max_lines);
    for line in reply.lines() {
        assert!(line.len() < limits.max_line);
        assert_shown_safely(&sanitize(line));
    }
    assert_shown_safely(&reply.to_string());
    for line in reply.text().split('\n') {
        assert_shown_safely(line);
    }
}

/// No byte of server text may reach a terminal as a control character.
fn assert_shown_safely(shown: &str) {
    assert!(
        !shown.chars().any(char::is_control),
        "control character in {shown:?}"
    );
}

/// Split points only need to vary, not to be good random numbers.
struct XorShift(u32);

impl XorShift {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}
