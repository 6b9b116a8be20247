//! Leader election of our `zk-server` quorum peers as processes on loopback (issue #10):
//! alone, and mixed with real Apache ZooKeeper 3.8 peers in one ensemble.
//!
//! What every test reads is each peer's own log (tests/common/ensemble.rs): the first
//! `Peer state changed: leading|following|observing` after its start, and the leader
//! from FastLeaderElection's DEBUG line "About to leave FLE instance: leader=L, ...",
//! which both implementations log. Our peers run the election only (no Zab yet): a Java
//! follower of one of our leaders cannot connect to its quorum port and goes back to
//! LOOKING after its first election, so only the first decision of each peer counts.
//!
//! The expected leaders are upstream's rules, checked by running every test here with
//! Apache in place of our peers (`ZKRS_TEST_OURS=apache cargo test --test
//! election_interop`, all of them pass that way), and, for the mixed ensembles with
//! data, by running the same layout on Apache alone inside the test and comparing:
//! * the highest (currentEpoch, last zxid, sid) among the peers that take part wins;
//! * a peer that starts while a leader is established follows it, learning it from the
//!   FOLLOWING/LEADING answers of the settled peers;
//! * an observer never votes and its messages are not logged as notifications;
//! * QuorumHierarchical: a quorum is a majority of groups, each with a majority of its
//!   weight; a server of weight 0 never becomes leader.
//!
//! Peers with data: [`write_history`] writes a dataDir through the project's persistence
//! API (an empty `snapshot.0`, a txn log of creates with zxids `epoch << 32 | i`, and
//! `currentEpoch`/`acceptedEpoch`), which both implementations load (each logs the
//! zxid it proposes, and the test checks it).
//!
//! Start order matters to FLE: two peers that see each other before a third, better
//! one is up decide on their own after finalizeWait (200 ms). So the peer expected to
//! win is started first and the others once it listens ([`Ensemble::start_nodes`]); a
//! wrong total order would still elect another peer.
//!
//! tickTime is 200 ms (the election itself does not depend on it; Apache's leaders and
//! followers give up sooner). Every wait is bounded.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::*;
use zookeeper::proto::txn::{CreateTxn, TxnHeader};
use zookeeper::proto::{ids, op_code};
use zookeeper::server::data_tree::DataTree;
use zookeeper::server::persistence::epoch_file::{write_long_to_file, ACCEPTED_EPOCH_FILENAME, CURRENT_EPOCH_FILENAME};
use zookeeper::server::persistence::{FileSnap, FileTxnLog};
use zookeeper::server::txn_record::TxnRecord;

const T: Duration = Duration::from_secs(30);
const TICK: u32 = 200;

// --------------------------------------------------------------- helpers --

fn spec(members: Vec<MemberSpec>) -> EnsembleSpec {
    EnsembleSpec::new(members).tick_time(TICK)
}

/// For ensembles whose first election has Java and our peers. Without our Zab, a Java
/// follower of our leader gives up after 5 refused connections to its quorum port
/// (`zookeeper.leaderConnectDelayDuringRetryMs`, 100 ms, apart) and a Java leader of
/// our followers after initLimit ticks, and goes LOOKING; Java peers then elect among
/// themselves. A peer that decides after that (a JVM started late on a loaded machine,
/// an observer between two notification time-outs: 0.2, 0.6, 1.4, 3, 6.2 s) sees that
/// second state instead of the first election. 5 s between retries and 300 ticks of
/// 200 ms keep every Java peer in its first role for 20 s or more.
fn mixed_spec(members: Vec<MemberSpec>) -> EnsembleSpec {
    spec(members).init_limit(300).apache_jvm_arg("-Dzookeeper.leaderConnectDelayDuringRetryMs=5000")
}

fn members(imps: &[(u64, Impl)]) -> Vec<MemberSpec> {
    imps.iter().map(|&(sid, imp)| MemberSpec::participant(sid, imp)).collect()
}

fn ours(n: u64) -> Vec<MemberSpec> {
    (1..=n).map(|sid| MemberSpec::participant(sid, Impl::Ours)).collect()
}

/// What a peer has on disk before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct History {
    /// currentEpoch = acceptedEpoch.
    epoch: i64,
    /// Epoch of the logged txns (<= epoch).
    zxid_epoch: i64,
    /// Creates logged in that epoch (0: no txn log; the peer's last zxid is 0).
    txns: i64,
}

impl History {
    const EMPTY: History = History { epoch: 0, zxid_epoch: 0, txns: 0 };
    fn new(epoch: i64, zxid_epoch: i64, txns: i64) -> History {
        History { epoch, zxid_epoch, txns }
    }
    fn last_zxid(&self) -> i64 {
        if self.txns == 0 {
            0
        } else {
            (self.zxid_epoch << 32) | self.txns
        }
    }
}

