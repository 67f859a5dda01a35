"""Stock ``hg email`` against ``hg email`` with securesmtp, in one run.

    python bench/run.py            # (as root: it runs a private Postfix)

Everything is real: Mercurial from .venv, Postfix from Debian's packages
(a private instance started here by tests/support/postfix.py: STARTTLS,
SASL PLAIN, Maildir delivery, PIPELINING and CHUNKING as Postfix ships
them), and bench/latency_proxy.py between hg and Postfix adding a one-way
delay to each direction and counting round trips.

Both clients run the same command with the same arguments and a fixed
``--date`` (so the same messages), as a fresh ``hg`` process: stock is
Mercurial's smtplib client (``smtp.tls = starttls``, ``web.cacerts``, the
same credentials), the other has ``[extensions] securesmtp =`` added. Every
configuration is run ``--reps`` times (stock and extension alternating) and
the median wall time of the hg process is reported; after each run every
message is waited for in the Maildirs (so a failed send cannot go unseen and
Postfix's delivery work does not spill into the next run).

Printed, and written to bench/results.md:

1. Series through the proxy at 25 ms, 100 ms and 0 ms added one-way delay,
   1, 20 and 100 patches, 1 and 3 recipients: wall times, ratio, round trips
   per message for stock and round trips after setup for the whole series
   for securesmtp (see ``waits_after_setup``).
2. The same by what the server offers (CHUNKING, PIPELINING only, neither).
3. No added delay and no proxy: the extension's CPU cost against stock.
4. Peak memory for a 50 MB patch.
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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")

try:
    import cryptography  # noqa: F401  (tests/support/postfix.py needs it)
except ImportError:
    if os.path.exists(VENV_PY) and os.path.realpath(sys.executable) != os.path.realpath(VENV_PY):
        os.execv(VENV_PY, [VENV_PY] + sys.argv)
    raise

sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, ROOT)

from bench.latency_proxy import LatencyProxy  # noqa: E402
from support.postfix import Listener, Postfix, free_port  # noqa: E402

HG = os.environ.get("HG") or os.path.join(ROOT, ".venv", "bin", "hg")
PASSWORD = "bench-Pw-4e1b"
USER = "alice@example.test"
SENDER = "Alice Tester <alice@example.test>"
DATE = "2026-01-01 00:00"
RECIPIENTS = {1: ("a@example.test", None), 3: ("a@example.test", "b@example.test,c@example.test")}
CLIENTS = ("stock", "securesmtp")
RUN_TIMEOUT = 600  # seconds, any single hg run


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# hg


def hg_env(hgrc_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HG")}
    # Python as users run it: writing bytecode (pip compiled Mercurial's at
    # install time; an editable checkout of the extension would otherwise be
    # compiled from source on every run).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        HGRCPATH=hgrc_path,
        HGHOSTNAME="hg.bench.test",
        HGUSER="Bench User <bench@example.test>",
        HGENCODING="utf-8",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        TZ="UTC",
    )
    return env


def write_hgrc(path, port, ca_file, extension):
    lines = [
        "[extensions]",
        "patchbomb =",
    ]
    if extension:
        lines.append("securesmtp =")
    lines += [
        "[ui]",
        "interactive = false",
        "username = Bench User <bench@example.test>",
        "[patchbomb]",
        "intro = never",
        "confirm = false",
        "[email]",
        "from = %s" % SENDER,
        "method = smtp",
    ]
    if port is not None:
        lines += [
            "[smtp]",
            "host = localhost",
            "port = %d" % port,
            "tls = starttls",
            "username = %s" % USER,
            "password = %s" % PASSWORD,
            "[web]",
            "cacerts = %s" % ca_file,
        ]
    with open(path, "w") as fp:
        fp.write("\n".join(lines) + "\n")


class MemoryWatch:
    """Peak RSS of one process, from the kernel's own high-water mark
    (VmHWM in /proc/PID/status), read every few milliseconds while it runs.
    VmHWM only grows, so the last reading is the peak; reading the child's
    own counter (not the rusage of the wait) keeps this process's size out
    of it (a forked child's maxrss starts from its parent's RSS).

    :meth:`mark` splits the run in two: it notes the RSS at that moment and
    resets the high-water mark (``echo 5 > /proc/PID/clear_refs``), so
    ``session_peak`` is the peak from the mark to the end. bench/run.py marks
    when the client connects to the proxy: from then on, hg flattens the
    message and the client sends it."""

    def __init__(self):
        self.pid = None
        self.lock = threading.Lock()
        self.peak = 0  # bytes, whole run
        self.at_mark = None  # RSS when marked
        self.session_peak = None  # peak after the mark
        self._thread = None

    def start(self, pid):
        self.pid = pid
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def join(self):
        if self._thread:
            self._thread.join(5)

    def _status(self):
        out = {}
        with open("/proc/%d/status" % self.pid) as fp:
            for line in fp:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
        return out

    def _poll(self):
        while True:
            with self.lock:
                try:
                    st = self._status()
                except (OSError, ValueError):
                    return
                if "VmHWM" not in st:  # exited (a zombie has no memory lines)
                    return
                if self.at_mark is None:
                    self.peak = max(self.peak, st["VmHWM"])
                else:
                    self.session_peak = max(self.session_peak, st["VmHWM"])
                    self.peak = max(self.peak, st["VmHWM"])
            time.sleep(0.003)

    def mark(self, *_):
        with self.lock:
            if self.pid is None or self.at_mark is not None:
                return
            st = self._status()
            self.peak = max(self.peak, st["VmHWM"])
            self.at_mark = st["VmRSS"]
            with open("/proc/%d/clear_refs" % self.pid, "w") as fp:
                fp.write("5")
            self.session_peak = self._status()["VmHWM"]


def run(args, cwd, hgrc, timeout=RUN_TIMEOUT, watch=None, cpu=None):
    """Run hg; return (seconds, output). Raises if hg fails or prints a
    traceback. ``watch``: a MemoryWatch to attach to the process; ``cpu``: a
    list to append the process's CPU seconds (user + system) to."""
    out = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [HG] + args, cwd=cwd, env=hg_env(hgrc), stdin=subprocess.DEVNULL,
        stdout=out, stderr=subprocess.STDOUT,
    )
    if watch is not None:
        watch.start(proc.pid)
    # A blocking wait: Popen.wait(timeout) polls with sleeps of up to 50 ms,
    # which would round every time up by as much.
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    if watch is not None:
        watch.join()
    out.seek(0)
    text = out.read().decode("utf-8", "replace")
    out.close()
    if proc.returncode != 0 or "Traceback" in text:
        raise RuntimeError(
            "hg %s failed (exit %s, timeout %ss):\n%s" % (" ".join(args), proc.returncode, timeout, text[-4000:])
        )
    return elapsed, text


