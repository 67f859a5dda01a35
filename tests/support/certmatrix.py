"""The certificate situations of the differential trust suite.

Each case is a server (the chain it sends, its key, SMTPS or STARTTLS), a host
name to connect to, and hgrc settings (a CA file, pins, ``--insecure`` ...).
``tests/test_differential.py`` runs every case through stock ``hg email`` and
through ``hg email`` with securesmtp, with the same hgrc, and compares.

Certificates are made with ``cryptography``'s x509 builders when the matrix
is built (``Matrix(directory)``), so each extension is exactly what the case
says. Nothing here knows what either client will do with a case: the suite
observes both.

Keys: ECDSA P-256 keys are made fresh (they cost nothing); RSA keys are slow
to make, so the few certificates that need RSA share a small pool.

``CASES`` is the ordered list of :class:`CaseSpec` (name, one-line
description, builder); the builder is called with the :class:`Matrix` and
returns a :class:`Case`.
"""

import base64
import datetime
import ipaddress
import os
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

# Names the suite needs to resolve to 127.0.0.1 besides localhost; the test
# gives each hg run a hosts file with them (see test_differential.py).
EXTRA_HOSTS = ("localhost.", "mail.example", "foo.example", "mail.localhost", "a.mail.localhost")

# An extension no verifier knows (a private-enterprise arc); marked critical,
# it must make the certificate unusable.
UNKNOWN_OID = ObjectIdentifier("1.3.6.1.4.1.55555.1.1")

DAY = datetime.timedelta(days=1)

