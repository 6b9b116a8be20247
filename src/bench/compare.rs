//! `zk-bench compare`: Apache ZooKeeper 3.8 standalone and our `zk-server` side by
//! side, on one machine, with the same zoo.cfg and the same client (ours).
//!
//! Method (docs/benchmarks.md, "zk-bench and bin/zkBench.sh compare"):
//! * start-up: `rounds` fresh starts of each (new dataDir), spawn -> serving; the
//!   servers of the last round stay up for the rest;
//! * every workload: `rounds` rounds; each round runs it against both servers, Apache
//!   first in odd rounds and ours first in even ones, so drift on a shared machine (other
//!   load, thermal, page cache) does not always favour the same side; medians per server;
//! * RSS of both after the load workloads, and after populating `restart_nodes` nodes;
//! * restart: `rounds` x (SIGTERM, wait for the exit, respawn on the same dataDir, time
//!   until getData of the last node succeeds), alternating the order likewise.
//!
//! Ratios are ours / Apache: above 1 means we do more (throughput); below 1 means we
//! take less (latency, time, memory).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::thread;
use std::time::Duration;

use super::servers::{Kind, ManagedServer, ServerPrograms, WorkDir};
use super::tls::TlsOptions;
use super::workload;
use super::{json_f64, json_str, print_title, Percentiles, RunConfig, RunResult, Workload};

/// Parameters of `zk-bench compare`.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub programs: ServerPrograms,
    pub rounds: usize,
    pub smoke: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub clients: usize,
    pub outstanding: usize,
    pub payload: usize,
    pub nodes: usize,
    pub read_ratio: f64,
    pub watchers: usize,
    pub multi_ops: usize,
    pub restart_nodes: usize,
    pub workloads: Vec<Workload>,
    /// Keep the servers' directories (zoo.cfg, dataDir, logs) after a successful run.
    pub keep_dir: bool,
    /// `--tls`: the workloads over a secure client port and the session opening rates
    /// instead of the plain comparison (see [`super::tls`]).
    pub tls: Option<TlsOptions>,
}

const ROOT: &str = "/zkbench";
const RESTART_ROOT: &str = "/zkbench-restart";
/// Payload of the restart measurement's nodes (fixed so restart numbers compare
/// across runs with different `--payload`).
const RESTART_PAYLOAD: usize = 100;
pub(super) const KINDS: [Kind; 2] = [Kind::Apache, Kind::Ours];

impl CompareConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if !self.smoke && self.rounds < 3 {
            return Err(format!(
                "--rounds {} is too few for a median (at least 3); use --smoke for a quick check",
                self.rounds
            ));
        }
        if self.restart_nodes == 0 {
            return Err("--restart-nodes must be at least 1".into());
        }
        if self.workloads.is_empty() {
            return Err("no workloads selected".into());
        }
        if let Some(t) = &self.tls {
            t.validate()?;
        }
        self.run_config(Workload::Get, "127.0.0.1:1".into()).validate()
    }

    pub(super) fn run_config(&self, workload: Workload, server: String) -> RunConfig {
        RunConfig {
            server,
            workload,
            clients: self.clients,
            outstanding: self.outstanding,
            payload: self.payload,
            duration: self.duration,
            warmup: self.warmup,
            nodes: self.nodes,
            read_ratio: self.read_ratio,
            watchers: self.watchers,
            multi_ops: self.multi_ops,
            root: ROOT.into(),
            spread: false,
            probe: None,
        }
    }
}

/// Apache first in rounds 1, 3, ...; ours first in rounds 2, 4, ...
pub(super) fn order(round: usize) -> [Kind; 2] {
    if round.is_multiple_of(2) {
        [Kind::Apache, Kind::Ours]
    } else {
        [Kind::Ours, Kind::Apache]
    }
}

pub(super) fn idx(k: Kind) -> usize {
    match k {
        Kind::Apache => 0,
        Kind::Ours => 1,
    }
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

pub(super) fn ratio(ours: f64, apache: f64) -> f64 {
    if apache > 0.0 {
        ours / apache
    } else {
        f64::NAN
    }
}

pub(super) fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "n/a".into()
    }
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Medians of one measurement's rounds for one server.
#[derive(Clone, Copy, Default)]
pub(super) struct Med {
    /// Of [`Round::per_s`]: throughput, or sessions opened per second.
    pub(super) throughput: f64,
    pub(super) p50: f64,
    pub(super) p99: f64,
    pub(super) p999: f64,
    pub(super) errors: u64,
}

