"""Conversions between the core's ``str`` and Mercurial's ``bytes``."""


def tobytes(text):
    """UTF-8 bytes for Mercurial's output; ``None`` becomes ``b""``."""
    if text is None:
        return b""
    return text.encode("utf-8", "replace") if isinstance(text, str) else text


def tostr(value):
    """``str`` for the core; undecodable bytes survive as surrogates."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


# Names for the control characters unicodedata leaves unnamed.
_CONTROL_NAMES = {
    "\0": "NULL",
    "\t": "CHARACTER TABULATION",
    "\n": "LINE FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
}


def _name(char):
    """``U+00A0 NO-BREAK SPACE``."""
    import unicodedata  # only for a value being refused

    name = unicodedata.name(char, None) or _CONTROL_NAMES.get(char, "a control character")
    return "U+%04X %s" % (ord(char), name)


def _undecodable(char):
    # surrogateescape's stand-in for a byte that is not UTF-8.
    return 0xDC80 <= ord(char) <= 0xDCFF


def _escaped(char):
    code = ord(char)
    if _undecodable(char):
        return "\\x%02x" % (code - 0xDC00)
    return "\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code


def invisible(value):
    """The characters of ``value`` (bytes from hgrc, read as UTF-8) that do
    not show when printed: spaces other than the ASCII one, zero-width and
    format characters, controls; each once, in order. Bytes that are not
    UTF-8 are not counted: they may be text in the local encoding (a
    Latin-1 user name), which is checked where it is decoded."""
    found = []
    for char in tostr(value):
        if not char.isprintable() and not _undecodable(char) and char not in found:
            found.append(char)
    return found


def shown(value):
    """``value`` quoted as typed, for an error message, with each character
    one cannot see escaped and named, as in ``'localhost\\u00a0' contains
    U+00A0 NO-BREAK SPACE`` (a byte that is not UTF-8 is escaped as ``\\xe9``).
    Bytes, for Mercurial's messages."""
    odd = invisible(value)
    text = "".join(_escaped(c) if c in odd or _undecodable(c) else c for c in tostr(value))
    quoted = "'%s'" % text
    if odd:
        quoted += " contains " + " and ".join(_name(c) for c in odd)
    return tobytes(quoted)