_KU_FIELDS = (
    "digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
    "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Cert:
    """A certificate with its private key."""

    certificate: x509.Certificate
    key: object

    @property
    def pem(self):
        return _pem(self.certificate)

    def fingerprint(self, algorithm):
        return self.certificate.fingerprint(algorithm).hex(":")

    @property
    def sha256(self):
        return "sha256:" + self.fingerprint(hashes.SHA256())

    @property
    def spki_pin(self):
        """``sha256:`` + base64 SHA-256 of the SubjectPublicKeyInfo (HPKP's form)."""
        spki = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(spki)
        return "sha256:" + base64.b64encode(digest.finalize()).decode("ascii")

    @property
    def sha1_legacy(self):
        """Bare SHA-1 hex with colons, as ``[hostfingerprints]`` takes it."""
        return self.fingerprint(hashes.SHA1())


@dataclass
class Case:
    """What one case runs: the server side and the client's settings.

    ``cafile`` / ``host_cafile``: certificates (written to a PEM file), raw
    bytes (written as is), ``MISSING`` (a path that does not exist) or None
    (setting absent); ``cafile`` is ``web.cacerts``, ``host_cafile`` is
    ``hostsecurity.<host>:verifycertsfile``.
    """

    chain: list  # of Cert: what the server sends, leaf first (its key serves)
    cafile: object = None
    host_cafile: object = None
    host: str = "localhost"
    mode: str = "smtps"
    hostsecurity: dict = field(default_factory=dict)
    hostfingerprints: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # {section: {key: value}}
    args: list = field(default_factory=list)
    # Certificates in the default store both clients load when no CA file is
    # set (SSL_CERT_FILE, with SSL_CERT_DIR empty); None: the system's.
    default_store: Optional[list] = None
    # Certificates written as files (root0.pem, ...) into the default store's
    # directory (SSL_CERT_DIR), with ``openssl rehash`` run over it when
    # ``default_dir_hashed``; the default file then holds ``default_store``
    # (or nothing).
    default_dir: Optional[list] = None
    default_dir_hashed: bool = False


MISSING = object()


@dataclass
class CaseSpec:
    name: str
    what: str
    build: Callable


@dataclass
class Written:
    """A case with its files on disk (what the test reads)."""

    name: str
    what: str
    case: Case
    chain: str  # PEM path, what the server presents
    key: str  # PEM path of the leaf's key
    cafile: Optional[str]
    host_cafile: Optional[str]
    env: dict = field(default_factory=dict)


CASES = []


def case(name, what):
    def register(fn):
        assert all(c.name != name for c in CASES), name
        CASES.append(CaseSpec(name, what, fn))
        return fn

    return register


# -- building certificates ---------------------------------------------------


class Matrix:
    """Builds certificates for the cases and writes each case's files."""

    def __init__(self, directory, rsa_pool=2):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._rsa = [rsa.generate_private_key(public_exponent=65537, key_size=2048)
                     for _ in range(rsa_pool)]
        self._rsa_next = 0
        self._rsa1024 = None
        self._shared = {}

    # keys

    def ec_key(self):
        return ec.generate_private_key(ec.SECP256R1())

    def rsa_key(self):
        key = self._rsa[self._rsa_next % len(self._rsa)]
        self._rsa_next += 1
        return key

    def rsa1024_key(self):
        if self._rsa1024 is None:
            self._rsa1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        return self._rsa1024

    # certificates

    def cert(
        self,
        cn,
        issuer=None,
        key=None,
        *,
        ca=None,
        path_length=None,
        bc=True,
        ku=None,
        eku=None,
        san=None,
        nc_permitted=None,
        critical_unknown=False,
        not_before=None,
        not_after=None,
        algorithm=None,
        v1=False,
    ):
        """One certificate. ``issuer`` (a Cert) signs it; None: self-signed.

        ``ca``: True/False for basicConstraints (``bc=False`` leaves it out);
        ``ku``: a set of keyUsage field names (None: no keyUsage); ``eku``: a
        list of OIDs (None: no EKU); ``san``: names, IP literals become
        iPAddress entries unless given as ``("dns", name)``; ``v1``: a version
        1 certificate (no extensions at all).
        """
        key = key or self.ec_key()
        now = _now()
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securesmtp differential"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])
        issuer_name = issuer.certificate.subject if issuer else subject
        signer = issuer.key if issuer else key
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - DAY)
            .not_valid_after(not_after or now + 365 * DAY)
        )
        if not v1:
            if bc:
                b = b.add_extension(
                    x509.BasicConstraints(ca=bool(ca), path_length=path_length if ca else None),
                    critical=True,
                )
            if ku is not None:
                unknown = set(ku) - set(_KU_FIELDS)
                assert not unknown, unknown
                b = b.add_extension(
                    x509.KeyUsage(**{f: f in ku for f in _KU_FIELDS}), critical=True
                )
            if eku is not None:
                b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            if san is not None:
                b = b.add_extension(x509.SubjectAlternativeName(_san(san)), critical=False)
            if nc_permitted is not None:
                b = b.add_extension(
                    x509.NameConstraints(
                        permitted_subtrees=[x509.DNSName(n) for n in nc_permitted],
                        excluded_subtrees=None,
                    ),
                    critical=True,
                )
            if critical_unknown:
                b = b.add_extension(x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"),
                                    critical=True)
            b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                critical=False)
            if issuer:
                b = b.add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                    critical=False,
                )
        sha1 = isinstance(algorithm, hashes.SHA1)
        certificate = b.sign(signer, hashes.SHA256())
        if v1 or sha1:
            certificate = _resign(certificate, signer, v1, sha1)
            assert (certificate.version == x509.Version.v1) == v1
        return Cert(certificate, key)

    def ca(self, cn, issuer=None, **kw):
        """A CA as a real one is made: CA:TRUE, keyCertSign and cRLSign."""
        kw.setdefault("ca", True)
        kw.setdefault("ku", {"key_cert_sign", "crl_sign"})
        return self.cert(cn, issuer, **kw)

    def leaf(self, issuer, names=("localhost",), cn=None, **kw):
        """A server certificate as a public CA issues it (unless told otherwise):
        CA:FALSE, digitalSignature (+ keyEncipherment for RSA), serverAuth, SAN."""
        key = kw.pop("key", None) or self.ec_key()
        kw.setdefault("ca", False)
        if "ku" not in kw:
            kw["ku"] = {"digital_signature"} | (
                {"key_encipherment"} if isinstance(key, rsa.RSAPrivateKey) else set())
        kw.setdefault("eku", [ExtendedKeyUsageOID.SERVER_AUTH])
        kw.setdefault("san", list(names))
        return self.cert(cn or (names[0] if names else "localhost"), issuer, key, **kw)

    def shared(self, name, make):
        """A certificate made once and used by several cases."""
        if name not in self._shared:
            self._shared[name] = make()
        return self._shared[name]

    @property
    def root(self):
        return self.shared("root", lambda: self.ca("Differential Root CA"))

    @property
    def inter(self):
        return self.shared("inter", lambda: self.ca("Differential Intermediate CA", self.root))

    @property
    def rogue(self):
        return self.shared("rogue", lambda: self.ca("Untrusted Root CA"))

    # files

    def write(self, spec):
        c = spec.build(self)
        d = os.path.join(self.directory, spec.name)
        os.makedirs(d, exist_ok=True)
        leaf = c.chain[0]
        chain = _write(d, "chain.pem", b"".join(x.pem for x in c.chain))
        key = _write(d, "key.pem", leaf.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        env = {}
        if c.default_store is not None or c.default_dir is not None:
            cert_dir = os.path.join(d, "cert-dir")
            os.makedirs(cert_dir, exist_ok=True)
            for i, cert in enumerate(c.default_dir or []):
                _write(cert_dir, "root%d.pem" % i, cert.pem)
            if c.default_dir_hashed:
                subprocess.run(["openssl", "rehash", cert_dir], check=True, capture_output=True)
            env = {"SSL_CERT_FILE": _ca_path(d, "default-store.pem", c.default_store or b""),
                   "SSL_CERT_DIR": cert_dir}
        return Written(
            name=spec.name, what=spec.what, case=c, chain=chain, key=key,
            cafile=_ca_path(d, "cafile.pem", c.cafile),
            host_cafile=_ca_path(d, "host-cafile.pem", c.host_cafile),
            env=env,
        )


def _write(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def _ca_path(directory, name, value):
    if value is None:
        return None
    if value is MISSING:
        return os.path.join(directory, "does-not-exist.pem")
    if isinstance(value, bytes):
        return _write(directory, name, value)
    return _write(directory, name, b"".join(c.pem for c in value))


def _san(names):
    entries = []
    for n in names:
        if isinstance(n, tuple):
            kind, value = n
            assert kind == "dns", kind
            entries.append(x509.DNSName(value))
            continue
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return entries


# cryptography's builder makes only v3 certificates and refuses to sign with
# SHA-1: for a v1 certificate or a SHA-1 signature, take the TBSCertificate it
# made, drop the version field (absent means v1) or swap the signature
# algorithm, and sign again.

_SHA1_ALGORITHMS = {
    "rsa": bytes.fromhex("300d06092a864886f70d0101050500"),  # sha1WithRSAEncryption
    "ec": bytes.fromhex("300906072a8648ce3d0401"),  # ecdsa-with-SHA1
}


def _der_header(data, i):
    tag = data[i]
    n = data[i + 1]
    if n < 0x80:
        return tag, i + 2, i + 2 + n
    count = n & 0x7F
    length = int.from_bytes(data[i + 2:i + 2 + count], "big")
    start = i + 2 + count
    return tag, start, start + length


def _der(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _resign(certificate, signer, v1, sha1):
    der = certificate.public_bytes(serialization.Encoding.DER)
    _, body, _ = _der_header(der, 0)
    _, tbs_body, tbs_end = _der_header(der, body)
    is_rsa = isinstance(signer, rsa.RSAPrivateKey)
    _, _, alg_end = _der_header(der, tbs_end)
    sig_alg = _SHA1_ALGORITHMS["rsa" if is_rsa else "ec"] if sha1 else der[tbs_end:alg_end]
    parts = []
    i = tbs_body
    while i < tbs_end:
        tag, _, end = _der_header(der, i)
        element = der[i:end]
        if tag in (0xA0, 0xA3) and v1:  # version, extensions
            element = b""
        elif sha1 and len(parts) == 2:  # version, serial, then the signature field
            element = sig_alg
        parts.append(element)
        i = end
    tbs = _der(0x30, b"".join(p for p in parts if p))
    algorithm = hashes.SHA1() if sha1 else certificate.signature_hash_algorithm
    if is_rsa:
        signature = signer.sign(tbs, padding.PKCS1v15(), algorithm)
    else:
        signature = signer.sign(tbs, ec.ECDSA(algorithm))
    out = _der(0x30, tbs + sig_alg + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(out)


def _past(days_ago_start, days_ago_end):
    now = _now()
    return dict(not_before=now - days_ago_start * DAY, not_after=now - days_ago_end * DAY)


def _future(days_from_start, days_from_end):
    now = _now()
    return dict(not_before=now + days_from_start * DAY, not_after=now + days_from_end * DAY)


SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
ANY_EKU = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE


def _chain_from(m, anchor, **leaf_kw):
    """A localhost leaf signed by ``anchor``; the anchor is the CA file."""
    return Case(chain=[m.leaf(anchor, **leaf_kw)], cafile=[anchor])


# -- the cases -------------------------------------------------------------------
# Trust anchors in the CA file.


@case("anchor-ca-true", "CA:TRUE root in web.cacerts issues the localhost leaf")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.root])


@case("anchor-ca-true-starttls", "the same over STARTTLS")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.root], mode="starttls")


