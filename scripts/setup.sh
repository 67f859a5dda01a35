#!/usr/bin/env bash
# Set up everything the tests and the demo need, idempotently:
#   - Debian packages that are missing (apt-get update only if needed);
#   - .venv with maturin, pytest, mercurial, aiosmtpd, trustme, cryptography
#     and the checkers (ruff, mypy, auditwheel);
#   - the extension built ONCE as a wheel (`maturin build --release`), and
#     the sdist (`maturin sdist`), into .work/dist/, rebuilt only when something under src/, python/, Cargo.*
#     or pyproject.toml changed (the source hash is stamped next to it);
#   - .venv gets it as an editable install: python/ is on its path (edit the
#     shim and re-run tests, no rebuild) and the compiled core is copied from
#     the wheel into python/securesmtp/. With CI=true .venv gets the wheel
#     itself instead, so the full suite tests what users install;
#   - with --matrix: one venv per supported (Python, Mercurial) pair of
#     MATRIX, each with the same wheel installed, and Mercurial's own test
#     suite (its sdist, cached in .work/) for tests/mercurial/run.sh.
# Works on a fresh Debian 12 as root with Rust stable, python3, pip and gcc;
# the matrix needs the Pythons it names (pyenv's are found).
# Environment: PYTHON (default python3), SECURESMTP_FORCE_BUILD=1 to rebuild,
# SECURESMTP_ZIG=1 to build for manylinux2014 with zig (default under CI).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

# Debian packages the tests need. Add more here (one per line); each is
# installed only when dpkg says it is missing.
DEBIAN_PACKAGES=(
    openssl
    postfix
    sasl2-bin
    libsasl2-modules
    patch
    # tests/test_dovecot.py: a real SCRAM-SHA-256 / CRAM-MD5 server (a
    # private instance; the system service is kept from starting).
    dovecot-core
    dovecot-submissiond
    libidn12
    # Debian's own Mercurial on the system Python, which pip may not
    # install into (PEP 668): the extension runs there from the unpacked
    # folder `make dist` makes, named by path under [extensions]. The venv
    # its tests run in sees it through --system-site-packages.
    mercurial
    python3-venv
    # tests/test_tortoisehg.py: Debian's TortoiseHg (on Debian's Mercurial)
    # driven under Xvfb.
    tortoisehg
    xvfb
    xauth
)

# Exim for the streamed-series tests, unpacked into .work/exim/root rather
# than installed: installing exim4 removes postfix. Its one library Postfix
# does not pull in (libidn12) is in DEBIAN_PACKAGES above.
EXIM_PACKAGES=(
    exim4-base
    exim4-daemon-light
)

# Python packages for the test venv. Changing this list reinstalls.
PY_REQUIREMENTS=(
    "maturin>=1.5,<2"
    "pytest>=8,<10"
    "mercurial==7.2.4"
    "aiosmtpd==1.4.6"
    "trustme>=1.1,<2"
    "cryptography>=42,<51"
    "ruff==0.14.*"
    "mypy==1.18.*"
    "auditwheel>=6,<7"
    # tests/test_parity_generated.py: certificate chains generated from
    # parts, with shrinking.
    "hypothesis>=6.100,<7"
    # tests/test_trust_vectors.py: certificates nobody here wrote (real-world
    # ones, cryptography's edge cases, NIST's PKITS), judged by OpenSSL and
    # by the extension.
    "cryptography-vectors==50.0.2"
    # tests/test_callers.py: hg email through the command server, as
    # TortoiseHg runs commands.
    "python-hglib>=2.6,<3"
    # tests/test_keyring.py: the real mercurial_keyring and a file-backed
    # keyring backend.
    "mercurial_keyring==1.4.4"
    "keyrings.alt>=5,<6"
)

