"""A streamed series end to end, through Postfix and Exim.

The real ``hg email`` with the extension streams each message to the server
as patchbomb hands it over and confirms them all before the command ends
(``smtp.streaming``, the default). Exim runs with ``smtp_enforce_sync`` on,
so a client that pipelines where RFC 2920 does not allow it is dropped: the
series arriving whole through Exim's three ports (PIPELINING and CHUNKING,
PIPELINING only, neither) is the proof the pipelining is lawful.

What is checked, on both servers unless said otherwise:

- a 200-message series arrives byte for byte (compared with what
  ``hg email --mbox`` writes for the same arguments), each message once;
- one message refused in the middle (Postfix: over ``message_size_limit``,
  refused at MAIL FROM from its SIZE; Exim: a content filter after the
  data) is reported against its patch, the others are delivered, the exit
  status is non-zero and the ``hg email`` line printed sends just it;
- the connection dropped part way (a proxy that cuts the first connection
  after a number of bytes): the run reconnects and ends with every message
  delivered exactly once, or reported as possibly delivered (and then
  delivered at most once);
- Exim answering 421 part way (``smtp_accept_max_per_connection``): the run
  reconnects and sends only what was not accepted; when it runs out of
  reconnections, the printed ``hg email`` line, run as printed, sends exactly
  the rest, threaded under the series' introduction without a second one;
- the password typed once (or printed once by smtp.password-command) serves
  the reconnection; one refused there is fetched again;
- the connection gone silent part way (the proxy stops forwarding, no
  reset) resumes like a drop after smtp.timeout;
- another CA's certificate on the reconnection: nothing sent there, the run
  ends with the per-message report and the verification failure;
- garbage from the server part way is reported, not resumed.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from support import hg, servers
from support.cutproxy import CutProxy
from support.exim import Exim, strip_exim_headers
from support.hostile import GREETING, PIPELINED, HostileServer, base_config, send, serve, silent
from support.hostile import hg_email as hostile_email
from support.postfix import Listener, Postfix, PostfixError, free_port  # noqa: F401

PASSWORD = "series-Pw-51c0"
USER = "alice@example.test"
TO = "a@example.test"
EXIM_KINDS = ("chunking", "pipelining", "lockstep")


def _dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def exim():
    d = _dir("securesmtp-exim-")
    try:
        with Exim(d, PASSWORD) as ex:
            yield ex
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix():
    """Postfix with a 200 KB message size limit, and a second STARTTLS port
    that hides CHUNKING (PIPELINING alone)."""
    d = _dir("securesmtp-postfix-")
    pipelining = Listener("pipelining", free_port(), "starttls", ("chunking",))
    pf = Postfix(d, password=PASSWORD, message_size_limit=200 * 1024, listeners=[pipelining])
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        shutil.rmtree(d, ignore_errors=True)


# The port the tests that cut a connection part way go through. With
# CHUNKING a small series goes out whole before any verdict is in, so it can
# all be on the wire before the proxy has read the share at which it cuts,
# and the test would see no reconnection; with PIPELINING alone each body
# waits for its 354, so the client is at most one message ahead of what the
# server has read and the cut always leaves messages never written.
# Exim's silent-connection test covers a chunked series cut part way, with
# messages larger than the socket buffers.
CUT = "pipelining"


class Server:
    """One of the two servers, seen the same way by the tests."""

    def __init__(self, name, impl):
        self.name = name
        self.impl = impl

    def port(self, kind="chunking"):
        if self.name == "exim":
            return self.impl.port(kind)
        assert kind in ("chunking", "pipelining")
        return self.impl.starttls_port if kind == "chunking" else self.impl.port(kind)

    @property
    def ca_file(self):
        return self.impl.ca_file

    def delivered(self, n, timeout=20):
        """The next ``n`` messages as the client sent them (LF endings)."""
        if self.name == "exim":
            return [strip_exim_headers(m) for m in self.impl.delivered(n, timeout=timeout)]
        return [_strip_postfix(m) for m in self.impl.delivered(n, timeout=timeout)]

    def pending(self):
        return self.impl.pending()

    def clear(self):
        self.impl.clear()


@pytest.fixture(params=["postfix", "exim"])
def server(request):
    srv = Server(request.param, request.getfixturevalue(request.param))
    srv.clear()
    yield srv
    srv.clear()


def _strip_postfix(data):
    lines = data.split(b"\n")
    i = 0
    heads = (b"return-path:", b"x-original-to:", b"delivered-to:", b"received:")
    while i < len(lines) and (lines[i].lower().startswith(heads) or lines[i][:1] in (b" ", b"\t")):
        i += 1
    return b"\n".join(lines[i:])


def _message_id(message):
    m = re.search(rb"^message-id:\s*(\S+)", message.split(b"\n\n", 1)[0], re.I | re.M)
    assert m, message[:300]
    return m.group(1).decode()


def _subject(message):
    m = re.search(rb"^subject:\s*(.*)$", message.split(b"\n\n", 1)[0], re.I | re.M)
    return m.group(1).decode() if m else ""


def _expected(message):
    body = message.replace(b"\r\n", b"\n")
    return body if body.endswith(b"\n") else body + b"\n"


def make_series_repo(path, n, special=None):
    """A repository with ``n`` small commits (descriptions ``r0``, ``r1``,
    ...; ``hg debugbuilddag``, one process), or, with ``special``
    ({index: (description, file bytes)}), ``n`` commits made one by one."""
    hgrc = os.path.join(path, "hgrc")
    with open(hgrc, "w") as f:
        f.write(hg.hgrc_text({"ui": {"username": "Test <test@example.test>"}}))
    repo = os.path.join(path, "repo")
    env = dict(os.environ, HGRCPATH=hgrc, HGPLAIN="1")

    def plain(*args):
        subprocess.run([hg.HG] + list(args), env=env, check=True, capture_output=True, timeout=120)

    plain("init", repo)
    if special is None:
        plain("-R", repo, "debugbuilddag", "-n", "+%d" % n)
        return repo
    for i in range(n):
        desc, content = special.get(i, ("change number %d" % i, b"line %d\n" % i))
        with open(os.path.join(repo, "f%03d.txt" % i), "wb") as f:
            f.write(content)
        plain("-R", repo, "commit", "-A", "-q", "-m", desc, "-d", "0 0")
    return repo


def email_args(revs):
    return ["email", "--from", hg.SENDER, "--to", TO, "--date", hg.DATE, "-r", revs]


def hgrc(server, port, extra=None):
    cfg = hg.smtp_hgrc(port, tls="starttls", cacerts=server.ca_file, username=USER, password=PASSWORD)
    cfg.setdefault("patchbomb", {}).update({"intro": "never", "confirm": "false"})
    for section, items in (extra or {}).items():
        cfg.setdefault(section, {}).update(items)
    return cfg


def reference(repo, revs):
    msgs = hg.mbox_messages(repo, email_args(revs) + ["--config", "patchbomb.intro=never"])
    return {_message_id(m): m for m in msgs}


def run(repo, server, port, revs, extra=None, args=None):
    code, out, err = hg.run_hg(repo, args or email_args(revs), hgrc(server, port, extra), timeout=300)
    assert "Traceback" not in out + err, err
    return code, out, err


def check_delivered(got, ref, allow_missing=()):
    """Every message delivered byte for byte and at most once; all but
    ``allow_missing`` (Message-Ids) delivered."""
    seen = {}
    for m in got:
        mid = _message_id(m)
        assert mid in ref, "unexpected message %s" % mid
        assert mid not in seen, "message %s (%s) delivered twice" % (mid, _subject(m))
        seen[mid] = m
        assert m == _expected(ref[mid]), "message %s differs from hg email --mbox" % _subject(m)
    missing = set(ref) - set(seen)
    assert missing <= set(allow_missing), sorted(_subject(ref[mid]) for mid in missing - set(allow_missing))
    return seen


@pytest.fixture(scope="module")
def repo200(tmp_path_factory):
    return make_series_repo(str(tmp_path_factory.mktemp("series200")), 200)


@pytest.fixture(scope="module")
def refs(repo200):
    """revs -> {Message-Id: hg email --mbox bytes}, made once per revs."""
    cache = {}

    def get(revs):
        if revs not in cache:
            cache[revs] = reference(repo200, revs)
        return cache[revs]

    return get


def test_200_message_series_arrives_byte_for_byte_once(server, repo200, refs):
    code, out, err = run(repo200, server, server.port(), "0:199")
    assert code == 0, err
    assert "abort" not in err, err
    check_delivered(server.delivered(200, timeout=60), refs("0:199"))
    assert not server.pending()


@pytest.mark.parametrize("kind", ["pipelining", "lockstep"])
def test_series_through_exims_other_ports_with_enforced_sync(exim, repo200, refs, kind):
    """PIPELINING only (end of one body with the next envelope and DATA)
    and lock-step, with Exim dropping any client that sends ahead."""
    srv = Server("exim", exim)
    srv.clear()
    code, out, err = run(repo200, srv, srv.port(kind), "0:39")
    assert code == 0, err
    want = refs("0:39")
    check_delivered(srv.delivered(40, timeout=30), want)
    assert "synchronization error" not in exim.mainlog()


def _index(message):
    """The revision a message of the 200-commit repository carries."""
    m = re.search(r"\] r(\d+)$", _subject(message))
    return int(m.group(1)) if m else -1


@pytest.fixture(scope="module")
def refused_repo(tmp_path_factory):
    """Five patches; patch 3 (index 2) is over Postfix's 200 KB limit and
    has REFUSE-ME in its subject for Exim's content filter."""
    big = b"".join(b"big line %06d of a patch over the size limit\n" % i for i in range(6000))
    return make_series_repo(
        str(tmp_path_factory.mktemp("refused")), 5, special={2: ("REFUSE-ME: too big", big)}
    )


