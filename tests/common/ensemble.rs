//! Ensembles for integration tests: Apache ZooKeeper 3.8 peers (`QuorumPeerMain`) and our
//! `zk-server` peers in one replicated ensemble, all on 127.0.0.1.
//!
//! ```ignore
//! let mut ens = Ensemble::start(EnsembleSpec::of(&[Impl::Apache, Impl::Apache, Impl::Ours]));
//! let out = ens.wait_for_election_outcome(3, Duration::from_secs(30)); // from the log
//! let modes = ens.wait_for_mode_all(Duration::from_secs(30));            // from `srvr`
//! let from = ens.node(3).log_offset();
//! ens.node_mut(3).kill();                                                  // kill -9
//! ens.node_mut(3).start();                                                 // same dataDir
//! ens.node(3).wait_for_log("LEADER ELECTION TOOK", from, Duration::from_secs(30));
//! ```
//!
//! Layout (one temporary directory per ensemble, removed on Drop):
//!
//! ```text
//! /tmp/zk-ens-XXXX/nodeN/zoo.cfg      identical server.N lines on every node
//! /tmp/zk-ens-XXXX/nodeN/data/myid
//! /tmp/zk-ens-XXXX/nodeN/server.log   stdout+stderr of every run of node N, appended;
//!                                     "[harness] ..." lines mark starts and kills
//! ```
//!
//! One log file per node across restarts, so that a byte offset taken with
//! [`Node::log_offset`] before an action lets a test wait for the *next* occurrence of a
//! line ([`Node::wait_for_log`], [`Ensemble::wait_for_election_outcome_from`]).
//!
//! Every wait is bounded and panics with the tail of the relevant logs. Processes are
//! SIGKILLed on Drop (also when the test panics) and, through `spawn_guarded`'s
//! PR_SET_PDEATHSIG, when the test binary dies.
//!
//! Environment knobs: those of the standalone harness (`ZKRS_APACHE_JVM_OPTS`,
//! `ZKRS_APACHE_LOG_LEVEL`, `RUST_LOG`, `ZKRS_TEST_STARTUP_TIMEOUT`, `ZKRS_TEST_QUIET`,
//! `ZKRS_TEST_OURS=apache` — then `Impl::Ours` members run Apache), and
//! `ZKRS_TEST_KEEP_DIRS=1` to keep the ensemble directory for inspection.
//!
//! # What Apache 3.8.0 logs around an election (observed, slf4j-simple rendering)
//!
//! Lines as they appear in an Apache node's server.log (3-node ensemble, empty data,
//! node 1 started first and left alone for a while, then nodes 2 and 3):
//!
//! ```text
//! 16:46:38.745 [ListenerHandler-/127.0.0.1:31201] INFO QuorumCnxManager - 1 is accepting connections now, my election bind port: /127.0.0.1:31201
//! 16:46:38.903 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - LOOKING
//! 16:46:38.903 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO FastLeaderElection - New election. My id = 1, proposed zxid=0x0
//! 16:46:38.906 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:1, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:46:38.919 [QuorumConnectionThread-[myid=1]-1] WARN QuorumCnxManager - Cannot open channel to 2 at election address /127.0.0.1:31202
//! 16:46:39.123 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO FastLeaderElection - Notification time out: 400 ms
//! 16:47:00.450 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:3, n.state:LOOKING, n.leader:3, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:47:00.453 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:3, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:47:00.753 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - Peer state changed: following
//! 16:47:00.753 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - FOLLOWING
//! 16:47:00.778 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO Learner - FOLLOWING - LEADER ELECTION TOOK - 21875 MS
//! 16:47:00.788 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - Peer state changed: following - discovery
//! 16:47:00.896 [LeaderConnector-/127.0.0.1:31103] INFO Learner - Successfully connected to leader, using address: /127.0.0.1:31103
//! 16:47:00.926 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - Peer state changed: following - synchronization
//! 16:47:00.928 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - Peer state changed: following - synchronization - diff
//! 16:47:01.024 [QuorumPeer[myid=1](plain=127.0.0.1:31001)(secure=disabled)] INFO QuorumPeer - Peer state changed: following - broadcast
//!
//! 16:47:00.757 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] INFO QuorumPeer - Peer state changed: leading
//! 16:47:00.757 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] INFO QuorumPeer - LEADING
//! 16:47:00.795 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] INFO Leader - LEADING - LEADER ELECTION TOOK - 365 MS
//! 16:47:00.807 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] INFO QuorumPeer - Peer state changed: leading - discovery
//! 16:47:00.853 [LearnerHandler-/127.0.0.1:60006] INFO LearnerHandler - Follower sid: 2 : info : 127.0.0.1:31102:31202:participant;127.0.0.1:31002
//! 16:47:00.950 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] INFO Leader - Have quorum of supporters, sids: [[2, 3]]; starting up and setting last processed zxid: 0x100000000
//! 16:47:01.025 [QuorumPeer[myid=3](plain=127.0.0.1:31003)(secure=disabled)] INFO QuorumPeer - Peer state changed: leading - broadcast
//! ```
//!
//! With the FastLeaderElection logger at DEBUG (what the harness runs, see below), the
//! decision itself, right after "Peer state changed", and the rest of an election. Here
//! node 1 after its leader 3 was killed (2 takes over), then the observer 4 of another
//! ensemble, and the old leader 3 restarting and joining under leader 2:
//!
//! ```text
//! 16:55:44.398 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] WARN Learner - Exception when following the leader
//! 16:55:44.409 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] INFO QuorumPeer - Peer state changed: looking
//! 16:55:44.410 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] WARN QuorumPeer - PeerState set to LOOKING
//! 16:55:44.410 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] INFO QuorumPeer - LOOKING
//! 16:55:44.411 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] INFO FastLeaderElection - New election. My id = 1, proposed zxid=0x0
//! 16:55:44.411 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] DEBUG FastLeaderElection - Sending Notification: 1 (n.leader), 0x0 (n.zxid), 0x2 (n.round), 1 (recipient), 1 (myid), 0x1 (n.peerEpoch)
//! 16:55:44.413 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:LOOKING, n.leader:1, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:44.414 [WorkerReceiver[myid=1]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:2, n.state:LOOKING, n.leader:2, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:44.423 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] DEBUG FastLeaderElection - id: 2, proposed id: 1, zxid: 0x0, proposed zxid: 0x0
//! 16:55:44.424 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] DEBUG FastLeaderElection - Adding vote: from=2, proposed leader=2, proposed zxid=0x0, proposed election epoch=0x2
//! 16:55:44.630 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] INFO QuorumPeer - Peer state changed: following
//! 16:55:44.630 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] DEBUG FastLeaderElection - About to leave FLE instance: leader=2, zxid=0x0, my id=1, my state=FOLLOWING
//! 16:55:44.633 [QuorumPeer[myid=1](plain=127.0.0.1:40343)(secure=disabled)] INFO Learner - FOLLOWING - LEADER ELECTION TOOK - 223 MS
//!
//! 16:55:43.593 [QuorumPeer[myid=4](plain=127.0.0.1:46413)(secure=disabled)] INFO FastLeaderElection - New election. My id = 4, proposed zxid=0x8000000000000000
//! 16:55:43.948 [WorkerReceiver[myid=4]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:3, n.state:LEADING, n.leader:3, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:43.948 [WorkerReceiver[myid=4]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:FOLLOWING, n.leader:3, n.round:0x1, n.peerEpoch:0x0, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:43.951 [QuorumPeer[myid=4](plain=127.0.0.1:46413)(secure=disabled)] INFO QuorumPeer - Peer state changed: observing
//! 16:55:43.951 [QuorumPeer[myid=4](plain=127.0.0.1:46413)(secure=disabled)] DEBUG FastLeaderElection - About to leave FLE instance: leader=3, zxid=0x0, my id=4, my state=OBSERVING
//! 16:55:43.952 [QuorumPeer[myid=4](plain=127.0.0.1:46413)(secure=disabled)] INFO QuorumPeer - OBSERVING
//! 16:55:44.034 [QuorumPeer[myid=4](plain=127.0.0.1:46413)(secure=disabled)] INFO QuorumPeer - Peer state changed: observing - discovery
//! 16:55:44.035 [QuorumPeer[myid=4](plain=127.0.0.1:46413)(secure=disabled)] INFO Observer - Observing new leader sid=3 addr=/127.0.0.1:41235
//!
//! 16:55:45.394 [WorkerReceiver[myid=3]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:3, n.state:LOOKING, n.leader:3, n.round:0x2, n.peerEpoch:0x1, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:45.400 [WorkerReceiver[myid=3]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:1, n.state:FOLLOWING, n.leader:2, n.round:0x2, n.peerEpoch:0x2, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:45.402 [WorkerReceiver[myid=3]] INFO FastLeaderElection - Notification: my state:LOOKING; n.sid:2, n.state:LEADING, n.leader:2, n.round:0x2, n.peerEpoch:0x2, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:45.403 [QuorumPeer[myid=3](plain=127.0.0.1:38129)(secure=disabled)] INFO QuorumPeer - Peer state changed: following
//! 16:55:45.403 [QuorumPeer[myid=3](plain=127.0.0.1:38129)(secure=disabled)] DEBUG FastLeaderElection - About to leave FLE instance: leader=2, zxid=0x0, my id=3, my state=FOLLOWING
//! 16:55:45.407 [WorkerReceiver[myid=3]] INFO FastLeaderElection - Notification: my state:FOLLOWING; n.sid:2, n.state:LEADING, n.leader:2, n.round:0x2, n.peerEpoch:0x2, n.zxid:0x0, message format version:0x2, n.config version:0x0
//! 16:55:45.418 [QuorumPeer[myid=3](plain=127.0.0.1:38129)(secure=disabled)] INFO Learner - FOLLOWING - LEADER ELECTION TOOK - 61 MS
//! ```
//!
//! Notes on those lines (FastLeaderElection.java, QuorumPeer.java of 3.8.0):
//! * "Peer state changed: following|leading|observing" is logged by
//!   `QuorumPeer.setPeerState` at the moment FLE decides; the bare "FOLLOWING" /
//!   "LEADING" / "OBSERVING" line follows when the peer's main loop switches role.
//!   The first LOOKING after start-up logs only the bare "LOOKING" line; falling back
//!   from a role logs "Peer state changed: looking", "PeerState set to LOOKING" (WARN),
//!   "LOOKING". Notifications keep being logged while not LOOKING ("my state:FOLLOWING").
//! * An observer's initial vote is Long.MIN_VALUE (proposed zxid=0x8000000000000000,
//!   "Sending Notification: -9223372036854775808 (n.leader)"); voters do not log
//!   Notification lines for an observer's messages.
//! * "LEADER ELECTION TOOK" comes only once the Follower/Leader object exists (Zab);
//!   the logger is "Learner" for followers although the text is "FOLLOWING - ...".
//!   Observers log no such line but "Observing new leader sid=3 addr=...".
//! * At info level no line names the leader a follower chose, except the later
//!   "Successfully connected to leader, using address: /127.0.0.1:<quorum port>".
//!   FastLeaderElection logs the decision at DEBUG:
//!   "About to leave FLE instance: leader=3, zxid=0x0, my id=1, my state=FOLLOWING";
//!   the harness turns on DEBUG for that one logger ([`EnsembleSpec::fle_debug`], also
//!   for our peer, which logs the same line at debug) so the leader is exact. For a peer
//!   that logs at info only, the leader is inferred from the Notification lines; see
//!   [`ElectionOutcome::leader_source`].
//! * A peer's own vote goes through its receive queue, so its log has Notification lines
//!   with `n.sid:<myid>` showing its current proposal (not for observers: they send
//!   to voters only).
//!
//! Our server's lines have another prefix
//! (`2024-01-01 00:00:00,000 [myid:] - INFO  [thread:target] - message`); the parsers
//! here match the message text, so both renderings are accepted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

