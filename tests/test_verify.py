"""Verification: refusals (nothing but EHLO/STARTTLS reaches the server) and
the accepted ways to trust a server (pins, legacy pins, --insecure, a
self-signed certificate in the CA file)."""

import dataclasses
import shlex
import shutil
import subprocess

import pytest

from support import hg, servers
from support import pki as pkimod
from support.asserts import (
    assert_ok,
    assert_refused,
    assert_series_delivered,
    assert_verification_refused,
)


def _creds_hgrc(port, mode, **kwargs):
    # Credentials configured everywhere: had the client gone on, AUTH would
    # have been the next thing it sent.
    return hg.smtp_hgrc(port, tls=mode, username=servers.USER, password=servers.PASSWORD, **kwargs)


def _server(smtp_server, cert, mode, **kwargs):
    return smtp_server(cert, mode, user=servers.USER, password=servers.PASSWORD, **kwargs)


# -- refusals --------------------------------------------------------------


def test_unknown_authority(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.unknown_ca, mode)
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=pki.ca.cert))
    assert_verification_refused(result, server, pki.unknown_ca, "unknown authority")


def test_wrong_host(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.wrong_host, mode)
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=pki.ca.cert))
    assert_verification_refused(result, server, pki.wrong_host, "not localhost")
    assert "certificate is for mail.example.org, not localhost" in result[2], result[2]


def test_expired(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.expired, mode)
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=pki.ca.cert))
    assert_verification_refused(result, server, pki.expired, "expired")


def test_self_signed_without_pin(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.selfsigned, mode)
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=pki.ca.cert))
    assert_verification_refused(result, server, pki.selfsigned, "self-signed")


def test_pin_mismatch(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.rsa, mode)
    cfg = _creds_hgrc(
        server.port, mode, cacerts=pki.ca.cert,
        hostsecurity={"localhost:fingerprints": pki.ecdsa.sha256},
    )
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_verification_refused(result, server, pki.rsa, "does not match")


def test_pin_enforced_with_insecure(repo, pki, smtp_server):
    # --insecure turns CA and name checks off, never pins.
    server = _server(smtp_server, pki.rsa, "starttls")
    cfg = _creds_hgrc(
        server.port, "starttls", hostsecurity={"localhost:fingerprints": pki.ecdsa.sha256},
    )
    result = hg.run_hg(repo, hg.email_args() + ["--insecure"], cfg)
    assert_verification_refused(result, server, pki.rsa, "does not match")


def test_incomplete_chain(repo, pki, smtp_server, mode):
    # The server forgets its intermediate: no path to the trusted root.
    cert = pki.via_intermediate
    leaf_only = dataclasses.replace(cert, chain=cert.leaf_only)
    server = _server(smtp_server, leaf_only, mode)
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=pki.ca.cert))
    assert_refused(result, server)
    assert "could not be verified" in result[2], result[2]
    assert cert.sha256 in result[2], result[2]


def test_detailed_exit_code(repo, pki, smtp_server):
    server = _server(smtp_server, pki.unknown_ca, "starttls")
    cfg = _creds_hgrc(server.port, "starttls", cacerts=pki.ca.cert)
    args = hg.email_args() + ["--config", "ui.detailed-exit-code=yes"]
    result = hg.run_hg(repo, args, cfg)
    assert_verification_refused(result, server, pki.unknown_ca, "unknown authority", status=150)


def test_minimum_protocol_tls13(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.rsa, mode, max_tls="1.2")
    cfg = _creds_hgrc(
        server.port, mode, cacerts=pki.ca.cert, hostsecurity={"minimumprotocol": "tls1.3"},
    )
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_refused(result, server)
    assert "TLS 1.3" in result[2], result[2]
    assert "minimumprotocol" in result[2], result[2]


def test_minimum_protocol_tls13_with_alert(repo, pki, mode):
    # The same, against a server that answers the TLS 1.3-only hello with a
    # protocol_version alert, as OpenSSL-based mail servers do (aiosmtpd,
    # on asyncio, just closes the connection).
    with servers.BlockingTlsServer(pki.rsa, mode, max_tls="1.2") as server:
        cfg = _creds_hgrc(
            server.port, mode, cacerts=pki.ca.cert, hostsecurity={"minimumprotocol": "tls1.3"},
        )
        result = hg.run_hg(repo, hg.email_args(), cfg)
        assert server.wait_idle(10)
    assert server.handshake_error is not None
    assert_refused(result, server)
    assert "TLS 1.3" in result[2], result[2]
    assert "minimumprotocol" in result[2], result[2]


