"""``hg email`` through the command server as TortoiseHg drives it.

TortoiseHg's Email dialog runs each command through ``hg serve --cmdserver
pipe`` (interactive, no tty) and passes ``--config extensions.patchbomb=``
with the command, so patchbomb is often enabled nowhere else and loads only
after the server (and the extension) started. These tests speak the raw
protocol through python-hglib and read the channels a GUI reads: the output
(``o``), the error (``e``) and the line requests (``L``) that carry the
password question.
"""

import os

import pytest
from support import hg, servers

hglib = pytest.importorskip("hglib")

PATCHBOMB_PER_COMMAND = [b"--config", b"extensions.patchbomb="]
USER = "alice"
PASSWORD = "cmdserver-Secret-3b1d"


def _open(repo, tmp_path, hgrc):
    """A command server for ``repo``, its hgrc without patchbomb, started as
    TortoiseHg starts it (``--config ui.interactive=True``; the server
    itself makes every prompt go over its channels)."""
    rc = str(tmp_path / "cmdserver.rc")
    with open(rc, "w") as fp:
        base = hg.BASE_HGRC.replace("patchbomb =\n", "")
        assert "patchbomb" not in base.split("[ui]")[0]
        fp.write(base + hg.hgrc_text(hgrc))
    hglib.HGPATH = hg.HG
    old = os.environ.get("HGRCPATH")
    os.environ["HGRCPATH"] = rc
    try:
        return hglib.open(repo, configs=["ui.interactive=true"])
    finally:
        if old is None:
            del os.environ["HGRCPATH"]
        else:
            os.environ["HGRCPATH"] = old


class _Gui:
    """What a GUI sees of one command: the output and error channels, and
    the last line shown when the server asks for input."""

    def __init__(self, answers=()):
        self.out = bytearray()
        self.err = bytearray()
        self.questions = []
        self._answers = list(answers)

    def run(self, client, args):
        code = client.runcommand(
            args,
            {b"L": self._answer, b"I": lambda size: b""},
            {b"o": self.out.extend, b"e": self.err.extend},
        )
        hg.check_output(self.out.decode(), self.err.decode())
        return code

    def _answer(self, size):
        # The question is the last line written, on either channel.
        shown = (bytes(self.out) + bytes(self.err)).rsplit(b"\n", 1)[-1]
        self.questions.append(shown.decode())
        return (self._answers.pop(0) + "\n").encode() if self._answers else b""


def _email(revs="1:3"):
    return [a.encode() for a in hg.email_args(revs=revs)] + PATCHBOMB_PER_COMMAND


def test_a_refusal_mid_series_with_patchbomb_per_command_sends_the_rest(tmp_path, pki, repo):
    server = servers.ContentFilterServer(pki.rsa, "starttls").start()
    client = _open(repo, tmp_path, hg.smtp_hgrc(server.port, cacerts=pki.ca.cert))
    try:
        # Twice in one server: the first command loads patchbomb, the second
        # finds it loaded.
        for run in (1, 2):
            gui = _Gui()
            code = gui.run(client, _email())
            err = gui.err.decode()
            assert code != 0, err
            assert "abort: the server refused [PATCH 2 of 3]" in err, err
            assert "550 5.7.1 refused by content filter" in err, err
            # Patch 3 went out after the refusal of patch 2, and the line
            # that sends just patch 2 is printed.
            assert len(server.wait_for_messages(2 * run, timeout=30)) == 2 * run
            assert "to send the messages not sent: hg email" in err, err
            assert server.wait_idle(5.0) and server.open_now == 0
    finally:
        client.close()
        server.stop()


def test_a_refused_password_is_asked_again_with_the_reason_in_the_question(
    tmp_path, pki, smtp_server, repo
):
    server = smtp_server(pki.rsa, "starttls", user=USER, password=PASSWORD)
    hgrc = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=USER)
    client = _open(repo, tmp_path, hgrc)
    try:
        gui = _Gui(answers=["wrong-password", PASSWORD])
        code = gui.run(client, _email())
        assert code == 0, gui.err.decode()
        assert len(gui.questions) == 2, gui.questions
        assert gui.questions[0] == "password: "
        # All a GUI shows: the question itself says why it is asked again.
        assert gui.questions[1].startswith("password (the server refused the last one: 535 "), gui.questions
        assert gui.questions[1].endswith("): ")
        assert len(server.wait_for_messages(3, timeout=30)) == 3
    finally:
        client.close()