use super::{
    apache_main_command, four_letter_word, free_port, libc_kill, our_server_bin, ours_is_apache, require_apache,
    spawn_guarded, startup_timeout, wait_deadline, COMMON_CFG, LOOPBACK, SIGCONT, SIGSTOP, SIGTERM,
};

const QUORUM_PEER_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// slf4j-simple property that turns on DEBUG for FastLeaderElection only: it adds the
/// exact decision line "About to leave FLE instance: leader=L, ..." (and a few dozen
/// other lines per election, nothing afterwards).
const FLE_DEBUG_PROP: &str = "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.quorum.FastLeaderElection=debug";

/// Our peer's log filter with the same extra DEBUG logger as [`FLE_DEBUG_PROP`].
const OURS_FLE_DEBUG_LOG: &str = "info,zookeeper::server::quorum::fast_leader_election=debug";

/// How long a single four-letter-word exchange may take.
const FOUR_LW_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll interval of every wait.
const POLL: Duration = Duration::from_millis(50);

// ------------------------------------------------------------------ spec --

/// Which implementation runs a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Impl {
    Apache,
    Ours,
}

/// A voting member or an observer (`server.N=...:observer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerType {
    Participant,
    Observer,
}

/// One member of an [`EnsembleSpec`].
#[derive(Clone, Debug)]
pub struct MemberSpec {
    pub sid: u64,
    pub imp: Impl,
    pub peer_type: PeerType,
    /// zoo.cfg lines for this node only, appended after the ensemble's extra lines.
    pub extra_cfg: String,
    /// A server that joins later through `reconfig -add` (see [`MemberSpec::joiner`]).
    pub joiner: bool,
}

impl MemberSpec {
    pub fn participant(sid: u64, imp: Impl) -> MemberSpec {
        MemberSpec { sid, imp, peer_type: PeerType::Participant, extra_cfg: String::new(), joiner: false }
    }
    pub fn observer(sid: u64, imp: Impl) -> MemberSpec {
        MemberSpec { sid, imp, peer_type: PeerType::Observer, extra_cfg: String::new(), joiner: false }
    }
    /// A participant that is not in the ensemble's initial membership: the other nodes'
    /// zoo.cfg do not list it, its own lists the initial members plus itself as a
    /// participant (upstream's "adding servers", option 2: never more than one joiner
    /// per initial config). [`Ensemble::start_all`] leaves it out; start it with
    /// [`Ensemble::start_joiner`], then add it with `reconfig -add`
    /// ([`Ensemble::server_spec`] gives its `server.N=...` string).
    pub fn joiner(sid: u64, imp: Impl) -> MemberSpec {
        MemberSpec { sid, imp, peer_type: PeerType::Participant, extra_cfg: String::new(), joiner: true }
    }
    /// Adds zoo.cfg lines for this node only.
    pub fn cfg(mut self, lines: &str) -> MemberSpec {
        push_lines(&mut self.extra_cfg, lines);
        self
    }
}

/// What to run: members and the shared zoo.cfg settings.
#[derive(Clone, Debug)]
pub struct EnsembleSpec {
    pub members: Vec<MemberSpec>,
    /// tickTime in ms (2000, ZooKeeper's default, unless set).
    pub tick_time: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// zoo.cfg lines for every node, appended after the harness's lines (later wins).
    pub extra_cfg: String,
    /// `group.G=s1:s2:...` lines (QuorumHierarchical).
    pub groups: Vec<(u32, Vec<u64>)>,
    /// `weight.S=W` lines (QuorumHierarchical).
    pub weights: Vec<(u64, u32)>,
    /// DEBUG logging of the FastLeaderElection logger (default on): gives the exact
    /// "About to leave FLE instance: leader=..." decision line. Apache: one slf4j-simple
    /// property; ours: `RUST_LOG=info,zookeeper::server::quorum::fast_leader_election=debug`
    /// when the environment sets no log level.
    pub fle_debug: bool,
    /// Extra JVM arguments of Apache members (e.g. `-Dzookeeper.xyz=...`).
    pub apache_jvm_args: Vec<String>,
    /// Arguments of our `zk-server` before the zoo.cfg path.
    pub ours_args: Vec<String>,
    /// `reconfigEnabled=true` instead of the harness's `reconfigEnabled=false` (default
    /// off). With it on, servers rewrite their zoo.cfg (`dynamicConfigFile=...`) and
    /// write `zoo.cfg.dynamic.<version>` next to it; the harness writes zoo.cfg only
    /// when ports are assigned, so restarts run on what the servers wrote.
    pub reconfig_enabled: bool,
}

