//! The session state machine driven through an in-memory transport whose
//! server behaviour is generated: every reply may be the right one, a
//! refusal, a 421, garbage, the right one with more bytes injected behind it,
//! a close or silence; every TLS handshake may pass, fail verification, end
//! without a verdict, fail with an alert, or be cut off. The property: no
//! AUTH, MAIL, RCPT, DATA, BDAT or message byte, and nothing at all after TLS
//! began, is ever written on a channel that was not verified, unless the
//! configuration chose cleartext.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::{Config, Observer, Security, Session};
use crate::smtp::Credentials;
use crate::tls::{MinVersion, TlsPolicy, Trust, Verdict, VerdictSlot, VerifyFailure};
use crate::transport::{Interrupt, IoFailure, TlsInfo, Transport};

/// What the server does with one command (or the greeting, or a body).
#[derive(Clone, Debug)]
enum Answer {
    /// The reply a well-behaved server gives.
    Good,
    /// A reply with this code instead.
    Code(u16),
    /// The good reply with another reply injected right behind it.
    Inject,
    /// The good reply, and another reply only after the client has read it
    /// (a separate TCP segment).
    InjectLater,
    /// Bytes that are not SMTP.
    Garbage,
    /// Hang up.
    Close,
    /// Say nothing (the client times out).
    Silence,
}

/// How a TLS handshake ends.
#[derive(Clone, Copy, Debug)]
enum Handshake {
    Pass,
    FailVerification,
    NoVerdict,
    Alert,
    Close,
    Timeout,
}

/// How the channel stood when a write went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Plain,
    Verified,
    Unverified,
}

#[derive(Clone, Debug)]
struct Scenario {
    security: Security,
    inspect_only: bool,
    loopback: bool,
    pipelining: bool,
    caps: Vec<&'static str>,
    answers: Vec<Answer>,
    handshakes: Vec<Handshake>,
}

/// Every write, with the state of the wire when it went out.
type Log = Arc<Mutex<Vec<(Wire, Vec<u8>)>>>;

/// A scripted SMTP server on the other end of an in-memory transport. It
/// reads the client's commands as they are written and queues an answer for
/// each, taken from the scenario in order (`Good` once the script runs out).
struct Memory {
    peer: SocketAddr,
    inspect_only: bool,
    caps: Vec<&'static str>,
    answers: VecDeque<Answer>,
    handshakes: VecDeque<Handshake>,
    log: Log,
    wire: Wire,
    /// Bytes written and not yet taken apart into commands.
    inbox: Vec<u8>,
    /// Inside DATA: the body runs until a lone dot.
    in_data: bool,
    /// Inside BDAT: this many chunk bytes still to skip.
    chunk_left: usize,
    outbox: VecDeque<u8>,
    /// Bytes to send once the outbox has been read.
    later: Vec<u8>,
    /// Replies owed but not sent: the client will time out waiting.
    silent: bool,
    closed: bool,
}

impl Memory {
    fn new(s: &Scenario, log: Log) -> Memory {
        let mut m = Memory {
            peer: if s.loopback {
                "127.0.0.1:25".parse().unwrap()
            } else {
                "192.0.2.1:25".parse().unwrap()
            },
            inspect_only: s.inspect_only,
            caps: s.caps.clone(),
            answers: s.answers.iter().cloned().collect(),
            handshakes: s.handshakes.iter().copied().collect(),
            log,
            wire: Wire::Plain,
            inbox: Vec::new(),
            in_data: false,
            chunk_left: 0,
            outbox: VecDeque::new(),
            later: Vec::new(),
            silent: false,
            closed: false,
        };
        if s.security != Security::Implicit {
            m.answer("greeting");
        }
        m
    }

    fn good_reply(&self, verb: &str) -> String {
        match verb {
            "greeting" | "STARTTLS" => "220 ready\r\n".into(),
            "EHLO" => {
                let mut lines = vec!["mail.test".to_owned()];
                let tls = self.wire != Wire::Plain;
                lines.extend(
                    self.caps
                        .iter()
                        .filter(|c| !(tls && **c == "STARTTLS"))
                        .map(|c| c.to_string()),
                );
                let last = lines.len() - 1;
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                    .collect()
            }
            "AUTH" => "235 ok\r\n".into(),
            "DATA" => "354 go on\r\n".into(),
            "QUIT" => "221 bye\r\n".into(),
            _ => "250 ok\r\n".into(),
        }
    }

