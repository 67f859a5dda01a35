"""The replacement for ``mercurial.mail._smtp`` (``smtp``), and a series of
messages over one connection: what ``mail.connect`` returns (``Sender``),
each message's verdict, reconnecting after a drop or a 421 to send again
what the server cannot have accepted, and the report of what was not
delivered with the ``hg email`` line that sends it.

``smtp(orig, ui, pool)`` is called once per ``hg email`` run (whose one
connection serves the whole series), once per notification by notify, once
per batch by bugzilla. ``pool`` is the connections of the command or hgweb
request under way (``mail_pool`` in ``__init__``), or None outside one: a
connection opened with the same settings is reused by the next call and
closed with QUIT when the scope ends; outside one, when the send function is
released.

Opening a verified session: ``connection.py``; the messages and hints:
``errors.py``.
"""

import email.header
import email.parser
import email.utils
import threading
import time
import weakref

from mercurial import error
from mercurial.i18n import _
from mercurial.utils import procutil

from . import _core, connection, errors, reply
from .text import tobytes, tostr


def smtp(orig, ui, pool):
    """A ``send`` function on a verified, authenticated connection: the
    pooled one for these settings if ``pool`` has one, else a new one."""
    running = current_series()
    streaming = running is not None and running.sender is None
    try:
        conn = connection.for_ui(ui, pool, pooled=not streaming)
    except error.Abort as exc:
        raise exc if streaming else errors.hint_in_message(exc)
    sender = Sender(ui, conn, streaming, scoped=pool is not None)
    if streaming:
        running.sender = sender
    return sender


def _headers(msg):
    """The header block of a message, parsed, without copying its body."""
    end = min((i for i in (msg.find(b"\n\n"), msg.find(b"\r\n\r\n")) if i >= 0), default=len(msg))
    head = msg[:end].replace(b"\r\n", b"\n")
    return email.parser.BytesHeaderParser().parsebytes(head + b"\n\n")


def _header(headers, name):
    """A header's raw value as bytes, or None."""
    value = headers.get(name)
    return None if value is None else tobytes(" ".join(str(value).split()))


def _subject(headers):
    """The Subject header of a message, decoded, for failure reports: RFC
    2047 encoded words in their charset, raw 8-bit bytes as UTF-8 (or
    Latin-1 when they are not UTF-8), never replacement characters."""
    value = headers.get("Subject")
    if value is None:
        return b"(no subject)"
    try:
        parts = email.header.decode_header(value)
    except (LookupError, ValueError):
        parts = [(str(value), None)]
    text = "".join(_decoded(part, charset) for part, charset in parts)
    return " ".join(text.split()).encode("utf-8", "replace")


def _decoded(part, charset):
    if isinstance(part, str):
        return part
    if charset in (None, "unknown-8bit"):
        try:
            return part.decode("utf-8")
        except UnicodeDecodeError:
            return part.decode("latin-1")
    try:
        return part.decode(charset, "replace")
    except LookupError:
        return part.decode("latin-1")


# Reconnecting after a dropped connection or a 421: attempts, and the pause
# before each (seconds).
RESUME_BACKOFF = (0.25, 1.0, 2.5)

# Less time than this left for reconnecting: not worth another attempt.
_SHORTEST_WAIT = 0.5


def _resumable(exc):
    """A dropped connection, one gone silent (a NAT or network change drops
    it without a reset) or the server closing it (421): worth a new
    connection. Garbage (a broken or hostile server) or a refusal is not."""
    return exc.kind in (_core.Kind.IO, _core.Kind.TIMEOUT) or (
        exc.kind == _core.Kind.REPLY and exc.code == reply.CLOSING
    )


# Command-line options of `hg email` that name the revisions to send: the
# line printed for what was not sent replaces them.
_REVISION_OPTIONS = {b"rev", b"outgoing", b"bundle"}

