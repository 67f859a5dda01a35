//! What the server offers, from its EHLO reply (RFC 5321 4.1.1.1 and 4.1.4).
//!
//! The first line of a 250 reply to EHLO is the server's name and greeting;
//! each following line is an `ehlo-keyword` with optional parameters. Keywords
//! are matched without regard to case. The extensions the client uses are
//! decoded into typed accessors; every line is also kept, sanitized, in
//! [`Capabilities::keywords`] for reports and the `--debug` transcript.
//!
//! The reply is the server's, and before STARTTLS possibly an attacker's:
//! decoding never panics and never trusts a number. An absurd `SIZE`
//! (beyond `u64`, or not a number) is read as "no fixed limit"
//! (`Some(0)`), which is what RFC 1870 says a bare `SIZE` means; the client
//! then still sends `SIZE=` and lets the server judge.
//!
//! Left out: extensions this client does not use (DSN, BINARYMIME, ETRN,
//! DELIVERBY, ...) are kept as keywords only.

use crate::smtp::reply::{sanitize, Reply};

/// Longest SASL mechanism name (RFC 4422 3.1).
const MAX_MECHANISM_LEN: usize = 20;

/// The service extensions a server announced in its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    keywords: Vec<String>,
    starttls: bool,
    pipelining: bool,
    chunking: bool,
    eight_bit_mime: bool,
    smtp_utf8: bool,
    enhanced_status_codes: bool,
    size: Option<u64>,
    auth_mechanisms: Vec<String>,
}

impl Capabilities {
    /// Decodes a positive reply to EHLO. The first line (the server's domain
    /// and greeting) is ignored; empty lines are skipped; unknown keywords
    /// are kept in [`keywords`](Self::keywords). When a keyword appears twice
    /// the first `SIZE` wins and `AUTH` mechanisms accumulate.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::none();
        for line in reply.lines().iter().skip(1) {
            let shown = sanitize(line);
            if shown.trim().is_empty() {
                continue;
            }
            caps.keywords.push(shown);
            caps.decode(line);
        }
        caps
    }

    /// No extensions at all: what a server that only answered HELO offers.
    pub fn none() -> Capabilities {
        Capabilities::default()
    }

    fn decode(&mut self, line: &[u8]) {
        let mut words = line
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|w| !w.is_empty());
        let Some(keyword) = words.next() else {
            return;
        };
        let is = |name: &str| keyword.eq_ignore_ascii_case(name.as_bytes());
        if is("STARTTLS") {
            self.starttls = true;
        } else if is("PIPELINING") {
            self.pipelining = true;
        } else if is("CHUNKING") {
            self.chunking = true;
        } else if is("8BITMIME") {
            self.eight_bit_mime = true;
        } else if is("SMTPUTF8") {
            self.smtp_utf8 = true;
        } else if is("ENHANCEDSTATUSCODES") {
            self.enhanced_status_codes = true;
        } else if is("SIZE") {
            if self.size.is_none() {
                self.size = Some(words.next().map_or(0, parse_size));
            }
        } else if is("AUTH") {
            words.for_each(|w| self.add_mechanism(w));
        } else if keyword.len() > 5 && keyword[..5].eq_ignore_ascii_case(b"AUTH=") {
            // Pre-RFC 4954 servers (old Outlook, some appliances) announce
            // `AUTH=LOGIN PLAIN`; the first mechanism is glued to the keyword.
            self.add_mechanism(&keyword[5..]);
            words.for_each(|w| self.add_mechanism(w));
        }
    }

    fn add_mechanism(&mut self, word: &[u8]) {
        // RFC 4422 3.1: 1 to 20 of upper-case letters, digits, '-' and '_';
        // lower case is tolerated. Anything else is noise or hostile and
        // never becomes a mechanism the client might name on the wire.
        let valid = !word.is_empty()
            && word.len() <= MAX_MECHANISM_LEN
            && word
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
        if !valid {
            return;
        }
        let name: String = word
            .iter()
            .map(|b| char::from(b.to_ascii_uppercase()))
            .collect();
        if !self.auth_mechanisms.contains(&name) {
            self.auth_mechanisms.push(name);
        }
    }

    /// STARTTLS (RFC 3207): the server can upgrade this connection to TLS.
    pub fn starttls(&self) -> bool {
        self.starttls
    }

    /// PIPELINING (RFC 2920): the envelope commands may be sent in one write.
    pub fn pipelining(&self) -> bool {
        self.pipelining
    }

    /// CHUNKING (RFC 3030): the message may be sent with BDAT instead of DATA.
    pub fn chunking(&self) -> bool {
        self.chunking
    }

    /// 8BITMIME (RFC 6152): `MAIL FROM ... BODY=8BITMIME` is accepted.
    pub fn eight_bit_mime(&self) -> bool {
        self.eight_bit_mime
    }

    /// SMTPUTF8 (RFC 6531): UTF-8 addresses and headers are accepted.
    pub fn smtp_utf8(&self) -> bool {
        self.smtp_utf8
    }

    /// ENHANCEDSTATUSCODES (RFC 2034): reply texts start with an RFC 3463
    /// status code such as `5.7.1`.
    pub fn enhanced_status_codes(&self) -> bool {
        self.enhanced_status_codes
    }

    /// SIZE (RFC 1870): `Some(n)` for the largest message the server takes,
    /// `Some(0)` when it announced SIZE without a usable limit (no number,
    /// zero, or a number too large or garbled to read), `None` when it did not
    /// announce SIZE.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// AUTH (RFC 4954): the SASL mechanisms offered, upper case, without
    /// duplicates, in the server's order. Includes the legacy `AUTH=` form.
    pub fn auth_mechanisms(&self) -> &[String] {
        &self.auth_mechanisms
    }

    /// Whether `mechanism` (any case) is among [`auth_mechanisms`](Self::auth_mechanisms).
    pub fn supports_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// Every capability line after the greeting, sanitized, as sent (case
    /// kept), e.g. `["PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN"]`.
    pub fn keywords(&self) -> &[String] {
        &self.keywords
    }
}

