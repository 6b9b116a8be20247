//! `zk-bench`: load generator and Apache-vs-ours comparison (logic in `zookeeper::bench`).
//!
//! `zk-bench run --workload get [--server 127.0.0.1:2181] ...` runs one workload against
//! a running server; `zk-bench compare [--smoke] ...` starts Apache ZooKeeper 3.8 and our
//! zk-server and compares them; `zk-bench election [--smoke] ...` compares leader election of
//! Apache and our ensembles; `zk-bench ensemble [--smoke] ...` compares 3-node ensembles
//! under load (throughput, latency, failover, RSS per node); `zk-bench compare --tls` compares
//! them on a secure client port; `zk-bench scrape` times Prometheus scrapes of our server with
//! a big tree; `zk-bench sessions` holds thousands of idle sessions on both (see
//! docs/benchmarks.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use zookeeper::bench::compare::{compare, CompareConfig};
use zookeeper::bench::election::{election, ElectionConfig};
use zookeeper::bench::ensemble::{ensemble, EnsembleConfig, DEFAULT_WORKLOADS};
use zookeeper::bench::scrape::{scrape, ScrapeConfig};
use zookeeper::bench::sessions::{sessions, SessionsConfig};
use zookeeper::bench::servers::{ServerPrograms, DEFAULT_APACHE_JARS_DIR, DEFAULT_JAVA};
use zookeeper::bench::tls::{KeyType, TlsClient, TlsOptions};
use zookeeper::bench::{run, RunConfig, Workload};
use zookeeper::system_properties;

#[derive(Parser)]
#[command(name = "zk-bench", version, about = "ZooKeeper load generator; compares zookeeper-rs with Apache ZooKeeper 3.8")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one workload against a running server; prints a summary and one JSON line.
    Run(RunArgs),
    /// Start Apache ZooKeeper 3.8 and our zk-server and compare them side by side.
    Compare(CompareArgs),
    /// Leader election of Apache ZooKeeper 3.8 and our ensembles side by side: start ->
    /// leader, leader kill -> new leader, idle footprint.
    Election(ElectionArgs),
    /// A 3-node Apache ZooKeeper 3.8 ensemble and a 3-node ensemble of ours side by side:
    /// get/set/create/mixed with the clients spread over the nodes, RSS of every node,
    /// leader kill -9 under load -> first successful write.
    Ensemble(EnsembleArgs),
    /// Prometheus /metrics scrape times of our zk-server with a big tree, idle and under
    /// load (ours only: Debian's Apache 3.8 has no Prometheus provider).
    Scrape(ScrapeArgs),
    /// Many idle sessions held on Apache ZooKeeper 3.8 and on our zk-server side by
    /// side: time to open them, RSS and threads holding them, get throughput on top.
    Sessions(SessionsArgs),
}

#[derive(Args)]
struct SessionsArgs {
    /// Small counts (seconds); checks that everything works, measures nothing worth
    /// reporting.
    #[arg(long)]
    smoke: bool,
    /// Sessions held at once [default: 19000, bounded by the open-file limit; smoke 300]
    #[arg(long)]
    sessions: Option<usize>,
    /// Threads opening them at once.
    #[arg(long, default_value_t = 10)]
    openers: usize,
    /// Rounds (A B / B A alternating) [default: 3; smoke 1]
    #[arg(long)]
    rounds: Option<usize>,
    /// Sessions of the get load run on top of the held ones.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    /// Seconds of the get load [default: 5; smoke 0.5]
    #[arg(long)]
    duration: Option<f64>,
    #[arg(long)]
    java: Option<PathBuf>,
    #[arg(long)]
    apache_jars: Option<PathBuf>,
    /// Our server binary [default: zk-server next to this zk-bench]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the servers' directories afterwards (always kept when the benchmark fails).
    #[arg(long)]
    keep: bool,
}

