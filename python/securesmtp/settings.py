"""Read hgrc into the arguments of ``_core.connect``.

Every setting keeps the meaning Mercurial gives it (see ``mail._smtp`` and
``sslutil``); what Mercurial silently accepted and we refuse (an unknown
``smtp.tls``) is a configuration error with a hint.
"""

import os
import socket

from mercurial import error, util
from mercurial.i18n import _
from mercurial.utils import stringutil, urlutil

from . import _core, errors
from .text import invisible, shown

_PROTOCOLS = (b"tls1.0", b"tls1.1", b"tls1.2", b"tls1.3")


def _visible(setting, value, what=b"valid"):
    """``value``, refused when it holds a character one cannot see. A
    non-breaking space or a zero-width space pasted from a web page survives
    Mercurial's stripping, and no setting read here can mean one; the error
    quotes the value as typed and names the character."""
    if isinstance(value, bytes) and invisible(value):
        raise error.ConfigError(
            _(b"%s is not %s: %s") % (setting, what, shown(value)),
            hint=_(b"retype the value of %s without that character") % setting,
        )
    return value


def _path_shown(path):
    """A path for a message: as stock shows it, unless it holds a
    character one cannot see."""
    return shown(path) if invisible(path) else path


def security(ui):
    """``none``, ``starttls`` or ``smtps`` from ``smtp.tls``."""
    value = _visible(b"smtp.tls", ui.config(b"smtp", b"tls"))
    if value is None or value.lower() in (b"", b"none"):
        return "none"
    low = value.lower()
    if low in (b"starttls", b"smtps"):
        return low.decode("ascii")
    flag = stringutil.parsebool(value)
    if flag is True:
        return "starttls"  # Mercurial's backward-compatible "tls = true"
    if flag is False:
        return "none"
    raise error.ConfigError(
        _(b"smtp.tls has unknown value %s") % shown(value),
        hint=_(b"use starttls, smtps or none"),
    )


def host(ui):
    value = _visible(b"smtp.host", ui.config(b"smtp", b"host"), b"a valid host name")
    if not value:
        raise error.Abort(_(b"smtp.host not configured - cannot send mail"))
    # An IPv6 literal may be written with brackets, as in a URL.
    if value.startswith(b"[") and value.endswith(b"]"):
        value = value[1:-1]
    return value


def _ascii_host(bhost):
    """An internationalised host name in the A-label form DNS and TLS use
    (UTS-46 / IDNA 2008, in the core; Python's "idna" codec is IDNA 2003,
    which turns faß.de into fass.de, another domain)."""
    name = bhost.decode("utf-8", "replace")
    ascii_name = _core.ascii_host(name)
    if ascii_name is None:
        raise error.ConfigError(
            _(b"smtp.host is not a valid host name: %s") % shown(bhost)
        )
    return ascii_name


def port(ui, mode):
    default = 465 if mode == "smtps" else 25
    raw = _visible(b"smtp.port", ui.config(b"smtp", b"port", default))
    try:
        value = urlutil.getport(raw)
    except error.Abort:
        # Mercurial's own message does not say which setting it read.
        raise error.ConfigError(
            _(b"smtp.port names no known service: %s") % shown(raw),
            hint=_(b"use a port number, or a service name from /etc/services "
                   b"(submission is 587, smtps 465)"),
        )
    if not 0 < value < 65536:
        raise error.ConfigError(
            _(b"smtp.port %d is out of range") % value,
            hint=_(b"use a port number from 1 to 65535 or a service name"),
        )
    return value


