//! Checks of the ensemble harness (tests/common/ensemble.rs) against Apache ZooKeeper
//! 3.8 peers only, so that a failure here means "the harness or the machine is broken",
//! not "our quorum peer is broken". They also pin down the Apache behaviour our peer
//! must match (who wins an election, what a non-serving peer answers).
//!
//! `cargo test --test ensemble_selftest -- --ignored --nocapture record_apache_quorum_facts`
//! prints the raw facts (4lw answers, zkServer.sh status, timings, footprint).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::ensemble::*;

const T: Duration = Duration::from_secs(30);
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

// ---------------------------------------------------------------- parsers --

/// Lines copied from a real Apache 3.8.0 log (slf4j-simple) and the same messages in our
/// server's layout.
#[test]
fn parsers_accept_the_apache_lines_and_ours() {
    let apache = "16:46:38.906 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:1, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0";
    let n = parse_notification(apache).expect("Apache notification line");
    assert_eq!(
        n,
        Notification {
            my_state: "LOOKING".into(),
            sid: 1,
            state: "LOOKING".into(),
            leader: 1,
            round: 1,
            peer_epoch: 0,
            zxid: 0,
            version: 2,
            config_version: 0
        }
    );
    let ours = "2025-01-01 00:00:00,000 [myid:] - INFO  [WorkerReceiver[myid=2]:fast_leader_election] - Notification: my state:FOLLOWING; n.sid:3, n.state:LEADING, n.leader:3, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x100000003, message format version:0x2, n.config version:0x0";
    let n = parse_notification(ours).expect("our notification line");
    assert_eq!((n.my_state.as_str(), n.sid, n.state.as_str(), n.leader, n.round, n.peer_epoch, n.zxid), ("FOLLOWING", 3, "LEADING", 3, 2, 1, 0x1_0000_0003));

    assert_eq!(parse_mode("Zookeeper version: 3.8.0\nZxid: 0x0\nMode: follower\nNode count: 5\n"), Some(Mode::Follower));
    assert_eq!(parse_mode(NOT_SERVING), None);

    let qp: HashMap<u16, u64> = [(31101, 1), (31102, 2), (31103, 3)].into_iter().collect();
    // A follower at info level only: the leader comes from "Successfully connected".
    let log = "\
16:47:00.450 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:3, n.state:LOOKING, n.leader:3, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
16:47:00.453 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:3, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
16:47:00.753 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - Peer state changed: following
16:47:00.753 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - FOLLOWING
16:47:00.778 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO Learner - FOLLOWING - LEADER ELECTION TOOK - 21875 MS
16:47:00.896 [LeaderConnector-/127.0.0.1:31103] INFO Learner - Successfully connected to leader, using address: /127.0.0.1:31103
";
    let o = parse_election_outcome(log.as_bytes(), 1000, 1, &qp).expect("outcome");
    assert_eq!((o.role, o.leader, o.leader_source, o.election_took_ms), (Role::Following, 3, LeaderSource::ConnectedToLeader, Some(21875)));
    assert_eq!(o.next_offset, 1000 + log.find("16:47:00.753 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - FOLLOWING").unwrap() as u64);
    assert_eq!(o.notifications.len(), 2);
    // Cut before "Successfully connected": the own vote (n.sid:1 -> leader 3) decides.
    let cut = &log[..log.find("16:47:00.896").unwrap()];
    let o = parse_election_outcome(cut.as_bytes(), 0, 1, &qp).expect("outcome");
    assert_eq!((o.leader, o.leader_source), (3, LeaderSource::Notifications));
    // A partial last line is not read yet.
    let partial = &log[..log.find("Peer state changed: following").unwrap() + 20];
    assert!(parse_election_outcome(partial.as_bytes(), 0, 1, &qp).is_none());

    // A restarted old leader that joins an established ensemble (ours layout): it
    // follows the peer that says LEADING although its own vote is for itself.
    let log = "\
2025-01-01 00:00:00,001 [myid:] - INFO  [quorum_peer:quorum_peer] - LOOKING
2025-01-01 00:00:00,002 [myid:] - INFO  [WorkerReceiver[myid=3]:fast_leader_election] - Notification: my state:LOOKING; n.sid:3, n.state:LOOKING, n.leader:3, n.round:0x1, n.peerEpoch:0x1, n.zxid:0x100000000, message format version:0x2, n.config version:0x0
2025-01-01 00:00:00,003 [myid:] - INFO  [WorkerReceiver[myid=3]:fast_leader_election] - Notification: my state:LOOKING; n.sid:1, n.state:FOLLOWING, n.leader:2, n.round:0x2, n.peerEpoch:0x2, n.zxid:0x100000000, message format version:0x2, n.config version:0x0
2025-01-01 00:00:00,004 [myid:] - INFO  [WorkerReceiver[myid=3]:fast_leader_election] - Notification: my state:LOOKING; n.sid:2, n.state:LEADING, n.leader:2, n.round:0x2, n.peerEpoch:0x2, n.zxid:0x100000000, message format version:0x2, n.config version:0x0
2025-01-01 00:00:00,005 [myid:] - INFO  [quorum_peer:quorum_peer] - Peer state changed: following
";
    let o = parse_election_outcome(log.as_bytes(), 0, 3, &qp).expect("outcome");
    assert_eq!((o.role, o.leader, o.leader_source), (Role::Following, 2, LeaderSource::Notifications));
    // The DEBUG decision line wins over inference; a leader needs no other evidence.
    let with_debug = format!("{log}16:47:00.753 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] DEBUG FastLeaderElection - About to leave FLE instance: leader=2, zxid=0x100000000, my id=3, my state=FOLLOWING\n");
    let o = parse_election_outcome(with_debug.as_bytes(), 0, 3, &qp).expect("outcome");
    assert_eq!((o.leader, o.leader_source), (2, LeaderSource::LeaveInstance));
    let leading = "x INFO QuorumPeer - Peer state changed: leading\n";
    let o = parse_election_outcome(leading.as_bytes(), 0, 7, &qp).expect("outcome");
    assert_eq!((o.role, o.leader, o.leader_source), (Role::Leading, 7, LeaderSource::SelfLeading));
    // "LOOKING" and later states are not decisions.
    let looking = "x INFO QuorumPeer - LOOKING\nx INFO QuorumPeer - Peer state changed: looking\n";
    assert!(parse_election_outcome(looking.as_bytes(), 0, 1, &qp).is_none());
}

