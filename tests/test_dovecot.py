"""SCRAM-SHA-256, CRAM-MD5, XOAUTH2 and OAUTHBEARER against a real SASL
server: Dovecot's submission service (support/dovecot.py), relaying to an
aiosmtpd sink; the OAuth2 tokens are JWTs signed here and validated by
Dovecot's oauth2 passdb.

Dovecot prepends one ``Received:`` header to each message it relays; the
rest must be hg's message byte for byte (CRLF). Every run is checked for
the password in any spelling (support/hg.py)."""

import base64
import re
import shlex
import shutil
import sys
import tempfile

import pytest

from support import hg, servers
from support.asserts import assert_ok
from support.dovecot import Dovecot, jwt

JWT_KEY = b"securesmtp-test-hs256-key-0123456789"


@pytest.fixture
def dovecot(pki):
    sink = servers.SmtpServer(None, "plain").start()
    directory = tempfile.mkdtemp(prefix="securesmtp-dovecot-")
    server = Dovecot(
        directory, pki.rsa, sink.port, user=servers.USER, password=servers.PASSWORD, jwt_key=JWT_KEY
    )
    server.sink = sink
    try:
        yield server.start()
    finally:
        server.stop()
        sink.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _hgrc(dovecot, pki, password=servers.PASSWORD, auth=None):
    cfg = hg.smtp_hgrc(dovecot.port, cacerts=pki.ca.cert, username=servers.USER, password=password)
    if auth:
        cfg["smtp"]["auth"] = auth
    return cfg


def _relayed(dovecot, series):
    msgs = dovecot.sink.wait_for_messages(len(series), timeout=10)
    assert len(msgs) == len(series), dovecot.log()
    for got, expected in zip(msgs, series):
        assert got.mail_from == hg.SENDER_ADDR
        assert sorted(got.rcpt_tos) == sorted([hg.TO, hg.CC])
        head, sep, rest = got.content.partition(b"\r\n")
        assert head.startswith(b"Received: from "), got.content[:200]
        assert got.content.endswith(hg.to_wire(expected)), got.content[:400]


def _logins(dovecot):
    return re.findall(r"Login: user=<(\w+)>, method=([\w-]+)", dovecot.log())


def test_default_uses_scram_sha_256_with_dovecot(repo, pki, dovecot):
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--debug"], _hgrc(dovecot, pki))
    assert_ok((code, out, err))
    _relayed(dovecot, hg.mbox_messages(repo, hg.email_args() + ["--debug"]))
    assert _logins(dovecot) == [("alice", "SCRAM-SHA-256")], dovecot.log()
    text = out + err
    assert "C: AUTH SCRAM-SHA-256 <redacted>" in text, text
    # Dovecot sends the server-first and then the server-final as 334
    # challenges (RFC 4954); the client answered both, redacted.
    challenges = re.findall(r"^S: 334 (\S+)$", text, re.M)
    assert len(challenges) == 2, text
    assert base64.b64decode(challenges[1]).startswith(b"v="), challenges
    assert "(authenticated with SCRAM-SHA-256)" in text


def test_cram_md5_when_listed_with_dovecot(repo, series, pki, dovecot):
    code, out, err = hg.run_hg(repo, hg.email_args(), _hgrc(dovecot, pki, auth="cram-md5"))
    assert_ok((code, out, err))
    _relayed(dovecot, series)
    assert _logins(dovecot) == [("alice", "CRAM-MD5")], dovecot.log()


def test_plain_when_listed_first_with_dovecot(repo, series, pki, dovecot):
    assert_ok(hg.run_hg(repo, hg.email_args(), _hgrc(dovecot, pki, auth="plain scram-sha-256")))
    _relayed(dovecot, series)
    assert _logins(dovecot) == [("alice", "PLAIN")], dovecot.log()


@pytest.mark.parametrize("auth", ["scram-sha-256", "cram-md5"])
def test_wrong_password_is_refused_by_dovecot(repo, pki, dovecot, auth):
    code, out, err = hg.run_hg(repo, hg.email_args(), _hgrc(dovecot, pki, password="not-the-Sw0rdfish", auth=auth))
    assert code == 255, (code, out, err)
    assert "authentication as alice failed: the server refused AUTH %s: 535" % auth.upper() in err, err
    assert _logins(dovecot) == []
    assert dovecot.sink.messages == []


def _token_hgrc(dovecot, pki, token, auth):
    cfg = _hgrc(dovecot, pki, password=None, auth=auth)
    argv = (sys.executable, "-c", "import sys; print(sys.argv[1])", token)
    cfg["smtp"]["password-command"] = " ".join(shlex.quote(a) for a in argv)
    return cfg


def _token_forms(token):
    return servers.secret_forms() + servers.secret_forms(password=token) + [token]


@pytest.mark.parametrize("size", ["short", "long"])
@pytest.mark.parametrize("auth", ["xoauth2", "oauthbearer"])
def test_oauth2_token_accepted_by_dovecot(repo, series, pki, dovecot, auth, size):
    # Microsoft's and Google's access tokens run to a few kilobytes: the
    # AUTH line then carries several KB of base64 (RFC 4954 allows 12288).
    claims = {"scp": "SMTP.Send " * 150} if size == "long" else None
    token = jwt(JWT_KEY, servers.USER, claims=claims)
    assert len(token) > 2000 or size == "short"
    code, out, err = hg.run_hg(
        repo, hg.email_args(), _token_hgrc(dovecot, pki, token, auth), secrets=_token_forms(token)
    )
    assert_ok((code, out, err))
    _relayed(dovecot, series)
    assert _logins(dovecot) == [("alice", auth.upper())], dovecot.log()


@pytest.mark.parametrize("auth", ["xoauth2", "oauthbearer"])
def test_oauth2_token_refused_by_dovecot_shows_its_reason(repo, pki, dovecot, auth):
    token = jwt(b"not-the-key-" * 3, servers.USER)
    code, out, err = hg.run_hg(
        repo, hg.email_args() + ["--debug"], _token_hgrc(dovecot, pki, token, auth),
        secrets=_token_forms(token),
    )
    assert code == 255, (code, out, err)
    # Dovecot's error challenge, decoded (Google's form for XOAUTH2, RFC
    # 7628's for OAUTHBEARER), then its 535.
    reason = {"xoauth2": "status=401, schemes=bearer, scope=mail", "oauthbearer": "status=invalid_token"}
    assert "(server's reason: %s)" % reason[auth] in err, err
    assert "535" in err, err
    assert "Incorrect JWT signature" in dovecot.log()
    assert _logins(dovecot) == []
    assert dovecot.sink.messages == []