def hello_name(ui):
    name = _visible(b"smtp.local_hostname", ui.config(b"smtp", b"local_hostname"), b"a valid host name")
    if name:
        text = name.decode("utf-8", "replace")
        if not text.isascii():
            # EHLO takes A-labels (RFC 5321 4.1.2), as DNS does.
            text = _core.ascii_host(text) or text
        # Checked here so the error names this setting; the core refuses
        # the same names at EHLO, where it could only blame the addresses.
        if not text.isascii() or any(c.isspace() or not c.isprintable() or c in "<>" for c in text):
            raise error.ConfigError(
                _(b"smtp.local_hostname is not a valid host name: %s") % shown(name),
                hint=_(b"set smtp.local_hostname to this machine's name, or remove it"),
            )
        return text
    # What smtplib sends: the FQDN, or the address literal when there is none.
    fqdn = socket.getfqdn()
    return fqdn if "." in fqdn else "[127.0.0.1]"


def timeout(ui):
    """``smtp.timeout`` in seconds, checked by the core (which names the
    setting when it is unusable)."""
    value = _visible(b"smtp.timeout", ui.config(b"smtp", b"timeout"))
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return _core.timeout_seconds(value)
    except _core.SmtpError as exc:
        raise errors.convert(exc, b"")


def _path(ui, value, setting):
    path = util.expandpath(value)
    if not os.path.exists(path):
        raise error.Abort(
            _(b"path specified by %s does not exist: %s") % (setting, _path_shown(path)),
            hint=_(b"set %s to a PEM file of trusted certificates") % setting,
        )
    if os.path.isdir(path):
        # OpenSSL's CApath is a directory of hashed links; Mercurial, like
        # this extension, reads one file.
        raise error.Abort(
            _(b"%s names a directory, not a file: %s") % (setting, path),
            hint=_(b"put the CA certificates in one PEM file (cat DIR/*.pem > FILE) and set %s to it")
            % setting,
        )
    return path


def _client_file(value, setting):
    path = util.expandpath(value)
    if not os.path.exists(path):
        raise error.Abort(
            _(b"path specified by %s does not exist: %s") % (setting, _path_shown(path)),
            hint=_(b"set %s to a PEM file (certificate, or unencrypted key)") % setting,
        )
    return os.fsdecode(path)


def _minimum(ui, bhost):
    """The minimum TLS version, validated as stock validates it: the global
    value first (even when a per-host one overrides it), then the per-host
    one; names are lower case, as stock knows them."""
    # Mercurial registers these with a dynamic default: the caller names it
    # (else a devel-warn under devel.all-warnings).
    value = ui.config(b"hostsecurity", b"minimumprotocol", None) or b"tls1.2"
    _check_protocol(b"hostsecurity.minimumprotocol", value)
    value = ui.config(b"hostsecurity", b"%s:minimumprotocol" % bhost, None) or value
    _check_protocol(b"hostsecurity.%s:minimumprotocol" % bhost, value)
    # TLS 1.0 and 1.1 are never offered; a minimum below 1.2 is met by 1.2.
    return "tls1.3" if value == b"tls1.3" else "tls1.2"


def _check_protocol(setting, value):
    _visible(setting, value)
    if value not in _PROTOCOLS:
        raise error.ConfigError(
            _(b"unsupported protocol from %s: %s") % (setting, value),
            hint=_(b"valid protocols: %s") % b" ".join(_PROTOCOLS),
        )


def _warn_ignored_verifycert(ui):
    """``smtp.verifycert`` (Mercurial 2.6 to 3.8) is ignored by Mercurial
    since 3.9: it never weakens verification here either. Said once per
    process, however many connections it makes."""
    if ui.config(b"smtp", b"verifycert") is None or _warned_verifycert:
        return
    _warned_verifycert.append(True)
    ui.warn(
        _(
            b"warning: smtp.verifycert is ignored (Mercurial has not used it "
            b"since 3.9); the server's certificate is verified as usual; "
            b"to skip verification, use --insecure (not recommended)\n"
        )
    )


_warned_verifycert: list = []


def _joined(values):
    return " ".join(v.decode("ascii", "replace") for v in values) or None


