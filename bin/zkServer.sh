#!/usr/bin/env bash
#
# zkServer.sh — run zookeeper-rs's zk-server the way Apache ZooKeeper's
# bin/zkServer.sh runs the Java server.
#
# Usage: zkServer.sh [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd} [cfg]
#
#   cfg             a file name in the conf dir, or a path (relative to the
#                   current directory); default $ZOOCFG, i.e. conf/zoo.cfg
#   start           start in the background; output to
#                   $ZOO_LOG_DIR/zookeeper-$USER-server-$HOSTNAME.out,
#                   pid in $ZOOPIDFILE (default <dataDir>/zookeeper_server.pid)
#   start-foreground  exec the server in this terminal (ZOO_NOEXEC: no exec)
#   stop            SIGTERM the pid of the pid file (SIGKILL after
#                   $ZOO_STOP_TIMEOUT seconds, default 10)
#   restart         stop, then start
#   status          ask the server with the `srvr` four-letter word
#   print-cmd       print the command line `start` would run
#
# Environment: see bin/zkEnv.sh (ZOOCFGDIR, ZOOCFG, ZOO_LOG_DIR, ZOOPIDFILE,
# ZK_SERVER_BIN, SERVER_JVMFLAGS, JVMFLAGS, ZOO_DATADIR_AUTOCREATE_DISABLE).
# RUST_LOG / ZOO_LOG_LEVEL set the server's log level (default: RUST_LOG=info).
#
# Differences from Apache's script, on purpose:
#   * The server runs with the checkout root as its working directory, so a
#     relative dataDir (as in the shipped conf/zoo.cfg) means <checkout>/dataDir
#     wherever the script is called from. Apache resolves it against the
#     caller's directory. Paths given to this script are still taken relative
#     to the caller's directory.
#   * If zk-server is not built yet, `start` builds it first
#     (`cargo build --release --bin zk-server` in the checkout), unless
#     ZK_SERVER_BIN names another binary.
#   * `start` waits (up to $ZOO_START_TIMEOUT s, default 10) for the client
#     port to accept connections before printing STARTED, so that a
#     `status` right after `start` works. FAILED TO START if it exits first.
#   * `status` talks to the server with bash's /dev/tcp instead of a JVM
#     (FourLetterWordMain); the default address is 127.0.0.1.
#   * There is no JMX and no `version` subcommand.

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

usage() {
    echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|restart|status|print-cmd} [cfg]" >&2
    exit 1
}

die() {
    echo "zkServer.sh: $*" >&2
    exit 1
}

