#!/usr/bin/env bash
#
# zkOracle.sh — run zk-oracle, the cross-checking proxy for migrations: clients
# connect to it, every request goes to the primary (the server under test; its
# replies go back to the clients) and to an oracle (an isolated Apache ZooKeeper
# 3.8 restored from the same data; its replies are only compared), and every
# difference is reported. See docs/oracle.md.
#
# Usage: zkOracle.sh --primary HOST:PORT --oracle HOST:PORT [--listen HOST:PORT]
#                    [--report FILE] [--ignore-stat-fields f1,f2] [--fail-on-diff]
#                    [--grace-ms MS] [--stats-interval S] ...
#        zkOracle.sh --help     (every option)
#
# It runs in the foreground; SIGTERM or Ctrl-C stops it, writes the final
# counters and exits (1 with --fail-on-diff when a difference was reported).
#
# ZK_ORACLE_BIN: the zk-oracle binary (default: the checkout's release build,
# built with cargo on first use). RUST_LOG sets the proxy's log level (default
# info, on stderr).

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

die() {
    echo "zkOracle.sh: $*" >&2
    exit 1
}

bin="${ZK_ORACLE_BIN:-$ZK_TARGET_DIR/release/zk-oracle}"
if [ ! -x "$bin" ]; then
    [ -z "${ZK_ORACLE_BIN:-}" ] || die "ZK_ORACLE_BIN=$bin is not an executable file"
    command -v cargo >/dev/null 2>&1 || die "$bin is missing and cargo is not on PATH"
    echo "zkOracle.sh: $bin not found; building it with: cargo build --release --bin zk-oracle" >&2
    (cd "$ZOOKEEPER_PREFIX" && cargo build --release --bin zk-oracle) >&2 || die "cargo build failed"
fi

exec "$bin" "$@"
