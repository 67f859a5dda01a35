"""What a new user does, following README.md and ``hg help securesmtp``.

Certificates are made the way a user makes them, with the ``openssl``
command line: a self-signed server certificate from ``openssl req -x509``,
and a Let's-Encrypt-like chain (root -> intermediate -> leaf) where the
server sends leaf + intermediate. Real ``hg email`` and ``hg debugsmtp``,
real aiosmtpd servers on 127.0.0.1. Each odd setting must give a clean
``abort:`` or ``config error:`` naming the setting, before anything is sent.
"""

import os
import subprocess
import sys
import types

import pytest

from support import hg, servers
from support import postfix as postfixmod
from support.asserts import assert_ok

PASSWORD = servers.PASSWORD
USER = servers.USER


def _openssl(*args, cwd):
    subprocess.run(
        ["openssl"] + list(args),
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


def _write(path, text):
    with open(path, "w", encoding="ascii", newline="") as fp:
        fp.write(text)
    return path


def _read(path):
    with open(path, encoding="ascii") as fp:
        return fp.read()


@pytest.fixture(scope="module")
def user_certs(tmp_path_factory):
    """``self``: ``openssl req -x509`` with a subjectAltName, as README users
    make it; ``chain``: leaf + intermediate as the server sends them, and
    ``root``, the file a user puts in web.cacerts."""
    d = str(tmp_path_factory.mktemp("usercerts"))
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self.key",
        "-out", "self.pem", "-days", "90", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d,
    )
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "root.key", "-out", "root.pem", "-days", "90",
        "-subj", "/CN=Test Root X1",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d,
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=Test R3", cwd=d,
    )
    _write(
        os.path.join(d, "int.ext"),
        "basicConstraints=critical,CA:TRUE,pathlen:0\n"
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n",
    )
    _openssl(
        "x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key",
        "-CAcreateserial", "-out", "int.pem", "-days", "90", "-extfile", "int.ext", cwd=d,
    )
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out",
        "leaf.csr", "-subj", "/CN=localhost", cwd=d,
    )
    _write(
        os.path.join(d, "leaf.ext"),
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    _openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "90", "-extfile", "leaf.ext", cwd=d,
    )
    _write(
        os.path.join(d, "fullchain.pem"),
        _read(os.path.join(d, "leaf.pem")) + _read(os.path.join(d, "int.pem")),
    )
    j = lambda name: os.path.join(d, name)  # noqa: E731
    return types.SimpleNamespace(
        dir=d,
        self=types.SimpleNamespace(chain=j("self.pem"), key=j("self.key")),
        chain=types.SimpleNamespace(chain=j("fullchain.pem"), key=j("leaf.key")),
        root=j("root.pem"),
    )


@pytest.fixture(scope="module")
def repo2(tmp_path_factory):
    return hg.make_repo(tmp_path_factory.mktemp("hg"), n_patches=2, long_line=False)


@pytest.fixture
def server():
    started = []

    def make(cert, mode="starttls", **kwargs):
        kwargs.setdefault("user", USER)
        kwargs.setdefault("password", PASSWORD)
        s = servers.SmtpServer(cert, mode, **kwargs).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def _password_command(tmp_path, output):
    """A password command script that prints ``output`` (what a password
    manager prints), run through this Python so no shell is involved."""
    script = _write(str(tmp_path / "secret.py"), "import sys\nsys.stdout.write(%r)\n" % output)
    return '"%s" "%s"' % (sys.executable, script)


def _hgrc(port, tls="starttls", **smtp):
    text = (
        "[extensions]\nsecuresmtp =\n"
        "[email]\nfrom = %s\n"
        "[smtp]\nhost = localhost\nport = %d\ntls = %s\nusername = %s\n"
        % (hg.SENDER, port, tls, USER)
    )
    for key, value in smtp.items():
        text += "%s = %s\n" % (key.replace("_", "-"), value)
    return text


def _nothing_reached(s):
    """Refused before connecting: not even a TCP connection."""
    s.wait_idle(2.0)
    assert s.connections == 0, s.transcript_text()
    assert s.messages == []


