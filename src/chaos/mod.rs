//! Fault injection: `zk-chaos` runs clients against a live ensemble (ours, Apache's, or
//! a mix) while a nemesis kills, pauses and cuts off peers, then checks what the
//! clients saw and what the peers hold (docs/reliability.md).
//!
//! * [`cluster`]: the peers and the network between them ([`netns`]: a namespace per
//!   peer; [`proxy`]: link proxies on loopback);
//! * [`nemesis`]: the faults;
//! * [`workload`]: the clients and their histories;
//! * [`checks`] and [`linearizability`]: what must hold afterwards.

pub mod checks;
pub mod cluster;
pub mod linearizability;
pub mod nemesis;
pub mod netns;
pub mod proxy;
pub mod workload;

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::bench::servers::{Kind, ServerPrograms, WorkDir};
use crate::client::zookeeper::ZooKeeper;
use crate::proto::Code;
use checks::{NodeState, Tree};
use cluster::{Cluster, NetMode};
use linearizability::{Operation, RegisterInput, RegisterOutput};
use nemesis::FaultKind;
use workload::{Clock, History, Outcome, WorkloadConfig, EPH, MULTI, ROOT, SEQ, WATCHED};

/// Runs are reproducible from `--seed`.
pub use crate::common::split_mix::Rng;

/// The layouts the docs name; any comma-separated list of `ours`/`apache` works too.
pub fn parse_layout(s: &str) -> Result<Vec<Kind>, String> {
    let named = match s {
        "rust3" => Some("ours,ours,ours"),
        "rust5" => Some("ours,ours,ours,ours,ours"),
        "rust2-java1" => Some("ours,ours,apache"),
        "java2-rust1" => Some("apache,apache,ours"),
        "java3" => Some("apache,apache,apache"),
        "java5" => Some("apache,apache,apache,apache,apache"),
        _ => None,
    };
    let kinds: Result<Vec<Kind>, String> = named
        .unwrap_or(s)
        .split(',')
        .map(|k| match k.trim() {
            "ours" | "rust" => Ok(Kind::Ours),
            "apache" | "java" => Ok(Kind::Apache),
            other => Err(format!("layout {s:?}: unknown peer kind {other:?} (ours or apache)")),
        })
        .collect();
    let kinds = kinds?;
    if !(3..=7).contains(&kinds.len()) {
        return Err(format!("layout {s:?}: {} peers; zk-chaos runs 3 to 7", kinds.len()));
    }
    Ok(kinds)
}

#[derive(Clone, Debug)]
pub struct ChaosConfig {
    pub programs: ServerPrograms,
    pub layout: Vec<Kind>,
    /// How long clients run while faults are injected.
    pub duration: Duration,
    pub clients: usize,
    pub registers: usize,
    pub epoch: Duration,
    pub faults: Vec<FaultKind>,
    pub session_timeout_ms: i32,
    pub check_reads: bool,
    /// How peers are connected and cut (namespaces: full partitions).
    pub net: NetMode,
    pub seed: u64,
    pub keep_dir: bool,
    /// Where the ensemble lives (a temporary directory if None).
    pub dir: Option<PathBuf>,
}

impl ChaosConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.programs.check_for(&self.layout)?;
        if self.clients == 0 || self.registers == 0 {
            return Err("--clients and --registers must be at least 1".into());
        }
        if self.faults.is_empty() {
            return Err("no faults selected".into());
        }
        if self.session_timeout_ms < 1000 {
            return Err("--session-timeout must be at least 1000 ms (2 ticks)".into());
        }
        Ok(())
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Human-readable account: layout, faults, counts, checks.
    pub text: String,
    /// Violations of a promise (empty: the run passed).
    pub findings: Vec<String>,
    /// Checks the run could not settle (the search gave up), not findings.
    pub inconclusive: Vec<String>,
    pub faults: usize,
    /// Faults after which another peer led.
    pub leader_changes: usize,
    pub ops: u64,
    pub ok: u64,
    pub unknown: u64,
    pub dir: Option<PathBuf>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Longest wait for the ensemble to serve (start-up of JVMs on a loaded machine).
const SERVE_TIMEOUT: Duration = Duration::from_secs(180);

