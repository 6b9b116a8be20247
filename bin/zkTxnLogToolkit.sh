#!/usr/bin/env bash
#
# zkTxnLogToolkit.sh — Apache's zkTxnLogToolkit.sh (TxnLogToolkit — dump a txn log file, fix its CRCs (-r) or chop it (-c -z zxid)),
# with the zk-txn-log-toolkit binary of this checkout; same options, same output.
#
# Usage: zkTxnLogToolkit.sh [-dhrvyc] <txn_log_file> [-z zxid]
#
# ZK_TXN_LOG_TOOLKIT_BIN: the zk-txn-log-toolkit binary (default: the checkout's release build, built with
# cargo on first use). "-D" words of JVMFLAGS are passed on.

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

die() {
    echo "zkTxnLogToolkit.sh: $*" >&2
    exit 1
}

bin="${ZK_TXN_LOG_TOOLKIT_BIN:-$ZK_TARGET_DIR/release/zk-txn-log-toolkit}"
if [ ! -x "$bin" ]; then
    [ -z "${ZK_TXN_LOG_TOOLKIT_BIN:-}" ] || die "ZK_TXN_LOG_TOOLKIT_BIN=$bin is not an executable file"
    command -v cargo >/dev/null 2>&1 || die "$bin is missing and cargo is not on PATH"
    echo "zkTxnLogToolkit.sh: $bin not found; building it with: cargo build --release --bin zk-txn-log-toolkit" >&2
    (cd "$ZOOKEEPER_PREFIX" && cargo build --release --bin zk-txn-log-toolkit) >&2 || die "cargo build failed"
fi

exec "$bin" "${ZK_SERVER_DEFINES[@]}" "$@"
