"""Certificate chains assembled from parts, and two judges of each.

In the spirit of Frankencerts (Brubaker et al., IEEE S&P 2014): every
certificate of a chain is drawn from a grammar of parts (key type and
signature algorithm, validity, basicConstraints, keyUsage, extendedKeyUsage,
the Netscape certificate type, name constraints, key identifiers, policies,
unknown extensions, subjectAltName entries, common name, emailAddress,
serial), the chain as sent is reordered, shortened, padded and duplicated,
and the CA file is written with framing variations. ``spec()`` is the
hypothesis strategy (so a failure shrinks to a minimal chain), ``build()``
turns a spec into files.

The judges:

- ``stock()``: Mercurial's own ``sslutil.wrapsocket`` and
  ``sslutil.validatesocket`` (Python's ssl, OpenSSL with the SSL-server
  purpose, then Mercurial's name check), over a socketpair whose other end
  is an ``ssl`` server presenting the chain: the code stock ``hg email``
  runs, minus SMTP;
- ``extension()``: ``_core.verify_chain``, the verifier the extension's
  handshake runs, on the same chain and CA file.
"""

import datetime
import ipaddress
import os
import socket
import ssl
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import strategies as st
from mercurial import error, sslutil
from mercurial import ui as uimod

from . import certmatrix

DAY = datetime.timedelta(days=1)
NS_CERT_TYPE = x509.ObjectIdentifier("2.16.840.1.113730.1.1")
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1.1")
ANY_EKU = x509.ObjectIdentifier("2.5.29.37.0")

HOSTS = ("localhost", "mail.example.org", "127.0.0.1", "::1", "localhost.", "a.localhost",
         "0:0:0:0:0:0:0:1")

# -- the grammar ----------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """What one certificate is made of."""

    key: str
    signature: str
    validity: str
    bc: object  # None or (ca, path_length, critical)
    ku: object  # None or (fields, critical)
    eku: object  # None or tuple of names
    ns: object  # None or tuple of names
    nc: object  # None or (permitted, excluded)
    ski: str
    aki: str
    policy: str
    unknown: str
    san: object  # None or tuple of entries
    cn: str
    email: str
    serial: str
    signer: str
    # Extensions as raw bytes: (oid, critical, contents) triples, where oid
    # is a name of RAW_OIDS or a dotted OID and contents a name of
    # RAW_VALUES ("dup" repeats an extension the certificate has).
    raw: tuple = ()
    # How the validity is encoded (TIME_FORMS) and the common name's string
    # type (NAME_TYPES).
    time: str = "der"
    cn_type: str = "utf8"


