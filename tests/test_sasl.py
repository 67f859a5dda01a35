"""SASL mechanisms, smtp.auth and smtp.password-command, end to end.

The real ``hg email`` against aiosmtpd with server-side XOAUTH2,
OAUTHBEARER, SCRAM-SHA-256 and CRAM-MD5 (support/sasl.py). Every run is
checked for the password and the token in any spelling."""

import base64
import shlex
import sys

import pytest

from support import hg, sasl, servers
from support.asserts import assert_ok, assert_series_delivered

SECRETS = servers.secret_forms() + sasl.token_forms()


@pytest.fixture
def sasl_server(pki):
    started = []

    def make(mode="starttls", **kwargs):
        server = sasl.SaslServer(pki.rsa, mode, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _command(*argv):
    return " ".join(shlex.quote(a) for a in argv)


def printer(secret):
    """An smtp.password-command that prints ``secret`` and a newline."""
    return _command(sys.executable, "-c", "import sys; print(sys.argv[1])", secret)


def _hgrc(server, pki, auth=None, command=None, password=None, mode="starttls", **smtp):
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert, username=servers.USER, password=password)
    if auth is not None:
        cfg["smtp"]["auth"] = auth
    if command is not None:
        cfg["smtp"]["password-command"] = command
    cfg["smtp"].update(smtp)
    return cfg


def _run(repo, cfg, extra=(), secrets=(), **kw):
    return hg.run_hg(repo, hg.email_args() + list(extra), cfg, secrets=SECRETS + list(secrets), **kw)


def _debug_series(repo):
    # --debug changes the patches themselves (full hashes in "diff -r").
    return hg.mbox_messages(repo, hg.email_args() + ["--debug"])


def _no_mail(server):
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))


def _auth_lines(server):
    return [c for c in server.commands if c.upper().startswith("AUTH")]


# -- OAuth2 -----------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_oauth2_token_from_password_command(repo, series, pki, sasl_server, mechanism):
    server = sasl_server(offer=("PLAIN", "XOAUTH2", "OAUTHBEARER"))
    cfg = _hgrc(server, pki, auth=mechanism, command=printer(sasl.TOKEN))
    code, out, err = _run(repo, cfg, ["-v"])
    assert_ok((code, out, err))
    assert_series_delivered(server, series, "starttls")
    assert _auth_lines(server)[0].split()[1] == mechanism.upper()
    [entry] = server.auth_log
    assert entry["ok"] and entry["user"] == servers.USER, entry
    if mechanism == "oauthbearer":
        # RFC 7628: host and port of the server in the initial response.
        assert entry["fields"]["host"] == "localhost", entry
        assert entry["fields"]["port"] == str(server.port), entry
    assert "(authenticated with %s)" % mechanism.upper() in out, out


@pytest.mark.parametrize("mechanism,answer", [("xoauth2", b""), ("oauthbearer", b"\x01")])
def test_refused_token_shows_the_decoded_error_never_the_token(repo, pki, sasl_server, mechanism, answer):
    server = sasl_server(offer=("XOAUTH2", "OAUTHBEARER"))
    cfg = _hgrc(server, pki, auth=mechanism, command=printer("ya29.expired-token"))
    code, out, err = _run(repo, cfg, ["--debug"], secrets=["ya29.expired-token"])
    assert code == 255, (code, out, err)
    assert err.startswith("abort: authentication as alice failed"), err
    assert "535" in err, err
    # The JSON the server sent in its 334, decoded.
    assert "status=401" in err and "scope=https://mail.google.com/" in err, err
    assert "access token was refused" in err, err
    [entry] = server.auth_log
    assert not entry["token_ok"]
    # XOAUTH2 answers the error challenge with an empty line, OAUTHBEARER
    # with %x01 (RFC 7628 3.2.3).
    assert entry["error_answer"] == answer, entry
    _no_mail(server)
    assert "C: AUTH %s <redacted>" % mechanism.upper() in out + err


def test_oauth_only_server_offering_plain_aborts_naming_what_it_offers(repo, pki, sasl_server):
    server = sasl_server(offer=("PLAIN",))
    cfg = _hgrc(server, pki, auth="xoauth2", command=printer(sasl.TOKEN))
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "none of the mechanisms in smtp.auth (XOAUTH2)" in err, err
    assert "it offers: PLAIN" in err, err
    assert "smtp.auth" in err.splitlines()[-1], err
    server.assert_nothing_sent()


def test_oauth_without_a_token_source_aborts_before_connecting(repo, pki, sasl_server):
    server = sasl_server()
    cfg = _hgrc(server, pki, auth="xoauth2")
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "needs an OAuth2 access token" in err, err
    assert "smtp.password-command" in err, err
    assert server.connections == 0


def test_unknown_mechanism_is_a_config_error(repo, pki, sasl_server):
    server = sasl_server()
    cfg = _hgrc(server, pki, auth="plain, digest-md5", password=servers.PASSWORD)
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "smtp.auth has unknown mechanism 'digest-md5'" in err, err
    assert "xoauth2" in err and "cram-md5" in err, err
    assert server.connections == 0


