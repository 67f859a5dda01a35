"""End to end through a real Postfix (Debian's package, a private instance).

The real ``hg email`` (``.venv/bin/hg``) with ``[extensions] securesmtp =``
sends a 3-patch series (non-ASCII commit message, lines starting with a dot,
a 1500-byte line in a patch) to ``a@example.test`` with ``b`` and ``c`` in
Cc, over STARTTLS and over SMTPS, with SASL PLAIN, to one Postfix instance
whose listeners differ only in what EHLO offers:

- ``chunking``: Postfix as shipped (PIPELINING and CHUNKING);
- ``pipelining``: ``smtpd_discard_ehlo_keywords = chunking``;
- ``lockstep``: ``smtpd_discard_ehlo_keywords = chunking, pipelining``.

Every delivered Maildir file is compared byte for byte with the message
``hg email --mbox`` writes for the same arguments. What Postfix 3.7 adds and
changes, as observed (see support/postfix.py): it prepends
``Return-Path``, ``X-Original-To``, ``Delivered-To`` and one folded
``Received`` header, and stores every line with a bare LF, whatever the
client sent (CRLF on the wire from the extension). hg's mbox messages use LF
and end with a newline, so after the prepended headers the delivered file
must be identical to the mbox message. (hg itself quoted-printable-encodes
a patch line over 950 bytes, so no line on the wire is longer than 78
bytes; the long line tests hg's encoding path, not the server's limit.)

The protocol shape is measured, not assumed: the latency proxy from bench/
counts how often the direction of traffic turns on each connection (one
turn = the client sent, then waited for the server). Sending 3 messages
instead of 1 on the same kind of connection costs exactly 2 more messages'
worth of turns, so the per-message cost is (turns(3) - turns(1)) / 2. With
PIPELINING and CHUNKING that must be 1 (MAIL, RCPTs and ``BDAT n LAST`` with
the message in one write), with PIPELINING only 2, and lock-step 3 + the
number of recipients. Stock hg (no extension) is put through the same
counter and must take 3 + recipients: the measurement would catch a
lock-step client.

Postfix is required: if it is not installed the session fixture fails with
the install command (it does not skip).
"""

import os
import shutil
import sys
import tempfile

import pytest

from support import hg
from support.postfix import Listener, Postfix, PostfixError, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.latency_proxy import LatencyProxy  # noqa: E402

PASSWORD = "pf-Secret-7f3a"
USER = "alice@example.test"
TO = "a@example.test"
CC = "b@example.test,c@example.test"
RECIPIENTS = ["a@example.test", "b@example.test", "c@example.test"]
REFUSED = "x@not-ours.test"

# What EHLO offers on each listener: name suffix -> keywords hidden.
CAPS = {
    "chunking": (),
    "pipelining": ("chunking",),
    "lockstep": ("chunking", "pipelining"),
}
# Postfix prepends these (and continuation lines of them) to what it got.
POSTFIX_HEADERS = (b"return-path:", b"x-original-to:", b"delivered-to:", b"received:")


@pytest.fixture(scope="session")
def postfix():
    # Not pytest's tmp_path: its base is mode 0700 and Postfix's daemons
    # (user postfix, virtual(8) as nobody) must reach the instance folders.
    directory = tempfile.mkdtemp(prefix="securesmtp-postfix-")
    os.chmod(directory, 0o755)
    listeners = []
    for tls in ("starttls", "smtps"):
        for caps, discard in CAPS.items():
            if caps == "chunking":
                continue  # the two default listeners
            listeners.append(Listener("%s-%s" % (tls, caps), free_port(), tls, discard))
    pf = None
    try:
        for attempt in range(3):
            pf = Postfix(directory, password=PASSWORD, listeners=listeners)
            try:
                pf.start()
                break
            except PostfixError as e:
                # A free port picked above may have been taken since: pick
                # new ones (start() checks before binding).
                if "already in use" not in str(e) or attempt == 2:
                    raise
                for listener in listeners:
                    listener.port = free_port()
        yield pf
    finally:
        if pf is not None:
            pf.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pf(postfix):
    """The session's Postfix with empty Maildirs."""
    postfix.clear()
    yield postfix
    postfix.clear()


@pytest.fixture(scope="session")
def pf_repo(tmp_path_factory):
    return hg.make_repo(tmp_path_factory.mktemp("pf-hg"), n_patches=3)


def email_args(to=TO, cc=CC, revs="1:3"):
    return hg.email_args(to=to, cc=cc, revs=revs) + ["--config", "patchbomb.confirm=false"]


@pytest.fixture(scope="session")
def reference(pf_repo):
    """Message-Id -> the bytes ``hg email --mbox`` writes (stock hg)."""
    msgs = hg.mbox_messages(pf_repo, email_args())
    assert len(msgs) == 3
    return {_message_id(m): m for m in msgs}