#[derive(Args)]
struct ScrapeArgs {
    /// Small counts (well under a minute); checks that everything works, measures
    /// nothing worth reporting.
    #[arg(long)]
    smoke: bool,
    /// Znodes in the tree [default: 1000000; smoke 20000]
    #[arg(long)]
    nodes: Option<usize>,
    /// Scrapes per phase [default: 200; smoke 10]
    #[arg(long)]
    scrapes: Option<usize>,
    /// Bytes per znode.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Sessions of the populate and the load.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    /// The load of the last phase: get, set or mixed.
    #[arg(long, value_enum, default_value = "set")]
    load: Workload,
    /// Skip the phase under load.
    #[arg(long)]
    no_load: bool,
    /// Our server binary [default: zk-server next to this zk-bench]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the server's directory (zoo.cfg, dataDir, log) afterwards (it is always kept
    /// when the benchmark fails).
    #[arg(long)]
    keep: bool,
}

#[derive(Args)]
struct EnsembleArgs {
    /// One short round of everything (well under 30 s); checks that everything works,
    /// measures nothing worth reporting.
    #[arg(long)]
    smoke: bool,
    /// Rounds per workload (at least 3 unless --smoke) [default: 3; smoke 1]
    #[arg(long)]
    rounds: Option<usize>,
    /// Leader kills per ensemble (at least 3 unless --smoke) [default: 5; smoke 1]
    #[arg(long)]
    failover_rounds: Option<usize>,
    /// Nodes per ensemble.
    #[arg(long, default_value_t = 3)]
    size: usize,
    /// Seconds measured per workload, round and ensemble [default: 10; smoke 0.5]
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up before each measured window [default: 2; smoke 0.2]
    #[arg(long)]
    warmup: Option<f64>,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Key space of set / get / mixed [default: 1000; smoke 200]
    #[arg(long)]
    nodes: Option<usize>,
    #[arg(long, default_value_t = 0.9)]
    read_ratio: f64,
    /// Workloads (comma-separated) [default: get,set,create,mixed]
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// tickTime of every node (ms), the same for both.
    #[arg(long, default_value_t = 2000)]
    tick_time: u32,
    /// Load during the failover measurement: set or create.
    #[arg(long, value_enum, default_value = "set")]
    failover_workload: Workload,
    /// Seconds of load before each leader kill [default: 2; smoke 0.3]
    #[arg(long)]
    failover_load: Option<f64>,
    /// Seconds after the first write following a kill to wait for every session to
    /// write again [default: 10; smoke 1]
    #[arg(long)]
    failover_settle: Option<f64>,
    /// Longest wait for an election, for serving, and for the first write after a kill (s).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Idle seconds before RSS is read [default: 2; smoke 0.3]
    #[arg(long)]
    idle: Option<f64>,
    /// Our server binary [default: zk-server next to this zk-bench]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the ensembles' directories (zoo.cfg, dataDir, logs) afterwards (they are
    /// always kept when the benchmark fails).
    #[arg(long)]
    keep: bool,
    /// Java for the Apache nodes.
    #[arg(long, default_value = DEFAULT_JAVA)]
    java: PathBuf,
    /// Directory with zookeeper.jar, zookeeper-jute.jar, slf4j-api.jar, slf4j-simple.jar.
    #[arg(long, default_value = DEFAULT_APACHE_JARS_DIR)]
    apache_jars: PathBuf,
}