def _certifi_bundle():
    """certifi's CA file when hg's Python can import certifi, else None.

    Stock Mercurial's default trust is then that file alone, not the
    system's store (``sslutil._defaultcacerts``): a CA the system trusts and
    certifi does not is refused there, so it is refused here too."""
    try:
        import certifi

        path = certifi.where()
    except (ImportError, AttributeError):
        return None
    return os.fsencode(path) if os.path.exists(path) else None


def verification(ui, bhost):
    """The keyword arguments of ``_core.connect`` that decide trust."""
    fingerprints = ui.configlist(b"hostsecurity", b"%s:fingerprints" % bhost)
    pubkeys = ui.configlist(b"hostsecurity", b"%s:pubkeys" % bhost)
    legacy = ui.configlist(b"hostfingerprints", bhost)
    load_default_roots = not ui.configbool(b"devel", b"disableloaddefaultcerts")
    cafile = None
    per_host = ui.config(b"hostsecurity", b"%s:verifycertsfile" % bhost)
    if per_host:
        cafile = _path(ui, per_host, b"hostsecurity.%s:verifycertsfile" % bhost)
    else:
        web = ui.config(b"web", b"cacerts")
        if web:
            cafile = _path(ui, web, b"web.cacerts")
        elif load_default_roots and not (fingerprints or pubkeys or legacy):
            # With a pin stock loads no CA file at all.
            cafile = _certifi_bundle()
    # Each read with the default Mercurial registered for it (a mismatched
    # one is a devel warning): the per-host cipher list has none.
    _visible(b"hostsecurity.%s:ciphers" % bhost, ui.config(b"hostsecurity", b"%s:ciphers" % bhost, None))
    _visible(b"hostsecurity.ciphers", ui.config(b"hostsecurity", b"ciphers"))
    for name, items in ((b"%s:fingerprints" % bhost, fingerprints), (b"%s:pubkeys" % bhost, pubkeys)):
        for item in items:
            _visible(b"hostsecurity." + name, item)
    for item in legacy:
        _visible(b"hostfingerprints.%s" % bhost, item)
    ciphers = ui.config(b"hostsecurity", b"%s:ciphers" % bhost, None) or ui.config(
        b"hostsecurity", b"ciphers"
    )
    client_cert = client_key = None
    value = ui.config(b"hostsecurity", b"%s:clientcert" % bhost)
    if value:
        client_cert = _client_file(value, b"hostsecurity.%s:clientcert" % bhost)
        key = ui.config(b"hostsecurity", b"%s:clientkey" % bhost)
        if key:
            client_key = _client_file(key, b"hostsecurity.%s:clientkey" % bhost)
    return {
        "client_cert": client_cert,
        "client_key": client_key,
        "ca_file": os.fsdecode(cafile) if cafile else None,
        "load_default_roots": load_default_roots,
        "fingerprints": _joined(fingerprints),
        "legacy_fingerprints": _joined(legacy),
        "pubkeys": _joined(pubkeys),
        "insecure": bool(ui.insecureconnections),
        "min_version": _minimum(ui, bhost),
        "ciphers": ciphers.decode("ascii", "replace") if ciphers else None,
    }


def connect_args(ui, bhost=None, bport=None, mode=None):
    """Everything ``_core.connect`` needs, validated. ``hg debugsmtp`` may
    name another host, port or TLS mode; the rest comes from hgrc."""
    mode = mode or security(ui)
    bhost = bhost or host(ui)
    for name in (b"username", b"auth"):
        _visible(b"smtp." + name, ui.config(b"smtp", name))
    args = {
        "host": _ascii_host(bhost),
        "port": port(ui, mode) if bport is None else bport,
        "security": mode,
        "hello_name": hello_name(ui),
        "timeout": timeout(ui),
        "pipelining": ui.configbool(b"smtp", b"pipelining"),
        "allow_cleartext_auth": ui.configbool(b"smtp", b"allow-cleartext-auth"),
    }
    if mode != "none":
        _warn_ignored_verifycert(ui)
        args.update(verification(ui, bhost))
    return args
