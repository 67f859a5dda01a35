"""Hostile servers, faults and bad input (issue 3): the real `hg email` with
the extension against a scripted server that misbehaves on purpose.

Whatever the server does, `hg email` must end with an `abort:` naming the
stage, the server's code and text (control characters escaped) and a hint;
never a traceback, never a hang; no AUTH and no MAIL reach a server whose
channel was not secured; a series that fails part way says what was
accepted. Benign oddities (bare LF replies, a refused recipient among
several, hostile message content) must still deliver, exactly once, exactly
what `hg email --mbox` writes, with CRLF line endings on the wire.

Each scenario runs against each shape of server where the shape matters:
"lockstep" (no PIPELINING: one command, one reply), "pipelining"
(PIPELINING: the envelope and DATA in one write, then the body) and
"chunking" (PIPELINING and CHUNKING: the envelope and `BDAT n LAST` with the
message in one write).
"""

import re

import pytest

try:
    from support import hostile
    from support.hostile import (
        CLOSE,
        GREETING,
        LOCKSTEP,
        PASSWORD,
        PIPELINED,
        PIPELINING_ONLY,
        SILENT,
        USER,
        HostileServer,
        close,
        crlf,
        expect,
        flood,
        implicit_tls,
        send,
        serve,
        silent,
    )
except ImportError:  # tests/ imported as a package
    from tests.support import hostile
    from tests.support.hostile import (
        CLOSE,
        GREETING,
        LOCKSTEP,
        PASSWORD,
        PIPELINED,
        PIPELINING_ONLY,
        SILENT,
        USER,
        HostileServer,
        close,
        crlf,
        expect,
        flood,
        implicit_tls,
        send,
        serve,
        silent,
    )

SHAPES = {"lockstep": LOCKSTEP, "pipelining": PIPELINING_ONLY, "chunking": PIPELINED}
TO = ("bob@example.test",)
THREE = ("bob@example.test", "carol@example.test", "dave@example.test")


# --------------------------------------------------------------------------
# Fixtures


#: Commits whose content tries to end DATA early or smuggle a second
#: message (CVE-2023-51764 class). name -> (description bytes, {file: bytes})
SMUGGLING = {
    "lf-dot-lf": (
        b"smuggle: LF dot LF\n\n.\nMAIL FROM:<evil@example.test>\nRCPT TO:<victim@example.test>\n"
        b"DATA\nSubject: forged\n\nforged body\n.\n",
        {"s1.txt": b"before\n.\nafter\n"},
    ),
    "lf-dot-crlf": (
        b"smuggle: LF dot CRLF\n\n.\r\nMAIL FROM:<evil@example.test>\r\n",
        {"s2.txt": b"before\n.\r\nMAIL FROM:<evil@example.test>\r\n"},
    ),
    "crlf-dot-lf": (
        b"smuggle: CRLF dot LF\n\nline\r\n.\nMAIL FROM:<evil@example.test>\n",
        {"s3.txt": b"before\r\n.\nafter\r\n"},
    ),
    "bare-cr": (
        b"smuggle: bare CR\n\nx\r.\rMAIL FROM:<evil@example.test>\r",
        {"s4.txt": b"x\r.\rMAIL FROM:<evil@example.test>\ry\n"},
    ),
    "long-lines": (
        b"long lines\n\n" + b"D" * 2000 + b"\n",
        {"s5.txt": b"L" * 2000 + b"\n" + b".\n" + b"M" * 2000 + b"\n"},
    ),
    "no-final-newline": (
        b"final line without newline\n\n.\nlast",
        {"s6.txt": b"first\n.\nno newline at the end"},
    ),
    "nul-bytes": (
        b"NUL bytes\n\nnul\x00here\n.\x00\n\x00.\n",
        {"s7.txt": b"a\x00b\n.\n", "s7b.txt": b"text\x00\r\n.\r\n"},
    ),
    "dots": (
        b"leading dots\n\n.\n..\n...\n.hidden\n. \n",
        {"s8.txt": b".\n..\n.x\n"},
    ),
}


#: What each smuggling case must put into the message ``hg email --mbox``
#: writes, so that the case cannot pass vacuously.
SMUGGLING_NEEDLES = {
    "lf-dot-lf": b"\n.\nMAIL FROM:<evil@example.test>\n",
    "lf-dot-crlf": b"\n.\nMAIL FROM:<evil@example.test>\n",  # hg stores the CR as LF
    "crlf-dot-lf": b"\nline\n.\nMAIL FROM:<evil@example.test>\n",
    # The email generator turns the file's bare CRs into line breaks: the
    # diff line "+x<CR>.<CR>MAIL..." becomes a lone dot and a bare command.
    "bare-cr": b"\n+x\n.\nMAIL FROM:<evil@example.test>\ny\n",
    # Lines over 950 bytes make hg switch to quoted-printable.
    "long-lines": b"Content-Transfer-Encoding: quoted-printable",
    "no-final-newline": b"no newline at the end\n\\ No newline at end of file\n",
    "nul-bytes": b"nul\x00here\n.\x00\n\x00.\n",
    "dots": b"\n.\n..\n...\n.hidden\n.\n",  # hg strips the trailing space
}