// -------------------------------------------------------------- ensembles --

fn expect_modes(ens: &Ensemble, want: &[(u64, Mode)]) -> BTreeMap<u64, Mode> {
    let got = ens.wait_for_mode_all(T);
    let want: BTreeMap<u64, Mode> = want.iter().copied().collect();
    assert_eq!(got, want, "srvr modes\n{}", ens.describe_all(20));
    got
}

/// 3 Apache peers on empty data elect sid 3; kill -9 of the leader makes 2 the leader;
/// the old leader restarts on its dataDir and follows 2. Both srvr and the logs agree.
#[test]
fn three_apache_peers_elect_fail_over_and_rejoin() {
    let t0 = Instant::now();
    let mut ens = Ensemble::start(EnsembleSpec::apache(3));
    expect_modes(&ens, &[(1, Mode::Follower), (2, Mode::Follower), (3, Mode::Leader)]);
    eprintln!("[selftest] 3 Apache peers: start to every node serving in {:?}", t0.elapsed());
    for sid in 1..=3 {
        let o = ens.wait_for_election_outcome(sid, T);
        let role = if sid == 3 { Role::Leading } else { Role::Following };
        assert_eq!((o.role, o.leader), (role, 3), "node {sid}: {o:?}");
        // FLE DEBUG is on: the leader is read, not inferred.
        assert!(o.leader_source.is_exact(), "node {sid}: {o:?}");
        assert!(o.election_took_ms.is_some(), "node {sid}: no LEADER ELECTION TOOK line: {o:?}");
        assert!(o.notifications.iter().any(|n| n.sid == sid && n.leader == 3), "node {sid} never voted for 3: {o:?}");
    }
    assert_eq!(ens.leader(), Some(3));

    // Quorum-mode answers of a follower and a leader.
    let conf = ens.node(1).four_letter("conf");
    for key in ["serverId=1", "initLimit=10", "syncLimit=5", "electionAlg=3", "peerType=0", "membership: ", "version=0"] {
        assert!(conf.contains(&format!("{key}\n")) || conf.ends_with(key), "conf of a follower lacks {key:?}:\n{conf}");
    }
    assert!(conf.contains(&format!("electionPort={}\nquorumPort={}\n", ens.node(1).election_port(), ens.node(1).quorum_port())), "{conf}");
    for n in ens.nodes() {
        let line = format!("server.{}=127.0.0.1:{}:{}:participant;127.0.0.1:{}\n", n.sid(), n.quorum_port(), n.election_port(), n.client_port());
        assert!(conf.contains(&line), "conf lacks {line:?}:\n{conf}");
    }
    let mntr_f = ens.node(1).four_letter("mntr");
    assert!(mntr_f.contains("zk_server_state\tfollower\n") && mntr_f.contains("zk_peer_state\tfollowing - broadcast\n"), "{mntr_f}");
    assert!(mntr_f.contains("zk_quorum_size\t3\n"), "{mntr_f}");
    let mntr_l = ens.node(3).four_letter("mntr");
    for line in ["zk_server_state\tleader\n", "zk_peer_state\tleading - broadcast\n", "zk_learners\t2\n", "zk_synced_followers\t2\n", "zk_synced_observers\t0\n", "zk_pending_syncs\t0\n"] {
        assert!(mntr_l.contains(line), "leader mntr lacks {line:?}:\n{mntr_l}");
    }
    assert_eq!(ens.node(1).four_letter("isro"), "rw");
    assert!(ens.node(3).four_letter("srvr").ends_with("Mode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n"));

    // Process accounting works on a JVM.
    let f = ens.node(1);
    let (threads, fds, socks, rss) = (f.thread_count(), f.fd_count(), f.socket_count(), f.rss_kb());
    eprintln!("[selftest] idle Apache follower: {threads} threads, {fds} fds, {socks} sockets, RSS {} MiB", rss / 1024);
    assert!(threads > 10 && fds > socks && socks >= 3 && rss > 10_000, "{threads} {fds} {socks} {rss}");
    let listening = f.listening_ports();
    assert!(listening.contains(&f.client_port()) && listening.contains(&f.election_port()), "{listening:?}");
    assert!(!listening.contains(&f.quorum_port()), "only the leader listens on its quorum port: {listening:?}");
    assert!(ens.node(3).listening_ports().contains(&ens.node(3).quorum_port()));

    // kill -9 the leader: 1 and 2 elect the better of their own votes by FLE's order
    // (epoch, zxid, sid). Usually both logged the same zxid and 2 wins on sid, but an
    // Apache follower that was synced by SNAP holds the epoch's zxid (0x100000000) while one
    // synced by an empty DIFF still holds 0, and then 1 wins: seen in CI.
    let from: Vec<u64> = (1..=2).map(|s| ens.node(s).log_offset()).collect();
    let t_kill = Instant::now();
    ens.kill(3);
    assert!(!ens.node_mut(3).is_running());
    let o1 = ens.wait_for_election_outcome_from(1, from[0], T);
    let o2 = ens.wait_for_election_outcome_from(2, from[1], T);
    let own_votes: Vec<&Notification> = o1.notifications.iter().chain(&o2.notifications).filter(|n| n.sid == n.leader && n.state == "LOOKING").collect();
    let best = own_votes.iter().max_by_key(|n| (n.peer_epoch, n.zxid, n.sid)).map(|n| n.sid).expect("the survivors logged their own votes");
    assert!(own_votes.iter().any(|n| n.sid == 1) && own_votes.iter().any(|n| n.sid == 2), "{o1:?} {o2:?}");
    let (new_leader, other) = if best == 2 { (2, 1) } else { (1, 2) };
    let (ol, oo) = if best == 2 { (&o2, &o1) } else { (&o1, &o2) };
    assert_eq!((ol.role, ol.leader), (Role::Leading, new_leader), "{ol:?}");
    assert_eq!((oo.role, oo.leader), (Role::Following, new_leader), "{oo:?}");
    expect_modes(&ens, &[(other, Mode::Follower), (new_leader, Mode::Leader)]);
    eprintln!("[selftest] leader killed: new leader serving after {:?}", t_kill.elapsed());

    // The old leader comes back on its dataDir and follows.
    let old_pid = ens.node(3).pid();
    ens.node_mut(3).start();
    assert_ne!(ens.node(3).pid(), old_pid);
    assert_eq!(ens.node(3).spawns(), 2);
    let o3 = ens.wait_for_election_outcome(3, T);
    assert_eq!((o3.role, o3.leader, o3.leader_source), (Role::Following, new_leader, LeaderSource::LeaveInstance), "{o3:?}");
    assert_eq!(ens.node(3).wait_for_mode(T), Mode::Follower);
    assert_eq!(ens.leader(), Some(new_leader));
    // The log holds both runs, with the harness's markers; the first run's decision is
    // before the current start offset.
    let log = ens.node(3).log_contents();
    assert!(log.contains("[harness] start #2 of node 3") && log.contains("with SIGKILL"), "{}", ens.node(3).log_tail(20));
    assert!(ens.node(3).find_log("Peer state changed: leading", 0).expect("first run led").next_offset < ens.node(3).start_offset());

    // SIGTERM: the JVM exits at once with 143.
    let st = ens.node_mut(other).stop(Duration::from_secs(10)).expect("exited on SIGTERM");
    assert_eq!(st.code(), Some(143), "{st:?}");
}

