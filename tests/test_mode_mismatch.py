"""smtp.tls that does not match the port: the user learns the cause in
seconds, not after smtp.timeout.

A port for implicit TLS (RFC 8314, usually 465) waits for the client's
TLS hello; a client set to ``starttls`` or ``none`` waits for a cleartext
greeting. Neither speaks until smtp.timeout ends the wait. The client says
what it waits for after 5 seconds of silence, and on port 465 says at once
that the setting does not fit the port.
"""

import select
import time

import pytest

try:
    from support import hostile
    from support.hostile import GREETING, HostileServer, send, serve, silent, sleep
except ImportError:  # tests/ imported as a package
    from tests.support import hostile
    from tests.support.hostile import GREETING, HostileServer, send, serve, silent, sleep

NOTICE = "has sent no greeting in 5 seconds"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return hostile.build_repo(str(tmp_path_factory.mktemp("mode-repo")), hostile.ordinary_commits())


def _stderr_lines_with_times(proc, limit):
    """Each line of ``proc``'s stderr with the seconds since the start at
    which it arrived; the process is killed after ``limit`` seconds."""
    try:
        return _read_lines(proc, limit)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def _read_lines(proc, limit):
    started = time.monotonic()
    lines, pending = [], b""
    fd = proc.stderr.fileno()
    while True:
        left = limit - (time.monotonic() - started)
        if left <= 0:
            raise AssertionError("hg email ran over %s s:\n%s" % (limit, b"".join(l for _, l in lines).decode()))
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        chunk = proc.stderr.read1(65536)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            lines.append((time.monotonic() - started, line + b"\n"))
    proc.wait(10)
    return [(t, l.decode()) for t, l in lines]


@pytest.mark.parametrize("tls", ["starttls", "none"])
def test_a_cleartext_mode_against_an_implicit_tls_port_says_why_within_seconds(repo, smtp_server, pki, tmp_path, tls):
    """A real implicit-TLS server (aiosmtpd with smtps) and smtp.tls set to
    starttls or none, smtp.timeout 12: after about 5 seconds a line says
    what is awaited and names smtp.tls = smtps; the abort comes at the
    timeout with the same advice; the server got no SMTP at all."""
    server = smtp_server(pki.rsa, "smtps")
    config = hostile.base_config(port=server.port, tls=tls, cacerts=pki.ca.cert, timeout=12)
    proc = hostile.start_hg_email(repo, config, str(tmp_path))
    lines = _stderr_lines_with_times(proc, limit=40)
    text = "".join(line for _, line in lines)
    notices = [(t, line) for t, line in lines if NOTICE in line]
    assert len(notices) == 1, text
    when, notice = notices[0]
    assert 4.5 <= when <= 10, (when, text)
    assert notice == (
        "127.0.0.1:%d has sent no greeting in 5 seconds: a port for implicit TLS "
        "(usually 465) waits for the client to speak first; if this is one, set "
        "smtp.tls = smtps. Waiting up to smtp.timeout (12 seconds)\n" % server.port
    ), text
    assert proc.returncode == 255, text
    assert "abort: timed out at greeting" in text, text
    assert lines[-1][0] >= 11.5, text
    assert "Traceback" not in text
    server.assert_nothing_sent(verbs=("EHLO", "HELO", "STARTTLS", "AUTH", "MAIL"))


def test_a_greeting_that_comes_after_a_pause_gets_the_notice_and_the_mail_goes(repo, tmp_path):
    """A slow server (greeting after 6 s, within smtp.timeout 15): the line
    about the wait appears and the message is still delivered."""
    with HostileServer([sleep(6), send(GREETING), serve()], deadline=30) as server:
        config = hostile.base_config(port=server.port, tls="none", timeout=15)
        proc = hostile.start_hg_email(repo, config, str(tmp_path))
        lines = _stderr_lines_with_times(proc, limit=40)
    text = "".join(line for _, line in lines)
    assert proc.returncode == 0, text
    assert sum(NOTICE in line for _, line in lines) == 1, text
    assert len(server.messages) == 1, server.commands


def _listen_465():
    """127.0.0.2:465 (all of 127/8 is loopback on Linux): a silent listener
    on the well-known port without taking 127.0.0.1's."""
    return HostileServer([silent()], host="127.0.0.2", port=465, deadline=20)


@pytest.mark.parametrize("tls", ["starttls", "none"])
def test_port_465_with_a_cleartext_mode_is_named_before_the_wait(repo, tmp_path, tls):
    """smtp.port = 465 with smtp.tls = starttls or none: the first line of
    output, before any wait, says the setting does not fit the port."""
    with _listen_465() as server:
        config = hostile.base_config(port=465, tls=tls, timeout=3)
        config["smtp"]["host"] = "127.0.0.2"
        proc = hostile.start_hg_email(repo, config, str(tmp_path))
        lines = _stderr_lines_with_times(proc, limit=30)
        assert server.accepted.is_set()
    text = "".join(line for _, line in lines)
    first_time, first = lines[0]
    assert first == (
        "warning: port 465 is for implicit TLS, where the server waits for the "
        "client to speak first, but smtp.tls = %s waits for the server's greeting; "
        "set smtp.tls = smtps\n" % tls
    ), text
    assert first_time < 2.5, text
    assert proc.returncode == 255 and "abort: timed out at greeting" in text, text


def test_port_465_with_smtps_has_no_warning(repo, pki, tmp_path):
    with _listen_465():
        config = hostile.base_config(port=465, tls="smtps", cacerts=pki.ca.cert, timeout=2)
        config["smtp"]["host"] = "127.0.0.2"
        proc = hostile.start_hg_email(repo, config, str(tmp_path))
        lines = _stderr_lines_with_times(proc, limit=30)
    text = "".join(line for _, line in lines)
    assert "port 465" not in text, text
    assert proc.returncode == 255, text


def test_the_run_itself_is_unchanged_when_the_greeting_is_prompt(repo, smtp_server, pki, tmp_path):
    server = smtp_server(pki.rsa, "starttls")
    config = hostile.base_config(port=server.port, tls="starttls", cacerts=pki.ca.cert, timeout=10)
    run = hostile.hg_email(repo, config)
    assert run.returncode == 0, str(run)
    assert NOTICE not in run.stderr and "port 465" not in run.stderr, str(run)