/// What the round tables, medians and JSON read of one server's run in one round.
pub(super) struct Figures<'a> {
    /// Completions per second in the measured window.
    pub(super) per_s: f64,
    pub(super) latency: &'a Percentiles,
    pub(super) errors: u64,
    pub(super) first_error: Option<&'a str>,
    /// Notes that make the run suspect besides its errors (flagged with them).
    pub(super) warnings: Vec<&'a str>,
}

/// One server's run in one round: a workload run ([`RunResult`]) or `compare --tls`'s
/// session-opening run.
pub(super) trait Round {
    fn figures(&self) -> Figures<'_>;
}

impl Round for RunResult {
    fn figures(&self) -> Figures<'_> {
        let warnings = self.notes.iter().filter(|n| n.starts_with("WARNING") || n.starts_with("stopped early")).map(String::as_str).collect();
        Figures { per_s: self.throughput(), latency: &self.latency, errors: self.errors, first_error: self.first_error.as_deref(), warnings }
    }
}

pub(super) fn medians<R: Round>(runs: &[R]) -> Med {
    let figures: Vec<Figures> = runs.iter().map(Round::figures).collect();
    let m = |f: &dyn Fn(&Figures) -> f64| median(&figures.iter().map(f).collect::<Vec<_>>());
    Med {
        throughput: m(&|r| r.per_s),
        p50: m(&|r| r.latency.p50_us as f64),
        p99: m(&|r| r.latency.p99_us as f64),
        p999: m(&|r| r.latency.p999_us as f64),
        errors: figures.iter().map(|r| r.errors).sum(),
    }
}

/// Runs the comparison, printing tables as it goes and a JSON line at the end. On
/// failure the servers' directories (logs, zoo.cfg, dataDir) are kept and named.
pub fn compare(cfg: &CompareConfig) -> Result<(), String> {
    cfg.validate()?;
    cfg.programs.check()?;
    if let Some(t) = &cfg.tls {
        cfg.programs.check_jars(&super::tls::NETTY_JARS)?;
        return in_work_dir("zk-bench-tls", cfg.keep_dir, |work| super::tls::compare_tls_in(cfg, t, work));
    }
    in_work_dir("zk-bench", cfg.keep_dir, |work| compare_in(cfg, work))
}

/// Runs `f` in a new temp directory `<prefix>-...`, removed afterwards unless `keep`;
/// kept, and its logs named in the error, when `f` fails.
pub fn in_work_dir(prefix: &str, keep: bool, f: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    let mut work = WorkDir::new(prefix)?;
    let r = f(work.path());
    if r.is_ok() && keep {
        work.keep();
        eprintln!("zk-bench: server directories and logs kept in {}", work.path().display());
    }
    if let Err(e) = r {
        work.keep();
        let logs = list_logs(work.path());
        return Err(format!(
            "{e}\nServer directories (zoo.cfg, data, logs) are kept in {}; logs:\n  {}",
            work.path().display(),
            if logs.is_empty() { "(none)".to_string() } else { logs.join("\n  ") }
        ));
    }
    Ok(())
}

pub(super) fn list_logs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                out.extend(list_logs(&p));
            } else if p.extension().is_some_and(|x| x == "log") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Both servers, indexed by [`idx`].
pub(super) struct Servers {
    pub(super) s: [ManagedServer; 2],
}

impl Servers {
    pub(super) fn get(&mut self, k: Kind) -> &mut ManagedServer {
        &mut self.s[idx(k)]
    }
    pub(super) fn at(&self, k: Kind) -> &ManagedServer {
        &self.s[idx(k)]
    }
    pub(super) fn check_alive(&mut self) -> Result<(), String> {
        for s in self.s.iter_mut() {
            s.check_alive()?;
        }
        Ok(())
    }
    pub(super) fn rss(&self) -> Result<[u64; 2], String> {
        let mut out = [0; 2];
        for k in KINDS {
            out[idx(k)] = self.s[idx(k)].rss_kib()?.0;
        }
        Ok(out)
    }
}