impl EnsembleSpec {
    pub fn new(members: Vec<MemberSpec>) -> EnsembleSpec {
        EnsembleSpec {
            members,
            tick_time: 2000,
            init_limit: 10,
            sync_limit: 5,
            extra_cfg: String::new(),
            groups: Vec::new(),
            weights: Vec::new(),
            fle_debug: true,
            apache_jvm_args: Vec::new(),
            ours_args: Vec::new(),
            reconfig_enabled: false,
        }
    }
    /// `n` Apache participants, sids 1..=n.
    pub fn apache(n: u64) -> EnsembleSpec {
        Self::new((1..=n).map(|sid| MemberSpec::participant(sid, Impl::Apache)).collect())
    }
    /// Participants with sids 1, 2, ... running the given implementations.
    pub fn of(imps: &[Impl]) -> EnsembleSpec {
        Self::new(imps.iter().enumerate().map(|(i, &imp)| MemberSpec::participant(i as u64 + 1, imp)).collect())
    }
    /// Adds an observer with the next free sid.
    pub fn with_observer(mut self, imp: Impl) -> EnsembleSpec {
        let sid = self.members.iter().map(|m| m.sid).max().unwrap_or(0) + 1;
        self.members.push(MemberSpec::observer(sid, imp));
        self
    }
    pub fn member(mut self, m: MemberSpec) -> EnsembleSpec {
        self.members.push(m);
        self
    }
    pub fn tick_time(mut self, ms: u32) -> EnsembleSpec {
        self.tick_time = ms;
        self
    }
    pub fn init_limit(mut self, ticks: u32) -> EnsembleSpec {
        self.init_limit = ticks;
        self
    }
    pub fn sync_limit(mut self, ticks: u32) -> EnsembleSpec {
        self.sync_limit = ticks;
        self
    }
    /// zoo.cfg lines for every node.
    pub fn cfg(mut self, lines: &str) -> EnsembleSpec {
        push_lines(&mut self.extra_cfg, lines);
        self
    }
    /// zoo.cfg lines for node `sid` only.
    pub fn node_cfg(mut self, sid: u64, lines: &str) -> EnsembleSpec {
        let m = self
            .members
            .iter_mut()
            .find(|m| m.sid == sid)
            .unwrap_or_else(|| panic!("node_cfg: no member with sid {sid}"));
        push_lines(&mut m.extra_cfg, lines);
        self
    }
    /// A `group.G=...` line (hierarchical quorums; every voter must be in a group).
    pub fn group(mut self, gid: u32, sids: &[u64]) -> EnsembleSpec {
        self.groups.push((gid, sids.to_vec()));
        self
    }
    /// A `weight.S=W` line (hierarchical quorums).
    pub fn weight(mut self, sid: u64, weight: u32) -> EnsembleSpec {
        self.weights.push((sid, weight));
        self
    }
    pub fn fle_debug(mut self, on: bool) -> EnsembleSpec {
        self.fle_debug = on;
        self
    }
    pub fn apache_jvm_arg(mut self, arg: &str) -> EnsembleSpec {
        self.apache_jvm_args.push(arg.to_string());
        self
    }
    pub fn ours_arg(mut self, arg: &str) -> EnsembleSpec {
        self.ours_args.push(arg.to_string());
        self
    }
    /// See [`EnsembleSpec::reconfig_enabled`](struct.EnsembleSpec.html#structfield.reconfig_enabled).
    pub fn reconfig_enabled(mut self, on: bool) -> EnsembleSpec {
        self.reconfig_enabled = on;
        self
    }
}

fn push_lines(buf: &mut String, lines: &str) {
    if lines.is_empty() {
        return;
    }
    buf.push_str(lines);
    if !lines.ends_with('\n') {
        buf.push('\n');
    }
}

// ----------------------------------------------------------------- modes --

/// What `srvr`/`stat` say in their `Mode:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    ReadOnly,
}

/// The `Mode:` of a `srvr`/`stat` answer; None for "This ZooKeeper instance is not
/// currently serving requests" (a peer in LOOKING state, or still syncing) or no answer.
pub fn parse_mode(srvr: &str) -> Option<Mode> {
    let m = srvr.lines().find_map(|l| l.strip_prefix("Mode: "))?;
    Some(match m.trim() {
        "leader" => Mode::Leader,
        "follower" => Mode::Follower,
        "observer" => Mode::Observer,
        "standalone" => Mode::Standalone,
        "read-only" => Mode::ReadOnly,
        _ => return None,
    })
}

/// The role a peer decided on in an election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Leading,
    Following,
    Observing,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s.to_ascii_lowercase().as_str() {
            "leading" => Some(Role::Leading),
            "following" => Some(Role::Following),
            "observing" => Some(Role::Observing),
            _ => None,
        }
    }
    /// The `srvr` mode a peer in this role shows once it serves.
    pub fn mode(self) -> Mode {
        match self {
            Role::Leading => Mode::Leader,
            Role::Following => Mode::Follower,
            Role::Observing => Mode::Observer,
        }
    }
}

// ------------------------------------------------------------ log parsing --

/// A FastLeaderElection "Notification:" line: a vote this peer received and decoded
/// (also its own vote, looped back). Numbers are as logged (hex fields parsed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// State of the logging peer when it decoded the message.
    pub my_state: String,
    pub sid: u64,
    pub state: String,
    pub leader: u64,
    pub round: u64,
    pub peer_epoch: u64,
    pub zxid: u64,
    pub version: u64,
    pub config_version: u64,
}

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("harness regex"))
}

fn notification_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(
        &R,
        r"Notification: my state:(\w+); n\.sid:(-?\d+), n\.state:(\w+), n\.leader:(-?\d+), n\.round:0x([0-9a-fA-F]+), n\.peerEpoch:0x([0-9a-fA-F]+), n\.zxid:0x([0-9a-fA-F]+), message format version:0x([0-9a-fA-F]+), n\.config version:0x([0-9a-fA-F]+)",
    )
}

/// Parses a "Notification: my state:...; n.sid:..., ..." line (any log prefix).
pub fn parse_notification(line: &str) -> Option<Notification> {
    let c = notification_re().captures(line)?;
    let dec = |i: usize| c[i].parse::<i64>().ok().map(|v| v as u64);
    let hex = |i: usize| u64::from_str_radix(&c[i], 16).ok();
    Some(Notification {
        my_state: c[1].to_string(),
        sid: dec(2)?,
        state: c[3].to_string(),
        leader: dec(4)?,
        round: hex(5)?,
        peer_epoch: hex(6)?,
        zxid: hex(7)?,
        version: hex(8)?,
        config_version: hex(9)?,
    })
}

/// Where [`ElectionOutcome::leader`] was read from, most exact first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderSource {
    /// The peer itself leads.
    SelfLeading,
    /// "About to leave FLE instance: leader=L, zxid=0x.., my id=M, my state=S" (Apache
    /// logs it at DEBUG; see [`EnsembleSpec::fle_debug`]).
    LeaveInstance,
    /// "Observing new leader sid=L addr=..." (observers).
    ObservingNewLeader,
    /// "Successfully connected to leader, using address: /127.0.0.1:Q", Q mapped to the
    /// sid whose quorum port it is.
    ConnectedToLeader,
    /// Inferred from the Notification lines before the decision: the later of the last
    /// LEADING notification's leader and the peer's own last vote; for an observer, the
    /// leader most peers vote for. A heuristic, good for a fresh election.
    Notifications,
}

impl LeaderSource {
    /// True when the source names the leader explicitly (no inference).
    pub fn is_exact(self) -> bool {
        !matches!(self, LeaderSource::Notifications)
    }
}

/// What a peer decided in one election, read from its log.
#[derive(Clone, Debug)]
pub struct ElectionOutcome {
    pub sid: u64,
    pub role: Role,
    pub leader: u64,
    pub leader_source: LeaderSource,
    /// N of "LEADING|FOLLOWING - LEADER ELECTION TOOK - N MS", if logged yet.
    pub election_took_ms: Option<u64>,
    /// The line the decision was recognized by.
    pub decision_line: String,
    /// Log offset just after the decision line: pass it to the next wait to see the
    /// next election of this peer.
    pub next_offset: u64,
    /// Notification lines decoded between the start offset and the decision.
    pub notifications: Vec<Notification>,
}

fn decision_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // "Peer state changed: following" (and "... - discovery" etc.), or the bare role line
    // that QuorumPeer.run logs ("... QuorumPeer - FOLLOWING"; ours "... - FOLLOWING").
    re(&R, r"(?:Peer state changed: (leading|following|observing)\b)|(?: - (LEADING|FOLLOWING|OBSERVING)\s*$)")
}
fn looking_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r" - LOOKING\s*$")
}
fn leave_instance_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"About to leave FLE instance: leader=(\d+), zxid=0x([0-9a-fA-F]+), my id=(\d+), my state=(\w+)")
}
fn election_took_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(LEADING|FOLLOWING|OBSERVING) - LEADER ELECTION TOOK - (\d+) MS")
}
fn observing_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"Observing new leader sid=(\d+)")
}
fn connected_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    // InetSocketAddress.toString(): "/127.0.0.1:31103" or "localhost/127.0.0.1:31103".
    re(&R, r"Successfully connected to leader, using address: (?:[^/\s]*/)?[^\s:/]+:(\d+)")
}

