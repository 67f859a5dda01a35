"""Every message the user sees about a failure, and its hint: the one place
that turns a core ``SmtpError`` (its kind, stage, reply code, setting and
the server's text) into a Mercurial error.

Verification and channel-security failures are ``error.SecurityError`` (exit
255, or 150 with ``ui.detailed-exit-code``), like Mercurial's own; everything
else is ``error.Abort``. Each carries a hint naming the setting to change,
chosen from tables keyed by the error's kind and by the server's reply.
"""

from mercurial import error
from mercurial.i18n import _

from . import reply
from ._core import Kind, Setting, Stage
from .text import tobytes

# Failures of the channel's security: the server was refused before any
# credential or message went out.
_SECURITY = {
    Kind.VERIFY,
    Kind.TLS_VERSION,
    Kind.TLS,
    Kind.START_TLS,
    Kind.INJECTION,
    Kind.CLEARTEXT_AUTH,
    Kind.AUTH_SERVER,
}

_OAUTH_HINT = _(
    b"this account needs OAuth2: set smtp.auth = xoauth2 and set "
    b"smtp.password-command to a command that prints an access token "
    b"(for example pizauth, oama or mutt_oauth2.py); see hg help securesmtp"
)

_GOOGLE_HINT = _(
    b"check smtp.username and the password; if they are right, the "
    b"account may need an app password, or OAuth2: set smtp.auth = "
    b"xoauth2 and smtp.password-command to a command that prints an "
    b"access token"
)

_MICROSOFT_HINT = _(
    b"check smtp.username and the password; if they are right, the "
    b"account may take only OAuth2: set smtp.auth = xoauth2 and "
    b"smtp.password-command to a command that prints an access token"
)

_PLAIN_AUTH_HINT = _(b"check smtp.username and the password (smtp.password or smtp.password-command)")

# Refused logins whose reply says which provider answered, whatever
# smtp.host is called (a company's own submission name often points at
# Microsoft 365 or Google): the code, the enhanced status code, and text
# only that provider writes (None: the enhanced code is the provider's
# own). A self-hosted server answers 535 5.7.8 too (Postfix with Dovecot:
# "Error: authentication failed"), so Google's 5.7.8 is known by the help
# page its text links to, and RFC 4954's 534 5.7.9 ("mechanism too weak")
# from Google's words for it.
_PROVIDER_REPLIES = (
    # Microsoft 365: basic authentication off for client submission, or
    # for the whole tenant: no password will do.
    (reply.UNAVAILABLE, "5.7.30", None, "microsoft", _OAUTH_HINT),
    (reply.AUTH_INVALID, "5.7.139", None, "microsoft", _OAUTH_HINT),
    # Microsoft 365's answer to a wrong password and to an account whose
    # basic authentication is off alike.
    (reply.AUTH_INVALID, "5.7.3", "Authentication unsuccessful", "microsoft", _MICROSOFT_HINT),
    # Google: an app password (or OAuth2) is required.
    (reply.AUTH_TOO_WEAK, "5.7.9", "Application-specific password", "google", _OAUTH_HINT),
    (reply.AUTH_INVALID, "5.7.8", "support.google.com/mail", "google", _GOOGLE_HINT),
)


def _provider_reply(exc):
    """The provider entry of ``_PROVIDER_REPLIES`` the refusal ``exc``
    matches, or None."""
    text = exc.server_text or ""
    for code, enhanced, marker, who, hint in _PROVIDER_REPLIES:
        if exc.code == code and text.startswith(enhanced) and (marker is None or marker in text):
            return who, hint
    return None


def pin_hint(host, fingerprint):
    """The lines that would trust this exact certificate."""
    return _(
        b"the server's certificate has fingerprint %s; if you trust it, "
        b"pin it in your hgrc:\n"
        b"    [hostsecurity]\n"
        b"    %s:fingerprints = %s\n"
        b"or set hostsecurity.%s:verifycertsfile (or web.cacerts) to the "
        b"certificate of the CA that issued it"
    ) % (tobytes(fingerprint), host, tobytes(fingerprint), host)


