"""Never trust more than stock Mercurial: stock ``hg email`` and ``hg email``
with securesmtp, side by side, on a matrix of certificate situations.

Every case of ``support/certmatrix.py`` runs the real ``hg email`` twice
with the same hgrc, stock (no extension) and with ``securesmtp =``, each
against its own TLS server (aiosmtpd, SMTPS or STARTTLS, on 127.0.0.1)
presenting the case's chain. A run is

- *accepted*: hg exited 0 and the server received the message;
- *refused*: hg exited non-zero and the server saw no AUTH, MAIL, RCPT, DATA
  or BDAT (neither as a parsed command nor in the raw bytes);
- anything else is a broken case and fails it.

A case fails when the extension accepts what stock refuses, unless it is one
of ``RFC6125_WIDER`` or ``EXPLICIT_PIN_WIDER`` (each with its reason). Every refusal by the extension
must name its cause: an ``abort:`` line, a hint line, no traceback.
Refusals by the extension of what stock accepts are the "stricter than
stock" table, printed by ``test_stricter_than_stock_table`` and kept in
docs/security.md; ``SECURESMTP_UPDATE_DOCS=1`` rewrites the doc's table
from the run.

Host names: both clients connect to the same name. Names other than
localhost and 127.0.0.1 (wildcards, a trailing dot) resolve through a hosts
file of our own, bind-mounted over /etc/hosts in a private mount namespace
(``unshare``) that every run of the suite uses, stock and extension alike;
where no namespace can be made, those cases are skipped with that reason.

Trust source: where the case gives a CA file, both clients load only that
file. Where it gives none, both load the default store: the system's, or
the case's own bundle through SSL_CERT_FILE (read by OpenSSL for stock and by
rustls-native-certs for the extension). Stock would prefer certifi's bundle
if certifi were importable; ``test_trust_sources_match`` makes sure it is not.
"""

import concurrent.futures
import os
import re
import socket
import subprocess
import sys
import time
import types
from dataclasses import dataclass, field

import pytest
from support import certmatrix, hg, hosts, servers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOC = os.path.join(ROOT, "docs", "security.md")
BEGIN = "<!-- differential-table:begin (tests/test_differential.py writes this table) -->"
END = "<!-- differential-table:end -->"

# Where RFC 6125 requires accepting what stock's own name matcher
# (sslutil._verifycert: dNSName entries and the CN only) refuses.
RFC6125_WIDER = {
    "ip-host-ip-san": (
        "RFC 6125 section 6.2.1 (and RFC 5280 4.2.1.6): a host given as an IP "
        "address is matched against iPAddress subjectAltName entries; stock "
        "ignores them and refuses a certificate whose only name is the IP"
    ),
    "trailing-dot-host": (
        "RFC 6125 section 6.2.1 / RFC 1034 3.1: 'localhost.' is the absolute "
        "form of 'localhost' and the trailing dot is not part of the name to "
        "match; stock compares the name with its dot and finds no match"
    ),
}

# The extension's own explicit pin, a setting stock does not read: with the
# line the user trusts that key, without it the result is stock's. Not an
# RFC 6125 case; docs/security.md ("Where securesmtp differs from stock
# Mercurial") lists it as the one other difference in this direction.
EXPLICIT_PIN_WIDER = {
    "pubkeys-pin-leaf": (
        "hostsecurity.<host>:pubkeys pins the server's public key (SPKI "
        "SHA-256), like a :fingerprints pin that survives renewal; stock "
        "ignores the setting and refuses the self-signed certificate"
    ),
}

# Stock's results the harness itself depends on: if these do not hold, the
# servers, hosts file or classification are broken and every other verdict
# means nothing.
STOCK_ACCEPTS = ("anchor-ca-true", "anchor-ca-true-starttls", "pin-leaf", "insecure-unknown-ca")
STOCK_REFUSES = ("chain-unknown-ca", "leaf-wrong-name", "pin-leaf-mismatch")

SENSITIVE = ("AUTH", "MAIL", "RCPT", "DATA", "BDAT")
ACCEPTED, REFUSED, BROKEN = "accepted", "refused", "broken"
SPECS = {spec.name: spec for spec in certmatrix.CASES}


@dataclass
class Run:
    verdict: str
    code: int
    out: str
    err: str
    port: int
    seen: list = field(default_factory=list)  # sensitive verbs the server saw
    delivered: int = 0
    problem: str = ""  # why the run is BROKEN, or a traceback/secret check

    def abort_line(self):
        for line in self.err.splitlines():
            if line.startswith("abort:"):
                return line
        return ""

    def hint_line(self):
        lines = self.err.splitlines()
        for n, line in enumerate(lines):
            if line.startswith("abort:"):
                return next((x for x in lines[n + 1:] if x.startswith("(")), "")
        return ""

    def show(self):
        return "exit %d, %s, server saw %s, %d delivered%s\nstdout:\n%s\nstderr:\n%s" % (
            self.code, self.verdict, self.seen or "nothing sensitive", self.delivered,
            (" (%s)" % self.problem) if self.problem else "", self.out, self.err)