def test_tls12_server_accepted_by_default(repo, series, pki, smtp_server, mode):
    server = smtp_server(pki.rsa, mode, max_tls="1.2")
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert)
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, mode)


def test_starttls_not_offered(repo, pki, smtp_server):
    server = smtp_server(None, "plain")
    cfg = _creds_hgrc(server.port, "starttls", cacerts=pki.ca.cert)
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_refused(result, server, status=255)
    err = result[2]
    assert "does not offer STARTTLS" in err, err
    assert "\n(" in err, "no hint:\n" + err
    hint = err[err.index("\n("):]
    assert "smtp.tls" in hint, "hint does not mention smtp.tls:\n" + err
    assert server.saw("EHLO") or server.saw("HELO")
    assert not server.saw("STARTTLS")


# -- accepted --------------------------------------------------------------


def _pin_spellings(sha256):
    hexpart = sha256.split(":", 1)[1]
    bare = hexpart.replace(":", "")
    return {
        "lower-colons": sha256,
        "upper-colons": "sha256:" + hexpart.upper(),
        "lower-bare": "sha256:" + bare,
        "upper-bare": "sha256:" + bare.upper(),
    }


@pytest.mark.parametrize("spelling", ["lower-colons", "upper-colons", "lower-bare", "upper-bare"])
def test_pinned_self_signed(repo, series, pki, smtp_server, mode, spelling):
    server = _server(smtp_server, pki.selfsigned, mode)
    pin = _pin_spellings(pki.selfsigned.sha256)[spelling]
    cfg = _creds_hgrc(server.port, mode, hostsecurity={"localhost:fingerprints": pin})
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok(result)
    assert_series_delivered(server, series, mode)
    assert server.saw("AUTH")


def test_pin_list_any_match(repo, series, pki, smtp_server):
    # Several pins, comma separated, the matching one last; sha512 accepted.
    server = smtp_server(pki.selfsigned, "starttls")
    pins = "%s, %s" % (pki.ecdsa.sha256, pki.selfsigned.sha512)
    cfg = hg.smtp_hgrc(server.port, hostsecurity={"localhost:fingerprints": pins})
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, "starttls")


def test_legacy_hostfingerprints(repo, series, pki, smtp_server, mode):
    server = smtp_server(pki.selfsigned, mode)
    cfg = hg.smtp_hgrc(
        server.port, tls=mode, hostfingerprints={"localhost": pki.selfsigned.sha1_legacy},
    )
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok((code, out, err))
    assert "[hostfingerprints]" in err, err
    assert "localhost:fingerprints=%s" % pki.selfsigned.sha256 in err, err
    assert_series_delivered(server, series, mode)


def test_insecure_unknown_authority(repo, series, pki, smtp_server, mode):
    server = smtp_server(pki.unknown_ca, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.ca.cert)
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--insecure"], cfg)
    assert_ok((code, out, err))
    assert "connection security to localhost is disabled" in err, err
    assert pki.unknown_ca.sha256 in err, err
    assert_series_delivered(server, series, mode)


def test_self_signed_ca_true_in_cacerts(repo, series, pki, smtp_server, mode):
    # openssl req -x509 style (CA:TRUE): the user's own self-signed server,
    # listed in web.cacerts.
    server = smtp_server(pki.selfsigned, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.selfsigned.cert)
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok(result)
    assert_series_delivered(server, series, mode)


def test_cn_only_self_signed_in_cacerts(repo, series, pki, smtp_server, mode):
    # No extensions, CN=localhost only (Mercurial's own test certificate).
    server = smtp_server(pki.selfsigned_bare, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=pki.selfsigned_bare.cert)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok((code, out, err))
    assert "common name" in err, err
    assert_series_delivered(server, series, mode)


def test_cn_only_self_signed_wrong_host(repo, pki, smtp_server):
    # The CN fallback is a name check too: 127.0.0.1 is not "localhost".
    server = smtp_server(pki.selfsigned_bare, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.selfsigned_bare.cert, host="127.0.0.1")
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_refused(result, server)
    assert "could not be verified" in result[2], result[2]


# -- the CA file by OpenSSL's rules, side by side with stock ------------------


@pytest.fixture(scope="module")
def anchors(tmp_path_factory, pki):
    return pkimod.make_anchor_cases(str(tmp_path_factory.mktemp("anchors")), pki)