/// Splits `text` (read from byte `base` of a log) into complete lines with the offset
/// just past each; a trailing partial line (still being written) is left out.
fn complete_lines(text: &[u8], base: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            let line = String::from_utf8_lossy(&text[start..i]).trim_end_matches('\r').to_string();
            out.push((base + i as u64 + 1, line));
            start = i + 1;
        }
    }
    out
}

/// Reads the first election decision in a log excerpt.
///
/// `text` is the log from byte `base` on; `quorum_ports` maps quorum ports to sids
/// (for "Successfully connected to leader"). Returns None until a decision line and a
/// leader are both in the text. Only the first decision after `base` counts; leader
/// evidence is taken from the lines after it up to the next LOOKING line.
pub fn parse_election_outcome(text: &[u8], base: u64, sid: u64, quorum_ports: &HashMap<u16, u64>) -> Option<ElectionOutcome> {
    let lines = complete_lines(text, base);
    let mut notes: Vec<(usize, Notification)> = Vec::new();
    let mut decision: Option<(usize, Role)> = None;
    for (i, (_, l)) in lines.iter().enumerate() {
        if let Some(n) = parse_notification(l) {
            notes.push((i, n));
            continue;
        }
        if let Some(c) = decision_re().captures(l) {
            let r = c.get(1).or_else(|| c.get(2)).and_then(|m| Role::parse(m.as_str()));
            if let Some(r) = r {
                decision = Some((i, r));
                break;
            }
        }
        if let Some(c) = leave_instance_re().captures(l) {
            if let Some(r) = Role::parse(&c[4]) {
                decision = Some((i, r));
                break;
            }
        }
    }
    let (di, role) = decision?;
    let mut leader: Option<(u64, LeaderSource)> = None;
    let mut took = None;
    let better = |cand: (u64, LeaderSource), cur: &mut Option<(u64, LeaderSource)>| {
        // Keep the most exact source (enum order = preference).
        let rank = |s: LeaderSource| s as u8;
        if cur.map_or(true, |(_, s)| rank(cand.1) < rank(s)) {
            *cur = Some(cand);
        }
    };
    if role == Role::Leading {
        better((sid, LeaderSource::SelfLeading), &mut leader);
    }
    for (j, (_, l)) in lines.iter().enumerate().skip(di) {
        if j > di && looking_re().is_match(l) {
            break;
        }
        if let Some(c) = leave_instance_re().captures(l) {
            if let Ok(v) = c[1].parse() {
                better((v, LeaderSource::LeaveInstance), &mut leader);
            }
        } else if let Some(c) = observing_re().captures(l) {
            if let Ok(v) = c[1].parse() {
                better((v, LeaderSource::ObservingNewLeader), &mut leader);
            }
        } else if let Some(c) = connected_re().captures(l) {
            if let Some(&v) = c[1].parse::<u16>().ok().and_then(|p| quorum_ports.get(&p)) {
                better((v, LeaderSource::ConnectedToLeader), &mut leader);
            }
        } else if let Some(c) = election_took_re().captures(l) {
            took = took.or(c[2].parse().ok());
        }
    }
    if leader.is_none() {
        if let Some(v) = infer_leader(&notes, sid) {
            leader = Some((v, LeaderSource::Notifications));
        }
    }
    let (leader, leader_source) = leader?;
    Some(ElectionOutcome {
        sid,
        role,
        leader,
        leader_source,
        election_took_ms: took,
        decision_line: lines[di].1.clone(),
        next_offset: lines[di].0,
        notifications: notes.into_iter().map(|(_, n)| n).collect(),
    })
}

/// The leader a peer most likely chose, from the Notification lines it logged before
/// deciding (see [`LeaderSource::Notifications`]). FLE follows an established leader
/// only after that leader's own LEADING notification (checkLeader), and otherwise
/// decides on its own proposal, which its looped-back vote shows.
fn infer_leader(notes: &[(usize, Notification)], sid: u64) -> Option<u64> {
    let leading = notes.iter().rev().find(|(_, n)| n.state == "LEADING");
    let own = notes.iter().rev().find(|(_, n)| n.sid == sid && n.state == "LOOKING");
    match (leading, own) {
        (Some((i, l)), Some((j, o))) => Some(if i > j { l.leader } else { o.leader }),
        (Some((_, l)), None) => Some(l.leader),
        (None, Some((_, o))) => Some(o.leader),
        (None, None) => {
            // An observer's own vote is not looped back: take the latest vote of each
            // voter and the leader most of them name.
            let mut latest: BTreeMap<u64, u64> = BTreeMap::new();
            for (_, n) in notes.iter().filter(|(_, n)| n.state == "LOOKING" || n.state == "FOLLOWING") {
                latest.insert(n.sid, n.leader);
            }
            let mut count: BTreeMap<u64, usize> = BTreeMap::new();
            for l in latest.values() {
                *count.entry(*l).or_default() += 1;
            }
            count.into_iter().max_by_key(|(l, c)| (*c, *l)).map(|(l, _)| l)
        }
    }
}

/// A pattern for [`Node::wait_for_log`]: a plain substring (`"LEADING"`) or a regex
/// (`Regex::new(r"ELECTION TOOK - \d+ MS")`).
#[derive(Clone, Debug)]
pub enum LogPattern {
    Substring(String),
    Regex(Regex),
}

impl LogPattern {
    pub fn matches(&self, line: &str) -> bool {
        match self {
            LogPattern::Substring(s) => line.contains(s.as_str()),
            LogPattern::Regex(r) => r.is_match(line),
        }
    }
}
impl From<&str> for LogPattern {
    fn from(s: &str) -> Self {
        LogPattern::Substring(s.to_string())
    }
}
impl From<String> for LogPattern {
    fn from(s: String) -> Self {
        LogPattern::Substring(s)
    }
}
impl From<Regex> for LogPattern {
    fn from(r: Regex) -> Self {
        LogPattern::Regex(r)
    }
}
impl From<&Regex> for LogPattern {
    fn from(r: &Regex) -> Self {
        LogPattern::Regex(r.clone())
    }
}
impl std::fmt::Display for LogPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogPattern::Substring(s) => write!(f, "{s:?}"),
            LogPattern::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// A line found by [`Node::wait_for_log`].
#[derive(Clone, Debug)]
pub struct LogMatch {
    pub line: String,
    /// Offset just past the line: where to look for the next occurrence.
    pub next_offset: u64,
}

// ----------------------------------------------------------------- /proc --

fn proc_alive(pid: u32) -> bool {
    // A process that exited but is not reaped yet is a zombie ('Z'): not running.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(')').map_or(false, |(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Inodes of the sockets process `pid` holds.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let mut out = HashSet::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                let t = t.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    if let Ok(n) = n.parse() {
                        out.insert(n);
                    }
                }
            }
        }
    }
    out
}

/// TCP ports process `pid` listens on (from /proc/net/tcp{,6}, matched by socket
/// inode), so a test never probes an election port with a stray connection.
fn listening_ports(pid: u32) -> HashSet<u16> {
    let mine = socket_inodes(pid);
    let mut out = HashSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(s) = fs::read_to_string(f) else { continue };
        for l in s.lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if cols.len() < 10 || cols[3] != "0A" {
                continue;
            }
            let port = cols[1].rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let inode = cols[9].parse::<u64>().ok();
            if let (Some(port), Some(inode)) = (port, inode) {
                if mine.contains(&inode) {
                    out.insert(port);
                }
            }
        }
    }
    out
}

/// Log lines without Java stack frames, for failure messages.
fn tail_of(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| !l.starts_with("\tat ") && !(l.starts_with("\t... ") && l.ends_with(" more")))
        .collect();
    let from = lines.len().saturating_sub(n);
    let mut s = lines[from..].join("\n");
    s.push('\n');
    s
}

// ------------------------------------------------------------------ node --

/// One member of an [`Ensemble`]: its ports, files and process.
pub struct Node {
    sid: u64,
    imp: Impl,
    peer_type: PeerType,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    dir: PathBuf,
    cfg_path: PathBuf,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// Quorum port -> sid of every member (for "Successfully connected to leader").
    quorum_ports: HashMap<u16, u64>,
    jvm_args: Vec<String>,
    ours_args: Vec<String>,
    fle_debug: bool,
    child: Option<Child>,
    spawns: u32,
    start_offset: u64,
    last_command: String,
    /// See [`MemberSpec::joiner`].
    joiner: bool,
}

