#!/usr/bin/env bash
#
# zkFuzz.sh — the libFuzzer targets of zookeeper-rs (see docs/reliability.md, "Fuzzing").
#
#   bin/zkFuzz.sh list                      the targets
#   bin/zkFuzz.sh build                     build every target (nightly + cargo-fuzz)
#   bin/zkFuzz.sh run <target> [seconds]    fuzz one target (default 300 s, one job);
#                                           new inputs go to tests/fuzz/scratch/<target>
#                                           (not committed), the seed corpus is only read
#   bin/zkFuzz.sh replay                    replay all corpora and regressions on stable
#                                           (tests/fuzz_corpora.rs; what CI runs)
#
# Environment: FUZZ_ARGS  extra libFuzzer flags for `run` (e.g. "-rss_limit_mb=1024").
# A crash, timeout or OOM input lands in tests/fuzz/artifacts/<target>/; minimize it
# (cargo +nightly fuzz tmin <target> --fuzz-dir tests/fuzz <file>), fix the bug and
# copy the minimized input to tests/fuzz/regressions/<target>/.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_DIR=tests/fuzz
usage() { sed -n '3,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
targets() { sed -n 's/^name = "\(.*\)"$/\1/p' "$FUZZ_DIR/Cargo.toml" | grep -v '^zookeeper-fuzz$'; }

case "${1:-}" in
list) targets ;;
build) cargo +nightly fuzz build --fuzz-dir "$FUZZ_DIR" ;;
run)
    target="${2:-}"; secs="${3:-300}"
    targets | grep -qx -- "$target" || { echo "zkFuzz.sh: unknown target '$target' (try: list)" >&2; exit 2; }
    mkdir -p "$FUZZ_DIR/scratch/$target" "$FUZZ_DIR/corpus/$target"
    # shellcheck disable=SC2086
    cargo +nightly fuzz run "$target" --fuzz-dir "$FUZZ_DIR" -j 1 \
        "$FUZZ_DIR/scratch/$target" "$FUZZ_DIR/corpus/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 ${FUZZ_ARGS:-}
    ;;
replay) cargo test --test fuzz_corpora ;;
*) usage ;;
esac
