"""Turning a message into bytes without whole-body copies.

patchbomb flattens each message with ``mail.Generator`` (the standard
library's ``BytesGenerator``) into a ``BytesIO`` and hands
``fp.getvalue()`` to the SMTP client. For a large patch the standard
generator is what costs memory, not the sending: it splits the body into a
list of lines (for a body of 80-byte lines, about twice the body's size in
string objects), writes the body into a buffer of its own so that it can
write the headers first, and then copies that buffer into the output. With
a 50 MB patch that is about three times the message on top of what
patchbomb already holds, and it happens after the connection is open.

:class:`Generator` writes the same bytes (tests/test_flatten.py compares
them) with the line endings rewritten a slice at a time, and a single-part
message's body straight into the output after its headers. What it cannot
prove safe it leaves to the standard library: a multipart message (its
boundary is chosen after the parts are written), an output it cannot
rewind, and a body whose writing asked for changed headers.
"""

import contextlib
import email.generator
import io
import re
from typing import Any

# The standard library's own line-ending pattern (email.generator.NLCRE).
_NEWLINES = re.compile(r"\r\n|\r|\n")

# Characters of a body rewritten and written at a time.
_SLICE = 1 << 20


# The methods overridden below are the standard generator's private hooks
# (the same in Python 3.9 to 3.13), which the type stubs do not declare.
_BytesGenerator: Any = email.generator.BytesGenerator


class Generator(_BytesGenerator):
    """``email.generator.BytesGenerator`` with bounded extra memory for a
    single-part message written to a ``BytesIO``."""

    def _write(self, msg):
        fp = self._fp
        if msg.is_multipart() or not isinstance(fp, io.BytesIO):
            return super()._write(msg)
        start = fp.tell()
        self._munge_cte = None
        try:
            # What the standard _write does after buffering the body, in the
            # order it ends up in the output: headers, then the body.
            write_headers = getattr(msg, "_write_headers", None)
            if write_headers is None:
                self._write_headers(msg)
            else:
                write_headers(self)
            self._dispatch(msg)
            munged = self._munge_cte
        finally:
            del self._munge_cte
        if munged:
            # Writing the body changed what the headers must say (a 7-bit
            # policy re-encoding 8-bit text): start over the standard way.
            fp.seek(start)
            fp.truncate()
            super()._write(msg)

    def _write_lines(self, lines):
        # The standard version splits the whole text into a list of lines
        # and writes each with the generator's line ending; substituting the
        # endings a slice at a time writes the same characters.
        end = len(lines)
        start = 0
        while start < end:
            stop = min(start + _SLICE, end)
            if stop < end and lines[stop - 1] == "\r" and lines[stop] == "\n":
                stop += 1  # keep a CRLF in one slice: it is one line ending
            self.write(_NEWLINES.sub(self._NL, lines[start:stop]))
            start = stop


@contextlib.contextmanager
def installed():
    """Use :class:`Generator` as ``mail.Generator`` for the duration,
    unless something else has already replaced the standard one."""
    from mercurial import mail

    previous = mail.Generator
    if previous is not email.generator.BytesGenerator:
        yield
        return
    mail.Generator = Generator
    try:
        yield
    finally:
        mail.Generator = previous