/// Writes the dataDir of a peer with `h`: `version-2/snapshot.0` of an empty tree, a
/// txn log of `h.txns` creates `/h1`, `/h2`, ... with zxids `zxid_epoch << 32 | i`, and
/// the epoch files. The same files Apache and our server write (a snapshot is needed:
/// both refuse a txn log without one).
fn write_history(data_dir: &Path, h: History) {
    let v2 = data_dir.join("version-2");
    fs::create_dir_all(&v2).expect("mkdir version-2");
    if h.txns > 0 {
        FileSnap::new(&v2).save(&DataTree::new(), &HashMap::new(), false).expect("snapshot.0");
        let mut log = FileTxnLog::new(&v2);
        log.set_force_sync(false);
        for i in 1..=h.txns {
            let zxid = (h.zxid_epoch << 32) | i;
            let hdr = TxnHeader { client_id: 0x100, cxid: i as i32, zxid, time: 1_700_000_000_000 + i, r#type: op_code::CREATE };
            let txn = TxnRecord::Create(CreateTxn {
                path: format!("/h{i}"),
                data: Some(format!("txn {i}").into_bytes()),
                acl: ids::open_acl_unsafe(),
                ephemeral: false,
                parent_c_version: i as i32,
            });
            log.append(&hdr, Some(&txn), None).expect("append txn");
        }
        log.commit().expect("commit");
        log.close().expect("close");
    }
    if h != History::EMPTY {
        write_long_to_file(&v2, CURRENT_EPOCH_FILENAME, h.epoch).expect("currentEpoch");
        write_long_to_file(&v2, ACCEPTED_EPOCH_FILENAME, h.epoch).expect("acceptedEpoch");
    }
}

/// upstream's totalOrderPredicate as a sort key: the peer FLE elects among `peers`.
fn best(peers: &BTreeMap<u64, History>) -> u64 {
    *peers.iter().max_by_key(|(sid, h)| (h.epoch, h.last_zxid(), **sid)).expect("peers").0
}

/// The zxid a peer proposed in its first election after its last start ("New election.
/// My id = N, proposed zxid=0x..", logged at info by both).
fn proposed_zxid(n: &Node) -> i64 {
    let m = n.wait_for_log("New election. My id = ", n.start_offset(), T);
    let hex = m.line.rsplit("proposed zxid=0x").next().expect("zxid").trim();
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("node {}: bad zxid in {:?}: {e}", n.sid(), m.line)) as i64
}

/// Writes the histories, starts `first` (once it listens) and then the rest, and
/// returns the leader all of them agree on (from their logs), after checking that each
/// proposed the zxid of its data.
fn start_with_histories(ens: &mut Ensemble, hist: &BTreeMap<u64, History>, first: &[u64]) -> u64 {
    for (&sid, &h) in hist {
        write_history(ens.node(sid).data_dir(), h);
    }
    ens.start_nodes(first);
    for &sid in first {
        ens.node(sid).wait_electing(T);
    }
    let rest: Vec<u64> = ens.sids().into_iter().filter(|s| !first.contains(s)).collect();
    if !rest.is_empty() {
        ens.start_nodes(&rest);
    }
    let leader = ens.wait_for_agreed_leader(&ens.sids(), T);
    for n in ens.nodes() {
        if n.peer_type() == PeerType::Participant {
            let want = hist.get(&n.sid()).copied().unwrap_or(History::EMPTY).last_zxid();
            assert_eq!(proposed_zxid(n), want, "node {} ({:?}) proposed another zxid than its data's", n.sid(), n.imp());
        }
    }
    leader
}

/// Every node's decision is exact (the DEBUG line or leading itself), not inferred.
fn assert_exact_outcomes(ens: &Ensemble) {
    for n in ens.nodes() {
        let o = ens.wait_for_election_outcome(n.sid(), T);
        assert!(o.leader_source.is_exact(), "node {}: leader inferred, not logged: {o:?}", n.sid());
    }
}

/// Waits `window` and checks that none of `sids` decided anything since its start,
/// while they did exchange votes (each logged a notification from another voter).
fn assert_no_decision(ens: &Ensemble, sids: &[u64], window: Duration) {
    thread::sleep(window);
    for &sid in sids {
        let n = ens.node(sid);
        assert!(n.alive(), "node {sid} exited\n{}", n.log_tail(40));
        if let Some(o) = n.election_outcome_since(n.start_offset()) {
            panic!("node {sid} decided {:?} (leader {}) without a quorum: {:?}\n{}", o.role, o.leader, o.decision_line, ens.describe_all(40));
        }
    }
}

/// The notifications node `reader` logged from node `sender` since `reader`'s start.
fn notes_from(ens: &Ensemble, reader: u64, sender: u64) -> Vec<Notification> {
    let n = ens.node(reader);
    n.notifications_since(n.start_offset()).into_iter().filter(|x| x.sid == sender).collect()
}

/// `reader` decoded at least one notification from `sender` whose fields are all where
/// the wire format puts them: message version 2, config version 0, a round >= 1, and a
/// leader whose (zxid, peerEpoch) are that leader's data.
fn assert_decoded(ens: &Ensemble, reader: u64, sender: u64, hist: &BTreeMap<u64, History>) {
    let notes = notes_from(ens, reader, sender);
    let fits = |x: &Notification| {
        let h = hist.get(&x.leader).copied().unwrap_or(History::EMPTY);
        // A settled peer that already synced with its leader answers with the new
        // epoch (`updateElectionVote`), one past the data's.
        let epoch_fits = x.peer_epoch == h.epoch as u64 || (x.state != "LOOKING" && x.peer_epoch == h.epoch as u64 + 1);
        x.version == 2 && x.config_version == 0 && x.round >= 1 && x.zxid == h.last_zxid() as u64 && epoch_fits
    };
    assert!(
        notes.iter().any(fits),
        "node {reader} ({:?}) logged no well-formed notification from node {sender} ({:?}); from {sender}: {notes:?}\n{}",
        ens.node(reader).imp(),
        ens.node(sender).imp(),
        ens.describe_all(30)
    );
}

