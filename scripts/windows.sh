#!/usr/bin/env bash
# `make windows`: the Windows x86_64 wheel, cross-built here, and the core's
# Rust tests run under Wine. In order:
#   1. Debian packages that are missing (rustc-web, cargo-web, rust-web-src,
#      gcc-mingw-w64-x86-64, wine64; apt-get update only if one is missing);
#   2. the win_amd64 abi3 wheel (`maturin build --release --target
#      x86_64-pc-windows-gnu -Z build-std`), with Debian's /usr/bin/cargo and
#      rustc, kept in .work/windows/ and copied into .work/dist/ beside the
#      Linux wheel; rebuilt only when the sources changed;
#   3. checks: the wheel's tag is cp39-abi3-win_amd64 and its _core.pyd
#      imports python3.dll and Windows' own DLLs only;
#   4. a Wine prefix of its own (.work/windows/wineprefix) with the stand-in
#      bcryptprimitives.dll (scripts/windows/bcryptprimitives.c: a test aid,
#      never shipped) in its system32;
#   5. `cargo test --target x86_64-pc-windows-gnu -Zbuild-std`, each test
#      binary run by wine64.
# The Rust standard library for Windows is built from rust-web-src's sources
# (-Zbuild-std, RUSTC_BOOTSTRAP=1): no rustup target is needed. Everything
# builds into target/windows/, so the Linux build is not disturbed.
# Needs the .venv of scripts/setup.sh (maturin); works on a fresh Debian 12
# as root. Exits non-zero if any step fails; prints the time of each.
# Environment: SECURESMTP_FORCE_BUILD=1 rebuilds the wheel; CARGO_BUILD_JOBS
# (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TARGET=x86_64-pc-windows-gnu
TAG=cp39-abi3-win_amd64
VENV="$ROOT/.venv"
DIST="$ROOT/.work/dist"
WORK="$ROOT/.work/windows"
PREFIX="$WORK/wineprefix"
DEBIAN_PACKAGES=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine64)
WINE=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver64

# DLLs that come with Windows itself (10 and later), lower case. The core
# may import these and python3.dll (the stable ABI), nothing else: a
# python3X.dll would tie the wheel to one Python, and any other DLL would be
# missing on the user's machine.
SYSTEM_DLLS=(
    advapi32.dll bcrypt.dll bcryptprimitives.dll crypt32.dll kernel32.dll
    msvcrt.dll ncrypt.dll ntdll.dll ole32.dll oleaut32.dll secur32.dll
    shell32.dll user32.dll userenv.dll ws2_32.dll
)
# API sets (api-ms-win-core-synch-l1-2-0.dll and the like) are resolved by
# Windows' loader to its own DLLs.
SYSTEM_DLL_PATTERN='api-ms-win-core-*.dll'

# Debian's toolchain, never rustup's proxies (which come first on PATH where
# ~/.cargo/bin is on it); maturin runs `cargo` from PATH.
export PATH="/usr/bin:$PATH"
export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$ROOT/target/windows"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export DEBIAN_FRONTEND=noninteractive

log() { printf 'windows: %s\n' "$*" >&2; }
die() { printf 'windows: error: %s\n' "$*" >&2; exit 1; }

timings=()
step() {
    # step NAME COMMAND...: run and time; the first failure ends the run
    # (each step needs the one before it).
    local name="$1" start rc=0
    shift
    echo "== $name" >&2
    start=$(date +%s)
    "$@" </dev/null || rc=$?
    timings+=("$(printf '%-44s %4ss  %s' "$name" "$(($(date +%s) - start))" \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")")")
    if [ "$rc" != 0 ]; then
        echo "$name FAILED" >&2
        summary
        exit 1
    fi
}
summary() {
    echo "== summary (make windows)" >&2
    printf '%s\n' "${timings[@]}" >&2
}

# ---------------------------------------------------------------------------
# 1. Debian packages

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

