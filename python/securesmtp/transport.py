"""The replacement for ``mercurial.mail._smtp``.

``_smtp(ui)`` returns ``send(sender, recipients, msg)``. It is called once
per ``hg email`` run (whose one connection serves the whole series), once
per notification by notify, once per batch by bugzilla. Within a command or
an hgweb request (see ``mail_pool``) a connection opened with the same settings
is reused by the next call and closed with QUIT when the scope ends; outside
one, when the send function is released.
"""

import email.header
import email.parser
import email.utils
import smtplib
import threading
import time
import weakref

from mercurial import encoding, error, mail
from mercurial.i18n import _
from mercurial.utils import procutil

from . import _core, credentials, errors, mail_pool, settings
from .text import tobytes, tostr


def smtp(orig, ui):
    """A ``send`` function on a verified, authenticated connection: the
    pooled one for these settings if this scope has one, else a new one."""
    series = _current_series()
    streaming = series is not None and series.sender is None
    try:
        connection = _connection(ui, pooled=not streaming)
    except error.Abort as exc:
        raise exc if streaming else _hint_in_message(exc)
    sender = _Sender(ui, connection, streaming)
    if streaming:
        series.sender = sender
    return sender


class _Connection:
    """A session and how to open it again (after a drop or a 421), shared
    by the senders of one burst."""

    def __init__(self, ui):
        remembered = _Remembered()
        self.session, self.bhost = _open(ui, remembered=remembered)
        self._reopen = lambda: _open(ui, True, remembered)[0]

    def reopen(self):
        self.session = self._reopen()
        return self.session

    def close(self):
        """QUIT and close the socket; harmless when already closed."""
        self.session.quit()


def _connection(ui, pooled):
    """The connection for ``ui``'s settings: reused from this scope's pool
    when ``pooled`` and one is there, else opened (and pooled, or closed
    when its last sender is released)."""
    connections = mail_pool()
    if connections is None:
        return _Connection(ui)
    # A series' own connection is not shared, but ends with the scope.
    key = _settings_key(ui) if pooled else object()
    if key not in connections:
        connections[key] = _Connection(ui)
    return connections[key]


def _settings_key(ui):
    """What decides whether an open connection serves a call: everything
    that reaches ``_core.connect`` and the login."""
    args = settings.connect_args(ui)
    login = tuple(ui.config(b"smtp", k) for k in (b"username", b"auth", b"password-command"))
    return repr(sorted(args.items())), login


def _hint_in_message(exc):
    """``exc`` with its hint folded into the message: callers other than
    ``hg email`` run in hooks (notify), and Mercurial's hook runner prints
    only the message, which would lose the pin line."""
    if not exc.hint:
        return exc
    message = exc.message + b"\n" + exc.hint
    return type(exc)(message)


def _open(ui, quiet=False, remembered=None):
    """A verified, authenticated session, and the host name as bytes.

    ``remembered`` keeps the login that succeeded, for the reconnections of
    the same run: the password is not asked for, fetched from the keyring or
    printed by smtp.password-command again."""
    args = settings.connect_args(ui)
    # Messages and hints name the host as written: the settings they suggest
    # are looked up by that name.
    bhost = settings.host(ui)
    mode = args["security"]
    if not quiet:
        if mode == "smtps":
            ui.note(_(b"(using smtps)\n"))
        ui.note(_(b"sending mail: smtp host %s, port %d\n") % (bhost, args["port"]))
        if mode == "starttls":
            ui.note(_(b"(using starttls)\n"))
        if mode != "none":
            ui.note(_(b"(verifying remote certificate)\n"))
    if ui.debugflag:
        args["transcript"] = lambda line: ui.debug(tobytes(line) + b"\n")
    # Before connecting: a failing password command or a missing token
    # aborts before anything is sent.
    if _hooked(mail._smtp_login):
        login = None
    elif remembered is not None and remembered.login is not None:
        login = remembered.login
    else:
        login = _Login.prepare(ui, args["timeout"])
    try:
        session = _core.connect(**args)
    except _core.SmtpError as exc:
        raise errors.convert(exc, bhost)
    _warn_about_trust(ui, bhost, session.verdict())
    try:
        used = _login(ui, session, bhost, args["port"], login)
    except error.Abort:
        # Nobody will use this session: end it politely now.
        session.quit()
        if remembered is not None and login is not None and login.refused:
            # Refused now (an access token that expired): the next attempt
            # gets a fresh secret from where the first came from.
            remembered.login = None
        raise
    if remembered is not None and used is not None:
        remembered.login = used
    return session, bhost