@pytest.fixture(scope="session")
def mbox(repo, tmp_path_factory):
    """``mbox(rev)``: the messages ``hg email --mbox`` writes for ``rev``
    (made once per revision, with stock hg: no extension)."""
    cache = {}

    def get(rev):
        if rev not in cache:
            workdir = str(tmp_path_factory.mktemp("mbox"))
            cache[rev] = hostile.mbox_messages(repo, rev, TO, workdir=workdir)
        return cache[rev]

    return get


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return hostile.Certificates(str(tmp_path_factory.mktemp("hostile-pki")))


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """Four ordinary patches (revs 0-3), a large one and one commit per
    smuggling case; ``repo.revs[name]`` is its revision number."""
    base = str(tmp_path_factory.mktemp("hostile-repo"))
    smuggling = [(name, desc, files) for name, (desc, files) in SMUGGLING.items()]
    return hostile.build_repo(base, hostile.ordinary_commits() + smuggling)


# --------------------------------------------------------------------------
# Running a scenario and checking what the user sees


def scenario(
    repo,
    script,
    *,
    certs=None,
    ctx=None,
    tls="none",
    revs="0",
    to=TO,
    creds=False,
    timeout=3,
    extra=(),
    config=None,
    **server_kw,
):
    """Run ``script`` on a hostile server and the real ``hg email`` against
    it; returns (run, server) once both have finished."""
    with HostileServer(script, tls_context=ctx, **server_kw) as server:
        cfg = hostile.base_config(
            port=server.port,
            tls=tls,
            cacerts=certs.ca_file if certs else None,
            timeout=timeout,
            user=USER if creds else None,
            password=PASSWORD if creds else None,
        )
        for section, items in (config or {}).items():
            cfg.setdefault(section, {}).update(items)
        run = hostile.hg_email(repo, cfg, revs, to, extra)
        server.wait(timeout=5)
    assert not server.errors, "script errors %s\n%s" % (server.errors, run)
    return run, server


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def assert_abort(run, *needles, hint=True, max_seconds=10, unsecured=None):
    """Non-zero exit, no traceback, an `abort:` naming each of ``needles``,
    nothing from the server printed raw, and a hint line. With
    ``unsecured=server``: that server got no AUTH and no MAIL. The hint is
    checked last, so that a missing hint does not hide the other checks."""
    assert run.returncode != 0, str(run)
    assert "Traceback" not in run.output, str(run)
    assert "abort:" in run.stderr, str(run)
    for needle in needles:
        # A tuple: any one of these will do.
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(o in run.stderr for o in options), "%r not in stderr\n%s" % (needle, run)
    assert not CONTROL.search(run.stderr), "raw control character in stderr\n%r" % run.stderr
    assert run.elapsed < max_seconds, str(run)
    if unsecured is not None:
        assert_nothing_sent(unsecured)
    if hint:
        assert re.search(r"^\(.+", run.stderr, re.M), "no hint line\n%s" % run


def assert_success(run):
    assert run.returncode == 0, str(run)
    assert "Traceback" not in run.output, str(run)
    assert "abort:" not in run.stderr, str(run)


def assert_nothing_sent(server):
    """The channel was never secured: no credential and no message went out."""
    verbs = server.verbs()
    assert "AUTH" not in verbs, server.commands
    assert "MAIL" not in verbs, server.commands
    assert not server.received


# --------------------------------------------------------------------------
# 1. STARTTLS stripping and response injection


def test_starttls_not_offered_aborts_before_auth_or_mail(repo, certs):
    run, server = scenario(
        repo,
        [send(GREETING), serve(caps=LOCKSTEP)],  # no TLS context: no STARTTLS
        certs=certs,
        tls="starttls",
        creds=True,
    )
    assert_nothing_sent(server)
    # Still in step, so a polite QUIT (RFC 5321 4.1.1.10), and nothing else.
    assert server.verbs() == ["EHLO", "QUIT"]
    assert_abort(run, "does not offer STARTTLS", "smtp.tls")


def test_starttls_refused_with_454_aborts_before_auth_or_mail(repo, certs):
    run, server = scenario(
        repo,
        [send(GREETING), serve(replies={"STARTTLS": b"454 4.7.0 TLS not available due to local problem\r\n"})],
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
    )
    assert_nothing_sent(server)
    assert_abort(run, "STARTTLS", "454", "TLS not available due to local problem")