KEYS = ("ec256", "ec384", "rsa2048", "rsa1024", "ed25519")
SIGNATURES = ("sha256", "sha256", "sha384", "sha512", "sha1", "pss")
VALIDITY = ("now", "now", "now", "expired", "future", "pre1970", "far")
KU_FIELDS = ("digital_signature", "key_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
EKUS = ("server", "client", "any", "code")
NS_TYPES = ("server", "client", "sslca")
NAMES = (
    "dns:localhost", "dns:example.org", "dns:.example.org", "ip:127.0.0.0/8", "ip:::1/128",
    "email:example.org", "email:.example.org", "email:a@example.org", "dir:Elsewhere",
)
SANS = (
    "dns:HOST", "dns:localhost", "dns:mail.example.org", "dns:*.example.org", "dns:localhost.",
    "dns:127.0.0.1", "dns:other.example", "ip:127.0.0.1", "ip:::1", "email:a@example.org",
    "uri:https://localhost/", "dns:*.localhost", "dns:*", "dns:l*.HOST", "dns:*.HOST",
    "dns:*.org", "dns:mail.*.org",
)
# Wildcards reach the common-name path too (a leaf without subjectAltName
# under the CA file, or trusted as itself).
CNS = ("HOST", "HOST", "localhost", "localhost.", "127.0.0.1", "0:0:0:0:0:0:0:1", "other.example", "",
       "*.example.org", "*", "*.localhost", "l*calhost", "*.org")
EMAILS = ("", "", "a@example.org", "b@other.example", "c@mail.example.org")


# Real extensions by name (support/rawcert.OIDS), with random private ones.
RAW_OIDS = ("ip", "as", "proxy", "sct", "ski", "aki", "ns", "crldp", "bc", "aia", "policy-constraints",
            "tls-feature", "ms-template", "random")
RAW_VALUES = ("real", "real", "junk", "empty", "dup")
TIME_FORMS = ("der", "utc-offset", "utc-no-seconds", "generalized-fraction", "generalized-for-utc",
              "utc-no-z", "generalized-offset")
NAME_TYPES = ("utf8", "printable", "ia5", "teletex", "bmp", "universal", "utf8-invalid",
              "bmp-odd", "octet-string", "visible", "numeric")


def _choice(xs):
    return st.sampled_from(xs)


def _maybe(strategy, none_weight=1):
    return st.one_of(*([st.none()] * none_weight), strategy)


def _defaults(role):
    """A certificate as a real CA makes it for ``role``."""
    ca_like = role != "leaf"
    return dict(
        key="ec256", signature="sha256", validity="now",
        bc=(True, None, True) if ca_like else (False, None, True),
        ku=(frozenset({"key_cert_sign", "crl_sign"} if ca_like
                      else {"digital_signature", "key_encipherment"}), True),
        eku=None if ca_like else ("server",),
        ns=None, nc=None, ski="ok", aki="ok", policy="none", unknown="none",
        san=None if ca_like else ("dns:HOST",),
        cn="HOST", email="", serial="random", signer="issuer",
    )


def _mutations(role):
    """What each part may become instead of its default."""
    ca_like = role != "leaf"
    names = st.lists(_choice(NAMES), max_size=2, unique=True).map(tuple)
    return {
        "key": _choice(KEYS),
        "signature": _choice(SIGNATURES),
        "validity": _choice(VALIDITY),
        "bc": st.one_of(st.none(), st.tuples(st.booleans(), _maybe(st.integers(0, 1)), st.booleans())),
        "ku": _maybe(st.tuples(st.frozensets(_choice(KU_FIELDS), min_size=1), st.booleans())),
        "eku": _maybe(st.lists(_choice(EKUS), min_size=1, max_size=2, unique=True).map(tuple)),
        "ns": st.lists(_choice(NS_TYPES), max_size=2, unique=True).map(tuple),
        "nc": st.tuples(names, names) if ca_like else st.none(),
        "ski": _choice(("absent", "mismatch", "critical")),
        "aki": _choice(("absent", "mismatch", "critical", "issuer-serial", "wrong-serial",
                        "wrong-issuer")),
        "policy": _choice(("any", "any-critical")),
        "unknown": _choice(("plain", "critical")),
        "san": _maybe(st.lists(_choice(SANS), max_size=3, unique=True).map(tuple)),
        "cn": _choice(CNS),
        "email": _choice(EMAILS),
        "serial": _choice(("one", "big")),
        "signer": st.just("same-name-other-key"),
        "raw": st.lists(st.tuples(
            st.one_of(_choice(RAW_OIDS[:-1]), st.integers(1, 1 << 20).map(
                lambda n: "1.3.6.1.4.1.55555.%d" % n)),
            st.booleans(), _choice(RAW_VALUES)), min_size=1, max_size=2).map(tuple),
        "time": _choice(TIME_FORMS[1:]),
        "cn_type": _choice(NAME_TYPES[1:]),
    }


@st.composite
def part(draw, role):
    """A certificate for ``role``: the defaults, with up to three parts
    changed (so most chains are nearly right, and shrinking removes
    changes)."""
    fields = _defaults(role)
    mutations = _mutations(role)
    for name in draw(st.lists(_choice(sorted(mutations)), max_size=3, unique=True)):
        fields[name] = draw(mutations[name])
    return Part(**fields)


@dataclass(frozen=True)
class Spec:
    """A whole situation: the certificates, what is sent, what is trusted."""

    host: str
    root: Part
    intermediates: tuple
    leaf: Part
    sent: str
    cafile: tuple
    framing: str


SENT = ("chain", "chain", "reversed", "leaf-only", "with-root", "duplicate", "extra")
CAFILE = (("root",), ("root",), ("root",), ("root", "inter"), ("inter",), ("leaf",),
          ("root", "leaf"), ("other",), ("root", "other"))
FRAMING = ("plain", "plain", "plain", "crlf", "text-around", "blank-after-begin",
           "trailing-junk", "cr-only", "blank-inside", "double-begin", "bad-der",
           "no-final-newline", "long-lines", "junk-private-key", "junk-ec-private-key",
           "junk-crl", "junk-trusted-certificate", "good-private-key", "junk-public-key",
           "empty-serial-cert", "invalid-utf8-cert")


@st.composite
def spec(draw):
    depth = draw(st.sampled_from((0, 1, 1, 2)))
    changed = draw(st.lists(_choice(("host", "sent", "cafile", "framing")), max_size=2, unique=True))
    return Spec(
        host=draw(_choice(HOSTS)) if "host" in changed else "localhost",
        root=draw(part("root")),
        intermediates=tuple(draw(part("inter")) for _ in range(depth)),
        leaf=draw(part("leaf")),
        sent=draw(_choice(SENT)) if "sent" in changed else "chain",
        cafile=draw(_choice(CAFILE)) if "cafile" in changed else ("root",),
        framing=draw(_choice(FRAMING)) if "framing" in changed else "plain",
    )


# -- building ------------------------------------------------------------------------


class Keys:
    """A pool of keys made once (RSA generation is slow)."""

    def __init__(self):
        self._pool = {
            "ec256": [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)],
            "ec384": [ec.generate_private_key(ec.SECP384R1()) for _ in range(2)],
            "rsa2048": [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)],
            "rsa1024": [rsa.generate_private_key(public_exponent=65537, key_size=1024)],
            "ed25519": [ed25519.Ed25519PrivateKey.generate() for _ in range(3)],
        }
        self._next = {}

    def get(self, kind):
        i = self._next.get(kind, 0)
        self._next[kind] = i + 1
        pool = self._pool[kind]
        return pool[i % len(pool)]

    def other(self, kind):
        """A key of another type than ``kind`` (for a same-name forgery)."""
        return self._pool["rsa2048" if kind != "rsa2048" else "ec256"][-1]