# -- mechanism choice -------------------------------------------------------


def test_default_prefers_scram_and_verifies_the_server(repo, series, pki, sasl_server):
    server = sasl_server(offer=("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5", "XOAUTH2"))
    cfg = _hgrc(server, pki, password=servers.PASSWORD)
    code, out, err = _run(repo, cfg, ["--debug"])
    assert_ok((code, out, err))
    assert_series_delivered(server, _debug_series(repo), "starttls")
    [entry] = server.auth_log
    assert entry["mechanism"] == "SCRAM-SHA-256" and entry["ok"], entry
    # RFC 4954: the server-final came as a 334, answered with an empty line.
    assert entry["final_answer"] == b"", entry
    # The password never crossed the wire, in no form.
    for secret in servers.secret_forms():
        assert secret.encode() not in server.raw
    assert "C: AUTH SCRAM-SHA-256 <redacted>" in out + err


def test_default_never_picks_cram_md5_or_oauth(repo, series, pki, sasl_server):
    server = sasl_server(offer=("CRAM-MD5", "XOAUTH2", "PLAIN"))
    cfg = _hgrc(server, pki, password=servers.PASSWORD)
    assert_ok(_run(repo, cfg))
    assert_series_delivered(server, series, "starttls")
    assert [e["mechanism"] for e in server.auth_log] == ["PLAIN"]


def test_default_with_only_cram_md5_offered_aborts(repo, pki, sasl_server):
    server = sasl_server(offer=("CRAM-MD5",))
    cfg = _hgrc(server, pki, password=servers.PASSWORD)
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "offered: CRAM-MD5" in err, err
    server.assert_nothing_sent()


def test_cram_md5_when_listed(repo, series, pki, sasl_server):
    server = sasl_server(offer=("CRAM-MD5", "PLAIN"))
    cfg = _hgrc(server, pki, auth="CRAM-MD5 plain", password=servers.PASSWORD)
    assert_ok(_run(repo, cfg))
    assert_series_delivered(server, series, "starttls")
    assert [(e["mechanism"], e["ok"]) for e in server.auth_log] == [("CRAM-MD5", True)]
    for secret in servers.secret_forms():
        assert secret.encode() not in server.raw


def test_listed_order_is_followed(repo, series, pki, sasl_server):
    server = sasl_server(offer=("PLAIN", "LOGIN", "SCRAM-SHA-256"))
    cfg = _hgrc(server, pki, auth="login,scram-sha-256", password=servers.PASSWORD)
    assert_ok(_run(repo, cfg))
    assert_series_delivered(server, series, "starttls")
    assert [e["mechanism"] for e in server.auth_log] == ["LOGIN"]


# -- SCRAM server signature ---------------------------------------------------


def test_scram_server_final_inside_the_235_is_accepted(repo, series, pki, sasl_server):
    server = sasl_server(offer=("SCRAM-SHA-256",), scram_final="235")
    cfg = _hgrc(server, pki, password=servers.PASSWORD)
    assert_ok(_run(repo, cfg))
    assert_series_delivered(server, series, "starttls")


@pytest.mark.parametrize("where", ["challenge", "235"])
def test_scram_wrong_server_signature_aborts_before_mail(repo, pki, sasl_server, where):
    server = sasl_server(offer=("SCRAM-SHA-256", "PLAIN"), scram_final=where, forge_signature=True)
    cfg = _hgrc(server, pki, password=servers.PASSWORD)
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "SCRAM signature is wrong" in err, err
    assert "nothing was sent" in err, err
    _no_mail(server)
    if where == "challenge":
        # The exchange was cancelled, not completed.
        assert server.auth_log[0]["final_answer"] is None, server.auth_log


def test_scram_without_server_signature_aborts_before_mail(repo, pki, sasl_server):
    server = sasl_server(offer=("SCRAM-SHA-256",), scram_final="none")
    cfg = _hgrc(server, pki, password=servers.PASSWORD)
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "without proving it knows your password" in err, err
    _no_mail(server)


def test_scram_wrong_password_is_a_refusal(repo, pki, sasl_server):
    server = sasl_server(offer=("SCRAM-SHA-256",))
    cfg = _hgrc(server, pki, password="not-the-Sw0rdfish")
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "refused AUTH SCRAM-SHA-256: 535" in err, err
    _no_mail(server)


# Provider refusals: tests/test_login_hints.py.


# -- smtp.password-command ------------------------------------------------------


def test_password_command_supplies_the_password(repo, series, pki, sasl_server):
    server = sasl_server(offer=("PLAIN", "LOGIN"))
    cfg = _hgrc(server, pki, command=printer(servers.PASSWORD))
    code, out, err = _run(repo, cfg, ["--debug"])
    assert_ok((code, out, err))
    assert_series_delivered(server, _debug_series(repo), "starttls")
    assert server.auth_log[0]["ok"], server.auth_log


