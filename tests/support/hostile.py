"""A scripted, hostile SMTP server for tests, and a runner for real `hg email`.

The server listens on 127.0.0.1 (an ephemeral port, so tests can run in
parallel) and plays a *script*: a list of steps, each a callable that gets the
connection. A scenario reads as a small transcript::

    server = HostileServer([
        send(b"220 hostile.test ESMTP\\r\\n"),
        expect("EHLO", b"250-hostile.test\\r\\n250 PIPELINING\\r\\n"),
        expect("MAIL", b"421 4.3.2 going away\\r\\n"),
        close(),
    ])

or, for the common case of a well-behaved server with one fault, a greeting
followed by :func:`serve` with per-verb overrides::

    HostileServer([send(GREETING), serve(replies={"RCPT": [None, b"550 no\\r\\n"]})])

Everything the client sends is recorded, after TLS too: ``server.commands``
(each line as text, without its line ending), ``server.raw`` (every byte),
``server.messages`` (each message the server accepted, as received after
DATA or BDAT with the dot-stuffing undone), ``server.received`` (every
complete message, accepted or refused) and ``server.bodies`` (the DATA bodies exactly as on the
wire). ``server.events`` notes TLS handshakes, closes and script errors.

Everything is bounded: each connection ends at its deadline (default 15 s),
each socket wait is short, "endless" output stops after ``max_flood`` bytes
(20 MB) or ``flood_seconds`` (10 s), a body is read up to 64 MB. Nothing
listens beyond loopback unless a test asks for a specific local address.

The second half is :func:`hg_email`: it runs the real ``hg email`` with the
extension enabled, non-interactively, with a fixed date and a bounded
subprocess timeout, and checks that no output stream of any run carries the
password or its base64 forms.
"""

import base64
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# The server

GREETING = b"220 hostile.test ESMTP ready\r\n"

