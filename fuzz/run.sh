#!/bin/sh
# Build and run every fuzz target for a bounded time; exit non-zero on a
# crash (libFuzzer writes the input under fuzz/artifacts/<target>/).
#
#   fuzz/run.sh [SECONDS_PER_TARGET]     default 30
#
# cargo-fuzz needs nightly-only rustc flags; with only a stable toolchain,
# RUSTC_BOOTSTRAP=1 lets stable accept them. cargo-fuzz itself is installed
# (about 4 minutes) only when it is missing.
set -eu

budget="${1:-30}"
case "$budget" in
    ''|*[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
targets="reply data reply_queue"

if ! cargo fuzz build >build.log 2>&1; then
    tail -n 40 build.log >&2
    echo "fuzz: build failed" >&2
    exit 1
fi

status=0
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "fuzz: $target for ${budget}s" >&2
    # Seeds are read-only inputs; new finds go to corpus/ (not in git).
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
            -max_total_time="$budget" -print_final_stats=1 \
            >"$target.log" 2>&1; then
        status=1
        echo "fuzz: $target FAILED; last lines of fuzz/$target.log:" >&2
        tail -n 40 "$target.log" >&2
        ls -l "artifacts/$target" >&2 2>/dev/null || true
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$target.log" \
        | sed "s/^/fuzz: $target: /" >&2 || true
done
exit $status
