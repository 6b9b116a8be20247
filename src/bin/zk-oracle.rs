//! `zk-oracle`: a proxy that mirrors every client request to a primary server and an
//! oracle (a reference Apache ZooKeeper 3.8) and reports where their replies differ
//! (logic in `zookeeper::oracle`; see docs/oracle.md).
//!
//! `zk-oracle --listen 127.0.0.1:2182 --primary 127.0.0.1:2181 --oracle 127.0.0.1:2281
//! [--report FILE] [--ignore-stat-fields version,...] [--fail-on-diff]`

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use zookeeper::oracle::{OracleConfig, OracleProxy, StatFields, STAT_FIELD_NAMES};

#[derive(Parser)]
#[command(
    name = "zk-oracle",
    version,
    about = "Mirrors ZooKeeper client traffic to a primary and an oracle server and reports every difference \
             in their replies; clients only ever see the primary's replies"
)]
struct Cli {
    /// Address the clients connect to.
    #[arg(long, default_value = "127.0.0.1:2182")]
    listen: String,
    /// The server under test (its replies go to the clients).
    #[arg(long)]
    primary: String,
    /// The reference server (an isolated Apache ZooKeeper 3.8 with the same data).
    #[arg(long)]
    oracle: String,
    /// Append the report to this file instead of stderr.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Stat fields not to compare (comma separated); comparable:
    /// version, cversion, aversion, dataLength, numChildren, ephemeralOwner.
    /// czxid, mzxid, pzxid, ctime and mtime are never compared.
    #[arg(long, value_delimiter = ',')]
    ignore_stat_fields: Vec<String>,
    /// Exit with status 1 if any difference was reported.
    #[arg(long)]
    fail_on_diff: bool,
    /// How long a reply or watch event may wait for its partner (ms).
    #[arg(long, default_value_t = 5000)]
    grace_ms: u64,
    /// Requests awaiting comparison per connection before comparisons are dropped.
    #[arg(long, default_value_t = 10_000)]
    max_pending: usize,
    /// Client connections served at once.
    #[arg(long, default_value_t = 1_000)]
    max_connections: usize,
    /// Seconds between counter lines in the report (0: only at exit).
    #[arg(long, default_value_t = 60)]
    stats_interval: u64,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let stat_fields = match StatFields::ignoring(&cli.ignore_stat_fields) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("zk-oracle: --ignore-stat-fields: {e} (comparable: {})", STAT_FIELD_NAMES.join(", "));
            std::process::exit(2);
        }
    };
    let mut cfg = OracleConfig::new(&cli.listen, &cli.primary, &cli.oracle);
    cfg.report = cli.report;
    cfg.stat_fields = stat_fields;
    cfg.grace = Duration::from_millis(cli.grace_ms.max(1));
    cfg.max_pending = cli.max_pending.max(1);
    cfg.max_connections = cli.max_connections.max(1);
    cfg.stats_interval = (cli.stats_interval > 0).then(|| Duration::from_secs(cli.stats_interval));

    let signals = zookeeper::common::signals::TerminationSignals::block();
    let proxy = match OracleProxy::start(cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("zk-oracle: {e}");
            std::process::exit(2);
        }
    };
    // The address actually bound (useful with port 0), for scripts and tests.
    println!("zk-oracle listening on {}", proxy.local_addr());
    let sig = signals.wait();
    log::info!("signal {sig}: stopping");
    let counters = proxy.shutdown();
    println!("zk-oracle: {counters}");
    if cli.fail_on_diff && counters.differences > 0 {
        eprintln!("zk-oracle: {} differences reported (--fail-on-diff)", counters.differences);
        std::process::exit(1);
    }
}
