//! The session driven through an in-memory transport whose server behaviour
//! is generated: every reply may be the right one, a refusal, a 421,
//! garbage, the right one with more bytes injected behind it, a close or
//! silence; every TLS handshake may pass, fail verification, end without a
//! verdict, fail with an alert, or be cut off. The session is used as the
//! shim uses it: connect, AUTH, a series through [`Session::submit`] and
//! [`Session::confirm`] (the only way mail is sent), QUIT.
//!
//! Two properties, on every generated session:
//! - security: no AUTH, MAIL, RCPT, DATA, BDAT or message byte, and nothing
//!   at all after TLS began, is ever written on a channel that was not
//!   verified, unless the configuration chose cleartext;
//! - the series: each message ends with exactly one outcome; `NotSent` only
//!   when the server did not take it (never got its end of data, or refused
//!   it), so sending it again cannot deliver it twice; `Accepted` only when the server's reply to its end of data was
//!   2xx and came before anything that ends the connection (a 421, garbage,
//!   a close, silence); a refusal carries a reply the server gave that
//!   message.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use super::queue::Outcome;
use super::{Config, Observer, Security, Session};
use crate::error::Error;
use crate::smtp::Credentials;
use crate::tls::{Dangerous, MinVersion, TlsPolicy, Trust, Verdict, VerdictSlot, VerifyFailure};
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
    /// Recipients of each message of the series (its id is its index + 1).
    messages: Vec<usize>,
    /// Confirm after each message, as a caller that needs a verdict per
    /// call does, instead of once at the end.
    confirm_each: bool,
}

/// One answer the server decided on, for the message whose transaction it
/// belongs to (`None`: outside one). `code` is `None` when no reply went
/// out (garbage, a close, silence).
#[derive(Clone, Debug)]
struct Event {
    msg: Option<u64>,
    verb: String,
    code: Option<u16>,
    /// Another reply was injected with this one.
    injected: bool,
}

/// What the server saw and said.
#[derive(Clone, Debug, Default)]
struct Record {
    events: Vec<Event>,
    /// Messages whose end of data (final dot, or all of `BDAT LAST`) the
    /// server took in and did not refuse: delivered, or it may have been.
    taken: HashSet<u64>,
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
    /// The message of the transaction under way (from its MAIL FROM).
    current: Option<u64>,
    /// The BDAT chunk being read is the last one.
    last_chunk: bool,
    record: Arc<Mutex<Record>>,
}

impl Memory {
    fn new(s: &Scenario, log: Log, record: Arc<Mutex<Record>>) -> Memory {
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
            current: None,
            last_chunk: false,
            record,
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
        let good = self.good_reply(verb);
        let code = |reply: &str| reply[..3].parse::<u16>().ok();
        let (reply, code) = match answer {
            Answer::Good => (good.clone(), code(&good)),
            Answer::Code(c) => (format!("{c} no\r\n"), Some(c)),
            Answer::Inject => (good.clone() + "250 injected\r\n", code(&good)),
            Answer::InjectLater => {
                self.later.extend(b"250 injected\r\n");
                (good.clone(), code(&good))
            }
            Answer::Garbage => ("\u{1b}hello?\r\n".into(), None),
            Answer::Close => {
                self.closed = true;
                (String::new(), None)
            }
            Answer::Silence => {
                self.silent = true;
                (String::new(), None)
            }
        };
        self.record.lock().unwrap().events.push(Event {
            msg: self.current,
            verb: verb.to_owned(),
            code,
            injected: matches!(answer, Answer::Inject | Answer::InjectLater),
        });
        if verb == "DATA" && reply.starts_with("354") {
            self.in_data = true;
        }
        self.outbox.extend(reply.as_bytes());
        // RFC 5321 3.8: a server that says 421 closes the connection and
        // processes nothing after the command it answered.
        if code == Some(421) {
            self.closed = true;
        }
    }

    /// The message's end of data arrived: answer it, and the transaction is
    /// over.
    fn end_of_data(&mut self) {
        self.answer("end of data");
        let mut record = self.record.lock().unwrap();
        // Delivered, or may be: answered 2xx, or not answered at all. A
        // refusal (421 included) means the server did not take it.
        let taken = record
            .events
            .last()
            .is_none_or(|e| e.code.is_none_or(|c| (200..300).contains(&c)));
        if let (Some(id), true) = (self.current, taken) {
            record.taken.insert(id);
        }
        drop(record);
        self.current = None;
    }

