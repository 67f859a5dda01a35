"""Certificates edited as DER where ``cryptography``'s builder will not go.

The builder refuses an extension twice, writes times only in RFC 5280's two
forms and validates what it signs; the strict profile of the verifier
(``src/tls/profile.rs``) is about exactly those places. ``edit()`` takes a
certificate the builder made, changes its TBSCertificate (raw extensions
appended, validity re-encoded, serial replaced, a name attribute's string
replaced) and signs it again with the issuer's key, so that everything but
the edit is as a real CA makes it. The result is kept as DER (and PEM):
``cryptography`` itself may refuse to load it.
"""

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .certmatrix import _der, _der_header


def oid(dotted):
    """An OBJECT IDENTIFIER's DER."""
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, body)


def extension(dotted, value, critical=False):
    """One Extension's DER: the OID, the criticality, the value's bytes."""
    return _der(0x30, oid(dotted) + (b"\x01\x01\xff" if critical else b"") + _der(0x04, value))


# Values of real extensions, and contents that do not decode as them.
RFC3779_IP = bytes.fromhex("300c300a0402000130040302000a")  # IPv4 10.0.0.0/8
RFC3779_AS = bytes.fromhex("3009a0073005020300fbf0")  # AS 64496
PROXY_CERT_INFO = bytes.fromhex("300c300a06082b06010505071501")  # inheritAll
SCT_LIST = bytes.fromhex("04020000")
SKI = bytes.fromhex("04140102030405060708090a0b0c0d0e0f1011121314")
AKI = bytes.fromhex("301680140102030405060708090a0b0c0d0e0f1011121314")
NS_SSL_CA = bytes.fromhex("03020204")
CRLDP = bytes.fromhex("300c300aa008a0068604") + b"http"
BASIC_CA = bytes.fromhex("30030101ff")
NOT_DER_FOR_ANY = bytes.fromhex("020100")  # an INTEGER where a structure belongs

OIDS = {
    "ip": "1.3.6.1.5.5.7.1.7",
    "as": "1.3.6.1.5.5.7.1.8",
    "proxy": "1.3.6.1.5.5.7.1.14",
    "sct": "1.3.6.1.4.1.11129.2.4.2",
    "ski": "2.5.29.14",
    "aki": "2.5.29.35",
    "ns": "2.16.840.1.113730.1.1",
    "crldp": "2.5.29.31",
    "bc": "2.5.29.19",
}


@dataclass
class RawCert:
    """A certificate as DER, with its key and the builder's certificate it
    was made from (for its subject, to issue others under it)."""

    der: bytes
    key: object
    certificate: object

    @property
    def pem(self):
        import base64

        b64 = base64.b64encode(self.der).decode()
        lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
        return ("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n"
                % "\n".join(lines)).encode()

    def fingerprint(self, algorithm):
        digest = hashes.Hash(algorithm)
        digest.update(self.der)
        return digest.finalize().hex(":")

    @property
    def sha256(self):
        return "sha256:" + self.fingerprint(hashes.SHA256())


def _elements(data, start, end):
    out = []
    i = start
    while i < end:
        _, body, stop = _der_header(data, i)
        out.append(data[i:stop])
        i = stop
    return out


def edit(cert, signer_key, *, extensions=(), times=None, serial=None, cn=None):
    """``cert`` (a certmatrix.Cert) edited and signed again by ``signer_key``.

    ``extensions``: raw Extension DERs appended; ``times``: (tag, text) for
    notBefore and notAfter; ``serial``: the INTEGER's contents; ``cn``:
    (tag, bytes) for the value of the subject's common name (added if absent).
    """
    der = cert.certificate.public_bytes(serialization.Encoding.DER)
    _, body, _ = _der_header(der, 0)
    _, tbs_body, tbs_end = _der_header(der, body)
    _, _, alg_end = _der_header(der, tbs_end)
    sig_alg = der[tbs_end:alg_end]
    fields = _elements(der, tbs_body, tbs_end)
    if serial is not None:
        fields[1] = _der(0x02, serial)
    if times is not None:
        fields[4] = _der(0x30, b"".join(_der(tag, text.encode()) for tag, text in times))
    if cn is not None:
        tag, value = cn
        _, name_body, name_end = _der_header(fields[5], 0)
        rdns = _elements(fields[5], name_body, name_end)
        attribute = _der(0x31, _der(0x30, oid("2.5.4.3") + _der(tag, value)))
        common_name = [i for i, rdn in enumerate(rdns) if oid("2.5.4.3") in rdn]
        if common_name:
            rdns[common_name[0]] = attribute
        else:
            rdns.append(attribute)
        fields[5] = _der(0x30, b"".join(rdns))
    if extensions:
        if fields[-1][0] == 0xA3:
            outer = fields[-1]
            _, seq_start, _ = _der_header(outer, 0)
            _, list_body, list_end = _der_header(outer, seq_start)
            present = _elements(outer, list_body, list_end)
        else:
            present = []
            fields.append(b"")
        fields[-1] = _der(0xA3, _der(0x30, b"".join(present) + b"".join(extensions)))
    tbs = _der(0x30, b"".join(fields))
    out = _der(0x30, tbs + sig_alg + _der(0x03, b"\x00" + _sign(cert.certificate, signer_key, tbs)))
    return RawCert(out, cert.key, cert.certificate)


def _sign(certificate, key, tbs):
    """``tbs`` signed as ``certificate`` was (its algorithm and padding)."""
    algorithm = certificate.signature_hash_algorithm
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(tbs)
    if isinstance(key, rsa.RSAPrivateKey):
        if certificate.signature_algorithm_oid == x509.oid.SignatureAlgorithmOID.RSASSA_PSS:
            pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return key.sign(tbs, pad, hashes.SHA256())
        return key.sign(tbs, padding.PKCS1v15(), algorithm)
    assert isinstance(key, ec.EllipticCurvePrivateKey), key
    return key.sign(tbs, ec.ECDSA(algorithm))


class RawX509:
    """Stands in for a ``cryptography`` certificate where only its bytes,
    issuer, subject and serial are read (frankencert's chains)."""

    def __init__(self, der, made_from):
        self._der = der
        self._from = made_from
        self.issuer = made_from.issuer
        self.subject = made_from.subject
        self.serial_number = made_from.serial_number

    def public_bytes(self, encoding):
        if encoding == serialization.Encoding.DER:
            return self._der
        return RawCert(self._der, None, self._from).pem