install_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "not a Debian system; install ${DEBIAN_PACKAGES[*]}"
    local missing=() p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]} (run as root, or install them)"
    log "installing Debian packages: ${missing[*]}"
    # Another apt run (setup.sh in a parallel job) holds the lock for a
    # while: wait for it rather than fail.
    local apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
    # The package lists are read again only when one of these is not in
    # them (scripts/setup.sh has usually just read them).
    if apt-cache policy "${missing[@]}" 2>/dev/null | grep -q 'Candidate: (none)' \
        || [ "$(apt-cache policy "${missing[@]}" 2>/dev/null | grep -c 'Candidate:')" -ne "${#missing[@]}" ]; then
        "${apt[@]}" update
    fi
    "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
    [ -f /usr/lib/rustlib/src/rust/library/Cargo.lock ] \
        || die "rust-web-src did not install the standard library's sources"
}

# ---------------------------------------------------------------------------
# 2. The wheel

# The same inputs for both wheels (scripts/source_hash.sh).
# shellcheck source=scripts/source_hash.sh
. "$ROOT/scripts/source_hash.sh"

wheel_in() {
    ls "$1"/securesmtp-*-"$TAG".whl 2>/dev/null | head -n 1
}

build_wheel() {
    [ -x "$VENV/bin/maturin" ] || die "no $VENV/bin/maturin: run scripts/setup.sh first"
    local out="$WORK/wheel" stamp hash wheel
    stamp="$out/.source-hash"
    hash="$(source_hash) $(/usr/bin/rustc -V)"
    if [ "${SECURESMTP_FORCE_BUILD:-0}" = 1 ] || [ ! -f "$stamp" ] \
        || [ "$(cat "$stamp")" != "$hash" ] || [ -z "$(wheel_in "$out")" ]; then
        rm -rf "$out"
        mkdir -p "$out"
        log "building the wheel ($(/usr/bin/cargo -V); maturin build --release --target $TARGET -Z build-std)"
        "$VENV/bin/maturin" build --release --target "$TARGET" -Z build-std --out "$out"
        [ -n "$(wheel_in "$out")" ] || die "maturin built no $TAG wheel: $(ls "$out")"
        printf '%s' "$hash" >"$stamp"
    else
        log "the wheel is up to date: $(basename "$(wheel_in "$out")")"
    fi
    # .work/dist/ is scripts/setup.sh's: it empties it when it rebuilds the
    # Linux wheel, so the copy is made again whenever it is missing.
    wheel="$(wheel_in "$out")"
    mkdir -p "$DIST"
    cmp -s "$wheel" "$DIST/$(basename "$wheel")" || cp "$wheel" "$DIST/"
    ls -l "$DIST/$(basename "$wheel")" >&2
    # The folder and zip for a Windows install without pip (TortoiseHg).
    "$VENV/bin/python" scripts/dist.py "$DIST" >&2
}

# ---------------------------------------------------------------------------
# 3. Checks

check_wheel() {
    local wheel tmp rc=0 tag pyd dlls dll allowed s
    wheel="$(wheel_in "$DIST")"
    [ -n "$wheel" ] || die "no *-$TAG.whl in $DIST"
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    "$VENV/bin/python" - "$wheel" "$tmp" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf:
    zf.extractall(dest)
PY
    tag="$(sed -n 's/^Tag: //p' "$tmp"/securesmtp-*.dist-info/WHEEL)"
    if [ "$tag" = "$TAG" ]; then
        log "wheel tag: $tag"
    else
        log "wheel tag is '$tag', expected $TAG"
        rc=1
    fi
    pyd="$(ls "$tmp"/securesmtp/_core*.pyd 2>/dev/null | head -n 1)"
    [ -n "$pyd" ] || { log "no securesmtp/_core*.pyd in $(basename "$wheel")"; return 1; }
    dlls="$(x86_64-w64-mingw32-objdump -p "$pyd" | sed -n 's/^[[:space:]]*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)"
    [ -n "$dlls" ] || { log "objdump found no imports in $(basename "$pyd")"; return 1; }
    grep -qx 'python3.dll' <<<"$dlls" || { log "$(basename "$pyd") does not import python3.dll"; rc=1; }
    for dll in $dlls; do
        allowed=0
        [ "$dll" = python3.dll ] && allowed=1
        for s in "${SYSTEM_DLLS[@]}"; do
            [ "$dll" = "$s" ] && allowed=1
        done
        # shellcheck disable=SC2053
        [[ "$dll" == $SYSTEM_DLL_PATTERN ]] && allowed=1
        if [ "$allowed" = 1 ]; then
            log "imports $dll"
        else
            log "imports $dll: not python3.dll and not a Windows system DLL"
            rc=1
        fi
    done
    return "$rc"
}

