"""The flattening generator writes exactly what the standard library's does.

``hg email`` with securesmtp flattens messages with
``securesmtp.flatten.Generator`` instead of ``email.generator.BytesGenerator``
(to avoid whole-body copies of a large patch; bench/run.py measures the
memory). Here: the bytes of both, compared on the messages Mercurial builds
(text in every charset patchbomb picks, quoted-printable long lines, CR and
CRLF line endings, attachments, a 7-bit policy that re-encodes), with slices
small enough to cut a line ending in two; that the body really goes out a
slice at a time; and ``hg email --mbox`` / ``--test`` / ``-a`` through the
real command, with and without the extension.
"""

import email.generator
import email.mime.multipart
import email.policy
import io
import random
import re

import pytest
from mercurial import mail

from securesmtp import flatten
from support import hg

ASCII = b"+line one\n+line two\n\n+From the start of a line\n"
BODIES = {
    "ascii": ASCII * 40,
    "utf-8": ("+Grüße, 日本語\n" * 30).encode("utf-8"),
    "latin-1": "+caf\xe9 cr\xe8me\n".encode("latin-1") * 30,
    "long-lines-qp": b"+" + b"x" * 1200 + b"\n" + ASCII,
    "crlf": ASCII.replace(b"\n", b"\r\n") * 20,
    "lone-cr": b"+one\r+two\r\n+three\n" * 20,
    "no-final-newline": ASCII + b"+last",
    "empty": b"",
    "dot-lines": b".\n..\n+.\n" * 10,
}


def _message(body, charset=None):
    if charset is None:
        msg = mail.mimetextpatch(body, display=False)
    else:
        msg = mail.mimetextqp(body, "plain", charset)
    msg["Subject"] = "[PATCH] flatten: a subject with ünïcode"
    msg["From"] = "Alice Tester <alice@example.test>"
    msg["X-Mercurial-Node"] = "0" * 40
    return msg


def _attached():
    msg = email.mime.multipart.MIMEMultipart()
    msg["Subject"] = "[PATCH] with an attachment"
    msg.attach(mail.mimeencode(None, ASCII * 3, display=True))
    part = mail.mimetextpatch(BODIES["utf-8"], display=False)
    part["Content-Disposition"] = "attachment; filename=p.patch"
    msg.attach(part)
    return msg


def _flat(generator, msg, out=None, **kwargs):
    fp = io.BytesIO() if out is None else out
    options = {k: kwargs.pop(k) for k in ("mangle_from_", "policy") if k in kwargs}
    generator(fp, **options).flatten(msg, False, **kwargs)
    return fp.getvalue()


@pytest.fixture(params=[flatten._SLICE, 7, 1], ids=["slice-1MiB", "slice-7", "slice-1"])
def slice_size(request, monkeypatch):
    monkeypatch.setattr(flatten, "_SLICE", request.param)
    return request.param


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("linesep", [None, "\r\n"], ids=["lf", "crlf-out"])
@pytest.mark.parametrize("mangle", [False, True], ids=["plain", "mangle-from"])
def test_same_bytes_as_the_standard_generator(name, linesep, mangle, slice_size):
    for charset in (None, "utf-8", "us-ascii"):
        if charset == "us-ascii" and not BODIES[name].isascii():
            continue
        msg = _message(BODIES[name], charset)
        kwargs = {"mangle_from_": mangle}
        if linesep:
            kwargs["linesep"] = linesep
        want = _flat(email.generator.BytesGenerator, msg, **kwargs)
        got = _flat(flatten.Generator, msg, **kwargs)
        assert got == want, (name, charset)


def test_multipart_is_left_to_the_standard_library(slice_size):
    # The boundary is random: the same seed for both.
    random.seed(11)
    want = _flat(email.generator.BytesGenerator, _attached())
    random.seed(11)
    assert _flat(flatten.Generator, _attached()) == want