@case("anchor-ca-false", "self-signed CA:FALSE certificate in web.cacerts issues the leaf")
def _(m):
    return _chain_from(m, m.cert("CA FALSE Anchor", ca=False, ku={"key_cert_sign", "crl_sign"}))


@case("anchor-ca-false-starttls", "the same over STARTTLS")
def _(m):
    c = _chain_from(m, m.cert("CA FALSE Anchor", ca=False, ku={"key_cert_sign", "crl_sign"}))
    c.mode = "starttls"
    return c


@case("anchor-expired-starttls", "CA:TRUE anchor that expired 30 days ago, over STARTTLS")
def _(m):
    c = _chain_from(m, m.ca("Expired Anchor", **_past(400, 30)))
    c.mode = "starttls"
    return c


@case("anchor-no-bc-v3", "v3 self-signed anchor without basicConstraints or keyUsage")
def _(m):
    return _chain_from(m, m.cert("No BC Anchor", bc=False))


@case("anchor-no-bc-v3-certsign", "v3 self-signed anchor without basicConstraints, keyUsage keyCertSign")
def _(m):
    return _chain_from(m, m.cert("No BC KU Anchor", bc=False, ku={"key_cert_sign", "crl_sign"}))


@case("anchor-v1", "version 1 self-signed anchor (no extensions at all)")
def _(m):
    return _chain_from(m, m.cert("V1 Anchor", v1=True))


@case("anchor-expired", "CA:TRUE anchor that expired 30 days ago")
def _(m):
    return _chain_from(m, m.ca("Expired Anchor", **_past(400, 30)))


@case("anchor-not-yet-valid", "CA:TRUE anchor valid from 30 days from now")
def _(m):
    return _chain_from(m, m.ca("Future Anchor", **_future(30, 400)))


@case("anchor-ku-no-certsign", "CA:TRUE anchor whose keyUsage lacks keyCertSign")
def _(m):
    return _chain_from(m, m.ca("No CertSign Anchor", ku={"digital_signature", "crl_sign"}))


@case("anchor-eku-clientauth", "CA:TRUE anchor with EKU clientAuth only")
def _(m):
    return _chain_from(m, m.ca("ClientAuth Anchor", eku=[CLIENT_AUTH]))


@case("anchor-eku-serverauth", "CA:TRUE anchor with EKU serverAuth")
def _(m):
    return _chain_from(m, m.ca("ServerAuth Anchor", eku=[SERVER_AUTH]))


@case("anchor-unknown-critical", "CA:TRUE anchor with an unknown critical extension")
def _(m):
    return _chain_from(m, m.ca("Critical Anchor", critical_unknown=True))


@case("anchor-sha1-self-signature", "CA:TRUE anchor whose own signature is SHA-1")
def _(m):
    return _chain_from(m, m.ca("SHA1 Anchor", key=m.rsa_key(), algorithm=hashes.SHA1()))


@case("anchor-pathlen0-direct", "anchor with pathLen 0 issues the leaf directly")
def _(m):
    return _chain_from(m, m.ca("PathLen0 Anchor", path_length=0))


@case("anchor-pathlen0-one-intermediate", "anchor with pathLen 0, one intermediate below it")
def _(m):
    anchor = m.ca("PathLen0 Anchor", path_length=0)
    inter = m.ca("Below PathLen0", anchor)
    return Case(chain=[m.leaf(inter), inter], cafile=[anchor])


@case("anchor-nc-excludes-host", "anchor name-constrained to example.org, leaf SAN localhost")
def _(m):
    return _chain_from(m, m.ca("NC Anchor", nc_permitted=["example.org"]))


@case("anchor-nc-cn-only-leaf", "anchor name-constrained to example.org, leaf CN=localhost without SAN")
def _(m):
    return _chain_from(m, m.ca("NC Anchor", nc_permitted=["example.org"]), san=None)


@case("anchor-nc-permits-host", "anchor name-constrained to localhost, leaf SAN localhost")
def _(m):
    return _chain_from(m, m.ca("NC Anchor", nc_permitted=["localhost"]))


@case("cafile-two-anchors", "web.cacerts holds an unrelated CA, then the issuing root")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.rogue, m.root])


# Intermediates.


@case("inter-ca-true", "root -> CA:TRUE intermediate -> leaf, chain sent in order")
def _(m):
    return Case(chain=[m.leaf(m.inter), m.inter], cafile=[m.root])