def _validity(kind, now):
    return {
        "now": (now - DAY, now + 365 * DAY),
        "expired": (now - 60 * DAY, now - 2 * DAY),
        "future": (now + 2 * DAY, now + 60 * DAY),
        "pre1970": (datetime.datetime(1960, 1, 1, tzinfo=datetime.timezone.utc), now + 365 * DAY),
        "far": (now - DAY, datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)),
    }[kind]


def _general(entry, host):
    kind, _, value = entry.partition(":")
    value = value.replace("HOST", host)
    if kind == "dns":
        return x509.DNSName(value)
    if kind == "ip":
        try:
            return x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            return x509.IPAddress(ipaddress.ip_network(value))
    if kind == "email":
        return x509.RFC822Name(value)
    if kind == "uri":
        return x509.UniformResourceIdentifier(value)
    if kind == "dir":
        return x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, value)]))
    raise ValueError(entry)


def _ns_der(names):
    bits = 0
    for name in names:
        bits |= {"client": 0x80, "server": 0x40, "sslca": 0x04}[name]
    # BIT STRING, one content byte, no unused-bit count beyond the last set bit.
    unused = (bits & -bits).bit_length() - 1 if bits else 0
    return bytes([0x03, 0x02, unused, bits])


@dataclass
class Made:
    cert: x509.Certificate
    key: object
    name: x509.Name


def _name(label, part, host):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securesmtp parity " + label)]
    cn = part.cn.replace("HOST", host)
    if label != "leaf":
        cn = "Parity " + label
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if part.email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, part.email))
    return x509.Name(attrs)


