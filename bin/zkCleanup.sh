#!/usr/bin/env bash
#
# zkCleanup.sh — purge old snapshots and txn logs (Apache's zkCleanup.sh /
# PurgeTxnLog), with the zk-purge binary of this checkout.
#
# Usage: zkCleanup.sh [--config <conf-dir>] [-n count] [dataLogDir [snapDir]]
#
# Keeps the <count> (default 3, at least 3) most recent snapshots and the txn
# logs needed to replay from the oldest of them; deletes the rest. Without
# directory arguments, dataDir and dataLogDir come from $ZOOCFGDIR/zoo.cfg (as
# upstream; relative paths there are relative to the checkout, as for
# zkServer.sh). Each removed file is printed as "Removing file: <date>\t<path>".
#
# ZK_PURGE_BIN: the zk-purge binary (default: the checkout's release build,
# built with cargo on first use). "-D" words of JVMFLAGS are passed on.

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

die() {
    echo "zkCleanup.sh: $*" >&2
    exit 1
}

count=3
dirs=()
while [ $# -gt 0 ]; do
    case $1 in
        -n) [ $# -ge 2 ] || die "-n needs a count"; count=$2; shift 2 ;;
        -n*) count=${1#-n}; shift ;;
        *) dirs+=("$(zk_abspath "$1")"); shift ;;
    esac
done

if [ ${#dirs[@]} -eq 0 ]; then
    [ -r "$ZOOCFG" ] || die "cannot read config file $ZOOCFG"
    cfg_value() {
        sed -n -e "s/^[[:space:]]*$1[[:space:]]*[=:][[:space:]]*//p" "$ZOOCFG" | tail -n 1 | sed -e 's/[[:space:]]*$//'
    }
    data_dir="$(cfg_value dataDir)"
    data_log_dir="$(cfg_value dataLogDir)"
    [ -n "$data_dir" ] || die "no dataDir in $ZOOCFG"
    cd "$ZOOKEEPER_PREFIX" || die "cannot cd to $ZOOKEEPER_PREFIX"
    data_dir="$(zk_abspath "$data_dir")"
    if [ -n "$data_log_dir" ]; then
        dirs=("$(zk_abspath "$data_log_dir")" "$data_dir")
    else
        dirs=("$data_dir")
    fi
elif [ ${#dirs[@]} -gt 2 ]; then
    die "usage: zkCleanup.sh [--config <conf-dir>] [-n count] [dataLogDir [snapDir]]"
fi

bin="${ZK_PURGE_BIN:-$ZK_TARGET_DIR/release/zk-purge}"
if [ ! -x "$bin" ]; then
    [ -z "${ZK_PURGE_BIN:-}" ] || die "ZK_PURGE_BIN=$bin is not an executable file"
    command -v cargo >/dev/null 2>&1 || die "$bin is missing and cargo is not on PATH"
    echo "zkCleanup.sh: $bin not found; building it with: cargo build --release --bin zk-purge" >&2
    (cd "$ZOOKEEPER_PREFIX" && cargo build --release --bin zk-purge) >&2 || die "cargo build failed"
fi

exec "$bin" "${ZK_SERVER_DEFINES[@]}" "${dirs[@]}" -n "$count"