def test_forged_reply_after_starttls_220_is_refused_as_injection(repo, certs):
    forged = b"220 2.0.0 Ready to start TLS\r\n250-hostile.test\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"
    run, server = scenario(
        repo,
        [
            send(GREETING),
            expect("EHLO", hostile.ehlo_reply(LOCKSTEP + ("STARTTLS",))),
            expect("STARTTLS", forged),
            silent(),
        ],
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
    )
    assert_nothing_sent(server)
    # Not even a TLS ClientHello followed the injected bytes.
    assert bytes(server.raw).endswith(b"STARTTLS\r\n"), bytes(server.raw)[-64:]
    assert_abort(run, "STARTTLS", "unexpected bytes")


def test_unsolicited_reply_before_ehlo_is_refused(repo, certs):
    run, server = scenario(
        repo,
        [send(GREETING + b"250-hostile.test\r\n250 AUTH PLAIN\r\n"), serve()],
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
    )
    assert_nothing_sent(server)
    assert "STARTTLS" not in server.verbs()
    assert_abort(run, "EHLO", "before the command")


def test_early_220_pushed_before_starttls_is_refused(repo, certs):
    """The server answers STARTTLS before it is asked (pre-handshake
    injection): the client must not read it as the answer."""
    ehlo = hostile.ehlo_reply(LOCKSTEP + ("STARTTLS",))
    run, server = scenario(
        repo,
        [send(GREETING), expect("EHLO", ehlo + b"220 2.0.0 Ready to start TLS\r\n"), silent()],
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
    )
    assert_nothing_sent(server)
    assert server.verbs() == ["EHLO"]
    assert_abort(run, "STARTTLS", "before the command")


# --------------------------------------------------------------------------
# 2. Certificate faults and old TLS

CERT_FAULTS = {
    "wrong-name": ("other_name", "mail.example.org"),
    "missing-intermediate": ("missing_intermediate", None),
    "expired": ("expired", None),
    "unknown-ca": ("unknown_ca", None),
    "self-signed": ("self_signed", None),
}


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
@pytest.mark.parametrize("fault", sorted(CERT_FAULTS))
def test_certificate_fault_aborts_before_any_command_over_tls(repo, certs, fault, mode):
    method, _ = CERT_FAULTS[fault]
    ctx = getattr(certs, method)()
    if mode == "starttls":
        script = [send(GREETING), serve()]
    else:
        script = [implicit_tls(), send(GREETING), serve()]
    run, server = scenario(repo, script, certs=certs, ctx=ctx, tls=mode, creds=True)
    assert_nothing_sent(server)
    # Nothing at all after the handshake: not even the second EHLO.
    assert server.verbs() == (["EHLO", "STARTTLS"] if mode == "starttls" else [])
    assert not any(e.startswith("tls established") for e in server.events), server.events
    assert_abort(run, "could not be verified", "sha256:", "fingerprints")


def test_chain_with_intermediate_is_accepted(repo, certs):
    """The control for missing-intermediate: the same leaf with its chain."""
    run, server = scenario(
        repo, [send(GREETING), serve()], certs=certs, ctx=certs.chain_with_intermediate(), tls="starttls", creds=True
    )
    assert_success(run)
    assert len(server.messages) == 1
    assert server.verbs()[:4] == ["EHLO", "STARTTLS", "EHLO", "AUTH"]


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_server_with_only_tls_below_1_2_is_refused(repo, certs, mode):
    ctx = certs.legacy_tls_only()
    if ctx is None:
        pytest.skip("this Python's OpenSSL cannot offer TLS 1.0/1.1 even at SECLEVEL=0")
    script = [send(GREETING), serve()] if mode == "starttls" else [implicit_tls(), send(GREETING), serve()]
    run, server = scenario(repo, script, certs=certs, ctx=ctx, tls=mode, creds=True)
    assert_nothing_sent(server)
    assert any(e.startswith("tls failed") for e in server.events), server.events
    assert_abort(run, "TLS 1.2", "minimumprotocol")


# --------------------------------------------------------------------------
# 3. Malformed replies


@pytest.mark.parametrize("stage", ["greeting", "EHLO"])
def test_megabyte_reply_line_without_crlf_is_cut_off(repo, stage):
    if stage == "greeting":
        script = [flood(b"A" * 1024, prefix=b"220 ")]
    else:
        script = [send(GREETING), expect("EHLO"), flood(b"A" * 1024, prefix=b"250-")]
    run, server = scenario(repo, script)
    # The client hung up long before the server's 20 MB cap (what it did
    # send went into loopback's socket buffers, a few MB at most).
    assert server.flooded < 8 * 1024 * 1024, server.flooded
    assert_abort(run, stage, "longer than", max_seconds=5)