@case("inter-ca-false", "intermediate with CA:FALSE")
def _(m):
    inter = m.cert("CA FALSE Intermediate", m.root, ca=False, ku={"key_cert_sign", "crl_sign"})
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-no-bc", "intermediate without basicConstraints (keyUsage keyCertSign)")
def _(m):
    inter = m.cert("No BC Intermediate", m.root, bc=False, ku={"key_cert_sign", "crl_sign"})
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-expired", "intermediate that expired 30 days ago")
def _(m):
    inter = m.ca("Expired Intermediate", m.root, **_past(400, 30))
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-ku-no-certsign", "intermediate whose keyUsage lacks keyCertSign")
def _(m):
    inter = m.ca("No CertSign Intermediate", m.root, ku={"digital_signature", "crl_sign"})
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-eku-clientauth", "intermediate with EKU clientAuth only")
def _(m):
    inter = m.ca("ClientAuth Intermediate", m.root, eku=[CLIENT_AUTH])
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-unknown-critical", "intermediate with an unknown critical extension")
def _(m):
    inter = m.ca("Critical Intermediate", m.root, critical_unknown=True)
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-sha1-signed", "intermediate signed by the root with SHA-1")
def _(m):
    root = m.shared("rsa-root", lambda: m.ca("RSA Root CA", key=m.rsa_key()))
    inter = m.ca("SHA1 Intermediate", root, algorithm=hashes.SHA1())
    return Case(chain=[m.leaf(inter), inter], cafile=[root])


@case("inter-pathlen0-direct", "intermediate with pathLen 0 issues the leaf")
def _(m):
    inter = m.ca("PathLen0 Intermediate", m.root, path_length=0)
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-pathlen0-one-below", "intermediate with pathLen 0, one more intermediate below it")
def _(m):
    inter = m.ca("PathLen0 Intermediate", m.root, path_length=0)
    inter2 = m.ca("Below PathLen0 Intermediate", inter)
    return Case(chain=[m.leaf(inter2), inter2, inter], cafile=[m.root])


@case("inter-nc-excludes-host", "intermediate name-constrained to example.org, leaf SAN localhost")
def _(m):
    inter = m.ca("NC Intermediate", m.root, nc_permitted=["example.org"])
    return Case(chain=[m.leaf(inter), inter], cafile=[m.root])


@case("inter-nc-cn-only-leaf", "intermediate name-constrained to example.org, leaf CN=localhost without SAN")
def _(m):
    inter = m.ca("NC Intermediate", m.root, nc_permitted=["example.org"])
    return Case(chain=[m.leaf(inter, san=None), inter], cafile=[m.root])


# How the chain is sent.


@case("chain-out-of-order", "root -> A -> B -> leaf, sent as leaf, A, B")
def _(m):
    a = m.ca("Order A", m.root)
    b = m.ca("Order B", a)
    return Case(chain=[m.leaf(b), a, b], cafile=[m.root])


@case("chain-incomplete", "intermediate not sent, root in web.cacerts")
def _(m):
    return Case(chain=[m.leaf(m.inter)], cafile=[m.root])


@case("chain-with-root", "leaf, intermediate and root all sent")
def _(m):
    return Case(chain=[m.leaf(m.inter), m.inter, m.root], cafile=[m.root])


@case("chain-extra-unrelated", "an unrelated CA sent between leaf and intermediate")
def _(m):
    return Case(chain=[m.leaf(m.inter), m.rogue, m.inter], cafile=[m.root])


@case("chain-unknown-ca", "leaf from a CA that is not in web.cacerts")
def _(m):
    return Case(chain=[m.leaf(m.rogue)], cafile=[m.root])


# What else can be in the CA file.


@case("cafile-intermediate-alone", "only the intermediate in web.cacerts, chain leaf + intermediate")
def _(m):
    return Case(chain=[m.leaf(m.inter), m.inter], cafile=[m.inter])


@case("cafile-intermediate-alone-leaf-sent", "only the intermediate in web.cacerts, leaf alone sent")
def _(m):
    return Case(chain=[m.leaf(m.inter)], cafile=[m.inter])


@case("cafile-intermediate-alone-starttls", "only the intermediate in web.cacerts, over STARTTLS")
def _(m):
    return Case(chain=[m.leaf(m.inter), m.inter], cafile=[m.inter], mode="starttls")


@case("cafile-leaf-alone", "the CA-issued (not self-signed) leaf itself in web.cacerts")
def _(m):
    leaf = m.leaf(m.rogue)
    return Case(chain=[leaf], cafile=[leaf])


@case("cafile-selfsigned-ca-false-itself", "self-signed CA:FALSE localhost server certificate in web.cacerts")
def _(m):
    ss = m.shared("selfsigned-localhost", lambda: m.leaf(None))
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-ca-false-as-issuer",
      "self-signed CA:FALSE server certificate (mail.example.org) in web.cacerts signs a localhost leaf")
def _(m):
    ss = m.leaf(None, names=("mail.example.org",))
    return Case(chain=[m.leaf(ss)], cafile=[ss])


@case("cafile-selfsigned-ca-false-both",
      "the CA:FALSE certificate of the previous case in web.cacerts, signing a mail.localhost leaf")
def _(m):
    ss = m.shared("selfsigned-localhost", lambda: m.leaf(None))
    return Case(chain=[m.leaf(ss, names=("mail.localhost",))], cafile=[ss], host="mail.localhost")


@case("cafile-selfsigned-ca-true-itself",
      "self-signed CA:TRUE localhost certificate (openssl req -x509) in web.cacerts")
def _(m):
    ss = m.cert("localhost", ca=True, san=["localhost"])
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-bare-itself", "self-signed v3 certificate without extensions, CN=localhost, in web.cacerts")
def _(m):
    ss = m.cert("localhost", bc=False)
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-v1-itself", "self-signed v1 certificate, CN=localhost, in web.cacerts")
def _(m):
    ss = m.cert("localhost", v1=True)
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-clientauth-itself",
      "self-signed CA:FALSE localhost certificate with EKU clientAuth in web.cacerts")
def _(m):
    ss = m.leaf(None, eku=[CLIENT_AUTH])
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-certsign-only-itself",
      "self-signed CA:FALSE localhost certificate with keyUsage keyCertSign only, in web.cacerts")
def _(m):
    ss = m.leaf(None, ku={"key_cert_sign"})
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-expired-itself", "expired self-signed localhost certificate in web.cacerts")
def _(m):
    ss = m.leaf(None, **_past(400, 30))
    return Case(chain=[ss], cafile=[ss])


@case("cafile-selfsigned-wrong-name-itself", "self-signed certificate for mail.example.org in web.cacerts")
def _(m):
    ss = m.leaf(None, names=("mail.example.org",))
    return Case(chain=[ss], cafile=[ss])


@case("cafile-no-certificates", "web.cacerts is a file with no certificate in it")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=b"# no certificates here\n")


