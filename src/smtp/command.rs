//! Client commands (RFC 5321 4.1), one variant per verb, and their exact wire
//! lines.
//!
//! Covered: EHLO/HELO (RFC 5321 4.1.1.1), STARTTLS (RFC 3207), AUTH and its
//! continuation lines (RFC 4954), MAIL with ESMTP parameters such as `SIZE=`
//! (RFC 1870), `BODY=8BITMIME` (RFC 6152) and `SMTPUTF8` (RFC 6531), RCPT,
//! DATA, BDAT (RFC 3030), RSET, NOOP and QUIT.
//!
//! An address or domain comes from a user, a patch header or a config file,
//! so the validating constructors ([`Command::mail`], [`Command::rcpt`],
//! [`Command::ehlo`], [`Command::helo`]) refuse anything that could end the
//! line early or change the command's shape: CR, LF, NUL and every other
//! control character, `<` and `>`, and spaces in addresses. As a second
//! line of defence [`Command::write_to`] replaces any control character that
//! still reaches it (a variant built by hand) with `?`, so one command is
//! always exactly one line on the wire.
//!
//! AUTH payloads are secrets: [`Command::transcript`], `Display` and `Debug`
//! show them as `<redacted>`.
//!
//! Left out: VRFY, EXPN, HELP, ETRN, source routes (RFC 5321 4.1.2 says not
//! to generate them) and quoting of local parts (the address is sent as
//! given, which is what `hg email` always did).

use std::fmt;

use crate::smtp::reply::sanitize;

/// Longest accepted address, in bytes. RFC 5321 4.5.3.1.3 caps a path at 256
/// octets; this is looser so that a long but real address is the server's
/// to judge, while anything absurd is refused here.
const MAX_ADDRESS_LEN: usize = 511;

/// Longest accepted domain (RFC 1035 2.3.4: 255 octets).
const MAX_DOMAIN_LEN: usize = 255;

/// Longest accepted MAIL parameter, in bytes.
const MAX_PARAMETER_LEN: usize = 511;

/// One SMTP command.
///
/// Build `Mail`, `Rcpt`, `Ehlo` and `Helo` with the validating constructors;
/// the variants are public so that the session can match on them.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain`
    Ehlo(String),
    /// `HELO domain`
    Helo(String),
    /// `STARTTLS`
    StartTls,
    /// `AUTH mechanism [initial-response]`; the initial response is base64
    /// and carries secrets.
    Auth {
        /// The SASL mechanism name, e.g. `PLAIN`.
        mechanism: String,
        /// The base64 initial response (RFC 4954 4), if any; an empty
        /// response goes out as `=`.
        initial_response: Option<String>,
    },
    /// A SASL continuation line (base64, secret).
    AuthResponse(String),
    /// `MAIL FROM:<from> param...`; an empty `from` is the null reverse-path.
    Mail {
        /// The reverse-path address, without angle brackets.
        from: String,
        /// ESMTP parameters, e.g. `SIZE=1234` or `BODY=8BITMIME`.
        params: Vec<String>,
    },
    /// `RCPT TO:<to>`
    Rcpt {
        /// The forward-path address, without angle brackets.
        to: String,
    },
    /// `DATA`
    Data,
    /// `BDAT size` or `BDAT size LAST`; the chunk follows the line.
    Bdat {
        /// Chunk size in bytes.
        size: usize,
        /// Whether this is the last chunk of the message.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
}

/// An argument that cannot safely be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// An address for MAIL or RCPT.
    BadAddress {
        /// The address, sanitized for display.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A domain for EHLO or HELO.
    BadDomain {
        /// The domain, sanitized for display.
        domain: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An ESMTP parameter for MAIL.
    BadParameter {
        /// The parameter, sanitized for display.
        parameter: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::BadAddress { address, reason } => {
                write!(f, "invalid mail address \"{address}\": {reason}")
            }
            CommandError::BadDomain { domain, reason } => {
                write!(f, "invalid host name \"{domain}\" for EHLO: {reason}")
            }
            CommandError::BadParameter { parameter, reason } => {
                write!(f, "invalid MAIL parameter \"{parameter}\": {reason}")
            }
        }
    }
}