def test_message_refused_in_the_middle_is_reported_against_its_patch(server, refused_repo):
    ref = reference(refused_repo, "0:4")
    refused = [mid for mid, m in ref.items() if b"REFUSE-ME" in m.split(b"\n\n", 1)[0]]
    code, out, err = run(refused_repo, server, server.port(), "0:4")
    assert code != 0, err
    assert "abort:" in err
    # The refusal and its patch on the first line.
    headline = err.splitlines()[0]
    if server.name == "postfix":
        want = "abort: the server refused [PATCH 3 of 5] REFUSE-ME: too big at MAIL FROM: 552 "
    else:
        want = "abort: the server refused [PATCH 3 of 5] REFUSE-ME: too big at end of data: 550 "
    assert headline.startswith(want), err
    if server.name == "exim":
        assert "refused by content filter" in headline, err
    assert "message not sent" not in err, err
    assert "the server accepted 4 other message(s)" in err, err
    check_delivered(server.delivered(4), ref, allow_missing=refused)
    # The printed line names just the refused patch.
    line = re.search(r"^to send the messages not sent: (hg email .*)$", err, re.M)
    assert line, err
    node = _node(refused_repo, 2)
    assert re.findall(r" -r (\S+)", line.group(1)) == [node[:12]], line.group(1)


