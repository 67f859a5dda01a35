"""send patches over a verified SMTP connection

This extension replaces the SMTP client behind :hg:`email` with one that
verifies the mail server before any password or patch leaves the machine.
The settings you already have keep their meaning; nothing else changes.

Enable it with patchbomb, the extension that provides :hg:`email`::

  [extensions]
  patchbomb =
  securesmtp =

  [smtp]
  host = smtp.example.org
  port = submission
  tls = starttls
  username = alice

Connection settings (``[smtp]``)
--------------------------------

``host``
    The mail server. Required.

``port``
    Port number or service name (``submission`` is 587). Default 465 with
    ``tls = smtps``, else 25.

``tls``
    ``starttls`` (or any true value): connect in cleartext, then STARTTLS
    before anything else; a server that does not offer STARTTLS is refused.
    ``smtps``: TLS from the first byte (port 465). ``none`` (or a false
    value): no encryption. Any other value is a configuration error, never a
    silent downgrade to cleartext.

``username``, ``password``
    Credentials for AUTH. Without ``password`` the secret comes from
    ``password-command``, then from mercurial_keyring when that extension
    is enabled, then from a prompt when the session is interactive; in a
    non-interactive run a missing password is an error, not an
    unauthenticated send.

``password-command``
    A command that prints the password, or the OAuth2 access token, on its
    standard output (for example ``pass show mail/example``, ``pizauth
    show work``, ``oama access alice@example.com``). It is split like a
    shell would split it but run without a shell; a word that starts with
    ``~/`` (or is ``~``) names your home directory. It must print the
    secret on one line: one trailing newline is removed, more lines are an
    error (for a password store entry that has more lines, ``sh -c "pass
    show mail/example | head -n 1"``). Used when ``password`` is not set. A command that fails,
    prints nothing or runs longer than ``timeout`` aborts before anything
    is sent; what it prints is never shown, ``--debug`` included.

``auth``
    The SASL mechanisms allowed, in order of preference, separated by
    commas or spaces, in any case: ``xoauth2``, ``oauthbearer``,
    ``scram-sha-256``, ``plain``, ``login``, ``cram-md5``, ``external``
    (the identity of the TLS client certificate, no password). The first one
    the server offers is used; if it offers none of them, the error names
    what it offers. Default: the strongest password mechanism both sides
    support (SCRAM-SHA-256, then PLAIN, then LOGIN); OAuth2 and CRAM-MD5
    are used only when listed. For Microsoft 365 and Google accounts
    without a password login, use ``auth = xoauth2`` with a
    ``password-command`` that prints an access token.

``local_hostname``
    The name sent with EHLO. Default: this machine's fully qualified name.

``timeout``
    Seconds to wait for the server to connect or to answer before giving up;
    each whole reply must arrive within it, however the server paces it.
    From 0.1 to 86400. Default 60.

``pipelining``
    Send each message's envelope (and, where the server offers CHUNKING, the
    message itself) in one write, as RFC 2920 and RFC 3030 allow, so a
    message costs one or two round trips instead of three plus one per
    recipient. Default on; turn it off only for a server that mishandles it.

``streaming``
    Inside :hg:`email`, write each message as soon as it is ready, without
    waiting for the server's verdict on the one before, and collect the
    verdicts as they arrive; every message is confirmed before the command
    ends. The first message is confirmed before the rest follow, so a
    refused sender or recipient stops the series at once. With PIPELINING
    and CHUNKING the whole series then costs two round trips after the
    set-up (the first message, then all the rest); with PIPELINING alone,
    one per message. A message the server refuses is
    reported against its patch while the others go through; the command
    then exits non-zero and prints the :hg:`email` line that would send
    what was not sent. When the connection drops, goes silent for
    ``smtp.timeout`` or the server closes it (421) part way, the extension
    reconnects (verifying again, and logging in with the secret already
    given) and sends only the messages the server cannot have accepted; a
    message whose verdict was lost with the connection is reported as
    possibly delivered, never sent twice silently. Default on; off sends
    and confirms one message at a time.

``allow-cleartext-auth``
    Send the password over a connection that is not encrypted. Off by
    default; a server on this machine (loopback) is always allowed.

``verifycert``
    Legacy (Mercurial 2.6 to 3.8), ignored by Mercurial since 3.9 and here
    too: whatever its value, the server is verified as usual, and a warning
    says the setting is ignored. ``--insecure`` is the way to skip
    verification.

Verification (``[hostsecurity]``, ``[hostfingerprints]``, ``[web]``)
---------------------------------------------------------------------

Host names are looked up without the port, as for HTTPS remotes, and as
written in ``smtp.host`` (an internationalised name too; it is converted to
its ASCII form with UTS-46 only to connect and to check the certificate).

``hostsecurity.<host>:fingerprints``
    Certificate fingerprints (``sha256:``, ``sha512:`` or ``sha1:`` followed
    by hex; colons and case do not matter; several separated by commas or
    spaces). When set, the server is trusted if its certificate matches any
    of them, and CA checks are skipped. Pins are enforced even with
    ``--insecure``.

``hostsecurity.<host>:pubkeys``
    Public-key pins: ``sha256:`` followed by the SHA-256 of the certificate's
    SubjectPublicKeyInfo, as base64 (the form ``hg debugsmtp`` prints and
    HPKP used) or hex. Unlike a certificate fingerprint, a public-key pin
    survives a certificate renewal that keeps the same key. Checked like
    fingerprints; both kinds may be combined.

``hostsecurity.<host>:clientcert``, ``hostsecurity.<host>:clientkey``
    A client certificate (PEM, leaf first, with its chain) to present to a
    server that asks for one, and its private key (PEM; in the certificate
    file when ``clientkey`` is not set). A key encrypted with a passphrase
    is refused: decrypt it with ``openssl pkey``. Combine with
    ``smtp.auth = external`` for servers that log you in by certificate.

``hostfingerprints.<host>``
    Legacy SHA-1 fingerprints. Accepted, with a warning that shows the
    ``[hostsecurity]`` line to use instead.

``hostsecurity.<host>:verifycertsfile``, ``web.cacerts``
    A PEM file of CA certificates to trust for that host, or for every host,
    instead of the system's. Only CA certificates vouch for others, by the
    rules OpenSSL applies (self-signed, CA:TRUE, allowed to sign
    certificates and serve TLS, within their dates, their path length and
    name constraints obeyed). A self-signed server certificate listed in the
    file is trusted as itself, and only as itself.

``hostsecurity.minimumprotocol``, ``hostsecurity.<host>:minimumprotocol``
    ``tls1.2`` (default) or ``tls1.3``. TLS 1.0 and 1.1 are never used; a
    server that speaks nothing newer is refused with a message that says so.

``hostsecurity.ciphers``, ``hostsecurity.<host>:ciphers``
    Cipher suites to allow, separated by colons, commas or spaces, by their
    OpenSSL names, case as written there (``ECDHE-RSA-AES128-GCM-SHA256``;
    TLS 1.3 suites as ``TLS_AES_128_GCM_SHA256``). The list must name at
    least one TLS 1.2 suite, as stock Mercurial requires. An unknown name is
    an error that lists the supported ones. TLS 1.3 suites stay enabled
    unless named.

Without ``web.cacerts`` the system's trust store is used, falling back to
the Mozilla roots bundled with this extension. ``--insecure`` disables CA
and host name checks with a loud warning showing the server's fingerprint.

When verification fails, the message says why and shows the certificate's
SHA-256 fingerprint and the exact ``[hostsecurity]`` line that would pin it.

mercurial_keyring
-----------------

With mercurial_keyring enabled (either order in ``[extensions]``), a user
name without ``password`` or ``password-command`` takes the password from
mercurial_keyring's store (the entry it keeps for that user, host and
port). A password typed at the prompt is saved there once the server
accepts it; a stored password the server refuses is asked for again when
the session is interactive, and is an error otherwise. An extension that
wraps ``mail._smtp_login`` is called to log in instead.

Inspecting a server
-------------------

:hg:`debugsmtp [HOST[:PORT]]` connects the way :hg:`email` would (``--tls``
overrides ``smtp.tls``) but never authenticates or sends mail, and reports
the greeting, capabilities before and after TLS, the TLS version, cipher
suite and key exchange, the certificate chain as sent, the server
certificate's fingerprints and public-key pin, the verdict under your
current settings, the ``[hostsecurity]`` lines that would pin it, the AUTH
mechanisms offered and the one :hg:`email` would use. It
completes the handshake even when verification fails, to show the chain,
but sends nothing more on such a connection. ``-T json`` gives the same as
data.

Debugging
---------

``hg email --debug`` prints the SMTP conversation (``C:``/``S:`` lines)
with AUTH payloads redacted and message bodies shown as a byte count.
"""

