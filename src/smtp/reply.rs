//! Server replies (RFC 5321 4.2): parsing them off the wire and showing them
//! safely.
//!
//! A reply is one or more lines `NNN-text` closed by a line `NNN text` (or a
//! bare `NNN`). [`ReplyParser`] is incremental: bytes go in with
//! [`ReplyParser::feed`] in whatever pieces the socket delivers, complete
//! replies come out of [`ReplyParser::next_reply`], and feeding one byte at a
//! time gives exactly what feeding everything at once gives. Each byte is
//! looked at once, so a pipelined batch of replies costs linear time.
//!
//! The parser is bounded, because the server is not trusted: a line longer
//! than [`Limits::max_line`] or a reply with more than [`Limits::max_lines`]
//! lines is an error as soon as it is seen, and an unterminated line is never
//! held beyond the line limit, so a peer streaming megabytes without a line
//! ending cannot grow memory.
//!
//! Deliberately tolerant of what real servers send: a bare LF ends a line as
//! well as CRLF (a trailing CR is stripped), and a last line may be just the
//! code. Deliberately strict where leniency would hide an attack or a
//! desynchronised stream: the code must be three digits with the first in
//! `2..=5`, the fourth byte a space or a hyphen, and all lines of one reply
//! must carry the same code.
//!
//! Reply text is the server's bytes, not ours to trust: [`sanitize`] turns it
//! into a string that is safe to print to a terminal.
//!
//! Left out: enhanced status codes (RFC 3463) are kept as part of the text,
//! not parsed.

use std::collections::VecDeque;
use std::fmt;

/// Longest text [`sanitize`] returns, in characters, before the ellipsis.
const SANITIZE_CAP: usize = 2000;

/// Longest sanitized excerpt of a malformed line kept in [`ReplyError::Malformed`],
/// ellipsis included.
const MALFORMED_EXCERPT: usize = 100;

/// The reply codes this client gives a meaning of its own, each named once
/// (RFC 5321 4.2.2 unless noted). A rule about a whole class of codes
/// (2yz, 4yz, ...) or about one of these is a method of [`Reply`].
pub mod code {
    /// 220: service ready; the greeting, and the go-ahead for the TLS
    /// handshake after STARTTLS (RFC 3207 4).
    pub const READY: u16 = 220;
    /// 221: service closing transmission channel, the answer to QUIT.
    pub const GOODBYE: u16 = 221;
    /// 235: authentication succeeded (RFC 4954 6).
    pub const AUTHENTICATED: u16 = 235;
    /// 250: requested action completed; the only greeting EHLO and HELO
    /// take (RFC 5321 4.1.1.1).
    pub const OK: u16 = 250;
    /// 334: a SASL challenge, to be answered on the next line (RFC 4954 4).
    pub const CHALLENGE: u16 = 334;
    /// 354: start mail input, the go-ahead for a DATA body.
    pub const START_MAIL_INPUT: u16 = 354;
    /// 421: service not available, closing transmission channel; the
    /// server closes after it, whatever command it answers (RFC 5321 3.8).
    pub const CLOSING: u16 = 421;
    /// 530: authentication required (RFC 4954 6); RFC 3207 4 gives the same
    /// code for "must issue a STARTTLS command first".
    pub const AUTH_REQUIRED: u16 = 530;
}

/// One complete server reply: its code and the text of each of its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    lines: Vec<Vec<u8>>,
}

impl Reply {
    /// A reply with the given code and line texts (without the code prefix
    /// or line endings).
    pub fn new(code: u16, lines: Vec<Vec<u8>>) -> Reply {
        Reply { code, lines }
    }

    /// The three-digit reply code, e.g. 250.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The text after `NNN-` or `NNN ` on each line, as raw bytes without the
    /// line ending. A line that was just the code has empty text.
    pub fn lines(&self) -> &[Vec<u8>] {
        &self.lines
    }

    /// 2yz: positive completion.
    pub fn is_positive(&self) -> bool {
        self.code / 100 == 2
    }

