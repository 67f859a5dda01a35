"""An aiosmtpd server on loopback that records what it was told.

``SmtpServer(cert, mode="starttls"|"smtps", ...)`` runs aiosmtpd's threaded
Controller on 127.0.0.1 with a port the kernel picks, and records:

- ``commands``: every command line the server read, in order, CRLF removed,
  exactly as sent (arguments and AUTH payloads kept, including the
  continuation lines of a multi-step AUTH), but not the lines of a message
  body. Lines are captured where aiosmtpd reads them, *before* it decides
  what to do with them, so a command it refuses without dispatching (``530
  Must issue a STARTTLS command first``, ``554 Command refused due to lack
  of security``, an unknown verb) is recorded too.
- ``transcript``: ``("C", line)`` and ``("S", reply)`` pairs, for failure
  messages.
- ``messages``: every accepted message as a :class:`Received` (envelope
  sender, recipients, and the content bytes exactly as received after
  dot-unstuffing; ``decode_data=False`` and our own handler, so aiosmtpd adds
  no ``X-Peer``/``X-MailFrom``/``X-RcptTo`` headers).

Every wait is bounded.
"""

import base64
import re
import ssl
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd's own warnings, expected with the settings used here:
# - auth_required with auth_require_tls=False (needed for SMTPS, where aiosmtpd
#   does not count implicit TLS as TLS);
# - it sets the deprecated Session.login_data itself after every AUTH.
# conftest.py passes the same filters to pytest (which resets the warning
# filters around each test).
WARNING_FILTERS = [
    ("ignore", "Requiring AUTH while not requiring TLS", UserWarning),
    ("ignore", "Session.login_data is deprecated", DeprecationWarning),
]
for _action, _message, _category in WARNING_FILTERS:
    warnings.filterwarnings(_action, message=re.escape(_message), category=_category)

USER = "alice"
PASSWORD = "Sw0rdfish-Secret!"


def secret_forms(user=USER, password=PASSWORD):
    """Every spelling of a password that must never appear in any output."""
    forms = {
        password,
        base64.b64encode(password.encode()).decode(),
        base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode(),
        base64.b64encode(user.encode() + b"\0" + user.encode() + b"\0" + password.encode()).decode(),
    }
    return sorted(forms)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    content: bytes  # as received, CRLF line endings, dot-stuffing removed
    mail_options: list
    rcpt_options: list


class _Handler:
    def __init__(self, server):
        self._server = server

    async def handle_DATA(self, smtp, session, envelope):
        self._server._accept(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                content=bytes(envelope.original_content),
                mail_options=list(envelope.mail_options),
                rcpt_options=list(envelope.rcpt_options),
            )
        )
        return "250 2.0.0 OK: queued"

    async def handle_exception(self, error):
        # Instead of aiosmtpd's log.exception (a traceback on stderr for every
        # refused handshake, which is what many tests provoke on purpose).
        self._server._error(error)
        return "500 Error: (%s) %s" % (error.__class__.__name__, error)


class _RecordingSMTP(SMTP):
    """aiosmtpd's SMTP that records each command line it reads."""

    def __init__(self, handler, recorder, **kwargs):
        self._recorder = recorder
        self._in_data = False
        self._open = False
        super().__init__(handler, **kwargs)

    def connection_made(self, transport):
        # Called again after STARTTLS for the same connection: count it once.
        if not self._open:
            self._open = True
            self._recorder._opened()
        super().connection_made(transport)

    def connection_lost(self, error):
        try:
            super().connection_lost(error)
        finally:
            if self._open:
                self._open = False
                self._recorder._closed()

    def data_received(self, data):
        # Every byte the client sent in the clear or inside TLS (after
        # decryption), bodies included: the backstop for "nothing was sent",
        # independent of how far aiosmtpd got in parsing it.
        self._recorder._raw(data)
        super().data_received(data)

    def _cb_client_connected(self, reader, writer):
        # The reader is the one place every client line passes through;
        # command lines are read with readuntil(), AUTH continuation lines
        # with readline(), DATA lines with readuntil(b"\r\n") (skipped).
        orig_readuntil = reader.readuntil
        orig_readline = reader.readline

        async def readuntil(separator=b"\n"):
            line = await orig_readuntil(separator)
            if not self._in_data:
                self._recorder._command(line)
            return line

        async def readline():
            line = await orig_readline()
            if not self._in_data:
                self._recorder._command(line)
            return line

        reader.readuntil = readuntil
        reader.readline = readline
        super()._cb_client_connected(reader, writer)

    async def push(self, status):
        if isinstance(status, bytes):
            text = status.decode("utf-8", "replace")
        else:
            text = status
        self._recorder._reply(text)
        return await super().push(status)

    async def smtp_DATA(self, arg):
        self._in_data = True
        try:
            return await super().smtp_DATA(arg)
        finally:
            self._in_data = False


