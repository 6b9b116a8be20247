//! Upstream's election tests, in spirit, on our code:
//! - FLELostMessageTest, FLEMalformedNotificationMessageTest,
//!   FLEBackwardElectionRoundTest and FLEOutOfElectionTest drive real
//!   `FastLeaderElection` + `QuorumPeer` instances over an in-memory network (no
//!   sockets): mock peers are sids without an election whose messages the test writes;
//! - two connections racing from the same sid (CnxManagerTest-style) use real loopback
//!   sockets against a real `QuorumCnxManager`.

#[path = "support/election.rs"]
mod election;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use election::{eventually, logs, notification, Ensemble, Fate, MemPeer, Net};
use zookeeper::server::quorum::fast_leader_election::notification::build_msg;
use zookeeper::server::quorum::fast_leader_election::predicates::{check_leader, vote_tracker};
use zookeeper::server::quorum::flexible::QuorumVerifier;
use zookeeper::server::quorum::quorum_cnx_manager::initial_message::{self, PROTOCOL_VERSION_V1};
use zookeeper::server::quorum::quorum_cnx_manager::QuorumCnxManager;
use zookeeper::server::quorum::vote::{ServerState, Vote};
use zookeeper::server::util::zxid_utils::make_zxid;

const DECIDE: Duration = Duration::from_secs(5);

/// Waits for the next message a peer sent to the mock `mock` (its receive queue on the
/// network).
fn mock_recv(net: &Net, mock: i64) -> Option<Vec<u8>> {
    net.queue(mock).poll(DECIDE).map(|m| m.buffer)
}

// ------------------------------------------------------- FLELostMessageTest --

/// Upstream's scenario: peer 1 of {0, 1, 2} runs the election; a mock peer 0 votes for
/// itself, waits until it hears from 1, then says it follows 1. Peer 1 must lead,
/// whichever of its own vote and the mock's FOLLOWING message it processes first.
#[test]
fn lost_message_mock_follower_makes_peer_lead() {
    let ens = Ensemble::in_memory(&[0, 1, 2], &[]);
    let net = Net::new();
    let p1 = MemPeer::new(&ens, &net, 1, 0, 0);
    p1.elect();
    net.deliver(0, 1, notification(ServerState::Looking, 0, 0, 1, 0));
    assert!(mock_recv(&net, 0).is_some(), "peer 1 never wrote to the mock");
    net.deliver(0, 1, notification(ServerState::Following, 1, 0, 1, 0));
    let v = p1.decided(DECIDE).expect("peer 1 decided");
    assert_eq!((v.id, p1.state()), (1, ServerState::Leading));
}

fn three_peers(net: &Arc<Net>, inits: &[(i64, i64)]) -> Vec<MemPeer> {
    let ens = Ensemble::in_memory(&[0, 1, 2], &[]);
    let peers: Vec<MemPeer> = (0..3).map(|i| MemPeer::new(&ens, net, i, inits[i as usize].0, inits[i as usize].1)).collect();
    for p in &peers {
        p.elect();
    }
    peers
}

/// Every peer decided: one leader, the others follow it. Returns the leader.
fn assert_one_leader(peers: &[MemPeer]) -> i64 {
    let votes: Vec<Vote> = peers.iter().map(|p| p.decided(Duration::from_secs(15)).unwrap_or_else(|| panic!("peer {} did not decide", p.sid))).collect();
    let leader = votes[0].id;
    for (p, v) in peers.iter().zip(&votes) {
        assert_eq!(v.id, leader, "peer {} chose {} but peer {} chose {leader}", p.sid, v.id, peers[0].sid);
        let want = if p.sid == leader { ServerState::Leading } else { ServerState::Following };
        assert_eq!(p.state(), want, "peer {}", p.sid);
    }
    leader
}

/// The leader's proposal (epoch, zxid, sid) is at least that of a quorum of the peers
/// (itself included): what FastLeaderElection guarantees when messages can be lost —
/// the very best proposal wins only if its votes arrive in time.
fn assert_leader_beats_a_quorum(leader: i64, inits: &[(i64, i64)]) {
    let key = |sid: i64| (inits[sid as usize].1, inits[sid as usize].0, sid);
    let covered = (0..inits.len() as i64).filter(|s| key(leader) >= key(*s)).count();
    assert!(covered * 2 > inits.len(), "leader {leader} is behind a majority: {inits:?}");
}