    /// 3yz: positive intermediate (e.g. 354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        self.code / 100 == 3
    }

    /// 4yz: transient negative completion; trying again later may work.
    pub fn is_transient(&self) -> bool {
        self.code / 100 == 4
    }

    /// 5yz: permanent negative completion.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }

    /// 421: the server is closing the connection ([`code::CLOSING`]); it
    /// processed nothing after the command this answers.
    pub fn is_closing(&self) -> bool {
        self.code == code::CLOSING
    }

    /// 421 or 221: the server closes the connection after this reply, so
    /// nothing more may be said on it, QUIT included.
    pub fn ends_session(&self) -> bool {
        self.is_closing() || self.code == code::GOODBYE
    }

    /// 334: a SASL challenge ([`code::CHALLENGE`]).
    pub fn is_challenge(&self) -> bool {
        self.code == code::CHALLENGE
    }

    /// 354: the server takes a DATA body now ([`code::START_MAIL_INPUT`]).
    pub fn starts_mail_input(&self) -> bool {
        self.code == code::START_MAIL_INPUT
    }

    /// The text of all lines, each [`sanitize`]d, joined with `\n`.
    pub fn text(&self) -> String {
        self.joined_text("\n")
    }

    fn joined_text(&self, separator: &str) -> String {
        let mut out = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push_str(separator);
            }
            sanitize_into(line, SANITIZE_CAP, &mut out);
        }
        out
    }
}

/// `550 first line second line`: the code and the sanitized lines joined
/// with spaces, on one line, safe to print to a terminal.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.joined_text(" ");
        if text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, text)
        }
    }
}

/// Server text made safe to show: valid, printable UTF-8 is kept as is;
/// control characters (C0 including TAB, CR, LF and ESC; DEL; C1) and bytes
/// that are not valid UTF-8 are written as `\xNN`, one escape per byte.
/// Bidirectional overrides and isolates and the Unicode line and paragraph
/// separators, which can make a terminal show something other than what was
/// sent, are written as `\u{NNNN}`. A backslash is kept as is.
///
/// The result is capped at 2000 characters; longer text is cut (never in the
/// middle of an escape) and ends with `…`.
pub fn sanitize(bytes: &[u8]) -> String {
    let mut out = String::new();
    sanitize_into(bytes, SANITIZE_CAP, &mut out);
    out
}

/// [`sanitize`] with a caller-chosen cap, appending to `out`.
fn sanitize_into(bytes: &[u8], cap: usize, out: &mut String) {
    use std::fmt::Write as _;

    // Count characters written so the cap is in characters, as documented,
    // without rescanning `out`.
    let mut written = 0usize;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let width = if c.is_control() {
                4 * c.len_utf8()
            } else if is_deceptive(c) {
                // "\u{" + hex digits + "}"
                4 + hex_digits(c as u32)
            } else {
                1
            };
            if written + width > cap {
                out.push('…');
                return;
            }
            written += width;
            if c.is_control() {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\x{b:02x}");
                }
            } else if is_deceptive(c) {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            if written + 4 > cap {
                out.push('…');
                return;
            }
            written += 4;
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Characters that reorder or break what a terminal displays (the "Trojan
/// Source" set, CVE-2021-42574, plus the Unicode line separators).
fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
    )
}

fn hex_digits(mut n: u32) -> usize {
    let mut digits = 1;
    while n >= 16 {
        n /= 16;
        digits += 1;
    }
    digits
}

/// Bounds on what the parser accepts from the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest accepted line in bytes, its line ending included.
    pub max_line: usize,
    /// Most lines accepted in one reply.
    pub max_lines: usize,
}

/// 4096 bytes per line and 256 lines per reply: well above what real servers
/// send (RFC 5321 4.5.3.1.5 asks for 512-byte reply lines; EHLO replies run
/// to a few dozen lines) and small enough that one reply stays under 1 MiB.
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 4096,
            max_lines: 256,
        }
    }
}