def make(part, label, issuer, keys, host, now):
    """One certificate; ``issuer`` None makes it self-issued."""
    key = keys.get(part.key)
    subject = _name(label, part, host)
    issuer_name = issuer.name if issuer else subject
    signer_key = issuer.key if issuer else key
    if part.signer == "same-name-other-key" and issuer is None:
        signer_key = keys.other(part.key)
    not_before, not_after = _validity(part.validity, now)
    serial = {"random": x509.random_serial_number(), "one": 1, "big": (1 << 159) - 1}[part.serial]
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(not_before).not_valid_after(not_after))
    if part.bc is not None:
        ca, path_length, critical = part.bc
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical)
    if part.ku is not None:
        fields, critical = part.ku
        b = b.add_extension(x509.KeyUsage(
            digital_signature="digital_signature" in fields, content_commitment=False,
            key_encipherment="key_encipherment" in fields, data_encipherment=False,
            key_agreement="key_agreement" in fields, key_cert_sign="key_cert_sign" in fields,
            crl_sign="crl_sign" in fields, encipher_only=False, decipher_only=False), critical)
    if part.eku is not None:
        oids = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH,
                "any": ANY_EKU, "code": ExtendedKeyUsageOID.CODE_SIGNING}
        b = b.add_extension(x509.ExtendedKeyUsage([oids[e] for e in part.eku]), False)
    if part.ns is not None:
        b = b.add_extension(x509.UnrecognizedExtension(NS_CERT_TYPE, _ns_der(part.ns)), False)
    if part.nc is not None:
        permitted, excluded = part.nc
        if permitted or excluded:
            b = b.add_extension(x509.NameConstraints(
                permitted_subtrees=[_general(n, host) for n in permitted] or None,
                excluded_subtrees=[_general(n, host) for n in excluded] or None), True)
    if part.san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([_general(s, host) for s in part.san]), False)
    if part.ski != "absent":
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        if part.ski == "mismatch":
            ski = x509.SubjectKeyIdentifier(b"\x01" * 20)
        b = b.add_extension(ski, part.ski == "critical")
    if part.aki != "absent":
        issuer_key = (issuer.key if issuer else key).public_key()
        keyid = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key).key_identifier
        if part.aki == "mismatch":
            keyid = b"\x02" * 20
        dirname = issuer.cert.issuer if issuer else issuer_name
        aki_serial = issuer.cert.serial_number if issuer else serial
        if part.aki == "wrong-serial":
            aki_serial += 1
        if part.aki == "wrong-issuer":
            dirname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Somebody else")])
        if part.aki in ("issuer-serial", "wrong-serial", "wrong-issuer"):
            aki = x509.AuthorityKeyIdentifier(keyid, [x509.DirectoryName(dirname)], aki_serial)
        else:
            aki = x509.AuthorityKeyIdentifier(keyid, None, None)
        b = b.add_extension(aki, part.aki == "critical")
    if part.policy != "none":
        b = b.add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier("2.5.29.32.0"), None)]),
            part.policy == "any-critical")
    if part.unknown != "none":
        b = b.add_extension(x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"),
                            part.unknown == "critical")
    if isinstance(signer_key, ed25519.Ed25519PrivateKey):
        cert = b.sign(signer_key, None)
    elif part.signature == "pss" and isinstance(signer_key, rsa.RSAPrivateKey):
        cert = b.sign(signer_key, hashes.SHA256(), rsa_padding=padding.PSS(
            mgf=padding.MGF1(hashes.SHA256()), salt_length=32))
    else:
        algorithm = {"sha384": hashes.SHA384(), "sha512": hashes.SHA512()}.get(
            part.signature, hashes.SHA256())
        cert = b.sign(signer_key, algorithm)
        if part.signature == "sha1":
            # cryptography no longer signs with SHA-1: sign again by hand.
            cert = certmatrix._resign(cert, signer_key, False, True)
    if part.raw or part.time != "der" or part.cn_type != "utf8":
        cert = _raw_edit(cert, key, signer_key, part, label, not_before, not_after)
    return Made(cert, key, subject)


_RAW_OID_NAMES = {"aia": "1.3.6.1.5.5.7.1.1", "policy-constraints": "2.5.29.36",
                  "tls-feature": "1.3.6.1.5.5.7.1.24", "ms-template": "1.3.6.1.4.1.311.21.7"}
_RAW_REAL = {"aia": bytes.fromhex("300f300d06082b060105050730018601") + b"x",
             "policy-constraints": bytes.fromhex("3003800100"),
             "tls-feature": bytes.fromhex("3003020105"),
             "ms-template": bytes.fromhex("3006060104020100")}


def _raw_edit(cert, key, signer_key, part, label, not_before, not_after):
    from . import rawcert

    extensions = []
    present = [e.oid.dotted_string for e in cert.extensions] if hasattr(cert, "extensions") else []
    for oid, critical, value in part.raw:
        dotted = rawcert.OIDS.get(oid) or _RAW_OID_NAMES.get(oid) or oid
        if value == "dup":
            if not present:
                continue
            dotted = present[len(extensions) % len(present)]
            raw = next(e for e in cert.extensions if e.oid.dotted_string == dotted)
            content = raw.value.public_bytes()
            extensions.append(rawcert.extension(dotted, content, raw.critical))
            continue
        content = {
            "real": {"ip": rawcert.RFC3779_IP, "as": rawcert.RFC3779_AS,
                     "proxy": rawcert.PROXY_CERT_INFO, "sct": rawcert.SCT_LIST,
                     "ski": rawcert.SKI, "aki": rawcert.AKI, "ns": rawcert.NS_SSL_CA,
                     "crldp": rawcert.CRLDP, "bc": rawcert.BASIC_CA}.get(oid)
            or _RAW_REAL.get(oid, bytes.fromhex("0500")),
            "junk": rawcert.NOT_DER_FOR_ANY,
            "empty": b"",
        }[value]
        extensions.append(rawcert.extension(dotted, content, critical))
    times = None if part.time == "der" else _times(part.time, not_before, not_after)
    cn = None
    # Only a leaf's subject is re-encoded: a CA's is the issuer name of the
    # certificates below it, which are already signed.
    if part.cn_type != "utf8" and label == "leaf":
        cn = _cn_value(part.cn_type, (part.cn or "x").replace("HOST", "localhost"))
    holder = certmatrix.Cert(cert, key)
    edited = rawcert.edit(holder, signer_key, extensions=extensions, times=times, cn=cn)
    return rawcert.RawX509(edited.der, cert)