impl Node {
    pub fn sid(&self) -> u64 {
        self.sid
    }
    /// The implementation actually run (Apache for `Impl::Ours` under `ZKRS_TEST_OURS=apache`).
    pub fn imp(&self) -> Impl {
        self.imp
    }
    pub fn peer_type(&self) -> PeerType {
        self.peer_type
    }
    /// A [`MemberSpec::joiner`]: not in the initial membership.
    pub fn is_joiner(&self) -> bool {
        self.joiner
    }
    pub fn client_port(&self) -> u16 {
        self.client_port
    }
    pub fn quorum_port(&self) -> u16 {
        self.quorum_port
    }
    pub fn election_port(&self) -> u16 {
        self.election_port
    }
    /// `127.0.0.1:CLIENT_PORT`.
    pub fn connect_string(&self) -> String {
        format!("{LOOPBACK}:{}", self.client_port)
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn cfg_path(&self) -> &Path {
        &self.cfg_path
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    /// How many times the process was started.
    pub fn spawns(&self) -> u32 {
        self.spawns
    }
    /// The command line of the last start.
    pub fn last_command(&self) -> &str {
        &self.last_command
    }

    /// True while the process runs (reaps it when it has exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
    /// Like [`is_running`](Self::is_running) without `&mut` (reads /proc; a zombie is not running).
    pub fn alive(&self) -> bool {
        self.pid().map_or(false, proc_alive)
    }
    /// The exit status if the process has exited (reaping it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    fn mark(&self, what: &str) {
        // Harness lines in the node's log make a failing test's log readable.
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&self.log_path) {
            let _ = writeln!(f, "[harness] {what}");
        }
    }

    fn command(&self) -> Command {
        match self.imp {
            Impl::Apache => {
                let args: Vec<&str> = self.jvm_args.iter().map(String::as_str).collect();
                apache_main_command(QUORUM_PEER_MAIN, &self.cfg_path, &self.dir, &args)
            }
            Impl::Ours => {
                let mut cmd = Command::new(our_server_bin());
                if ["RUST_LOG", "ZOO_LOG_LEVEL", "ZOO_LOG"].iter().all(|v| std::env::var_os(v).is_none()) {
                    cmd.env("RUST_LOG", if self.fle_debug { OURS_FLE_DEBUG_LOG } else { "info" });
                }
                cmd.env("RUST_BACKTRACE", "1");
                cmd.args(&self.ours_args).arg(&self.cfg_path);
                cmd
            }
        }
    }

