//! The only module that touches sockets: connecting, TLS records, timeouts.
//!
//! Everything blocks, but never for long at a time: sockets wait in slices of
//! [`SLICE`], and between slices the [`Interrupt`] hook is asked whether the
//! user wants to stop (Ctrl-C in `hg email`). An idle timeout bounds how long
//! the peer may stay silent; a connect timeout bounds each connection attempt.
//!
//! TLS is driven by hand over the `rustls::ClientConnection` rather than with
//! `rustls::StreamOwned`: a write that times out half way must not leave
//! plaintext buffered inside rustls that a retry would send twice, and a
//! handshake failure must flush the alert to the server before we give up.
//!
//! Left out: SOCKS and HTTP proxies, happy-eyeballs (addresses are tried in
//! the resolver's order, one after another).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::tls::VerdictSlot;

/// How long one blocking wait lasts before the interrupt hook is polled.
pub const SLICE: Duration = Duration::from_millis(100);

/// Asked between waits whether to give up (the user pressed Ctrl-C).
pub trait Interrupt {
    /// True when the current operation must stop now.
    fn interrupted(&mut self) -> bool;
}

/// An interrupt hook that fires at a set time: bounds a best-effort wait
/// however the peer paces it.
struct Until(Instant);

impl Interrupt for Until {
    fn interrupted(&mut self) -> bool {
        Instant::now() >= self.0
    }
}

/// Why an I/O operation did not complete.
#[derive(Debug)]
pub enum IoFailure {
    /// The peer did not complete a reply by its deadline, or accepted
    /// nothing written for the idle timeout.
    Timeout,
    /// The peer closed the connection.
    Closed,
    /// The interrupt hook fired.
    Interrupted,
    /// The operating system reported an error.
    Os(io::Error),
    /// A TLS record was bad after the handshake (or the handshake failed).
    Tls(rustls::Error),
    /// The handshake was answered with this many bytes of what looks like
    /// SMTP replies instead of TLS: injected after STARTTLS's 220, or a port
    /// that speaks plain SMTP.
    Cleartext(usize),
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoFailure::Timeout => f.write_str("no response in time"),
            IoFailure::Closed => f.write_str("the server closed the connection"),
            IoFailure::Interrupted => f.write_str("interrupted"),
            IoFailure::Os(e) => write!(f, "{e}"),
            IoFailure::Tls(e) => write!(f, "TLS error: {e}"),
            IoFailure::Cleartext(n) => write!(f, "{n} bytes of cleartext instead of TLS"),
        }
    }
}

/// Why no connection could be made.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The host name did not resolve.
    Resolve(io::Error),
    /// It resolved, but no address accepted a connection: each address with
    /// its error.
    Refused(Vec<(SocketAddr, io::Error)>),
    /// The interrupt hook fired.
    Interrupted,
}

/// What the TLS layer negotiated, for reports and `--debug`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// "TLSv1.3" or "TLSv1.2".
    pub version: String,
    /// IANA name of the cipher suite.
    pub cipher_suite: String,
    /// Key exchange group, e.g. "X25519".
    pub key_exchange: String,
}

/// The byte stream a session runs over: cleartext that can turn into TLS in
/// place. [`Connection`] is the real one; the session's model tests drive the
/// state machine through an in-memory one that reports a handshake verdict
/// of its choosing.
pub trait Transport: Send {
    /// The address connected to.
    fn peer(&self) -> SocketAddr;

    /// Change how long the peer may take to accept written data.
    fn set_idle(&mut self, idle: Duration);

