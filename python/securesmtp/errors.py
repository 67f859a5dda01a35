"""Turn a core ``SmtpError`` into the Mercurial error a user should see.

Verification and channel-security failures are ``error.SecurityError`` (exit
255, or 150 with ``ui.detailed-exit-code``), like Mercurial's own; everything
else is ``error.Abort``. Each carries a hint naming the setting to change.
"""

from mercurial import error
from mercurial.i18n import _

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

# Refusals that mean "this account does not take a password here any more".
# Microsoft 365: 550 5.7.30 (basic auth off for client submission), 535
# 5.7.139 (basic auth disabled). Google: 534 5.7.9 (application-specific
# password required).
_NEEDS_OAUTH = ("5.7.30", "5.7.139", "5.7.9")

_OAUTH_HINT = _(
    b"this account needs OAuth2: set smtp.auth = xoauth2 and set "
    b"smtp.password-command to a command that prints an access token "
    b"(for example pizauth, oama or mutt_oauth2.py); see hg help securesmtp"
)


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


def _hint(exc, host):
    kind = exc.kind
    if kind != Kind.CONFIG and exc.setting == Setting.TLS:
        # A cleartext session to a server that offers STARTTLS, which then
        # had no AUTH for us or wanted STARTTLS (or a login) first.
        return _(
            b"the server offers STARTTLS, which smtp.tls = none does not "
            b"use, and wants it before a login or a message: set "
            b"smtp.tls = starttls"
        )
    if kind == Kind.VERIFY:
        if getattr(exc, "pinned", None):
            return repin_hint(host, exc.pinned, exc.fingerprint, exc.spki)
        if exc.fingerprint:
            return pin_hint(host, exc.fingerprint)
        return _(b"set web.cacerts or hostsecurity.%s:fingerprints") % host
    if kind == Kind.TLS_VERSION:
        return _(
            b"the minimum is set by hostsecurity.minimumprotocol or "
            b"hostsecurity.%s:minimumprotocol; TLS 1.0 and 1.1 are never used"
        ) % host
    if kind == Kind.START_TLS:
        return _(
            b"if this port expects TLS from the start, set smtp.tls=smtps; "
            b"to send without encryption (not recommended), set smtp.tls=none"
        )
    if kind == Kind.INJECTION:
        return _(b"someone between you and the server may be tampering with the connection")
    if kind == Kind.TLS and exc.setting == Setting.CLIENT_CERT:
        return _(
            b"set hostsecurity.%s:clientcert (and :clientkey) to a PEM "
            b"certificate the server accepts"
        ) % host
    if kind == Kind.TLS:
        return _(b"check smtp.port and smtp.tls (smtps for implicit TLS, starttls otherwise)")
    if kind == Kind.CLEARTEXT_AUTH:
        return _(
            b"set smtp.tls=starttls or smtps, or set "
            b"smtp.allow-cleartext-auth=yes to send the password anyway"
        )
    if kind == Kind.AUTH:
        return _auth_hint(exc, host)
    if kind == Kind.AUTH_MECHANISM and exc.setting == Setting.USERNAME:
        return _(
            b"the server offers no login on this connection: if it needs "
            b"none, remove smtp.username; otherwise check smtp.port (logins "
            b"are usually taken on submission, 587, or 465 with smtp.tls = smtps)"
        )
    if kind == Kind.AUTH_MECHANISM:
        return _(
            b"set smtp.auth to mechanisms the server offers; this client "
            b"knows xoauth2, oauthbearer, scram-sha-256, plain, login, cram-md5 "
            b"and external"
        )
    if kind == Kind.AUTH_SERVER:
        return _(
            b"nothing was sent; the server could not prove it knows your "
            b"password, so it may not be the server you set up the account "
            b"on: check smtp.host, or ask its administrator"
        )
    if kind == Kind.AUTH_PROTOCOL:
        return _(
            b"the server's SASL exchange went wrong; smtp.auth can name "
            b"another mechanism"
        )
    if kind == Kind.CONNECT_TIMEOUT:
        return _(b"check smtp.host and smtp.port; smtp.timeout sets how long to wait")
    if kind == Kind.CONNECT:
        return _(b"check smtp.host and smtp.port")
    if kind == Kind.TIMEOUT and exc.stage == Stage.GREETING:
        # A port for implicit TLS (465) waits for a ClientHello and never
        # greets a client that waits for its greeting.
        return _(
            b"a server that never greets may expect TLS from the first byte "
            b"(port 465): set smtp.tls = smtps; else raise smtp.timeout"
        )
    if kind == Kind.TIMEOUT:
        return _(b"the server stopped answering; raise smtp.timeout if it is only slow")
    if kind == Kind.CONFIG:
        return _(b"check %s") % _config_setting(exc.setting, host)
    if kind in (Kind.RECIPIENTS, Kind.INPUT):
        return _(b"check the recipient addresses (--to, --cc, --bcc) and email.from")
    if kind == Kind.REPLY:
        return _reply_hint(exc)
    if kind in (Kind.IO, Kind.PROTOCOL):
        return _(
            b"the connection to the server broke off or did not speak SMTP; "
            b"check smtp.port and smtp.tls, then try again"
        )
    if kind == Kind.INTERNAL:
        return _(b"this is a bug in securesmtp; please report it")
    return _(b"see hg help securesmtp")


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
    if code in (421, 221):
        return _(b"the server is closing the connection; try again later")
    if code < 400:
        # A positive reply where another was due: not a refusal.
        return _(
            b"the server answered out of turn; check that smtp.host and "
            b"smtp.port name an SMTP server"
        )
    if code == 530 and exc.stage != Stage.AUTH:
        # RFC 4954 6: "530 5.7.0 Authentication required".
        return _(
            b"the server takes mail only after a login: set smtp.username "
            b"(the password comes from smtp.password, smtp.password-command, "
            b"the keyring or a prompt)"
        )
    if code == 552 and exc.stage in (Stage.MAIL, Stage.DATA, Stage.BODY):
        # RFC 1870: the message is bigger than the server's SIZE limit.
        return _(
            b"the message is larger than the server accepts (its SIZE "
            b"limit); leave out large patches or ask the server's "
            b"administrator"
        )
    hint = _STAGE_HINTS.get(exc.stage, _(b"the server's reply above says why"))
    if 400 <= code < 500:
        hint += _(b"; this is a temporary failure, trying again later may work")
    return hint