# -- the README paths, end to end ---------------------------------------------


def test_self_signed_server_pinned_by_pasting_debugsmtp_lines_gets_one_copy_per_recipient(
    repo2, user_certs, server, tmp_path
):
    s = server(user_certs.self)
    rc = _hgrc(s.port, password_command=_password_command(tmp_path, PASSWORD + "\n"))
    code, out, err = hg.run_hg(repo2, ["debugsmtp"], rc)
    assert code == 1, (out, err)
    assert "verification: FAILED: certificate is self-signed" in out, out
    # The session stopped after the handshake: what AUTH the server offers
    # after TLS was never asked, so it must not be reported as "none".
    assert "AUTH mechanisms offered: not asked" in out, out
    assert "AUTH mechanisms offered: none" not in out, out
    lines = out.splitlines()
    start = lines.index("  [hostsecurity]")
    pasted = "\n".join(l.strip() for l in lines[start : start + 2]) + "\n"
    assert pasted.startswith("[hostsecurity]\nlocalhost:fingerprints = sha256:"), pasted
    s.stop()
    s = server(user_certs.self)
    rc = _hgrc(s.port, password_command=_password_command(tmp_path, PASSWORD + "\n")) + pasted
    args = [
        "email", "-r", "1", "--date", hg.DATE,
        "-f", "Jörg Müller <jorg@example.test>",
        "--to", "bob@example.test, carol@example.test",
        "--cc", "dan@example.test", "--bcc", "eve@example.test",
    ]
    assert_ok(hg.run_hg(repo2, args, rc))
    (msg,) = s.wait_for_messages(1)
    assert msg.mail_from == "jorg@example.test"
    assert sorted(msg.rcpt_tos) == [
        "bob@example.test", "carol@example.test", "dan@example.test", "eve@example.test",
    ]
    assert b"eve@example.test" not in msg.content  # Bcc stays off the headers
    assert b"From: =?iso-8859-1?q?J=F6rg_M=FCller?= <jorg@example.test>" in msg.content


def test_chain_over_smtps_verified_by_a_commented_crlf_bundle_named_with_tilde_and_a_variable(
    repo2, user_certs, server, tmp_path
):
    s = server(user_certs.chain, "smtps")
    home = tmp_path / "home"
    (home / "certs").mkdir(parents=True)
    root = _read(user_certs.root)
    bundle = "# my CA bundle\nTest Root X1\n============\n" + root + "\n# end\n"
    _write(str(home / "certs" / "ca bundle.pem"), bundle.replace("\n", "\r\n"))
    env = {"HOME": str(home), "CERTS": str(home / "certs")}
    for cacerts in ("~/certs/ca bundle.pem", "$CERTS/ca bundle.pem"):
        rc = _hgrc(s.port, tls="smtps", password=PASSWORD) + "[web]\ncacerts = %s\n" % cacerts
        args = ["email", "-r", "0:1", "--intro", "-s", "the series", "--desc", os.devnull,
                "--date", hg.DATE, "--to", hg.TO, "--config", "patchbomb.intro=auto"]
        assert_ok(hg.run_hg(repo2, args, rc, env=env))
    msgs = s.wait_for_messages(6)
    assert len(msgs) == 6, s.transcript_text()
    assert s.connections == 2


def test_test_and_mbox_never_connect_even_with_unusable_smtp_settings(repo2, server, user_certs, tmp_path):
    s = server(user_certs.self)
    rc = _hgrc(s.port, tls="bogus", timeout="inf", auth=",")
    base = ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO]
    code, out, err = hg.run_hg(repo2, base + ["--test"], rc)
    assert code == 0, err
    assert "[PATCH]" in out
    mbox = str(tmp_path / "out.mbox")
    code, out, err = hg.run_hg(repo2, base + ["--mbox", mbox], rc)
    assert code == 0, err
    assert os.path.getsize(mbox) > 0
    _nothing_reached(s)


