"""What enabling securesmtp costs commands that send no mail.

Times ``hg version``, ``hg root`` and ``hg status`` in a small repository,
with and without ``[extensions] securesmtp =`` (patchbomb enabled in both, as
a user who mails patches has it), RUNS times each. The two configurations
alternate run by run and swap which goes first on every round, so drift in
machine load hits both alike. Prints, per command, the median and the spread
(interquartile range, min-max) of each configuration and the difference of
the medians, and writes the same table into bench/results.md under
"## Import cost".

Usage: .venv/bin/python bench/import_cost.py [--runs N] [--no-write]
"""

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HG = os.path.join(ROOT, ".venv", "bin", "hg")
RESULTS = os.path.join(HERE, "results.md")
COMMANDS = (["version"], ["root"], ["status"])


def hgrc(path, extension):
    with open(path, "w") as fp:
        fp.write("[extensions]\npatchbomb =\n")
        if extension:
            fp.write("securesmtp =\n")
    return path


def env_with(rc):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HG")}
    # Python as users run it: writing bytecode (pip compiled Mercurial's at
    # install time; an editable checkout of the extension would otherwise be
    # compiled from source on every run).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(HGRCPATH=rc, HGUSER="Bench <bench@example.test>", LC_ALL="C.UTF-8")
    return env


def run(args, cwd, env):
    """Wall and CPU (user + system) time of one hg process, in ms. CPU time
    is what the process itself spent; on a busy machine it moves far less
    than wall time, which also counts waiting for a core."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [HG] + args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or err:
        sys.exit("hg %s failed: %s" % (" ".join(args), err.decode()))
    return elapsed * 1000.0, (usage.ru_utime + usage.ru_stime) * 1000.0


def make_repo(work, env):
    repo = os.path.join(work, "repo")
    subprocess.run([HG, "init", repo], env=env, check=True)
    for i in range(20):
        with open(os.path.join(repo, "f%02d.txt" % i), "w") as fp:
            fp.write("line\n" * 50)
    subprocess.run([HG, "commit", "-qAm", "twenty files"], cwd=repo, env=env, check=True)
    subprocess.run([HG, "status"], cwd=repo, env=env, check=True)
    return repo


def quartiles(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def measure(runs):
    work = tempfile.mkdtemp(prefix="securesmtp-import-")
    try:
        envs = {
            "stock": env_with(hgrc(os.path.join(work, "stock.rc"), False)),
            "securesmtp": env_with(hgrc(os.path.join(work, "ext.rc"), True)),
        }
        repo = make_repo(work, envs["stock"])
        samples = {}
        for args in COMMANDS:
            name = " ".join(args)
            for conf in envs:  # warm the page cache and .pyc files
                run(args, repo, envs[conf])
            got = {conf: [] for conf in envs}
            order = list(envs)
            for _ in range(runs):
                for conf in order:
                    got[conf].append(run(args, repo, envs[conf]))
                order.reverse()
            samples[name] = got
        return samples
    finally:
        shutil.rmtree(work, ignore_errors=True)


def describe(xs):
    q1, q3 = quartiles(xs)
    return "%.1f (%.1f-%.1f)" % (statistics.median(xs), q1, q3)


def table(samples, runs):
    out = []
    hgver = subprocess.run([HG, "version", "-q"], capture_output=True, text=True).stdout.strip()
    out.append(
        "%s; Python %s; %s; load average at the end %.1f; %d runs per command "
        "and configuration, alternating, first one swapped every round. Times "
        "in ms as median (interquartile range); \"paired\" is the median of "
        "the per-round differences (with securesmtp minus stock, same round), "
        "which cancels drift in machine load.\n"
        % (hgver, platform.python_version(), platform.machine(), os.getloadavg()[0], runs)
    )
    out.append(
        "| command | measure | stock | with securesmtp | difference of medians | paired difference |"
    )
    out.append("|---|---|---|---|---|---|")
    for name, got in samples.items():
        for i, measure in enumerate(("wall", "CPU")):
            a = [x[i] for x in got["stock"]]
            b = [x[i] for x in got["securesmtp"]]
            paired = [y - x for x, y in zip(a, b)]
            out.append(
                "| `hg %s` | %s | %s | %s | %+.1f | %s |"
                % (
                    name, measure, describe(a), describe(b),
                    statistics.median(b) - statistics.median(a),
                    "%+.1f (%+.1f to %+.1f)" % ((statistics.median(paired),) + quartiles(paired)),
                )
            )
    return "\n".join(out) + "\n"


def write_results(text):
    section = (
        "## Import cost\n\n"
        "`make bench-import` (bench/import_cost.py). With the extension, these "
        "commands load only its `__init__` (tests/test_import.py checks which "
        "modules ran); the difference below is that and hg's version check "
        "for a third-party extension.\n\n" + text
    )
    try:
        with open(RESULTS) as fp:
            old = fp.read()
    except FileNotFoundError:
        old = "# Benchmark results\n"
    pattern = re.compile(r"^## Import cost\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda m: section + "\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + section
    with open(RESULTS, "w") as fp:
        fp.write(new.rstrip("\n") + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results.md")
    opts = parser.parse_args()
    if not os.path.exists(HG):
        sys.exit("run scripts/setup.sh first (no %s)" % HG)
    samples = measure(opts.runs)
    text = table(samples, opts.runs)
    print(text)
    if not opts.no_write:
        write_results(text)
        print("written to %s" % os.path.relpath(RESULTS, ROOT))


if __name__ == "__main__":
    main()