    /// Run the TLS handshake (after STARTTLS's 220, or at once for implicit
    /// TLS). The verifier in `config` leaves its verdict in `slot`, passed or
    /// failed; a transport without real TLS puts its own verdict there.
    fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        slot: &VerdictSlot,
        interrupt: &mut dyn Interrupt,
    ) -> Result<(), IoFailure>;

    /// Negotiated TLS parameters, once the handshake is done.
    fn tls_info(&self) -> Option<TlsInfo>;

    /// Write all of `data`, waiting at most the idle timeout for the peer to
    /// accept each part.
    fn write_all(&mut self, data: &[u8], interrupt: &mut dyn Interrupt) -> Result<(), IoFailure>;

    /// Read some bytes into `buf` by `deadline`; never returns 0 (a close is
    /// [`IoFailure::Closed`]).
    fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        interrupt: &mut dyn Interrupt,
    ) -> Result<usize, IoFailure>;

    /// Read whatever bytes have already arrived, without waiting: 0 when
    /// none have. Without it (the default) replies wait for `read_some`.
    fn read_ready(&mut self, _buf: &mut [u8]) -> Result<usize, IoFailure> {
        Ok(0)
    }

    /// Close politely; best effort, the session is over anyway.
    fn close(&mut self);
}

/// A TCP connection, cleartext or (after [`Transport::start_tls`]) TLS.
pub struct Connection {
    sock: TcpStream,
    tls: Option<Box<ClientConnection>>,
    peer: SocketAddr,
    idle: Duration,
}

impl Connection {
    /// Resolve `host` and try each address in turn, each bounded by
    /// `connect_timeout`; resolution too must finish within it. Resolution
    /// and connection run on a helper thread so that Ctrl-C is noticed within
    /// a [`SLICE`] even while the resolver or a SYN retry is stuck, and so
    /// that a resolver that never answers is given up on at the timeout; an
    /// abandoned attempt ends by itself.
    pub fn open(
        host: &str,
        port: u16,
        connect_timeout: Duration,
        idle: Duration,
        interrupt: &mut dyn Interrupt,
    ) -> Result<Connection, ConnectFailure> {
        Connection::open_with(
            resolve_and_connect,
            host,
            port,
            connect_timeout,
            idle,
            interrupt,
        )
    }

    /// [`Connection::open`] with the resolver and connector given, so that
    /// tests can make it hang.
    fn open_with(
        connect: Connector,
        host: &str,
        port: u16,
        connect_timeout: Duration,
        idle: Duration,
        interrupt: &mut dyn Interrupt,
    ) -> Result<Connection, ConnectFailure> {
        let (tx, rx) = mpsc::channel();
        let target = (host.to_owned(), port);
        let resolving = Arc::new(AtomicBool::new(true));
        let flag = resolving.clone();
        let started = Instant::now();
        thread::spawn(move || {
            let result = connect(&target.0, target.1, connect_timeout, &flag);
            // The receiver may be gone after an interrupt; nothing to do then.
            let _ = tx.send(result);
        });
        let (sock, peer) = loop {
            match rx.recv_timeout(SLICE) {
                Ok(result) => break result?,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupt.interrupted() {
                        return Err(ConnectFailure::Interrupted);
                    }
                    // Connecting is bounded per address by the socket call;
                    // only the resolver needs a deadline from here.
                    if resolving.load(Ordering::SeqCst) && started.elapsed() >= connect_timeout {
                        return Err(ConnectFailure::Resolve(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "name resolution timed out after {} seconds",
                                connect_timeout.as_secs_f64()
                            ),
                        )));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ConnectFailure::Resolve(io::Error::other(
                        "resolver thread ended unexpectedly",
                    )))
                }
            }
        };
        // Small commands and one-write transactions: Nagle would only add delay.
        let _ = sock.set_nodelay(true);
        sock.set_read_timeout(Some(SLICE))
            .and_then(|_| sock.set_write_timeout(Some(SLICE)))
            .map_err(|e| ConnectFailure::Refused(vec![(peer, e)]))?;
        Ok(Connection {
            sock,
            tls: None,
            peer,
            idle,
        })
    }
}

impl Connection {
    fn read_ready_inner(&mut self, buf: &mut [u8]) -> Result<usize, IoFailure> {
        let closed = |e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof => Err(IoFailure::Closed),
            _ => Err(IoFailure::Os(e)),
        };
        let Some(conn) = self.tls.as_deref_mut() else {
            return match self.sock.read(buf) {
                Ok(0) => Err(IoFailure::Closed),
                Ok(n) => Ok(n),
                Err(e) => closed(e),
            };
        };
        loop {
            match conn.reader().read(buf) {
                Ok(0) => return Err(IoFailure::Closed),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return closed(e),
            }
            match conn.read_tls(&mut self.sock) {
                Ok(0) => return Err(IoFailure::Closed),
                Ok(_) => {
                    conn.process_new_packets().map_err(IoFailure::Tls)?;
                }
                Err(e) => return closed(e),
            }
        }
    }
}

