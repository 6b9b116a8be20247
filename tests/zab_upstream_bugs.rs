//! Regression tests for the learner-sync bugs of Apache ZooKeeper 3.8.0 that later
//! releases fixed (and a few this port found on the way). Each test forces the
//! interleaving of one upstream bug on a 3-node ensemble of our `zk-server` with the
//! fault points of `src/server/fault_points.rs` (`rs.faultPoints=` in zoo.cfg) or with
//! kill -9 / restart orchestration, then checks the safety property 3.8.0 violated:
//! no acknowledged write lost, no divergence at equal zxids, no reused sequence number,
//! no learner that acks what it then loses, no leader giving up because of a sync.
//!
//! Every test ends with [`final_check`]: all nodes serve the same tree (read through
//! each node alone), every acknowledged write is on every node, and — after killing
//! every node — the dataDirs read with the persistence API (snapshot + txn log
//! replay, as a restart would) give equal trees, txn logs agree at equal zxids and,
//! after each node's newest snapshot, have no hole within an epoch.
//!
//! Timing: tickTime 250 ms, initLimit 20 (5 s), syncLimit 10 (2.5 s); every wait is
//! bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl, Mode};
use zookeeper::client::ZooKeeper;
use zookeeper::proto::{ids, Code, CreateMode};
use zookeeper::server::persistence::epoch_file::{read_long_from_file, CURRENT_EPOCH_FILENAME};
use zookeeper::server::persistence::file_txn_log::last_logged_zxid;
use zookeeper::server::persistence::util::zxid_of;
use zookeeper::server::persistence::{FileTxnLog, FileTxnSnapLog};

const WAIT: Duration = Duration::from_secs(40);
/// `fault_points::CRASH_EXIT_CODE`.
const CRASH: i32 = 97;

type Tree = BTreeMap<String, (Vec<u8>, i64, i64)>;
type Acked = Vec<(String, Vec<u8>)>;

fn epoch(z: i64) -> i64 {
    z >> 32
}

fn counter(z: i64) -> i64 {
    z & 0xffff_ffff
}

fn init() {
    static ONCE: Once = Once::new();
    // Bounded client calls: a request that gets no answer fails after 10 s.
    ONCE.call_once(|| zookeeper::system_properties::set("zookeeper.request.timeout", "10000"));
}

fn spec3() -> EnsembleSpec {
    EnsembleSpec::of(&[Impl::Ours, Impl::Ours, Impl::Ours]).tick_time(250).init_limit(20).sync_limit(10)
}

/// Starts a fresh ensemble and waits until every node serves; returns it and the leader.
fn start(spec: EnsembleSpec) -> (Ensemble, u64) {
    let ens = Ensemble::start(spec);
    let sids = ens.sids();
    let leader = ens.wait_for_agreed_leader(&sids, WAIT);
    wait_roles(&ens, &sids, WAIT);
    (ens, leader)
}

/// Rewrites node `sid`'s `rs.faultPoints=` line (empty: none); read at its next start.
fn set_faults(ens: &Ensemble, sid: u64, spec: &str) {
    let p = ens.node(sid).cfg_path().to_path_buf();
    let text = fs::read_to_string(&p).expect("read zoo.cfg");
    let mut out: String = text.lines().filter(|l| !l.starts_with("rs.faultPoints=")).map(|l| format!("{l}\n")).collect();
    if !spec.is_empty() {
        out.push_str(&format!("rs.faultPoints={spec}\n"));
    }
    fs::write(&p, out).expect("write zoo.cfg");
}

/// Starts node `sid` on its dataDir without waiting for its role. Should one of its
/// ports have been taken meanwhile (a killed node's ports are free for anyone), the
/// harness gives every node new ports and restarts them.
fn start_node(ens: &mut Ensemble, sid: u64) {
    ens.start_nodes(&[sid]);
}

