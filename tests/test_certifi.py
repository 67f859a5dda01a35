"""Stock Mercurial's default trust when hg's Python can import certifi:
certifi's CA file alone, not the system's store (``sslutil._defaultcacerts``).
The extension takes the same file, so a CA the system trusts and certifi
does not is refused by both, and one certifi holds is trusted by both.

hg runs with a ``certifi`` module of the test's own on PYTHONPATH (its
``where()`` names a bundle made here) and with the system's store set
through SSL_CERT_FILE, which OpenSSL (stock) and the extension both read.
"""

import os

import pytest
from support import hg


def _certifi(tmp_path, bundle):
    pkg = tmp_path / "certifi-here"
    pkg.mkdir()
    (pkg / "certifi.py").write_text("def where():\n    return %r\n" % str(bundle))
    return str(pkg)


def _bundle(tmp_path, name, *pems):
    path = tmp_path / name
    data = b""
    for pem in pems:
        with open(pem, "rb") as fp:
            data += fp.read()
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("extension", [True, False], ids=["securesmtp", "stock"])
def test_a_ca_only_the_system_trusts_is_refused_when_certifi_is_there(
    tmp_path, pki, smtp_server, repo, extension
):
    server = smtp_server(pki.rsa, "starttls")
    system = _bundle(tmp_path, "system.pem", pki.ca.cert)
    other = _bundle(tmp_path, "certifi.pem", pki.rogue_ca.cert)
    env = {"PYTHONPATH": _certifi(tmp_path, other), "SSL_CERT_FILE": str(system), "SSL_CERT_DIR": str(tmp_path)}
    code, out, err = hg.run_hg(repo, hg.email_args(), hg.smtp_hgrc(server.port, extension=extension), env=env)
    assert code != 0, err
    assert "certificate" in err, err
    server.assert_nothing_sent()


def test_a_ca_certifi_holds_is_trusted_when_the_system_does_not(tmp_path, pki, smtp_server, repo):
    server = smtp_server(pki.rsa, "starttls")
    system = _bundle(tmp_path, "system.pem", pki.rogue_ca.cert)
    ours = _bundle(tmp_path, "certifi.pem", pki.ca.cert)
    env = {"PYTHONPATH": _certifi(tmp_path, ours), "SSL_CERT_FILE": str(system), "SSL_CERT_DIR": str(tmp_path)}
    code, out, err = hg.run_hg(repo, hg.email_args(), hg.smtp_hgrc(server.port), env=env)
    assert code == 0, err
    assert len(server.wait_for_messages(3)) == 3


def test_a_pin_needs_no_certifi_file(tmp_path, pki, smtp_server, repo):
    """With a pin stock loads no CA file at all: a certifi naming a file
    that is not there changes nothing."""
    server = smtp_server(pki.rsa, "starttls")
    env = {"PYTHONPATH": _certifi(tmp_path, tmp_path / "missing.pem")}
    cfg = hg.smtp_hgrc(server.port, hostsecurity={"localhost:fingerprints": pki.rsa.sha256})
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg, env=env)
    assert code == 0, err
    assert os.path.exists(str(tmp_path / "certifi-here" / "certifi.py"))
