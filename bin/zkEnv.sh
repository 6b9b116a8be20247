#!/usr/bin/env bash
#
# zkEnv.sh — environment of the zookeeper-rs control scripts.
#
# Sourced (not run) by bin/zkServer.sh, like Apache ZooKeeper's zkEnv.sh.
# It reads the caller's positional parameters: a leading "--config <dir>"
# is consumed here and sets ZOOCFGDIR.
#
# Variables (all may be set by the caller or in $ZOOCFGDIR/zookeeper-env.sh):
#   ZOOBINDIR         directory of these scripts (default: where this file is)
#   ZOOKEEPER_PREFIX  the zookeeper-rs checkout, parent of ZOOBINDIR
#   ZOOCFGDIR         configuration directory (default: $ZOOKEEPER_PREFIX/conf)
#   ZOOCFG            config file name in ZOOCFGDIR, or a path (default: zoo.cfg)
#   ZOO_LOG_DIR       where the server's .out file goes (default: $ZOOKEEPER_PREFIX/logs)
#   ZK_SERVER_BIN     the zk-server binary (default: target/release/zk-server of
#                     the checkout, or of $CARGO_TARGET_DIR; built on first use)
#   SERVER_JVMFLAGS, JVMFLAGS
#                     as for Apache; their "-Dkey=value" words are passed to
#                     zk-server (its equivalent of Java system properties),
#                     other words (-Xmx...) have no meaning here and are ignored.
#
# Every path is made absolute here, relative to the caller's working
# directory, because zkServer.sh then runs from the checkout root.

# Absolute form of a path, relative to the current directory.
zk_abspath() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

ZOOBINDIR="${ZOOBINDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
ZOOKEEPER_PREFIX="${ZOOKEEPER_PREFIX:-$(cd "$ZOOBINDIR/.." && pwd)}"

# Optional "--config <conf-dir>" before the subcommand (as upstream).
if [ $# -gt 1 ] && [ "--config" = "$1" ]; then
    shift
    ZOOCFGDIR=$1
    shift
fi

ZOOCFGDIR="$(zk_abspath "${ZOOCFGDIR:-$ZOOKEEPER_PREFIX/conf}")"

if [ -f "$ZOOCFGDIR/zookeeper-env.sh" ]; then
    # shellcheck disable=SC1091
    . "$ZOOCFGDIR/zookeeper-env.sh"
fi
# Apache also reads java.env; accepted for compatibility of conf directories.
if [ -f "$ZOOCFGDIR/java.env" ]; then
    # shellcheck disable=SC1091
    . "$ZOOCFGDIR/java.env"
fi

ZOOCFG="${ZOOCFG:-zoo.cfg}"
case $ZOOCFG in
    */*) ZOOCFG="$(zk_abspath "$ZOOCFG")" ;;
    *) ZOOCFG="$ZOOCFGDIR/$ZOOCFG" ;;
esac

ZOO_LOG_DIR="$(zk_abspath "${ZOO_LOG_DIR:-$ZOOKEEPER_PREFIX/logs}")"

if [ -n "${ZOOPIDFILE:-}" ]; then
    ZOOPIDFILE="$(zk_abspath "$ZOOPIDFILE")"
fi

if [ -n "${ZK_SERVER_BIN:-}" ]; then
    case $ZK_SERVER_BIN in
        */*) ZK_SERVER_BIN="$(zk_abspath "$ZK_SERVER_BIN")" ;;
        *) ZK_SERVER_BIN="$(command -v "$ZK_SERVER_BIN" || echo "$ZK_SERVER_BIN")" ;;
    esac
fi

# Where cargo puts the release binary of this checkout.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    case $CARGO_TARGET_DIR in
        /*) ZK_TARGET_DIR=$CARGO_TARGET_DIR ;;
        *) ZK_TARGET_DIR="$ZOOKEEPER_PREFIX/$CARGO_TARGET_DIR" ;;  # cargo: relative to the workspace
    esac
else
    ZK_TARGET_DIR="$ZOOKEEPER_PREFIX/target"
fi

# The "-D..." words of SERVER_JVMFLAGS and JVMFLAGS, in that order (as
# upstream, which runs java with "$SERVER_JVMFLAGS $JVMFLAGS").
ZK_SERVER_DEFINES=()
read -r -a zk_words <<<"${SERVER_JVMFLAGS:-} ${JVMFLAGS:-}"
for zk_word in "${zk_words[@]}"; do
    case $zk_word in
        -D?*) ZK_SERVER_DEFINES+=("$zk_word") ;;
    esac
done
unset zk_word zk_words
