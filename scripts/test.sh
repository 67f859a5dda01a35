#!/usr/bin/env bash
# Everything CI runs (`make test`), in order:
#   1. scripts/setup.sh --matrix: .venv, the wheel (built once), the matrix
#      venvs with that wheel installed, Mercurial's test suite;
#   2. cargo test, and bounded fuzzing;
#   3. checks: ruff and mypy on the shim, the stub against the built core
#      (mypy.stubtest), the wheel's platform tag (auditwheel);
#   4. the full end-to-end suite in .venv;
#   5. a representative subset in each matrix venv (other Python and
#      Mercurial versions, the wheel as users install it);
#   6. Mercurial's own patchbomb tests with the extension enabled;
#   7. the Windows wheel, cross-built, and the core's Rust tests under Wine.
# Steps 4-6 run with a PATH that has no cargo: nothing may need a toolchain.
# Extra arguments go to the step-4 pytest (e.g. scripts/test.sh -k verify).
# Exits non-zero if any step fails; every step runs either way, and the time
# of each is printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The end-to-end tests that stand for the whole suite on the other versions:
# sending a series, certificate verification, what loads, and flattening
# (it overrides private hooks of the standard library's email generator).
MATRIX_SUBSET=(tests/test_send.py tests/test_verify.py tests/test_import.py tests/test_flatten.py)

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

status=0
timings=()
step() {
    # step NAME COMMAND...: run, time, record a failure without stopping.
    local name="$1" start rc=0
    shift
    echo "== $name" >&2
    start=$(date +%s)
    "$@" </dev/null || rc=$?
    timings+=("$(printf '%-38s %4ss  %s' "$name" "$(($(date +%s) - start))" \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)")")")
    if [ "$rc" != 0 ]; then
        echo "$name FAILED" >&2
        status=1
    fi
}

# PATH for the tests: the venv's bin, then one folder of links to every
# program of the system directories except the Rust toolchain. A cargo in
# /usr/bin (Debian's, which `make windows` installs) cannot be reached from
# it, whatever is installed.
TEST_BIN="$ROOT/.work/test-path"
make_test_path() {
    local dir tool name
    rm -rf "$TEST_BIN"
    mkdir -p "$TEST_BIN"
    for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        [ -d "$dir" ] || continue
        for tool in "$dir"/*; do
            name="${tool##*/}"
            case "$name" in cargo | cargo-* | rustc | rustdoc | rustup | rust-* | rustfmt | clippy-driver) continue ;; esac
            [ -x "$tool" ] && [ ! -d "$tool" ] && [ ! -e "$TEST_BIN/$name" ] && ln -s "$tool" "$TEST_BIN/$name"
        done
    done
    return 0
}

nocargo() {
    local venv="$1"
    shift
    env PATH="$venv/bin:$TEST_BIN" "$@"
}

check_no_cargo() {
    if nocargo "$ROOT/.venv" sh -c 'command -v cargo || command -v rustc'; then
        echo "a Rust toolchain is on the test PATH" >&2
        return 1
    fi
}

checks() {
    local rc=0 v=.venv/bin
    "$v/ruff" check python/securesmtp || rc=1
    "$v/mypy" python/securesmtp || rc=1
    # The stub against the compiled module; run from / so the installed
    # package (not a checkout path) is what gets inspected.
    (cd / && MYPYPATH= "$ROOT/$v/python" -m mypy.stubtest securesmtp._core \
        --mypy-config-file "$ROOT/pyproject.toml" \
        --allowlist "$ROOT/tests/stubtest-allowlist.txt") || rc=1
    "$v/auditwheel" show .work/dist/securesmtp-*linux*.whl || rc=1
    return "$rc"
}

# Debian's Mercurial runs from /usr/bin with the extension named by the path
# of the unpacked folder: the sending and verification tests only (the
# others import the extension's modules into pytest's own Python).
DEBIAN_SUBSET=(tests/test_send.py tests/test_verify.py)

matrix() {
    local rc=0 venv name hgcmd extension subset
    for venv in .work/venvs/*/; do
        venv="${venv%/}"
        name="$(basename "$venv")"
        case "$name" in too-old-* | old-python-*) continue ;; esac
        hgcmd="$ROOT/$venv/bin/hg"
        extension=""
        subset=("${MATRIX_SUBSET[@]}")
        if [ -f "$venv/.hg" ]; then
            hgcmd="$(cat "$venv/.hg")"
            extension="$(cat "$venv/.extension")"
            subset=("${DEBIAN_SUBSET[@]}")
        fi
        echo "-- $name: $("$hgcmd" version -q) on $("$venv/bin/python" -VV)${extension:+, extension from $extension}" >&2
        HG="$hgcmd" SECURESMTP_EXTENSION="$extension" nocargo "$ROOT/$venv" "$venv/bin/python" -m pytest \
            -p no:cacheprovider -q -rs "${subset[@]}" || { echo "$name FAILED" >&2; rc=1; }
    done
    return "$rc"
}

# Mercurial older than minimumhgversion: hg works, says the extension is
# disabled and why, and shows no traceback.
too_old() {
    local venv rc=0 out
    venv="$(ls -d .work/venvs/too-old-*/ | head -n 1)"
    venv="${venv%/}"
    printf '[extensions]\nsecuresmtp =\npatchbomb =\n' >.work/too-old.rc
    out="$(HGRCPATH=.work/too-old.rc "$venv/bin/hg" version -q 2>&1)" || rc=$?
    printf '%s\n' "$out" >&2
    [ "$rc" = 0 ] || { echo "hg version failed ($rc)" >&2; return 1; }
    case "$out" in
        *"third party extension securesmtp requires version 6.1 or newer of Mercurial"*) ;;
        *) echo "no 'requires version 6.1' message" >&2; return 1 ;;
    esac
    case "$out" in *Traceback*|*"failed to import"*) return 1 ;; esac
    # hg email is still there, as stock.
    HGRCPATH=.work/too-old.rc "$venv/bin/hg" help email >/dev/null 2>&1
}

step "setup" bash scripts/setup.sh --matrix
if [ "$status" != 0 ]; then
    printf '%s\n' "${timings[@]}" >&2
    exit 1
fi
step "cargo test" cargo test
# Bounded fuzzing of the reply parser and the DATA encoder (FUZZ_SECONDS per
# target); a crash fails the run and leaves its input in fuzz/artifacts/.
step "fuzz" sh fuzz/run.sh "${FUZZ_SECONDS:-20}"
make_test_path
step "no cargo on the test PATH" check_no_cargo
step "checks (ruff, mypy, stubtest, auditwheel)" checks
# Windows x86_64: the wheel cross-built into .work/dist/ and the core's Rust
# tests under Wine (scripts/windows.sh, docs/compat.md). Before
# the end-to-end tests: tests/test_folder_install.py uses its folder.
step "Windows wheel and Rust tests under Wine" bash scripts/windows.sh
step "pytest (full suite, .venv)" nocargo "$ROOT/.venv" .venv/bin/python -m pytest \
    -p no:cacheprovider -q -rs tests/ "$@"
step "pytest (version matrix, subset)" matrix
step "Mercurial older than the minimum" too_old
step "Mercurial's patchbomb tests" nocargo "$ROOT/.venv" bash tests/mercurial/run.sh

echo "== summary" >&2
printf '%s\n' "${timings[@]}" >&2
exit "$status"