@pytest.fixture(scope="module")
def postfix():
    with postfixmod.running("securesmtp-users-", password=PASSWORD) as pf:
        yield pf


@pytest.mark.parametrize("tls", ["smtps", "starttls"])
def test_postfix_readme_provider_settings_with_a_password_command_reach_every_mailbox(
    repo2, postfix, tmp_path, tls
):
    # README's Fastmail section (port 465, tls = smtps) and Gmail's app
    # password section (submission, starttls), with the port as a number.
    port = postfix.smtps_port if tls == "smtps" else postfix.starttls_port
    rc = (
        "[extensions]\nsecuresmtp =\n[email]\nfrom = %s\n[web]\ncacerts = %s\n"
        "[smtp]\nhost = localhost\nport = %d\ntls = %s\nusername = %s\n"
        "password-command = %s\n"
        % (hg.SENDER, postfix.ca_file, port, tls, postfix.user,
           _password_command(tmp_path, PASSWORD + "\n"))
    )
    args = ["email", "-r", "0:1", "--date", hg.DATE, "--to", "a@example.test, b@example.test",
            "--cc", "c@example.test", "--bcc", "d@example.test", "--debug"]
    code, out, err = hg.run_hg(repo2, args, rc)
    assert code == 0, (out, err)
    assert "C: AUTH PLAIN <redacted>" in out + err, out
    got = postfix.deliveries(8, timeout=15)
    assert sorted(d.recipient for d in got) == sorted(
        ["a@example.test", "b@example.test", "c@example.test", "d@example.test"] * 2
    )
    postfix.clear()


# -- odd values: clean errors naming the setting, nothing sent -----------------


@pytest.mark.parametrize("value", ["inf", "-inf", "1e300", "100000"])
@pytest.mark.parametrize("with_command", [False, True])
def test_timeout_too_large_for_a_clock_is_a_config_error_before_connecting(
    repo2, user_certs, server, tmp_path, value, with_command
):
    s = server(user_certs.self)
    secret = {"password_command": _password_command(tmp_path, PASSWORD)} if with_command else {
        "password": PASSWORD}
    rc = _hgrc(s.port, timeout=value, **secret)
    code, out, err = hg.run_hg(repo2, ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO], rc)
    assert code == 255, (out, err)
    assert err.startswith("config error: smtp.timeout must be a number of seconds from"), err
    assert "'%s'" % value in err, err
    _nothing_reached(s)


def test_password_command_printing_a_whole_pass_entry_aborts_before_connecting(
    repo2, user_certs, server, tmp_path
):
    s = server(user_certs.self)
    # What `pass show` prints for an entry with metadata under the password.
    entry = PASSWORD + "\nlogin: alice\nurl: smtp.example.org\n"
    rc = _hgrc(s.port, password_command=_password_command(tmp_path, entry))
    code, out, err = hg.run_hg(
        repo2, ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO, "--debug"], rc
    )
    assert code == 255, (out, err)
    assert "abort: smtp.password-command printed more than one line" in err, err
    assert "smtp.password-command" in err.splitlines()[-1], err
    assert "login: alice" not in out + err
    _nothing_reached(s)


def test_password_command_with_a_tilde_path_runs_from_home(repo2, user_certs, server, tmp_path):
    s = server(user_certs.self)
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    # Both the program and its argument named from ~, as in
    # "gpg --decrypt ~/.mail-password.gpg".
    _write(str(home / "bin" / "token.py"),
           "import sys\nsys.stdout.write(open(sys.argv[1]).read())\n")
    _write(str(home / "pw"), PASSWORD + "\n")
    pin = "[hostsecurity]\nlocalhost:fingerprints = %s\n" % _fingerprint(user_certs.self.chain)
    rc = _hgrc(s.port, password_command='"%s" ~/bin/token.py ~/pw' % sys.executable) + pin
    args = ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO]
    assert_ok(hg.run_hg(repo2, args, rc, env={"HOME": str(home)}))
    assert len(s.wait_for_messages(1)) == 1