    fn answer(&mut self, verb: &str) {
        if self.closed || self.silent {
            return;
        }
        let answer = self.answers.pop_front().unwrap_or(Answer::Good);
        let reply = match answer {
            Answer::Good => self.good_reply(verb),
            Answer::Code(code) => format!("{code} no\r\n"),
            Answer::Inject => self.good_reply(verb) + "250 injected\r\n",
            Answer::InjectLater => {
                self.later.extend(b"250 injected\r\n");
                self.good_reply(verb)
            }
            Answer::Garbage => "\u{1b}hello?\r\n".into(),
            Answer::Close => {
                self.closed = true;
                return;
            }
            Answer::Silence => {
                self.silent = true;
                return;
            }
        };
        if verb == "DATA" && reply.starts_with("354") {
            self.in_data = true;
        }
        self.outbox.extend(reply.as_bytes());
    }

    /// Take the client's bytes apart into commands and bodies, answering each.
    fn consume(&mut self) {
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.inbox.len());
                self.inbox.drain(..n);
                self.chunk_left -= n;
                if self.chunk_left > 0 {
                    return;
                }
                self.answer("BDAT");
                continue;
            }
            let Some(end) = self.inbox.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line: Vec<u8> = self.inbox.drain(..end + 2).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if self.in_data {
                if line == "." {
                    self.in_data = false;
                    self.answer("end of data");
                }
                continue;
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "BDAT" => {
                    self.chunk_left = line
                        .split(' ')
                        .nth(1)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    if self.chunk_left == 0 {
                        self.answer("BDAT");
                    }
                }
                // A SASL continuation or cancel, or a command.
                _ => self.answer(&verb),
            }
        }
    }
}

impl Transport for Memory {
    fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn set_idle(&mut self, _idle: Duration) {}

    fn start_tls(
        &mut self,
        _config: Arc<ClientConfig>,
        _name: ServerName<'static>,
        slot: &VerdictSlot,
        _interrupt: &mut dyn Interrupt,
    ) -> Result<(), IoFailure> {
        // Cleartext where the first TLS record belongs: the real transport
        // recognises SMTP text and says so.
        if !self.outbox.is_empty() {
            self.wire = Wire::Unverified;
            return Err(IoFailure::Cleartext(self.outbox.len()));
        }
        let outcome = self.handshakes.pop_front().unwrap_or(Handshake::Pass);
        self.wire = Wire::Unverified;
        let verdict = |result| Verdict {
            chain: vec![vec![0x30, 0x00]],
            result,
        };
        match outcome {
            Handshake::Pass => {
                *slot.lock().unwrap() = Some(verdict(Ok(Trust::CaChain)));
                self.wire = Wire::Verified;
                Ok(())
            }
            Handshake::FailVerification => {
                *slot.lock().unwrap() = Some(verdict(Err(VerifyFailure::SelfSigned {
                    subject: "CN=mallory".into(),
                })));
                // The real verifier lets a failed verdict through only in
                // inspect mode.
                if self.inspect_only {
                    Ok(())
                } else {
                    Err(IoFailure::Tls(rustls::Error::General("refused".into())))
                }
            }
            Handshake::NoVerdict => Ok(()),
            Handshake::Alert => Err(IoFailure::Tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::HandshakeFailure,
            ))),
            Handshake::Close => {
                self.closed = true;
                Err(IoFailure::Closed)
            }
            Handshake::Timeout => Err(IoFailure::Timeout),
        }
    }

    fn tls_info(&self) -> Option<TlsInfo> {
        None
    }

    fn write_all(&mut self, data: &[u8], _interrupt: &mut dyn Interrupt) -> Result<(), IoFailure> {
        self.log.lock().unwrap().push((self.wire, data.to_vec()));
        if self.closed {
            return Err(IoFailure::Closed);
        }
        self.inbox.extend_from_slice(data);
        self.consume();
        Ok(())
    }

    fn read_some(
        &mut self,
        buf: &mut [u8],
        _deadline: Instant,
        _interrupt: &mut dyn Interrupt,
    ) -> Result<usize, IoFailure> {
        if self.outbox.is_empty() {
            return Err(if self.closed {
                IoFailure::Closed
            } else {
                IoFailure::Timeout
            });
        }
        let n = buf.len().min(self.outbox.len());
        for (slot, byte) in buf.iter_mut().zip(self.outbox.drain(..n)) {
            *slot = byte;
        }
        if self.outbox.is_empty() {
            self.outbox.extend(self.later.drain(..));
        }
        Ok(n)
    }

    fn close(&mut self) {
        self.closed = true;
    }
}

struct Quiet;

impl Interrupt for Quiet {
    fn interrupted(&mut self) -> bool {
        false
    }
}

impl Observer for Quiet {
    fn transcript(&mut self, _line: &str) {}
    fn wants_transcript(&self) -> bool {
        false
    }
}

fn config(s: &Scenario) -> Config {
    Config {
        host: "mail.test".into(),
        port: 25,
        security: s.security,
        hello_name: "client.test".into(),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        tls: TlsPolicy {
            server_name: "mail.test".into(),
            ca_file: None,
            load_default_roots: false,
            pins: Vec::new(),
            insecure: false,
            min_version: MinVersion::Tls12,
            ciphers: None,
            inspect_only: s.inspect_only,
        },
        pipelining: s.pipelining,
        allow_cleartext_auth: false,
        client_cert: None,
    }
}

