"""What the trust code says, and what docs/security.md says of stock.

- An IPv6 host written in full (``0:0:0:0:0:0:0:1``) against a certificate
  whose common name is ``::1``: the refusal shows the host as written and
  says why two ways of writing one address do not match (stock compares a
  common name as text), instead of "certificate is for ::1, not ::1".
- docs/security.md's row on internationalised hosts: through ``hg email``
  stock cannot connect to one at all, even where both of its ASCII forms
  resolve.
- Certificates outside the strict profile that no TLS server will present
  (OpenSSL refuses to load them as its own certificate): judged by
  OpenSSL's own verifier (``openssl verify``, the SSL-server purpose, as
  stock's handshake runs it) beside the extension's verifier.
"""

import datetime
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from support import certmatrix, hg, rawcert
from support import pki as pkimod
from test_verify import _private_hosts_hg


@pytest.fixture(scope="module")
def idn_anchors(tmp_path_factory, pki):
    return pkimod.make_anchor_cases(str(tmp_path_factory.mktemp("anchors")), pki)


def _verify(chain, host, cafile):
    from securesmtp import _core

    return _core.verify_chain([c.der if hasattr(c, "der") else c.certificate.public_bytes(
        serialization.Encoding.DER) for c in chain], host, cafile=cafile)


def _write(tmp_path, name, certs):
    path = tmp_path / name
    path.write_bytes(b"".join(c.pem for c in certs))
    return str(path)


def test_a_full_ipv6_host_is_shown_as_written_against_a_common_name_of_another_form(tmp_path):
    m = certmatrix.Matrix(str(tmp_path / "m"))
    leaf = m.cert("::1", m.root, ca=False, ku={"digital_signature"}, eku=[certmatrix.SERVER_AUTH])
    cafile = _write(tmp_path, "ca.pem", [m.root])
    accepted, message = _verify([leaf], "0:0:0:0:0:0:0:1", cafile)
    assert not accepted
    assert "not ::1" not in message, message
    assert message == (
        "certificate for ::1 is not valid for 0:0:0:0:0:0:0:1: its common name ::1 is the same "
        "address written otherwise, and a common name is compared as text (as stock Mercurial "
        "compares it)"), message
    assert _verify([leaf], "::1", cafile)[0]


def test_stock_cannot_connect_to_an_international_host(repo, pki, idn_anchors, smtp_server,
                                                       tmp_path, monkeypatch):
    # Both ASCII forms resolve to the server: IDNA 2008's A-label and the
    # IDNA 2003 mapping (fass.example). Stock still reaches neither.
    monkeypatch.setattr(hg, "HG", _private_hosts_hg(tmp_path, [pkimod.IDN_ASCII, "fass.example"]))
    server = smtp_server(idn_anchors.idn, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, host=pkimod.IDN_HOST, extension=False)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg, allow_traceback=True)
    assert code != 0, (out, err)
    server.assert_nothing_sent()
    # Not a certificate refusal: the connection itself never happens.
    assert "certificate" not in err.lower(), err


def _openssl_verify(cafile, cert, at):
    proc = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver", "-attime", str(at), "-CAfile", cafile,
         cert],
        capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def test_self_signed_certificates_no_server_presents_are_refused_by_both(tmp_path):
    m = certmatrix.Matrix(str(tmp_path / "m"))
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    cases = {
        "two-basic-constraints": [rawcert.extension(rawcert.OIDS["bc"], rawcert.BASIC_CA)],
        "two-ski": [rawcert.extension(rawcert.OIDS["ski"], rawcert.SKI)],
    }
    for name, extensions in cases.items():
        ss = m.cert("localhost", ca=True, san=["localhost"])
        edited = rawcert.edit(ss, ss.key, extensions=extensions)
        path = _write(tmp_path, name + ".pem", [edited])
        stock_ok, stock_says = _openssl_verify(path, path, now)
        assert not stock_ok, (name, stock_says)
        ours_ok, ours_say = _verify([edited], "localhost", path)
        assert not ours_ok, name
        assert "trusted as itself" in ours_say and "pin the server" in ours_say, ours_say
        # The same certificate without the second extension: both accept it.
        plain = _write(tmp_path, name + "-plain.pem", [ss])
        assert _openssl_verify(plain, plain, now)[0]
        assert _verify([ss], "localhost", plain)[0]