/// One chaos run: start the ensemble, load it while faults come and go, heal, check.
pub fn run(cfg: &ChaosConfig) -> Result<Report, String> {
    cfg.validate()?;
    // No client call may block forever on a peer that will never answer.
    crate::system_properties::set("zookeeper.request.timeout", &(cfg.session_timeout_ms * 2).to_string());
    let mut workdir = WorkDir::new("zk-chaos")?;
    let dir = cfg.dir.clone().unwrap_or_else(|| workdir.path().to_path_buf());
    if !cfg.keep_dir && cfg.dir.is_none() {
        netns::register_scratch_dir(&dir);
    }
    let mut cluster = Cluster::new(&cfg.layout, &cfg.programs, &dir, cfg.net)?;
    let mut rep = Report::default();
    let names: Vec<&str> = cfg.layout.iter().map(|k| k.name()).collect();
    let _ = writeln!(rep.text, "zk-chaos: {} peers [{}], {:?} of faults {:?}, {} clients, seed {}", cfg.layout.len(), names.join(","), cfg.duration, cfg.faults, cfg.clients, cfg.seed);
    let _ = writeln!(rep.text, "network: {}", cluster.describe_net());
    let _ = writeln!(rep.text, "ensemble directory: {}", dir.display());

    let result = run_in(cfg, &mut cluster, &mut rep);
    if let Err(e) = &result {
        rep.findings.push(e.clone());
    }
    // A leaked namespace is zk-chaos's own failure, but it must not pass unnoticed.
    if let Err(e) = cluster.shut_down() {
        rep.findings.push(format!("zk-chaos could not remove its network: {e}"));
    }
    netns::unregister_scratch_dir(&dir);
    if !rep.passed() || cfg.keep_dir {
        workdir.keep();
        rep.dir = Some(dir);
    }
    Ok(rep)
}

fn run_in(cfg: &ChaosConfig, cluster: &mut Cluster, rep: &mut Report) -> Result<(), String> {
    for sid in 1..=cluster.size() {
        cluster.start(sid)?;
    }
    cluster.wait_serving(SERVE_TIMEOUT)?;
    let cs = cluster.connect_string();
    workload::setup(&cs, cfg.session_timeout_ms, Instant::now() + Duration::from_secs(60))?;
    let clock = Clock(Instant::now());
    let deadline = Instant::now() + cfg.duration;
    let watchdog = workload::Watchdog::start(cs.clone(), cfg.session_timeout_ms);
    let wcfg = WorkloadConfig {
        clients: cfg.clients,
        registers: cfg.registers,
        epoch: cfg.epoch,
        session_timeout_ms: cfg.session_timeout_ms,
        check_reads: cfg.check_reads,
        seed: cfg.seed,
    };
    let ops_done = Arc::new(AtomicU64::new(0));
    let (cs2, done2) = (cs.clone(), ops_done.clone());
    let clients = thread::Builder::new()
        .name("ChaosClients".into())
        .spawn(move || workload::run_clients(&cs2, &wcfg, clock, deadline, &done2))
        .map_err(|e| format!("cannot start the clients: {e}"))?;

    // The nemesis, on this thread, until the deadline.
    let mut rng = Rng::new(cfg.seed);
    let session_timeout = Duration::from_millis(cfg.session_timeout_ms as u64);
    let stop = AtomicBool::new(false);
    let mut sleep = |d: Duration| {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
        }
    };
    let mut nemesis_error = None;
    while Instant::now() < deadline {
        sleep(Duration::from_millis(1000 + rng.below(2000)));
        if Instant::now() >= deadline {
            break;
        }
        let leader = cluster.leader();
        let fault = nemesis::choose(&mut rng, &cfg.faults, cluster.size(), leader, session_timeout);
        let at = clock.0.elapsed().as_secs_f64();
        rep.faults += 1;
        if let Err(e) = nemesis::apply(cluster, &fault, &mut sleep) {
            nemesis_error = Some(e);
            break;
        }
        if let Err(e) = cluster.check_alive() {
            nemesis_error = Some(e);
            break;
        }
        // Let the ensemble recover before the next fault (bounded: a run must not hang).
        let recovered = cluster.wait_serving(Duration::from_secs(30)).is_ok();
        cluster.purge();
        let after = cluster.leader();
        if after != leader {
            rep.leader_changes += 1;
        }
        let show = |l: Option<usize>| l.map_or("none".to_owned(), |l| l.to_string());
        let _ = writeln!(
            rep.text,
            "  t={at:>6.1}s {}; leader {} -> {}{}",
            fault.describe(),
            show(leader),
            show(after),
            if recovered { "" } else { " (not serving again within 30 s)" }
        );
    }
    let healed = cluster.heal();
    for sid in 1..=cluster.size() {
        if cluster.node(sid).is_paused() {
            cluster.resume(sid);
        }
        if !cluster.node(sid).is_running() {
            cluster.start(sid)?;
        }
    }
    let history = clients.join().map_err(|_| "a client thread panicked".to_string())?;
    if let Some(e) = nemesis_error {
        return Err(e);
    }
    healed?;
    cluster.wait_serving(SERVE_TIMEOUT).map_err(|e| format!("after the faults: {e}"))?;
    rep.ops = ops_done.load(Ordering::Relaxed);
    rep.ok = history.counts.ok;
    rep.unknown = history.counts.unknown;
    let _ = writeln!(
        rep.text,
        "ops: {} ({} ok, {} failed as asked, {} unknown); sessions {} ({} expiries seen); register ops {}, sequential creates {}, multis {}, ephemerals {}",
        rep.ops,
        history.counts.ok,
        history.counts.failed,
        history.counts.unknown,
        history.counts.sessions,
        history.counts.expired,
        history.registers.len(),
        history.seq.len(),
        history.multis.len(),
        history.ephemerals.len()
    );
    final_checks(cfg, cluster, &cs, clock, history, watchdog, rep)
}

