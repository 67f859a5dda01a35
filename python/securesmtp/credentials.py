"""Where the AUTH secret comes from, and which SASL mechanisms may carry it.

In order: ``smtp.password``; the output of ``smtp.password-command``;
mercurial_keyring's SMTP password store, when that extension is enabled;
the prompt, when the session is interactive. The secret is a password, or
an OAuth2 access token for XOAUTH2 and OAUTHBEARER; it is never printed.
"""

import ntpath
import os
import shlex
import shutil
import subprocess

from mercurial import error, extensions
from mercurial.i18n import _

from .text import shown, tobytes

# smtp.auth names, in the order the help lists them.
MECHANISMS = ("xoauth2", "oauthbearer", "scram-sha-256", "plain", "login", "cram-md5", "external")
OAUTH = ("xoauth2", "oauthbearer")

_COMMAND_HINT = _(
    b"run the command yourself to see what is wrong; it must print the "
    b"password or access token on one line (smtp.password-command)"
)


def mechanisms(ui):
    """``smtp.auth`` as a list of SASL names (upper case), or None when unset."""
    value = ui.config(b"smtp", b"auth")
    if not value:
        return None
    names = []
    for word in value.replace(b",", b" ").split():
        low = word.lower().decode("ascii", "replace")
        if low not in MECHANISMS:
            raise error.ConfigError(
                _(b"smtp.auth has unknown mechanism %s") % shown(word),
                hint=_(b"use one or more of: %s") % b", ".join(m.encode() for m in MECHANISMS),
            )
        if low.upper() not in names:
            names.append(low.upper())
    if not names:
        # Only separators: the user meant to choose and chose nothing.
        raise error.ConfigError(
            _(b"smtp.auth lists no mechanism: '%s'") % value,
            hint=_(b"use one or more of: %s, or remove the setting")
            % b", ".join(m.encode() for m in MECHANISMS),
        )
    return names


def oauth_only(names):
    """Whether every allowed mechanism takes a token rather than a password."""
    return bool(names) and all(n.lower() in OAUTH for n in names)


def external_only(names):
    """Whether the only allowed mechanism is EXTERNAL (no secret at all: the
    server knows the client by its TLS certificate)."""
    return names == ["EXTERNAL"]


def from_command(ui, timeout):
    """The secret printed by ``smtp.password-command``, or None when unset.

    The command is split like a shell would split it but run without one.
    Anything but a zero exit with non-empty output aborts; the output is
    never shown, the command's own stderr goes to the user.
    """
    command = ui.config(b"smtp", b"password-command")
    if not command:
        return None
    argv = _argv(command)
    name = tobytes(os.path.basename(argv[0]))
    ui.note(_(b"(getting the smtp secret from smtp.password-command: %s)\n") % name)
    ui.flush()
    return _one_line(_run(ui, argv, name, timeout), name)


def _argv(command, windows=os.name == "nt"):
    text = os.fsdecode(command)
    try:
        # Windows programs read their command line by the C runtime's rules,
        # where a backslash is a path separator, not an escape:
        # "C:\Users\alice\token.cmd" must stay as written.
        argv = split_windows(text) if windows else shlex.split(text)
    except ValueError as exc:
        raise error.ConfigError(
            _(b"smtp.password-command cannot be parsed: %s") % tobytes(str(exc)),
            hint=_(b"check its quoting"),
        )
    if not argv:
        raise error.ConfigError(_(b"smtp.password-command is empty"))
    # No shell, but "~/bin/token" or "gpg -d ~/pw.gpg" (as msmtp's
    # passwordeval, which has one, takes them) should mean the same here.
    home = ("~/", "~\\") if windows else ("~/",)
    expanduser = ntpath.expanduser if windows else os.path.expanduser
    argv = [expanduser(a) if a == "~" or a.startswith(home) else a for a in argv]
    if windows:
        # CreateProcess finds only NAME.exe for a bare NAME; a helper written
        # as NAME.cmd or NAME.bat is found the way cmd.exe finds it
        # (PATHEXT), which shutil.which does on Windows.
        argv[0] = shutil.which(argv[0]) or argv[0]
    return argv