fn compare_in(cfg: &CompareConfig, work: &Path) -> Result<(), String> {
    let idle = if cfg.smoke { Duration::from_millis(300) } else { Duration::from_secs(2) };
    print_header(cfg, work);

    // ---- start-up: fresh servers each round; the last round's keep running.
    let mut startup: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut startup_mode: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut kept: [Option<ManagedServer>; 2] = [None, None];
    for round in 0..cfg.rounds {
        for k in order(round) {
            if let Some(mut old) = kept[idx(k)].take() {
                old.kill();
                let _ = std::fs::remove_dir_all(old.dir());
            }
            let dir = work.join(format!("{}-{}", k.name(), round + 1));
            let (srv, took) = ManagedServer::start(k, &cfg.programs, dir)?;
            eprintln!(
                "  [start-up round {}] {}: {:.0} ms (srvr Mode after {:.0} ms; pid {}, {})",
                round + 1,
                k.name(),
                ms(took.serving),
                ms(took.mode),
                srv.pid().unwrap_or(0),
                srv.connect_string()
            );
            startup[idx(k)].push(ms(took.serving));
            startup_mode[idx(k)].push(ms(took.mode));
            kept[idx(k)] = Some(srv);
        }
    }
    let [Some(apache), Some(ours)] = kept else {
        return Err("internal error: a server of the last start-up round is missing".into());
    };
    let mut servers = Servers { s: [apache, ours] };
    println!("\n== start-up: spawn -> ruok=imok, srvr Mode, getData \"/\" with a new session (ms; fresh dataDir each round) ==");
    println!("{:<8} {:>12} {:>12} {:>18} {:>18}", "round", "apache", "ours", "apache srvr Mode", "ours srvr Mode");
    for r in 0..cfg.rounds {
        println!("{:<8} {:>12.0} {:>12.0} {:>18.0} {:>18.0}", r + 1, startup[0][r], startup[1][r], startup_mode[0][r], startup_mode[1][r]);
    }
    let startup_med = [median(&startup[0]), median(&startup[1])];
    let startup_mode_med = [median(&startup_mode[0]), median(&startup_mode[1])];
    println!(
        "{:<8} {:>12.0} {:>12.0} {:>18.0} {:>18.0}   ratio ours/apache {} (srvr Mode: {})",
        "median",
        startup_med[0],
        startup_med[1],
        startup_mode_med[0],
        startup_mode_med[1],
        fmt_ratio(ratio(startup_med[1], startup_med[0])),
        fmt_ratio(ratio(startup_mode_med[1], startup_mode_med[0]))
    );
    for k in KINDS {
        let s = servers.at(k);
        println!("{} server: {} (log {})", k.name(), s.connect_string(), s.log_path().display());
    }

    // ---- workloads
    let mut results: HashMap<Workload, [Vec<RunResult>; 2]> = HashMap::new();
    for &w in &cfg.workloads {
        let (runs, firsts) = run_rounds(cfg, &mut servers, w, &|s: &ManagedServer| s.connect_string())?;
        print_workload(cfg, w, &runs, &firsts);
        results.insert(w, runs);
    }

    // ---- RSS after the load workloads
    thread::sleep(idle);
    servers.check_alive()?;
    let rss_load = servers.rss()?;

    // ---- restart with N nodes
    let mut populate_rate = [0.0; 2];
    let mut last_node = String::new();
    for k in KINDS {
        let s = servers.get(k);
        let (last, rate) = workload::populate(&s.connect_string(), RESTART_ROOT, cfg.restart_nodes, RESTART_PAYLOAD, cfg.clients, cfg.outstanding)
            .map_err(|e| format!("restart measurement on {}: {e}", k.name()))?;
        eprintln!("  [restart] populated {} with {} nodes: {rate:.0} creates/s", k.name(), cfg.restart_nodes);
        populate_rate[idx(k)] = rate;
        last_node = last;
    }
    thread::sleep(idle);
    servers.check_alive()?;
    let rss_populated = servers.rss()?;
    let mut restart: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut restart_mode: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut stop: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..cfg.rounds {
        for k in order(round) {
            let s = servers.get(k);
            let stopped = s.stop_term()?;
            let took = s.respawn_and_wait(&last_node)?;
            eprintln!(
                "  [restart round {}] {}: exit after SIGTERM {:.0} ms, spawn -> serving {:.0} ms (srvr Mode after {:.0} ms)",
                round + 1,
                k.name(),
                ms(stopped),
                ms(took.serving),
                ms(took.mode)
            );
            stop[idx(k)].push(ms(stopped));
            restart[idx(k)].push(ms(took.serving));
            restart_mode[idx(k)].push(ms(took.mode));
        }
    }
    thread::sleep(idle);
    servers.check_alive()?;
    let rss_restarted = servers.rss()?;
    print_restart(cfg, &restart, &restart_mode, &stop, &populate_rate, &last_node);
    println!("\n== memory (VmRSS) ==");
    println!("{:<46} {:>12} {:>12} {:>8}", "", "apache", "ours", "ratio");
    for (label, v) in [
        ("after the load workloads".to_string(), rss_load),
        (format!("after populating {} nodes", cfg.restart_nodes), rss_populated),
        (format!("after the restarts ({} nodes)", cfg.restart_nodes), rss_restarted),
    ] {
        println!("{:<46} {:>8.1} MiB {:>8.1} MiB {:>8}", label, mib(v[0]), mib(v[1]), fmt_ratio(ratio(v[1] as f64, v[0] as f64)));
    }

    // ---- final table and JSON
    let times = Times {
        startup: startup_med,
        startup_mode: startup_mode_med,
        restart: [median(&restart[0]), median(&restart[1])],
        restart_mode: [median(&restart_mode[0]), median(&restart_mode[1])],
        stop: [median(&stop[0]), median(&stop[1])],
        populate: populate_rate,
    };
    let rss = [rss_load, rss_populated, rss_restarted];
    print_final(cfg, &results, &times, rss);
    println!("{}", summary_json(cfg, &results, &times, rss));
    drop(servers);
    Ok(())
}