@dataclass
class Result:
    name: str
    what: str
    stock: Run
    ext: Run
    directory: str
    case: certmatrix.Case

    def normalized(self, run, text):
        """Text without what changes from run to run (port, paths, dates,
        fingerprints), for the doc table."""
        text = text.replace(self.directory, "CASEDIR")
        text = re.sub(r"(?<=:)%d\b" % run.port, "PORT", text)
        text = re.sub(r"\b(sha1|sha256|sha512):[0-9A-Fa-f:]{20,}", r"\1:FINGERPRINT", text)
        text = re.sub(r"\b[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15,}\b", "FINGERPRINT", text)
        text = re.sub(r"\bsha256:[A-Za-z0-9+/]{43}=?", "sha256:PUBKEY", text)
        text = re.sub(r"\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?(?: ?UTC| ?Z)?", "DATE", text)
        return text

    def details(self):
        spec = SPECS[self.name]
        return "case %s: %s\n-- stock: %s\n-- securesmtp: %s" % (
            self.name, spec.what, self.stock.show(), self.ext.show())


# -- running hg in its own hosts file -------------------------------------------


def _hosts_prefix(directory):
    """A command prefix that runs hg with EXTRA_HOSTS resolving to
    127.0.0.1, or None (and why) when no mount namespace can be made."""
    return hosts.prefix(directory, certmatrix.EXTRA_HOSTS)


def _resolves(host):
    try:
        return any(a[4][0] == "127.0.0.1" for a in socket.getaddrinfo(host, 25))
    except OSError:
        return False


class Differential:
    """Runs cases on demand and remembers their results."""

    def __init__(self, directory, repo):
        self.matrix = certmatrix.Matrix(os.path.join(directory, "certs"))
        self.repo = repo
        self.prefix, self.no_hosts = _hosts_prefix(directory)
        self.results = {}
        self.seconds = 0.0

    def result(self, name):
        if name not in self.results:
            started = time.monotonic()
            self.results[name] = self._run_case(self.matrix.write(SPECS[name]))
            self.seconds += time.monotonic() - started
        return self.results[name]

    def _run_case(self, w):
        c = w.case
        if self.prefix is None and c.host not in ("localhost", "127.0.0.1") and not _resolves(c.host):
            pytest.skip("%s does not resolve and %s" % (c.host, self.no_hosts))
        # Each client gets its own server, and the two run at once: the cost
        # of a case is hg's start-up, twice, and two cores do that in the
        # time of one.
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            stock, ext = pool.map(lambda extension: self._served(w, extension), (False, True))
        return Result(w.name, w.what, stock, ext, os.path.dirname(w.chain), w.case)

    def _served(self, w, extension):
        cert = types.SimpleNamespace(chain=w.chain, key=w.key)
        server = servers.SmtpServer(cert, w.case.mode, user=servers.USER,
                                    password=servers.PASSWORD,
                                    ciphers="DEFAULT:@SECLEVEL=0").start()
        try:
            return self._client(server, w, extension)
        finally:
            server.stop()

    def _hgrc(self, port, w, extension):
        c = w.case
        extra = {section: dict(items) for section, items in c.config.items()}
        hostsecurity = dict(c.hostsecurity)
        if w.host_cafile:
            hostsecurity["%s:verifycertsfile" % c.host] = w.host_cafile
        return hg.smtp_hgrc(
            port, tls=c.mode, cacerts=w.cafile, username=servers.USER,
            password=servers.PASSWORD, host=c.host, extension=extension,
            hostsecurity=hostsecurity, hostfingerprints=c.hostfingerprints, extra=extra,
        )

    def _client(self, server, w, extension):
        args = hg.email_args(cc=None, revs="0") + list(w.case.args)
        problem = ""
        try:
            code, out, err = hg.run_hg(self.repo, args, self._hgrc(server.port, w, extension),
                                       timeout=60, prefix=self.prefix or (), env=w.env,
                                       allow_traceback=not extension)
        except AssertionError as exc:  # a traceback or a secret in the output
            code, out, err, problem = -1, "", str(exc), exc.__class__.__name__
        except subprocess.TimeoutExpired:
            code, out, err, problem = -1, "", "", "hg did not finish in 60 s"
        if self.prefix is not None and code == 97:
            problem = "the hosts file could not be mounted"
        server.wait_idle(10)
        seen = [v for v in server.verbs if v in SENSITIVE]
        for verb in SENSITIVE:
            if verb not in seen and re.search(rb"(?im)^" + verb.encode() + rb"\b", server.raw):
                seen.append(verb)
        delivered = len(server.messages)
        if problem:
            verdict = BROKEN
        elif code == 0 and delivered == 1:
            verdict = ACCEPTED
        elif code != 0 and not seen and delivered == 0:
            verdict = REFUSED
        else:
            verdict = BROKEN
            problem = "neither accepted (exit 0, message delivered) nor refused (exit non-zero, nothing sent)"
        return Run(verdict, code, out, err, server.port, seen, delivered, problem)


