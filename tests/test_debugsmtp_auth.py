"""``hg debugsmtp`` reports the AUTH mechanisms offered after TLS and the
one ``hg email`` would use with the current smtp.auth, without logging in."""

import json

import pytest

from support import hg, sasl


@pytest.fixture
def sasl_server(pki):
    started = []

    def make(**kwargs):
        server = sasl.SaslServer(pki.rsa, "starttls", **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def _debugsmtp(tmp_path, server, pki, auth=None, extra=()):
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)
    if auth:
        cfg["smtp"]["auth"] = auth
    return hg.run_hg(str(tmp_path), ["debugsmtp"] + list(extra), cfg)


@pytest.mark.parametrize(
    "offer,auth,would_use",
    [
        (("PLAIN", "LOGIN", "SCRAM-SHA-256", "XOAUTH2"), None, "SCRAM-SHA-256"),
        (("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"), None, "PLAIN"),
        (("PLAIN", "XOAUTH2"), "xoauth2", "XOAUTH2"),
        (("PLAIN", "CRAM-MD5"), "cram-md5, plain", "CRAM-MD5"),
        (("PLAIN",), "oauthbearer xoauth2", ""),
    ],
)
def test_debugsmtp_reports_auth_mechanisms(tmp_path, pki, sasl_server, offer, auth, would_use):
    server = sasl_server(offer=offer)
    code, out, err = _debugsmtp(tmp_path, server, pki, auth)
    assert code == 0, (code, out, err)
    offered_line = [l for l in out.splitlines() if l.startswith("AUTH mechanisms offered: ")]
    assert offered_line, out
    assert sorted(offered_line[0].split(": ", 1)[1].split(", ")) == sorted(offer)
    if would_use:
        assert "hg email would authenticate with: %s (" % would_use in out, out
    else:
        assert "hg email could not authenticate: none of the allowed mechanisms is offered" in out, out
    setting = "smtp.auth = " if auth else "smtp.auth unset"
    assert setting in out, out

    code, jout, err = _debugsmtp(tmp_path, server, pki, auth, ["-T", "json"])
    assert code == 0, (code, jout, err)
    d = json.loads(jout)[0]
    assert sorted(d["auth_mechanisms"]) == sorted(offer)
    assert d["auth_would_use"] == would_use
    assert d["auth_allowed"] == ([] if not auth else [m.upper() for m in auth.replace(",", " ").split()])
    # It only looked: no login, ever.
    server.wait_idle(5)
    assert not server.saw("AUTH"), server.transcript_text()
    assert server.auth_log == []