/// Runs per server ([`idx`]) and which server went first in each round.
pub(super) type RoundRuns<R> = ([Vec<R>; 2], Vec<Kind>);

/// `rounds` rounds against both servers, the first one alternating ([`order`]):
/// `measure` gives one server's run; both servers are checked alive before it and that
/// one after it, and each run is logged to stderr as
/// `  [<label> round i/n] <server> <rate> <unit>/s  p99 .. us  errors ..`, the rate
/// `width` wide.
pub(super) fn alternate_rounds<R: Round>(
    rounds: usize,
    servers: &mut Servers,
    (label, unit, width): (&str, &str, usize),
    mut measure: impl FnMut(&mut Servers, Kind) -> Result<R, String>,
) -> Result<RoundRuns<R>, String> {
    let mut runs: [Vec<R>; 2] = [Vec::new(), Vec::new()];
    let mut firsts = Vec::new();
    for round in 0..rounds {
        firsts.push(order(round)[0]);
        for k in order(round) {
            servers.check_alive()?;
            let r = measure(servers, k)?;
            servers.get(k).check_alive().map_err(|e| format!("during {label}: {e}"))?;
            let f = r.figures();
            eprintln!(
                "  [{label} round {}/{rounds}] {:<6} {:>width$.0} {unit}/s  p99 {} us  errors {}",
                round + 1,
                k.name(),
                f.per_s,
                f.latency.p99_us,
                f.errors
            );
            runs[idx(k)].push(r);
        }
    }
    Ok((runs, firsts))
}