@case("cafile-missing", "web.cacerts names a file that does not exist")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=MISSING)


# Leaves.


@case("leaf-expired", "leaf that expired 30 days ago")
def _(m):
    return Case(chain=[m.leaf(m.root, **_past(400, 30))], cafile=[m.root])


@case("leaf-not-yet-valid", "leaf valid from 30 days from now")
def _(m):
    return Case(chain=[m.leaf(m.root, **_future(30, 400))], cafile=[m.root])


@case("leaf-wrong-name", "leaf for mail.example.org only")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("mail.example.org",))], cafile=[m.root])


@case("leaf-ca-true", "leaf with CA:TRUE (and keyCertSign) for localhost")
def _(m):
    return Case(chain=[m.leaf(m.root, ca=True, ku={"digital_signature", "key_cert_sign"})],
                cafile=[m.root])


@case("wildcard-example", "SAN *.example, host mail.example")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("*.example",))], cafile=[m.root], host="mail.example")


@case("wildcard-localhost", "SAN *.localhost, host mail.localhost")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("*.localhost",))], cafile=[m.root], host="mail.localhost")


@case("wildcard-localhost-bare", "SAN *.localhost, host localhost")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("*.localhost",))], cafile=[m.root])


@case("wildcard-partial", "SAN f*.example (partial label), host foo.example")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("f*.example",))], cafile=[m.root], host="foo.example")


@case("wildcard-two-labels", "SAN *.localhost, host a.mail.localhost: a wildcard covers one label")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("*.localhost",))], cafile=[m.root],
                host="a.mail.localhost")


@case("trailing-dot-host", "SAN localhost, host written localhost. (fully qualified)")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.root], host="localhost.")


@case("ip-host-ip-san", "host 127.0.0.1, leaf with iPAddress SAN 127.0.0.1 only (CN=SMTP server)")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("127.0.0.1",), cn="SMTP server")], cafile=[m.root],
                host="127.0.0.1")


@case("ip-host-ip-san-cn-ip", "host 127.0.0.1, leaf with iPAddress SAN 127.0.0.1 and CN=127.0.0.1")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("127.0.0.1",))], cafile=[m.root], host="127.0.0.1")


@case("ip-host-dns-san", "host 127.0.0.1, leaf with dNSName SAN \"127.0.0.1\"")
def _(m):
    return Case(chain=[m.leaf(m.root, names=(("dns", "127.0.0.1"),), cn="127.0.0.1")],
                cafile=[m.root], host="127.0.0.1")


@case("ip-host-cn-only", "host 127.0.0.1, leaf CN=127.0.0.1 without SAN")
def _(m):
    return Case(chain=[m.leaf(m.root, cn="127.0.0.1", san=None)], cafile=[m.root], host="127.0.0.1")


@case("cn-only", "CA-issued leaf CN=localhost without SAN")
def _(m):
    return Case(chain=[m.leaf(m.root, san=None)], cafile=[m.root])


@case("cn-matches-san-does-not", "leaf CN=localhost, SAN mail.example.org")
def _(m):
    return Case(chain=[m.leaf(m.root, names=("mail.example.org",), cn="localhost")], cafile=[m.root])


@case("leaf-eku-clientauth", "leaf with EKU clientAuth only")
def _(m):
    return Case(chain=[m.leaf(m.root, eku=[CLIENT_AUTH])], cafile=[m.root])


@case("leaf-eku-any", "leaf with EKU anyExtendedKeyUsage only")
def _(m):
    return Case(chain=[m.leaf(m.root, eku=[ANY_EKU])], cafile=[m.root])


@case("leaf-eku-none", "leaf without EKU")
def _(m):
    return Case(chain=[m.leaf(m.root, eku=None)], cafile=[m.root])


@case("leaf-ku-certsign-only", "leaf with keyUsage keyCertSign only")
def _(m):
    return Case(chain=[m.leaf(m.root, ku={"key_cert_sign"})], cafile=[m.root])


@case("leaf-ku-digitalsignature-only", "ECDSA leaf with keyUsage digitalSignature only")
def _(m):
    return Case(chain=[m.leaf(m.root, ku={"digital_signature"})], cafile=[m.root])


@case("leaf-ku-keyencipherment-only", "RSA leaf with keyUsage keyEncipherment only")
def _(m):
    return Case(chain=[m.leaf(m.root, key=m.rsa_key(), ku={"key_encipherment"})], cafile=[m.root])


@case("leaf-unknown-critical", "leaf with an unknown critical extension")
def _(m):
    return Case(chain=[m.leaf(m.root, critical_unknown=True)], cafile=[m.root])


@case("leaf-sha1-signed", "leaf signed by its CA with SHA-1")
def _(m):
    root = m.shared("rsa-root", lambda: m.ca("RSA Root CA", key=m.rsa_key()))
    return Case(chain=[m.leaf(root, algorithm=hashes.SHA1())], cafile=[root])


@case("leaf-rsa1024", "leaf with a 1024-bit RSA key")
def _(m):
    return Case(chain=[m.leaf(m.root, key=m.rsa1024_key())], cafile=[m.root])


# Settings.


def _pinned(chain, pin, **kw):
    return Case(chain=chain, hostsecurity={"localhost:fingerprints": pin}, **kw)


@case("pin-leaf", "hostsecurity.localhost:fingerprints = sha256 of the self-signed leaf")
def _(m):
    ss = m.leaf(None)
    return _pinned([ss], ss.sha256)


@case("pin-leaf-starttls", "the same over STARTTLS")
def _(m):
    ss = m.leaf(None)
    return _pinned([ss], ss.sha256, mode="starttls")


@case("pin-leaf-mismatch", "sha256 pin of another certificate")
def _(m):
    return _pinned([m.leaf(None)], m.leaf(None).sha256)


@case("pin-leaf-expired", "sha256 pin of an expired self-signed leaf (pins replace CA checks)")
def _(m):
    ss = m.leaf(None, **_past(400, 30))
    return _pinned([ss], ss.sha256)


@case("pin-leaf-wrong-name", "sha256 pin of a leaf for mail.example.org")
def _(m):
    leaf = m.leaf(m.rogue, names=("mail.example.org",))
    return _pinned([leaf], leaf.sha256)