impl std::error::Error for CommandError {}

impl Command {
    /// `MAIL FROM:<from> params...`. `from` may be empty (the null
    /// reverse-path, `MAIL FROM:<>`) and may be non-ASCII UTF-8 (the caller
    /// adds `SMTPUTF8`).
    pub fn mail(from: &str, params: Vec<String>) -> Result<Command, CommandError> {
        check_address(from, true)?;
        for param in &params {
            check_parameter(param)?;
        }
        Ok(Command::Mail {
            from: from.to_owned(),
            params,
        })
    }

    /// `RCPT TO:<to>`. `to` must not be empty and may be non-ASCII UTF-8.
    pub fn rcpt(to: &str) -> Result<Command, CommandError> {
        check_address(to, false)?;
        Ok(Command::Rcpt { to: to.to_owned() })
    }

    /// `EHLO domain`; `domain` is a host name (ASCII, A-labels for IDNs) or
    /// an address literal such as `[192.0.2.1]`.
    pub fn ehlo(domain: &str) -> Result<Command, CommandError> {
        check_domain(domain)?;
        Ok(Command::Ehlo(domain.to_owned()))
    }

    /// `HELO domain`, with the same rules as [`Command::ehlo`].
    pub fn helo(domain: &str) -> Result<Command, CommandError> {
        check_domain(domain)?;
        Ok(Command::Helo(domain.to_owned()))
    }

    /// Appends the exact wire bytes, CRLF included.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Command::Ehlo(domain) => {
                out.extend_from_slice(b"EHLO ");
                push_field(out, domain);
            }
            Command::Helo(domain) => {
                out.extend_from_slice(b"HELO ");
                push_field(out, domain);
            }
            Command::StartTls => out.extend_from_slice(b"STARTTLS"),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                out.extend_from_slice(b"AUTH ");
                push_field(out, mechanism);
                match initial_response.as_deref() {
                    None => {}
                    // RFC 4954 4: an empty initial response is sent as "=".
                    Some("") => out.extend_from_slice(b" ="),
                    Some(response) => {
                        out.push(b' ');
                        push_field(out, response);
                    }
                }
            }
            Command::AuthResponse(response) => push_field(out, response),
            Command::Mail { from, params } => {
                out.extend_from_slice(b"MAIL FROM:<");
                push_field(out, from);
                out.push(b'>');
                for param in params {
                    out.push(b' ');
                    push_field(out, param);
                }
            }
            Command::Rcpt { to } => {
                out.extend_from_slice(b"RCPT TO:<");
                push_field(out, to);
                out.push(b'>');
            }
            Command::Data => out.extend_from_slice(b"DATA"),
            Command::Bdat { size, last } => {
                out.extend_from_slice(format!("BDAT {size}").as_bytes());
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Command::Rset => out.extend_from_slice(b"RSET"),
            Command::Noop => out.extend_from_slice(b"NOOP"),
            Command::Quit => out.extend_from_slice(b"QUIT"),
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The exact wire bytes, CRLF included.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// The line for a `--debug` transcript: the wire line without CRLF,
    /// sanitized, with AUTH payloads replaced by `<redacted>` (the mechanism
    /// name is kept).
    pub fn transcript(&self) -> String {
        match self {
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let mut line = format!("AUTH {}", sanitize(mechanism.as_bytes()));
                if initial_response.is_some() {
                    line.push_str(" <redacted>");
                }
                line
            }
            Command::AuthResponse(_) => "<redacted>".to_owned(),
            _ => {
                let wire = self.to_wire();
                sanitize(wire.strip_suffix(b"\r\n").unwrap_or(&wire))
            }
        }
    }

    /// The verb, e.g. `"MAIL"`; a SASL continuation line counts as `"AUTH"`.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo(_) => "EHLO",
            Command::Helo(_) => "HELO",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } | Command::AuthResponse(_) => "AUTH",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
        }
    }
}