/// The SIZE parameter; see [`Capabilities::size`] for what cannot be read.
fn parse_size(word: &[u8]) -> u64 {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    // Only ASCII digits, so the only failure left is overflow.
    std::str::from_utf8(word)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::ReplyParser;

    fn caps(wire: &[u8]) -> Capabilities {
        let mut parser = ReplyParser::new();
        parser.feed(wire);
        let reply = parser.next_reply().unwrap().expect("a complete reply");
        Capabilities::from_ehlo(&reply)
    }

    #[test]
    fn postfix_ehlo_reply_is_decoded() {
        let caps = caps(
            b"250-mail.example.org\r\n\
              250-PIPELINING\r\n\
              250-SIZE 10240000\r\n\
              250-VRFY\r\n\
              250-ETRN\r\n\
              250-STARTTLS\r\n\
              250-AUTH PLAIN LOGIN\r\n\
              250-AUTH=PLAIN LOGIN\r\n\
              250-ENHANCEDSTATUSCODES\r\n\
              250-8BITMIME\r\n\
              250-DSN\r\n\
              250-SMTPUTF8\r\n\
              250 CHUNKING\r\n",
        );
        assert!(caps.pipelining());
        assert!(caps.starttls());
        assert!(caps.chunking());
        assert!(caps.eight_bit_mime());
        assert!(caps.smtp_utf8());
        assert!(caps.enhanced_status_codes());
        assert_eq!(caps.size(), Some(10_240_000));
        assert_eq!(caps.auth_mechanisms(), ["PLAIN", "LOGIN"]);
        assert!(caps.supports_auth("plain"));
        assert!(!caps.supports_auth("CRAM-MD5"));
        assert_eq!(caps.keywords().len(), 12);
        assert_eq!(caps.keywords()[1], "SIZE 10240000");
        assert!(caps.keywords().iter().any(|k| k == "DSN"));
    }

    #[test]
    fn aiosmtpd_ehlo_reply_is_decoded() {
        let caps = caps(
            b"250-testhost\r\n\
              250-SIZE 33554432\r\n\
              250-8BITMIME\r\n\
              250-SMTPUTF8\r\n\
              250-AUTH LOGIN PLAIN\r\n\
              250 HELP\r\n",
        );
        assert_eq!(caps.size(), Some(33_554_432));
        assert_eq!(caps.auth_mechanisms(), ["LOGIN", "PLAIN"]);
        assert!(!caps.starttls());
        assert!(!caps.pipelining());
        assert!(!caps.chunking());
        assert_eq!(
            caps.keywords(),
            [
                "SIZE 33554432",
                "8BITMIME",
                "SMTPUTF8",
                "AUTH LOGIN PLAIN",
                "HELP"
            ]
        );
    }

    #[test]
    fn greeting_line_is_not_a_capability() {
        let caps = caps(b"250-STARTTLS PIPELINING\r\n250 8BITMIME\r\n");
        assert!(!caps.starttls());
        assert!(!caps.pipelining());
        assert!(caps.eight_bit_mime());
        assert_eq!(caps.keywords(), ["8BITMIME"]);
    }

    #[test]
    fn keywords_and_mechanisms_are_case_insensitive() {
        let caps = caps(b"250-host\r\n250-starttls\r\n250-Pipelining\r\n250-size 100\r\n250 auth plain Login\r\n");
        assert!(caps.starttls());
        assert!(caps.pipelining());
        assert_eq!(caps.size(), Some(100));
        assert_eq!(caps.auth_mechanisms(), ["PLAIN", "LOGIN"]);
        assert_eq!(caps.keywords()[0], "starttls");
    }

    #[test]
    fn legacy_auth_equals_form_is_understood() {
        let caps = caps(b"250-host\r\n250 AUTH=LOGIN PLAIN\r\n");
        assert_eq!(caps.auth_mechanisms(), ["LOGIN", "PLAIN"]);
        assert!(caps.supports_auth("login"));
    }

    #[test]
    fn auth_mechanisms_from_both_forms_are_deduplicated_in_order() {
        let caps = caps(
            b"250-host\r\n250-AUTH=LOGIN\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250 auth plain\r\n",
        );
        assert_eq!(caps.auth_mechanisms(), ["LOGIN", "PLAIN", "CRAM-MD5"]);
    }

    #[test]
    fn bare_size_or_size_zero_means_no_fixed_limit() {
        assert_eq!(caps(b"250-host\r\n250 SIZE\r\n").size(), Some(0));
        assert_eq!(caps(b"250-host\r\n250 SIZE 0\r\n").size(), Some(0));
        assert_eq!(caps(b"250-host\r\n250 PIPELINING\r\n").size(), None);
    }

    #[test]
    fn absurd_or_garbled_size_is_read_as_no_fixed_limit() {
        assert_eq!(
            caps(b"250-host\r\n250 SIZE 99999999999999999999999\r\n").size(),
            Some(0)
        );
        assert_eq!(caps(b"250-host\r\n250 SIZE -5\r\n").size(), Some(0));
        assert_eq!(caps(b"250-host\r\n250 SIZE 12ab\r\n").size(), Some(0));
        assert_eq!(caps(b"250-host\r\n250 SIZE \xff\r\n").size(), Some(0));
        assert_eq!(
            caps(b"250-host\r\n250 SIZE 18446744073709551615\r\n").size(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn hostile_lines_never_become_mechanisms_and_are_shown_sanitized() {
        let caps = caps(
            b"250-host\r\n\
              250-\r\n\
              250-   \r\n\
              250-AUTH PLAIN \xff\xfe X\x1bY THIS-NAME-IS-FAR-TOO-LONG-FOR-SASL\r\n\
              250-AUTH=\r\n\
              250 \x1b[31mRED\r\n",
        );
        assert_eq!(caps.auth_mechanisms(), ["PLAIN"]);
        assert!(caps
            .keywords()
            .iter()
            .all(|k| !k.chars().any(char::is_control)));
        assert_eq!(caps.keywords().last().unwrap(), "\\x1b[31mRED");
        assert_eq!(caps.keywords().len(), 3);
    }

    #[test]
    fn tab_separated_parameters_are_understood() {
        let caps = caps(b"250-host\r\n250 AUTH\tPLAIN\r\n");
        assert_eq!(caps.auth_mechanisms(), ["PLAIN"]);
    }

    #[test]
    fn none_offers_nothing() {
        let caps = Capabilities::none();
        assert!(!caps.starttls() && !caps.pipelining() && !caps.chunking());
        assert_eq!(caps.size(), None);
        assert!(caps.auth_mechanisms().is_empty());
        assert!(caps.keywords().is_empty());
    }

    #[test]
    fn single_line_ehlo_reply_offers_nothing() {
        assert_eq!(caps(b"250 host\r\n"), Capabilities::none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_ehlo_lines_never_panic(
            lines in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..16),
        ) {
            let caps = Capabilities::from_ehlo(&Reply::new(250, lines));
            for m in caps.auth_mechanisms() {
                proptest::prop_assert!(m.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
            }
        }
    }
}
