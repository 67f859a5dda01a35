"""SMTP reply codes the shim has rules about, each named once (RFC 5321
4.2, RFC 4954 6, RFC 1870). The core names the same codes in
src/smtp/reply.rs; these are the ones a message or a decision here turns
on."""

# 221: the server ends the session (an answer to QUIT, or out of turn).
CLOSING_NORMALLY = 221
# 421: service not available, closing the transmission channel: the
# server is going away (shutting down, too busy, an idle limit). Worth a
# new connection.
CLOSING = 421
# 530 (RFC 4954 6): authentication required before this command.
AUTH_REQUIRED = 530
# 534 (RFC 4954 6): authentication mechanism too weak (Google: an
# application-specific password is required).
AUTH_TOO_WEAK = 534
# 535 (RFC 4954 6): authentication credentials invalid.
AUTH_INVALID = 535
# 550: mailbox unavailable, or (Microsoft 365) basic authentication refused.
UNAVAILABLE = 550
# 552: exceeded storage allocation; with RFC 1870, the message is bigger
# than the server's SIZE limit.
TOO_BIG = 552


def positive(code):
    """A 2xx or 3xx: not a refusal (the server answered out of turn where a
    refusal is reported)."""
    return code is not None and code < 400


def transient(code):
    """A 4xx: the server could not do it now; the same request may work
    later, and it says nothing about what was sent."""
    return code is not None and 400 <= code < 500


def closing(code):
    """A reply after which the server closes the connection."""
    return code in (CLOSING, CLOSING_NORMALLY)
