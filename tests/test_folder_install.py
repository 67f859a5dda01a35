"""The install without pip: the folder ``make dist`` unpacks from the wheel,
named by path under ``[extensions]``, as on a distribution's Mercurial or
TortoiseHg's bundled Python.

A folder that cannot run here (built for another system, or a Python older
than the core's 3.9) says so in one line and leaves stock ``hg email``
working: no traceback, nothing wrapped.
"""

import glob
import os
import shutil

import pytest
from support import hg, servers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = os.path.join(ROOT, ".work", "dist")
OLD_PYTHON_HG = glob.glob(os.path.join(ROOT, ".work", "venvs", "old-python-*", "bin", "hg"))


def _folder(platform):
    found = sorted(glob.glob(os.path.join(DIST, "securesmtp-*-%s" % platform, "securesmtp")))
    assert found, "no folder for %s in %s: run scripts/setup.sh (it runs scripts/dist.py)" % (platform, DIST)
    return found[0]


@pytest.fixture(scope="module")
def linux_folder():
    return _folder("*linux*")


@pytest.fixture
def windows_folder(linux_folder, tmp_path):
    """The Windows folder when ``make windows`` made one, else the Linux
    folder with its core under the name only Windows loads (the check reads
    names; what is in the file does not matter to it)."""
    found = sorted(glob.glob(os.path.join(DIST, "securesmtp-*-win_amd64", "securesmtp")))
    if found:
        return found[0]
    folder = str(tmp_path / "securesmtp")
    shutil.copytree(linux_folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (core,) = glob.glob(os.path.join(folder, "_core.*.so"))
    os.rename(core, os.path.join(folder, "_core.pyd"))
    return folder


def _plain_hgrc(port, folder):
    cfg = hg.smtp_hgrc(port, tls="none")
    cfg["extensions"] = {"securesmtp": folder}
    return cfg


def test_the_zip_holds_the_folder(linux_folder):
    import zipfile

    archive = os.path.dirname(linux_folder) + ".zip"
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    assert "securesmtp/__init__.py" in names
    assert any(n.startswith("securesmtp/_core.") and n.endswith(".so") for n in names), names
    assert all(n.startswith("securesmtp/") for n in names), names


def test_the_folder_named_by_path_sends_and_refuses_a_forged_server(tmp_path, pki, smtp_server, repo, linux_folder):
    server = smtp_server(pki.rsa, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert)
    cfg["extensions"] = {"securesmtp": linux_folder}
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--debug"], cfg)
    assert code == 0, err
    assert len(server.wait_for_messages(3)) == 3
    assert "C: EHLO" in out + err  # the extension's transcript, not smtplib's
    forged = smtp_server(pki.selfsigned, "starttls")
    cfg = hg.smtp_hgrc(forged.port, cacerts=pki.ca.cert)
    cfg["extensions"] = {"securesmtp": linux_folder}
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255, err
    assert "localhost:fingerprints = sha256:" in err, err
    forged.assert_nothing_sent()


def test_the_readmes_folder_snippet_sends(tmp_path, pki, smtp_server, repo, linux_folder):
    """The README's snippet for a folder, its path swapped for the real
    folder (through a ``~`` as written: HOME is set to hold it)."""
    import re

    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fp:
        readme = fp.read()
    section = readme[readme.index("### Without pip"):]
    block = re.findall(r"^```ini\n(.*?)^```$", section, re.M | re.S)[0]
    assert "securesmtp = ~/hgext/securesmtp" in block, block
    home = tmp_path / "home"
    (home / "hgext").mkdir(parents=True)
    shutil.copytree(linux_folder, str(home / "hgext" / "securesmtp"))
    server = smtp_server(pki.rsa, "starttls")
    cfg = hg.smtp_hgrc(server.port, cacerts=pki.ca.cert, extension=False)
    code, out, err = hg.run_hg(repo, hg.email_args() + ["--debug"], block + hg.hgrc_text(cfg),
                               env={"HOME": str(home)})
    assert code == 0, err
    assert "C: EHLO" in out + err
    assert len(server.wait_for_messages(3)) == 3


# Stock hg email sends bare LF line endings, which aiosmtpd takes as one
# line: over 1000 bytes it answers "500 Line too long". A patch small enough
# for stock.
STOCK_CAN_SEND = hg.email_args(revs="0")


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("small") / "repo")
    hg.run_hg(os.path.dirname(path), ["init", path])
    with open(os.path.join(path, "a"), "w") as fp:
        fp.write("a\n")
    code, out, err = hg.run_hg(path, ["commit", "-Am", "small", "-d", "2025-06-01 12:00 +0000"])
    assert code == 0, err
    return path


def _assert_disabled_in_one_line(err, why):
    lines = [line for line in err.splitlines() if "securesmtp" in line]
    assert len(lines) == 1 and lines[0].startswith("(securesmtp: " + why), err
    assert lines[0].endswith("; disabling)"), err


def test_a_folder_for_another_system_says_so_and_stock_hg_email_sends(small_repo, windows_folder):
    server = servers.SmtpServer(mode="plain").start()
    try:
        code, out, err = hg.run_hg(small_repo, STOCK_CAN_SEND, _plain_hgrc(server.port, windows_folder))
        assert code == 0, err
        _assert_disabled_in_one_line(err, "this copy is built for Windows, not for linux (get the one")
        assert len(server.wait_for_messages(1)) == 1
        # Mercurial's own client: no QUIT (the extension always sends one).
        assert "QUIT" not in server.verbs
        code, out, err = hg.run_hg(small_repo, ["debugsmtp"], _plain_hgrc(server.port, windows_folder))
        assert code == 255
        assert "abort: securesmtp: this copy is built for Windows" in err, err
    finally:
        server.stop()


def test_a_python_older_than_39_says_so_and_stock_hg_email_sends(small_repo, linux_folder, monkeypatch):
    assert OLD_PYTHON_HG, "no old-python venv: run scripts/setup.sh --matrix"
    monkeypatch.setattr(hg, "HG", OLD_PYTHON_HG[0])
    server = servers.SmtpServer(mode="plain").start()
    try:
        code, out, err = hg.run_hg(small_repo, STOCK_CAN_SEND, _plain_hgrc(server.port, linux_folder))
        assert code == 0, err
        _assert_disabled_in_one_line(err, "it needs Python 3.9 or newer, and Mercurial runs on 3.8")
        assert len(server.wait_for_messages(1)) == 1
        assert "QUIT" not in server.verbs
    finally:
        server.stop()
