//! The CommitProcessor's worker pool in a 3-node ensemble of our servers, with the
//! default `zookeeper.commitProcessor.numWorkerThreads` (the number of cores; set to 2
//! explicitly on a 1-core machine so that a pool is always there).
//!
//! Six sessions spread over the three nodes pipeline mixed writes and reads without
//! waiting for replies. Each session's replies must come back in its request order, each
//! read of the session's own znode must see the session's last write before it
//! (read-your-writes), and in the end every node must hold the same data.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::*;
use zookeeper::client::ZooKeeper;
use zookeeper::proto::{ids, CreateMode};

const SESSIONS: usize = 6;
const ROUNDS: usize = 120;
const WAIT: Duration = Duration::from_secs(30);

/// One session's view: the order its callbacks ran in, and what went wrong.
#[derive(Default)]
struct Replies {
    order: Mutex<Vec<usize>>,
    errors: Mutex<Vec<String>>,
    done: AtomicUsize,
}

impl Replies {
    /// Records the reply to request number `seq` (and a failure, if any).
    fn got(&self, seq: usize, problem: Option<String>) {
        if let Ok(mut o) = self.order.lock() {
            o.push(seq);
        }
        if let Some(p) = problem {
            if let Ok(mut e) = self.errors.lock() {
                e.push(format!("#{seq}: {p}"));
            }
        }
        self.done.fetch_add(1, Ordering::SeqCst);
    }
}

fn connect(connect: &str) -> ZooKeeper {
    let zk = ZooKeeper::connect(connect, 10_000, None).expect("connect");
    let deadline = Instant::now() + WAIT;
    while !zk.state().is_connected() {
        assert!(Instant::now() < deadline, "no session on {connect}");
        std::thread::sleep(Duration::from_millis(10));
    }
    zk
}

/// Pipelines one session's workload; returns how many requests it sent.
fn workload(zk: &ZooKeeper, me: usize, replies: &Arc<Replies>) -> usize {
    let mine = format!("/cp/s{me}");
    let other = format!("/cp/s{}", (me + 1) % SESSIONS);
    let mut seq = 0;
    for k in 0..ROUNDS {
        let data = format!("{me}:{k}");
        let r = replies.clone();
        let s = seq;
        zk.set_data_async(&mine, Some(data.as_bytes()), -1, move |res| r.got(s, res.err().map(|e| format!("setData: {e:?}"))));
        seq += 1;
        // Read-your-writes: the session's read after its write sees that write.
        let r = replies.clone();
        let s = seq;
        let want = data.clone();
        zk.get_data_async(&mine, move |res| {
            let problem = match res {
                Ok((d, _)) if d.as_deref() == Some(want.as_bytes()) => None,
                Ok((d, _)) => Some(format!("getData saw {:?}, wanted {want}", d.map(|b| String::from_utf8_lossy(&b).into_owned()))),
                Err(e) => Some(format!("getData: {e:?}")),
            };
            r.got(s, problem)
        });
        seq += 1;
        // Reads that other sessions' writes may race.
        let r = replies.clone();
        let s = seq;
        zk.get_data_async(&other, move |res| r.got(s, res.err().map(|e| format!("getData other: {e:?}"))));
        seq += 1;
        let r = replies.clone();
        let s = seq;
        zk.exists_async("/cp", None, move |res| {
            r.got(s, match res {
                Ok(Some(_)) => None,
                other => Some(format!("exists /cp: {other:?}")),
            })
        });
        seq += 1;
        if k % 10 == 0 {
            let child = format!("c{k:03}");
            let r = replies.clone();
            let s = seq;
            zk.create_async(&format!("{mine}/{child}"), None, &ids::open_acl_unsafe(), CreateMode::Persistent, move |res| {
                r.got(s, res.err().map(|e| format!("create: {e:?}")))
            });
            seq += 1;
            let r = replies.clone();
            let s = seq;
            zk.get_children_async(&mine, None, move |res| {
                r.got(s, match res {
                    Ok(c) if c.contains(&child) => None,
                    other => Some(format!("getChildren misses {child}: {other:?}")),
                })
            });
            seq += 1;
        }
    }
    seq
}

/// What a node holds under /cp, read after a sync through that node.
fn state_of(connect_str: &str) -> Vec<String> {
    let zk = connect(connect_str);
    zk.sync("/cp").expect("sync");
    let mut out = Vec::new();
    let mut sessions = zk.get_children("/cp", None).expect("children of /cp");
    sessions.sort();
    for s in sessions {
        let path = format!("/cp/{s}");
        let (data, stat) = zk.get_data(&path, None).expect("getData");
        let mut children = zk.get_children(&path, None).expect("children");
        children.sort();
        out.push(format!(
            "{path} data={} version={} mzxid=0x{:x} children={children:?}",
            String::from_utf8_lossy(&data.unwrap_or_default()),
            stat.version,
            stat.mzxid
        ));
    }
    zk.close();
    out
}