impl Transport for Connection {
    fn peer(&self) -> SocketAddr {
        self.peer
    }

    fn set_idle(&mut self, idle: Duration) {
        self.idle = idle;
    }

    fn tls_info(&self) -> Option<TlsInfo> {
        let conn = self.tls.as_ref()?;
        let version = match conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let cipher_suite = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_owned();
        let key_exchange = conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()))
            .unwrap_or_else(|| "unknown".to_owned());
        Some(TlsInfo {
            version,
            cipher_suite,
            key_exchange,
        })
    }

    /// Certificate verification happens inside, in the verifier of `config`,
    /// which fills `slot` itself. On failure the alert is flushed to the
    /// server and the rustls error is returned for the caller to explain.
    /// The whole handshake must finish within the idle timeout: a server
    /// that dribbles records cannot stretch it.
    fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        _slot: &VerdictSlot,
        interrupt: &mut dyn Interrupt,
    ) -> Result<(), IoFailure> {
        let mut conn = ClientConnection::new(config, name).map_err(IoFailure::Tls)?;
        let deadline = Instant::now() + self.idle;
        // What the server sent first, to tell SMTP text from a bad record.
        let mut received = Recorded::default();
        while conn.is_handshaking() {
            if conn.wants_write() {
                flush_tls(&mut conn, &mut self.sock, self.idle, interrupt)?;
                continue;
            }
            match conn.read_tls(&mut received.reader(&mut self.sock)) {
                Ok(0) => return Err(IoFailure::Closed),
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        if received.looks_like_smtp() {
                            return Err(IoFailure::Cleartext(received.total));
                        }
                        // Tell the server why (the alert), best effort.
                        let _ = flush_tls(&mut conn, &mut self.sock, SLICE, interrupt);
                        return Err(IoFailure::Tls(e));
                    }
                }
                Err(e) if is_wait(&e) => wait_until(deadline, interrupt)?,
                Err(e) => return Err(IoFailure::Os(e)),
            }
            if Instant::now() >= deadline {
                return Err(IoFailure::Timeout);
            }
        }
        // TLS 1.3 may leave the client Finished to send.
        if conn.wants_write() {
            flush_tls(&mut conn, &mut self.sock, self.idle, interrupt)?;
        }
        self.tls = Some(Box::new(conn));
        Ok(())
    }

    fn write_all(&mut self, data: &[u8], interrupt: &mut dyn Interrupt) -> Result<(), IoFailure> {
        match self.tls.as_deref_mut() {
            None => write_plain(&mut self.sock, data, self.idle, interrupt),
            Some(conn) => {
                let mut rest = data;
                while !rest.is_empty() {
                    // rustls takes plaintext up to its buffer limit, then it
                    // must be flushed before it takes more: memory stays
                    // bounded whatever the message size.
                    let n = conn.writer().write(rest).map_err(IoFailure::Os)?;
                    rest = &rest[n..];
                    flush_tls(conn, &mut self.sock, self.idle, interrupt)?;
                }
                Ok(())
            }
        }
    }

    fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        interrupt: &mut dyn Interrupt,
    ) -> Result<usize, IoFailure> {
        loop {
            // Checked before every read, not only after a wait: a peer that
            // sends a byte in every slice would otherwise never be late.
            if Instant::now() >= deadline {
                return Err(IoFailure::Timeout);
            }
            ack_promptly(&self.sock);
            match self.tls.as_deref_mut() {
                None => match self.sock.read(buf) {
                    Ok(0) => return Err(IoFailure::Closed),
                    Ok(n) => return Ok(n),
                    Err(e) if is_wait(&e) => wait_until(deadline, interrupt)?,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                        return Err(IoFailure::Closed)
                    }
                    Err(e) => return Err(IoFailure::Os(e)),
                },
                Some(conn) => {
                    match conn.reader().read(buf) {
                        Ok(0) => return Err(IoFailure::Closed),
                        Ok(n) => return Ok(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Err(IoFailure::Closed)
                        }
                        Err(e) => return Err(IoFailure::Os(e)),
                    }
                    match conn.read_tls(&mut self.sock) {
                        Ok(0) => return Err(IoFailure::Closed),
                        Ok(_) => {
                            conn.process_new_packets().map_err(IoFailure::Tls)?;
                            // Key updates and alerts may want an answer.
                            if conn.wants_write() {
                                flush_tls(conn, &mut self.sock, self.idle, interrupt)?;
                            }
                        }
                        Err(e) if is_wait(&e) => wait_until(deadline, interrupt)?,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                            return Err(IoFailure::Closed)
                        }
                        Err(e) => return Err(IoFailure::Os(e)),
                    }
                }
            }
        }
    }

    /// Read whatever bytes have already arrived, without waiting: 0 when
    /// none have. A streamed series calls this between writes so the
    /// server's replies never pile up until both sides' buffers are full.
    fn read_ready(&mut self, buf: &mut [u8]) -> Result<usize, IoFailure> {
        self.sock.set_nonblocking(true).map_err(IoFailure::Os)?;
        let result = self.read_ready_inner(buf);
        // The slice timeouts stay set; only the blocking mode is restored.
        self.sock.set_nonblocking(false).map_err(IoFailure::Os)?;
        result
    }

    /// TLS close_notify when TLS is up, then TCP shutdown.
    fn close(&mut self) {
        if let Some(conn) = self.tls.as_deref_mut() {
            conn.send_close_notify();
            // A slow reader must not hold the close (and Ctrl-C) for longer
            // than a slice or two.
            let mut until = Until(Instant::now() + SLICE);
            let _ = flush_tls(conn, &mut self.sock, SLICE, &mut until);
        }
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

/// The first bytes read during a handshake, and how many there were.
#[derive(Default)]
struct Recorded {
    head: Vec<u8>,
    total: usize,
}

impl Recorded {
    const KEEP: usize = 4;

    fn reader<'a>(&'a mut self, sock: &'a mut TcpStream) -> RecordingReader<'a> {
        RecordingReader { sock, seen: self }
    }

    /// Three digits and a space or hyphen: an SMTP reply, never the start of
    /// a TLS record (whose first byte is a content type, 20 to 24).
    fn looks_like_smtp(&self) -> bool {
        self.head.len() == Self::KEEP
            && self.head[..3].iter().all(u8::is_ascii_digit)
            && matches!(self.head[3], b' ' | b'-')
    }
}

struct RecordingReader<'a> {
    sock: &'a mut TcpStream,
    seen: &'a mut Recorded,
}

