"""TortoiseHg's Email dialog, as its users send: Debian's ``tortoisehg``
package (with Debian's Mercurial, the extension unpacked into a folder and
named by path) under Xvfb. A script (support/thg_email.py) opens the
dialog the way ``thg email`` does, fills To and From, presses Send, and
reads what the dialog's command session printed and the questions its
password dialog asked, as a person would see them.

TortoiseHg runs ``hg email`` through its command server and passes
``--config extensions.patchbomb=`` with the command: the hgrc here does not
enable patchbomb.
"""

import glob
import json
import os
import shutil
import signal
import subprocess

import pytest
from support import hg, servers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "support", "thg_email.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def _folder():
    found = sorted(glob.glob(os.path.join(ROOT, ".work", "dist", "securesmtp-*linux*", "securesmtp")))
    assert found, "no folder in .work/dist: run scripts/setup.sh"
    return found[0]


@pytest.fixture(scope="module")
def thg():
    have = subprocess.run([SYSTEM_PYTHON, "-c", "import tortoisehg.hgqt.hgemail"], capture_output=True)
    assert have.returncode == 0 and shutil.which("xvfb-run"), (
        "Debian's tortoisehg and xvfb are needed (scripts/setup.sh installs them): %s" % have.stderr.decode()
    )
    return _folder()


def _send(tmp_path, repo, folder, server, pki, answers=(), username=None):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=username)
    cfg["extensions"] = {"securesmtp": folder}
    rc = tmp_path / "thg.rc"
    # No patchbomb: TortoiseHg enables it on the command.
    rc.write_text("[ui]\nusername = Test User <test@example.test>\n[patchbomb]\nintro = never\n"
                  + hg.hgrc_text(cfg))
    result = tmp_path / "result.json"
    env = dict(hg._env({"HGRCPATH": str(rc), "HOME": str(home)}), QT_QPA_PLATFORM="xcb")
    # Its own process group: a run past its bound takes Xvfb and the
    # dialog's command server with it.
    proc = subprocess.Popen(
        ["xvfb-run", "-a", SYSTEM_PYTHON, DRIVER, repo, "1:3", hg.TO, hg.SENDER, str(result)] + list(answers),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    assert result.exists(), (out.decode(), err.decode())
    record = json.loads(result.read_text())
    record["text"] = "".join(record["output"])
    hg.check_output(record["text"], "")
    return record


def test_the_email_dialog_sends_through_the_extension(tmp_path, pki, smtp_server, repo, thg):
    server = smtp_server(pki.rsa, "starttls")
    record = _send(tmp_path, repo, thg, server, pki)
    assert record["exit"] == 0, record["text"]
    assert len(server.wait_for_messages(3)) == 3
    # The extension's own QUIT (stock's smtplib never sends one).
    assert server.wait_idle(5.0) and "QUIT" in server.verbs


def test_the_email_dialog_refuses_a_forged_server_with_the_pin_line(tmp_path, pki, smtp_server, repo, thg):
    server = smtp_server(pki.selfsigned, "starttls")
    record = _send(tmp_path, repo, thg, server, pki)
    assert record["exit"] != 0
    assert "could not be verified" in record["text"], record["text"]
    assert "localhost:fingerprints = sha256:" in record["text"], record["text"]
    server.assert_nothing_sent()


def test_a_refusal_mid_series_in_the_dialog_sends_the_rest(tmp_path, pki, repo, thg):
    server = servers.ContentFilterServer(pki.rsa, "starttls").start()
    try:
        record = _send(tmp_path, repo, thg, server, pki)
        assert record["exit"] != 0
        assert "the server refused [PATCH 2 of 3]" in record["text"], record["text"]
        assert "to send the messages not sent: hg email" in record["text"], record["text"]
        assert len(server.wait_for_messages(2)) == 2
    finally:
        server.stop()


def test_the_password_dialog_says_why_it_asks_again(tmp_path, pki, smtp_server, repo, thg):
    server = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    record = _send(tmp_path, repo, thg, server, pki, answers=["wrong-password", servers.PASSWORD],
                   username=servers.USER)
    assert record["exit"] == 0, record["text"]
    assert len(record["questions"]) == 2, record
    assert record["questions"][1].startswith("password (the server refused the last one: 535 "), record
    assert len(server.wait_for_messages(3)) == 3
