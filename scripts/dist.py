"""The install that needs no pip: each wheel in a folder as a folder and a
zip (``securesmtp-VERSION-PLATFORM/securesmtp/`` and
``securesmtp-VERSION-PLATFORM.zip``), to be unpacked anywhere and named by
path under ``[extensions]``, for a Python one cannot pip into (a
distribution's Mercurial, TortoiseHg's bundled Python).

Usage: python scripts/dist.py DIST_DIR
"""

import os
import shutil
import sys
import zipfile

PACKAGE = "securesmtp/"


def unpack(wheel, dist):
    """The folder and zip for ``wheel``; returns the folder's path."""
    # securesmtp-0.1.0-cp39-abi3-PLATFORM.whl
    name, version, _python, _abi, platform = os.path.basename(wheel)[: -len(".whl")].split("-")
    base = os.path.join(dist, "%s-%s-%s" % (name, version, platform))
    shutil.rmtree(base, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.startswith(PACKAGE) and not m.endswith("/")]
        for member in members:
            zf.extract(member, base)
    archive = base + ".zip"
    with zipfile.ZipFile(archive + ".part", "w", zipfile.ZIP_DEFLATED) as out:
        for member in sorted(members):
            out.write(os.path.join(base, member), member)
    os.replace(archive + ".part", archive)
    return base


def main(dist):
    wheels = sorted(f for f in os.listdir(dist) if f.endswith(".whl"))
    if not wheels:
        sys.exit("dist: no wheel in %s" % dist)
    for wheel in wheels:
        folder = unpack(os.path.join(dist, wheel), dist)
        print("dist: %s/securesmtp (and %s.zip)" % (folder, os.path.basename(folder)))


if __name__ == "__main__":
    main(sys.argv[1])