impl Read for RecordingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.sock.read(buf)?;
        let want = Recorded::KEEP - self.seen.head.len().min(Recorded::KEEP);
        self.seen.head.extend_from_slice(&buf[..n.min(want)]);
        self.seen.total += n;
        Ok(n)
    }
}

/// Resolves a host and connects to it; the flag is cleared once resolution
/// is done (only resolution has no deadline of its own).
type Connector =
    fn(&str, u16, Duration, &AtomicBool) -> Result<(TcpStream, SocketAddr), ConnectFailure>;

fn resolve_and_connect(
    host: &str,
    port: u16,
    timeout: Duration,
    resolving: &AtomicBool,
) -> Result<(TcpStream, SocketAddr), ConnectFailure> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(ConnectFailure::Resolve)?
        .collect();
    resolving.store(false, Ordering::SeqCst);
    if addrs.is_empty() {
        return Err(ConnectFailure::Resolve(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses",
        )));
    }
    let mut failures = Vec::new();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(sock) => return Ok((sock, addr)),
            Err(e) => failures.push((addr, e)),
        }
    }
    Err(ConnectFailure::Refused(failures))
}

/// Acknowledge the next segment at once instead of after the delayed-ACK
/// timer (~40 ms on Linux). A one-write transaction makes Postfix answer
/// in two writes (the envelope replies, then the BDAT reply once it has read
/// the chunk); without TCP_NODELAY on its side, Nagle holds the second
/// write until our ACK, and a client with nothing to send delays that ACK:
/// 40 ms lost per message. The kernel clears the flag as it goes, so it is
/// set again before every read. Elsewhere this is a no-op.
fn ack_promptly(sock: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Best effort: a failure only costs speed.
        let _ = socket2::SockRef::from(sock).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = sock;
}