/// No peer failed to parse another's notification or the config it carries (each
/// notification has the sender's membership as text, which Java parses with its own
/// QuorumMaj / QuorumHierarchical).
fn assert_no_decode_errors(ens: &Ensemble) {
    const BAD: [&str; 4] = ["Something went wrong while processing config", "Skipping the processing of a partial", "Got a short response", "Backward compatibility mode"];
    for n in ens.nodes() {
        for b in BAD {
            if let Some(m) = n.find_log(b, 0) {
                panic!("node {} ({:?}) logged {:?}:\n{}", n.sid(), n.imp(), m.line, ens.describe_all(30));
            }
        }
    }
}

fn assert_roles(ens: &Ensemble, leader: u64) {
    for n in ens.nodes() {
        let o = ens.wait_for_election_outcome(n.sid(), T);
        let want = match (n.sid() == leader, n.peer_type()) {
            (true, _) => Role::Leading,
            (false, PeerType::Participant) => Role::Following,
            (false, PeerType::Observer) => Role::Observing,
        };
        assert_eq!((o.role, o.leader), (want, leader), "node {} ({:?}): {o:?}", n.sid(), n.imp());
    }
}

/// The threads of a peer to compare before and after peers came and went: for our
/// peer all but the connection pool's (they time out after 60 s idle, as upstream's,
/// so their number is not a leak signal) and the ones that live for one job (a
/// four-letter word's `CommandThread`, which the harness's own `srvr` probes start, and
/// a `Snapshot Thread`); for Apache (`ZKRS_TEST_OURS=apache`) the election's only, as
/// its Zab threads come and go on their own.
fn lasting_threads(pid: u32, imp: Impl) -> BTreeMap<String, usize> {
    const ELECTION: [&str; 6] = ["SendWorker:", "RecvWorker:", "WorkerSender[", "WorkerReceiver[", "QuorumPeerListe", "ListenerHandler"];
    const ONE_JOB: [&str; 3] = ["QuorumConnectio", "CommandThread:", "Snapshot Thread"];
    thread_names(pid)
        .into_iter()
        .filter(|(n, _)| match imp {
            Impl::Ours => !ONE_JOB.iter().any(|p| n.starts_with(p)),
            Impl::Apache => ELECTION.iter().any(|p| n.starts_with(p)),
        })
        .collect()
}

/// TCP sockets of process `pid` that belong to the election: listening on, accepted on
/// or dialled to one of `election_ports` (from /proc/net/tcp, matched by inode).
fn election_sockets(pid: u32, election_ports: &[u16]) -> usize {
    let mut mine = std::collections::HashSet::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                if let Some(n) = t.to_string_lossy().strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse::<u64>().ok()) {
                    mine.insert(n);
                }
            }
        }
    }
    let port = |a: &str| a.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let mut n = 0;
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(f) else { continue };
        for l in text.lines().skip(1) {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 10 || !c[9].parse::<u64>().is_ok_and(|i| mine.contains(&i)) {
                continue;
            }
            if [port(c[1]), port(c[2])].iter().flatten().any(|p| election_ports.contains(p)) {
                n += 1;
            }
        }
    }
    n
}

fn count_prefix(names: &BTreeMap<String, usize>, prefix: &str) -> usize {
    names.iter().filter(|(n, _)| n.starts_with(prefix)).map(|(_, c)| c).sum()
}

/// Polls `f` every 50 ms until it returns Ok, for at most `timeout`; the last Err
/// message otherwise.
fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let end = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= end => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

// ------------------------------------------------------- ours, no data --

/// 3 and 5 of our peers on empty data elect the highest sid, and all agree.
#[test]
fn ours_on_empty_data_elect_the_highest_sid() {
    for n in [3u64, 5] {
        let ens = Ensemble::start(spec(ours(n)));
        let leader = ens.wait_for_agreed_leader(&ens.sids(), T);
        assert_eq!(leader, n, "{n} peers\n{}", ens.describe_all(30));
        assert_exact_outcomes(&ens);
        // Each voted for the winner and saw every other peer's vote.
        for r in 1..=n {
            let o = ens.wait_for_election_outcome(r, T);
            assert!(o.notifications.iter().any(|x| x.sid == r && x.leader == n), "node {r} never voted {n}: {o:?}");
            for s in (1..=n).filter(|&s| s != r) {
                assert!(!notes_from(&ens, r, s).is_empty(), "node {r} logged nothing from {s}");
            }
        }
    }
}

// -------------------------------------------------------- ours, data --

/// 3 peers: 1 and 2 logged 9 txns in epoch 1, 3 (the highest sid) only 3. Equal zxids
/// are decided by the sid: 2 leads.
#[test]
fn ours_three_with_data_elect_the_highest_zxid_then_sid() {
    let hist: BTreeMap<u64, History> = [(1, History::new(1, 1, 9)), (2, History::new(1, 1, 9)), (3, History::new(1, 1, 3))].into();
    assert_eq!(best(&hist), 2);
    let mut ens = Ensemble::new(spec(ours(3)));
    let leader = start_with_histories(&mut ens, &hist, &[2]);
    assert_eq!(leader, 2, "{}", ens.describe_all(30));
    assert_exact_outcomes(&ens);
    // 3 voted for itself first and then switched to 2 (it saw 2's better vote).
    let o3 = ens.wait_for_election_outcome(3, T);
    assert!(o3.notifications.iter().any(|x| x.sid == 3 && x.leader == 3 && x.zxid == 0x1_0000_0003), "{o3:?}");
    assert!(o3.notifications.iter().any(|x| x.sid == 3 && x.leader == 2 && x.zxid == 0x1_0000_0009), "{o3:?}");
}