/// 3 participants + 1 observer: the observer shows `Mode: observer`, and its log names
/// the leader.
#[test]
fn apache_observer_layout() {
    let ens = Ensemble::start(EnsembleSpec::apache(3).with_observer(Impl::Apache));
    assert_eq!(ens.wait_for_agreed_leader(&ens.sids(), T), 3);
    expect_modes(&ens, &[(1, Mode::Follower), (2, Mode::Follower), (3, Mode::Leader), (4, Mode::Observer)]);
    let o = ens.wait_for_election_outcome(4, T);
    assert_eq!((o.role, o.leader), (Role::Observing, 3), "{o:?}");
    assert!(o.leader_source.is_exact(), "{o:?}");
    // Observers vote for no one: no Notification of the observer's own vote.
    assert!(o.notifications.iter().all(|n| n.sid != 4), "{o:?}");
    let obs = ens.node(4);
    ens.node(4).wait_for_log("Observing new leader sid=3", obs.start_offset(), T);
    let conf = obs.four_letter("conf");
    assert!(conf.contains("peerType=1\n"), "{conf}");
    let line = format!("server.4=127.0.0.1:{}:{}:observer;127.0.0.1:{}\n", obs.quorum_port(), obs.election_port(), obs.client_port());
    assert!(conf.contains(&line), "conf lacks {line:?}:\n{conf}");
    let mntr = ens.node(3).four_letter("mntr");
    assert!(mntr.contains("zk_synced_observers\t1\n") && mntr.contains("zk_learners\t3\n"), "{mntr}");
    assert!(ens.node(1).four_letter("mntr").contains("zk_quorum_size\t3\n"));
}