class _Controller(Controller):
    def __init__(self, handler, recorder, **kwargs):
        self._recorder = recorder
        super().__init__(handler, **kwargs)

    def factory(self):
        self._recorder.connections += 1
        return _RecordingSMTP(self.handler, self._recorder, **self.SMTP_kwargs)

    def _trigger_server(self):
        # Bound to port 0: learn the port the kernel chose before aiosmtpd's
        # start-up probe connects to it.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """A recording aiosmtpd server; use as a context manager or start()/stop().

    mode: ``starttls`` (STARTTLS required before anything else), ``smtps``
    (implicit TLS) or ``plain`` (no TLS at all; same as
    ``offer_starttls=False``).

    Subclasses may set ``handler_class`` to a subclass of the handler that
    adds ``auth_<MECHANISM>`` methods, and ``controller_class`` to one whose
    ``factory`` makes another SMTP subclass (see support/sasl.py).
    """

    handler_class = _Handler
    controller_class = _Controller

    def __init__(
        self,
        cert=None,
        mode="starttls",
        user: Optional[str] = None,
        password: Optional[str] = None,
        offer_starttls: bool = True,
        max_tls: Optional[str] = None,
        hostname: str = "mx.securesmtp.test",
        ciphers: Optional[str] = None,
    ):
        # ciphers: an OpenSSL cipher string; "DEFAULT:@SECLEVEL=0" lets the
        # server present what OpenSSL would refuse to load (RSA-1024, SHA-1).
        if mode not in ("starttls", "smtps", "plain"):
            raise ValueError(mode)
        if mode == "starttls" and not offer_starttls:
            mode = "plain"
        if mode != "plain" and cert is None:
            raise ValueError("a TLS server needs a certificate")
        self.mode = mode
        self.cert = cert
        self.user = user
        self.password = password
        self._lock = threading.Lock()
        self._commands = []
        self._transcript = []
        self._messages = []
        self._message_event = threading.Condition(self._lock)
        self._raw_bytes = bytearray()
        self._errors = []
        self._open_count = 0
        # The most connections open at once.
        self.max_open = 0
        self.connections = 0
        self._controller = None

        ctx = None
        if mode != "plain":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if ciphers is not None:
                ctx.set_ciphers(ciphers)
            ctx.load_cert_chain(cert.chain, cert.key)
            if max_tls is not None:
                ctx.maximum_version = {
                    "1.2": ssl.TLSVersion.TLSv1_2,
                    "1.3": ssl.TLSVersion.TLSv1_3,
                }[max_tls]
        self.ssl_context = ctx

        kwargs = dict(
            hostname="127.0.0.1",
            port=0,
            server_hostname=hostname,
            enable_SMTPUTF8=True,
            decode_data=False,
            ready_timeout=10.0,
            timeout=30,
        )
        if mode == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        elif mode == "smtps":
            # aiosmtpd does not count implicit TLS as TLS: without this, AUTH
            # is hidden and answers 538.
            kwargs.update(ssl_context=ctx, auth_require_tls=False)
        if user is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self._kwargs = kwargs

    # -- recording (called from the server thread) --

    def _command(self, line):
        text = line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")
        with self._lock:
            self._commands.append(text)
            self._transcript.append(("C", text))

    def _reply(self, text):
        with self._lock:
            self._transcript.append(("S", text))

    def _raw(self, data):
        with self._lock:
            self._raw_bytes += data

    def _opened(self):
        with self._lock:
            self._open_count += 1
            self.max_open = max(self.max_open, self._open_count)

    @property
    def open_now(self):
        """Connections open at this moment."""
        with self._lock:
            return self._open_count

    def _closed(self):
        with self._lock:
            self._open_count -= 1
            self._message_event.notify_all()

    def _error(self, error):
        cause = error.__cause__ or error
        with self._lock:
            self._errors.append(cause)

    def _accept(self, received):
        with self._lock:
            self._messages.append(received)
            self._message_event.notify_all()

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user.encode()
            and auth_data.password == self.password.encode()
        )
        return AuthResult(success=ok, handled=False)

    # -- life cycle --

    def start(self):
        self._controller = self.controller_class(self.handler_class(self), self, **self._kwargs)
        self._controller.start()
        # The start-up probe made one connection that said nothing.
        self.wait_idle(5.0)
        with self._lock:
            self.connections = 0
            self._commands.clear()
            self._transcript.clear()
            self._raw_bytes.clear()
        return self

    def stop(self):
        if self._controller is not None:
            try:
                self._controller.stop()
            finally:
                self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what the tests look at --

    @property
    def port(self):
        return self._controller.port

    @property
    def commands(self):
        with self._lock:
            return list(self._commands)

    @property
    def verbs(self):
        return [c.split(" ", 1)[0].upper() for c in self.commands]

    @property
    def transcript(self):
        with self._lock:
            return list(self._transcript)

    def transcript_text(self):
        return "\n".join("%s: %s" % pair for pair in self.transcript)

    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    @property
    def errors(self):
        """Exceptions in the server's sessions (a failed STARTTLS handshake's
        ssl.SSLError, for instance)."""
        with self._lock:
            return list(self._errors)

    @property
    def raw(self):
        """Every byte received from clients (decrypted), bodies included."""
        with self._lock:
            return bytes(self._raw_bytes)

    def wait_idle(self, timeout=5.0):
        """Wait until every client connection is closed; True if so in time.

        Call it after the client exited and before asserting on what the
        server saw: the server thread may still be reading."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._open_count > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._message_event.wait(left)
            return True

    def saw(self, verb):
        """Whether any command line began with ``verb`` (case-insensitive)."""
        verb = verb.upper()
        return any(v == verb for v in self.verbs)

    def wait_for_messages(self, n, timeout=10.0):
        """Wait until ``n`` messages arrived; return them (maybe fewer on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._message_event.wait(left)
            return list(self._messages)

    def wait_for_command(self, verb, timeout=5.0):
        """Wait until the server read ``verb``; True if it did in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.saw(verb):
                return True
            time.sleep(0.01)
        return self.saw(verb)

    def assert_nothing_sent(self, verbs=("AUTH", "MAIL", "RCPT", "DATA", "BDAT")):
        """No credential, no envelope, no message reached this server.

        Checks both the parsed command lines and the raw bytes received (a
        line aiosmtpd never got round to parsing still counts)."""
        self.wait_idle(5.0)
        for verb in verbs:
            assert not self.saw(verb), "server saw %s:\n%s" % (verb, self.transcript_text())
            pattern = re.compile(rb"(?im)^" + verb.encode() + rb"\b")
            assert not pattern.search(self.raw), "server received a %s line:\n%r" % (verb, self.raw)
        assert self.messages == [], "a message arrived"


