"""``hg debugsmtp``: what a mail server shows of itself, and how to pin it.

Connects the way ``hg email`` would, but never authenticates and never
sends mail. The handshake is completed even when the certificate fails
verification, so the chain can be reported; nothing but QUIT (and only on a
verified channel) is sent after it.
"""

from mercurial import error, pycompat
from mercurial.i18n import _

from . import _core, credentials, errors, settings
from .text import tobytes

# Warn when the server certificate expires sooner than this.
EXPIRY_WARNING_DAYS = 30

_MODES = ("none", "starttls", "smtps")


def parse_target(target):
    """``HOST``, ``HOST:PORT`` or ``[V6ADDR]:PORT`` into (host, port or None)."""
    if not target:
        raise error.InputError(_(b"empty server address"))
    if target.startswith(b"["):
        end = target.find(b"]")
        if end < 0:
            raise error.InputError(_(b"unterminated IPv6 address: %s") % target)
        host, rest = target[1:end], target[end + 1 :]
        if rest and not rest.startswith(b":"):
            raise error.InputError(_(b"cannot parse server address: %s") % target)
        port = rest[1:] or None
    elif target.count(b":") == 1:
        host, port = target.split(b":")
    else:
        host, port = target, None  # a bare IPv6 address has several colons
    if port is not None:
        try:
            port = int(port)
        except ValueError:
            from mercurial.utils import urlutil

            port = urlutil.getport(port)
        if not 0 < port < 65536:
            raise error.InputError(
                _(b"port %d is out of range") % port,
                hint=_(b"use a port number from 1 to 65535 or a service name"),
            )
    return host, port


def report(ui, target, opts):
    mode = opts.get("tls") or None
    if mode is not None:
        mode = mode.decode("ascii", "replace") if isinstance(mode, bytes) else mode
        mode = mode.lower()
        if mode not in _MODES:
            raise error.InputError(
                _(b"--tls must be none, starttls or smtps, not '%s'") % tobytes(mode)
            )
    bhost, bport = parse_target(target) if target else (None, None)
    args = settings.connect_args(ui, bhost, bport, mode)
    allowed = credentials.mechanisms(ui)
    args["inspect_only"] = True
    if ui.debugflag:
        args["transcript"] = lambda line: ui.debug(tobytes(line) + b"\n")
    args["notice"] = lambda line: ui.warn(tobytes(line) + b"\n")
    # The pin lines to paste are keyed by the host as written, as the
    # settings are looked up.
    host = bhost or settings.host(ui)
    try:
        session = _core.connect(**args)
    except _core.SmtpError as exc:
        raise errors.convert(exc, host)
    try:
        info = session.info()
        verdict = session.verdict()
        would_use = session.auth_mechanism(allowed)
    finally:
        session.quit()

    chain = _core.describe_chain(verdict.chain) if verdict else []
    item = {
        "host": host,
        "port": args["port"],
        "tls": tobytes(args["security"]),
        "address": tobytes(info["peer"]),
        "greeting": tobytes(info["greeting"]),
        "capabilities_cleartext": [tobytes(c) for c in info["cleartext_capabilities"] or []],
        "capabilities": [tobytes(c) for c in info["capabilities"]],
        # AUTH as offered on the channel hg email would log in over (after
        # TLS), and the mechanism it would pick with smtp.auth.
        "auth_mechanisms": [tobytes(m) for m in info["auth_mechanisms"]],
        "auth_allowed": [tobytes(m) for m in allowed or []],
        "auth_would_use": tobytes(would_use or ""),
        "tls_version": tobytes(info.get("tls_version")),
        "cipher_suite": tobytes(info.get("cipher_suite")),
        "key_exchange": tobytes(info.get("key_exchange")),
        "chain": [_bvalue(c) for c in chain],
        "verified": verdict is not None and verdict.trust != _core.Trust.FAILED,
        "trust": tobytes(verdict.trust.word) if verdict else b"",
        "failure": tobytes(verdict.failure or "") if verdict else b"",
        "pins": [],
        "warnings": [],
    }
    if chain:
        leaf = chain[0]
        item.update(
            sha256=tobytes(leaf["sha256"]),
            sha1=tobytes(leaf["sha1"]),
            sha512=tobytes(leaf["sha512"]),
            spki_sha256=tobytes(leaf["spki_sha256"]),
        )
        item["pins"] = [
            b"%s:fingerprints = %s" % (host, item["sha256"]),
            b"%s:pubkeys = %s" % (host, item["spki_sha256"]),
        ]
    item["warnings"] = _warnings(item, chain, info, verdict)
    return item


def _bvalue(v):
    if isinstance(v, str):
        return tobytes(v)
    if isinstance(v, list):
        return [_bvalue(x) for x in v]
    if isinstance(v, dict):
        return {tobytes(k): _bvalue(x) for k, x in v.items()}
    return v