def email_args(revs, recipients):
    to, cc = RECIPIENTS[recipients]
    args = ["email", "--from", SENDER, "--to", to]
    if cc:
        args += ["--cc", cc]
    return args + ["--date", DATE, "-r", revs]


def make_series_repo(path, n, hgrc, lines=50):
    """``n`` commits, each adding a ``lines``-line file (50 lines: a 4.8 KB
    message) with a three-line commit message, imported by one ``hg import``."""
    run(["init", path], cwd=os.path.dirname(path), hgrc=hgrc)
    patches = []
    for i in range(1, n + 1):
        body = "".join(
            "+%s line %02d of module %03d: the quick brown fox jumps over the lazy dog\n"
            % ("def" if j % 10 == 0 else "   ", j, i)
            for j in range(lines)
        )
        text = (
            "# HG changeset patch\n"
            "# User Bench User <bench@example.test>\n"
            "# Date %d 0\n"
            "mod%03d: add module %d\n\n"
            "Module %d does one thing and does it well; this message has a body\n"
            "so that the patch looks like a real one.\n\n"
            "diff --git a/src/mod%03d.txt b/src/mod%03d.txt\n"
            "new file mode 100644\n"
            "--- /dev/null\n"
            "+++ b/src/mod%03d.txt\n"
            "@@ -0,0 +1,%d @@\n%s" % (1748779200 + i, i, i, i, i, i, i, lines, body)
        )
        p = os.path.join(os.path.dirname(path), "p%03d.patch" % i)
        with open(p, "w") as fp:
            fp.write(text)
        patches.append(p)
    run(["import", "--quiet"] + patches, cwd=path, hgrc=hgrc, timeout=300)
    for p in patches:
        os.unlink(p)


