"""``hg debugsmtp`` (issue 4): what a mail server shows of itself, checked
against values computed here from the PEM with ``cryptography``; the pins it
prints, pasted into hgrc, make ``hg email`` work; public-key pins survive a
renewal on the same key where certificate pins do not.

Real ``hg`` (debugsmtp and email), real aiosmtpd servers, certificates made
at test time.
"""

import base64
import dataclasses
import datetime
import hashlib
import json
import os
import re
import socket

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from support import hg, servers
from support import pki as pkimod
from support.asserts import assert_ok, assert_series_delivered, assert_verification_refused

DAY = datetime.timedelta(days=1)


# -- independent expectations from the PEM ------------------------------------


def _fp(cert, algorithm, name):
    return name + ":" + cert.fingerprint(algorithm).hex(":")


def _spki_pin(cert):
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _spki_hex(cert):
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _dn(name):
    # The order the certificate holds them in (not RFC 4514's reversed order).
    return ", ".join("%s=%s" % (a.rfc4514_attribute_name, a.value) for a in name)


def _key_text(cert):
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA %d" % key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        return "ECDSA " + curve
    raise AssertionError(key)


def _sans(cert):
    """The names a certificate presents: its DNS and IP subjectAltNames, or,
    without that extension, its common names (what a CN-only certificate is
    matched against)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [str(v.value) for v in ext]


def _when(dt):
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC")


def _days_left(cert):
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return left // DAY


def expected(cert):
    """What debugsmtp must say about ``cert`` (an x509.Certificate)."""
    return {
        "subject": _dn(cert.subject),
        "issuer": _dn(cert.issuer),
        "sans": _sans(cert),
        "not_before": _when(cert.not_valid_before_utc),
        "not_after": _when(cert.not_valid_after_utc),
        "days_left": _days_left(cert),
        "signature_algorithm": cert.signature_algorithm_oid._name,
        "key": _key_text(cert),
        "sha256": _fp(cert, hashes.SHA256(), "sha256"),
        "sha1": _fp(cert, hashes.SHA1(), "sha1"),
        "sha512": _fp(cert, hashes.SHA512(), "sha512"),
        "spki_sha256": _spki_pin(cert),
    }


# -- certificates the shared PKI does not have ----------------------------------


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _san_ext(names):
    import ipaddress

    entries = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def _self_signed(key, names, not_before, not_after):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_san_ext(names), critical=False)
        .sign(key, hashes.SHA256())
    )


def _ca_signed(key, names, ca, not_before, not_after):
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securesmtp tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san_ext(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()),
            critical=False,
        )
        .sign(ca.private_key, hashes.SHA256())
    )


def _certfiles(directory, name, cert, key):
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = os.path.join(directory, name + ".pem")
    key_path = os.path.join(directory, name + ".key")
    with open(cert_path, "wb") as fp:
        fp.write(pem)
    with open(key_path, "wb") as fp:
        fp.write(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    return pkimod.CertFiles(
        name=name, cert=cert_path, key=key_path, chain=cert_path, pem=pem,
        certificate=cert, private_key=key,
    )


@dataclasses.dataclass
class Extra:
    original: pkimod.CertFiles  # self-signed, localhost
    renewed: pkimod.CertFiles  # the same key, new serial and validity
    expiring: pkimod.CertFiles  # signed by the test CA, 10 days and 6 hours left


@pytest.fixture(scope="module")
def extra(pki, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("debugsmtp-pki"))
    now = _now()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = ["localhost", "127.0.0.1", "::1"]
    original = _self_signed(key, names, now - 400 * DAY, now + 30 * DAY + DAY)
    renewed = _self_signed(key, names, now - DAY, now + 365 * DAY)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    expiring = _ca_signed(ec_key, names, pki.ca, now - 300 * DAY,
                          now + 10 * DAY + datetime.timedelta(hours=6))
    files = Extra(
        original=_certfiles(d, "original", original, key),
        renewed=_certfiles(d, "renewed", renewed, key),
        expiring=_certfiles(d, "expiring", expiring, ec_key),
    )
    assert files.original.certificate.serial_number != files.renewed.certificate.serial_number
    assert files.original.sha256 != files.renewed.sha256
    assert _spki_pin(original) == _spki_pin(renewed)
    return files


# -- servers ----------------------------------------------------------------------


def _ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def server_factory():
    """``make(cert, mode, ipv6=False, auth_before_tls=False, creds=True)``:
    a started recording server (stopped at the end of the test)."""
    started = []

    def make(cert, mode="starttls", ipv6=False, auth_before_tls=False, creds=True, **kw):
        if creds:
            kw.update(user=servers.USER, password=servers.PASSWORD)
        server = servers.SmtpServer(cert, mode, **kw)
        if ipv6:
            server._kwargs["hostname"] = "::1"
        if auth_before_tls:
            server._kwargs["auth_require_tls"] = False
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _hgrc(port, mode="starttls", cacerts=None, **kw):
    # Credentials everywhere: debugsmtp must still never send AUTH.
    return hg.smtp_hgrc(
        port, tls=mode, cacerts=cacerts, username=servers.USER, password=servers.PASSWORD, **kw
    )


def _reset(server):
    """Forget what the server saw so far (a debugsmtp run before hg email)."""
    assert server.wait_idle(5)
    with server._lock:
        server.connections = 0
        server._commands.clear()
        server._transcript.clear()
        server._raw_bytes.clear()


@pytest.fixture(scope="module")
def repo1(tmp_path_factory):
    """A repository with one patch to mail (hg runs are the cost here)."""
    return hg.make_repo(tmp_path_factory.mktemp("hg1"), n_patches=1)


def email_args():
    return hg.email_args(n_patches=1)


@pytest.fixture(scope="module")
def series1(repo1):
    """The message ``hg email --mbox`` writes for ``email_args()``, by stock hg."""
    msgs = hg.mbox_messages(repo1, email_args())
    assert len(msgs) == 1, msgs
    return msgs


def debugsmtp(args=(), hgrc=None, cwd=None):
    return hg.run_hg(cwd or os.getcwd(), ["debugsmtp"] + [str(a) for a in args], hgrc)


# -- the plain report, parsed ---------------------------------------------------


def parse_plain(out):
    """The plain report as a dict: single-line fields, ``chain`` (list of
    dicts), ``fingerprints`` (list), ``pins`` (the lines after
    ``[hostsecurity]``)."""
    r = {"chain": [], "fingerprints": [], "pins": []}
    section = None
    for line in out.splitlines():
        m = re.match(r"server: (\S+) port (\d+) \((\w+)\)$", line)
        if m:
            r["host"], r["port"], r["tls"] = m.group(1), int(m.group(2)), m.group(3)
        elif line.startswith("address: "):
            r["address"] = line[len("address: "):]
        elif line.startswith("greeting: "):
            r["greeting"] = line[len("greeting: "):]
        elif line.startswith("capabilities before TLS: "):
            r["before"] = line.split(": ", 1)[1].split(", ")
        elif line.startswith("capabilities after TLS: "):
            r["after"] = line.split(": ", 1)[1].split(", ")
        elif line.startswith("TLS: "):
            m = re.match(r"TLS: (\S+), cipher suite (\S+), key exchange (\S+)$", line)
            assert m, line
            r["tls_version"], r["cipher_suite"], r["key_exchange"] = m.groups()
        elif line.startswith("certificate chain as sent"):
            section = "chain"
            r["chain_count"] = int(re.search(r"\((\d+)\)", line).group(1))
        elif line == "server certificate fingerprints:":
            section = "fingerprints"
        elif line.startswith("public key (SPKI) pin: "):
            section = None
            r["spki_sha256"] = line.split(": ", 1)[1]
        elif line.startswith("verification: "):
            section = None
            r["verification"] = line[len("verification: "):]
        elif line.startswith("to pin this server"):
            section = "pins"
        elif section == "chain":
            m = re.match(r"  (\d+): (.*)$", line)
            if m:
                r["chain"].append({"subject": m.group(2)})
            else:
                c = r["chain"][-1]
                s = line.strip()
                if s.startswith("issuer: "):
                    c["issuer"] = s[len("issuer: "):]
                elif s.startswith("names: "):
                    c["sans"] = s[len("names: "):].split(", ")
                elif s.startswith("valid: "):
                    m = re.match(r"valid: (.*) to (.*) \((-?\d+) days left\)$", s)
                    assert m, s
                    c["not_before"], c["not_after"] = m.group(1), m.group(2)
                    c["days_left"] = int(m.group(3))
                elif s.startswith("signature: "):
                    m = re.match(r"signature: (.*); key: (.*)$", s)
                    assert m, s
                    c["signature_algorithm"], c["key"] = m.groups()
                else:
                    raise AssertionError("unexpected chain line %r" % line)
        elif section == "fingerprints":
            r["fingerprints"].append(line.strip())
        elif section == "pins":
            if line.strip() != "[hostsecurity]":
                r["pins"].append(line.strip())
    return r


def pin_block(out, kind):
    """The ``[hostsecurity]`` block as printed, with only the ``kind`` line
    (``fingerprints`` or ``pubkeys``), dedented: what a user pastes."""
    lines = out.splitlines()
    start = lines.index("  [hostsecurity]")
    block = ["[hostsecurity]"]
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        if (":%s = " % kind) in line:
            block.append(line.strip())
    assert len(block) == 2, "no %s line in:\n%s" % (kind, out)
    return "\n".join(block) + "\n"


def assert_chain_entry(got, cert):
    want = expected(cert)
    got = dict(got)
    got.setdefault("sans", [])  # no "names:" line for a certificate without SANs
    for key in ("subject", "issuer", "sans", "not_before", "not_after",
                "signature_algorithm", "key"):
        assert got.get(key) == want[key], "%s: got %r, expected %r" % (key, got.get(key), want[key])
    # Time passes between the command and this check: the count can only
    # have gone down since.
    assert got["days_left"] in (want["days_left"], want["days_left"] + 1), (got, want)


def assert_fingerprints(report, cert):
    want = expected(cert)
    assert report["fingerprints"] == [want["sha256"], want["sha1"], want["sha512"]], (
        report["fingerprints"], want)
    assert report["spki_sha256"] == want["spki_sha256"]


def assert_only_looked(server, mode, verified=True):
    """debugsmtp said EHLO (and STARTTLS), maybe EHLO again and QUIT on a
    verified channel, and nothing else: no AUTH, no envelope, no message."""
    server.assert_nothing_sent()
    verbs = server.verbs
    if mode == "starttls":
        want = ["EHLO", "STARTTLS"] + (["EHLO", "QUIT"] if verified else [])
    else:
        want = ["EHLO", "QUIT"] if verified else []
    assert verbs == want, "server saw %r, expected %r:\n%s" % (verbs, want, server.transcript_text())


# -- the report ---------------------------------------------------------------------


@pytest.mark.parametrize("mode,keytype", [("starttls", "rsa"), ("smtps", "ecdsa")])
def test_report_ca_signed(tmp_path, pki, server_factory, mode, keytype):
    cert = pki.leaf(keytype)
    server = server_factory(cert, mode)
    cfg = _hgrc(server.port, mode, cacerts=pki.ca.cert)
    code, out, err = debugsmtp([], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert err == "", err  # no warning for a certificate with a year left
    r = parse_plain(out)
    assert (r["host"], r["port"], r["tls"]) == ("localhost", server.port, mode), out
    assert r["address"] == "127.0.0.1:%d" % server.port, out
    assert r["greeting"].startswith("220 mx.securesmtp.test"), out
    if mode == "starttls":
        assert "STARTTLS" in r["before"], out
        assert not any(c.startswith("AUTH") for c in r["before"]), out
    else:
        assert "before" not in r, out
        assert "capabilities before TLS" not in out
    assert "AUTH LOGIN PLAIN" in r["after"], out
    assert "STARTTLS" not in r["after"], out
    assert r["tls_version"] == "TLSv1.3", out
    assert r["cipher_suite"].startswith("TLS13_"), out
    assert r["key_exchange"], out
    assert r["chain_count"] == 1 and len(r["chain"]) == 1, out
    assert_chain_entry(r["chain"][0], cert.certificate)
    assert_fingerprints(r, cert.certificate)
    assert r["verification"] == "passed: signed by a trusted certificate authority", out
    want = expected(cert.certificate)
    assert r["pins"] == [
        "localhost:fingerprints = %s" % want["sha256"],
        "localhost:pubkeys = %s" % want["spki_sha256"],
    ], out
    # The support module's fingerprints (made another way) agree.
    assert want["sha256"] == cert.sha256 and want["sha512"] == cert.sha512
    server.wait_idle(5)
    assert_only_looked(server, mode)

    # -T json: the same values, as data.
    _reset(server)
    code, jout, err = debugsmtp(["-T", "json"], cfg, cwd=tmp_path)
    assert code == 0, (code, jout, err)
    data = json.loads(jout)
    assert isinstance(data, list) and len(data) == 1, jout
    d = data[0]
    for alg in ("sha256", "sha1", "sha512", "spki_sha256"):
        assert d[alg] == want[alg], (alg, d[alg], want[alg])
    assert [d["sha256"], d["sha1"], d["sha512"]] == r["fingerprints"]
    assert d["spki_sha256"] == r["spki_sha256"]
    assert d["verified"] is True
    assert d["trust"] == "ca"
    assert d["failure"] == ""
    assert d["host"] == "localhost" and d["port"] == server.port and d["tls"] == mode
    for key in ("address", "greeting", "tls_version", "cipher_suite", "key_exchange"):
        assert d[key] == r[key], (key, d[key], r[key])
    assert d["capabilities"] == r["after"]
    assert d["capabilities_cleartext"] == r.get("before", [])
    assert d["pins"] == r["pins"]
    assert d["warnings"] == []
    assert isinstance(d["chain"], list) and len(d["chain"]) == len(r["chain"]) == 1
    got = d["chain"][0]
    for key, value in r["chain"][0].items():
        if key == "days_left":
            # The JSON run came later: a day boundary may have passed.
            assert got[key] in (value, value - 1), (key, got[key], value)
        else:
            assert got[key] == value, (key, got[key], value)
    assert got["sha256"] == want["sha256"] and got["spki_sha256"] == want["spki_sha256"]
    assert got["self_signed"] is False
    server.wait_idle(5)
    assert_only_looked(server, mode)


def test_template_fingerprint_only(tmp_path, pki, server_factory):
    server = server_factory(pki.ecdsa, "smtps")
    cfg = _hgrc(server.port, "smtps", cacerts=pki.ca.cert)
    code, out, err = debugsmtp(["-T", "{sha256}\\n"], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert out == expected(pki.ecdsa.certificate)["sha256"] + "\n", out


def test_report_tls12(tmp_path, pki, server_factory):
    # The version and suite reported are the negotiated ones.
    server = server_factory(pki.ecdsa, "starttls", max_tls="1.2")
    code, out, err = debugsmtp([], _hgrc(server.port, cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 0, (code, out, err)
    r = parse_plain(out)
    assert r["tls_version"] == "TLSv1.2", out
    assert "ECDHE" in r["cipher_suite"] and "ECDSA" in r["cipher_suite"], out


def test_report_full_chain(tmp_path, pki, server_factory):
    cert = pki.via_intermediate  # the server sends leaf + intermediate
    server = server_factory(cert, "smtps")
    code, out, err = debugsmtp([], _hgrc(server.port, "smtps", cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert "incomplete" not in err, err
    r = parse_plain(out)
    assert r["chain_count"] == 2 and len(r["chain"]) == 2, out
    assert_chain_entry(r["chain"][0], cert.certificate)
    assert_chain_entry(r["chain"][1], pki.intermediate.certificate)
    assert_fingerprints(r, cert.certificate)  # the leaf's, not the intermediate's
    assert r["verification"] == "passed: signed by a trusted certificate authority", out


# -- failures, and pinning from the printed lines ----------------------------------


@pytest.mark.parametrize("kind", ["fingerprints", "pubkeys"])
def test_self_signed_then_pasted_pin(repo1, series1, tmp_path, pki, server_factory, mode, kind):
    server = server_factory(pki.selfsigned, mode)
    base = hg.hgrc_text(_hgrc(server.port, mode, cacerts=pki.ca.cert))
    code, out, err = debugsmtp([], base, cwd=tmp_path)
    assert code == 1, (code, out, err)
    r = parse_plain(out)
    assert r["verification"].startswith("FAILED: "), out
    assert "self-signed" in r["verification"], out
    assert_fingerprints(r, pki.selfsigned.certificate)
    assert_chain_entry(r["chain"][0], pki.selfsigned.certificate)
    server.wait_idle(5)
    # The handshake was completed for the report; nothing was sent on it.
    assert_only_looked(server, mode, verified=False)

    pasted = pin_block(out, kind)
    _reset(server)
    code, out2, err2 = debugsmtp([], base + pasted, cwd=tmp_path)
    assert code == 0, (code, out2, err2)
    assert parse_plain(out2)["verification"] == "passed: matches a pinned fingerprint or public key"
    server.wait_idle(5)
    assert_only_looked(server, mode)

    _reset(server)
    assert_ok(hg.run_hg(repo1, email_args(), base + pasted))
    assert_series_delivered(server, series1, mode)


def test_expired(tmp_path, pki, server_factory):
    server = server_factory(pki.expired, "smtps")
    code, out, err = debugsmtp([], _hgrc(server.port, "smtps", cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 1, (code, out, err)
    r = parse_plain(out)
    assert r["verification"].startswith("FAILED: "), out
    assert "expired" in r["verification"] and "2020-02-01" in r["verification"], out
    m = re.search(r"warning: the server certificate expired (\d+) days ago", err)
    days = -_days_left(pki.expired.certificate)
    assert m and int(m.group(1)) in (days, days - 1), (days, err)
    assert_fingerprints(r, pki.expired.certificate)
    server.wait_idle(5)
    assert_only_looked(server, "smtps", verified=False)


def test_wrong_host(tmp_path, pki, server_factory):
    server = server_factory(pki.wrong_host, "starttls")
    code, out, err = debugsmtp([], _hgrc(server.port, cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 1, (code, out, err)
    r = parse_plain(out)
    assert r["verification"].startswith("FAILED: "), out
    assert "mail.example.org, not localhost" in r["verification"], out
    assert "warning" not in err, err
    assert_fingerprints(r, pki.wrong_host.certificate)
    server.wait_idle(5)
    assert_only_looked(server, "starttls", verified=False)

    # The same failure as data: not verified, why, and the fingerprints.
    code, jout, err = debugsmtp(["-T", "json"], _hgrc(server.port, cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 1, (code, jout, err)
    d = json.loads(jout)[0]
    assert d["verified"] is False and d["trust"] == "failed", d
    assert "FAILED: " + d["failure"] == r["verification"], (d["failure"], r["verification"])
    assert d["sha256"] == pki.wrong_host.sha256 and d["pins"] == r["pins"], d


def test_expiring_soon_warning(tmp_path, pki, extra, server_factory):
    server = server_factory(extra.expiring, "starttls")
    cfg = _hgrc(server.port, cacerts=pki.ca.cert)
    code, out, err = debugsmtp(["-T", "json"], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert "warning: the server certificate expires in 10 days\n" in err, err
    d = json.loads(out)[0]
    assert d["verified"] is True and d["trust"] == "ca", d
    assert d["chain"][0]["days_left"] == 10, d
    assert d["warnings"] == ["the server certificate expires in 10 days"], d


def test_incomplete_chain(tmp_path, pki, server_factory):
    cert = pki.via_intermediate
    leaf_only = dataclasses.replace(cert, chain=cert.leaf_only)
    server = server_factory(leaf_only, "starttls")
    code, out, err = debugsmtp([], _hgrc(server.port, cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 1, (code, out, err)
    r = parse_plain(out)
    assert r["verification"].startswith("FAILED: "), out
    assert r["chain_count"] == 1, out
    warnings = [l for l in err.splitlines() if l.startswith("warning: ")]
    assert any("chain may be incomplete" in w for w in warnings), err
    assert any("securesmtp Test Intermediate" in w for w in warnings), err
    assert_fingerprints(r, cert.certificate)
    server.wait_idle(5)
    assert_only_looked(server, "starttls", verified=False)


def test_auth_before_tls_warning(tmp_path, pki, server_factory):
    server = server_factory(pki.rsa, "starttls", auth_before_tls=True)
    code, out, err = debugsmtp([], _hgrc(server.port, cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == 0, (code, out, err)
    r = parse_plain(out)
    assert any(c.startswith("AUTH") for c in r["before"]), out
    assert "warning: the server offers AUTH before TLS" in err, err
    server.wait_idle(5)
    assert_only_looked(server, "starttls")


# -- public-key pins ------------------------------------------------------------------


def test_renewal_on_the_same_key(repo1, series1, tmp_path, extra, server_factory, mode):
    # The user pins the server from what debugsmtp printed ...
    old_server = server_factory(extra.original, mode)
    code, out, err = debugsmtp([], _hgrc(old_server.port, mode), cwd=tmp_path)
    assert code == 1, (code, out, err)  # self-signed, not yet pinned
    old = expected(extra.original.certificate)
    assert parse_plain(out)["pins"] == [
        "localhost:fingerprints = %s" % old["sha256"],
        "localhost:pubkeys = %s" % old["spki_sha256"],
    ], out
    by_fingerprint = pin_block(out, "fingerprints")
    by_pubkey = pin_block(out, "pubkeys")

    # ... then the certificate is renewed: same key, new serial and validity.
    server = server_factory(extra.renewed, mode)
    base = hg.hgrc_text(_hgrc(server.port, mode))

    # The certificate pin no longer matches: refused before AUTH.
    result = hg.run_hg(repo1, email_args(), base + by_fingerprint)
    assert_verification_refused(result, server, extra.renewed, "does not match")
    assert old["sha256"] in result[2].splitlines()[0], result[2]
    assert not server.saw("AUTH") and not server.saw("MAIL")

    # The public-key pin still does.
    _reset(server)
    assert_ok(hg.run_hg(repo1, email_args(), base + by_pubkey))
    assert_series_delivered(server, series1, mode)
    assert server.saw("AUTH")

    if mode == "starttls":
        # And debugsmtp says so.
        _reset(server)
        code, out, err = debugsmtp([], base + by_pubkey, cwd=tmp_path)
        assert code == 0, (code, out, err)
        r = parse_plain(out)
        assert r["verification"] == "passed: matches a pinned fingerprint or public key", out
        assert r["spki_sha256"] == old["spki_sha256"]
        assert r["fingerprints"][0] == extra.renewed.sha256 != old["sha256"]
        code, out, err = debugsmtp([], base + by_fingerprint, cwd=tmp_path)
        assert code == 1, (code, out, err)
        verdict = parse_plain(out)["verification"]
        assert verdict.startswith("FAILED: ") and "does not match" in verdict, out


@pytest.mark.parametrize("insecure", [False, True])
def test_pubkey_pin_of_another_key_refused(repo1, pki, server_factory, insecure):
    # A pin replaces the CA check (a CA-valid certificate on another key is
    # refused), and --insecure does not turn it off.
    server = server_factory(pki.rsa, "starttls")
    cfg = _hgrc(server.port, cacerts=pki.ca.cert,
                hostsecurity={"localhost:pubkeys": _spki_pin(pki.ecdsa.certificate)})
    result = hg.run_hg(repo1, email_args() + (["--insecure"] if insecure else []), cfg)
    assert_verification_refused(result, server, pki.rsa, "does not match")


def test_pubkey_pin_mismatch_message(repo1, pki, server_factory):
    # With only a public-key pin configured, the refusal should speak of the
    # public key and show the server's actual public-key pin (the line the
    # user has to update), as it shows the fingerprint for a fingerprint pin.
    server = server_factory(pki.rsa, "starttls")
    cfg = _hgrc(server.port, hostsecurity={"localhost:pubkeys": _spki_pin(pki.ecdsa.certificate)})
    code, out, err = hg.run_hg(repo1, email_args(), cfg)
    assert code == 255, (code, out, err)
    first = err.splitlines()[0]
    assert "public key" in first, first
    assert "localhost:pubkeys = %s" % _spki_pin(pki.rsa.certificate) in err, err


def test_fingerprint_and_pubkey_pins_combined(tmp_path, pki, server_factory):
    # Either kind matching is enough: a stale fingerprint, the right key.
    server = server_factory(pki.rsa, "smtps")
    cfg = _hgrc(server.port, "smtps", hostsecurity={
        "localhost:fingerprints": pki.ecdsa.sha256,
        "localhost:pubkeys": _spki_pin(pki.rsa.certificate),
    })
    code, out, err = debugsmtp(["-T", "json"], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    d = json.loads(out)[0]
    assert d["verified"] is True and d["trust"] == "pin", d


def test_pubkey_pin_hex(repo1, series1, extra, pki, server_factory):
    # Hex instead of base64, in a list whose first entry is another key's pin.
    hexpin = _spki_hex(extra.renewed.certificate)
    pins = "%s, sha256:%s" % (_spki_pin(pki.rsa.certificate), hexpin)
    server = server_factory(extra.renewed, "starttls")
    cfg = _hgrc(server.port, hostsecurity={"localhost:pubkeys": pins})
    assert_ok(hg.run_hg(repo1, email_args(), cfg))
    assert_series_delivered(server, series1, "starttls")


@pytest.mark.parametrize("spelling", ["HEX", "hex-colons"])
def test_pubkey_pin_hex_spellings(tmp_path, extra, server_factory, spelling):
    # Case and colons do not matter in fingerprints; nor should they here.
    hexpin = _spki_hex(extra.renewed.certificate)
    value = hexpin.upper() if spelling == "HEX" else ":".join(
        hexpin[i:i + 2] for i in range(0, len(hexpin), 2))
    server = server_factory(extra.renewed, "smtps")
    cfg = _hgrc(server.port, "smtps", hostsecurity={"localhost:pubkeys": "sha256:" + value})
    code, out, err = debugsmtp([], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert parse_plain(out)["verification"].startswith("passed"), out


@pytest.mark.parametrize("value", [
    "sha256:not*base64!",
    "sha256:AAAA",  # decodes, but not 32 bytes
    "wgtHEA0r+mBvdqm6baUkSZKcb217Ls5lgbMa+WIl1Dc=",  # no algorithm
])
def test_malformed_pubkeys(repo1, extra, server_factory, value):
    server = server_factory(extra.renewed, "starttls")
    cfg = _hgrc(server.port, hostsecurity={"localhost:pubkeys": value})
    code, out, err = hg.run_hg(repo1, email_args(), cfg)
    assert code == 255, (code, out, err)
    assert err.startswith("abort: ") or err.startswith("config error"), err
    assert "hostsecurity.localhost:pubkeys" in err, err
    server.wait_idle(5)
    server.assert_nothing_sent()


def test_malformed_pubkeys_debugsmtp(tmp_path, extra, server_factory):
    server = server_factory(extra.renewed, "starttls")
    cfg = _hgrc(server.port, hostsecurity={"localhost:pubkeys": "md5:" + "ab" * 16})
    code, out, err = debugsmtp(["--config", "ui.detailed-exit-code=yes"], cfg, cwd=tmp_path)
    assert code == 30, (code, out, err)  # a configuration error
    assert "hostsecurity.localhost:pubkeys" in err, err
    server.wait_idle(5)
    server.assert_nothing_sent()


# -- command line ---------------------------------------------------------------------


def test_tls_override(tmp_path, pki, server_factory):
    # hgrc names a working STARTTLS server; --tls smtps and an address reach
    # the SMTPS one instead.
    starttls = server_factory(pki.rsa, "starttls")
    smtps = server_factory(pki.ecdsa, "smtps")
    cfg = _hgrc(starttls.port, "starttls", cacerts=pki.ca.cert)
    code, out, err = debugsmtp([], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert parse_plain(out)["tls"] == "starttls"
    code, out, err = debugsmtp(["--tls", "smtps", "localhost:%d" % smtps.port], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    r = parse_plain(out)
    assert (r["host"], r["port"], r["tls"]) == ("localhost", smtps.port, "smtps"), out
    assert "before" not in r
    assert_fingerprints(r, pki.ecdsa.certificate)
    assert r["verification"] == "passed: signed by a trusted certificate authority", out
    smtps.wait_idle(5)
    starttls.wait_idle(5)
    assert_only_looked(smtps, "smtps")
    assert starttls.connections == 1  # the first run only


def test_tls_none_override(tmp_path, pki, server_factory):
    # Cleartext on request: no chain, no pin lines, exit 0.
    server = server_factory(pki.rsa, "starttls")
    cfg = _hgrc(server.port, "smtps", cacerts=pki.ca.cert)
    code, out, err = debugsmtp(["--tls", "none", "localhost:%d" % server.port], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    r = parse_plain(out)
    assert r["tls"] == "none", out
    assert r["verification"].startswith("not encrypted"), out
    assert not r["chain"] and not r["pins"], out
    server.wait_idle(5)
    server.assert_nothing_sent()


@pytest.mark.parametrize("detailed", [False, True])
def test_tls_bogus(tmp_path, pki, server_factory, detailed):
    server = server_factory(pki.rsa, "starttls")
    args = ["--tls", "bogus", "localhost:%d" % server.port]
    if detailed:
        args += ["--config", "ui.detailed-exit-code=yes"]
    code, out, err = debugsmtp(args, _hgrc(server.port, cacerts=pki.ca.cert), cwd=tmp_path)
    assert code == (10 if detailed else 255), (code, out, err)
    assert "--tls" in err and "bogus" in err, err
    server.wait_idle(5)
    assert server.connections == 0


@pytest.mark.parametrize("target", ["localhost:PORT", "127.0.0.1:PORT", "[::1]:PORT", "localhost"])
def test_target_parsing(tmp_path, pki, server_factory, target):
    ipv6 = target.startswith("[")
    if ipv6 and not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = server_factory(pki.rsa, "starttls", ipv6=ipv6)
    arg = target.replace("PORT", str(server.port))
    # hgrc names another host (and, unless the argument has no port, another
    # port): the argument wins.
    port_in_hgrc = server.port if target == "localhost" else 1
    cfg = _hgrc(port_in_hgrc, cacerts=pki.ca.cert, host="mail.invalid")
    code, out, err = debugsmtp([arg], cfg, cwd=tmp_path)
    assert code == 0, (code, out, err)
    r = parse_plain(out)
    host = arg.rsplit(":", 1)[0].strip("[]") if ":PORT" in target else arg
    assert r["host"] == host and r["port"] == server.port, out
    if ipv6:
        assert r["address"] == "[::1]:%d" % server.port, out
    else:
        assert r["address"] == "127.0.0.1:%d" % server.port, out
    assert r["verification"] == "passed: signed by a trusted certificate authority", out
    assert r["pins"][0] == "%s:fingerprints = %s" % (host, pki.rsa.sha256), out
    server.wait_idle(5)
    assert_only_looked(server, "starttls")


def test_ipv6_pasted_pin(tmp_path, pki, server_factory):
    # The pin line printed for an IPv6 literal is one hgrc accepts and honours.
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    server = server_factory(pki.selfsigned, "starttls", ipv6=True)
    base = hg.hgrc_text(_hgrc(server.port, host="[::1]"))
    code, out, err = debugsmtp([], base, cwd=tmp_path)
    assert code == 1, (code, out, err)
    pasted = pin_block(out, "fingerprints")
    assert pasted.splitlines()[1].startswith("::1:fingerprints = "), pasted
    code, out, err = debugsmtp([], base + pasted, cwd=tmp_path)
    assert code == 0, (code, out, err)
    assert parse_plain(out)["verification"].startswith("passed"), out


@pytest.mark.parametrize("port", ["99999", "0"])
def test_target_port_out_of_range(tmp_path, port, pki):
    # Like smtp.port: a port out of 1..65535 is the user's error, said so
    # (no traceback, no connection attempt).
    cfg = _hgrc(25, cacerts=pki.ca.cert)
    args = ["localhost:" + port, "--config", "ui.detailed-exit-code=yes", "--config", "smtp.timeout=5"]
    code, out, err = debugsmtp(args, cfg, cwd=tmp_path)
    assert code == 10, (code, out, err)
    assert err.startswith("abort: ") and "port" in err, err
    assert port in err, err


def test_target_unterminated_ipv6(tmp_path):
    code, out, err = debugsmtp(["[::1:25"], {"extensions": {"securesmtp": ""}}, cwd=tmp_path)
    assert code == 255 and "unterminated IPv6 address" in err, (code, out, err)


# -- help ---------------------------------------------------------------------------


def test_help(tmp_path):
    cfg = {"extensions": {"securesmtp": ""}}
    code, out, err = hg.run_hg(str(tmp_path), ["help", "securesmtp"], cfg)
    assert code == 0, (code, out, err)
    assert "debugsmtp" in out, out
    assert "hostsecurity.<host>:pubkeys" in out, out
    code, out, err = hg.run_hg(str(tmp_path), ["help", "debugsmtp"], cfg)
    assert code == 0, (code, out, err)
    assert "hg debugsmtp [HOST[:PORT]]" in out, out
    assert "--tls" in out and "--template" in out, out
    assert "Returns 0 if the server passes verification" in out, out
