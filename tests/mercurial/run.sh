#!/usr/bin/env bash
# Mercurial's own patchbomb tests, with securesmtp enabled in every one.
#
#   tests/mercurial/run.sh [VENV [TEST...]]    default: .venv, all three
#
# Runs test-patchbomb.t, test-patchbomb-tls.t and test-patchbomb-bookmark.t
# from the Mercurial sdist that `scripts/setup.sh --matrix` unpacks into
# .work/hg-tests/, with run-tests.py's --with-hg (the hg of VENV) and
# --extra-config-opt extensions.securesmtp=. Where the extension behaves
# differently on purpose, the expected output is changed by the patches in
# this directory (*.patch, applied to a scratch copy of the tests); each
# difference and its reason is listed in docs/compat.md. Any other
# difference fails the run and leaves the .t.err file in the scratch copy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/mercurial"
VENV="$(cd "${1:-$ROOT/.venv}" && pwd)"
TESTS=(test-patchbomb.t test-patchbomb-tls.t test-patchbomb-bookmark.t)
if [ "$#" -gt 1 ]; then
    TESTS=("${@:2}")
fi

src="$(ls -d "$ROOT"/.work/hg-tests/mercurial-*/tests 2>/dev/null | head -n 1)"
[ -n "$src" ] || { echo "no Mercurial test suite: run scripts/setup.sh --matrix" >&2; exit 1; }
hgver="$("$VENV/bin/hg" version -q | sed -n 's/.*(version \(.*\))/\1/p')"
case "$src" in
    */mercurial-"$hgver"/tests) ;;
    *) echo "the test suite ($src) is not from Mercurial $hgver" >&2; exit 1 ;;
esac

scratch="$ROOT/.work/hg-tests/run"
rm -rf "$scratch"
cp -a "$src" "$scratch"
for p in "$HERE"/*.patch; do
    [ -e "$p" ] || continue
    patch -s -p1 -d "$scratch" <"$p"
done

# hghave imports mercurial to decide which parts of a test run; without it
# on the path it silently skips them.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cd "$scratch"
PYTHONPATH="$site" "$VENV/bin/python" run-tests.py \
    --with-hg="$VENV/bin/hg" \
    --extra-config-opt extensions.securesmtp= \
    --jobs "${HGTEST_JOBS:-3}" --timeout 600 \
    "${TESTS[@]}"