def make_big_repo(path, size, hgrc):
    """One commit adding a text file of ``size`` bytes (80-byte lines)."""
    run(["init", path], cwd=os.path.dirname(path), hgrc=hgrc)
    line = "%08d the quick brown fox jumps over the lazy dog; pack my box with five\n"
    n = size // len(line % 0)
    with open(os.path.join(path, "big.txt"), "w") as fp:
        for i in range(n):
            fp.write(line % i)
    run(["commit", "-A", "-m", "big: add a large file", "-d", "1748779200 0"], cwd=path, hgrc=hgrc, timeout=300)


def mbox_size(repo, args, hgrc, n=1):
    """Total size of the ``n`` messages ``hg email --mbox`` writes."""
    fd, path = tempfile.mkstemp(suffix=".mbox")
    os.close(fd)
    try:
        run(args + ["--mbox", path], cwd=repo, hgrc=hgrc, timeout=300)
        size = os.path.getsize(path)
        with open(path, "rb") as fp:
            first = fp.readline()
        return size - n * (len(first) + 2)  # each "From ..." line and trailing blank line
    finally:
        os.unlink(path)


# ---------------------------------------------------------------------------
# measurements


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.work = tempfile.mkdtemp(prefix="securesmtp-bench-")
        os.chmod(self.work, 0o755)
        self.pf = None
        self.hgrcs = {}

    def close(self):
        if self.pf is not None:
            self.pf.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def hgrc(self, client, port):
        key = (client, port)
        if key not in self.hgrcs:
            path = os.path.join(self.work, "hgrc-%s-%s" % (client, port))
            write_hgrc(path, port, self.pf.ca_file if self.pf else None, client == "securesmtp")
            self.hgrcs[key] = path
        return self.hgrcs[key]

    def send(self, client, repo, n, recipients, delay, listener="starttls", cpu=None):
        """One ``hg email`` of patches 1..n; returns (seconds, turns).
        ``delay`` None means straight to Postfix, no proxy; then ``cpu``, a
        list, gets the CPU seconds of the run."""
        revs = "0" if n == 1 else "0:%d" % (n - 1)
        args = email_args(revs, recipients)
        port = self.pf.port(listener)
        if delay is None:
            secs, _ = run(args, repo, self.hgrc(client, port), cpu=cpu)
            turns = None
        else:
            with LatencyProxy(port, delay=delay) as proxy:
                secs, _ = run(args, repo, self.hgrc(client, proxy.port))
                conns = proxy.wait_closed(1, timeout=30)
            if len(conns) != 1:
                raise RuntimeError("%s used %d connections" % (client, len(conns)))
            turns = conns[0].turns
        self.pf.deliveries(n * recipients, timeout=120)  # everything arrived
        return secs, turns

    def direct_pairs(self, repo, n, recipients, reps):
        """``reps`` runs of each client straight to Postfix, alternating
        which goes first; per client, the (wall, CPU) seconds of each run."""
        res = {c: [] for c in CLIENTS}
        for r in range(reps):
            for client in CLIENTS if r % 2 == 0 else CLIENTS[::-1]:
                cpu = []
                secs, _ = self.send(client, repo, n, recipients, None, cpu=cpu)
                res[client].append((secs, cpu[0]))
        return res

    def median_pair(self, repo, n, recipients, delay, reps, listener="starttls"):
        """Median seconds and turns for each client, alternating their order."""
        res = {c: ([], []) for c in CLIENTS}
        for r in range(reps):
            order = CLIENTS if r % 2 == 0 else CLIENTS[::-1]
            for client in order:
                secs, turns = self.send(client, repo, n, recipients, delay, listener)
                res[client][0].append(secs)
                res[client][1].append(turns)
        return {
            c: (statistics.median(s), statistics.median(t) if t[0] is not None else None)
            for c, (s, t) in res.items()
        }

    def setup_turns(self, repo, client, recipients, delay, listener="starttls"):
        """Round trips that do not depend on the number of messages
        (EHLO, STARTTLS, the TLS handshake, EHLO, AUTH, QUIT), from a
        1-message and a 2-message run at the same delay:
        T(n) = setup + n * k, so setup = 2 * T(1) - T(2). Measured at the
        same delay as the runs it is used for, since at 0 ms a TLS 1.3
        session ticket can race the client's first command and add a turn."""
        t1 = self.send(client, repo, 1, recipients, delay, listener)[1]
        t2 = self.send(client, repo, 2, recipients, delay, listener)[1]
        return 2 * t1 - t2


