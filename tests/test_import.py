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
import time

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
    # The finders any import would still consult (by their class's module).
    finders = [type(f).__module__ for f in sys.meta_path]
    finders += [type(getattr(f, "_finder", None)).__module__ for f in sys.meta_path]
    with open(path, "w") as fp:
        json.dump({"modules": loaded, "finders": finders}, fp)

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
    "securesmtp.reply",
    "securesmtp.connection",
    "securesmtp.login",
    "securesmtp.series",
    "securesmtp.settings",
    "securesmtp.errors",
    "securesmtp.debugsmtp",
    "securesmtp.text",
)


def loaded_modules(tmp_path, cwd, args, extensions=("securesmtp",)):
    """Modules whose code ran during ``hg ARGS`` (a set of names)."""
    code, probed, err = probe(tmp_path, cwd, args, extensions)
    return code, set(probed["modules"]), err


def probe(tmp_path, cwd, args, extensions=("securesmtp",)):
    """What the probe saw at the end of ``hg ARGS``: ``modules`` whose code
    ran, and the ``finders`` left in sys.meta_path (their modules)."""
    out = tmp_path / "modules.json"
    hgrc = tmp_path / "hgrc"
    hgrc.write_text("[extensions]\n" + "".join("%s =\n" % e for e in extensions))
    env = hg._env({"HGRCPATH": str(hgrc)})
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
    return proc.returncode, json.loads(out.read_text()), err


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    repo = hg.make_repo(tmp_path_factory.mktemp("imports"), n_patches=1)
    # A file written in the same second as the dirstate is "ambiguous" and
    # makes every status read its revlogs (more modules) until a status runs
    # a second later; files dated in the past, then one status that rewrites
    # the dirstate, give every probed run the same settled state.
    past = time.time() - 60
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d != ".hg"]
        for name in files:
            os.utime(os.path.join(root, name), (past, past))
    code, out, err = hg.run_hg(repo, ["status"])
    assert code == 0, err
    return repo


# What hg's extension loader imports for any third-party extension (its
# version check reads mercurial.__version__).
LOADER = {"securesmtp", "hgext", "hgext3rd", "mercurial.__version__"}


@pytest.mark.parametrize("args", [["version"], ["root"], ["status"]])
def test_everyday_commands_do_not_load_the_mail_stack(tmp_path, small_repo, args):
    code, with_ext, err = loaded_modules(tmp_path, small_repo, args)
    assert code == 0, err
    # The extension itself is loaded (or this test proves nothing) ...
    assert "securesmtp" in with_ext
    # ... and nothing heavy came with it ...
    assert sorted(with_ext & set(HEAVY)) == []
    # ... nor anything else stock hg does not load.
    code, stock, err = loaded_modules(tmp_path, small_repo, args, extensions=())
    assert code == 0, err
    assert sorted(with_ext - stock - LOADER) == []


@pytest.mark.parametrize("args", [["version"], ["status"]])
def test_no_finder_of_the_extension_is_left_for_every_import(tmp_path, small_repo, args):
    # A sys.meta_path finder is called for every import the command makes
    # after the extension loads; it used to be three of them, the largest
    # part of what enabling the extension cost (bench/import_cost.py).
    code, probed, err = probe(tmp_path, small_repo, args, extensions=("patchbomb", "securesmtp"))
    assert code == 0, err
    assert "securesmtp" in probed["modules"]
    finders = [f for f in probed["finders"] if f.startswith("securesmtp")]
    if "mercurial.hgweb" in probed["modules"]:
        assert finders == []
    else:
        # Mercurial 6 does not load the hgweb package for every command: the
        # one finder waiting for its modules (for hg serve) stays.
        assert finders == ["securesmtp"]


@pytest.mark.parametrize("args", [["version"], ["status"]])
def test_nothing_added_to_what_patchbomb_loads(tmp_path, small_repo, args):
    # patchbomb itself loads the email package; the extension adds nothing.
    code, with_ext, err = loaded_modules(
        tmp_path, small_repo, args, extensions=("patchbomb", "securesmtp")
    )
    assert code == 0, err
    code, stock, err = loaded_modules(tmp_path, small_repo, args, extensions=("patchbomb",))
    assert code == 0, err
    assert sorted(with_ext - stock - LOADER) == []
    assert not {"smtplib", "ssl", "mercurial.mail", "securesmtp._core"} & with_ext


def test_help_does_not_load_the_mail_stack(tmp_path, small_repo):
    code, loaded, err = loaded_modules(tmp_path, small_repo, ["help", "securesmtp"])
    assert code == 0, err
    assert sorted(loaded & set(HEAVY)) == []


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


def _email_with_a_typo(extra=()):
    # smtp.tls = bogus: the extension refuses it before connecting; stock hg
    # would take it for cleartext and try port 1. Only the wrapper installed
    # when mercurial.mail loads can produce this message.
    return hg.email_args(revs="1", n_patches=1) + [
        "--config", "smtp.host=127.0.0.1", "--config", "smtp.port=1",
        "--config", "smtp.tls=bogus", "--config", "email.method=smtp",
    ] + list(extra)


def test_the_wrapper_is_in_place_when_mail_loads(tmp_path, small_repo):
    code, loaded, err = loaded_modules(
        tmp_path, small_repo, _email_with_a_typo(), extensions=("patchbomb", "securesmtp")
    )
    assert code != 0
    assert "smtp.tls has unknown value 'bogus'" in err
    assert {"securesmtp.series", "mercurial.mail"} <= loaded


@pytest.mark.parametrize("demandimport", ["enable", "disable"])
def test_hg_email_goes_through_the_extension(small_repo, demandimport):
    hgrc = {"extensions": {"securesmtp": ""}}  # patchbomb is in hg's BASE_HGRC
    code, out, err = hg.run_hg(
        small_repo, _email_with_a_typo(), hgrc=hgrc,
        env={"HGDEMANDIMPORT": demandimport},
    )
    assert code != 0
    assert "smtp.tls has unknown value 'bogus'" in err
