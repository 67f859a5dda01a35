"""Every sender of mail in Mercurial, not only ``hg email``: the real
``notify`` extension as a hook on a local push (also under a 64-descriptor
limit, and through a real Postfix that limits connections per client) and
on pushes to ``hg serve``, ``hg email`` run twice through the command server
(python-hglib, as TortoiseHg runs commands) and through chg, and a forged
server met inside a hook.

What is checked is what a repository host sees: every notification mailed
once, over one connection for a burst (never one per changeset), and no SMTP
connection left open when the command or request that opened it is over,
while the long-running process is still up.
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from support import hg

N_CHANGESETS = 120


def _notify_hgrc(port, cacerts=None, subscriber="subscriber@example.org", **kw):
    cfg = hg.smtp_hgrc(port, cacerts=cacerts, **kw)
    cfg["extensions"]["notify"] = ""
    cfg["hooks"] = {"incoming.notify": "python:hgext.notify.hook"}
    cfg["notify"] = {"sources": "push serve", "test": "false", "maxdiff": "0"}
    cfg["reposubs"] = {"**": subscriber}
    cfg["web"] = dict(cfg.get("web", {}), **{"push_ssl": "false", "allow-push": "*"})
    return cfg


def _init(path):
    subprocess.run([hg.HG, "init", str(path)], check=True, env=dict(os.environ, HGRCPATH=""))
    return str(path)


def _commits(repo, n, start=0):
    """``n`` new changesets, each adding a file (a notification each)."""
    env = dict(os.environ, HGRCPATH="", HGUSER="test <test@example.org>")
    for i in range(start, start + n):
        with open(os.path.join(repo, "f%04d" % i), "w") as fp:
            fp.write("change %d\n" % i)
        subprocess.run([hg.HG, "-R", repo, "commit", "-Aqm", "change %d" % i], check=True, env=env)


def _distinct(messages):
    ids = {m.content.split(b"\n\n", 1)[0].lower().split(b"message-id:", 1)[1].split(b"\n")[0].strip()
           for m in messages}
    return len(ids)


def _built(path, n):
    """A repository of ``n`` changesets made by ``hg debugbuilddag``."""
    repo = _init(path)
    subprocess.run([hg.HG, "-R", repo, "debugbuilddag", "+%d" % n], check=True,
                   env=dict(os.environ, HGRCPATH=""), stdout=subprocess.DEVNULL)
    return repo


@pytest.fixture(scope="module")
def outgoing(tmp_path_factory):
    """A repository with N_CHANGESETS changesets to push."""
    return _built(tmp_path_factory.mktemp("callers") / "source", N_CHANGESETS)


def test_a_notify_push_under_a_low_descriptor_limit_mails_every_changeset(tmp_path, pki, smtp_server):
    # 150 mails with 64 file descriptors: a connection per mail once ran
    # out (and ended in a half-imported module and a traceback).
    server = smtp_server(pki.rsa, "starttls")
    source = _built(tmp_path / "source", 150)
    dest = _init(tmp_path / "server")
    code, out, err = hg.run_hg(source, ["push", dest], _notify_hgrc(server.port, pki.ca.cert),
                               timeout=300, prefix=["prlimit", "--nofile=64:64"])
    assert code == 0 and "hook failed" not in err, (out, err)
    got = server.wait_for_messages(150, timeout=30)
    assert len(got) == 150 and _distinct(got) == 150


@pytest.fixture(scope="module")
def limited_postfix():
    from support import postfix
    from support.limitedpostfix import LimitedPostfix

    with postfix.running("securesmtp-postfix-", LimitedPostfix, password=POSTFIX_PASSWORD) as pf:
        yield pf


POSTFIX_USER = "alice@example.test"
POSTFIX_PASSWORD = "pf-Secret-7f3a"


def test_a_notify_push_beyond_postfixs_connection_limit_mails_every_changeset(
    tmp_path, limited_postfix, outgoing
):
    """A real Postfix whose default per-client limit (50 connections) counts
    loopback clients, as a provider's counts everyone."""
    pf = limited_postfix
    conf = subprocess.run(
        ["postconf", "-c", pf.config_dir, "-h", "smtpd_client_event_limit_exceptions",
         "smtpd_client_connection_count_limit"],
        stdout=subprocess.PIPE, check=True).stdout.decode().split("\n")
    assert conf[:2] == ["", "50"], conf
    dest = _init(tmp_path / "server")
    # The one domain this Postfix delivers for.
    cfg = _notify_hgrc(pf.starttls_port, pf.ca_file, subscriber="a@example.test",
                       username=POSTFIX_USER, password=POSTFIX_PASSWORD)
    code, out, err = hg.run_hg(outgoing, ["push", dest], cfg, timeout=300)
    assert code == 0 and "hook failed" not in err, (out, err)
    assert len(pf.delivered(N_CHANGESETS, timeout=60)) == N_CHANGESETS
    assert "too many connections" not in pf.log()


