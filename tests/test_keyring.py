"""mercurial_keyring (the real package from PyPI) beside securesmtp.

mercurial_keyring 1.4.4 replaces ``mail._smtp`` when it is imported, with
smtplib code that cannot run on Python 3; securesmtp keeps the connection
and reuses only its password store, under its own key (service
``Mercurial``, ``user@@host:port``). The keyring backend is keyrings.alt's
plain file, in a private XDG_DATA_HOME, chosen with PYTHON_KEYRING_BACKEND.
Every run is checked for the password in any spelling (support/hg.py)."""

import shlex
import subprocess
import sys
import textwrap

import pytest

from support import hg, servers
from support.asserts import assert_ok, assert_series_delivered

ORDERS = {
    "keyring-first": ["mercurial_keyring", "securesmtp"],
    "securesmtp-first": ["securesmtp", "mercurial_keyring"],
}


@pytest.fixture
def keyring_env(tmp_path):
    return {
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


def _keyring(env, action, key, value=None):
    """Read or write the keyring the way any keyring client would."""
    script = textwrap.dedent(
        """
        import sys, keyring
        if sys.argv[1] == "set":
            keyring.set_password("Mercurial", sys.argv[2], sys.argv[3])
        else:
            value = keyring.get_password("Mercurial", sys.argv[2])
            sys.stdout.write("<none>" if value is None else value)
        """
    )
    argv = [sys.executable, "-c", script, action, key] + ([value] if value else [])
    proc = subprocess.run(argv, env=hg._env(env), capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout


def _key(server):
    return "%s@@localhost:%d" % (servers.USER, server.port)


def _hgrc(server, pki, order="keyring-first"):
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=servers.USER, extension=False)
    cfg["extensions"] = {name: "" for name in ORDERS[order]}
    return dict([("extensions", cfg.pop("extensions"))] + list(cfg.items()))


def _server(smtp_server, pki):
    return smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)


def _interactive(cfg):
    cfg["ui"] = {"interactive": "true", "nontty": "true"}
    return cfg


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_password_read_from_the_keyring_noninteractively(repo, series, pki, smtp_server, keyring_env, order):
    server = _server(smtp_server, pki)
    _keyring(keyring_env, "set", _key(server), servers.PASSWORD)
    code, out, err = hg.run_hg(repo, hg.email_args() + ["-v"], _hgrc(server, pki, order), env=keyring_env)
    assert_ok((code, out, err))
    assert_series_delivered(server, series, "starttls")
    assert server.verbs.count("AUTH") == 1, server.verbs
    assert "password:" not in out + err


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_typed_password_is_saved_after_the_server_accepts_it(repo, series, pki, smtp_server, keyring_env, order):
    server = _server(smtp_server, pki)
    assert _keyring(keyring_env, "get", _key(server)) == "<none>"
    cfg = _interactive(_hgrc(server, pki, order))
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg, env=keyring_env, input=servers.PASSWORD + "\n")
    assert_ok((code, out, err))
    assert "password:" in out + err
    assert_series_delivered(server, series, "starttls")
    # Saved under mercurial_keyring's own key, where it looks for it.
    assert _keyring(keyring_env, "get", _key(server)) == servers.PASSWORD
    # The next run needs no prompt.
    server2 = _server(smtp_server, pki)
    _keyring(keyring_env, "set", _key(server2), _keyring(keyring_env, "get", _key(server)))
    assert_ok(hg.run_hg(repo, hg.email_args(), _hgrc(server2, pki, order), env=keyring_env))
    assert len(server2.wait_for_messages(3)) == 3


def test_no_stored_password_noninteractive_aborts(repo, pki, smtp_server, keyring_env):
    server = _server(smtp_server, pki)
    code, out, err = hg.run_hg(repo, hg.email_args(), _hgrc(server, pki), env=keyring_env)
    assert code == 255, (code, out, err)
    assert "no password for alice in the keyring" in err, err
    assert "interactively" in err, err
    server.assert_nothing_sent()