@case("pin-leaf-untrusted-cafile", "sha256 pin of the leaf; web.cacerts holds an unrelated CA")
def _(m):
    leaf = m.leaf(m.rogue)
    return _pinned([leaf], leaf.sha256, cafile=[m.root])


@case("pin-ca", "sha256 pin of the issuing CA, chain leaf + CA sent")
def _(m):
    return _pinned([m.leaf(m.rogue), m.rogue], m.rogue.sha256)


@case("pin-intermediate", "sha256 pin of the intermediate, chain leaf + intermediate sent")
def _(m):
    return _pinned([m.leaf(m.inter), m.inter], m.inter.sha256)


@case("pin-leaf-sha512", "hostsecurity.localhost:fingerprints = sha512 of the leaf, after a non-matching sha256")
def _(m):
    ss = m.leaf(None)
    other = m.leaf(None)
    pin = "%s, sha512:%s" % (other.sha256, ss.fingerprint(hashes.SHA512()))
    return _pinned([ss], pin)


@case("pin-leaf-and-verifycertsfile", "sha256 pin of the leaf and a verifycertsfile that does not trust it")
def _(m):
    leaf = m.leaf(m.rogue)
    return _pinned([leaf], leaf.sha256, host_cafile=[m.root])


@case("pubkeys-pin-leaf", "hostsecurity.localhost:pubkeys = SPKI sha256 of the self-signed leaf (securesmtp only)")
def _(m):
    ss = m.leaf(None)
    return Case(chain=[ss], hostsecurity={"localhost:pubkeys": ss.spki_pin})


@case("pubkeys-pin-mismatch", "hostsecurity.localhost:pubkeys = SPKI sha256 of another key")
def _(m):
    return Case(chain=[m.leaf(None)], hostsecurity={"localhost:pubkeys": m.leaf(None).spki_pin})


@case("pubkeys-pin-ca", "hostsecurity.localhost:pubkeys = SPKI sha256 of the issuing CA, chain leaf + CA sent")
def _(m):
    return Case(chain=[m.leaf(m.rogue), m.rogue], hostsecurity={"localhost:pubkeys": m.rogue.spki_pin})


@case("hostfingerprints-leaf", "legacy [hostfingerprints] SHA-1 of the leaf")
def _(m):
    ss = m.leaf(None)
    return Case(chain=[ss], hostfingerprints={"localhost": ss.sha1_legacy})


@case("hostfingerprints-mismatch", "legacy [hostfingerprints] SHA-1 of another certificate")
def _(m):
    return Case(chain=[m.leaf(None)], hostfingerprints={"localhost": m.leaf(None).sha1_legacy})


@case("hostfingerprints-ca", "legacy [hostfingerprints] SHA-1 of the issuing CA")
def _(m):
    return Case(chain=[m.leaf(m.rogue), m.rogue],
                hostfingerprints={"localhost": m.rogue.sha1_legacy})


@case("insecure-unknown-ca", "--insecure, leaf from an untrusted CA")
def _(m):
    return Case(chain=[m.leaf(m.rogue)], cafile=[m.root], args=["--insecure"])


@case("insecure-wrong-name-expired", "--insecure, expired leaf for mail.example.org")
def _(m):
    return Case(chain=[m.leaf(m.rogue, names=("mail.example.org",), **_past(400, 30))],
                cafile=[m.root], args=["--insecure"])


@case("insecure-pin-match", "--insecure with the sha256 pin of the self-signed leaf")
def _(m):
    ss = m.leaf(None)
    return _pinned([ss], ss.sha256, args=["--insecure"])


@case("insecure-pin-mismatch", "--insecure with a sha256 pin of another certificate")
def _(m):
    return _pinned([m.leaf(None)], m.leaf(None).sha256, args=["--insecure"])


@case("verifycertsfile-trusted", "hostsecurity.localhost:verifycertsfile = root, web.cacerts = unrelated CA")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.rogue], host_cafile=[m.root])


@case("verifycertsfile-overrides", "hostsecurity.localhost:verifycertsfile = unrelated CA, web.cacerts = root")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.root], host_cafile=[m.rogue])


@case("verifycertsfile-missing", "hostsecurity.localhost:verifycertsfile names a missing file")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.root], host_cafile=MISSING)


@case("verifycert-false", "smtp.verifycert = false, leaf from an untrusted CA")
def _(m):
    return Case(chain=[m.leaf(m.rogue)], cafile=[m.root],
                config={"smtp": {"verifycert": "false"}})


@case("verifycert-false-starttls", "smtp.verifycert = false over STARTTLS, self-signed leaf not in web.cacerts")
def _(m):
    return Case(chain=[m.leaf(None)], cafile=[m.root], mode="starttls",
                config={"smtp": {"verifycert": "false"}})


@case("verifycert-loose", "smtp.verifycert = loose, leaf from an untrusted CA")
def _(m):
    return Case(chain=[m.leaf(m.rogue)], cafile=[m.root],
                config={"smtp": {"verifycert": "loose"}})


@case("default-store", "no CA file: the default trust store, leaf from a private CA")
def _(m):
    return Case(chain=[m.leaf(m.root)])


@case("default-store-holds-root", "no CA file; the default store (SSL_CERT_FILE) holds the root")
def _(m):
    return Case(chain=[m.leaf(m.root)], default_store=[m.root])


@case("default-store-holds-ca-false", "no CA file; the default store holds a CA:FALSE self-signed issuer")
def _(m):
    ss = m.leaf(None, names=("mail.example.org",))
    return Case(chain=[m.leaf(ss)], default_store=[ss])


@case("disableloaddefaultcerts", "devel.disableloaddefaultcerts and no CA file")
def _(m):
    return Case(chain=[m.leaf(m.root)], config={"devel": {"disableloaddefaultcerts": "true"}})


@case("disableloaddefaultcerts-root-in-store",
      "devel.disableloaddefaultcerts, no CA file, the default store holds the root")
def _(m):
    return Case(chain=[m.leaf(m.root)], default_store=[m.root],
                config={"devel": {"disableloaddefaultcerts": "true"}})


