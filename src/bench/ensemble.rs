//! `zk-bench ensemble`: a 3-node Apache ZooKeeper 3.8 ensemble (`QuorumPeerMain`) and a
//! 3-node ensemble of our `zk-server`, side by side in one run, with the same zoo.cfg
//! scheme (that of `zk-bench election`: tickTime, initLimit, syncLimit, default
//! durability) and the same load.
//!
//! Method (docs/benchmarks.md, "Ensembles"):
//! * **start**: both ensembles are started once (fresh dataDirs) and run for the whole
//!   benchmark; only one is loaded at a time.
//! * **workloads** (get, set, create, mixed by default): as `compare`, `rounds` rounds,
//!   Apache first in odd rounds and ours first in even ones, medians per side; the
//!   client sessions are spread over the nodes, client i connected to node i mod n only
//!   (reads are served by that node, writes forwarded to the leader).
//! * **RSS** of every node of both ensembles after the load workloads (and a short idle),
//!   compared role by role (leader with leader, followers in sid order).
//! * **failover**: per round and side (alternating), a set (or create) load with every
//!   session holding the whole ensemble in its connect string; once it runs, kill -9 of
//!   the leader; measured from the instant before the kill: the first successful write
//!   *submitted* after the kill (any session), every session's first such write, and,
//!   from the logs and `srvr` as `election` reads them, every survivor decided and the
//!   new leader serving. The old leader is restarted and must rejoin (and every node
//!   serve) before the next round.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::compare::{fmt_ratio, list_logs, median, medians, mib, print_workload_rounds, ratio, workload_json};
use super::election::{idx, max, ms, order, threads_of, Cluster, APACHE_LOG_FLAGS, OURS_RUST_LOG, QUORUM_PEER_MAIN};
use super::servers::{rss_kib, Kind, ServerPrograms, WorkDir, APACHE_JVM_FLAGS};
use super::{json_f64, json_str, print_title, FailoverProbe, RunConfig, RunResult, Workload};

const KINDS: [Kind; 2] = [Kind::Apache, Kind::Ours];
const ROOT: &str = "/zkbench";
const FAILOVER_ROOT: &str = "/zkbench-failover";

/// The workloads `ensemble` runs unless told otherwise.
pub const DEFAULT_WORKLOADS: [Workload; 4] = [Workload::Get, Workload::Set, Workload::Create, Workload::Mixed];

/// Parameters of `zk-bench ensemble`.
#[derive(Debug, Clone)]
pub struct EnsembleConfig {
    pub programs: ServerPrograms,
    /// Voters per ensemble.
    pub size: usize,
    /// Rounds per workload (alternating which side goes first).
    pub rounds: usize,
    pub smoke: bool,
    pub duration: Duration,
    pub warmup: Duration,
    pub clients: usize,
    pub outstanding: usize,
    pub payload: usize,
    pub nodes: usize,
    pub read_ratio: f64,
    pub workloads: Vec<Workload>,
    pub tick_time: u32,
    /// Load of the failover measurement: set or create.
    pub failover_workload: Workload,
    /// Kills per side.
    pub failover_rounds: usize,
    /// How long the failover load runs before the kill.
    pub failover_load: Duration,
    /// After the first write following a kill, how long to wait for every session to
    /// write again.
    pub failover_settle: Duration,
    /// Longest wait for an election, for serving, and for the first write after a kill.
    pub timeout: Duration,
    /// Idle time before RSS is read.
    pub idle: Duration,
    pub keep_dir: bool,
}

impl EnsembleConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.size < 3 {
            return Err(format!("--size must be at least 3 (an ensemble that survives a leader kill), not {}", self.size));
        }
        if self.rounds == 0 || self.failover_rounds == 0 {
            return Err("--rounds and --failover-rounds must be at least 1".into());
        }
        if !self.smoke && (self.rounds < 3 || self.failover_rounds < 3) {
            return Err(format!(
                "--rounds {} / --failover-rounds {}: too few for a median (at least 3); use --smoke for a quick check",
                self.rounds, self.failover_rounds
            ));
        }
        if self.workloads.is_empty() {
            return Err("no workloads selected".into());
        }
        if !matches!(self.failover_workload, Workload::Set | Workload::Create) {
            return Err(format!("--failover-workload must be set or create, not {}", self.failover_workload));
        }
        if self.tick_time == 0 {
            return Err("--tick-time must be positive".into());
        }
        self.run_config(Workload::Get, "127.0.0.1:1".into()).validate()
    }

    fn run_config(&self, workload: Workload, server: String) -> RunConfig {
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
            watchers: 20,
            multi_ops: 4,
            root: ROOT.into(),
            spread: true,
            probe: None,
        }
    }
}