def _stock_refuses(repo, server, mode, **hgrc):
    """Stock ``hg email`` (no extension) with the same settings refuses too,
    and sends nothing either; its message, for the caller to inspect."""
    cfg = _creds_hgrc(server.port, mode, extension=False, **hgrc)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, "stock accepted:\n%s\n%s" % (out, err)
    assert "abort:" in err, err
    server.assert_nothing_sent()
    return err


def test_ca_false_self_signed_server_in_cacerts_is_trusted_as_itself(
    repo, series, anchors, smtp_server, mode
):
    server = smtp_server(anchors.selfsigned_server, mode)
    cfg = hg.smtp_hgrc(server.port, tls=mode, cacerts=anchors.selfsigned_server.cert)
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, mode)


def test_ca_false_self_signed_server_in_cacerts_is_no_issuer(repo, anchors, smtp_server, mode):
    # Someone with that server's key signs a certificate for localhost.
    forged = anchors.forged_by_server
    server = _server(smtp_server, forged, mode)
    cacerts = anchors.selfsigned_server.cert
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=cacerts))
    assert_verification_refused(result, server, forged, "is not a CA certificate")
    assert (
        "the certificate CN=localhost in your CA file (%s) is not a CA certificate "
        "(basicConstraints CA:FALSE)" % cacerts in result[2]
    ), result[2]
    assert "trusted only as itself" in result[2], result[2]
    assert "invalid CA certificate" in _stock_refuses(repo, server, mode, cacerts=cacerts)


def test_expired_ca_in_cacerts_is_refused(repo, anchors, smtp_server, mode):
    leaf = anchors.via_expired_ca
    server = _server(smtp_server, leaf, mode)
    cacerts = anchors.expired_ca.cert
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=cacerts))
    expiry = anchors.expired_ca.certificate.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert_verification_refused(
        result, server, leaf,
        "the CA O=securesmtp tests, CN=securesmtp Expired CA in your CA file (%s) expired on %s"
        % (cacerts, expiry),
    )
    assert "certificate has expired" in _stock_refuses(repo, server, mode, cacerts=cacerts)


def test_intermediate_alone_in_cacerts_is_not_an_anchor(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.via_intermediate, mode)
    cacerts = pki.intermediate.cert
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=cacerts))
    assert_verification_refused(result, server, pki.via_intermediate, "is not self-signed")
    assert "a chain must end at a self-signed root CA" in result[2], result[2]
    assert "unable to get issuer certificate" in _stock_refuses(repo, server, mode, cacerts=cacerts)


def test_leaf_alone_in_cacerts_that_is_not_self_signed_is_refused(repo, pki, smtp_server, mode):
    server = _server(smtp_server, pki.rsa, mode)
    cacerts = pki.rsa.cert
    result = hg.run_hg(repo, hg.email_args(), _creds_hgrc(server.port, mode, cacerts=cacerts))
    assert_verification_refused(result, server, pki.rsa, "cannot be trusted as itself")
    _stock_refuses(repo, server, mode, cacerts=cacerts)


@pytest.mark.parametrize("value", ["false", "no", "loose", "strict", "bogus"])
def test_verifycert_is_ignored_with_a_warning(repo, pki, smtp_server, value):
    # Stock 7.x ignores smtp.verifycert: it never disables verification.
    extra = {"smtp": {"verifycert": value}}
    server = _server(smtp_server, pki.unknown_ca, "starttls")
    cfg = _creds_hgrc(server.port, "starttls", cacerts=pki.ca.cert, extra=extra)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    warning, rest = err.split("\n", 1)
    assert warning.startswith("warning: smtp.verifycert is ignored"), err
    assert "use --insecure" in warning, err
    assert "smtp.verifycert" not in rest, err
    assert_verification_refused((code, out, rest), server, pki.unknown_ca, "unknown authority")
    _stock_refuses(repo, server, "starttls", cacerts=pki.ca.cert, extra=extra)


def test_verifycert_false_still_delivers_to_a_verified_server(repo, series, pki, smtp_server):
    server = smtp_server(pki.rsa, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, extra={"smtp": {"verifycert": "false"}})
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok((code, out, err))
    assert err.count("smtp.verifycert is ignored") == 1, err
    assert_series_delivered(server, series, "starttls")


