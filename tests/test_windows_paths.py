"""The shim's Windows paths, tested here where they can be (the Python half
does not run on Windows in CI: docs/compat.md).

- ``smtp.password-command`` is split by the Microsoft C runtime's rules on
  Windows: backslashes in paths stay, quotes group, and what Python's
  ``subprocess`` writes back (``list2cmdline``) reads back the same;
- ``~\\`` and ``~/`` name the home directory there;
- settings that name files (``web.cacerts``,
  ``hostsecurity.<host>:verifycertsfile``) keep backslashes and a drive
  letter's colon as written.
"""

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import hg

from securesmtp import credentials


@pytest.mark.parametrize(
    "line, argv",
    [
        (r"C:\Users\alice\bin\token.cmd --account work",
         [r"C:\Users\alice\bin\token.cmd", "--account", "work"]),
        (r'"C:\Program Files\pass\pass.exe" show mail/example',
         [r"C:\Program Files\pass\pass.exe", "show", "mail/example"]),
        (r'oama access "alice@example.com"', ["oama", "access", "alice@example.com"]),
        (r'tool "a \"quoted\" word" \\server\share\x',
         ["tool", 'a "quoted" word', r"\\server\share\x"]),
        ('tool "" x\ty', ["tool", "", "x", "y"]),
        (r'tool "C:\dir\\" next', ["tool", "C:\\dir\\", "next"]),
    ],
)
def test_a_windows_command_line_splits_as_the_c_runtime_splits_it(line, argv):
    assert credentials.split_windows(line) == argv


def test_an_unclosed_quote_is_a_config_error():
    from mercurial import error

    with pytest.raises(error.ConfigError) as exc:
        credentials._argv(b'"C:\\Program Files\\pass.exe show', windows=True)
    assert b"cannot be parsed" in exc.value.message


_ARG = st.text(alphabet=st.sampled_from(list('ab \t"\\:~/.-')), max_size=12)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_ARG, min_size=1, max_size=5))
def test_what_subprocess_writes_for_windows_reads_back_the_same(args):
    """subprocess.list2cmdline quotes a list for CreateProcess; the split
    must be its inverse, or an argument would change on the way."""
    assert credentials.split_windows(subprocess.list2cmdline(args)) == args


def test_a_tilde_names_the_home_directory_in_either_separator(monkeypatch, tmp_path):
    # Windows' home: USERPROFILE, as Python's ntpath reads it there.
    monkeypatch.setenv("USERPROFILE", "C:\\Users\\alice")
    argv = credentials._argv(b"~\\bin\\token.cmd ~/secret ~", windows=True)
    assert argv == ["C:\\Users\\alice\\bin\\token.cmd", "C:\\Users\\alice/secret", "C:\\Users\\alice"]
    monkeypatch.setenv("HOME", str(tmp_path))
    # Elsewhere a backslash is an escape, as in a shell.
    assert credentials._argv(b"tok\\ en ~/x", windows=False) == ["tok en", os.path.join(str(tmp_path), "x")]


@pytest.mark.parametrize("setting", ["web.cacerts", "verifycertsfile"])
def test_a_ca_file_named_with_a_drive_letter_and_backslashes_is_read_as_written(
    tmp_path, pki, smtp_server, repo, setting
):
    """A file whose name holds ``C:\\certs\\ca.pem`` as written (on Linux one
    name, in the repository's folder): nothing splits it at the colon or
    the backslashes on its way to the core."""
    name = r"C:\certs\ca.pem"
    with open(pki.ca.cert, "rb") as src, open(os.path.join(repo, name), "wb") as dst:
        dst.write(src.read())
    server = smtp_server(pki.rsa, "starttls")
    if setting == "web.cacerts":
        cfg = hg.smtp_hgrc(server.port, cacerts=name)
    else:
        cfg = hg.smtp_hgrc(server.port, hostsecurity={"localhost:verifycertsfile": name})
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 0, err
    assert len(server.wait_for_messages(3)) == 3
    # The same name, one character off, is not found (the name was used).
    wrong = name.replace("ca.pem", "cb.pem")
    if setting == "web.cacerts":
        cfg = hg.smtp_hgrc(server.port, cacerts=wrong)
    else:
        cfg = hg.smtp_hgrc(server.port, hostsecurity={"localhost:verifycertsfile": wrong})
    code, out, err = hg.run_hg(repo, hg.email_args(), cfg)
    assert code == 255 and "does not exist: C:\\certs\\cb.pem" in err, err
