//! FastLeaderElection over real loopback sockets, several peers in one process: who is
//! elected (highest epoch, then zxid, then sid), late joiners learning the leader from
//! the FOLLOWING/LEADING replies, observers that never vote, and the connection manager's
//! threads going away when a peer shuts down.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zookeeper::server::persistence::epoch_file::{write_long_to_file, ACCEPTED_EPOCH_FILENAME, CURRENT_EPOCH_FILENAME};
use zookeeper::server::quorum::quorum_peer::run::{ElectionOnly, RunningPeer};
use zookeeper::server::quorum::quorum_peer::QuorumPeer;
use zookeeper::server::quorum::quorum_peer_config::QuorumPeerConfig;
use zookeeper::server::quorum::vote::ServerState;

fn init_logs() {
    let _ = std::env::var("RUST_LOG").map(|_| zookeeper::server::zookeeper_server_main::init_logging());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

struct Member {
    sid: i64,
    observer: bool,
    quorum: u16,
    election: u16,
}

struct Layout {
    members: Vec<Member>,
    extra: String,
}

impl Layout {
    fn new(sids: &[i64], observers: &[i64], extra: &str) -> Layout {
        let members = sids
            .iter()
            .map(|&sid| Member { sid, observer: observers.contains(&sid), quorum: free_port(), election: free_port() })
            .collect();
        Layout { members, extra: extra.to_owned() }
    }

    fn config(&self, sid: i64, dir: &Path) -> QuorumPeerConfig {
        let mut text = format!("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n{}\n", dir.display(), self.extra);
        for m in &self.members {
            text.push_str(&format!(
                "server.{}=127.0.0.1:{}:{}{}\n",
                m.sid,
                m.quorum,
                m.election,
                if m.observer { ":observer" } else { "" }
            ));
        }
        std::fs::create_dir_all(dir.join("version-2")).expect("mkdir");
        std::fs::write(dir.join("myid"), sid.to_string()).expect("myid");
        let f = dir.join("zoo.cfg");
        std::fs::write(&f, text).expect("cfg");
        QuorumPeerConfig::parse(&f).expect("config parses")
    }
}

struct Peer {
    sid: i64,
    running: Arc<RunningPeer>,
}

/// Starts a peer with the given last zxid and current epoch (the database is not
/// consulted: the election only needs these two facts).
fn start(layout: &Layout, sid: i64, dir: &Path, zxid: i64, epoch: i64) -> Peer {
    init_logs();
    let cfg = layout.config(sid, dir);
    let snap = dir.join("version-2");
    write_long_to_file(&snap, CURRENT_EPOCH_FILENAME, epoch).expect("epoch");
    write_long_to_file(&snap, ACCEPTED_EPOCH_FILENAME, epoch).expect("epoch");
    let peer = QuorumPeer::new(cfg, zxid, snap).expect("peer");
    let running = RunningPeer::start(peer, Arc::new(ElectionOnly)).expect("start");
    Peer { sid, running }
}

fn wait_settled(peers: &[&Peer], timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        if peers.iter().all(|p| p.running.peer.peer_state() != ServerState::Looking) {
            return;
        }
        assert!(Instant::now() < end, "election did not finish: {:?}", peers.iter().map(|p| (p.sid, p.running.peer.peer_state())).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn leaders(peers: &[&Peer]) -> Vec<i64> {
    peers.iter().map(|p| p.running.peer.current_vote().id).collect()
}

#[test]
fn three_empty_peers_elect_the_highest_sid() {
    let layout = Layout::new(&[1, 2, 3], &[], "");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let peers: Vec<Peer> = (1..=3).map(|sid| start(&layout, sid, dirs[sid as usize - 1].path(), 0, 0)).collect();
    let refs: Vec<&Peer> = peers.iter().collect();
    wait_settled(&refs, Duration::from_secs(20));
    assert_eq!(leaders(&refs), vec![3, 3, 3]);
    assert_eq!(peers[2].running.peer.peer_state(), ServerState::Leading);
    assert_eq!(peers[0].running.peer.peer_state(), ServerState::Following);
    for p in &peers {
        p.running.shutdown();
    }
}

#[test]
fn zxid_beats_sid_and_epoch_beats_zxid() {
    // sid 1 has the most data: it must lead although 3 has the larger id.
    let layout = Layout::new(&[1, 2, 3], &[], "");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let peers = vec![
        start(&layout, 1, dirs[0].path(), 0x1_0000_0009, 1),
        start(&layout, 2, dirs[1].path(), 0x1_0000_0005, 1),
        start(&layout, 3, dirs[2].path(), 0x1_0000_0001, 1),
    ];
    let refs: Vec<&Peer> = peers.iter().collect();
    wait_settled(&refs, Duration::from_secs(20));
    assert_eq!(leaders(&refs), vec![1, 1, 1]);
    for p in &peers {
        p.running.shutdown();
    }
    // A higher epoch wins over a higher zxid.
    let layout = Layout::new(&[1, 2, 3], &[], "");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let peers = vec![
        start(&layout, 1, dirs[0].path(), 0x1_0000_0009, 1),
        start(&layout, 2, dirs[1].path(), 0x2_0000_0001, 2),
        start(&layout, 3, dirs[2].path(), 0x1_0000_0005, 1),
    ];
    let refs: Vec<&Peer> = peers.iter().collect();
    wait_settled(&refs, Duration::from_secs(20));
    assert_eq!(leaders(&refs), vec![2, 2, 2]);
    for p in &peers {
        p.running.shutdown();
    }
}

#[test]
fn late_joiner_and_observer_learn_the_leader() {
    let layout = Layout::new(&[1, 2, 3, 4], &[4], "");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let p1 = start(&layout, 1, dirs[0].path(), 0, 0);
    let p2 = start(&layout, 2, dirs[1].path(), 0, 0);
    wait_settled(&[&p1, &p2], Duration::from_secs(20));
    assert_eq!(leaders(&[&p1, &p2]), vec![2, 2], "two of three voters elect 2");
    // 3 has the highest id but comes late: it must follow 2, not disturb it.
    let p3 = start(&layout, 3, dirs[2].path(), 0, 0);
    let p4 = start(&layout, 4, dirs[3].path(), 0, 0);
    wait_settled(&[&p3, &p4], Duration::from_secs(20));
    assert_eq!(leaders(&[&p1, &p2, &p3, &p4]), vec![2, 2, 2, 2]);
    assert_eq!(p3.running.peer.peer_state(), ServerState::Following);
    assert_eq!(p4.running.peer.peer_state(), ServerState::Observing);
    assert_eq!(p2.running.peer.peer_state(), ServerState::Leading);
    for p in [&p1, &p2, &p3, &p4] {
        p.running.shutdown();
    }
}

#[test]
fn shutdown_releases_every_connection_thread() {
    let layout = Layout::new(&[1, 2, 3], &[], "");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let peers: Vec<Peer> = (1..=3).map(|sid| start(&layout, sid, dirs[sid as usize - 1].path(), 0, 0)).collect();
    let refs: Vec<&Peer> = peers.iter().collect();
    wait_settled(&refs, Duration::from_secs(20));
    for p in &peers {
        assert!(p.running.qcm.thread_count() >= 2, "peer {} has workers", p.sid);
    }
    for p in &peers {
        p.running.shutdown();
    }
    let end = Instant::now() + Duration::from_secs(5);
    while peers.iter().any(|p| p.running.qcm.thread_count() != 0) {
        assert!(Instant::now() < end, "workers left: {:?}", peers.iter().map(|p| p.running.qcm.thread_count()).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(20));
    }
}
