"""Assertions shared by the test modules."""

from . import hg


def _first_difference(got, expected):
    n = min(len(got), len(expected))
    for i in range(n):
        if got[i] != expected[i]:
            break
    else:
        i = n
    lo = max(0, i - 60)
    return (
        "first difference at byte %d of %d (expected %d bytes)\n"
        "  got:      %r\n  expected: %r" % (i, len(got), len(expected), got[lo:i + 60], expected[lo:i + 60])
    )


def assert_ok(result, what="hg email"):
    code, out, err = result
    assert code == 0, "%s failed with %d\nstdout:\n%s\nstderr:\n%s" % (what, code, out, err)
    assert "abort" not in err, err


def assert_series_delivered(server, series, mode=None, to=hg.TO, cc=hg.CC, sender=hg.SENDER_ADDR):
    """The server got each message of ``series`` (hg's own bytes, as in the
    mbox) byte for byte, with CRLF line endings, on one connection that
    ended with QUIT; after STARTTLS the client said EHLO again."""
    msgs = server.wait_for_messages(len(series), timeout=10)
    assert len(msgs) == len(series), "%d of %d messages arrived\n%s" % (
        len(msgs), len(series), server.transcript_text())
    for n, (got, expected) in enumerate(zip(msgs, series), 1):
        assert got.mail_from == sender, (n, got.mail_from)
        assert sorted(got.rcpt_tos) == sorted([to] + ([cc] if cc else [])), (n, got.rcpt_tos)
        wire = hg.to_wire(expected)
        assert got.content == wire, "message %d differs from hg's --mbox output:\n%s" % (
            n, _first_difference(got.content, wire))
    assert server.wait_for_command("QUIT", timeout=5), "no QUIT:\n" + server.transcript_text()
    server.wait_idle(5)
    verbs = server.verbs
    assert verbs[-1] == "QUIT", "QUIT is not the last command:\n" + server.transcript_text()
    assert server.connections == 1, "the series used %d connections" % server.connections
    if mode == "starttls":
        assert verbs[0] in ("EHLO", "HELO"), verbs
        assert "STARTTLS" in verbs, verbs
        after = verbs[verbs.index("STARTTLS") + 1:]
        assert after and after[0] == "EHLO", "no EHLO right after STARTTLS: %r" % verbs
    elif mode == "smtps":
        assert verbs[0] == "EHLO", verbs
        assert "STARTTLS" not in verbs, verbs


def assert_refused(result, server, status=255):
    """A refusal: the given exit status, an ``abort:`` on stderr, and nothing
    (no AUTH, no envelope, no message) reached the server."""
    code, out, err = result
    assert code == status, "exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (code, status, out, err)
    assert err.startswith("abort: "), "stderr does not start with 'abort: ':\n" + err
    server.assert_nothing_sent()


def assert_verification_refused(result, server, cert, cause, host="localhost", status=255):
    """Refused because the certificate ``cert`` did not verify, for ``cause``;
    the hint shows the certificate's real SHA-256 fingerprint and the
    ``[hostsecurity]`` line that would pin it."""
    assert_refused(result, server, status)
    err = result[2]
    assert "could not be verified" in err, err
    assert cause in err, "cause %r not in:\n%s" % (cause, err)
    assert cert.sha256 in err, "fingerprint %s not in:\n%s" % (cert.sha256, err)
    line = "%s:fingerprints = %s" % (host, cert.sha256)
    assert line in err, "%r not in:\n%s" % (line, err)
    hints = [l for l in err.splitlines()[1:] if l.startswith("(")]
    assert hints, "no hint line starting with '(':\n" + err