[ $# -ge 1 ] || usage
ZK_SUBCMD=$1

if [ -n "${2:-}" ]; then
    case $2 in
        */*) ZOOCFG="$(zk_abspath "$2")" ;;
        *) ZOOCFG="$ZOOCFGDIR/$2" ;;
    esac
fi

case $ZK_SUBCMD in
    start|start-foreground|stop|restart|status|print-cmd) ;;
    *) usage ;;
esac

echo "Using config: $ZOOCFG" >&2
[ -r "$ZOOCFG" ] || die "cannot read config file $ZOOCFG"

# From here on, relative paths in the config are relative to the checkout.
cd "$ZOOKEEPER_PREFIX" || die "cannot cd to $ZOOKEEPER_PREFIX"

# cfg_get KEY: the value of KEY in the config (the last one wins, as when
# Java's Properties loads the file), trimmed; empty if absent.
cfg_get() {
    local key=$1 line k v value=""
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line#"${line%%[![:space:]]*}"}"
        case $line in
            ''|'#'*|'!'*) continue ;;
        esac
        # key, then optional blanks, then '=' or ':' (Java properties syntax)
        k="${line%%[=:]*}"
        [ "$k" != "$line" ] || continue
        k="${k%"${k##*[![:space:]]}"}"
        [ "$k" = "$key" ] || continue
        v="${line#*[=:]}"
        v="${v#"${v%%[![:space:]]*}"}"
        v="${v%"${v##*[![:space:]]}"}"
        value=$v
    done <"$ZOOCFG"
    printf '%s' "$value"
}

ZOO_DATADIR="$(cfg_get dataDir)"
ZOO_DATALOGDIR="$(cfg_get dataLogDir)"

ZOO_DATADIR_AUTOCREATE=()
if [ -n "${ZOO_DATADIR_AUTOCREATE_DISABLE:-}" ]; then
    if [ ! -d "$ZOO_DATADIR/version-2" ]; then
        echo "ZooKeeper data directory is missing at $ZOO_DATADIR fix the path or run initialize"
        exit 1
    fi
    if [ -n "$ZOO_DATALOGDIR" ] && [ ! -d "$ZOO_DATALOGDIR/version-2" ]; then
        echo "ZooKeeper txnlog directory is missing at $ZOO_DATALOGDIR fix the path or run initialize"
        exit 1
    fi
    ZOO_DATADIR_AUTOCREATE=("-Dzookeeper.datadir.autocreate=false")
fi

if [ -z "${ZOOPIDFILE:-}" ]; then
    [ -n "$ZOO_DATADIR" ] || die "no dataDir in $ZOOCFG"
    ZOO_DATADIR="$(zk_abspath "$ZOO_DATADIR")"
    if [ "$ZK_SUBCMD" != status ]; then
        mkdir -p "$ZOO_DATADIR" || die "cannot create $ZOO_DATADIR"
    fi
    ZOOPIDFILE="$ZOO_DATADIR/zookeeper_server.pid"
elif [ "$ZK_SUBCMD" != status ]; then
    mkdir -p "$(dirname "$ZOOPIDFILE")"
fi

ZK_USER="${USER:-$(id -un 2>/dev/null || echo unknown)}"
ZOO_LOG_FILE="${ZOO_LOG_FILE:-zookeeper-$ZK_USER-server-$HOSTNAME.log}"
_ZOO_DAEMON_OUT="$ZOO_LOG_DIR/zookeeper-$ZK_USER-server-$HOSTNAME.out"

# Log levels: RUST_LOG / ZOO_LOG_LEVEL win; otherwise the first setting line of
# $ZOOCFGDIR/logging.conf (our counterpart of upstream's conf/logback.xml); else info.
if [ -z "${RUST_LOG:-}" ] && [ -z "${ZOO_LOG_LEVEL:-}" ] && [ -z "${ZOO_LOG:-}" ]; then
    _zk_log_spec=""
    if [ -r "$ZOOCFGDIR/logging.conf" ]; then
        _zk_log_spec="$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$ZOOCFGDIR/logging.conf" | grep -m1 . || true)"
    fi
    export RUST_LOG="${_zk_log_spec:-info}"
fi

# The server binary: ZK_SERVER_BIN, or the checkout's release build.
server_bin_path() {
    if [ -n "${ZK_SERVER_BIN:-}" ]; then
        printf '%s\n' "$ZK_SERVER_BIN"
    else
        printf '%s\n' "$ZK_TARGET_DIR/release/zk-server"
    fi
}

# Make sure the binary exists; build the release binary on first use.
ensure_server_bin() {
    ZK_BIN="$(server_bin_path)"
    if [ -n "${ZK_SERVER_BIN:-}" ]; then
        [ -x "$ZK_BIN" ] || die "ZK_SERVER_BIN=$ZK_BIN is not an executable file"
        return 0
    fi
    [ -x "$ZK_BIN" ] && return 0
    command -v cargo >/dev/null 2>&1 ||
        die "$ZK_BIN is missing and cargo is not on PATH; build zk-server or set ZK_SERVER_BIN"
    echo "zkServer.sh: $ZK_BIN not found; building it with: cargo build --release --bin zk-server" >&2
    (cd "$ZOOKEEPER_PREFIX" && cargo build --release --bin zk-server) >&2 ||
        die "cargo build --release --bin zk-server failed"
    [ -x "$ZK_BIN" ] || die "build finished but $ZK_BIN is missing"
}

# The server's command line, in the array ZK_CMD.
server_cmd() {
    ZK_CMD=("${ZK_BIN:-$(server_bin_path)}"
        "${ZOO_DATADIR_AUTOCREATE[@]}"
        "-Dzookeeper.log.dir=$ZOO_LOG_DIR"
        "-Dzookeeper.log.file=$ZOO_LOG_FILE"
        "${ZK_SERVER_DEFINES[@]}"
        "$ZOOCFG")
}

# True if PID is a live process (a zombie does not count).
alive() {
    local pid=$1 stat
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/stat" ]; then
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
        stat="${stat##*) }"
        [ "${stat%% *}" != Z ] || return 1
    fi
    return 0
}

# Client address and port of this server, as Apache's script finds them:
# clientPortAddress/clientPort, else the server.<myid> line
# ("...;[address:]port"), else secureClientPortAddress/secureClientPort.
# Sets CLIENT_ADDR, CLIENT_PORT, CLIENT_SSL; returns 1 (with a message) if
# no port is configured.
find_client_port() {
    CLIENT_SSL=false
    CLIENT_ADDR="$(cfg_get clientPortAddress)"
    CLIENT_PORT="$(cfg_get clientPort)"
    if ! [[ "$CLIENT_PORT" =~ ^[0-9]+$ ]]; then
        CLIENT_PORT=""
        local myid="" spec=""
        if [ -n "$ZOO_DATADIR" ] && [ -r "$ZOO_DATADIR/myid" ]; then
            myid="$(tr -d '[:space:]' <"$ZOO_DATADIR/myid")"
        fi
        if ! [[ "$myid" =~ ^[0-9]+$ ]]; then
            echo "myid could not be determined, will not able to locate clientPort in the server configs."
        else
            spec="$(cfg_get "server.$myid")"
            if [[ "$spec" != *";"* ]]; then
                local dyn
                dyn="$(cfg_get dynamicConfigFile)"
                if [ -n "$dyn" ] && [ -r "$dyn" ]; then
                    echo "Client port not found in static config file. Looking in dynamic config file."
                    spec="$(ZOOCFG=$dyn cfg_get "server.$myid")"
                fi
            fi
            if [[ "$spec" == *";"* ]]; then
                spec="${spec##*;}"
                if [[ "$spec" =~ ^\[(.*)\]:([0-9]+)$ ]]; then
                    CLIENT_ADDR="${BASH_REMATCH[1]}"
                    CLIENT_PORT="${BASH_REMATCH[2]}"
                elif [[ "$spec" =~ ^(.*):([0-9]+)$ ]]; then
                    CLIENT_ADDR="${BASH_REMATCH[1]}"
                    CLIENT_PORT="${BASH_REMATCH[2]}"
                elif [[ "$spec" =~ ^([0-9]+)$ ]]; then
                    CLIENT_PORT="${BASH_REMATCH[1]}"
                fi
            else
                echo "Client port not found in the server configs"
            fi
        fi
    fi
    if [ -z "$CLIENT_PORT" ]; then
        echo "Client port not found. Looking for secureClientPort in the static config."
        CLIENT_PORT="$(cfg_get secureClientPort)"
        if [ -z "$CLIENT_PORT" ]; then
            echo "Unable to find either secure or unsecure client port in any configs. Terminating."
            return 1
        fi
        CLIENT_SSL=true
        CLIENT_ADDR="$(cfg_get secureClientPortAddress)"
    fi
    # An unspecified address (listen on all) is reached through loopback.
    case $CLIENT_ADDR in
        ''|0.0.0.0|'::'|'[::]') CLIENT_ADDR=127.0.0.1 ;;
    esac
    return 0
}

# four_letter WORD: send WORD to the server, print the answer. At most
# 5 seconds; reading stops after the "Mode:" line of srvr (a 3.8.0 server
# still loading its database answers but may never close the socket).
four_letter() {
    local word=$1
    if [ "$CLIENT_SSL" = true ]; then
        command -v openssl >/dev/null 2>&1 || return 1
        printf '%s' "$word" |
            timeout 5 openssl s_client -quiet -connect "$CLIENT_ADDR:$CLIENT_PORT" 2>/dev/null
        return
    fi
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "%s" "$2" >&3
        while IFS= read -r line <&3 || [ -n "$line" ]; do
            printf "%s\n" "$line"
            case $line in Mode:*) break ;; esac
        done
    ' "$CLIENT_ADDR" "$CLIENT_PORT" "$word" 2>/dev/null
}

# True once something accepts TCP connections on the client port.
port_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$CLIENT_ADDR" "$CLIENT_PORT" 2>/dev/null
}

do_start() {
    ensure_server_bin
    server_cmd
    echo -n "Starting zookeeper ... "
    if [ -f "$ZOOPIDFILE" ]; then
        local old
        old="$(cat "$ZOOPIDFILE" 2>/dev/null)"
        if alive "$old"; then
            echo "already running as process $old."
            exit 1
        fi
    fi
    mkdir -p "$ZOO_LOG_DIR" || { echo "FAILED TO START (cannot create $ZOO_LOG_DIR)"; exit 1; }
    nohup "${ZK_CMD[@]}" >"$_ZOO_DAEMON_OUT" 2>&1 </dev/null &
    local pid=$!
    if ! echo -n "$pid" >"$ZOOPIDFILE"; then
        echo "FAILED TO WRITE PID"
        exit 1
    fi
    # As upstream: alive one second later means started. Then wait for the
    # client port, so that `status` right after `start` finds the server.
    sleep 1
    if ! alive "$pid"; then
        echo "FAILED TO START"
        rm -f "$ZOOPIDFILE"
        exit 1
    fi
    if find_client_port >/dev/null 2>&1; then
        local deadline=$((SECONDS + ${ZOO_START_TIMEOUT:-10}))
        while ((SECONDS < deadline)) && ! port_open; do
            if ! alive "$pid"; then
                echo "FAILED TO START"
                rm -f "$ZOOPIDFILE"
                exit 1
            fi
            sleep 0.1
        done
    fi
    echo STARTED
}

do_stop() {
    echo -n "Stopping zookeeper ... "
    if [ ! -f "$ZOOPIDFILE" ]; then
        echo "no zookeeper to stop (could not find file $ZOOPIDFILE)"
        return 0
    fi
    local pid waited=0 limit
    pid="$(cat "$ZOOPIDFILE" 2>/dev/null)"
    limit=$((${ZOO_STOP_TIMEOUT:-10} * 10))
    if alive "$pid"; then
        kill "$pid" 2>/dev/null
        while alive "$pid"; do
            if ((waited >= limit)); then
                kill -9 "$pid" 2>/dev/null
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
    fi
    rm -f "$ZOOPIDFILE"
    echo STOPPED
}

case $ZK_SUBCMD in
start)
    do_start
    ;;
start-foreground)
    ensure_server_bin
    server_cmd
    if [ -n "${ZOO_NOEXEC:-}" ]; then
        "${ZK_CMD[@]}"
    else
        exec "${ZK_CMD[@]}"
    fi
    ;;
print-cmd)
    server_cmd
    printf '%q ' "${ZK_CMD[@]}"
    printf '> %q 2>&1 < /dev/null\n' "$_ZOO_DAEMON_OUT"
    ;;
stop)
    do_stop
    exit 0
    ;;
restart)
    do_stop
    sleep 1
    do_start
    ;;
status)
    find_client_port || exit 1
    echo "Client port found: $CLIENT_PORT. Client address: $CLIENT_ADDR. Client SSL: $CLIENT_SSL."
    STAT="$(four_letter srvr | grep '^Mode')"
    if [ -z "$STAT" ]; then
        echo "Error contacting service. It is probably not running."
        exit 1
    fi
    echo "$STAT"
    exit 0
    ;;
esac