@case("disableloaddefaultcerts-with-cafile", "devel.disableloaddefaultcerts with web.cacerts = root")
def _(m):
    return Case(chain=[m.leaf(m.root)], cafile=[m.root],
                config={"devel": {"disableloaddefaultcerts": "true"}})


@case("default-dir-stray-file", "no CA file; the root is a file in SSL_CERT_DIR not named by its subject hash")
def _(m):
    return Case(chain=[m.leaf(m.root)], default_dir=[m.root])


@case("default-dir-hashed", "no CA file; the root is in SSL_CERT_DIR under its subject hash (openssl rehash)")
def _(m):
    return Case(chain=[m.leaf(m.root)], default_dir=[m.root], default_dir_hashed=True)


# -- Found by the generated parity test (test_parity_generated.py) ----------------
# Each was accepted by the extension and refused by stock; built from the
# generator's parts (support/frankencert.py) as it printed them.


def _parts(m, root=None, leaf=None, self_signed_leaf=False, host="localhost"):
    """A root and a leaf from ``frankencert`` parts (the defaults with the
    given changes); the root is the CA file. With ``self_signed_leaf`` the
    root itself is the server's certificate and the CA file."""
    from . import frankencert

    if not hasattr(m, "_frankenkeys"):
        m._frankenkeys = frankencert.Keys()
    now = _now()

    def part(role, changes):
        fields = frankencert._defaults(role)
        fields.update(changes or {})
        return frankencert.Part(**fields)

    r = frankencert.make(part("root", root), "root", None, m._frankenkeys, host, now)
    root_cert = Cert(r.cert, r.key)
    if self_signed_leaf:
        return Case(chain=[root_cert], cafile=[root_cert])
    leaf_made = frankencert.make(part("leaf", leaf), "leaf", r, m._frankenkeys, host, now)
    return Case(chain=[Cert(leaf_made.cert, leaf_made.key)], cafile=[root_cert])


@case("anchor-critical-ski", "the root in web.cacerts has a critical subjectKeyIdentifier")
def _(m):
    return _parts(m, root={"ski": "critical"})


@case("anchor-critical-aki", "the root in web.cacerts has a critical authorityKeyIdentifier")
def _(m):
    return _parts(m, root={"aki": "critical"})


@case("anchor-aki-wrong-serial",
      "the root's authorityKeyIdentifier names its own key but another serial (not self-signed to OpenSSL)")
def _(m):
    return _parts(m, root={"aki": "wrong-serial"})


@case("anchor-aki-wrong-issuer",
      "the root's authorityKeyIdentifier names another issuer (not self-signed to OpenSSL)")
def _(m):
    return _parts(m, root={"aki": "wrong-issuer"})


@case("anchor-signed-by-another-key-type",
      "the root names itself as issuer but is signed with an RSA key for its EC key (not self-signed)")
def _(m):
    return _parts(m, root={"signer": "same-name-other-key"})


@case("leaf-nscerttype-client-only", "the leaf's Netscape certificate type is SSL client only")
def _(m):
    return _parts(m, leaf={"ns": ("client",)})


@case("anchor-email-constraint-subject",
      "the root excludes email names under .example.org; the leaf's subject has c@mail.example.org")
def _(m):
    return _parts(m, root={"nc": ((), ("email:.example.org",))}, leaf={"email": "c@mail.example.org"})


@case("self-signed-san-trailing-dot",
      "a self-signed certificate in web.cacerts whose only name is localhost. (with the dot)")
def _(m):
    return _parts(m, root={"san": ("dns:localhost.",), "ku": None, "cn": "localhost."},
                  self_signed_leaf=True)


def _framed(framing):
    def build(m):
        from . import frankencert

        return Case(chain=[m.leaf(m.root)], cafile=frankencert._frame([m.root.pem], framing))
    return build


for _framing, _what in (
    ("cr-only", "CR-only line ends"),
    ("double-begin", "a second BEGIN line inside the block"),
    ("trailing-junk", "text after the END dashes"),
    ("blank-inside", "a blank line between base64 lines"),
    ("bad-der", "a CERTIFICATE block that is not DER after the root"),
):
    case("cafile-" + _framing, "web.cacerts holds the root with " + _what)(_framed(_framing))


# -- Outside the strict profile (src/tls/profile.rs) ----------------------------------
# Six families where x509-parser or webpki read a certificate or a trust file
# otherwise than OpenSSL, each accepted by the extension before the profile
# and refused by stock. Certificates are edited as DER (support/rawcert.py).


def _raw(m, cert, signer, **edits):
    from . import rawcert

    return rawcert.edit(cert, signer.key if signer is not None else cert.key, **edits)


def _block(label, der):
    b64 = base64.b64encode(der).decode()
    body = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, body, label)).encode()


_JUNK = bytes.fromhex("3003020105")  # SEQUENCE { INTEGER 5 }: no key, CRL or certificate

for _label, _name in (
    ("PRIVATE KEY", "private-key"),
    ("EC PRIVATE KEY", "ec-private-key"),
    ("RSA PRIVATE KEY", "rsa-private-key"),
    ("X509 CRL", "crl"),
    ("TRUSTED CERTIFICATE", "trusted-certificate"),
):
    def _foreign(m, label=_label):
        return Case(chain=[m.leaf(m.root)], cafile=m.root.pem + _block(label, _JUNK))

    case("cafile-undecodable-" + _name,
         "web.cacerts holds the root and a %s block that does not decode" % _label)(_foreign)


@case("default-store-undecodable-private-key",
      "SSL_CERT_FILE holds the root and a PRIVATE KEY block that does not decode")
def _(m):
    return Case(chain=[m.leaf(m.root)], default_store=[m.root, _Bytes(_block("PRIVATE KEY", _JUNK))])


class _Bytes:
    """Raw bytes standing in a list of certificates (written as they are)."""

    def __init__(self, data):
        self.pem = data


@case("cafile-empty-serial-beside-root", "web.cacerts holds the root and a CA whose serial INTEGER is empty")
def _(m):
    other = m.ca("Empty Serial CA")
    return Case(chain=[m.leaf(m.root)], cafile=[m.root, _raw(m, other, None, serial=b"")])


