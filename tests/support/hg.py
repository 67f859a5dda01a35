"""Run the real ``hg`` in a sealed environment.

- ``make_repo(tmp_path, n_patches=3)``: a real repository with ``n_patches``
  commits to mail; one patch has a line over 1000 bytes, one commit message
  has non-ASCII UTF-8 text and lines starting with a dot.
- ``run_hg(repo, args, hgrc, ...)``: runs ``.venv/bin/hg`` (or ``$HG``) with
  HGRCPATH pointing at an hgrc written for this run only, so no user or
  system configuration leaks in. Returns ``(returncode, stdout, stderr)`` as
  str. Every run is checked for secrets (the test password and its base64
  forms) in stdout and stderr, and for Python tracebacks.
- ``email_args(...)``: ``hg email`` arguments that need no prompt.
- ``mbox_messages(repo, args, hgrc)``: the messages ``hg email --mbox``
  writes for the same arguments, split, as bytes.

Same ``--date`` means same Date and Message-Id headers in every run (the
host part of Message-Id comes from HGHOSTNAME, set here).
"""

import os
import re
import subprocess
import sys
import tempfile

from . import servers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def hg_executable():
    env = os.environ.get("HG")
    if env:
        return env
    venv_hg = os.path.join(ROOT, ".venv", "bin", "hg")
    if os.path.exists(venv_hg):
        return venv_hg
    return os.path.join(os.path.dirname(sys.executable), "hg")


HG = hg_executable()

SENDER = "Alice Tester <alice@example.test>"
SENDER_ADDR = "alice@example.test"
TO = "a@example.test"
CC = "b@example.test"
DATE = "2026-01-01 00:00"
HOSTNAME = "hg.securesmtp.test"

LONG_LINE = "x" * 1500
UNICODE_TEXT = "Grüße aus Köln: naïve café, Ελληνικά, 日本語"


class SecretLeak(AssertionError):
    pass


class TracebackInOutput(AssertionError):
    pass


class ExtensionNotLoaded(AssertionError):
    pass


def _env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HG")}
    env.pop("PYTHONWARNINGS", None)
    env.update(
        HGENCODING="utf-8",
        HGENCODINGMODE="strict",
        HGHOSTNAME=HOSTNAME,
        HGUSER="Test User <test@example.test>",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        TZ="UTC",
        PYTHONIOENCODING="utf-8",
    )
    if extra:
        env.update(extra)
    return env


# Where hg takes the extension from: by name from its Python's packages, or
# (SECURESMTP_EXTENSION: a folder unpacked from the wheel) by path, as with a
# distribution's Mercurial or TortoiseHg.
EXTENSION_PATH = os.environ.get("SECURESMTP_EXTENSION", "")


def extension_by_path(text):
    """``text`` (an hgrc) with ``securesmtp =`` naming the folder when the
    tests run against one."""
    if not EXTENSION_PATH:
        return text
    return re.sub(r"(?m)^securesmtp\s*=\s*$", "securesmtp = " + EXTENSION_PATH.replace("\\", "\\\\"), text)


def hgrc_text(hgrc):
    """An hgrc from a ``{section: {key: value}}`` dict, or text as is."""
    if hgrc is None:
        return ""
    if isinstance(hgrc, str):
        return hgrc
    lines = []
    for section, items in hgrc.items():
        lines.append("[%s]" % section)
        for key, value in items.items():
            if value is None:
                continue
            lines.append("%s = %s" % (key, value))
        lines.append("")
    return "\n".join(lines) + "\n"


BASE_HGRC = """\
[extensions]
patchbomb =
[ui]
interactive = false
username = Test User <test@example.test>
[patchbomb]
intro = never
confirm = false
"""


def _configured_passwords(text):
    """Any smtp password in an hgrc (so tests with other passwords are covered)."""
    found = []
    section = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip()
        elif section == "smtp" and "=" in s:
            key, value = s.split("=", 1)
            if key.strip() == "password" and value.strip():
                found.append(value.strip())
    return found


