"""Published certificates nobody here wrote: the extension is never more
lenient than stock (``support/vectors.py`` says how each is judged).

``make test`` judges the real-world certificates and cryptography's own
edge cases (``custom/``); ``SECURESMTP_VECTORS=all`` adds NIST's PKITS
suite (about 1,500 more files; docs/security.md records that run).
"""

import os
import sys

from support import vectors


def test_no_published_certificate_is_judged_more_leniently_than_by_stock(tmp_path):
    root = vectors.folder()
    if os.environ.get("SECURESMTP_VECTORS") == "all":
        rows, counts = vectors.run(str(tmp_path))
    else:
        rows, counts = vectors.run(str(tmp_path), root, skip=("PKITS_data", "ocsp", "requests"))
    wider = [r for r in rows if r.ours and not r.stock]
    summary = "\n".join("%s %s: %s, %s: %d" % (*key, n) for key, n in sorted(counts.items()))
    sys.stdout.write("\n%s\n" % summary)
    assert len(rows) >= 150, summary
    assert not wider, "\n".join("%s (%s): %s" % (r.path, r.how, r.ours_says) for r in wider)
    # Both sides reach both verdicts: the judges are awake.
    assert any(r.ours and r.stock for r in rows) and any(not r.ours and not r.stock for r in rows)