/// One peer of three, alone: it stays LOOKING, answers ruok/isro but not srvr, and logs
/// its own vote. Also: Drop kills it.
#[test]
fn lone_apache_peer_stays_looking() {
    let mut ens = Ensemble::new(EnsembleSpec::apache(3));
    assert!(ens.running().is_empty());
    ens.node_mut(1).start();
    let n = ens.node(1);
    let m = n.wait_for_log("Notification: my state:LOOKING; n.sid:1,", n.start_offset(), T);
    let vote = parse_notification(&m.line).expect("notification");
    assert_eq!((vote.sid, vote.leader, vote.state.as_str(), vote.round, vote.zxid, vote.version), (1, 1, "LOOKING", 1, 0, 2));
    assert_eq!(n.four_letter("ruok"), "imok");
    for w in ["srvr", "stat", "mntr", "conf"] {
        assert_eq!(n.four_letter(w), NOT_SERVING, "{w}");
    }
    assert_eq!(n.four_letter("isro"), "null");
    assert_eq!(n.mode(), None);
    assert!(n.election_outcome_since(0).is_none());
    assert_eq!(ens.running(), vec![1]);
    let pid = n.pid().expect("pid");
    let dir = ens.dir().to_path_buf();
    drop(ens);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "JVM {pid} survived Drop");
    assert!(!dir.exists(), "{} not removed", dir.display());
}