/// 5 peers: 1 has the highest currentEpoch (3) but fewer and older txns than 4 and 5;
/// 2 and 3 are empty. The epoch decides first: 1 leads.
#[test]
fn ours_five_with_data_elect_the_highest_epoch_first() {
    let hist: BTreeMap<u64, History> = [
        (1, History::new(3, 2, 2)),
        (2, History::EMPTY),
        (3, History::EMPTY),
        (4, History::new(2, 2, 9)),
        (5, History::new(2, 2, 5)),
    ]
    .into();
    assert_eq!(best(&hist), 1);
    let mut ens = Ensemble::new(spec(ours(5)));
    let leader = start_with_histories(&mut ens, &hist, &[1]);
    assert_eq!(leader, 1, "{}", ens.describe_all(30));
    assert_exact_outcomes(&ens);
    let o5 = ens.wait_for_election_outcome(5, T);
    assert!(o5.notifications.iter().any(|x| x.sid == 1 && x.leader == 1 && x.peer_epoch == 3 && x.zxid == 0x2_0000_0002), "{o5:?}");
}

// ------------------------------------------------------ late joiner --

/// 1 and 2 elect 2; then 3 starts. Although it has the highest sid it follows 2,
/// learning it from 1's FOLLOWING and 2's LEADING answers; 1 and 2 are not disturbed.
#[test]
fn ours_late_joiner_follows_the_established_leader() {
    let mut ens = Ensemble::new(spec(ours(3)));
    ens.start_nodes(&[1, 2]);
    assert_eq!(ens.wait_for_agreed_leader(&[1, 2], T), 2);
    let offs: Vec<u64> = [1, 2].iter().map(|&s| ens.node(s).log_offset()).collect();
    ens.node_mut(3).start();
    let o = ens.wait_for_election_outcome(3, T);
    assert_eq!((o.role, o.leader), (Role::Following, 2), "{o:?}\n{}", ens.describe_all(30));
    assert!(o.leader_source.is_exact(), "{o:?}");
    assert!(o.notifications.iter().any(|x| x.sid == 2 && x.state == "LEADING" && x.leader == 2), "no LEADING answer from 2: {o:?}");
    // 1's vote for 2: its FOLLOWING answer, or the LOOKING vote of round 1 that waited in
    // 1's send queue for 3 while 3 was down (upstream delivers it too, and counts it: a
    // LOOKING vote equals a settled one with the same leader, zxid and epochs).
    assert!(o.notifications.iter().any(|x| x.sid == 1 && x.leader == 2 && x.round == 1), "no vote for 2 from 1: {o:?}");
    // It decided on the answers, without another round of voting.
    let took = o.election_took_ms.expect("LEADER ELECTION TOOK");
    assert!(took < 5_000, "the late joiner took {took} ms");
    for (i, s) in [1u64, 2].into_iter().enumerate() {
        let n = ens.node(s);
        assert!(n.find_log("Peer state changed: looking", offs[i]).is_none(), "node {s} went LOOKING when 3 joined:\n{}", n.log_since(offs[i]));
        assert!(n.find_log("New election", offs[i]).is_none(), "node {s} started an election when 3 joined");
    }
}

// --------------------------------------------------------- observers --

/// An observer (4) with participants 1, 2, 3. With only participant 1 up, 1 and the
/// observer never decide: the observer's messages do not count. Then 3 joins: 1 and 3
/// elect 3 and the observer observes 3. Voters never log the observer's messages.
#[test]
fn ours_observer_learns_the_leader_and_never_votes() {
    let mut ens = Ensemble::new(spec(ours(3)).with_observer(Impl::Ours));
    ens.start_nodes(&[1, 4]);
    // They talk (the observer sends its vote to the voters, 1 answers with its own) ...
    let obs = ens.node(4);
    obs.wait_for_log("Notification: my state:LOOKING; n.sid:1,", obs.start_offset(), T);
    // ... but a participant and an observer are no quorum of 3 voters.
    assert_no_decision(&ens, &[1, 4], Duration::from_secs(3));
    assert!(notes_from(&ens, 1, 4).is_empty(), "participant 1 logged the observer's messages as votes");

    ens.node_mut(3).start();
    let leader = ens.wait_for_agreed_leader(&[1, 3, 4], T);
    assert_eq!(leader, 3);
    let o4 = ens.wait_for_election_outcome(4, T);
    assert_eq!((o4.role, o4.leader), (Role::Observing, 3), "{o4:?}");
    assert!(o4.leader_source.is_exact(), "{o4:?}");
    // The observer never proposes a leader of its own: nobody logs a vote from it.
    for v in [1, 3] {
        assert!(notes_from(&ens, v, 4).is_empty(), "voter {v} logged the observer's messages");
    }
    // Its initial vote is Long.MIN_VALUE, as upstream's.
    assert_eq!(proposed_zxid(ens.node(4)), i64::MIN);
}

