#!/usr/bin/env bash
#
# zkBench.sh — build and run zk-bench, the zookeeper-rs benchmark tool.
#
# Usage: zkBench.sh {compare|election|ensemble|scrape|sessions|run} [zk-bench options...]
#
#   compare   start Apache ZooKeeper 3.8 (the Debian packages' jars) and our
#             zk-server with the same zoo.cfg and compare them side by side:
#             start-up, create/set/get/delete/mixed/multi/watch/churn, RSS and
#             restart time; tables, ratios ours/Apache and one JSON line.
#             `--smoke` is a quick check (well under a minute), not a measurement.
#             `--tls`: the same on a secure client port instead (certificates made
#             with openssl, secureClientPort and PEM stores on both, Apache with its
#             Netty factory): get/set over TLS and sessions opened per second (full
#             TLS handshakes, 1 and --openers openers); `--tls-key ec` for ECDSA.
#   election  Apache ZooKeeper 3.8 ensembles (QuorumPeerMain) and ours, side
#             by side with the same zoo.cfg: start -> leader and leader
#             kill -9 -> new leader for 3 and 5 peers (10 rounds each, median
#             and max, ratios), idle RSS and threads of a follower.
#             `--smoke` is one round of 3 peers (well under 20 s).
#   ensemble  a 3-node Apache ZooKeeper 3.8 ensemble and a 3-node ensemble of
#             ours side by side, same zoo.cfg scheme and load: get/set/create/
#             mixed with 8 clients x 32 outstanding spread over the nodes
#             (3 rounds, A B / B A), RSS of every node after the load, and
#             failover: kill -9 of the leader under a set load -> first
#             successful write (5 rounds); tables, ratios and one JSON line.
#             `--smoke` is one short round of everything (well under 30 s).
#   scrape    Prometheus /metrics scrape times of our zk-server
#             (metricsProvider.className=...PrometheusMetricsProvider) with 1,000,000
#             znodes, idle and under a set load: min/median/p99 against the 50 ms
#             target. Ours only: Debian's Apache 3.8 has no Prometheus provider.
#             `--smoke`: 20,000 znodes, 10 scrapes per phase.
#   sessions  19,000 idle sessions (bounded by the open-file limit) opened by 10
#             openers on Apache ZooKeeper 3.8 and on ours, side by side: time to
#             open them, RSS and threads holding them, get throughput on top.
#             `--smoke`: 300 sessions, one round.
#   run       one workload against a running server, e.g.
#             zkBench.sh run --server 127.0.0.1:2181 --workload get
#
#   zkBench.sh compare --help / election --help / ensemble --help / scrape --help /
#   sessions --help / run --help
#   list the options;
#   docs/benchmarks.md describes the method.
#
# Every subcommand first builds zk-server and zk-bench in the checkout
# (`cargo build --release --bin zk-server --bin zk-bench`; a no-op when they
# are up to date), then exec zk-bench. zk-bench compare runs the zk-server
# (zk-bench election and ensemble: the zk-server peers) next to it.
#
# Environment:
#   ZKBENCH_PROFILE   release (default) or debug: which build to make and run
#                     (debug: `cargo build` without --release, target/debug)
#   CARGO_TARGET_DIR, CARGO_BUILD_JOBS
#                     as for cargo
#   RUST_LOG          zk-bench's own log (default: warnings)

ZOOBIN="${BASH_SOURCE-$0}"
ZOOBINDIR="$(cd "$(dirname "$ZOOBIN")" && pwd)"
# shellcheck source=zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

usage() {
    echo "Usage: $0 {compare|election|ensemble|scrape|sessions|run} [zk-bench options...]" >&2
    echo "       $0 compare --help | $0 election --help | $0 ensemble --help | $0 scrape --help | $0 run --help    (options)" >&2
    exit 1
}

die() {
    echo "zkBench.sh: $*" >&2
    exit 1
}

[ $# -ge 1 ] || usage
ZK_SUBCMD=$1
shift
case $ZK_SUBCMD in
    compare|election|ensemble|scrape|sessions|run) ;;
    *) usage ;;
esac

case ${ZKBENCH_PROFILE:-release} in
    release) zk_build_args=(--release); zk_profile_dir=release ;;
    debug|dev) zk_build_args=(); zk_profile_dir=debug ;;
    *) die "ZKBENCH_PROFILE must be release or debug, not '${ZKBENCH_PROFILE}'" ;;
esac

command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (needed to build zk-server and zk-bench)"
echo "zkBench.sh: cargo build ${zk_build_args[*]} --bin zk-server --bin zk-bench" >&2
(cd "$ZOOKEEPER_PREFIX" && cargo build "${zk_build_args[@]}" --bin zk-server --bin zk-bench) >&2 ||
    die "cargo build ${zk_build_args[*]} --bin zk-server --bin zk-bench failed"

bin="$ZK_TARGET_DIR/$zk_profile_dir/zk-bench"
[ -x "$bin" ] || die "build finished but $bin is missing"

exec "$bin" "$ZK_SUBCMD" "$@"
