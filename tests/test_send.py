"""CA-verified sends: what hg would have written to an mbox arrives, byte for
byte (with CRLF line endings), over one verified connection ending in QUIT."""

import re

import pytest

from support import hg
from support.asserts import assert_ok, assert_series_delivered


def test_series_via_web_cacerts(repo, series, pki, smtp_server, mode, keytype):
    server = smtp_server(pki.leaf(keytype), mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert)
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok(result)
    assert "warning" not in result[2], result[2]
    assert_series_delivered(server, series, mode)


def test_series_via_verifycertsfile(repo, series, pki, smtp_server, mode, keytype):
    server = smtp_server(pki.leaf(keytype), mode)
    cfg = hg.smtp_hgrc(
        server.port, tls=mode,
        hostsecurity={"localhost:verifycertsfile": pki.ca.cert},
    )
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok(result)
    assert "warning" not in result[2], result[2]
    assert_series_delivered(server, series, mode)


def test_chain_with_intermediate(repo, series, pki, smtp_server, mode):
    # The server presents leaf + intermediate; the client trusts the root.
    server = smtp_server(pki.via_intermediate, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert)
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok(result)
    assert_series_delivered(server, series, mode)


def test_ip_address_host(repo, series, pki, smtp_server, mode):
    # smtp.host = 127.0.0.1 matches the certificate's IP SAN (RFC 6125).
    server = smtp_server(pki.rsa, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert, host="127.0.0.1")
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok(result)
    assert_series_delivered(server, series, mode)


def test_verbose_lines(repo, series, pki, smtp_server, mode):
    server = smtp_server(pki.ecdsa, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert)
    code, out, err = hg.run_hg(repo, hg.email_args() + ["-v"], cfg)
    assert_ok((code, out, err))
    assert "(using %s)" % mode in out, out
    assert "sending mail: smtp host localhost, port %d" % server.port in out, out
    assert "(verifying remote certificate)" in out, out
    assert "(authenticating to mail server" not in out, out
    assert_series_delivered(server, series, mode)


def test_single_patch(repo, pki, smtp_server):
    # One message (the one with the 1500-byte line), to one recipient.
    server = smtp_server(pki.rsa, "starttls")
    args = hg.email_args(cc=None, revs="2")
    expected = hg.mbox_messages(repo, args)
    assert len(expected) == 1
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)
    assert_ok(hg.run_hg(repo, args, cfg))
    assert_series_delivered(server, expected, "starttls", cc=None)


def test_debug_transcript(repo, series, pki, smtp_server, mode):
    server = smtp_server(pki.rsa, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert)
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--debug"], cfg)
    assert_ok((code, out, err))
    # --debug changes the patches themselves (full hashes in "diff -r"
    # lines): the reference is made with the same arguments.
    expected = hg.mbox_messages(repo, hg.email_args() + ["--debug"])
    assert expected != series
    assert_series_delivered(server, expected, mode)
    text = out + err
    lines = text.splitlines()
    client = [l for l in lines if l.startswith("C: ")]
    replies = [l for l in lines if l.startswith("S: ")]
    assert any(l.upper().startswith("C: EHLO") for l in client), text
    assert any(l.startswith("S: 250") for l in replies), text
    assert any(l.upper().startswith("C: MAIL FROM:") for l in client), text
    if mode == "starttls":
        assert any(l.upper().startswith("C: STARTTLS") for l in client), text
    # The bodies appear as a byte count, never as text.
    assert any(re.search(r"\b\d+ bytes\b", l) for l in client), "no byte count in:\n" + text
    body_fragments = [
        "X-Mercurial-Node", "diff -r", "Subject:", "Content-Transfer-Encoding",
        hg.LONG_LINE[:60], "lone dot", "IyBIRyBjaGFuZ2VzZXQgcGF0Y2gK",
    ]
    for l in client:
        for fragment in body_fragments:
            assert fragment not in l, "message text in the transcript: %r" % l