def test_endless_multiline_reply_is_cut_off(repo):
    run, server = scenario(repo, [send(GREETING), expect("EHLO"), flood(b"250-hostile.test says more\r\n")])
    assert server.flooded < 8 * 1024 * 1024, server.flooded
    assert_abort(run, "EHLO", "more than", "lines", max_seconds=5)


def test_multiline_reply_with_differing_codes_is_refused(repo):
    run, server = scenario(
        repo, [send(GREETING), expect("EHLO", b"250-hostile.test\r\n550-PIPELINING\r\n250 8BITMIME\r\n"), silent()]
    )
    assert_nothing_sent(server)
    assert_abort(run, "EHLO", "mixes codes 250 and 550")


def test_refusal_text_with_non_utf8_and_control_bytes_is_shown_escaped(repo):
    text = b"5.7.1 caf\xe9 \x1b[2J\x1b]0;pwned\x07 rejected\xff"
    run, server = scenario(repo, [send(GREETING), serve(replies={"MAIL": b"550 " + text + b"\r\n"})])
    assert "\x1b" not in run.output
    assert_abort(run, "MAIL FROM", "550", "caf\\xe9", "\\x1b[2J", "\\x07 rejected\\xff")


def test_greeting_and_capabilities_with_non_utf8_bytes_still_deliver(repo):
    run, server = scenario(
        repo,
        [
            send(b"220 h\xf6st\xff ESMTP \x1b[31m\r\n"),
            expect("EHLO", b"250-h\xf6st\r\n250-X-\xff\xfe\r\n250 8BITMIME\r\n"),
            serve(),
        ],
    )
    assert_success(run)
    assert len(server.messages) == 1


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_server_using_bare_lf_line_endings_still_delivers(repo, shape):
    """Replies ending in bare LF are tolerated (real servers send them);
    the client itself still sends CRLF."""
    run, server = scenario(repo, [send(b"220 hostile.test ESMTP\n"), serve(caps=SHAPES[shape], line_ending=b"\n")])
    assert_success(run)
    assert len(server.messages) == 1
    assert b"\n" not in bytes(server.raw).replace(b"\r\n", b"")


def test_bare_lf_inside_a_reply_that_hides_a_non_reply_line_is_refused(repo):
    """``250 ok`` ends at the bare LF; the rest is not a reply. The client may
    notice at the next read (a malformed line) or before its next command
    (bytes it did not ask for): either way it stops."""
    run, server = scenario(repo, [send(GREETING), serve(replies={"MAIL": b"250 ok\nMAIL FROM:<x> accepted\r\n"})])
    assert "DATA" not in server.verbs() and "BDAT" not in server.verbs(), server.commands
    assert not server.received
    assert_abort(run, "bad reply from the server", "message not sent")


# --------------------------------------------------------------------------
# 4. Silence, half replies and closed connections


def test_server_that_accepts_and_never_speaks_times_out(repo):
    run, server = scenario(repo, [silent()], timeout=1)
    assert_abort(run, "timed out", "greeting", "smtp.timeout", max_seconds=5)
    # A port for implicit TLS is silent this way: the hint names smtps, and
    # a timeout under a second is not shown as "0 seconds".
    assert "smtp.tls = smtps" in run.stderr, str(run)
    assert "for 1 second" in run.stderr, str(run)


@pytest.mark.parametrize("then", ["silent", "close"])
def test_server_that_stops_mid_reply(repo, then):
    script = [send(GREETING), expect("EHLO", b"250-hostile.test\r\n250-PIPEL"), silent() if then == "silent" else close()]
    run, server = scenario(repo, script, timeout=1)
    if then == "silent":
        assert_abort(run, "timed out", "EHLO", "smtp.timeout", max_seconds=5)
    else:
        assert_abort(run, "closed the connection", "EHLO")
    assert_nothing_sent(server)


# (where, shape) -> the stage the client reports
CLOSES = {
    ("after MAIL", "lockstep"): "MAIL FROM",
    ("after MAIL", "pipelining"): "MAIL FROM",
    ("after MAIL", "chunking"): "MAIL FROM",
    ("after DATA", "lockstep"): "DATA",
    ("after DATA", "pipelining"): "DATA",
    # With CHUNKING there is no DATA command: the close comes where the reply
    # to BDAT (the verdict on the data) is awaited.
    ("after DATA", "chunking"): ("DATA", "end of data"),
    ("mid-body", "lockstep"): "end of data",
    ("mid-body", "pipelining"): "end of data",
    ("mid-body", "chunking"): ("DATA", "end of data"),
}


