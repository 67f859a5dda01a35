"""The README's hgrc snippets, taken verbatim, make ``hg email`` work.

The snippets are the README's fenced ```ini blocks. The Install snippet
sends a series through a local STARTTLS server with AUTH; only what names
that server is changed, line by line, and nothing else is added to the hgrc:

- ``host``, ``port`` and ``username`` under ``[smtp]`` get the test server's
  values (``localhost``, its port, its user);
- ``[web] cacerts`` names the test CA (a real server's certificate chains to
  a CA the system already trusts).

The password is typed at the prompt, as the README says (``ui.interactive``
and ``ui.nontty`` on the command line let the test type it on stdin), and
``hg email``'s own options come from the command line. hg runs with the
snippet as its only hgrc (not support/hg.py's base config, which enables
patchbomb and would hide a snippet that does not).
"""

import os
import re
import subprocess

import pytest
from support import hg, servers
from support.asserts import assert_series_delivered

README = os.path.join(hg.ROOT, "README.md")

# The one line hg debugsmtp and hg help securesmtp print without patchbomb.
NO_PATCHBOMB = '(hg email needs patchbomb: add "patchbomb =" under [extensions])'


def ini_blocks():
    with open(README, encoding="utf-8") as fp:
        text = fp.read()
    return re.findall(r"^```ini\n(.*?)^```$", text, re.M | re.S)


def _substitute(block, **values):
    """``block`` with the value of each ``key = value`` line in ``values``
    replaced (under [smtp], the only section with these keys)."""
    seen = set()

    def value(m):
        seen.add(m.group(1))
        return "%s = %s" % (m.group(1), values[m.group(1)])

    out = re.sub(r"^(%s) = .*$" % "|".join(values), value, block, flags=re.M)
    assert seen == set(values), "the snippet lacks %s" % sorted(set(values) - seen)
    return out


def _run(cwd, hgrc, args, input=None, tmp_path=None):
    """hg with ``hgrc`` as its only configuration."""
    path = os.path.join(str(tmp_path), "hgrc")
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(hgrc)
    env = hg._env({"HGRCPATH": path})
    proc = subprocess.run(
        [hg.HG] + [str(a) for a in args], cwd=str(cwd), env=env,
        input=(input or "").encode(), capture_output=True, timeout=60,
    )
    out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    hg.check_output(out, err)
    return proc.returncode, out, err


def test_the_install_hgrc_sends_a_series(repo, series, pki, smtp_server, tmp_path):
    block = next(b for b in ini_blocks() if "host = smtp.example.org" in b and "[smtp]" in b)
    server = smtp_server(pki.rsa, "starttls", user=servers.USER, password=servers.PASSWORD)
    hgrc = _substitute(block, host="localhost", port=server.port, username=servers.USER)
    hgrc += "\n[web]\ncacerts = %s\n" % pki.ca.cert
    args = hg.email_args() + ["--config", "ui.interactive=true", "--config", "ui.nontty=true"]
    code, out, err = _run(repo, hgrc, args, input=servers.PASSWORD + "\n", tmp_path=tmp_path)
    assert code == 0, (code, out, err)
    assert "password:" in out + err, (out, err)
    assert_series_delivered(server, series, "starttls")
    assert server.saw("AUTH")


def test_every_hgrc_in_the_readme_enables_what_it_needs(repo, tmp_path):
    blocks = [b for b in ini_blocks() if "[smtp]" in b]
    assert len(blocks) >= 7, blocks  # Install, five providers, notify
    for block in blocks:
        assert re.search(r"^securesmtp =$", block, re.M), block
        # A snippet for hg email must make the command exist; the notify
        # one sends through the notify hook instead.
        command = "email" if "notify =" not in block else "help"
        args = [command, "--help"] if command == "email" else ["help", "notify"]
        code, out, err = _run(repo, block, args, tmp_path=tmp_path)
        assert code == 0, (block, out, err)


@pytest.mark.parametrize("args", [["help", "securesmtp"], ["debugsmtp", "127.0.0.1:1"]])
def test_without_patchbomb_the_extension_says_what_to_add(repo, tmp_path, args):
    hgrc = "[extensions]\nsecuresmtp =\n[smtp]\ntimeout = 2\n"
    code, out, err = _run(repo, hgrc, args, tmp_path=tmp_path)
    assert NO_PATCHBOMB in (out + err).splitlines(), (out, err)
    code, out, err = _run(repo, "[extensions]\npatchbomb =\n" + hgrc, args, tmp_path=tmp_path)
    assert NO_PATCHBOMB not in out + err, (out, err)