def repin_hint(host, pinned, fingerprint, spki):
    """For a pin that no longer matches: the line(s) to update, if the
    server's new certificate or key is genuine."""
    # The fingerprint line always pins; the key line is shown to whoever
    # chose key pins (any one matching pin is enough).
    lines = []
    if fingerprint:
        lines.append(b"    %s:fingerprints = %s\n" % (host, tobytes(fingerprint)))
    if pinned in ("pubkeys", "both") and spki:
        lines.append(b"    %s:pubkeys = %s\n" % (host, tobytes(spki)))
    return _(
        b"the server now presents a different certificate or key (certificate "
        b"fingerprint %s); if you have confirmed the change is genuine, "
        b"update your hgrc (either line will do):\n"
        b"    [hostsecurity]\n%s"
        b"otherwise someone may be intercepting the connection"
    ) % (tobytes(fingerprint or "unknown"), b"".join(lines))


def _config_setting(setting, host):
    """The hgrc name of ``setting`` (a ``_core.Setting``) for ``host``."""
    names = {
        Setting.HOST: b"smtp.host",
        Setting.PORT: b"smtp.port",
        Setting.TLS: b"smtp.tls",
        Setting.TIMEOUT: b"smtp.timeout",
        Setting.MINIMUM_PROTOCOL: b"hostsecurity.minimumprotocol or hostsecurity.%s:minimumprotocol" % host,
        Setting.FINGERPRINTS: b"hostsecurity.%s:fingerprints" % host,
        Setting.HOST_FINGERPRINTS: b"hostfingerprints.%s" % host,
        Setting.PUBKEYS: b"hostsecurity.%s:pubkeys" % host,
        Setting.CIPHERS: b"hostsecurity.ciphers",
        Setting.CA_CERTS: b"web.cacerts or hostsecurity.%s:verifycertsfile" % host,
        Setting.CLIENT_CERT: b"hostsecurity.%s:clientcert and :clientkey" % host,
        Setting.AUTH: b"smtp.auth",
        Setting.USERNAME: b"smtp.username",
    }
    return names.get(setting, b"your hgrc")


def _verify_hint(exc, host):
    if getattr(exc, "pinned", None):
        return repin_hint(host, exc.pinned, exc.fingerprint, exc.spki)
    if exc.fingerprint:
        return pin_hint(host, exc.fingerprint)
    return _(b"set web.cacerts or hostsecurity.%s:fingerprints") % host


def _tls_hint(exc, host):
    if exc.setting == Setting.CLIENT_CERT:
        return _(
            b"set hostsecurity.%s:clientcert (and :clientkey) to a PEM "
            b"certificate the server accepts"
        ) % host
    return _(b"check smtp.port and smtp.tls (smtps for implicit TLS, starttls otherwise)")


def _mechanism_hint(exc, host):
    if exc.setting == Setting.USERNAME:
        return _(
            b"the server offers no login on this connection: if it needs "
            b"none, remove smtp.username; otherwise check smtp.port (logins "
            b"are usually taken on submission, 587, or 465 with smtp.tls = smtps)"
        )
    return _(
        b"set smtp.auth to mechanisms the server offers; this client "
        b"knows xoauth2, oauthbearer, scram-sha-256, plain, login, cram-md5 "
        b"and external"
    )


def _timeout_hint(exc, host):
    if exc.stage == Stage.GREETING:
        # A port for implicit TLS (465) waits for a ClientHello and never
        # greets a client that waits for its greeting.
        return _(
            b"a server that never greets may expect TLS from the first byte "
            b"(port 465): set smtp.tls = smtps; else raise smtp.timeout"
        )
    return _(b"the server stopped answering; raise smtp.timeout if it is only slow")


