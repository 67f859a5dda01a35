"""A private Postfix instance on loopback, for end-to-end tests and bench/.

Postfix comes from Debian's packages (``postfix sasl2-bin
libsasl2-modules``). The instance lives entirely in a directory it is given:
``DIR/conf`` (its config_directory: main.cf and master.cf written here, the
TLS key and chain, the CA, the sasldb; everything below it owned by root,
as ``postfix check`` wants), ``DIR/spool``, ``DIR/data``, ``DIR/mail`` (the
Maildirs) and ``DIR/postfix.log``. It is driven with ``postfix -c DIR/conf
check|start|stop``. /etc/postfix is only read (``meta_directory``, for
``postfix-files``); nothing there is written. ``DIR`` and its parents must be
searchable by other users (Postfix's daemons run as postfix and nobody):
use ``tempfile.mkdtemp()`` rather than pytest's 0700 ``tmp_path``.

    with Postfix(directory, password="pw") as pf:
        pf.starttls_port, pf.smtps_port, pf.ca_file, pf.maildir_root
        messages = pf.delivered(3, timeout=10)

What the instance is:

- STARTTLS on ``starttls_port`` (TLS required before MAIL, AUTH only after
  TLS) and SMTPS (``smtpd_tls_wrappermode``) on ``smtps_port``, both on
  127.0.0.1, with a certificate for ``localhost`` and ``127.0.0.1`` signed by
  a CA made here with ``cryptography`` (``ca_file`` is the PEM to use as
  ``web.cacerts``).
- SASL PLAIN and LOGIN (Cyrus, sasldb; no saslauthd) for
  ``alice@example.test`` with the given password. Only authenticated
  clients may send, and only to ``example.test``: any other domain gets
  ``554 5.7.1 <x@not-ours.test>: Relay access denied`` at RCPT, even after
  AUTH, so a refused recipient is easy to provoke.
- Virtual Maildir delivery for every address of ``example.test``: ``a``,
  ``b``, ``c``, ``d``, ``e`` and ``alice`` have their own Maildir under
  ``maildir_root/example.test/<user>/``, anything else lands in
  ``maildir_root/example.test/catchall/``. Delivery is asynchronous (tens
  of milliseconds after the server's 250): use :meth:`Postfix.delivered`.
- ``discard_ehlo_keywords=("chunking",)`` (or ``"pipelining"``) hides the
  extension from EHLO for the whole instance, and ``listeners=[Listener(
  "nochunking", port, "starttls", discard=("chunking",))]`` adds more ports
  that differ only in what they hide, so one instance can serve the
  CHUNKING, PIPELINING-only and lock-step cases side by side.

What Postfix writes into a Maildir file (observed with Postfix 3.7.11,
Debian 12): ``Return-Path: <sender>``, ``Delivered-To: <recipient>`` and one
``Received:`` header (folded over several lines) before the message as the
client sent it, with every line ending in a bare LF (the queue file stores
records without line endings; virtual(8) writes LF). A message that did not
end with a line ending gets one.

Postfix is required, not optional: if it is missing, :class:`Postfix`
raises :class:`PostfixMissing` (tests fail with the install command; they
do not skip).
"""