/// The first message on every link is lost: the peers time out, resend, and every one
/// of them still decides (the point of FLELostMessageTest), each for a leader whose
/// proposal is at least a quorum's.
///
/// They need not agree: peer 0 (the best) resends late, 1 and 2 settle on 2 while 1
/// then switches to 0 within its finalize wait; 0 sees 1's stale LOOKING vote for 2
/// match 2's LEADING one (Vote.equals compares every field when one side is LOOKING)
/// and follows 2, while 1 follows 0. Upstream's receivedFollowingNotification does
/// the same; Zab then sorts it out (1 cannot sync with 0, which does not lead, and
/// looks again). Without loss this cannot happen: see the other tests.
#[test]
fn lost_first_message_on_every_link() {
    let net = Net::new();
    let mut seen: HashMap<(i64, i64), usize> = HashMap::new();
    net.set_filter(move |from, to, _| {
        let n = seen.entry((from, to)).or_insert(0);
        *n += 1;
        if *n == 1 {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let mark = logs::mark();
    // Peer 0 has the most data.
    let inits = [(make_zxid(1, 9), 1), (make_zxid(1, 3), 1), (make_zxid(1, 3), 1)];
    let peers = three_peers(&net, &inits);
    let decided: Vec<i64> =
        peers.iter().map(|p| p.decided(Duration::from_secs(15)).unwrap_or_else(|| panic!("peer {} did not decide", p.sid)).id).collect();
    for (p, leader) in peers.iter().zip(&decided) {
        assert!(*leader == 0 || *leader == 2, "peer {}: 1 never beats 2 (same data, smaller sid): {decided:?}", p.sid);
        assert_leader_beats_a_quorum(*leader, &inits);
        let want = if p.sid == *leader { ServerState::Leading } else { ServerState::Following };
        assert_eq!(p.state(), want, "peer {}", p.sid);
    }
    assert!(!logs::find(mark, &["Notification time out"]).is_empty(), "the peers had to resend");
    assert_eq!(net.sent().iter().filter(|s| s.fate == Fate::Drop).count(), 6, "one per directed link");
}

/// Peer 0 never hears peer 2 directly (2 -> 0 is down for good): it learns 2's
/// proposal through 1's votes, and all three elect 2.
#[test]
fn one_way_link_down() {
    let net = Net::new();
    net.set_filter(|from, to, _| if (from, to) == (2, 0) { Fate::Drop } else { Fate::Deliver });
    let peers = three_peers(&net, &[(0, 0), (0, 0), (0, 0)]);
    assert_eq!(assert_one_leader(&peers), 2);
}

/// Peer 2 is cut off at first: 0 and 1 elect 1 between themselves; once 2's messages
/// flow it learns the leader from their FOLLOWING/LEADING answers and follows 1,
/// although it has the highest sid.
#[test]
fn late_peer_follows_the_elected_leader() {
    let net = Net::new();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let c = cut.clone();
    net.set_filter(move |from, to, _| {
        if c.load(std::sync::atomic::Ordering::Acquire) && (from == 2 || to == 2) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let peers = three_peers(&net, &[(0, 0), (0, 0), (0, 0)]);
    let v0 = peers[0].decided(DECIDE).expect("0 decided");
    let v1 = peers[1].decided(DECIDE).expect("1 decided");
    assert_eq!((v0.id, v1.id), (1, 1));
    assert_eq!(peers[2].state(), ServerState::Looking);
    cut.store(false, std::sync::atomic::Ordering::Release);
    let v2 = peers[2].decided(Duration::from_secs(10)).expect("2 decided");
    assert_eq!((v2.id, peers[2].state()), (1, ServerState::Following));
}

// ----------------------------------------- FLEMalformedNotificationMessageTest --

/// Peer 0 of {0, 1, 2} is LOOKING; mock peer 1 sends one malformed message after the
/// other. Each is dropped with upstream's log line (WorkerReceiver's run loop,
/// FastLeaderElection.java, `capacity < 28` / BufferUnderflowException /
/// "Invalid configLength" / the `default: continue` of the state switch), the
/// WorkerReceiver lives on, and a valid vote then completes the election. A vote whose
/// config text does not parse is still counted, as upstream counts it (the
/// ConfigException is only logged).
#[test]
fn malformed_notifications_are_dropped_and_the_election_completes() {
    let ens = Ensemble::in_memory(&[0, 1, 2], &[]);
    let net = Net::new();
    let p0 = MemPeer::new(&ens, &net, 0, 0, 0);
    let mark = logs::mark();
    p0.elect();
    assert!(mock_recv(&net, 1).is_some());
    let valid = notification(ServerState::Looking, 0, 0, 1, 0);
    let head = |n: usize| valid[..n].to_vec();
    let with_config_length = |len: i32, tail: &[u8]| {
        let mut m = valid[..40].to_vec();
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(tail);
        m
    };
    let mut thirty = head(28);
    thirty.extend_from_slice(&[0, 0]);
    let config = b"my very invalid config string";
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("12 bytes", head(12), vec!["Got a short response from server 1: 12"]),
        ("27 bytes", head(27), vec!["Got a short response from server 1: 27"]),
        ("30 bytes: half a peer epoch", thirty, vec!["partial / malformed response message sent by sid=1 (message length: 30)"]),
        ("36 bytes: no version", head(36), vec!["partial / malformed response message sent by sid=1 (message length: 36)"]),
        ("42 bytes: half a config length", head(42), vec!["(message length: 42)"]),
        ("negative configLength", with_config_length(-123, b"abcd"), vec!["(message length: 48)", "configLength=-123"]),
        ("configLength > capacity", with_config_length(10_000, config), vec!["configLength=10000"]),
        ("configLength past the end", with_config_length(40, config), vec!["(message length: 73)", "BufferUnderflowException"]),
    ];
    for (what, bytes, expect) in cases {
        let m = logs::mark();
        net.deliver(1, 0, bytes);
        logs::expect(m, &expect, DECIDE);
        assert_eq!(p0.state(), ServerState::Looking, "{what}: no decision on a dropped message");
    }
    // States 7 and -1: decoded but dropped silently (the sender is a voter).
    let m = logs::mark();
    net.deliver(1, 0, build_msg(7, 77, 0, 1, 0, b""));
    net.deliver(1, 0, build_msg(-1, 78, 0, 1, 0, b""));
    // A valid message behind them proves they were processed (one receiver thread, in order).
    net.deliver(1, 0, notification(ServerState::Looking, 1, -1, 1, 0));
    logs::expect(m, &["n.sid:1", "n.leader:1", "n.zxid:0xffffffffffffffff"], DECIDE);
    assert!(logs::find(m, &["n.leader:77"]).is_empty() && logs::find(m, &["n.leader:78"]).is_empty(), "unknown states reached the election");
    assert_eq!(p0.state(), ServerState::Looking);
    // Unparsable config text: logged, and the vote (for 0, in round 1) still counts.
    let m = logs::mark();
    net.deliver(1, 0, build_msg(0, 0, 0, 1, 0, config));
    logs::expect(m, &["Something went wrong while processing config received from 1"], DECIDE);
    let v = p0.decided(DECIDE).expect("peer 0 decided");
    assert_eq!((v.id, p0.state()), (0, ServerState::Leading));
    assert!(!logs::find(mark, &["Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:0,"]).is_empty());
}

// ------------------------------------------------ FLEBackwardElectionRoundTest --

/// ZOOKEEPER-1514: peer 0 is LOOKING and mocks 1 and 2 say they follow 0 in round 1:
/// in round 1 that elects 0. In the next election (round 2) the very same messages must
/// not: a quorum that follows us in an older round is not a reason to lead now
/// (`checkLeader` wants the round to be ours when the leader is us).
#[test]
fn old_round_notifications_do_not_make_a_leader() {
    let ens = Ensemble::in_memory(&[0, 1, 2], &[]);
    let net = Net::new();
    let p0 = MemPeer::new(&ens, &net, 0, 0, 0);
    let msg = notification(ServerState::Following, 0, 0, 1, 1);
    p0.elect();
    net.deliver(1, 0, msg.clone());
    net.deliver(2, 0, msg.clone());
    let v = p0.decided(DECIDE).expect("round 1 elects 0");
    assert_eq!((v.id, p0.state(), p0.fle.logical_clock()), (0, ServerState::Leading, 1));

    let mark = logs::mark();
    p0.elect();
    assert!(eventually(DECIDE, || p0.fle.logical_clock() == 2), "a second election is round 2");
    net.deliver(1, 0, msg.clone());
    net.deliver(2, 0, msg);
    logs::expect(mark, &["n.sid:2", "n.state:FOLLOWING", "n.round:0x1"], DECIDE);
    assert!(p0.decided(Duration::from_secs(2)).is_none(), "old-round votes made 0 lead");
    assert_eq!(p0.state(), ServerState::Looking);
}

// --------------------------------------------------------- FLEOutOfElectionTest --

fn five() -> Arc<QuorumVerifier> {
    let text: String = (0..5).map(|i| format!("server.{i}=127.0.0.1:{}:{}\n", 41_000 + 2 * i, 41_001 + 2 * i)).collect();
    Arc::new(QuorumVerifier::from_config_string(&text, false).expect("config"))
}

fn v(version: i32, id: i64, zxid: i64, election_epoch: i64, peer_epoch: i64, state: ServerState) -> Vote {
    Vote { version, id, zxid, election_epoch, peer_epoch, state }
}

/// The vote-set cases of FLEOutOfElectionTest, on the pure predicates.
#[test]
fn out_of_election_vote_sets() {
    use ServerState::*;
    let qv = five();
    let quorum = |votes: &[(i64, Vote)], vote: Vote| {
        let m: HashMap<i64, Vote> = votes.iter().copied().collect();
        vote_tracker(&qv, None, &m, &vote).has_all_quorums()
    };
    // Settled voters agree on leader 4 although their zxids and rounds differ.
    let z11 = make_zxid(1, 1);
    let z21 = make_zxid(2, 1);
    assert!(quorum(
        &[(0, v(1, 4, z11, 1, 2, Following)), (1, v(1, 4, make_zxid(1, 2), 1, 2, Following)), (3, v(1, 4, z21, 2, 2, Following)), (4, v(1, 4, z21, 2, 2, Leading))],
        v(0, 4, z21, 2, 2, Following)
    ));
    // Mixed versions: a legacy vote compares the leader only.
    assert!(quorum(
        &[(0, v(1, 4, z11, 1, 1, Following)), (1, v(1, 4, z11, 1, 1, Following)), (3, v(0, 4, z21, 2, 2, Following)), (4, v(0, 4, z21, 2, 2, Leading))],
        v(0, 4, z21, 2, 2, Following)
    ));
    // While looking, every field counts.
    assert!(quorum(
        &[(0, v(0, 4, z21, 1, 1, Looking)), (1, v(0, 4, z21, 1, 1, Looking)), (3, v(0, 4, z21, 1, 1, Looking)), (4, v(0, 4, z21, 1, 1, Leading))],
        v(0, 4, z21, 1, 1, Looking)
    ));
    assert!(!quorum(
        &[(0, v(0, 4, make_zxid(1, 1), 1, 1, Looking)), (1, v(0, 4, z21, 2, 2, Looking)), (3, v(0, 4, z21, 3, 2, Looking)), (4, v(0, 4, z21, 3, 2, Leading))],
        v(0, 4, z21, 2, 2, Looking)
    ));
    // The out-of-election set: 1, 2 (legacy, epoch 0x17), 4 and the leader 5 (epoch 0x18).
    let qv6 = {
        let text: String = (0..6).map(|i| format!("server.{i}=127.0.0.1:{}:{}\n", 41_000 + 2 * i, 41_001 + 2 * i)).collect();
        Arc::new(QuorumVerifier::from_config_string(&text, false).expect("config"))
    };
    let z = make_zxid(15, 0);
    let leader = v(1, 5, z, 0xa, 0x18, Leading);
    let ooe: HashMap<i64, Vote> =
        [(1, v(0, 5, z, 0xa, 0x17, Following)), (2, v(0, 5, z, 0xa, 0x17, Following)), (4, v(1, 5, z, 0xa, 0x18, Following)), (5, leader)].into_iter().collect();
    assert!(vote_tracker(&qv6, None, &ooe, &leader).has_all_quorums(), "quorum check");
    assert!(check_leader(&ooe, 5, 0xa, 3, 0x1), "leader check");
    let mut no_leader = ooe.clone();
    no_leader.insert(5, v(1, 5, z, 0xa, 0x18, Following));
    assert!(!check_leader(&no_leader, 5, 0xa, 3, 0x1), "the leader must say LEADING");
}

/// The same in motion: LOOKING peer 3 of {0..4}, in round 1, hears that 0, 1 and 2
/// follow 4 in round 5: a quorum, but 4 itself has not said it leads, so 3 waits. Once
/// 4 says LEADING, 3 follows it and adopts round 5.
#[test]
fn looking_peer_joins_an_established_leader() {
    let ens = Ensemble::in_memory(&[0, 1, 2, 3, 4], &[]);
    let net = Net::new();
    let p3 = MemPeer::new(&ens, &net, 3, 0, 0);
    p3.elect();
    let z = make_zxid(2, 1);
    for sid in [0, 1, 2] {
        net.deliver(sid, 3, notification(ServerState::Following, 4, z, 5, 2));
    }
    assert!(p3.decided(Duration::from_millis(1500)).is_none(), "followed 4 without 4's own word");
    net.deliver(4, 3, notification(ServerState::Leading, 4, z, 5, 2));
    let v = p3.decided(DECIDE).expect("3 decided");
    assert_eq!((v.id, v.zxid, v.peer_epoch, p3.state(), p3.fle.logical_clock()), (4, z, 2, ServerState::Following, 5));
}

// ------------------------------------------- two connections from the same sid --

fn initial(sid: i64, port: u16) -> Vec<u8> {
    initial_message::encode(PROTOCOL_VERSION_V1, sid, &[format!("127.0.0.1:{port}")])
}

/// Reads until EOF or the timeout: true when the peer closed the socket.
fn closed_by_peer(s: &mut TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// Sid 2 (larger than the peer's 1, so its connections are kept) opens two election
/// connections at once and handshakes on both concurrently, ten times over. Each time
/// exactly one pair of workers survives (the newer replaces the older, which is closed),
/// messages flow on the survivor, and closing it leaves no worker behind.
#[test]
fn two_connections_from_the_same_sid_race() {
    logs::install();
    let ens = Ensemble::loopback(&[1, 2], &[], "");
    let dir = tempfile::tempdir().expect("tmp");
    let peer = ens.peer(1, dir.path(), 0, 0);
    let qcm = QuorumCnxManager::new(peer);
    qcm.start_listener().expect("listen");
    let addr = format!("127.0.0.1:{}", ens.election_port(1));
    assert!(eventually(DECIDE, || TcpStream::connect(&addr).is_ok()), "listener up");
    assert!(eventually(DECIDE, || qcm.pool_thread_count() <= 1 && qcm.thread_count() == 0));
    let hello = initial(2, ens.election_port(2));
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (b, a, h) = (barrier.clone(), addr.clone(), hello.clone());
                thread::spawn(move || {
                    let mut s = TcpStream::connect(a).expect("connect");
                    b.wait();
                    s.write_all(&h).expect("handshake");
                    s
                })
            })
            .collect();
        let mut socks: Vec<TcpStream> = handles.into_iter().map(|h| h.join().expect("client")).collect();
        assert!(eventually(DECIDE, || qcm.connected_to_peer(2)), "round {round}: connected");
        // Give the second handshake time to land too, then exactly one pair remains.
        let mut closed: Vec<bool> = socks.iter_mut().map(|s| closed_by_peer(s, Duration::from_millis(700))).collect();
        assert_eq!(closed.iter().filter(|c| **c).count(), 1, "round {round}: exactly one connection closed: {closed:?}");
        assert_eq!(qcm.thread_count(), 2, "round {round}: one SendWorker + one RecvWorker");
        let live = closed.iter().position(|c| !*c).expect("a survivor");
        // The survivor carries messages.
        let payload = notification(ServerState::Looking, 2, 0, 1, 0);
        let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&payload);
        socks[live].write_all(&frame).expect("frame");
        let m = qcm.poll_recv_queue(DECIDE).expect("message on the survivor");
        assert_eq!((m.sid, m.buffer), (2, payload));
        socks[live].shutdown(Shutdown::Both).expect("close");
        closed[live] = true;
        assert!(eventually(DECIDE, || qcm.thread_count() == 0 && !qcm.connected_to_peer(2)), "round {round}: workers left: {}", qcm.thread_count());
    }
    // The pool reused its threads: no more than the two concurrent handshakes needed.
    assert!(qcm.pool_thread_count() <= 3, "pool threads: {}", qcm.pool_thread_count());
    qcm.halt();
    assert!(eventually(DECIDE, || qcm.pool_thread_count() == 0));
}

/// Two real managers dial each other at the same moment, ten times: both handshakes
/// race, the one from the smaller sid is dropped and dialled back, and each side ends
/// with exactly one pair of workers and the other's message.
#[test]
fn two_managers_dial_each_other_at_once() {
    logs::install();
    let mut resends = 0;
    for round in 0..10 {
        let ens = Ensemble::loopback(&[1, 2], &[], "");
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().expect("tmp")).collect();
        let qcms: Vec<Arc<QuorumCnxManager>> = [1i64, 2]
            .iter()
            .zip(&dirs)
            .map(|(sid, d)| {
                let q = QuorumCnxManager::new(ens.peer(*sid, d.path(), 0, 0));
                q.start_listener().expect("listen");
                q
            })
            .collect();
        for sid in [1, 2] {
            let a = format!("127.0.0.1:{}", ens.election_port(sid));
            assert!(eventually(DECIDE, || TcpStream::connect(&a).is_ok()), "listener {sid} up");
        }
        let barrier = Arc::new(Barrier::new(2));
        let send = |q: &Arc<QuorumCnxManager>| q.to_send(3 - q.my_sid, Arc::from(notification(ServerState::Looking, q.my_sid, 0, 1, 0)));
        let senders: Vec<_> = qcms
            .iter()
            .map(|q| {
                let (q, b) = (q.clone(), barrier.clone());
                thread::spawn(move || {
                    b.wait();
                    q.to_send(3 - q.my_sid, Arc::from(notification(ServerState::Looking, q.my_sid, 0, 1, 0)));
                })
            })
            .collect();
        for s in senders {
            s.join().expect("sender");
        }
        // A dial-back asked for while our own dial to that peer is still in flight is
        // skipped ("already in progress") although the connection it was meant to
        // replace is gone; the pair is then unconnected until the next send, as in
        // upstream (handleConnection -> connectOne -> initiateConnectionAsync). The
        // election resends on its notification timeout; so do we, and count it.
        let mut heard = [false, false];
        for attempt in 0.. {
            thread::sleep(Duration::from_millis(300));
            for (i, q) in qcms.iter().enumerate() {
                while let Some(m) = q.poll_recv_queue(Duration::ZERO) {
                    assert_eq!(m.sid, 3 - q.my_sid);
                    heard[i] = true;
                }
            }
            if heard == [true, true] && qcms.iter().all(|q| q.thread_count() == 2 && q.connected_to_peer(3 - q.my_sid)) {
                break;
            }
            assert!(attempt < 10, "round {round}: no steady connection: heard {heard:?}, workers {:?}", qcms.iter().map(|q| q.thread_count()).collect::<Vec<_>>());
            resends += 1;
            for q in &qcms {
                send(q);
            }
        }
        // Settled: still one pair each a moment later (no late handshake replaced it,
        // no worker leaked).
        thread::sleep(Duration::from_millis(300));
        for q in &qcms {
            assert_eq!(q.thread_count(), 2, "round {round}: sid {}", q.my_sid);
        }
        for q in &qcms {
            q.halt();
        }
        for q in &qcms {
            assert!(eventually(DECIDE, || q.thread_count() == 0), "round {round}: sid {} kept workers", q.my_sid);
        }
    }
    eprintln!("two_managers_dial_each_other_at_once: {resends} resend(s) needed in 10 rounds");
}