// ------------------------------------------------------ hierarchical --

/// Groups {1,2,3}, {4}, {5}: with 1, 2, 3 up, 3 of 5 servers vote but only one group of
/// three has a majority, so nobody is elected. Once 4 is up, two groups have one: 4
/// (the highest sid among the four) leads.
#[test]
fn ours_hierarchical_majority_of_servers_is_not_a_majority_of_groups() {
    let s = spec(ours(5)).group(1, &[1, 2, 3]).group(2, &[4]).group(3, &[5]);
    let mut ens = Ensemble::new(s);
    ens.start_nodes(&[1, 2, 3]);
    // They exchange votes (all for 3) ...
    for r in [1, 2] {
        let n = ens.node(r);
        n.wait_for_log(LogPattern::Regex(regex::Regex::new(r"Notification: .*n\.sid:3, n\.state:LOOKING, n\.leader:3,").unwrap()), n.start_offset(), T);
    }
    // ... but three of five votes in one group of three is no hierarchical quorum.
    assert_no_decision(&ens, &[1, 2, 3], Duration::from_secs(3));
    ens.node_mut(4).start();
    let leader = ens.wait_for_agreed_leader(&[1, 2, 3, 4], T);
    assert_eq!(leader, 4, "{}", ens.describe_all(30));
}

/// Group {1,2,3} with weight.3=0: 3 has the highest sid and the most data, yet a server
/// of weight 0 never wins: 1 and 2 elect 2, and 3 follows it.
#[test]
fn ours_hierarchical_weight_zero_never_leads() {
    let s = spec(ours(3)).group(1, &[1, 2, 3]).weight(1, 1).weight(2, 1).weight(3, 0);
    let mut ens = Ensemble::new(s);
    let hist: BTreeMap<u64, History> = [(3, History::new(1, 1, 7))].into();
    let leader = start_with_histories(&mut ens, &hist, &[3]);
    assert_eq!(leader, 2, "{}", ens.describe_all(30));
    assert_roles(&ens, 2);
    // 3 kept proposing itself (nothing beats its data) until it learnt the leader.
    let o3 = ens.wait_for_election_outcome(3, T);
    assert!(o3.notifications.iter().filter(|x| x.sid == 3).all(|x| x.leader == 3), "{o3:?}");
    assert!(o3.notifications.iter().any(|x| x.sid == 2 && x.state == "LEADING"), "{o3:?}");
}

// -------------------------------------------------------------- mixed --

/// Java 1, 2 + our 3 (+ our observer 4), empty data: all elect 3. Each side decoded the
/// other's notifications, and our observer learnt the leader from Java's answers too.
#[test]
fn mixed_java_1_2_ours_3_with_our_observer() {
    let s = mixed_spec(members(&[(1, Impl::Apache), (2, Impl::Apache), (3, Impl::Ours)])).with_observer(Impl::Ours);
    let ens = Ensemble::start(s);
    let leader = ens.wait_for_agreed_leader(&ens.sids(), T);
    assert_eq!(leader, 3, "{}", ens.describe_all(30));
    assert_exact_outcomes(&ens);
    assert_no_decode_errors(&ens);
    let hist = BTreeMap::new();
    for j in [1, 2] {
        assert_decoded(&ens, j, 3, &hist);
        assert_decoded(&ens, 3, j, &hist);
        assert_decoded(&ens, 4, j, &hist);
        assert!(notes_from(&ens, j, 4).is_empty(), "Java {j} logged our observer's messages as votes");
    }
    assert_decoded(&ens, 4, 3, &hist);
}

/// Our 1, 2 + Java 3 (+ a Java observer 4), empty data: all elect Java 3. The Java
/// observer needs our peers' votes (answers) to decide.
#[test]
fn mixed_ours_1_2_java_3_with_java_observer() {
    let s = mixed_spec(members(&[(1, Impl::Ours), (2, Impl::Ours), (3, Impl::Apache)])).with_observer(Impl::Apache);
    // Java 3 first, then our 1 alone: the only quorum is {1, 3}, so our peer must decode
    // the Java votes to decide. Started together, our two peers may legitimately elect 2
    // within finalizeWait before a loaded JVM's first vote reaches them (seen in CI).
    let mut ens = Ensemble::new(s);
    ens.start_nodes(&[3, 4]);
    ens.start_nodes(&[1]);
    assert_eq!(ens.wait_for_agreed_leader(&[1, 3], T), 3, "{}", ens.describe_all(30));
    ens.start_nodes(&[2]);
    let leader = ens.wait_for_agreed_leader(&ens.sids(), T);
    assert_eq!(leader, 3, "{}", ens.describe_all(30));
    assert_exact_outcomes(&ens);
    assert_no_decode_errors(&ens);
    let hist = BTreeMap::new();
    for r in [1, 2] {
        assert_decoded(&ens, 3, r, &hist);
        assert_decoded(&ens, r, 3, &hist);
        assert!(notes_from(&ens, r, 4).is_empty(), "our {r} logged the Java observer's messages as votes");
    }
    // Java's observer decided with a vote for 3 from at least one of ours (3's own vote
    // is no quorum): a FOLLOWING answer, or a LOOKING vote if it was early.
    let o4 = ens.wait_for_election_outcome(4, T);
    assert!(o4.notifications.iter().any(|x| (x.sid == 1 || x.sid == 2) && x.leader == 3), "{o4:?}");
}

