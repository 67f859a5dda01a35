"""A private Exim instance on loopback, for end-to-end tests and bench/.

Exim 4 comes from Debian's ``exim4-base`` and ``exim4-daemon-light``
packages, unpacked (not installed: installing exim4 removes Postfix) into
``.work/exim/root`` by scripts/setup.sh, which also installs the one library
it needs that Postfix does not (libidn12) and creates the system user it was
built for (``Debian-exim``). The daemon runs from one config file written
here (``exim4 -C FILE -bdf``, in the foreground, as a child of the test), in
a directory it is given, and stops with the fixture.

    with Exim(directory, password="pw") as ex:
        ex.port("chunking"), ex.ca_file
        messages = ex.delivered(3, timeout=10)

What the instance is:

- Three STARTTLS ports on 127.0.0.1 that differ only in what EHLO offers:
  ``chunking`` (PIPELINING and CHUNKING), ``pipelining`` (PIPELINING only)
  and ``lockstep`` (neither), by ``*_advertise_hosts`` conditions on
  ``$received_port``. ``smtp_enforce_sync`` is on (Exim's default): a client
  that sends ahead where RFC 2920 does not allow it is dropped with
  ``554 SMTP synchronization error``, which makes these ports the test of
  lawful pipelining.
- AUTH PLAIN and LOGIN, offered only after TLS, for ``alice@example.test``;
  only authenticated clients may send, only to ``example.test``.
- A content filter: a message whose Subject contains ``REFUSE-ME`` is
  refused after its data with ``550 5.7.1 refused by content filter``.
- ``message_size_limit`` (``size_limit``, default 20 MB), and
  ``smtp_accept_max_per_connection`` (``per_connection``): past it, MAIL
  gets ``421`` and the connection ends.
- Maildir delivery for a, b, c, d, e and alice: messages land in
  ``DIR/mail/<local part>/new/``. Exim prepends ``Return-path``,
  ``Envelope-to``, ``Delivery-date`` and a ``Received`` header and writes
  bare LF line endings.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

from .postfix import _maildir_order, free_port, make_certificates

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXIM_ROOT = os.environ.get("SECURESMTP_EXIM_ROOT", os.path.join(ROOT, ".work", "exim", "root"))
EXIM = os.path.join(EXIM_ROOT, "usr", "sbin", "exim4")
EXIM_USER = "Debian-exim"
USER = "alice@example.test"
DOMAIN = "example.test"
KINDS = ("chunking", "pipelining", "lockstep")
# What Exim prepends to a delivered message.
EXIM_HEADERS = (b"return-path:", b"envelope-to:", b"delivery-date:", b"received:")


class EximMissing(RuntimeError):
    pass


class EximError(RuntimeError):
    pass


CONFIG = """\
primary_hostname = localhost
exim_path = @exim@
spool_directory = @dir@/spool
log_file_path = @dir@/log/%slog
pid_file_path = @dir@/exim.pid
exim_user = @user@
exim_group = @user@
never_users = root
keep_environment =
host_lookup =
rfc1413_hosts =
daemon_smtp_ports = @ports@
local_interfaces = 127.0.0.1
smtp_enforce_sync = true
smtp_accept_max = 50
smtp_accept_queue_per_connection = 0
smtp_accept_max_per_connection = @per_connection@
message_size_limit = @size_limit@
tls_advertise_hosts = *
tls_certificate = @chain@
tls_privatekey = @key@
pipelining_advertise_hosts = ${if eq{$received_port}{@lockstep@}{}{*}}
chunking_advertise_hosts = ${if eq{$received_port}{@chunking@}{*}{}}
auth_advertise_hosts = ${if def:tls_in_cipher {*}{}}
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
queue_only = false
log_selector = +pipelining +smtp_connection +smtp_protocol_error +smtp_syntax_error

begin acl

acl_rcpt:
  deny    !authenticated = *
          message = 5.7.1 authentication required
  accept  domains = @domain@
  deny    message = 5.7.1 relay access denied

acl_data:
  deny    condition = ${if match{$h_subject:}{REFUSE-ME}}
          message = 5.7.1 refused by content filter
  accept

begin routers

mailbox:
  driver = accept
  domains = @domain@
  local_parts = a : b : c : d : e : alice
  transport = maildir

begin transports

maildir:
  driver = appendfile
  directory = @dir@/mail/${local_part_data}/
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  user = @user@
  group = @user@
  mode = 0644

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{@login@}}{eq{$auth3}{@password@}}}}
  server_set_id = $auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and{{eq{$auth1}{@login@}}{eq{$auth2}{@password@}}}}
  server_set_id = $auth1
