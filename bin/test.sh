#!/usr/bin/env bash
#
# test.sh — the single test command of zookeeper-rs (used by .ci/run).
#
#   1. Makes sure the Apache ZooKeeper 3.8 Debian packages the interop tests
#      run against are installed (zookeeper, zookeeper-bin, python3-kazoo,
#      python3-pytest), and iproute2 (as root, tests/chaos.rs runs its peers in
#      network namespaces with `ip netns`); installs the missing ones with
#      apt-get (as root, or through `sudo -n`).
#   2. Runs `cargo test --all-targets --no-fail-fast` (unit and integration tests; the
#      integration tests start Apache servers and our zk-server, built in
#      debug mode by cargo, on free loopback ports).
#
# Usage: bin/test.sh [extra cargo test arguments, e.g. a test name filter]
#
# Environment:
#   ZKRS_TEST_TIMEOUT   seconds for the whole cargo run (default 1680 = 28 min: the whole CI run stays under 30)
#   CARGO_BUILD_JOBS    build parallelism, as for cargo
#   ZKRS_SKIP_APT=1     only check the packages, never run apt-get

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }
die() { log "$*"; exit 1; }

PACKAGES=(zookeeper zookeeper-bin python3-kazoo python3-pytest iproute2 libservlet-api-java python3-prometheus-client openssl)

is_installed() {
    local status
    status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) || return 1
    [[ "$status" == installed ]]
}

# ------------------------------------------------------ Debian packages --
ensure_packages() {
    command -v dpkg-query >/dev/null 2>&1 ||
        die "dpkg-query not found: the interop tests need Debian's Apache ZooKeeper packages"
    local missing=() pkg
    for pkg in "${PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if ((${#missing[@]} > 0)); then
        [[ "${ZKRS_SKIP_APT:-}" != 1 ]] || die "missing packages: ${missing[*]} (ZKRS_SKIP_APT=1)"
        local sudo=()
        if ((EUID != 0)); then
            command -v sudo >/dev/null 2>&1 || die "need root to install: ${missing[*]}"
            sudo=(sudo -n)
        fi
        log "installing ${missing[*]}"
        "${sudo[@]}" apt-get update
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
        for pkg in "${missing[@]}"; do
            is_installed "$pkg" || die "$pkg failed to install"
        done
    else
        log "Debian packages present: ${PACKAGES[*]}"
    fi
    local f
    for f in /usr/share/java/zookeeper.jar /usr/share/java/zookeeper-jute.jar \
             /usr/share/java/slf4j-api.jar /usr/share/java/slf4j-simple.jar \
             /usr/lib/zookeeper/bin/cli_mt /usr/bin/java /usr/bin/python3 /usr/bin/ip; do
        [[ -e "$f" ]] || die "expected file missing after install: $f"
    done
    /usr/bin/python3 -c 'import kazoo' || die "kazoo is not importable by /usr/bin/python3"
    log "Apache ZooKeeper $(dpkg-query -W -f='${Version}' zookeeper), kazoo, cli_mt: OK"
}

ensure_packages

# ------------------------------------------------------------ cargo test --
command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH"

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

# tests/hostile_sessions.rs holds thousands of sessions open: one descriptor each in
# the test and in the server under test. Soft limit up to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || log "could not raise the open-files limit ($(ulimit -n))"

log "cargo test --all-targets --no-fail-fast $*"
start=$SECONDS
status=0
timeout --kill-after=30 "${ZKRS_TEST_TIMEOUT:-1680}" \
    cargo test --all-targets --no-fail-fast "$@" || status=$?
if ((status == 124 || status == 137)); then
    log "cargo test did not finish within ${ZKRS_TEST_TIMEOUT:-1680} s"
fi
log "cargo test finished with status $status after $((SECONDS - start)) s"
exit "$status"
