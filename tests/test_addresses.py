"""Non-ASCII addresses and subjects, as another extension hands them to
``mail.sendmail`` (patchbomb itself encodes domains and refuses non-ASCII
local parts before mail is sent).

- an internationalised domain goes to a server without SMTPUTF8 as its
  A-label and is delivered;
- a non-ASCII local part to such a server is refused before anything of
  the message is written, with the reason;
- a report line shows a raw 8-bit or RFC 2047 subject decoded, not as
  replacement characters.
"""

import pytest

try:
    from support import hostile
    from support.hostile import GREETING, HostileServer, send, serve
except ImportError:  # tests/ imported as a package
    from tests.support import hostile
    from tests.support.hostile import GREETING, HostileServer, send, serve

#: A command that mails one message with the raw bytes it is given, as
#: bugzilla or a third-party extension would.
RAWMAIL = '''
from mercurial import mail, registrar

cmdtable = {}
command = registrar.command(cmdtable)


@command(b"rawmail", [(b"", b"to", [], b"recipient"), (b"", b"subject", b"", b"subject")])
def rawmail(ui, repo, **opts):
    to = [t.decode("utf-8") for t in opts["to"]]
    msg = b"From: alice@example.test\\nTo: " + b", ".join(opts["to"]) + b"\\nSubject: "
    msg += opts["subject"] + b"\\n\\nA message from an extension.\\n"
    mail.sendmail(ui, b"alice@example.test", to, msg)
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return hostile.build_repo(str(tmp_path_factory.mktemp("addresses-repo")), hostile.ordinary_commits())


@pytest.fixture(scope="module")
def rawmail(tmp_path_factory):
    path = tmp_path_factory.mktemp("rawmail") / "rawmail.py"
    path.write_text(RAWMAIL)
    return str(path)


def _run(repo, rawmail, port, to, subject="a message"):
    config = hostile.base_config(port=port, tls="none", timeout=5)
    config["extensions"]["rawmail"] = rawmail
    args = ["rawmail", "--subject", subject]
    for t in to:
        args += ["--to", t]
    return hostile.hg(repo, args, config, env={"HGENCODING": "utf-8"})


def test_an_idn_domain_is_sent_as_its_a_label_and_delivered(repo, rawmail):
    # The scripted server offers no SMTPUTF8 (aiosmtpd here would).
    with HostileServer([send(GREETING), serve()]) as server:
        run = _run(repo, rawmail, server.port, ["bob@b\u00fccher.example"])
    assert run.returncode == 0, str(run)
    assert "SMTPUTF8" not in " ".join(server.commands), server.commands
    assert "RCPT TO:<bob@xn--bcher-kva.example>" in server.commands, server.commands
    assert len(server.messages) == 1, server.commands


def test_a_non_ascii_local_part_is_refused_before_the_message_is_written(repo, rawmail):
    with HostileServer([send(GREETING), serve()]) as server:
        run = _run(repo, rawmail, server.port, ["j\u00f6rg@example.test"])
    assert run.returncode == 255, str(run)
    assert run.stderr.splitlines()[0] == (
        'abort: cannot send a message: invalid mail address "j\u00f6rg@example.test": '
        "its local part is not ASCII and the server does not offer SMTPUTF8"
    ), str(run)
    assert "Traceback" not in run.output
    assert not [c for c in server.commands if c.split(" ")[0] in ("MAIL", "RCPT", "DATA")], server.commands


@pytest.mark.parametrize(
    "subject,shown",
    [
        ("caf\u00e9 au lait", "caf\u00e9 au lait"),  # raw UTF-8 bytes
        ("=?utf-8?q?caf=C3=A9?= encoded", "caf\u00e9 encoded"),  # RFC 2047
        ("=?iso-8859-1?q?na=EFve?=", "na\u00efve"),
    ],
)
def test_a_refused_message_is_named_by_its_decoded_subject(repo, rawmail, subject, shown):
    refuse = {".": [b"554 5.7.1 rejected\r\n"]}
    with HostileServer([send(GREETING), serve(replies=refuse)]) as server:
        run = _run(repo, rawmail, server.port, ["bob@example.test"], subject=subject)
    assert run.returncode == 255, str(run)
    assert run.stderr.splitlines()[0] == (
        "abort: the server refused %s at end of data: 554 5.7.1 rejected" % shown
    ), str(run)
    assert "\ufffd" not in run.stderr