def test_wrong_stored_password_noninteractive_aborts_clearly(repo, pki, smtp_server, keyring_env):
    server = _server(smtp_server, pki)
    _keyring(keyring_env, "set", _key(server), "an-Old-Password")
    code, out, err = hg.run_hg(
        repo, hg.email_args(), _hgrc(server, pki), env=keyring_env,
        secrets=servers.secret_forms() + servers.secret_forms(password="an-Old-Password"),
    )
    assert code == 255, (code, out, err)
    assert "with the password stored in the keyring" in err, err
    assert "535" in err, err
    assert "run hg email interactively" in err, err
    assert server.verbs.count("AUTH") == 1, server.verbs
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))
    assert _keyring(keyring_env, "get", _key(server)) == "an-Old-Password"


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_wrong_stored_password_reprompts_and_saves_the_new_one(repo, series, pki, smtp_server, keyring_env, order):
    server = _server(smtp_server, pki)
    _keyring(keyring_env, "set", _key(server), "an-Old-Password")
    cfg = _interactive(_hgrc(server, pki, order))
    code, out, err = hg.run_hg(
        repo, hg.email_args(), cfg, env=keyring_env, input=servers.PASSWORD + "\n",
        secrets=servers.secret_forms() + servers.secret_forms(password="an-Old-Password"),
    )
    assert_ok((code, out, err))
    assert "SMTP login failed: 535" in err, err
    # The question itself gives the reason (a GUI shows only the question).
    assert "password (the server refused the last one: 535 " in out + err
    assert_series_delivered(server, series, "starttls")
    # Two logins on the one connection: the refused one, then the right one.
    assert server.verbs.count("AUTH") == 2, server.verbs
    assert _keyring(keyring_env, "get", _key(server)) == servers.PASSWORD


def test_smtp_password_command_comes_before_the_keyring(repo, series, pki, smtp_server, keyring_env):
    server = _server(smtp_server, pki)
    _keyring(keyring_env, "set", _key(server), "an-Old-Password")
    cfg = _hgrc(server, pki)
    cfg["smtp"]["password-command"] = " ".join(
        shlex.quote(a) for a in (sys.executable, "-c", "import sys; print(sys.argv[1])", servers.PASSWORD)
    )
    code, out, err = hg.run_hg(
        repo, hg.email_args(), cfg, env=keyring_env,
        secrets=servers.secret_forms() + servers.secret_forms(password="an-Old-Password"),
    )
    assert_ok((code, out, err))
    assert_series_delivered(server, series, "starttls")
    assert server.verbs.count("AUTH") == 1, server.verbs


HOOK = """\
from mercurial import extensions, mail


def _login(orig, ui, smtp, host, port):
    ui.status(b"login hook: %s:%d\\n" % (host, port))
    smtp.login(b"alice", {password!r})


def uisetup(ui):
    extensions.wrapfunction(mail, "_smtp_login", _login)
"""


def test_smtp_login_hook_installed_with_wrapfunction_is_honoured(repo, series, pki, smtp_server, tmp_path):
    server = _server(smtp_server, pki)
    hook = tmp_path / "loginhook.py"
    hook.write_text(HOOK.format(password=servers.PASSWORD.encode()))
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=servers.USER)
    cfg["extensions"]["loginhook"] = str(hook)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok((code, out, err))
    assert "login hook: localhost:%d" % server.port in out, out
    assert_series_delivered(server, series, "starttls")
    assert server.verbs.count("AUTH") == 1, server.verbs


def test_smtp_login_hook_refusal_is_a_clean_abort(repo, pki, smtp_server, tmp_path):
    server = _server(smtp_server, pki)
    hook = tmp_path / "loginhook.py"
    hook.write_text(HOOK.format(password=b"not-the-Sw0rdfish"))
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=servers.USER)
    cfg["extensions"]["loginhook"] = str(hook)
    code, out, err = hg.run_hg(
        repo, hg.email_args(), cfg, secrets=servers.secret_forms() + ["not-the-Sw0rdfish"]
    )
    assert code == 255, (code, out, err)
    assert "authentication as alice failed: 535" in err, err
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))


def test_a_temporary_login_failure_with_the_stored_password_keeps_it_and_blames_nothing(
    repo, keyring_env, tmp_path_factory
):
    """The server answers AUTH with 454 (it cannot check logins just now):
    the stored password is not called wrong, the user is not sent to type
    another one, and the keyring keeps it."""
    from support import hostile
    from support.hostile import GREETING, HostileServer, send, serve

    certs = hostile.Certificates(str(tmp_path_factory.mktemp("keyring-pki")))
    replies = {"AUTH": b"454 4.7.0 Temporary authentication failure\r\n"}
    with HostileServer([send(GREETING), serve(replies=replies)], tls_context=certs.good()) as server:
        cfg = hg.smtp_hgrc(server.port, cacerts=certs.ca_file, username=servers.USER, extension=False)
        cfg["extensions"] = {name: "" for name in ORDERS["keyring-first"]}
        key = "%s@@localhost:%d" % (servers.USER, server.port)
        _keyring(keyring_env, "set", key, servers.PASSWORD)
        code, out, err = hg.run_hg(repo, hg.email_args(), cfg, env=keyring_env)
        verbs = server.verbs()
    assert code == 255, (code, out, err)
    assert (
        "abort: could not log in as %s: the server could not check the login just now (AUTH PLAIN): "
        "454 4.7.0 Temporary authentication failure" % servers.USER in err
    ), err
    assert "stored in the keyring" not in err and "run hg email interactively" not in err, err
    assert "MAIL" not in verbs, verbs
    assert _keyring(keyring_env, "get", key) == servers.PASSWORD