def listener_port(pf, tls, caps):
    name = tls if caps == "chunking" else "%s-%s" % (tls, caps)
    return pf.port(name)


def hgrc(pf, port, tls, extension=True, extra=None):
    return hg.smtp_hgrc(
        port, tls=tls, cacerts=pf.ca_file, username=USER, password=PASSWORD,
        extension=extension, extra=extra,
    )


def send(pf, repo, port, tls, args=None, extension=True, debug=False):
    args = list(args or email_args())
    if debug:
        args.append("--debug")
    code, out, err = hg.run_hg(repo, args, hgrc(pf, port, tls, extension), timeout=60)
    for text in (out, err):
        assert "Traceback" not in text, text
    return code, out, err


def _message_id(message):
    for line in message.split(b"\n\n", 1)[0].split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError("no Message-Id in %r" % message[:300])


def strip_postfix_headers(delivered, reference):
    """The delivered file minus what Postfix put before hg's first header;
    fails if anything else was put there."""
    first = reference.split(b"\n", 1)[0] + b"\n"
    at = delivered.find(first)
    assert at > 0, "hg's first header %r not in the delivered file:\n%r" % (first, delivered[:800])
    for line in delivered[:at].split(b"\n")[:-1]:
        assert line.lower().startswith(POSTFIX_HEADERS) or line[:1] in (b" ", b"\t"), (
            "unexpected line before hg's headers: %r" % line
        )
    return delivered[at:]


def expected_file(message):
    """What Postfix's Maildir holds for a message sent correctly: LF line
    endings (Postfix stores lines, virtual(8) writes LF), ending in one."""
    body = message.replace(b"\r\n", b"\n")
    if not body.endswith(b"\n"):
        body += b"\n"
    return body


def check_deliveries(deliveries, reference, recipients):
    by_rcpt = {}
    for d in deliveries:
        by_rcpt.setdefault(d.recipient, []).append(d)
    assert sorted(by_rcpt) == sorted(recipients), sorted(by_rcpt)
    for rcpt, got in by_rcpt.items():
        assert sorted(d.message_id for d in got) == sorted(reference), rcpt
        for d in got:
            want = expected_file(reference[d.message_id])
            have = strip_postfix_headers(d.data, want)
            assert have == want, _diff(want, have, rcpt)


def _diff(want, have, rcpt):
    import difflib

    lines = difflib.unified_diff(
        want.decode("utf-8", "replace").splitlines(True),
        have.decode("utf-8", "replace").splitlines(True),
        "hg email --mbox", "delivered to %s" % rcpt, n=1,
    )
    return "delivered message differs:\n" + "".join(list(lines)[:60])


# ---------------------------------------------------------------------------


@pytest.mark.parametrize("caps", list(CAPS))
@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_series_arrives_byte_for_byte(pf, pf_repo, reference, tls, caps):
    port = listener_port(pf, tls, caps)
    # No --debug here: it makes hg write full hashes in the patches, so the
    # messages would differ from the reference for a reason of hg's own.
    code, out, err = send(pf, pf_repo, port, tls)
    assert code == 0, out + err
    deliveries = pf.deliveries(9, timeout=20)
    assert not pf.pending(), "more than 9 messages delivered: %r" % pf.pending()
    check_deliveries(deliveries, reference, RECIPIENTS)


@pytest.mark.parametrize("caps", ["chunking", "pipelining"])
@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_refused_recipient_is_reported_and_others_get_the_series(pf, pf_repo, reference, tls, caps):
    port = listener_port(pf, tls, caps)
    args = email_args(to=TO, cc="%s,b@example.test" % REFUSED)
    refs = {_message_id(m): m for m in hg.mbox_messages(pf_repo, args)}
    code, out, err = send(pf, pf_repo, port, tls, args)
    assert code == 0, out + err
    assert REFUSED in err, err
    assert "Relay access denied" in err or "554" in err, err
    deliveries = pf.deliveries(6, timeout=20)
    check_deliveries(deliveries, refs, ["a@example.test", "b@example.test"])
    assert not pf.pending(), pf.pending()


@pytest.mark.parametrize("caps", ["chunking", "pipelining", "lockstep"])
def test_all_recipients_refused_aborts_and_names_them(pf, pf_repo, caps):
    port = listener_port(pf, "starttls", caps)
    other = "y@not-ours.test"
    args = email_args(to=REFUSED, cc=other)
    code, out, err = send(pf, pf_repo, port, "starttls", args)
    assert code != 0, out + err
    assert REFUSED in err and other in err, err
    # Nothing was accepted, so nothing may arrive (a bounce to the sender
    # would show up in alice's Maildir).
    with pytest.raises(PostfixError):
        pf.deliveries(1, timeout=1.5)


