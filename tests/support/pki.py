"""Certificates made at test time, with ``cryptography``.

Everything is generated in memory and written to a directory: no fixed test
keys in the repository, nothing that expires in the tree. ``cryptography`` is
used rather than trustme because several of the certificates below are
deliberately malformed or unusual (no extensions at all, back-dated, a
self-signed CA:TRUE server certificate), which trustme does not make.

``make_pki(directory)`` returns a :class:`Pki` whose attributes are
:class:`CertFiles`:

- ``ca``                   the test CA (the file to put in ``web.cacerts``)
- ``rsa``, ``ecdsa``       leaves for localhost, 127.0.0.1 and ::1, signed by
                           ``ca`` (RSA-2048 and ECDSA P-256)
- ``wrong_host``           a leaf for mail.example.org only, signed by ``ca``
- ``expired``              a localhost leaf whose not_after is in the past
- ``intermediate``         an intermediate CA signed by ``ca``
- ``via_intermediate``     a localhost leaf signed by ``intermediate``;
                           its ``chain`` holds leaf + intermediate,
                           ``leaf_only`` holds the leaf alone
- ``selfsigned``           self-signed, basicConstraints CA:TRUE, SAN
                           localhost (what ``openssl req -x509`` makes)
- ``selfsigned_bare``      self-signed, no extensions, CN=localhost only
                           (like Mercurial's tests/sslcerts/pub.pem)
- ``rogue_ca``             a second CA nobody trusts
- ``unknown_ca``           a localhost leaf signed by ``rogue_ca``

Fingerprints are computed here independently of the code under test.
"""

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
# Providers' submission servers, served locally under their names (see
# support/hosts.py): hints that only a provider's server gets.
PROVIDER_NAMES = ("smtp.gmail.com", "smtp.office365.com")


def _fingerprint(pem, algorithm):
    if isinstance(pem, str):
        pem = pem.encode("ascii")
    cert = x509.load_pem_x509_certificate(pem)
    digest = cert.fingerprint(algorithm)
    return digest.hex(":")


def sha256_fingerprint(pem):
    """``sha256:aa:bb:...`` (lowercase, colon separated), as Mercurial prints."""
    return "sha256:" + _fingerprint(pem, hashes.SHA256())


def sha1_fingerprint(pem):
    """``sha1:aa:bb:...``; the bare hex part is what ``[hostfingerprints]`` takes."""
    return "sha1:" + _fingerprint(pem, hashes.SHA1())


def sha512_fingerprint(pem):
    return "sha512:" + _fingerprint(pem, hashes.SHA512())


@dataclass
class CertFiles:
    """One certificate and where it lives on disk."""

    name: str
    cert: str  # PEM of the certificate alone
    key: str  # PEM of its private key (PKCS#8, unencrypted)
    chain: str  # what a server presents: the certificate, then intermediates
    pem: bytes = field(repr=False)
    certificate: x509.Certificate = field(repr=False)
    private_key: object = field(repr=False)
    leaf_only: Optional[str] = None  # chain without intermediates, when different

    @property
    def sha256(self):
        return sha256_fingerprint(self.pem)

    @property
    def sha1(self):
        return sha1_fingerprint(self.pem)

    @property
    def sha512(self):
        return sha512_fingerprint(self.pem)

    @property
    def sha1_legacy(self):
        """The SHA-1 hex with colons, as ``[hostfingerprints]`` wants it."""
        return self.sha1.split(":", 1)[1]