def _warn_about_trust(ui, bhost, verdict):
    if verdict is None:
        return
    fingerprint = tobytes(verdict["sha256"])
    if verdict["trust"] == "insecure":
        ui.warn(
            _(
                b"warning: connection security to %s is disabled per current "
                b"settings; communication is susceptible to eavesdropping and "
                b"tampering (server certificate fingerprint: %s)\n"
            )
            % (bhost, fingerprint)
        )
    elif verdict["trust"] == "pin" and verdict["legacy_sha1"]:
        # Mercurial's own nudge, word for word.
        ui.warn(
            _(
                b"(SHA-1 fingerprint for %s found in legacy [hostfingerprints] "
                b"section; if you trust this fingerprint, remove the old SHA-1 "
                b"fingerprint from [hostfingerprints] and add the following "
                b"entry to the new [hostsecurity] section: %s:fingerprints=%s)\n"
            )
            % (bhost, bhost, fingerprint)
        )
    elif verdict["trust"] == "commonname":
        ui.warn(
            _(
                b"warning: the certificate of %s has no subject alternative "
                b"name; accepted by its common name because your CA file "
                b"vouches for it\n"
            )
            % bhost
        )


class _LoginAdapter:
    """The smtplib-shaped object ``mail._smtp_login`` hooks expect.

    An extension that wraps ``_smtp_login`` supplies the password its own
    way and calls ``login``; ``SMTPAuthenticationError`` on a refusal is
    what such hooks catch to prompt again.
    """

    def __init__(self, session, mechanisms):
        self._session = session
        self._mechanisms = mechanisms

    def login(self, user, password):
        try:
            self._session.authenticate(
                _secret(user, b"smtp.username"), _secret(password, b"smtp.password"), self._mechanisms
            )
        except _core.SmtpError as exc:
            if exc.kind == _core.Kind.AUTH and exc.code:
                raise smtplib.SMTPAuthenticationError(exc.code, tobytes(exc.server_text or ""))
            raise


def _secret(value, setting):
    """A username or password as text, decoded the way Mercurial decodes it
    (``encoding.strfromlocal``: its local encoding, HGENCODING). Mercurial's
    own decoding error quotes the bytes around the fault; this one quotes
    nothing, since the value may be a password."""
    if isinstance(value, bytes):
        try:
            return encoding.strfromlocal(value)
        except (error.Abort, UnicodeError):
            pass
    else:
        try:
            value.encode("utf-8")
            return value
        except UnicodeError:  # lone surrogates from a hook
            pass
    raise error.Abort(
        _(b"%s is not valid text in the local encoding (%s)")
        % (setting, encoding.encoding),
        hint=_(b"set HGENCODING to the encoding your hgrc is written in"),
    )


def _hooked(hook):
    """Whether another extension took over ``mail._smtp_login``: wrapped
    with ``extensions.wrapfunction`` (which copies ``__module__``, but
    leaves ``_origfunc``) or replaced outright."""
    return getattr(hook, "_origfunc", None) is not None or (
        getattr(hook, "__module__", None) != "mercurial.mail"
    )


# How many passwords an interactive user may try after a refusal.
_ATTEMPTS = 3


class _Remembered:
    """The login that succeeded in this run, in memory only, for reconnecting."""

    def __init__(self):
        self.login = None


class _Login:
    """Who logs in, with which mechanisms, and the secret known before
    connecting (``smtp.password`` or ``smtp.password-command``, or the one
    that succeeded earlier in the run: ``remembered``)."""

    def __init__(self, username, mechanisms, secret, source):
        self.username = username
        self.mechanisms = mechanisms
        self.secret = secret
        self.source = source
        # The server refused the secret (not a network failure during AUTH).
        self.refused = False

    @classmethod
    def prepare(cls, ui, timeout):
        names = credentials.mechanisms(ui)
        username = ui.config(b"smtp", b"username")
        if credentials.external_only(names):
            return cls(username or b"", names, "", "external")
        if not username:
            for setting in (b"auth", b"password-command"):
                if ui.config(b"smtp", setting):
                    # Meant to log in: sending without AUTH is not what was asked.
                    raise error.ConfigError(
                        _(b"smtp.%s is set but smtp.username is not") % setting,
                        hint=_(b"set smtp.username to the account to log in as"),
                    )
            return None
        password = ui.config(b"smtp", b"password")
        if password:
            return cls(username, names, _secret(password, b"smtp.password"), "config")
        secret = credentials.from_command(ui, timeout)
        if secret is not None:
            return cls(username, names, secret, "command")
        if credentials.oauth_only(names):
            raise error.Abort(
                _(b"smtp.auth = %s needs an OAuth2 access token")
                % b", ".join(tobytes(n.lower()) for n in names),
                hint=_(
                    b"set smtp.password-command to a command that prints a "
                    b"fresh access token (for example pizauth, oama or "
                    b"mutt_oauth2.py)"
                ),
            )
        return cls(username, names, None, None)


