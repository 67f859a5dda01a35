"""Enabling the extension costs nothing for commands that do not send mail.

The real ``hg`` script runs under a probe (no extension of our own): when hg
exits, the probe writes the names of the modules whose code actually ran.
Mercurial's demandimport puts placeholders in ``sys.modules`` for modules it
has only been asked for; those are not counted. With ``securesmtp`` enabled,
``hg version``, ``hg root`` and ``hg status`` must not run smtplib, ssl, the
email package, ``mercurial.mail``, the compiled core or any module of the
shim but its ``__init__``; ``hg email`` and ``hg debugsmtp`` must still get
them (so the probe can see a heavy import at all).
"""

import json
import os
import subprocess
import sys

import pytest

from support import hg

# Runs the hg script as hg's own entry point would, and at exit lists the
# modules that were really loaded (a lazy module's class is importlib's
# _LazyModule until its first attribute access).
PROBE = r"""
import atexit, json, runpy, sys, types

def _dump(path=sys.argv[1]):
    loaded = sorted(
        name for name, mod in list(sys.modules.items())
        if mod is not None and type(mod) is types.ModuleType
    )
    with open(path, "w") as fp:
        json.dump(loaded, fp)

atexit.register(_dump)
hg = sys.argv[2]
sys.argv = [hg] + sys.argv[3:]
runpy.run_path(hg, run_name="__main__")
"""

HEAVY = (
    "smtplib",
    "ssl",
    "_ssl",
    "email",
    "email.message",
    "email.parser",
    "mercurial.mail",
    "securesmtp._core",
    "securesmtp.transport",
    "securesmtp.settings",
    "securesmtp.errors",
    "securesmtp.debugsmtp",
    "securesmtp.text",
)


def loaded_modules(tmp_path, cwd, args, extension=True):
    """Modules whose code ran during ``hg ARGS`` (a set of names)."""
    out = tmp_path / "modules.json"
    hgrc = tmp_path / "hgrc"
    lines = ["[extensions]", "patchbomb ="]
    if extension:
        lines.append("securesmtp =")
    hgrc.write_text("\n".join(lines) + "\n")
    env = hg._env({"HGRCPATH": str(hgrc)})
    # hg's own settings could turn demandimport off; the default is on.
    env.pop("HGDEMANDIMPORT", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), hg.HG] + list(args),
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=60,
    )
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    assert "failed to import extension" not in err, err
    return proc.returncode, set(json.loads(out.read_text())), err


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    return hg.make_repo(tmp_path_factory.mktemp("imports"), n_patches=1)


@pytest.mark.parametrize("args", [["version"], ["root"], ["status"], ["help", "securesmtp"]])
def test_everyday_commands_do_not_load_the_mail_stack(tmp_path, small_repo, args):
    code, with_ext, err = loaded_modules(tmp_path, small_repo, args)
    assert code == 0, err
    # The extension itself is loaded (or this test proves nothing) ...
    assert "securesmtp" in with_ext
    # ... and nothing heavy came with it.
    assert sorted(with_ext & set(HEAVY)) == []
    # Whatever else it loads, stock hg loads too (give or take the
    # extension's own package).
    code, without_ext, err = loaded_modules(tmp_path, small_repo, args, extension=False)
    assert code == 0, err
    assert sorted(with_ext - without_ext - {"securesmtp"}) == []


def test_help_still_lists_the_command_and_settings(small_repo):
    hgrc = {"extensions": {"securesmtp": ""}}
    code, out, err = hg.run_hg(small_repo, ["help", "securesmtp"], hgrc=hgrc)
    assert code == 0, err
    assert "debugsmtp" in out
    assert "allow-cleartext-auth" in out
    code, out, err = hg.run_hg(small_repo, ["help", "debugsmtp"], hgrc=hgrc)
    assert code == 0, err
    assert "hg debugsmtp [HOST[:PORT]]" in out


def test_the_probe_sees_the_heavy_imports_of_debugsmtp(tmp_path, small_repo):
    # A port nothing listens on: debugsmtp fails fast, after loading the
    # core and the shim, which is what this checks.
    code, loaded, err = loaded_modules(
        tmp_path, small_repo, ["debugsmtp", "127.0.0.1:1", "--config", "smtp.timeout=2"]
    )
    assert code != 0
    assert "abort:" in err
    assert {"securesmtp._core", "securesmtp.debugsmtp"} <= loaded


def test_the_wrapper_is_in_place_when_mail_loads(tmp_path, small_repo):
    # hg email through an SMTP server that is not there: the message comes
    # from the extension (stock hg would print a socket error), proving the
    # lazily installed wrapper replaced mail._smtp.
    hgrc = hg.smtp_hgrc(1, tls="starttls", host="127.0.0.1", extra={"smtp": {"timeout": "2"}})
    code, out, err = hg.run_hg(small_repo, hg.email_args(revs="1", n_patches=1), hgrc=hgrc)
    assert code != 0
    assert "abort:" in err
    code2, loaded, err2 = loaded_modules(
        tmp_path, small_repo, hg.email_args(revs="1", n_patches=1) + [
            "--config", "smtp.host=127.0.0.1", "--config", "smtp.port=1",
            "--config", "smtp.tls=starttls", "--config", "smtp.timeout=2",
            "--config", "email.method=smtp",
        ],
    )
    assert code2 != 0
    assert "securesmtp.transport" in loaded and "securesmtp._core" in loaded, err2


def test_demandimport_off_still_works(small_repo):
    # Without demandimport (HGDEMANDIMPORT=disable) modules load eagerly; the
    # wrapper must be installed all the same.
    hgrc = hg.smtp_hgrc(1, tls="starttls", host="127.0.0.1", extra={"smtp": {"timeout": "2"}})
    code, out, err = hg.run_hg(
        small_repo, hg.email_args(revs="1", n_patches=1), hgrc=hgrc,
        env={"HGDEMANDIMPORT": "disable"},
    )
    assert code != 0
    assert "abort:" in err
    assert os.path.isdir(small_repo)