def _node(repo, rev):
    out = subprocess.run(
        [hg.HG, "-R", repo, "log", "-r", str(rev), "-T", "{node}"],
        env=dict(os.environ, HGRCPATH="", HGPLAIN="1"), check=True, capture_output=True, timeout=60,
    )
    return out.stdout.decode()


@pytest.mark.parametrize("cut_at", [0.3, 0.7])
def test_connection_dropped_part_way_resumes_and_loses_nothing(server, repo200, refs, cut_at):
    """The first connection is cut after a share of the series' bytes; the
    run reconnects and sends what had no verdict. Each message arrives
    once; one whose verdict was lost may be reported instead."""
    revs = "0:59"
    want = refs("0:59")
    size = sum(len(m) for m in want.values())
    with CutProxy(server.port(CUT), cut_after=int(size * cut_at) + 4000) as proxy:
        code, out, err = run(repo200, server, proxy.port, revs)
        assert proxy.cut, "the proxy never cut the connection"
        assert proxy.connections >= 2, err
    possibly = re.findall(r"^possibly delivered: (.*) \(the connection", err, re.M)
    allow = [mid for mid, m in want.items() if _subject(m) in possibly]
    got = server.delivered(60 - len(allow), timeout=30)
    # Those reported as possibly delivered may or may not be there.
    got += server.delivered(len(server.pending()), timeout=5) if server.pending() else []
    check_delivered(got, want, allow_missing=allow)
    assert "reconnecting" in err, err
    if possibly:
        assert code != 0
        assert "to send the messages not sent" not in err or "-r" in err
    else:
        assert code == 0, err


