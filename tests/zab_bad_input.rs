//! Bad input on a leader's quorum (Zab) port, side by side with an Apache 3.8 leader:
//! garbage, an unknown first packet type, an oversized packet, a learner claiming an
//! epoch from the future (and a sid outside the configuration), a learner that goes
//! silent after FOLLOWERINFO, and half a packet. Upstream's LearnerHandler drops each
//! connection and the ensemble keeps serving; ours must do the same, log upstream's
//! lines, and give back every thread and socket the bad learner cost.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::ensemble::*;
use common::zab_packets::{learner_info, packet};
use zookeeper::client::ZooKeeper;
use zookeeper::proto::consts::CreateMode;
use zookeeper::proto::ids;

const T: Duration = Duration::from_secs(30);

/// Writes `bytes` to the leader's quorum port and waits until the leader closes the
/// connection (EOF or reset), returning how long that took. Anything the leader sends
/// meanwhile is read and dropped.
fn send_and_wait_for_close(port: u16, bytes: &[u8], half_close: bool, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    s.write_all(bytes).map_err(|e| format!("write: {e}"))?;
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Ok(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Ok(start.elapsed()),
        }
    }
    Err(format!("the leader kept the connection open for {limit:?}"))
}

/// A client write through every node, read back everywhere after sync.
fn ensemble_serves(ens: &Ensemble, tag: &str) {
    let path = format!("/bad-input-{tag}");
    let zk = ZooKeeper::connect(&ens.node(ens.sids()[0]).connect_string(), 10_000, None).expect("connect");
    zk.create(&path, Some(tag.as_bytes()), &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create");
    for sid in ens.sids() {
        let c = ZooKeeper::connect(&ens.node(sid).connect_string(), 10_000, None).expect("connect");
        c.sync(&path).expect("sync");
        let (data, _) = c.get_data(&path, None).expect("read back");
        assert_eq!(data.as_deref(), Some(tag.as_bytes()), "node {sid}");
    }
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    half_close: bool,
    /// A line the leader logs for it (ours and Apache's, upstream's wording).
    log: &'static str,
}

fn cases() -> Vec<Case> {
    let mut oversized = packet(11, 0, None);
    // The data length field: 2^31-1 bytes announced.
    oversized[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
    let half = packet(11, 0, Some(learner_info(9)));
    vec![
        Case { name: "garbage", bytes: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), half_close: true, log: "GOODBYE" },
        Case { name: "unknown first packet", bytes: packet(99, 0, None), half_close: false, log: "is not FOLLOWERINFO or OBSERVERINFO!" },
        Case { name: "oversized packet", bytes: oversized, half_close: false, log: "GOODBYE" },
        Case { name: "half a packet then close", bytes: half[..half.len() / 2].to_vec(), half_close: true, log: "GOODBYE" },
        // A learner outside the configuration claiming epoch 1000: the established leader
        // keeps its epoch, sends LEADERINFO, and drops it when it never acks.
        Case {
            name: "epoch from the future, unknown sid",
            bytes: packet(11, 1000 << 32, Some(learner_info(99))),
            half_close: false,
            log: "Follower sid: 99 not in the current config",
        },
    ]
}

fn run_against(imp: Impl) {
    let spec = EnsembleSpec::new((1..=3).map(|s| MemberSpec::participant(s, imp)).collect()).tick_time(500).init_limit(4).sync_limit(2);
    let ens = Ensemble::start(spec);
    ens.wait_for_mode_all(T);
    let leader = ens.leader().expect("a leader");
    let l = ens.node(leader);
    let qport = l.quorum_port();
    ensemble_serves(&ens, &format!("{imp:?}-before").to_lowercase());
    let base_threads = l.thread_count();
    let base_sockets = l.socket_count();
    // initLimit ticks: the longest a learner may stay silent during discovery.
    let silent_limit = Duration::from_millis(4 * 500);
    for c in cases() {
        let from = l.log_offset();
        let took = send_and_wait_for_close(qport, &c.bytes, c.half_close, silent_limit * 4)
            .unwrap_or_else(|e| panic!("{imp:?} {}: {e}\n{}", c.name, l.log_tail(40)));
        l.wait_for_log(c.log, from, T);
        eprintln!("[{imp:?}] {}: closed after {took:?}", c.name);
    }
    // A learner that says FOLLOWERINFO and then nothing: dropped after initLimit ticks
    // (the read timeout), not before and not never.
    let from = l.log_offset();
    let took = send_and_wait_for_close(qport, &packet(11, 0, Some(learner_info(98))), false, silent_limit * 6)
        .unwrap_or_else(|e| panic!("{imp:?} silent learner: {e}\n{}", l.log_tail(40)));
    l.wait_for_log("GOODBYE", from, T);
    assert!(took >= silent_limit.mul_f32(0.8), "{imp:?}: a silent learner was dropped after {took:?}, before initLimit");
    eprintln!("[{imp:?}] silent learner: closed after {took:?}");
    assert_eq!(ens.leader(), Some(leader), "{imp:?}: the leader changed\n{}", ens.describe_all(30));
    ensemble_serves(&ens, &format!("{imp:?}-after").to_lowercase());
    if imp == Impl::Ours {
        // What the bad learners cost is given back.
        let end = Instant::now() + T;
        loop {
            let (t, s) = (l.thread_count(), l.socket_count());
            if t <= base_threads && s <= base_sockets {
                break;
            }
            assert!(Instant::now() < end, "leader threads {t} (was {base_threads}), sockets {s} (was {base_sockets})\n{}", l.log_tail(40));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn bad_learners_are_dropped_and_the_ensemble_keeps_serving_apache() {
    run_against(Impl::Apache);
}

#[test]
fn bad_learners_are_dropped_and_the_ensemble_keeps_serving_ours() {
    run_against(Impl::Ours);
}