/// Timeouts on a socket with a read/write timeout show up as WouldBlock on
/// Unix and TimedOut on Windows.
fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Called after a wait slice passed with no progress on a read, which must
/// be done by `deadline`.
fn wait_until(deadline: Instant, interrupt: &mut dyn Interrupt) -> Result<(), IoFailure> {
    if interrupt.interrupted() {
        return Err(IoFailure::Interrupted);
    }
    if Instant::now() >= deadline {
        return Err(IoFailure::Timeout);
    }
    Ok(())
}

/// Called after a write made progress: a peer that takes a little in every
/// slice must not keep Ctrl-C waiting until the whole message is out, so
/// the hook is asked at least once a [`SLICE`] (and not more often: asking
/// costs the GIL).
fn progress_tick(asked: &mut Instant, interrupt: &mut dyn Interrupt) -> Result<(), IoFailure> {
    if asked.elapsed() >= SLICE {
        *asked = Instant::now();
        if interrupt.interrupted() {
            return Err(IoFailure::Interrupted);
        }
    }
    Ok(())
}

/// Called after a wait slice passed with no progress on a write.
fn wait_tick(
    since: Instant,
    idle: Duration,
    interrupt: &mut dyn Interrupt,
) -> Result<(), IoFailure> {
    if interrupt.interrupted() {
        return Err(IoFailure::Interrupted);
    }
    if since.elapsed() >= idle {
        return Err(IoFailure::Timeout);
    }
    Ok(())
}

/// Write `data` to the socket in full.
fn write_plain(
    sock: &mut TcpStream,
    data: &[u8],
    idle: Duration,
    interrupt: &mut dyn Interrupt,
) -> Result<(), IoFailure> {
    let mut rest = data;
    write_loop(
        || {
            if rest.is_empty() {
                return None;
            }
            let written = sock.write(rest);
            if let Ok(n) = written {
                rest = &rest[n..];
            }
            Some(written)
        },
        idle,
        interrupt,
    )
}

/// Send every TLS record rustls has queued.
fn flush_tls(
    conn: &mut ClientConnection,
    sock: &mut TcpStream,
    idle: Duration,
    interrupt: &mut dyn Interrupt,
) -> Result<(), IoFailure> {
    write_loop(
        || conn.wants_write().then(|| conn.write_tls(sock)),
        idle,
        interrupt,
    )
}