def waits_after_setup(secs, secs_no_delay, setup_turns, delay):
    """Round trips a client waited for after setup, from its wall times at
    ``delay`` and with no added delay: the extra time is waiting, 2 * delay
    per round trip, of which 1.5 are the TCP handshake and the greeting
    and ``setup_turns`` the session set-up."""
    return max(0.0, (secs - secs_no_delay) / (2 * delay) - 1.5 - setup_turns)


def fmt_s(x):
    return "%.2f" % x


def main(argv=None):
    p = argparse.ArgumentParser(description="stock hg email vs securesmtp, through Postfix")
    p.add_argument("--reps", type=int, default=3, help="runs per configuration (median); default 3")
    p.add_argument("--sizes", default="1,20,100", help="series sizes; default 1,20,100")
    p.add_argument("--delays", default="25,100,0", help="one-way delays in ms; default 25,100,0")
    p.add_argument("--slow-reps", type=int, default=None,
                   help="runs per configuration at delays over 50 ms (default: --reps)")
    p.add_argument("--big-mb", type=int, default=50, help="size of the large patch in MB (0: skip)")
    p.add_argument("--memory-only", action="store_true", help="measure only the peak memory of a large patch")
    p.add_argument("--output", default=os.path.join(HERE, "results.md"))
    opts = p.parse_args(argv)
    sizes = [int(x) for x in opts.sizes.split(",")]
    delays = [int(x) / 1000.0 for x in opts.delays.split(",")]

    if os.geteuid() != 0:
        sys.exit("bench/run.py runs a private Postfix instance and must run as root")
    check = subprocess.run(
        [os.path.join(os.path.dirname(HG), "python"), "-c", "import securesmtp._core"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    if check.returncode != 0:
        sys.exit("the extension is not built (securesmtp._core does not import):\n"
                 + check.stdout.decode(errors="replace"))

    b = Bench(opts)
    started = time.monotonic()
    try:
        report = measure(b, sizes, delays, opts)
    finally:
        b.close()
    report.append("")
    report.append("Total bench time: %.0f s." % (time.monotonic() - started))
    text = "\n".join(report) + "\n"
    print(text)
    with open(opts.output, "w") as fp:
        fp.write(text)
    log("written to %s" % opts.output)


def measure(b, sizes, delays, opts):
    reps = opts.reps
    b.pf = Postfix(
        os.path.join(b.work, "postfix"), password=PASSWORD,
        listeners=[
            Listener("pipelining", free_port(), "starttls", ("chunking",)),
            Listener("lockstep", free_port(), "starttls", ("chunking", "pipelining")),
        ],
    )
    log("starting Postfix in %s" % b.pf.directory)
    b.pf.start()
    plain = os.path.join(b.work, "hgrc-plain")
    write_hgrc(plain, None, None, False)
    repo = os.path.join(b.work, "series")
    log("building a %d-patch repository" % max(sizes + [2]))
    make_series_repo(repo, max(sizes + [2]), plain)

    out = []
    out.append("# securesmtp benchmark")
    out.append("")
    out.append(
        "Stock `hg email` (Mercurial %s, smtplib) against `hg email` with securesmtp, "
        "same series, same arguments (`--date` fixed), same Postfix %s instance on "
        "127.0.0.1 (STARTTLS, AUTH PLAIN, PIPELINING and CHUNKING offered), in one run "
        "of `python bench/run.py` on %s, %d CPUs. Wall time of the `hg` process, median "
        "of %d runs. Delay is added by bench/latency_proxy.py to each direction (one way; "
        "a round trip costs twice that), TCP handshake included. Load average when "
        "the run started: %.2f."
        % (hg_version(), postfix_version(), platform.platform(), os.cpu_count(), reps,
           os.getloadavg()[0])
    )
    out.append("")

    if opts.memory_only:
        return out + measure_memory(b, opts.big_mb or 50)

    # -- 1. series through the proxy -------------------------------------
    # Round trips per message: the proxy counts turns (client spoke, then
    # the server answered) per connection; T(n) = setup + n * k, with the
    # setup measured separately (Bench.setup_turns), so k = (T(n) - setup)/n.
    setup = {}
    for delay in [d for d in delays if d > 0]:
        for rcpt in (1, 3):
            for client in CLIENTS:
                setup[client, rcpt, delay] = b.setup_turns(repo, client, rcpt, delay)
    results = {}
    for delay in delays:
        for n in sizes:
            for rcpt in (1, 3):
                log("series: %d patches, %d recipients, %d ms" % (n, rcpt, delay * 1000))
                # Runs with no added delay are short and noisier: more of them.
                if delay == 0:
                    runs = max(reps, 5)
                elif delay > 0.05 and opts.slow_reps is not None:
                    runs = opts.slow_reps
                else:
                    runs = reps
                results[n, rcpt, delay] = b.median_pair(repo, n, rcpt, delay, runs)

    out.append("## Series through a latency-injecting proxy")
    out.append("")
    out.append(
        "| patches | recipients | one-way delay | stock (s) | securesmtp (s) | ratio "
        "| round trips/msg stock | securesmtp round trips after setup, whole series "
        "| securesmtp round trips/msg |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base_delay = 0.0 if 0.0 in delays else None
    for delay in delays:
        for n in sizes:
            for rcpt in (1, 3):
                r = results[n, rcpt, delay]
                (ss, st), (es, et) = r["stock"], r["securesmtp"]
                rt_s = rt_e = rt_em = "-"
                if delay > 0:
                    rt_s = "%.2f" % ((st - setup["stock", rcpt, delay]) / n)
                    if base_delay is not None:
                        waits = waits_after_setup(
                            es, results[n, rcpt, base_delay]["securesmtp"][0],
                            setup["securesmtp", rcpt, delay], delay,
                        )
                        rt_e = "%.1f" % waits
                        rt_em = "%.2f" % (waits / n)
                out.append(
                    "| %d | %d | %d ms | %s | %s | %.2fx | %s | %s | %s |"
                    % (n, rcpt, delay * 1000, fmt_s(ss), fmt_s(es), ss / es, rt_s, rt_e, rt_em)
                )
    out.append("")
    out.append(
        "Stock round trips per message: the proxy counts a turn each time the "
        "server answers after the client sent; per message = (turns - setup) / "
        "patches, where setup (EHLO, STARTTLS, TLS, EHLO, AUTH, QUIT) is "
        "2 T(1) - T(2) from a 1- and a 2-message run at the same delay. Setup turns "
        "measured: %s. securesmtp streams: replies to message k arrive while "
        "message k+5 is being written, and the proxy counts each such arrival as "
        "a turn although the client never waited for it, so its round trips are "
        "derived from time instead: (wall time at the delay - wall time with no "
        "added delay) / (2 x delay), minus 1.5 (TCP handshake and greeting) and "
        "the setup turns: the round trips the client actually waited for after "
        "setup. Turn counts at 0 ms are not meaningful (a TLS 1.3 session ticket "
        "can cross the client's first EHLO)." % ", ".join(
            "%s %d rcpt %d ms: %d" % (c, r, d * 1000, setup[c, r, d])
            for (c, r, d) in sorted(setup, key=lambda k: (k[2], k[1], k[0]))
        )
    )
    out.append("")
    out.append(
        "The proxy acknowledges each side's data at once (it adds no delayed-ACK "
        "stall of its own) and delays only data; on a real link TCP acknowledgements "
        "also travel with the delay, which a window-limited transfer (a large "
        "message) would feel and a series of small messages does not."
    )
    out.append("")

    # -- 2. round trips by server capability ------------------------------
    cap_sizes = [n for n in sizes if n > 1] or sizes
    cap_delay = 0.025 if 0.025 in delays else max(delays)
    out.append("## By what the server offers")
    out.append("")
    out.append(
        "3 recipients, %d ms one-way delay, one run of stock, median of 3 of securesmtp; same Postfix, listeners "
        "that hide CHUNKING, or both CHUNKING and PIPELINING, from EHLO "
        "(`smtpd_discard_ehlo_keywords`). Round trips as above (stock: counted by "
        "the proxy; securesmtp: from time)." % (cap_delay * 1000)
    )
    out.append("")
    out.append(
        "| server offers | patches | stock (s) | securesmtp (s) | ratio | round trips/msg stock "
        "| securesmtp round trips after setup | securesmtp round trips/msg |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for listener, label in (
        ("starttls", "PIPELINING, CHUNKING"),
        ("pipelining", "PIPELINING"),
        ("lockstep", "neither"),
    ):
        s_stock = b.setup_turns(repo, "stock", 3, cap_delay, listener)
        s_ext = b.setup_turns(repo, "securesmtp", 3, cap_delay, listener)
        for n in cap_sizes:
            log("capabilities: %s, %d patches" % (label, n))
            ss, st = b.send("stock", repo, n, 3, cap_delay, listener)
            # The extension's round trips come from two wall times: a median
            # of 3 each (stock's are counted, one run is enough).
            es = statistics.median(b.send("securesmtp", repo, n, 3, cap_delay, listener)[0] for _ in range(3))
            e0 = statistics.median(b.send("securesmtp", repo, n, 3, 0.0, listener)[0] for _ in range(3))
            waits = waits_after_setup(es, e0, s_ext, cap_delay)
            out.append(
                "| %s | %d | %s | %s | %.2fx | %.2f | %.1f | %.2f |"
                % (label, n, fmt_s(ss), fmt_s(es), ss / es, (st - s_stock) / float(n), waits, waits / n)
            )
    out.append("")

    # -- 3. no added delay, no proxy -----------------------------------------
    small = os.path.join(b.work, "small")
    n_small = max(sizes)
    make_series_repo(small, n_small, plain, lines=10)
    out.append("## No added delay, no proxy (loopback)")
    out.append("")
    out.append(
        "| patches | bytes/message | recipients | stock (s) | securesmtp (s) | securesmtp / stock "
        "| paired difference (ms) | stock CPU (s) | securesmtp CPU (s) |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    direct_reps = max(reps, 9)
    rows = [(repo, n, rcpt) for n in sizes for rcpt in (1, 3)] + [(small, n_small, 3)]
    for r, n, rcpt in rows:
        log("direct: %d patches, %d recipients%s" % (n, rcpt, " (small)" if r == small else ""))
        per_msg = mbox_size(r, email_args("0:%d" % (n - 1), rcpt), plain, n) / float(n)
        # A single message is the shortest run and the noisiest: more runs.
        res = b.direct_pairs(r, n, rcpt, direct_reps if n > 1 else 3 * direct_reps)
        stock, ext = res["stock"], res["securesmtp"]
        ss = statistics.median(w for w, _ in stock)
        es = statistics.median(w for w, _ in ext)
        paired = statistics.median(e[0] - s_[0] for e, s_ in zip(ext, stock))
        out.append(
            "| %d | %.0f | %d | %s | %s | %.2f | %+.0f | %.2f | %.2f |"
            % (n, per_msg, rcpt, fmt_s(ss), fmt_s(es), es / ss, paired * 1000,
               statistics.median(c for _, c in stock), statistics.median(c for _, c in ext))
        )
    out.append("")
    out.append(
        "Straight to Postfix's STARTTLS port, %d runs of each client (three times as many "
        "for a single message), alternating which goes first; medians. \"Paired difference\": "
        "the median of (securesmtp - stock) over runs made back to back, which cancels drift in machine load. CPU: user + "
        "system seconds of the `hg` process. The last row is a series of smaller patches "
        "(10-line files instead of 50)." % direct_reps
    )
    out.append("")

    out.extend(count_instructions(b, repo))

    # -- 4. memory -------------------------------------------------------
    if opts.big_mb:
        out.extend(measure_memory(b, opts.big_mb))
    return out


def count_instructions(b, repo):
    """The CPU cost of one message to 3 recipients as instructions executed
    by the hg process (valgrind's callgrind): the same count for the same
    run whatever else the machine is doing, where wall and CPU seconds on
    loopback differ by less than their noise."""
    if shutil.which("valgrind") is None:
        return ["(valgrind is not installed: no instruction counts.)", ""]
    args = email_args("0", 3)
    port = b.pf.port("starttls")
    counts = {}
    for client in CLIENTS:
        hgrc = b.hgrc(client, port)
        log("instructions: %s" % client)
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + os.path.join(tmp, "out"), HG] + args,
                cwd=repo, env=hg_env(hgrc), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT,
            )
        text = proc.stdout.decode("utf-8", "replace")
        found = re.search(r"Collected : (\d+)", text)
        if proc.returncode != 0 or found is None:
            raise RuntimeError("hg under callgrind failed:\n" + text[-2000:])
        counts[client] = int(found.group(1))
        b.pf.deliveries(3, timeout=120)
    stock, ext = counts["stock"], counts["securesmtp"]
    return [
        "Instructions executed by the `hg` process for one message to 3 recipients "
        "(valgrind callgrind, one run each after the timed runs): stock %.1f M, "
        "securesmtp %.1f M (%.3fx)." % (stock / 1e6, ext / 1e6, ext / float(stock)),
        "",
    ]


def measure_memory(b, mb):
    big = os.path.join(b.work, "big")
    plain = os.path.join(b.work, "hgrc-plain")
    log("building a repository with a %d MB file" % mb)
    make_big_repo(big, mb * 1000 * 1000, plain)
    args = email_args("0", 1)
    size = mbox_size(big, args, plain)
    port = b.pf.port("starttls")
    mbox = os.path.join(b.work, "big.mbox")

    def baseline(hgrc):
        peaks = []
        for _ in range(3):
            w = MemoryWatch()
            run(["version"], big, hgrc, watch=w)
            peaks.append(w.peak)
        return statistics.median(peaks)

    rows = []
    base = baseline(plain)
    w = MemoryWatch()
    log("memory: --mbox, %d MB patch" % mb)
    secs, _ = run(args + ["--mbox", mbox], big, plain, timeout=900, watch=w)
    os.unlink(mbox)
    rows.append(("`hg email --mbox` (no SMTP)", base, w.peak, None, secs))
    for client in CLIENTS:
        base = baseline(b.hgrc(client, port))
        best = None
        for _ in range(2):
            log("memory: %s, %d MB patch" % (client, mb))
            w = MemoryWatch()
            # Through the proxy with no delay, only to see the connect: the
            # watch is marked when the client opens the SMTP connection.
            with LatencyProxy(port, delay=0, on_connect=w.mark) as proxy:
                secs, _ = run(args, big, b.hgrc(client, proxy.port), timeout=900, watch=w)
            b.pf.deliveries(1, timeout=300)
            if w.session_peak is None:
                raise RuntimeError("%s never connected" % client)
            row = (client, base, w.peak, w.session_peak - w.at_mark, secs)
            if best is None or row[2] > best[2]:
                best = row
        rows.append(best)
    out = ["## Peak memory for a %d MB patch" % mb, ""]
    out.append(
        "One message of %.1f MB (the patch adds a %d MB text file), 1 recipient, to "
        "Postfix. \"Whole run\": peak RSS of the `hg` process (kernel high-water mark) "
        "minus the peak of `hg version` with the same configuration (interpreter, "
        "Mercurial and, for securesmtp, the extension loaded), over the message size; it "
        "includes Mercurial building the message (diff, MIME encoding), which the "
        "`--mbox` row shows alone. \"SMTP session\": the peak from the moment the client "
        "connects to the end (hg flattening the message to bytes, then the client sending "
        "it) minus the RSS at that moment, over the message size: the memory the sending "
        "costs. Worst of 2 runs."
        % (size / 1e6, mb)
    )
    out.append("")
    out.append("| run | `hg version` peak (MB) | peak (MB) | whole run / message size | SMTP session / message size | time (s) |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for name, base, top, session, secs in rows:
        out.append(
            "| %s | %.0f | %.0f | %.2fx | %s | %.1f |"
            % (name, base / 1e6, top / 1e6, (top - base) / float(size),
               "-" if session is None else "%.2fx" % (session / float(size)), secs)
        )
    out.append("")
    return out


def hg_version():
    try:
        proc = subprocess.run([HG, "version", "-q"], stdout=subprocess.PIPE, timeout=60,
                              env=hg_env(os.devnull))
        text = proc.stdout.decode()
        return text.split("version ")[-1].strip(" )\n")
    except Exception:
        return "?"


def postfix_version():
    try:
        proc = subprocess.run(["postconf", "-d", "-h", "mail_version"], stdout=subprocess.PIPE, timeout=30)
        return proc.stdout.decode().strip()
    except Exception:
        return "?"


if __name__ == "__main__":
    main()