    /// Starts the process on this node's zoo.cfg and dataDir without waiting for
    /// anything. Panics if it is running already.
    pub fn spawn(&mut self) {
        assert!(!self.is_running(), "node {} is already running (pid {:?})", self.sid, self.pid());
        self.child = None;
        if self.imp == Impl::Apache {
            require_apache();
        }
        self.spawns += 1;
        self.mark(&format!("start #{} of node {} ({:?} {:?})", self.spawns, self.sid, self.imp, self.peer_type));
        self.start_offset = self.log_offset();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log_path.display()));
        let mut cmd = self.command();
        cmd.current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log file"))
            .stderr(log);
        self.last_command = format!("{cmd:?}");
        let child = spawn_guarded(cmd).unwrap_or_else(|e| panic!("cannot start node {}: {}: {e}", self.sid, self.last_command));
        self.mark(&format!("node {} pid {}", self.sid, child.id()));
        self.child = Some(child);
    }

    /// [`spawn`](Self::spawn), then waits until the process listens on its client and
    /// election ports (or exits: see [`is_running`](Self::is_running)). Panics with the
    /// log if it neither listens nor exits within the start-up timeout, or if a port was
    /// taken.
    pub fn start(&mut self) {
        self.spawn();
        if let Err(e) = self.wait_listening(startup_timeout()) {
            panic!("node {} did not start: {e}\n{}", self.sid, self.describe_tail(80));
        }
    }

    /// Kills a running process (SIGKILL) and starts it again on the same dataDir.
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// Waits until the process listens on its election port and, for Apache, on its
    /// client port (Apache binds both at start-up, before the election; our peer is only
    /// required to have its election port, so that an election-only build can be tested).
    /// Ok(true): listening; Ok(false): the process exited; Err: timeout, or "port taken"
    /// when the log says "Address already in use".
    pub fn wait_listening(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let mut want = vec![self.election_port];
        if self.imp == Impl::Apache {
            want.push(self.client_port);
        }
        loop {
            let Some(pid) = self.pid() else { return Ok(false) };
            let ports = listening_ports(pid);
            if want.iter().all(|p| ports.contains(p)) {
                return Ok(true);
            }
            let exited = !self.is_running();
            let log = self.log_since(self.start_offset);
            if log.contains("Address already in use") || log.contains("AddrInUse") || log.contains("address already in use") {
                return Err(format!("port taken (client {}, election {})", self.client_port, self.election_port));
            }
            if exited {
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(format!("not listening on {want:?} after {timeout:?} (listening: {ports:?})"));
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until the peer runs its first election since its last start (it logged
    /// "New election. My id = N"), so that its vote goes out to peers started after it.
    /// Panics with the log tail after `timeout` or if the process exits.
    pub fn wait_electing(&self, timeout: Duration) -> LogMatch {
        self.wait_for_log(format!("New election. My id = {}, ", self.sid), self.start_offset, timeout)
    }

    /// SIGSTOP: the process is frozen (its sockets stay open; the kernel keeps
    /// accepting bytes into their buffers). [`resume`](Self::resume) undoes it; `kill`
    /// works on a stopped process.
    /// Returns once every thread of the process is stopped (a signal only takes effect
    /// when each thread next enters the kernel; a busy thread may run on briefly).
    pub fn suspend(&self) {
        self.signal(SIGSTOP, "SIGSTOP");
        let pid = self.pid().expect("running");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let states: Vec<char> = fs::read_dir(format!("/proc/{pid}/task"))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
                        .filter_map(|st| st.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
                        .collect()
                })
                .unwrap_or_default();
            if !states.is_empty() && states.iter().all(|&c| c == 'T' || c == 't') {
                return;
            }
            assert!(Instant::now() < deadline, "node {}: threads not stopped 10 s after SIGSTOP: {states:?}", self.sid);
            thread::sleep(Duration::from_millis(5));
        }
    }
    /// SIGCONT after [`suspend`](Self::suspend).
    pub fn resume(&self) {
        self.signal(SIGCONT, "SIGCONT");
    }
    fn signal(&self, sig: i32, name: &str) {
        let pid = self.pid().unwrap_or_else(|| panic!("node {} is not running: cannot send {name}", self.sid));
        let rc = unsafe { libc_kill(pid as i32, sig) };
        assert_eq!(rc, 0, "kill({pid}, {name}) failed");
        self.mark(&format!("sent {name} to node {} (pid {pid})", self.sid));
    }
    /// Runs another implementation on this node's zoo.cfg, dataDir and myid from the next
    /// start on (rolling replacement). Panics while the process runs.
    pub fn set_impl(&mut self, imp: Impl) {
        assert!(!self.is_running(), "node {}: set_impl while running", self.sid);
        self.mark(&format!("node {} switches to {imp:?}", self.sid));
        self.imp = imp;
    }

    /// SIGKILL (kill -9) and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id();
            let _ = c.kill();
            let st = c.wait();
            self.mark(&format!("killed node {} (pid {pid}) with SIGKILL: {st:?}", self.sid));
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit (SIGKILL after that). The exit
    /// status, or None if it had to be killed or was not running. (Apache's JVM exits
    /// at once with 143 and takes no snapshot.)
    pub fn stop(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let pid = c.id();
        unsafe {
            libc_kill(pid as i32, SIGTERM);
        }
        let (st, killed) = wait_deadline(&mut c, Instant::now() + timeout);
        self.mark(&format!("stopped node {} (pid {pid}) with SIGTERM: {st}{}", self.sid, if killed { " (SIGKILL after timeout)" } else { "" }));
        if killed {
            None
        } else {
            Some(st)
        }
    }

    // ---- logs

    /// Current size of the log: pass it to the waits to see only what comes after.
    pub fn log_offset(&self) -> u64 {
        fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0)
    }
    /// Log offset at the last start (just after the harness's start line).
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }
    fn log_bytes_since(&self, offset: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        if let Ok(mut f) = fs::File::open(&self.log_path) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = f.read_to_end(&mut buf);
            }
        }
        buf
    }
    /// The log from `offset` on.
    pub fn log_since(&self, offset: u64) -> String {
        String::from_utf8_lossy(&self.log_bytes_since(offset)).into_owned()
    }
    /// The whole log (every run of this node).
    pub fn log_contents(&self) -> String {
        self.log_since(0)
    }
    /// The last `n` lines of the log, Java stack frames left out.
    pub fn log_tail(&self, n: usize) -> String {
        tail_of(&self.log_contents(), n)
    }
    fn describe_tail(&self, n: usize) -> String {
        format!(
            "--- node {} ({:?} {:?}, client {} quorum {} election {}, {}) last lines of {} ---\n{}--- end of node {} ---",
            self.sid,
            self.imp,
            self.peer_type,
            self.client_port,
            self.quorum_port,
            self.election_port,
            match self.pid() {
                Some(p) if proc_alive(p) => format!("pid {p} running"),
                Some(p) => format!("pid {p} exited"),
                None => "not running".into(),
            },
            self.log_path.display(),
            match self.log_tail(n) {
                t if t.trim().is_empty() => "(empty log: never started)\n".to_string(),
                t => t,
            },
            self.sid
        )
    }

    /// The first complete log line after `from` that matches, or None (no waiting).
    pub fn find_log(&self, pat: impl Into<LogPattern>, from: u64) -> Option<LogMatch> {
        let pat = pat.into();
        complete_lines(&self.log_bytes_since(from), from)
            .into_iter()
            .find(|(_, l)| pat.matches(l))
            .map(|(next_offset, line)| LogMatch { line, next_offset })
    }

    /// Waits for the first complete log line after byte `from` that matches `pat` (a
    /// substring, or a `Regex`). Panics with the log tail after `timeout`, or soon after
    /// the process exited without logging it.
    pub fn wait_for_log(&self, pat: impl Into<LogPattern>, from: u64, timeout: Duration) -> LogMatch {
        let pat = pat.into();
        let deadline = Instant::now() + timeout;
        loop {
            // Check liveness before reading, so that a line logged just before exiting counts.
            let alive = self.alive();
            if let Some(m) = self.find_log(pat.clone(), from) {
                return m;
            }
            if !alive {
                panic!("node {} is not running and its log has no line matching {pat} after offset {from}\n{}", self.sid, self.describe_tail(80));
            }
            if Instant::now() >= deadline {
                panic!("node {}: no log line matching {pat} after offset {from} within {timeout:?}\n{}", self.sid, self.describe_tail(80));
            }
            thread::sleep(POLL);
        }
    }

    /// The Notification lines logged after `from`.
    pub fn notifications_since(&self, from: u64) -> Vec<Notification> {
        complete_lines(&self.log_bytes_since(from), from).iter().filter_map(|(_, l)| parse_notification(l)).collect()
    }

    /// The first election decision logged after `from`, if any yet (no waiting).
    pub fn election_outcome_since(&self, from: u64) -> Option<ElectionOutcome> {
        parse_election_outcome(&self.log_bytes_since(from), from, self.sid, &self.quorum_ports)
    }

    /// Waits for the first election decision after `from` (see
    /// [`Ensemble::wait_for_election_outcome_from`]); panics with the log tail.
    pub fn wait_for_election_outcome(&self, from: u64, timeout: Duration) -> ElectionOutcome {
        self.try_wait_for_election_outcome(from, timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`wait_for_election_outcome`](Self::wait_for_election_outcome); Err(message
    /// with the log tail) instead of a panic.
    pub fn try_wait_for_election_outcome(&self, from: u64, timeout: Duration) -> Result<ElectionOutcome, String> {
        let deadline = Instant::now() + timeout;
        // Once a decision is seen, wait a little for exact leader evidence and for
        // "LEADER ELECTION TOOK", which follow within ~100 ms on Apache.
        let grace = Duration::from_millis(1500);
        let mut first_seen: Option<Instant> = None;
        loop {
            let alive = self.alive();
            if let Some(o) = self.election_outcome_since(from) {
                let seen = *first_seen.get_or_insert_with(Instant::now);
                let complete = o.leader_source.is_exact() && (o.election_took_ms.is_some() || o.role == Role::Observing);
                if complete || seen.elapsed() >= grace || Instant::now() >= deadline || !alive {
                    return Ok(o);
                }
            } else if !alive {
                return Err(format!(
                    "node {} is not running and logged no election decision after offset {from}\n{}",
                    self.sid,
                    self.describe_tail(80)
                ));
            } else if Instant::now() >= deadline {
                return Err(format!(
                    "node {}: no election decision logged after offset {from} within {timeout:?}\n{}",
                    self.sid,
                    self.describe_tail(80)
                ));
            }
            thread::sleep(POLL);
        }
    }

    // ---- four-letter words

    /// The answer to a four-letter word, or "" when nothing answers (5 s limit).
    pub fn four_letter(&self, word: &str) -> String {
        self.four_letter_result(word).unwrap_or_default()
    }
    pub fn four_letter_result(&self, word: &str) -> io::Result<String> {
        four_letter_word(&self.connect_string(), word, FOUR_LW_TIMEOUT)
    }
    /// The `Mode:` of `srvr`; None when not serving (or not answering).
    pub fn mode(&self) -> Option<Mode> {
        parse_mode(&self.four_letter("srvr"))
    }
    /// Waits until `srvr` shows a Mode; panics with the log tail after `timeout`.
    pub fn wait_for_mode(&self, timeout: Duration) -> Mode {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.mode() {
                return m;
            }
            if !self.alive() {
                panic!("node {} exited while waiting for a Mode\n{}", self.sid, self.describe_tail(80));
            }
            if Instant::now() >= deadline {
                panic!(
                    "node {}: no Mode in `srvr` within {timeout:?} (last answer {:?})\n{}",
                    self.sid,
                    self.four_letter("srvr"),
                    self.describe_tail(80)
                );
            }
            thread::sleep(POLL);
        }
    }

    // ---- process accounting (Linux /proc)

    fn running_pid(&self, what: &str) -> u32 {
        match self.pid() {
            Some(p) if proc_alive(p) => p,
            _ => panic!("{what}: node {} is not running", self.sid),
        }
    }
    /// Number of threads (/proc/PID/task entries).
    pub fn thread_count(&self) -> usize {
        let pid = self.running_pid("thread_count");
        fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"))
    }
    /// Number of open file descriptors.
    pub fn fd_count(&self) -> usize {
        let pid = self.running_pid("fd_count");
        fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
    }
    /// Number of file descriptors that are sockets (TCP listeners and connections, and
    /// whatever else the runtime opens, e.g. the JVM's).
    pub fn socket_count(&self) -> usize {
        socket_inodes(self.running_pid("socket_count")).len()
    }
    /// Resident set size in KiB (VmRSS).
    pub fn rss_kb(&self) -> u64 {
        let pid = self.running_pid("rss_kb");
        let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
    }
    /// Thread name (as /proc shows it: 15 bytes at most) -> how many threads have it.
    pub fn thread_names(&self) -> BTreeMap<String, usize> {
        thread_names(self.running_pid("thread_names"))
    }
    /// TCP ports the process listens on.
    pub fn listening_ports(&self) -> HashSet<u16> {
        listening_ports(self.running_pid("listening_ports"))
    }
}

/// Thread name (`/proc/PID/task/*/comm`: 15 bytes at most, so `LearnerHandler-/127...`
/// shows as `LearnerHandler-`) -> number of threads of process `pid` with that name.
pub fn thread_names(pid: u32) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            if let Ok(c) = fs::read_to_string(e.path().join("comm")) {
                *out.entry(c.trim().to_string()).or_default() += 1;
            }
        }
    }
    out
}

// -------------------------------------------------------------- ensemble --

/// A running (or ready-to-run) ensemble. Dropping it kills every node.
pub struct Ensemble {
    spec: EnsembleSpec,
    dir: Option<tempfile::TempDir>,
    nodes: Vec<Node>,
}