# What to do, by the kind of failure: a hint, or a function of the error and
# the host (as written in smtp.host) that picks one.
_KIND_HINTS = {
    Kind.VERIFY: _verify_hint,
    Kind.TLS_VERSION: lambda exc, host: _(
        b"the minimum is set by hostsecurity.minimumprotocol or "
        b"hostsecurity.%s:minimumprotocol; TLS 1.0 and 1.1 are never used"
    )
    % host,
    Kind.START_TLS: _(
        b"if this port expects TLS from the start, set smtp.tls=smtps; "
        b"to send without encryption (not recommended), set smtp.tls=none"
    ),
    Kind.INJECTION: _(b"someone between you and the server may be tampering with the connection"),
    Kind.TLS: _tls_hint,
    Kind.CLEARTEXT_AUTH: _(
        b"set smtp.tls=starttls or smtps, or set "
        b"smtp.allow-cleartext-auth=yes to send the password anyway"
    ),
    Kind.AUTH: lambda exc, host: auth_hint(exc, host),
    Kind.AUTH_MECHANISM: _mechanism_hint,
    Kind.AUTH_SERVER: _(
        b"nothing was sent; the server could not prove it knows your "
        b"password, so it may not be the server you set up the account "
        b"on: check smtp.host, or ask its administrator"
    ),
    Kind.AUTH_PROTOCOL: _(
        b"the server's SASL exchange went wrong; smtp.auth can name "
        b"another mechanism"
    ),
    Kind.CONNECT_TIMEOUT: _(b"check smtp.host and smtp.port; smtp.timeout sets how long to wait"),
    Kind.CONNECT: _(b"check smtp.host and smtp.port"),
    Kind.TIMEOUT: _timeout_hint,
    Kind.CONFIG: lambda exc, host: _(b"check %s") % _config_setting(exc.setting, host),
    Kind.RECIPIENTS: _(b"check the recipient addresses (--to, --cc, --bcc) and email.from"),
    Kind.INPUT: _(b"check the recipient addresses (--to, --cc, --bcc) and email.from"),
    Kind.REPLY: lambda exc, host: _reply_hint(exc),
    Kind.IO: _(
        b"the connection to the server broke off or did not speak SMTP; "
        b"check smtp.port and smtp.tls, then try again"
    ),
    Kind.INTERNAL: _(b"this is a bug in securesmtp; please report it"),
    # A session used after it ended (QUIT, or closed on a failure).
    Kind.SESSION_CLOSED: _(
        b"the session with the server had already ended; this is a bug in "
        b"securesmtp; please report it"
    ),
}
_KIND_HINTS[Kind.PROTOCOL] = _KIND_HINTS[Kind.IO]

_STARTTLS_UNUSED_HINT = _(
    b"the server offers STARTTLS, which smtp.tls = none does not "
    b"use, and wants it before a login or a message: set "
    b"smtp.tls = starttls"
)


def hint_for(exc, host):
    """What to do about core error ``exc`` talking to ``host``."""
    if exc.kind != Kind.CONFIG and exc.setting == Setting.TLS:
        # A cleartext session to a server that offers STARTTLS, which then
        # had no AUTH for us or wanted STARTTLS (or a login) first.
        return _STARTTLS_UNUSED_HINT
    found = _KIND_HINTS.get(exc.kind, _(b"see hg help securesmtp"))
    return found(exc, host) if callable(found) else found


# What to do about a refusal, by the stage it came at.
_STAGE_HINTS = {
    Stage.GREETING: _(b"the server is not accepting connections; check smtp.host and smtp.port or try later"),
    Stage.HELLO: _(b"the server refused our greeting; smtp.local_hostname sets the name we send"),
    Stage.START_TLS: _(
        b"the server could not start TLS; sending without it is not safe, "
        b"so try again later or ask the server's administrator"
    ),
    Stage.MAIL: _(b"check the sender address (email.from or --from)"),
    Stage.RCPT: _(b"check the recipient addresses (--to, --cc, --bcc)"),
    Stage.DATA: _(b"the server would not take the message; its reply above says why"),
    Stage.BODY: _(b"the server refused the message after receiving it; its reply above says why"),
}


