//! Zab interop: the same deterministic client workload runs against ensembles of our
//! peers, of Apache ZooKeeper 3.8 peers, and of both mixed, and every run must produce
//! the transcript of an all-Apache 3-node ensemble running that workload.
//!
//! Layouts (tickTime 500, initLimit 10, syncLimit 5; the harness starts the participant
//! with the highest sid first, so on empty data it leads — asserted through `srvr`):
//!
//! | test                              | sid 1  | sid 2  | sid 3  | sid 4/5          |
//! |-----------------------------------|--------|--------|--------|------------------|
//! | (reference, run once per binary)  | Apache | Apache | Apache |                  |
//! | `rust_only_3_nodes`               | ours   | ours   | ours   |                  |
//! | `rust_only_5_nodes`               | ours   | ours   | ours   | ours, ours       |
//! | `rust_leader_java_followers`      | Apache | Apache | ours   |                  |
//! | `java_leader_rust_followers`      | ours   | ours   | Apache |                  |
//! | `rust_observer_under_java_leader` | Apache | Apache | Apache | ours (observer)  |
//! | `java_observer_under_rust_leader` | ours   | ours   | ours   | Apache (observer)|
//!
//! Every layout names three nodes: L (the leader), A (a follower, or the observer when
//! there is one) and C (another follower). The workload (see [`run_layout`]):
//!
//! 1. `ruok`; `srvr`/`stat` Mode lines and line keys as Apache's peers show them;
//! 2. kazoo: `tests/interop/kazoo_transcript.py` (the standalone interop scenario:
//!    CRUD with versions, ephemerals, sequentials, data/child/exists watches, ACLs,
//!    transactions) through A;
//! 3. our client library, one session on each of A, L, C: creates of every mode
//!    (persistent, ephemeral, sequential, container, TTL), setData/delete with good and
//!    bad versions, multi (success, failure, read), getChildren, ACLs with auth carried
//!    through forwarded requests; writes through one node are read on the others after
//!    `sync`; data, child, exists, persistent and persistent-recursive watches set on C
//!    fire for writes through A; an ephemeral vanishes everywhere when its session closes;
//! 4. Java zkCli (batch mode, one JVM per command) through A, C and L;
//! 5. session expiry: a kazoo process on A creates an ephemeral and dies without closing
//!    its session (4 s timeout): the node outlives the connection, then vanishes on every
//!    node, and a watch on A sees it go;
//! 6. failover: kazoo (hosts "A,C,L", not shuffled) and our client (on A, "A,L") hold an
//!    ephemeral and watches; A is killed (SIGKILL); both reconnect (kazoo to C, ours to
//!    L) with the same session, the ephemerals survive, and the watches set before the
//!    failover fire after it. Then A restarts on its dataDir and resyncs;
//! 7. the whole tree (paths, data, ACLs, stat without ctime/mtime) read from every node
//!    after `sync` is identical on all nodes, and — without zxids and session ids — the
//!    same as the reference's.
//!
//! The transcript never names nodes by sid or implementation, so the reference applies to
//! every layout (the observer layouts too: only the Mode checks know who observes).
//!
//! `ZKRS_TEST_SHOW=1 cargo test --test zab_interop -- --nocapture` prints the
//! transcripts; `ZKRS_TEST_OURS=apache` runs every node on Apache (a check of the test).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl, Mode, PeerType};
use regex::Regex;
use common::{describe_output, line_diff, run_java_zkcli, run_kazoo};
use zookeeper::client::watched_event::event_type_name;
use zookeeper::client::zookeeper::ops;
use zookeeper::client::{KeeperError, WatchedEvent, Watcher, ZooKeeper};
use zookeeper::proto::data::{Id, Stat, ACL};
use zookeeper::proto::multi::OpResult;
use zookeeper::proto::{add_watch_mode, event_type, ids, perms, Code, CreateMode};
use zookeeper::server::auth::digest_authentication_provider::generate_digest;

const TICK_MS: u32 = 500;
/// Bound of every wait for a session, an event or a convergence.
const WAIT: Duration = Duration::from_secs(20);
/// Bound of the ensemble's (re)start until every node shows a Mode.
const START_WAIT: Duration = Duration::from_secs(60);
/// Session timeout of our clients (within tickTime*2 .. tickTime*20).
const SESSION_MS: i32 = 6000;
/// Writes while A is down: more than the leader's committed log keeps (500).
const BURST: usize = 600;
/// Rounds of the pipelined workload per session.
const PIPELINED: usize = 200;

const CONTAINER_CHECK: &str = "-Dznode.container.checkIntervalMs=500";

const KAZOO_TRANSCRIPT: &str = include_str!("interop/kazoo_transcript.py");

// ---------------------------------------------------------------- layouts --

#[derive(Clone)]
struct Layout {
    name: &'static str,
    spec: EnsembleSpec,
    leader: u64,
    /// Clients' main node; killed and restarted in the failover step.
    a: u64,
    /// Another follower.
    c: u64,
}

fn spec(imps: &[Impl]) -> EnsembleSpec {
    // snapshotSizeFactor=-1 (both read it as the property zookeeper.snapshotSizeFactor):
    // a learner too far behind for the committed log gets a SNAP, never a txn-log DIFF.
    // znode.container.checkIntervalMs (a JVM property for both): the leader looks for
    // empty containers and expired TTL nodes every half second instead of every minute.
    EnsembleSpec::of(imps)
        .tick_time(TICK_MS)
        .init_limit(10)
        .sync_limit(5)
        .cfg("snapshotSizeFactor=-1")
        .apache_jvm_arg(CONTAINER_CHECK)
        .ours_arg(CONTAINER_CHECK)
}

use Impl::{Apache as J, Ours as R};

fn apache_3() -> Layout {
    Layout { name: "apache-3 (reference)", spec: spec(&[J, J, J]), leader: 3, a: 2, c: 1 }
}

// ------------------------------------------------------------------ tests --

#[test]
fn rust_only_3_nodes() {
    check_layout(Layout { name: "rust-3", spec: spec(&[R, R, R]), leader: 3, a: 2, c: 1 });
}

#[test]
fn rust_only_5_nodes() {
    check_layout(Layout { name: "rust-5", spec: spec(&[R, R, R, R, R]), leader: 5, a: 4, c: 3 });
}

#[test]
fn rust_leader_java_followers() {
    check_layout(Layout { name: "rust leader + 2 java", spec: spec(&[J, J, R]), leader: 3, a: 2, c: 1 });
}

#[test]
fn java_leader_rust_followers() {
    check_layout(Layout { name: "java leader + 2 rust", spec: spec(&[R, R, J]), leader: 3, a: 2, c: 1 });
}

#[test]
fn rust_observer_under_java_leader() {
    check_layout(Layout { name: "java-3 + rust observer", spec: spec(&[J, J, J]).with_observer(R), leader: 3, a: 4, c: 2 });
}

#[test]
fn java_observer_under_rust_leader() {
    check_layout(Layout { name: "rust-3 + java observer", spec: spec(&[R, R, R]).with_observer(J), leader: 3, a: 4, c: 2 });
}

/// Runs the layout, then compares with the reference (run once, by whichever test gets
/// there first, while the other test thread goes on with its own layout).
fn check_layout(layout: Layout) {
    let run = run_layout(&layout);
    let reference = apache_reference();
    if std::env::var_os("ZKRS_TEST_SHOW").is_some() {
        eprintln!("===== {} =====\n{}=====", layout.name, run.transcript);
    }
    if run.transcript != reference.transcript {
        panic!(
            "{}: the transcript differs from the all-Apache ensemble's\n{}",
            layout.name,
            line_diff("apache-3", &reference.transcript, layout.name, &run.transcript)
        );
    }
    // srvr/stat show the lines Apache's peers show in the same mode (an observer's are
    // a follower's: only the leader adds "Proposal sizes").
    let mut mntr_diffs = Vec::new();
    for n in &run.four_letter {
        let want = if n.mode == Mode::Leader { &reference.leader_keys } else { &reference.follower_keys };
        assert_eq!(&n.srvr_keys, &want.0, "{}: srvr lines of node {} ({:?} {:?})\n{}", layout.name, n.sid, n.imp, n.mode, n.srvr);
        assert_eq!(&n.stat_keys, &want.1, "{}: stat lines of node {} ({:?} {:?})\n{}", layout.name, n.sid, n.imp, n.mode, n.stat);
        // mntr: the keys of Apache's peer in the same mode. The reference has no observer:
        // an observer's are a follower's and zk_observer_master_id (ObserverZooKeeperServer
        // .dumpMonitorValues), which the Apache observer of java_observer_under_rust_leader
        // confirms.
        let mut want_mntr = want.2.clone();
        if n.mode == Mode::Observer {
            want_mntr.push("zk_observer_master_id".to_string());
            want_mntr.sort();
        }
        let missing: Vec<&String> = want_mntr.iter().filter(|k| !n.mntr_keys.contains(k)).collect();
        let extra: Vec<&String> = n.mntr_keys.iter().filter(|k| !want_mntr.contains(k)).collect();
        if !missing.is_empty() || !extra.is_empty() {
            mntr_diffs.push(format!("node {} ({:?} {:?}): missing {missing:?}, extra {extra:?}\n{}", n.sid, n.imp, n.mode, n.mntr));
        }
    }
    assert!(mntr_diffs.is_empty(), "{}: mntr keys differ from those of Apache's peers in the same mode:\n{}", layout.name, mntr_diffs.join("\n"));
    eprintln!("[zab_interop] {}: {}", layout.name, run.timings);
}