/// One ensemble and what the benchmark tracks of it.
struct Ensemble {
    c: Cluster,
    /// sid of the current leader.
    leader: usize,
    /// Spawn of the first peer -> every peer serving (`srvr` shows a Mode).
    start_ms: f64,
}

impl Ensemble {
    fn sids(&self) -> Vec<usize> {
        (1..=self.c.peers.len()).collect()
    }

    fn connect_string(&self) -> String {
        self.c.peers.iter().map(|p| format!("127.0.0.1:{}", p.client_port)).collect::<Vec<_>>().join(",")
    }

    fn check_alive(&mut self) -> Result<(), String> {
        let sids = self.sids();
        self.c.check_alive(&sids)
    }
}

/// One leader kill under load; times in ms from the instant before the kill.
#[derive(Clone, Debug)]
struct FailoverSample {
    old_leader: usize,
    new_leader: usize,
    /// First successful write submitted after the kill (NaN: none within the timeout).
    first_write: f64,
    /// Until every session had such a write (NaN: not all within the settle time).
    all_sessions: f64,
    sessions_back: usize,
    /// Every survivor logged its decision, one leader.
    decided: f64,
    /// The new leader answers `srvr` with a Mode.
    serving: f64,
    /// Writes/s of the load in the `failover_load` before the kill.
    load_before: f64,
    errors_after_kill: u64,
}

/// VmRSS and threads of one node after the load workloads.
#[derive(Clone, Copy, Debug, Default)]
struct NodeMem {
    sid: usize,
    leader: bool,
    rss_kib: u64,
    threads: usize,
}

/// Runs the benchmark, printing tables as it goes and one JSON line at the end. On
/// failure the ensembles' directories (zoo.cfg, data, logs) are kept and named.
pub fn ensemble(cfg: &EnsembleConfig) -> Result<(), String> {
    cfg.validate()?;
    cfg.programs.check()?;
    let mut work = WorkDir::new("zk-bench-ensemble")?;
    let r = run_in(cfg, work.path());
    if r.is_ok() && cfg.keep_dir {
        work.keep();
        eprintln!("zk-bench: ensemble directories and logs kept in {}", work.path().display());
    }
    if let Err(e) = r {
        work.keep();
        let logs = list_logs(work.path());
        return Err(format!(
            "{e}\nEnsemble directories (zoo.cfg, data, logs) are kept in {}; logs:\n  {}",
            work.path().display(),
            if logs.is_empty() { "(none)".to_string() } else { logs.join("\n  ") }
        ));
    }
    Ok(())
}

/// Starts an ensemble on fresh ports and dataDirs; tries again on other ports (up to 3
/// times) when a node could not bind one (another process took it after
/// [`free_port`](super::servers::free_port) found it free).
fn start(cfg: &EnsembleConfig, k: Kind, dir: &Path) -> Result<Ensemble, String> {
    let sids: Vec<usize> = (1..=cfg.size).collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let d = if attempt == 1 { dir.to_path_buf() } else { dir.with_extension(format!("retry{}", attempt - 1)) };
        let mut c = Cluster::new(k, &cfg.programs, cfg.size, cfg.tick_time, &d)?;
        let t0 = Instant::now();
        let r = sids
            .iter()
            .try_for_each(|&s| c.spawn(s))
            .and_then(|()| c.wait_elected(&sids, t0, cfg.timeout))
            .and_then(|e| Ok((e.leader, c.wait_serving(&sids, t0, cfg.timeout)?)));
        match r {
            Ok((leader, serving)) => return Ok(Ensemble { c, leader, start_ms: ms(serving) }),
            Err(e) => {
                c.kill_all();
                let logs: String = sids.iter().map(|&s| std::fs::read_to_string(d.join(format!("node{s}")).join("server.log")).unwrap_or_default()).collect();
                let port_taken = ["Address already in use", "AddrInUse", "BindException"].iter().any(|m| logs.contains(m));
                if !port_taken || attempt == 3 {
                    return Err(format!("the {} ensemble did not start (attempt {attempt}): {e}", k.name()));
                }
                eprintln!("  [start] {}: a port was taken by another process; again on other ports", k.name());
            }
        }
    }
}