/// The same as [`Command::transcript`]: never shows an AUTH secret.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.transcript())
    }
}

/// Written by hand so that `{:?}` never shows an AUTH secret; the same as
/// [`Command::transcript`].
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.transcript())
    }
}

/// Copies a field, turning any control character into `?` so that a
/// hand-built variant still cannot split the line.
fn push_field(out: &mut Vec<u8>, field: &str) {
    let bytes = field.as_bytes();
    if !bytes.iter().any(|b| b.is_ascii_control()) {
        out.extend_from_slice(bytes);
        return;
    }
    out.extend(
        bytes
            .iter()
            .map(|&b| if b.is_ascii_control() { b'?' } else { b }),
    );
}

/// Control characters in the C0, DEL and C1 ranges: the ones that could end
/// a line or drive a terminal.
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_address(address: &str, null_allowed: bool) -> Result<(), CommandError> {
    let bad = |reason| {
        Err(CommandError::BadAddress {
            address: sanitize(address.as_bytes()),
            reason,
        })
    };
    if address.is_empty() && !null_allowed {
        return bad("empty");
    }
    if address.len() > MAX_ADDRESS_LEN {
        return bad("longer than 511 bytes");
    }
    if has_control(address) {
        return bad("contains a control character (such as a line break)");
    }
    if address.contains(['<', '>']) {
        return bad("contains '<' or '>'");
    }
    if address.chars().any(char::is_whitespace) {
        return bad("contains a space");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), CommandError> {
    let bad = |reason| {
        Err(CommandError::BadDomain {
            domain: sanitize(domain.as_bytes()),
            reason,
        })
    };
    if domain.is_empty() {
        return bad("empty");
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return bad("longer than 255 bytes");
    }
    if has_control(domain) {
        return bad("contains a control character (such as a line break)");
    }
    if domain.contains(['<', '>']) {
        return bad("contains '<' or '>'");
    }
    if domain.chars().any(char::is_whitespace) {
        return bad("contains a space");
    }
    if !domain.is_ascii() {
        // RFC 5321 4.1.2 (and RFC 6531 for SMTPUTF8 servers, which is not
        // known before EHLO): an internationalised name goes out as A-labels.
        return bad("not ASCII (use the xn-- form)");
    }
    Ok(())
}

fn check_parameter(param: &str) -> Result<(), CommandError> {
    let bad = |reason| {
        Err(CommandError::BadParameter {
            parameter: sanitize(param.as_bytes()),
            reason,
        })
    };
    if param.is_empty() {
        return bad("empty");
    }
    if param.len() > MAX_PARAMETER_LEN {
        return bad("longer than 511 bytes");
    }
    if has_control(param) {
        return bad("contains a control character (such as a line break)");
    }
    if param.chars().any(char::is_whitespace) {
        return bad("contains a space");
    }
    if !param.is_ascii() {
        return bad("not ASCII");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(cmd: &Command) -> String {
        String::from_utf8(cmd.to_wire()).unwrap()
    }

    #[test]
    fn each_verb_has_its_exact_wire_line() {
        let cases = [
            (
                Command::ehlo("client.example.org").unwrap(),
                "EHLO client.example.org\r\n",
            ),
            (
                Command::helo("[192.0.2.1]").unwrap(),
                "HELO [192.0.2.1]\r\n",
            ),
            (Command::StartTls, "STARTTLS\r\n"),
            (
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some("AGFsaWNlAHNlY3JldA==".into()),
                },
                "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
            ),
            (
                Command::Auth {
                    mechanism: "LOGIN".into(),
                    initial_response: None,
                },
                "AUTH LOGIN\r\n",
            ),
            (
                Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some(String::new()),
                },
                "AUTH PLAIN =\r\n",
            ),
            (Command::AuthResponse("c2VjcmV0".into()), "c2VjcmV0\r\n"),
            (
                Command::mail("alice@example.org", vec![]).unwrap(),
                "MAIL FROM:<alice@example.org>\r\n",
            ),
            (
                Command::mail(
                    "alice@example.org",
                    vec!["SIZE=1234".into(), "BODY=8BITMIME".into()],
                )
                .unwrap(),
                "MAIL FROM:<alice@example.org> SIZE=1234 BODY=8BITMIME\r\n",
            ),
            (Command::mail("", vec![]).unwrap(), "MAIL FROM:<>\r\n"),
            (
                Command::rcpt("bob@example.org").unwrap(),
                "RCPT TO:<bob@example.org>\r\n",
            ),
            (Command::Data, "DATA\r\n"),
            (
                Command::Bdat {
                    size: 123,
                    last: false,
                },
                "BDAT 123\r\n",
            ),
            (
                Command::Bdat {
                    size: 0,
                    last: true,
                },
                "BDAT 0 LAST\r\n",
            ),
            (Command::Rset, "RSET\r\n"),
            (Command::Noop, "NOOP\r\n"),
            (Command::Quit, "QUIT\r\n"),
        ];
        for (cmd, expected) in cases {
            assert_eq!(wire(&cmd), expected);
        }
    }

    #[test]
    fn write_to_appends_to_what_is_already_there() {
        let mut out = b"RSET\r\n".to_vec();
        Command::Noop.write_to(&mut out);
        Command::Quit.write_to(&mut out);
        assert_eq!(out, b"RSET\r\nNOOP\r\nQUIT\r\n");
    }

    #[test]
    fn address_with_an_injected_command_is_refused() {
        let evil = "alice@example.org>\r\nRCPT TO:<mallory@example.net";
        assert!(matches!(
            Command::rcpt(evil),
            Err(CommandError::BadAddress { .. })
        ));
        assert!(Command::mail(evil, vec![]).is_err());
        let evil = "alice@example.org\r\nRCPT TO:<x>";
        let err = Command::rcpt(evil).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid mail address \"alice@example.org\\x0d\\x0aRCPT TO:<x>\": \
             contains a control character (such as a line break)"
        );
        assert!(Command::rcpt("a@b\nRSET").is_err());
        assert!(Command::rcpt("a@b\rRSET").is_err());
    }

    #[test]
    fn addresses_with_controls_brackets_spaces_or_excess_length_are_refused() {
        for bad in [
            "a\0b@example.org",
            "a\x1b@example.org",
            "a\x7f@example.org",
            "a\u{85}@example.org",
            "a\t@example.org",
            "<a@example.org>",
            "a>@example.org",
            "a b@example.org",
            "a\u{a0}b@example.org",
        ] {
            assert!(Command::rcpt(bad).is_err(), "{bad:?}");
            assert!(Command::mail(bad, vec![]).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.org", "a".repeat(500));
        assert!(long.len() >= 512);
        assert!(Command::rcpt(&long).is_err());
        let fits = format!("{}@example.org", "a".repeat(499));
        assert_eq!(fits.len(), 511);
        assert!(Command::rcpt(&fits).is_ok());
    }

    #[test]
    fn empty_recipient_is_refused_but_null_sender_is_allowed() {
        assert!(Command::rcpt("").is_err());
        assert!(Command::mail("", vec![]).is_ok());
    }

    #[test]
    fn utf8_addresses_are_allowed() {
        let cmd = Command::rcpt("jörg@bücher.example").unwrap();
        assert_eq!(
            cmd.to_wire(),
            "RCPT TO:<jörg@bücher.example>\r\n".as_bytes()
        );
    }

    #[test]
    fn bad_domains_are_refused() {
        for bad in [
            "",
            "host\r\nMAIL FROM:<x>",
            "host name",
            "<host>",
            "hôst.example",
            "host\0",
        ] {
            assert!(
                matches!(Command::ehlo(bad), Err(CommandError::BadDomain { .. })),
                "{bad:?}"
            );
            assert!(Command::helo(bad).is_err(), "{bad:?}");
        }
        assert!(Command::ehlo(&"a".repeat(256)).is_err());
        assert!(Command::ehlo("xn--bcher-kva.example").is_ok());
    }

    #[test]
    fn mail_parameters_with_spaces_or_controls_are_refused() {
        for bad in ["", "SIZE=1 X", "SIZE=1\r\nRSET", "BODY=\u{e9}"] {
            assert!(
                matches!(
                    Command::mail("a@b", vec![bad.into()]),
                    Err(CommandError::BadParameter { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hand_built_command_with_a_line_break_still_writes_one_line() {
        let cmd = Command::Rcpt {
            to: "a@b>\r\nRSET\r\nRCPT TO:<c@d".into(),
        };
        let wire = cmd.to_wire();
        assert_eq!(wire, b"RCPT TO:<a@b>??RSET??RCPT TO:<c@d>\r\n");
        let cmd = Command::AuthResponse("abc\r\nQUIT".into());
        assert_eq!(cmd.to_wire(), b"abc??QUIT\r\n");
    }

    #[test]
    fn transcript_redacts_auth_payloads_but_keeps_the_mechanism() {
        let auth = Command::Auth {
            mechanism: "PLAIN".into(),
            initial_response: Some("AGFsaWNlAHNlY3JldA==".into()),
        };
        assert_eq!(auth.transcript(), "AUTH PLAIN <redacted>");
        let login = Command::Auth {
            mechanism: "LOGIN".into(),
            initial_response: None,
        };
        assert_eq!(login.transcript(), "AUTH LOGIN");
        assert_eq!(
            Command::AuthResponse("c2VjcmV0".into()).transcript(),
            "<redacted>"
        );
        assert_eq!(
            Command::mail("a@example.org", vec!["SIZE=10".into()])
                .unwrap()
                .transcript(),
            "MAIL FROM:<a@example.org> SIZE=10"
        );
        assert_eq!(
            Command::Bdat {
                size: 7,
                last: true
            }
            .transcript(),
            "BDAT 7 LAST"
        );
    }

    #[test]
    fn debug_and_display_of_auth_commands_show_no_secret() {
        let secret = "AGFsaWNlAHNlY3JldA==";
        for cmd in [
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some(secret.into()),
            },
            Command::AuthResponse(secret.into()),
        ] {
            assert!(!format!("{cmd:?}").contains(secret));
            assert!(!format!("{cmd:#?}").contains(secret));
            assert!(!format!("{cmd}").contains(secret));
            assert!(!format!("{:?}", vec![cmd.clone()]).contains(secret));
        }
    }

    #[test]
    fn verb_names_the_command() {
        assert_eq!(Command::AuthResponse("x".into()).verb(), "AUTH");
        assert_eq!(
            Command::Bdat {
                size: 1,
                last: false
            }
            .verb(),
            "BDAT"
        );
        assert_eq!(Command::mail("", vec![]).unwrap().verb(), "MAIL");
        assert_eq!(Command::StartTls.verb(), "STARTTLS");
    }

    proptest::proptest! {
        #[test]
        fn any_accepted_address_gives_exactly_one_line(address in "\\PC{0,40}|[\\x00-\\x7f]{0,40}") {
            if let Ok(cmd) = Command::rcpt(&address) {
                let wire = cmd.to_wire();
                proptest::prop_assert!(wire.ends_with(b"\r\n"));
                let body = &wire[..wire.len() - 2];
                proptest::prop_assert!(!body.contains(&b'\r') && !body.contains(&b'\n'));
                proptest::prop_assert_eq!(body.iter().filter(|b| **b == b'>').count(), 1);
            }
        }
    }
}