/// Why the byte stream from the server is not a valid sequence of replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line (with its ending) was longer than the limit, in bytes.
    LineTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A reply had more lines than the limit.
    TooManyLines {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A line that is not `NNN`, `NNN text` or `NNN-text` with a valid code.
    Malformed {
        /// The start of the offending line, sanitized, at most 100 characters.
        line: String,
    },
    /// The lines of one multi-line reply carry different codes.
    MixedCodes {
        /// The code of the first line.
        first: u16,
        /// The first different code.
        other: u16,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong { limit } => {
                write!(f, "reply line longer than {limit} bytes")
            }
            ReplyError::TooManyLines { limit } => {
                write!(f, "reply with more than {limit} lines")
            }
            ReplyError::Malformed { line } => write!(f, "malformed reply line \"{line}\""),
            ReplyError::MixedCodes { first, other } => {
                write!(f, "multi-line reply mixes codes {first} and {other}")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// Incremental, bounded parser of server replies.
///
/// Lines are parsed as they arrive in [`feed`](Self::feed); only the
/// unterminated tail of the last line is kept as bytes. Complete replies
/// wait in a queue for [`next_reply`](Self::next_reply).
///
/// An error is final: once the stream is known to be bad, later input is
/// dropped and `next_reply` returns the same error again (after any replies
/// that were complete before the bad line), because there is no way to find
/// where the next reply would start.
#[derive(Debug)]
pub struct ReplyParser {
    limits: Limits,
    /// Bytes of the current line that have no line ending yet; never longer
    /// than `limits.max_line`.
    tail: Vec<u8>,
    /// The lines so far of a reply whose last line has not arrived.
    pending: Option<Pending>,
    /// Complete replies not yet handed out, with their size on the wire.
    ready: VecDeque<(Reply, usize)>,
    error: Option<ReplyError>,
    /// Bytes fed and not yet handed out as part of a reply.
    held: usize,
}

#[derive(Debug)]
struct Pending {
    code: u16,
    lines: Vec<Vec<u8>>,
    wire_len: usize,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// A parser with the default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A parser with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        ReplyParser {
            limits,
            tail: Vec::new(),
            pending: None,
            ready: VecDeque::new(),
            error: None,
            held: 0,
        }
    }

    /// Adds bytes received from the server.
    pub fn feed(&mut self, data: &[u8]) {
        self.held = self.held.saturating_add(data.len());
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.parse(data) {
            self.error = Some(e);
            // Nothing after a bad line can be parsed; free what is held.
            self.tail = Vec::new();
            self.pending = None;
        }
    }

    /// One complete reply, consuming it; `Ok(None)` when more bytes are
    /// needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        if let Some((reply, wire_len)) = self.ready.pop_front() {
            self.held = self.held.saturating_sub(wire_len);
            return Ok(Some(reply));
        }
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }

    /// Bytes fed but not consumed by [`next_reply`](Self::next_reply):
    /// queued replies, the lines so far of an incomplete one and an
    /// unterminated line. After a complete reply that should have been the
    /// last thing the server sent (the 220 to STARTTLS), anything here was
    /// injected.
    pub fn buffered(&self) -> usize {
        self.held
    }

    fn parse(&mut self, mut data: &[u8]) -> Result<(), ReplyError> {
        let max_line = self.limits.max_line;
        while !data.is_empty() {
            let Some(pos) = data.iter().position(|&b| b == b'\n') else {
                // Without its LF the line is already one byte longer than
                // what is held; refuse it now rather than buffer more.
                if self.tail.len() + data.len() >= max_line {
                    return Err(ReplyError::LineTooLong { limit: max_line });
                }
                self.tail.extend_from_slice(data);
                return Ok(());
            };
            let wire_len = self.tail.len() + pos + 1;
            if wire_len > max_line {
                return Err(ReplyError::LineTooLong { limit: max_line });
            }
            if self.tail.is_empty() {
                self.line(&data[..pos], wire_len)?;
            } else {
                let mut line = std::mem::take(&mut self.tail);
                line.extend_from_slice(&data[..pos]);
                self.line(&line, wire_len)?;
                // Keep the allocation for the next split line.
                line.clear();
                self.tail = line;
            }
            data = &data[pos + 1..];
        }
        Ok(())
    }

    /// One line without its LF; `wire_len` is its size on the wire.
    fn line(&mut self, line: &[u8], wire_len: usize) -> Result<(), ReplyError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (code, last, text) = split_line(line).ok_or_else(|| ReplyError::Malformed {
            line: {
                let mut excerpt = String::new();
                sanitize_into(line, MALFORMED_EXCERPT - 1, &mut excerpt);
                excerpt
            },
        })?;
        let pending = self.pending.get_or_insert_with(|| Pending {
            code,
            lines: Vec::new(),
            wire_len: 0,
        });
        if pending.code != code {
            return Err(ReplyError::MixedCodes {
                first: pending.code,
                other: code,
            });
        }
        if pending.lines.len() >= self.limits.max_lines {
            return Err(ReplyError::TooManyLines {
                limit: self.limits.max_lines,
            });
        }
        pending.lines.push(text.to_vec());
        pending.wire_len += wire_len;
        if last {
            // `get_or_insert_with` above guarantees a pending reply.
            if let Some(done) = self.pending.take() {
                self.ready
                    .push_back((Reply::new(done.code, done.lines), done.wire_len));
            }
        }
        Ok(())
    }
}

