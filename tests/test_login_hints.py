"""What a refused login tells the user to do.

- A temporary failure (4xx to AUTH) is called temporary, with nothing to
  change: a real Postfix whose SASL is Dovecot's answers ``454 4.7.0
  Temporary authentication failure`` once Dovecot's auth service is gone
  (support/dovecotpostfix.py).
- A provider's advice (app passwords, OAuth2) only for that provider's
  server, known by its reply (Microsoft's own enhanced codes and words,
  Google's link to its help pages) under any host name, or by smtp.host for
  the replies that do not say who answered. Postfix with Dovecot refuses a
  wrong password with ``535 5.7.8``, the code Google uses, and gets the
  plain hint. The host-name cases run against a local server with a
  certificate for the provider's host name, which hg reaches through a
  hosts file of its own (support/hosts.py); the replies under a neutral
  name (``localhost``, as a company's own submission name pointing at the
  provider would be) come from a local server answering as the provider.
"""

import tempfile
import types

import pytest
from support import hg, hosts, postfix, sasl, servers
from support.dovecotpostfix import DovecotPostfix

from securesmtp import errors

PLAIN_HINT = "(check smtp.username and the password (smtp.password or smtp.password-command))"
TEMPORARY_HINT = (
    "(this is a temporary failure: the server could not check the login just "
    "now; try again later, nothing in your settings needs to change (if it "
    "persists, tell the server's administrator))"
)
GOOGLE_HINT = (
    "(check smtp.username and the password; if they are right, the account may "
    "need an app password, or OAuth2: set smtp.auth = xoauth2 and "
    "smtp.password-command to a command that prints an access token)"
)
OAUTH_HINT = (
    "(this account needs OAuth2: set smtp.auth = xoauth2 and set "
    "smtp.password-command to a command that prints an access token (for "
    "example pizauth, oama or mutt_oauth2.py); see hg help securesmtp)"
)
SECRETS = servers.secret_forms() + sasl.token_forms()


def _hint(err):
    return err.rstrip("\n").rsplit("\n", 1)[-1]


# -- Postfix with Dovecot SASL ------------------------------------------------------


@pytest.fixture
def dovecot_postfix():
    with postfix.running("securesmtp-pf-dovecot-", cls=DovecotPostfix, password=servers.PASSWORD) as pf:
        yield pf


def _postfix_hgrc(pf, password):
    return hg.smtp_hgrc(pf.starttls_port, cacerts=pf.ca_file, username=pf.user, password=password)


def test_a_wrong_password_through_postfix_and_dovecot_gets_the_plain_hint(repo, dovecot_postfix):
    code, out, err = hg.run_hg(repo, hg.email_args(), _postfix_hgrc(dovecot_postfix, "not-the-Sw0rdfish"))
    assert code == 255, (code, out, err)
    assert (
        "abort: authentication as alice@example.test failed: the server refused "
        "AUTH PLAIN: 535 5.7.8 Error: authentication failed:" in err
    ), err
    assert _hint(err) == PLAIN_HINT, err
    assert "app password" not in err and "xoauth2" not in err, err
    assert dovecot_postfix.deliveries(0, timeout=0.5) == []


def test_a_temporary_login_failure_through_postfix_and_dovecot_is_called_temporary(
    repo, series, dovecot_postfix
):
    cfg = _postfix_hgrc(dovecot_postfix, servers.PASSWORD)
    # The same smtpd process serves the next connection: it asked Dovecot
    # for the mechanisms, so it still offers AUTH once Dovecot is gone.
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 0, (code, out, err)
    assert len(dovecot_postfix.delivered(len(series) * 2)) == len(series) * 2
    dovecot_postfix.stop_auth()
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    assert (
        "abort: could not log in as alice@example.test: the server could not "
        "check the login just now (AUTH PLAIN): 454 4.7.0 Temporary authentication failure" in err
    ), (err, dovecot_postfix.log()[-2000:])
    assert _hint(err) == TEMPORARY_HINT, err
    assert "check smtp.username" not in err and "access token" not in err, err


# -- providers, recognised by host name --------------------------------------------


@pytest.fixture(scope="module")
def provider_hosts():
    directory = tempfile.mkdtemp(prefix="securesmtp-hosts-")
    prefix, why = hosts.prefix(directory, ["smtp.gmail.com", "smtp.office365.com"])
    if prefix is None:
        pytest.fail("cannot give hg a hosts file of its own: %s" % why)
    return prefix


@pytest.fixture
def provider_server(pki):
    started = []

    def make(refuse_with, offer=("PLAIN", "LOGIN"), cert=pki.providers):
        server = sasl.SaslServer(cert, "starttls", offer=offer, refuse_with=refuse_with)
        started.append(server.start())
        return server

    yield make
    for server in started:
        server.stop()


def _as(host, server, pki, password=servers.PASSWORD, **extra):
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, username=servers.USER, password=password, host=host)
    cfg["smtp"].update(extra)
    return cfg


def _no_mail(server):
    server.assert_nothing_sent(verbs=("MAIL", "RCPT", "DATA", "BDAT"))


GOOGLE_REFUSAL = "535 5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials"


def test_gmail_refusing_a_password_gets_the_app_password_hint(repo, pki, provider_server, provider_hosts):
    server = provider_server(GOOGLE_REFUSAL)
    code, out, err = hg.run_hg(
        repo, hg.email_args(), _as("smtp.gmail.com", server, pki), prefix=provider_hosts, secrets=SECRETS
    )
    assert code == 255, (code, out, err)
    assert "535 5.7.8 Username and Password not accepted" in err, err
    assert _hint(err) == GOOGLE_HINT, err
    _no_mail(server)