def _small_repo(directory):
    """One small ASCII patch: stock hg sends the message with bare LF line
    endings, so the whole message must fit in one 1000-byte SMTP line or
    the server refuses it for a reason that has nothing to do with trust."""
    repo = os.path.join(directory, "repo")
    for args in (["init", repo], ["add", "a"], ["commit", "-m", "a", "-d", "2025-06-01 12:00 +0000"]):
        if args[0] == "add":
            with open(os.path.join(repo, "a"), "w") as fp:
                fp.write("a\n")
        code, out, err = hg.run_hg(repo if args[0] != "init" else directory, args)
        assert code == 0, (args, out, err)
    args = hg.email_args(cc=None, revs="0")
    (message,) = hg.mbox_messages(repo, args)
    assert len(message) < 1000, len(message)
    return repo


@pytest.fixture(scope="session")
def differential(tmp_path_factory):
    repo = _small_repo(str(tmp_path_factory.mktemp("hg-diff")))
    return Differential(str(tmp_path_factory.mktemp("differential")), repo)


# -- the checks --------------------------------------------------------------------


def test_matrix_is_broad():
    assert len(certmatrix.CASES) >= 60, len(certmatrix.CASES)
    for name in list(RFC6125_WIDER) + list(EXPLICIT_PIN_WIDER) + list(STOCK_ACCEPTS) + list(STOCK_REFUSES):
        assert name in SPECS, name


def _certs(path):
    from cryptography import x509

    with open(path, "rb") as fp:
        return x509.load_pem_x509_certificates(fp.read())


def test_matrix_certificates_are_what_the_cases_say(differential):
    # The properties made by hand (re-signed DER) or easy to get wrong,
    # read back with an independent parser.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    m = differential.matrix
    written = {name: m.write(SPECS[name]) for name in (
        "anchor-v1", "cafile-selfsigned-v1-itself", "leaf-sha1-signed", "inter-sha1-signed",
        "anchor-sha1-self-signature", "leaf-rsa1024", "anchor-pathlen0-one-intermediate",
        "anchor-nc-cn-only-leaf", "leaf-unknown-critical", "chain-out-of-order")}
    (anchor,) = _certs(written["anchor-v1"].cafile)
    assert anchor.version == x509.Version.v1 and len(anchor.extensions) == 0
    (ss,) = _certs(written["cafile-selfsigned-v1-itself"].chain)
    assert ss.version == x509.Version.v1 and ss.subject == ss.issuer
    for name, index in (("leaf-sha1-signed", 0), ("inter-sha1-signed", 1)):
        cert = _certs(written[name].chain)[index]
        assert cert.signature_hash_algorithm.name == "sha1", name
    (root,) = _certs(written["anchor-sha1-self-signature"].cafile)
    assert root.signature_hash_algorithm.name == "sha1"
    # cryptography will not verify SHA-1 itself: check the RSA signature by hand.
    root.public_key().verify(root.signature, root.tbs_certificate_bytes, padding.PKCS1v15(),
                             hashes.SHA1())
    key = _certs(written["leaf-rsa1024"].chain)[0].public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024
    (anchor,) = _certs(written["anchor-pathlen0-one-intermediate"].cafile)
    assert anchor.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    leaf, inter = _certs(written["anchor-pathlen0-one-intermediate"].chain)
    leaf.verify_directly_issued_by(inter)
    inter.verify_directly_issued_by(anchor)
    (anchor,) = _certs(written["anchor-nc-cn-only-leaf"].cafile)
    assert anchor.extensions.get_extension_for_class(x509.NameConstraints).critical
    (leaf,) = _certs(written["anchor-nc-cn-only-leaf"].chain)
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    (leaf,) = _certs(written["leaf-unknown-critical"].chain)
    ext = leaf.extensions.get_extension_for_oid(certmatrix.UNKNOWN_OID)
    assert ext.critical
    leaf, a, b = _certs(written["chain-out-of-order"].chain)
    leaf.verify_directly_issued_by(b)
    b.verify_directly_issued_by(a)


def test_harness_controls(differential):
    # Stock's verdicts on the controls: proof that the servers, the hosts
    # file and the classification work, so that "refused" means refused.
    for name in STOCK_ACCEPTS:
        r = differential.result(name)
        assert r.stock.verdict == ACCEPTED, r.details()
    for name in STOCK_REFUSES:
        r = differential.result(name)
        assert r.stock.verdict == REFUSED, r.details()