# Options about the series' first message (its introduction, or its
# subject): a line that continues a series whose first message is out
# leaves them out.
_FIRST_MESSAGE_OPTIONS = {b"intro", b"desc", b"subject", b"in_reply_to"}

# The `hg email` run in progress on this thread (set by the command
# wrapper), whose sender streams and is confirmed when the command ends.
_running = threading.local()


def current_series():
    return getattr(_running, "series", None)


class _Message:
    """One message handed over, and what became of it."""

    def __init__(self, number, sender, recipients, data):
        self.number = number
        self.sender = sender
        self.recipients = recipients
        self.data = data
        headers = _headers(data)
        self.subject = _subject(headers)
        self.node = _header(headers, "X-Mercurial-Node")
        self.message_id = _header(headers, "Message-Id")
        # None while in flight; then a _core.Status: ACCEPTED, REFUSED,
        # NOT_SENT or UNKNOWN (sent, verdict lost).
        self.status = None
        self.error = None
        self.refused = []


def _address(value):
    """The envelope address in ``value``, as smtplib's ``quoteaddr`` takes
    it: patchbomb passes recipients as written on the command line, display
    names (``Bob <bob@example.org>``) included."""
    text = tostr(value)
    _name, address = email.utils.parseaddr(text)
    return address or text.strip()