fn final_checks(cfg: &ChaosConfig, cluster: &mut Cluster, cs: &str, clock: Clock, mut history: History, watchdog: workload::Watchdog, rep: &mut Report) -> Result<(), String> {
    let zk = ZooKeeper::connect(cs, cfg.session_timeout_ms, None).map_err(|e| format!("final session: {e}"))?;
    // Final reads: after every write, so each key's history ends with its settled value.
    for key in history.register_keys.clone() {
        let call = clock.now();
        match zk.sync(&key).and_then(|_| zk.get_data(&key, None)) {
            Ok((d, st)) => history.registers.push(Operation {
                client: usize::MAX,
                key,
                input: RegisterInput::Read,
                call,
                ret: Some((clock.now(), RegisterOutput::Read { data: d.unwrap_or_default(), version: st.version })),
            }),
            Err(e) if e.code == Code::NoNode => {}
            Err(e) => return Err(format!("final read of {key}: {e}")),
        }
    }
    let t0 = Instant::now();
    match checks::registers(&history.registers) {
        Ok(None) => check_line(rep, "registers linearizable", Ok(format!("{} keys, {} ops, {:?}", history.register_keys.len(), history.registers.len(), t0.elapsed()))),
        Ok(Some(key)) => rep.inconclusive.push(format!("linearizability search gave up on {key}")),
        Err(f) => check_line(rep, "registers linearizable", Err(vec![f])),
    }

    // Every session is closed now; zombies must expire (the leader's next expiry pass
    // after their timeout; a leader change restarts their clocks).
    let eph_deadline = Instant::now() + Duration::from_millis(cfg.session_timeout_ms as u64 * 3) + Duration::from_secs(20);
    let mut left;
    loop {
        left = zk.sync(EPH).and_then(|_| zk.get_children(EPH, None)).map_err(|e| format!("listing {EPH}: {e}"))?;
        if left.is_empty() || Instant::now() >= eph_deadline {
            break;
        }
        thread::sleep(Duration::from_millis(250));
    }
    let created = history.ephemerals.iter().filter(|e| !matches!(e.outcome, Outcome::Failed(_))).count();
    let zombies = history.ephemerals.iter().filter(|e| e.zombie && !matches!(e.outcome, Outcome::Failed(_))).count();
    check_line(
        rep,
        "ephemerals of closed and expired sessions removed",
        if left.is_empty() { Ok(format!("{created} created, {zombies} by abandoned sessions")) } else { Err(vec![format!("{} ephemerals outlived their sessions: {:?}", left.len(), &left[..left.len().min(10)])]) },
    );

    // Watches: the watcher's last read reaches the final version.
    let final_version = zk.sync(WATCHED).and_then(|_| zk.get_data(WATCHED, None)).map(|(_, st)| st.version).map_err(|e| format!("reading {WATCHED}: {e}"))?;
    let until = Instant::now() + Duration::from_secs(15);
    while watchdog.last.load(Ordering::Acquire) < final_version && Instant::now() < until {
        thread::sleep(Duration::from_millis(100));
    }
    let seen = watchdog.last.load(Ordering::Acquire);
    let wlog = watchdog.stop();
    let mut wf = wlog.violations.clone();
    if seen < final_version {
        wf.push(format!("the watcher stopped at version {seen} of {WATCHED}; the node is at {final_version}: a change fired no watch"));
    }
    if wlog.events > final_version as u64 {
        wf.push(format!("{} NodeDataChanged events for {final_version} changes", wlog.events));
    }
    check_line(rep, "data watches fire once per change", if wf.is_empty() { Ok(format!("{} events, {} changes", wlog.events, final_version)) } else { Err(wf) });
    drop(zk);

    // The peers' trees: identical, and the ground truth for the other checks.
    let mut trees = Vec::new();
    for sid in 1..=cluster.size() {
        trees.push((sid, read_tree(&cluster.node(sid).client_addr().to_string(), cfg.session_timeout_ms)?));
    }
    let diffs = checks::identical(&trees);
    check_line(rep, "every peer holds the same tree", if diffs.is_empty() { Ok(format!("{} znodes on {} peers", trees[0].1.len(), trees.len())) } else { Err(diffs) });
    let tree = &trees[0].1;
    // Direct children of `parent`, by name.
    let children = |parent: &str| -> Vec<(String, &NodeState)> {
        let prefix = format!("{parent}/");
        tree.range(prefix.clone()..).take_while(|(p, _)| p.starts_with(&prefix)).filter(|(p, _)| !p[prefix.len()..].contains('/')).map(|(p, s)| (p[prefix.len()..].to_owned(), s)).collect()
    };
    let mut sf = Vec::new();
    let mut seq_nodes = 0;
    let mut parents: Vec<String> = children(SEQ).into_iter().map(|(n, _)| format!("{SEQ}/{n}")).collect();
    for s in &history.seq {
        if !parents.contains(&s.parent) {
            parents.push(s.parent.clone());
        }
    }
    for parent in &parents {
        let mut kids = BTreeMap::new();
        for (name, st) in children(parent) {
            match workload::sequence_number(&name) {
                Some(n) => {
                    kids.insert(n, String::from_utf8_lossy(&st.data).into_owned());
                }
                None => sf.push(format!("{parent}/{name} is not a sequential name")),
            }
        }
        seq_nodes += kids.len();
        let ops: Vec<workload::SeqCreate> = history.seq.iter().filter(|s| &s.parent == parent).cloned().collect();
        sf.extend(checks::sequential(&ops, &kids).into_iter().map(|f| format!("{parent}: {f}")));
    }
    let acked = history.seq.iter().filter(|s| matches!(s.outcome, Outcome::Ok(_))).count();
    check_line(rep, "sequential creates: none lost, none reused, real-time order", if sf.is_empty() { Ok(format!("{acked} acknowledged, {seq_nodes} nodes under {} parents", parents.len())) } else { Err(sf) });
    let prefix = format!("{MULTI}/");
    let present: HashSet<String> = tree.keys().filter_map(|p| p.strip_prefix(&prefix)).map(str::to_owned).collect();
    let mf = checks::multis(&history.multis, &present);
    let acked = history.multis.iter().filter(|m| matches!(m.outcome, Outcome::Ok(_))).count();
    check_line(rep, "multis all-or-nothing, none lost", if mf.is_empty() { Ok(format!("{acked} acknowledged of {}", history.multis.len())) } else { Err(mf) });
    Ok(())
}

