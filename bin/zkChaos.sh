#!/usr/bin/env bash
#
# zkChaos.sh — build and run zk-chaos, the fault-injection tool of zookeeper-rs.
#
# Usage: zkChaos.sh [zk-chaos options...]
#
#   zkChaos.sh --layout rust3 --duration 1800          # 30 minutes, 3 of our peers
#   zkChaos.sh --layout rust2-java1 --duration 1800    # 2 of ours + 1 Apache 3.8 peer
#   zkChaos.sh --layout java3 --duration 1800          # the control: Apache only
#   zkChaos.sh --layout ours,apache,ours,apache,ours   # any mix of 3 to 7 peers
#   zkChaos.sh --net proxy ...                         # link proxies, no root needed
#   zkChaos.sh --help                                  # every option
#
# Clients run compare-and-set on versioned registers, sequential creates, multis,
# ephemerals (also of sessions that vanish without closing) and a data watch while
# a nemesis kills -9 and restarts peers, SIGSTOPs them (sometimes longer than the
# session timeout) and cuts links (leader isolated, random minority, bridge on 5
# peers). --net netns (the default as root with iproute2) runs every peer in a
# network namespace of its own and cuts with blackhole routes: full partitions.
# --net proxy (the default otherwise) cuts through per-link proxies on loopback,
# which election callbacks to a peer's advertised address bypass. Afterwards: linearizability of the
# registers, no acknowledged write lost, no sequence number reused, multis
# all-or-nothing, ephemerals gone, watches fired, identical trees on every peer.
# Exit status 0: every check passed; 1: a finding (the ensemble directory with
# every peer's log is kept and printed); 2: the run could not be made.
# docs/reliability.md describes the method and the results of long runs.
#
# Apache peers need the Debian packages (bin/test.sh installs them): java and
# /usr/share/java/zookeeper.jar with its jars.
#
# Environment:
#   ZKCHAOS_PROFILE   debug (default: overflow checks and debug assertions on,
#                     which is what a correctness run wants) or release
#   ZKCHAOS_RUST_LOG  RUST_LOG of our peers (default info)
#   CARGO_TARGET_DIR, CARGO_BUILD_JOBS  as for cargo

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

profile="${ZKCHAOS_PROFILE:-debug}"
target="${CARGO_TARGET_DIR:-target}"
case "$profile" in
    debug) cargo build --quiet --bin zk-server --bin zk-chaos; dir="$target/debug" ;;
    release) cargo build --quiet --release --bin zk-server --bin zk-chaos; dir="$target/release" ;;
    *) echo "zkChaos.sh: ZKCHAOS_PROFILE must be debug or release, not $profile" >&2; exit 2 ;;
esac
exec "$dir/zk-chaos" --server-bin "$dir/zk-server" "$@"
