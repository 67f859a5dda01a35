"""A private Dovecot submission server on loopback: a real SASL server.

Dovecot 2.3 (Debian ``dovecot-core`` and ``dovecot-submissiond``) runs in
the foreground from a config written into a directory it is given
(``dovecot -c DIR/dovecot.conf -F``); it never reads /etc/dovecot. Its
submission service takes STARTTLS and AUTH from a passwd-file passdb with
a plaintext-equivalent password, so it offers PLAIN, LOGIN, CRAM-MD5 and
SCRAM-SHA-256 (``mechanisms``), and relays every accepted message to a
sink on loopback (``relay_port``: an aiosmtpd server, which records what
arrived). With ``jwt_key`` it also offers XOAUTH2 and OAUTHBEARER from the
oauth2 passdb, validating HS256-signed JWTs locally (:func:`jwt`).

    with Dovecot(directory, cert, relay_port, password="pw") as dc:
        dc.port   # STARTTLS submission on 127.0.0.1

``DIR`` must be reachable by Dovecot's unprivileged users (dovenull,
dovecot): use ``tempfile.mkdtemp()`` (mode 0700 is fine for root-owned
folders the master opens; the login processes get the certificate over a
socket) and keep it out of pytest's tmp_path, whose parents are 0700.

Dovecot is required, not optional: if it is missing, :class:`Dovecot`
raises :class:`DovecotMissing` (the tests fail with the install command).
"""

import base64
import os
import shutil
import socket
import subprocess
import time

from .postfix import free_port

DOVECOT = "/usr/sbin/dovecot"


class DovecotMissing(RuntimeError):
    pass


class DovecotError(RuntimeError):
    pass


CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
instance_name = securesmtp-{port}
protocols = submission
listen = 127.0.0.1
hostname = mx.dovecot.test
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = {mechanisms}
auth_verbose = yes
auth_debug = no
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
  mechanisms = plain login cram-md5 scram-sha-256
}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
submission_relay_host = 127.0.0.1
submission_relay_port = {relay_port}
submission_relay_trusted = no
submission_relay_ssl = no
submission_client_workarounds =
service submission-login {{
  inet_listener submission {{
    address = 127.0.0.1
    port = {port}
  }}
}}
{auth_listener}service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service submission-login {{
  chroot =
}}
"""


class Dovecot:
    def __init__(
        self,
        directory,
        cert,
        relay_port,
        user="alice",
        password="Sw0rdfish-Secret!",
        mechanisms="plain login cram-md5 scram-sha-256",
        port=None,
        jwt_key=None,
        auth_socket=None,
    ):
        if not os.path.exists(DOVECOT):
            raise DovecotMissing(
                "Dovecot is not installed: apt-get install dovecot-core "
                "dovecot-submissiond (scripts/setup.sh does it)"
            )
        self.directory = os.path.abspath(directory)
        self.cert = cert
        self.relay_port = relay_port
        self.user = user
        self.password = password
        self.mechanisms = mechanisms
        self.port = port or free_port()
        self.jwt_key = jwt_key
        # A path: Dovecot's auth service also listens there, for Postfix's
        # smtpd_sasl_type = dovecot (support/dovecotpostfix.py).
        self.auth_socket = auth_socket
        self.conf = os.path.join(self.directory, "dovecot.conf")
        self._proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            with open(os.path.join(self.directory, "dovecot.log"), encoding="utf-8", errors="replace") as fp:
                return fp.read()
        except OSError:
            return ""

    def start(self, timeout=15.0):
        for sub in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(self.directory, sub), exist_ok=True)
        # Dovecot's auth worker reads the passwd-file as user dovecot.
        os.chmod(self.directory, 0o755)
        passwd = os.path.join(self.directory, "passwd")
        with open(passwd, "w", encoding="utf-8") as fp:
            fp.write("%s:{PLAIN}%s\n" % (self.user, self.password))
        os.chmod(passwd, 0o644)
        # The certificate files are read by the master (root) only.
        cert = os.path.join(self.directory, "cert.pem")
        key = os.path.join(self.directory, "key.pem")
        shutil.copyfile(self.cert.chain, cert)
        shutil.copyfile(self.cert.key, key)
        os.chmod(key, 0o600)
        oauth2_passdb = ""
        mechanisms = self.mechanisms
        if self.jwt_key is not None:
            oauth2_passdb = self._oauth2()
            mechanisms += " xoauth2 oauthbearer"
        with open(self.conf, "w", encoding="utf-8") as fp:
            fp.write(
                CONF.format(
                    oauth2_passdb=oauth2_passdb,
                    auth_listener=self._auth_listener(),
                    d=self.directory,
                    cert=cert,
                    key=key,
                    port=self.port,
                    relay_port=self.relay_port,
                    mechanisms=mechanisms,
                )
            )
        self._proc = subprocess.Popen(
            [DOVECOT, "-c", self.conf, "-F"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                out = self._proc.stdout.read().decode("utf-8", "replace")
                self._proc = None
                raise DovecotError("dovecot exited at start:\n%s\n%s" % (out, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DovecotError("dovecot did not answer on port %d:\n%s" % (self.port, self.log()))

    def _auth_listener(self):
        if self.auth_socket is None:
            return ""
        # Postfix's smtpd runs as user postfix.
        return (
            "service auth {\n"
            "  unix_listener %s {\n"
            "    mode = 0666\n"
            "  }\n"
            "}\n" % self.auth_socket
        )

    def _oauth2(self):
        """The oauth2 passdb, validating JWTs locally: HS256 with the key
        looked up as shared/<azp>/<alg>/<kid> (azp and kid default to
        "default") in a file dict."""
        keys = os.path.join(self.directory, "keys", "default", "HS256")
        os.makedirs(keys, exist_ok=True)
        with open(os.path.join(keys, "default"), "w", encoding="ascii") as fp:
            fp.write(base64.b64encode(self.jwt_key).decode())
        ext = os.path.join(self.directory, "oauth2.conf.ext")
        with open(ext, "w", encoding="utf-8") as fp:
            fp.write(
                "introspection_mode = local\n"
                "local_validation_key_dict = fs:posix:prefix=%s/keys/\n"
                "username_attribute = sub\n" % self.directory
            )
        return (
            "passdb {\n"
            "  driver = oauth2\n"
            "  mechanisms = xoauth2 oauthbearer\n"
            "  args = %s\n"
            "}\n" % ext
        )

    def stop(self, timeout=10.0):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        proc.stdout.close()


def jwt(key, sub, lifetime=300, now=None, claims=None):
    """An HS256 JWT for ``sub`` that the oauth2 passdb accepts with ``key``
    (``claims`` adds more, e.g. to make it as long as real ones)."""
    import hashlib
    import hmac
    import json

    now = int(time.time()) if now is None else now

    def b64url(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = {"sub": sub, "iat": now, "exp": now + lifetime}
    payload.update(claims or {})
    body = b64url(json.dumps(payload).encode())
    signature = hmac.new(key, ("%s.%s" % (header, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (header, body, b64url(signature))