/// The one write loop, for cleartext and TLS records alike: `step` makes
/// one write and says how many bytes went out, or `None` when nothing is
/// left to write. The peer may take nothing for `idle` at most, and the
/// interrupt hook is asked at least once a [`SLICE`] however the peer
/// paces its reads.
fn write_loop(
    mut step: impl FnMut() -> Option<io::Result<usize>>,
    idle: Duration,
    interrupt: &mut dyn Interrupt,
) -> Result<(), IoFailure> {
    let mut idle_since = Instant::now();
    let mut asked = Instant::now();
    while let Some(written) = step() {
        match written {
            Ok(0) => return Err(IoFailure::Closed),
            Ok(_) => {
                idle_since = Instant::now();
                progress_tick(&mut asked, interrupt)?;
            }
            Err(e) if is_wait(&e) => wait_tick(idle_since, idle, interrupt)?,
            Err(e) if is_closed(&e) => return Err(IoFailure::Closed),
            Err(e) => return Err(IoFailure::Os(e)),
        }
    }
    Ok(())
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    struct Never;

    impl Interrupt for Never {
        fn interrupted(&mut self) -> bool {
            false
        }
    }

    /// A listener on loopback and a client connection to it.
    fn pair(idle: Duration) -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conn =
            Connection::open("127.0.0.1", port, Duration::from_secs(5), idle, &mut Never).unwrap();
        let (server, _) = listener.accept().unwrap();
        (conn, server)
    }

    #[test]
    fn a_resolver_that_never_answers_is_given_up_on_at_the_timeout() {
        fn hang(
            _: &str,
            _: u16,
            _: Duration,
            _: &AtomicBool,
        ) -> Result<(TcpStream, SocketAddr), ConnectFailure> {
            thread::sleep(Duration::from_secs(3));
            Err(ConnectFailure::Refused(Vec::new()))
        }
        let started = Instant::now();
        let result = Connection::open_with(
            hang,
            "mail.example.test",
            25,
            Duration::from_millis(300),
            Duration::from_secs(5),
            &mut Never,
        );
        let elapsed = started.elapsed();
        match result {
            Err(ConnectFailure::Resolve(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}")
            }
            Err(e) => panic!("expected a resolve timeout, got {e:?}"),
            Ok(_) => panic!("connected"),
        }
        assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
    }

    #[test]
    fn an_interrupt_ends_a_hanging_resolver_within_a_slice() {
        fn hang(
            _: &str,
            _: u16,
            _: Duration,
            _: &AtomicBool,
        ) -> Result<(TcpStream, SocketAddr), ConnectFailure> {
            thread::sleep(Duration::from_secs(3));
            Err(ConnectFailure::Refused(Vec::new()))
        }
        struct Now;
        impl Interrupt for Now {
            fn interrupted(&mut self) -> bool {
                true
            }
        }
        let started = Instant::now();
        let result = Connection::open_with(
            hang,
            "mail.example.test",
            25,
            Duration::from_secs(30),
            Duration::from_secs(30),
            &mut Now,
        );
        assert!(matches!(result, Err(ConnectFailure::Interrupted)));
        assert!(started.elapsed() < 2 * SLICE + Duration::from_millis(100));
    }

    #[test]
    fn a_dribbling_peer_cannot_stretch_a_read_past_its_deadline() {
        let (mut conn, mut server) = pair(Duration::from_secs(5));
        let dribbler = thread::spawn(move || {
            for _ in 0..20 {
                if server.write_all(b"2").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut buf = [0u8; 64];
        let mut got = 0;
        let failure = loop {
            match conn.read_some(&mut buf, deadline, &mut Never) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert!(matches!(failure, IoFailure::Timeout), "{failure}");
        assert!(got > 0 && got < 20, "{got} bytes");
        assert!(Instant::now() < deadline + 2 * SLICE);
        conn.close();
        dribbler.join().unwrap();
    }

    #[test]
    fn a_close_by_the_peer_is_reported_as_closed() {
        let (mut conn, server) = pair(Duration::from_secs(5));
        drop(server);
        let mut buf = [0u8; 8];
        let deadline = Instant::now() + Duration::from_secs(5);
        assert!(matches!(
            conn.read_some(&mut buf, deadline, &mut Never),
            Err(IoFailure::Closed)
        ));
    }

    #[test]
    fn an_interrupt_ends_a_write_that_keeps_making_progress() {
        // The peer reads a little all the time: every write makes progress,
        // and only the periodic question to the hook can end it.
        let (mut conn, mut server) = pair(Duration::from_secs(5));
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                match server.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        struct After(Instant);
        impl Interrupt for After {
            fn interrupted(&mut self) -> bool {
                Instant::now() >= self.0
            }
        }
        let started = Instant::now();
        let data = vec![b'x'; 64 * 1024 * 1024];
        let result = conn.write_all(&data, &mut After(started + Duration::from_millis(300)));
        assert!(matches!(result, Err(IoFailure::Interrupted)), "{result:?}");
        assert!(started.elapsed() < Duration::from_millis(300) + 3 * SLICE);
        conn.close();
        reader.join().unwrap();
    }

    #[test]
    fn smtp_text_is_told_from_the_start_of_a_tls_record() {
        for (head, smtp) in [
            (&b"250-"[..], true),
            (b"220 ", true),
            (b"\x16\x03\x03\x00", false),
            (b"25", false),
            (b"2500", false),
        ] {
            let seen = Recorded {
                head: head.to_vec(),
                total: head.len(),
            };
            assert_eq!(seen.looks_like_smtp(), smtp, "{head:?}");
        }
    }
}