@pytest.mark.parametrize("where,shape", sorted(CLOSES))
def test_server_that_closes_during_the_transaction(repo, where, shape):
    caps = SHAPES[shape]
    if where == "after MAIL":
        step = serve(caps=caps, replies={"MAIL": CLOSE})
    elif where == "after DATA":
        step = serve(caps=caps, replies={"DATA": CLOSE})
    else:
        step = serve(caps=caps, body=CLOSE)
    # The large message for mid-body, so that the server closes while the
    # client is still writing; a small one otherwise, so that the client's
    # one write completes and the close is seen where it happened.
    revs = str(repo.revs["big"]) if where == "mid-body" else "0"
    run, server = scenario(repo, [send(GREETING), step], revs=revs)
    assert not server.messages
    # Once the whole message went out (one write with CHUNKING) the server
    # may have queued it before the close: that is reported, not resent.
    assert_abort(run, "closed the connection", CLOSES[where, shape], ("message not sent", "possibly delivered"))


# --------------------------------------------------------------------------
# 5. Refusals at every stage

TEMP = {
    "greeting": b"421 4.3.2 Service not available, closing channel\r\n",
    "EHLO": b"451 4.3.0 EHLO temporarily unavailable\r\n",
    "AUTH": b"454 4.7.0 Temporary authentication failure\r\n",
    "MAIL": b"451 4.3.0 Sender temporarily rejected\r\n",
    "DATA": b"451 4.3.0 DATA temporarily refused\r\n",
    ".": b"451 4.3.0 Message temporarily deferred\r\n",
}
PERM = {
    "greeting": b"554 5.3.2 No SMTP service here\r\n",
    "EHLO": b"550 5.5.0 EHLO refused\r\n",
    "AUTH": b"535 5.7.8 Authentication credentials invalid\r\n",
    "MAIL": b"550 5.7.1 Sender rejected\r\n",
    "DATA": b"554 5.5.1 DATA refused\r\n",
    ".": b"554 5.7.1 Message content rejected\r\n",
}
#: What the user reads as the stage, per shape (CHUNKING carries the
#: message in BDAT, so a refused DATA and a refused end of data look alike).
STAGE = {
    "greeting": {"lockstep": "greeting"},
    "EHLO": {"lockstep": "EHLO"},
    "AUTH": {"lockstep": "AUTH"},
    "MAIL": {"lockstep": "MAIL FROM", "pipelining": "MAIL FROM", "chunking": "MAIL FROM"},
    "DATA": {"lockstep": "DATA", "pipelining": "DATA", "chunking": "end of data"},
    ".": {"lockstep": "end of data", "pipelining": "end of data", "chunking": "end of data"},
}
REFUSALS = [
    (stage, kind, shape)
    for stage in STAGE
    for kind in ("4xx", "5xx")
    for shape in sorted(STAGE[stage])
]


def _refusal_script(stage, reply, caps):
    if stage == "greeting":
        return [send(reply), silent()]
    replies = {stage: reply}
    if stage == "EHLO":
        replies["HELO"] = reply  # a refused EHLO falls back to HELO
    return [send(GREETING), serve(caps=caps, replies=replies)]


@pytest.mark.parametrize("stage,kind,shape", REFUSALS)
def test_refusal_at_each_stage_is_reported_with_stage_code_and_text(repo, certs, stage, kind, shape):
    reply = (TEMP if kind == "4xx" else PERM)[stage]
    run, server = scenario(
        repo,
        _refusal_script(stage, reply, SHAPES[shape]),
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
    )
    code, text = reply.decode().strip().split(" ", 1)
    assert not server.messages
    if stage in ("greeting", "EHLO", "AUTH"):
        assert "MAIL" not in server.verbs()
    if stage in ("MAIL", "DATA", "."):
        # The refusal, its patch and the reply on one line.
        headline = run.stderr.splitlines()[0]
        want = "abort: the server refused [PATCH] patch one at %s: %s" % (STAGE[stage][shape], reply.decode().strip())
        assert headline == want, str(run)
    assert_abort(run, STAGE[stage][shape], code, text)


STAGE_421 = {
    "greeting": "greeting",
    "EHLO": "EHLO",
    "STARTTLS": "STARTTLS",
    "AUTH": "AUTH",
    "MAIL": "MAIL FROM",
    "RCPT": "recipient",
    "DATA": "DATA",
    ".": "end of data",
}
#: 421 before the transaction in lockstep; in the transaction in every shape
#: (pipelined, the 421 comes while replies to later commands are awaited).
CASES_421 = [(stage, "lockstep") for stage in ("greeting", "EHLO", "STARTTLS", "AUTH")] + [
    (stage, shape) for stage in ("MAIL", "RCPT", "DATA", ".") for shape in sorted(SHAPES)
]


