#!/usr/bin/env bash
#
# zkSnapShotToolkit.sh — Apache's zkSnapShotToolkit.sh (SnapshotFormatter — print the znodes and sessions of a snapshot file),
# with the zk-snapshot-toolkit binary of this checkout; same options, same output.
#
# Usage: zkSnapShotToolkit.sh [-d|-json] <snapshot_file>
#
# ZK_SNAPSHOT_TOOLKIT_BIN: the zk-snapshot-toolkit binary (default: the checkout's release build, built with
# cargo on first use). "-D" words of JVMFLAGS are passed on.

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

die() {
    echo "zkSnapShotToolkit.sh: $*" >&2
    exit 1
}

bin="${ZK_SNAPSHOT_TOOLKIT_BIN:-$ZK_TARGET_DIR/release/zk-snapshot-toolkit}"
if [ ! -x "$bin" ]; then
    [ -z "${ZK_SNAPSHOT_TOOLKIT_BIN:-}" ] || die "ZK_SNAPSHOT_TOOLKIT_BIN=$bin is not an executable file"
    command -v cargo >/dev/null 2>&1 || die "$bin is missing and cargo is not on PATH"
    echo "zkSnapShotToolkit.sh: $bin not found; building it with: cargo build --release --bin zk-snapshot-toolkit" >&2
    (cd "$ZOOKEEPER_PREFIX" && cargo build --release --bin zk-snapshot-toolkit) >&2 || die "cargo build failed"
fi

exec "$bin" "${ZK_SERVER_DEFINES[@]}" "$@"