@dataclass
class Pki:
    directory: str
    ca: CertFiles
    rsa: CertFiles
    ecdsa: CertFiles
    wrong_host: CertFiles
    expired: CertFiles
    intermediate: CertFiles
    via_intermediate: CertFiles
    selfsigned: CertFiles
    selfsigned_bare: CertFiles
    rogue_ca: CertFiles
    unknown_ca: CertFiles
    providers: CertFiles  # for PROVIDER_NAMES, reached through a hosts file

    def leaf(self, kind):
        """``"rsa"`` or ``"ecdsa"``."""
        return getattr(self, kind)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn, org="securesmtp tests"):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _san(names):
    entries = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def _builder(subject, issuer, public_key, not_before, not_after):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _ca_cert(key, cn, issuer_cert=None, issuer_key=None, path_length=None):
    now = _now()
    subject = _name(cn)
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    signer = issuer_key if issuer_key is not None else key
    b = (
        _builder(subject, issuer, key.public_key(), now - datetime.timedelta(days=1),
                 now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return b.sign(signer, hashes.SHA256())


def _leaf_cert(key, names, issuer_cert, issuer_key, not_before=None, not_after=None):
    now = _now()
    not_before = not_before or now - datetime.timedelta(days=1)
    not_after = not_after or now + datetime.timedelta(days=365)
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    b = (
        _builder(_name(names[0]), issuer_cert.subject, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=is_rsa, data_encipherment=False, key_agreement=False,
                key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    return b.sign(issuer_key, hashes.SHA256())


def _selfsigned_ca_true(key, names):
    """What ``openssl req -x509 -subj /CN=localhost -addext subjectAltName=...`` makes."""
    now = _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    b = (
        _builder(subject, subject, key.public_key(), now - datetime.timedelta(days=1),
                 now + datetime.timedelta(days=365))
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
    )
    return b.sign(key, hashes.SHA256())


def _selfsigned_bare(key, cn):
    """No extensions at all, CN only: like Mercurial's tests/sslcerts/pub.pem."""
    now = _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = _builder(subject, subject, key.public_key(), now - datetime.timedelta(days=1),
                 now + datetime.timedelta(days=365))
    return b.sign(key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(directory, filename, data):
    path = os.path.join(directory, filename)
    with open(path, "wb") as fp:
        fp.write(data)
    return path


def _files(directory, name, cert, key, intermediates=()):
    pem = _pem(cert)
    cert_path = _write(directory, name + ".pem", pem)
    key_path = _write(directory, name + ".key", _key_pem(key))
    leaf_only = None
    if intermediates:
        chain = _write(directory, name + ".chain.pem", pem + b"".join(_pem(c) for c in intermediates))
        leaf_only = cert_path
    else:
        chain = cert_path
    return CertFiles(
        name=name, cert=cert_path, key=key_path, chain=chain, pem=pem,
        certificate=cert, private_key=key, leaf_only=leaf_only,
    )


def make_pki(directory):
    """Make every certificate the tests use, in ``directory`` (created)."""
    os.makedirs(directory, exist_ok=True)
    directory = os.path.abspath(directory)

    ca_key = _rsa_key()
    ca = _ca_cert(ca_key, "securesmtp Test CA")

    rsa_key = _rsa_key()
    rsa_leaf = _leaf_cert(rsa_key, list(LOCAL_NAMES), ca, ca_key)
    ec_key = _ec_key()
    ec_leaf = _leaf_cert(ec_key, list(LOCAL_NAMES), ca, ca_key)

    wrong_key = _ec_key()
    wrong = _leaf_cert(wrong_key, ["mail.example.org"], ca, ca_key)

    expired_key = _ec_key()
    expired = _leaf_cert(
        expired_key, list(LOCAL_NAMES), ca, ca_key,
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        not_after=datetime.datetime(2020, 2, 1, tzinfo=datetime.timezone.utc),
    )

    inter_key = _ec_key()
    inter = _ca_cert(inter_key, "securesmtp Test Intermediate", ca, ca_key, path_length=0)
    via_key = _ec_key()
    via = _leaf_cert(via_key, list(LOCAL_NAMES), inter, inter_key)

    ss_key = _rsa_key()
    ss = _selfsigned_ca_true(ss_key, ["localhost", "127.0.0.1"])
    bare_key = _rsa_key()
    bare = _selfsigned_bare(bare_key, "localhost")

    rogue_key = _ec_key()
    rogue = _ca_cert(rogue_key, "Rogue CA")
    unknown_key = _ec_key()
    unknown = _leaf_cert(unknown_key, list(LOCAL_NAMES), rogue, rogue_key)

    providers_key = _ec_key()
    providers = _leaf_cert(providers_key, list(PROVIDER_NAMES), ca, ca_key)

    d = directory
    return Pki(
        directory=d,
        ca=_files(d, "ca", ca, ca_key),
        rsa=_files(d, "leaf-rsa", rsa_leaf, rsa_key),
        ecdsa=_files(d, "leaf-ecdsa", ec_leaf, ec_key),
        wrong_host=_files(d, "wrong-host", wrong, wrong_key),
        expired=_files(d, "expired", expired, expired_key),
        intermediate=_files(d, "intermediate", inter, inter_key),
        via_intermediate=_files(d, "via-intermediate", via, via_key, intermediates=[inter]),
        selfsigned=_files(d, "selfsigned", ss, ss_key),
        selfsigned_bare=_files(d, "selfsigned-bare", bare, bare_key),
        rogue_ca=_files(d, "rogue-ca", rogue, rogue_key),
        unknown_ca=_files(d, "unknown-ca", unknown, unknown_key),
        providers=_files(d, "providers", providers, providers_key),
    )


@dataclass
class AnchorCases:
    """Certificate shapes for the CA-file rules (``make_anchor_cases``).

    - ``selfsigned_server``      self-signed, basicConstraints CA:FALSE,
                                 serverAuth, for localhost and 127.0.0.1: what
                                 a user puts in ``web.cacerts`` for their own
                                 server
    - ``forged_by_server``       a localhost leaf signed with that server
                                 certificate's key (it must not act as a CA)
    - ``expired_ca``             a CA whose validity ended 30 days ago
    - ``via_expired_ca``         a localhost leaf it signed, itself valid
    - ``dns_ip``                 a leaf whose only SAN is the DNS name
                                 ``127.0.0.1`` (not an iPAddress), signed by
                                 the test CA
    - ``idn``                    a leaf for ``xn--fa-hia.example`` (faß.example
                                 by IDNA 2008; IDNA 2003 says fass.example),
                                 signed by the test CA
    """

    selfsigned_server: CertFiles
    forged_by_server: CertFiles
    expired_ca: CertFiles
    via_expired_ca: CertFiles
    dns_ip: CertFiles
    idn: CertFiles


IDN_HOST = "faß.example"
IDN_ASCII = "xn--fa-hia.example"


def _selfsigned_ca_false(key, names):
    now = _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    b = (
        _builder(subject, subject, key.public_key(), now - datetime.timedelta(days=1),
                 now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(names), critical=False)
    )
    return b.sign(key, hashes.SHA256())


def make_anchor_cases(directory, pki):
    """The certificates of :class:`AnchorCases`, in ``directory``; ``pki`` is
    the :class:`Pki` whose CA signs ``dns_ip``."""
    os.makedirs(directory, exist_ok=True)
    d = os.path.abspath(directory)
    now = _now()

    server_key = _ec_key()
    server = _selfsigned_ca_false(server_key, ["localhost", "127.0.0.1"])
    forged_key = _ec_key()
    forged = _leaf_cert(forged_key, list(LOCAL_NAMES), server, server_key)

    old_key = _ec_key()
    old = _builder(
        _name("securesmtp Expired CA"), _name("securesmtp Expired CA"), old_key.public_key(),
        now - datetime.timedelta(days=400), now - datetime.timedelta(days=30),
    ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(
        old_key, hashes.SHA256()
    )
    via_old_key = _ec_key()
    via_old = _leaf_cert(via_old_key, list(LOCAL_NAMES), old, old_key)

    ca_key = pki.ca.private_key
    dns_ip_key = _ec_key()
    dns_ip = (
        _builder(_name("127.0.0.1"), pki.ca.certificate.subject, dns_ip_key.public_key(),
                 now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("127.0.0.1")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    idn_key = _ec_key()
    idn = _leaf_cert(idn_key, [IDN_ASCII], pki.ca.certificate, ca_key)
    return AnchorCases(
        selfsigned_server=_files(d, "selfsigned-ca-false", server, server_key),
        forged_by_server=_files(d, "forged-by-server", forged, forged_key),
        expired_ca=_files(d, "expired-ca", old, old_key),
        via_expired_ca=_files(d, "via-expired-ca", via_old, via_old_key),
        dns_ip=_files(d, "dns-ip", dns_ip, dns_ip_key),
        idn=_files(d, "idn", idn, idn_key),
    )