# Every hg command imports this module, so it imports only what the command
# table and the config items need. smtplib, ssl, the email package,
# mercurial.mail, the compiled core and the rest of the shim wait for
# ``hg email`` and ``hg debugsmtp`` (see tests/test_import.py).
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading

from mercurial import cmdutil, dispatch, error, extensions, registrar
from mercurial.i18n import _

testedwith = b"6.1 6.3 6.5 7.2"
minimumhgversion = b"6.1"

cmdtable: dict = {}
command = registrar.command(cmdtable)
configtable: dict = {}
configitem = registrar.configitem(configtable)

configitem(b"smtp", b"timeout", default=60.0)
configitem(b"smtp", b"pipelining", default=True)
configitem(b"smtp", b"streaming", default=True)
configitem(b"smtp", b"allow-cleartext-auth", default=False)
configitem(b"smtp", b"password-command", default=None)
configitem(b"smtp", b"auth", default=None)
configitem(b"smtp", b"verifycert", default=None)
configitem(b"hostsecurity", b".*:pubkeys$", default=list, generic=True)
configitem(b"hostsecurity", b".*:clientcert$", default=None, generic=True)
configitem(b"hostsecurity", b".*:clientkey$", default=None, generic=True)


@command(
    b"debugsmtp",
    [(b"", b"tls", b"", _(b"none, starttls or smtps (default: smtp.tls)"), _(b"MODE"))]
    + cmdutil.formatteropts,
    _(b"[HOST[:PORT]]"),
    norepo=True,
)
def debugsmtp(ui, target=None, **opts):
    """show a mail server's TLS setup and certificate, and how to pin it

    Connects to ``HOST[:PORT]`` (default: ``smtp.host`` and ``smtp.port``)
    as :hg:`email` would, without authenticating or sending mail, and prints
    what the server presented, whether it passes verification under the
    current settings, and the ``[hostsecurity]`` lines that would pin it.

    Returns 0 if the server passes verification, 1 if it does not.
    """
    problem = _unusable_here()
    if problem:
        raise error.Abort(_(b"securesmtp: %s") % problem)
    if not _email_options:
        ui.warn(_NO_PATCHBOMB + b"\n")
    # The module shares this command's name, so ``from . import`` would
    # find this function.
    impl = importlib.import_module(__name__ + ".debugsmtp")
    return impl.debugsmtp(ui, target, **opts)


