"""The securesmtp demo: a patch series mailed through the extension to a
local TLS server with a throwaway CA, then a forged server refused.

Everything runs on loopback in a temporary directory: a CA and certificates
made now, aiosmtpd servers (STARTTLS, AUTH required), a real Mercurial
repository and the real ``hg email``.
"""

import email
import email.header
import logging
import os
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from support import hg, pki, servers  # noqa: E402


# aiosmtpd's own deprecation notices are not part of the story: some come as
# warnings, and "Session.login_data is deprecated" as a log record at WARNING
# level, which Python prints to stderr when nobody configured logging. Its
# errors still show.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning)
logging.getLogger("mail.log").setLevel(logging.ERROR)


def subject_of(raw):
    header = email.message_from_bytes(raw)["Subject"] or ""
    return str(email.header.make_header(email.header.decode_header(header)))


def banner(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def show(result):
    code, out, err = result
    for line in out.splitlines():
        # The patches themselves are long; the status lines tell the story.
        if line.startswith(("sending", "(", "this patch", "warning", "abort")):
            print("   " + line)
    for line in err.splitlines():
        print("   " + line)
    print("   [exit status %d]" % code, flush=True)
    return code


def main():
    work = tempfile.mkdtemp(prefix="securesmtp-demo-")
    certs = pki.make_pki(os.path.join(work, "pki"))
    repo = hg.make_repo(work, n_patches=3)
    args = hg.email_args() + ["-v"]
    password = servers.PASSWORD

    banner("1. A patch series to a server whose certificate our CA signed")
    with servers.SmtpServer(cert=certs.rsa, mode="starttls", user=servers.USER, password=password) as good:
        hgrc = hg.smtp_hgrc(good.port, cacerts=certs.ca.cert, username=servers.USER, password=password)
        print("   hgrc: [smtp] tls=starttls, port=%d; [web] cacerts=<throwaway CA>" % good.port)
        code = show(hg.run_hg(repo, args, hgrc=hgrc))
        received = good.wait_for_messages(3, timeout=10)
        expected = hg.mbox_messages(repo, hg.email_args(), hgrc=hgrc)
        print("   the server received %d messages:" % len(received))
        for got, want in zip(received, expected):
            subject = subject_of(got.content)
            same = got.content == hg.to_wire(want)
            print(
                "     %s  to %s  %s"
                % (subject, ", ".join(got.rcpt_tos), "identical to hg email --mbox" if same else "DIFFERS")
            )
        print("   commands the server saw: %s" % " ".join(v for v in good.verbs if v))
        if code != 0 or len(received) != 3:
            return 1

    banner("2. The same settings, but a man in the middle answers with his own CA")
    with servers.SmtpServer(cert=certs.unknown_ca, mode="starttls", user=servers.USER, password=password) as forged:
        hgrc = hg.smtp_hgrc(forged.port, cacerts=certs.ca.cert, username=servers.USER, password=password)
        code = show(hg.run_hg(repo, args, hgrc=hgrc))
        verbs = [v for v in forged.verbs if v]
        print("   commands the forged server saw: %s" % " ".join(verbs))
        leaked = [v for v in verbs if v in ("AUTH", "MAIL", "RCPT", "DATA", "BDAT")]
        print("   password or patch sent to it: %s" % ("YES: %s" % leaked if leaked else "no"))
        if code == 0 or leaked:
            return 1

    banner("3. hg debugsmtp shows what that server presented and how to pin it")
    with servers.SmtpServer(cert=certs.unknown_ca, mode="starttls") as forged:
        hgrc = hg.smtp_hgrc(forged.port, cacerts=certs.ca.cert)
        code, out, err = hg.run_hg(repo, ["debugsmtp"], hgrc=hgrc)
        for line in (out + err).splitlines():
            print("   " + line)
    print("\ndemo finished: series delivered, forged server refused (files in %s)" % work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