fn run_in(cfg: &EnsembleConfig, work: &Path) -> Result<(), String> {
    print_header(cfg, work);
    // ---- start both; they run for the whole benchmark
    let mut slots: [Option<Ensemble>; 2] = [None, None];
    for k in order(0) {
        let e = start(cfg, k, &work.join(k.name()))?;
        eprintln!(
            "  [start] {:<6} {} peers serving after {:.0} ms, leader {}; {}",
            k.name(),
            cfg.size,
            e.start_ms,
            e.leader,
            e.connect_string()
        );
        slots[idx(k)] = Some(e);
    }
    let [Some(apache), Some(ours)] = slots else {
        return Err("internal error: an ensemble is missing".into());
    };
    let mut ens = [apache, ours];

    // ---- workloads
    let mut results: Vec<(Workload, [Vec<RunResult>; 2])> = Vec::new();
    for &w in &cfg.workloads {
        let mut runs: [Vec<RunResult>; 2] = [Vec::new(), Vec::new()];
        let mut firsts = Vec::new();
        for round in 0..cfg.rounds {
            firsts.push(order(round)[0]);
            for k in order(round) {
                let e = &mut ens[idx(k)];
                e.check_alive()?;
                let rc = cfg.run_config(w, e.connect_string());
                let r = match super::run(&rc) {
                    Ok(r) => r,
                    Err(err) => {
                        let dead = e.check_alive().err().map(|d| format!("\n{d}")).unwrap_or_default();
                        return Err(format!("{w} on the {} ensemble: {err}{dead}", k.name()));
                    }
                };
                e.check_alive().map_err(|err| format!("during {w}: {err}"))?;
                eprintln!(
                    "  [{w} round {}/{}] {:<6} {:>10.0} {}/s  p50 {} us  p99 {} us  errors {}",
                    round + 1,
                    cfg.rounds,
                    k.name(),
                    r.throughput(),
                    w.unit(),
                    r.latency.p50_us,
                    r.latency.p99_us,
                    r.errors
                );
                runs[idx(k)].push(r);
            }
        }
        let title = format!(
            "{w} on {} nodes: {} ({} rounds x {:.1} s, {} clients x {} outstanding spread over the nodes, latency in us)",
            cfg.size,
            describe(cfg, w),
            cfg.rounds,
            cfg.duration.as_secs_f64(),
            cfg.clients,
            cfg.outstanding
        );
        print_workload_rounds(&title, w, &runs, &firsts);
        results.push((w, runs));
    }

    // ---- RSS of every node after the load
    thread::sleep(cfg.idle);
    let mut mem: [Vec<NodeMem>; 2] = [Vec::new(), Vec::new()];
    for k in KINDS {
        let e = &mut ens[idx(k)];
        e.check_alive()?;
        mem[idx(k)] = node_memory(e)?;
    }
    print_memory(cfg, &mem);

    // ---- failover under load
    let mut fo: [Vec<FailoverSample>; 2] = [Vec::new(), Vec::new()];
    for round in 0..cfg.failover_rounds {
        for k in order(round) {
            let last = round + 1 == cfg.failover_rounds;
            let s = failover_round(cfg, &mut ens[idx(k)], round, !last)?;
            eprintln!(
                "  [failover round {}/{}] {:<6} leader {} killed: first write {} ms, all sessions {} ms ({} of {} back), survivors decided {:.0} ms, new leader {} serving {:.0} ms; load before {:.0}/s, {} errors after the kill",
                round + 1,
                cfg.failover_rounds,
                k.name(),
                s.old_leader,
                fmt_ms(s.first_write),
                fmt_ms(s.all_sessions),
                s.sessions_back,
                cfg.clients,
                s.decided,
                s.new_leader,
                s.serving,
                s.load_before,
                s.errors_after_kill
            );
            fo[idx(k)].push(s);
        }
    }
    print_failover(cfg, &fo);

    let start_ms = [ens[0].start_ms, ens[1].start_ms];
    drop(ens);
    print_final(cfg, &results, &fo, &mem, start_ms);
    println!("{}", summary_json(cfg, &results, &fo, &mem, start_ms));
    Ok(())
}

/// Memory of every node, leader first, then the followers in sid order.
fn node_memory(e: &Ensemble) -> Result<Vec<NodeMem>, String> {
    let mut out = Vec::new();
    let mut sids = e.sids();
    sids.sort_by_key(|&s| (s != e.leader, s));
    for sid in sids {
        let pid = e.c.peer(sid).pid().ok_or_else(|| format!("{} node {sid} is not running", e.c.kind.name()))?;
        out.push(NodeMem { sid, leader: sid == e.leader, rss_kib: rss_kib(pid)?.0, threads: threads_of(pid) });
    }
    Ok(out)
}