# The version matrix: NAME PYTHON MERCURIAL. The oldest and the newest pair
# supported; .venv (system python3, PY_REQUIREMENTS' Mercurial) is the third.
MATRIX=(
    "py3.10-hg6.1 3.10 6.1.1"
    "py3.9-hg6.5 3.9 6.5.3"
    "py3.13-hg7.2 3.13 7.2.4"
)
# A Mercurial older than minimumhgversion: only checked for a clean
# "requires version 6.1" message (scripts/test.sh), no test suite.
TOO_OLD="too-old-hg6.0 3.9 6.0.3"
# A Python older than the core's abi3 floor (3.9), with a Mercurial the
# extension supports: checked for a one-line message and a working stock
# hg email (tests/test_reach.py), no test suite.
OLD_PYTHON="old-python-py3.8 3.8 6.1.1"
# Test dependencies of the matrix venvs (no build tools, no checkers).
MATRIX_REQUIREMENTS=(
    "pytest>=8,<10"
    "aiosmtpd==1.4.6"
    "trustme>=1.1,<2"
    "cryptography>=42,<51"
)
# Mercurial whose source distribution provides tests/run-tests.py and the
# patchbomb tests (the same release as .venv's).
HG_TESTS_VERSION=7.2.4
HG_TESTS_SHA256=85839e0f39e6cb893a88932aa36ef661759f3c5c5de4551ad26bd9df53cb71a2

WORK="$ROOT/.work"
DIST="$WORK/dist"

MATRIX_MODE=0
for arg in "$@"; do
    case "$arg" in
        --matrix) MATRIX_MODE=1 ;;
        *) printf 'usage: setup.sh [--matrix]\n' >&2; exit 2 ;;
    esac
done

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Rust installed by rustup is often not on PATH in non-login shells (CI).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# ---------------------------------------------------------------------------
# Debian packages

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

install_debian_packages() {
    local wanted=("${DEBIAN_PACKAGES[@]}")
    # A system python3 without ensurepip (Debian without python3-venv)
    # cannot create the venv.
    if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        wanted+=("python3-venv")
    fi
    if ! command -v dpkg-query >/dev/null 2>&1; then
        log "not a Debian system; make sure these are installed: ${wanted[*]}"
        return 0
    fi
    local missing=()
    local p
    for p in "${wanted[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: ${missing[*]} (run as root, or install them)"
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # postfix asks which mail configuration to set up: none (the tests run
    # private instances; the package then starts no daemon).
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq
    # Packages with a daemon (dovecot) would start it system-wide; the
    # tests run private instances. A policy-rc.d that says no, only for
    # this install and only if the machine has none of its own.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local status=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null || status=$?
    [ "$made_policy" = 1 ] && rm -f "$policy"
    return "$status"
}

# ---------------------------------------------------------------------------
# Python venv and packages

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON)"
        "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
            || die "$PYTHON is older than 3.9"
        log "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.securesmtp-requirements"
    local want
    want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$VENV/bin/python" -c 'import maturin, pytest, mercurial, aiosmtpd, trustme, cryptography, mypy, auditwheel, keyring, keyrings.alt' >/dev/null 2>&1; then
        return 0
    fi
    log "installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" </dev/null
    printf '%s' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------
# The extension

# The same inputs for both wheels (scripts/source_hash.sh).
# shellcheck source=scripts/source_hash.sh
. "$ROOT/scripts/source_hash.sh"

use_zig() {
    [ "${SECURESMTP_ZIG:-}" = 1 ] || { [ "${CI:-}" = true ] && [ "${SECURESMTP_ZIG:-}" != 0 ]; }
}

wheel_path() {
    ls "$DIST"/securesmtp-*linux*.whl 2>/dev/null | head -n 1
}

