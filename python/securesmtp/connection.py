"""Opening a verified, authenticated session, and the connections a
command or an hgweb request shares (the pool ``series.smtp`` is given).

A session is verified by the core before anything but EHLO and STARTTLS is
sent; here the settings are read, the trust verdict is reported, and the
login is done (``login.py``). A connection remembers how it was opened, so a
series can open it again after a drop or a 421 without asking for the
password again.
"""

from mercurial import error, mail
from mercurial.i18n import _

from . import _core, errors, login, settings
from .text import tobytes


class Connection:
    """A session and how to open it again (after a drop or a 421), shared
    by the senders of one burst."""

    def __init__(self, ui):
        self._ui = ui
        # The login that succeeded, kept in login.py's own holder for the
        # reconnections of this run.
        self._remembered = login.Remembered()
        self.session, self.bhost, timeout = _open(ui, remembered=self._remembered)
        self.timeout = _core.timeout_seconds(timeout)
        # Seconds every reconnection of this connection may still spend
        # waiting on the server, together: one smtp.timeout. A server that
        # takes connections and never speaks costs that once, not once per
        # attempt.
        self.reconnect_left = self.timeout

    def reopen(self, within):
        """Open the session again, connecting, greeting and logging in
        within ``within`` seconds (what is left of the run's reconnection
        budget); the new session then waits for replies as configured."""
        self.session = _open(self._ui, True, self._remembered, within)[0]
        self.session.set_timeout(self.timeout)
        return self.session

    def close(self):
        """QUIT and close the socket; harmless when already closed."""
        self.session.quit()


def for_ui(ui, connections, pooled):
    """The connection for ``ui``'s settings: reused from ``connections``
    (the scope's pool, or None outside one) when ``pooled`` and one is
    there, else opened (and pooled, or closed when its last sender is
    released)."""
    if connections is None:
        return Connection(ui)
    # A series' own connection is not shared, but ends with the scope.
    key = _settings_key(ui) if pooled else object()
    if key not in connections:
        connections[key] = Connection(ui)
    return connections[key]


def _settings_key(ui):
    """What decides whether an open connection serves a call: everything
    that reaches ``_core.connect`` and the login."""
    args = settings.connect_args(ui)
    login = tuple(ui.config(b"smtp", k) for k in (b"username", b"auth", b"password-command"))
    return repr(sorted(args.items())), login


def _open(ui, quiet=False, remembered=None, within=None):
    """A verified, authenticated session, the host name as bytes, and
    smtp.timeout as configured.

    ``remembered`` keeps the login that succeeded, for the reconnections of
    the same run: the password is not asked for, fetched from the keyring or
    printed by smtp.password-command again. ``within``: seconds the server
    may stay silent while the session opens, instead of smtp.timeout."""
    args = settings.connect_args(ui)
    configured = args["timeout"]
    if within is not None:
        args["timeout"] = within
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
    if not quiet:
        _warn_about_mode(ui, args["port"], mode)
    if ui.debugflag:
        args["transcript"] = lambda line: ui.debug(tobytes(line) + b"\n")
    args["notice"] = lambda line: ui.warn(tobytes(line) + b"\n")
    # Before connecting: a failing password command or a missing token
    # aborts before anything is sent.
    if login.hooked(mail._smtp_login):
        who = None
    elif remembered is not None and remembered.login is not None:
        who = remembered.login
    else:
        who = login.Login.prepare(ui, args["timeout"])
    try:
        session = _core.connect(**args)
    except _core.SmtpError as exc:
        raise errors.convert(exc, bhost)
    _warn_about_trust(ui, bhost, session.verdict())
    try:
        used = login.log_in(ui, session, bhost, args["port"], who)
    except error.Abort:
        # Nobody will use this session: end it politely now.
        session.quit()
        if remembered is not None and who is not None and who.refused:
            # Refused now (an access token that expired): the next attempt
            # gets a fresh secret from where the first came from.
            remembered.login = None
        raise
    if remembered is not None and used is not None:
        remembered.login = used
    return session, bhost, configured


# The port RFC 8314 gives message submission over implicit TLS.
_SUBMISSIONS = 465


def _warn_about_mode(ui, port, mode):
    """Port 465 speaks TLS from the first byte: a client that waits for a
    cleartext greeting there waits for smtp.timeout, then fails. Say so
    before the wait, not after it."""
    if port == _SUBMISSIONS and mode != "smtps":
        ui.warn(
            _(
                b"warning: port 465 is for implicit TLS, where the server "
                b"waits for the client to speak first, but smtp.tls = %s "
                b"waits for the server's greeting; set smtp.tls = smtps\n"
            )
            % tobytes(mode)
        )


def _warn_about_trust(ui, bhost, verdict):
    if verdict is None:
        return
    fingerprint = tobytes(verdict.sha256)
    if verdict.trust == _core.Trust.INSECURE:
        ui.warn(
            _(
                b"warning: connection security to %s is disabled per current "
                b"settings; communication is susceptible to eavesdropping and "
                b"tampering (server certificate fingerprint: %s)\n"
            )
            % (bhost, fingerprint)
        )
    elif verdict.trust == _core.Trust.PIN and verdict.legacy_sha1:
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
    elif verdict.trust == _core.Trust.COMMON_NAME:
        ui.warn(
            _(
                b"warning: the certificate of %s has no subject alternative "
                b"name; accepted by its common name because your CA file "
                b"vouches for it\n"
            )
            % bhost
        )