impl Ensemble {
    /// Writes every node's files (ports allocated, nothing started).
    pub fn new(spec: EnsembleSpec) -> Ensemble {
        let mut seen = HashSet::new();
        for m in &spec.members {
            assert!(seen.insert(m.sid), "duplicate sid {} in the ensemble spec", m.sid);
        }
        assert!(!spec.members.is_empty(), "an ensemble needs members");
        let dir = tempfile::Builder::new().prefix("zk-ens-").tempdir().expect("create ensemble tempdir");
        let swap = ours_is_apache();
        if swap && spec.members.iter().any(|m| m.imp == Impl::Ours) {
            eprintln!("[harness] ZKRS_TEST_OURS=apache: Apache runs the Impl::Ours members");
        }
        let mut members = spec.members.clone();
        members.sort_by_key(|m| m.sid);
        let nodes = members
            .iter()
            .map(|m| {
                let nd = dir.path().join(format!("node{}", m.sid));
                let data_dir = nd.join("data");
                fs::create_dir_all(&data_dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", data_dir.display()));
                fs::write(data_dir.join("myid"), format!("{}\n", m.sid)).expect("write myid");
                let mut jvm_args = spec.apache_jvm_args.clone();
                if spec.fle_debug {
                    jvm_args.push(FLE_DEBUG_PROP.to_string());
                }
                Node {
                    sid: m.sid,
                    imp: if swap { Impl::Apache } else { m.imp },
                    peer_type: m.peer_type,
                    client_port: 0,
                    quorum_port: 0,
                    election_port: 0,
                    cfg_path: nd.join("zoo.cfg"),
                    log_path: nd.join("server.log"),
                    data_dir,
                    dir: nd,
                    quorum_ports: HashMap::new(),
                    jvm_args,
                    ours_args: spec.ours_args.clone(),
                    fle_debug: spec.fle_debug,
                    child: None,
                    spawns: 0,
                    start_offset: 0,
                    last_command: String::new(),
                    joiner: m.joiner,
                }
            })
            .collect();
        let mut e = Ensemble { spec, dir: Some(dir), nodes };
        e.assign_ports();
        e
    }

    /// [`new`](Self::new) + [`start_all`](Self::start_all).
    pub fn start(spec: EnsembleSpec) -> Ensemble {
        let mut e = Self::new(spec);
        e.start_all();
        e
    }

    /// Fresh loopback ports for every node, and every zoo.cfg (re)written with them.
    fn assign_ports(&mut self) {
        for n in &mut self.nodes {
            n.client_port = free_port();
            n.quorum_port = free_port();
            n.election_port = free_port();
        }
        let qp: HashMap<u16, u64> = self.nodes.iter().map(|n| (n.quorum_port, n.sid)).collect();
        for i in 0..self.nodes.len() {
            let cfg = self.cfg_text(&self.nodes[i]);
            let n = &mut self.nodes[i];
            fs::write(&n.cfg_path, cfg).unwrap_or_else(|e| panic!("write {}: {e}", n.cfg_path.display()));
            n.quorum_ports = qp.clone();
        }
    }

    /// The `server.N=127.0.0.1:Q:E[:observer];127.0.0.1:C` lines, the same on every node;
    /// the `;client` part lets every node (and `conf`) know every client port.
    /// [Joiners](MemberSpec::joiner) are left out (a joiner's own zoo.cfg adds its line).
    pub fn server_lines(&self) -> String {
        self.nodes.iter().filter(|n| !n.joiner).map(Self::server_line).collect()
    }

    fn server_line(n: &Node) -> String {
        format!(
            "server.{}={LOOPBACK}:{}:{}{};{LOOPBACK}:{}\n",
            n.sid,
            n.quorum_port,
            n.election_port,
            if n.peer_type == PeerType::Observer { ":observer" } else { "" },
            n.client_port
        )
    }

    /// `server.N=127.0.0.1:Q:E:participant|observer;127.0.0.1:C` of node `sid` with the
    /// given role: an argument of `reconfig -add` (the role is explicit, as upstream
    /// prints it in `/zookeeper/config`).
    pub fn server_spec(&self, sid: u64, role: PeerType) -> String {
        let n = self.node(sid);
        format!(
            "server.{sid}={LOOPBACK}:{}:{}:{};{LOOPBACK}:{}",
            n.quorum_port,
            n.election_port,
            if role == PeerType::Observer { "observer" } else { "participant" },
            n.client_port
        )
    }

    /// Starts a [joiner](MemberSpec::joiner) (its zoo.cfg: the initial members plus
    /// itself) and waits until it listens; panics with its log if it does not, or if it
    /// exits during start-up.
    pub fn start_joiner(&mut self, sid: u64) {
        assert!(self.node(sid).joiner, "start_joiner: node {sid} is not a joiner");
        let n = self.node_mut(sid);
        n.start();
        if !n.is_running() {
            let st = n.exit_status();
            panic!("joiner {sid} exited during start-up: {st:?}\n{}", self.describe_all(60));
        }
    }

    fn cfg_text(&self, n: &Node) -> String {
        let s = &self.spec;
        let mut c = format!(
            "# Written by the zookeeper-rs ensemble harness (tests/common/ensemble.rs).\n\
             tickTime={}\n\
             initLimit={}\n\
             syncLimit={}\n\
             dataDir={}\n\
             clientPort={}\n\
             clientPortAddress={LOOPBACK}\n\
             {COMMON_CFG}\
             # A member never falls back to standalone mode when it is alone in the config.\n\
             standaloneEnabled=false\n\
             {}",
            s.tick_time,
            s.init_limit,
            s.sync_limit,
            n.data_dir.display(),
            n.client_port,
            if s.reconfig_enabled {
                "# Dynamic reconfiguration: the servers rewrite this file (dynamicConfigFile=...).\nreconfigEnabled=true\n"
            } else {
                "# Static membership: no dynamic config file, no reconfig.\nreconfigEnabled=false\n"
            },
        );
        if n.peer_type == PeerType::Observer {
            // Apache takes the type from the server list anyway, but warns without this.
            c.push_str("peerType=observer\n");
        }
        c.push_str(&self.server_lines());
        if n.joiner {
            c.push_str("# this node joins later (reconfig -add): the others do not list it\n");
            c.push_str(&Self::server_line(n));
        }
        for (gid, sids) in &s.groups {
            let list: Vec<String> = sids.iter().map(u64::to_string).collect();
            c.push_str(&format!("group.{gid}={}\n", list.join(":")));
        }
        for (sid, w) in &s.weights {
            c.push_str(&format!("weight.{sid}={w}\n"));
        }
        if !s.extra_cfg.is_empty() {
            c.push_str("# extra lines of this test:\n");
            c.push_str(&s.extra_cfg);
        }
        if let Some(m) = s.members.iter().find(|m| m.sid == n.sid) {
            if !m.extra_cfg.is_empty() {
                c.push_str(&format!("# extra lines for node {}:\n", n.sid));
                c.push_str(&m.extra_cfg);
            }
        }
        c
    }

    /// Starts every node that is not running and waits until each listens (see
    /// [`Node::wait_listening`]; an `Impl::Ours` node may also exit, e.g. refusing quorum
    /// mode — the test sees it with `is_running`; an Apache node that exits panics).
    ///
    /// The participant with the highest sid starts first, the others once it listens
    /// and runs its election ([`Node::wait_electing`]):
    /// FLE prefers the highest (epoch, zxid, sid), but two peers that find each other
    /// before the third is up form a quorum of their own after finalizeWait (200 ms). With
    /// the highest sid up first, an ensemble on empty data always elects it, even on a
    /// loaded machine where JVM start-up times vary by seconds.
    ///
    /// If a port was taken by another process meanwhile, every node is stopped, given
    /// new ports and started again (at most 3 attempts).
    ///
    /// [Joiners](MemberSpec::joiner) are not started (see [`start_joiner`](Self::start_joiner)).
    pub fn start_all(&mut self) {
        let sids: Vec<u64> = self.nodes.iter().filter(|n| !n.joiner).map(|n| n.sid).collect();
        self.start_nodes(&sids);
    }

    /// Like [`start_all`](Self::start_all) for some sids (e.g. only the Apache ones).
    pub fn start_nodes(&mut self, sids: &[u64]) {
        self.start_waves(sids);
    }

    fn start_waves(&mut self, sids: &[u64]) {
        let first = sids.iter().copied().filter(|&s| self.node(s).peer_type == PeerType::Participant).max();
        let waves: Vec<Vec<u64>> = match first {
            Some(f) if sids.len() > 1 => vec![vec![f], sids.iter().copied().filter(|&s| s != f).collect()],
            _ => vec![sids.to_vec()],
        };
        for attempt in 1..=3 {
            let mut port_taken = false;
            for (wi, wave) in waves.iter().enumerate() {
                for &sid in wave {
                    if !self.node_mut(sid).is_running() {
                        self.node_mut(sid).spawn();
                    }
                }
                for &sid in wave {
                    let n = self.node_mut(sid);
                    let imp = n.imp;
                    match n.wait_listening(startup_timeout()) {
                        Ok(true) => {}
                        Ok(false) if imp == Impl::Ours => {
                            let st = n.exit_status();
                            eprintln!("[harness] node {sid} (ours) exited during start-up: {st:?}");
                        }
                        Ok(false) => panic!("Apache node {sid} exited during start-up\n{}", self.describe_all(60)),
                        Err(e) if e.starts_with("port taken") => port_taken = true,
                        Err(e) => panic!("node {sid} did not start: {e}\n{}", self.describe_all(60)),
                    }
                }
                if port_taken {
                    break;
                }
                if wi == 0 && waves.len() > 1 {
                    // Listening is not electing: a JVM binds its election port a few
                    // hundred ms before its QuorumPeer thread starts FLE, and our peers
                    // start in milliseconds; two of them would elect each other within
                    // finalizeWait before the first wave votes.
                    for &sid in wave {
                        let n = self.node(sid);
                        if n.peer_type == PeerType::Participant && n.alive() {
                            n.wait_electing(startup_timeout());
                        }
                    }
                }
            }
            if !port_taken {
                return;
            }
            eprintln!("[harness] a port of the ensemble was taken (attempt {attempt}); new ports for every node");
            let running: Vec<u64> = self.nodes.iter_mut().filter_map(|n| n.is_running().then_some(n.sid)).collect();
            for n in &mut self.nodes {
                n.kill();
            }
            self.assign_ports();
            // Nodes outside `sids` that were running know the old ports: restart them too.
            for sid in running {
                if !sids.contains(&sid) {
                    self.node_mut(sid).spawn();
                }
            }
        }
        panic!("ensemble: ports kept being taken after 3 attempts\n{}", self.describe_all(40));
    }

    pub fn spec(&self) -> &EnsembleSpec {
        &self.spec
    }
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map(|d| d.path()).expect("ensemble dir")
    }
    /// Sids in ascending order.
    pub fn sids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.sid).collect()
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn node(&self, sid: u64) -> &Node {
        self.nodes.iter().find(|n| n.sid == sid).unwrap_or_else(|| panic!("no node with sid {sid}"))
    }
    pub fn node_mut(&mut self, sid: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.sid == sid).unwrap_or_else(|| panic!("no node with sid {sid}"))
    }
    /// Sids of the members that run `imp`.
    pub fn sids_of(&self, imp: Impl) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.imp == imp).map(|n| n.sid).collect()
    }
    /// Sids of the nodes whose process runs.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.alive()).map(|n| n.sid).collect()
    }
    /// Client connect string of every node: `127.0.0.1:C1,127.0.0.1:C2,...`.
    pub fn connect_string(&self) -> String {
        self.connect_string_of(&self.sids())
    }
    pub fn connect_string_of(&self, sids: &[u64]) -> String {
        sids.iter().map(|&s| self.node(s).connect_string()).collect::<Vec<_>>().join(",")
    }

    pub fn kill(&mut self, sid: u64) {
        self.node_mut(sid).kill()
    }
    pub fn restart(&mut self, sid: u64) {
        self.node_mut(sid).restart()
    }

    /// `srvr` modes of the running nodes (None: not serving / no answer).
    pub fn modes(&self) -> BTreeMap<u64, Option<Mode>> {
        self.nodes.iter().filter(|n| n.alive()).map(|n| (n.sid, n.mode())).collect()
    }

    /// Waits until every running node shows a Mode in `srvr`; panics with every log's
    /// tail after `timeout` or when a node exits meanwhile.
    pub fn wait_for_mode_all(&self, timeout: Duration) -> BTreeMap<u64, Mode> {
        let sids = self.running();
        self.wait_for_modes(&sids, timeout)
    }

    /// [`wait_for_mode_all`](Self::wait_for_mode_all) for some nodes only.
    pub fn wait_for_modes(&self, sids: &[u64], timeout: Duration) -> BTreeMap<u64, Mode> {
        let deadline = Instant::now() + timeout;
        let mut modes = BTreeMap::new();
        loop {
            for &sid in sids {
                if modes.contains_key(&sid) {
                    continue;
                }
                let n = self.node(sid);
                if let Some(m) = n.mode() {
                    modes.insert(sid, m);
                } else if !n.alive() {
                    panic!("node {sid} exited while waiting for the ensemble's modes\n{}", self.describe_all(60));
                }
            }
            if modes.len() == sids.len() {
                // Modes were read one by one: read again once so that a node that became
                // leader/follower meanwhile is not reported with a stale mode.
                let again: BTreeMap<u64, Option<Mode>> = sids.iter().map(|&s| (s, self.node(s).mode())).collect();
                if again.iter().all(|(s, m)| *m == modes.get(s).copied()) {
                    return modes;
                }
                modes.clear();
            }
            if Instant::now() >= deadline {
                panic!(
                    "not every node of {sids:?} shows a Mode within {timeout:?}; got {modes:?}\n{}",
                    self.describe_all(60)
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The sid whose `srvr` says `Mode: leader`, if exactly one running node says so.
    pub fn leader(&self) -> Option<u64> {
        let l = self.leaders();
        (l.len() == 1).then(|| l[0])
    }
    /// Every running node whose `srvr` says `Mode: leader`.
    pub fn leaders(&self) -> Vec<u64> {
        self.modes().into_iter().filter(|(_, m)| *m == Some(Mode::Leader)).map(|(s, _)| s).collect()
    }
    /// Waits until exactly one node says `Mode: leader`; panics with the logs after `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader() {
                return l;
            }
            if Instant::now() >= deadline {
                panic!("no single leader within {timeout:?}: modes {:?}\n{}", self.modes(), self.describe_all(60));
            }
            thread::sleep(POLL);
        }
    }

    /// The role and leader node `sid` decided on in its first election since its last
    /// start, read from its log (works before the node serves clients; see
    /// [`parse_election_outcome`]).
    pub fn wait_for_election_outcome(&self, sid: u64, timeout: Duration) -> ElectionOutcome {
        let n = self.node(sid);
        self.wait_for_election_outcome_from(sid, n.start_offset(), timeout)
    }

    /// The first election decision of node `sid` after log offset `from` — take
    /// `node(sid).log_offset()` before killing a leader to see the next election.
    /// Panics with the logs of every node after `timeout`.
    pub fn wait_for_election_outcome_from(&self, sid: u64, from: u64, timeout: Duration) -> ElectionOutcome {
        match self.node(sid).try_wait_for_election_outcome(from, timeout) {
            Ok(o) => o,
            Err(e) => {
                let others: Vec<String> = self.nodes.iter().filter(|o| o.sid != sid).map(|o| o.describe_tail(25)).collect();
                panic!("{e}\n--- the other nodes ---\n{}", others.join("\n"));
            }
        }
    }

    /// [`wait_for_election_outcome`](Self::wait_for_election_outcome) for several nodes.
    pub fn wait_for_election_outcomes(&self, sids: &[u64], timeout: Duration) -> BTreeMap<u64, ElectionOutcome> {
        let deadline = Instant::now() + timeout;
        sids.iter()
            .map(|&s| (s, self.wait_for_election_outcome(s, deadline.saturating_duration_since(Instant::now()))))
            .collect()
    }

    /// Waits for the election outcome of each of `sids` since its last start and checks,
    /// from the logs only, that they agree: one leader, which leads, the others follow or
    /// observe it. Returns the leader; panics with the outcomes and logs otherwise.
    pub fn wait_for_agreed_leader(&self, sids: &[u64], timeout: Duration) -> u64 {
        let outs = self.wait_for_election_outcomes(sids, timeout);
        let leaders: HashSet<u64> = outs.values().map(|o| o.leader).collect();
        let summary: Vec<String> =
            outs.values().map(|o| format!("node {}: {:?} leader {} ({:?})", o.sid, o.role, o.leader, o.leader_source)).collect();
        let fail = |why: &str| -> ! { panic!("{why}:\n{}\n{}", summary.join("\n"), self.describe_all(40)) };
        if leaders.len() != 1 {
            fail("the nodes disagree on the leader");
        }
        let leader = *leaders.iter().next().expect("one leader");
        for o in outs.values() {
            let want = match (o.sid == leader, self.node(o.sid).peer_type) {
                (true, _) => Role::Leading,
                (false, PeerType::Participant) => Role::Following,
                (false, PeerType::Observer) => Role::Observing,
            };
            if o.role != want {
                fail(&format!("node {} decided {:?}, expected {want:?}", o.sid, o.role));
            }
        }
        leader
    }

    /// Log tails of every node, for failure messages.
    pub fn describe_all(&self, lines_per_node: usize) -> String {
        self.nodes.iter().map(|n| n.describe_tail(lines_per_node)).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let keep = std::env::var_os("ZKRS_TEST_KEEP_DIRS").is_some();
        if thread::panicking() && std::env::var_os("ZKRS_TEST_QUIET").is_none() {
            eprintln!("--- ensemble {} (test panicked) ---\n{}", self.dir().display(), self.describe_all(40));
        }
        if keep {
            if let Some(d) = self.dir.take() {
                eprintln!("[harness] ZKRS_TEST_KEEP_DIRS: keeping {}", d.keep().display());
            }
        }
    }
}