def check_output(stdout, stderr, secrets=None, allow_traceback=False):
    """Fail if a secret (default: the test password's forms) or a traceback
    appears in either stream."""
    if secrets is None:
        secrets = servers.secret_forms()
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        for secret in secrets:
            if secret and secret in text:
                raise SecretLeak(
                    "a secret (%r...) appears in %s:\n%s" % (secret[:4], name, text)
                )
        if not allow_traceback and "Traceback" in text:
            raise TracebackInOutput("Python traceback in %s:\n%s" % (name, text))
        # hg carries on without an extension it cannot import: the run would
        # silently test stock Mercurial instead.
        if "failed to import extension" in text:
            raise ExtensionNotLoaded("an extension failed to load (%s):\n%s" % (name, text))


def run_hg(
    repo,
    args,
    hgrc=None,
    env=None,
    timeout=60,
    input=None,
    allow_traceback=False,
    secrets=None,
    prefix=(),
):
    """Run hg in ``repo``; return ``(returncode, stdout, stderr)`` as str.

    ``hgrc`` (dict or text) is added after a base config that sets
    ``ui.interactive=false`` (set ``[ui] interactive = true`` to override)
    and ``patchbomb.intro=never``. Output is checked for secrets (the test
    password, its base64 forms, and any ``smtp.password`` in ``hgrc``) and
    for tracebacks; either fails the calling test.
    """
    text = extension_by_path(BASE_HGRC + hgrc_text(hgrc))
    fd, path = tempfile.mkstemp(prefix="hgrc-", suffix=".rc")
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write(text)
    forbidden = set(servers.secret_forms() if secrets is None else secrets)
    for pw in _configured_passwords(text):
        forbidden.update(servers.secret_forms(password=pw))
    # ``prefix``: a command hg runs under (e.g. one giving it its own hosts file).
    try:
        environ = _env(env)
        environ["HGRCPATH"] = path
        proc = subprocess.run(
            list(prefix) + [HG] + [str(a) for a in args],
            cwd=str(repo),
            env=environ,
            input=input.encode("utf-8") if isinstance(input, str) else input,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    finally:
        os.unlink(path)
    out = proc.stdout.decode("utf-8")
    err = proc.stderr.decode("utf-8")
    check_output(out, err, sorted(forbidden), allow_traceback=allow_traceback)
    return proc.returncode, out, err


def _must(result, what):
    code, out, err = result
    if code != 0:
        raise RuntimeError("%s failed (%d):\n%s\n%s" % (what, code, out, err))
    return result


def make_repo(tmp_path, n_patches=3, long_line=True, name="repo"):
    """A repository with ``n_patches`` commits on top of a root commit.

    Patch 1 carries a non-ASCII UTF-8 commit message (hg sends it base64);
    patch 2 adds a line of 1500 bytes when ``long_line`` (hg sends it
    quoted-printable; either way each message is over 1000 bytes, so bare LF
    line endings show); patches 3 and later are ASCII with a commit message
    holding a line that starts with a dot and a lone ``.`` line (dot-stuffing).
    Returns the repository path.
    """
    repo = os.path.join(str(tmp_path), name)
    _must(run_hg(str(tmp_path), ["init", repo]), "hg init")

    def write(fname, content):
        with open(os.path.join(repo, fname), "w", encoding="utf-8", newline="\n") as fp:
            fp.write(content)

    def commit(message):
        msgfile = os.path.join(str(tmp_path), name + "-msg.txt")
        with open(msgfile, "w", encoding="utf-8", newline="\n") as fp:
            fp.write(message)
        _must(
            run_hg(repo, ["commit", "-A", "-l", msgfile, "-d", "2025-06-01 12:00 +0000"]),
            "hg commit",
        )

    write("README", "a project\n")
    commit("root")
    for i in range(1, n_patches + 1):
        if i == 1:
            write("hello.txt", "hello\n%s\n" % UNICODE_TEXT)
            message = (
                "hello: grüße, naïve café (%s)\n\n"
                "A commit message with non-ASCII text: %s.\n"
                ".a line that starts with a dot\n"
                ".\n"
                "..two dots\n" % (i, UNICODE_TEXT)
            )
        elif i == 2:
            write("long.txt", ("%s\nshort line\n" % LONG_LINE) if long_line else "short\n")
            message = "long: add a file with a %d-byte line" % len(LONG_LINE)
        else:
            write("file%d.txt" % i, "".join("line %d of file %d\n" % (j, i) for j in range(20)))
            # Plain ASCII, so the body goes out as 7bit text, not base64:
            # these lines reach the wire as written and must be dot-stuffed.
            message = (
                "file%d: add twenty lines\n\n"
                ".hgignore-like line starting with a dot\n"
                ".\n"
                "the line above is a lone dot; this one must still arrive\n" % i
            )
        commit(message)
    return repo


def email_args(to=TO, cc=CC, from_=SENDER, revs=None, date=DATE, n_patches=3):
    """``hg email`` arguments that need no prompt (intro is off in BASE_HGRC)."""
    if revs is None:
        revs = "1:%d" % n_patches
    args = ["email", "--from", from_, "--to", to]
    if cc:
        args += ["--cc", cc]
    args += ["--date", date, "-r", revs, "--config", "patchbomb.intro=never"]
    return args


_MBOX_FROM = re.compile(
    rb"From (\S+) \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"
)


def split_mbox(data, sender=SENDER_ADDR):
    """Messages of an mbox written by Mercurial's ``mail._mbox``.

    Each entry is ``From <sender> <asctime>\\n`` + message + ``\\n\\n``;
    returns the message bytes exactly as hg passed them to ``sendmail``.
    """
    sep = re.compile(
        rb"(?:\A|\n\n)From " + re.escape(sender.encode()) + rb" \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n"
    )
    starts = list(sep.finditer(data))
    if not starts:
        return []
    messages = []
    for n, m in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(data)
        body = data[m.end():end]
        if n + 1 == len(starts):
            if not body.endswith(b"\n\n"):
                raise ValueError("mbox does not end with a blank line")
            body = body[:-2]
        messages.append(body)
    return messages


def mbox_messages(repo, args, hgrc=None, env=None, timeout=60):
    """Run ``hg email --mbox FILE`` with ``args``; return the message bytes."""
    fd, path = tempfile.mkstemp(prefix="hg-email-", suffix=".mbox")
    os.close(fd)
    try:
        code, out, err = run_hg(repo, list(args) + ["--mbox", path], hgrc=hgrc, env=env, timeout=timeout)
        if code != 0:
            raise RuntimeError("hg email --mbox failed (%d):\n%s\n%s" % (code, out, err))
        with open(path, "rb") as fp:
            data = fp.read()
    finally:
        os.unlink(path)
    sender = SENDER_ADDR
    if "--from" in args:
        from email.utils import parseaddr

        sender = parseaddr(args[args.index("--from") + 1])[1]
    return split_mbox(data, sender)


def to_wire(message):
    """What a message looks like on the server after a correct SMTP send:
    every line ending CRLF (RFC 5321), and, if hg's message does not end with
    a newline, the CRLF that must precede the terminating ``.`` (RFC 5321
    4.1.1.4: it belongs to the data)."""
    wire = re.sub(rb"\r?\n", b"\r\n", message)
    if not wire.endswith(b"\r\n"):
        wire += b"\r\n"
    return wire


def smtp_hgrc(
    port,
    tls="starttls",
    cacerts=None,
    username=None,
    password=None,
    host="localhost",
    extension=True,
    hostsecurity=None,
    hostfingerprints=None,
    extra=None,
):
    """The hgrc of a test: ``[extensions] securesmtp =``, ``[smtp]``, ``[email]``,
    ``[web] cacerts``, ``[hostsecurity]``, ``[hostfingerprints]`` (dicts)."""
    cfg = {}
    if extension:
        cfg["extensions"] = {"securesmtp": ""}
    smtp = {"host": host, "port": str(port), "tls": tls}
    if username is not None:
        smtp["username"] = username
    if password is not None:
        smtp["password"] = password
    cfg["smtp"] = smtp
    cfg["email"] = {"from": SENDER, "method": "smtp"}
    if cacerts is not None:
        cfg["web"] = {"cacerts": cacerts}
    if hostsecurity:
        cfg["hostsecurity"] = dict(hostsecurity)
    if hostfingerprints:
        cfg["hostfingerprints"] = dict(hostfingerprints)
    for section, items in (extra or {}).items():
        cfg.setdefault(section, {}).update(items)
    return cfg
