"""Shared fixtures for securesmtp's end-to-end tests.

Real parts: the real ``hg`` from .venv running ``hg email`` with the
extension, real aiosmtpd servers on 127.0.0.1, real certificates made at test
time (session-scoped, made once per run).
"""

import os
import re
import sys

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from support import hg, pki as pkimod, servers  # noqa: E402


#: Skips that are not a failure, even in CI (``CI=true``), by the text of
#: their reason. Every other skip fails a CI run: a test that does not run
#: proves nothing, and the cases that need root, IPv6 loopback, ``unshare``
#: or the Mercurial sdist are meant to run there.
ALLOWED_SKIPS = {
    # test_parity_generated's summary reports on the generated run of the
    # same session; with ``-k`` picking other tests there is none.
    "the generated test did not run (deselected)",
    # test_hostile's check of every hg run's output, when ``-k`` ran none.
    "no hg run in this session",
}

_SKIPPED = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.append((report.nodeid, reason.replace("Skipped: ", "", 1)))


def pytest_sessionfinish(session, exitstatus):
    unexpected = [(n, r) for n, r in _SKIPPED if r not in ALLOWED_SKIPS]
    if unexpected and os.environ.get("CI") == "true":
        lines = "".join("  %s: %s\n" % pair for pair in unexpected)
        sys.stderr.write("\nskipped, and not in conftest.ALLOWED_SKIPS (CI=true):\n" + lines)
        session.exitstatus = 1


def pytest_configure(config):
    # Warnings are errors, except aiosmtpd's own expected ones (the same
    # filters servers.py installs for use outside pytest).
    config.addinivalue_line("filterwarnings", "error")
    for action, message, category in servers.WARNING_FILTERS:
        config.addinivalue_line(
            "filterwarnings",
            "%s:%s:%s" % (action, re.escape(message), category.__name__),
        )
    # Mercurial 6.1 imports imp (gone in Python 3.12) in the modules
    # test_flatten.py imports in-process.
    config.addinivalue_line(
        "filterwarnings",
        "ignore:the imp module is deprecated:DeprecationWarning:mercurial",
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """Every test certificate, made once (see support/pki.py)."""
    return pkimod.make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    """A 3-patch repository (read-only for the tests)."""
    return hg.make_repo(tmp_path_factory.mktemp("hg"), n_patches=3)


@pytest.fixture(scope="session")
def series(repo):
    """The 3 messages ``hg email --mbox`` writes with ``hg.email_args()``,
    made by stock hg (no securesmtp), as the reference for what must arrive."""
    msgs = hg.mbox_messages(repo, hg.email_args())
    assert len(msgs) == 3, msgs
    return msgs


@pytest.fixture
def smtp_server():
    """Factory: ``smtp_server(cert, mode, **kw)`` -> a started SmtpServer,
    stopped at the end of the test."""
    started = []

    def make(cert=None, mode="starttls", **kwargs):
        server = servers.SmtpServer(cert, mode, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _parametrized(metafunc, name):
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc):
    # ``mode`` (starttls, smtps) and ``keytype`` (rsa, ecdsa) parameters for
    # any test that asks for them and does not parametrize them itself.
    if "mode" in metafunc.fixturenames and not _parametrized(metafunc, "mode"):
        metafunc.parametrize("mode", ["starttls", "smtps"])
    if "keytype" in metafunc.fixturenames and not _parametrized(metafunc, "keytype"):
        metafunc.parametrize("keytype", ["rsa", "ecdsa"])