@pytest.mark.parametrize("stage,shape", CASES_421)
def test_421_at_any_point_ends_the_session_with_the_servers_text(repo, certs, stage, shape):
    reply = b"421 4.4.2 hostile.test Error: timeout exceeded, closing\r\n"
    if stage == "greeting":
        script = [send(reply), silent()]
    else:
        script = [send(GREETING), serve(caps=SHAPES[shape], replies={stage: reply})]
    run, server = scenario(repo, script, certs=certs, ctx=certs.good(), tls="starttls", creds=True)
    expected_stage = STAGE_421[stage]
    if stage == "DATA" and shape == "chunking":
        expected_stage = "end of data"
    assert not server.messages
    assert_abort(run, expected_stage, "421", "timeout exceeded, closing")


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("code", ["450 4.2.1 Mailbox busy", "550 5.1.1 No such user"])
def test_one_refused_recipient_among_several_is_named_and_the_rest_get_the_message(repo, shape, code):
    reply = code.encode() + b"\r\n"
    run, server = scenario(
        repo, [send(GREETING), serve(caps=SHAPES[shape], replies={"RCPT": [None, reply]})], to=THREE
    )
    assert_success(run)
    assert "carol@example.test" in run.stderr and code in run.stderr, str(run)
    assert len(server.messages) == 1


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_recipient_refused_names_each_address(repo, shape):
    refusals = [b"550 5.1.1 <%s> unknown\r\n" % a.encode() for a in THREE]
    run, server = scenario(repo, [send(GREETING), serve(caps=SHAPES[shape], replies={"RCPT": refusals})], to=THREE)
    assert not server.messages
    assert_abort(run, "recipient", *["%s: 550 5.1.1 <%s> unknown" % (a, a) for a in THREE])


# --------------------------------------------------------------------------
# 6. A series where message 2 of 4 is refused

