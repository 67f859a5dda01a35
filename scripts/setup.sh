#!/usr/bin/env bash
# Set up everything the tests and the demo need, idempotently:
#   - Debian packages that are missing (apt-get update only if needed);
#   - .venv with maturin, pytest, mercurial, aiosmtpd, trustme, cryptography;
#   - the extension built into .venv with `maturin develop --release`,
#     skipped when nothing under src/, python/, Cargo.* or pyproject.toml
#     changed since the last build (a stamp in .venv).
# Works on a fresh Debian 12 as root with Rust stable, python3, pip and gcc.
# Environment: PYTHON (default python3), SECURESMTP_FORCE_BUILD=1 to rebuild.
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
    # tests/test_dovecot.py: a real SCRAM-SHA-256 / CRAM-MD5 server (a
    # private instance; the system service is kept from starting).
    dovecot-core
    dovecot-submissiond
    libidn12
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
    # tests/test_keyring.py: the real mercurial_keyring and a file-backed
    # keyring backend.
    "mercurial_keyring==1.4.4"
    "keyrings.alt>=5,<6"
)

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
        && "$VENV/bin/python" -c 'import maturin, pytest, mercurial, aiosmtpd, trustme, cryptography, keyring, keyrings.alt' >/dev/null 2>&1; then
        return 0
    fi
    log "installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" </dev/null
    printf '%s' "$want" >"$stamp"
}

# ---------------------------------------------------------------------------
# The extension

source_hash() {
    # Everything the build depends on; build products in python/ excluded.
    {
        find src python -type f \
            ! -name '*.so' ! -name '*.pyd' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null
        for f in Cargo.toml Cargo.lock pyproject.toml; do
            [ -f "$f" ] && printf '%s\0' "$f"
        done
    } | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

build_extension() {
    local stamp="$VENV/.securesmtp-build"
    local hash
    hash="$(source_hash)"
    if [ "${SECURESMTP_FORCE_BUILD:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] \
        && "$VENV/bin/python" -c 'import securesmtp._core' >/dev/null 2>&1; then
        return 0
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust stable)"
    log "building the extension (maturin develop --release)"
    rm -f "$stamp"
    VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
        "$VENV/bin/maturin" develop --release </dev/null
    "$VENV/bin/python" -c 'import securesmtp._core' \
        || die "the extension was built but securesmtp._core does not import"
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

main() {
    install_debian_packages
    setup_venv
    setup_exim
    build_extension
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