def test_a_notify_push_mails_every_changeset_over_one_connection(tmp_path, pki, smtp_server, outgoing):
    server = smtp_server(pki.rsa, "starttls")
    dest = _init(tmp_path / "server")
    code, out, err = hg.run_hg(outgoing, ["push", dest], _notify_hgrc(server.port, pki.ca.cert),
                               timeout=300)
    assert code == 0, (out, err)
    got = server.wait_for_messages(N_CHANGESETS, timeout=30)
    assert len(got) == N_CHANGESETS and _distinct(got) == N_CHANGESETS, server.transcript_text()[-2000:]
    # One connection for the burst (stock: one per changeset, each closed
    # when released; before pooling: one per changeset, all held open).
    assert server.connections == 1 and server.max_open == 1, (server.connections, server.max_open)
    assert server.wait_idle(5.0) and server.open_now == 0
    assert server.verbs.count("QUIT") == 1, server.verbs


def test_a_forged_server_in_a_notify_hook_shows_the_pin_line_and_gets_nothing(
    tmp_path, pki, smtp_server, outgoing
):
    server = smtp_server(pki.selfsigned, "starttls")
    dest = _init(tmp_path / "server")
    # No CA file trusts it: the default store does not either.
    code, out, err = hg.run_hg(outgoing, ["push", "-r", "2", dest], _notify_hgrc(server.port))
    assert "hook failed" in err and "could not be verified" in err, err
    # The hint reaches the user although the hook runner prints only the
    # message: the fingerprint and the line that would pin it.
    assert "localhost:fingerprints = sha256:" in err, err
    assert "Traceback" not in err, err
    server.assert_nothing_sent()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Serve:
    """``hg serve`` of a repository with the notify hook, on loopback."""

    def __init__(self, repo, hgrc, tmp_path, serving=None):
        """``serving``: what follows ``hg serve`` (default ``-R repo``)."""
        self.port = _free_port()
        self.rc = str(tmp_path / "serve.rc")
        with open(self.rc, "w") as fp:
            fp.write(hg.BASE_HGRC + hg.hgrc_text(hgrc))
        serving = ["-R", repo] if serving is None else serving
        self.proc = subprocess.Popen(
            [hg.HG, "serve"] + serving + ["-a", "127.0.0.1", "-p", str(self.port)],
            env=dict(os.environ, HGRCPATH=self.rc), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # A whole request, not a bare connect: hgweb prints a traceback
            # for a connection closed before its request line.
            try:
                urllib.request.urlopen(self.url, timeout=5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("hg serve did not start")

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.port

    def stop(self):
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return out.decode(errors="replace"), err.decode(errors="replace")


def _unexpected_tracebacks(err):
    """The tracebacks hg serve printed, but for a client resetting an idle
    keep-alive connection while hgweb waits for its next request line (hg's
    HTTP client at exit, now and then; nothing of the extension's)."""
    blocks = re.split(r"(?m)^ *Traceback \(most recent call last\):$", err)[1:]
    return [b for b in blocks if not ("handle_one_request" in b and "ConnectionResetError" in b.split("\n----")[0])]


def _clone(src, dest):
    subprocess.run([hg.HG, "clone", "-q", src, dest], check=True, env=dict(os.environ, HGRCPATH=""))
    return dest


def test_hg_serve_holds_no_smtp_connection_after_pushes(tmp_path, pki, smtp_server):
    server = smtp_server(pki.rsa, "starttls")
    dest = _init(tmp_path / "served")
    serve = _Serve(dest, _notify_hgrc(server.port, pki.ca.cert), tmp_path)
    try:
        first = _clone(dest, str(tmp_path / "a"))
        second = _clone(dest, str(tmp_path / "b"))
        expected = 0
        for round_ in range(3):
            _commits(first, 4, start=round_ * 4)
            expected += 4
            code, out, err = hg.run_hg(first, ["push", serve.url], timeout=120)
            assert code == 0, (out, err)
            assert len(server.wait_for_messages(expected, timeout=30)) == expected
            # The request is over; hg serve is still running.
            assert server.wait_idle(5.0), "an SMTP connection outlived its request"
            assert serve.proc.poll() is None
        # Two pushes at the same time, on two hgweb threads.
        _commits(first, 3, start=100)
        _commits(second, 3, start=200)
        results = {}

        def push(repo):
            results[repo] = hg.run_hg(repo, ["push", "-f", serve.url], timeout=120)

        threads = [threading.Thread(target=push, args=(r,)) for r in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert all(r[0] == 0 for r in results.values()), results
        expected += 6
        got = server.wait_for_messages(expected, timeout=30)
        assert len(got) == expected and _distinct(got) == expected
        assert server.wait_idle(5.0) and server.open_now == 0
        # One connection per push (a burst per request, not one per
        # changeset), each ended with QUIT when its request did.
        assert server.connections == 5, server.connections
        assert server.verbs.count("QUIT") == server.connections, server.verbs
        assert serve.proc.poll() is None
    finally:
        out, err = serve.stop()
    assert not _unexpected_tracebacks(err), err


def test_the_command_server_closes_each_commands_session(tmp_path, pki, smtp_server, repo):
    hglib = pytest.importorskip("hglib")
    server = smtp_server(pki.rsa, "starttls")
    hglib.HGPATH = hg.HG
    rc = str(tmp_path / "cmdserver.rc")
    with open(rc, "w") as fp:
        fp.write(hg.BASE_HGRC + hg.hgrc_text(hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)))
    old = os.environ.get("HGRCPATH")
    os.environ["HGRCPATH"] = rc
    try:
        client = hglib.open(repo)
    finally:
        if old is None:
            del os.environ["HGRCPATH"]
        else:
            os.environ["HGRCPATH"] = old
    try:
        args = [a.encode() for a in hg.email_args()]
        for run in (1, 2):
            client.rawcommand(args)
            assert len(server.wait_for_messages(3 * run, timeout=30)) == 3 * run
            # The command is over; the command server is still running.
            assert server.wait_idle(5.0), "run %d left its SMTP connection open" % run
            assert server.open_now == 0
        assert server.connections == 2
        # Ended politely by the end of the command, not dropped.
        assert server.verbs.count("QUIT") == 2, server.verbs
    finally:
        client.close()


def test_a_send_function_released_outside_any_command_ends_its_session(tmp_path, pki, smtp_server):
    """A script calling mail.connect itself (no command, no request): the
    session ends when the send function is released."""
    server = smtp_server(pki.rsa, "starttls")
    rc = str(tmp_path / "script.rc")
    with open(rc, "w") as fp:
        fp.write(hg.BASE_HGRC + hg.hgrc_text(hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)))
    script = (
        "import gc, sys, time\n"
        "from mercurial import extensions, mail, ui as uimod\n"
        "u = uimod.ui.load()\n"
        "extensions.loadall(u)\n"
        "send = mail.connect(u)\n"
        "send('test@example.org', ['a@example.org'], b'Subject: x\\n\\nbody\\n')\n"
        "del send\n"
        "gc.collect()\n"
        "print('released', flush=True)\n"
        "time.sleep(3)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, HGRCPATH=rc),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"released", proc.stderr.read()
        assert server.wait_idle(2.0) and server.open_now == 0, "the session outlived its send function"
        assert proc.poll() is None
        assert len(server.messages) == 1
    finally:
        proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def chg(tmp_path_factory):
    """chg built from Mercurial's source distribution (setup.sh --matrix
    unpacks it into .work/hg-tests for Mercurial's own tests)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sources = sorted(glob.glob(os.path.join(root, ".work", "hg-tests", "mercurial-*", "contrib", "chg")))
    if not sources:
        pytest.skip("no Mercurial source distribution (run scripts/setup.sh --matrix)")
    build = str(tmp_path_factory.mktemp("chg") / "chg")
    shutil.copytree(sources[0], build)
    subprocess.run(["make", "-s"], cwd=build, check=True, capture_output=True, timeout=300)
    return os.path.join(build, "chg")


def test_chg_ends_each_commands_session(tmp_path, pki, smtp_server, repo, chg):
    server = smtp_server(pki.rsa, "starttls")
    rc = str(tmp_path / "chg.rc")
    with open(rc, "w") as fp:
        fp.write(hg.BASE_HGRC + hg.hgrc_text(hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)))
    env = dict(os.environ, HGRCPATH=rc, CHGHG=hg.HG, CHGSOCKNAME=str(tmp_path / "chg.sock"))
    try:
        for run in (1, 2):
            proc = subprocess.run([chg] + hg.email_args(), cwd=repo, env=env, capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=120)
            assert proc.returncode == 0, proc.stderr.decode()
            assert len(server.wait_for_messages(3 * run, timeout=30)) == 3 * run
            # The command is over; the chg server process lives on.
            assert server.wait_idle(5.0) and server.open_now == 0, "run %d left a connection" % run
        assert server.connections == 2 and server.verbs.count("QUIT") == 2, server.verbs
    finally:
        subprocess.run([chg, "--kill-chg-daemon"], env=env, capture_output=True, timeout=30)


def test_chg_wraps_patchbomb_enabled_only_on_the_command(tmp_path, pki, repo, chg):
    """chg's server starts without patchbomb; the command enables it: a
    refusal mid-series still delivers the rest and prints the resend line."""
    from support import servers

    server = servers.ContentFilterServer(pki.rsa, "starttls").start()
    rc = str(tmp_path / "chg.rc")
    with open(rc, "w") as fp:
        fp.write(hg.BASE_HGRC.replace("patchbomb =\n", "")
                 + hg.hgrc_text(hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)))
    env = dict(os.environ, HGRCPATH=rc, CHGHG=hg.HG, CHGSOCKNAME=str(tmp_path / "chg.sock"))
    try:
        for run in (1, 2):
            proc = subprocess.run([chg] + hg.email_args() + ["--config", "extensions.patchbomb="], cwd=repo,
                                  env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
            err = proc.stderr.decode()
            assert proc.returncode != 0, err
            assert "abort: the server refused [PATCH 2 of 3]" in err, err
            assert "to send the messages not sent: hg email" in err, err
            assert len(server.wait_for_messages(2 * run, timeout=30)) == 2 * run
    finally:
        subprocess.run([chg, "--kill-chg-daemon"], env=env, capture_output=True, timeout=30)
        server.stop()


# -- The extension enabled in a repository's own hgrc ------------------------
# A hosting setup enables notify and the extension in the served repository's
# .hg/hgrc, not in a user's. hg then loads the extension when it opens that
# repository: for a local push, while the push command is already running.


def _hosted(path, port, cacerts):
    """A repository whose own hgrc enables notify and the extension."""
    repo = _init(path)
    with open(os.path.join(repo, ".hg", "hgrc"), "w") as fp:
        fp.write(hg.hgrc_text(_notify_hgrc(port, cacerts)))
    return repo


def test_a_push_to_a_repository_enabling_the_extension_itself_uses_one_connection(
    tmp_path, pki, smtp_server
):
    server = smtp_server(pki.rsa, "starttls")
    source = _built(tmp_path / "source", 60)
    dest = _hosted(tmp_path / "hosted", server.port, pki.ca.cert)
    # The pushing user's hgrc knows nothing of the extension (run_hg's base
    # config enables only patchbomb).
    code, out, err = hg.run_hg(source, ["push", dest], timeout=300)
    assert code == 0 and "hook failed" not in err, (out, err)
    got = server.wait_for_messages(60, timeout=30)
    assert len(got) == 60 and _distinct(got) == 60
    # Before: 61 connections (one per notification, and one more).
    assert server.connections == 1, server.connections
    # Ended with the push command, politely.
    assert server.wait_idle(5.0) and server.open_now == 0
    assert server.verbs.count("QUIT") == 1, server.verbs


def test_hgweb_serving_repositories_enabling_the_extension_uses_a_connection_per_request(
    tmp_path, pki, smtp_server
):
    """hg serve --web-conf (hgwebdir): each repository is opened, and the
    extension loaded from its hgrc, inside a request."""
    server = smtp_server(pki.rsa, "starttls")
    dest = _hosted(tmp_path / "hosted", server.port, pki.ca.cert)
    conf = tmp_path / "web.conf"
    conf.write_text("[paths]\nhosted = %s\n" % dest)
    serve = _Serve(dest, {"web": {"push_ssl": "false", "allow-push": "*"}}, tmp_path,
                   serving=["--web-conf", str(conf)])
    try:
        first = _clone(dest, str(tmp_path / "a"))
        for round_ in range(2):
            _commits(first, 5, start=round_ * 5)
            code, out, err = hg.run_hg(first, ["push", serve.url + "hosted"], timeout=120)
            assert code == 0, (out, err)
            assert len(server.wait_for_messages(5 * (round_ + 1), timeout=30)) == 5 * (round_ + 1)
            # The request is over, hg serve runs on: nothing left open.
            assert server.wait_idle(5.0) and server.open_now == 0, "a connection outlived its request"
            assert serve.proc.poll() is None
        assert server.connections == 2, server.connections
        assert server.verbs.count("QUIT") == 2, server.verbs
    finally:
        out, err = serve.stop()
    assert not _unexpected_tracebacks(err), err
