"""The replacement for ``mercurial.mail._smtp``.

``smtp(orig, ui)`` returns ``send(sender, recipients, msg)``. It is called
once per ``hg email`` run (whose one connection serves the whole series),
once per notification by notify, once per batch by bugzilla. Within a
command or an hgweb request (see ``mail_pool``) a connection opened with the
same settings is reused by the next call and closed with QUIT when the scope
ends; outside one, when the send function is released.

Opening a verified session: ``connection.py``; logging in: ``login.py``; a
series' verdicts, reconnections and report: ``series.py``.
"""

from mercurial import error

from . import connection, series


def smtp(orig, ui):
    """A ``send`` function on a verified, authenticated connection: the
    pooled one for these settings if this scope has one, else a new one."""
    running = series.current_series()
    streaming = running is not None and running.sender is None
    try:
        conn = connection.for_ui(ui, pooled=not streaming)
    except error.Abort as exc:
        raise exc if streaming else connection.hint_in_message(exc)
    sender = series.Sender(ui, conn, streaming)
    if streaming:
        running.sender = sender
    return sender