#: Capabilities of a server that does everything one transaction at a time.
LOCKSTEP = ("8BITMIME", "SIZE 10240000", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES")
#: Capabilities of a server that lets the client pipeline the envelope and
#: DATA (RFC 2920).
PIPELINING_ONLY = LOCKSTEP + ("PIPELINING",)
#: Capabilities of a server that lets the client pipeline (RFC 2920) and
#: send the message with BDAT (RFC 3030).
PIPELINED = LOCKSTEP + ("PIPELINING", "CHUNKING")

MAX_LINE = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


class ScriptEnd(Exception):
    """The script cannot go on (the peer left, a step did not match)."""


class _Close:
    def __repr__(self):
        return "CLOSE"


class _Silent:
    def __repr__(self):
        return "SILENT"


#: In ``serve(replies=...)``: close the connection instead of answering.
CLOSE = _Close()
#: In ``serve(replies=...)``: never answer; wait until the peer leaves.
SILENT = _Silent()


class _Slow:
    def __repr__(self):
        return "SLOW"


#: In ``serve(body=...)``: read the message slowly (4 KB every 20 ms) and
#: never answer it, like a server on a congested link. Every write of the
#: client makes some progress, but the upload takes minutes.
SLOW = _Slow()


class Connection:
    """One accepted client, as the script steps see it."""

    def __init__(self, server, sock, deadline):
        self.server = server
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.tls = False
        self.line_ending = b"\r\n"

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.server._event("deadline")
            raise ScriptEnd("deadline")
        return left

    def _recv(self, n=65536):
        while True:
            self.sock.settimeout(min(self.remaining(), 0.25))
            try:
                data = self.sock.recv(n)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (OSError, ssl.SSLError) as e:
                self.server._event("recv error: %s" % e)
                raise ScriptEnd("recv")
            if not data:
                self.server._event("closed by client")
                raise ScriptEnd("eof")
            self.server._record_raw(data)
            return data

    def readline(self):
        """One line, its CRLF (or bare LF) stripped; recorded as a command."""
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                self.server._event("client line too long")
                raise ScriptEnd("line")
            self.buf += self._recv()
        i = self.buf.index(b"\n")
        line = bytes(self.buf[:i])
        del self.buf[: i + 1]
        line = line[:-1] if line.endswith(b"\r") else line
        self.server._record_line(line)
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            self.buf += self._recv()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_data_body(self, limit=MAX_BODY):
        """A DATA body up to and including its end-of-data line: the first
        line that is a lone dot, with CRLF line endings only (RFC 5321
        4.1.1.4). A bare LF never ends it."""
        searched = 0
        while True:
            if self.buf[:3] == b".\r\n":  # an empty message
                return self.read_exact(3)
            i = self.buf.find(b"\r\n.\r\n", searched)
            if i >= 0:
                return self.read_exact(i + 5)
            if len(self.buf) > limit:
                self.server._event("body over limit")
                raise ScriptEnd("limit")
            searched = max(0, len(self.buf) - 4)
            self.buf += self._recv()

    def send(self, data):
        if self.line_ending != b"\r\n":
            data = data.replace(b"\r\n", self.line_ending)
        self.sock.settimeout(max(0.01, min(self.remaining(), 5.0)))
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as e:
            self.server._event("send error: %s" % type(e).__name__)
            raise ScriptEnd("send")

    def start_tls(self, context=None):
        """Server side of a TLS handshake on this connection."""
        context = context or self.server.tls_context
        if context is None:
            raise RuntimeError("no TLS context for this server")
        if self.buf:
            # The client pipelined past STARTTLS (RFC 3207 forbids it).
            self.server._event("client sent %d bytes before the handshake" % len(self.buf))
        self.sock.settimeout(min(self.remaining(), 10.0))
        try:
            self.sock = context.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.server._event("tls failed: %s" % e)
            raise ScriptEnd("tls")
        self.tls = True
        self.server._event("tls established: %s" % self.sock.version())

    def wait_for_close(self):
        """Say nothing; record whatever arrives until the peer leaves."""
        while True:
            self.buf += self._recv()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class HostileServer:
    """A one-script SMTP server on loopback; see the module docstring.

    ``tls_context`` is used by STARTTLS and :func:`implicit_tls`.
    ``connections`` is how many clients are served (each runs the script);
    ``backlog`` is the listen backlog. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        script,
        *,
        tls_context=None,
        deadline=15.0,
        max_flood=20 * 1024 * 1024,
        flood_seconds=10.0,
        connections=1,
        host="127.0.0.1",
        port=0,
        backlog=8,
        allowed_peer=None,
    ):
        self.script = list(script)
        self.tls_context = tls_context
        self.deadline = deadline
        self.max_flood = max_flood
        self.flood_seconds = flood_seconds
        self.max_connections = connections
        self.allowed_peer = allowed_peer
        self.commands = []
        self.lines = []
        self.raw = bytearray()
        self.messages = []
        self.received = []
        self.bodies = []
        self.events = []
        self.errors = []
        self.flooded = 0
        self.slow_bytes = 0
        self.dribbled = 0
        self.accepted = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(backlog)
        self.host, self.port = self._listener.getsockname()[:2]

    # recording -----------------------------------------------------------

    def _record_raw(self, data):
        with self._lock:
            self.raw.extend(data)

    def _record_line(self, line):
        with self._lock:
            self.lines.append(line)
            self.commands.append(line.decode("utf-8", "backslashreplace"))

    def _event(self, what):
        with self._lock:
            self.events.append(what)

    def verbs(self):
        """The first word of each line received, upper case."""
        return [c.split(" ", 1)[0].upper() for c in self.commands]

    def saw(self, verb):
        return verb.upper() in self.verbs()

    # running ---------------------------------------------------------------

    def start(self):
        t = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self):
        served = 0
        self._listener.settimeout(0.1)
        while not self._stop.is_set() and served < self.max_connections:
            try:
                sock, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if self.allowed_peer and peer[0] != self.allowed_peer:
                sock.close()
                continue
            served += 1
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            t.start()
            self._threads.append(t)
            self.accepted.set()
        if served >= self.max_connections:
            # Later clients are refused, not left hanging.
            self._listener.close()

    def _serve(self, sock):
        conn = Connection(self, sock, time.monotonic() + self.deadline)
        try:
            for step in self.script:
                step(conn)
        except ScriptEnd:
            pass
        except Exception as e:  # a bug in a script: make the test see it
            self.errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            conn.close()
            self.done.set()

    def wait(self, timeout=10.0):
        """Wait for the served connections to end (the client has left)."""
        end = time.monotonic() + timeout
        for t in list(self._threads[1:]):
            t.join(max(0.0, end - time.monotonic()))

    def stop(self):
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        self.wait(timeout=2.0)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# Script steps ---------------------------------------------------------------


def send(data):
    """Write ``data`` as is."""

    def step(conn):
        conn.send(data)

    step.__name__ = "send"
    return step


def expect(verb, reply=None):
    """Read one line, which must start with ``verb``; then send ``reply``."""

    def step(conn):
        line = conn.readline()
        if not line.upper().startswith(verb.upper().encode()):
            conn.server.errors.append("expected %s, got %r" % (verb, line))
            raise ScriptEnd("mismatch")
        if reply is not None:
            conn.send(reply)

    return step


def implicit_tls(context=None):
    """The TLS handshake first (SMTPS)."""

    def step(conn):
        conn.start_tls(context)

    return step


def start_tls(context=None):
    """Handshake now (after a 220 to STARTTLS the script sent itself)."""
    return implicit_tls(context)


def close():
    """Close the connection."""

    def step(conn):
        raise ScriptEnd("close")

    return step


def silent():
    """Never answer: record whatever comes until the peer leaves or the
    deadline passes."""

    def step(conn):
        conn.wait_for_close()

    return step


def sleep(seconds):
    def step(conn):
        time.sleep(min(seconds, conn.remaining()))

    return step


def dribble(data, interval=0.5):
    """Send ``data`` one byte at a time, ``interval`` seconds apart: a reply
    that never quite stops arriving."""

    def step(conn):
        for i in range(len(data)):
            conn.send(data[i : i + 1])
            conn.server.dribbled = i + 1
            time.sleep(min(interval, conn.remaining()))

    return step


def read_client_hello():
    """Read what the client sends after STARTTLS's 220 (its ClientHello)
    without answering it."""

    def step(conn):
        data = conn._recv()
        conn.server._event("client hello of %d bytes" % len(data))

    return step


def flood(unit, prefix=b""):
    """Send ``prefix``, then ``unit`` over and over until the peer leaves, the
    server's ``max_flood`` bytes or its ``flood_seconds`` are reached."""

    def step(conn):
        server = conn.server
        conn.send(prefix)
        block = unit * max(1, 65536 // len(unit))
        end = time.monotonic() + server.flood_seconds
        while server.flooded < server.max_flood and time.monotonic() < end:
            conn.send(block)
            server.flooded += len(block)
        server._event("flood limit reached")
        conn.wait_for_close()

    return step


def ehlo_reply(caps, name=b"hostile.test"):
    lines = [name] + [c.encode() if isinstance(c, str) else c for c in caps]
    out = b""
    for i, line in enumerate(lines):
        sep = b" " if i == len(lines) - 1 else b"-"
        out += b"250" + sep + line + b"\r\n"
    return out


def unstuff(body):
    """A DATA body (with its final ``.\\r\\n``) back into the message: lines
    split at CRLF only, one leading dot removed."""
    assert body.endswith(b".\r\n"), body[-20:]
    content = body[:-3]
    if not content:
        return b""
    lines = content.split(b"\r\n")
    assert lines[-1] == b"", "body does not end with CRLF before the dot"
    return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines[:-1])


def serve(caps=LOCKSTEP, replies=None, body=None, starttls=True, line_ending=b"\r\n"):
    """Play a well-behaved server from here on, except where ``replies`` says.

    ``replies`` maps a verb (``"EHLO"``, ``"STARTTLS"``, ``"AUTH"``,
    ``"MAIL"``, ``"RCPT"``, ``"DATA"`` (also BDAT), ``"."`` (the reply at the
    end of the message), ``"RSET"``, ``"QUIT"``) to what to do instead of the
    default: bytes to send, :data:`CLOSE`, :data:`SILENT`, or a callable
    ``f(conn, line)``. A list gives one action per occurrence of the verb
    (``None`` keeps the default for that one; occurrences past its end get
    the default). Sending a 421 closes the connection afterwards, as RFC 5321
    3.8 says.

    ``body``: :data:`CLOSE` closes the connection after reading part of the
    message; :data:`SILENT` stops reading the message (and answering);
    :data:`SLOW` reads it slowly and never answers.

    STARTTLS is offered (before TLS) when the server has a TLS context and
    ``starttls`` is true. ``line_ending``: what ends each reply line (a bare
    LF to play a sloppy server).
    """
    replies = replies or {}

    def step(conn):
        server = conn.server
        conn.line_ending = line_ending
        counts = {}
        state = {"mail": False, "rcpt": 0, "chunks": b""}

        def action_for(key):
            action = replies.get(key)
            n = counts.get(key, 0)
            counts[key] = n + 1
            if isinstance(action, list):
                action = action[n] if n < len(action) else None
            return action

        def act(action, line):
            if action is CLOSE:
                server._event("closed after %r" % (line,))
                raise ScriptEnd("close")
            if action is SILENT:
                conn.wait_for_close()
            if callable(action):
                action(conn, line)
                return
            conn.send(action)
            if action[:3] == b"421":
                raise ScriptEnd("421")

        def end_of_message(message):
            server.received.append(message)
            action = action_for(".")
            if action is None:
                server.messages.append(message)
                conn.send(b"250 2.0.0 Ok: queued as %d\r\n" % len(server.messages))
            else:
                if isinstance(action, bytes) and action[:1] == b"2":
                    server.messages.append(message)
                act(action, b".")
            state.update(mail=False, rcpt=0)

        def read_body():
            if body is CLOSE:
                conn.read_exact(min(2048, len(conn.buf) + 1))
                server._event("closed in the middle of the body")
                raise ScriptEnd("close")
            if body is SILENT:
                server._event("stopped reading the body")
                time.sleep(conn.remaining())
                raise ScriptEnd("silent")
            if body is SLOW:
                server._event("reading the body slowly")
                server.slow_bytes += len(conn.buf)
                conn.buf.clear()
                while True:
                    server.slow_bytes += len(conn._recv(4 * 1024))
                    time.sleep(0.02)
            raw = conn.read_data_body()
            server.bodies.append(raw)
            end_of_message(unstuff(raw))

        while True:
            line = conn.readline()
            verb = line.split(b" ", 1)[0].upper().decode("ascii", "replace")
            if verb == "BDAT":
                # The chunk follows the command line whatever the reply.
                parts = line.split()
                size = int(parts[1])
                last = len(parts) > 2 and parts[2].upper() == b"LAST"
                if body is not None:
                    read_body()  # CLOSE or SILENT: never returns
                chunk = conn.read_exact(size)
                action = action_for("DATA")
                if action is not None:
                    state["chunks"] = b""
                    act(action, line)
                elif not (state["mail"] and state["rcpt"]):
                    conn.send(b"554 5.5.1 Error: no valid recipients\r\n")
                elif last:
                    message = state["chunks"] + chunk
                    state["chunks"] = b""
                    end_of_message(message)
                else:
                    state["chunks"] += chunk
                    conn.send(b"250 2.0.0 %d octets received\r\n" % size)
                continue
            action = action_for(verb)
            if action is not None:
                act(action, line)
                if verb == "DATA" and isinstance(action, bytes) and action[:3] == b"354":
                    read_body()
                elif verb == "MAIL":
                    state.update(mail=action[:1] == b"2", rcpt=0)
                elif verb == "RCPT" and isinstance(action, bytes) and action[:1] == b"2":
                    state["rcpt"] += 1
                continue
            if verb == "EHLO":
                offered = list(caps)
                if starttls and server.tls_context is not None and not conn.tls:
                    offered.append("STARTTLS")
                conn.send(ehlo_reply(offered))
            elif verb == "HELO":
                conn.send(b"250 hostile.test\r\n")
            elif verb == "STARTTLS":
                conn.send(b"220 2.0.0 Ready to start TLS\r\n")
                conn.start_tls()
            elif verb == "AUTH":
                parts = line.split()
                mech = parts[1].upper() if len(parts) > 1 else b""
                if mech == b"LOGIN":
                    conn.send(b"334 VXNlcm5hbWU6\r\n")
                    conn.readline()
                    conn.send(b"334 UGFzc3dvcmQ6\r\n")
                    conn.readline()
                elif mech == b"PLAIN" and len(parts) < 3:
                    conn.send(b"334 \r\n")
                    conn.readline()
                conn.send(b"235 2.7.0 Authentication successful\r\n")
            elif verb == "MAIL":
                state.update(mail=True, rcpt=0)
                conn.send(b"250 2.1.0 Ok\r\n")
            elif verb == "RCPT":
                if state["mail"]:
                    state["rcpt"] += 1
                    conn.send(b"250 2.1.5 Ok\r\n")
                else:
                    conn.send(b"503 5.5.1 Error: need MAIL command\r\n")
            elif verb == "DATA":
                if not (state["mail"] and state["rcpt"]):
                    conn.send(b"554 5.5.1 Error: no valid recipients\r\n")
                    continue
                conn.send(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                read_body()
            elif verb == "RSET":
                state.update(mail=False, rcpt=0, chunks=b"")
                conn.send(b"250 2.0.0 Ok\r\n")
            elif verb == "NOOP":
                conn.send(b"250 2.0.0 Ok\r\n")
            elif verb == "QUIT":
                conn.send(b"221 2.0.0 Bye\r\n")
                raise ScriptEnd("quit")
            else:
                conn.send(b"500 5.5.2 Error: command not recognized\r\n")

    return step


# --------------------------------------------------------------------------
# Certificates


class Certificates:
    """Server-side TLS contexts for the scenarios, from the test PKI that
    ``support.pki`` makes at test time; ``ca_file`` is what the client trusts
    (``web.cacerts``)."""

    def __init__(self, directory):
        from . import pki

        self.pki = pki.make_pki(directory)
        self.ca_file = self.pki.ca.cert

    @staticmethod
    def _context(chain, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(chain, key)
        return ctx

    def good(self):
        """localhost, 127.0.0.1 and ::1, issued by the CA in ``ca_file``."""
        return self._context(self.pki.rsa.chain, self.pki.rsa.key)

    def other_name(self):
        """Valid and trusted, but for mail.example.org only."""
        return self._context(self.pki.wrong_host.chain, self.pki.wrong_host.key)

    def expired(self):
        return self._context(self.pki.expired.chain, self.pki.expired.key)

    def unknown_ca(self):
        """Issued by a CA the client does not know."""
        return self._context(self.pki.unknown_ca.chain, self.pki.unknown_ca.key)

    def self_signed(self):
        return self._context(self.pki.selfsigned.chain, self.pki.selfsigned.key)

    def chain_with_intermediate(self):
        via = self.pki.via_intermediate
        return self._context(via.chain, via.key)

    def missing_intermediate(self):
        """Issued by an intermediate the server does not send."""
        via = self.pki.via_intermediate
        return self._context(via.leaf_only, via.key)

    def legacy_tls_only(self):
        """The good certificate, but TLS 1.0 and 1.1 only (security level 0,
        so OpenSSL 3 agrees to offer them). None when this Python's OpenSSL
        cannot offer them at all."""
        import warnings

        ctx = self.good()
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            return None
        return ctx


# --------------------------------------------------------------------------
# Running the real `hg email`

HG = os.environ.get("SECURESMTP_HG") or os.path.join(os.path.dirname(sys.executable), "hg")
DATE = "2020-01-01 00:00 +0000"
SENDER = "sender@example.test"
USER = "alice@example.test"
PASSWORD = "Sup3r-s3cret;pw#42"
ALL_RUNS = []


def secret_forms(user=USER, password=PASSWORD):
    """Every form in which the password must never be shown."""
    b64 = lambda b: base64.b64encode(b).decode("ascii")
    return [
        password,
        b64(password.encode()),
        b64(b"\0" + user.encode() + b"\0" + password.encode()),
        b64(user.encode() + b"\0" + user.encode() + b"\0" + password.encode()),
    ]


@dataclass
class Run:
    args: list
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    hgrc: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def output(self):
        return self.stdout + self.stderr

    def __str__(self):
        return "hg %s -> %s in %.2fs\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(self.args),
            self.returncode,
            self.elapsed,
            self.stdout,
            self.stderr,
        )


def write_hgrc(path, config, encoding="utf-8"):
    """``config``: {"section": {"name": "value"}}, written in ``encoding``."""
    with open(path, "w", encoding=encoding) as f:
        for section, items in config.items():
            f.write("[%s]\n" % section)
            for k, v in items.items():
                f.write("%s = %s\n" % (k, v))


def hg_env(hgrc, home):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HG") and k not in ("EMAIL", "LANGUAGE", "LC_ALL")
    }
    env.update(
        HGRCPATH=hgrc,
        HOME=home,
        TZ="UTC",
        HGENCODING="utf-8",
        LANG="C.UTF-8",
        PYTHONUNBUFFERED="1",
    )
    return env


def base_config(port=None, tls="none", cacerts=None, timeout=3, user=None, password=None, **smtp):
    config = {
        "extensions": {"securesmtp": "", "patchbomb": ""},
        "ui": {"username": "Test <test@example.test>", "interactive": "false"},
        "email": {"method": "smtp", "from": SENDER},
        "patchbomb": {"intro": "never"},
        "diff": {"git": "1"},
        "smtp": {"host": "127.0.0.1", "tls": tls, "timeout": str(timeout)},
    }
    if port is not None:
        config["smtp"]["port"] = str(port)
    if cacerts:
        config["web"] = {"cacerts": cacerts}
    if user:
        config["smtp"]["username"] = user
    if password:
        config["smtp"]["password"] = password
    config["smtp"].update({k.replace("_", "-"): str(v) for k, v in smtp.items()})
    return config


def hg(repo, args, config, *, timeout=30, workdir=None, check_secrets=True, hgrc_encoding="utf-8", env=None):
    """Run ``hg -R repo ARGS`` with an hgrc made from ``config`` (written in
    ``hgrc_encoding``); ``env`` adds to or overrides the environment."""
    workdir = workdir or tempfile.mkdtemp(prefix="hg-")
    hgrc = os.path.join(workdir, "hgrc")
    write_hgrc(hgrc, config, hgrc_encoding)
    cmd = [HG, "-R", repo] + list(args)
    start = time.monotonic()
    proc = subprocess.run(
        cmd,
        env=dict(hg_env(hgrc, workdir), **(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    run = Run(
        args=list(args),
        returncode=proc.returncode,
        stdout=proc.stdout.decode("utf-8", "backslashreplace"),
        stderr=proc.stderr.decode("utf-8", "backslashreplace"),
        elapsed=time.monotonic() - start,
        hgrc=hgrc,
    )
    ALL_RUNS.append(run)
    _log(run)
    if check_secrets:
        assert_no_secrets(run)
    return run


def email_args(revs, to=("bob@example.test",), extra=()):
    args = ["email", "--date", DATE, "--from", SENDER, "-r", revs]
    for t in to:
        args += ["--to", t]
    return args + list(extra)


def hg_email(repo, config, revs="0", to=("bob@example.test",), extra=(), **kw):
    return hg(repo, email_args(revs, to, extra), config, **kw)


def start_hg_email(repo, config, workdir, revs="0", to=("bob@example.test",), extra=()):
    """``hg email`` as a running process (for signals); read it with
    :func:`finish`."""
    hgrc = os.path.join(workdir, "hgrc")
    write_hgrc(hgrc, config)
    cmd = [HG, "-R", repo] + email_args(revs, to, extra)
    proc = subprocess.Popen(
        cmd,
        env=hg_env(hgrc, workdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.args_for_report = email_args(revs, to, extra)
    return proc


def finish(proc, timeout=30, started=None):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError("hg email did not end within %s s:\n%s" % (timeout, err.decode()))
    run = Run(
        args=proc.args_for_report,
        returncode=proc.returncode,
        stdout=out.decode("utf-8", "backslashreplace"),
        stderr=err.decode("utf-8", "backslashreplace"),
        elapsed=time.monotonic() - started if started else 0.0,
    )
    ALL_RUNS.append(run)
    _log(run)
    assert_no_secrets(run)
    return run


def _log(run):
    """With SECURESMTP_HOSTILE_LOG=FILE, append each run (test id, exit
    status, stderr) to FILE: the record docs/security.md is written from."""
    path = os.environ.get("SECURESMTP_HOSTILE_LOG")
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    with open(path, "a", encoding="utf-8") as f:
        f.write("=== %s -> %s (%.2fs)\n%s" % (test, run.returncode, run.elapsed, run.stderr))


def assert_no_secrets(run, user=USER, password=PASSWORD):
    for form in secret_forms(user, password):
        assert form not in run.stdout, "secret %r in stdout of %s" % (form, run)
        assert form not in run.stderr, "secret %r in stderr of %s" % (form, run)


def mbox_messages(repo, revs, to=("bob@example.test",), workdir=None):
    """What ``hg email --mbox`` writes for ``revs``: the list of messages,
    each exactly as mail.connect's mbox writer received it."""
    workdir = workdir or tempfile.mkdtemp(prefix="mbox-")
    mbox = os.path.join(workdir, "out.mbox")
    config = base_config(port=1)
    del config["extensions"]["securesmtp"]
    run = hg(repo, email_args(revs, to, ["--mbox", mbox]), config, workdir=workdir)
    assert run.returncode == 0, str(run)
    with open(mbox, "rb") as f:
        data = f.read()
    # mail._mbox writes "From <sender> <date>\n", the message, "\n\n".
    sep = b"From " + SENDER.encode() + b" "
    assert data.startswith(sep)
    chunks = data[len(sep):].split(b"\n\n" + sep)
    messages = []
    for i, chunk in enumerate(chunks):
        chunk = chunk.split(b"\n", 1)[1]  # the rest of the From_ line
        if i == len(chunks) - 1:
            assert chunk.endswith(b"\n\n")
            chunk = chunk[:-2]
        messages.append(chunk)
    return messages


def crlf(message):
    """Line endings as on the wire: CRLF stays, bare CR or LF becomes CRLF,
    a last line without an ending gets one."""
    out = bytearray()
    i = 0
    while i < len(message):
        b = message[i : i + 1]
        if b == b"\r" and message[i + 1 : i + 2] == b"\n":
            out += b"\r\n"
            i += 2
        elif b in (b"\r", b"\n"):
            out += b"\r\n"
            i += 1
        else:
            out += b
            i += 1
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return bytes(out)


def build_repo(base, commits):
    """A repository under ``base`` with one commit per ``(name, description
    bytes, {file: bytes})``, built with plain hg (no extension). Returns its
    path, a ``str`` with ``.revs`` mapping each name to its revision."""
    hgrc = os.path.join(base, "hgrc-build")
    write_hgrc(hgrc, {"ui": {"username": "Test <test@example.test>"}})
    env = hg_env(hgrc, base)
    path = os.path.join(base, "repo")

    def hg_plain(*args):
        subprocess.run([HG] + list(args), env=env, check=True, capture_output=True, timeout=60)

    hg_plain("init", path)
    revs = {}
    for name, description, files in commits:
        for fname, content in files.items():
            with open(os.path.join(path, fname), "wb") as f:
                f.write(content)
        msgfile = os.path.join(base, "msg")
        with open(msgfile, "wb") as f:
            f.write(description)
        hg_plain("-R", path, "commit", "-A", "-l", msgfile, "-d", "0 0")
        revs[name] = len(revs)

    class Repo(str):
        pass

    repo = Repo(path)
    repo.revs = revs
    return repo


def node(repo, rev):
    """The full hash of revision ``rev`` of ``repo``."""
    env = hg_env(os.path.join(os.path.dirname(repo), "hgrc-build"), os.path.dirname(repo))
    out = subprocess.run(
        [HG, "-R", repo, "log", "-r", str(rev), "-T", "{node}"],
        env=env, check=True, capture_output=True, timeout=60,
    )
    return out.stdout.decode()


def ordinary_commits():
    """Four small patches (revs 0-3), then a large one (``big``, about 5 MB
    of diff: more than loopback's socket buffers hold)."""
    commits = [
        ("patch-%d" % (i + 1), b"patch %s" % word, {"a.txt": b"line %d\n" % i * (i + 1)})
        for i, word in enumerate([b"one", b"two", b"three", b"four"])
    ]
    big = b"".join(b"big line %08d of a large patch\n" % i for i in range(150000))
    commits.append(("big", b"a large patch", {"big.txt": big}))
    return commits


def interrupt(proc):
    proc.send_signal(signal.SIGINT)


def wait_for_syn_sent(port, exclude=(), timeout=10.0):
    """Wait until some socket on this machine other than those bound to the
    local ports in ``exclude`` is trying to connect to ``port`` on loopback
    (state SYN_SENT in /proc/net/tcp)."""
    want = ":%04X" % port
    skip = {":%04X" % p for p in exclude}
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open("/proc/net/tcp") as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if (
                        fields[2].endswith(want)
                        and fields[3] == "02"
                        and fields[1][-5:] not in skip
                    ):
                        return True
        except OSError:
            return False
        time.sleep(0.05)
    return False


def local_non_loopback_address():
    """An IPv4 address of this machine that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
        addr = s.getsockname()[0]
    except OSError:
        addr = None
    finally:
        s.close()
    if not addr or addr.startswith("127."):
        return None
    return addr