def _login(ui, session, bhost, port, login):
    """Authenticate as configured; the login that succeeded, if any."""
    username = login.username if login else ui.config(b"smtp", b"username")
    try:
        if login is None:
            hook = mail._smtp_login
            if _hooked(hook):
                hook(ui, _LoginAdapter(session, credentials.mechanisms(ui)), bhost, port)
            return None
        return _authenticate(ui, session, port, login)
    except smtplib.SMTPAuthenticationError as exc:
        raise error.Abort(
            _(b"authentication as %s failed: %d %s")
            % (username or b"", exc.smtp_code, tobytes(exc.smtp_error)),
            hint=_(b"check smtp.username and smtp.password"),
        )
    except _core.SmtpError as exc:
        prefix = b""
        if exc.stage == _core.Stage.AUTH:
            prefix = _(b"authentication as %s failed: ") % (username or b"")
        raise errors.convert(exc, bhost, prefix)


def _authenticate(ui, session, port, login):
    """Log in, asking again after a refused password when a person is there
    to answer; save a typed password in mercurial_keyring's store. Returns
    the login that succeeded."""
    username = login.username
    secret, source = login.secret, login.source
    store = credentials.keyring_store() if secret is None else None
    khost = credentials.keyring_host(ui)
    stored = None
    if store is not None:
        stored = store.get_smtp_password(khost, port, username)
        if stored:
            secret, source = tostr(stored), "keyring"
    for attempt in range(1, _ATTEMPTS + 1):
        if secret is None:
            secret, source = _prompt(ui, username, store), "prompt"
        ui.note(_(b"(authenticating to mail server as %s)\n") % username)
        try:
            used = session.authenticate(_secret(username, b"smtp.username"), secret, login.mechanisms)
        except _core.SmtpError as exc:
            retry = (
                exc.kind == _core.Kind.AUTH
                and exc.code == 535
                and not errors.needs_oauth(exc)
                and source in ("keyring", "prompt")
                and ui.interactive()
                and attempt < _ATTEMPTS
            )
            if not retry:
                if exc.kind == _core.Kind.AUTH:
                    login.refused = True
                if exc.kind == _core.Kind.AUTH and source == "keyring" and not errors.needs_oauth(exc):
                    raise errors.convert(
                        exc,
                        b"",
                        _(b"authentication as %s failed with the password "
                          b"stored in the keyring: ") % username,
                        hint=_(
                            b"run hg email interactively to enter the right "
                            b"password (it is then saved in the keyring)"
                        ),
                    )
                raise
            ui.warn(
                _(b"SMTP login failed: %d %s\n") % (exc.code, tobytes(exc.server_text or ""))
            )
            secret = None
            continue
        ui.note(_(b"(authenticated with %s)\n") % tobytes(used))
        break
    if store is not None and source == "prompt" and secret != tostr(stored or b""):
        store.set_smtp_password(khost, port, username, secret)
        ui.note(_(b"(password saved in the keyring)\n"))
    return _Login(username, login.mechanisms, secret, "remembered")


def _prompt(ui, username, store):
    if not ui.interactive():
        if store is not None:
            raise error.Abort(
                _(b"no password for %s in the keyring and this session is "
                  b"not interactive") % username,
                hint=_(b"run hg email interactively once to enter it (it is "
                       b"then saved), or set smtp.password-command"),
            )
        raise error.Abort(
            _(
                b"smtp.username is set but there is no password and "
                b"this session is not interactive"
            ),
            hint=_(
                b"set smtp.password or smtp.password-command, enable "
                b"mercurial_keyring, or run interactively to be prompted"
            ),
        )
    password = ui.getpass()
    if password is None:
        raise error.Abort(_(b"no password given for %s") % username)
    return _secret(password, b"smtp.password")


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
    """The Subject header of a message, decoded, for failure reports."""
    value = headers.get("Subject")
    if value is None:
        return b"(no subject)"
    try:
        text = str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError):
        text = str(value)
    return " ".join(text.split()).encode("utf-8", "replace")


