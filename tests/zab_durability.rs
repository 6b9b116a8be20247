//! Zab durability under faults (issue #11), on real processes on loopback:
//!
//! * `kill_rounds_*`: several client sessions write through different nodes (sequential
//!   creates under one parent, compare-and-set on a few registers) while every round
//!   kill -9s a node (leader and follower alternately), waits for a leader and for writes
//!   to succeed again, and restarts the node on its dataDir. Afterwards every
//!   acknowledged write is on every node (read from each node after `sync`), no sequence
//!   number or CAS version was acknowledged twice, and the full trees (paths, data,
//!   every Stat field) of all nodes are identical.
//! * `harsh_rounds_*`: the same writers and checks with a node restarted at once, the
//!   leader and a follower killed together, and every node killed at once.
//! * `sync_*`: each way a leader brings a learner up to date — DIFF, SNAP, TRUNC (and SNAP
//!   where a TRUNC would cross an epoch) — forced, checked from both logs (the exact
//!   zxids), and the data identical everywhere afterwards, also after one more restart;
//!   Rust and Apache on either side. `followers_keep_logged_uncommitted_txns_*`: what
//!   followers logged from a dead leader survives (Apache and ours alike).
//! * `follower_rejoins_repeatedly_under_write_load`: 40 learner syncs racing commits.
//! * `rolling_replacement_*`: a loaded Apache ensemble is replaced node by node by our
//!   server on the same dataDirs while a client writes, then back to Apache.
//!
//! The tests of this file run one at a time (`SERIAL`): each runs 3 server processes and
//! checks timing-sensitive fail-over; the whole file takes about 2 minutes on 2 cores.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl};
use zookeeper::client::{States, ZooKeeper};
use zookeeper::proto::data::Stat;
use zookeeper::proto::{ids, Code, CreateMode};
use zookeeper::server::persistence::file_txn_log::FileTxnIterator;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Short ticks keep failure detection and elections fast; the session limit is raised
/// explicitly so that a client outlives a node's restart (the default maximum would be
/// 20 ticks = 4 s).
const TICK_MS: u32 = 200;
const SESSION_MS: i32 = 20_000;
const WAIT: Duration = Duration::from_secs(30);

fn spec(imps: &[Impl]) -> EnsembleSpec {
    EnsembleSpec::of(imps).tick_time(TICK_MS).init_limit(25).sync_limit(10).cfg("maxSessionTimeout=30000\n")
}

fn acl() -> Vec<zookeeper::proto::data::ACL> {
    ids::open_acl_unsafe()
}

/// A session on `connect`, waited for (bounded).
fn connect(connect: &str) -> ZooKeeper {
    let zk = ZooKeeper::connect(connect, SESSION_MS, None).expect("client");
    let deadline = Instant::now() + WAIT;
    while zk.state() != States::Connected {
        assert!(Instant::now() < deadline, "no session with {connect} within {WAIT:?} (state {:?})", zk.state());
        thread::sleep(Duration::from_millis(20));
    }
    zk
}

fn hex(z: i64) -> String {
    format!("0x{z:x}")
}

/// `Zxid: 0x...` of `srvr` (the node's last processed zxid).
fn srvr_zxid(ens: &Ensemble, sid: u64) -> i64 {
    let s = ens.node(sid).four_letter("srvr");
    let line = s.lines().find(|l| l.starts_with("Zxid: ")).unwrap_or_else(|| panic!("no Zxid in srvr of {sid}: {s}"));
    i64::from_str_radix(line[6..].trim().trim_start_matches("0x"), 16).expect("zxid")
}

/// Zxids of every txn in a node's txn log files, oldest first.
fn logged_zxids(ens: &Ensemble, sid: u64) -> Vec<i64> {
    let dir = ens.node(sid).data_dir().join("version-2");
    let it = FileTxnIterator::new(&dir, 0, false).unwrap_or_else(|e| panic!("txn logs of node {sid}: {e}"));
    // A log being written may end in a partial record: stop there.
    it.map_while(Result::ok).map(|e| e.header.zxid).collect()
}

// ------------------------------------------------------------------ dumps --

/// Path -> (data, stat) of the whole tree as one node serves it.
type Dump = BTreeMap<String, (Option<Vec<u8>>, Stat)>;

/// Reads the whole tree from node `sid` only, after a `sync`, pipelining the reads of a
/// level. Every read is bounded.
fn dump_node(ens: &Ensemble, sid: u64) -> Dump {
    let zk = connect(&ens.node(sid).connect_string());
    zk.sync("/").unwrap_or_else(|e| panic!("sync on node {sid}: {e}"));
    let mut out = Dump::new();
    let mut level = vec!["/".to_string()];
    while !level.is_empty() {
        let (tx, rx) = mpsc::channel();
        for p in &level {
            let (tx1, tx2) = (tx.clone(), tx.clone());
            let (p1, p2) = (p.clone(), p.clone());
            zk.get_data_async(p, move |r| {
                let _ = tx1.send((p1, Ok(r.map_err(|e| e.code)), None));
            });
            zk.get_children_async(p, None, move |r| {
                let _ = tx2.send((p2, Err(()), Some(r.map_err(|e| e.code))));
            });
        }
        drop(tx);
        let mut next = Vec::new();
        for _ in 0..level.len() * 2 {
            let (p, data, kids) = rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("dump of node {sid}: a read got no answer"));
            if let Ok(d) = data {
                let (d, st) = d.unwrap_or_else(|c| panic!("node {sid}: getData {p}: {c:?}"));
                out.insert(p.clone(), (d, st));
            }
            if let Some(k) = kids {
                for c in k.unwrap_or_else(|c| panic!("node {sid}: getChildren {p}: {c:?}")) {
                    next.push(if p == "/" { format!("/{c}") } else { format!("{p}/{c}") });
                }
            }
        }
        level = next;
    }
    // Each peer writes /zookeeper/config itself (initConfigInZKDatabase), stamping its
    // own wall-clock time as mtime, as upstream does: not replicated state.
    if let Some((_, st)) = out.get_mut("/zookeeper/config") {
        st.mtime = 0;
    }
    out
}