def _smtp(orig, ui):
    """``mail._smtp`` replacement: loads the real one on first use."""
    series = _import(ui, "series")
    if series is None:
        return orig(ui)
    return series.smtp(orig, ui, mail_pool(ui))


def _import(ui, name):
    """The shim's module ``name``, or None (said in one line) when the
    compiled core does not load here: a copy for another system whose file
    name this Python accepts (a Linux folder on macOS). Mercurial's own SMTP
    client then sends, as without the extension."""
    try:
        return importlib.import_module("%s.%s" % (__name__, name))
    except ImportError as exc:
        ui.warn(
            _(b"(securesmtp: its compiled core does not load here: %s; using Mercurial's own SMTP client)\n")
            % str(exc).encode("utf-8", "replace")
        )
        return None


def _wrapmail(mail):
    extensions.wrapfunction(mail, "_smtp", _smtp)


# -- How long a mail session lives ------------------------------------------
# Every sender of mail calls mail._smtp once per message or batch: patchbomb
# once per run, notify once per changeset, bugzilla once per batch. Within
# one command (dispatch.runcommand: a plain hg, each command of the command
# server or chg) or one hg serve request (hgweb.run_wsgi), the connections
# opened are pooled on this thread, keyed by their settings (connection.py),
# so a burst of mail to one server shares one verified, authenticated
# connection; they are closed (QUIT) when the command or request ends,
# however it ends. Outside any scope (a script calling mail.connect itself)
# nothing is pooled: a connection ends when its send function is released.
# Pools are per thread: hgweb serves requests on threads, and two requests
# must never share a connection, a login or a remembered secret. This lives
# here, not in a module of its own, so that commands that send no mail load
# nothing more (tests/test_import.py).

_scopes = threading.local()


def mail_pool(ui):
    """The connections pooled in the innermost scope of this thread (a dict
    for the caller to fill), or None outside any scope.

    A command already running when the extension was loaded
    (enabled in the hgrc of a repository the command opened, such as the
    destination of a local push running notify) gets a scope too: it opens
    now and ends when that command's dispatch does (``ui.atexit``)."""
    stack = getattr(_scopes, "stack", None)
    if stack:
        return stack[-1]
    if not _dispatching():
        return None
    scope = _enter()
    ui.atexit(_leave_late, scope)
    return scope


def _dispatching():
    """Whether this thread is inside ``dispatch._runcommand``: a command
    whose end ``ui.atexit`` handlers are run at."""
    code = getattr(dispatch._runcommand, "__code__", None)
    frame = sys._getframe(1)
    while frame.f_code is not code:
        if frame.f_back is None:
            return False
        frame = frame.f_back
    return True