/// Waits until the process of `sid` exits; its exit code.
fn wait_exit(ens: &mut Ensemble, sid: u64, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = ens.node_mut(sid).exit_status() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            panic!("node {sid} did not exit within {timeout:?}\n{}", ens.describe_all(40));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until, among `sids` (all running), exactly one says leader and the others
/// follower; returns the leader.
fn wait_roles(ens: &Ensemble, sids: &[u64], timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let modes: Vec<(u64, Option<Mode>)> = sids.iter().map(|&s| (s, ens.node(s).mode())).collect();
        let leaders: Vec<u64> = modes.iter().filter(|(_, m)| *m == Some(Mode::Leader)).map(|(s, _)| *s).collect();
        let followers = modes.iter().filter(|(_, m)| *m == Some(Mode::Follower)).count();
        if leaders.len() == 1 && followers + 1 == sids.len() {
            return leaders[0];
        }
        for &s in sids {
            assert!(ens.node(s).alive(), "node {s} exited while waiting for roles\n{}", ens.describe_all(60));
        }
        if Instant::now() >= deadline {
            panic!("no leader + followers among {sids:?} within {timeout:?}: {modes:?}\n{}", ens.describe_all(60));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The `Zxid:` of `srvr` (None when the node does not serve).
fn srvr_zxid(ens: &Ensemble, sid: u64) -> Option<i64> {
    let out = ens.node(sid).four_letter_result("srvr").ok()?;
    let l = out.lines().find(|l| l.starts_with("Zxid: 0x"))?;
    i64::from_str_radix(l.trim_start_matches("Zxid: 0x").trim(), 16).ok()
}

/// Waits until every node of `sids` has applied the same last zxid (twice in a row).
fn wait_same_zxid(ens: &Ensemble, sids: &[u64], timeout: Duration) -> i64 {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let z: Vec<Option<i64>> = sids.iter().map(|&s| srvr_zxid(ens, s)).collect();
        if z.iter().all(|x| x.is_some() && *x == z[0]) {
            if last == z[0] {
                return z[0].unwrap();
            }
            last = z[0];
        } else {
            last = None;
        }
        if Instant::now() >= deadline {
            panic!("nodes {sids:?} do not reach the same zxid within {timeout:?}: {z:x?}\n{}", ens.describe_all(40));
        }
        thread::sleep(Duration::from_millis(150));
    }
}

// ------------------------------------------------------------------ client --

fn client(ens: &Ensemble, sids: &[u64]) -> ZooKeeper {
    init();
    ZooKeeper::connect(&ens.connect_string_of(sids), 6000, None).expect("connect")
}

fn ensure_root(zk: &ZooKeeper) {
    match zk.create("/t", Some(b""), &ids::open_acl_unsafe(), CreateMode::Persistent) {
        Ok(_) => {}
        Err(e) if e.code == Code::NodeExists => {}
        Err(e) => panic!("create /t: {e}"),
    }
}

/// Creates `/t/<prefix><i>` for i < n through `sids`, each acknowledged; closes.
fn write_batch(ens: &Ensemble, sids: &[u64], prefix: &str, n: usize) -> Acked {
    let zk = client(ens, sids);
    ensure_root(&zk);
    let mut acked = Vec::new();
    for i in 0..n {
        let path = format!("/t/{prefix}{i}");
        let data = format!("{prefix}-{i}").into_bytes();
        zk.create(&path, Some(&data), &ids::open_acl_unsafe(), CreateMode::Persistent)
            .unwrap_or_else(|e| panic!("create {path}: {e}\n{}", ens.describe_all(30)));
        acked.push((path, data));
    }
    zk.close();
    acked
}

/// A writer thread creating `/t/seq/s-` sequential nodes through `sids` until stopped;
/// the acknowledged names and data.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Writer {
    fn start(ens: &Ensemble, sids: &[u64], tag: &str) -> Writer {
        let zk = client(ens, sids);
        ensure_root(&zk);
        match zk.create("/t/seq", Some(b""), &ids::open_acl_unsafe(), CreateMode::Persistent) {
            Ok(_) => {}
            Err(e) if e.code == Code::NodeExists => {}
            Err(e) => panic!("create /t/seq: {e}"),
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (s2, a2, tag) = (stop.clone(), acked.clone(), tag.to_string());
        let handle = thread::spawn(move || {
            let mut i = 0;
            while !s2.load(Ordering::Acquire) {
                let data = format!("{tag}-{i}").into_bytes();
                if let Ok(name) = zk.create("/t/seq/s-", Some(&data), &ids::open_acl_unsafe(), CreateMode::PersistentSequential) {
                    a2.lock().unwrap().push((name, data));
                }
                i += 1;
                thread::sleep(Duration::from_millis(20));
            }
            zk.close();
        });
        Writer { stop, acked, handle: Some(handle) }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(mut self) -> Acked {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.join().expect("writer thread");
        }
        let v = self.acked.lock().unwrap().clone();
        v
    }
}

/// The `/t` subtree as node `sid` alone serves it (after a sync).
fn live_tree(ens: &Ensemble, sid: u64) -> Tree {
    fn walk(zk: &ZooKeeper, path: &str, out: &mut Tree) {
        match zk.get_data(path, None) {
            Ok((d, st)) => {
                out.insert(path.to_string(), (d.unwrap_or_default(), st.czxid, st.mzxid));
            }
            Err(e) if e.code == Code::NoNode => return,
            Err(e) => panic!("get_data {path}: {e}"),
        }
        match zk.get_children(path, None) {
            Ok(cs) => {
                for c in cs {
                    walk(zk, &format!("{path}/{c}"), out);
                }
            }
            Err(e) if e.code == Code::NoNode => {}
            Err(e) => panic!("get_children {path}: {e}"),
        }
    }
    let zk = client(ens, &[sid]);
    zk.sync("/").unwrap_or_else(|e| panic!("sync on node {sid}: {e}"));
    let mut out = Tree::new();
    walk(&zk, "/t", &mut out);
    zk.close();
    out
}

// ------------------------------------------------------------------- disks --

/// A node's dataDir as a restart would read it.
struct Disk {
    sid: u64,
    /// zxid of the newest valid snapshot (-1: none).
    snap_zxid: i64,
    /// Every txn of the logs, in file order: (zxid, header + txn rendered).
    entries: Vec<(i64, String)>,
    /// `/t` subtree after snapshot + replay.
    tree: Tree,
    last_zxid: i64,
    current_epoch: i64,
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("mkdir");
    if let Ok(rd) = fs::read_dir(src) {
        for e in rd.flatten() {
            if e.path().is_file() {
                fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
            }
        }
    }
}

/// Reads a copy of `version_2` (so that a torn tail's repair touches only the copy),
/// optionally without snapshot files other than `only_snapshot`.
fn read_version2(sid: u64, version_2: &Path, only_snapshot: Option<&Path>) -> Disk {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dst = tmp.path().join("version-2");
    copy_dir(version_2, &dst);
    if let Some(keep) = only_snapshot {
        for e in fs::read_dir(&dst).expect("read copy").flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with("snapshot.") && Some(e.file_name().as_os_str()) != keep.file_name() {
                fs::remove_file(e.path()).expect("rm snapshot");
            }
        }
    }
    let current_epoch = read_long_from_file(&dst, CURRENT_EPOCH_FILENAME).unwrap_or(-1);
    let tsl = FileTxnSnapLog::new(tmp.path(), tmp.path()).expect("FileTxnSnapLog");
    let restored = tsl.restore().unwrap_or_else(|e| panic!("node {sid}: restore failed: {e}"));
    let snap_zxid = restored.snapshot.as_deref().map(|p| zxid_of(p, "snapshot")).unwrap_or(-1);
    let mut entries = Vec::new();
    let it = FileTxnLog::new(dst.clone()).read(0).unwrap_or_else(|e| panic!("node {sid}: read log: {e}"));
    for e in it {
        let e = e.unwrap_or_else(|e| panic!("node {sid}: log entry: {e}"));
        entries.push((e.header.zxid, format!("{:?} {:?}", e.header, e.txn)));
    }
    let tree: Tree = restored
        .tree
        .nodes()
        .into_iter()
        .filter(|(p, _)| p == "/t" || p.starts_with("/t/"))
        .map(|(p, n)| (p, (n.data_vec().unwrap_or_default(), n.stat.czxid, n.stat.mzxid)))
        .collect();
    Disk { sid, snap_zxid, entries, tree, last_zxid: restored.tree.last_processed_zxid, current_epoch }
}

fn read_disk(ens: &Ensemble, sid: u64) -> Disk {
    read_version2(sid, &ens.node(sid).data_dir().join("version-2"), None)
}

/// `next` may follow `prev` in a history: the next counter of the same epoch, or the
/// first txn of a later epoch.
fn follows(prev: i64, next: i64) -> bool {
    (epoch(next) == epoch(prev) && next == prev + 1) || (epoch(next) > epoch(prev) && counter(next) == 1)
}

/// Txn logs agree at equal zxids across nodes; within a node zxids strictly increase
/// and, after the newest snapshot, have no hole within an epoch.
fn check_histories(disks: &[Disk]) {
    let mut by_zxid: BTreeMap<i64, (u64, &str)> = BTreeMap::new();
    for d in disks {
        for (z, s) in &d.entries {
            match by_zxid.get(z) {
                Some((o, t)) if *t != s.as_str() => {
                    panic!("divergence at zxid 0x{z:x}: node {o} logged {t}\nnode {} logged {s}", d.sid)
                }
                Some(_) => {}
                None => {
                    by_zxid.insert(*z, (d.sid, s));
                }
            }
        }
        for w in d.entries.windows(2) {
            assert!(w[1].0 > w[0].0, "node {}: txn log not increasing: 0x{:x} then 0x{:x}", d.sid, w[0].0, w[1].0);
        }
        let mut prev = d.snap_zxid.max(0);
        for (z, _) in d.entries.iter().filter(|(z, _)| *z > d.snap_zxid) {
            assert!(
                follows(prev, *z),
                "node {}: hole in the txn log after snapshot 0x{:x}: 0x{prev:x} then 0x{z:x}",
                d.sid,
                d.snap_zxid
            );
            prev = *z;
        }
    }
}

fn assert_has(what: &str, tree: &Tree, acked: &Acked) {
    let missing: Vec<&String> = acked.iter().filter(|(p, d)| tree.get(p).map(|x| &x.0) != Some(d)).map(|(p, _)| p).collect();
    assert!(missing.is_empty(), "{what}: acknowledged writes missing or different: {missing:?}");
}

fn diff_trees(a: &Tree, b: &Tree) -> String {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(10)
        .map(|k| format!("{k}: {:?} vs {:?}", a.get(k), b.get(k)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The end of every test: the running ensemble agrees and has every acknowledged
/// write; then every node is killed and its dataDir gives the same tree and a
/// consistent history.
fn final_check(ens: &mut Ensemble, acked: &Acked) {
    let sids = ens.sids();
    for &s in &sids {
        if !ens.node(s).alive() {
            start_node(ens, s);
        }
    }
    wait_roles(ens, &sids, WAIT);
    // One more write: a leader that has just taken over is at (epoch, 0) while its
    // followers are at their last txn; after this every node ends at the same zxid.
    let mut acked = acked.clone();
    acked.extend(write_batch(ens, &sids, "zfinal", 1));
    let acked = &acked;
    wait_same_zxid(ens, &sids, WAIT);
    let trees: Vec<(u64, Tree)> = sids.iter().map(|&s| (s, live_tree(ens, s))).collect();
    for (s, t) in &trees {
        assert_has(&format!("node {s} (live)"), t, acked);
        assert!(t == &trees[0].1, "node {s} and node {} serve different trees:\n{}", trees[0].0, diff_trees(t, &trees[0].1));
    }
    let mut names = BTreeSet::new();
    for (p, _) in acked {
        assert!(names.insert(p.clone()), "{p} was acknowledged twice (a reused sequence number)");
    }
    let z = wait_same_zxid(ens, &sids, WAIT);
    // A follower applies a commit as soon as it arrives, its own log may lag a little:
    // kill only once every node has logged up to z.
    let deadline = Instant::now() + WAIT;
    for &s in &sids {
        let dir = ens.node(s).data_dir().join("version-2");
        while last_logged_zxid(&dir) < z {
            assert!(Instant::now() < deadline, "node {s} does not log 0x{z:x}\n{}", ens.describe_all(40));
            thread::sleep(Duration::from_millis(50));
        }
    }
    for &s in &sids {
        ens.node_mut(s).kill();
    }
    let disks: Vec<Disk> = sids.iter().map(|&s| read_disk(ens, s)).collect();
    for d in &disks {
        assert_eq!(d.last_zxid, z, "node {}: restored last zxid 0x{:x}, the ensemble was at 0x{z:x}", d.sid, d.last_zxid);
        assert_has(&format!("node {} (disk)", d.sid), &d.tree, acked);
        assert!(d.tree == disks[0].tree, "node {} and node {} restore different trees:\n{}", d.sid, disks[0].sid, diff_trees(&d.tree, &disks[0].tree));
    }
    check_histories(&disks);
    for &s in &sids {
        let log = ens.node(s).log_contents();
        assert!(!log.contains("panicked"), "node {s} panicked:\n{}", ens.describe_all(40));
    }
}

fn others(ens: &Ensemble, not: &[u64]) -> Vec<u64> {
    ens.sids().into_iter().filter(|s| !not.contains(s)).collect()
}

// ------------------------------------------------------------------- tests --

/// ZOOKEEPER-3911 / ZOOKEEPER-4646. Upstream 3.8.0: a learner synced by DIFF kept the
/// committed txns of the DIFF in memory (packetsNotCommitted / queued to the
/// SyncRequestProcessor) and acked NEWLEADER before they were on disk; the leader
/// counts that ack as "this follower has the history". A crash right after the ack
/// loses those txns on that node, and with a second failure acknowledged writes are
/// gone from the quorum.
///
/// Here: follower F misses 10 acknowledged writes, restarts with
/// `learner.newleader.afterAck=crash` (exit 97 right after its NEWLEADER ack). Its
/// dataDir, read as a restart would, must hold every write it acked; then F restarts,
/// rejoins and the ensemble agrees.
#[test]
fn zk3911_zk4646_diff_txns_are_on_disk_before_the_newleader_ack() {
    let (mut ens, l) = start(spec3());
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 5);
    ens.kill(f);
    acked.extend(write_batch(&ens, &[l], "b", 10));
    set_faults(&ens, f, "learner.newleader.afterAck=crash");
    let from = ens.node(f).log_offset();
    start_node(&mut ens, f);
    assert_eq!(wait_exit(&mut ens, f, WAIT), CRASH, "node {f} should crash after its NEWLEADER ack");
    let log = ens.node(f).log_since(from);
    assert!(log.contains("Getting a diff from the leader"), "node {f} was not synced by DIFF:\n{log}");
    assert!(log.contains("Fault point learner.newleader.afterAck: crash"), "node {f} crashed elsewhere:\n{log}");
    let d = read_disk(&ens, f);
    assert_has(&format!("node {f} after a crash right after its NEWLEADER ack"), &d.tree, &acked);
    set_faults(&ens, f, "");
    start_node(&mut ens, f);
    wait_roles(&ens, &ens.sids(), WAIT);
    acked.extend(write_batch(&ens, &[f], "c", 3));
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4643. Upstream 3.8.0 wrote currentEpoch at NEWLEADER *before* the txns of
/// the sync were persisted. A learner crashing between the two restarts claiming the
/// new epoch with an old history: elected with that epoch it truncates others' logs, and
/// committed txns are lost.
///
/// Here, three rounds, one per point of our NEWLEADER handling (persist, then epoch,
/// then ack): `learner.newleader.beforePersist`, `afterPersist`, `afterEpoch`. Each
/// round the follower misses writes across a leader change (so NEWLEADER brings a new
/// epoch), restarts armed to crash at the point, and its dataDir must show the state of
/// that point — in particular currentEpoch is the new epoch only if every synced write
/// is on disk. Then it restarts and rejoins; at the end the ensemble agrees.
#[test]
fn zk4643_current_epoch_is_written_only_after_the_synced_txns() {
    let (mut ens, mut l) = start(spec3());
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 3);
    for (round, point) in ["learner.newleader.beforePersist", "learner.newleader.afterPersist", "learner.newleader.afterEpoch"].iter().enumerate() {
        ens.kill(f);
        let before = write_batch(&ens, &[l], &format!("r{round}x"), 5);
        // A leader change while F is away: F's NEWLEADER will carry a new epoch.
        let old_epoch = epoch(srvr_zxid(&ens, l).expect("leader zxid"));
        ens.kill(l);
        start_node(&mut ens, l);
        let rest = others(&ens, &[f]);
        l = wait_roles(&ens, &rest, WAIT);
        let mut round_acked = before;
        round_acked.extend(write_batch(&ens, &[l], &format!("r{round}y"), 5));
        let new_epoch = epoch(srvr_zxid(&ens, l).expect("leader zxid"));
        assert!(new_epoch > old_epoch, "the leader change did not start a new epoch");
        set_faults(&ens, f, &format!("{point}=crash"));
        start_node(&mut ens, f);
        assert_eq!(wait_exit(&mut ens, f, WAIT), CRASH, "node {f} should crash at {point}");
        let d = read_disk(&ens, f);
        let has_all = round_acked.iter().all(|(p, data)| d.tree.get(p).map(|x| &x.0) == Some(data));
        assert!(
            d.current_epoch < new_epoch || has_all,
            "{point}: node {f} wrote currentEpoch {} (the new epoch) without the synced txns on disk",
            d.current_epoch
        );
        let (want_data, want_epoch) = match round {
            0 => (false, false),
            1 => (true, false),
            _ => (true, true),
        };
        assert_eq!(has_all, want_data, "{point}: synced txns on disk");
        assert_eq!(d.current_epoch >= new_epoch, want_epoch, "{point}: currentEpoch {} vs new epoch {new_epoch}", d.current_epoch);
        set_faults(&ens, f, "");
        start_node(&mut ens, f);
        l = wait_roles(&ens, &ens.sids(), WAIT);
        acked.extend(round_acked);
    }
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4685. In the releases that first fixed 4646, proposals that reached a
/// learner during its sync were logged (and so acked) by the SyncRequestProcessor
/// before the learner's NEWLEADER ack was written. The leader's LearnerHandler takes the
/// first ACK after NEWLEADER as the NEWLEADER ack; a proposal's ACK there has "a
/// different epoch", is not counted, and the leader, short of a quorum of NEWLEADER
/// acks, shuts down and re-elects ("Not sufficient followers synced" / "Waiting for a
/// quorum of followers").
///
/// Here: every node's leader side waits 1 s after deciding a learner's sync, with
/// forwarding already on (`leader.newleader.beforeQueue=delay:1000`), and 1 s before
/// UPTODATE (`leader.uptodate.beforeSend=delay:1000`), while a client writes without
/// pause: a restarting follower receives proposals and commits between DIFF and
/// NEWLEADER and between NEWLEADER and UPTODATE. The leader must keep leading in the
/// same epoch, see the NEWLEADER ack first, every write completes, and the follower
/// syncs on its first attempt. Then the case that made upstream's leader quit: a new
/// leader establishing its epoch with exactly this follower, whose DIFF carries
/// proposals — its first ACK must be the NEWLEADER ack, and the leader leads once.
#[test]
fn zk4685_proposals_during_sync_do_not_make_the_leader_give_up() {
    let spec = spec3().cfg("rs.faultPoints=leader.newleader.beforeQueue=delay:1000,leader.uptodate.beforeSend=delay:1000");
    let (mut ens, l) = start(spec);
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 3);
    ens.kill(f);
    let epoch_before = epoch(srvr_zxid(&ens, l).expect("leader zxid"));
    let lfrom = ens.node(l).log_offset();
    let w = Writer::start(&ens, &[l], "w");
    thread::sleep(Duration::from_millis(300));
    let ffrom = ens.node(f).log_offset();
    start_node(&mut ens, f);
    ens.node(l).wait_for_log("Fault point leader.newleader.beforeQueue", lfrom, WAIT);
    let at_decision = w.count();
    ens.node(f).wait_for_log("Learner received UPTODATE", ffrom, WAIT);
    let at_uptodate = w.count();
    wait_roles(&ens, &ens.sids(), WAIT);
    thread::sleep(Duration::from_millis(500));
    let writes = w.finish();
    assert!(
        at_uptodate >= at_decision + 5,
        "too few writes during the sync to test anything ({at_decision} -> {at_uptodate})"
    );
    let llog = ens.node(l).log_since(lfrom);
    for bad in ["is from a different epoch", "Not sufficient followers synced", "Waiting for a quorum of followers", "Shutdown called"] {
        assert!(!llog.contains(bad), "leader {l} logged {bad:?} during the sync of {f}:\n{}", ens.describe_all(40));
    }
    assert_eq!(wait_roles(&ens, &ens.sids(), WAIT), l, "the leader changed");
    assert_eq!(epoch(srvr_zxid(&ens, l).expect("leader zxid")), epoch_before, "the leader re-established itself in a new epoch");
    let flog = ens.node(f).log_since(ffrom);
    assert_eq!(flog.matches("Learner received UPTODATE").count(), 1, "node {f} needed more than one sync:\n{flog}");
    assert!(!flog.contains("Exception when following the leader"), "node {f} lost its leader during the sync:\n{flog}");
    acked.extend(writes);
    // The case where it mattered upstream: a new leader needs this follower's NEWLEADER
    // ack for its quorum, and the follower's DIFF carries proposals (acked early, they
    // made the leader time out waiting for NEWLEADER acks and give up).
    ens.kill(f);
    acked.extend(write_batch(&ens, &[l], "e", 10));
    let g = others(&ens, &[l, f])[0];
    let gfrom = ens.node(g).log_offset();
    ens.kill(l);
    let ffrom = ens.node(f).log_offset();
    start_node(&mut ens, f);
    assert_eq!(wait_roles(&ens, &[f, g], WAIT), g, "node {g} has the longer history");
    let glog = ens.node(g).log_since(gfrom);
    for bad in ["is from a different epoch", "Waiting for a quorum of followers", "Not sufficient followers synced"] {
        assert!(!glog.contains(bad), "new leader {g} logged {bad:?} while establishing with {f}:\n{}", ens.describe_all(40));
    }
    assert_eq!(glog.matches("LEADING - LEADER ELECTION TOOK").count(), 1, "node {g} had to lead more than once:\n{glog}");
    assert!(ens.node(f).log_since(ffrom).contains("Getting a diff from the leader"), "node {f} was not synced by DIFF");
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4785. In 3.8/3.9 a learner's DIFF sync handed the proposals received
/// after NEWLEADER to the SyncRequestProcessor while the syncing thread still logged
/// others directly, so the log could receive txns out of order or twice, or lose one
/// when a commit raced the hand-over; an unchecked gap in the DIFF's proposals went
/// unnoticed. Ours logs the committed part synchronously at NEWLEADER, keeps the rest
/// in order until UPTODATE, and refuses a gap within an epoch.
///
/// Here: the follower is slowed at NEWLEADER (`learner.newleader.beforePersist` and
/// `afterAck`, 700 ms each) and the leader before UPTODATE, under continuous writes of
/// sequential nodes, so that proposals and commits pile up on both sides of NEWLEADER.
/// Every node's log must then hold each txn exactly once, in order, with no hole; every
/// acknowledged sequential node exists everywhere; and after the old leader is killed
/// and the follower's view has to serve, no sequence number is handed out twice.
#[test]
fn zk4785_proposals_during_a_diff_are_logged_once_in_order() {
    let spec = spec3().cfg("rs.faultPoints=leader.uptodate.beforeSend=delay:700");
    let (mut ens, l) = start(spec);
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 3);
    ens.kill(f);
    set_faults(&ens, f, "learner.newleader.beforePersist=delay:700,learner.newleader.afterAck=delay:700");
    let w = Writer::start(&ens, &[l], "w");
    thread::sleep(Duration::from_millis(300));
    let ffrom = ens.node(f).log_offset();
    start_node(&mut ens, f);
    ens.node(f).wait_for_log("Fault point learner.newleader.beforePersist", ffrom, WAIT);
    let c0 = w.count();
    ens.node(f).wait_for_log("Learner received UPTODATE", ffrom, WAIT);
    let c1 = w.count();
    wait_roles(&ens, &ens.sids(), WAIT);
    thread::sleep(Duration::from_millis(500));
    acked.extend(w.finish());
    assert!(c1 >= c0 + 5, "too few writes around NEWLEADER to test anything ({c0} -> {c1})");
    let flog = ens.node(f).log_since(ffrom);
    assert_eq!(flog.matches("Learner received UPTODATE").count(), 1, "node {f} needed more than one sync:\n{flog}");
    // The old leader goes: the others (the follower among them) must go on without
    // reusing a sequence number.
    ens.kill(l);
    let rest = others(&ens, &[l]);
    let nl = wait_roles(&ens, &rest, WAIT);
    let w2 = Writer::start(&ens, &[nl], "v");
    thread::sleep(Duration::from_millis(800));
    acked.extend(w2.finish());
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4394 (NullPointerException in syncWithLeader when a COMMIT came for a
/// proposal the learner no longer held) and ZOOKEEPER-4409 (NullPointerException in
/// SendAckRequestProcessor when the learner's leader socket was gone): packets and
/// acks racing the learner's shutdown. Our learner must neither panic nor hang; it goes
/// back to LOOKING and rejoins.
///
/// Here, the learner's connection drops while it is inside its NEWLEADER handling: it
/// waits 2 s at `learner.newleader.beforePersist` and the leader is killed meanwhile.
/// It then persists, writes its epoch, fails to ack or to read UPTODATE, and must elect
/// a new leader with the third node and serve; writes go on.
#[test]
fn zk4394_learner_loses_its_leader_inside_newleader() {
    let (mut ens, l) = start(spec3());
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 3);
    ens.kill(f);
    acked.extend(write_batch(&ens, &[l], "b", 5));
    set_faults(&ens, f, "learner.newleader.beforePersist=delay:2000");
    let from = ens.node(f).log_offset();
    start_node(&mut ens, f);
    ens.node(f).wait_for_log("Fault point learner.newleader.beforePersist", from, WAIT);
    ens.kill(l);
    let rest = others(&ens, &[l]);
    let nl = wait_roles(&ens, &rest, WAIT);
    let log = ens.node(f).log_since(from);
    assert!(log.contains("Exception when following the leader") || nl == f, "node {f} did not notice its leader's loss:\n{log}");
    acked.extend(write_batch(&ens, &[f], "c", 5));
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4394, the interleaving itself: PROPOSALs reach the syncing learner before
/// NEWLEADER and their COMMITs after it (3.9.0 had emptied its pending list at NEWLEADER
/// and dereferenced the missing proposal). Ours keeps them in order through NEWLEADER
/// and UPTODATE; the commits must match (no exit 12), nothing panics, the learner syncs
/// once, and the writes are everywhere.
///
/// Here (3 leads; node 1 away): the leader waits 0.5 s before queueing NEWLEADER
/// (`leader.newleader.beforeQueue=delay:500`) and 2 s before UPTODATE
/// (`leader.uptodate.beforeSend=delay:2000`, under syncLimit), node 2 waits 0.7 s before
/// each fsync (`sync.beforeFsync=delay:700`) so that writes issued during the leader's
/// first wait are committed only after NEWLEADER went out and before UPTODATE.
#[test]
fn zk4394_commits_after_newleader_for_proposals_before_it() {
    let spec = spec3()
        .node_cfg(3, "rs.faultPoints=leader.newleader.beforeQueue=delay:500,leader.uptodate.beforeSend=delay:2000")
        .node_cfg(2, "rs.faultPoints=sync.beforeFsync=delay:700");
    let (mut ens, l) = start(spec);
    assert_eq!(l, 3, "the highest sid leads a fresh ensemble");
    let mut acked = write_batch(&ens, &[3], "a", 3);
    let zk = client(&ens, &[3]);
    ensure_root(&zk);
    ens.kill(1);
    let lfrom = ens.node(3).log_offset();
    let ffrom = ens.node(1).log_offset();
    start_node(&mut ens, 1);
    ens.node(3).wait_for_log("Fault point leader.newleader.beforeQueue", lfrom, WAIT);
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..5 {
        let (path, data) = (format!("/t/straddle{i}"), format!("s{i}").into_bytes());
        let tx = tx.clone();
        let p2 = path.clone();
        zk.create_async(&path, Some(&data.clone()), &ids::open_acl_unsafe(), CreateMode::Persistent, move |r| {
            let _ = tx.send((p2, data, r));
        });
    }
    for _ in 0..5 {
        let (p, d, r) = rx.recv_timeout(WAIT).expect("a write's answer");
        r.unwrap_or_else(|e| panic!("create {p}: {e}"));
        acked.push((p, d));
    }
    let m = ens.node(1).wait_for_log(
        regex::Regex::new(r"(\d+) proposals to log and (\d+) commits received after NEWLEADER").unwrap(),
        ffrom,
        WAIT,
    );
    let line = m.line.clone();
    let caps = regex::Regex::new(r"(\d+) proposals to log and (\d+) commits").unwrap().captures(&line).map(|c| (c[1].parse::<u32>().unwrap(), c[2].parse::<u32>().unwrap()));
    // The writes were proposed during the leader's wait before NEWLEADER: commits after
    // NEWLEADER are commits of proposals that came before it.
    let (_props, commits) = caps.expect("counts");
    assert!(commits >= 1, "no commit came between NEWLEADER and UPTODATE ({line}); nothing tested");
    wait_roles(&ens, &ens.sids(), WAIT);
    zk.close();
    let flog = ens.node(1).log_since(ffrom);
    assert_eq!(flog.matches("Learner received UPTODATE").count(), 1, "node 1 needed more than one sync:\n{flog}");
    assert!(!flog.contains("Exception when following the leader"), "node 1 lost its leader:\n{flog}");
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4409: the follower's SyncThread acks a logged proposal while the follower
/// is shutting down after losing its leader (upstream dereferenced the closed socket).
///
/// Here: the follower waits 1.5 s before each fsync (`sync.beforeFsync=delay:1500`); a
/// write is proposed, and while the follower's SyncThread sleeps with it the leader is
/// killed. The SyncThread then fsyncs and acks into a closed connection during the
/// follower's shutdown: no panic, no hang; the follower elects a new leader with the
/// third node; the write, if acknowledged, survives.
#[test]
fn zk4409_ack_after_the_leader_connection_closed() {
    let (mut ens, l) = start(spec3());
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 3);
    ens.kill(f);
    set_faults(&ens, f, "sync.beforeFsync=delay:1500");
    start_node(&mut ens, f);
    wait_roles(&ens, &ens.sids(), WAIT);
    let zk = client(&ens, &[l]);
    ensure_root(&zk);
    let from = ens.node(f).log_offset();
    let h = thread::spawn(move || {
        let r = zk.create("/t/racing", Some(b"r"), &ids::open_acl_unsafe(), CreateMode::Persistent);
        drop(zk);
        r
    });
    ens.node(f).wait_for_log("Fault point sync.beforeFsync", from, WAIT);
    ens.kill(l);
    let racing = h.join().expect("writer");
    let rest = others(&ens, &[l]);
    wait_roles(&ens, &rest, WAIT);
    if racing.is_ok() {
        acked.push(("/t/racing".into(), b"r".to_vec()));
    }
    acked.extend(write_batch(&ens, &rest, "c", 3));
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-4925 (and the hole it is about). A learner synced by SNAP keeps its old
/// txn log files: its log jumps from its old last zxid X to the snapshot's zxid Z, the
/// snapshot covering the hole. Upstream 3.9.3 also left holes in the committedLog of a
/// learner. When such a node later leads and serves a DIFF from its txn log to a peer
/// whose last zxid lies inside the hole, the "sync from the txn log" logic does not see
/// the peer's zxid, concludes that the peer has txns the leader lacks and sends TRUNC
/// to X — the peer drops committed txns X+1..Z and the new leader's proposals after Z
/// arrive with no complaint (the learner checks continuity only between proposals).
///
/// Here (sids 1..3, 3 leads the first epoch and forces SNAP syncs —
/// `forceSnapshotSync=true` on nodes 2 and 3 only): node 1 misses writes h*, rejoins by
/// SNAP at Z; node 2 is killed right then (its last zxid is Z); writes p* go through
/// 1 and 3; node 3 is killed and node 2 restarted: node 1 leads and syncs node 2 from its
/// txn log. Node 2 must keep the h* writes, and the logs must show no hole.
#[test]
fn zk4925_leader_with_a_hole_in_its_txn_log_syncs_a_peer_without_loss() {
    // snapshotSizeFactor: the DIFF may read (preallocated) txn log files of any size.
    let spec = spec3().cfg("snapshotSizeFactor=1000000000").node_cfg(2, "forceSnapshotSync=true").node_cfg(3, "forceSnapshotSync=true");
    let (mut ens, l) = start(spec);
    assert_eq!(l, 3, "the highest sid leads a fresh ensemble");
    let mut acked = write_batch(&ens, &[3], "w", 5);
    ens.kill(1);
    acked.extend(write_batch(&ens, &[3], "h", 5));
    let from1 = ens.node(1).log_offset();
    start_node(&mut ens, 1);
    wait_roles(&ens, &[1, 2, 3], WAIT);
    assert!(ens.node(1).log_since(from1).contains("Getting a snapshot from leader"), "node 1 was not synced by SNAP");
    wait_same_zxid(&ens, &[1, 2, 3], WAIT);
    ens.kill(2);
    acked.extend(write_batch(&ens, &[3], "p", 5));
    wait_same_zxid(&ens, &[1, 3], WAIT);
    ens.kill(3);
    let from2 = ens.node(2).log_offset();
    start_node(&mut ens, 2);
    assert_eq!(wait_roles(&ens, &[1, 2], WAIT), 1, "node 1 (the longest history) should lead");
    let log2 = ens.node(2).log_since(from2);
    eprintln!("node 2 sync: {:?}", log2.lines().filter(|l| l.contains("Getting a") || l.contains("Truncating")).collect::<Vec<_>>());
    let t2 = live_tree(&ens, 2);
    assert_has("node 2 after its sync from a leader with a hole in its log", &t2, &acked);
    acked.extend(write_batch(&ens, &[1], "n", 3));
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-3642. A learner synced by SNAP (3.5) kept the received snapshot in memory
/// only and acked NEWLEADER; the leader then moved on with DIFFs. A crash after the ack
/// left a dataDir with its old history, and on rejoining, the DIFF it got did not
/// contain what the snapshot had brought.
///
/// Here: follower F loses its dataDir, restarts armed with
/// `learner.newleader.afterAck=crash`, is synced by SNAP and crashes right after its
/// NEWLEADER ack. Its dataDir must already hold the snapshot with every acknowledged
/// write; restarted, it must rejoin by DIFF (nothing resent) and agree.
#[test]
fn zk3642_snap_is_durable_before_the_newleader_ack() {
    let (mut ens, l) = start(spec3());
    let f = others(&ens, &[l])[0];
    let mut acked = write_batch(&ens, &[l], "a", 10);
    ens.kill(f);
    acked.extend(write_batch(&ens, &[l], "b", 5));
    fs::remove_dir_all(ens.node(f).data_dir().join("version-2")).expect("wipe version-2");
    set_faults(&ens, f, "learner.newleader.afterAck=crash");
    let from = ens.node(f).log_offset();
    start_node(&mut ens, f);
    assert_eq!(wait_exit(&mut ens, f, WAIT), CRASH, "node {f} should crash after its NEWLEADER ack");
    assert!(ens.node(f).log_since(from).contains("Getting a snapshot from leader"), "node {f} was not synced by SNAP");
    let d = read_disk(&ens, f);
    assert_has(&format!("node {f} after a crash right after its SNAP sync's NEWLEADER ack"), &d.tree, &acked);
    set_faults(&ens, f, "");
    let from = ens.node(f).log_offset();
    start_node(&mut ens, f);
    wait_roles(&ens, &ens.sids(), WAIT);
    let log = ens.node(f).log_since(from);
    assert!(log.contains("Getting a diff from the leader"), "node {f} needed the snapshot again:\n{log}");
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-3127. Upstream advanced the tree's lastProcessedZxid per sub-operation
/// of a multi; a fuzzy snapshot started meanwhile was named after the multi's zxid
/// while holding only part of it, and a restart replaying from that snapshot skipped
/// the multi: its other half was gone on that node.
///
/// Here: snapCount=10 (a snapshot every few txns) and multis of 40 creates under
/// continuous load, then every node is killed -9 and restarted. Every snapshot file of
/// every node, restored alone with the logs, must give each multi all or nothing, and
/// the latest state must have all of them on every node.
#[test]
fn zk3127_snapshot_never_splits_a_multi() {
    use zookeeper::client::zookeeper::ops;
    let (mut ens, l) = start(spec3().cfg("snapCount=10"));
    let zk = client(&ens, &[l]);
    ensure_root(&zk);
    let mut acked: Acked = Vec::new();
    let multis = 30;
    let per = 40;
    for m in 0..multis {
        let base = format!("/t/m{m}");
        let mut ops = vec![ops::create(&base, Some(b"m"), &ids::open_acl_unsafe(), CreateMode::Persistent)];
        for i in 0..per {
            ops.push(ops::create(&format!("{base}/c{i}"), Some(format!("{m}.{i}").as_bytes()), &ids::open_acl_unsafe(), CreateMode::Persistent));
        }
        zk.multi(ops).unwrap_or_else(|(e, _)| panic!("multi {m}: {e}"));
        acked.push((base.clone(), b"m".to_vec()));
        for i in 0..per {
            acked.push((format!("{base}/c{i}"), format!("{m}.{i}").into_bytes()));
        }
    }
    zk.close();
    let sids = ens.sids();
    wait_same_zxid(&ens, &sids, WAIT);
    for &s in &sids {
        ens.node_mut(s).kill();
    }
    let check_atomic = |what: &str, t: &Tree| {
        for m in 0..multis {
            let n = (0..per).filter(|i| t.contains_key(&format!("/t/m{m}/c{i}"))).count() + usize::from(t.contains_key(&format!("/t/m{m}")));
            assert!(n == 0 || n == per + 1, "{what}: multi {m} is split: {n} of {} ops", per + 1);
        }
    };
    // Copies of the dataDirs, and the nodes restarted at once (their ports were freed:
    // the shorter the gap, the smaller the chance another test takes one).
    let copies = tempfile::tempdir().expect("tempdir");
    for &s in &sids {
        copy_dir(&ens.node(s).data_dir().join("version-2"), &copies.path().join(format!("node{s}")));
    }
    for &s in &sids {
        start_node(&mut ens, s);
    }
    let mut snapshots = 0;
    for &s in &sids {
        let v2 = copies.path().join(format!("node{s}"));
        for e in fs::read_dir(&v2).expect("read version-2").flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with("snapshot.") {
                continue;
            }
            snapshots += 1;
            let d = read_version2(s, &v2, Some(&e.path()));
            check_atomic(&format!("node {s} from {name}"), &d.tree);
            assert_has(&format!("node {s} from {name}"), &d.tree, &acked);
        }
    }
    assert!(snapshots >= 6, "too few snapshots ({snapshots}) to test anything");
    final_check(&mut ens, &acked);
}

/// A follower that crashes between its ACK and the COMMIT (`follower.ack.sent=crash`):
/// the write completes through the leader and the other follower, and the crashed
/// follower, restarted, has it (it logged before acking) and agrees.
#[test]
fn follower_crash_between_ack_and_commit() {
    let (mut ens, l) = start(spec3());
    let f = others(&ens, &[l])[0];
    let zk = client(&ens, &[l]);
    ensure_root(&zk);
    let mut acked = vec![];
    zk.create("/t/before", Some(b"0"), &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create");
    acked.push(("/t/before".to_string(), b"0".to_vec()));
    ens.kill(f);
    set_faults(&ens, f, "follower.ack.sent=crash");
    start_node(&mut ens, f);
    wait_roles(&ens, &ens.sids(), WAIT);
    zk.create("/t/x", Some(b"x"), &ids::open_acl_unsafe(), CreateMode::Persistent).expect("the write completes without the crashed follower");
    acked.push(("/t/x".to_string(), b"x".to_vec()));
    assert_eq!(wait_exit(&mut ens, f, WAIT), CRASH, "node {f} should crash after its first ack");
    zk.close();
    let d = read_disk(&ens, f);
    assert_has(&format!("node {f} (crashed after acking)"), &d.tree, &acked);
    set_faults(&ens, f, "");
    start_node(&mut ens, f);
    wait_roles(&ens, &ens.sids(), WAIT);
    assert_has(&format!("node {f} after rejoining"), &live_tree(&ens, f), &acked);
    final_check(&mut ens, &acked);
}

/// A follower that logged (and acked) a proposal whose COMMIT never came, because the
/// leader died, must count that txn as its own when it looks for a new leader
/// (upstream's `fastForwardDataBase` on a learner's shutdown). Otherwise it votes with
/// the zxid before the txn, a peer without the txn is elected, the DIFF leaves the txn
/// in this node's log but not in its memory, and its next restart replays it: the
/// node serves a node no one else has.
///
/// Here (sids 1..3): 3 leads the first epoch; 3 is killed and 2 leads the second with 1;
/// 3 rejoins. Node 2 is armed `leader.commit.beforeSend=crash@3`: the third commit of
/// its epoch (createSession, /t, then /t/p) kills it after node 1 has logged and acked
/// /t/p, and after 3 was killed again (its last zxid is /t). Then 3 restarts: 1 and 3
/// elect. Later every node restarts from its dataDir; all must agree.
#[test]
fn learner_counts_its_logged_uncommitted_txns_after_its_leader_dies() {
    let spec = spec3().node_cfg(2, "rs.faultPoints=leader.commit.beforeSend=crash@3");
    let (mut ens, l) = start(spec);
    assert_eq!(l, 3, "the highest sid leads a fresh ensemble");
    ens.kill(3);
    // Equal histories: the higher sid wins; should node 1 have won a race of the
    // election, it is restarted until node 2 leads (only node 2's leadership counts
    // commits for the armed point).
    let mut tries = 0;
    loop {
        let l = wait_roles(&ens, &[1, 2], WAIT);
        if l == 2 {
            break;
        }
        tries += 1;
        assert!(tries < 4, "node 2 never leads");
        ens.kill(l);
        start_node(&mut ens, l);
    }
    start_node(&mut ens, 3);
    wait_roles(&ens, &[1, 2, 3], WAIT);
    let zk = client(&ens, &[1]);
    ensure_root(&zk); // commits 1 (createSession) and 2 (/t)
    wait_same_zxid(&ens, &[1, 2, 3], WAIT);
    ens.kill(3);
    let from1 = ens.node(1).log_offset();
    let h = thread::spawn(move || {
        let r = zk.create("/t/p", Some(b"p"), &ids::open_acl_unsafe(), CreateMode::Persistent);
        thread::spawn(move || drop(zk));
        r
    });
    assert_eq!(wait_exit(&mut ens, 2, WAIT), CRASH, "node 2 should crash at its third commit");
    let r = h.join().expect("writer");
    assert!(r.is_err(), "the write cannot have been acknowledged: {r:?}");
    ens.node(1).wait_for_log("Exception when following the leader", from1, WAIT);
    set_faults(&ens, 2, "");
    start_node(&mut ens, 3);
    let nl = wait_roles(&ens, &[1, 3], WAIT);
    eprintln!("leader after node 2's crash: {nl}");
    let mut acked = write_batch(&ens, &[nl], "n", 3);
    // Every node restarts from its dataDir: what it logged is what it has.
    for s in [1u64, 3] {
        ens.kill(s);
        start_node(&mut ens, s);
        wait_roles(&ens, &[1, 3], WAIT);
    }
    start_node(&mut ens, 2);
    wait_roles(&ens, &[1, 2, 3], WAIT);
    acked.extend(write_batch(&ens, &[1], "m", 2));
    final_check(&mut ens, &acked);
}

/// ZOOKEEPER-3642, the other half: a SNAP sync cut short. The learner replaces its
/// database with the leader's snapshot in memory, then loses the leader before
/// NEWLEADER (so nothing of it is on disk). Upstream 3.5 kept that database and voted
/// with its zxid; synced afterwards by DIFF from that zxid, its disk lacked everything
/// between its old history and the snapshot, and the next restart served a tree with
/// committed txns missing. (Fixed upstream by a full shutdown — database cleared —
/// when a learner leaves while its sync mode is SNAP.)
///
/// Here (3 leads the fresh ensemble, `forceSnapshotSync=true` on it, and it waits 3 s
/// between sending a learner's snapshot and queueing NEWLEADER —
/// `leader.newleader.beforeQueue=delay:3000`): node 1 misses writes b*, restarts, loads
/// the leader's snapshot, and the leader is killed before NEWLEADER. Nodes 1 and 2 go
/// on, writes c* happen, node 1 restarts from its disk: it must have b* and c*.
#[test]
fn zk3642_snap_sync_cut_short_is_not_counted() {
    let (mut ens, l) = start(spec3().node_cfg(3, "forceSnapshotSync=true\nrs.faultPoints=leader.newleader.beforeQueue=delay:3000"));
    assert_eq!(l, 3, "the highest sid leads a fresh ensemble");
    let mut acked = write_batch(&ens, &[3], "a", 5);
    ens.kill(1);
    acked.extend(write_batch(&ens, &[3], "b", 10));
    let from1 = ens.node(1).log_offset();
    let from3 = ens.node(3).log_offset();
    start_node(&mut ens, 1);
    ens.node(1).wait_for_log("Getting a snapshot from leader", from1, WAIT);
    ens.node(3).wait_for_log("Fault point leader.newleader.beforeQueue", from3, WAIT);
    thread::sleep(Duration::from_millis(500));
    ens.kill(3);
    assert!(!ens.node(1).log_since(from1).contains("Learner received NEWLEADER"), "the leader died too late");
    let nl = wait_roles(&ens, &[1, 2], WAIT);
    acked.extend(write_batch(&ens, &[nl], "c", 5));
    ens.kill(1);
        start_node(&mut ens, 1);
    wait_roles(&ens, &[1, 2], WAIT);
    assert_has("node 1 restarted after a SNAP sync cut short", &live_tree(&ens, 1), &acked);
    final_check(&mut ens, &acked);
}