/// Dumps every node and asserts they are identical; returns one of them.
fn assert_identical_everywhere(ens: &Ensemble, what: &str) -> Dump {
    let sids = ens.sids();
    let dumps: Vec<(u64, Dump)> = sids.iter().map(|&s| (s, dump_node(ens, s))).collect();
    let (s0, d0) = &dumps[0];
    for (s, d) in &dumps[1..] {
        if d != d0 {
            let mut diffs = Vec::new();
            let keys: BTreeSet<&String> = d0.keys().chain(d.keys()).collect();
            for k in keys {
                let (a, b) = (d0.get(k), d.get(k));
                if a != b {
                    let show = |e: Option<&(Option<Vec<u8>>, Stat)>| match e {
                        None => "absent".to_string(),
                        Some((d, st)) => format!("{:?} {st:?}", data_str(d)),
                    };
                    diffs.push(format!("  {k}:\n    node {s0}: {}\n    node {s}: {}", show(a), show(b)));
                }
            }
            let n = diffs.len();
            diffs.truncate(20);
            panic!("{what}: node {s} differs from node {s0} in {n} znodes, first ones:\n{}", diffs.join("\n"));
        }
    }
    dumps.into_iter().next().map(|(_, d)| d).expect("a dump")
}

fn data_str(d: &Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(d.as_deref().unwrap_or(b"")).into_owned()
}

// ---------------------------------------------------------------- writers --

const SEQ: &str = "/seq";
const REGS: usize = 4;

fn reg_path(r: usize) -> String {
    format!("/reg/r{r}")
}

/// What the writers were told.
#[derive(Default)]
struct Outcomes {
    /// (path returned, data token) of every acknowledged sequential create.
    acked_creates: Vec<(String, String)>,
    /// Tokens of creates whose outcome is unknown (ConnectionLoss & co.).
    unknown_creates: Vec<String>,
    /// (register, version returned, token) of every acknowledged setData-with-version.
    acked_cas: Vec<(usize, i32, String)>,
    /// (register, token) of CAS writes with unknown outcome.
    unknown_cas: Vec<(usize, String)>,
    /// Error code -> count, over every failed call.
    errors: BTreeMap<String, usize>,
    /// Server-side anomalies seen at once by a writer.
    anomalies: Vec<String>,
}

struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    outcomes: Arc<Mutex<Outcomes>>,
    threads: Vec<thread::JoinHandle<()>>,
}

/// Creates `/seq` and the registers.
fn init_writer_tree(cs: &str) {
    let zk = connect(cs);
    zk.create(SEQ, Some(b""), &acl(), CreateMode::Persistent).expect("create /seq");
    zk.create("/reg", Some(b""), &acl(), CreateMode::Persistent).expect("create /reg");
    for r in 0..REGS {
        zk.create(&reg_path(r), Some(b"init"), &acl(), CreateMode::Persistent).expect("create reg");
    }
}

/// True for the results whose effect on the server is unknown.
fn unknown_outcome(c: Code) -> bool {
    matches!(c, Code::ConnectionLoss | Code::OperationTimeout | Code::RequestTimeout | Code::SessionMoved)
}

impl Writers {
    /// One writer per connect string. Each round of a writer: 4 pipelined sequential
    /// creates, then one read + setData-with-version on a random register.
    fn start(connects: &[String]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let mut threads = Vec::new();
        for (w, cs) in connects.iter().enumerate() {
            let (stop, acked, outcomes, cs) = (stop.clone(), acked.clone(), outcomes.clone(), cs.clone());
            threads.push(
                thread::Builder::new()
                    .name(format!("writer-{w}"))
                    .spawn(move || writer_loop(w, &cs, &stop, &acked, &outcomes))
                    .expect("spawn writer"),
            );
        }
        Writers { stop, acked, outcomes, threads }
    }

    fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits until `n` more writes are acknowledged; panics after `timeout`.
    fn wait_progress(&self, n: usize, timeout: Duration, what: &str) -> Duration {
        let t0 = Instant::now();
        let start = self.acked();
        while self.acked() < start + n {
            if t0.elapsed() > timeout {
                let errs = self.outcomes.lock().unwrap().errors.clone();
                panic!("{what}: fewer than {n} writes acknowledged within {timeout:?} (errors so far: {errs:?})");
            }
            thread::sleep(Duration::from_millis(10));
        }
        t0.elapsed()
    }

    fn finish(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("writer thread panicked");
        }
        Arc::try_unwrap(self.outcomes).ok().expect("writers gone").into_inner().unwrap()
    }
}