#[derive(Args)]
struct ElectionArgs {
    /// One round of 3 peers (well under 20 s); checks that everything works, measures
    /// nothing worth reporting.
    #[arg(long)]
    smoke: bool,
    /// Rounds per measurement, size and implementation (at least 3 unless --smoke)
    /// [default: 10; smoke 1]
    #[arg(long)]
    rounds: Option<usize>,
    /// Ensemble sizes [default: 3,5; smoke 3]
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// tickTime of every peer (ms), the same for both.
    #[arg(long, default_value_t = 2000)]
    tick_time: u32,
    /// Longest wait for one election or for an ensemble to serve (s).
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Idle seconds before the footprint is read [default: 3; smoke 0.3]
    #[arg(long)]
    idle: Option<f64>,
    /// Our server binary [default: zk-server next to this zk-bench]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the ensembles' directories (zoo.cfg, dataDir, logs) afterwards (they are
    /// always kept when the benchmark fails).
    #[arg(long)]
    keep: bool,
    /// Java for the Apache peers.
    #[arg(long, default_value = DEFAULT_JAVA)]
    java: PathBuf,
    /// Directory with zookeeper.jar, zookeeper-jute.jar, slf4j-api.jar, slf4j-simple.jar.
    #[arg(long, default_value = DEFAULT_APACHE_JARS_DIR)]
    apache_jars: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// Connect string of the server.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Sessions issuing requests (one thread each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Async requests in flight per client.
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    /// Bytes of data per create / setData.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before the measured window (same workload, discarded).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Key space of set / get / mixed / multi (pre-created, not timed).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Share of getData in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    read_ratio: f64,
    /// Watcher sessions of the watch workload.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// setData ops per multi.
    #[arg(long, default_value_t = 4)]
    multi_ops: usize,
    /// Parent znode of everything the run creates (removed at the end).
    #[arg(long, default_value = "/zkbench")]
    root: String,
    /// With several servers in --server (an ensemble): client session i connects to
    /// server i mod n only, instead of a random one of the list.
    #[arg(long)]
    spread: bool,
    /// Speak TLS to --server (its secure client port) with this PEM file of CA
    /// certificates as the trust store (zookeeper.client.secure).
    #[arg(long)]
    tls_trust_store: Option<PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    /// One short round per workload with small node counts (well under a minute);
    /// checks that everything works, measures nothing worth reporting.
    #[arg(long)]
    smoke: bool,
    /// Rounds per measurement (at least 3 unless --smoke) [default: 3; smoke 1]
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds measured per workload, round and server [default: 10; smoke 1]
    #[arg(long)]
    duration: Option<f64>,
    /// Seconds of warm-up before each measured window [default: 2; smoke 0.3]
    #[arg(long)]
    warmup: Option<f64>,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Key space of set / get / mixed / multi [default: 1000; smoke 200]
    #[arg(long)]
    nodes: Option<usize>,
    #[arg(long, default_value_t = 0.9)]
    read_ratio: f64,
    /// Watcher sessions of the watch workload [default: 100; smoke 20]
    #[arg(long)]
    watchers: Option<usize>,
    #[arg(long, default_value_t = 4)]
    multi_ops: usize,
    /// Nodes (100 B) in the tree for the restart measurement [default: 100000; smoke 2000]
    #[arg(long)]
    restart_nodes: Option<usize>,
    /// Only these workloads (comma-separated) [default: all; with --tls get,set]
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Compare on a secure client port instead: certificates made with openssl, both
    /// servers with secureClientPort and PEM stores, the workloads over TLS, and
    /// sessions opened per second (full TLS handshakes) with 1 and --openers openers.
    #[arg(long)]
    tls: bool,
    /// --tls: the server certificate's key.
    #[arg(long, value_enum, default_value = "rsa")]
    tls_key: KeyType,
    /// --tls: concurrent openers of the session-opening measurement (it also runs with 1).
    #[arg(long, default_value_t = 8)]
    openers: usize,
    /// --tls: seconds measured per session-opening run, round and server [default: 5; smoke 0.5]
    #[arg(long)]
    open_duration: Option<f64>,
    /// Our server binary [default: zk-server next to this zk-bench]
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep the servers' directories (zoo.cfg, dataDir, logs) in the temp dir afterwards
    /// (they are always kept when the comparison fails).
    #[arg(long)]
    keep: bool,
    /// Java for the Apache server.
    #[arg(long, default_value = DEFAULT_JAVA)]
    java: PathBuf,
    /// Directory with zookeeper.jar, zookeeper-jute.jar, slf4j-api.jar, slf4j-simple.jar
    /// (and, for --tls, netty-codec.jar and netty-resolver.jar).
    #[arg(long, default_value = DEFAULT_APACHE_JARS_DIR)]
    apache_jars: PathBuf,
}

fn secs(name: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v).map_err(|_| format!("--{name} must be a non-negative number of seconds, not {v}"))
}