class _FilteringHandler(_Handler):
    """Refuses at the end of data every message with a line of 70 or more
    ``x`` (patch 2 of support/hg.py's ``make_repo`` has one of 1500)."""

    async def handle_DATA(self, smtp, session, envelope):
        if b"x" * 70 in envelope.original_content:
            return "550 5.7.1 refused by content filter"
        return await super().handle_DATA(smtp, session, envelope)


class ContentFilterServer(SmtpServer):
    """An SmtpServer whose content filter refuses patch 2 of a series."""

    handler_class = _FilteringHandler


class BlockingTlsServer:
    """A one-connection server on Python's blocking ``ssl`` module.

    asyncio (so aiosmtpd) closes the connection on a failed TLS handshake
    without sending the alert; OpenSSL used directly, like a real mail
    server, sends it (``protocol_version`` for a TLS version it refuses).
    This server speaks just enough SMTP to reach the handshake: for
    ``starttls`` a greeting, EHLO (offering STARTTLS) and ``220`` to
    STARTTLS; for ``smtps`` the handshake at once. After a handshake it
    answers EHLO and QUIT only, and refuses anything else with 554. It
    records ``commands`` like :class:`SmtpServer`.
    """

    def __init__(self, cert, mode="starttls", max_tls=None, timeout=10.0):
        self.mode = mode
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ctx.load_cert_chain(cert.chain, cert.key)
        if max_tls is not None:
            self._ctx.maximum_version = {
                "1.2": ssl.TLSVersion.TLSv1_2,
                "1.3": ssl.TLSVersion.TLSv1_3,
            }[max_tls]
        self._timeout = timeout
        self._lock = threading.Lock()
        self._commands = []
        self._raw_bytes = bytearray()
        self.handshake_error = None
        self._done = threading.Event()
        self._sock = None
        self._thread = None

    def start(self):
        import socket

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1)
        self._sock.settimeout(self._timeout)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(self._timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._sock.getsockname()[1]

    @property
    def commands(self):
        with self._lock:
            return list(self._commands)

    @property
    def raw(self):
        with self._lock:
            return bytes(self._raw_bytes)

    def saw(self, verb):
        verb = verb.upper()
        return any(c.split(" ", 1)[0].upper() == verb for c in self.commands)

    def wait_idle(self, timeout=5.0):
        return self._done.wait(timeout)

    def transcript_text(self):
        return "\n".join("C: " + c for c in self.commands)

    def assert_nothing_sent(self, verbs=("AUTH", "MAIL", "RCPT", "DATA", "BDAT")):
        self.wait_idle(5.0)
        for verb in verbs:
            assert not self.saw(verb), "server saw %s:\n%s" % (verb, self.transcript_text())
            pattern = re.compile(rb"(?im)^" + verb.encode() + rb"\b")
            assert not pattern.search(self.raw), "server received a %s line:\n%r" % (verb, self.raw)

    def _readline(self, conn):
        line = bytearray()
        while not line.endswith(b"\n") and len(line) < 4096:
            chunk = conn.recv(1)
            if not chunk:
                break
            line += chunk
        with self._lock:
            self._raw_bytes += line
            if line:
                self._commands.append(bytes(line).rstrip(b"\r\n").decode("utf-8", "surrogateescape"))
        return bytes(line)

    def _serve(self):
        try:
            conn, _ = self._sock.accept()
        except OSError:
            self._done.set()
            return
        conn.settimeout(self._timeout)
        try:
            if self.mode == "starttls":
                conn.sendall(b"220 blocking.test ESMTP\r\n")
                while True:
                    line = self._readline(conn)
                    if not line:
                        return
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb == b"EHLO":
                        conn.sendall(b"250-blocking.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
                    elif verb == b"STARTTLS":
                        conn.sendall(b"220 go ahead\r\n")
                        break
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"530 STARTTLS first\r\n")
            try:
                conn = self._ctx.wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.handshake_error = exc
                return
            if self.mode == "smtps":
                conn.sendall(b"220 blocking.test ESMTP\r\n")
            while True:
                line = self._readline(conn)
                if not line:
                    return
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-blocking.test\r\n250 8BITMIME\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"554 not here\r\n")
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
            self._done.set()