def _reply_hint(exc):
    code = exc.code or 0
    if reply.closing(code):
        return _(b"the server is closing the connection; try again later")
    if reply.positive(code):
        # A positive reply where another was due: not a refusal.
        return _(
            b"the server answered out of turn; check that smtp.host and "
            b"smtp.port name an SMTP server"
        )
    if code == reply.AUTH_REQUIRED and exc.stage != Stage.AUTH:
        # RFC 4954 6: "530 5.7.0 Authentication required".
        return _(
            b"the server takes mail only after a login: set smtp.username "
            b"(the password comes from smtp.password, smtp.password-command, "
            b"the keyring or a prompt)"
        )
    if code == reply.TOO_BIG and exc.stage in (Stage.MAIL, Stage.DATA, Stage.BODY):
        # RFC 1870: the message is bigger than the server's SIZE limit.
        return _(
            b"the message is larger than the server accepts (its SIZE "
            b"limit); leave out large patches or ask the server's "
            b"administrator"
        )
    found = _STAGE_HINTS.get(exc.stage, _(b"the server's reply above says why"))
    if reply.transient(code):
        found += _(b"; this is a temporary failure, trying again later may work")
    return found


def needs_oauth(exc):
    """Whether a refused login says the account takes no password here."""
    found = _provider_reply(exc)
    return found is not None and found[1] is _OAUTH_HINT


# Providers known by the host names of their submission servers, for the
# replies that do not say who answered (Google's short "5.7.8 Username and
# Password not accepted", Microsoft's 535 with other wording).
_PROVIDERS = {
    "google": (b"gmail.com", b"googlemail.com", b"google.com"),
    "microsoft": (b"office365.com", b"outlook.com"),
}


def provider(host):
    """``"google"``, ``"microsoft"`` or None, from the host name."""
    name = (host or b"").lower().rstrip(b".")
    for who, domains in _PROVIDERS.items():
        if any(name == d or name.endswith(b"." + d) for d in domains):
            return who
    return None


def auth_hint(exc, host):
    """What to do about a refused login: a temporary failure first (nothing
    to change), then what the provider that answered means, known by its
    reply or by ``host``."""
    if reply.transient(exc.code):
        # RFC 4954 6: 454 4.7.0 "Temporary authentication failure": the
        # server could not check the secret (its password database is
        # down), which says nothing about the secret.
        return _(
            b"this is a temporary failure: the server could not check the "
            b"login just now; try again later, nothing in your settings "
            b"needs to change (if it persists, tell the server's administrator)"
        )
    found = _provider_reply(exc)
    if found is not None and found[1] is _OAUTH_HINT:
        return _OAUTH_HINT
    mechanism = (getattr(exc, "mechanism", None) or "").upper()
    if mechanism in ("XOAUTH2", "OAUTHBEARER"):
        return _(
            b"the access token was refused: check that smtp.password-command "
            b"prints a fresh access token for smtp.username with the mail "
            b"scope (the server's reason is above)"
        )
    if found is not None:
        return found[1]
    who = provider(host)
    text = exc.server_text or ""
    if who == "google" and exc.code == reply.AUTH_INVALID and text.startswith("5.7.8"):
        return _GOOGLE_HINT
    if who == "microsoft" and exc.code == reply.AUTH_INVALID:
        return _MICROSOFT_HINT
    return _PLAIN_AUTH_HINT


def is_security(exc):
    """Whether ``exc`` is a failure of the channel's security: the server
    was refused before any credential or message went out."""
    return exc.kind in _SECURITY