fn run_cmd(a: RunArgs) -> Result<(), String> {
    let cfg = RunConfig {
        server: a.server,
        workload: a.workload,
        clients: a.clients,
        outstanding: a.outstanding,
        payload: a.payload,
        duration: secs("duration", a.duration)?,
        warmup: secs("warmup", a.warmup)?,
        nodes: a.nodes,
        read_ratio: a.read_ratio,
        watchers: a.watchers,
        multi_ops: a.multi_ops,
        root: a.root,
        spread: a.spread,
        probe: None,
    };
    // Kept until the run is over: it turns TLS off again when dropped.
    let _tls = a.tls_trust_store.map(|p| TlsClient::enable(&p)).transpose()?;
    let r = run(&cfg)?;
    print!("{}", r.summary());
    println!("{}", r.json());
    Ok(())
}

/// `--server-bin`, made absolute (servers run in their own directories), or the
/// zk-server next to this zk-bench.
fn our_server(server_bin: Option<PathBuf>) -> Result<PathBuf, String> {
    match server_bin {
        Some(p) => Ok(std::fs::canonicalize(&p).unwrap_or(p)),
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find zk-bench's own path (pass --server-bin): {e}"))?;
            Ok(exe.with_file_name("zk-server"))
        }
    }
}

fn election_cmd(a: ElectionArgs) -> Result<(), String> {
    let smoke = a.smoke;
    let cfg = ElectionConfig {
        programs: ServerPrograms { java: a.java, apache_jars_dir: a.apache_jars, ours: our_server(a.server_bin)? },
        sizes: if !a.sizes.is_empty() {
            a.sizes
        } else if smoke {
            vec![3]
        } else {
            vec![3, 5]
        },
        rounds: a.rounds.unwrap_or(if smoke { 1 } else { 10 }),
        tick_time: a.tick_time,
        smoke,
        timeout: secs("timeout", a.timeout)?,
        idle: secs("idle", a.idle.unwrap_or(if smoke { 0.3 } else { 3.0 }))?,
        keep_dir: a.keep,
    };
    election(&cfg)
}

fn ensemble_cmd(a: EnsembleArgs) -> Result<(), String> {
    let smoke = a.smoke;
    let pick = |v: Option<f64>, full: f64, quick: f64| v.unwrap_or(if smoke { quick } else { full });
    let cfg = EnsembleConfig {
        programs: ServerPrograms { java: a.java, apache_jars_dir: a.apache_jars, ours: our_server(a.server_bin)? },
        size: a.size,
        rounds: a.rounds.unwrap_or(if smoke { 1 } else { 3 }),
        smoke,
        duration: secs("duration", pick(a.duration, 10.0, 0.5))?,
        warmup: secs("warmup", pick(a.warmup, 2.0, 0.2))?,
        clients: a.clients,
        outstanding: a.outstanding,
        payload: a.payload,
        nodes: a.nodes.unwrap_or(if smoke { 200 } else { 1000 }),
        read_ratio: a.read_ratio,
        workloads: if a.workloads.is_empty() { DEFAULT_WORKLOADS.to_vec() } else { a.workloads },
        tick_time: a.tick_time,
        failover_workload: a.failover_workload,
        failover_rounds: a.failover_rounds.unwrap_or(if smoke { 1 } else { 5 }),
        failover_load: secs("failover-load", pick(a.failover_load, 2.0, 0.3))?,
        failover_settle: secs("failover-settle", pick(a.failover_settle, 10.0, 1.0))?,
        timeout: secs("timeout", a.timeout)?,
        idle: secs("idle", pick(a.idle, 2.0, 0.3))?,
        keep_dir: a.keep,
    };
    ensemble(&cfg)
}