def test_seven_bit_policy_rewrites_headers_the_standard_way(slice_size):
    # Under cte_type 7bit, writing 8-bit text changes the part's
    # Content-Transfer-Encoding: the headers cannot go out first.
    policy = email.policy.compat32.clone(cte_type="7bit")
    for name in ("latin-1", "utf-8"):
        msg = _message(BODIES[name])
        want = _flat(email.generator.BytesGenerator, msg, policy=policy)
        got = _flat(flatten.Generator, msg, policy=policy)
        assert got == want, name
        assert b"Content-Transfer-Encoding: base64" in got or b"quoted-printable" in got


class _Writer:
    """An output that cannot rewind, like the ui ``hg email --test`` writes to."""

    def __init__(self):
        self.parts = []

    def write(self, data):
        self.parts.append(bytes(data))


def test_output_that_cannot_rewind():
    msg = _message(BODIES["utf-8"])
    ours, theirs = _Writer(), _Writer()
    flatten.Generator(ours, mangle_from_=False).flatten(msg, False)
    email.generator.BytesGenerator(theirs, mangle_from_=False).flatten(msg, False)
    assert b"".join(ours.parts) == b"".join(theirs.parts)


class _Recording(io.BytesIO):
    """A BytesIO that remembers its largest single write."""

    largest = 0

    def write(self, data):
        self.largest = max(self.largest, len(data))
        return super().write(data)


def test_the_body_goes_out_a_slice_at_a_time(monkeypatch):
    monkeypatch.setattr(flatten, "_SLICE", 4096)
    body = ASCII * 20000  # 940 KB
    msg = _message(body)
    ours, theirs = _Recording(), _Recording()
    flatten.Generator(ours, mangle_from_=False).flatten(msg, False)
    email.generator.BytesGenerator(theirs, mangle_from_=False).flatten(msg, False)
    assert ours.getvalue() == theirs.getvalue()
    # The standard generator copies its whole-body buffer in one write.
    assert theirs.largest >= len(body)
    assert ours.largest <= 4096


def test_installed_only_while_hg_email_runs():
    assert mail.Generator is email.generator.BytesGenerator
    with flatten.installed():
        assert mail.Generator is flatten.Generator
    assert mail.Generator is email.generator.BytesGenerator


def test_a_generator_put_there_by_someone_else_stays(monkeypatch):
    class Theirs(email.generator.BytesGenerator):
        pass

    monkeypatch.setattr(mail, "Generator", Theirs)
    with flatten.installed():
        assert mail.Generator is Theirs
    assert mail.Generator is Theirs


# -- through the real command -------------------------------------------------

EXTENSION = {"extensions": {"securesmtp": ""}}


@pytest.mark.parametrize(
    "extra",
    [[], ["-a"], ["-i", "--desc", "{intro}"]],
    ids=["inline", "attached", "inline-with-intro"],
)
def test_hg_email_mbox_is_unchanged_by_the_extension(repo, tmp_path, extra):
    intro = tmp_path / "intro.txt"
    intro.write_text("An introduction with \u00fcn\u00efcode.\n", encoding="utf-8")
    args = hg.email_args() + [a.format(intro=intro) for a in extra]
    stock = [_boundary(m) for m in hg.mbox_messages(repo, args)]
    ours = [_boundary(m) for m in hg.mbox_messages(repo, args, hgrc=EXTENSION)]
    assert len(ours) == len(stock) >= 3
    assert ours == stock


def _boundary(message):
    """A message with its MIME boundaries (random in every run) made equal."""
    return re.sub(rb"={15}\d+==", b"=BOUNDARY=", message)


def test_hg_email_test_output_is_unchanged_by_the_extension(repo):
    args = hg.email_args() + ["--test"]
    code, stock, _ = hg.run_hg(repo, args)
    assert code == 0
    code, ours, _ = hg.run_hg(repo, args, hgrc=EXTENSION)
    assert code == 0
    assert "Content-Type: text/plain" in ours
    assert ours == stock