build_wheel() {
    local stamp="$DIST/.source-hash"
    local hash
    hash="$(source_hash)"
    use_zig && hash="$hash zig"
    if [ "${SECURESMTP_FORCE_BUILD:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] \
        && [ -n "$(wheel_path)" ]; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust stable)"
    rm -rf "$DIST"
    mkdir -p "$DIST"
    local extra=()
    if use_zig; then
        # zig links against glibc 2.17 symbols: one wheel for every
        # manylinux2014-era system. Its own target dir, so switching does not
        # rebuild the normal one.
        "$VENV/bin/python" -c 'import ziglang' >/dev/null 2>&1 \
            || "$VENV/bin/python" -m pip install -q --disable-pip-version-check "ziglang>=0.13,<0.18" </dev/null
        extra=(--zig --compatibility manylinux2014 --target-dir "$ROOT/target/zig")
    fi
    log "building the wheel (maturin build --release ${extra[*]})"
    PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release --out "$DIST" "${extra[@]}" </dev/null
    [ -n "$(wheel_path)" ] || die "maturin built no wheel"
    # The sdist beside it: what platforms without a wheel build from.
    "$VENV/bin/maturin" sdist --out "$DIST" </dev/null >/dev/null 2>&1 || die "maturin sdist failed"
    # The same files as a folder and a zip, for a Python without pip.
    "$VENV/bin/python" scripts/dist.py "$DIST" >/dev/null || die "scripts/dist.py failed"
    printf '%s' "$hash" >"$stamp"
}

# The folder `scripts/dist.py` made from the Linux wheel: the package
# directory to name under [extensions].
folder_path() {
    local wheel
    wheel="$(basename "$(wheel_path)" .whl)"
    # securesmtp-VERSION-cp39-abi3-PLATFORM -> securesmtp-VERSION-PLATFORM
    printf '%s/%s-%s-%s/securesmtp\n' "$DIST" "$(echo "$wheel" | cut -d- -f1)" \
        "$(echo "$wheel" | cut -d- -f2)" "$(echo "$wheel" | cut -d- -f5)"
}

# The core with `_core._test_hook_panic` (cargo feature test-hooks), for the
# one test of the panic guard: a debug build beside the wheel, never in it.
# tests/test_config.py loads it from a copy of the package.
build_test_hooks() {
    local out="$WORK/test-hooks" stamp hash
    stamp="$out/.source-hash"
    hash="$(source_hash)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -f "$out/_core.abi3.so" ]; then
        return 0
    fi
    rm -rf "$out"
    mkdir -p "$out"
    log "building the core with test hooks (maturin build --profile dev --features test-hooks)"
    PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --profile dev --features test-hooks \
        --out "$out" </dev/null >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log" >&2; die "the test-hooks build failed"; }
    "$VENV/bin/python" - "$out" <<'PY'
import glob, os, sys, zipfile
out = sys.argv[1]
wheel = glob.glob(os.path.join(out, "securesmtp-*.whl"))[0]
with zipfile.ZipFile(wheel) as zf:
    name = next(n for n in zf.namelist() if os.path.basename(n).startswith("_core") and n.endswith(".so"))
    with open(os.path.join(out, "_core.abi3.so"), "wb") as fp:
        fp.write(zf.read(name))
os.remove(wheel)
PY
    printf '%s' "$hash" >"$stamp"
}

# ---------------------------------------------------------------------------
# Exim beside Postfix

setup_exim() {
    local dir="$ROOT/.work/exim"
    if [ -x "$dir/root/usr/sbin/exim4" ]; then
        :
    elif ! command -v apt-get >/dev/null 2>&1; then
        log "not a Debian system; the Exim tests need ${EXIM_PACKAGES[*]} unpacked in $dir/root"
        return 0
    else
        log "unpacking ${EXIM_PACKAGES[*]} into $dir/root"
        mkdir -p "$dir/debs"
        (cd "$dir/debs" && { apt-get download -q "${EXIM_PACKAGES[@]}" </dev/null \
            || { apt-get update -qq && apt-get download -q "${EXIM_PACKAGES[@]}" </dev/null; }; })
        local deb
        for deb in "$dir"/debs/*.deb; do
            dpkg-deb -x "$deb" "$dir/root.tmp"
        done
        rm -rf "$dir/root"
        mv "$dir/root.tmp" "$dir/root"
    fi
    # The user Debian's Exim is built to run deliveries as.
    if ! getent passwd Debian-exim >/dev/null 2>&1; then
        if [ "$(id -u)" -ne 0 ]; then
            die "the Exim tests need a Debian-exim system user (run as root)"
        fi
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin Debian-exim
    fi
}

# .venv: python/ on the path plus the core from the wheel (edits to the shim
# need no rebuild), or under CI the wheel itself.
install_dev() {
    local wheel stamp="$VENV/.securesmtp-build" want site
    wheel="$(wheel_path)"
    want="$(cat "$DIST/.source-hash") ${CI:-}"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && (cd / && "$VENV/bin/python" -c 'import securesmtp._core') >/dev/null 2>&1; then
        return 0
    fi
    rm -f "$stamp"
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # Whatever was there before (a wheel, or an old `maturin develop`).
    "$VENV/bin/python" -m pip uninstall -q -y securesmtp >/dev/null 2>&1 || true
    rm -f "$site/securesmtp.pth" python/securesmtp/_core*.so
    if [ "${CI:-}" = true ]; then
        log "installing $(basename "$wheel") into .venv"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$wheel" </dev/null
    else
        log "installing python/ (editable) and the core of $(basename "$wheel") into .venv"
        "$VENV/bin/python" - "$wheel" python/securesmtp <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        base = os.path.basename(name)
        if name.startswith("securesmtp/") and base.startswith("_core") and base.endswith(".so"):
            with open(os.path.join(dest, base), "wb") as fp:
                fp.write(zf.read(name))
PY
        printf '%s\n' "$ROOT/python" >"$site/securesmtp.pth"
    fi
    (cd / && "$VENV/bin/python" -c 'import securesmtp._core') \
        || die "securesmtp._core does not import in .venv"
    printf '%s' "$want" >"$stamp"
}

# A Python of version $1 (e.g. 3.9): on PATH, else pyenv's.
find_python() {
    local v="$1" p
    for p in "python$v" "$HOME"/.pyenv/versions/"$v".*/bin/python"$v" /usr/local/bin/python"$v"; do
        if command -v "$p" >/dev/null 2>&1 \
            && "$p" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" 2>/dev/null; then
            command -v "$p"
            return 0
        fi
    done
    return 1
}

setup_matrix_venv() {
    local name="$1" pyver="$2" hgver="$3"
    local venv="$WORK/venvs/$name" py
    local want
    want="$(printf '%s\n' "$pyver" "mercurial==$hgver" "${MATRIX_REQUIREMENTS[@]}")"
    if [ ! -f "$venv/.requirements" ] || [ "$(cat "$venv/.requirements")" != "$want" ] \
        || [ ! -x "$venv/bin/hg" ]; then
        py="$(find_python "$pyver")" || die "Python $pyver not found (needed for the $name venv)"
        rm -rf "$venv"
        log "creating $venv (Python $pyver, Mercurial $hgver)"
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "mercurial==$hgver" "${MATRIX_REQUIREMENTS[@]}" </dev/null
        printf '%s' "$want" >"$venv/.requirements"
    fi
    # Always the wheel just built, never a development build.
    local wheel stamp="$venv/.securesmtp-wheel" hash
    wheel="$(wheel_path)"
    hash="$(cat "$DIST/.source-hash")"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$hash" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            --force-reinstall "$wheel" </dev/null
        printf '%s' "$hash" >"$stamp"
    fi
}

# Debian's own Mercurial (the `mercurial` package, /usr/bin/hg on the system
# Python): a venv that sees it through --system-site-packages holds only the
# test tools; the extension is not installed in it but named by the path of
# the folder (as a Debian user, who cannot pip into the system Python, does).
setup_debian_venv() {
    local venv="$WORK/venvs/debian-hg" want
    if [ ! -x /usr/bin/hg ] || ! /usr/bin/python3 -c 'import mercurial' >/dev/null 2>&1; then
        log "no Debian Mercurial in /usr/bin (apt-get install mercurial); its tests will fail"
        return 0
    fi
    want="$(printf '%s\n' "$(/usr/bin/hg version -q)" "${MATRIX_REQUIREMENTS[@]}")"
    if [ ! -f "$venv/.requirements" ] || [ "$(cat "$venv/.requirements")" != "$want" ]; then
        rm -rf "$venv"
        log "creating $venv (Debian's $(/usr/bin/hg version -q | head -n 1))"
        /usr/bin/python3 -m venv --system-site-packages "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check \
            "${MATRIX_REQUIREMENTS[@]}" </dev/null
        printf '%s' "$want" >"$venv/.requirements"
    fi
    # What scripts/test.sh runs there: Debian's hg, the extension by path.
    printf '%s\n' /usr/bin/hg >"$venv/.hg"
    folder_path >"$venv/.extension"
}

# A Python older than the core's floor: Mercurial alone, and the folder.
setup_old_python_venv() {
    local name="$1" pyver="$2" hgver="$3"
    local venv="$WORK/venvs/$name" py want
    want="$(printf '%s\n' "$pyver" "mercurial==$hgver")"
    if [ ! -f "$venv/.requirements" ] || [ "$(cat "$venv/.requirements")" != "$want" ]; then
        py="$(find_python "$pyver")" || die "Python $pyver not found (needed for the $name venv)"
        rm -rf "$venv"
        log "creating $venv (Python $pyver, Mercurial $hgver)"
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "mercurial==$hgver" </dev/null
        printf '%s' "$want" >"$venv/.requirements"
    fi
    folder_path >"$venv/.extension"
}

# Mercurial's source distribution: tests/run-tests.py and the .t tests.
setup_hg_tests() {
    local dest="$WORK/hg-tests/mercurial-$HG_TESTS_VERSION"
    [ -f "$dest/tests/run-tests.py" ] && return 0
    mkdir -p "$WORK/hg-tests"
    local tarball="$WORK/hg-tests/mercurial-$HG_TESTS_VERSION.tar.gz"
    if [ ! -f "$tarball" ]; then
        # From PyPI's simple index, as pip would (`pip download` of an sdist
        # also builds its metadata: minutes), checked against the pinned hash.
        log "downloading the Mercurial $HG_TESTS_VERSION sdist (its test suite)"
        "$VENV/bin/python" - "$tarball" "$HG_TESTS_SHA256" <<'PY'
import hashlib, json, os, sys, urllib.request
dest, sha256 = sys.argv[1:]
name = os.path.basename(dest)
req = urllib.request.Request(
    "https://pypi.org/simple/mercurial/",
    headers={"Accept": "application/vnd.pypi.simple.v1+json"},
)
with urllib.request.urlopen(req, timeout=60) as r:
    files = json.load(r)["files"]
url = next(f["url"] for f in files if f["filename"] == name)
with urllib.request.urlopen(url, timeout=300) as r:
    data = r.read()
got = hashlib.sha256(data).hexdigest()
if got != sha256:
    sys.exit("setup: %s: sha256 %s, expected %s" % (name, got, sha256))
with open(dest + ".part", "wb") as fp:
    fp.write(data)
os.rename(dest + ".part", dest)
PY
    fi
    tar -xzf "$tarball" -C "$WORK/hg-tests"
    [ -f "$dest/tests/run-tests.py" ] || die "no tests/run-tests.py in $tarball"
}

main() {
    install_debian_packages
    setup_venv
    setup_exim
    build_wheel
    [ -d "$(dirname "$(folder_path)")" ] || "$VENV/bin/python" scripts/dist.py "$DIST" >/dev/null
    install_dev
    build_test_hooks
    if [ "$MATRIX_MODE" = 1 ]; then
        local entry
        for entry in "${MATRIX[@]}" "$TOO_OLD"; do
            # shellcheck disable=SC2086
            setup_matrix_venv $entry
        done
        # shellcheck disable=SC2086
        setup_old_python_venv $OLD_PYTHON
        setup_debian_venv
        setup_hg_tests
    fi
}

# One setup at a time (make test and make demo may race); flock comes with
# util-linux, which every Debian has.
mkdir -p "$VENV"
if command -v flock >/dev/null 2>&1 && [ -z "${SECURESMTP_SETUP_LOCKED:-}" ]; then
    exec 9>"$VENV/.setup.lock"
    flock 9
    export SECURESMTP_SETUP_LOCKED=1
fi
main