fn compare_cmd(a: CompareArgs) -> Result<(), String> {
    let smoke = a.smoke;
    let pick = |v: Option<f64>, full: f64, quick: f64| v.unwrap_or(if smoke { quick } else { full });
    let ours = our_server(a.server_bin)?;
    let cfg = CompareConfig {
        programs: ServerPrograms { java: a.java, apache_jars_dir: a.apache_jars, ours },
        rounds: a.rounds.unwrap_or(if smoke { 1 } else { 3 }),
        smoke,
        duration: secs("duration", pick(a.duration, 10.0, 1.0))?,
        warmup: secs("warmup", pick(a.warmup, 2.0, 0.3))?,
        clients: a.clients,
        outstanding: a.outstanding,
        payload: a.payload,
        nodes: a.nodes.unwrap_or(if smoke { 200 } else { 1000 }),
        read_ratio: a.read_ratio,
        watchers: a.watchers.unwrap_or(if smoke { 20 } else { 100 }),
        multi_ops: a.multi_ops,
        restart_nodes: a.restart_nodes.unwrap_or(if smoke { 2000 } else { 100_000 }),
        workloads: if !a.workloads.is_empty() {
            a.workloads
        } else if a.tls {
            vec![Workload::Get, Workload::Set]
        } else {
            Workload::ALL.to_vec()
        },
        keep_dir: a.keep,
        tls: if a.tls {
            Some(TlsOptions {
                key: a.tls_key,
                openers: a.openers,
                open_duration: secs("open-duration", pick(a.open_duration, 5.0, 0.5))?,
            })
        } else {
            None
        },
    };
    compare(&cfg)
}

fn scrape_cmd(a: ScrapeArgs) -> Result<(), String> {
    let smoke = a.smoke;
    let cfg = ScrapeConfig {
        programs: ServerPrograms {
            java: DEFAULT_JAVA.into(),
            apache_jars_dir: DEFAULT_APACHE_JARS_DIR.into(),
            ours: our_server(a.server_bin)?,
        },
        smoke,
        nodes: a.nodes.unwrap_or(if smoke { 20_000 } else { 1_000_000 }),
        scrapes: a.scrapes.unwrap_or(if smoke { 10 } else { 200 }),
        payload: a.payload,
        clients: a.clients,
        outstanding: a.outstanding,
        load: if a.no_load { None } else { Some(a.load) },
        keep_dir: a.keep,
    };
    scrape(&cfg)
}

fn sessions_cmd(a: SessionsArgs) -> Result<(), String> {
    let smoke = a.smoke;
    // The held sockets are this process's open files, and as many are the server's.
    let by_limit = zookeeper::bench::sessions::open_file_limit().map_or(19_000, |l| (l.saturating_sub(1_000)) as usize).min(19_000);
    let secs = |v: Option<f64>, full: f64, small: f64| Duration::from_secs_f64(v.unwrap_or(if smoke { small } else { full }));
    let cfg = SessionsConfig {
        programs: ServerPrograms {
            java: a.java.unwrap_or_else(|| DEFAULT_JAVA.into()),
            apache_jars_dir: a.apache_jars.unwrap_or_else(|| DEFAULT_APACHE_JARS_DIR.into()),
            ours: our_server(a.server_bin)?,
        },
        smoke,
        sessions: a.sessions.unwrap_or(if smoke { 300 } else { by_limit }),
        openers: a.openers,
        rounds: a.rounds.unwrap_or(if smoke { 1 } else { 3 }),
        clients: a.clients,
        outstanding: a.outstanding,
        duration: secs(a.duration, 5.0, 0.5),
        warmup: secs(None, 1.0, 0.2),
        idle: secs(None, 2.0, 0.3),
        keep_dir: a.keep,
    };
    sessions(&cfg)
}

fn main() {
    // The client's reconnect warnings would flood the output when a server goes away;
    // failed requests are counted and reported anyway.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,zookeeper::client=error")).init();
    // Without a request timeout a synchronous call (setup, cleanup, the watch writer)
    // waits forever for a server that died; 30 s is far above any healthy reply.
    if system_properties::get("zookeeper.request.timeout").is_none() {
        system_properties::set("zookeeper.request.timeout", "30000");
    }
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run_cmd(a),
        Cmd::Compare(a) => compare_cmd(a),
        Cmd::Election(a) => election_cmd(a),
        Cmd::Ensemble(a) => ensemble_cmd(a),
        Cmd::Scrape(a) => scrape_cmd(a),
        Cmd::Sessions(a) => sessions_cmd(a),
    };
    if let Err(e) = r {
        eprintln!("zk-bench: {e}");
        std::process::exit(1);
    }
}
