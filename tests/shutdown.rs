//! Graceful shutdown on SIGTERM, side by side with Apache ZooKeeper 3.8 (whose JVM
//! exits with 143 and runs no hook of upstream's own):
//!
//! * under write load, round after round: the process exits with 143, within the
//!   harness's bound, and every create that was acknowledged is there after a restart;
//! * a session open at the signal is not closed by it: after the restart the client
//!   reconnects with its session id and its ephemeral node is still there;
//! * a replicated leader stopped the same way: the others elect, nothing acknowledged
//!   is lost, and the stopped node rejoins.
//!
//! Figures are printed as `[shutdown] ...` (run with `--nocapture`).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl};
use common::{ApacheServer, OurServer, TestServer};
use raw_client::{Handshake, RawClient};
use zookeeper::jute::Record;
use zookeeper::proto::consts::ids;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{CreateRequest, ExistsRequest};

const WRITERS: usize = 4;
/// The bound our server gives its own stop (zk-server's SHUTDOWN_LIMIT) plus slack.
const STOP_BOUND: Duration = Duration::from_secs(10);

fn create_body(path: &str, flags: i32) -> Vec<u8> {
    CreateRequest { path: path.into(), data: Some(b"v".to_vec()), acl: ids::open_acl_unsafe(), flags }.to_bytes()
}

