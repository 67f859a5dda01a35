"""Logging in: the secret from smtp.password, smtp.password-command,
mercurial_keyring or a prompt (``credentials.py`` reads the first three),
AUTH with the mechanisms allowed, a second try after a refused password when
a person is there to type it, and the ``mail._smtp_login`` hook other
extensions wrap.
"""

import smtplib

from mercurial import encoding, error, mail
from mercurial.i18n import _

from . import _core, credentials, errors, reply
from .text import tobytes, tostr


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
                decoded(user, b"smtp.username"), decoded(password, b"smtp.password"), self._mechanisms
            )
        except _core.SmtpError as exc:
            # A refusal of the secret is what such hooks catch to ask again;
            # a temporary failure (4xx) is not one.
            if exc.kind == _core.Kind.AUTH and exc.code and not reply.transient(exc.code):
                raise smtplib.SMTPAuthenticationError(exc.code, tobytes(exc.server_text or ""))
            raise


def decoded(value, setting):
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


def hooked(hook):
    """Whether another extension took over ``mail._smtp_login``: wrapped
    with ``extensions.wrapfunction`` (which copies ``__module__``, but
    leaves ``_origfunc``) or replaced outright."""
    return getattr(hook, "_origfunc", None) is not None or (
        getattr(hook, "__module__", None) != "mercurial.mail"
    )


# How many passwords an interactive user may try after a refusal.
_ATTEMPTS = 3


class Remembered:
    """The login that succeeded in this run, in memory only, for reconnecting."""

    def __init__(self):
        self.login = None


class Login:
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
            return cls(username, names, decoded(password, b"smtp.password"), "config")
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


def log_in(ui, session, bhost, port, login):
    """Authenticate as configured; the login that succeeded, if any."""
    username = login.username if login else ui.config(b"smtp", b"username")
    try:
        if login is None:
            hook = mail._smtp_login
            if hooked(hook):
                hook(ui, _LoginAdapter(session, credentials.mechanisms(ui)), bhost, port)
            return None
        return _authenticate(ui, session, port, login)
    except smtplib.SMTPAuthenticationError as exc:
        raise errors.hook_login_failed(username, exc.smtp_code, exc.smtp_error)
    except _core.SmtpError as exc:
        raise errors.login_failed(exc, bhost, username)


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
    refused = None
    for attempt in range(1, _ATTEMPTS + 1):
        if secret is None:
            secret, source = _prompt(ui, username, store, refused), "prompt"
        ui.note(_(b"(authenticating to mail server as %s)\n") % username)
        try:
            used = session.authenticate(decoded(username, b"smtp.username"), secret, login.mechanisms)
        except _core.SmtpError as exc:
            retry = (
                exc.kind == _core.Kind.AUTH
                and exc.code == reply.AUTH_INVALID
                and not errors.needs_oauth(exc)
                and source in ("keyring", "prompt")
                and ui.interactive()
                and attempt < _ATTEMPTS
            )
            if not retry:
                # A temporary failure says nothing about the secret: keep it
                # for the next attempt, and do not blame the keyring.
                if exc.kind == _core.Kind.AUTH and not reply.transient(exc.code):
                    login.refused = True
                if (
                    exc.kind == _core.Kind.AUTH
                    and source == "keyring"
                    and not errors.needs_oauth(exc)
                    and not reply.transient(exc.code)
                ):
                    raise errors.keyring_password_refused(exc, username)
                raise
            refused = errors.login_retry_line(exc.code, exc.server_text)
            ui.warn(_(b"SMTP login failed: %s\n") % refused)
            secret = None
            continue
        ui.note(_(b"(authenticated with %s)\n") % tobytes(used))
        break
    if store is not None and source == "prompt" and secret != tostr(stored or b""):
        store.set_smtp_password(khost, port, username, secret)
        ui.note(_(b"(password saved in the keyring)\n"))
    return Login(username, login.mechanisms, secret, "remembered")


def _prompt(ui, username, store, refused=None):
    """The password typed at the prompt. After a refusal the question itself
    says why it is asked again: a GUI (TortoiseHg) shows only the question,
    not the line written before it."""
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
    if refused is None:
        password = ui.getpass()
    else:
        password = ui.getpass(_(b"password (the server refused the last one: %s): ") % refused)
    if password is None:
        raise error.Abort(_(b"no password given for %s") % username)
    return decoded(password, b"smtp.password")


