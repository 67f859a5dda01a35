"""Verification: refusals (nothing but EHLO/STARTTLS reaches the server) and
the accepted ways to trust a server (pins, legacy pins, --insecure, a
self-signed certificate in the CA file)."""

import dataclasses

import pytest

from support import hg, servers
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