def test_trust_sources_match():
    # Stock loads certifi's bundle when it is importable and no CA file is
    # set; the extension loads the system's store. Neither holds the test
    # CAs, but if certifi is there the "no CA file" cases compare different
    # stores: say so rather than silently compare them.
    venv_python = os.path.join(os.path.dirname(hg.HG), "python")
    proc = subprocess.run([venv_python, "-c", "import certifi"], capture_output=True)
    assert proc.returncode != 0, (
        "certifi is importable in the venv hg runs from: stock would use its bundle "
        "and the extension the system store in the default-store cases")


@pytest.mark.parametrize("name", [spec.name for spec in certmatrix.CASES])
def test_never_wider_than_stock(differential, name):
    r = differential.result(name)
    assert r.stock.verdict != BROKEN, r.details()
    assert r.ext.verdict != BROKEN, r.details()
    if r.ext.verdict == ACCEPTED and r.stock.verdict == REFUSED:
        if name in EXPLICIT_PIN_WIDER:
            case = r.case
            assert set(case.hostsecurity) == {"localhost:pubkeys"}, case.hostsecurity
            assert not (case.cafile or case.host_cafile or case.hostfingerprints or case.args)
            return
        if name not in RFC6125_WIDER:
            pytest.fail("securesmtp accepts what stock hg email refuses\n" + r.details())
        # The exception covers stock's name matcher only: its refusal must
        # come from there (sslutil's "<host> certificate error: certificate
        # is for ..."), not from the chain, which OpenSSL checked first.
        assert re.match(r"abort: \S+ certificate error: certificate is for ", r.stock.abort_line()), (
            "stock refused for another reason than the name\n" + r.details())
    if r.ext.verdict == REFUSED:
        assert "Traceback" not in r.ext.out + r.ext.err, r.details()
        assert r.ext.abort_line(), "no 'abort:' line\n" + r.details()
        assert len(r.ext.abort_line()) > len("abort: ") + 10, r.details()
        assert r.ext.hint_line(), "no hint line after the abort\n" + r.details()


def _stricter_rows(differential):
    rows = []
    for spec in certmatrix.CASES:
        try:
            r = differential.result(spec.name)
        except pytest.skip.Exception:
            continue
        if r.ext.verdict == REFUSED and r.stock.verdict == ACCEPTED:
            message = r.normalized(r.ext, r.ext.abort_line()[len("abort: "):])
            rows.append((spec.name, spec.what, "delivered", message))
    return rows


def stricter_table(rows):
    def cell(text):
        return text.replace("|", "\\|")

    lines = ["| Case | Situation | Stock `hg email` | securesmtp |", "| --- | --- | --- | --- |"]
    for name, what, stock, message in rows:
        lines.append("| `%s` | %s | %s | abort: %s |" % (name, cell(what), stock, cell(message)))
    return "\n".join(lines)


def _doc_table():
    with open(DOC, encoding="utf-8") as fp:
        text = fp.read()
    if BEGIN not in text or END not in text:
        return text, None
    start = text.index(BEGIN) + len(BEGIN)
    return text, text[start:text.index(END)].strip("\n")


def test_stricter_than_stock_table(differential, capsys):
    rows = _stricter_rows(differential)
    table = stricter_table(rows)
    verdicts = ["%-45s stock %-8s securesmtp %s" % (name, r.stock.verdict, r.ext.verdict)
                for name, r in differential.results.items()]
    wider = [name for name, r in differential.results.items()
             if r.ext.verdict == ACCEPTED and r.stock.verdict == REFUSED]
    with capsys.disabled():
        sys.stdout.write(
            "\n\nEvery case (%d run in %.1f s):\n%s\n\nWider than stock: %s\n"
            "\nStricter than stock (%d of %d cases):\n%s\n"
            % (len(differential.results), differential.seconds, "\n".join(verdicts),
               ", ".join(wider) or "none", len(rows), len(certmatrix.CASES), table))
    text, documented = _doc_table()
    assert documented is not None, "docs/security.md has no %s ... %s section" % (BEGIN, END)
    if os.environ.get("SECURESMTP_UPDATE_DOCS") == "1":
        start = text.index(BEGIN) + len(BEGIN)
        text = text[:start] + "\n" + table + "\n" + text[text.index(END):]
        with open(DOC, "w", encoding="utf-8") as fp:
            fp.write(text)
        return
    assert documented == table, (
        "docs/security.md's stricter-than-stock table differs from this run; "
        "regenerate it with SECURESMTP_UPDATE_DOCS=1 .venv/bin/python -m pytest "
        "tests/test_differential.py\n--- documented\n%s\n--- computed\n%s" % (documented, table))