/// Our 1, 2 elect 2; then Java 3 starts and follows our leader, learning it from our
/// FOLLOWING/LEADING answers (as the Apache-only self-test's restarted peer does).
#[test]
fn mixed_java_late_joiner_follows_our_leader() {
    let mut ens = Ensemble::new(mixed_spec(members(&[(1, Impl::Ours), (2, Impl::Ours), (3, Impl::Apache)])));
    ens.start_nodes(&[1, 2]);
    assert_eq!(ens.wait_for_agreed_leader(&[1, 2], T), 2);
    ens.node_mut(3).start();
    let o = ens.wait_for_election_outcome(3, T);
    assert_eq!((o.role, o.leader), (Role::Following, 2), "{o:?}\n{}", ens.describe_all(30));
    assert!(o.leader_source.is_exact(), "{o:?}");
    assert!(o.notifications.iter().any(|x| x.sid == 2 && x.state == "LEADING" && x.leader == 2 && x.round == 1), "{o:?}");
    // 1's FOLLOWING answer, or its round-1 LOOKING vote for 2 still queued for 3 (see
    // ours_late_joiner_follows_the_established_leader): Java counts either.
    assert!(o.notifications.iter().any(|x| x.sid == 1 && x.leader == 2 && x.round == 1), "{o:?}");
}

/// The 5-peer layout our 1, 3, 5 + Java 2, 4 with data, and the same layout on Apache
/// alone: both elect the same leader (Java 2: highest epoch, though 3 and 4 have more
/// txns and 5 the highest sid), with the same roles.
#[test]
fn mixed_five_with_data_elects_what_apache_alone_elects() {
    let hist: BTreeMap<u64, History> = [
        (1, History::EMPTY),
        (2, History::new(2, 2, 1)),
        (3, History::new(1, 1, 9)),
        (4, History::new(1, 1, 9)),
        (5, History::new(1, 1, 4)),
    ]
    .into();
    assert_eq!(best(&hist), 2);
    let layout = [(1, Impl::Ours), (2, Impl::Apache), (3, Impl::Ours), (4, Impl::Apache), (5, Impl::Ours)];
    let mut mixed = Ensemble::new(mixed_spec(members(&layout)));
    let leader = start_with_histories(&mut mixed, &hist, &[2]);
    assert_exact_outcomes(&mixed);
    assert_no_decode_errors(&mixed);
    for j in [2, 4] {
        for r in [1, 3, 5] {
            assert_decoded(&mixed, j, r, &hist);
            assert_decoded(&mixed, r, j, &hist);
        }
    }
    let roles: BTreeMap<u64, Role> = mixed.sids().into_iter().map(|s| (s, mixed.wait_for_election_outcome(s, T).role)).collect();
    drop(mixed);

    let all_apache: Vec<(u64, Impl)> = layout.iter().map(|&(s, _)| (s, Impl::Apache)).collect();
    let mut apache = Ensemble::new(mixed_spec(members(&all_apache)));
    let apache_leader = start_with_histories(&mut apache, &hist, &[2]);
    let apache_roles: BTreeMap<u64, Role> = apache.sids().into_iter().map(|s| (s, apache.wait_for_election_outcome(s, T).role)).collect();
    assert_eq!((leader, &roles), (apache_leader, &apache_roles), "mixed ensemble vs Apache alone");
    assert_eq!(leader, 2);
}

/// Java 1, 2 + our 3 where our 3 has the most data but 2 the same zxid: the sid breaks
/// the tie in favour of ours (3). Same layout on Apache alone: the same.
#[test]
fn mixed_three_with_data_elects_what_apache_alone_elects() {
    let hist: BTreeMap<u64, History> = [(1, History::new(1, 1, 2)), (2, History::new(1, 1, 6)), (3, History::new(1, 1, 6))].into();
    assert_eq!(best(&hist), 3);
    let layout = [(1, Impl::Apache), (2, Impl::Ours), (3, Impl::Ours)];
    let mut mixed = Ensemble::new(mixed_spec(members(&layout)));
    let leader = start_with_histories(&mut mixed, &hist, &[3]);
    assert_exact_outcomes(&mixed);
    assert_no_decode_errors(&mixed);
    for r in [2, 3] {
        assert_decoded(&mixed, 1, r, &hist);
        assert_decoded(&mixed, r, 1, &hist);
    }
    drop(mixed);
    let mut apache = Ensemble::new(mixed_spec(EnsembleSpec::apache(3).members));
    let apache_leader = start_with_histories(&mut apache, &hist, &[3]);
    assert_eq!(leader, apache_leader);
    assert_eq!(leader, 3);
}