@case("cafile-invalid-utf8-cn-beside-root",
      "web.cacerts holds the root and a CA whose common name is a UTF8String of invalid UTF-8")
def _(m):
    other = m.ca("Invalid UTF-8 CA")
    return Case(chain=[m.leaf(m.root)], cafile=[m.root, _raw(m, other, None, cn=(0x0C, b"\xff\xfe"))])


@case("cafile-visiblestring-cn-beside-root",
      "web.cacerts holds the root and a certificate whose common name is a VisibleString "
      "(found by the generated parity test)")
def _(m):
    other = m.leaf(m.root)
    edited = _raw(m, other, m.root, cn=(0x1A, b"localhost"))
    return Case(chain=[m.leaf(m.root)], cafile=[m.root, edited])


def _timed_root(m, times):
    root = m.ca("Odd Time Root")
    edited = _raw(m, root, None, times=times)
    return Case(chain=[m.leaf(root)], cafile=[edited])


def _utc(delta_days, form):
    t = _now() + delta_days * DAY
    return t.strftime(form)


@case("anchor-utctime-offset", "the root's notBefore is a UTCTime with a +0000 offset")
def _(m):
    return _timed_root(m, [(0x17, _utc(-1, "%y%m%d%H%M%S") + "+0000"), (0x17, _utc(365, "%y%m%d%H%M%SZ"))])


@case("anchor-utctime-no-seconds", "the root's notAfter is a UTCTime without seconds")
def _(m):
    return _timed_root(m, [(0x17, _utc(-1, "%y%m%d%H%M%SZ")), (0x17, _utc(365, "%y%m%d%H%MZ"))])


@case("anchor-generalizedtime-fraction", "the root's notBefore is a GeneralizedTime with a fraction")
def _(m):
    return _timed_root(m, [(0x18, _utc(-1, "%Y%m%d%H%M%S") + ".5Z"), (0x17, _utc(365, "%y%m%d%H%M%SZ"))])


@case("itself-generalizedtime-fraction",
      "a self-signed certificate trusted as itself has a GeneralizedTime notBefore with a fraction")
def _(m):
    ss = m.cert("localhost", ca=True, san=["localhost"])
    edited = _raw(m, ss, None, times=[(0x18, _utc(-1, "%Y%m%d%H%M%S") + ".5Z"),
                                      (0x17, _utc(365, "%y%m%d%H%M%SZ"))])
    return Case(chain=[edited], cafile=[edited])


def _leaf_with(m, *extensions, root=None):
    root = root or m.root
    leaf = m.leaf(root)
    return Case(chain=[_raw(m, leaf, root, extensions=list(extensions))], cafile=[root])


def _ext(name, value, critical=False):
    from . import rawcert

    return rawcert.extension(rawcert.OIDS[name], value, critical)


def _values():
    from . import rawcert

    return rawcert


@case("leaf-rfc3779-ip-not-in-issuer", "the leaf has RFC 3779 IP address blocks its issuer does not have")
def _(m):
    return _leaf_with(m, _ext("ip", _values().RFC3779_IP))


@case("leaf-rfc3779-as-not-in-issuer", "the leaf has RFC 3779 AS identifiers its issuer does not have")
def _(m):
    return _leaf_with(m, _ext("as", _values().RFC3779_AS))


@case("leaf-proxycertinfo",
      "the leaf (CN=localhost, no subjectAltName, which a proxy certificate may not have) "
      "carries a non-critical proxyCertInfo")
def _(m):
    leaf = m.cert("localhost", m.root, ca=False, ku={"digital_signature"}, eku=[SERVER_AUTH])
    edited = _raw(m, leaf, m.root, extensions=[_ext("proxy", _values().PROXY_CERT_INFO)])
    return Case(chain=[edited], cafile=[m.root])


@case("anchor-proxycertinfo", "the root carries a non-critical proxyCertInfo")
def _(m):
    root = m.ca("Proxy Root")
    edited = _raw(m, root, None, extensions=[_ext("proxy", _values().PROXY_CERT_INFO)])
    return Case(chain=[m.leaf(root)], cafile=[edited])


@case("leaf-critical-sct", "the leaf's SCT list (certificate transparency) is marked critical")
def _(m):
    return _leaf_with(m, _ext("sct", _values().SCT_LIST, critical=True))


@case("inter-critical-sct", "the intermediate's SCT list is marked critical")
def _(m):
    inter = m.ca("SCT Intermediate", m.root)
    edited = _raw(m, inter, m.root, extensions=[_ext("sct", _values().SCT_LIST, critical=True)])
    leaf = m.leaf(inter)
    return Case(chain=[leaf, edited], cafile=[m.root])


def _odd_root(m, name, value):
    root = m.ca("Odd Extension Root " + name)
    edited = _raw(m, root, None, extensions=[_ext(name, value)])
    return Case(chain=[m.leaf(root)], cafile=[edited])


for _what, _value_name in (("ski", "SKI"), ("aki", "AKI"), ("ns", "NS_SSL_CA"), ("crldp", "CRLDP")):
    # The builder already wrote an SKI: the one appended makes it twice.
    def _twice(m, what=_what, value_name=_value_name):
        value = getattr(_values(), value_name)
        root = m.ca("Twice Root " + what)
        extensions = [_ext(what, value)] if what == "ski" else [_ext(what, value)] * 2
        return Case(chain=[m.leaf(root)], cafile=[_raw(m, root, None, extensions=extensions)])

    def _broken(m, what=_what):
        return _odd_root(m, what, _values().NOT_DER_FOR_ANY)

    case("anchor-duplicate-" + _what, "the root has its %s extension twice" % _what)(_twice)
    if _what != "ski":
        case("anchor-undecodable-" + _what,
             "the root's %s extension does not decode" % _what)(_broken)


@case("inter-duplicate-crldp", "the intermediate has its cRLDistributionPoints extension twice")
def _(m):
    inter = m.ca("Twice CRLDP Intermediate", m.root)
    edited = _raw(m, inter, m.root, extensions=[_ext("crldp", _values().CRLDP)] * 2)
    return Case(chain=[m.leaf(inter), edited], cafile=[m.root])
