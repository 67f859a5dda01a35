"""The replacement for ``mercurial.mail._smtp``.

``_smtp(ui)`` is called once per ``hg email`` run, on the first message, and
returns ``send(sender, recipients, msg)``; the one connection serves the whole
series and is closed with QUIT when the command ends.
"""

import email.header
import email.parser
import smtplib

from mercurial import error, mail
from mercurial.i18n import _

from . import _core, errors, settings
from .text import tobytes, tostr


def smtp(orig, ui):
    """Connect, verify, authenticate; return the ``send`` function."""
    args = settings.connect_args(ui)
    # Messages and hints name the host as written: the settings they suggest
    # are looked up by that name.
    bhost = settings.host(ui)
    mode = args["security"]
    if mode == "smtps":
        ui.note(_(b"(using smtps)\n"))
    ui.note(_(b"sending mail: smtp host %s, port %d\n") % (bhost, args["port"]))
    if mode == "starttls":
        ui.note(_(b"(using starttls)\n"))
    if mode != "none":
        ui.note(_(b"(verifying remote certificate)\n"))
    if ui.debugflag:
        args["transcript"] = lambda line: ui.debug(tobytes(line) + b"\n")
    try:
        session = _core.connect(**args)
    except _core.SmtpError as exc:
        raise errors.convert(exc, bhost)
    # Registered at once: a failure below must still end the session politely.
    ui.atexit(session.quit)
    _warn_about_trust(ui, bhost, session.verdict())
    _login(ui, session, bhost, args["port"])
    return _Sender(ui, session, bhost)


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

    mercurial_keyring wraps ``_smtp_login`` to supply the password and
    re-prompts on ``SMTPAuthenticationError``; this keeps that working.
    """

    def __init__(self, session):
        self._session = session

    def login(self, user, password):
        try:
            self._session.authenticate(tostr(user), tostr(password))
        except _core.SmtpError as exc:
            if exc.kind == "auth":
                raise smtplib.SMTPAuthenticationError(exc.code, tobytes(exc.server_text or ""))
            raise


def _login(ui, session, bhost, port):
    hook = mail._smtp_login
    # A wrapped hook (a keyring extension) supplies credentials its own way.
    wrapped = getattr(hook, "__module__", None) != "mercurial.mail"
    username = ui.config(b"smtp", b"username")
    try:
        if wrapped:
            hook(ui, _LoginAdapter(session), bhost, port)
            return
        if not username:
            return
        password = ui.config(b"smtp", b"password")
        if not password:
            if not ui.interactive():
                raise error.Abort(
                    _(
                        b"smtp.username is set but there is no password and "
                        b"this session is not interactive"
                    ),
                    hint=_(b"set smtp.password, or run interactively to be prompted"),
                )
            password = ui.getpass()
            if password is None:
                raise error.Abort(_(b"no password given for %s") % username)
        ui.note(_(b"(authenticating to mail server as %s)\n") % username)
        session.authenticate(tostr(username), tostr(password))
    except smtplib.SMTPAuthenticationError as exc:
        raise error.Abort(
            _(b"authentication as %s failed: %d %s") % (username or b"", exc.smtp_code, tobytes(exc.smtp_error)),
            hint=_(b"check smtp.username and smtp.password"),
        )
    except _core.SmtpError as exc:
        prefix = b""
        if exc.kind == "auth":
            prefix = _(b"authentication as %s failed: ") % (username or b"")
        raise errors.convert(exc, bhost, prefix)


def _subject(msg):
    """The Subject header of a message, decoded, for failure reports."""
    head = msg.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    parsed = email.parser.BytesHeaderParser().parsebytes(head + b"\n\n")
    value = parsed.get("Subject")
    if value is None:
        return b"(no subject)"
    try:
        text = str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError):
        text = str(value)
    return " ".join(text.split()).encode("utf-8", "replace")


class _Sender:
    """The ``send(sender, recipients, msg)`` callable ``mail.connect`` returns.

    Accepts what every caller passes: patchbomb (str, list, bytes), bugzilla
    (str message), notify (single str recipient).
    """

    def __init__(self, ui, session, bhost):
        self._ui = ui
        self._session = session
        self._bhost = bhost
        self._accepted = []

    def __call__(self, sender, recipients, msg):
        if isinstance(recipients, (str, bytes)):
            recipients = [recipients]
        recipients = [tostr(r) for r in recipients]
        if isinstance(msg, str):
            msg = msg.encode("utf-8")
        subject = _subject(msg)
        try:
            result = self._session.send(tostr(sender), recipients, msg)
        except _core.SmtpError as exc:
            raise errors.convert(exc, self._bhost, suffix=self._progress(subject))
        for addr, code, text in result["refused"]:
            self._ui.warn(
                _(b"warning: %s refused recipient %s: %d %s\n")
                % (self._bhost, tobytes(addr), code, tobytes(text))
            )
        self._accepted.append(subject)
        return {addr: (code, tobytes(text)) for addr, code, text in result["refused"]}

    def _progress(self, subject):
        """What was and was not delivered, for the abort message."""
        done = self._accepted
        lines = [b"\n"]
        if done:
            lines.append(
                _(b"the server accepted %d earlier message(s):\n") % len(done)
            )
            lines.extend(b"  %s\n" % s for s in done)
        lines.append(_(b"message not sent: %s") % subject)
        return b"".join(lines)