/// Run a whole `hg email` worth of session: connect, AUTH, two messages, QUIT.
/// Returns every write with the state of the wire at the time.
fn run(s: &Scenario) -> Vec<(Wire, Vec<u8>)> {
    let log = Log::default();
    let transport = Box::new(Memory::new(s, log.clone()));
    if let Ok(mut session) = Session::over(config(s), transport, Box::new(Quiet)) {
        let credentials = Credentials::new("alice", "s3cret");
        let _ = session.authenticate(&credentials, &[]);
        let to = vec![
            "bob@example.test".to_owned(),
            "carol@example.test".to_owned(),
        ];
        for body in [&b"Subject: one\n\nhello\n.\n"[..], b"Subject: two\n\n"] {
            let _ = session.send("alice@example.test", &to, body);
        }
        let _ = session.quit();
    }
    let writes = log.lock().unwrap().clone();
    writes
}

/// Commands that may go out before TLS, when TLS is configured.
fn is_cleartext_phase(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let verb = text.split([' ', '\r']).next().unwrap_or("");
    ["EHLO", "HELO", "STARTTLS", "QUIT"].contains(&verb) && text.matches("\r\n").count() == 1
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Good),
        1 => prop::sample::select(vec![220u16, 221, 235, 250, 334, 354, 421, 454, 500, 502, 535, 550, 554])
            .prop_map(Answer::Code),
        1 => Just(Answer::Inject),
        1 => Just(Answer::InjectLater),
        1 => Just(Answer::Garbage),
        1 => Just(Answer::Close),
        1 => Just(Answer::Silence),
    ]
}

fn handshake() -> impl Strategy<Value = Handshake> {
    prop_oneof![
        3 => Just(Handshake::Pass),
        1 => Just(Handshake::FailVerification),
        1 => Just(Handshake::NoVerdict),
        1 => Just(Handshake::Alert),
        1 => Just(Handshake::Close),
        1 => Just(Handshake::Timeout),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::sample::select(vec![Security::StartTls, Security::Implicit, Security::None]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(
            vec![
                "STARTTLS",
                "AUTH PLAIN LOGIN",
                "AUTH LOGIN",
                "PIPELINING",
                "CHUNKING",
                "SIZE 1000",
                "8BITMIME",
            ],
            0..=7,
        ),
        prop::collection::vec(answer(), 0..24),
        prop::collection::vec(handshake(), 1..3),
    )
        .prop_map(
            |(security, inspect_only, loopback, pipelining, caps, answers, handshakes)| Scenario {
                security,
                inspect_only,
                loopback,
                pipelining,
                caps,
                answers,
                handshakes,
            },
        )
}

/// How many generated sessions the model runs.
const CASES: u32 = 4096;

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn no_auth_or_mail_byte_is_ever_written_on_an_unverified_channel(s in scenario()) {
        for (wire, bytes) in run(&s) {
            match (s.security, wire) {
                (Security::None, Wire::Plain) | (_, Wire::Verified) => {}
                (_, Wire::Unverified) => prop_assert!(
                    false,
                    "wrote {:?} after a handshake that did not pass",
                    String::from_utf8_lossy(&bytes)
                ),
                (_, Wire::Plain) => prop_assert!(
                    is_cleartext_phase(&bytes),
                    "wrote {:?} in cleartext before TLS",
                    String::from_utf8_lossy(&bytes)
                ),
            }
        }
    }
}

fn scenario_with(security: Security, answers: Vec<Answer>, handshakes: Vec<Handshake>) -> Scenario {
    Scenario {
        security,
        inspect_only: false,
        loopback: true,
        pipelining: true,
        caps: vec!["STARTTLS", "AUTH PLAIN LOGIN", "PIPELINING"],
        answers,
        handshakes,
    }
}