# ---------------------------------------------------------------------------
# Protocol shape: round trips per message, measured on the wire.

DELAY = 0.005  # one way; keeps the proxy's view of who waited for whom exact
# A streamed series: long enough that the replies to one message cannot come
# back before hg has the next one ready, so every turn the proxy counts is a
# wait of the client's.
STREAM_DELAY = 0.05
# Stock hg: smtplib is slow Python, and on a loaded machine the gap between
# two of its writes with no reply between them (TLS Finished, then EHLO) can
# outlast a short delay, so a TLS 1.3 session ticket arrives between them
# and counts as one more turn in one run and not the other. Ten times the
# gap such a machine shows keeps the two orders apart.
STOCK_DELAY = 0.05


def _turns(pf, repo, tls, caps, revs, extension, delay=DELAY, extra=None):
    port = listener_port(pf, tls, caps)
    with LatencyProxy(port, delay=delay) as proxy:
        args = email_args(revs=revs)
        if extension:
            args.append("--debug")
        code, out, err = hg.run_hg(repo, args, hgrc(pf, proxy.port, tls, extension, extra), timeout=60)
        assert code == 0, out + err
        conns = proxy.wait_closed(1, timeout=20)
    assert len(conns) == 1, conns  # the whole series on one connection
    if extension:
        # The transcript agrees with what the server offered.
        transcript = out + err
        if caps == "chunking":
            assert "C: BDAT" in transcript and "C: DATA" not in transcript, transcript
        else:
            assert "BDAT" not in transcript and "C: DATA" in transcript, transcript
    n = {"1": 1, "1:2": 2, "1:3": 3}[revs]
    pf.deliveries(3 * n, timeout=20)
    return conns[0]


def _per_message(pf, repo, tls, caps, extension, extra=None, delay=DELAY):
    one = _turns(pf, repo, tls, caps, "1", extension, delay=delay, extra=extra)
    three = _turns(pf, repo, tls, caps, "1:3", extension, delay=delay, extra=extra)
    turns = (three.turns - one.turns) / 2.0
    bursts = (three.client_bursts - one.client_bursts) / 2.0
    return turns, bursts, (one, three)


def _streamed(pf, repo, tls, caps):
    """Turns of a 1-, 2- and 3-message series, streamed."""
    return [_turns(pf, repo, tls, caps, revs, True, delay=STREAM_DELAY) for revs in ("1", "1:2", "1:3")]


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_streamed_series_costs_two_round_trips_after_setup_with_chunking(pf, pf_repo, tls):
    # The first message is confirmed alone (one round trip: envelope and
    # BDAT LAST in one write); the rest stream and are confirmed together
    # (one more), however many there are.
    one, two, three = _streamed(pf, pf_repo, tls, "chunking")
    setup = one.turns - 1
    assert two.turns - setup == 2, (one, two)
    assert three.turns - setup == 2, (one, three)


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_streamed_series_costs_one_round_trip_per_message_with_pipelining_only(pf, pf_repo, tls):
    # Each message waits only for its DATA's 354; the end of its body goes
    # with the next envelope (RFC 2920 3.1).
    one, two, three = _streamed(pf, pf_repo, tls, "pipelining")
    assert three.turns - two.turns == 1, (two, three)


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_one_round_trip_and_one_client_write_per_message_without_streaming(pf, pf_repo, tls):
    turns, bursts, conns = _per_message(
        pf, pf_repo, tls, "chunking", extension=True, extra={"smtp": {"streaming": "false"}}
    )
    assert turns == 1, conns
    assert bursts == 1, conns


@pytest.mark.parametrize("tls", ["starttls", "smtps"])
def test_two_round_trips_per_message_with_pipelining_only_without_streaming(pf, pf_repo, tls):
    turns, bursts, conns = _per_message(
        pf, pf_repo, tls, "pipelining", extension=True, extra={"smtp": {"streaming": "false"}}
    )
    assert turns == 2, conns


def test_lockstep_server_gets_one_command_at_a_time(pf, pf_repo):
    # RFC 2920: no pipelining unless offered. MAIL, 3 RCPT, DATA, body.
    turns, bursts, conns = _per_message(pf, pf_repo, "starttls", "lockstep", extension=True)
    assert turns == 3 + len(RECIPIENTS), conns


def test_counter_catches_a_lockstep_client_stock_hg(pf, pf_repo):
    # Stock hg (smtplib) on the same PIPELINING+CHUNKING listener waits after
    # MAIL, each RCPT, DATA and the body: the counter must see it.
    turns, bursts, conns = _per_message(
        pf, pf_repo, "starttls", "chunking", extension=False, delay=STOCK_DELAY
    )
    assert turns == 3 + len(RECIPIENTS), conns
    assert turns > 1