    /// Take the client's bytes apart into commands and bodies, answering each.
    fn consume(&mut self) {
        while !self.closed {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.inbox.len());
                self.inbox.drain(..n);
                self.chunk_left -= n;
                if self.chunk_left > 0 {
                    return;
                }
                if self.last_chunk {
                    self.end_of_data();
                } else {
                    self.answer("BDAT");
                }
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
                    self.end_of_data();
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
                    self.last_chunk = line.to_ascii_uppercase().ends_with(" LAST");
                    if self.chunk_left == 0 {
                        if self.last_chunk {
                            self.end_of_data();
                        } else {
                            self.answer("BDAT");
                        }
                    }
                }
                "MAIL" => {
                    // MAIL FROM:<m7@example.test> is message 7's.
                    self.current = line
                        .split_once("<m")
                        .and_then(|(_, rest)| rest.split_once('@'))
                        .and_then(|(id, _)| id.parse().ok());
                    self.answer("MAIL");
                }
                "RSET" => {
                    self.current = None;
                    self.answer("RSET");
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
            min_version: MinVersion::Tls12,
            ciphers: None,
            dangerous: if s.inspect_only {
                Dangerous::none().complete_failed_handshakes_for_inspection()
            } else {
                Dangerous::none()
            },
        },
        pipelining: s.pipelining,
        allow_cleartext_auth: false,
        client_cert: None,
    }
}

/// What a run left: every write with the state of the wire at the time,
/// the outcome of each message, and what the server saw.
struct Run {
    writes: Vec<(Wire, Vec<u8>)>,
    /// `None` when the session never opened.
    outcomes: Option<Vec<(u64, Outcome)>>,
    record: Record,
}

/// The body of message `id`: a dot-stuffing case in the middle, and no
/// final line ending on every other one.
fn body(id: u64) -> Vec<u8> {
    let mut body = format!("Subject: m{id}\n\nhello\n.\nbye").into_bytes();
    if id % 2 == 0 {
        body.push(b'\n');
    }
    body
}

/// Run a whole `hg email` worth of session: connect, AUTH, the series,
/// QUIT.
fn run(s: &Scenario) -> Run {
    let log = Log::default();
    let record = Arc::new(Mutex::new(Record::default()));
    let transport = Box::new(Memory::new(s, log.clone(), record.clone()));
    let mut outcomes = None;
    if let Ok(mut session) = Session::over(config(s), transport, Box::new(Quiet)) {
        let credentials = Credentials::new("alice", "s3cret");
        let _ = session.authenticate(&credentials, &[]);
        let mut done = Vec::new();
        for (i, &n) in s.messages.iter().enumerate() {
            let id = i as u64 + 1;
            let to: Vec<String> = (0..n).map(|r| format!("r{r}@example.test")).collect();
            // A failed submit ends the connection; the rest of the series is
            // still handed over (and comes back not sent), as the shim does.
            let _ = session.submit(id, &format!("m{id}@example.test"), &to, &body(id));
            if s.confirm_each {
                done.extend(session.confirm().0);
            }
        }
        done.extend(session.confirm().0);
        let _ = session.quit();
        outcomes = Some(done);
    }
    let writes = log.lock().unwrap().clone();
    let record = record.lock().unwrap().clone();
    Run {
        writes,
        outcomes,
        record,
    }
}