fn apache_reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let run = run_layout(&apache_3());
        eprintln!("[zab_interop] reference: {}", run.timings);
        for line in [
            "get /kz/a -> (b'v1', Stat(version=0 cversion=0 aversion=0 dataLength=2 numChildren=0 ephemeral=False))",
            "ephemeral: event exists DELETED /kz/eph",
            "commit failing tx -> [RolledBackError, BadVersionError, RuntimeInconsistency]",
            "A set /zab/p p2 version=0 -> BadVersion",
            "C watch: child NodeChildrenChanged /zab",
            "C watch: recursive NodeDeleted /zab/r/x",
            "A multi failing -> BadVersion [Ok, BadVersion, RuntimeInconsistency]",
            "L get /zab/acl -> NoAuth",
            "[stderr] version No is not valid : /zab/cli",
            "expired: /zab/exp gone on every node -> true",
            "ours: session kept -> true",
            "kazoo: watch fired after failover: True",
            "kazoo: session kept: True",
            "tree: identical on every node -> true",
        ] {
            assert!(
                run.transcript.lines().any(|l| l == line),
                "the reference transcript lacks {line:?}: the workload is broken\n{}",
                run.transcript
            );
        }
        let keys = |m: Mode| {
            run.four_letter
                .iter()
                .find(|n| n.mode == m)
                .map(|n| (n.srvr_keys.clone(), n.stat_keys.clone(), n.mntr_keys.clone()))
                .unwrap_or_else(|| panic!("reference: no node in mode {m:?}"))
        };
        let leader_keys = keys(Mode::Leader);
        let follower_keys = keys(Mode::Follower);
        assert!(leader_keys.0.iter().any(|k| k == "Proposal sizes last/min/max"), "{leader_keys:?}");
        Reference { transcript: run.transcript.clone(), leader_keys, follower_keys }
    })
}

struct Reference {
    transcript: String,
    /// (srvr keys, stat keys, mntr keys) of Apache's leader and of a follower.
    leader_keys: (Vec<String>, Vec<String>, Vec<String>),
    follower_keys: (Vec<String>, Vec<String>, Vec<String>),
}

/// What one layout produced.
struct Run {
    transcript: String,
    four_letter: Vec<FourLetter>,
    timings: String,
}

struct FourLetter {
    sid: u64,
    imp: Impl,
    mode: Mode,
    srvr: String,
    stat: String,
    mntr: String,
    srvr_keys: Vec<String>,
    stat_keys: Vec<String>,
    mntr_keys: Vec<String>,
}

// ------------------------------------------------------------- transcript --

#[derive(Default)]
struct Transcript {
    text: String,
}

impl Transcript {
    fn say(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }
    fn section(&mut self, name: &str) {
        self.say(format!("== {name}"));
    }
    fn step(&mut self, label: &str, result: String) {
        self.say(format!("{label} -> {result}"));
    }
}

/// Elapsed times of the phases, for the report.
struct Timings {
    start: Instant,
    last: Instant,
    parts: Vec<String>,
}

impl Timings {
    fn new() -> Timings {
        let now = Instant::now();
        Timings { start: now, last: now, parts: Vec::new() }
    }
    fn lap(&mut self, what: &str) {
        let now = Instant::now();
        self.parts.push(format!("{what} {:.1}s", (now - self.last).as_secs_f64()));
        self.last = now;
    }
    fn note(&mut self, what: String) {
        self.parts.push(what);
    }
    fn summary(&self) -> String {
        format!("total {:.1}s: {}", self.start.elapsed().as_secs_f64(), self.parts.join(", "))
    }
}

// ------------------------------------------------------- result rendering --

fn data_str(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) if b.len() <= 64 && b.iter().all(|c| (0x20..0x7f).contains(c)) => format!("{:?}", String::from_utf8_lossy(b)),
        Some(b) => format!("<{} bytes fnv={:016x}>", b.len(), fnv(b)),
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3))
}

/// A Stat without zxids, times and session ids.
fn stat_str(s: &Stat) -> String {
    format!(
        "Stat(v={} cv={} av={} len={} kids={} eph={})",
        s.version,
        s.cversion,
        s.aversion,
        s.data_length,
        s.num_children,
        s.ephemeral_owner != 0
    )
}

fn acl_str(acl: &[ACL]) -> String {
    let v: Vec<String> = acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect();
    format!("[{}]", v.join(", "))
}

trait Show {
    fn show(&self) -> String;
}
impl Show for () {
    fn show(&self) -> String {
        "ok".into()
    }
}
impl Show for String {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}
impl Show for Stat {
    fn show(&self) -> String {
        stat_str(self)
    }
}
impl Show for Option<Stat> {
    fn show(&self) -> String {
        self.as_ref().map_or("None".into(), stat_str)
    }
}
impl Show for (Option<Vec<u8>>, Stat) {
    fn show(&self) -> String {
        format!("({} {})", data_str(&self.0), stat_str(&self.1))
    }
}
impl Show for (String, Stat) {
    fn show(&self) -> String {
        format!("({:?} {})", self.0, stat_str(&self.1))
    }
}
impl Show for (Vec<ACL>, Stat) {
    fn show(&self) -> String {
        format!("({} {})", acl_str(&self.0), stat_str(&self.1))
    }
}
impl Show for Vec<String> {
    fn show(&self) -> String {
        let mut v = self.clone();
        v.sort();
        format!("{v:?}")
    }
}

fn show<T: Show>(r: &Result<T, KeeperError>) -> String {
    match r {
        Ok(v) => v.show(),
        Err(e) => format!("{:?}", e.code),
    }
}

fn op_result_str(r: &OpResult) -> String {
    match r {
        OpResult::Create { path } => format!("create {path}"),
        OpResult::Create2 { path, stat } => format!("create {path} {}", stat_str(stat)),
        OpResult::Delete => "delete".into(),
        OpResult::SetData { stat } => format!("set {}", stat_str(stat)),
        OpResult::Check => "check".into(),
        OpResult::GetChildren { children } => {
            let mut c = children.clone();
            c.sort();
            format!("children {c:?}")
        }
        OpResult::GetData { data, stat } => format!("data {} {}", data_str(data), stat_str(stat)),
        OpResult::Error { err } => Code::from_i32(*err).map_or_else(|| format!("err {err}"), |c| format!("{c:?}")),
    }
}

fn multi_str(r: &Result<Vec<OpResult>, (KeeperError, Vec<OpResult>)>) -> String {
    match r {
        Ok(v) => format!("ok [{}]", v.iter().map(op_result_str).collect::<Vec<_>>().join(", ")),
        Err((e, v)) => format!("{:?} [{}]", e.code, v.iter().map(op_result_str).collect::<Vec<_>>().join(", ")),
    }
}

// ---------------------------------------------------------------- clients --

/// A session on `connect` (waits until it is connected). The default watcher records
/// the connection states it sees.
fn connect(connect: &str) -> (ZooKeeper, Events) {
    connect_to(connect)
}

fn connect_to(connect: &str) -> (ZooKeeper, Events) {
    let states = Events::default();
    let zk = ZooKeeper::connect(connect, SESSION_MS, Some(states.state_watcher())).expect("connect");
    wait_until(WAIT, || zk.state().is_connected(), || format!("no session on {connect} within {WAIT:?}"));
    (zk, states)
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool, what: impl FnOnce() -> String) {
    let end = Instant::now() + limit;
    while !ok() {
        if Instant::now() >= end {
            panic!("{}", what());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Watch events of one or more watchers, in delivery order ("tag Type path").
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn watcher(&self, tag: &str) -> Watcher {
        let (log, tag) = (self.0.clone(), tag.to_string());
        Arc::new(move |e: &WatchedEvent| {
            if e.event_type != event_type::NONE {
                log.lock().unwrap().push(format!("{tag} {} {}", event_type_name(e.event_type), e.path.as_deref().unwrap_or("null")));
            }
        })
    }
    /// Records connection states (events of type None) only.
    fn state_watcher(&self) -> Watcher {
        let log = self.0.clone();
        Arc::new(move |e: &WatchedEvent| {
            if e.event_type == event_type::NONE {
                log.lock().unwrap().push(e.to_string());
            }
        })
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits for `n` events, then lets everything the server sent before a sync reach
    /// the watchers (the sync's callback runs on the event thread after them), and
    /// prints what came (sorted when several watches fire for one change: the server
    /// sends them in no particular order).
    fn expect(&self, t: &mut Transcript, zk: &ZooKeeper, label: &str, n: usize, sort: bool) {
        let end = Instant::now() + WAIT;
        while self.len() < n && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        barrier(zk);
        let mut got = self.take();
        if got.len() < n {
            got.push(format!("TIMEOUT waiting for {} more", n - got.len()));
        }
        if sort {
            got.sort();
        }
        for e in got {
            t.say(format!("{label}: {e}"));
        }
    }

    /// Nothing more came (after a sync round trip).
    fn expect_none(&self, t: &mut Transcript, zk: &ZooKeeper, label: &str) {
        barrier(zk);
        let extra = self.take();
        t.say(format!("{label}: no further event -> {}", extra.is_empty()));
        for e in extra {
            t.say(format!("{label}: unexpected event {e}"));
        }
    }
}

/// A sync whose callback runs on the event thread: once it ran, every notification the
/// server sent before the sync's reply has been handed to its watchers.
fn barrier(zk: &ZooKeeper) {
    let (tx, rx) = mpsc::channel();
    zk.sync_async("/", move |r| {
        let _ = tx.send(r.is_ok());
    });
    match rx.recv_timeout(WAIT) {
        Ok(true) => {}
        other => panic!("sync barrier failed: {other:?}"),
    }
}

/// `cons` of a node lists the session.
fn has_session(ens: &Ensemble, sid: u64, session: i64) -> bool {
    ens.node(sid).four_letter("cons").contains(&format!("sid=0x{session:x},"))
}

/// The name of the node whose `cons` lists the session ("none" if no running node's does).
fn session_node(ens: &Ensemble, l: &Layout, session: i64) -> String {
    let names = [("A", l.a), ("L", l.leader), ("C", l.c)];
    let mut on: Vec<String> = ens
        .running()
        .into_iter()
        .filter(|&sid| has_session(ens, sid, session))
        .map(|sid| names.iter().find(|n| n.1 == sid).map_or(format!("node {sid}"), |n| n.0.to_string()))
        .collect();
    if on.is_empty() {
        on.push("none".into());
    }
    on.join(",")
}

// ---------------------------------------------------------------- zkCli --

fn java_noise(line: &str) -> bool {
    if line.starts_with("SLF4J:") || line.starts_with("Picked up ") {
        return true;
    }
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((_, after)) = rest.split_once("] ") {
            return ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "].iter().any(|l| after.starts_with(l));
        }
    }
    false
}

/// One Java zkCli batch command; stdout, stderr (without log lines) and the exit status
/// go to the transcript with dates, zxids and session ids masked.
fn zkcli(t: &mut Transcript, raw: &mut String, node: &str, connect: &str, args: &[&str]) {
    let mut full = vec!["-timeout", "2000"];
    full.extend_from_slice(args);
    let o = run_java_zkcli(connect, &full);
    raw.push_str(&describe_output(&format!("zkCli {} ({node})", args.join(" ")), &o));
    t.say(format!("$ zkCli@{node} {}", args.join(" ")));
    for (text, is_err) in [(&o.stdout, false), (&o.stderr, true)] {
        for line in String::from_utf8_lossy(text).replace(connect, "<server>").lines() {
            if is_err && java_noise(line) {
                continue;
            }
            let l = match line.split_once(" = ") {
                Some(("ctime" | "mtime", _)) => format!("{} = <date>", &line[..5]),
                Some((k @ ("cZxid" | "mZxid" | "pZxid"), _)) => format!("{k} = <zxid>"),
                Some(("ephemeralOwner", v)) if v != "0x0" => "ephemeralOwner = <session>".to_string(),
                _ => line.to_string(),
            };
            t.say(if is_err { format!("[stderr] {l}") } else { l });
        }
    }
    t.say(format!("[exit {:?}]", o.status.code()));
}

// ---------------------------------------------------------------- kazoo --

/// Holds an ephemeral and a data watch across the failover of its node. Talks to the
/// test through files in @CTL@: READY (with the session id) once set up, RECONNECTED
/// once it is connected again after a suspension. kazoo 2.8 drops one-shot watches on a
/// disconnect (and never sends SetWatches); its DataWatch recipe is how a kazoo
/// application keeps watching across a failover: it reads the node again on reconnect
/// and calls back once per new version.
const KAZOO_FAILOVER: &str = r#"
import os, sys, threading, time
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.recipe.watchers import DataWatch

CTL = "@CTL@"

def mark(name, text=""):
    tmp = os.path.join(CTL, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(CTL, name))

states = []
zk = KazooClient(hosts=sys.argv[1], timeout=6.0, randomize_hosts=False,
                 connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.2})
zk.add_listener(lambda s: states.append(s))
zk.start(timeout=20)
sid = zk.client_id[0]
print("create /zab/fo-py ephemeral -> %r" % zk.create("/zab/fo-py", b"py", ephemeral=True))
calls = []
changed = threading.Event()
def on_data(data, stat):
    calls.append(data)
    if data == b"1":
        changed.set()
DataWatch(zk, "/zab/fo", on_data)
mark("READY", "%x" % sid)
end = time.time() + 30
while time.time() < end and KazooState.SUSPENDED not in states:
    time.sleep(0.01)
print("suspended: %s" % (KazooState.SUSPENDED in states))
while time.time() < end and zk.state != KazooState.CONNECTED:
    time.sleep(0.01)
print("reconnected: %s" % (zk.state == KazooState.CONNECTED))
mark("RECONNECTED")
print("watch fired after failover: %s" % changed.wait(20))
print("data watch calls: %s" % calls)
print("session kept: %s" % (zk.client_id[0] == sid))
st = zk.exists("/zab/fo-py")
print("ephemeral kept: %s" % (st is not None and st.ephemeralOwner == sid))
print("states: %s" % states)
zk.stop()
zk.close()
print("DONE")
"#;

/// Creates an ephemeral (@PATH@) and dies without closing its session.
const KAZOO_EXPIRE: &str = r#"
import os, sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=4.0)
zk.start(timeout=20)
print("create @PATH@ ephemeral -> %r" % zk.create("@PATH@", b"x", ephemeral=True))
sys.stdout.flush()
os._exit(0)
"#;

