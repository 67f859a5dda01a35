#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the Rust unit tests and the end-to-end
# tests. Extra arguments go to pytest (e.g. scripts/test.sh -k verify).
# Exits non-zero if any part fails; both parts run either way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup.sh

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

status=0

echo "== cargo test" >&2
cargo test </dev/null || { echo "cargo test FAILED" >&2; status=1; }

# Bounded fuzzing of the reply parser and the DATA encoder (FUZZ_SECONDS per
# target); a crash fails the run and leaves its input in fuzz/artifacts/.
echo "== fuzz" >&2
sh fuzz/run.sh "${FUZZ_SECONDS:-20}" </dev/null || { echo "fuzz FAILED" >&2; status=1; }

echo "== pytest" >&2
.venv/bin/python -m pytest -p no:cacheprovider -q tests/ "$@" </dev/null \
    || { echo "pytest FAILED" >&2; status=1; }

exit "$status"
