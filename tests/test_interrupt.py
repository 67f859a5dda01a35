"""Timeouts and Ctrl-C (issue 3, part 3): `hg email` never hangs.

At each place the client waits for the network (connect, the greeting, the
TLS handshake, a blocked write of the message, the reply to the end of the
message), two things must end the wait: ``smtp.timeout`` (an abort naming
the stage and the setting, a few seconds after the timeout) and SIGINT
(Mercurial's ``interrupted!`` within one second, no traceback).

Connect is made to hang on loopback with a listening socket whose backlog is
full: the kernel drops further SYNs, so the client sits in SYN_SENT.
"""

import socket
import time

import pytest
from securesmtp.series import RESUME_BACKOFF

try:
    from support import hostile
    from support.hostile import GREETING, LOCKSTEP, SILENT, HostileServer, expect, send, serve, silent
except ImportError:  # tests/ imported as a package
    from tests.support import hostile
    from tests.support.hostile import GREETING, LOCKSTEP, SILENT, HostileServer, expect, send, serve, silent

#: Ctrl-C must end `hg email` within this many seconds.
INTERRUPT_BUDGET = 1.0


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return hostile.build_repo(str(tmp_path_factory.mktemp("interrupt-repo")), hostile.ordinary_commits())


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return hostile.Certificates(str(tmp_path_factory.mktemp("interrupt-pki")))


class FullBacklog:
    """A listening socket on loopback that never accepts, its backlog filled,
    so that a further connect hangs in SYN_SENT."""

    def __enter__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(s)
        time.sleep(0.1)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
            hangs = False
        except (socket.timeout, OSError):
            hangs = True
        finally:
            probe.close()
        if not hangs:
            self.__exit__()
            pytest.skip("this kernel completes connections to a full backlog")
        return self

    def __exit__(self, *exc):
        for s in self.fillers:
            s.close()
        self.listener.close()


def _handshake_script():
    ehlo = hostile.ehlo_reply(LOCKSTEP + ("STARTTLS",))
    # 220 to STARTTLS, then the ClientHello is read and never answered.
    return [send(GREETING), expect("EHLO", ehlo), expect("STARTTLS", b"220 2.0.0 Ready to start TLS\r\n"), silent()]


#: name -> (script, tls, revs kind, what the server must have seen before
#: the client is known to be waiting, stage named in the timeout abort)
WAITS = {
    "greeting": (lambda: [silent()], "none", "0", lambda s: s.accepted.is_set(), "greeting"),
    "handshake": (_handshake_script, "starttls", "0", lambda s: "STARTTLS" in s.verbs(), "TLS handshake"),
    "blocked-write": (
        lambda: [send(GREETING), serve(body=SILENT)],
        "none",
        "big",
        lambda s: "stopped reading the body" in s.events,
        "end of data",
    ),
    "end-of-data-reply": (
        lambda: [send(GREETING), serve(replies={".": SILENT})],
        "none",
        "0",
        lambda s: len(s.received) == 1,
        "end of data",
    ),
}