SERIES_FAULTS = {
    "end of data": {".": [None, b"554 5.7.1 Message 2 rejected as spam\r\n"]},
    "MAIL FROM": {"MAIL": [None, b"451 4.7.1 Sender throttled, try later\r\n"]},
    "recipient": {"RCPT": [None, b"550 5.1.1 Mailbox unavailable\r\n"]},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("where", sorted(SERIES_FAULTS))
def test_series_with_message_2_of_4_refused_reports_it_and_delivers_the_rest(repo, where, shape):
    """The refusal is reported against patch 2; patches 1, 3 and 4 stand;
    the command fails and prints the line that sends patch 2 alone."""
    replies = SERIES_FAULTS[where]
    run, server = scenario(repo, [send(GREETING), serve(caps=SHAPES[shape], replies=replies)], revs="0:3")
    text = list(replies.values())[0][1].decode().strip()
    assert len(server.messages) == 3, server.commands
    for n, name in ((1, "one"), (3, "three"), (4, "four")):
        assert any(b"Subject: [PATCH %d of 4] patch %s" % (n, name.encode()) in m for m in server.messages)
    report = run.stderr.split("abort:", 1)[1]
    assert "the server accepted 3 other message(s)" in report, str(run)
    headline = run.stderr.splitlines()[0]
    if where == "recipient":
        assert headline == "abort: the server refused every recipient of [PATCH 2 of 4] patch two:", str(run)
        assert run.stderr.splitlines()[1] == "  bob@example.test: %s" % text, str(run)
    else:
        assert headline == "abort: the server refused [PATCH 2 of 4] patch two at %s: %s" % (where, text), str(run)
    assert "message not sent" not in report, str(run)
    line = re.search(r"^to send the messages not sent: (hg email .*)$", report, re.M)
    assert line, str(run)
    assert re.findall(r" -r (\S+)", line.group(1)) == [hostile.node(repo, 1)[:12]], line.group(1)
    assert_abort(run, where, text)


# --------------------------------------------------------------------------
# 7. Message content that tries to smuggle a second message


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("case", sorted(SMUGGLING))
def test_smuggling_content_arrives_as_one_message_exactly_as_mbox_writes_it(repo, mbox, case, shape):
    rev = str(repo.revs[case])
    expected = mbox(rev)
    assert len(expected) == 1
    assert SMUGGLING_NEEDLES[case] in expected[0], expected[0]
    run, server = scenario(repo, [send(GREETING), serve(caps=SHAPES[shape])], revs=rev)
    assert_success(run)
    assert server.verbs().count("MAIL") == 1, server.commands
    assert len(server.received) == 1
    assert server.messages[0] == crlf(expected[0])
    for body in server.bodies:  # after DATA: the raw wire body
        content = body[:-3]
        if b"\n." in expected[0]:
            assert b"\r\n.." in content, "a line starting with a dot was not stuffed"
        assert b"\r\n.\r\n" not in content and not content.startswith(b".\r\n")
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", content) is None, "bare CR or LF on the wire"


# --------------------------------------------------------------------------
# 8. AUTH over cleartext


def test_auth_over_cleartext_is_allowed_to_a_loopback_server(repo):
    run, server = scenario(repo, [send(GREETING), serve()], creds=True)
    assert_success(run)
    assert "AUTH" in server.verbs()
    assert len(server.messages) == 1


@pytest.mark.parametrize("allow", [False, True])
def test_auth_over_cleartext_to_a_non_loopback_address(repo, allow):
    """The only test whose server listens beyond loopback: on this machine's
    own non-loopback address, accepting connections from that address only
    (the traffic never leaves the host)."""
    addr = hostile.local_non_loopback_address()
    if addr is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    with HostileServer([send(GREETING), serve()], host=addr, allowed_peer=addr) as server:
        cfg = hostile.base_config(port=server.port, user=USER, password=PASSWORD)
        cfg["smtp"]["host"] = addr
        if allow:
            cfg["smtp"]["allow-cleartext-auth"] = "yes"
        run = hostile.hg_email(repo, cfg, "0", TO)
        server.wait(5)
    if allow:
        assert_success(run)
        assert "AUTH" in server.verbs()
        assert len(server.messages) == 1
    else:
        assert_abort(run, "refusing to send the password", "unencrypted", "allow-cleartext-auth")
        assert_nothing_sent(server)


# --------------------------------------------------------------------------
# 9. The --debug transcript


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("shape", ["lockstep", "chunking"])
def test_debug_transcript_redacts_auth_and_shows_the_body_as_a_byte_count(repo, certs, mbox, shape, mechanism):
    caps = tuple(c for c in SHAPES[shape] if not c.startswith("AUTH")) + ("AUTH " + mechanism,)
    rev = str(repo.revs["lf-dot-lf"])
    expected = mbox(rev)[0]
    run, server = scenario(
        repo,
        [send(GREETING), serve(caps=caps)],
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
        revs=rev,
        extra=["--debug"],
    )
    assert_success(run)
    out = run.output
    assert "C: EHLO " in out and "S: 220 hostile.test ESMTP ready" in out, out
    assert "C: STARTTLS" in out and "S: 250 " in out, out
    if mechanism == "PLAIN":
        assert "C: AUTH PLAIN <redacted>" in out, out
    else:
        assert "C: AUTH LOGIN" in out and out.count("C: <redacted>") == 2, out
    assert "C: MAIL FROM:<%s>" % hostile.SENDER in out
    m = re.search(r"C: <message (body|data), (\d+) bytes>", out)
    assert m, out
    size = int(m.group(2))
    assert size in (len(expected), len(crlf(expected))), (size, len(expected))
    # The message itself is not in the transcript.
    assert "MAIL FROM:<evil@example.test>" not in out
    assert "forged body" not in out
    # The server did get the real AUTH payload (so the redaction is real).
    auth_lines = [c for c in server.commands if c.upper().startswith("AUTH")]
    assert auth_lines, server.commands


def test_no_run_printed_a_secret():
    """Every `hg email` run of this module went through the secret check;
    this reports how many, and fails if none ran (a broken helper)."""
    if not hostile.ALL_RUNS:
        pytest.skip("no hg run in this session")
    for run in hostile.ALL_RUNS:
        hostile.assert_no_secrets(run)


# --------------------------------------------------------------------------
# 6. The session at its edges

FORGED_EHLO = b"250-hostile.test\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"


@pytest.mark.parametrize("after", ["220", "client-hello"])
def test_injection_in_a_separate_segment_after_starttls_is_reported_as_injection(repo, certs, after):
    """The forged replies come in their own TCP segment, 0.2 s after the 220
    or after the client's ClientHello: the client reads them where a TLS
    record belongs, and must say injection, not "wrong port"."""
    wait = [hostile.sleep(0.2)] if after == "220" else [hostile.read_client_hello()]
    run, server = scenario(
        repo,
        [
            send(GREETING),
            expect("EHLO", hostile.ehlo_reply(LOCKSTEP + ("STARTTLS",))),
            expect("STARTTLS", b"220 2.0.0 Ready to start TLS\r\n"),
            *wait,
            send(FORGED_EHLO),
            silent(),
        ],
        certs=certs,
        ctx=certs.good(),
        tls="starttls",
        creds=True,
    )
    assert_nothing_sent(server)
    assert "QUIT" not in server.verbs()
    assert_abort(run, "STARTTLS", "unexpected bytes", "man in the middle")
    assert "plain SMTP" not in run.stderr and "port" not in run.stderr.split("(")[0], run.stderr


def test_smtps_to_a_port_that_speaks_plain_smtp_says_so(repo, certs):
    run, server = scenario(repo, [send(GREETING), silent()], certs=certs, ctx=certs.good(), tls="smtps")
    assert_abort(run, "SMTP instead of TLS", "smtp.tls")
    assert "injection" not in run.stderr


#: Dribbled one byte at a time, this greeting takes 5 s or more to arrive.
SLOW_GREETING = b"220 hostile.test ESMTP " + b"a greeting that never ends " * 4 + b"\r\n"


@pytest.mark.parametrize("interval", [0.5, 0.05])
@pytest.mark.parametrize("stage", ["greeting", "EHLO"])
def test_a_server_that_dribbles_a_reply_cannot_outlast_the_timeout(repo, stage, interval):
    """One byte every half second (slower than the client's 100 ms wait
    slices) or every 50 ms (faster: every read returns data)."""
    timeout = 2
    slow = SLOW_GREETING if stage == "greeting" else SLOW_GREETING.replace(b"220", b"250")
    if stage == "greeting":
        script = [hostile.dribble(slow, interval), silent()]
    else:
        script = [send(GREETING), expect("EHLO"), hostile.dribble(slow, interval), silent()]
    run, server = scenario(repo, script, timeout=timeout)
    # Each byte came well inside any idle timeout; the reply as a whole did not.
    assert 2 < server.dribbled < len(SLOW_GREETING) - 2, server.dribbled
    assert_abort(run, "timed out", stage, "smtp.timeout", max_seconds=timeout + 4)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_size_states_the_message_size_on_the_wire(repo, shape):
    """RFC 1870: SIZE= counts CRLF line endings and not dot-stuffing; hg's
    message has LF endings, so its own length would be short by a line count."""
    run, server = scenario(repo, [send(GREETING), serve(caps=SHAPES[shape])], revs=str(repo.revs["dots"]))
    assert_success(run)
    [mail] = [c for c in server.commands if c.upper().startswith("MAIL")]
    size = int(re.search(r"SIZE=(\d+)", mail).group(1))
    [message] = server.messages
    assert b"\r\n." in message  # dot-stuffing had something to do
    assert size == len(message), (size, len(message))


@pytest.mark.parametrize(
    "reply, needle",
    [
        (b"220 hostile.test ESMTP again\r\n", "unexpected reply to EHLO: 220"),
        (b"221 2.0.0 Bye\r\n", "ended the session at EHLO: 221"),
    ],
)
@pytest.mark.parametrize("tls", ["none", "starttls"])
def test_only_250_is_a_successful_ehlo(repo, certs, reply, needle, tls):
    run, server = scenario(
        repo,
        [send(GREETING), expect("EHLO", reply), serve()],
        certs=certs,
        ctx=certs.good(),
        tls=tls,
        creds=True,
    )
    assert_nothing_sent(server)
    assert_abort(run, needle)
    assert "does not offer STARTTLS" not in run.stderr, run.stderr


QUIT_CASES = {
    # name -> (script before serve(), tls, whether QUIT is owed)
    "greeting-554": ([send(b"554 5.3.2 no service for you\r\n")], "none", True),
    "starttls-not-offered": ([send(GREETING)], "starttls-no-offer", True),
    "starttls-454": ([send(GREETING)], "starttls-454", True),
    "greeting-421": ([send(b"421 4.3.2 going away\r\n")], "none", False),
    "ehlo-421": ([send(GREETING), expect("EHLO", b"421 4.3.2 going away\r\n")], "none", False),
}


@pytest.mark.parametrize("case", sorted(QUIT_CASES))
def test_an_abort_during_connect_says_quit_only_where_the_connection_is_in_step(repo, certs, case):
    before, tls, owed = QUIT_CASES[case]
    replies = {"STARTTLS": b"454 4.7.0 TLS not available\r\n"} if tls == "starttls-454" else None
    run, server = scenario(
        repo,
        before + [serve(replies=replies, starttls=tls != "starttls-no-offer")],
        certs=certs,
        ctx=certs.good(),
        tls="starttls" if tls.startswith("starttls") else tls,
        creds=True,
    )
    assert_nothing_sent(server)
    assert_abort(run, ("554", "STARTTLS", "421"))
    assert server.saw("QUIT") == owed, server.commands
    if owed:
        # In step: QUIT is the last thing said, and it is said once.
        assert server.verbs()[-1] == "QUIT" and server.verbs().count("QUIT") == 1, server.commands