def test_password_beats_password_command(repo, series, pki, sasl_server, tmp_path):
    server = sasl_server(offer=("PLAIN",))
    marker = tmp_path / "ran"
    cmd = _command(sys.executable, "-c", "open(%r, 'w').write('x')" % str(marker))
    cfg = _hgrc(server, pki, command=cmd, password=servers.PASSWORD)
    assert_ok(_run(repo, cfg))
    assert not marker.exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        ([sys.executable, "-c", "import sys; sys.stderr.write('vault locked\\n'); sys.exit(3)"], "exited with status 3"),
        ([sys.executable, "-c", "print()"], "printed nothing"),
        ([sys.executable, "-c", "pass"], "printed nothing"),
        (["/nonexistent/securesmtp-secret-helper"], "command not found"),
    ],
    ids=["exit-3", "newline-only", "empty", "not-found"],
)
def test_password_command_failure_aborts_before_connecting(repo, pki, sasl_server, argv, message):
    server = sasl_server()
    cfg = _hgrc(server, pki, command=_command(*argv))
    code, out, err = _run(repo, cfg, ["--debug"])
    assert code == 255, (code, out, err)
    assert "\nabort: smtp.password-command" in "\n" + err, err
    assert message in err, err
    if "not found" in message:
        hint = "(install it or give its full path in smtp.password-command)"
    else:
        hint = ("(run the command yourself to see what is wrong; it must print the password or "
                "access token on one line (smtp.password-command))")
    assert err.splitlines()[-1] == hint, err
    assert server.connections == 0
    if "exit" in message:
        assert "vault locked" in err  # the helper's own stderr is shown


def test_password_command_timeout_aborts(repo, pki, sasl_server):
    server = sasl_server()
    cmd = _command(sys.executable, "-c", "import time; time.sleep(30)")
    cfg = _hgrc(server, pki, command=cmd, timeout="1")
    code, out, err = _run(repo, cfg, timeout=20)
    assert code == 255, (code, out, err)
    assert "did not finish within 1 seconds" in err, err
    assert server.connections == 0


def test_password_command_output_never_shows_even_when_refused(repo, pki, sasl_server):
    server = sasl_server(offer=("PLAIN", "LOGIN"))
    wrong = "Wr0ng-Helper-Output"
    cfg = _hgrc(server, pki, command=printer(wrong))
    code, out, err = _run(repo, cfg, ["--debug"], secrets=servers.secret_forms(password=wrong))
    assert code == 255, (code, out, err)
    assert "535" in err, err
    _no_mail(server)
    # What the server got was the command's output, trailing newline removed.
    plain = [c for c in _auth_lines(server) if c.upper().startswith("AUTH PLAIN")][0]
    assert base64.b64decode(plain.split()[2]) == b"\0alice\0" + wrong.encode()


@pytest.mark.parametrize("setting", ["auth", "password-command"])
def test_auth_settings_without_username_are_a_config_error(repo, pki, sasl_server, setting):
    server = sasl_server()
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)
    cfg["smtp"][setting] = "plain" if setting == "auth" else printer(servers.PASSWORD)
    code, out, err = _run(repo, cfg)
    assert code == 255, (code, out, err)
    assert "smtp.%s is set but smtp.username is not" % setting in err, err
    assert server.connections == 0


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_long_token_goes_after_an_empty_challenge(repo, series, pki, sasl_server, mechanism):
    # RFC 4954 4: an AUTH line over 512 octets is not allowed; the initial
    # response then answers the server's empty 334 (aiosmtpd enforces 512).
    token = "ya29." + "x" * 2500
    server = sasl_server(offer=("XOAUTH2", "OAUTHBEARER"), token=token)
    cfg = _hgrc(server, pki, auth=mechanism, command=printer(token))
    code, out, err = _run(repo, cfg, ["--debug"], secrets=sasl.token_forms(token=token) + [token])
    assert_ok((code, out, err))
    assert_series_delivered(server, _debug_series(repo), "starttls")
    auth = _auth_lines(server)
    assert auth[0] == "AUTH " + mechanism.upper(), auth
    i = server.commands.index(auth[0])
    assert len(server.commands[i + 1]) > 2500, server.commands[i + 1][:40]
    assert all(len(c) <= 510 for c in server.commands if c.split(" ")[0].isupper() and c != server.commands[i + 1])
    assert server.auth_log[0]["ok"], server.auth_log


def test_short_initial_response_stays_on_the_auth_line(repo, series, pki, sasl_server):
    server = sasl_server(offer=("XOAUTH2",))
    cfg = _hgrc(server, pki, auth="xoauth2", command=printer(sasl.TOKEN))
    assert_ok(_run(repo, cfg))
    auth = _auth_lines(server)
    assert auth[0].startswith("AUTH XOAUTH2 ") and len(auth) == 1, auth