def test_ip_host_with_the_address_as_a_dns_name_is_explained(repo, pki, anchors, smtp_server):
    # RFC 6125: an IP address matches only an iPAddress subjectAltName.
    # Stock's matcher compares the text with DNS names and accepts this
    # certificate (see docs/security.md, "Where securesmtp differs").
    server = _server(smtp_server, anchors.dns_ip, "starttls")
    cfg = _creds_hgrc(server.port, "starttls", cacerts=pki.ca.cert, host="127.0.0.1")
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_verification_refused(
        result, server, anchors.dns_ip,
        "certificate for 127.0.0.1 is not valid for 127.0.0.1: 127.0.0.1 is listed as a "
        "DNS name, not an IP address",
        host="127.0.0.1",
    )
    assert "certificate is for 127.0.0.1, not 127.0.0.1" not in result[2]


def test_sha1_pin_in_hostsecurity_gets_no_legacy_nudge(repo, series, pki, smtp_server):
    server = smtp_server(pki.selfsigned, "starttls")
    cfg = hg.smtp_hgrc(server.port, hostsecurity={"localhost:fingerprints": pki.selfsigned.sha1})
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert_ok((code, out, err))
    assert "[hostfingerprints]" not in err, err
    assert_series_delivered(server, series, "starttls")


# -- host names as users write them --------------------------------------------


def _private_hosts_hg(tmp_path, names):
    """An ``hg`` that sees an /etc/hosts mapping ``names`` to 127.0.0.1, in a
    mount namespace of its own (nothing persists, nothing else sees it)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    hosts = tmp_path / "hosts"
    with open("/etc/hosts") as fp:
        hosts.write_text(fp.read() + "".join("127.0.0.1 %s\n" % n for n in names))
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && getent hosts "$1"',
         str(hosts), names[0]],
        capture_output=True, timeout=10,
    )
    if probe.returncode != 0:
        pytest.skip("cannot make a private /etc/hosts here: %s" % probe.stderr.decode())
    wrapper = tmp_path / "hg-with-hosts"
    wrapper.write_text(
        "#!/bin/sh\nexec unshare -m sh -c 'mount --bind %s /etc/hosts && exec \"$0\" \"$@\"' %s \"$@\"\n"
        % (shlex.quote(str(hosts)), shlex.quote(hg.HG))
    )
    wrapper.chmod(0o755)
    return str(wrapper)


def test_international_host_is_reached_and_checked_by_its_uts46_name(
    repo, series, pki, anchors, smtp_server, tmp_path, monkeypatch
):
    # faß.example is xn--fa-hia.example under IDNA 2008; Python's IDNA 2003
    # codec would have looked up fass.example, which does not resolve here.
    monkeypatch.setattr(hg, "HG", _private_hosts_hg(tmp_path, [pkimod.IDN_ASCII]))
    server = smtp_server(anchors.idn, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, host=pkimod.IDN_HOST)
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, "starttls")


def test_pasted_pin_line_for_an_international_host_takes_effect(
    repo, series, anchors, smtp_server, tmp_path, monkeypatch
):
    monkeypatch.setattr(hg, "HG", _private_hosts_hg(tmp_path, [pkimod.IDN_ASCII]))
    server = smtp_server(anchors.idn, "starttls")
    cfg = hg.smtp_hgrc(
        server.port, host=pkimod.IDN_HOST, extra={"devel": {"disableloaddefaultcerts": "yes"}},
    )
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, err
    line = "%s:fingerprints = %s" % (pkimod.IDN_HOST, anchors.idn.sha256)
    assert line in err, err
    server.assert_nothing_sent()
    host, value = line.split(" = ")
    server = smtp_server(anchors.idn, "starttls")
    cfg = hg.smtp_hgrc(
        server.port, host=pkimod.IDN_HOST, hostsecurity={host: value},
        extra={"devel": {"disableloaddefaultcerts": "yes"}},
    )
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, "starttls")


def test_cacerts_without_certificates_aborts_as_stock_does(repo, pki, smtp_server, tmp_path, mode):
    empty = tmp_path / "empty.pem"
    empty.write_text("# no certificates here\n")
    server = _server(smtp_server, pki.rsa, mode)
    cfg = _creds_hgrc(server.port, mode, cacerts=str(empty))
    result = hg.run_hg(repo, hg.email_args(), cfg)
    assert_refused(result, server)
    assert "error loading CA file %s: no PEM certificate found" % empty in result[2], result[2]
    assert "error loading CA file %s" % empty in _stock_refuses(repo, server, mode, cacerts=str(empty))