def split_windows(text):
    """``text`` split into arguments as the Microsoft C runtime splits a
    command line (CommandLineToArgvW): spaces and tabs separate outside
    double quotes; 2n backslashes before a quote are n backslashes and the
    quote opens or closes; 2n+1 are n and a literal quote; a backslash
    before anything else is itself; ``""`` inside quotes is one quote."""
    args = []
    current = []
    quoted = False
    started = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            j = i
            while j < len(text) and text[j] == "\\":
                j += 1
            if j < len(text) and text[j] == '"':
                current.append("\\" * ((j - i) // 2))
                if (j - i) % 2:
                    current.append('"')
                    i = j + 1
                else:
                    i = j
            else:
                current.append("\\" * (j - i))
                i = j
            started = True
            continue
        if c == '"':
            if quoted and text[i + 1 : i + 2] == '"':
                current.append('"')
                i += 2
                continue
            quoted = not quoted
            started = True
        elif c in " \t" and not quoted:
            if started:
                args.append("".join(current))
                current, started = [], False
        else:
            current.append(c)
            started = True
        i += 1
    if quoted:
        raise ValueError("No closing quotation")
    if started:
        args.append("".join(current))
    return args


def _run(ui, argv, name, timeout):
    """The command's output; an abort that says why when it has none."""
    try:
        proc = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stdin=None if ui.interactive() else subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise error.Abort(
            _(b"smtp.password-command failed: %s: command not found") % name,
            hint=_(b"install it or give its full path in smtp.password-command"),
        )
    except PermissionError:
        raise error.Abort(
            _(b"smtp.password-command failed: %s: permission denied") % name,
            hint=_(b"make it executable or give the interpreter in smtp.password-command"),
        )
    except OSError as exc:
        raise error.Abort(
            _(b"smtp.password-command failed: %s: %s") % (name, tobytes(exc.strerror or str(exc))),
            hint=_COMMAND_HINT,
        )
    except subprocess.TimeoutExpired:
        raise error.Abort(
            _(b"smtp.password-command failed: %s did not finish within %d seconds")
            % (name, timeout),
            hint=_(b"smtp.timeout sets how long to wait; " b"run the command yourself to check it"),
        )
    if proc.returncode != 0:
        raise error.Abort(
            _(b"smtp.password-command failed: %s exited with status %d")
            % (name, proc.returncode),
            hint=_COMMAND_HINT,
        )
    return proc.stdout


def _one_line(out, name):
    """The secret: the output's one line, without its line ending."""
    if out.endswith(b"\r\n"):
        out = out[:-2]
    elif out.endswith(b"\n"):
        out = out[:-1]
    if not out:
        raise error.Abort(
            _(b"smtp.password-command printed nothing: %s") % name,
            hint=_COMMAND_HINT,
        )
    if b"\n" in out or b"\r" in out:
        # A password store entry often holds more than the password (pass:
        # the password, then "login: ..." lines); sending all of it would
        # only earn a 535 that blames the password.
        raise error.Abort(
            _(b"smtp.password-command printed more than one line: %s") % name,
            hint=_COMMAND_HINT,
        )
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise error.Abort(
            _(b"smtp.password-command printed something that is not UTF-8: %s") % name,
            hint=_COMMAND_HINT,
        )


def keyring_store():
    """mercurial_keyring's password store, when that extension is enabled.

    Its own SMTP code cannot run on Python 3 (and is replaced by ours), but
    its store keeps SMTP passwords under its own key (user, host, port), so
    a password saved by it is found here and the other way round.
    """
    for _name, module in extensions.extensions():
        store = getattr(module, "password_store", None)
        if store is not None and hasattr(store, "get_smtp_password"):
            return store
    return None


def keyring_host(ui):
    """The host name mercurial_keyring keys SMTP passwords with: smtp.host as written."""
    return ui.config(b"smtp", b"host")