# Reconnecting after a dropped connection or a 421: attempts, and the pause
# before each (seconds).
RESUME_BACKOFF = (0.25, 1.0, 2.5)


def _resumable(exc):
    """A dropped connection, one gone silent (a NAT or network change drops
    it without a reset) or the server closing it (421): worth a new
    connection. Garbage (a broken or hostile server) or a refusal is not."""
    return exc.kind in (_core.Kind.IO, _core.Kind.TIMEOUT) or (
        exc.kind == _core.Kind.REPLY and exc.code == 421
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


def _current_series():
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
        # None while in flight; then "accepted", "refused", "not-sent" or
        # "unknown" (sent, verdict lost).
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


class _Sender:
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

    def __init__(self, ui, connection, streaming=False):
        self._ui = ui
        self._connection = connection
        self._bhost = connection.bhost
        self._streaming = streaming
        if mail_pool() is None:
            # No scope will close it: the last sender released does.
            weakref.finalize(self, connection.close)
        self._messages = []
        self._failure = None
        self._stopped = None
        # Reconnections so far, for the whole run.
        self._attempts = 0
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
            m.status = "not-sent"
            return {}
        self._submit([m])
        if not self._streaming:
            self._confirm()
            return self._verdict_now(m)
        if m.number == 0:
            self._confirm()
            if m.status == "refused" and m.error is not None and m.error.stage in (_core.Stage.MAIL, _core.Stage.RCPT):
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
                m.status = "not-sent"
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
            m = self._messages[o["id"]]
            m.status = o["status"]
            if m.status == "accepted":
                m.data = None
                m.refused = o["refused"]
                for addr, code, text in m.refused:
                    self._ui.warn(
                        _(b"warning: %s refused recipient %s for %s: %d %s\n")
                        % (self._bhost, tobytes(addr), m.subject, code, tobytes(text))
                    )
            elif m.status == "refused":
                m.error = o["error"]
                m.data = None

    def _resume(self):
        while self._failure is not None and self._security is None and _resumable(self._failure):
            again = [m for m in self._messages if m.status == "not-sent" and m.data is not None]
            if not again or self._attempts >= len(RESUME_BACKOFF):
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
            try:
                self._connection.reopen()
            except error.SecurityError as e:
                self._security = e
                return
            except error.Abort as e:
                self._ui.warn(_(b"%s: %s\n") % (self._bhost, e.message))
                continue
            self._failure = None
            for m in again:
                m.status = None
            self._write(again)
            self._collect()

    # -- reporting

    def _verdict_now(self, m):
        """The result for a caller that wants a verdict per message."""
        if m.status == "accepted":
            return {addr: (code, tobytes(text)) for addr, code, text in m.refused}
        raise _hint_in_message(self.report())

    def report(self):
        """The abort for the messages not delivered, or None."""
        failed = [m for m in self._messages if m.status != "accepted"]
        if not failed:
            return None
        accepted = [m for m in self._messages if m.status == "accepted"]
        first = failed[0]
        exc = first.error or self._failure
        security = self._security
        lines = []
        if len(failed) == 1 and exc is not None and security is None:
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
        if accepted:
            lines.append(_(b"the server accepted %d other message(s):\n") % len(accepted))
            lines.extend(b"  %s\n" % m.subject for m in accepted)
        for m in failed:
            if m.status == "refused":
                if len(failed) == 1:
                    lines.append(_(b"message not sent: %s\n") % m.subject)
                else:
                    lines.append(_(b"message not sent: %s: %s\n") % (m.subject, tobytes(str(m.error))))
            elif m.status == "unknown":
                lines.append(
                    _(
                        b"possibly delivered: %s (the connection was lost before "
                        b"the server's verdict; check before sending it again)\n"
                    )
                    % m.subject
                )
            else:
                lines.append(_(b"message not sent: %s\n") % m.subject)
        again = self._command_line([m for m in failed if m.status != "unknown"])
        if again:
            lines.append(_(b"to send the messages not sent: %s\n") % again)
        message += b"".join(lines).rstrip(b"\n")
        if security is not None:
            return error.SecurityError(message, hint=security.hint)
        hint = errors._hint(exc, self._bhost) if exc is not None else None
        if exc is not None and exc.kind in errors._SECURITY:
            return error.SecurityError(message, hint=hint)
        return error.Abort(message, hint=hint)

    def _command_line(self, messages):
        series = _current_series()
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
        if first.status == "accepted" and first.message_id:
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
