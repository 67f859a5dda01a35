"""Run hg with its own hosts file, so that names such as smtp.gmail.com
resolve to 127.0.0.1 for that process only (a private mount namespace with
a hosts file bound over /etc/hosts; nothing of the machine's changes).

    prefix, why = hosts.prefix(directory, ["smtp.gmail.com"])
    hg.run_hg(repo, args, cfg, prefix=prefix)   # prefix is None, and why
                                                # says why, when impossible
"""

import os
import shutil
import subprocess
import sys


def prefix(directory, names):
    """A command prefix that runs a command with ``names`` resolving to
    127.0.0.1, or None (and why) when no mount namespace can be made."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare(1) not found"
    # The system's hosts file plus our names, so localhost resolves as usual.
    try:
        with open("/etc/hosts") as fp:
            system = fp.read()
    except OSError:
        system = "127.0.0.1 localhost\n"
    hosts = os.path.join(directory, "hosts")
    with open(hosts, "w") as fp:
        fp.write(system.rstrip("\n") + "\n127.0.0.1 %s\n" % " ".join(names))
    script = os.path.join(directory, "with-hosts.sh")
    with open(script, "w") as fp:
        fp.write('#!/bin/sh\nhosts=$1; shift\nmount --bind "$hosts" /etc/hosts || exit 97\n'
                 'exec "$@"\n')
    # As root a mount namespace is enough; otherwise (or where root lacks
    # CAP_SYS_ADMIN, as in a default container) a user namespace maps us to
    # root inside it.
    attempts = ([["-m"]] if os.geteuid() == 0 else []) + [["-r", "-m"]]
    probe = "import socket; [socket.getaddrinfo(h, 25) for h in %r]" % (tuple(names),)
    why = "?"
    for flags in attempts:
        command = [unshare] + flags + ["--propagation", "private", "sh", script, hosts]
        try:
            proc = subprocess.run(command + [sys.executable, "-c", probe], capture_output=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = "cannot run unshare: %s" % exc
            continue
        if proc.returncode == 0:
            return command, None
        why = "no private mount namespace for a hosts file: %s" % (
            proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
    return None, why
