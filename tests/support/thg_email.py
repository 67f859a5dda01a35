"""Drive TortoiseHg's Email dialog as a person would: open it as ``thg
email -r REVS`` does, fill To and From, press Send, answer the password
dialog after reading its question, and record what the dialog's command
session printed and how it ended.

Run by tests/test_tortoisehg.py with the system Python (Debian's
tortoisehg) under Xvfb:

    thg_email.py REPO REVS TO FROM RESULT.json [PASSWORD...]

RESULT.json: ``output`` (the session's text, as the dialog's log holds
it), ``questions`` (each password dialog's label), ``exit`` (the
command's exit status).
"""

import json
import sys

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QInputDialog
from tortoisehg.hgqt import cmdui, hgemail, run

repo, revs, to, sender, result = sys.argv[1:6]
answers = sys.argv[6:]
record = {"output": [], "questions": [], "exit": None}

# Everything waits on a timer, and a run that hangs ends here.
BOUND_MS = 90000


def _quit():
    app = QApplication.instance()
    app.closeAllWindows()
    app.quit()


def _watch_session(orig):
    def setSession(self, sess):
        sess.outputReceived.connect(lambda msg, label: record["output"].append(str(msg)))

        def finished(ret):
            record["exit"] = ret
            QTimer.singleShot(200, lambda: (self.reject(), _quit()))

        sess.commandFinished.connect(finished)
        return orig(self, sess)

    return setSession


def _answer():
    """The password dialog: its question read, the next answer typed."""
    w = QApplication.activeModalWidget()
    if isinstance(w, QInputDialog) and w.isVisible() and not getattr(w, "_answered", False):
        w._answered = True
        record["questions"].append(str(w.labelText()))
        if answers:
            w.setTextValue(answers.pop(0))
            w.accept()
        else:
            w.reject()
    QTimer.singleShot(100, _answer)


def _fill(dialog):
    dialog._qui.to_edit.setEditText(to)
    dialog._qui.from_edit.setEditText(sender)
    dialog._qui.send_button.click()


def _opened(orig):
    # Timers need the application, which exists once the dialog does.
    def __init__(self, *args, **kwargs):
        orig(self, *args, **kwargs)
        QTimer.singleShot(200, lambda: _fill(self))
        QTimer.singleShot(100, _answer)
        QTimer.singleShot(BOUND_MS, _quit)

    return __init__


cmdui.CmdSessionDialog.setSession = _watch_session(cmdui.CmdSessionDialog.setSession)
hgemail.EmailDialog.__init__ = _opened(hgemail.EmailDialog.__init__)
try:
    run.dispatch([b"email", b"-R", repo.encode(), b"-r", revs.encode()])
finally:
    with open(result, "w") as fp:
        json.dump(record, fp)