fn verbs(writes: &[(Wire, Vec<u8>)]) -> Vec<String> {
    writes
        .iter()
        .flat_map(|(_, b)| {
            String::from_utf8_lossy(b)
                .split("\r\n")
                .filter_map(|l| l.split(' ').next().map(str::to_owned))
                .filter(|v| v.chars().all(|c| c.is_ascii_uppercase()) && !v.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_model_server_lets_a_verified_session_deliver_both_messages() {
    // Guards the model itself: with nothing going wrong, AUTH and MAIL do go
    // out, so the property above is not true merely because nothing is sent.
    let writes = run(&scenario_with(
        Security::StartTls,
        vec![],
        vec![Handshake::Pass],
    ));
    let verbs = verbs(&writes);
    assert_eq!(
        verbs.iter().filter(|v| *v == "MAIL").count(),
        2,
        "{verbs:?}"
    );
    assert!(verbs.contains(&"AUTH".to_owned()), "{verbs:?}");
    assert!(writes.iter().any(|(w, _)| *w == Wire::Plain));
}

#[test]
fn a_failed_verification_in_inspect_mode_sends_nothing_after_the_handshake() {
    let mut s = scenario_with(
        Security::Implicit,
        vec![],
        vec![Handshake::FailVerification],
    );
    s.inspect_only = true;
    assert!(run(&s).is_empty());
}

#[test]
fn a_handshake_without_a_verdict_sends_nothing_after_it() {
    let writes = run(&scenario_with(
        Security::StartTls,
        vec![],
        vec![Handshake::NoVerdict],
    ));
    assert!(writes.iter().all(|(w, _)| *w == Wire::Plain), "{writes:?}");
    assert_eq!(verbs(&writes), ["EHLO", "STARTTLS"]);
}

#[test]
fn bytes_injected_behind_the_starttls_220_end_the_session_before_the_handshake() {
    // Greeting and EHLO good, then STARTTLS answered with 220 and more.
    let writes = run(&scenario_with(
        Security::StartTls,
        vec![Answer::Good, Answer::Good, Answer::Inject],
        vec![Handshake::Pass],
    ));
    assert!(writes.iter().all(|(w, _)| *w == Wire::Plain), "{writes:?}");
}

/// The session's own error for a scenario, with every write.
fn connect_error(s: &Scenario) -> (Option<crate::error::Error>, Vec<(Wire, Vec<u8>)>) {
    let log = Log::default();
    let transport = Box::new(Memory::new(s, log.clone()));
    let error = Session::over(config(s), transport, Box::new(Quiet)).err();
    let writes = log.lock().unwrap().clone();
    (error, writes)
}

#[test]
fn a_reply_injected_in_a_later_segment_after_the_starttls_220_is_injection() {
    let (error, writes) = connect_error(&scenario_with(
        Security::StartTls,
        vec![Answer::Good, Answer::Good, Answer::InjectLater],
        vec![Handshake::Pass],
    ));
    assert!(
        matches!(error, Some(crate::error::Error::StartTlsInjection { .. })),
        "{error:?}"
    );
    // Out of step: no QUIT either.
    assert_eq!(verbs(&writes), ["EHLO", "STARTTLS"]);
}

#[test]
fn starttls_not_offered_ends_with_quit_and_nothing_else() {
    let mut s = scenario_with(Security::StartTls, vec![], vec![]);
    s.caps = vec!["AUTH PLAIN"];
    let (error, writes) = connect_error(&s);
    assert!(
        matches!(error, Some(crate::error::Error::StartTlsNotOffered { .. })),
        "{error:?}"
    );
    assert_eq!(verbs(&writes), ["EHLO", "QUIT"]);
}

#[test]
fn a_refused_greeting_gets_quit_and_a_closing_one_does_not() {
    let (error, writes) = connect_error(&scenario_with(
        Security::StartTls,
        vec![Answer::Code(554)],
        vec![],
    ));
    assert!(error.is_some());
    assert_eq!(verbs(&writes), ["QUIT"]);
    let (_, writes) = connect_error(&scenario_with(
        Security::StartTls,
        vec![Answer::Code(421)],
        vec![],
    ));
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn only_250_is_a_successful_ehlo() {
    for code in [220, 221, 235, 354] {
        let (error, writes) = connect_error(&scenario_with(
            Security::StartTls,
            vec![Answer::Good, Answer::Code(code)],
            vec![],
        ));
        match error {
            Some(crate::error::Error::Reply { stage, reply }) => {
                assert_eq!(stage, crate::error::Stage::Hello);
                assert_eq!(reply.code(), code);
            }
            other => panic!("{code}: {other:?}"),
        }
        assert!(
            !verbs(&writes).contains(&"STARTTLS".to_owned()),
            "{writes:?}"
        );
    }
}

#[test]
fn size_counts_crlf_line_endings_and_not_dot_stuffing() {
    let mut s = scenario_with(Security::None, vec![], vec![]);
    s.caps = vec!["SIZE 100000"];
    s.pipelining = false;
    let log = Log::default();
    let transport = Box::new(Memory::new(&s, log.clone()));
    let mut session = Session::over(config(&s), transport, Box::new(Quiet)).unwrap();
    // Three lines with LF endings, one of which is dot-stuffed on the wire.
    session
        .send(
            "a@example.test",
            &["b@example.test".to_owned()],
            b"x\n.y\nz",
        )
        .unwrap();
    let writes = log.lock().unwrap().clone();
    let mail = writes
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .find(|l| l.starts_with("MAIL"))
        .unwrap();
    assert!(mail.contains(" SIZE=10\r\n"), "{mail:?}");
}