class Sender:
    """The ``send(sender, recipients, msg)`` callable ``mail.connect`` returns.

    Accepts what every caller passes: patchbomb (str, list, bytes), bugzilla
    (str message), notify (single str recipient).

    Inside ``hg email`` (``streaming``) each message is handed to the
    session, which writes it and returns without waiting for its verdict;
    the first message is confirmed before the rest stream, so a refused
    sender or recipient stops the series before it is on the wire. The
    command wrapper calls :meth:`finish` when patchbomb is done. Other
    callers get a verdict per call.

    When the connection drops or the server says 421, the sender reconnects
    (verified and authenticated again, a few times with a pause) and sends
    again only the messages the server cannot have accepted.
    """

    def __init__(self, ui, connection, streaming=False, scoped=False):
        self._ui = ui
        self._connection = connection
        self._bhost = connection.bhost
        self._streaming = streaming
        if not scoped:
            # No scope will close it: the last sender released does.
            weakref.finalize(self, connection.close)
        self._messages = []
        self._failure = None
        self._stopped = None
        # Reconnections so far, for the whole run.
        self._attempts = 0
        # Reconnecting stopped because the attempts had used up their time.
        self._out_of_time = False
        # The certificate (or TLS) check that failed on a reconnection: no
        # further attempt, and the report ends with it.
        self._security = None

    def __call__(self, sender, recipients, msg):
        if isinstance(recipients, (str, bytes)):
            recipients = [recipients]
        recipients = [_address(r) for r in recipients]
        if isinstance(msg, str):
            msg = msg.encode("utf-8")
        m = _Message(len(self._messages), _address(sender), recipients, msg)
        self._messages.append(m)
        if self._stopped is not None:
            m.status = _core.Status.NOT_SENT
            return {}
        self._submit([m])
        if not self._streaming:
            self._confirm()
            return self._verdict_now(m)
        if m.number == 0:
            self._confirm()
            if m.status == _core.Status.REFUSED and m.error is not None and (
                m.error.stage in (_core.Stage.MAIL, _core.Stage.RCPT) or m.error.kind == _core.Kind.INPUT
            ):
                # The rest share the sender and the recipients.
                self._stopped = m
                raise self.report()
        return {}

    def finish(self):
        """Confirm every message, resuming after a lost connection; warn
        about refused recipients. Returns the abort for what was not
        delivered, or None."""
        self._confirm()
        return self.report()

    # -- driving the session

    def _submit(self, batch):
        self._write(batch)
        if self._failure is not None:
            self._confirm()

    def _write(self, batch):
        """Hand each message to the session; once one fails, the rest of
        the batch is not sent."""
        for m in batch:
            if self._failure is not None:
                m.status = _core.Status.NOT_SENT
                continue
            try:
                self._connection.session.submit(m.number, m.sender, m.recipients, m.data)
            except _core.SmtpError as exc:
                self._failure = exc

    def _confirm(self):
        self._collect()
        self._resume()

    def _collect(self):
        outcomes, failure = self._connection.session.confirm()
        if failure is not None and self._failure is None:
            self._failure = failure
        for o in outcomes:
            m = self._messages[o.id]
            m.status = o.status
            if m.status == _core.Status.ACCEPTED:
                m.data = None
                m.refused = o.refused
                for addr, code, text in m.refused:
                    self._ui.warn(errors.refused_recipient(self._bhost, addr, code, text, m.subject))
            elif m.status == _core.Status.REFUSED:
                m.error = o.error
                m.data = None

    def _resume(self):
        while self._failure is not None and self._security is None and _resumable(self._failure):
            again = [m for m in self._messages if m.status == _core.Status.NOT_SENT and m.data is not None]
            if not again or self._attempts >= len(RESUME_BACKOFF):
                return
            if self._connection.reconnect_left < _SHORTEST_WAIT:
                self._out_of_time = True
                return
            pause = RESUME_BACKOFF[self._attempts]
            self._attempts += 1
            exc = self._failure
            self._ui.warn(
                _(b"%s: %s; reconnecting to send %d message(s) again\n")
                % (self._bhost, tobytes(str(exc)), len(again))
            )
            # A connection gone silent is still open: close it, so nothing
            # more of it can reach the server.
            self._connection.close()
            time.sleep(pause)
            started = time.monotonic()
            try:
                self._connection.reopen(self._connection.reconnect_left)
            except error.SecurityError as e:
                self._security = e
                return
            except error.Abort as e:
                self._ui.warn(_(b"%s: %s\n") % (self._bhost, e.message))
                continue
            finally:
                self._connection.reconnect_left -= time.monotonic() - started
            self._failure = None
            for m in again:
                m.status = None
            self._write(again)
            self._collect()

    # -- reporting

    def _verdict_now(self, m):
        """The result for a caller that wants a verdict per message."""
        if m.status == _core.Status.ACCEPTED:
            return {addr: (code, tobytes(text)) for addr, code, text in m.refused}
        raise errors.hint_in_message(self.report())

    def report(self):
        """The abort for the messages not delivered, or None."""
        failed = [m for m in self._messages if m.status != _core.Status.ACCEPTED]
        if not failed:
            return None
        accepted = [m for m in self._messages if m.status == _core.Status.ACCEPTED]
        first = failed[0]
        exc = first.error or self._failure
        security = self._security
        lines = []
        named = None
        if len(failed) == 1 and first.status == _core.Status.REFUSED and first.error is not None and security is None:
            # The refusal and its patch on the headline.
            named = first
            message = errors.refusal(first.subject, first.error)
        elif len(failed) == 1 and exc is not None and security is None:
            message = tobytes(str(exc))
        else:
            message = _(b"%d of %d messages were not delivered") % (len(failed), len(self._messages))
            if security is not None:
                # Why the rest was not sent goes first; nothing went over
                # the connection that failed the check.
                message += _(b"\nreconnecting to %s failed: %s") % (self._bhost, security.message)
            elif self._failure is not None:
                # What ended the last connection (no warning said it when
                # it was not worth reconnecting).
                message += b": " + tobytes(str(self._failure))
        lines.append(b"\n")
        if self._attempts:
            lines.append(self._reconnections())
        if accepted:
            lines.append(_(b"the server accepted %d other message(s):\n") % len(accepted))
            lines.extend(b"  %s\n" % m.subject for m in accepted)
        for m in failed:
            if m is named:
                continue
            if m.status == _core.Status.REFUSED and m.error is not None:
                lines.append(errors.refusal(m.subject, m.error) + b"\n")
            elif m.status == _core.Status.REFUSED:
                lines.append(_(b"message not sent: %s\n") % m.subject)
            elif m.status == _core.Status.UNKNOWN:
                lines.append(
                    _(
                        b"possibly delivered: %s (the connection was lost before "
                        b"the server's verdict; check before sending it again)\n"
                    )
                    % m.subject
                )
            else:
                lines.append(_(b"message not sent: %s\n") % m.subject)
        again = self._command_line([m for m in failed if m.status != _core.Status.UNKNOWN])
        if again:
            lines.append(_(b"to send the messages not sent: %s\n") % again)
        message += b"".join(lines).rstrip(b"\n")
        if security is not None:
            return error.SecurityError(message, hint=security.hint)
        return errors.for_message(message, exc, self._bhost)

    def _reconnections(self):
        """How many reconnections were tried, and why they stopped when it
        was for lack of time."""
        line = _(b"reconnection attempts: %d") % self._attempts
        if self._out_of_time:
            line += _(b" (stopped: together they had waited smtp.timeout, %s seconds)") % (
                tobytes("%g" % self._connection.timeout)
            )
        return line + b"\n"

    def _command_line(self, messages):
        series = current_series()
        if series is None or series.sender is not self or not messages:
            return None
        if self._stopped is not None:
            # The series stopped at its first message: the rest were never
            # handed over. The same command sends them all.
            return b" ".join(procutil.shellquote(w) for w in [b"hg", b"email"] + series.options(True))
        nodes = [m.node for m in messages if m.node]
        if not nodes:
            return None
        words = [b"hg", b"email"]
        first = self._messages[0]
        if first.status == _core.Status.ACCEPTED and first.message_id:
            # Thread what is sent again under the series already out, with
            # no second introduction (patchbomb.intro=auto would ask for
            # one when two or more patches remain).
            words += [b"--config", b"patchbomb.intro=never"]
            words += series.options(without=_FIRST_MESSAGE_OPTIONS)
            words += [b"--in-reply-to", first.message_id]
        else:
            words += series.options()
        for node in nodes:
            words += [b"-r", node[:12]]
        return b" ".join(procutil.shellquote(w) for w in words)