# ---------------------------------------------------------------------------
# 4. Wine

wine_prefix() {
    export WINEPREFIX="$PREFIX" WINEDEBUG=-all WINEARCH=win64
    local system32="$PREFIX/drive_c/windows/system32" dll="$WORK/bcryptprimitives.dll"
    if [ ! -d "$system32" ]; then
        log "creating the Wine prefix $PREFIX ($($WINE --version))"
        mkdir -p "$PREFIX"
        # No Mono or Gecko installer dialogs: the tests need neither.
        WINEDLLOVERRIDES="mscoree,mshtml=" "$WINE" wineboot --init >"$WORK/wineboot.log" 2>&1 \
            || { cat "$WORK/wineboot.log" >&2; return 1; }
        "$WINESERVER" -w
    fi
    [ -d "$system32" ] || { log "the prefix has no system32"; return 1; }
    if [ ! -f "$dll" ] || [ scripts/windows/bcryptprimitives.c -nt "$dll" ]; then
        x86_64-w64-mingw32-gcc -O2 -Wall -Werror -shared -o "$dll" \
            scripts/windows/bcryptprimitives.c -ladvapi32 -Wl,--kill-at
    fi
    # Read whole before matching: `grep -q` would stop reading early and,
    # under pipefail, objdump's broken pipe would read as a failure.
    local exports
    exports="$(x86_64-w64-mingw32-objdump -p "$dll")"
    grep -q 'ProcessPrng' <<<"$exports" || { log "$dll exports no ProcessPrng"; return 1; }
    cmp -s "$dll" "$system32/bcryptprimitives.dll" || cp "$dll" "$system32/bcryptprimitives.dll"
}

# ---------------------------------------------------------------------------
# 5. The Rust tests under Wine

build_tests() {
    /usr/bin/cargo test --target "$TARGET" -Zbuild-std --no-run
}

run_tests() {
    export WINEPREFIX="$PREFIX" WINEDEBUG=-all WINEARCH=win64
    export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE"
    local out="$WORK/test.log" rc=0 passed failed
    # Wine hands the Unix environment to Windows programs. SSL_CERT_FILE and
    # SSL_CERT_DIR (set on many CI machines) would make rustls-native-certs
    # read those paths instead of the Windows ROOT store, which is what a
    # Windows user's machine has and what these tests should read.
    timeout 900 env -u SSL_CERT_FILE -u SSL_CERT_DIR \
        /usr/bin/cargo test --target "$TARGET" -Zbuild-std 2>&1 | tee "$out" >&2 || rc=$?
    passed="$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed;.*/\1/p' "$out" | awk '{n += $1} END {print n + 0}')"
    failed="$(sed -n 's/^test result: .* \([0-9][0-9]*\) failed;.*/\1/p' "$out" | awk '{n += $1} END {print n + 0}')"
    log "under $($WINE --version): $passed passed, $failed failed"
    "$WINESERVER" -w || true
    [ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
}

mkdir -p "$WORK"
step "Debian packages" install_packages
step "wheel ($TAG)" build_wheel
step "wheel checks (tag, DLL imports)" check_wheel
step "Wine prefix and stand-in DLL" wine_prefix
step "build the Rust tests ($TARGET)" build_tests
step "run the Rust tests under Wine" run_tests
summary
