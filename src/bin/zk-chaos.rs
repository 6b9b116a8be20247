//! `zk-chaos`: fault injection against a live ensemble (ours, Apache's, or a mix) with
//! a linearizability checker (logic in `zookeeper::chaos`; docs/reliability.md).
//!
//! `zk-chaos --layout rust2-java1 --duration 1800 --seed 7` starts the ensemble in a
//! temporary directory, runs clients while the nemesis kills, pauses and cuts off peers,
//! heals, checks, prints the report and exits 0 only if every check passed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use zookeeper::bench::servers::{ServerPrograms, DEFAULT_APACHE_JARS_DIR, DEFAULT_JAVA};
use zookeeper::chaos::cluster::NetMode;
use zookeeper::chaos::nemesis::FaultKind;
use zookeeper::chaos::{netns, parse_layout, run, ChaosConfig};

#[derive(Parser)]
#[command(name = "zk-chaos", version, about = "Fault injection and linearizability checking for ZooKeeper ensembles (ours, Apache's, mixed)")]
struct Cli {
    /// rust3, rust5, rust2-java1, java2-rust1, java3, java5, or a list such as ours,apache,ours
    #[arg(long, default_value = "rust3")]
    layout: String,
    /// Seconds of load under faults.
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Registers live at a time.
    #[arg(long, default_value_t = 4)]
    registers: usize,
    /// Seconds after which clients move to fresh registers (keeps each key's history
    /// small enough for the exhaustive search).
    #[arg(long, default_value_t = 10.0)]
    epoch: f64,
    /// Faults (comma-separated): kill, pause, partition.
    #[arg(long, value_delimiter = ',', default_value = "kill,pause,partition")]
    faults: Vec<String>,
    /// Client session timeout (ms).
    #[arg(long, default_value_t = 4000)]
    session_timeout: i32,
    /// Also check the sync+getData reads for linearizability (upstream does not promise
    /// it across leader changes; see docs/reliability.md).
    #[arg(long)]
    check_reads: bool,
    /// netns: one network namespace per peer, cuts are full partitions (needs root and
    /// iproute2); proxy: link proxies on loopback (no root; election callbacks bypass
    /// them); auto: netns where possible.
    #[arg(long, default_value = "auto")]
    net: String,
    /// Seed of the fault schedule and the clients' choices [default: the time].
    #[arg(long)]
    seed: Option<u64>,
    /// Keep the ensemble directory (always kept when a check fails).
    #[arg(long)]
    keep: bool,
    /// Ensemble directory [default: a new temporary one].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Our server binary [default: zk-server next to this zk-chaos].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    #[arg(long, default_value = DEFAULT_JAVA)]
    java: PathBuf,
    /// Directory with zookeeper.jar, zookeeper-jute.jar, slf4j-api.jar, slf4j-simple.jar.
    #[arg(long, default_value = DEFAULT_APACHE_JARS_DIR)]
    apache_jars: PathBuf,
}

fn config(a: Cli) -> Result<ChaosConfig, String> {
    let ours = match a.server_bin {
        Some(p) => std::fs::canonicalize(&p).unwrap_or(p),
        None => std::env::current_exe().map_err(|e| format!("cannot find zk-chaos's own path (pass --server-bin): {e}"))?.with_file_name("zk-server"),
    };
    let secs = |name: &str, v: f64| Duration::try_from_secs_f64(v).map_err(|_| format!("--{name} must be a non-negative number of seconds, not {v}"));
    let faults = a.faults.iter().map(|f| FaultKind::parse(f.trim())).collect::<Result<Vec<_>, _>>()?;
    let net = match NetMode::parse(&a.net)? {
        Some(m) => m,
        None => {
            let (m, why) = NetMode::auto();
            if let Some(why) = why {
                eprintln!("zk-chaos: --net auto: using link proxies, not namespaces: {why}; cuts will not stop election callbacks");
            }
            m
        }
    };
    let seed = a.seed.unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1));
    Ok(ChaosConfig {
        programs: ServerPrograms { java: a.java, apache_jars_dir: a.apache_jars, ours },
        layout: parse_layout(&a.layout)?,
        duration: secs("duration", a.duration)?,
        clients: a.clients,
        registers: a.registers,
        epoch: secs("epoch", a.epoch)?,
        faults,
        session_timeout_ms: a.session_timeout,
        check_reads: a.check_reads,
        net,
        seed,
        keep_dir: a.keep,
        dir: a.dir,
    })
}

/// Blocks SIGINT, SIGTERM and SIGHUP in every thread (done first, so the threads
/// started later inherit the mask; peers get a clean mask from `Command`) and waits for
/// them on a thread of their own, which kills the peers and removes the namespaces and
/// the temporary directory before exiting: neither would go away with the process.
fn handle_signals() {
    // SAFETY: sigset manipulation on a local set, then pthread_sigmask of this thread.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            log::warn!("cannot block signals; an interrupted run may leave namespaces behind");
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("ChaosSignals".into()).spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid signal set and `sig` a valid out pointer.
        while unsafe { libc::sigwait(&set, &mut sig) } != 0 {}
        eprintln!("zk-chaos: signal {sig}: stopping the peers and removing the network");
        netns::cleanup_on_signal();
        std::process::exit(128 + sig);
    });
    if let Err(e) = spawned {
        log::warn!("cannot start the signal thread: {e}");
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    handle_signals();
    let cfg = match config(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zk-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&cfg) {
        Ok(rep) => {
            print!("{}", rep.text);
            for i in &rep.inconclusive {
                println!("inconclusive: {i}");
            }
            if let Some(d) = &rep.dir {
                println!("kept: {}", d.display());
            }
            if rep.passed() {
                println!("PASS: {} faults, {} ops ({} ok, {} unknown), no violation", rep.faults, rep.ops, rep.ok, rep.unknown);
                ExitCode::SUCCESS
            } else {
                println!("FAIL: {} finding(s)", rep.findings.len());
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("zk-chaos: {e}");
            ExitCode::from(2)
        }
    }
}
