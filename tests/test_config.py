"""Configuration the extension must refuse rather than guess at, secrets
that are not ASCII, and the seam with the Rust core: no setting can reach
code that panics, and a panic would still end in a clean abort."""

import ast
import base64
import os
import shutil

import pytest

from support import hg, hostile, servers
from support.asserts import assert_ok, assert_series_delivered
from support.hostile import GREETING, HostileServer, send, serve


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


# --------------------------------------------------------------------------
# Settings validated in the core

#: Each of these once reached ``Duration::from_secs_f64`` (1e20 panicked).
BAD_TIMEOUTS = ["1e20", "1e-12", "nan", "-1", "0", "inf", "sixty"]


@pytest.fixture(scope="module")
def one_patch(tmp_path_factory):
    return hostile.build_repo(str(tmp_path_factory.mktemp("config-repo")), hostile.ordinary_commits()[:1])


def assert_clean_abort(run, *needles, prefix="abort: "):
    assert run.returncode == 255, str(run)
    assert "Traceback" not in run.output and "panicked" not in run.output, str(run)
    assert run.stderr.startswith(prefix), str(run)
    for needle in needles:
        assert needle in run.stderr, "%r not in stderr\n%s" % (needle, run)


@pytest.mark.parametrize("value", BAD_TIMEOUTS)
def test_unusable_timeout_is_a_config_error_naming_smtp_timeout(one_patch, value):
    with HostileServer([send(GREETING), serve()]) as server:
        run = hostile.hg_email(one_patch, hostile.base_config(port=server.port, timeout=value))
    assert_clean_abort(run, "smtp.timeout", "'%s'" % value, "(check smtp.timeout)", prefix="config error: ")
    # Refused before any connection was made.
    assert not server.accepted.is_set()


#: The core built with the `test-hooks` feature (scripts/setup.sh).
HOOKED_CORE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".work", "test-hooks",
                           "_core.abi3.so")


def test_the_shipped_core_has_no_test_hook():
    from securesmtp import _core

    assert not hasattr(_core, "_test_hook_panic")


@pytest.fixture
def hooked_package(tmp_path):
    """A copy of the installed package whose core has the test hook, for
    PYTHONPATH: the shipped core does not."""
    import securesmtp

    assert os.path.exists(HOOKED_CORE), "no %s: run scripts/setup.sh" % HOOKED_CORE
    root = tmp_path / "hooked"
    package = root / "securesmtp"
    package.mkdir(parents=True)
    source = os.path.dirname(securesmtp.__file__)
    for name in os.listdir(source):
        if name.endswith((".py", ".pyi", ".typed")):
            shutil.copy(os.path.join(source, name), package / name)
    shutil.copy(HOOKED_CORE, package / "_core.abi3.so")
    return str(root)


def test_a_panic_in_the_core_is_a_clean_abort_that_quotes_nothing(one_patch, tmp_path, hooked_package):
    """A test-only extension makes ``_core.connect`` call the core's panic
    test hook (in a core built with it): ``hg email`` must print an abort
    with a hint to report the bug, not a PanicException traceback, and not
    the panic's message."""
    ext = tmp_path / "panicker.py"
    ext.write_text(
        "from securesmtp import _core\n"
        "def uisetup(ui):\n"
        "    def connect(**kwargs):\n"
        "        _core._test_hook_panic('PANIC-SECRET-' + kwargs['host'])\n"
        "    _core.connect = connect\n"
    )
    config = hostile.base_config(port=1)
    config["extensions"]["panicker"] = str(ext)
    run = hostile.hg_email(one_patch, config, env={"PYTHONPATH": hooked_package})
    assert_clean_abort(run, "internal error in securesmtp", "src/python.rs", "bug in securesmtp")
    assert "PANIC-SECRET" not in run.output, str(run)


# --------------------------------------------------------------------------
# Secrets that are not ASCII

#: A password (and user) whose bytes differ between Latin-1 and UTF-8.
LATIN_USER = "jos\u00e9@example.test"
LATIN_PASSWORD = "p\u00e4ssw\u00f6rd-\u00fcber-\u00df"


def _auth_plain(server):
    """The SASL PLAIN message the server received, decoded from base64."""
    [line] = [c for c in server.commands if c.upper().startswith("AUTH PLAIN")]
    return base64.b64decode(line.split()[2])


def _secret_forms(password):
    """Ways a password could leak into output, whatever the decoding."""
    forms = {password, password.encode("utf-8").decode("latin-1")}
    forms.add(repr(password.encode("latin-1"))[2:-1])  # \xe4-style escapes
    forms.add(repr(password.encode("utf-8"))[2:-1])
    forms.add(base64.b64encode(password.encode("utf-8")).decode())
    return [f for f in forms if f]


@pytest.mark.parametrize("local", ["latin-1", "utf-8"])
def test_non_ascii_credentials_are_decoded_in_the_local_encoding(one_patch, local):
    """As Mercurial does (``encoding.strfromlocal``): an hgrc written in the
    local encoding (HGENCODING) gives the same text, sent as UTF-8."""
    with HostileServer([send(GREETING), serve()]) as server:
        config = hostile.base_config(port=server.port, user=LATIN_USER, password=LATIN_PASSWORD)
        run = hostile.hg_email(one_patch, config, hgrc_encoding=local, env={"HGENCODING": local}, check_secrets=False)
    assert run.returncode == 0, str(run)
    assert _auth_plain(server) == b"\0" + LATIN_USER.encode() + b"\0" + LATIN_PASSWORD.encode()
    for form in _secret_forms(LATIN_PASSWORD):
        assert form not in run.output, (form, str(run))