"""


class Exim:
    """A private Exim daemon in ``directory`` (created; must be reachable by
    the ``Debian-exim`` user: use ``tempfile.mkdtemp`` and chmod 0755)."""

    def __init__(self, directory, password, size_limit="20M", per_connection=1000):
        if not os.path.exists(EXIM):
            raise EximMissing(
                "Exim is not unpacked at %s: run `bash scripts/setup.sh`" % EXIM_ROOT
            )
        self.dir = os.path.abspath(directory)
        self.password = password
        self.size_limit = size_limit
        # Past this many messages on one connection Exim answers MAIL with
        # 421 and closes: a real server closing part way through a series.
        self.per_connection = per_connection
        self.ports = {kind: free_port() for kind in KINDS}
        self.proc = None
        self._seen = set()

    def port(self, kind):
        return self.ports[kind]

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        for sub in ("spool", "log", "mail", "tls"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.ca_file, key, chain = make_certificates(os.path.join(self.dir, "tls"))
        ent = _user()
        for sub in ("spool", "log", "mail"):
            os.chown(os.path.join(self.dir, sub), ent[0], ent[1])
        for path in (key, chain):
            os.chown(path, ent[0], ent[1])
            os.chmod(path, 0o640)
        # The spool and log are the daemon's; the config must not be
        # writable by it (Exim refuses a config its user could change).
        self.config = os.path.join(self.dir, "exim.conf")
        with open(self.config, "w") as f:
            f.write(
                _fill(
                    CONFIG,
                    dir=self.dir,
                    exim=EXIM,
                    user=EXIM_USER,
                    ports=" : ".join(str(self.ports[k]) for k in KINDS),
                    size_limit=self.size_limit,
                    per_connection=self.per_connection,
                    chain=chain,
                    key=key,
                    lockstep=self.ports["lockstep"],
                    chunking=self.ports["chunking"],
                    domain=DOMAIN,
                    login=USER,
                    password=self.password,
                )
            )
        with open(os.path.join(self.dir, "stderr.log"), "wb") as err:
            self.proc = subprocess.Popen(
                [EXIM, "-C", self.config, "-bdf", "-q30m"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        deadline = time.monotonic() + 10
        for kind in KINDS:
            self._probe(self.ports[kind], deadline)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log(self):
        out = []
        for name in ("mainlog", "rejectlog", "paniclog"):
            path = os.path.join(self.dir, "log", name)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    out.append("== %s\n%s" % (name, f.read().decode("utf-8", "replace")))
        return "\n".join(out)

    def mainlog(self):
        path = os.path.join(self.dir, "log", "mainlog")
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def delivered(self, n, timeout=10.0, mailbox=None):
        """The bytes of the next ``n`` messages delivered (to ``mailbox``, a
        local part, or any), oldest first; the files are consumed."""
        deadline = time.monotonic() + timeout
        while True:
            files = [p for p in self._new_files(mailbox) if p not in self._seen]
            if len(files) >= n:
                break
            if time.monotonic() > deadline:
                raise EximError(
                    "expected %d delivered messages within %.1fs, found %d\nlog:\n%s"
                    % (n, timeout, len(files), self.log()[-6000:])
                )
            time.sleep(0.02)
        files.sort(key=_maildir_order)
        out = []
        for path in files[:n]:
            with open(path, "rb") as f:
                out.append(f.read())
            os.unlink(path)
        return out

    def pending(self, mailbox=None):
        return self._new_files(mailbox)

    def clear(self):
        for path in self._new_files(None):
            os.unlink(path)

    def _new_files(self, mailbox):
        root = os.path.join(self.dir, "mail")
        boxes = [mailbox] if mailbox else (os.listdir(root) if os.path.isdir(root) else [])
        out = []
        for box in boxes:
            new = os.path.join(root, box, "new")
            if os.path.isdir(new):
                out.extend(os.path.join(new, f) for f in os.listdir(new))
        return out

    def _probe(self, port, deadline):
        """Wait until the port answers EHLO and STARTTLS works."""
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    f = s.makefile("rb")
                    if not f.readline().startswith(b"220"):
                        raise EximError("no greeting")
                    s.sendall(b"EHLO probe.test\r\n")
                    while True:
                        line = f.readline()
                        if not line or line[3:4] == b" ":
                            break
                    s.sendall(b"STARTTLS\r\n")
                    if not f.readline().startswith(b"220"):
                        raise EximError("STARTTLS refused")
                    ctx = ssl.create_default_context(cafile=self.ca_file)
                    with ctx.wrap_socket(s, server_hostname="localhost"):
                        return
            except (OSError, EximError) as e:
                last = e
                time.sleep(0.05)
        with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
            err = f.read().decode("utf-8", "replace")
        self.stop()
        raise EximError("Exim did not come up on port %d (%s)\nstderr:\n%s\n%s" % (port, last, err, self.log()))


def _fill(template, **values):
    """The config with each ``@name@`` replaced (Exim's own syntax is full
    of braces)."""
    for name, value in values.items():
        template = template.replace("@%s@" % name, str(value))
    return template


def _user():
    import pwd

    try:
        ent = pwd.getpwnam(EXIM_USER)
    except KeyError:
        raise EximMissing("no %s user: run `bash scripts/setup.sh`" % EXIM_USER)
    return ent.pw_uid, ent.pw_gid


def strip_exim_headers(data):
    """The message as the client sent it (LF line endings): what Exim
    prepended removed."""
    lines = data.split(b"\n")
    i = 0
    while i < len(lines):
        low = lines[i].lower()
        if any(low.startswith(h) for h in EXIM_HEADERS):
            i += 1
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
            continue
        break
    return b"\n".join(lines[i:])


def exim_available():
    return os.path.exists(EXIM) and shutil.which("true") is not None