def _enter():
    stack = _scopes.__dict__.setdefault("stack", [])
    scope: dict = {}
    stack.append(scope)
    return scope


def _leave():
    _close(_scopes.stack.pop())


def _leave_late(scope):
    stack = getattr(_scopes, "stack", [])
    # By identity: two empty scopes compare equal.
    stack[:] = [s for s in stack if s is not scope]
    _close(scope)


def _close(scope):
    for connection in scope.values():
        connection.close()


def _command_scope(orig, *args, **kwargs):
    _enter()
    try:
        return orig(*args, **kwargs)
    finally:
        _leave()


def _request_scope(orig, *args, **kwargs):
    # run_wsgi is a generator: the request lasts while its response is
    # produced, and ends when it is exhausted or closed.
    _enter()
    try:
        yield from orig(*args, **kwargs)
    finally:
        _leave()


def _wraphgweb(hgweb_mod):
    cls = hgweb_mod.hgweb
    # Mercurial 7 keeps the class in hgweb_mod_inner and re-exports it from
    # hgweb_mod: wrap it once, whichever module runs first.
    if getattr(cls.run_wsgi, "_securesmtp_scope", False):
        return
    extensions.wrapfunction(cls, "run_wsgi", _request_scope)
    cls.run_wsgi._securesmtp_scope = True


def extsetup(ui):
    problem = _unusable_here()
    if problem:
        # Nothing is wrapped: hg email is stock Mercurial's, as without
        # the extension.
        ui.warn(_(b"(securesmtp: %s; disabling)\n") % problem)
        return
    _onload("mercurial.mail", _wrapmail)
    for name in ("hgweb_mod_inner", "hgweb_mod"):
        _onload("mercurial.hgweb." + name, _wraphgweb)
    extensions.wrapfunction(dispatch, "runcommand", _command_scope)
    # patchbomb may load after this: with --config on one command of the
    # command server (TortoiseHg passes --config extensions.patchbomb= with
    # each command), or from a repository's hgrc. afterloaded() reports it
    # missing once and forgets it, so every later load is watched as well.
    extensions.wrapfunction(extensions, "load", _load_extension)
    extensions.afterloaded(b"patchbomb", _patchbomb_loaded)


# The option table of `hg email`, as patchbomb declares it (empty when
# patchbomb is not enabled).
_email_options: list = []

# Without patchbomb there is no hg email: said by hg debugsmtp and at the top
# of hg help securesmtp, in one line (short enough that help does not wrap it).
_NO_PATCHBOMB = _(b'(hg email needs patchbomb: add "patchbomb =" under [extensions])')
_HELP = __doc__ or ""


def _unusable_here():
    """Why this copy cannot run in this Python (bytes), or None.

    A folder unpacked from the wheel of another platform, or a Python older
    than the compiled core's floor, is said in one line at load time rather
    than as a traceback at ``hg email``. Only the folder is listed: loading
    the core waits for a command that sends mail."""
    # ruff assumes 3.9 (the wheel's floor); this check is for the folder
    # install, which any Python Mercurial runs on can load.
    if sys.version_info < (3, 9):  # noqa: UP036
        return b"it needs Python 3.9 or newer, and Mercurial runs on %d.%d" % sys.version_info[:2]
    here = os.path.dirname(os.path.abspath(__file__))
    cores = [n for n in os.listdir(here) if n.startswith("_core.")]
    if any(n.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)) for n in cores):
        return None
    if not cores:
        return b"its compiled core (_core) is missing from %s" % os.fsencode(here)
    built = b"Windows" if any(n.endswith(".pyd") for n in cores) else b"Linux or macOS"
    return b"this copy is built for %s, not for %s (get the one for this system)" % (
        built,
        sys.platform.encode(),
    )


def _load_extension(orig, ui, name, *args, **kwargs):
    module = orig(ui, name, *args, **kwargs)
    if module is not None and name.replace(b"/", b".").rsplit(b".", 1)[-1] == b"patchbomb":
        _wrap_patchbomb(module)
    return module


def _patchbomb_loaded(loaded):
    if loaded:
        _wrap_patchbomb(extensions.find(b"patchbomb"))
    else:
        summary, _sep, rest = _HELP.partition("\n")
        globals()["__doc__"] = "%s\n\n%s\n%s" % (summary, _NO_PATCHBOMB.decode(), rest)