fn role_label(i: usize, m: &NodeMem) -> String {
    if m.leader {
        "leader".into()
    } else {
        format!("follower {i}")
    }
}

/// Kills the leader of `e` under a write load and measures the failover; restarts the
/// old leader afterwards when `rejoin` (not after the last round).
fn failover_round(cfg: &EnsembleConfig, e: &mut Ensemble, round: usize, rejoin: bool) -> Result<FailoverSample, String> {
    let kind = e.c.kind.name();
    let sids = e.sids();
    let leader = e.leader;
    let survivors: Vec<usize> = sids.iter().copied().filter(|&s| s != leader).collect();
    e.check_alive()?;
    let probe = Arc::new(FailoverProbe::new(cfg.clients));
    let mut rc = cfg.run_config(cfg.failover_workload, e.connect_string());
    // Every session has the whole ensemble in its connect string (it must reconnect
    // elsewhere when its server goes), and is stopped through the probe.
    rc.spread = false;
    rc.warmup = Duration::ZERO;
    rc.duration = cfg.failover_load + cfg.timeout * 3;
    rc.root = format!("{FAILOVER_ROOT}-{}", round + 1);
    rc.probe = Some(probe.clone());
    let load = thread::Builder::new()
        .name("zk-bench-failover-load".into())
        .spawn(move || super::run(&rc))
        .map_err(|err| format!("cannot start the failover load: {err}"))?;
    let finish = |load: thread::JoinHandle<Result<RunResult, String>>, probe: &FailoverProbe| -> Result<RunResult, String> {
        probe.stop();
        match load.join() {
            Ok(r) => r,
            Err(_) => Err("the failover load thread panicked".into()),
        }
    };

    // Wait until the load runs (its setup is not timed), then let it run a while.
    let deadline = Instant::now() + cfg.timeout;
    while probe.successes() == 0 {
        if load.is_finished() || Instant::now() >= deadline {
            let why = match finish(load, &probe) {
                Err(err) => err,
                Ok(r) => format!("no successful write ({} errors, first: {})", r.errors, r.first_error.unwrap_or_default()),
            };
            return Err(format!("failover on the {kind} ensemble: the load did not start: {why}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
    let before = probe.successes();
    thread::sleep(cfg.failover_load);
    let load_before = (probe.successes() - before) as f64 / cfg.failover_load.as_secs_f64().max(1e-9);
    if let Err(err) = e.check_alive() {
        let _ = finish(load, &probe);
        return Err(err);
    }

    // ---- kill -9 of the leader
    e.c.skip_logs(&survivors);
    let t0 = Instant::now();
    probe.mark_kill(t0);
    e.c.kill(leader);
    let elected = e.c.wait_elected(&survivors, t0, cfg.timeout).and_then(|el| Ok((e.c.wait_serving(&[el.leader], t0, cfg.timeout)?, el)));
    let (serving, el) = match elected {
        Ok(x) => x,
        Err(err) => {
            let _ = finish(load, &probe);
            return Err(format!("failover on the {kind} ensemble: {err}"));
        }
    };
    let deadline = t0 + cfg.timeout;
    while probe.first_success_after_kill().is_none() && Instant::now() < deadline && !load.is_finished() {
        thread::sleep(Duration::from_millis(2));
    }
    if let Some(first) = probe.first_success_after_kill() {
        let settle = t0 + first + cfg.failover_settle;
        while probe.client_firsts().iter().any(|f| f.is_none()) && Instant::now() < settle && !load.is_finished() {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let firsts = probe.client_firsts();
    let first_write = probe.first_success_after_kill();
    let back = firsts.iter().filter(|f| f.is_some()).count();
    let all = if back == firsts.len() { firsts.iter().flatten().max().copied() } else { None };
    let errors_after_kill = probe.errors_after_kill();
    let run = finish(load, &probe).map_err(|err| format!("failover load on the {kind} ensemble: {err}"))?;
    for n in run.notes.iter().filter(|n| n.starts_with("WARNING")) {
        eprintln!("  [failover round {}] {kind}: {n}", round + 1);
    }
    if first_write.is_none() {
        let dead = e.check_alive().err().map(|d| format!("\n{d}")).unwrap_or_default();
        return Err(format!(
            "failover on the {kind} ensemble: no successful write within {:.0} s of killing leader {leader} \
             (new leader {} serving after {:.0} ms; {errors_after_kill} errors since, first: {}){dead}",
            cfg.timeout.as_secs_f64(),
            el.leader,
            ms(serving),
            run.first_error.as_deref().unwrap_or("-")
        ));
    }
    e.leader = el.leader;
    let sample = FailoverSample {
        old_leader: leader,
        new_leader: el.leader,
        first_write: first_write.map(ms).unwrap_or(f64::NAN),
        all_sessions: all.map(ms).unwrap_or(f64::NAN),
        sessions_back: back,
        decided: ms(el.all_decided),
        serving: ms(serving),
        load_before,
        errors_after_kill,
    };
    if rejoin {
        // The old leader comes back, must follow, and every node must serve.
        e.c.spawn(leader)?;
        let b = e.c.wait_elected(&[leader], Instant::now(), cfg.timeout)?;
        if b.leader != 0 {
            return Err(format!("{kind} ensemble: restarted node {leader} leads again while {} leads", el.leader));
        }
        e.c.wait_serving(&sids, Instant::now(), cfg.timeout)?;
    }
    Ok(sample)
}

// ------------------------------------------------------------ reporting --

fn fmt_ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "n/a".into()
    }
}

fn finite(v: &[f64]) -> Vec<f64> {
    v.iter().copied().filter(|x| x.is_finite()).collect()
}

fn describe(cfg: &EnsembleConfig, w: Workload) -> String {
    match w {
        Workload::Create => format!("create of new persistent nodes, {} B", cfg.payload),
        Workload::Set => format!("setData of {} nodes, {} B", cfg.nodes, cfg.payload),
        Workload::Get => format!("getData of {} nodes of {} B", cfg.nodes, cfg.payload),
        Workload::Mixed => format!("{:.0}% getData / {:.0}% setData over {} nodes", cfg.read_ratio * 100.0, (1.0 - cfg.read_ratio) * 100.0, cfg.nodes),
        other => other.name().to_string(),
    }
}

fn print_header(cfg: &EnsembleConfig, work: &Path) {
    print_title(&format!("zk-bench ensemble: Apache ZooKeeper 3.8 (QuorumPeerMain) vs zookeeper-rs zk-server, {} nodes each", cfg.size), cfg.smoke);
    println!(
        "  {} rounds per workload (A B / B A alternating); warm-up {:.1} s + {:.1} s measured; {} clients x {} outstanding, client i on node i mod {}; payload {} B; key space {} nodes; mixed read ratio {}",
        cfg.rounds,
        cfg.warmup.as_secs_f64(),
        cfg.duration.as_secs_f64(),
        cfg.clients,
        cfg.outstanding,
        cfg.size,
        cfg.payload,
        cfg.nodes,
        cfg.read_ratio
    );
    println!(
        "  failover: {} kills of the leader per side under a {} load ({:.1} s of load before each kill; every session has the whole ensemble in its connect string)",
        cfg.failover_rounds,
        cfg.failover_workload,
        cfg.failover_load.as_secs_f64()
    );
    println!("  apache: {} {} {} -cp <jars> {QUORUM_PEER_MAIN} zoo.cfg", cfg.programs.java.display(), APACHE_JVM_FLAGS.join(" "), APACHE_LOG_FLAGS.join(" "));
    println!("  ours:   RUST_LOG={OURS_RUST_LOG} {} zoo.cfg", cfg.programs.ours.display());
    println!(
        "  zoo.cfg (every node of both): tickTime={} initLimit=10 syncLimit=5 dataDir=<fresh> clientPort/quorum/election=<free on 127.0.0.1> maxClientCnxns=0 \
         admin.enableServer=false 4lw.commands.whitelist=* standaloneEnabled=false reconfigEnabled=false server.N=...",
        cfg.tick_time
    );
    println!("  durability: default for both (forceSync=yes: every node fsyncs its txn log per commit batch)");
    println!("  client: zookeeper-rs's own client library for both; work dir {}", work.display());
}

fn print_memory(cfg: &EnsembleConfig, mem: &[Vec<NodeMem>; 2]) {
    println!("\n== memory of every node after the load workloads (VmRSS; leader with leader, followers in sid order) ==");
    println!("{:<12} {:>6} {:>12} {:>8} | {:>6} {:>12} {:>8} | {:>8}", "role", "a sid", "apache RSS", "threads", "o sid", "ours RSS", "threads", "RSS o/a");
    for i in 0..cfg.size {
        let (Some(a), Some(o)) = (mem[0].get(i), mem[1].get(i)) else { continue };
        println!(
            "{:<12} {:>6} {:>8.1} MiB {:>8} | {:>6} {:>8.1} MiB {:>8} | {:>8}",
            role_label(i, a),
            a.sid,
            mib(a.rss_kib),
            a.threads,
            o.sid,
            mib(o.rss_kib),
            o.threads,
            fmt_ratio(ratio(o.rss_kib as f64, a.rss_kib as f64))
        );
    }
    let (omax, amin) = worst_rss(mem);
    println!("largest of ours / smallest Apache node: {:.1} / {:.1} MiB = {}", mib(omax), mib(amin), fmt_ratio(ratio(omax as f64, amin as f64)));
}

/// (largest RSS of our nodes, smallest RSS of Apache's).
fn worst_rss(mem: &[Vec<NodeMem>; 2]) -> (u64, u64) {
    let omax = mem[1].iter().map(|m| m.rss_kib).max().unwrap_or(0);
    let amin = mem[0].iter().map(|m| m.rss_kib).min().unwrap_or(0);
    (omax, amin)
}

/// Medians of the failover samples of one side: first write, all sessions, decided,
/// serving.
fn fo_medians(s: &[FailoverSample]) -> [f64; 4] {
    let col = |f: fn(&FailoverSample) -> f64| median(&finite(&s.iter().map(f).collect::<Vec<_>>()));
    [col(|x| x.first_write), col(|x| x.all_sessions), col(|x| x.decided), col(|x| x.serving)]
}

fn fo_max(s: &[FailoverSample], f: fn(&FailoverSample) -> f64) -> f64 {
    max(&finite(&s.iter().map(f).collect::<Vec<_>>()))
}

fn print_failover(cfg: &EnsembleConfig, fo: &[Vec<FailoverSample>; 2]) {
    println!(
        "\n== failover: kill -9 of the leader under a {} load ({} clients x {} outstanding) -> first successful write submitted after the kill; every session writing again; survivors decided; new leader serving (ms from the kill) ==",
        cfg.failover_workload, cfg.clients, cfg.outstanding
    );
    println!(
        "{:<7} {:<7} {:>9} {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>9} {:>7}",
        "round", "first", "a write", "a all", "a decided", "a serving", "a lead", "o write", "o all", "o decided", "o serving", "o lead"
    );
    for (r, (a, o)) in fo[0].iter().zip(fo[1].iter()).enumerate() {
        println!(
            "{:<7} {:<7} {:>9} {:>9} {:>9.0} {:>9.0} {:>7} | {:>9} {:>9} {:>9.0} {:>9.0} {:>7}",
            r + 1,
            order(r)[0].name(),
            fmt_ms(a.first_write),
            fmt_ms(a.all_sessions),
            a.decided,
            a.serving,
            format!("{}->{}", a.old_leader, a.new_leader),
            fmt_ms(o.first_write),
            fmt_ms(o.all_sessions),
            o.decided,
            o.serving,
            format!("{}->{}", o.old_leader, o.new_leader)
        );
    }
    let (a, o) = (fo_medians(&fo[0]), fo_medians(&fo[1]));
    println!(
        "{:<15} {:>9} {:>9} {:>9} {:>9} {:>7} | {:>9} {:>9} {:>9} {:>9}",
        "median",
        fmt_ms(a[0]),
        fmt_ms(a[1]),
        fmt_ms(a[2]),
        fmt_ms(a[3]),
        "",
        fmt_ms(o[0]),
        fmt_ms(o[1]),
        fmt_ms(o[2]),
        fmt_ms(o[3])
    );
    println!(
        "failover: first write ours/apache {}, new leader serving ours/apache {}",
        fmt_ratio(ratio(o[0], a[0])),
        fmt_ratio(ratio(o[3], a[3]))
    );
    for k in KINDS {
        let s = &fo[idx(k)];
        let loads: Vec<String> = s.iter().map(|x| format!("{:.0}", x.load_before)).collect();
        let errs: Vec<String> = s.iter().map(|x| x.errors_after_kill.to_string()).collect();
        println!("  {:<6} load before the kill (writes/s): {}; failed writes after the kill: {}", k.name(), loads.join(" "), errs.join(" "));
        for (r, x) in s.iter().enumerate() {
            if x.sessions_back < cfg.clients {
                println!(
                    "  note: {} round {}: only {} of {} sessions wrote again within {:.1} s of the first write",
                    k.name(),
                    r + 1,
                    x.sessions_back,
                    cfg.clients,
                    cfg.failover_settle.as_secs_f64()
                );
            }
        }
    }
}

/// Target of issue #11 for a metric: (label, ours/apache must be >= or <= this).
pub(super) enum Target {
    AtLeast(f64),
    AtMost(f64),
}

pub(super) fn target_text(t: &Target, r: f64) -> String {
    let (ok, what) = match t {
        Target::AtLeast(x) => (r >= *x, format!(">= {x}x")),
        Target::AtMost(x) => (r <= *x, format!("<= {x}x")),
    };
    if !r.is_finite() {
        format!("{what}: n/a")
    } else if ok {
        format!("{what}: met")
    } else {
        format!("{what}: NOT met")
    }
}

/// A final ratio table with a target column: the ratio ours/Apache, the metric (`width`
/// wide), Apache's and our figure and whether the target is met. Also `compare --tls`'s.
pub(super) struct TargetTable {
    pub(super) width: usize,
}

impl TargetTable {
    /// The heads, `target` that of the target column.
    pub(super) fn head(&self, target: &str) {
        println!("{:>8}  {:<width$} {:>12} {:>12}  {target}", "ratio", "metric", "apache", "ours", width = self.width);
    }

    /// A row with `decimals` digits; the target column blank without a target.
    pub(super) fn row(&self, label: &str, a: f64, o: f64, decimals: usize, t: Option<Target>) {
        let r = ratio(o, a);
        let tt = t.map(|t| target_text(&t, r)).unwrap_or_default();
        println!("{:>8}  {:<width$} {:>12.*} {:>12.*}  {tt}", fmt_ratio(r), label, decimals, a, decimals, o, width = self.width);
    }

    /// Per workload the medians' throughput (against `throughput_target`), p50 and p99
    /// latency (at most Apache's), the labels starting with `prefix`.
    pub(super) fn workload_rows(&self, prefix: &str, results: &[(Workload, [Vec<RunResult>; 2])], throughput_target: fn(Workload) -> Option<Target>) {
        for (w, runs) in results {
            let (a, o) = (medians(&runs[0]), medians(&runs[1]));
            self.row(&format!("{prefix}{w} throughput ({}/s)", w.unit()), a.throughput, o.throughput, 0, throughput_target(*w));
            self.row(&format!("{prefix}{w} p50 latency (us)"), a.p50, o.p50, 0, None);
            self.row(&format!("{prefix}{w} p99 latency (us)"), a.p99, o.p99, 0, Some(Target::AtMost(1.0)));
        }
    }
}

fn throughput_target(w: Workload) -> Option<Target> {
    match w {
        Workload::Get | Workload::Mixed => Some(Target::AtLeast(2.0)),
        Workload::Set | Workload::Create | Workload::Delete | Workload::Multi => Some(Target::AtLeast(1.5)),
        _ => None,
    }
}

fn print_final(cfg: &EnsembleConfig, results: &[(Workload, [Vec<RunResult>; 2])], fo: &[Vec<FailoverSample>; 2], mem: &[Vec<NodeMem>; 2], start_ms: [f64; 2]) {
    println!(
        "\n== ensemble ({} nodes): ratios ours/Apache (medians of {} rounds, {} failover rounds; throughput: >1 = ours faster; latency, time, memory: <1 = ours better){} ==",
        cfg.size,
        cfg.rounds,
        cfg.failover_rounds,
        if cfg.smoke { " -- SMOKE RUN" } else { "" }
    );
    let table = TargetTable { width: 52 };
    table.head("target (issue #11)");
    table.workload_rows("", results, throughput_target);
    let (a, o) = (fo_medians(&fo[0]), fo_medians(&fo[1]));
    let fw = cfg.failover_workload;
    table.row(&format!("failover ({fw} load): kill -> first write, median (ms)"), a[0], o[0], 0, Some(Target::AtMost(1.0)));
    table.row(
        &format!("failover ({fw} load): kill -> first write, max (ms)"),
        fo_max(&fo[0], |x| x.first_write),
        fo_max(&fo[1], |x| x.first_write),
        0,
        None,
    );
    table.row(&format!("failover: kill -> all {} sessions writing, median (ms)", cfg.clients), a[1], o[1], 0, None);
    table.row("leader kill -> every survivor decided, median (ms)", a[2], o[2], 0, None);
    table.row("leader kill -> new leader serving, median (ms)", a[3], o[3], 0, None);
    for i in 0..cfg.size {
        let (Some(x), Some(y)) = (mem[0].get(i), mem[1].get(i)) else { continue };
        table.row(&format!("RSS after the load, {} (MiB)", role_label(i, x)), mib(x.rss_kib), mib(y.rss_kib), 1, Some(Target::AtMost(0.25)));
    }
    let (omax, amin) = worst_rss(mem);
    table.row("RSS: largest of ours / smallest Apache node (MiB)", mib(amin), mib(omax), 1, Some(Target::AtMost(0.25)));
    table.row("start: spawn -> every node serving, 1 start (ms)", start_ms[0], start_ms[1], 0, None);
}

fn summary_json(cfg: &EnsembleConfig, results: &[(Workload, [Vec<RunResult>; 2])], fo: &[Vec<FailoverSample>; 2], mem: &[Vec<NodeMem>; 2], start_ms: [f64; 2]) -> String {
    let mut s = String::from("{\"bench\":\"zk-bench-ensemble\"");
    let _ = write!(
        s,
        ",\"smoke\":{},\"size\":{},\"rounds\":{},\"failover_rounds\":{},\"duration_s\":{},\"warmup_s\":{},\"clients\":{},\"outstanding\":{},\"payload\":{},\"nodes\":{},\"read_ratio\":{},\"tick_time\":{}",
        cfg.smoke,
        cfg.size,
        cfg.rounds,
        cfg.failover_rounds,
        json_f64(cfg.duration.as_secs_f64(), 3),
        json_f64(cfg.warmup.as_secs_f64(), 3),
        cfg.clients,
        cfg.outstanding,
        cfg.payload,
        cfg.nodes,
        json_f64(cfg.read_ratio, 3),
        cfg.tick_time
    );
    s.push_str(",\"workloads\":{");
    s.push_str(&results.iter().map(|(w, runs)| workload_json(*w, runs)).collect::<Vec<_>>().join(","));
    s.push('}');
    let stat = |v: &[FailoverSample], f: fn(&FailoverSample) -> f64| {
        let x = finite(&v.iter().map(f).collect::<Vec<_>>());
        format!("{{\"median\":{},\"max\":{}}}", json_f64(median(&x), 1), json_f64(max(&x), 1))
    };
    let side = |v: &[FailoverSample]| {
        format!(
            "{{\"first_write_ms\":{},\"all_sessions_ms\":{},\"decided_ms\":{},\"serving_ms\":{}}}",
            stat(v, |x| x.first_write),
            stat(v, |x| x.all_sessions),
            stat(v, |x| x.decided),
            stat(v, |x| x.serving)
        )
    };
    let (a, o) = (fo_medians(&fo[0]), fo_medians(&fo[1]));
    let _ = write!(
        s,
        ",\"failover\":{{\"workload\":{},\"apache\":{},\"ours\":{},\"first_write_ratio\":{},\"serving_ratio\":{}}}",
        json_str(cfg.failover_workload.name()),
        side(&fo[0]),
        side(&fo[1]),
        json_f64(ratio(o[0], a[0]), 3),
        json_f64(ratio(o[3], a[3]), 3)
    );
    let nodes = |v: &[NodeMem]| {
        let items: Vec<String> = v
            .iter()
            .map(|m| format!("{{\"sid\":{},\"role\":{},\"rss_kib\":{},\"threads\":{}}}", m.sid, json_str(if m.leader { "leader" } else { "follower" }), m.rss_kib, m.threads))
            .collect();
        format!("[{}]", items.join(","))
    };
    let ratios: Vec<String> = mem[0].iter().zip(&mem[1]).map(|(a, o)| json_f64(ratio(o.rss_kib as f64, a.rss_kib as f64), 3)).collect();
    let (omax, amin) = worst_rss(mem);
    let _ = write!(
        s,
        ",\"rss_kib\":{{\"apache\":{},\"ours\":{},\"ratios\":[{}],\"largest_ours_over_smallest_apache\":{}}}",
        nodes(&mem[0]),
        nodes(&mem[1]),
        ratios.join(","),
        json_f64(ratio(omax as f64, amin as f64), 3)
    );
    let _ = write!(s, ",\"start_ms\":{{\"apache\":{},\"ours\":{}}}}}", json_f64(start_ms[0], 0), json_f64(start_ms[1], 0));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_met_or_not() {
        assert_eq!(target_text(&Target::AtLeast(2.0), 2.5), ">= 2x: met");
        assert_eq!(target_text(&Target::AtLeast(1.5), 1.2), ">= 1.5x: NOT met");
        assert_eq!(target_text(&Target::AtMost(0.25), 0.1), "<= 0.25x: met");
        assert_eq!(target_text(&Target::AtMost(1.0), f64::NAN), "<= 1x: n/a");
    }

    #[test]
    fn worst_rss_pairs_largest_ours_with_smallest_apache() {
        let m = |sid, rss| NodeMem { sid, leader: sid == 1, rss_kib: rss, threads: 1 };
        let mem = [vec![m(1, 300), m(2, 200), m(3, 250)], vec![m(1, 30), m(2, 50), m(3, 20)]];
        assert_eq!(worst_rss(&mem), (50, 200));
    }
}