def test_421_part_way_resumes_on_a_new_connection(tmp_path_factory, repo200, refs):
    """Exim closes each connection after 15 messages with 421; 40 messages
    need three connections: the run reconnects twice and delivers each
    message once."""
    d = _dir("securesmtp-exim421-")
    try:
        with Exim(d, PASSWORD, per_connection=15) as ex:
            srv = Server("exim", ex)
            code, out, err = run(repo200, srv, srv.port(), "0:39")
            assert code == 0, err
            assert err.count("reconnecting") == 2, err
            assert "421" in err, err
            want = refs("0:39")
            check_delivered(srv.delivered(40, timeout=30), want)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_when_reconnections_run_out_the_printed_line_sends_exactly_the_rest(repo200, refs):
    """Exim takes 3 messages per connection; 4 connections carry 12 of 20.
    The run fails, lists the 8 not sent, and prints the hg email line; run
    as printed, that line sends exactly those 8."""
    d = _dir("securesmtp-exim421-")
    try:
        with Exim(d, PASSWORD, per_connection=3) as ex:
            srv = Server("exim", ex)
            code, out, err = run(repo200, srv, srv.port(), "0:19")
            assert code != 0, err
            assert err.count("message not sent:") == 8, err
            first = srv.delivered(12, timeout=30)
            want = refs("0:19")
            line = re.search(r"^to send the messages not sent: (hg email .*)$", err, re.M).group(1)
            args = shlex.split(line)[1:]
            assert args.count("-r") == 8, line
            code, out, err = run(repo200, srv, srv.port(), None, args=args)
            # 8 messages, 3 per connection, 4 connections: 8 fit.
            assert code == 0, err
            second = srv.delivered(8, timeout=30)
            # The resent ones are new messages (renumbered, in reply to the
            # first): compare what matters, the patches.
            sent_first = {_message_id(m) for m in first}
            rest = sorted(_index(v) for k, v in want.items() if k not in sent_first)
            assert sorted(_index(m) for m in second) == rest
            assert all(b"In-Reply-To:" in m for m in second)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_refused_recipient_on_the_first_message_stops_the_series(server, repo200):
    """The first message is confirmed before the rest stream: a recipient
    the server refuses stops the series before anything else goes out, and
    the printed line is the same command."""
    args = ["email", "--from", hg.SENDER, "--to", "x@not-ours.test", "--date", hg.DATE, "-r", "0:19"]
    code, out, err = run(repo200, server, server.port(), None, args=args)
    assert code != 0, err
    assert out.count("sending [PATCH") == 1, out
    lines = err.splitlines()
    assert lines[0] == "abort: the server refused every recipient of [PATCH 01 of 20] r0:", err
    assert lines[1].startswith("  x@not-ours.test: 55"), err
    line = re.search(r"^to send the messages not sent: (hg email .*)$", err, re.M)
    assert line, err
    words = shlex.split(line.group(1))[2:]
    assert dict(zip(words[::2], words[1::2])) == {
        "--date": hg.DATE, "--from": hg.SENDER, "--to": "x@not-ours.test", "--rev": "0:19"
    }, line.group(1)
    assert not server.pending()


def _cfg_without_password(server, port, extra=None):
    cfg = hgrc(server, port, extra)
    del cfg["smtp"]["password"]
    return cfg