/// `cfg.rounds` rounds of workload `w` against both servers ([`alternate_rounds`]), each
/// at the connect string `target` gives for it.
pub(super) fn run_rounds(cfg: &CompareConfig, servers: &mut Servers, w: Workload, target: &dyn Fn(&ManagedServer) -> String) -> Result<RoundRuns<RunResult>, String> {
    alternate_rounds(cfg.rounds, servers, (w.name(), w.unit(), 10), |servers, k| {
        let mut rc = cfg.run_config(w, target(servers.at(k)));
        if cfg.smoke && w == Workload::Churn {
            // One session costs about a second with the current client (it waits
            // before its first connect attempt), so a 1 s smoke window after a
            // warm-up could start no session at all.
            rc.warmup = Duration::ZERO;
        }
        super::run(&rc).map_err(|e| {
            // A server that died explains the failure better than the symptom.
            let dead = servers.get(k).check_alive().err().map(|d| format!("\n{d}")).unwrap_or_default();
            format!("{w} on {}: {e}{dead}", k.name())
        })
    })
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_header(cfg: &CompareConfig, work: &Path) {
    print_title("zk-bench compare: Apache ZooKeeper 3.8 vs zookeeper-rs zk-server (standalone)", cfg.smoke);
    println!("{}", rounds_line(cfg));
    println!(
        "  key space {} nodes; mixed read ratio {}; multi of {} setData; {} watchers; restart with {} nodes",
        cfg.nodes, cfg.read_ratio, cfg.multi_ops, cfg.watchers, cfg.restart_nodes
    );
    println!("  apache: {}", cfg.programs.describe(Kind::Apache));
    println!("  ours:   {}", cfg.programs.describe(Kind::Ours));
    println!("  zoo.cfg (both): tickTime=2000 dataDir=<fresh> clientPort=<free> clientPortAddress=127.0.0.1 maxClientCnxns=0 admin.enableServer=false 4lw.commands.whitelist=*");
    println!("  durability: default for both (txn log fsynced per commit batch, forceSync=yes)");
    println!("  client: zookeeper-rs's own client library for both servers; work dir {}", work.display());
}

/// The header line of the rounds, windows, sessions and payload.
pub(super) fn rounds_line(cfg: &CompareConfig) -> String {
    let CompareConfig { rounds, clients, outstanding, payload, .. } = cfg;
    let (warmup, duration) = (cfg.warmup.as_secs_f64(), cfg.duration.as_secs_f64());
    format!("  {rounds} rounds; per workload and server: warm-up {warmup:.1} s + {duration:.1} s measured; {clients} clients x {outstanding} outstanding; payload {payload} B")
}

pub(super) fn describe(cfg: &CompareConfig, w: Workload) -> String {
    match w {
        Workload::Create => format!("create of new persistent nodes, {} B", cfg.payload),
        Workload::Set => format!("setData of {} nodes, {} B", cfg.nodes, cfg.payload),
        Workload::Get => format!("getData of {} nodes of {} B", cfg.nodes, cfg.payload),
        Workload::Delete => "delete of pre-created nodes".into(),
        Workload::Mixed => format!("{:.0}% getData / {:.0}% setData over {} nodes", cfg.read_ratio * 100.0, (1.0 - cfg.read_ratio) * 100.0, cfg.nodes),
        Workload::Multi => format!("multi of {} setData, {} B each", cfg.multi_ops, cfg.payload),
        Workload::Watch => format!("1 writer, {} watchers: write -> notification latency", cfg.watchers),
        Workload::Churn => format!("{} clients: session connect + close", cfg.clients),
    }
}

fn print_workload(cfg: &CompareConfig, w: Workload, runs: &[Vec<RunResult>; 2], firsts: &[Kind]) {
    print_workload_rounds(&format!("{w}: {} ({} rounds x {:.1} s, latency in us)", describe(cfg, w), cfg.rounds, cfg.duration.as_secs_f64()), w, runs, firsts);
}

/// The table of one workload's rounds for both servers, the medians, the ratios and
/// warnings about errors; `title` heads it. Also used by `ensemble` and `compare --tls`.
pub(super) fn print_workload_rounds(title: &str, w: Workload, runs: &[Vec<RunResult>; 2], firsts: &[Kind]) {
    let unit = format!("{}/s", w.unit());
    let col = if unit.len() > 5 { "thr" } else { &unit };
    let heads = [format!("apache {col}"), format!("ours {col}")];
    let text = RoundsText { title, heads: [&heads[0], &heads[1], "thr o/a"], label: w.name(), measure: "throughput", unit: &unit };
    print_rounds(&text, runs, firsts);
    for k in KINDS {
        for (r, run) in runs[idx(k)].iter().enumerate() {
            for n in run.notes.iter().filter(|n| n.starts_with("all ")) {
                println!("  note: {} round {}: {n}", k.name(), r + 1);
            }
        }
    }
}

/// The words of a rounds table ([`print_rounds`]).
pub(super) struct RoundsText<'a> {
    /// Printed as `== <title> ==` above the table.
    pub(super) title: &'a str,
    /// Heads of Apache's and our per-second columns and of the ratio column.
    pub(super) heads: [&'a str; 3],
    /// The summary line below: `<label>: <measure> ours/apache .., p99 ours/apache ..
    /// (<unit>; errors: ..)`, `unit` as `ops/s`.
    pub(super) label: &'a str,
    pub(super) measure: &'a str,
    pub(super) unit: &'a str,
}

/// One measurement's rounds for both servers: per round which went first, the rate
/// and latency percentiles of each and their ratio; the medians; a summary line; and a
/// warning per run with errors or [`Round::warnings`].
pub(super) fn print_rounds<R: Round>(text: &RoundsText, runs: &[Vec<R>; 2], firsts: &[Kind]) {
    let [apache_head, ours_head, ratio_head] = text.heads;
    println!("\n== {} ==", text.title);
    println!(
        "{:<7} {:<7} {:>12} {:>8} {:>8} {:>8} | {:>12} {:>8} {:>8} {:>8} | {:>7}",
        "round", "first", apache_head, "p50", "p99", "p99.9", ours_head, "p50", "p99", "p99.9", ratio_head
    );
    for (r, (a, o)) in runs[0].iter().zip(runs[1].iter()).enumerate() {
        let (a, o) = (a.figures(), o.figures());
        println!(
            "{:<7} {:<7} {:>12.0} {:>8} {:>8} {:>8} | {:>12.0} {:>8} {:>8} {:>8} | {:>7}",
            r + 1,
            firsts.get(r).map(|k| k.name()).unwrap_or(""),
            a.per_s,
            a.latency.p50_us,
            a.latency.p99_us,
            a.latency.p999_us,
            o.per_s,
            o.latency.p50_us,
            o.latency.p99_us,
            o.latency.p999_us,
            fmt_ratio(ratio(o.per_s, a.per_s))
        );
    }
    let (a, o) = (medians(&runs[0]), medians(&runs[1]));
    println!(
        "{:<15} {:>12.0} {:>8.0} {:>8.0} {:>8.0} | {:>12.0} {:>8.0} {:>8.0} {:>8.0} | {:>7}",
        "median",
        a.throughput,
        a.p50,
        a.p99,
        a.p999,
        o.throughput,
        o.p50,
        o.p99,
        o.p999,
        fmt_ratio(ratio(o.throughput, a.throughput))
    );
    println!(
        "{}: {} ours/apache {}, p99 ours/apache {} ({}; errors: apache {}, ours {})",
        text.label,
        text.measure,
        fmt_ratio(ratio(o.throughput, a.throughput)),
        fmt_ratio(ratio(o.p99, a.p99)),
        text.unit,
        a.errors,
        o.errors
    );
    for k in KINDS {
        for (r, run) in runs[idx(k)].iter().enumerate() {
            let f = run.figures();
            if f.errors > 0 || !f.warnings.is_empty() {
                println!(
                    "  WARNING: {} round {}: {} errors (first: {}){}",
                    k.name(),
                    r + 1,
                    f.errors,
                    f.first_error.unwrap_or("-"),
                    f.warnings.iter().map(|n| format!("; {n}")).collect::<String>()
                );
            }
        }
    }
}

/// Medians of the timed lifecycle measurements, [apache, ours].
struct Times {
    startup: [f64; 2],
    startup_mode: [f64; 2],
    restart: [f64; 2],
    restart_mode: [f64; 2],
    stop: [f64; 2],
    populate: [f64; 2],
}

fn print_restart(cfg: &CompareConfig, restart: &[Vec<f64>; 2], mode: &[Vec<f64>; 2], stop: &[Vec<f64>; 2], populate: &[f64; 2], last: &str) {
    println!(
        "\n== restart with {} nodes of {RESTART_PAYLOAD} B: SIGTERM, wait for exit, respawn on the same dataDir, until getData {last} succeeds with a new session (ms) ==",
        cfg.restart_nodes
    );
    println!("populate (pipelined creates/s): apache {:.0}, ours {:.0}", populate[0], populate[1]);
    println!(
        "{:<8} {:>10} {:>10} {:>17} {:>17} {:>12} {:>12}",
        "round", "apache", "ours", "apache srvr Mode", "ours srvr Mode", "apache exit", "ours exit"
    );
    let n = restart[0].len().min(restart[1].len());
    for r in 0..n {
        println!(
            "{:<8} {:>10.0} {:>10.0} {:>17.0} {:>17.0} {:>12.0} {:>12.0}",
            r + 1,
            restart[0][r],
            restart[1][r],
            mode[0][r],
            mode[1][r],
            stop[0][r],
            stop[1][r]
        );
    }
    let (a, o) = (median(&restart[0]), median(&restart[1]));
    println!(
        "{:<8} {:>10.0} {:>10.0} {:>17.0} {:>17.0} {:>12.0} {:>12.0}   ratio ours/apache {}",
        "median",
        a,
        o,
        median(&mode[0]),
        median(&mode[1]),
        median(&stop[0]),
        median(&stop[1]),
        fmt_ratio(ratio(o, a))
    );
}

fn print_final(cfg: &CompareConfig, results: &HashMap<Workload, [Vec<RunResult>; 2]>, t: &Times, rss: [[u64; 2]; 3]) {
    println!(
        "\n== ratios ours/Apache (medians of {} rounds; throughput: >1 = ours faster; latency, time, memory: <1 = ours better) ==",
        cfg.rounds
    );
    println!("{:>8}  {:<44} {:>12} {:>12}", "ratio", "metric", "apache", "ours");
    let row = |label: &str, a: f64, o: f64, decimals: usize| {
        println!("{:>8}  {:<44} {:>12.*} {:>12.*}", fmt_ratio(ratio(o, a)), label, decimals, a, decimals, o);
    };
    for &w in &cfg.workloads {
        let Some(runs) = results.get(&w) else { continue };
        let (a, o) = (medians(&runs[0]), medians(&runs[1]));
        row(&format!("{w} throughput ({}/s)", w.unit()), a.throughput, o.throughput, 0);
        row(&format!("{w} p99 latency (us)"), a.p99, o.p99, 0);
    }
    row("start-up (ms)", t.startup[0], t.startup[1], 0);
    row("start-up to srvr Mode (ms)", t.startup_mode[0], t.startup_mode[1], 0);
    row(&format!("restart with {} nodes (ms)", cfg.restart_nodes), t.restart[0], t.restart[1], 0);
    row(&format!("restart with {} nodes to srvr Mode (ms)", cfg.restart_nodes), t.restart_mode[0], t.restart_mode[1], 0);
    row("exit after SIGTERM (ms)", t.stop[0], t.stop[1], 0);
    row("RSS after load workloads (MiB)", mib(rss[0][0]), mib(rss[0][1]), 1);
    row(&format!("RSS after populating {} nodes (MiB)", cfg.restart_nodes), mib(rss[1][0]), mib(rss[1][1]), 1);
    row("RSS after the restarts (MiB)", mib(rss[2][0]), mib(rss[2][1]), 1);
    println!("{:>8}  ensemble (3-server quorum) rows: standalone servers here; see `zk-bench ensemble`", "-");
}

fn summary_json(cfg: &CompareConfig, results: &HashMap<Workload, [Vec<RunResult>; 2]>, t: &Times, rss: [[u64; 2]; 3]) -> String {
    let mut s = format!("{{\"bench\":\"zk-bench-compare\"{}", params_json(cfg));
    let _ = write!(s, ",\"watchers\":{},\"multi_ops\":{},\"read_ratio\":{}", cfg.watchers, cfg.multi_ops, json_f64(cfg.read_ratio, 3));
    s.push_str(",\"workloads\":{");
    let mut first = true;
    for &w in &cfg.workloads {
        let Some(runs) = results.get(&w) else { continue };
        if !first {
            s.push(',');
        }
        first = false;
        s.push_str(&workload_json(w, runs));
    }
    s.push('}');
    let _ = write!(s, ",\"startup_ms\":{}", pair_json(t.startup[0], t.startup[1], 0));
    let _ = write!(s, ",\"startup_mode_ms\":{}", pair_json(t.startup_mode[0], t.startup_mode[1], 0));
    let _ = write!(
        s,
        ",\"restart_ms\":{{\"nodes\":{},\"apache\":{},\"ours\":{},\"ratio\":{}}}",
        cfg.restart_nodes,
        json_f64(t.restart[0], 0),
        json_f64(t.restart[1], 0),
        json_f64(ratio(t.restart[1], t.restart[0]), 3)
    );
    let _ = write!(s, ",\"restart_mode_ms\":{}", pair_json(t.restart_mode[0], t.restart_mode[1], 0));
    let _ = write!(s, ",\"stop_ms\":{}", pair_json(t.stop[0], t.stop[1], 0));
    let _ = write!(s, ",\"populate_per_s\":{}", pair_json(t.populate[0], t.populate[1], 0));
    let _ = write!(
        s,
        ",\"rss_kib\":{{\"after_load\":{},\"after_populate\":{},\"after_restart\":{}}}",
        pair_json(rss[0][0] as f64, rss[0][1] as f64, 0),
        pair_json(rss[1][0] as f64, rss[1][1] as f64, 0),
        pair_json(rss[2][0] as f64, rss[2][1] as f64, 0)
    );
    s.push_str(",\"ensemble\":\"see zk-bench ensemble\"}");
    s
}

/// `,"smoke":..,"rounds":..,"duration_s":..,"warmup_s":..,"clients":..,"outstanding":..,"payload":..,"nodes":..`:
/// the JSON members of the parameters every comparison of workloads has.
pub(super) fn params_json(cfg: &CompareConfig) -> String {
    let CompareConfig { smoke, rounds, clients, outstanding, payload, nodes, .. } = cfg;
    let (duration, warmup) = (json_f64(cfg.duration.as_secs_f64(), 3), json_f64(cfg.warmup.as_secs_f64(), 3));
    format!(
        ",\"smoke\":{smoke},\"rounds\":{rounds},\"duration_s\":{duration},\"warmup_s\":{warmup},\"clients\":{clients},\"outstanding\":{outstanding},\"payload\":{payload},\"nodes\":{nodes}"
    )
}

/// `{"apache":..,"ours":..,"ratio":..}` with `d` decimals (the ratio ours/Apache with 3).
pub(super) fn pair_json(apache: f64, ours: f64, d: usize) -> String {
    format!("{{\"apache\":{},\"ours\":{},\"ratio\":{}}}", json_f64(apache, d), json_f64(ours, d), json_f64(ratio(ours, apache), 3))
}

/// `"<workload>":{"unit":..,"apache":{..},"ours":{..},"throughput_ratio":..,"p99_ratio":..}`
/// from the medians of the rounds. Also used by `ensemble` and `compare --tls`.
pub(super) fn workload_json(w: Workload, runs: &[Vec<RunResult>; 2]) -> String {
    format!("{}:{{\"unit\":{},{}}}", json_str(w.name()), json_str(w.unit()), sides_json(runs, "throughput", "throughput_ratio"))
}

/// `"apache":{"<rate>":..,"p50_us":..,"p99_us":..,"p999_us":..,"errors":..},"ours":{..},"<rate_ratio>":..,"p99_ratio":..`
/// from the medians of both servers' rounds: `rate` names the per-second figure and
/// `rate_ratio` its ratio ours/Apache (`throughput`, `throughput_ratio` for workloads).
pub(super) fn sides_json<R: Round>(runs: &[Vec<R>; 2], rate: &str, rate_ratio: &str) -> String {
    let m = [medians(&runs[0]), medians(&runs[1])];
    let side = |m: &Med| {
        format!(
            "{{{}:{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"errors\":{}}}",
            json_str(rate),
            json_f64(m.throughput, 1),
            json_f64(m.p50, 0),
            json_f64(m.p99, 0),
            json_f64(m.p999, 0),
            m.errors
        )
    };
    format!(
        "\"apache\":{},\"ours\":{},{}:{},\"p99_ratio\":{}",
        side(&m[0]),
        side(&m[1]),
        json_str(rate_ratio),
        json_f64(ratio(m[1].throughput, m[0].throughput), 3),
        json_f64(ratio(m[1].p99, m[0].p99), 3)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn rounds_alternate_the_first_server() {
        assert_eq!(order(0)[0], Kind::Apache);
        assert_eq!(order(1)[0], Kind::Ours);
        assert_eq!(order(2)[0], Kind::Apache);
    }
}