fn writer_loop(w: usize, cs: &str, stop: &AtomicBool, acked: &AtomicUsize, out: &Mutex<Outcomes>) {
    let zk = ZooKeeper::connect(cs, SESSION_MS, None).expect("client");
    let mut k = 0u64;
    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64);
    let note_err = |c: Code| {
        *out.lock().unwrap().errors.entry(format!("{c:?}")).or_default() += 1;
    };
    while !stop.load(Ordering::Relaxed) {
        if zk.state() == States::Closed {
            out.lock().unwrap().anomalies.push(format!("writer {w}: session closed (expired?)"));
            return;
        }
        // Pipelined sequential creates.
        let (tx, rx) = mpsc::channel();
        let batch = 4;
        for _ in 0..batch {
            k += 1;
            let token = format!("w{w}-c{k}");
            let tx = tx.clone();
            let t2 = token.clone();
            zk.create_async(&format!("{SEQ}/n-"), Some(token.as_bytes()), &acl(), CreateMode::PersistentSequential, move |r| {
                let _ = tx.send((t2, r.map_err(|e| e.code)));
            });
        }
        drop(tx);
        for _ in 0..batch {
            // Bounded: a pending request must end with a reply or ConnectionLoss long
            // before this (the session timeout).
            let (token, r) = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("writer {w}: a create got no answer in 60 s"));
            match r {
                Ok(path) => {
                    out.lock().unwrap().acked_creates.push((path, token));
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err(c) => {
                    note_err(c);
                    if unknown_outcome(c) {
                        out.lock().unwrap().unknown_creates.push(token);
                    } else if c != Code::SessionExpired {
                        out.lock().unwrap().anomalies.push(format!("writer {w}: create {token}: {c:?}"));
                    }
                }
            }
        }
        // Compare-and-set on a register.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let r = (rng % REGS as u64) as usize;
        let path = reg_path(r);
        match zk.get_data(&path, None) {
            Ok((_, st)) => {
                k += 1;
                let token = format!("w{w}-s{k}");
                match zk.set_data(&path, Some(token.as_bytes()), st.version) {
                    Ok(st2) => {
                        let mut o = out.lock().unwrap();
                        if st2.version != st.version + 1 {
                            o.anomalies.push(format!("writer {w}: setData {path} at version {} returned version {}", st.version, st2.version));
                        }
                        o.acked_cas.push((r, st2.version, token));
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.code == Code::BadVersion => {}
                    Err(e) => {
                        note_err(e.code);
                        if unknown_outcome(e.code) {
                            out.lock().unwrap().unknown_cas.push((r, token));
                        } else if e.code != Code::SessionExpired {
                            out.lock().unwrap().anomalies.push(format!("writer {w}: setData {path}: {e}"));
                        }
                    }
                }
            }
            Err(e) => note_err(e.code),
        }
        if zk.state() != States::Connected {
            // Disconnected: the client reconnects on its own; don't spin.
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Checks the writers' outcomes against one node's tree (all nodes are identical by
/// then). Returns (acknowledged creates, acknowledged CAS writes) checked.
fn check_outcomes(o: &Outcomes, tree: &Dump) -> (usize, usize) {
    assert!(o.anomalies.is_empty(), "writers saw anomalies: {:#?}", o.anomalies);
    // Sequential creates: every acknowledged one is there with its data; no sequence
    // number was handed out twice; every child came from a create that was sent.
    let mut seen_paths = HashSet::new();
    for (p, t) in &o.acked_creates {
        assert!(seen_paths.insert(p.clone()), "sequential path {p} acknowledged twice");
        match tree.get(p) {
            Some((d, _)) => assert_eq!(data_str(d), *t, "{p} holds another create's data: sequence number handed out twice"),
            None => panic!("acknowledged create {p} ({t}) is lost"),
        }
    }
    let known: HashSet<&str> = o.acked_creates.iter().map(|(_, t)| t.as_str()).chain(o.unknown_creates.iter().map(String::as_str)).collect();
    let prefix = format!("{SEQ}/");
    let children: Vec<(&String, String)> = tree.iter().filter(|(p, _)| p.starts_with(&prefix)).map(|(p, (d, _))| (p, data_str(d))).collect();
    let mut tokens = HashSet::new();
    let mut suffixes = Vec::new();
    for (p, t) in &children {
        assert!(known.contains(t.as_str()), "{p} holds {t:?}, which no writer sent (or whose failure was definite)");
        assert!(tokens.insert(t.clone()), "create {t} applied twice (second copy at {p})");
        suffixes.push(p.rsplit_once("n-").and_then(|(_, s)| s.parse::<u64>().ok()).unwrap_or_else(|| panic!("odd child {p}")));
    }
    // No deletes under /seq: the parent's cversion counts the creates, and the sequence
    // numbers are exactly 0..n.
    suffixes.sort_unstable();
    let n = suffixes.len() as u64;
    assert!(suffixes.iter().copied().eq(0..n), "sequence numbers under {SEQ} are not 0..{n}: gaps or repeats");
    assert_eq!(tree[SEQ].1.cversion as u64, n, "cversion of {SEQ} vs its children");
    // CAS registers: one acknowledgement per (register, version); the final version
    // is at least the newest acknowledged one, with its data when equal.
    let mut by_reg: HashMap<usize, BTreeMap<i32, &str>> = HashMap::new();
    for (r, v, t) in &o.acked_cas {
        if let Some(prev) = by_reg.entry(*r).or_default().insert(*v, t) {
            panic!("register {r} version {v} acknowledged twice: {prev} and {t}");
        }
    }
    for (r, acks) in &by_reg {
        let (d, st) = &tree[&reg_path(*r)];
        let (&maxv, &tok) = acks.iter().next_back().expect("an ack");
        assert!(st.version >= maxv, "register {r} is at version {} but version {maxv} ({tok}) was acknowledged", st.version);
        if st.version == maxv {
            assert_eq!(data_str(d), tok, "register {r} at the acknowledged version {maxv} holds other data");
        } else {
            let t = data_str(d);
            assert!(o.unknown_cas.iter().any(|(rr, tt)| rr == r && *tt == t), "register {r} at version {} holds {t:?}, not a write with unknown outcome", st.version);
        }
        assert!(st.version as usize >= acks.len(), "register {r}: {} acknowledged CAS writes but version {}", acks.len(), st.version);
    }
    (o.acked_creates.len(), o.acked_cas.len())
}

// ----------------------------------------------------------- kill rounds --

/// Which sync a (re)started learner got, from its log since `from`.
fn sync_kind(ens: &Ensemble, sid: u64, from: u64) -> &'static str {
    let log = ens.node(sid).log_since(from);
    if log.contains("Getting a diff from the leader") {
        "DIFF"
    } else if log.contains("Getting a snapshot from leader") {
        "SNAP"
    } else if log.contains("Truncating log to get in sync with the leader") {
        "TRUNC"
    } else {
        "?"
    }
}

fn kill_rounds(imps: &[Impl], rounds: usize) {
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(imps));
    ens.wait_for_mode_all(WAIT);
    init_writer_tree(&ens.connect_string());
    // One writer pinned to each node (its session survives the node's restart), one
    // with every node in its connect string.
    let mut connects: Vec<String> = ens.sids().iter().map(|&s| ens.node(s).connect_string()).collect();
    connects.push(ens.connect_string());
    let writers = Writers::start(&connects);
    writers.wait_progress(50, WAIT, "warm-up");
    let mut follower_pick = 0usize;
    for round in 0..rounds {
        let leader = ens.wait_for_leader(WAIT);
        let victim = if round % 2 == 0 {
            leader
        } else {
            let fs: Vec<u64> = ens.sids().into_iter().filter(|&s| s != leader).collect();
            follower_pick += 1;
            fs[follower_pick % fs.len()]
        };
        // Writes in flight when the node dies.
        writers.wait_progress(20, WAIT, &format!("round {round}: load before the kill"));
        let acked_before = writers.acked();
        let t_kill = Instant::now();
        ens.kill(victim);
        let new_leader = ens.wait_for_leader(WAIT);
        let t_leader = t_kill.elapsed();
        if victim == leader {
            assert_ne!(new_leader, victim);
        } else {
            assert_eq!(new_leader, leader, "round {round}: killing follower {victim} changed the leader");
        }
        let t_resume = writers.wait_progress(10, WAIT, &format!("round {round}: writes after killing {victim}")) + t_leader;
        let from = ens.node(victim).log_offset();
        ens.node_mut(victim).start();
        ens.wait_for_mode_all(WAIT);
        let t_back = t_kill.elapsed();
        let kind = sync_kind(&ens, victim, from);
        assert_ne!(kind, "?", "round {round}: node {victim} serves without a sync line\n{}", ens.node(victim).log_since(from));
        let line = format!(
            "round {round}: killed {} {victim} ({:?}) after {} acked writes; leader {new_leader} after {:.2}s, writes resumed after {:.2}s, node back ({kind}) after {:.2}s",
            if victim == leader { "leader" } else { "follower" },
            ens.node(victim).imp(),
            acked_before,
            t_leader.as_secs_f64(),
            t_resume.as_secs_f64(),
            t_back.as_secs_f64()
        );
        eprintln!("{line}");
    }
    writers.wait_progress(10, WAIT, "after the last round");
    let outcomes = writers.finish();
    ens.wait_for_mode_all(WAIT);
    let tree = assert_identical_everywhere(&ens, "after the kill rounds");
    let (c, s) = check_outcomes(&outcomes, &tree);
    assert_eq!(outcomes.errors.get("SessionExpired"), None, "a session expired: {:?}", outcomes.errors);
    eprintln!(
        "kill rounds {imps:?}: {rounds} rounds, {c} acknowledged creates and {s} acknowledged CAS writes checked on {} nodes, {} creates / {} CAS with unknown outcome, errors {:?}, {} znodes per node, {:.1}s",
        ens.sids().len(),
        outcomes.unknown_creates.len(),
        outcomes.unknown_cas.len(),
        outcomes.errors,
        tree.len(),
        t0.elapsed().as_secs_f64()
    );
}

/// Harsher faults, one per round in turn: the leader killed and restarted at once
/// (it takes part in the election that replaces it, with whatever it logged last); a
/// follower likewise; the leader and a follower together (the quorum is lost until they
/// are back); all three nodes at once. Same checks as `kill_rounds`.
fn harsh_rounds(imps: &[Impl], rounds: usize) {
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(imps));
    ens.wait_for_mode_all(WAIT);
    init_writer_tree(&ens.connect_string());
    let mut connects: Vec<String> = ens.sids().iter().map(|&s| ens.node(s).connect_string()).collect();
    connects.push(ens.connect_string());
    let writers = Writers::start(&connects);
    writers.wait_progress(50, WAIT, "warm-up");
    for round in 0..rounds {
        let leader = ens.wait_for_leader(WAIT);
        let fs = followers(&ens, leader);
        let (what, victims) = match round % 4 {
            0 => ("leader, restarted at once", vec![leader]),
            1 => ("follower, restarted at once", vec![fs[round % 2]]),
            2 => ("leader and a follower", vec![leader, fs[round % 2]]),
            _ => ("every node", ens.sids()),
        };
        writers.wait_progress(20, WAIT, &format!("round {round}: load before the kill"));
        let acked_before = writers.acked();
        let t_kill = Instant::now();
        for &v in &victims {
            ens.kill(v);
        }
        for &v in &victims {
            ens.node_mut(v).start();
        }
        ens.wait_for_mode_all(WAIT);
        let new_leader = ens.wait_for_leader(WAIT);
        let t_resume = writers.wait_progress(10, WAIT, &format!("round {round}: writes after killing {victims:?}"));
        eprintln!(
            "harsh round {round}: killed {what} {victims:?} after {acked_before} acked writes; leader {new_leader}, writes resumed after {:.2}s",
            (t_kill.elapsed()).as_secs_f64().max(t_resume.as_secs_f64())
        );
    }
    writers.wait_progress(10, WAIT, "after the last round");
    let outcomes = writers.finish();
    ens.wait_for_mode_all(WAIT);
    let tree = assert_identical_everywhere(&ens, "after the harsh rounds");
    let (c, s) = check_outcomes(&outcomes, &tree);
    assert_eq!(outcomes.errors.get("SessionExpired"), None, "a session expired: {:?}", outcomes.errors);
    eprintln!(
        "harsh rounds {imps:?}: {rounds} rounds, {c} acknowledged creates and {s} acknowledged CAS writes checked, {} creates / {} CAS with unknown outcome, errors {:?}, {:.1}s",
        outcomes.unknown_creates.len(),
        outcomes.unknown_cas.len(),
        outcomes.errors,
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn harsh_rounds_rust_ensemble() {
    let _g = serial();
    harsh_rounds(&[Impl::Ours, Impl::Ours, Impl::Ours], 8);
}

#[test]
fn harsh_rounds_mixed_ensemble() {
    let _g = serial();
    harsh_rounds(&[Impl::Ours, Impl::Apache, Impl::Ours], 4);
}

#[test]
fn kill_rounds_rust_ensemble() {
    let _g = serial();
    kill_rounds(&[Impl::Ours, Impl::Ours, Impl::Ours], 16);
}

#[test]
fn kill_rounds_mixed_ensemble() {
    let _g = serial();
    // Apache has the highest sid: it leads first, and leads again after round 2.
    kill_rounds(&[Impl::Ours, Impl::Ours, Impl::Apache], 6);
}

// ------------------------------------------------------------ sync modes --

/// Creates `n` znodes `{prefix}{i}` (data = their name), pipelined; all must succeed.
fn create_many(zk: &ZooKeeper, prefix: &str, n: usize) {
    let (tx, rx) = mpsc::channel();
    for i in 0..n {
        let tx = tx.clone();
        let p = format!("{prefix}{i}");
        zk.create_async(&p, Some(p.as_bytes()), &acl(), CreateMode::Persistent, move |r| {
            let _ = tx.send(r.map_err(|e| e.code));
        });
    }
    drop(tx);
    for _ in 0..n {
        let r = rx.recv_timeout(WAIT).expect("a create got no answer");
        r.unwrap_or_else(|c| panic!("create under {prefix}: {c:?}"));
    }
}

/// Waits until node `sid`'s `srvr` shows `zxid`.
fn wait_zxid(ens: &Ensemble, sid: u64, zxid: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let z = srvr_zxid(ens, sid);
        if z == zxid {
            return;
        }
        assert!(Instant::now() < deadline, "node {sid} is at {} instead of {}", hex(z), hex(zxid));
        thread::sleep(Duration::from_millis(20));
    }
}

fn re(s: &str) -> regex::Regex {
    regex::Regex::new(s).expect("regex")
}

fn followers(ens: &Ensemble, leader: u64) -> Vec<u64> {
    ens.sids().into_iter().filter(|&s| s != leader).collect()
}

/// A follower misses a few txns (fewer than the committed log holds): DIFF.
fn sync_diff(imps: &[Impl]) {
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(imps));
    ens.wait_for_mode_all(WAIT);
    let leader = ens.wait_for_leader(WAIT);
    let learner = followers(&ens, leader)[0];
    let zk = connect(&ens.node(leader).connect_string());
    zk.create("/d", None, &acl(), CreateMode::Persistent).expect("create /d");
    create_many(&zk, "/d/a", 10);
    let peer_zxid = srvr_zxid(&ens, leader);
    wait_zxid(&ens, learner, peer_zxid);
    ens.kill(learner);
    create_many(&zk, "/d/b", 20);
    let leader_zxid = srvr_zxid(&ens, leader);
    let (lfrom, ffrom) = (ens.node(leader).log_offset(), ens.node(learner).log_offset());
    ens.node_mut(learner).start();
    ens.wait_for_mode_all(WAIT);
    let f = ens.node(learner);
    f.wait_for_log(format!("Getting a diff from the leader {}", hex(leader_zxid)).as_str(), ffrom, WAIT);
    assert!(!f.log_since(ffrom).contains("Getting a snapshot"), "DIFF expected, not SNAP");
    let l = ens.node(leader);
    l.wait_for_log(
        &re(&format!("Synchronizing with Learner sid: {learner} maxCommittedLog={} .*peerLastZxid={}", hex(leader_zxid), hex(peer_zxid))),
        lfrom,
        WAIT,
    );
    l.wait_for_log(format!("Using committedLog for peer sid: {learner}").as_str(), lfrom, WAIT);
    l.wait_for_log(&re(&format!(r"Sending DIFF zxid={}\s+for peer sid: {learner}", hex(leader_zxid))), lfrom, WAIT);
    let tree = assert_identical_everywhere(&ens, "after the DIFF");
    assert_eq!(tree["/d"].1.num_children, 30);
    eprintln!("DIFF {imps:?}: learner {learner} from {} to {}, {} znodes identical on all nodes, {:.1}s", hex(peer_zxid), hex(leader_zxid), tree.len(), t0.elapsed().as_secs_f64());
}

/// A follower misses more txns than the committed log holds (commitLogCount is at least
/// 500) and the leader may not read its txn log for a sync (snapshotSizeFactor=-1):
/// SNAP. Then the learner restarts once more and must come back with what the snapshot
/// gave it (DIFF).
fn sync_snap(imps: &[Impl]) {
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(imps).cfg("snapshotSizeFactor=-1\ncommitLogCount=500\n"));
    ens.wait_for_mode_all(WAIT);
    let leader = ens.wait_for_leader(WAIT);
    let learner = followers(&ens, leader)[0];
    let zk = connect(&ens.node(leader).connect_string());
    zk.create("/s", None, &acl(), CreateMode::Persistent).expect("create /s");
    let peer_zxid = srvr_zxid(&ens, leader);
    wait_zxid(&ens, learner, peer_zxid);
    ens.kill(learner);
    create_many(&zk, "/s/n", 600);
    let leader_zxid = srvr_zxid(&ens, leader);
    let (lfrom, ffrom) = (ens.node(leader).log_offset(), ens.node(learner).log_offset());
    ens.node_mut(learner).start();
    ens.wait_for_mode_all(WAIT);
    let f = ens.node(learner);
    f.wait_for_log(format!("Getting a snapshot from leader {}", hex(leader_zxid)).as_str(), ffrom, WAIT);
    let l = ens.node(leader);
    l.wait_for_log(&re(&format!("Unhandled scenario for peer.*peerLastZxid={} txnLogSyncEnabled=false", hex(peer_zxid))), lfrom, WAIT);
    l.wait_for_log(
        format!("Sending snapshot last zxid of peer is {}, zxid of leader is {}", hex(peer_zxid), hex(leader_zxid)).as_str(),
        lfrom,
        WAIT,
    );
    let tree = assert_identical_everywhere(&ens, "after the SNAP");
    assert_eq!(tree["/s"].1.num_children, 600);
    // The snapshot was made durable before the learner acked NEWLEADER.
    let ffrom = ens.node(learner).log_offset();
    ens.kill(learner);
    let now = srvr_zxid(&ens, leader);
    ens.node_mut(learner).start();
    ens.wait_for_mode_all(WAIT);
    ens.node(learner).wait_for_log(format!("Getting a diff from the leader {}", hex(now)).as_str(), ffrom, WAIT);
    let again = assert_identical_everywhere(&ens, "after the learner restarted on the snapshot");
    assert_eq!(again, tree);
    eprintln!("SNAP {imps:?}: learner {learner} from {} to {}, {} znodes identical, {:.1}s", hex(peer_zxid), hex(leader_zxid), tree.len(), t0.elapsed().as_secs_f64());
}