def _delivered_or_possibly(server, want, err):
    """What the server delivered, checked: each message at most once, every
    one delivered but those reported as possibly delivered. Returns the
    subjects reported as possibly delivered."""
    possibly = re.findall(r"^possibly delivered: (.*) \(the connection", err, re.M)
    allow = [mid for mid, m in want.items() if _subject(m) in possibly]
    got = server.delivered(len(want) - len(allow), timeout=30)
    got += server.delivered(len(server.pending()), timeout=5) if server.pending() else []
    check_delivered(got, want, allow_missing=allow)
    return possibly


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory):
    """8 patches of about 1.2 MB each: a series larger than the socket
    buffers between client and server can hold."""
    special = {
        i: ("big change %d" % i, b"".join(b"line %06d of big patch %02d, padded to a longer line\n" % (j, i) for j in range(22000)))
        for i in range(8)
    }
    return make_series_repo(str(tmp_path_factory.mktemp("big")), 8, special=special)


def test_typed_password_is_asked_once_across_a_reconnection(postfix, repo200, refs):
    """Answered once at the prompt, the password serves the reconnection
    too: stdin holds one answer, and a second prompt would abort."""
    srv = Server("postfix", postfix)
    srv.clear()
    want = refs("0:59")
    cfg = _cfg_without_password(srv, 0)
    cfg["ui"] = {"interactive": "true", "nontty": "true"}
    size = sum(len(m) for m in want.values())
    with CutProxy(srv.port(CUT), cut_after=int(size * 0.5) + 4000) as proxy:
        cfg["smtp"]["port"] = str(proxy.port)
        code, out, err = hg.run_hg(repo200, email_args("0:59"), cfg, timeout=300, input="\n" + PASSWORD + "\n")  # Cc: (none), then the password
        assert proxy.cut and proxy.connections == 2, err
    assert "reconnecting" in err, err
    assert (out + err).count("password:") == 1, out + err
    possibly = _delivered_or_possibly(srv, want, err)
    assert code == (255 if possibly else 0), err


def test_password_command_runs_once_across_a_reconnection(postfix, repo200, refs, tmp_path):
    srv = Server("postfix", postfix)
    srv.clear()
    want = refs("0:59")
    runs = tmp_path / "runs"
    script = tmp_path / "pw.py"
    script.write_text(
        "import sys\n"
        "with open(%r, 'a') as f:\n"
        "    f.write('run\\n')\n"
        "print(%r)\n" % (str(runs), PASSWORD)
    )
    cfg = _cfg_without_password(srv, 0)
    cfg["smtp"]["password-command"] = "%s %s" % (shlex.quote(sys.executable), shlex.quote(str(script)))
    size = sum(len(m) for m in want.values())
    with CutProxy(srv.port(CUT), cut_after=int(size * 0.5) + 4000) as proxy:
        cfg["smtp"]["port"] = str(proxy.port)
        code, out, err = hg.run_hg(repo200, email_args("0:59") + ["-v"], cfg, timeout=300)
        assert proxy.cut and proxy.connections == 2, err
    assert "reconnecting" in err, err
    assert runs.read_text() == "run\n", err
    assert out.count("(getting the smtp secret from smtp.password-command") == 1, out
    # Authenticated on both connections, with the one secret.
    assert out.count("(authenticating to mail server as %s)" % USER) == 2, out
    possibly = _delivered_or_possibly(srv, want, err)
    assert code == (255 if possibly else 0), err


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory):
    """8 patches of about 1.2 MB each: a series larger than the socket
    buffers between client and proxy can hold, so a client writing into a
    silent connection blocks before it has written them all."""
    line = b"line %06d of big patch %02d, padded to a longer line\n"
    special = {i: ("big change %d" % i, b"".join(line % (j, i) for j in range(22000))) for i in range(8)}
    return make_series_repo(str(tmp_path_factory.mktemp("big")), 8, special=special)


