"""Why a pipelined BDAT transaction can take 40 ms on loopback with Postfix.

    python bench/nagle_check.py        # as root (it runs a private Postfix)

A raw client (Python's ssl, no Mercurial, no securesmtp) sends messages of
several sizes to a private Postfix over STARTTLS, each as one write of
``MAIL, 3 x RCPT, BDAT <n> LAST`` plus the message (what securesmtp does
with CHUNKING), or with ``DATA`` (PIPELINING only), and prints the median
time per message, with and without ``TCP_QUICKACK`` re-armed before every
read of a reply.

What it shows (Postfix 3.7, Linux): once the transaction is larger than
Postfix's 4 KB input buffer, smtpd flushes the MAIL and RCPT replies when it
refills the buffer in the middle of the chunk, then writes the BDAT reply
separately. Postfix does not set TCP_NODELAY, so Nagle holds that second
small write until the first is acknowledged, and the client's kernel, in
interactive (delayed ACK) mode, waits up to 40 ms to acknowledge it because
the client has nothing to send: ~44 ms per message instead of ~4. ``DATA``
does not hit it (the server answers the body only once), and neither do
messages under ~4 KB. Re-arming TCP_QUICKACK on the client socket before
each blocking read makes the client acknowledge at once and the stall goes.
"""

import base64
import os
import socket
import ssl
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
try:
    import cryptography  # noqa: F401
except ImportError:
    if os.path.exists(VENV_PY) and os.path.realpath(sys.executable) != os.path.realpath(VENV_PY):
        os.execv(VENV_PY, [VENV_PY] + sys.argv)
    raise
sys.path.insert(0, os.path.join(ROOT, "tests"))

from support.postfix import Postfix  # noqa: E402

PASSWORD = "nagle-Pw-1"
RCPTS = (b"a@example.test", b"b@example.test", b"c@example.test")


def _reply(f):
    while True:
        line = f.readline(4096)
        if not line:
            raise EOFError
        if line[3:4] != b"-":
            return line


def session(pf, ctx, mode, lines, quickack, n=20):
    raw = socket.create_connection(("127.0.0.1", pf.starttls_port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = raw.makefile("rb")
    _reply(f)
    raw.sendall(b"EHLO nagle.example.test\r\n")
    _reply(f)
    raw.sendall(b"STARTTLS\r\n")
    _reply(f)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    s.sendall(b"EHLO nagle.example.test\r\n")
    _reply(f)
    s.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0" + PASSWORD.encode()) + b"\r\n")
    assert _reply(f).startswith(b"235")
    msg = b"Subject: nagle\r\n\r\n" + b"+a line of a patch, 40 bytes long......\r\n" * lines
    env = b"MAIL FROM:<alice@example.test>\r\n" + b"".join(b"RCPT TO:<%s>\r\n" % r for r in RCPTS)

    def read(k):
        for _ in range(k):
            if quickack:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            _reply(f)

    times = []
    for _ in range(n):
        t = time.perf_counter()
        if mode == "BDAT":
            s.sendall(env + b"BDAT %d LAST\r\n" % len(msg) + msg)
            read(2 + len(RCPTS))
        else:
            s.sendall(env + b"DATA\r\n")
            read(2 + len(RCPTS))
            s.sendall(msg + b".\r\n")
            read(1)
        times.append(time.perf_counter() - t)
    s.sendall(b"QUIT\r\n")
    _reply(f)
    s.close()
    pf.delivered(n * len(RCPTS), timeout=60)
    return statistics.median(times) * 1000, len(env) + len(msg)


def main():
    if os.geteuid() != 0:
        sys.exit("runs a private Postfix instance: run as root")
    work = tempfile.mkdtemp(prefix="securesmtp-nagle-")
    os.chmod(work, 0o755)
    pf = Postfix(os.path.join(work, "postfix"), password=PASSWORD).start()
    try:
        ctx = ssl.create_default_context(cafile=pf.ca_file)
        print("| transaction (bytes) | BDAT | BDAT + TCP_QUICKACK | DATA |")
        print("|---:|---:|---:|---:|")
        for lines in (40, 90, 100, 110, 200):
            row = []
            for mode, qa in (("BDAT", False), ("BDAT", True), ("DATA", False)):
                ms, size = session(pf, ctx, mode, lines, qa)
                row.append("%.1f ms" % ms)
            print("| %d | %s |" % (size, " | ".join(row)), flush=True)
        print("\nmedian time per message, 20 messages to 3 recipients on one connection")
    finally:
        pf.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