@pytest.mark.parametrize("setting", ["web.cacerts", "hostsecurity.localhost:verifycertsfile"])
def test_ca_directory_instead_of_a_file_is_refused_naming_the_setting_used(
    repo2, user_certs, server, setting
):
    s = server(user_certs.chain)
    args = ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO,
            "--config", "%s=%s" % (setting, user_certs.dir)]
    code, out, err = hg.run_hg(repo2, args, _hgrc(s.port, password=PASSWORD))
    assert code == 255, (out, err)
    assert err.startswith("abort: %s names a directory, not a file: %s" % (setting, user_certs.dir)), err
    assert "and set %s to it" % setting in err, err
    _nothing_reached(s)


@pytest.mark.parametrize("value", [",", ", ,", " , "])
def test_auth_listing_only_separators_is_a_config_error(repo2, user_certs, server, value):
    s = server(user_certs.self)
    rc = _hgrc(s.port, password=PASSWORD, auth=value)
    code, out, err = hg.run_hg(repo2, ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO], rc)
    assert code == 255, (out, err)
    assert err.startswith("config error: smtp.auth lists no mechanism"), err
    assert "remove the setting" in err, err
    _nothing_reached(s)


@pytest.mark.parametrize("value", ["my laptop", "host<1>", "tab\there"])
def test_local_hostname_that_cannot_follow_ehlo_is_a_config_error_naming_it(
    repo2, user_certs, server, value
):
    s = server(user_certs.self)
    rc = _hgrc(s.port, password=PASSWORD)
    args = ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO,
            "--config", "smtp.local_hostname=" + value]
    code, out, err = hg.run_hg(repo2, args, rc)
    assert code == 255, (out, err)
    assert err.startswith("config error: smtp.local_hostname is not a valid host name"), err
    assert "recipient" not in err, err
    _nothing_reached(s)


def test_non_ascii_local_hostname_goes_out_as_a_labels(repo2, user_certs, server):
    s = server(user_certs.self)
    pin = "[hostsecurity]\nlocalhost:fingerprints = %s\n" % _fingerprint(user_certs.self.chain)
    rc = _hgrc(s.port, password=PASSWORD) + pin
    args = ["email", "-r", "1", "--date", hg.DATE, "--to", hg.TO,
            "--config", "smtp.local_hostname=mañana.example"]
    assert_ok(hg.run_hg(repo2, args, rc))
    s.wait_for_messages(1)
    ehlos = [c for c in s.commands if c.upper().startswith("EHLO")]
    assert ehlos == ["EHLO xn--maana-pta.example"] * 2, s.commands


def test_debugsmtp_with_tls_none_points_at_the_starttls_the_server_offers(repo2, user_certs, server):
    s = server(user_certs.self)
    rc = _hgrc(s.port, tls="none", password=PASSWORD)
    code, out, err = hg.run_hg(repo2, ["debugsmtp"], rc)
    assert code == 0, (out, err)
    assert "verification: not encrypted (smtp.tls=none)" in out, out
    assert "warning: the server offers STARTTLS, which smtp.tls = none does not use" in err, err
    assert "set smtp.tls = starttls" in err, err
    s.assert_nothing_sent()


def test_recipients_with_display_names_are_delivered_as_stock_hg_delivers_them(
    repo2, user_certs, server
):
    s = server(user_certs.self)
    pin = "[hostsecurity]\nlocalhost:fingerprints = %s\n" % _fingerprint(user_certs.self.chain)
    rc = _hgrc(s.port, password=PASSWORD) + pin
    args = ["email", "-r", "1", "--date", hg.DATE,
            "--to", "Bob Example <bob@example.test>", "--cc", "Dän <dan@example.test>"]
    assert_ok(hg.run_hg(repo2, args, rc))
    (msg,) = s.wait_for_messages(1)
    assert sorted(msg.rcpt_tos) == ["bob@example.test", "dan@example.test"]


def _fingerprint(pem_path):
    from support.pki import sha256_fingerprint

    return sha256_fingerprint(_read(pem_path))
