"""The replacement for ``mercurial.mail._smtp``.

``_smtp(ui)`` is called once per ``hg email`` run, on the first message, and
returns ``send(sender, recipients, msg)``; the one connection serves the whole
series and is closed with QUIT when the command ends.
"""

import email.header
import email.parser
import smtplib

from mercurial import encoding, error, mail
from mercurial.i18n import _

from . import _core, credentials, errors, settings
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
    # Before connecting: a failing password command or a missing token
    # aborts before anything is sent.
    login = None if _hooked(mail._smtp_login) else _Login.prepare(ui, args["timeout"])
    try:
        session = _core.connect(**args)
    except _core.SmtpError as exc:
        raise errors.convert(exc, bhost)
    # Registered at once: a failure below must still end the session politely.
    ui.atexit(session.quit)
    _warn_about_trust(ui, bhost, session.verdict())
    _login(ui, session, bhost, args["port"], login)
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


class _Login:
    """Who logs in, with which mechanisms, and the secret known before
    connecting (``smtp.password`` or ``smtp.password-command``)."""

    def __init__(self, username, mechanisms, secret, source):
        self.username = username
        self.mechanisms = mechanisms
        self.secret = secret
        self.source = source

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
    username = login.username if login else ui.config(b"smtp", b"username")
    try:
        if login is None:
            hook = mail._smtp_login
            if _hooked(hook):
                hook(ui, _LoginAdapter(session, credentials.mechanisms(ui)), bhost, port)
            return
        _authenticate(ui, session, port, login)
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
    to answer; save a typed password in mercurial_keyring's store."""
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