fn wait_file(p: &Path, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn kazoo_lines(t: &mut Transcript, prefix: &str, o: &Output) {
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        t.say(format!("{prefix}{l}"));
    }
    if !o.status.success() {
        t.say(format!("{prefix}[exit {:?}]", o.status.code()));
    }
}

// ----------------------------------------------------------------- tree --

/// Every node of the tree, read through `zk` after a sync: "path data acl stat" with
/// the whole stat except ctime/mtime (`exact`), or without zxids and session ids.
fn dump_tree(zk: &ZooKeeper, exact: bool) -> Vec<String> {
    zk.sync("/").expect("sync before the dump");
    let mut out = Vec::new();
    let mut todo = vec!["/".to_string()];
    while let Some(path) = todo.pop() {
        let stat = zk.exists(&path, None).unwrap_or_else(|e| panic!("exists {path}: {e}")).unwrap_or_else(|| panic!("{path} vanished"));
        let data = match zk.get_data(&path, None) {
            Ok(_) if path == "/zookeeper/config" && !exact => "<config>".to_string(),
            Ok((d, _)) => data_str(&d),
            Err(e) => format!("<{:?}>", e.code),
        };
        let acl = match zk.get_acl(&path) {
            Ok((a, _)) => acl_str(&a),
            Err(e) => format!("<{:?}>", e.code),
        };
        let s = &stat;
        let st = if exact {
            format!(
                "czxid={:x} mzxid={:x} pzxid={:x} v={} cv={} av={} owner={:x} len={} kids={}",
                s.czxid, s.mzxid, s.pzxid, s.version, s.cversion, s.aversion, s.ephemeral_owner, s.data_length, s.num_children
            )
        } else if path == "/zookeeper/config" {
            format!("v={} cv={} av={} kids={}", s.version, s.cversion, s.aversion, s.num_children)
        } else {
            stat_str(s)
        };
        out.push(format!("{path} {data} {acl} {st}"));
        let mut kids = zk.get_children(&path, None).unwrap_or_default();
        kids.sort();
        for k in kids.into_iter().rev() {
            todo.push(if path == "/" { format!("/{k}") } else { format!("{path}/{k}") });
        }
    }
    out
}

// -------------------------------------------------------------- workload --

fn expected_mode(ens: &Ensemble, leader: u64, sid: u64) -> Mode {
    if sid == leader {
        Mode::Leader
    } else if ens.node(sid).peer_type() == PeerType::Observer {
        Mode::Observer
    } else {
        Mode::Follower
    }
}