/// QuorumHierarchical across implementations: groups {1,2,3} and {4,5}, server 5 of
/// weight 0; ours 1, 3, 5 and Java 2, 4, empty data. 5 has the highest sid but never
/// leads: 4 (Java) does, and every peer parses the other side's hierarchical config.
#[test]
fn mixed_hierarchical_weight_zero_never_leads() {
    let layout = [(1, Impl::Ours), (2, Impl::Apache), (3, Impl::Ours), (4, Impl::Apache), (5, Impl::Ours)];
    let s = mixed_spec(members(&layout)).group(1, &[1, 2, 3]).group(2, &[4, 5]).weight(1, 1).weight(2, 1).weight(3, 1).weight(4, 1).weight(5, 0);
    let mut ens = Ensemble::new(s);
    ens.start_nodes(&[4]);
    ens.node(4).wait_electing(T);
    ens.start_nodes(&[1, 2, 3, 5]);
    let leader = ens.wait_for_agreed_leader(&ens.sids(), T);
    assert_eq!(leader, 4, "{}", ens.describe_all(30));
    assert_exact_outcomes(&ens);
    assert_no_decode_errors(&ens);
    let hist = BTreeMap::new();
    for j in [2, 4] {
        for r in [1, 3, 5] {
            assert_decoded(&ens, j, r, &hist);
            assert_decoded(&ens, r, j, &hist);
        }
    }
    // 5 proposed itself and no one took it up: every vote for 5 is 5's own.
    for n in ens.sids() {
        let o = ens.wait_for_election_outcome(n, T);
        assert!(o.notifications.iter().filter(|x| x.leader == 5).all(|x| x.sid == 5), "node {n} saw a vote for 5 from another peer: {o:?}");
    }
}

// ------------------------------------------------------ come and go --