def convert(exc, host, prefix=b"", suffix=b"", hint=None):
    """The Mercurial exception for core error ``exc`` talking to ``host``."""
    return for_message(prefix + tobytes(str(exc)) + suffix, exc, host, hint)


def for_message(message, exc, host, hint=None):
    """The Mercurial exception carrying ``message`` for core error ``exc``
    (None: a plain abort with no hint)."""
    if exc is None:
        return error.Abort(message, hint=hint)
    if hint is None:
        hint = hint_for(exc, host)
    # An unusable CA file is an abort in stock Mercurial, not a config error.
    if exc.kind == Kind.CONFIG and exc.setting != Setting.CA_CERTS:
        return error.ConfigError(message, hint=hint)
    if is_security(exc):
        return error.SecurityError(message, hint=hint)
    return error.Abort(message, hint=hint)


def hint_in_message(exc):
    """``exc`` with its hint folded into the message: callers other than
    ``hg email`` run in hooks (notify), and Mercurial's hook runner prints
    only the message, which would lose the pin line."""
    if not exc.hint:
        return exc
    return type(exc)(exc.message + b"\n" + exc.hint)


# -- A refused message of a series, and a refused login ----------------------


def reply_line(code, text):
    """A reply on one line, as the core shows it: the code, then its lines
    (already made safe to show) joined by spaces."""
    joined = " ".join((text or "").split("\n"))
    return b"%d %s" % (code, tobytes(joined)) if joined else b"%d" % code


def refusal(subject, exc):
    """What the server refused of the message ``subject``, naming it: ``the
    server refused [PATCH 3 of 6] subject at end of data: 550 ...`` (with
    the refused recipients on the lines below, when it refused them all)."""
    if exc.kind == Kind.RECIPIENTS:
        lines = [_(b"the server refused every recipient of %s:") % subject]
        lines += [b"  %s: %s" % (tobytes(addr), reply_line(code, text)) for addr, code, text in exc.refused]
        return b"\n".join(lines)
    if exc.kind == Kind.REPLY and exc.stage is not None and exc.code is not None:
        return _(b"the server refused %s at %s: %s") % (
            subject,
            tobytes(exc.stage.words),
            reply_line(exc.code, exc.server_text),
        )
    # Not a reply (an address that cannot go to this server, say).
    return _(b"cannot send %s: %s") % (subject, tobytes(str(exc)))


def refused_recipient(host, address, code, text, subject):
    """The warning for one recipient refused of a message sent to others."""
    return _(b"warning: %s refused recipient %s for %s: %d %s\n") % (
        host,
        tobytes(address),
        subject,
        code,
        tobytes(text),
    )


def login_failed(exc, host, username):
    """A core error from logging in as ``username``."""
    prefix = b""
    if exc.stage == Stage.AUTH and reply.transient(exc.code):
        prefix = _(b"could not log in as %s: ") % (username or b"")
    elif exc.stage == Stage.AUTH:
        prefix = _(b"authentication as %s failed: ") % (username or b"")
    return convert(exc, host, prefix)


def keyring_password_refused(exc, username):
    """The password stored in mercurial_keyring was refused, and nobody is
    there to type another."""
    return convert(
        exc,
        b"",
        _(b"authentication as %s failed with the password stored in the keyring: ") % username,
        hint=_(b"run hg email interactively to enter the right password (it is then saved in the keyring)"),
    )


def hook_login_failed(username, code, text):
    """A refusal reported by an extension that logs in through
    ``mail._smtp_login`` (an smtplib-style error)."""
    return error.Abort(
        _(b"authentication as %s failed: %d %s") % (username or b"", code, tobytes(text)),
        hint=_(b"check smtp.username and smtp.password"),
    )


def login_retry_line(code, text):
    """The reply that refused a typed password, for the line and the
    question that ask for it again."""
    return b"%s %s" % (tobytes(str(code)), tobytes(text or ""))