/// What happens after the leader logged txns its followers (frozen with SIGSTOP) never
/// acked, and died.
#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    /// The followers are killed too, with the proposals unread in their sockets; they
    /// restart and form a new epoch; the old leader comes back before any new-epoch txn.
    Trunc,
    /// The same, but the new leader commits txns before the old leader comes back.
    NewEpochWrites,
    /// The followers resume (SIGCONT), read the proposals still in their sockets, log
    /// them, then see the leader gone.
    FollowersResume,
}

/// The leader logs txns no follower acks (both frozen with SIGSTOP), dies, and comes
/// back after the others formed a new epoch.
/// * `Trunc`: no follower has the txns; without new-epoch txns on the new leader,
///   upstream's rule gives the old leader a TRUNC to the new leader's last committed
///   zxid, and the unacknowledged txns are gone everywhere.
/// * `NewEpochWrites`: a truncation would cross an epoch: SNAP ("Cannot send TRUNC to
///   peer"); the txns are gone everywhere.
/// * `FollowersResume`: both followers logged the txns after all: they are part of the
///   new leader's history and committed in the new epoch (Zab keeps what a quorum
///   logged, acknowledged or not); the old leader gets a DIFF.
/// In each case the trees are identical, also after restarts from disk.
fn sync_trunc(imps: &[Impl], after: After) {
    let new_epoch_writes = after == After::NewEpochWrites;
    let resume = after == After::FollowersResume;
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(imps));
    ens.wait_for_mode_all(WAIT);
    let old = ens.wait_for_leader(WAIT);
    let others = followers(&ens, old);
    {
        let zk = connect(&ens.node(old).connect_string());
        zk.create("/t", None, &acl(), CreateMode::Persistent).expect("create /t");
        create_many(&zk, "/t/c", 20);
        zk.close();
    }
    // This session is committed while the quorum is whole.
    let writer = connect(&ens.node(old).connect_string());
    let committed = srvr_zxid(&ens, old);
    for &f in &others {
        wait_zxid(&ens, f, committed);
    }
    for &f in &others {
        ens.node(f).suspend();
    }
    let lost = 5;
    let (tx, rx) = mpsc::channel();
    for i in 0..lost {
        let tx = tx.clone();
        writer.create_async(&format!("/t/lost{i}"), Some(b"lost"), &acl(), CreateMode::Persistent, move |r| {
            let _ = tx.send(r.map_err(|e| e.code));
        });
    }
    drop(tx);
    // The leader logs its proposals at once; no follower can ack them.
    let deadline = Instant::now() + WAIT;
    while logged_zxids(&ens, old).last().copied() != Some(committed + lost as i64) {
        assert!(Instant::now() < deadline, "leader {old} did not log the {lost} proposals: {:?}", logged_zxids(&ens, old).last().map(|z| hex(*z)));
        thread::sleep(Duration::from_millis(20));
    }
    ens.kill(old);
    for &f in &others {
        if resume {
            ens.node(f).resume();
        } else {
            // Frozen followers die with the proposals still unread in their sockets.
            ens.kill(f);
        }
    }
    for _ in 0..lost {
        let r = rx.recv_timeout(WAIT).expect("a write to the dead leader got no answer");
        assert!(r.is_err(), "a write that no follower acked was acknowledged: {r:?}");
    }
    if !resume {
        for &f in &others {
            ens.node_mut(f).start();
        }
    }
    let new_leader = ens.wait_for_leader(WAIT);
    assert_ne!(new_leader, old);
    ens.wait_for_modes(&others, WAIT);
    let peer = committed + lost as i64;
    for &f in &others {
        let want = if resume { peer } else { committed };
        assert_eq!(logged_zxids(&ens, f).last().map(|z| hex(*z)), Some(hex(want)), "last txn logged by node {f}");
    }
    if new_epoch_writes {
        let zk = connect(&ens.node(new_leader).connect_string());
        create_many(&zk, "/t/new", 3);
    }
    let leader_zxid = srvr_zxid(&ens, new_leader);
    let (lfrom, ffrom) = (ens.node(new_leader).log_offset(), ens.node(old).log_offset());
    ens.node_mut(old).start();
    ens.wait_for_mode_all(WAIT);
    let l = ens.node(new_leader);
    let f = ens.node(old);
    let sync_line = l.wait_for_log(&re(&format!("Synchronizing with Learner sid: {old} .*peerLastZxid={}", hex(peer))), lfrom, WAIT);
    let kind;
    if resume {
        assert!(sync_line.line.contains(&format!("maxCommittedLog={}", hex(peer))), "{}", sync_line.line);
        l.wait_for_log(format!("Using committedLog for peer sid: {old}").as_str(), lfrom, WAIT);
        f.wait_for_log(format!("Getting a diff from the leader {}", hex(peer)).as_str(), ffrom, WAIT);
        kind = "DIFF";
    } else if new_epoch_writes {
        l.wait_for_log("Cannot send TRUNC to peer", lfrom, WAIT);
        l.wait_for_log(format!("Sending snapshot last zxid of peer is {}", hex(peer)).as_str(), lfrom, WAIT);
        f.wait_for_log(format!("Getting a snapshot from leader {}", hex(leader_zxid)).as_str(), ffrom, WAIT);
        kind = "SNAP";
    } else {
        assert!(sync_line.line.contains(&format!("maxCommittedLog={}", hex(committed))), "{}", sync_line.line);
        f.wait_for_log(format!("Truncating log to get in sync with the leader {}", hex(committed)).as_str(), ffrom, WAIT);
        assert!(!f.log_since(ffrom).contains("Getting a snapshot"), "TRUNC expected, not SNAP");
        // The txns are cut from the old leader's log itself.
        let z = logged_zxids(&ens, old);
        assert!(!z.iter().any(|&z| z > committed && z <= peer), "old leader's log still holds the truncated txns");
        kind = "TRUNC";
    }
    // Something written through the old leader reaches everyone.
    {
        let zk = connect(&ens.node(old).connect_string());
        zk.create("/t/after", Some(b"x"), &acl(), CreateMode::Persistent).expect("write through the old leader");
    }
    let check = |ens: &Ensemble, what: &str| {
        let tree = assert_identical_everywhere(ens, what);
        for i in 0..lost {
            let p = format!("/t/lost{i}");
            if resume {
                let (_, st) = tree.get(&p).unwrap_or_else(|| panic!("{what}: {p}, logged by a quorum, is lost"));
                assert_eq!(st.czxid, committed + 1 + i as i64, "{what}: {p} committed with another zxid");
            } else {
                assert!(!tree.contains_key(&p), "{what}: unacknowledged {p} survived");
            }
        }
        let n = 20 + 1 + if new_epoch_writes { 3 } else { 0 } + if resume { lost } else { 0 };
        assert_eq!(tree["/t"].1.num_children as usize, n, "{what}");
        tree
    };
    let tree = check(&ens, &format!("after the {kind}"));
    // Once more from disk: the old leader (all nodes when the followers kept the txns).
    let again_nodes = if resume { ens.sids() } else { vec![old] };
    for s in again_nodes {
        ens.kill(s);
        ens.node_mut(s).start();
        ens.wait_for_mode_all(WAIT);
    }
    let again = check(&ens, &format!("after restarting after the {kind}"));
    assert_eq!(again["/t/after"], tree["/t/after"]);
    drop(writer);
    eprintln!(
        "{kind} {imps:?}: old leader {old} had {}..{} uncommitted, new leader {new_leader} at {}; {} znodes identical, {:.1}s",
        hex(committed + 1),
        hex(peer),
        hex(leader_zxid),
        tree.len(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn sync_diff_rust() {
    let _g = serial();
    sync_diff(&[Impl::Ours, Impl::Ours, Impl::Ours]);
}

#[test]
fn sync_snap_rust() {
    let _g = serial();
    sync_snap(&[Impl::Ours, Impl::Ours, Impl::Ours]);
}

#[test]
fn sync_trunc_rust() {
    let _g = serial();
    sync_trunc(&[Impl::Ours, Impl::Ours, Impl::Ours], After::Trunc);
}

/// Regression test for the missing fastForwardDataBase (see `After::FollowersResume`):
/// the followers voted with their last applied zxid, and the txns they had logged
/// vanished from the new epoch — until a restart replayed them on top of it.
#[test]
fn followers_keep_logged_uncommitted_txns_rust() {
    let _g = serial();
    sync_trunc(&[Impl::Ours, Impl::Ours, Impl::Ours], After::FollowersResume);
}

/// The same with Apache only: what upstream does, which the Rust test asserts.
#[test]
fn followers_keep_logged_uncommitted_txns_apache() {
    let _g = serial();
    sync_trunc(&[Impl::Apache, Impl::Apache, Impl::Apache], After::FollowersResume);
}

#[test]
fn sync_trunc_across_epochs_is_snap_rust() {
    let _g = serial();
    sync_trunc(&[Impl::Ours, Impl::Ours, Impl::Ours], After::NewEpochWrites);
}

// Mixed layouts: the learner and the leader of each sync run different implementations.
// On empty data the highest sid leads; after the TRUNC dance the higher of the two
// others leads.

#[test]
fn sync_diff_rust_leader_apache_learner() {
    let _g = serial();
    sync_diff(&[Impl::Apache, Impl::Ours, Impl::Ours]);
}

#[test]
fn sync_snap_apache_leader_rust_learner() {
    let _g = serial();
    sync_snap(&[Impl::Ours, Impl::Ours, Impl::Apache]);
}

#[test]
fn sync_trunc_apache_leader_rust_learner() {
    let _g = serial();
    // Old leader 3 (ours) is cut back by the new leader 2 (Apache).
    sync_trunc(&[Impl::Ours, Impl::Apache, Impl::Ours], After::Trunc);
}

#[test]
fn sync_trunc_rust_leader_apache_learner() {
    let _g = serial();
    // Old leader 3 (Apache) is cut back by the new leader 2 (ours).
    sync_trunc(&[Impl::Ours, Impl::Ours, Impl::Apache], After::Trunc);
}

// -------------------------------------------------------- rolling replacement --

/// A loaded Apache ensemble is replaced node by node by ours (same zoo.cfg, dataDir and
/// myid; each node stopped with SIGTERM as for a planned upgrade) while clients write,
/// then back to Apache the same way. Nothing acknowledged is lost, no session expires,
/// and all nodes end with identical trees.
#[test]
fn rolling_replacement_apache_to_rust_and_back() {
    let _g = serial();
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(&[Impl::Apache, Impl::Apache, Impl::Apache]));
    ens.wait_for_mode_all(WAIT);
    {
        let zk = connect(&ens.connect_string());
        zk.create("/load", Some(b"load"), &acl(), CreateMode::Persistent).expect("create /load");
        create_many(&zk, "/load/n", 300);
        zk.set_data("/load/n7", Some(b"changed"), 0).expect("setData");
        zk.delete("/load/n8", 0).expect("delete");
    }
    init_writer_tree(&ens.connect_string());
    let writers = Writers::start(&[ens.connect_string(), ens.connect_string()]);
    writers.wait_progress(20, WAIT, "warm-up");
    for imp in [Impl::Ours, Impl::Apache] {
        for sid in ens.sids() {
            let leader = ens.wait_for_leader(WAIT);
            let t = Instant::now();
            let acked = writers.acked();
            let from = ens.node(sid).log_offset();
            ens.node_mut(sid).stop(Duration::from_secs(15));
            ens.node_mut(sid).set_impl(imp);
            ens.node_mut(sid).start();
            ens.wait_for_mode_all(WAIT);
            writers.wait_progress(20, WAIT, &format!("writes after node {sid} became {imp:?}"));
            // Back before the others finished their election, it may lead again.
            let kind = if ens.leader() == Some(sid) { "leads" } else { sync_kind(&ens, sid, from) };
            assert_ne!(kind, "?", "node {sid} ({imp:?}) follows without a sync line\n{}", ens.node(sid).log_since(from));
            eprintln!(
                "node {sid} ({}) -> {imp:?}: back ({kind}) and writes going after {:.2}s, {} writes acked meanwhile",
                if sid == leader { "leader" } else { "follower" },
                t.elapsed().as_secs_f64(),
                writers.acked() - acked
            );
        }
    }
    let outcomes = writers.finish();
    assert_eq!(outcomes.errors.get("SessionExpired"), None, "a session expired: {:?}", outcomes.errors);
    let tree = assert_identical_everywhere(&ens, "after the rolling replacement");
    let (c, s) = check_outcomes(&outcomes, &tree);
    assert_eq!(tree["/load"].1.num_children, 299);
    assert_eq!(data_str(&tree["/load/n7"].0), "changed");
    eprintln!(
        "rolling replacement: {c} acknowledged creates and {s} acknowledged CAS writes checked, errors {:?}, {} znodes identical on 3 Apache nodes, {:.1}s",
        outcomes.errors,
        tree.len(),
        t0.elapsed().as_secs_f64()
    );
}

// ------------------------------------------------------- syncs under load --

/// A follower is killed and restarted many times while writers keep the leader
/// committing: each restart is a learner sync (the leader decides DIFF/TRUNC/SNAP under
/// its committed log's lock) racing the commit path. Regression test for the leader's
/// lock-order deadlock between the two (LearnerHandler read the tree inside the
/// committed log's lock; commits take them the other way round): a hung leader stops
/// answering `srvr`, and no follower comes back.
#[test]
fn follower_rejoins_repeatedly_under_write_load() {
    let _g = serial();
    let t0 = Instant::now();
    let mut ens = Ensemble::start(spec(&[Impl::Ours, Impl::Ours, Impl::Ours]));
    ens.wait_for_mode_all(WAIT);
    let leader = ens.wait_for_leader(WAIT);
    init_writer_tree(&ens.connect_string());
    let cs = ens.node(leader).connect_string();
    let writers = Writers::start(&[cs.clone(), cs.clone(), cs.clone(), cs]);
    writers.wait_progress(50, WAIT, "warm-up");
    let victims = followers(&ens, leader);
    let restarts = 40;
    for i in 0..restarts {
        let v = victims[i % victims.len()];
        ens.kill(v);
        ens.node_mut(v).start();
        ens.wait_for_mode_all(WAIT);
        writers.wait_progress(5, WAIT, &format!("writes after restart {i} of node {v}"));
    }
    assert_eq!(ens.leader(), Some(leader), "the leader changed");
    let outcomes = writers.finish();
    let tree = assert_identical_everywhere(&ens, "after the follower restarts");
    let (c, s) = check_outcomes(&outcomes, &tree);
    eprintln!("{restarts} follower restarts under load: {c} creates and {s} CAS writes checked, {:.1}s", t0.elapsed().as_secs_f64());
}
