"""Configuration the extension must refuse rather than guess at."""

from support import hg, servers
from support.asserts import assert_ok, assert_series_delivered


def test_bogus_tls_is_not_plaintext(repo, pki, smtp_server):
    # A plain server that would happily take the series in cleartext.
    server = smtp_server(None, "plain")
    cfg = hg.smtp_hgrc(server.port, tls="bogus", cacerts=pki.ca.cert)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code != 0, (code, out, err)
    assert "smtp.tls" in err and "bogus" in err, err
    server.assert_nothing_sent()


def test_bogus_tls_with_credentials(repo, pki, smtp_server):
    server = smtp_server(None, "plain")
    cfg = hg.smtp_hgrc(
        server.port, tls="bogus", cacerts=pki.ca.cert,
        username=servers.USER, password=servers.PASSWORD,
    )
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code != 0, (code, out, err)
    assert "smtp.tls" in err and "bogus" in err, err
    server.assert_nothing_sent()


def test_tls_true_means_starttls(repo, series, pki, smtp_server):
    # Mercurial's backward-compatible spelling: a true value is STARTTLS.
    server = smtp_server(pki.rsa, "starttls")
    cfg = hg.smtp_hgrc(server.port, tls="true", cacerts=pki.ca.cert)
    assert_ok(hg.run_hg(repo, hg.email_args(), cfg))
    assert_series_delivered(server, series, "starttls")


def test_missing_cacerts_file(repo, pki, smtp_server, tmp_path):
    server = smtp_server(pki.rsa, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=str(tmp_path / "no-such-ca.pem"))
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    assert err.startswith("abort: "), err
    assert "web.cacerts" in err, err
    server.assert_nothing_sent()