def test_a_password_that_is_not_text_in_the_local_encoding_is_a_clean_abort_that_quotes_none_of_it(one_patch):
    """A Latin-1 hgrc read as UTF-8: Mercurial's own error would quote the
    bytes around the fault, here the password."""
    with HostileServer([send(GREETING), serve()]) as server:
        config = hostile.base_config(port=server.port, user="alice@example.test", password=LATIN_PASSWORD)
        run = hostile.hg_email(
            one_patch, config, hgrc_encoding="latin-1", env={"HGENCODING": "utf-8"}, check_secrets=False
        )
    assert_clean_abort(run, "smtp.password", "local encoding", "HGENCODING")
    assert not server.saw("AUTH") and not server.saw("MAIL"), server.commands
    for form in _secret_forms(LATIN_PASSWORD) + ["rd-", "ber-"]:
        assert form not in run.output, (form, str(run))


# --------------------------------------------------------------------------
# The stubs match the module


def _stub():
    path = os.path.join(os.path.dirname(__file__), "..", "python", "securesmtp", "_core.pyi")
    with open(path) as f:
        return ast.parse(f.read())


def _is_typed_dict(node):
    return isinstance(node, ast.ClassDef) and any(getattr(b, "id", None) == "TypedDict" for b in node.bases)


def test_core_stub_names_exactly_what_the_module_has():
    from securesmtp import _core

    tree = _stub()
    # TypedDicts describe the dicts the module returns; only the stub has them.
    stubbed = {
        n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and not _is_typed_dict(n)
    }
    runtime = {n for n in dir(_core) if not n.startswith("__")}
    assert stubbed == runtime, sorted(stubbed ^ runtime)


def test_core_stub_lists_every_enum_member_and_session_method():
    from securesmtp import _core

    classes = {n.name: n for n in _stub().body if isinstance(n, ast.ClassDef)}
    for name in ("Kind", "Stage", "Setting", "Session"):
        body = classes[name].body
        members = {t.target.id for t in body if isinstance(t, ast.AnnAssign)}
        members |= {f.name for f in body if isinstance(f, ast.FunctionDef) and not f.name.startswith("__")}
        runtime = {m for m in dir(getattr(_core, name)) if not m.startswith("_")}
        assert members == runtime, (name, sorted(members ^ runtime))


# --------------------------------------------------------------------------
# Settings stock refuses are refused here too, by name (never a silent
# difference): each case runs stock ``hg email`` with the same hgrc first.

STOCK_REFUSES = {
    "minimumprotocol-in-capitals": {"hostsecurity": {"minimumprotocol": "TLS1.2"}},
    "invalid-global-minimumprotocol-under-a-host-one": {
        "hostsecurity": {"minimumprotocol": "tls9", "localhost:minimumprotocol": "tls1.2"}},
    "ciphers-in-lower-case": {"hostsecurity": {"ciphers": "ecdhe-rsa-aes128-gcm-sha256"}},
    "ciphers-naming-only-tls13-suites": {"hostsecurity": {"ciphers": "TLS_AES_128_GCM_SHA256"}},
}

STOCK_REFUSES_SETTING = {
    "minimumprotocol-in-capitals": "hostsecurity.minimumprotocol",
    "invalid-global-minimumprotocol-under-a-host-one": "hostsecurity.minimumprotocol",
    "ciphers-in-lower-case": "hostsecurity.ciphers",
    "ciphers-naming-only-tls13-suites": "hostsecurity.ciphers",
}


@pytest.mark.parametrize("name", sorted(STOCK_REFUSES))
def test_a_setting_stock_refuses_is_a_config_error_naming_it(repo, pki, smtp_server, name):
    server = smtp_server(pki.rsa, "starttls")
    extra = STOCK_REFUSES[name]
    stock = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, extension=False,
                         hostsecurity=extra["hostsecurity"])
    code, out, err = hg.run_hg(repo, hg.email_args(), stock)
    assert code == 255 and "abort:" in err, ("stock accepted", out, err)
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, hostsecurity=extra["hostsecurity"])
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    # The setting is named in the message or in its hint.
    assert err.startswith("config error: ") and STOCK_REFUSES_SETTING[name] in err, err
    assert "Traceback" not in err, err
    server.assert_nothing_sent()


def test_a_sha1_prefix_in_hostfingerprints_is_refused_as_stock_never_matches_it(repo, pki, smtp_server):
    server = smtp_server(pki.selfsigned, "starttls")
    pins = {"localhost": "sha1:" + pki.selfsigned.sha1_legacy}
    stock = hg.smtp_hgrc(server.port, extension=False, hostfingerprints=pins)
    code, out, err = hg.run_hg(repo, hg.email_args(), stock)
    assert code == 255 and "fingerprint" in err, ("stock accepted", out, err)
    cfg = hg.smtp_hgrc(server.port, hostfingerprints=pins)
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, (code, out, err)
    assert "hostfingerprints.localhost" in err and "without the 'sha1:' prefix" in err, err
    server.assert_nothing_sent()
    # The bare form pins, as in stock.
    pins = {"localhost": pki.selfsigned.sha1_legacy}
    assert_ok(hg.run_hg(repo, hg.email_args(), hg.smtp_hgrc(server.port, hostfingerprints=pins)))