def needs_oauth(exc):
    """Whether a refused login says the account takes no password here."""
    text = exc.server_text or ""
    return (exc.code or 0) in (534, 535, 550) and any(s in text for s in _NEEDS_OAUTH)


# Providers known by the host names of their submission servers. Only the
# host name is used: the greeting is not kept with the error, and a
# self-hosted server answers the same codes (Postfix and Dovecot refuse every
# failed login with 535 5.7.8, as Google does), so the code alone cannot
# tell a Gmail account from a mistyped password on one's own server.
_PROVIDERS = {
    "google": (b"gmail.com", b"googlemail.com", b"google.com"),
    "microsoft": (b"office365.com", b"outlook.com"),
}


def provider(host):
    """``"google"``, ``"microsoft"`` or None, from the host name."""
    name = (host or b"").lower().rstrip(b".")
    for provider, domains in _PROVIDERS.items():
        if any(name == d or name.endswith(b"." + d) for d in domains):
            return provider
    return None


_PLAIN_AUTH_HINT = _(b"check smtp.username and the password (smtp.password or smtp.password-command)")


def _auth_hint(exc, host):
    """What to do about a refused login: a temporary failure first (nothing
    to change), then what only the provider behind ``host`` means."""
    text = exc.server_text or ""
    code = exc.code or 0
    if 400 <= code < 500:
        # RFC 4954 6: 454 4.7.0 "Temporary authentication failure": the
        # server could not check the secret (its password database is
        # down), which says nothing about the secret.
        return _(
            b"this is a temporary failure: the server could not check the "
            b"login just now; try again later, nothing in your settings "
            b"needs to change (if it persists, tell the server's administrator)"
        )
    who = provider(host)
    if who is not None and needs_oauth(exc):
        return _OAUTH_HINT
    mechanism = (getattr(exc, "mechanism", None) or "").upper()
    if mechanism in ("XOAUTH2", "OAUTHBEARER"):
        return _(
            b"the access token was refused: check that smtp.password-command "
            b"prints a fresh access token for smtp.username with the mail "
            b"scope (the server's reason is above)"
        )
    if who == "google" and code == 535 and "5.7.8" in text:
        # Google's "Username and Password not accepted": a wrong password,
        # or an account that takes only an app password or OAuth2.
        return _(
            b"check smtp.username and the password; if they are right, the "
            b"account may need an app password, or OAuth2: set smtp.auth = "
            b"xoauth2 and smtp.password-command to a command that prints an "
            b"access token"
        )
    if who == "microsoft" and code == 535:
        # Microsoft 365 answers 535 5.7.3 both to a wrong password and to
        # an account whose basic authentication is turned off.
        return _(
            b"check smtp.username and the password; if they are right, the "
            b"account may take only OAuth2: set smtp.auth = xoauth2 and "
            b"smtp.password-command to a command that prints an access token"
        )
    return _PLAIN_AUTH_HINT


def convert(exc, host, prefix=b"", suffix=b"", hint=None):
    """The Mercurial exception for core error ``exc`` talking to ``host``."""
    message = prefix + tobytes(str(exc)) + suffix
    if hint is None:
        hint = _hint(exc, host)
    # An unusable CA file is an abort in stock Mercurial, not a config error.
    if exc.kind == Kind.CONFIG and exc.setting != Setting.CA_CERTS:
        return error.ConfigError(message, hint=hint)
    if exc.kind in _SECURITY:
        return error.SecurityError(message, hint=hint)
    return error.Abort(message, hint=hint)
