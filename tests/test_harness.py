"""Checks of the test harness itself, independent of securesmtp: the PKI,
the recording server, the mbox reference and the secret scanner. If these
fail, the other tests' verdicts mean nothing."""

import smtplib
import ssl
import subprocess

import pytest
from cryptography import x509

from support import hg, servers
from support.asserts import assert_ok


def test_fingerprints_match_openssl(pki):
    for cert in (pki.rsa, pki.ecdsa, pki.selfsigned_bare):
        out = subprocess.run(
            ["openssl", "x509", "-in", cert.cert, "-noout", "-fingerprint", "-sha256"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout
        assert out.strip().split("=", 1)[1].lower() == cert.sha256[len("sha256:"):]
    assert len(pki.rsa.sha1_legacy.split(":")) == 20
    assert pki.rsa.sha256.startswith("sha256:") and pki.rsa.sha256 == pki.rsa.sha256.lower()


def test_certificate_shapes(pki):
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    assert pki.expired.certificate.not_valid_after_utc < now
    assert pki.selfsigned_bare.certificate.extensions.__len__() == 0
    bc = pki.selfsigned.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.value.ca is True
    assert pki.selfsigned.certificate.issuer == pki.selfsigned.certificate.subject
    san = pki.wrong_host.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["mail.example.org"]
    with open(pki.via_intermediate.chain, "rb") as fp:
        assert fp.read().count(b"BEGIN CERTIFICATE") == 2
    with open(pki.via_intermediate.leaf_only, "rb") as fp:
        assert fp.read().count(b"BEGIN CERTIFICATE") == 1


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_server_records_a_python_client(pki, smtp_server, mode):
    server = smtp_server(pki.ecdsa, mode, user=servers.USER, password=servers.PASSWORD)
    ctx = ssl.create_default_context(cafile=pki.ca.cert)
    if mode == "smtps":
        client = smtplib.SMTP_SSL("localhost", server.port, context=ctx, timeout=10)
    else:
        client = smtplib.SMTP("localhost", server.port, timeout=10)
        client.starttls(context=ctx)
    client.login(servers.USER, servers.PASSWORD)
    client.sendmail("x@example.test", ["y@example.test", "z@example.test"],
                    b"Subject: t\r\n\r\n.dot\r\n.\r\nend\r\n")
    client.quit()
    (msg,) = server.wait_for_messages(1, 5)
    assert msg.content == b"Subject: t\r\n\r\n.dot\r\n.\r\nend\r\n"
    assert msg.rcpt_tos == ["y@example.test", "z@example.test"]
    assert server.wait_idle(5)
    assert server.saw("AUTH") and server.saw("QUIT") and server.saw("mail")
    with pytest.raises(AssertionError):
        server.assert_nothing_sent()


def test_server_records_refused_commands(pki, smtp_server):
    # MAIL before STARTTLS is answered 530 without being dispatched; it must
    # still be recorded.
    server = smtp_server(pki.rsa, "starttls")
    client = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
    client.ehlo()
    code, _ = client.mail("x@example.test")
    assert code == 530
    client.close()
    assert server.wait_idle(5)
    assert server.saw("MAIL")
    with pytest.raises(AssertionError):
        server.assert_nothing_sent()


def test_mbox_is_deterministic(repo, series):
    again = hg.mbox_messages(repo, hg.email_args())
    assert again == series
    assert b"Date: Thu, 01 Jan 2026 00:00:00 +0000\n" in series[0]
    assert b"Message-Id: <" in series[0] and hg.HOSTNAME.encode() in series[0]
    assert all(len(m) > 1000 for m in series)
    assert b"\n.\n" in series[2]  # a lone dot line, sent as 7bit text


def test_stock_hg_small_message_matches_mbox(tmp_path, pki, smtp_server):
    # Stock hg (no securesmtp) can deliver a message under 1000 bytes to
    # aiosmtpd; it sends hg's bytes with bare LF plus smtplib's final CRLF.
    # This proves the reference (mbox split) equals what hg hands sendmail.
    repo = hg.make_repo(tmp_path, n_patches=1, long_line=False, name="tiny")
    # A tiny patch: replace patch 1's content by a one-line ASCII change.
    with open(tmp_path / "tiny" / "tiny.txt", "w") as fp:
        fp.write("x\n")
    assert_ok(hg.run_hg(repo, ["commit", "-A", "-m", "t", "-d", "2025-06-01 12:00 +0000"]))
    args = hg.email_args(cc=None, revs="2", from_="a@x.test")
    (expected,) = hg.mbox_messages(repo, args)
    assert len(expected) < 900, len(expected)
    server = smtp_server(pki.rsa, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, extension=False)
    assert_ok(hg.run_hg(repo, args, cfg), "stock hg email")
    (msg,) = server.wait_for_messages(1, 10)
    assert msg.content == expected + b"\r\n"
    assert msg.mail_from == "a@x.test"


def test_secret_scanner():
    for secret in servers.secret_forms():
        with pytest.raises(hg.SecretLeak):
            hg.check_output("ok " + secret, "")
        with pytest.raises(hg.SecretLeak):
            hg.check_output("", "x" + secret + "y")
    assert "AGFsaWNlAFN3MHJkZmlzaC1TZWNyZXQh" in servers.secret_forms()
    with pytest.raises(hg.TracebackInOutput):
        hg.check_output("", "Traceback (most recent call last):\n")
    hg.check_output("fine", "also fine")
