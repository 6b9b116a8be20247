#!/usr/bin/env bash
#
# zkCli.sh — Apache's zkCli.sh (ZooKeeperMain, the ZooKeeper shell) with the zk-cli
# binary of this checkout; same options, commands, output and exit codes.
#
# Usage: zkCli.sh [-server host:port[,...][/chroot]] [-timeout ms] [-r] [-waitforconnection] [cmd args...]
#
#   With a command it runs that command once and exits with its exit code
#   (0 ok, 1 error, 127 unknown command); without one it starts the interactive
#   shell (line editing, history and tab completion when stdin is a terminal).
#
# ZK_CLI_BIN: the zk-cli binary (default: the checkout's release build, built with
# cargo on first use). -D words of CLIENT_JVMFLAGS/JVMFLAGS are passed on as
# system properties (e.g. -Dzookeeper.request.timeout=5000). RUST_LOG=info (etc.) turns on the client's log on stderr.
# -client-configuration <file> is accepted and ignored (no TLS/SASL client).

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

die() {
    echo "zkCli.sh: $*" >&2
    exit 1
}

bin="${ZK_CLI_BIN:-$ZK_TARGET_DIR/release/zk-cli}"
if [ ! -x "$bin" ]; then
    [ -z "${ZK_CLI_BIN:-}" ] || die "ZK_CLI_BIN=$bin is not an executable file"
    command -v cargo >/dev/null 2>&1 || die "$bin is missing and cargo is not on PATH"
    echo "zkCli.sh: $bin not found; building it with: cargo build --release --bin zk-cli" >&2
    (cd "$ZOOKEEPER_PREFIX" && cargo build --release --bin zk-cli) >&2 || die "cargo build failed"
fi

# The "-D..." words of CLIENT_JVMFLAGS and JVMFLAGS (as upstream runs java with
# "$CLIENT_JVMFLAGS $JVMFLAGS") become the client's system properties.
zk_defines=()
read -r -a zk_words <<<"${CLIENT_JVMFLAGS:-} ${JVMFLAGS:-}"
for zk_word in "${zk_words[@]}"; do
    case $zk_word in
        -D?*) zk_defines+=("$zk_word") ;;
    esac
done

exec "$bin" "${zk_defines[@]}" "$@"
