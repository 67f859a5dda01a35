"""`make demo` prints its story and nothing else (no library warnings, no
log records, no tracebacks), and ends with success."""

import os
import re
import subprocess
import sys

from support import hg

# The demo's own lines: a banner, an indented story line, its closing line.
STORY = re.compile(r"(   .*|\x1b\[1m== .*|demo finished: .*|)")


def test_demo_prints_only_its_story():
    env = hg._env()
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [sys.executable, os.path.join(hg.ROOT, "scripts", "demo.py")],
        cwd=hg.ROOT, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300,
    )
    out = proc.stdout.decode("utf-8")
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 0, out + err
    assert err == ""
    stray = [line for line in out.splitlines() if not STORY.fullmatch(line)]
    assert stray == []
    assert "demo finished: series delivered, forged server refused" in out