/// 5 of our peers; 3, 4, 5 stay up (leader 5). 1 and 2 are started, killed -9 (some
/// while still electing, some after following 5) and restarted, 24 rounds. Each start
/// that is left alone elects (follows 5); the survivors end with the threads and
/// sockets they had before, and never hold two workers for one peer.
#[test]
fn ours_peers_come_and_go_without_leaking_threads_or_sockets() {
    let mut ens = Ensemble::new(spec(ours(5)));
    let stable = [3u64, 4, 5];
    ens.start_nodes(&stable);
    assert_eq!(ens.wait_for_agreed_leader(&stable, T), 5);
    // With Zab the followers sync and start their request threads after the election:
    // the baseline is the serving state.
    ens.wait_for_modes(&stable, T);
    let pids: Vec<u32> = stable.iter().map(|&s| ens.node(s).pid().expect("pid")).collect();
    // Settled: every survivor has one SendWorker and one RecvWorker per other survivor.
    for (i, &s) in stable.iter().enumerate() {
        wait_until(T, || {
            let t = thread_names(pids[i]);
            let (sw, rw) = (count_prefix(&t, "SendWorker:"), count_prefix(&t, "RecvWorker:"));
            if sw == 2 && rw == 2 {
                Ok(())
            } else {
                Err(format!("node {s}: {sw} SendWorkers, {rw} RecvWorkers: {t:?}"))
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let eports: Vec<u16> = ens.nodes().iter().map(|n| n.election_port()).collect();
    // Our peer's sockets and fds are all the election's (no client or Zab port yet), so
    // they must come back exactly; for Apache (ZKRS_TEST_OURS=apache) the election's only.
    let snapshot = |n: &Node, pid: u32| {
        let all = n.imp() == Impl::Ours;
        (lasting_threads(pid, n.imp()), election_sockets(pid, &eports), all.then(|| (n.socket_count(), n.fd_count())))
    };
    let base: Vec<_> = stable.iter().zip(&pids).map(|(&s, &p)| snapshot(ens.node(s), p)).collect();
    eprintln!("[come-and-go] before: {base:?}");
    let base_total: Vec<usize> = stable.iter().map(|&s| ens.node(s).thread_count()).collect();

    let t0 = Instant::now();
    let rounds = 24;
    let mut elected = 0;
    for round in 0..rounds {
        let churn: Vec<u64> = match round % 4 {
            0 => vec![1],
            1 => vec![2],
            2 => vec![1, 2],
            _ => vec![if round % 8 == 3 { 1 } else { 2 }],
        };
        for &c in &churn {
            ens.node_mut(c).spawn();
        }
        if round % 4 == 3 {
            // Killed while starting or electing: somewhere in its first 0-120 ms.
            thread::sleep(Duration::from_millis((round as u64 * 37) % 120));
        } else {
            for &c in &churn {
                let o = ens.wait_for_election_outcome(c, Duration::from_secs(15));
                assert_eq!((o.role, o.leader), (Role::Following, 5), "round {round}, node {c}: {o:?}");
                elected += 1;
            }
        }
        for &c in &churn {
            ens.node_mut(c).kill();
        }
        // No survivor ever holds two worker pairs for the same peer.
        for (i, &s) in stable.iter().enumerate() {
            let t = thread_names(pids[i]);
            for (name, &cnt) in &t {
                if name.starts_with("SendWorker:") || name.starts_with("RecvWorker:") {
                    assert!(cnt <= 1, "round {round}: node {s} has {cnt} threads {name}: {t:?}");
                }
            }
        }
    }
    eprintln!("[come-and-go] {rounds} rounds ({elected} elections) in {:?}", t0.elapsed());
    // The stable peers are as before, and still agree.
    for (i, &s) in stable.iter().enumerate() {
        let n = ens.node(s);
        assert!(n.alive(), "node {s} died\n{}", n.log_tail(60));
        wait_until(Duration::from_secs(15), || {
            let now = snapshot(n, pids[i]);
            if now == base[i] {
                Ok(())
            } else {
                Err(format!("node {s}: (threads, election sockets, (sockets, fds)) now {now:?}, before {:?}", base[i]))
            }
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", n.log_tail(60)));
        let pool = count_prefix(&thread_names(pids[i]), "QuorumConnectio");
        assert!(pool <= 20, "node {s}: {pool} connection threads (the pool's maximum is 20)");
        eprintln!("[come-and-go] node {s}: threads {} before, {} after ({pool} pool threads)", base_total[i], n.thread_count());
        assert!(n.find_log("Peer state changed: looking", n.start_offset()).is_none(), "node {s} fell back to LOOKING");
    }
}

/// Java 2 and 3 form a real quorum (3 leads, Zab between them); our 1 is started and
/// killed -9 20 times. Each time it follows 3, learnt from Java's answers; Java's
/// election threads for it come and go without piling up.
#[test]
fn ours_comes_and_goes_against_a_java_quorum() {
    let mut ens = Ensemble::new(spec(members(&[(1, Impl::Ours), (2, Impl::Apache), (3, Impl::Apache)])));
    ens.start_nodes(&[2, 3]);
    assert_eq!(ens.wait_for_agreed_leader(&[2, 3], T), 3);
    let java: Vec<u32> = [2u64, 3].iter().map(|&s| ens.node(s).pid().expect("pid")).collect();
    let hist = BTreeMap::new();
    for round in 0..20 {
        ens.node_mut(1).start();
        let o = ens.wait_for_election_outcome(1, Duration::from_secs(15));
        assert_eq!((o.role, o.leader), (Role::Following, 3), "round {round}: {o:?}\n{}", ens.describe_all(30));
        if round == 0 {
            assert_decoded(&ens, 1, 2, &hist);
            assert_decoded(&ens, 1, 3, &hist);
            assert_decoded(&ens, 3, 1, &hist);
        }
        ens.node_mut(1).kill();
        for (i, s) in [2u64, 3].into_iter().enumerate() {
            let t = thread_names(java[i]);
            for w in ["SendWorker:1", "RecvWorker:1"] {
                let c = t.get(w).copied().unwrap_or(0);
                assert!(c <= 1, "round {round}: Java {s} has {c} threads {w}");
            }
        }
    }
    // The quorum of Java peers never noticed anything but our connections.
    for s in [2u64, 3] {
        let n = ens.node(s);
        assert!(n.find_log("Peer state changed: looking", n.start_offset()).is_none(), "Java {s} fell back to LOOKING\n{}", n.log_tail(40));
    }
    assert_eq!(ens.node(3).mode(), Some(Mode::Leader));
}

/// The other way round: our 2 and 3 stay up (3 leads), a Java 1 is started and killed
/// -9 10 times. Each time Java learns our leader from our answers and syncs with it
/// (Zab); our peers' threads, sockets and fds come back to what they were, and they
/// never re-elect.
#[test]
fn java_comes_and_goes_against_our_quorum() {
    let mut ens = Ensemble::new(spec(members(&[(1, Impl::Apache), (2, Impl::Ours), (3, Impl::Ours)])));
    ens.start_nodes(&[2, 3]);
    assert_eq!(ens.wait_for_agreed_leader(&[2, 3], T), 3);
    ens.wait_for_modes(&[2, 3], T);
    let pids: Vec<u32> = [2u64, 3].iter().map(|&s| ens.node(s).pid().expect("pid")).collect();
    let eports: Vec<u16> = ens.nodes().iter().map(|n| n.election_port()).collect();
    let snapshot = |n: &Node, pid: u32| (lasting_threads(pid, n.imp()), election_sockets(pid, &eports), (n.imp() == Impl::Ours).then(|| (n.socket_count(), n.fd_count())));
    for (i, s) in [2u64, 3].into_iter().enumerate() {
        wait_until(T, || {
            let t = thread_names(pids[i]);
            (count_prefix(&t, "SendWorker:") == 1 && count_prefix(&t, "RecvWorker:") == 1).then_some(()).ok_or(format!("node {s}: {t:?}"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let base: Vec<_> = [2u64, 3].iter().zip(&pids).map(|(&s, &p)| snapshot(ens.node(s), p)).collect();
    let offs: Vec<u64> = [2u64, 3].iter().map(|&s| ens.node(s).log_offset()).collect();
    let hist = BTreeMap::new();
    for round in 0..10 {
        ens.node_mut(1).start();
        let o = ens.wait_for_election_outcome(1, T);
        assert_eq!((o.role, o.leader), (Role::Following, 3), "round {round}: {o:?}\n{}", ens.describe_all(30));
        if round == 0 {
            for r in [2, 3] {
                assert_decoded(&ens, 1, r, &hist);
                assert_decoded(&ens, r, 1, &hist);
            }
            // Java syncs with our leader and serves as its follower.
            let modes = ens.wait_for_modes(&[1], T);
            assert_eq!(modes.get(&1), Some(&Mode::Follower), "{}", ens.describe_all(30));
        }
        ens.node_mut(1).kill();
    }
    for (i, s) in [2u64, 3].into_iter().enumerate() {
        let n = ens.node(s);
        wait_until(Duration::from_secs(15), || {
            let now = snapshot(n, pids[i]);
            (now == base[i]).then_some(()).ok_or(format!("node {s}: (threads, election sockets, (sockets, fds)) now {now:?}, before {:?}", base[i]))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", n.log_tail(60)));
        assert!(n.find_log("Peer state changed", offs[i]).is_none() || n.imp() == Impl::Apache, "our {s} changed state:\n{}", n.log_since(offs[i]));
    }
}