#[test]
fn ensemble_is_killed_when_the_test_panics() {
    let pid = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(|| {
        let mut ens = Ensemble::new(EnsembleSpec::apache(3));
        ens.node_mut(2).start();
        *pid.lock().unwrap() = ens.node(2).pid();
        panic!("expected panic (the node's log tail below is expected too)");
    });
    assert!(r.is_err());
    let pid = pid.lock().unwrap().expect("node started");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "JVM {pid} survived a panic");
}

/// Our server gets the same layout. Until it has a quorum peer it refuses replicated
/// mode and exits; afterwards it must listen on its client and election ports.
#[test]
fn our_node_reads_the_ensemble_config() {
    let mut ens = Ensemble::new(EnsembleSpec::of(&[Impl::Apache, Impl::Apache, Impl::Ours]));
    let cfg = std::fs::read_to_string(ens.node(3).cfg_path()).expect("zoo.cfg");
    assert!(cfg.contains(&ens.server_lines()) && cfg.contains("standaloneEnabled=false\n"), "{cfg}");
    let node = ens.node_mut(3);
    node.spawn();
    match node.wait_listening(T) {
        Ok(true) => {}
        Ok(false) => {
            let log = node.log_contents();
            assert!(log.contains("replicated (quorum) mode is not supported by this build yet"), "our node exited for another reason:\n{log}");
        }
        Err(e) => panic!("{e}\n{}", node.log_tail(40)),
    }
}

/// 5 Apache peers on empty data, in two groups (QuorumHierarchical), elect sid 5.
#[test]
fn five_apache_peers_in_groups_elect_the_highest_sid() {
    let t0 = Instant::now();
    let spec = EnsembleSpec::apache(5).group(1, &[1, 2, 3]).group(2, &[4, 5]).weight(1, 1).weight(2, 1).weight(3, 1).weight(4, 1).weight(5, 2);
    let ens = Ensemble::start(spec);
    let l = ens.wait_for_leader(T);
    eprintln!("[selftest] 5 Apache peers: start to a leader serving in {:?}", t0.elapsed());
    assert_eq!(l, 5);
    assert_eq!(ens.wait_for_agreed_leader(&ens.sids(), T), 5);
    // Agreeing on the leader is not serving yet: a follower still syncing answers
    // "not currently serving" to the four-letter words.
    let deadline = Instant::now() + T;
    let conf = loop {
        let c = ens.node(1).four_letter("conf");
        if !c.contains("not currently serving") || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(conf.contains("group.1=1:2:3\n") && conf.contains("weight.5=2\n"), "{conf}");
}