import contextlib
import datetime
import email.parser
import email.policy
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import tempfile
import subprocess
import time
from dataclasses import dataclass, field
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POSTFIX = shutil.which("postfix", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
SASLPASSWD2 = shutil.which("saslpasswd2", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

USER = "alice@example.test"
DOMAIN = "example.test"
MAILBOX_USERS = ("alice", "a", "b", "c", "d", "e")
REFUSED_DOMAIN = "not-ours.test"
VMAIL_UID = 65534  # virtual(8) delivers as this uid/gid (nobody/nogroup)
INSTALL_HINT = (
    "install it with: echo 'postfix postfix/main_mailer_type select No configuration' "
    "| debconf-set-selections; DEBIAN_FRONTEND=noninteractive apt-get install -y "
    "--no-install-recommends postfix sasl2-bin libsasl2-modules "
    "(scripts/setup.sh does this)"
)


class PostfixMissing(RuntimeError):
    pass


class PostfixError(RuntimeError):
    pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Listener:
    """One smtpd listener: ``tls`` is ``"starttls"`` or ``"smtps"``;
    ``discard`` lists EHLO keywords to hide (``"chunking"``, ``"pipelining"``)."""

    name: str
    port: int
    tls: str = "starttls"
    discard: Sequence[str] = field(default_factory=tuple)


@dataclass
class Delivery:
    path: str
    recipient: str  # from Delivered-To
    message_id: str
    data: bytes


# ---------------------------------------------------------------------------
# certificates


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(directory):
    """CA and a localhost/127.0.0.1 leaf (ECDSA P-256). Writes ca.pem,
    server.key (key first, as smtpd_tls_chain_files wants) and chain.pem
    (leaf then CA). Returns (ca_file, key_file, chain_file)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("securesmtp Postfix test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_file = os.path.join(directory, "ca.pem")
    key_file = os.path.join(directory, "server.key")
    chain_file = os.path.join(directory, "chain.pem")
    with open(ca_file, "wb") as fp:
        fp.write(ca.public_bytes(pem))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fp:
        fp.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    with open(chain_file, "wb") as fp:
        fp.write(leaf.public_bytes(pem) + ca.public_bytes(pem))
    return ca_file, key_file, chain_file


# ---------------------------------------------------------------------------
# configuration

MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _check_traversable(path):
    """Postfix daemons (user postfix) and virtual(8) (uid 65534) must reach
    the instance directory by absolute path: every ancestor needs o+x."""
    path = os.path.abspath(path)
    parts = []
    while True:
        parts.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for p in parts[1:]:
        mode = os.stat(p).st_mode
        if not mode & 0o001:
            raise PostfixError(
                "%s is not searchable by other users (mode %o); Postfix's daemons and "
                "virtual(8) run as postfix and nobody and cannot reach the instance "
                "directory below it. Use a directory such as one from "
                "tempfile.mkdtemp() under /tmp." % (p, mode & 0o777)
            )


@contextlib.contextmanager
def running(prefix, cls=None, **kwargs):
    """A started ``cls`` (default: Postfix) in a fresh folder, stopped and
    removed afterwards. Not pytest's tmp_path: its base is mode 0700 and
    Postfix's daemons must reach the instance folders."""
    directory = tempfile.mkdtemp(prefix=prefix)
    os.chmod(directory, 0o755)
    try:
        with (cls or Postfix)(directory, **kwargs) as pf:
            yield pf
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class Postfix:
    """A Postfix instance in ``directory`` (absolute; made if missing; its
    previous content is wiped after stopping any instance still running
    from it)."""

    def __init__(
        self,
        directory,
        password,
        starttls_port=None,
        smtps_port=None,
        discard_ehlo_keywords=(),
        listeners=(),
        user=USER,
        message_size_limit=256 * 1024 * 1024,
        start_timeout=10.0,
    ):
        if not POSTFIX or not SASLPASSWD2:
            raise PostfixMissing(
                "Postfix (postfix, saslpasswd2) is not installed; the Postfix tests "
                "need it: " + INSTALL_HINT
            )
        self.directory = os.path.abspath(str(directory))
        self.password = password
        self.user = user
        self.starttls_port = starttls_port or free_port()
        self.smtps_port = smtps_port or free_port()
        self.discard_ehlo_keywords = tuple(discard_ehlo_keywords)
        self.listeners = [
            Listener("starttls", self.starttls_port, "starttls"),
            Listener("smtps", self.smtps_port, "smtps"),
        ] + list(listeners)
        names = [l.name for l in self.listeners]
        if len(set(names)) != len(names):
            raise ValueError("listener names must be unique: %r" % names)
        self.message_size_limit = message_size_limit
        self.start_timeout = start_timeout
        # config_directory is a subfolder: postfix check wants everything
        # below it owned by root, and the spool, data and Maildir trees are not.
        self.config_dir = os.path.join(self.directory, "conf")
        self.ca_file = os.path.join(self.config_dir, "ca.pem")
        self.maildir_root = os.path.join(self.directory, "mail")
        self.log_path = os.path.join(self.directory, "postfix.log")
        self.spool = os.path.join(self.directory, "spool")
        self._seen = set()
        self.running = False

    # -- public ------------------------------------------------------------

    def port(self, name):
        for l in self.listeners:
            if l.name == name:
                return l.port
        raise KeyError(name)

    def listener(self, name):
        for l in self.listeners:
            if l.name == name:
                return l
        raise KeyError(name)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        _check_traversable(self.directory)
        self._stop_instance()  # a stale master from a previous run in this dir
        self._write_tree()
        for l in self.listeners:
            if not _port_free(l.port):
                raise PostfixError(
                    "port %d (%s) is already in use on 127.0.0.1" % (l.port, l.name)
                )
        self._postfix("check", timeout=60)
        self._postfix("start", timeout=60)
        self.running = True
        try:
            deadline = time.monotonic() + self.start_timeout
            for l in self.listeners:
                self._probe(l, deadline)
        except Exception:
            log = self.log()
            self.stop()
            raise PostfixError(
                "Postfix did not come up in %s:\n%s" % (self.directory, log)
            ) from None
        return self

    def stop(self):
        self._stop_instance()
        self.running = False

    def log(self):
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as fp:
                return fp.read()
        except OSError:
            return "(no log at %s)" % self.log_path

    def mailbox(self, address):
        """The Maildir a recipient's messages land in."""
        local, _, domain = address.partition("@")
        user = local if local in MAILBOX_USERS else "catchall"
        return os.path.join(self.maildir_root, domain or DOMAIN, user)

    def clear(self):
        """Forget every delivered message (delete the files)."""
        for path in self._new_files():
            os.unlink(path)
        self._seen.clear()

    def deliveries(self, n, timeout=10.0, consume=True):
        """Wait until ``n`` messages not returned before are in the Maildirs'
        ``new/`` folders; return them as :class:`Delivery`, in the order
        Postfix delivered them (Maildir file name: seconds, then
        microseconds). Raises with a listing and the log after ``timeout``.
        With ``consume`` the files are deleted, so the next call starts empty;
        a message that arrives beyond ``n`` stays for the next call."""
        deadline = time.monotonic() + timeout
        while True:
            files = [p for p in self._new_files() if p not in self._seen]
            if len(files) >= n:
                break
            if time.monotonic() > deadline:
                raise PostfixError(
                    "expected %d delivered messages within %.1fs, found %d: %r\n"
                    "queue: %s\nlog tail:\n%s"
                    % (n, timeout, len(files), files, self.queue(), self.log()[-6000:])
                )
            time.sleep(0.02)
        # A name is "<sec>.V<dev>I<inode>M<usec>.<host>"; the file may still
        # be moving from tmp/ to new/ for the n+1st, so take the first n.
        files.sort(key=_maildir_order)
        files = files[:n]
        out = []
        for path in files:
            with open(path, "rb") as fp:
                data = fp.read()
            headers = _headers(data)
            out.append(
                Delivery(
                    path=path,
                    recipient=headers.get("delivered-to", ""),
                    message_id=headers.get("message-id", ""),
                    data=data,
                )
            )
            if consume:
                os.unlink(path)
            else:
                self._seen.add(path)
        return out

    def delivered(self, n, timeout=10.0, consume=True):
        """The bytes of the next ``n`` delivered messages (see :meth:`deliveries`)."""
        return [d.data for d in self.deliveries(n, timeout=timeout, consume=consume)]

    def pending(self):
        """Files in the Maildirs not yet returned."""
        return [p for p in self._new_files() if p not in self._seen]

    def queue(self):
        """``postqueue -p`` for this instance (messages not yet delivered)."""
        try:
            proc = subprocess.run(
                ["postqueue", "-c", self.config_dir, "-p"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10,
            )
            return proc.stdout.decode("utf-8", "replace")
        except (OSError, subprocess.SubprocessError) as e:
            return "(postqueue failed: %s)" % e

    # -- internals ---------------------------------------------------------

    def _postfix(self, command, timeout):
        try:
            proc = subprocess.run(
                [POSTFIX, "-c", self.config_dir, command],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise PostfixError(
                "postfix -c %s %s did not finish in %ss\n%s"
                % (self.config_dir, command, timeout, self.log())
            ) from None
        if proc.returncode != 0:
            # Without a tty postfix prints little on a fatal error: the
            # reason is in the log file.
            raise PostfixError(
                "postfix -c %s %s failed (exit %d):\n%s\nlog:\n%s"
                % (self.config_dir, command, proc.returncode,
                   proc.stdout.decode("utf-8", "replace"), self.log())
            )
        return proc

    def _instance_pids(self):
        """Processes of this instance: the master and every daemon it forked
        inherit MAIL_CONFIG=<directory> in their environment."""
        needle = ("MAIL_CONFIG=%s" % self.config_dir).encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % entry, "rb") as fp:
                    env = fp.read().split(b"\0")
            except OSError:
                continue
            if needle in env and int(entry) != os.getpid():
                pids.append(int(entry))
        master = self._master_pid()
        if master and master not in pids and _alive(master):
            pids.append(master)
        return pids

    def _master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as fp:
                return int(fp.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _stop_instance(self):
        if os.path.exists(os.path.join(self.config_dir, "main.cf")):
            try:
                subprocess.run(
                    [POSTFIX, "-c", self.config_dir, "stop"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL, timeout=20,
                )
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        pids = self._instance_pids()
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = [p for p in pids if _alive(p)]
        for pid in pids:  # stragglers of this instance only, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _write_tree(self):
        d = self.directory
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        for entry in os.listdir(d):
            p = os.path.join(d, entry)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        etc = self.config_dir
        sasl = os.path.join(etc, "sasl")
        data = os.path.join(d, "data")
        for p in (etc, sasl, self.spool, data, self.maildir_root):
            os.makedirs(p, mode=0o755, exist_ok=True)
        shutil.chown(data, "postfix", "postfix")
        os.chown(self.maildir_root, VMAIL_UID, VMAIL_UID)
        _, key_file, chain_file = make_certificates(etc)

        # SASL: auxprop over a private sasldb, no saslauthd.
        sasldb = os.path.join(etc, "sasldb2")
        with open(os.path.join(sasl, "smtpd.conf"), "w") as fp:
            fp.write(
                "pwcheck_method: auxprop\n"
                "auxprop_plugin: sasldb\n"
                "sasldb_path: %s\n"
                "mech_list: PLAIN LOGIN\n" % sasldb
            )
        proc = subprocess.run(
            [SASLPASSWD2, "-p", "-f", sasldb, "-c", self.user],
            input=self.password.encode() + b"\n",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20,
        )
        if proc.returncode != 0:
            raise PostfixError("saslpasswd2 failed: %s" % proc.stdout.decode("utf-8", "replace"))
        shutil.chown(sasldb, "root", "postfix")
        os.chmod(sasldb, 0o640)

        vmailbox = os.path.join(etc, "vmailbox")
        with open(vmailbox, "w") as fp:
            for user in MAILBOX_USERS:
                fp.write("%s@%s %s/%s/\n" % (user, DOMAIN, DOMAIN, user))

        main_cf = [
            "compatibility_level = 3.6",
            "queue_directory = %s" % self.spool,
            "data_directory = %s" % data,
            "meta_directory = /etc/postfix",
            "maillog_file = %s" % self.log_path,
            "maillog_file_prefixes = %s" % d,
            "myhostname = mail.%s" % DOMAIN,
            "mydomain = %s" % DOMAIN,
            "myorigin = $mydomain",
            "mydestination =",
            "mynetworks = 127.0.0.1/32",
            "alias_maps =",
            "alias_database =",
            "local_recipient_maps =",
            "relayhost =",
            "default_transport = error:this test server delivers only to %s" % DOMAIN,
            "relay_transport = $default_transport",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "biff = no",
            "append_dot_mydomain = no",
            "smtpd_banner = $myhostname ESMTP",
            # delivery
            "virtual_mailbox_domains = %s" % DOMAIN,
            "virtual_mailbox_base = %s" % self.maildir_root,
            "virtual_mailbox_maps = texthash:%s, static:%s/catchall/" % (vmailbox, DOMAIN),
            "virtual_uid_maps = static:%d" % VMAIL_UID,
            "virtual_gid_maps = static:%d" % VMAIL_UID,
            "message_size_limit = %d" % self.message_size_limit,
            "virtual_mailbox_limit = 0",
            "mailbox_size_limit = 0",
            # TLS
            "smtpd_tls_chain_files = %s, %s" % (key_file, chain_file),
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = no",
            # SASL
            "smtpd_sasl_type = cyrus",
            "smtpd_sasl_path = smtpd",
            "cyrus_sasl_config_path = %s" % sasl,
            "smtpd_sasl_auth_enable = no",
            "smtpd_sasl_security_options = noanonymous",
            # Authenticated clients may send to example.test only: anything
            # else is "554 5.7.1 <...>: Relay access denied" at RCPT.
            "smtpd_relay_restrictions = reject_unauth_destination, permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions = permit_sasl_authenticated, reject",
        ]
        if self.discard_ehlo_keywords:
            main_cf.append("smtpd_discard_ehlo_keywords = %s" % ", ".join(self.discard_ehlo_keywords))
        with open(os.path.join(etc, "main.cf"), "w") as fp:
            fp.write("\n".join(main_cf) + "\n")

        master = [MASTER_SERVICES]
        for l in self.listeners:
            opts = [
                "syslog_name=postfix/%s" % l.name,
                "smtpd_tls_security_level=encrypt",
                "smtpd_sasl_auth_enable=yes",
            ]
            if l.tls == "starttls":
                opts.append("smtpd_tls_auth_only=yes")
            elif l.tls == "smtps":
                opts.append("smtpd_tls_wrappermode=yes")
            else:
                raise ValueError("listener tls must be starttls or smtps: %r" % l.tls)
            discard = tuple(self.discard_ehlo_keywords) + tuple(l.discard)
            if discard:
                opts.append("smtpd_discard_ehlo_keywords=%s" % ",".join(discard))
            master.append(
                "127.0.0.1:%d inet n - n - - smtpd\n" % l.port
                + "".join("  -o %s\n" % o for o in opts)
            )
        with open(os.path.join(etc, "master.cf"), "w") as fp:
            fp.write("".join(master))

    def _probe(self, listener, deadline):
        """Connect until the listener answers 220; over TLS (after STARTTLS
        for a STARTTLS port), verifying the chain against our CA, so a
        certificate Postfix cannot load fails here, not in a test."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        last = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", listener.port), timeout=2) as raw:
                    raw.settimeout(2)
                    if listener.tls == "smtps":
                        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                            _expect(s, b"220")
                            s.sendall(b"QUIT\r\n")
                    else:
                        f = raw.makefile("rb")
                        _expect_line(f, b"220")
                        raw.sendall(b"EHLO probe.example.test\r\n")
                        _read_reply(f, b"250")
                        raw.sendall(b"STARTTLS\r\n")
                        _read_reply(f, b"220")
                        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                            s.sendall(b"EHLO probe.example.test\r\n")
                            _expect(s, b"250")
                            s.sendall(b"QUIT\r\n")
                return
            except (OSError, ssl.SSLError, PostfixError) as e:
                last = e
                time.sleep(0.05)
        raise PostfixError("listener %s on port %d: %s" % (listener.name, listener.port, last))

    def _new_files(self):
        out = []
        for root, dirs, files in os.walk(self.maildir_root):
            if os.path.basename(root) == "new":
                out.extend(os.path.join(root, f) for f in files)
        return out


def _maildir_order(path):
    name = os.path.basename(path)
    m = re.match(r"(\d+)\..*?M(\d+)", name)
    if m:
        return (int(m.group(1)), int(m.group(2)), name)
    return (int(os.stat(path).st_mtime), 0, name)


def _headers(data):
    head = data.split(b"\n\n", 1)[0]
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head + b"\n\n")
    return {k.lower(): str(v).strip() for k, v in msg.items() if k.lower() in ("delivered-to", "message-id")}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours is not alive
    try:
        with open("/proc/%d/stat" % pid) as fp:
            return fp.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _expect_line(f, code):
    line = f.readline(4096)
    if not line.startswith(code):
        raise PostfixError("expected %r, got %r" % (code, line))


def _read_reply(f, code):
    while True:
        line = f.readline(4096)
        if not line.startswith(code):
            raise PostfixError("expected %r, got %r" % (code, line))
        if line[3:4] != b"-":
            return


def _expect(sock, code):
    data = b""
    while not data.endswith(b"\r\n") or re.search(rb"(^|\r\n)\d{3}-[^\r\n]*\r\n$", data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > 65536:
            break
    if not data.startswith(code):
        raise PostfixError("expected %r, got %r" % (code, data[:200]))