class Series:
    """One ``hg email`` run: its options, and the streaming sender that
    patchbomb's ``mail.connect`` gets."""

    def __init__(self, ui, revs, opts, table):
        self.ui = ui
        self.revs = revs
        self.opts = opts
        self.table = table
        self.sender = None

    def options(self, with_revisions=False, without=()):
        """The command's options as given, without those naming revisions
        unless ``with_revisions``, and without those in ``without``."""
        words = []
        for entry in self.table:
            name = entry[1]
            key = name.replace(b"-", b"_")
            if (key in _REVISION_OPTIONS and not with_revisions) or key in without:
                continue
            value = self.opts.get(key)
            default = entry[2]
            if value is None or value == default or value in ([], b"", False):
                continue
            flag = b"--" + name
            if value is True:
                words.append(flag)
            elif isinstance(value, list):
                for v in value:
                    words += [flag, v]
            else:
                words += [flag, value if isinstance(value, bytes) else tobytes(str(value))]
        if with_revisions:
            words += [tobytes(r) for r in self.revs]
        return words


def run_series(orig, table, ui, repo, *revs, **opts):
    """``hg email`` with its messages streamed and confirmed at the end."""
    if not ui.configbool(b"smtp", b"streaming"):
        return orig(ui, repo, *revs, **opts)
    bopts = {tobytes(k): v for k, v in opts.items()}
    series = Series(ui, revs, bopts, table)
    _running.series = series
    try:
        ret = orig(ui, repo, *revs, **opts)
        sender = series.sender
        if sender is not None:
            failure = sender.finish()
            if failure is not None:
                raise failure
        return ret
    finally:
        _running.series = None