fn check_line(rep: &mut Report, what: &str, r: Result<String, Vec<String>>) {
    match r {
        Ok(detail) => {
            let _ = writeln!(rep.text, "  ok    {what} ({detail})");
        }
        Err(f) => {
            let _ = writeln!(rep.text, "  FAIL  {what}");
            for x in &f {
                let _ = writeln!(rep.text, "        {x}");
            }
            rep.findings.extend(f);
        }
    }
}

/// Every znode under [`ROOT`] as one peer serves it (after a sync on that peer).
fn read_tree(addr: &str, timeout_ms: i32) -> Result<Tree, String> {
    let zk = ZooKeeper::connect(addr, timeout_ms, None).map_err(|e| format!("connecting to {addr}: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match walk(&zk) {
            Ok(t) => return Ok(t),
            Err(e) if Instant::now() < deadline => {
                log::debug!("reading the tree of {addr}: {e}; retrying");
                thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(format!("reading the tree of {addr}: {e}")),
        }
    }
}

fn walk(zk: &ZooKeeper) -> Result<Tree, crate::client::keeper_error::KeeperError> {
    zk.sync(ROOT)?;
    let mut tree = Tree::new();
    let mut todo = vec![ROOT.to_owned()];
    while let Some(p) = todo.pop() {
        let (d, st) = zk.get_data(&p, None)?;
        tree.insert(
            p.clone(),
            NodeState { data: d.unwrap_or_default(), version: st.version, cversion: st.cversion, ephemeral_owner: st.ephemeral_owner, czxid: st.czxid, mzxid: st.mzxid },
        );
        for c in zk.get_children(&p, None)? {
            todo.push(format!("{p}/{c}"));
        }
    }
    Ok(tree)
}