/// Writers create znodes one after another until their connection fails; returns
/// every path whose create was acknowledged.
fn start_writers(addr: &str, prefix: &str, stop: &Arc<AtomicBool>) -> Vec<thread::JoinHandle<Vec<String>>> {
    (0..WRITERS)
        .map(|w| {
            let addr = addr.to_owned();
            let prefix = prefix.to_owned();
            let stop = stop.clone();
            thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut c) = RawClient::connect_with(&addr, 30_000, Duration::from_secs(5)) else { return acked };
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let path = format!("{prefix}-w{w}-{i}");
                    match c.call(op_code::CREATE, &create_body(&path, 0)) {
                        Ok((h, _)) if h.err == 0 => acked.push(path),
                        Ok((h, _)) => panic!("create {path}: error {}", h.err),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect()
}

fn exists(c: &mut RawClient, path: &str) -> bool {
    let (h, _) = c.call_rec(op_code::EXISTS, &ExistsRequest { path: path.into(), watch: false }).unwrap_or_else(|e| panic!("exists {path}: {e}"));
    h.err == 0
}

#[derive(Debug, Default)]
struct Rounds {
    acked: usize,
    stop_times: Vec<Duration>,
}

/// `rounds` times: writers run for a moment, SIGTERM, check the status, restart,
/// check every acknowledged create.
fn sigterm_rounds(srv: &mut TestServer, rounds: usize, expect_log: &[&str]) -> Rounds {
    let mut out = Rounds::default();
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let writers = start_writers(&srv.connect_string(), &format!("/r{round}"), &stop);
        thread::sleep(Duration::from_millis(400));
        let t = Instant::now();
        let st = srv.stop_term(STOP_BOUND);
        let took = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let st = st.unwrap_or_else(|| panic!("{:?} round {round}: still running {STOP_BOUND:?} after SIGTERM", srv.kind()));
        assert_eq!(st.code(), Some(143), "{:?} round {round}: exit status {st:?}", srv.kind());
        let log = srv.log_contents();
        for line in expect_log {
            assert!(log.contains(line), "{:?} round {round}: the log lacks {line:?}", srv.kind());
        }
        out.stop_times.push(took);
        let acked: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
        assert!(!acked.is_empty(), "{:?} round {round}: no write was acknowledged", srv.kind());
        srv.restart();
        let mut c = RawClient::connect(&srv.connect_string()).unwrap_or_else(|e| panic!("connect after restart: {e}"));
        let lost: Vec<&String> = acked.iter().filter(|p| !exists(&mut c, p)).collect();
        assert!(lost.is_empty(), "{:?} round {round}: {} of {} acknowledged creates lost: {:?}", srv.kind(), lost.len(), acked.len(), &lost[..lost.len().min(5)]);
        out.acked += acked.len();
    }
    out
}

#[test]
fn sigterm_under_write_load_exits_143_and_keeps_every_acknowledged_write() {
    let mut apache = ApacheServer::start_standalone("");
    let a = sigterm_rounds(&mut apache, 3, &[]);
    drop(apache);
    let mut ours = OurServer::start_standalone("", &[]);
    let o = sigterm_rounds(&mut ours, 10, &["Received signal SIGTERM, shutting down", "Shutdown complete", "Exiting with status 143"]);
    println!(
        "[shutdown] SIGTERM under {WRITERS} writers: apache 3 rounds, {} acknowledged creates kept, stop {:?} / ours 10 rounds, {} kept, stop {:?}",
        a.acked, a.stop_times, o.acked, o.stop_times
    );
}

/// A session open at the signal outlives the stop: shutdown closes connections, not
/// sessions, as Apache's JVM death does.
fn session_survives(srv: &mut TestServer) -> Duration {
    let mut c = RawClient::connect_with(&srv.connect_string(), 30_000, Duration::from_secs(5)).unwrap_or_else(|e| panic!("connect: {e}"));
    let (h, _) = c.call(op_code::CREATE, &create_body("/eph", 1)).unwrap_or_else(|e| panic!("create: {e}"));
    assert_eq!(h.err, 0, "ephemeral create");
    let (id, passwd) = (c.session_id, c.passwd.clone());
    let st = srv.stop_term(STOP_BOUND).unwrap_or_else(|| panic!("{:?}: still running after SIGTERM", srv.kind()));
    assert_eq!(st.code(), Some(143));
    srv.restart();
    let t = Instant::now();
    let (mut again, hs) = RawClient::reconnect(&srv.connect_string(), id, &passwd, 30_000).unwrap_or_else(|e| panic!("{:?}: reconnect: {e}", srv.kind()));
    let Handshake::Response(resp, _) = hs else { panic!("{:?}: no answer to the reconnect: {hs:?}", srv.kind()) };
    assert!(resp.time_out > 0, "{:?}: session 0x{id:x} expired by the stop: {resp:?}", srv.kind());
    assert_eq!(resp.session_id, id, "{:?}: same session", srv.kind());
    assert!(exists(&mut again, "/eph"), "{:?}: the ephemeral of a live session is gone", srv.kind());
    t.elapsed()
}

#[test]
fn sessions_outlive_a_sigterm_like_apache() {
    let mut apache = ApacheServer::start_standalone("");
    let a = session_survives(&mut apache);
    drop(apache);
    let mut ours = OurServer::start_standalone("", &[]);
    let o = session_survives(&mut ours);
    println!("[shutdown] session reconnected after SIGTERM + restart: apache {a:?} / ours {o:?}");
}

/// SIGTERM to the leader (ours) of a mixed 3-node ensemble while clients write through
/// every node: it exits 143, the others elect and keep every acknowledged
/// create, the stopped node rejoins and has them too.
#[test]
fn sigterm_to_a_replicated_leader() {
    // Ours on the higher sids: a fresh ensemble elects the highest.
    let mut ens = Ensemble::start(EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Ours]));
    let elected = ens.wait_for_leader(Duration::from_secs(60));
    // The node to stop: the leader if it is ours, else one of ours.
    let leader = if ens.node(elected).imp() == Impl::Ours { elected } else { 3 };
    ens.wait_for_mode_all(Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for sid in ens.sids() {
        writers.extend(start_writers(&ens.node(sid).connect_string(), &format!("/via{sid}"), &stop));
    }
    thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let st = ens.node_mut(leader).stop(STOP_BOUND).unwrap_or_else(|| panic!("leader {leader} still running after SIGTERM"));
    let took = t.elapsed();
    assert_eq!(st.code(), Some(143), "leader {leader} ({:?}): {st:?}", ens.node(leader).imp());
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        acked.lock().unwrap_or_else(|e| e.into_inner()).extend(w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
    }
    let acked = acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // The stopped node answers no `srvr`: the one leader now is among the others.
    let new_leader = ens.wait_for_leader(Duration::from_secs(60));
    assert_ne!(new_leader, leader);
    ens.node_mut(leader).start();
    ens.wait_for_mode_all(Duration::from_secs(60));
    for sid in ens.sids() {
        let mut c = RawClient::connect(&ens.node(sid).connect_string()).unwrap_or_else(|e| panic!("connect {sid}: {e}"));
        let _ = c.call(op_code::SYNC, &zookeeper::proto::proto::SyncRequest { path: "/".into() }.to_bytes());
        let lost = acked.iter().filter(|p| !exists(&mut c, p)).count();
        assert_eq!(lost, 0, "node {sid}: {lost} of {} acknowledged creates missing", acked.len());
    }
    println!(
        "[shutdown] node {leader} ({:?}, {}) stopped by SIGTERM in {took:?}; leader then {new_leader}; {} acknowledged creates on every node after it rejoined",
        ens.node(leader).imp(),
        if leader == elected { "the leader" } else { "a follower" },
        acked.len()
    );
}