/// Check the series property of a run; `Err` says what broke.
fn check_series(s: &Scenario, run: &Run) -> Result<(), String> {
    let Some(outcomes) = &run.outcomes else {
        return Ok(());
    };
    let mut ids: Vec<u64> = outcomes.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    let want: Vec<u64> = (1..=s.messages.len() as u64).collect();
    if ids != want {
        return Err(format!("outcomes for {ids:?}, messages {want:?}"));
    }
    let events = &run.record.events;
    // After this event the client can no longer read a reply meant for it.
    let ends = |e: &Event| e.code.is_none_or(|c| c == 421);
    let end = events.iter().position(ends).unwrap_or(events.len());
    // A reply injected behind another shifts every reply after it onto the
    // command after its own; the client sees that only when a reply comes
    // that nobody asked for. Verdicts are compared up to the first one.
    let injected = events
        .iter()
        .position(|e| e.injected)
        .unwrap_or(events.len());
    for (id, outcome) in outcomes {
        let taken = run.record.taken.contains(id);
        let eod = events
            .iter()
            .position(|e| e.msg == Some(*id) && e.verb == "end of data");
        let last = events.iter().rposition(|e| e.msg == Some(*id));
        // A message the server never heard of may have been answered
        // with a shifted reply.
        let honest = last.map_or(injected == events.len(), |i| i < injected);
        match outcome {
            Outcome::NotSent if taken => {
                return Err(format!("message {id} not sent, but the server took it"))
            }
            Outcome::Accepted(d) if honest => {
                let Some(i) = eod else {
                    return Err(format!("message {id} accepted without an end of data"));
                };
                if i >= end {
                    return Err(format!(
                        "message {id} accepted by a reply after the connection ended"
                    ));
                }
                let code = events[i].code;
                if honest && (code != Some(d.reply.code()) || !(200..300).contains(&d.reply.code()))
                {
                    return Err(format!(
                        "message {id} accepted with {}, server said {code:?}",
                        d.reply.code()
                    ));
                }
            }
            Outcome::Refused(e) if honest => {
                let said = |code: u16| {
                    events
                        .iter()
                        .any(|ev| ev.msg == Some(*id) && ev.code == Some(code))
                };
                let codes: Vec<u16> = match e {
                    Error::RecipientsRefused { refused } => {
                        refused.iter().map(|(_, r)| r.code()).collect()
                    }
                    other => other.reply().map(|r| r.code()).into_iter().collect(),
                };
                // Any reply but 354 refuses DATA; elsewhere only a non-2xx.
                let at_data = e.stage() == Some(crate::error::Stage::Data);
                let refusal = |c: u16| if at_data { c != 354 } else { c >= 300 };
                if codes.is_empty() || !codes.iter().all(|&c| refusal(c) && said(c)) {
                    return Err(format!(
                        "message {id} refused with {e:?}, not a reply to it"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
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

/// Replies for a session: mostly good with a fault now and then, so that
/// series get far enough to fail in their middle, or faults everywhere.
fn answers() -> impl Strategy<Value = Vec<Answer>> {
    let sparse = prop_oneof![
        30 => Just(Answer::Good),
        1 => prop::sample::select(vec![421u16, 450, 451, 452, 500, 550, 552, 554])
            .prop_map(Answer::Code),
        1 => Just(Answer::Inject),
        1 => Just(Answer::InjectLater),
        1 => Just(Answer::Garbage),
        1 => Just(Answer::Close),
        1 => Just(Answer::Silence),
    ];
    prop_oneof![
        prop::collection::vec(answer(), 0..24),
        prop::collection::vec(sparse, 0..48),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::sample::select(vec![Security::StartTls, Security::Implicit, Security::None]),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
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
        answers(),
        prop::collection::vec(handshake(), 1..3),
        prop::collection::vec(1usize..4, 1..6),
    )
        .prop_map(
            |(
                security,
                (inspect_only, loopback, pipelining, confirm_each),
                caps,
                answers,
                handshakes,
                messages,
            )| Scenario {
                security,
                inspect_only,
                loopback,
                pipelining,
                caps,
                answers,
                handshakes,
                messages,
                confirm_each,
            },
        )
}

/// How many generated sessions the model runs.
const CASES: u32 = 4096;

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn no_auth_or_mail_byte_is_ever_written_on_an_unverified_channel(s in scenario()) {
        let run = run(&s);
        for (wire, bytes) in run.writes {
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

    #[test]
    fn each_message_of_a_series_ends_with_the_outcome_its_replies_decide(s in scenario()) {
        let run = run(&s);
        if let Err(broken) = check_series(&s, &run) {
            prop_assert!(false, "{}", broken);
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
        messages: vec![2, 2],
        confirm_each: false,
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
    let run = run(&scenario_with(
        Security::StartTls,
        vec![],
        vec![Handshake::Pass],
    ));
    let writes = run.writes;
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
    assert!(run(&s).writes.is_empty());
}

#[test]
fn a_handshake_without_a_verdict_sends_nothing_after_it() {
    let writes = run(&scenario_with(
        Security::StartTls,
        vec![],
        vec![Handshake::NoVerdict],
    ))
    .writes;
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
    ))
    .writes;
    assert!(writes.iter().all(|(w, _)| *w == Wire::Plain), "{writes:?}");
}

/// The session's own error for a scenario, with every write.
fn connect_error(s: &Scenario) -> (Option<crate::error::Error>, Vec<(Wire, Vec<u8>)>) {
    let log = Log::default();
    let transport = Box::new(Memory::new(s, log.clone(), Default::default()));
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
    let transport = Box::new(Memory::new(&s, log.clone(), Default::default()));
    let mut session = Session::over(config(&s), transport, Box::new(Quiet)).unwrap();
    // Three lines with LF endings, one of which is dot-stuffed on the wire.
    session
        .submit(
            1,
            "a@example.test",
            &["b@example.test".to_owned()],
            b"x\n.y\nz",
        )
        .unwrap();
    assert!(matches!(
        session.confirm().0[..],
        [(1, Outcome::Accepted(_))]
    ));
    let writes = log.lock().unwrap().clone();
    let mail = writes
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .find(|l| l.starts_with("MAIL"))
        .unwrap();
    assert!(mail.contains(" SIZE=10\r\n"), "{mail:?}");
}

#[test]
fn the_generated_sessions_reach_every_outcome_in_every_mode() {
    // Guards the generator: the series property means something only if
    // the sessions it makes get as far as each outcome, streamed and in
    // lock-step.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = HashSet::new();
    for _ in 0..CASES {
        let s = scenario().new_tree(&mut runner).unwrap().current();
        let mode = match (
            s.pipelining && s.caps.contains(&"PIPELINING"),
            s.caps.contains(&"CHUNKING"),
        ) {
            (false, _) => "lock-step",
            (true, false) => "pipelining",
            (true, true) => "chunking",
        };
        for (_, outcome) in run(&s).outcomes.unwrap_or_default() {
            let kind = match outcome {
                Outcome::Accepted(_) => "accepted",
                Outcome::Refused(_) => "refused",
                Outcome::NotSent => "not sent",
                Outcome::Unknown => "unknown",
            };
            seen.insert((mode, kind));
        }
    }
    for mode in ["lock-step", "pipelining", "chunking"] {
        for kind in ["accepted", "refused", "not sent", "unknown"] {
            assert!(seen.contains(&(mode, kind)), "no {kind} message in {mode}");
        }
    }
}

/// The MAIL and RCPT lines a one-message series wrote to a plain server
/// with `caps`, and the message's outcome.
fn envelope_lines(caps: Vec<&'static str>, to: &str) -> (Vec<String>, Outcome) {
    let mut s = scenario_with(Security::None, vec![], vec![]);
    s.caps = caps;
    s.pipelining = false;
    let log = Log::default();
    let transport = Box::new(Memory::new(&s, log.clone(), Default::default()));
    let mut session = Session::over(config(&s), transport, Box::new(Quiet)).unwrap();
    let _ = session.submit(
        1,
        "alice@example.test",
        &[to.to_owned()],
        b"Subject: x\n\nhi\n",
    );
    let (mut done, _) = session.confirm();
    let lines = log
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).trim_end().to_owned())
        .filter(|l| l.starts_with("MAIL") || l.starts_with("RCPT"))
        .collect();
    (lines, done.remove(0).1)
}

#[test]
fn an_idn_domain_goes_as_its_a_label_to_a_server_without_smtputf8() {
    let (lines, outcome) = envelope_lines(vec![], "bob@b\u{fc}cher.example");
    assert_eq!(
        lines,
        [
            "MAIL FROM:<alice@example.test>",
            "RCPT TO:<bob@xn--bcher-kva.example>"
        ]
    );
    match outcome {
        // The user's own form in the verdict.
        Outcome::Accepted(d) => assert_eq!(d.accepted, ["bob@b\u{fc}cher.example"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_non_ascii_local_part_without_smtputf8_is_refused_before_anything_is_written() {
    let (lines, outcome) = envelope_lines(vec![], "j\u{f6}rg@example.test");
    assert!(lines.is_empty(), "{lines:?}");
    match outcome {
        Outcome::Refused(e @ Error::BadInput(_)) => assert_eq!(
            e.to_string(),
            "invalid mail address \"j\u{f6}rg@example.test\": its local part is not ASCII \
             and the server does not offer SMTPUTF8"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_smtputf8_non_ascii_addresses_go_as_they_are() {
    let (lines, outcome) = envelope_lines(vec!["SMTPUTF8"], "j\u{f6}rg@b\u{fc}cher.example");
    assert_eq!(
        lines,
        [
            "MAIL FROM:<alice@example.test> SMTPUTF8",
            "RCPT TO:<j\u{f6}rg@b\u{fc}cher.example>"
        ]
    );
    assert!(matches!(outcome, Outcome::Accepted(_)));
}

#[test]
fn in_lock_step_a_reply_nobody_asked_for_ends_the_session_before_the_next_command() {
    // Greeting, EHLO and AUTH good; MAIL's 250 comes with another reply
    // behind it.
    let mut s = scenario_with(
        Security::None,
        vec![Answer::Good, Answer::Good, Answer::Good, Answer::Inject],
        vec![],
    );
    s.caps = vec!["AUTH PLAIN"];
    s.pipelining = false;
    s.messages = vec![1];
    let run = run(&s);
    assert_eq!(verbs(&run.writes), ["EHLO", "AUTH", "MAIL"]);
    let outcomes = run.outcomes.unwrap();
    assert!(
        matches!(outcomes[..], [(1, Outcome::NotSent)]),
        "{outcomes:?}"
    );
}