#[test]
fn sessions_stay_fifo_under_the_worker_pool() {
    let started = Instant::now();
    let mut spec = EnsembleSpec::of(&[Impl::Ours, Impl::Ours, Impl::Ours]);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if cores < 2 {
        spec = spec.ours_arg("-Dzookeeper.commitProcessor.numWorkerThreads=2");
    }
    let ens = Ensemble::start(spec);
    let modes = ens.wait_for_mode_all(WAIT);
    assert_eq!(modes.values().filter(|m| **m == Mode::Leader).count(), 1, "{modes:?}");
    for n in ens.nodes() {
        let log = n.log_contents();
        let workers = log
            .lines()
            .filter_map(|l| l.split("Configuring CommitProcessor with ").nth(1))
            .filter_map(|rest| rest.strip_suffix(" worker threads.").and_then(|v| v.trim().parse::<usize>().ok()))
            .last();
        assert!(workers.is_some_and(|w| w >= 2), "node {}: no pool of 2+ workers logged ({workers:?})\n{}", n.sid(), n.log_tail(40));
    }

    let setup = connect(&ens.connect_string());
    setup.create("/cp", None, &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create /cp");
    for i in 0..SESSIONS {
        setup.create(&format!("/cp/s{i}"), None, &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create");
    }
    setup.close();

    let sids: Vec<u64> = ens.nodes().iter().map(|n| n.sid()).collect();
    let clients: Vec<(ZooKeeper, Arc<Replies>)> =
        (0..SESSIONS).map(|i| (connect(&ens.node(sids[i % sids.len()]).connect_string()), Arc::new(Replies::default()))).collect();
    let load_start = Instant::now();
    let sent: Vec<usize> = std::thread::scope(|sc| {
        let hs: Vec<_> = clients.iter().enumerate().map(|(i, (zk, r))| sc.spawn(move || workload(zk, i, r))).collect();
        hs.into_iter().map(|h| h.join().expect("workload thread")).collect()
    });
    let deadline = Instant::now() + WAIT;
    for (i, (_, r)) in clients.iter().enumerate() {
        while r.done.load(Ordering::SeqCst) < sent[i] {
            assert!(Instant::now() < deadline, "session {i}: {} of {} replies", r.done.load(Ordering::SeqCst), sent[i]);
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let load_time = load_start.elapsed();
    for (i, (zk, r)) in clients.iter().enumerate() {
        let order = r.order.lock().map(|o| o.clone()).unwrap_or_default();
        let want: Vec<usize> = (0..sent[i]).collect();
        assert!(order == want, "session {i} (0x{:x}): replies out of request order", zk.session_id());
        let errors = r.errors.lock().map(|e| e.clone()).unwrap_or_default();
        assert!(errors.is_empty(), "session {i}: {} problems, first: {:?}", errors.len(), &errors[..errors.len().min(5)]);
    }
    for (zk, _) in &clients {
        zk.close();
    }

    let states: Vec<(u64, Vec<String>)> = ens.nodes().iter().map(|n| (n.sid(), state_of(&n.connect_string()))).collect();
    let (first_sid, first) = &states[0];
    assert_eq!(first.len(), SESSIONS);
    for (i, line) in first.iter().enumerate() {
        let want_children: Vec<String> = (0..ROUNDS).step_by(10).map(|k| format!("c{k:03}")).collect();
        assert!(line.contains(&format!("data={i}:{}", ROUNDS - 1)), "node {first_sid}: {line}");
        assert!(line.contains(&format!("version={ROUNDS} ")), "node {first_sid}: {line}");
        assert!(line.ends_with(&format!("children={want_children:?}")), "node {first_sid}: {line}");
    }
    for (sid, s) in &states[1..] {
        assert_eq!(s, first, "node {sid} differs from node {first_sid}");
    }
    let total: usize = sent.iter().sum();
    let mut facts = Vec::new();
    for n in ens.nodes() {
        let mntr = n.four_letter("mntr");
        let get = |k: &str| mntr.lines().find_map(|l| l.strip_prefix(&format!("{k}\t"))).unwrap_or("?").to_string();
        facts.push(format!(
            "node {}: reads issued {} (from session queues {}), writes issued {}, max in flight at a commit {}",
            n.sid(),
            get("zk_sum_read_commit_proc_issued"),
            get("zk_sum_reads_issued_from_session_queue"),
            get("zk_sum_write_commit_proc_issued"),
            get("zk_max_concurrent_request_processing_in_commit_processor"),
        ));
        let reads: i64 = get("zk_sum_read_commit_proc_issued").parse().unwrap_or(0);
        assert!(reads > 0, "node {}: mntr shows no reads issued by the CommitProcessor\n{mntr}", n.sid());
    }
    eprintln!(
        "[commit_processor_pool] {SESSIONS} sessions, {total} requests in {load_time:?} ({:.0}/s); whole test {:?}\n{}",
        total as f64 / load_time.as_secs_f64(),
        started.elapsed(),
        facts.join("\n")
    );
}
