"""Certificates nobody here wrote, judged by stock's verifier and ours.

The x509 folder of the ``cryptography-vectors`` package (PyPI) holds
real-world certificates, cryptography's own edge cases (``custom/``) and
NIST's PKITS suite. Each certificate file is judged twice:

- *in a CA file*: the file holds a valid test CA and the certificate; the
  server's certificate is a leaf of the test CA. Stock's side is OpenSSL
  loading the file (``SSLContext.load_verify_locations``, what
  ``web.cacerts`` does), then verifying the leaf; ours is
  ``_core.verify_chain`` with the same file;
- *as itself*: the file holds only the certificate, and the server sends
  it alone. Stock's side is OpenSSL's verifier with the SSL-server purpose
  at Debian's security level (``openssl verify -purpose sslserver
  -auth_level 2``) at a time inside the certificate's validity; ours is
  ``_core.verify_chain`` at the same time, for a host the certificate names
  (the name check is the generated test's subject; here the chain is).

A certificate file the judges cannot read at all is counted, not judged.
The extension may refuse what stock accepts (stricter); it must never
accept what stock refuses.
"""

import base64
import datetime
import os
import ssl
import subprocess
import warnings
from collections import Counter
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import certmatrix


def folder():
    import cryptography_vectors

    return os.path.join(os.path.dirname(cryptography_vectors.__file__), "x509")


def certificate_files(root, skip=()):
    """(relative path, DER) of every file that holds a certificate, but in
    the top-level folders named in ``skip``."""
    out = []
    for directory, _, names in os.walk(root):
        if os.path.relpath(directory, root).split(os.sep)[0] in skip:
            continue
        for name in sorted(names):
            path = os.path.join(directory, name)
            with open(path, "rb") as fp:
                data = fp.read()
            der = _first_certificate(data)
            if der is not None:
                out.append((os.path.relpath(path, root), der))
    return sorted(out)


def _first_certificate(data):
    # Both labels OpenSSL reads as a plain certificate.
    for label in (b"CERTIFICATE", b"X509 CERTIFICATE"):
        begin = b"-----BEGIN " + label + b"-----"
        if begin not in data:
            continue
        start = data.index(begin) + len(begin)
        end = data.find(b"-----END " + label + b"-----", start)
        if end < 0:
            return None
        try:
            return base64.b64decode(b"".join(data[start:end].split()))
        except ValueError:
            return None
    # DER: a SEQUENCE whose length covers the file; CRLs and requests are
    # SEQUENCEs too, so the contents are sorted out by the judges' parsers.
    if data[:1] == b"\x30" and len(data) > 64 and not data.startswith(b"-----"):
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            # cryptography cannot read it either; still a candidate when it
            # looks like a certificate to OpenSSL.
            if _openssl_reads(data) is None:
                return None
        return data
    return None


def _openssl_reads(der):
    proc = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-dates"],
                          input=der, capture_output=True)
    return proc.stdout.decode() if proc.returncode == 0 else None


def pem(der):
    b64 = base64.b64encode(der).decode()
    return ("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n"
            % "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))).encode()


def _validity_midpoint(der):
    text = _openssl_reads(der)
    if text is None:
        return None
    fields = dict(line.split("=", 1) for line in text.strip().splitlines() if "=" in line)
    try:
        fmt = "%b %d %H:%M:%S %Y %Z"
        start = datetime.datetime.strptime(" ".join(fields["notBefore"].split()), fmt)
        end = datetime.datetime.strptime(" ".join(fields["notAfter"].split()), fmt)
    except (KeyError, ValueError):
        return None
    epoch = datetime.datetime(1970, 1, 1)
    middle = start + (end - start) / 2
    return max(1, int((middle - epoch).total_seconds()))


def _host(der):
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        dns = names.value.get_values_for_type(x509.DNSName)
        if dns:
            return dns[0].lstrip("*.") or "localhost"
    except Exception:  # noqa: BLE001 - what cryptography cannot read names no host
        pass
    try:
        cert = x509.load_der_x509_certificate(der)
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if cns and isinstance(cns[0].value, str) and cns[0].value:
            return cns[0].value.lstrip("*.")
    except Exception:  # noqa: BLE001
        pass
    return "localhost"


@dataclass
class Row:
    path: str
    how: str  # "cafile" or "itself"
    stock: bool
    ours: bool
    ours_says: str


def judge_in_cafile(path, der, directory, ca, leaf):
    from securesmtp import _core

    cafile = os.path.join(directory, "cafile.pem")
    with open(cafile, "wb") as fp:
        fp.write(ca.pem + pem(der))
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile)
        stock = True  # the test CA then vouches for the leaf, as the control shows
    except ssl.SSLError:
        stock = False
    leaf_der = leaf.certificate.public_bytes(serialization.Encoding.DER)
    ours, says = _core.verify_chain([leaf_der], "localhost", cafile=cafile)
    return Row(path, "cafile", stock, ours, says)


def judge_as_itself(path, der, directory):
    from securesmtp import _core

    at = _validity_midpoint(der)
    if at is None:
        return None
    cafile = os.path.join(directory, "itself.pem")
    with open(cafile, "wb") as fp:
        fp.write(pem(der))
    proc = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-auth_level", "2", "-attime", str(at),
         "-CAfile", cafile, cafile], capture_output=True, text=True)
    stock = proc.returncode == 0
    ours, says = _core.verify_chain([der], _host(der), cafile=cafile, at=at)
    return Row(path, "itself", stock, ours, says)


def run(directory, root=None, skip=()):
    """Every row, and the counts by folder and verdict pair."""
    # cryptography warns about what it reads leniently; the verdicts here
    # are OpenSSL's and the extension's, so the warnings are noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _run(directory, root, skip)


def _run(directory, root, skip):
    root = root or folder()
    m = certmatrix.Matrix(os.path.join(directory, "m"), rsa_pool=1)
    ca = m.ca("Vectors Test CA")
    leaf = m.leaf(ca)
    rows = []
    for path, der in certificate_files(root, skip):
        rows.append(judge_in_cafile(path, der, directory, ca, leaf))
        row = judge_as_itself(path, der, directory)
        if row is not None:
            rows.append(row)
    counts = Counter()
    for r in rows:
        part = r.path.split(os.sep)[0] if os.sep in r.path else "real-world"
        counts[(part, r.how, "stock " + ("accepts" if r.stock else "refuses"),
                "ours " + ("accepts" if r.ours else "refuses"))] += 1
    return rows, counts