def _wait_for(predicate, server, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate(server):
            return
        time.sleep(0.02)
    raise AssertionError("the client never reached the wait: %s %s" % (server.commands, server.events))


def _config(port, tls, certs, timeout):
    return hostile.base_config(port=port, tls=tls, cacerts=certs.ca_file if tls != "none" else None, timeout=timeout)


def _revs(repo, kind):
    return str(repo.revs["big"]) if kind == "big" else kind


def assert_interrupted(run, since_signal):
    assert run.returncode != 0, str(run)
    assert "interrupted!" in run.stderr, str(run)
    assert "Traceback" not in run.output, str(run)
    assert since_signal <= INTERRUPT_BUDGET, "ended %.2fs after SIGINT\n%s" % (since_signal, run)


def assert_timed_out(run, *needles, max_seconds):
    assert run.returncode != 0, str(run)
    assert "Traceback" not in run.output, str(run)
    assert "abort:" in run.stderr, str(run)
    for needle in needles:
        assert needle in run.stderr, "%r not in stderr\n%s" % (needle, run)
    assert run.elapsed <= max_seconds, str(run)


# --------------------------------------------------------------------------
# Timeouts


#: After ``smtp.timeout`` seconds of silence the abort must follow; QUIT
#: afterwards may cost one more bounded wait. Seconds, from the moment the
#: client is known to be waiting.
TIMEOUT = 1
TIMEOUT_BUDGET = 2 * TIMEOUT + 1.5


@pytest.mark.parametrize("wait", sorted(WAITS))
def test_timeout_ends_each_wait_with_an_abort_naming_the_stage_and_setting(repo, certs, tmp_path, wait):
    make_script, tls, revs, ready, stage = WAITS[wait]
    with HostileServer(make_script(), tls_context=certs.good(), deadline=20) as server:
        started = time.monotonic()
        proc = hostile.start_hg_email(
            repo, _config(server.port, tls, certs, TIMEOUT), str(tmp_path), _revs(repo, revs)
        )
        try:
            _wait_for(ready, server)
            waiting = time.monotonic()
            run = hostile.finish(proc, timeout=30, started=started)
            since = time.monotonic() - waiting
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert_timed_out(run, "timed out", stage, "smtp.timeout", max_seconds=30)
    budget = TIMEOUT_BUDGET
    if wait == "blocked-write":
        # The body never ended, so the message was certainly not delivered:
        # the run tries again (the server is gone by then: each attempt is
        # refused at once) and then reports it not sent.
        assert run.stderr.count("; reconnecting to send 1 message(s) again") == len(RESUME_BACKOFF), run
        assert "\nmessage not sent: [PATCH] a large patch\n" in run.stderr, run
        assert "possibly delivered" not in run.stderr, run
        budget += sum(RESUME_BACKOFF)
    assert since <= budget, "ended %.2fs after the wait began\n%s" % (since, run)


def test_connect_that_never_completes_times_out(repo, certs):
    with FullBacklog() as backlog:
        run = hostile.hg_email(repo, _config(backlog.port, "none", certs, 1), "0")
    assert_timed_out(run, "cannot connect", "timed out", max_seconds=6)
    assert run.stderr.splitlines()[-1] == "(check smtp.host and smtp.port; smtp.timeout sets how long to wait)", run


# --------------------------------------------------------------------------
# Ctrl-C


def _interrupt(proc, started):
    time.sleep(0.3)  # well inside the wait
    signalled = time.monotonic()
    hostile.interrupt(proc)
    run = hostile.finish(proc, timeout=30, started=started)
    return run, time.monotonic() - signalled


def test_sigint_during_connect_ends_hg_email_within_a_second(repo, certs, tmp_path):
    with FullBacklog() as backlog:
        started = time.monotonic()
        proc = hostile.start_hg_email(repo, _config(backlog.port, "none", certs, 30), str(tmp_path))
        try:
            ours = [s.getsockname()[1] for s in backlog.fillers]
            assert hostile.wait_for_syn_sent(backlog.port, ours), "the client never tried to connect"
            run, since = _interrupt(proc, started)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert_interrupted(run, since)


@pytest.mark.parametrize("wait", sorted(WAITS))
def test_sigint_ends_hg_email_within_a_second(repo, certs, tmp_path, wait):
    make_script, tls, revs, ready, _ = WAITS[wait]
    # The server gives up after 8 s: a client that ignores SIGINT is freed
    # by that, and the test reports how late it ended.
    with HostileServer(make_script(), tls_context=certs.good(), deadline=8) as server:
        started = time.monotonic()
        proc = hostile.start_hg_email(repo, _config(server.port, tls, certs, 30), str(tmp_path), _revs(repo, revs))
        try:
            _wait_for(ready, server)
            if wait == "blocked-write":
                time.sleep(0.7)  # let the socket buffers fill
            run, since = _interrupt(proc, started)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert_interrupted(run, since)


# --------------------------------------------------------------------------
# Ctrl-C while a large message is still being uploaded

#: The message is this large, so the upload is far from done when SIGINT
#: comes: the slow reader takes about 160 KB a second.
HUGE_LINES = 20 * 1024 * 1024 // 40

UPLOAD_MODES = {
    "lockstep-data": hostile.LOCKSTEP,
    "pipelining": hostile.PIPELINING_ONLY,
    "chunking": hostile.PIPELINED,
}


@pytest.fixture(scope="module")
def huge_repo(tmp_path_factory):
    big = b"".join(b"a line of a very large patch %010d\n" % i for i in range(HUGE_LINES))
    return hostile.build_repo(str(tmp_path_factory.mktemp("huge-repo")), [("huge", b"a huge patch", {"huge.txt": big})])


@pytest.mark.parametrize(
    "mode, tls", [(mode, "none") for mode in sorted(UPLOAD_MODES)] + [("chunking", "starttls"), ("lockstep-data", "starttls")]
)
def test_sigint_during_a_large_upload_to_a_slow_reader_ends_hg_email_within_a_second(
    huge_repo, certs, tmp_path, mode, tls
):
    caps = UPLOAD_MODES[mode]
    with HostileServer([send(GREETING), serve(caps=caps, body=hostile.SLOW)], tls_context=certs.good(), deadline=120) as server:
        started = time.monotonic()
        proc = hostile.start_hg_email(huge_repo, _config(server.port, tls, certs, 30), str(tmp_path), "0")
        try:
            # Well into the upload, and far from its end.
            _wait_for(lambda s: s.slow_bytes > 512 * 1024, server, timeout=90)
            run, since = _interrupt(proc, started)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert server.slow_bytes < 10 * 1024 * 1024, "the upload was nearly done: %d bytes" % server.slow_bytes
    assert_interrupted(run, since)
