"""AUTH over the verified connection; the password never shows.

Every run_hg call already fails the test if the password or its base64
forms (PLAIN payload, LOGIN payload) appear in stdout or stderr."""

import re

from support import hg, servers
from support.asserts import assert_ok, assert_refused, assert_series_delivered


def _server(smtp_server, pki, mode):
    return smtp_server(pki.rsa, mode, user=servers.USER, password=servers.PASSWORD)


def test_right_password(repo, series, pki, smtp_server, mode):
    server = _server(smtp_server, pki, mode)
    cfg = hg.smtp_hgrc(
        server.port, tls=mode, cacerts=pki.ca.cert,
        username=servers.USER, password=servers.PASSWORD,
    )
    code, out, err = hg.run_hg(repo, hg.email_args() + ["-v"], cfg)
    assert_ok((code, out, err))
    assert "(authenticating to mail server as alice)" in out, out
    assert_series_delivered(server, series, mode)
    verbs = server.verbs
    assert verbs.count("AUTH") == 1, verbs
    assert verbs.index("AUTH") < verbs.index("MAIL"), verbs
    if mode == "starttls":
        assert verbs.index("STARTTLS") < verbs.index("AUTH"), verbs


def test_wrong_password(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki, mode)
    cfg = hg.smtp_hgrc(
        server.port, tls=mode, cacerts=pki.ca.cert,
        username=servers.USER, password="not-the-Sw0rdfish",
    )
    result = hg.run_hg(repo, hg.email_args(), cfg)
    code, out, err = result
    assert code == 255, (code, out, err)
    assert err.startswith("abort: "), err
    assert "535" in err, err
    assert "Authentication credentials invalid" in err, err
    assert server.saw("AUTH")
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))


def test_wrong_password_debug(repo, pki, smtp_server):
    # A failing --debug run: the transcript must not carry either password.
    server = _server(smtp_server, pki, "starttls")
    cfg = hg.smtp_hgrc(
        server.port, cacerts=pki.ca.cert, username=servers.USER, password="not-the-Sw0rdfish",
    )
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--debug"], cfg)
    assert code == 255, (code, out, err)
    assert "535" in err, err
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))


def test_username_without_password_noninteractive(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert, username=servers.USER)
    result = hg.run_hg(repo, hg.email_args(), cfg)
    code, out, err = result
    assert code != 0, (code, out, err)
    assert err.startswith("abort: "), err
    assert "smtp.password" in err, err
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))


def test_debug_transcript_redacts_auth(repo, series, pki, smtp_server, mode):
    server = _server(smtp_server, pki, mode)
    cfg = hg.smtp_hgrc(
        server.port, tls=mode, cacerts=pki.ca.cert,
        username=servers.USER, password=servers.PASSWORD,
    )
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--debug"], cfg)
    assert_ok((code, out, err))
    # --debug changes the patches themselves (full hashes in "diff -r"
    # lines): the reference is made with the same arguments.
    expected = hg.mbox_messages(repo, hg.email_args() + ["--debug"])
    assert expected != series
    assert_series_delivered(server, expected, mode)
    lines = (out + err).splitlines()
    auth = [l for l in lines if l.upper().startswith("C: AUTH")]
    assert auth, "no AUTH in the transcript:\n" + out + err
    assert all("<redacted>" in l for l in auth), auth
    # Whatever followed AUTH from the client (LOGIN continuation lines) is
    # redacted too.
    client = [l for l in lines if l.startswith("C: ")]
    assert any(l.startswith("C: ") and re.search(r"\b\d+ bytes\b", l) for l in client)
    # What the server actually received was a real AUTH with a payload.
    received = [c for c in server.commands if c.upper().startswith("AUTH")]
    assert received and received[0].split()[1].upper() in ("PLAIN", "LOGIN"), received


def test_password_prompted_interactively(repo, series, pki, smtp_server):
    # ui.getpass path: interactive, the password read from stdin (nontty).
    server = _server(smtp_server, pki, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=servers.USER)
    cfg["ui"] = {"interactive": "true", "nontty": "true"}
    code, out, err = hg.run_hg(
        repo, hg.email_args(), cfg, input=servers.PASSWORD + "\n",
    )
    assert_ok((code, out, err))
    assert "password:" in out + err, (out, err)
    assert_series_delivered(server, series, "starttls")
    assert server.saw("AUTH")
