"""A character one cannot see in a setting is named, not hidden.

A non-breaking space (U+00A0) or a zero-width space (U+200B) pasted from a
web page survives Mercurial's stripping of hgrc values (it strips ASCII
white space only). Every setting the extension reads refuses such a value
before connecting, with the value quoted as typed, the character escaped
and named, and the setting to retype: ``smtp.host is not a valid host name:
'localhost\\u00a0' contains U+00A0 NO-BREAK SPACE``. A path that does not
exist is shown the same way when it holds such a character.

Each case is a real ``hg email`` against a real server that must see no
connection at all.
"""

import pytest
from support import hg, servers

NBSP = "\u00a0"
ZWSP = "\u200b"


def _cases(pki, port):
    cafile = pki.ca.cert
    return {
        "smtp.host": ("localhost" + NBSP, "config error: smtp.host is not a valid host name: "
                      "'localhost\\u00a0' contains U+00A0 NO-BREAK SPACE"),
        "smtp.local_hostname": ("client" + ZWSP + ".example.test",
                                "config error: smtp.local_hostname is not a valid host name: "
                                "'client\\u200b.example.test' contains U+200B ZERO WIDTH SPACE"),
        "smtp.port": ("%d%s" % (port, NBSP), "config error: smtp.port is not valid: "
                      "'%d\\u00a0' contains U+00A0 NO-BREAK SPACE" % port),
        "smtp.tls": ("starttls" + ZWSP, "config error: smtp.tls is not valid: "
                     "'starttls\\u200b' contains U+200B ZERO WIDTH SPACE"),
        "smtp.timeout": ("30" + NBSP, "config error: smtp.timeout is not valid: "
                         "'30\\u00a0' contains U+00A0 NO-BREAK SPACE"),
        "smtp.username": (servers.USER + NBSP, "config error: smtp.username is not valid: "
                          "'alice\\u00a0' contains U+00A0 NO-BREAK SPACE"),
        "smtp.auth": ("plain" + NBSP + ZWSP, "config error: smtp.auth is not valid: "
                      "'plain\\u00a0\\u200b' contains U+00A0 NO-BREAK SPACE and U+200B ZERO WIDTH SPACE"),
        "hostsecurity.localhost:fingerprints": (
            pki.rsa.sha256 + ZWSP,
            "config error: hostsecurity.localhost:fingerprints is not valid: "
            "'%s\\u200b' contains U+200B ZERO WIDTH SPACE" % pki.rsa.sha256),
        "hostsecurity.localhost:pubkeys": (
            "sha256:" + NBSP + "AAAA",
            "config error: hostsecurity.localhost:pubkeys is not valid: "
            "'sha256:\\u00a0AAAA' contains U+00A0 NO-BREAK SPACE"),
        "hostfingerprints.localhost": (
            pki.rsa.sha1_legacy + "\ufeff",
            "config error: hostfingerprints.localhost is not valid: "
            "'%s\\ufeff' contains U+FEFF ZERO WIDTH NO-BREAK SPACE" % pki.rsa.sha1_legacy),
        "hostsecurity.ciphers": (
            "ECDHE-RSA-AES128-GCM-SHA256" + NBSP,
            "config error: hostsecurity.ciphers is not valid: "
            "'ECDHE-RSA-AES128-GCM-SHA256\\u00a0' contains U+00A0 NO-BREAK SPACE"),
        "hostsecurity.localhost:ciphers": (
            "ECDHE-RSA-AES128-GCM-SHA256" + ZWSP,
            "config error: hostsecurity.localhost:ciphers is not valid: "
            "'ECDHE-RSA-AES128-GCM-SHA256\\u200b' contains U+200B ZERO WIDTH SPACE"),
        "hostsecurity.minimumprotocol": (
            "tls1.2" + NBSP,
            "config error: hostsecurity.minimumprotocol is not valid: "
            "'tls1.2\\u00a0' contains U+00A0 NO-BREAK SPACE"),
        "hostsecurity.localhost:minimumprotocol": (
            "tls1.3" + NBSP,
            "config error: hostsecurity.localhost:minimumprotocol is not valid: "
            "'tls1.3\\u00a0' contains U+00A0 NO-BREAK SPACE"),
        "web.cacerts": (
            cafile + NBSP,
            "abort: path specified by web.cacerts does not exist: "
            "'%s\\u00a0' contains U+00A0 NO-BREAK SPACE" % cafile),
        "hostsecurity.localhost:verifycertsfile": (
            cafile + ZWSP,
            "abort: path specified by hostsecurity.localhost:verifycertsfile does not exist: "
            "'%s\\u200b' contains U+200B ZERO WIDTH SPACE" % cafile),
    }


SETTINGS = [
    "smtp.host", "smtp.local_hostname", "smtp.port", "smtp.tls", "smtp.timeout",
    "smtp.username", "smtp.auth", "hostsecurity.localhost:fingerprints",
    "hostsecurity.localhost:pubkeys", "hostfingerprints.localhost", "hostsecurity.ciphers",
    "hostsecurity.localhost:ciphers", "hostsecurity.minimumprotocol",
    "hostsecurity.localhost:minimumprotocol", "web.cacerts",
    "hostsecurity.localhost:verifycertsfile",
]


@pytest.mark.parametrize("setting", SETTINGS)
def test_an_invisible_character_in_a_setting_is_named(repo, pki, smtp_server, setting):
    server = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    typed, message = _cases(pki, server.port)[setting]
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=servers.USER, password=servers.PASSWORD)
    section, key = setting.split(".", 1)
    cfg.setdefault(section, {})[key] = typed
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    lines = err.splitlines()
    assert lines[0] == message, err
    if message.startswith("config error:"):
        assert lines[1] == "(retype the value of %s without that character)" % setting, err
    assert server.connections == 0, server.transcript_text()