@pytest.mark.parametrize("kind", ["chunking", "pipelining"])
def test_connection_gone_silent_resumes_like_a_drop(exim, repo200, refs, big_repo, kind):
    """The first connection goes silent part way (no reset, no close: what
    a NAT or Wi-Fi change does) and smtp.timeout is 3 seconds. The run
    reconnects; a message whose verdict was outstanding is reported as
    possibly delivered and not sent again; those never written are sent on
    the new connection. Through Exim's CHUNKING port with messages larger
    than the socket buffers, and its PIPELINING-only port (each message's
    body waits for its 354)."""
    srv = Server("exim", exim)
    srv.clear()
    if kind == "chunking":
        repo, revs, want, share = big_repo, "0:7", reference(big_repo, "0:7"), 0.2
    else:
        repo, revs, want, share = repo200, "0:59", refs("0:59"), 0.4
    size = sum(len(m) for m in want.values())
    with CutProxy(srv.port(kind), cut_after=int(size * share) + 4000, stall=20) as proxy:
        code, out, err = run(repo, srv, proxy.port, revs, extra={"smtp": {"timeout": "3"}})
        assert proxy.cut, "the proxy never went silent"
        assert proxy.connections == 2, err
    assert re.search(r"^localhost: timed out .* for 3 seconds; reconnecting to send \d+ message\(s\) again$", err, re.M), err
    possibly = _delivered_or_possibly(srv, want, err)
    # The message in flight when the silence began has no verdict; the
    # rest had one or were sent again.
    assert possibly, err
    assert code == 255, err
    assert "abort: %d of %d messages were not delivered" % (len(possibly), len(want)) in err, err
    assert "the server accepted %d other message(s)" % (len(want) - len(possibly)) in err, err
    assert "message not sent" not in err and "to send the messages not sent" not in err, err


def test_changed_certificate_on_reconnection_ends_with_the_report(postfix, repo200, refs, pki, smtp_server):
    """After the cut, the proxy leads to another server whose certificate
    comes from another CA. The run does not retry further, sends nothing
    there, and ends with the per-message report, the verification failure
    and its hint."""
    srv = Server("postfix", postfix)
    srv.clear()
    other = smtp_server(pki.rsa, "starttls", user=USER, password=PASSWORD)
    want = refs("0:59")
    size = sum(len(m) for m in want.values())
    with CutProxy(srv.port(CUT), cut_after=int(size * 0.5) + 4000, then_port=other.port) as proxy:
        code, out, err = run(repo200, srv, proxy.port, "0:59")
        assert proxy.cut and proxy.connections == 2, err
    assert code == 255, err
    assert err.count("; reconnecting to send") == 1, err
    other.assert_nothing_sent(verbs=("AUTH", "MAIL", "RCPT", "DATA", "BDAT"))
    accepted = int(re.search(r"^the server accepted (\d+) other message", err, re.M).group(1))
    not_sent = re.findall(r"^message not sent: (.*)$", err, re.M)
    possibly = re.findall(r"^possibly delivered: (.*) \(the connection", err, re.M)
    assert accepted + len(not_sent) + len(possibly) == 60, err
    assert not_sent, err
    assert re.search(r"^abort: %d of 60 messages were not delivered$" % (60 - accepted), err, re.M), err
    assert re.search(r"^reconnecting to localhost failed: certificate of localhost:\d+ could not be verified: "
                     r"certificate is signed by an unknown authority", err, re.M), err
    line = re.search(r"^to send the messages not sent: (hg email .*)$", err, re.M)
    assert line and line.group(1).count(" -r ") == len(not_sent), err
    # The hint of the verification failure closes the report.
    assert re.search(r"^\(the server's certificate has fingerprint sha256:", err, re.M), err
    assert err.rstrip().endswith("(or web.cacerts) to the certificate of the CA that issued it)"), err
    got = srv.delivered(accepted, timeout=30)
    got += srv.delivered(len(srv.pending()), timeout=5) if srv.pending() else []
    allow = [mid for mid, m in want.items() if _subject(m) not in {_subject(g) for g in got}]
    check_delivered(got, want, allow_missing=allow)
    assert {_subject(want[mid]) for mid in allow} >= set(not_sent)


