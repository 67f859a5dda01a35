"""A session used after ``quit`` raises an ``SmtpError`` like every other:
made by the core's one map from its errors, with every attribute
``_core.pyi`` declares, so the shim's reads of ``.kind`` (series.py's
``_resumable``, errors.py's hint) work instead of raising AttributeError.

Through ``securesmtp._core`` directly, against a real aiosmtpd server on
loopback (plain SMTP: the closed session is the point, not TLS).
"""

import pytest
from securesmtp import _core

# Every attribute SmtpError has in _core.pyi, and its value when the error
# has none to give.
_EMPTY = {
    "stage": None,
    "setting": None,
    "code": None,
    "server_text": None,
    "fingerprint": None,
    "spki": None,
    "pinned": None,
    "refused": [],
    "mechanism": None,
    "detail": None,
}


@pytest.fixture
def closed(smtp_server):
    server = smtp_server(mode="plain")
    session = _core.connect(
        host="127.0.0.1",
        port=server.port,
        security="none",
        hello_name="client.securesmtp.test",
        timeout=10,
    )
    session.quit()
    return session


_CALLS = {
    "submit": lambda s: s.submit(0, "alice@example.test", ["bob@example.test"], b"Subject: x\r\n\r\nbody\r\n"),
    "authenticate": lambda s: s.authenticate("alice", "Sw0rdfish-Secret!"),
    "auth_mechanism": lambda s: s.auth_mechanism(),
    "set_timeout": lambda s: s.set_timeout(30),
    "info": lambda s: s.info(),
}


@pytest.mark.parametrize("method", sorted(_CALLS))
def test_a_closed_session_raises_an_smtp_error_with_its_kind_and_every_attribute(closed, method):
    with pytest.raises(_core.SmtpError) as info:
        _CALLS[method](closed)
    exc = info.value
    assert exc.kind == _core.Kind.SESSION_CLOSED
    assert str(exc) == "the SMTP session is closed"
    for name, empty in _EMPTY.items():
        assert getattr(exc, name) == empty, name


def test_a_closed_session_still_confirms_nothing_and_has_no_verdict_without_raising(closed):
    assert closed.confirm() == ([], None)
    assert closed.verdict() is None
    closed.quit()