/// Waits (bounded) until every node of `sids` shows a Mode and exactly one leads: right
/// after a leader's death a follower may still answer `srvr` as one for a moment.
fn wait_for_one_leader(ens: &Ensemble, sids: &[u64], name: &str) -> BTreeMap<u64, Mode> {
    let end = Instant::now() + START_WAIT;
    loop {
        let modes = ens.wait_for_modes(sids, START_WAIT);
        if modes.values().filter(|m| **m == Mode::Leader).count() == 1 {
            return modes;
        }
        if Instant::now() >= end {
            panic!("{name}: no single leader among {sids:?} within {START_WAIT:?}: {modes:?}\n{}", ens.describe_all(40));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn assert_modes(ens: &Ensemble, leader: u64, modes: &BTreeMap<u64, Mode>, name: &str, when: &str) {
    let want: BTreeMap<u64, Mode> = modes.keys().map(|&s| (s, expected_mode(ens, leader, s))).collect();
    if modes != &want {
        panic!("{name}: modes {when}: {modes:?}, expected {want:?}\n{}", ens.describe_all(40));
    }
}

/// The keys of a `mntr` answer, sorted, with learner sids replaced by "<sid>"
/// (`zk_<...>_<sid>_learner_handler_qp_size`), without the JVM pause monitor's (we have
/// no JVM; tests/four_letter_words.rs leaves them out too).
fn mntr_keys(answer: &str, ens: &Ensemble) -> Vec<String> {
    let mut keys: Vec<String> = answer
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|k| !k.is_empty() && !k.contains("_jvm_pause_time_ms"))
        .map(|k| {
            let mut k = k.to_string();
            for sid in ens.sids() {
                k = k.replace(&format!("_{sid}_learner_handler"), "_<sid>_learner_handler");
            }
            k
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn keys_of(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        .map(|l| l.split(':').next().unwrap_or("").to_string())
        .collect()
}

/// One long-lived session per running node (alice's auth, single host): views, syncs,
/// writes through a given node, and the final dumps. A node's probe is closed before the
/// node is killed (so that its closeSession is not left for later) and opened again
/// after its restart.
struct Probes {
    map: BTreeMap<u64, ZooKeeper>,
}

impl Probes {
    fn open(&mut self, ens: &Ensemble, sid: u64) {
        let (zk, _) = connect(&ens.node(sid).connect_string());
        zk.add_auth_info("digest", b"alice:secret");
        self.map.insert(sid, zk);
    }
    fn close(&mut self, sid: u64) {
        if let Some(zk) = self.map.remove(&sid) {
            zk.close();
        }
    }
    fn get(&self, sid: u64) -> &ZooKeeper {
        self.map.get(&sid).unwrap_or_else(|| panic!("no probe on node {sid}"))
    }
    /// Every probed node has applied everything committed before this call.
    fn sync_all(&self) {
        for (sid, zk) in &self.map {
            zk.sync("/").unwrap_or_else(|e| panic!("sync on node {sid}: {e}"));
        }
    }
    /// Does any probed node still have `path`?
    fn anywhere(&self, path: &str) -> bool {
        self.sync_all();
        self.map.values().any(|zk| zk.exists(path, None).ok().flatten().is_some())
    }
}

/// Waits until `path` is gone from every probed node (bounded); true if it went.
fn wait_gone_everywhere(probes: &Probes, path: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if !probes.anywhere(path) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The participant that wins an election among `alive` nodes that all have the same
/// history: the highest sid.
fn next_leader(ens: &Ensemble, alive: &[u64]) -> u64 {
    alive.iter().copied().filter(|&s| ens.node(s).peer_type() == PeerType::Participant).max().expect("a participant")
}

fn run_layout(l: &Layout) -> Run {
    if std::env::var_os("ZAB_IT_LOG").is_some() {
        let _ = env_logger::builder().is_test(true).try_init();
    }
    let mut tm = Timings::new();
    // The leader-to-be first, and the others only once its election runs: the harness
    // waits for its ports only, and an Apache peer binds them ~0.3 s before it starts
    // FastLeaderElection — time enough for two of our peers to elect each other.
    let mut ens = Ensemble::new(l.spec.clone());
    ens.start_nodes(&[l.leader]);
    ens.node(l.leader).wait_for_log(format!("New election. My id = {}", l.leader).as_str(), 0, START_WAIT);
    let others: Vec<u64> = ens.sids().into_iter().filter(|&s| s != l.leader).collect();
    ens.start_nodes(&others);
    let modes = ens.wait_for_mode_all(START_WAIT);
    let mut leader = l.leader;
    assert_modes(&ens, leader, &modes, l.name, "after start");
    tm.lap("start");
    let mut t = Transcript::default();
    let cs = |ens: &Ensemble, sid: u64| ens.node(sid).connect_string();

    // ---- 1. four-letter words
    t.section("4lw");
    let mut four_letter = Vec::new();
    for sid in ens.sids() {
        let n = ens.node(sid);
        assert_eq!(n.four_letter("ruok"), "imok", "{}: ruok of node {sid}", l.name);
        let srvr = n.four_letter("srvr");
        let stat = n.four_letter("stat");
        let mntr = n.four_letter("mntr");
        let mode = expected_mode(&ens, leader, sid);
        let mode_line = format!("Mode: {}", format!("{mode:?}").to_lowercase());
        assert!(srvr.lines().any(|x| x == mode_line), "{}: node {sid} srvr lacks {mode_line:?}:\n{srvr}", l.name);
        assert!(stat.lines().any(|x| x == mode_line), "{}: node {sid} stat lacks {mode_line:?}:\n{stat}", l.name);
        four_letter.push(FourLetter { sid, imp: n.imp(), mode, srvr_keys: keys_of(&srvr), stat_keys: keys_of(&stat), mntr_keys: mntr_keys(&mntr, &ens), srvr, stat, mntr });
    }
    t.say("ruok on every node -> imok");
    let mut probes = Probes { map: BTreeMap::new() };
    for sid in ens.sids() {
        probes.open(&ens, sid);
    }

    // ---- 2. our client on A, L and C
    let (ca, _) = connect(&cs(&ens, l.a));
    let (cl, _) = connect(&cs(&ens, l.leader));
    let (cc, _) = connect(&cs(&ens, l.c));
    let views = [("A", probes.get(l.a)), ("L", probes.get(l.leader)), ("C", probes.get(l.c))];
    our_workload(&mut t, &ca, &cl, &cc, &views, &cs(&ens, l.c));
    tm.lap("ours");

    // ---- 3. Java zkCli through A, C and L (2 s sessions: batch mode does not close them)
    t.section("zkCli");
    let mut raw = String::new();
    zkcli(&mut t, &mut raw, "A", &cs(&ens, l.a), &["create", "/zab/cli", "clidata"]);
    cc.sync("/zab").expect("sync on C");
    zkcli(&mut t, &mut raw, "C", &cs(&ens, l.c), &["get", "-s", "/zab/cli"]);
    zkcli(&mut t, &mut raw, "L", &cs(&ens, l.leader), &["set", "-v", "7", "/zab/cli", "x"]);
    zkcli(&mut t, &mut raw, "A", &cs(&ens, l.a), &["ls", "-R", "/zab/cont"]);
    if t.text.contains("ConnectionLoss") {
        panic!("{}: zkCli lost its connection\n{raw}", l.name);
    }
    tm.lap("zkCli");

    // ---- 4. kazoo's interop scenario through A
    t.section("kazoo transcript through A");
    let o = run_kazoo(KAZOO_TRANSCRIPT, &cs(&ens, l.a));
    assert!(o.status.success(), "{}: kazoo transcript failed\n{}", l.name, describe_output("kazoo", &o));
    kazoo_lines(&mut t, "", &o);
    tm.lap("kazoo");

    // ---- 5. ephemerals of a closed session vanish everywhere
    t.section("closed session");
    cc.close();
    probes.sync_all();
    for (name, sid) in [("A", l.a), ("L", l.leader), ("C", l.c)] {
        t.step(&format!("C closed: {name} exists /zab/eph"), show(&probes.get(sid).exists("/zab/eph", None)));
    }
    t.step("C closed: /zab/cont/e anywhere", probes.anywhere("/zab/cont/e").to_string());
    cl.close();

    // ---- 6. a session that expires: its ephemeral outlives the connection, then goes
    t.section("session expiry");
    let ev = Events::default();
    t.step("A exists /zab/exp watch", show(&ca.exists("/zab/exp", Some(ev.watcher("exp")))));
    let o = run_kazoo(&KAZOO_EXPIRE.replace("@PATH@", "/zab/exp"), &cs(&ens, l.a));
    let died = Instant::now();
    kazoo_lines(&mut t, "kazoo: ", &o);
    ev.expect(&mut t, &ca, "A watch", 1, false);
    ca.sync("/zab").expect("sync");
    t.step("A exists /zab/exp after the client died", show(&ca.exists("/zab/exp", Some(ev.watcher("exp")))));
    let checked = died.elapsed();
    ev.expect(&mut t, &ca, "A watch", 1, false);
    let gone = died.elapsed();
    t.step("expired: /zab/exp gone on every node", (!probes.anywhere("/zab/exp")).to_string());
    // Session timeout 4 s: the last ping came at most ~1.4 s before the exit, so the
    // node may not go before ~2.6 s (closing it on disconnect would be a bug).
    assert!(checked < Duration::from_secs(2), "{}: the check after the client's death took {checked:?}", l.name);
    assert!(gone >= Duration::from_secs(2), "{}: /zab/exp vanished {gone:?} after its client died: before the session could expire", l.name);
    ca.close();
    tm.note(format!("expiry after {:.1}s", gone.as_secs_f64()));
    tm.lap("expiry");

    // ---- 6b. the leader's ContainerManager deletes empty containers and expired TTL
    // nodes; every node applies its deleteContainer txns
    t.section("containers and TTL nodes");
    let pa = probes.get(l.a);
    let open = ids::open_acl_unsafe();
    t.step("A create /zab/box container", show(&pa.create("/zab/box", None, &open, CreateMode::Container)));
    t.step("A create /zab/box/k", show(&pa.create("/zab/box/k", None, &open, CreateMode::Persistent)));
    t.step("A create /zab/unused container", show(&pa.create("/zab/unused", None, &open, CreateMode::Container)));
    t.step("A create /zab/short ttl=500", show(&pa.create2("/zab/short", None, &open, CreateMode::PersistentWithTtl, 500).map(|(p, _)| p)));
    t.step("A create /zab/long ttl=1h", show(&pa.create2("/zab/long", None, &open, CreateMode::PersistentWithTtl, 3_600_000).map(|(p, _)| p)));
    let pc = probes.get(l.c);
    pc.sync("/zab").expect("sync");
    t.step("C delete /zab/box/k", show(&pc.delete("/zab/box/k", -1)));
    let t_box = Instant::now();
    t.step("emptied container /zab/box gone everywhere", wait_gone_everywhere(&probes, "/zab/box", WAIT).to_string());
    t.step("expired TTL node /zab/short gone everywhere", wait_gone_everywhere(&probes, "/zab/short", WAIT).to_string());
    tm.note(format!("container/TTL cleanup {:.1}s", t_box.elapsed().as_secs_f64()));
    probes.sync_all();
    for path in ["/zab/unused", "/zab/long"] {
        let everywhere = probes.map.values().all(|zk| zk.exists(path, None).ok().flatten().is_some());
        t.step(&format!("{path} still on every node"), everywhere.to_string());
    }
    tm.lap("containers");

    // ---- 7. failover of A
    t.section("failover of A");
    let pl = probes.get(l.leader);
    t.step("L create /zab/fo", show(&pl.create("/zab/fo", Some(b"0"), &ids::open_acl_unsafe(), CreateMode::Persistent)));
    let ctl = tempfile::tempdir().expect("tempdir");
    let script = KAZOO_FAILOVER.replace("@CTL@", ctl.path().to_str().expect("utf-8 path"));
    let kazoo_hosts = ens.connect_string_of(&[l.a, l.c, l.leader]);
    let kazoo = thread::spawn(move || run_kazoo(&script, &kazoo_hosts));
    let ksession = wait_file(&ctl.path().join("READY"), Duration::from_secs(40)).unwrap_or_else(|| panic!("{}: kazoo never got ready", l.name));
    let ksession = i64::from_str_radix(ksession.trim(), 16).expect("kazoo session id");
    t.step("kazoo session on", session_node(&ens, l, ksession));
    // Our client on "A,L": the host list is shuffled, so connect until the session is on A.
    let a_and_l = ens.connect_string_of(&[l.a, l.leader]);
    let mut placed = None;
    for _ in 0..30 {
        let (zk, states) = connect(&a_and_l);
        if has_session(&ens, l.a, zk.session_id()) {
            placed = Some((zk, states));
            break;
        }
        zk.close();
    }
    let (fo, fo_states) = placed.unwrap_or_else(|| panic!("{}: our client never landed on A", l.name));
    let session = fo.session_id();
    let fev = Events::default();
    t.step("ours create /zab/fo-rs ephemeral", show(&fo.create("/zab/fo-rs", Some(b"rs"), &ids::open_acl_unsafe(), CreateMode::Ephemeral)));
    t.step("ours get /zab/fo watch", show(&fo.get_data("/zab/fo", Some(fev.watcher("data")))));
    t.step("ours children /zab/fo watch", show(&fo.get_children("/zab/fo", Some(fev.watcher("child")))));
    t.step("ours exists /zab/fo/new watch", show(&fo.exists("/zab/fo/new", Some(fev.watcher("exists")))));
    fo_states.take();
    tm.lap("failover setup");

    probes.close(l.a);
    ens.kill(l.a);
    let killed = Instant::now();
    wait_until(
        WAIT,
        || fo_states.snapshot().iter().any(|s| s.contains("Disconnected")) && fo.state().is_connected(),
        || format!("{}: our client did not reconnect; state {:?}, states {:?}, events {:?}", l.name, fo.state(), fo_states.snapshot(), fev.snapshot()),
    );
    let ours_back = killed.elapsed();
    let kazoo_back = wait_file(&ctl.path().join("RECONNECTED"), WAIT).map(|_| killed.elapsed());
    t.step("ours: reconnected", "true".into());
    t.step("ours: session kept", (fo.session_id() == session).to_string());
    t.step("ours: session now on", session_node(&ens, l, session));
    t.step("kazoo: reconnected", kazoo_back.is_some().to_string());
    t.step("kazoo: session now on", session_node(&ens, l, ksession));
    let pl = probes.get(l.leader);
    t.step("L set /zab/fo 1", show(&pl.set_data("/zab/fo", Some(b"1"), -1)));
    t.step("L create /zab/fo/new", show(&pl.create("/zab/fo/new", None, &ids::open_acl_unsafe(), CreateMode::Persistent)));
    fev.expect(&mut t, &fo, "ours watch", 3, true);
    t.step("ours exists /zab/fo-rs", show(&fo.exists("/zab/fo-rs", None)));
    t.step(
        "ours: ephemeral kept",
        fo.exists("/zab/fo-rs", None).ok().flatten().is_some_and(|s| s.ephemeral_owner == session).to_string(),
    );
    t.step("ours: states", format!("{:?}", fo_states.take()));
    let ko = kazoo.join().expect("kazoo thread");
    kazoo_lines(&mut t, "kazoo: ", &ko);
    fo.close();
    pl.sync("/zab").expect("sync");
    t.step("L children /zab/fo after both closed", show(&pl.get_children("/zab/fo", None)));
    t.step("L exists /zab/fo-rs", show(&pl.exists("/zab/fo-rs", None)));
    t.step("L exists /zab/fo-py", show(&pl.exists("/zab/fo-py", None)));
    tm.note(format!(
        "reconnect ours {:.1}s kazoo {}",
        ours_back.as_secs_f64(),
        kazoo_back.map_or("-".into(), |d| format!("{:.1}s", d.as_secs_f64()))
    ));
    // While A is down: more writes than the leader's committed log holds (500), so that A
    // can only catch up from a snapshot (snapshotSizeFactor=-1: no diff from the txn log).
    t.step("L create /zab/burst", show(&pl.create("/zab/burst", None, &ids::open_acl_unsafe(), CreateMode::Persistent)));
    let (tx, rx) = mpsc::channel();
    for i in 0..BURST {
        let tx = tx.clone();
        pl.set_data_async("/zab/burst", Some(format!("{i:0100}").as_bytes()), -1, move |r| {
            let _ = tx.send(r.map(|s| s.version).map_err(|e| e.code));
        });
    }
    let mut versions: Vec<i32> = (0..BURST).map(|_| rx.recv_timeout(WAIT).expect("burst reply").expect("burst write")).collect();
    versions.sort();
    t.step("L burst of setData while A is down", format!("{} writes, versions 1..={}", versions.len(), versions.last().copied().unwrap_or(0)));
    tm.lap("failover");

    // A rejoins on its old dataDir and catches up from a snapshot.
    let from = ens.node(l.a).log_offset();
    ens.node_mut(l.a).start();
    let m = ens.node(l.a).wait_for_mode(START_WAIT);
    assert_eq!(m, expected_mode(&ens, leader, l.a), "{}: node {} after its restart", l.name, l.a);
    let modes = ens.wait_for_mode_all(START_WAIT);
    assert_modes(&ens, leader, &modes, l.name, "after A's restart");
    assert!(
        ens.node(l.a).find_log("Getting a snapshot from leader", from).is_some(),
        "{}: node {} did not sync from a snapshot\n{}",
        l.name,
        l.a,
        ens.node(l.a).log_since(from)
    );
    probes.open(&ens, l.a);
    t.step("A after its restart: /zab/burst", show(&probes.get(l.a).get_data("/zab/burst", None)));
    tm.lap("restart A");

    // ---- 8. the leader dies: sessions, ephemerals and watches move to the new leader
    t.section("failover of the leader");
    let pc = probes.get(l.c);
    t.step("C create /zab/lf", show(&pc.create("/zab/lf", Some(b"0"), &ids::open_acl_unsafe(), CreateMode::Persistent)));
    let (lf, lf_states) = connect(&cs(&ens, l.c));
    let lsession = lf.session_id();
    let lev = Events::default();
    t.step("C2 create /zab/lf-eph ephemeral", show(&lf.create("/zab/lf-eph", None, &ids::open_acl_unsafe(), CreateMode::Ephemeral)));
    t.step("C2 get /zab/lf watch", show(&lf.get_data("/zab/lf", Some(lev.watcher("data")))));
    t.step("C2 children /zab/lf watch", show(&lf.get_children("/zab/lf", Some(lev.watcher("child")))));
    // A client that dies now: only the new leader can expire its session.
    let o = run_kazoo(&KAZOO_EXPIRE.replace("@PATH@", "/zab/lf-dead"), &cs(&ens, l.a));
    kazoo_lines(&mut t, "kazoo: ", &o);
    lf_states.take();
    probes.close(l.leader);
    // Every survivor has the same history, so the highest participant sid wins.
    probes.sync_all();
    let old = leader;
    ens.kill(old);
    let killed = Instant::now();
    let survivors: Vec<u64> = ens.sids().into_iter().filter(|&s| s != old).collect();
    // Usually the highest participant sid (all have the same history), but not always:
    // a peer whose follower role ends a few ms sooner sends its vote to peers still
    // following, which drop it, and the others may decide without it (upstream's
    // FastLeaderElection does the same). Any participant may lead; the others follow.
    let modes = wait_for_one_leader(&ens, &survivors, l.name);
    leader = modes.iter().find(|(_, m)| **m == Mode::Leader).map(|(s, _)| *s).expect("a leader");
    assert_modes(&ens, leader, &modes, l.name, "after the leader's death");
    assert_eq!(ens.node(leader).peer_type(), PeerType::Participant, "{}: an observer leads", l.name);
    if leader != next_leader(&ens, &survivors) {
        eprintln!("[zab_interop] {}: node {leader} leads after the leader's death, not {}", l.name, next_leader(&ens, &survivors));
    }
    let elected = killed.elapsed();
    wait_until(
        WAIT,
        || lf_states.snapshot().iter().any(|s| s.contains("Disconnected")) && lf.state().is_connected(),
        || format!("{}: C2 did not reconnect after the leader's death; states {:?}", l.name, lf_states.snapshot()),
    );
    t.step("C2: session kept", (lf.session_id() == lsession).to_string());
    let pn = probes.get(leader);
    t.step("new leader set /zab/lf 1", show(&pn.set_data("/zab/lf", Some(b"1"), -1)));
    t.step("new leader create /zab/lf/k", show(&pn.create("/zab/lf/k", None, &ids::open_acl_unsafe(), CreateMode::Persistent)));
    lev.expect(&mut t, &lf, "C2 watch", 2, true);
    t.step(
        "C2: ephemeral kept",
        lf.exists("/zab/lf-eph", None).ok().flatten().is_some_and(|s| s.ephemeral_owner == lsession).to_string(),
    );
    let dead_gone = wait_gone_everywhere(&probes, "/zab/lf-dead", Duration::from_secs(30));
    t.step("the dead client's ephemeral expired on every node", dead_gone.to_string());
    let expired_after = killed.elapsed();
    lf.close();
    t.step("C2 closed: /zab/lf-eph anywhere", probes.anywhere("/zab/lf-eph").to_string());
    tm.note(format!("new leader after {:.1}s, dead session expired after {:.1}s", elected.as_secs_f64(), expired_after.as_secs_f64()));
    tm.lap("leader failover");

    // The old leader comes back as a follower of the new one.
    ens.node_mut(old).start();
    let modes = ens.wait_for_mode_all(START_WAIT);
    assert_modes(&ens, leader, &modes, l.name, "after the old leader's restart");
    probes.open(&ens, old);
    tm.lap("restart old leader");

    // ---- 9. the tree on every node
    t.section("tree");
    let dumps: Vec<(u64, Vec<String>)> = probes.map.iter().map(|(&sid, zk)| (sid, dump_tree(zk, true))).collect();
    assert_eq!(dumps.len(), ens.sids().len(), "{}: a probe per node", l.name);
    let same = dumps.iter().all(|(_, d)| d == &dumps[0].1);
    t.step("tree: identical on every node", same.to_string());
    if !same {
        for (sid, d) in &dumps[1..] {
            if d != &dumps[0].1 {
                eprintln!(
                    "{}: tree of node {sid} differs from node {}'s\n{}",
                    l.name,
                    dumps[0].0,
                    line_diff(&format!("node {}", dumps[0].0), &dumps[0].1.join("\n"), &format!("node {sid}"), &d.join("\n"))
                );
            }
        }
    }
    for line in dump_tree(probes.get(l.a), false) {
        t.say(line);
    }
    tm.lap("tree");

    // ---- 10. the leader dies under load: whatever was acknowledged survives, and every
    // node ends with the same tree (a learner that logged proposals the new leader never
    // saw must truncate them).
    t.section("the leader dies under load");
    let old = leader;
    let writers: Vec<u64> = [l.a, l.c].into_iter().filter(|&s| s != old).collect();
    t.step("create /zab/load", show(&probes.get(writers[0]).create("/zab/load", None, &ids::open_acl_unsafe(), CreateMode::Persistent)));
    probes.close(old);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(k, &sid)| {
            let (connect, stop) = (cs(&ens, sid), stop.clone());
            thread::spawn(move || load(&connect, &format!("w{k}"), &stop))
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    ens.kill(old);
    let killed = Instant::now();
    let survivors: Vec<u64> = ens.sids().into_iter().filter(|&s| s != old).collect();
    wait_for_one_leader(&ens, &survivors, l.name);
    let elected = killed.elapsed();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let mut acked: Vec<String> = Vec::new();
    let mut lost = 0;
    for h in loads {
        let (a, f) = h.join().expect("load thread");
        acked.extend(a);
        lost += f;
    }
    ens.node_mut(old).start();
    let modes = ens.wait_for_mode_all(START_WAIT);
    assert_eq!(modes.values().filter(|m| **m == Mode::Leader).count(), 1, "{}: modes after the old leader's return: {modes:?}", l.name);
    probes.open(&ens, old);
    probes.sync_all();
    let mut missing = Vec::new();
    for (sid, zk) in &probes.map {
        for p in &acked {
            if zk.exists(p, None).ok().flatten().is_none() {
                missing.push(format!("{p} on node {sid}"));
            }
        }
    }
    t.step("acknowledged writes present on every node", missing.is_empty().to_string());
    assert!(acked.len() > 50, "{}: only {} writes acknowledged under load", l.name, acked.len());
    let dumps: Vec<(u64, Vec<String>)> = probes.map.iter().map(|(&sid, zk)| (sid, dump_tree(zk, true))).collect();
    let same = dumps.iter().all(|(_, d)| d == &dumps[0].1);
    t.step("tree: identical on every node after the leader died under load", same.to_string());
    if !missing.is_empty() || !same {
        eprintln!("{}: missing after the leader died under load: {missing:?}", l.name);
        for (sid, d) in &dumps[1..] {
            if d != &dumps[0].1 {
                eprintln!(
                    "{}: tree of node {sid} differs from node {}'s\n{}",
                    l.name,
                    dumps[0].0,
                    line_diff(&format!("node {}", dumps[0].0), &dumps[0].1.join("\n"), &format!("node {sid}"), &d.join("\n"))
                );
            }
        }
    }
    tm.note(format!("under load: {} acked, {lost} lost, new leader after {:.1}s", acked.len(), elected.as_secs_f64()));
    tm.lap("leader dies under load");
    Run { transcript: t.text, four_letter, timings: tm.summary() }
}

/// Creates /zab/load/<tag>-<i>, up to 64 outstanding, until `stop`; returns the paths
/// acknowledged and the number of failed (ConnectionLoss) writes.
fn load(connect: &str, tag: &str, stop: &std::sync::atomic::AtomicBool) -> (Vec<String>, usize) {
    let (zk, _) = connect_to(connect);
    let (tx, rx) = mpsc::channel::<(String, bool)>();
    let mut outstanding = 0usize;
    let (mut acked, mut failed) = (Vec::new(), 0usize);
    let mut i = 0usize;
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let stopping = stop.load(std::sync::atomic::Ordering::Acquire) || Instant::now() > end;
        if !stopping && outstanding < 64 && zk.state().is_alive() {
            let path = format!("/zab/load/{tag}-{i:06}");
            i += 1;
            let tx = tx.clone();
            let p2 = path.clone();
            zk.create_async(&path, Some(b"x"), &ids::open_acl_unsafe(), CreateMode::Persistent, move |r| {
                let _ = tx.send((p2, r.is_ok()));
            });
            outstanding += 1;
            continue;
        }
        if outstanding == 0 {
            break;
        }
        match rx.recv_timeout(WAIT) {
            Ok((p, ok)) => {
                outstanding -= 1;
                if ok {
                    acked.push(p);
                } else {
                    failed += 1;
                }
            }
            Err(_) => panic!("{tag}: {outstanding} writes never answered"),
        }
    }
    zk.close();
    (acked, failed)
}

/// Our client library: one session on each of A, L and C.
/// `n` pipelined rounds of (create sequential, setData with the expected version,
/// getData) on one session: the replies must come in order, every conditional set must
/// succeed and every read must see the set before it (a follower holds a session's reads
/// behind its pending writes).
fn pipelined(zk: &ZooKeeper, tag: &str, n: usize) -> String {
    let open = ids::open_acl_unsafe();
    let base = format!("/zab/conc-{tag}");
    zk.create(&base, Some(b"-"), &open, CreateMode::Persistent).expect("create the counter");
    let log: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    for i in 0..n {
        let l = log.clone();
        zk.create_async(&format!("/zab/conc/{tag}-"), None, &open, CreateMode::PersistentSequential, move |r| {
            l.lock().unwrap().push((3 * i, r.map_or_else(|e| format!("{:?}", e.code), |p| p)));
        });
        let l = log.clone();
        zk.set_data_async(&base, Some(i.to_string().as_bytes()), i as i32, move |r| {
            l.lock().unwrap().push((3 * i + 1, r.map_or_else(|e| format!("{:?}", e.code), |s| s.version.to_string())));
        });
        let l = log.clone();
        zk.get_data_async(&base, move |r| {
            l.lock().unwrap().push((3 * i + 2, r.map_or_else(|e| format!("{:?}", e.code), |(d, s)| format!("{}@{}", data_str(&d), s.version))));
        });
    }
    wait_until(WAIT, || log.lock().unwrap().len() == 3 * n, || format!("{tag}: only {} of {} pipelined replies", log.lock().unwrap().len(), 3 * n));
    let log = log.lock().unwrap().clone();
    let in_order = log.iter().enumerate().all(|(k, (i, _))| k == *i);
    let mut last = String::new();
    let mut creates_ok = true;
    let (mut sets_ok, mut reads_ok) = (true, true);
    for (k, r) in &log {
        let i = k / 3;
        match k % 3 {
            0 => {
                creates_ok &= r.starts_with(&format!("/zab/conc/{tag}-")) && *r > last;
                last = r.clone();
            }
            1 => sets_ok &= *r == (i + 1).to_string(),
            _ => reads_ok &= *r == format!("{:?}@{}", i.to_string(), i + 1),
        }
    }
    zk.delete(&base, n as i32).expect("delete the counter");
    if !(in_order && creates_ok && sets_ok && reads_ok) {
        eprintln!("{tag}: pipelined replies {log:?}");
    }
    format!("{tag}: {n} rounds: replies in order {in_order}, creates ascending {creates_ok}, conditional sets {sets_ok}, reads see the set before them {reads_ok}")
}

/// Connects with a session id and password: "connected" (then closes the session) or
/// the state the client ends in.
fn resume(connect: &str, id: i64, passwd: Vec<u8>) -> String {
    let states = Events::default();
    let zk = ZooKeeper::connect_with(connect, SESSION_MS, Some(states.state_watcher()), Some((id, passwd)), false).expect("connect");
    wait_until(WAIT, || zk.state().is_connected() || !zk.state().is_alive(), || format!("resume 0x{id:x}: no answer"));
    // An established connection is reported before the first event reaches the watcher.
    barrier_or_closed(&zk);
    if zk.state().is_connected() {
        let same = zk.session_id() == id;
        zk.close();
        format!("connected (same session {same}), then closed")
    } else {
        format!("{:?} {:?}", zk.state(), states.snapshot())
    }
}

fn barrier_or_closed(zk: &ZooKeeper) {
    if zk.state().is_connected() {
        barrier(zk);
    } else {
        thread::sleep(Duration::from_millis(100));
    }
}

/// `views`: the probes of A, L and C (alice's auth: the workload's sessions differ in
/// auth), which read the views.
fn our_workload(t: &mut Transcript, ca: &ZooKeeper, cl: &ZooKeeper, cc: &ZooKeeper, views: &[(&str, &ZooKeeper); 3], c_connect: &str) {
    let open = ids::open_acl_unsafe();
    let p = CreateMode::Persistent;
    let clients = *views;

    // Every client reads `path`'s children and their stats after a sync.
    let view = |t: &mut Transcript, path: &str| {
        let mut seen: Vec<(&str, String)> = Vec::new();
        for (name, zk) in clients {
            zk.sync(path).expect("sync");
            let kids = zk.get_children(path, None);
            let v = match kids {
                Ok(mut k) => {
                    k.sort();
                    let items: Vec<String> = k
                        .iter()
                        .map(|c| {
                            let full = format!("{path}/{c}");
                            format!("{c}={}", show(&zk.get_data(&full, None)))
                        })
                        .collect();
                    items.join(" ")
                }
                Err(e) => format!("{:?}", e.code),
            };
            seen.push((name, v));
        }
        if seen.iter().all(|(_, v)| v == &seen[0].1) {
            t.say(format!("view of {path} on A, L, C: {}", seen[0].1));
        } else {
            for (name, v) in seen {
                t.say(format!("view of {path} on {name} DIFFERS: {v}"));
            }
        }
    };

    t.section("ours: creates");
    t.step("A create /zab", show(&ca.create("/zab", Some(b"root"), &open, p)));
    t.step("A create /zab/p", show(&ca.create("/zab/p", Some(b"p0"), &open, p)));
    cl.sync("/zab").expect("sync");
    t.step("L create /zab/p", show(&cl.create("/zab/p", Some(b"again"), &open, p)));
    t.step("C create /zab/none/child", show(&cc.create("/zab/none/child", None, &open, p)));
    t.step("A create /zab/seq- sequential", show(&ca.create("/zab/seq-", Some(b"1"), &open, CreateMode::PersistentSequential)));
    t.step("L create /zab/seq- sequential", show(&cl.create("/zab/seq-", Some(b"2"), &open, CreateMode::PersistentSequential)));
    t.step("C create /zab/seq- sequential", show(&cc.create("/zab/seq-", Some(b"3"), &open, CreateMode::PersistentSequential)));
    t.step("C create /zab/eph ephemeral", show(&cc.create("/zab/eph", Some(b"e"), &open, CreateMode::Ephemeral)));
    t.step("C create /zab/eph/kid", show(&cc.create("/zab/eph/kid", None, &open, p)));
    t.step("A create /zab/eseq- ephemeral sequential", show(&ca.create("/zab/eseq-", None, &open, CreateMode::EphemeralSequential)));
    t.step("L create /zab/cont container", show(&cl.create("/zab/cont", None, &open, CreateMode::Container)));
    t.step("L create /zab/cont/x", show(&cl.create("/zab/cont/x", Some(b"x"), &open, p)));
    t.step("A create /zab/ttl ttl", show(&ca.create2("/zab/ttl", Some(b"t"), &open, CreateMode::PersistentWithTtl, 3_600_000)));
    t.step(
        "A create /zab/tseq- sequential ttl",
        show(&ca.create2("/zab/tseq-", Some(b"t"), &open, CreateMode::PersistentSequentialWithTtl, 3_600_000)),
    );
    t.step("C create /zab/cont/eph-under-container ephemeral", show(&cc.create("/zab/cont/e", None, &open, CreateMode::Ephemeral)));
    view(t, "/zab");
    view(t, "/zab/cont");

    t.section("ours: setData and delete with versions");
    t.step("C set /zab/p p1 version=0", show(&cc.set_data("/zab/p", Some(b"p1"), 0)));
    t.step("A set /zab/p p2 version=0", show(&ca.set_data("/zab/p", Some(b"p2"), 0)));
    t.step("L set /zab/p p3 version=-1", show(&cl.set_data("/zab/p", Some(b"p3"), -1)));
    t.step("C set /zab/none", show(&cc.set_data("/zab/none", Some(b"x"), -1)));
    t.step("A delete /zab/p version=5", show(&ca.delete("/zab/p", 5)));
    t.step("L delete /zab/none", show(&cl.delete("/zab/none", -1)));
    t.step("C delete /zab (not empty)", show(&cc.delete("/zab", -1)));
    t.step("C create /zab/d", show(&cc.create("/zab/d", Some(b"d"), &open, p)));
    cl.sync("/zab").expect("sync");
    t.step("L delete /zab/d version=0", show(&cl.delete("/zab/d", 0)));
    view(t, "/zab");

    t.section("ours: multi");
    t.step(
        "A multi ok",
        multi_str(&ca.multi(vec![
            ops::create("/zab/m1", Some(b"a"), &open, p),
            ops::set_data("/zab/m1", Some(b"b"), 0),
            ops::check("/zab/m1", 1),
            ops::create("/zab/mseq-", None, &open, CreateMode::PersistentSequential),
            ops::delete("/zab/seq-0000000002", -1),
        ])),
    );
    t.step(
        "A multi failing",
        multi_str(&ca.multi(vec![
            ops::create("/zab/m2", None, &open, p),
            ops::check("/zab/m1", 0),
            ops::delete("/zab/none", -1),
        ])),
    );
    t.step(
        "C multi failing on NodeExists",
        multi_str(&cc.multi(vec![ops::set_data("/zab/p", Some(b"never"), -1), ops::create("/zab/m1", None, &open, p)])),
    );
    cc.sync("/zab").expect("sync");
    t.step("C multi read", multi_str(&cc.multi(vec![ops::get_data("/zab/m1"), ops::get_children("/zab/cont"), ops::get_data("/zab/m2")])));
    view(t, "/zab");

    t.section("ours: ACLs");
    let alice = vec![ACL { perms: perms::ALL, id: Id { scheme: "digest".into(), id: generate_digest("alice:secret") } }];
    ca.add_auth_info("digest", b"alice:secret");
    t.step("A(alice) create /zab/acl digest alice", show(&ca.create("/zab/acl", Some(b"s"), &alice, p)));
    t.step("A(alice) create /zab/acl/kid", show(&ca.create("/zab/acl/kid", None, &open, p)));
    cl.sync("/zab").expect("sync");
    t.step("L get /zab/acl", show(&cl.get_data("/zab/acl", None)));
    t.step("L getAcl /zab/acl", show(&cl.get_acl("/zab/acl")));
    t.step("L exists /zab/acl", show(&cl.exists("/zab/acl", None)));
    t.step("L set /zab/acl", show(&cl.set_data("/zab/acl", Some(b"x"), -1)));
    t.step("L create /zab/acl/c", show(&cl.create("/zab/acl/c", None, &open, p)));
    cl.add_auth_info("digest", b"alice:secret");
    t.step("L(alice) get /zab/acl", show(&cl.get_data("/zab/acl", None)));
    t.step("L(alice) set /zab/acl s2", show(&cl.set_data("/zab/acl", Some(b"s2"), 0)));
    t.step("C getAcl /zab/acl", show(&cc.get_acl("/zab/acl")));
    t.step("A setAcl /zab/acl version=5", show(&ca.set_acl("/zab/acl", &open, 5)));
    t.step("A setAcl /zab/acl open version=0", show(&ca.set_acl("/zab/acl", &open, 0)));
    cc.sync("/zab").expect("sync");
    t.step("C get /zab/acl", show(&cc.get_data("/zab/acl", None)));
    t.step("C getAcl /zab/acl", show(&cc.get_acl("/zab/acl")));
    t.step("A create /zab/ro read-only", show(&ca.create("/zab/ro", Some(b"r"), &ids::read_acl_unsafe(), p)));
    cc.sync("/zab").expect("sync");
    t.step("C set /zab/ro", show(&cc.set_data("/zab/ro", Some(b"w"), -1)));
    t.step("C get /zab/ro", show(&cc.get_data("/zab/ro", None)));
    t.step("A(alice) create CREATOR_ALL /zab/mine", show(&ca.create("/zab/mine", None, &ids::creator_all_acl(), p)));
    t.step("C create CREATOR_ALL without auth", show(&cc.create("/zab/noauth", None, &ids::creator_all_acl(), p)));
    let bad = vec![ACL { perms: perms::ALL, id: Id { scheme: "nosuch".into(), id: "x".into() } }];
    t.step("L create unknown scheme", show(&cl.create("/zab/bad", None, &bad, p)));
    cl.sync("/zab").expect("sync");
    t.step("L(alice) getAcl /zab/mine", show(&cl.get_acl("/zab/mine")));

    t.section("ours: watches on C, writes through A");
    let ev = Events::default();
    let rec = Events::default();
    let per = Events::default();
    cc.sync("/zab").expect("sync");
    t.step("C exists /zab/w watch", show(&cc.exists("/zab/w", Some(ev.watcher("exists")))));
    t.step("C children /zab/seq-0000000003 watch", show(&cc.get_children("/zab/seq-0000000003", Some(ev.watcher("child")))));
    t.step("C children /zab watch", show(&cc.get_children("/zab", Some(ev.watcher("child")))));
    t.step("C addWatch /zab/r recursive", show(&cc.add_watch("/zab/r", rec.watcher("recursive"), add_watch_mode::PERSISTENT_RECURSIVE)));
    t.step("C addWatch /zab/pw persistent", show(&cc.add_watch("/zab/pw", per.watcher("persistent"), add_watch_mode::PERSISTENT)));
    t.step("A create /zab/w", show(&ca.create("/zab/w", Some(b"0"), &open, p)));
    ev.expect(t, cc, "C watch", 2, true);
    t.step("C get /zab/w watch", show(&cc.get_data("/zab/w", Some(ev.watcher("data")))));
    t.step("A set /zab/w 1", show(&ca.set_data("/zab/w", Some(b"1"), -1)));
    ev.expect(t, cc, "C watch", 1, false);
    t.step("A set /zab/w 2", show(&ca.set_data("/zab/w", Some(b"2"), -1)));
    ev.expect_none(t, cc, "C data watch fired once");
    t.step("C children /zab/w watch", show(&cc.get_children("/zab/w", Some(ev.watcher("child")))));
    t.step("C get /zab/w watch", show(&cc.get_data("/zab/w", Some(ev.watcher("data")))));
    t.step("A create /zab/w/k", show(&ca.create("/zab/w/k", None, &open, p)));
    ev.expect(t, cc, "C watch", 1, false);
    t.step("A delete /zab/w/k", show(&ca.delete("/zab/w/k", -1)));
    t.step("A delete /zab/w", show(&ca.delete("/zab/w", -1)));
    ev.expect(t, cc, "C watch", 1, false);
    ev.expect_none(t, cc, "C watches after delete");
    for (label, r) in [
        ("A create /zab/r", ca.create("/zab/r", Some(b"r"), &open, p).map(|_| ())),
        ("A create /zab/r/x", ca.create("/zab/r/x", None, &open, p).map(|_| ())),
        ("A set /zab/r/x", ca.set_data("/zab/r/x", Some(b"x"), -1).map(|_| ())),
        ("A create /zab/r/x/y", ca.create("/zab/r/x/y", None, &open, p).map(|_| ())),
        ("A delete /zab/r/x/y", ca.delete("/zab/r/x/y", -1)),
        ("A delete /zab/r/x", ca.delete("/zab/r/x", -1)),
        ("A create /zab/pw", ca.create("/zab/pw", Some(b"0"), &open, p).map(|_| ())),
        ("A set /zab/pw", ca.set_data("/zab/pw", Some(b"1"), -1).map(|_| ())),
        ("A create /zab/pw/k", ca.create("/zab/pw/k", None, &open, p).map(|_| ())),
        ("A set /zab/pw again", ca.set_data("/zab/pw", Some(b"2"), -1).map(|_| ())),
    ] {
        t.step(label, show(&r));
    }
    rec.expect(t, cc, "C watch", 6, false);
    per.expect(t, cc, "C watch", 4, false);
    ev.expect_none(t, cc, "C one-shot watches");

    t.section("ours: pipelined sessions on A, L and C at once");
    t.step("A create /zab/conc", show(&ca.create("/zab/conc", None, &open, p)));
    let summaries: Vec<String> = thread::scope(|s| {
        let hs: Vec<_> = [("A", ca), ("L", cl), ("C", cc)].into_iter().map(|(tag, zk)| s.spawn(move || pipelined(zk, tag, PIPELINED))).collect();
        hs.into_iter().map(|h| h.join().expect("pipelined thread")).collect()
    });
    for line in summaries {
        t.say(line);
    }
    let counts: Vec<String> = clients
        .iter()
        .map(|(_, zk)| {
            zk.sync("/zab/conc").expect("sync");
            zk.get_children("/zab/conc", None).map_or_else(|e| format!("{:?}", e.code), |k| k.len().to_string())
        })
        .collect();
    t.step("children of /zab/conc on A, L, C", counts.join(", "));
    let mut kids = ca.get_children("/zab/conc", None).expect("children of /zab/conc");
    kids.sort();
    let mut deletes: Vec<_> = kids.iter().map(|k| ops::delete(&format!("/zab/conc/{k}"), 0)).collect();
    deletes.push(ops::delete("/zab/conc", -1));
    let r = ca.multi(deletes);
    t.step("A multi deleting them all", format!("{} ({} results)", if r.is_ok() { "ok" } else { "failed" }, r.as_ref().map_or_else(|e| e.1.len(), Vec::len)));
    t.step("C exists /zab/conc after sync", {
        cc.sync("/zab").expect("sync");
        show(&cc.exists("/zab/conc", None))
    });

    t.section("ours: resuming sessions through C");
    let (gone, _) = connect(c_connect);
    let (id, passwd) = (gone.session_id(), gone.session_passwd());
    gone.close();
    t.step("resume a closed session", resume(c_connect, id, passwd));
    let (live, _) = connect(c_connect);
    let mut wrong = live.session_passwd();
    wrong[0] ^= 0xff;
    t.step("resume a live session with a wrong password", resume(c_connect, live.session_id(), wrong));
    t.step("the live session still works", show(&live.exists("/zab", None)));
    live.close();

    t.section("ours: ephemeral of a closed session");
    let gone = Events::default();
    t.step("L create /zab/eph/late (ephemerals have no children)", show(&cl.create("/zab/eph/late", None, &open, p)));
    t.step("C getEphemerals /zab", show(&cc.get_ephemerals("/zab")));
    t.step("C delete /zab/eph/kid", show(&cc.delete("/zab/eph/kid", -1)));
    // C's session stays open for zkCli's step; close a second session of C instead.
    t.say("(C's ephemerals are removed when C closes, after zkCli)");
    view(t, "/zab");
    let (c2, _) = connect(c_connect);
    t.step("C2 create /zab/eph2 ephemeral", show(&c2.create("/zab/eph2", None, &open, CreateMode::Ephemeral)));
    ca.sync("/zab").expect("sync");
    t.step("A exists /zab/eph2 watch", show(&ca.exists("/zab/eph2", Some(gone.watcher("exists")))));
    c2.close();
    t.say("C2 closed");
    gone.expect(t, ca, "A watch", 1, false);
    for (name, zk) in [("A", ca), ("L", cl), ("C", cc)] {
        zk.sync("/zab").expect("sync");
        t.step(&format!("{name} exists /zab/eph2"), show(&zk.exists("/zab/eph2", None)));
    }
}


// ------------------------------------------------------- leader step-down --

/// A leader whose followers all die must stop serving and go back to LOOKING within a
/// few ticks (upstream checks its synced quorum every half tick), and lead again as soon
/// as they return. Measured on an all-Apache and an all-ours ensemble.
#[test]
fn leader_without_quorum_steps_down_and_returns() {
    let run = |imps: &[Impl], name: &str| -> (Duration, Duration) {
        let mut ens = Ensemble::new(spec(imps));
        ens.start_nodes(&[3]);
        ens.node(3).wait_for_log("New election. My id = 3", 0, START_WAIT);
        ens.start_nodes(&[1, 2]);
        let modes = ens.wait_for_mode_all(START_WAIT);
        assert_modes(&ens, 3, &modes, name, "after start");
        ens.kill(1);
        ens.kill(2);
        let t0 = Instant::now();
        wait_until(Duration::from_secs(30), || ens.node(3).mode().is_none(), || format!("{name}: the leader still serves without a quorum\n{}", ens.describe_all(30)));
        let stepped_down = t0.elapsed();
        ens.node_mut(1).start();
        ens.node_mut(2).start();
        let t1 = Instant::now();
        let modes = ens.wait_for_mode_all(START_WAIT);
        let back = t1.elapsed();
        assert_eq!(modes.len(), 3, "{name}: {modes:?}");
        assert_eq!(modes.values().filter(|m| **m == Mode::Leader).count(), 1, "{name}: {modes:?}");
        eprintln!("[zab_interop] {name}: stepped down after {:.1}s, serving again {:.1}s after the followers' restart", stepped_down.as_secs_f64(), back.as_secs_f64());
        (stepped_down, back)
    };
    let (apache_down, apache_back) = run(&[J, J, J], "apache-3");
    let (ours_down, ours_back) = run(&[R, R, R], "rust-3");
    // Apache: about a tick to step down, under a second to come back. Allow slack for a
    // loaded machine, but less than initLimit (5 s): a peer that waits for initLimit
    // (a learner stuck in its sync) or longer (a stuck shutdown) fails.
    let limit = Duration::from_secs(4);
    assert!(apache_down < limit && apache_back < Duration::from_secs(30), "Apache: {apache_down:?} / {apache_back:?}");
    assert!(ours_down < limit, "our leader took {ours_down:?} to step down without a quorum (Apache: {apache_down:?})");
    assert!(ours_back < limit, "our ensemble took {ours_back:?} to serve again after the followers' restart (Apache: {apache_back:?})");
}

// ----------------------------------------- uncommitted proposal, leader dies --

fn signal(ens: &Ensemble, sid: u64, sig: &str) {
    let pid = ens.node(sid).pid().unwrap_or_else(|| panic!("node {sid} is not running"));
    let st = std::process::Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().expect("kill");
    assert!(st.success(), "kill -{sig} {pid} (node {sid})");
}

/// Five voters. Followers 2, 3 and 4 are stopped (SIGSTOP), so a write through follower
/// 1 is proposed and logged by the leader and by 1 but never committed. The leader
/// dies and 2, 3, 4 resume: node 1 has the newest history, so it must win the election
/// (FastLeaderElection compares the last logged zxid, which upstream's
/// ZooKeeperServer.shutdown(false) brings up to date by replaying the txn log onto the
/// tree when the follower role ends) and the proposal survives on every node — also
/// after node 1 restarts from its own log. Checked on Apache first, then on ours.
#[test]
fn uncommitted_proposal_of_the_newest_follower_survives_the_leader() {
    let run = |imps: &[Impl], name: &str| -> Vec<String> {
        let mut ens = Ensemble::new(spec(imps));
        ens.start_nodes(&[5]);
        ens.node(5).wait_for_log("New election. My id = 5", 0, START_WAIT);
        ens.start_nodes(&[1, 2, 3, 4]);
        let modes = ens.wait_for_mode_all(START_WAIT);
        assert_modes(&ens, 5, &modes, name, "after start");
        let (zk, _) = connect(&ens.node(1).connect_string());
        zk.create("/zab", None, &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create /zab");
        for sid in [2, 3, 4] {
            signal(&ens, sid, "STOP");
        }
        let (tx, rx) = mpsc::channel();
        zk.create_async("/zab/uncommitted", Some(b"u"), &ids::open_acl_unsafe(), CreateMode::Persistent, move |r| {
            let _ = tx.send(r.map_err(|e| e.code));
        });
        // Logged by the leader and node 1 within milliseconds; no quorum to commit it.
        thread::sleep(Duration::from_millis(1000));
        assert!(rx.try_recv().is_err(), "{name}: the write was answered without a quorum");
        ens.kill(5);
        for sid in [2, 3, 4] {
            signal(&ens, sid, "CONT");
        }
        let modes = wait_for_one_leader(&ens, &[1, 2, 3, 4], name);
        let mut out = vec![format!("modes after the leader's death: {modes:?}")];
        let answer = rx.recv_timeout(WAIT);
        out.push(format!("the write's answer: {}", if answer.is_ok() { "came" } else { "none" }));
        drop(zk);
        // Node 1 restarts from its own log, then the old leader comes back.
        ens.node_mut(1).restart();
        ens.node_mut(5).start();
        let modes = ens.wait_for_mode_all(START_WAIT);
        out.push(format!("leaders after the restarts: {}", modes.values().filter(|m| **m == Mode::Leader).count()));
        let mut probes = Probes { map: BTreeMap::new() };
        for sid in ens.sids() {
            probes.open(&ens, sid);
        }
        probes.sync_all();
        let have: Vec<u64> = probes.map.iter().filter(|(_, zk)| zk.exists("/zab/uncommitted", None).ok().flatten().is_some()).map(|(s, _)| *s).collect();
        out.push(format!("nodes with /zab/uncommitted: {have:?}"));
        let dumps: Vec<Vec<String>> = probes.map.values().map(|zk| dump_tree(zk, true)).collect();
        out.push(format!("trees identical: {}", dumps.iter().all(|d| d == &dumps[0])));
        eprintln!("[zab_interop] {name}: {out:?}");
        out
    };
    let apache = run(&[J, J, J, J, J], "apache-5");
    assert!(apache.iter().any(|l| l == "nodes with /zab/uncommitted: [1, 2, 3, 4, 5]"), "Apache: {apache:?}");
    let ours = run(&[R, R, R, R, R], "rust-5");
    assert_eq!(ours, apache, "ours (right) vs Apache (left)");
}

// ------------------------------------- no session expires before a quorum --

/// Node 1 is given a wrong quorum port for node 2 (a later `server.2` line: it votes for
/// 2 but can never follow it). A client dies on node 2 while 3 leads (4 s session);
/// then 3 is killed: 1 and 2 elect 2, which waits initLimit (10 s) for a quorum that
/// cannot come. Upstream's leader creates its session tracker only once its epoch is
/// established, so nothing expires meanwhile; node 3 returns, an established leader
/// expires the session, and its closeSession (the pzxid of the ephemeral's parent)
/// carries the new epoch; node 2 neither expires a session (it never leads) nor has
/// anything to truncate when it follows 3. A leader that expires sessions before that
/// proposes a closeSession of the old epoch that no quorum accepted (node 2 logged it,
/// and had to truncate it when it followed 3).
#[test]
fn a_leader_expires_no_session_before_its_epoch_is_established() {
    let run = |imps: &[Impl], name: &str| -> Vec<String> {
        let mut ens = Ensemble::new(spec(imps).init_limit(20));
        let n2 = ens.node(2);
        let bogus = format!(
            "# node 1 cannot reach node 2's quorum port\nserver.2=127.0.0.1:{}:{};127.0.0.1:{}\n",
            common::free_port(),
            n2.election_port(),
            n2.client_port()
        );
        let cfg1 = ens.node(1).cfg_path().to_path_buf();
        let mut text = std::fs::read_to_string(&cfg1).expect("zoo.cfg");
        text.push_str(&bogus);
        std::fs::write(&cfg1, text).expect("zoo.cfg");
        ens.start_nodes(&[3]);
        ens.node(3).wait_for_log("New election. My id = 3", 0, START_WAIT);
        ens.start_nodes(&[1, 2]);
        let modes = ens.wait_for_mode_all(START_WAIT);
        assert_modes(&ens, 3, &modes, name, "after start");
        let (zk, _) = connect(&ens.node(2).connect_string());
        zk.create("/zab", None, &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create /zab");
        zk.close();
        let o = run_kazoo(&KAZOO_EXPIRE.replace("@PATH@", "/zab/gone"), &ens.node(2).connect_string());
        assert!(o.status.success(), "{name}: {}", describe_output("kazoo", &o));
        let from2 = ens.node(2).log_offset();
        ens.kill(3);
        // 2 becomes leader-elect and waits for a quorum longer than the session's timeout.
        ens.node(2).wait_for_log(Regex::new("LEADING - LEADER ELECTION TOOK").unwrap(), from2, START_WAIT);
        thread::sleep(Duration::from_secs(6));
        ens.node_mut(3).start();
        let modes = wait_for_one_leader(&ens, &[2, 3], name);
        assert_eq!(modes.values().filter(|m| **m == Mode::Leader).count(), 1, "{name}: {modes:?}");
        let mut probes = Probes { map: BTreeMap::new() };
        for sid in [2, 3] {
            probes.open(&ens, sid);
        }
        assert!(wait_gone_everywhere(&probes, "/zab/gone", WAIT), "{name}: /zab/gone never expired");
        let pzxid = probes.get(2).exists("/zab", None).expect("exists").expect("/zab").pzxid;
        let log2 = ens.node(2).log_since(from2);
        let out = vec![
            format!("closeSession epoch >= 2: {}", pzxid >> 32 >= 2),
            format!("node 2 expired a session: {}", log2.contains("Expiring session")),
            format!("node 2 had to truncate its log: {}", log2.contains("Truncating log")),
        ];
        eprintln!("[zab_interop] {name}: /zab/gone deleted at 0x{pzxid:x}, modes {modes:?}: {out:?}");
        out
    };
    let apache = run(&[J, J, J], "apache-3");
    assert_eq!(
        apache,
        ["closeSession epoch >= 2: true", "node 2 expired a session: false", "node 2 had to truncate its log: false"],
        "Apache"
    );
    let ours = run(&[R, R, R], "rust-3");
    assert_eq!(ours, apache, "ours (left) vs Apache (right): a leader-elect expired a session before its epoch was established");
}