def test_reconnecting_to_a_server_that_never_speaks_takes_one_timeout_in_all(postfix, repo200, refs):
    """After the cut, every new connection reaches a server that accepts
    TCP and never greets (a half-dead relay). With smtp.timeout 4, the
    reconnections together wait 4 seconds (not 4 per attempt), then the
    report says how many were tried and why they stopped."""
    srv = Server("postfix", postfix)
    srv.clear()
    want = refs("0:59")
    size = sum(len(m) for m in want.values())
    with HostileServer([silent()], connections=3, deadline=30) as mute:
        with CutProxy(srv.port(CUT), cut_after=int(size * 0.5) + 4000, then_port=mute.port) as proxy:
            started = time.monotonic()
            code, out, err = run(repo200, srv, proxy.port, "0:59", extra={"smtp": {"timeout": "4"}})
            elapsed = time.monotonic() - started
            assert proxy.cut, err
    assert code == 255, err
    assert err.count("; reconnecting to send") == 1, err
    assert re.search(r"^localhost: timed out at greeting: the server neither answered nor took data for 4 seconds$",
                     err, re.M), err
    assert "\nreconnection attempts: 1 (stopped: together they had waited smtp.timeout, 4 seconds)\n" in err, err
    assert not mute.commands, mute.commands
    # The series up to the cut, one pause (0.25 s) and one 4-second wait;
    # an attempt per pause (0.25 + 1 + 2.5 s), each waiting 4 seconds,
    # would take over 15.
    assert elapsed < 12, (elapsed, err)
    accepted = int(re.search(r"^the server accepted (\d+) other message", err, re.M).group(1))
    got = srv.delivered(accepted, timeout=30)
    got += srv.delivered(len(srv.pending()), timeout=5) if srv.pending() else []
    delivered = {_subject(g) for g in got}
    check_delivered(got, want, allow_missing=[mid for mid, m in want.items() if _subject(m) not in delivered])
    not_sent = re.findall(r"^message not sent: (.*)$", err, re.M)
    assert len(not_sent) >= 20 and not delivered & set(not_sent), err


def test_printed_line_continues_the_series_without_a_second_introduction(repo200, tmp_path):
    """A series with an introduction (--intro, --desc, --subject) and
    patchbomb.intro=auto runs out of reconnections. The printed line sends
    the rest threaded under the introduction already out, renumbered, with
    no second introduction and nothing asked: run interactively with only
    the Cc prompt answered, it must not prompt for an intro subject."""
    desc = tmp_path / "intro.txt"
    desc.write_text("What this series does.\n")
    d = _dir("securesmtp-exim421-")
    try:
        with Exim(d, PASSWORD, per_connection=3) as ex:
            srv = Server("exim", ex)
            args = email_args("0:19") + ["--intro", "--desc", str(desc), "--subject", "the series"]
            extra = {"patchbomb": {"intro": "auto"}}
            code, out, err = run(repo200, srv, srv.port(), None, extra=extra, args=args)
            assert code != 0, err
            # The introduction and 11 patches went out; 9 patches did not.
            first = srv.delivered(12, timeout=30)
            intro = [m for m in first if _subject(m) == "[PATCH 00 of 20] the series"]
            assert len(intro) == 1, [_subject(m) for m in first]
            assert err.count("message not sent:") == 9, err
            line = re.search(r"^to send the messages not sent: (hg email .*)$", err, re.M).group(1)
            words = shlex.split(line)
            assert "--intro" not in words and "--desc" not in words and "--subject" not in words, line
            assert words[words.index("--in-reply-to") + 1] == _message_id(intro[0]), line
            cfg = hgrc(srv, srv.port(), extra)
            cfg["ui"] = {"interactive": "true", "nontty": "true"}
            code, out, err = hg.run_hg(repo200, words[1:], cfg, timeout=300, input="\n")  # Cc: (none)
            assert code == 0, out + err
            assert "Subject:" not in out, out
            second = srv.delivered(9, timeout=30)
            subjects = sorted(_subject(m) for m in second)
            assert all(re.match(r"\[PATCH [1-9] of 9\] r\d+$", s) for s in subjects), subjects
            parent = _message_id(intro[0]).encode()
            assert all(re.search(rb"^In-Reply-To: " + re.escape(parent) + rb"$", m, re.M) for m in second)
            assert not srv.pending()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_garbage_part_way_is_not_resumed(repo200):
    """A server that answers the third message's end of data with bytes
    that are not SMTP is broken or hostile: the run reports it and does not
    reconnect to send the rest there again."""
    script = [send(GREETING), serve(caps=PIPELINED, replies={".": [None, None, b"garbage, not a reply\r\n"]})]
    with HostileServer(script) as srv:
        cfg = base_config(port=srv.port)
        run_ = hostile_email(repo200, cfg, "0:5")
        srv.wait(timeout=5)
        connections = srv.verbs().count("EHLO")
    assert run_.returncode == 255, str(run_)
    assert "reconnecting" not in run_.stderr, str(run_)
    assert connections == 1, str(run_)
    assert re.search(r"^abort: 4 of 6 messages were not delivered: .*end of data.*garbage, not a reply", run_.stderr, re.M), str(run_)
    assert "the server accepted 2 other message(s)" in run_.stderr, str(run_)
    # Nothing reported as not sent reached the server.
    not_sent = re.findall(r"^message not sent: (.*)$", run_.stderr, re.M)
    got = [_subject(m.replace(b"\r\n", b"\n")) for m in srv.received]
    assert not set(not_sent) & set(got), (not_sent, got)
    # Those after the garbled reply are possibly delivered (when already
    # written) or not sent, depending on how far the client had got.
    possibly = re.findall(r"^possibly delivered: (.*) \(the connection", run_.stderr, re.M)
    assert len(possibly) + len(not_sent) == 4, str(run_)
    # The reply the server garbled may still have been a delivery.
    assert re.search(r"^possibly delivered: \[PATCH 3 of 6\]", run_.stderr, re.M), str(run_)