def _times(form, not_before, not_after):
    def utc(t, fmt="%y%m%d%H%M%SZ"):
        return (0x17, t.strftime(fmt))

    def gen(t, fmt="%Y%m%d%H%M%SZ"):
        return (0x18, t.strftime(fmt))

    def fit(t):
        # UTCTime holds 1950 to 2049 only; outside, the form stays GeneralizedTime.
        return utc(t) if 1950 <= t.year < 2050 else gen(t)

    odd = {
        "utc-offset": lambda t: utc(t, "%y%m%d%H%M%S+0000") if 1950 <= t.year < 2050 else gen(t),
        "utc-no-seconds": lambda t: utc(t, "%y%m%d%H%MZ") if 1950 <= t.year < 2050 else gen(t),
        "generalized-fraction": lambda t: gen(t, "%Y%m%d%H%M%S.5Z"),
        "generalized-for-utc": lambda t: gen(t),
        "utc-no-z": lambda t: utc(t, "%y%m%d%H%M%S") if 1950 <= t.year < 2050 else gen(t),
        "generalized-offset": lambda t: gen(t, "%Y%m%d%H%M%S+0000"),
    }[form]
    return [odd(not_before), fit(not_after)]


def _cn_value(kind, text):
    if kind == "printable":
        return (0x13, text.encode("ascii", "replace"))
    if kind == "ia5":
        return (0x16, text.encode("ascii", "replace"))
    if kind == "visible":
        return (0x1A, text.encode("ascii", "replace"))
    if kind == "numeric":
        return (0x12, b"12345")
    if kind == "teletex":
        return (0x14, text.encode("latin-1", "replace"))
    if kind == "bmp":
        return (0x1E, text.encode("utf-16-be"))
    if kind == "universal":
        return (0x1C, text.encode("utf-32-be"))
    if kind == "utf8-invalid":
        return (0x0C, text.encode() + b"\xff")
    if kind == "bmp-odd":
        return (0x1E, text.encode("utf-16-be") + b"\x00")
    return (0x04, text.encode())  # octet-string: no string type at all


def _frame(pems, framing):
    """The CA file's bytes, written as ``framing`` says."""
    text = b"".join(pems)
    if framing == "crlf":
        return text.replace(b"\n", b"\r\n")
    if framing == "text-around":
        return b"Bundle of test CAs\n" + b"\nnote between\n".join(pems) + b"trailer\n"
    if framing == "blank-after-begin":
        return text.replace(b"-----\n", b"-----\n\n").replace(b"\n\n-----END", b"\n-----END")
    if framing == "trailing-junk":
        return text.replace(b"-----END CERTIFICATE-----", b"-----END CERTIFICATE-----junk", 1)
    if framing == "cr-only":
        return text.replace(b"\n", b"\r")
    if framing == "blank-inside":
        lines = pems[0].split(b"\n")
        lines.insert(3, b"")
        return b"\n".join(lines) + b"".join(pems[1:])
    if framing == "double-begin":
        lines = pems[0].split(b"\n")
        lines.insert(3, b"-----BEGIN CERTIFICATE-----")
        return b"\n".join(lines) + b"".join(pems[1:])
    if framing == "bad-der":
        return text + b"-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n"
    if framing == "no-final-newline":
        return text.rstrip(b"\n")
    if framing.startswith("junk-"):
        label = {"crl": "X509 CRL"}.get(framing[len("junk-"):]) or \
            framing[len("junk-"):].upper().replace("-", " ")
        return text + certmatrix._block(label, certmatrix._JUNK)
    if framing == "good-private-key":
        key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        return key + text
    if framing in ("empty-serial-cert", "invalid-utf8-cert"):
        from . import rawcert

        k = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        c = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stranger")]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stranger")]))
             .public_key(k.public_key()).serial_number(7)
             .not_valid_before(now - DAY).not_valid_after(now + DAY)
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
             .sign(k, hashes.SHA256()))
        edits = {"serial": b""} if framing == "empty-serial-cert" else {"cn": (0x0C, b"\xff\xfe")}
        return text + rawcert.edit(certmatrix.Cert(c, k), k, **edits).pem
    if framing == "long-lines":
        # The base64 of each block on one line.
        out = []
        for p in pems:
            lines = p.split(b"\n")
            out.append(b"\n".join([lines[0], b"".join(lines[1:-2]), lines[-2]]) + b"\n")
        return b"".join(out)
    return text


