"""A Postfix whose SASL is Dovecot's (``smtpd_sasl_type = dovecot``), the
usual self-hosted set-up: Postfix takes the mail, Dovecot checks the login.

    with DovecotPostfix(directory, password="pw") as pf:
        pf.starttls_port, pf.dovecot, pf.ca_file

The Dovecot instance (support/dovecot.py) runs from a folder of its own and
serves its auth socket to Postfix; its own submission port is not used.
Postfix answers a refused login with ``535 5.7.8 Error: authentication
failed``, whatever the cause, and AUTH with ``454 4.7.0 Temporary authentication failure`` once
Dovecot's auth service is gone (:meth:`stop_auth`).
"""

import os
import shutil
import signal
import tempfile
import time

from .dovecot import Dovecot
from .postfix import Postfix, free_port, make_certificates


class DovecotPostfix(Postfix):
    def start(self):
        # Beside Postfix's folder, not in it: Postfix wipes its own.
        base = tempfile.mkdtemp(prefix="securesmtp-dovecot-sasl-")
        _, key, chain = make_certificates(base)
        self.dovecot = Dovecot(
            base, _Cert(chain, key), free_port(), user=self.user, password=self.password,
            mechanisms="plain login", auth_socket=os.path.join(base, "auth-postfix"),
        )
        self.dovecot.start()
        try:
            return super().start()
        except Exception:
            self.stop()
            raise

    def stop(self):
        super().stop()
        dovecot, self.dovecot = getattr(self, "dovecot", None), None
        if dovecot is not None:
            dovecot.stop()
            shutil.rmtree(dovecot.directory, ignore_errors=True)

    def _write_tree(self):
        super()._write_tree()
        with open(os.path.join(self.config_dir, "main.cf"), "a", encoding="utf-8") as fp:
            # Later lines win in main.cf.
            fp.write(
                "\nsmtpd_sasl_type = dovecot\nsmtpd_sasl_path = %s\n"
                % self.dovecot.auth_socket
            )

    def stop_auth(self):
        """Take Dovecot's auth service away, as when it crashes or is
        restarted: its master and every process it started are killed (by
        their ids), so the socket is left with nobody behind it. An smtpd
        that asked it for the mechanisms earlier still offers AUTH, and
        answers AUTH with 454."""
        master = self.dovecot._proc.pid
        pids = [master] + _children(master)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.dovecot._proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids[1:]) and time.monotonic() < deadline:
            time.sleep(0.05)


def _children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fp:
                fields = fp.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fp:
            return fp.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class _Cert:
    def __init__(self, chain, key):
        self.chain = chain
        self.key = key
