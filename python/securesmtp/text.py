"""Conversions between the core's ``str`` and Mercurial's ``bytes``."""


def tobytes(text):
    """UTF-8 bytes for Mercurial's output; ``None`` becomes ``b""``."""
    if text is None:
        return b""
    return text.encode("utf-8", "replace") if isinstance(text, str) else text


def tostr(value):
    """``str`` for the core; undecodable bytes survive as surrogates."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