@dataclass
class Built:
    spec: Spec
    sent: list  # DER, leaf first
    chain_pem: str
    key_pem: str
    cafile: str


def build(s, keys, directory, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    host = s.host.rstrip(".") or "localhost"
    root = make(s.root, "root", None, keys, host, now)
    chain = [root]
    for i, p in enumerate(s.intermediates):
        chain.append(make(p, "inter%d" % i, chain[-1], keys, host, now))
    leaf = make(s.leaf, "leaf", chain[-1], keys, host, now)
    other = make(s.root, "other", None, keys, host, now)
    inters = list(reversed(chain[1:]))  # nearest the leaf first
    sent = {
        "chain": [leaf] + inters,
        "reversed": [leaf] + inters[::-1],
        "leaf-only": [leaf],
        "with-root": [leaf] + inters + [root],
        "duplicate": [leaf] + inters + inters + [leaf],
        "extra": [leaf, other] + inters,
    }[s.sent]
    members = {"root": [root], "inter": inters, "leaf": [leaf], "other": [other]}
    trusted = [m for name in s.cafile for m in members[name]] or [root]
    pem = lambda m: m.cert.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for name, data in (
        ("chain.pem", b"".join(pem(m) for m in sent)),
        ("key.pem", leaf.key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())),
        ("cafile.pem", _frame([pem(m) for m in trusted], s.framing)),
    ):
        paths[name] = os.path.join(directory, name)
        with open(paths[name], "wb") as fp:
            fp.write(data)
    return Built(s, [m.cert.public_bytes(serialization.Encoding.DER) for m in sent],
                 paths["chain.pem"], paths["key.pem"], paths["cafile.pem"])


# -- the judges ----------------------------------------------------------------------------


@dataclass
class Judgement:
    accepted: bool
    stage: str  # "accepted", "cafile", "chain" (OpenSSL), "name" (Mercurial), "server"
    message: str


def _serve(sock, built, done):
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # The server presents whatever it is given; only the client judges.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(built.chain_pem, built.key_pem)
        with ctx.wrap_socket(sock, server_side=True) as tls:
            tls.recv(1)
    except (OSError, ssl.SSLError) as exc:
        done.append(exc)
    finally:
        sock.close()


def _validate(tls):
    try:
        sslutil.validatesocket(tls)
    except error.Abort as exc:
        return Judgement(False, "name", exc.message.decode(errors="replace"))
    finally:
        tls.close()
    return Judgement(True, "accepted", "")


def stock(built):
    """What stock Mercurial's TLS client decides for this chain: its own
    ``wrapsocket`` (OpenSSL) and ``validatesocket`` (its name check)."""
    u = uimod.ui()
    u.setconfig(b"web", b"cacerts", built.cafile.encode())
    host = built.spec.host.encode()
    client, server = socket.socketpair()
    client.settimeout(10)
    server.settimeout(10)
    problems = []
    thread = threading.Thread(target=_serve, args=(server, built, problems), daemon=True)
    thread.start()
    try:
        try:
            tls = sslutil.wrapsocket(client, None, None, u, serverhostname=host)
        except error.Abort as exc:
            message = exc.message.decode(errors="replace")
            stage = "cafile" if "CA file" in message else "chain"
            if problems and not isinstance(problems[0], ssl.SSLError):
                stage = "server"
            return Judgement(False, stage, message)
        except (ssl.SSLError, OSError) as exc:
            stage = "chain" if "certificate verify failed" in str(exc) else "server"
            return Judgement(False, stage, str(exc))
        return _validate(tls)
    finally:
        client.close()
        thread.join(10)


def extension(built):
    """What the extension's verifier decides for the same chain and CA file."""
    from securesmtp import _core

    accepted, message = _core.verify_chain(built.sent, built.spec.host, cafile=built.cafile)
    return Judgement(accepted, "accepted" if accepted else "refused", message)