def test_remembered_secret_refused_on_reconnection_is_fetched_again(repo200, pki, smtp_server, tmp_path):
    """The account's secret changes while the connection is down (an access
    token that expired): the remembered one is refused on the reconnection,
    and the next attempt runs smtp.password-command again for a fresh one."""
    old, new = "first-Token-1", "second-Token-2"
    server = smtp_server(pki.rsa, "starttls", user=servers.USER, password=old)
    runs = tmp_path / "runs"
    script = tmp_path / "token.py"
    script.write_text(
        "import os\n"
        "n = os.path.getsize(%r) // 4 if os.path.exists(%r) else 0\n"
        "with open(%r, 'a') as f:\n"
        "    f.write('run\\n')\n"
        "print(%r if n == 0 else %r)\n" % (str(runs), str(runs), str(runs), old, new)
    )
    want = reference(repo200, "0:29")
    size = sum(len(m) for m in want.values())
    with CutProxy(server.port, cut_after=int(size * 0.5) + 4000) as proxy:
        cfg = hg.smtp_hgrc(proxy.port, cacerts=pki.ca.cert, username=servers.USER)
        cfg["smtp"]["password-command"] = "%s %s" % (shlex.quote(sys.executable), shlex.quote(str(script)))

        def rotate():
            deadline = time.monotonic() + 60
            while not proxy.cut and time.monotonic() < deadline:
                time.sleep(0.01)
            server.password = new

        rotator = threading.Thread(target=rotate, daemon=True)
        rotator.start()
        code, out, err = hg.run_hg(
            repo200, email_args("0:29"), cfg, timeout=300,
            secrets=servers.secret_forms(password=old) + servers.secret_forms(password=new),
        )
        rotator.join(5)
        assert proxy.cut, err
    assert runs.read_text() == "run\nrun\n", err
    assert re.search(r"^localhost: authentication as %s failed: .*535" % servers.USER, err, re.M), err
    assert err.count("; reconnecting to send") == 2, err
    possibly = re.findall(r"^possibly delivered: (.*) \(the connection", err, re.M)
    got = [_subject(m.content.replace(b"\r\n", b"\n")) for m in server.wait_for_messages(30 - len(possibly), timeout=30)]
    assert len(got) == len(set(got)), got
    assert set(got) | set(possibly) == {_subject(m) for m in want.values()}, err
    assert code == (255 if possibly else 0), err