def _warnings(item, chain, info, verdict):
    out = []
    if chain and chain[0]["days_left"] < EXPIRY_WARNING_DAYS:
        days = chain[0]["days_left"]
        if days < 0:
            out.append(_(b"the server certificate expired %d days ago") % -days)
        else:
            out.append(_(b"the server certificate expires in %d days") % days)
    failure = (verdict.failure if verdict else None) or ""
    if chain and "unknown authority" in failure and not chain[-1]["self_signed"]:
        out.append(
            _(
                b"the server sent %d certificate(s) and the issuer of the last "
                b"one (%s) is neither among them nor a trusted root: the chain "
                b"may be incomplete, or signed by a CA you do not trust"
            )
            % (len(chain), tobytes(chain[-1]["issuer"]))
        )
    cleartext = info.get("cleartext_capabilities") or []
    if any(c.upper().startswith("AUTH") for c in cleartext):
        out.append(_(b"the server offers AUTH before TLS (passwords could be sent in cleartext)"))
    if item["tls"] == b"none" and any(c.upper().startswith("AUTH") for c in info["capabilities"]):
        out.append(_(b"the connection is not encrypted and the server offers AUTH"))
    if item["tls"] == b"none" and any(c.upper() == "STARTTLS" for c in info["capabilities"]):
        # Such servers usually offer AUTH only after STARTTLS: hg email
        # would then fail with "the server offers no authentication".
        out.append(_(b"the server offers STARTTLS, which smtp.tls = none does not use (set smtp.tls = starttls)"))
    return out


def _verdict_text(item):
    if item["tls"] == b"none":
        return _(b"not encrypted (smtp.tls=none)")
    if item["verified"]:
        return {
            b"ca": _(b"passed: signed by a trusted certificate authority"),
            b"self": _(b"passed: the certificate is listed in the CA file"),
            b"commonname": _(b"passed: CA file, matched by common name (no subjectAltName)"),
            b"pin": _(b"passed: matches a pinned fingerprint or public key"),
            b"insecure": _(b"NOT CHECKED (--insecure)"),
        }.get(item["trust"], item["trust"])
    return _(b"FAILED: %s") % item["failure"]


def write_plain(ui, item):
    w = ui.write
    w(_(b"server: %s port %d (%s)\n") % (item["host"], item["port"], item["tls"]))
    w(_(b"address: %s\n") % item["address"])
    w(_(b"greeting: %s\n") % item["greeting"])
    if item["capabilities_cleartext"]:
        w(_(b"capabilities before TLS: %s\n") % b", ".join(item["capabilities_cleartext"]))
    if item["tls_version"]:
        w(
            _(b"TLS: %s, cipher suite %s, key exchange %s\n")
            % (item["tls_version"], item["cipher_suite"], item["key_exchange"])
        )
    if item["capabilities"]:
        label = _(b"capabilities after TLS") if item["tls"] != b"none" else _(b"capabilities")
        w(b"%s: %s\n" % (label, b", ".join(item["capabilities"])))
    if item["chain"]:
        w(_(b"certificate chain as sent (%d):\n") % len(item["chain"]))
        for n, c in enumerate(pycompat.strkwargs(c) for c in item["chain"]):
            w(b"  %d: %s\n" % (n, c["subject"]))
            w(_(b"     issuer: %s\n") % c["issuer"])
            if c["sans"]:
                w(_(b"     names: %s\n") % b", ".join(c["sans"]))
            w(
                _(b"     valid: %s to %s (%d days left)\n")
                % (c["not_before"], c["not_after"], c["days_left"])
            )
            w(_(b"     signature: %s; key: %s\n") % (c["signature_algorithm"], c["key"]))
        w(_(b"server certificate fingerprints:\n"))
        for alg in ("sha256", "sha1", "sha512"):
            w(b"  %s\n" % item[alg])
        w(_(b"public key (SPKI) pin: %s\n") % item["spki_sha256"])
    w(_(b"verification: %s\n") % _verdict_text(item))
    _write_auth(ui, item)
    if item["pins"]:
        w(_(b"to pin this server, add to your hgrc (either line will do):\n"))
        w(b"  [hostsecurity]\n")
        for line in item["pins"]:
            w(b"  %s\n" % line)


def _write_auth(ui, item):
    w = ui.write
    offered = item["auth_mechanisms"]
    if item["tls"] != b"none" and not item["verified"]:
        # Nothing but QUIT follows a failed verification, so the server was
        # never asked what it offers after TLS: "none" would be a guess.
        w(_(b"AUTH mechanisms offered: not asked (the certificate did not verify)\n"))
        return
    w(_(b"AUTH mechanisms offered: %s\n") % (b", ".join(offered) or _(b"none")))
    allowed = item["auth_allowed"]
    setting = (
        _(b"smtp.auth = %s") % b", ".join(m.lower() for m in allowed)
        if allowed
        else _(b"smtp.auth unset: the strongest password mechanism")
    )
    if item["auth_would_use"]:
        w(_(b"hg email would authenticate with: %s (%s)\n") % (item["auth_would_use"], setting))
    elif offered:
        w(_(b"hg email could not authenticate: none of the allowed mechanisms is offered (%s)\n") % setting)


def debugsmtp(ui, target=None, **opts):
    item = report(ui, target, opts)
    for warning in item["warnings"]:
        ui.warn(_(b"warning: %s\n") % warning)
    fm = ui.formatter(b"debugsmtp", pycompat.byteskwargs(opts))
    if fm.isplain():
        write_plain(ui, item)
    else:
        fm.startitem()
        fm.data(**item)
    fm.end()
    # Scripts can tell a server that would be refused from one that would not.
    return 0 if item["verified"] or item["tls"] == b"none" else 1
