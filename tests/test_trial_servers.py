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
  pasted as is, with ``smtp.host`` written with and without brackets;
- a server that wants a login before MAIL (``530 5.7.0``) from a user who
  set no ``smtp.username``: the hint names it, not the sender address;
- ``smtp.port`` naming no known service: a config error naming the setting;
- ``hg email --bundle`` against a local clone: the binary attachment that
  arrives unbundles there;
- ``smtp.tls`` written in capitals or as a boolean, as hgrc files have it.
"""

import os
import re

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


def test_server_offering_no_login_hints_at_smtp_username_not_starttls(repo, smtp_server):
    # The hint rests on what the server offers: a relay that takes no login
    # and offers no STARTTLS is helped by neither smtp.tls nor smtp.auth.
    s = smtp_server(None, "plain")
    rc = hg.smtp_hgrc(s.port, tls="none", username=servers.USER, password=servers.PASSWORD)
    code, out, err = hg.run_hg(repo, _email(), rc)
    assert code == 255, (out, err)
    assert "the server offers no authentication" in err, err
    hint = _hint(err)
    assert "remove smtp.username" in hint, err
    assert "starttls" not in err.lower() and "set smtp.auth" not in hint, err
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
    assert re.match(r"abort: the server refused \[PATCH 2 of 3\] .* at (MAIL FROM|end of data): 552 ", err), err
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


def test_mail_refused_for_want_of_a_login_hints_at_smtp_username(repo, pki, smtp_server):
    # Over verified TLS, no smtp.username: aiosmtpd with auth_required
    # answers MAIL FROM with RFC 4954's 530 5.7.0.
    s = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    rc = hg.smtp_hgrc(s.port, cacerts=pki.ca.chain)
    code, out, err = hg.run_hg(repo, _email("1:2"), rc)
    assert code == 255, (out, err)
    assert "530 5.7.0 Authentication required" in err, err
    hint = _hint(err)
    assert "set smtp.username" in hint, err
    assert "sender address" not in hint and "smtp.tls" not in hint, err
    s.wait_idle()
    assert s.messages == []


def test_bundle_reaches_the_server_and_applies_to_the_clone_it_was_made_for(repo, pki, smtp_server, tmp_path):
    # hg email --bundle DEST: a binary attachment (base64) made against a
    # local clone; what arrives must unbundle there.
    import email

    clone = str(tmp_path / "clone")
    code, out, err = hg.run_hg(str(tmp_path), ["clone", "-q", "-r", "1", repo, clone])
    assert code == 0, err
    s = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    rc = hg.smtp_hgrc(s.port, cacerts=pki.ca.chain, username=servers.USER, password=servers.PASSWORD)
    args = ["email", "--bundle", clone, "--from", hg.SENDER, "--to", hg.TO, "--date", hg.DATE,
            "-s", "a bündle", "--desc", os.devnull]
    assert_ok(hg.run_hg(repo, args, rc))
    (msg,) = s.wait_for_messages(1)
    parts = [p for p in email.message_from_bytes(msg.content).walk() if p.get_filename()]
    assert [p.get_filename() for p in parts] == ["bundle.hg"], msg.content[:500]
    bundle = tmp_path / "got.hg"
    bundle.write_bytes(parts[0].get_payload(decode=True))
    code, out, err = hg.run_hg(clone, ["unbundle", str(bundle)])
    assert code == 0, (out, err)
    assert "added 2 changesets" in out, out


@pytest.mark.parametrize(
    "value, mode", [("STARTTLS", "starttls"), ("StartTls", "starttls"), ("Yes", "starttls"), ("SMTPS", "smtps")]
)
def test_smtp_tls_in_any_case_or_as_a_boolean_keeps_its_meaning(repo, pki, smtp_server, value, mode):
    s = smtp_server(pki.rsa, mode, user=servers.USER, password=servers.PASSWORD)
    rc = hg.smtp_hgrc(s.port, tls=value, cacerts=pki.ca.chain, username=servers.USER, password=servers.PASSWORD)
    assert_ok(hg.run_hg(repo, _email(), rc))
    assert len(s.wait_for_messages(1)) == 1
    verbs = s.verbs
    if mode == "starttls":
        assert verbs.index("STARTTLS") < verbs.index("AUTH"), verbs