def _wrap_patchbomb(patchbomb):
    if getattr(patchbomb, "_securesmtp_wrapped", False):
        return
    patchbomb._securesmtp_wrapped = True
    globals()["__doc__"] = _HELP
    entry = extensions.wrapcommand(patchbomb.cmdtable, b"email", _email)
    _email_options[:] = entry[1]
    # Loaded by an earlier command of this process: hg's table already holds
    # the entry as it was.
    from mercurial import commands

    for key, value in list(commands.table.items()):
        if value is entry:
            commands.table[key] = patchbomb.cmdtable[key]


def _email(orig, ui, repo, *revs, **opts):
    """``hg email`` with its series streamed and confirmed at the end, and
    its messages flattened without whole-body copies."""
    series = _import(ui, "series")
    if series is None:
        return orig(ui, repo, *revs, **opts)
    from . import flatten

    with flatten.installed():
        return series.run_series(orig, _email_options, ui, repo, *revs, **opts)


# Wrapping mail._smtp the usual way would load mercurial.mail (and with it
# smtplib and the email package) in every hg command. Instead the wrapper is
# installed when mercurial.mail's code runs, whoever imports it (patchbomb,
# notify, bugzilla, another extension). Under Mercurial's demandimport that
# is at the module's first attribute access, not at the import statement.
#
# A module whose package is already loaded (mercurial.mail) is put in
# sys.modules now as a lazy module, as demandimport would: that costs one
# lookup, once. Only modules of a package not yet loaded (mercurial.hgweb's)
# need a sys.meta_path finder, which every later import of the process
# consults; one finder serves them all (bench/import_cost.py measures this).

_LazyModule = getattr(importlib.util, "_LazyModule", None)


def _islazy(module):
    return _LazyModule is not None and isinstance(module, _LazyModule)


def _onload(name, callback):
    """Call ``callback(module)`` once module ``name`` has run its code."""
    module = sys.modules.get(name)
    if module is None and _loaded(name.rpartition(".")[0]):
        module = _lazy_import(name)
        if module is None:
            return  # not in this Mercurial
    if module is None:
        _Finder.wait_for(name, callback)
    elif _islazy(module):
        # Its code runs later, through the loader on its spec (reading
        # attributes the normal way would load it now).
        spec = object.__getattribute__(module, "__spec__")
        spec.loader = _Loader(spec.loader, callback)
    else:
        callback(module)


def _loaded(name):
    module = sys.modules.get(name)
    return module is not None and not _islazy(module)


def _lazy_import(name):
    """Module ``name`` in sys.modules and on its package, its code not run
    yet; None if there is no such module."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return None
    loader = spec.loader
    if isinstance(loader, importlib.util.LazyLoader):
        # demandimport's, which loads at once while it is deactivated.
        # (typeshed does not declare the attribute LazyLoader keeps it in.)
        loader = loader.loader  # type: ignore[attr-defined]
    spec.loader = importlib.util.LazyLoader(loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    package, _, attr = name.rpartition(".")
    setattr(sys.modules[package], attr, module)
    return module


class _Finder:
    """The ``sys.meta_path`` entry for modules waited for (one for all)."""

    _instance = None

    def __init__(self):
        self.waiting = {}

    @classmethod
    def wait_for(cls, name, callback):
        if cls._instance is None:
            cls._instance = cls()
            sys.meta_path.insert(0, cls._instance)
        cls._instance.waiting[name] = callback

    def find_spec(self, fullname, path, target=None):
        callback = self.waiting.get(fullname)
        if callback is None:
            return None
        spec = None
        for finder in list(sys.meta_path):
            # Mercurial's demandimport may have wrapped this finder.
            if finder is self or getattr(finder, "_finder", None) is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec else None
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        del self.waiting[fullname]
        if not self.waiting:
            self._remove()
        spec.loader = _Loader(spec.loader, callback)
        return spec

    def _remove(self):
        sys.meta_path[:] = [
            f for f in sys.meta_path if f is not self and getattr(f, "_finder", None) is not self
        ]
        type(self)._instance = None


class _Loader:
    """Runs the real loader, then the callback once the code has run."""

    def __init__(self, loader, callback):
        self.loader = loader
        self.callback = callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        spec = object.__getattribute__(module, "__spec__")
        self.loader.exec_module(module)
        if spec.loader is not self and _islazy(module):
            # Demandimport's loader only made the module lazy and put the
            # real loader on the spec; run after that one instead. (Python
            # 3.12+ keeps the lazy class while the code runs, so the class
            # alone cannot tell the two calls apart.)
            spec.loader = _Loader(spec.loader, self.callback)
            return
        spec.loader = self.loader
        if object.__getattribute__(module, "__loader__") is self:
            module.__loader__ = self.loader
        self.callback(module)