MICROSOFT_HINT = (
    "(check smtp.username and the password; if they are right, the account may "
    "take only OAuth2: set smtp.auth = xoauth2 and smtp.password-command to a "
    "command that prints an access token)"
)


@pytest.mark.parametrize(
    "refusal, expected",
    [
        (GOOGLE_REFUSAL, GOOGLE_HINT),
        ("534 5.7.9 Application-specific password required. For more information, go to "
         "https://support.google.com/mail/?p=InvalidSecondFactor", OAUTH_HINT),
        ("550 5.7.30 Basic authentication is not supported for Client Submission.", OAUTH_HINT),
        ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled. "
         "[DM6PR0101CA0012.namprd01.prod.outlook.com]", OAUTH_HINT),
        ("535 5.7.3 Authentication unsuccessful [SN4PR0601CA0005.namprd06.prod.outlook.com]",
         MICROSOFT_HINT),
        # Postfix and Dovecot's words for the same code as Google's.
        ("535 5.7.8 Error: authentication failed: authentication failure", PLAIN_HINT),
        # RFC 4954's own 534 5.7.9, not Google's.
        ("534 5.7.9 Authentication mechanism is too weak", PLAIN_HINT),
    ],
)
def test_a_providers_refusal_under_a_neutral_host_name_gets_its_hint(
    repo, pki, provider_server, refusal, expected
):
    """A company's own submission name that points at Microsoft 365 or
    Google: the reply says who answered."""
    server = provider_server(refusal, cert=pki.rsa)
    code, out, err = hg.run_hg(repo, hg.email_args(), _as("localhost", server, pki), secrets=SECRETS)
    assert code == 255, (code, out, err)
    assert refusal.split(" [")[0].split(". For more")[0] in err, err
    assert _hint(err) == expected, err
    _no_mail(server)


def test_microsoft_basic_auth_refusal_says_to_use_oauth2(repo, pki, provider_server, provider_hosts):
    server = provider_server(
        "550 5.7.30 Basic authentication is not supported for Client Submission.",
        offer=("PLAIN", "LOGIN", "XOAUTH2"),
    )
    code, out, err = hg.run_hg(
        repo, hg.email_args(), _as("smtp.office365.com", server, pki), prefix=provider_hosts, secrets=SECRETS
    )
    assert code == 255, (code, out, err)
    assert "550 5.7.30 Basic authentication is not supported" in err, err
    assert _hint(err) == OAUTH_HINT, err
    _no_mail(server)


def test_microsoft_refusal_is_not_retried_interactively(repo, pki, provider_server, provider_hosts):
    # A prompted password refused with "basic auth is off" will not work
    # whatever is typed: no second prompt, the OAuth2 hint at once.
    server = provider_server("535 5.7.139 Authentication unsuccessful, basic authentication is disabled")
    cfg = _as("smtp.office365.com", server, pki, password=None)
    cfg["ui"] = {"interactive": "true", "nontty": "true"}
    code, out, err = hg.run_hg(
        repo, hg.email_args(), cfg, input=servers.PASSWORD + "\n" + servers.PASSWORD + "\n",
        prefix=provider_hosts, secrets=SECRETS,
    )
    assert code == 255, (code, out, err)
    assert "5.7.139" in err and _hint(err) == OAUTH_HINT, err
    assert (out + err).count("password:") == 1, (out, err)
    assert len(server.auth_log) == 1, server.auth_log
    _no_mail(server)


# The hint function itself, for names and replies no local server can
# stand for (the real providers are not reachable from the tests).
@pytest.mark.parametrize(
    "host, code, text, expected",
    [
        (b"smtp.gmail.com", 535, "5.7.8 Username and Password not accepted.", GOOGLE_HINT),
        (b"SMTP.GoogleMail.com.", 535, "5.7.8 Username and Password not accepted.", GOOGLE_HINT),
        (b"smtp.gmail.com", 534, "5.7.9 Application-specific password required.", OAUTH_HINT),
        (b"smtp-mail.outlook.com", 535, "5.7.139 Authentication unsuccessful", OAUTH_HINT),
        (b"mail.example.net", 535, "5.7.8 Error: authentication failed:", PLAIN_HINT),
        # RFC 4954's 5.7.9 is "mechanism too weak" elsewhere, not Google's.
        (b"mail.example.net", 534, "5.7.9 Authentication mechanism is too weak", PLAIN_HINT),
        (b"gmail.com.example.net", 535, "5.7.8 Username and Password not accepted.", PLAIN_HINT),
        (b"notgmail.com", 535, "5.7.8 Username and Password not accepted.", PLAIN_HINT),
        (b"mail.example.net", 535, "5.7.8 Username and Password not accepted. For more "
         "information, go to https://support.google.com/mail/?p=BadCredentials", GOOGLE_HINT),
        (b"mail.example.net", 550, "5.7.30 Basic authentication is not supported", OAUTH_HINT),
        (b"mail.example.net", 535, "5.7.3 Authentication unsuccessful", MICROSOFT_HINT),
        (b"smtp.office365.com", 535, "5.7.8 Error: authentication failed:", MICROSOFT_HINT),
        (b"smtp.gmail.com", 454, "4.7.0 Temporary authentication failure", TEMPORARY_HINT),
    ],
)
def test_provider_hints_go_by_the_reply_and_the_host_name(host, code, text, expected):
    exc = types.SimpleNamespace(code=code, server_text=text, mechanism="PLAIN")
    assert b"(%s)" % errors.auth_hint(exc, host) == expected.encode()
