//! The CI round of `zk-chaos` (docs/reliability.md): a short run on three of our peers
//! and one on two of ours with an Apache 3.8 peer, each with kills, pauses and link
//! cuts, and every check of a long run (linearizable registers, sequential creates,
//! multis, ephemerals, watches, identical trees). Long runs are `bin/zkChaos.sh`.
//!
//! The seed is new each run and printed; `ZKCHAOS_SEED` replays one.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zookeeper::bench::servers::{ServerPrograms, DEFAULT_APACHE_JARS_DIR, DEFAULT_JAVA};
use zookeeper::chaos::nemesis::FaultKind;
use zookeeper::chaos::{parse_layout, run, ChaosConfig};

fn seed() -> u64 {
    std::env::var("ZKCHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64 % 1_000_000).unwrap_or(1))
}

fn round(layout: &str, secs: u64) {
    let seed = seed();
    let cfg = ChaosConfig {
        programs: ServerPrograms {
            java: PathBuf::from(DEFAULT_JAVA),
            apache_jars_dir: PathBuf::from(DEFAULT_APACHE_JARS_DIR),
            ours: PathBuf::from(env!("CARGO_BIN_EXE_zk-server")),
        },
        layout: parse_layout(layout).expect("layout"),
        duration: Duration::from_secs(secs),
        clients: 4,
        registers: 3,
        epoch: Duration::from_secs(10),
        faults: FaultKind::all(),
        session_timeout_ms: 4000,
        check_reads: false,
        seed,
        keep_dir: false,
        dir: None,
    };
    let rep = run(&cfg).unwrap_or_else(|e| panic!("zk-chaos {layout} (seed {seed}) could not run: {e}"));
    println!("{}", rep.text);
    assert!(rep.passed(), "zk-chaos {layout} seed {seed}: {} finding(s); directory kept at {:?}:\n{}", rep.findings.len(), rep.dir, rep.findings.join("\n"));
    assert!(rep.faults >= 3, "only {} faults in {secs} s:\n{}", rep.faults, rep.text);
    assert!(rep.ok > 500, "only {} successful ops:\n{}", rep.ok, rep.text);
    println!("zk-chaos {layout} seed {seed}: PASS ({} faults, {} leader changes, {} ops, {} unknown)", rep.faults, rep.leader_changes, rep.ops, rep.unknown);
}

/// One test, so the two ensembles run one after the other (2 cores).
#[test]
fn chaos_round_rust3_then_rust2_java1() {
    round("rust3", 40);
    round("rust2-java1", 45);
}
