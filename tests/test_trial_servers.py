"""Servers set up the way a new user meets them, with the README's settings.

Real ``hg email`` against aiosmtpd on loopback in configurations the other
files do not cover:

- a server that offers STARTTLS, and AUTH (or mail at all) only after it,
  reached with ``smtp.tls = none``: the hint must say ``smtp.tls =
  starttls``, not blame the mechanisms or the sender address;
- a server whose SIZE limit is smaller than one patch of a series: that
  patch is refused with a hint about its size (not about the sender), the
  others are delivered;
- the pin line ``hg debugsmtp`` prints for an IPv6 literal (``::1``),
  pasted as is, with ``smtp.host`` written with and without brackets.
"""

import pytest

from support import hg, servers
from support.asserts import assert_ok

STARTTLS_HINT = "set smtp.tls = starttls"


def _email(revs="1"):
    return hg.email_args(revs=revs)


def _hint(err):
    lines = [l for l in err.splitlines() if l.startswith("(")]
    assert lines, err
    return lines[-1]


def test_auth_offered_only_after_starttls_with_tls_none_hints_at_starttls(repo, pki, smtp_server):
    s = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    rc = hg.smtp_hgrc(s.port, tls="none", username=servers.USER, password=servers.PASSWORD)
    code, out, err = hg.run_hg(repo, _email(), rc)
    assert code == 255, (out, err)
    assert "abort: authentication as alice failed: the server offers no authentication" in err, err
    assert STARTTLS_HINT in _hint(err), err
    assert "set smtp.auth" not in err, err
    s.assert_nothing_sent()


def test_mail_refused_until_starttls_with_tls_none_hints_at_starttls(repo, pki, smtp_server):
    # No username: the server's 530 to MAIL FROM is the first refusal.
    s = smtp_server(pki.rsa, "starttls")
    rc = hg.smtp_hgrc(s.port, tls="none")
    code, out, err = hg.run_hg(repo, _email(), rc)
    assert code == 255, (out, err)
    assert "530 Must issue a STARTTLS command first" in err, err
    assert STARTTLS_HINT in _hint(err), err
    assert "sender address" not in err, err
    s.wait_idle()
    assert s.messages == []


def test_server_without_starttls_or_auth_gets_no_starttls_hint(repo, smtp_server):
    # The hint rests on what the server offers: without STARTTLS on offer,
    # suggesting it would send the user to a dead end.
    s = smtp_server(None, "plain")
    rc = hg.smtp_hgrc(s.port, tls="none", username=servers.USER, password=servers.PASSWORD)
    code, out, err = hg.run_hg(repo, _email(), rc)
    assert code == 255, (out, err)
    assert "the server offers no authentication" in err, err
    assert "starttls" not in err.lower(), err
    s.assert_nothing_sent()


@pytest.fixture
def small_server(pki):
    # A SIZE limit between the sizes of the series' messages (about 1.5 KB,
    # 3 KB with the 1500-byte line, 1.6 KB): only patch 2 is too large.
    s = servers.SmtpServer(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    s._kwargs["data_size_limit"] = 2500
    s.start()
    yield s
    s.stop()


def test_patch_over_the_server_size_limit_is_refused_with_a_size_hint(repo, pki, small_server):
    rc = hg.smtp_hgrc(
        small_server.port, cacerts=pki.ca.chain, username=servers.USER, password=servers.PASSWORD
    )
    code, out, err = hg.run_hg(repo, _email("1:3"), rc)
    assert code == 255, (out, err)
    assert "552" in err, err
    assert "message not sent: [PATCH 2 of 3]" in err, err
    hint = _hint(err)
    assert "larger than the server accepts" in hint, err
    assert "sender address" not in hint, err
    got = small_server.wait_for_messages(2)
    assert len(got) == 2, small_server.transcript_text()
    assert all(len(m.content) <= 2500 for m in got)


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_literal_pinned_with_the_line_debugsmtp_prints(repo, pki, host):
    s = servers.SmtpServer(pki.selfsigned, "starttls", user=servers.USER, password=servers.PASSWORD)
    s._kwargs["hostname"] = "::1"
    with s:
        rc = hg.smtp_hgrc(s.port, host=host, username=servers.USER, password=servers.PASSWORD)
        code, out, err = hg.run_hg(repo, ["debugsmtp"], rc)
        assert code == 1, (out, err)
        lines = out.splitlines()
        start = lines.index("  [hostsecurity]")
        pasted = "\n".join(l.strip() for l in lines[start : start + 2]) + "\n"
        assert pasted.startswith("[hostsecurity]\n::1:fingerprints = sha256:"), pasted
        assert_ok(hg.run_hg(repo, _email(), hg.hgrc_text(rc) + pasted))
        assert len(s.wait_for_messages(1)) == 1


@pytest.mark.parametrize("value", ["nosuchservice", "subm1ssion"])
def test_unknown_service_name_in_smtp_port_is_a_config_error_naming_it(repo, pki, smtp_server, value):
    s = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    rc = hg.smtp_hgrc(s.port, cacerts=pki.ca.chain, username=servers.USER, password=servers.PASSWORD)
    rc["smtp"]["port"] = value
    code, out, err = hg.run_hg(repo, _email(), rc)
    assert code == 255, (out, err)
    assert err.startswith("config error: smtp.port names no known service: '%s'" % value), err
    assert "submission is 587" in _hint(err), err
    s.wait_idle()
    assert s.connections == 0