/// `NNN`, `NNN text` or `NNN-text` into (code, is last line, text).
fn split_line(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let (digits, rest) = line.split_at_checked(3)?;
    let [d0 @ b'2'..=b'5', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9'] = *digits else {
        return None;
    };
    let code = u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0');
    match rest.split_first() {
        None => Some((code, true, rest)),
        Some((b' ', text)) => Some((code, true, text)),
        Some((b'-', text)) => Some((code, false, text)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(wire: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut parser = ReplyParser::new();
        parser.feed(wire);
        drain(&mut parser)
    }

    fn drain(parser: &mut ReplyParser) -> Vec<Result<Reply, ReplyError>> {
        let mut out = Vec::new();
        loop {
            match parser.next_reply() {
                Ok(Some(reply)) => out.push(Ok(reply)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    fn one(wire: &str) -> Reply {
        let mut parser = ReplyParser::new();
        parser.feed(wire.as_bytes());
        let reply = parser.next_reply().unwrap().expect("a complete reply");
        assert_eq!(parser.buffered(), 0);
        reply
    }

    fn error(wire: &[u8]) -> ReplyError {
        let mut parser = ReplyParser::new();
        parser.feed(wire);
        parser.next_reply().expect_err("a parse error")
    }

    fn lines(reply: &Reply) -> Vec<&str> {
        reply
            .lines()
            .iter()
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn single_line_reply_is_parsed() {
        let reply = one("220 mail.example.org ESMTP Postfix\r\n");
        assert_eq!(reply.code(), 220);
        assert_eq!(lines(&reply), ["mail.example.org ESMTP Postfix"]);
        assert!(reply.is_positive());
    }

    #[test]
    fn multi_line_reply_is_parsed() {
        let reply = one("250-mail.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
        assert_eq!(reply.code(), 250);
        assert_eq!(
            lines(&reply),
            ["mail.example.org", "PIPELINING", "8BITMIME"]
        );
        assert_eq!(reply.text(), "mail.example.org\nPIPELINING\n8BITMIME");
        assert_eq!(
            reply.to_string(),
            "250 mail.example.org PIPELINING 8BITMIME"
        );
    }

    #[test]
    fn bare_code_line_ends_a_reply_with_empty_text() {
        let reply = one("250\r\n");
        assert_eq!(reply.code(), 250);
        assert_eq!(lines(&reply), [""]);
        assert_eq!(reply.to_string(), "250");
        let reply = one("250-first\r\n250\r\n");
        assert_eq!(lines(&reply), ["first", ""]);
    }

    #[test]
    fn bare_lf_is_tolerated_as_a_line_ending() {
        let reply = one("250-a\n250 b\n");
        assert_eq!(lines(&reply), ["a", "b"]);
    }

    #[test]
    fn only_one_trailing_cr_is_stripped() {
        let reply = one("250 a\r\r\n");
        assert_eq!(reply.lines(), [b"a\r".to_vec()]);
        assert_eq!(reply.text(), "a\\x0d");
    }

    #[test]
    fn reply_classes_follow_the_first_digit() {
        let classes = |code| {
            let r = Reply::new(code, vec![]);
            (
                r.is_positive(),
                r.is_intermediate(),
                r.is_transient(),
                r.is_permanent(),
            )
        };
        assert_eq!(classes(250), (true, false, false, false));
        assert_eq!(classes(354), (false, true, false, false));
        assert_eq!(classes(421), (false, false, true, false));
        assert_eq!(classes(554), (false, false, false, true));
    }

    #[test]
    fn replies_split_at_every_byte_boundary_parse_the_same() {
        let wire = b"220 hi\r\n250-a\r\n250-b\n250 c\r\n354 go ahead\r\n250\r\n221 bye\r\n";
        let whole = parse_all(wire);
        assert_eq!(whole.len(), 5);
        for split in 0..=wire.len() {
            let mut parser = ReplyParser::new();
            parser.feed(&wire[..split]);
            let mut got = drain(&mut parser);
            parser.feed(&wire[split..]);
            got.extend(drain(&mut parser));
            assert_eq!(got, whole, "split at {split}");
            assert_eq!(parser.buffered(), 0);
        }
        let mut parser = ReplyParser::new();
        let mut got = Vec::new();
        for b in wire {
            parser.feed(std::slice::from_ref(b));
            got.extend(drain(&mut parser));
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn incomplete_reply_waits_for_more_bytes() {
        let mut parser = ReplyParser::new();
        parser.feed(b"250-a\r\n250 b");
        assert_eq!(parser.next_reply(), Ok(None));
        assert_eq!(parser.buffered(), 12);
        parser.feed(b"\r\n");
        assert_eq!(parser.next_reply().unwrap().unwrap().code(), 250);
        assert_eq!(parser.buffered(), 0);
    }

    #[test]
    fn two_replies_in_one_feed_come_out_one_at_a_time() {
        let mut parser = ReplyParser::new();
        parser.feed(b"250 ok\r\n354 go\r\n221");
        assert_eq!(parser.buffered(), 19);
        assert_eq!(parser.next_reply().unwrap().unwrap().code(), 250);
        assert_eq!(parser.buffered(), 11);
        assert_eq!(parser.next_reply().unwrap().unwrap().code(), 354);
        assert_eq!(parser.buffered(), 3);
        assert_eq!(parser.next_reply(), Ok(None));
        assert_eq!(parser.buffered(), 3);
    }

    #[test]
    fn bytes_after_a_starttls_reply_are_visible_as_buffered() {
        let mut parser = ReplyParser::new();
        parser.feed(b"220 go ahead\r\n250-injected\r\n");
        assert_eq!(parser.next_reply().unwrap().unwrap().code(), 220);
        assert_eq!(parser.buffered(), 14);
    }

    #[test]
    fn mixed_codes_in_one_reply_are_refused() {
        assert_eq!(
            error(b"250-a\r\n550 b\r\n"),
            ReplyError::MixedCodes {
                first: 250,
                other: 550
            }
        );
        assert_eq!(
            error(b"250-a\r\n550 b\r\n").to_string(),
            "multi-line reply mixes codes 250 and 550"
        );
    }

    #[test]
    fn codes_outside_2xx_to_5xx_are_malformed() {
        for wire in [
            "099 x\r\n",
            "199 x\r\n",
            "600 x\r\n",
            "000\r\n",
            "999 x\r\n",
        ] {
            assert!(
                matches!(error(wire.as_bytes()), ReplyError::Malformed { .. }),
                "{wire:?}"
            );
        }
    }

    #[test]
    fn lines_that_are_not_a_code_and_separator_are_malformed() {
        for wire in [
            "25 x\r\n",
            "2a0 x\r\n",
            "250x\r\n",
            "250_x\r\n",
            " 250 x\r\n",
            "\r\n",
            "\n",
            "hello\r\n",
            "２５０ x\r\n",
        ] {
            assert!(
                matches!(error(wire.as_bytes()), ReplyError::Malformed { .. }),
                "{wire:?}"
            );
        }
        assert_eq!(
            error(b"ab\x1b[31mc\r\n").to_string(),
            "malformed reply line \"ab\\x1b[31mc\""
        );
    }

    #[test]
    fn malformed_line_excerpt_is_at_most_100_characters() {
        let mut wire = vec![b'x'; 3000];
        wire.extend_from_slice(b"\r\n");
        let ReplyError::Malformed { line } = error(&wire) else {
            panic!("expected Malformed");
        };
        assert_eq!(line.chars().count(), 100);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn non_utf8_text_is_kept_raw_and_shown_escaped() {
        let reply = one("250 caf\u{e9} ok\r\n");
        assert_eq!(reply.text(), "café ok");
        let mut parser = ReplyParser::new();
        parser.feed(b"550 bad \xff\xfe byte\r\n");
        let reply = parser.next_reply().unwrap().unwrap();
        assert_eq!(reply.lines(), [b"bad \xff\xfe byte".to_vec()]);
        assert_eq!(reply.text(), "bad \\xff\\xfe byte");
        assert_eq!(reply.to_string(), "550 bad \\xff\\xfe byte");
    }

    #[test]
    fn endless_line_without_crlf_is_refused_with_bounded_memory() {
        let mut parser = ReplyParser::new();
        parser.feed(b"250 ");
        let chunk = vec![b'a'; 64 * 1024];
        let mut refused = false;
        for _ in 0..16 {
            parser.feed(&chunk);
            assert!(parser.tail.capacity() <= 2 * Limits::default().max_line);
            if parser.next_reply().is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
        assert_eq!(
            parser.next_reply(),
            Err(ReplyError::LineTooLong { limit: 4096 })
        );
    }

    #[test]
    fn megabyte_line_fed_at_once_is_refused_without_being_buffered() {
        let mut parser = ReplyParser::new();
        parser.feed(&vec![b'2'; 1 << 20]);
        assert!(parser.tail.capacity() < 4096);
        assert_eq!(
            parser.next_reply(),
            Err(ReplyError::LineTooLong { limit: 4096 })
        );
    }

    #[test]
    fn line_of_exactly_the_limit_is_accepted_and_one_more_byte_is_not() {
        let limits = Limits {
            max_line: 16,
            max_lines: 4,
        };
        let ok = b"250 0123456789\r\n";
        assert_eq!(ok.len(), 16);
        for piecewise in [false, true] {
            let mut parser = ReplyParser::with_limits(limits);
            if piecewise {
                ok.iter().for_each(|b| parser.feed(&[*b]));
            } else {
                parser.feed(ok);
            }
            assert!(parser.next_reply().unwrap().is_some());

            let too_long = b"250 0123456789a\r\n";
            let mut parser = ReplyParser::with_limits(limits);
            if piecewise {
                too_long.iter().for_each(|b| parser.feed(&[*b]));
            } else {
                parser.feed(too_long);
            }
            assert_eq!(
                parser.next_reply(),
                Err(ReplyError::LineTooLong { limit: 16 })
            );
        }
    }

    #[test]
    fn reply_with_300_lines_is_refused() {
        let wire = "250-x\r\n".repeat(300);
        let mut parser = ReplyParser::new();
        parser.feed(wire.as_bytes());
        assert_eq!(
            parser.next_reply(),
            Err(ReplyError::TooManyLines { limit: 256 })
        );
        assert_eq!(
            ReplyError::TooManyLines { limit: 256 }.to_string(),
            "reply with more than 256 lines"
        );
    }

    #[test]
    fn reply_with_exactly_the_line_limit_is_accepted() {
        let mut wire = "250-x\r\n".repeat(255);
        wire.push_str("250 end\r\n");
        assert_eq!(one(&wire).lines().len(), 256);
    }

    #[test]
    fn error_is_final_and_later_input_is_ignored() {
        let mut parser = ReplyParser::new();
        parser.feed(b"250 ok\r\nnonsense\r\n250 later\r\n");
        assert_eq!(parser.next_reply().unwrap().unwrap().code(), 250);
        let e = parser.next_reply().unwrap_err();
        assert!(matches!(e, ReplyError::Malformed { .. }));
        parser.feed(b"250 more\r\n");
        assert_eq!(parser.next_reply(), Err(e));
    }

    #[test]
    fn line_too_long_error_reads_as_plain_english() {
        assert_eq!(
            ReplyError::LineTooLong { limit: 4096 }.to_string(),
            "reply line longer than 4096 bytes"
        );
    }

    #[test]
    fn sanitize_escapes_control_characters_and_invalid_utf8() {
        assert_eq!(sanitize(b"plain text"), "plain text");
        assert_eq!(
            sanitize(b"a\tb\r\nc\x1b[2J\x7f\x00"),
            "a\\x09b\\x0d\\x0ac\\x1b[2J\\x7f\\x00"
        );
        assert_eq!(sanitize("c1 \u{9b}31m".as_bytes()), "c1 \\xc2\\x9b31m");
        assert_eq!(sanitize(b"\xc3\x28 \xe2\x82"), "\\xc3( \\xe2\\x82");
        assert_eq!(sanitize(b"back\\slash"), "back\\slash");
        assert_eq!(sanitize("日本語 ünïcode".as_bytes()), "日本語 ünïcode");
    }

    #[test]
    fn sanitize_escapes_bidi_overrides_and_line_separators() {
        assert_eq!(
            sanitize("user\u{202e}gnp.exe\u{2028}x".as_bytes()),
            "user\\u{202e}gnp.exe\\u{2028}x"
        );
    }

    #[test]
    fn sanitize_caps_long_text_with_an_ellipsis() {
        assert_eq!(sanitize(&[b'a'; 2000]), "a".repeat(2000));
        let long = sanitize(&[b'a'; 5000]);
        assert_eq!(long.chars().count(), 2001);
        assert!(long.ends_with("a…"));
        // An escape is never cut in half.
        let escapes = sanitize(&[0x1b; 1000]);
        assert!(escapes.ends_with("\\x1b…"));
        assert_eq!(escapes.chars().count(), 2001);
    }

    #[test]
    fn display_of_a_hostile_reply_contains_no_control_characters() {
        let mut parser = ReplyParser::new();
        parser.feed(b"550-\x1b]0;pwned\x07\r\n550 \x9b\xc2\x9b\r\n");
        let shown = parser.next_reply().unwrap().unwrap().to_string();
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        fn replies_of(chunks: &[Vec<u8>], limits: Limits) -> Vec<Result<Reply, ReplyError>> {
            let mut parser = ReplyParser::with_limits(limits);
            let mut out = Vec::new();
            for chunk in chunks {
                parser.feed(chunk);
                out.extend(super::drain(&mut parser));
                if matches!(out.last(), Some(Err(_))) {
                    break;
                }
            }
            out
        }

        fn wire_like() -> impl Strategy<Value = Vec<u8>> {
            let line = prop_oneof![
                Just(b"250-".to_vec()),
                Just(b"250 ".to_vec()),
                Just(b"550 ".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b"354".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..12),
            ];
            proptest::collection::vec(line, 0..40).prop_map(|parts| parts.concat())
        }

        proptest! {
            #[test]
            fn any_split_of_the_input_gives_the_same_replies(
                wire in wire_like(),
                cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            ) {
                let limits = Limits { max_line: 24, max_lines: 4 };
                let whole = replies_of(std::slice::from_ref(&wire), limits);
                let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
                points.sort_unstable();
                let mut chunks = Vec::new();
                let mut start = 0;
                for p in points {
                    chunks.push(wire[start..p].to_vec());
                    start = p;
                }
                chunks.push(wire[start..].to_vec());
                prop_assert_eq!(replies_of(&chunks, limits), whole.clone());
                let bytes: Vec<Vec<u8>> = wire.iter().map(|b| vec![*b]).collect();
                prop_assert_eq!(replies_of(&bytes, limits), whole);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_buffered_is_consistent(
                wire in proptest::collection::vec(any::<u8>(), 0..512),
            ) {
                let mut parser = ReplyParser::new();
                parser.feed(&wire);
                let mut consumed = 0;
                while let Ok(Some(reply)) = parser.next_reply() {
                    for line in reply.lines() {
                        consumed += line.len() + 4;
                    }
                    let _ = reply.to_string();
                }
                prop_assert!(consumed <= wire.len());
                prop_assert!(parser.buffered() <= wire.len() - consumed);
            }

            #[test]
            fn sanitized_text_has_no_control_characters(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                let shown = sanitize(&bytes);
                prop_assert!(!shown.chars().any(|c| c.is_control() || super::super::is_deceptive(c)));
            }
        }
    }
}
