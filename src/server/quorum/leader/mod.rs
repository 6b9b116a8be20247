//! `Leader`: runs on the QuorumPeer thread while this peer leads (`lead`), and is the
//! shared state its LearnerHandlers, its ProposalRequestProcessor and its
//! SyncRequestProcessor's acks meet in:
//! - discovery: the new epoch (`getEpochToPropose`) and its acknowledgement
//!   (`waitForEpochAck`), then a quorum acknowledging NEWLEADER (`waitForNewLeaderAck`);
//! - broadcast: proposals out (`propose`), acks in (`processAck`), commits in zxid order
//!   once a quorum acked (`tryToCommit`), syncs answered after the last proposal commits;
//! - liveness: every tickTime/2 a PING to every learner, and every tick a check that a
//!   quorum is still in sync, else the leader steps down.
//!
//! Locks: `state` is upstream's `synchronized (this)`; `negotiation` (with its condvar)
//! is the monitor of `connectingFollowers` / `electingFollowers` / `newLeaderProposal`.
//! A LearnerHandler may hold the database's committed-log lock and then take `state`
//! (startForwarding); nothing takes them the other way round.

pub mod learner_cnx_acceptor;
pub mod proposal_request_processor;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::common::time;
use crate::server::quorum::commit_processor::CommitSink;
use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::learner_handler::LearnerHandler;
use crate::server::quorum::quorum_packet::{self as qp, encode_parts};
use crate::server::quorum::quorum_peer::{QuorumPeer, ZabState};
use crate::server::quorum::quorum_server::LearnerType;
use crate::server::quorum::synced_learner_tracker::SyncedLearnerTracker;
use crate::server::request::Request;
use crate::server::session_tracker::SessionTracker;
use crate::server::util::zxid_utils::{counter_from_zxid, epoch_from_zxid, make_zxid};
use crate::server::zookeeper_server::ZooKeeperServer;

use learner_cnx_acceptor::LearnerCnxAcceptor;

/// `StateSummary`: a peer's current epoch and last zxid, compared during discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSummary {
    pub current_epoch: i64,
    pub last_zxid: i64,
}

impl StateSummary {
    /// `isMoreRecentThan`.
    pub fn is_more_recent_than(&self, o: &StateSummary) -> bool {
        self.current_epoch > o.current_epoch || (self.current_epoch == o.current_epoch && self.last_zxid > o.last_zxid)
    }
}

/// One outstanding proposal (`Leader.Proposal`).
pub struct Proposal {
    pub zxid: i64,
    /// The PROPOSAL packet as sent to followers.
    pub packet: Arc<[u8]>,
    /// Its data (the txn entry), for INFORM to observers.
    pub data: Arc<[u8]>,
    pub acks: SyncedLearnerTracker,
    /// What the CommitProcessor gets when it commits.
    pub request: Request,
    /// A reconfig's proposed configuration.
    pub reconfig_qv: Option<Arc<QuorumVerifier>>,
}

struct LeaderState {
    outstanding: BTreeMap<i64, Proposal>,
    /// Committed, not yet applied: (zxid, txn data), for learners joining meanwhile.
    to_be_applied: VecDeque<(i64, Arc<[u8]>)>,
    last_committed: i64,
    last_proposed: i64,
    forwarding: Vec<Arc<LearnerHandler>>,
    observing: Vec<Arc<LearnerHandler>>,
    pending_syncs: HashMap<i64, Vec<Arc<LearnerHandler>>>,
    /// (last, min, max) serialized proposal size (`ProposalStats`), -1 until the first.
    proposal_sizes: (i64, i64, i64),
    /// `allowedToCommit`: false once a committed reconfig named another leader; this
    /// one then commits nothing more and the ensemble moves to the designated leader.
    allowed_to_commit: bool,
}

struct Negotiation {
    waiting_for_new_epoch: bool,
    epoch: i64,
    connecting: BTreeSet<i64>,
    election_finished: bool,
    electing: BTreeSet<i64>,
    new_leader: SyncedLearnerTracker,
    new_leader_zxid: i64,
    quorum_formed: bool,
}

/// Why a wait of the discovery phase ended without a quorum.
#[derive(Debug)]
pub struct Timeout(pub String);

pub struct Leader {
    pub peer: Arc<QuorumPeer>,
    pub zk: Arc<ZooKeeperServer>,
    commit: CommitSink,
    state: Mutex<LeaderState>,
    negotiation: Mutex<Negotiation>,
    negotiation_cv: Condvar,
    learners: Mutex<Vec<Arc<LearnerHandler>>>,
    /// `self.tick`: half-ticks of the lead loop, used for learner deadlines.
    pub tick: AtomicI64,
    is_shutdown: AtomicBool,
    acceptor: Mutex<Option<LearnerCnxAcceptor>>,
    leader_state_summary: Mutex<StateSummary>,
    follower_counter: AtomicI64,
    next_owner: AtomicU64,
    pub leader_start_time: AtomicI64,
}

/// `QuorumPeer.makeLeader` + `lead`: the leader's server and chain on the shared
/// database (LeaderZooKeeperServer), then the lead loop. Returns when leading ends.
pub fn lead_with(peer: &Arc<QuorumPeer>, db: &Arc<crate::server::zk_database::ZKDatabase>) {
    use crate::server::final_request_processor::FinalRequestProcessor;
    use crate::server::prep_request_processor::PrepRequestProcessor;
    use crate::server::quorum::commit_processor::CommitProcessor;
        use crate::server::session_tracker_impl::SessionTrackerImpl;
    use crate::server::sync_request_processor::SyncRequestProcessor;
    use crate::server::zookeeper_server::ServerKind;
    use proposal_request_processor::{AckRequestProcessor, ProposalRequestProcessor, ToBeAppliedRequestProcessor};

    let sessions = db.sessions.lock().clone();
    let global = SessionTrackerImpl::new(peer.tick_time, peer.myid, &sessions);
    let tracker = crate::server::quorum::leader_session_tracker::LeaderSessionTracker::new(global, peer.tick_time, peer.myid, peer.config.local_sessions_enabled);
    let (zk, first_rx) = ZooKeeperServer::new(peer.config.clone(), db.clone(), peer.myid, ServerKind::Leader, SessionTracker::Leader(tracker), Some(peer.clone()));
    let (commit_tx, commit_rx) = crossbeam_channel::unbounded();
    let commit = CommitSink(commit_tx);
    let leader = Leader::new(peer.clone(), zk.clone(), commit.clone());
    peer.set_leader(Some(leader.clone()));
    let started = (|| -> std::io::Result<()> {
        let next = Arc::new(ToBeAppliedRequestProcessor { leader: leader.clone(), next: FinalRequestProcessor::new(zk.clone()) });
        zk.add_thread(CommitProcessor::spawn(peer.myid, false, commit_rx, next)?);
        let (sync_tx, sync_rx) = crossbeam_channel::bounded(10_000);
        let sync = SyncRequestProcessor::new(zk.clone(), Box::new(AckRequestProcessor { leader: leader.clone() }), db.txn_snap_log.txn_log());
        zk.add_thread(std::thread::Builder::new().name(format!("SyncThread:{}", peer.myid)).spawn(move || sync.run(sync_rx))?);
        let prep = PrepRequestProcessor::new(zk.clone(), Box::new(ProposalRequestProcessor { leader: leader.clone(), commit: commit.clone(), sync: sync_tx }));
        let cport = peer.config.client_port;
        zk.add_thread(std::thread::Builder::new().name(format!("ProcessThread(sid:{} cport:{cport}):", peer.myid)).spawn(move || prep.run(first_rx))?);
        Ok(())
    })();
    match started {
        Ok(()) => {
            // `loadData`: a snapshot of what this leader starts from, not fsynced, as
            // upstream's `takeSnapshot()` (its txns are in the synced log already).
            zk.start_snapshot_thread(false);
            leader.lead();
        }
        Err(e) => log::warn!("Unexpected exception: {e}"),
    }
    leader.shutdown("Forcing shutdown");
    peer.set_leader(None);
    crate::server::zk_database::fast_forward(db);
    peer.set_last_logged_zxid(db.last_processed_zxid());
}

/// Owner ids of learner handlers start here; the local client port uses `OWNER_ME` (1).
const FIRST_LEARNER_OWNER: u64 = 1 << 32;

impl Leader {
    pub fn new(peer: Arc<QuorumPeer>, zk: Arc<ZooKeeperServer>, commit: CommitSink) -> Arc<Leader> {
        Arc::new(Leader {
            peer,
            zk,
            commit,
            state: Mutex::new(LeaderState {
                outstanding: BTreeMap::new(),
                to_be_applied: VecDeque::new(),
                last_committed: -1,
                last_proposed: 0,
                forwarding: Vec::new(),
                observing: Vec::new(),
                pending_syncs: HashMap::new(),
                proposal_sizes: (-1, -1, -1),
                allowed_to_commit: true,
            }),
            negotiation: Mutex::new(Negotiation {
                waiting_for_new_epoch: true,
                epoch: -1,
                connecting: BTreeSet::new(),
                election_finished: false,
                electing: BTreeSet::new(),
                new_leader: SyncedLearnerTracker::new(),
                new_leader_zxid: 0,
                quorum_formed: false,
            }),
            negotiation_cv: Condvar::new(),
            learners: Mutex::new(Vec::new()),
            tick: AtomicI64::new(0),
            is_shutdown: AtomicBool::new(false),
            acceptor: Mutex::new(None),
            leader_state_summary: Mutex::new(StateSummary { current_epoch: 0, last_zxid: 0 }),
            follower_counter: AtomicI64::new(-1),
            next_owner: AtomicU64::new(FIRST_LEARNER_OWNER),
            leader_start_time: AtomicI64::new(0),
        })
    }

    fn init_limit_ms(&self) -> u64 {
        (i64::from(self.peer.init_limit) * i64::from(self.peer.tick_time)).max(1) as u64
    }

    pub fn sync_timeout_ms(&self) -> u64 {
        (i64::from(self.peer.sync_limit) * i64::from(self.peer.tick_time)).max(1) as u64
    }

    pub fn is_participant(&self, sid: i64) -> bool {
        self.peer.quorum_verifier().is_voter(sid)
    }

    pub fn next_owner_id(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    pub fn get_and_decrement_follower_counter(&self) -> i64 {
        self.follower_counter.fetch_sub(1, Ordering::AcqRel)
    }

    /// `getPeerInfo`: the server's line as the configuration has it, or "".
    pub fn peer_info(&self, sid: i64) -> String {
        self.peer.view_member(sid).map(|s| s.to_config_string()).unwrap_or_default()
    }

    /// `getTickOfInitialAckDeadline`.
    pub fn tick_of_initial_ack_deadline(&self) -> i64 {
        self.tick.load(Ordering::Acquire) + i64::from(self.peer.init_limit) + i64::from(self.peer.sync_limit)
    }

    /// `getTickOfNextAckDeadline`.
    pub fn tick_of_next_ack_deadline(&self) -> i64 {
        self.tick.load(Ordering::Acquire) + i64::from(self.peer.sync_limit)
    }

    pub fn add_learner_handler(&self, h: Arc<LearnerHandler>) {
        self.learners.lock().push(h);
    }

    pub fn remove_learner_handler(&self, h: &LearnerHandler) {
        let same = |x: &Arc<LearnerHandler>| std::ptr::eq(Arc::as_ptr(x), h);
        self.learners.lock().retain(|x| !same(x));
        let mut st = self.state.lock();
        st.forwarding.retain(|x| !same(x));
        st.observing.retain(|x| !same(x));
    }

    pub fn learners(&self) -> Vec<Arc<LearnerHandler>> {
        self.learners.lock().clone()
    }

    pub fn forwarding_followers(&self) -> Vec<Arc<LearnerHandler>> {
        self.state.lock().forwarding.clone()
    }

    pub fn observing_learners(&self) -> Vec<Arc<LearnerHandler>> {
        self.state.lock().observing.clone()
    }

    /// `resetObserverConnectionStats`.
    pub fn reset_observer_connection_stats(&self) {
        for h in self.observing_learners() {
            h.reset_connection_stats();
        }
    }

    pub fn handler_by_owner(&self, owner: u64) -> Option<Arc<LearnerHandler>> {
        self.learners.lock().iter().find(|h| h.owner == owner).cloned()
    }

    pub fn last_proposed(&self) -> i64 {
        self.state.lock().last_proposed
    }

    pub fn last_committed(&self) -> i64 {
        self.state.lock().last_committed
    }

    pub fn outstanding_count(&self) -> usize {
        self.state.lock().outstanding.len()
    }

    pub fn pending_sync_count(&self) -> usize {
        self.state.lock().pending_syncs.values().map(|v| v.len()).sum()
    }

    /// (last, min, max) proposal sizes for `srvr` / `mntr`.
    pub fn proposal_sizes(&self) -> (i64, i64, i64) {
        self.state.lock().proposal_sizes
    }

    pub fn is_shutdown(&self) -> bool {
        self.is_shutdown.load(Ordering::Acquire)
    }

    /// `isLearnerSynced`.
    pub fn is_learner_synced(&self, h: &LearnerHandler) -> bool {
        self.state.lock().forwarding.iter().any(|f| std::ptr::eq(Arc::as_ptr(f), h))
    }

    // ----------------------------------------------------------- discovery --

    /// `getEpochToPropose`: the new epoch is one past the highest accepted epoch of a
    /// quorum (which must include us); everyone waits for that quorum up to initLimit.
    pub fn get_epoch_to_propose(&self, sid: i64, last_accepted_epoch: i64) -> Result<i64, Timeout> {
        let mut n = self.negotiation.lock();
        if !n.waiting_for_new_epoch {
            return Ok(n.epoch);
        }
        if last_accepted_epoch >= n.epoch {
            n.epoch = last_accepted_epoch + 1;
        }
        if self.is_participant(sid) {
            n.connecting.insert(sid);
        }
        let ids: Vec<i64> = n.connecting.iter().copied().collect();
        if n.connecting.contains(&self.peer.myid) && self.peer.quorum_verifier().contains_quorum(&ids) {
            n.waiting_for_new_epoch = false;
            if let Err(e) = self.peer.epochs.set_accepted(n.epoch) {
                log::error!("Unable to write acceptedEpoch {}: {e}", n.epoch);
                return Err(Timeout(format!("Unable to write acceptedEpoch: {e}")));
            }
            self.negotiation_cv.notify_all();
            return Ok(n.epoch);
        }
        let end = Instant::now() + Duration::from_millis(self.init_limit_ms());
        while n.waiting_for_new_epoch && !self.is_shutdown() {
            if self.negotiation_cv.wait_until(&mut n, end).timed_out() {
                break;
            }
        }
        if n.waiting_for_new_epoch {
            return Err(Timeout("Timeout while waiting for epoch from quorum".into()));
        }
        Ok(n.epoch)
    }

    /// `waitForEpochAck`: a learner ahead of us cannot be led; the others' acks (with a
    /// real history) count toward a quorum that must include us.
    pub fn wait_for_epoch_ack(&self, sid: i64, ss: StateSummary) -> Result<(), Timeout> {
        let mut n = self.negotiation.lock();
        if n.election_finished {
            return Ok(());
        }
        if ss.current_epoch != -1 {
            let mine = *self.leader_state_summary.lock();
            if ss.is_more_recent_than(&mine) {
                return Err(Timeout(format!(
                    "Follower is ahead of the leader, leader summary: {} (current epoch), {} (last zxid)",
                    mine.current_epoch, mine.last_zxid
                )));
            }
            if ss.last_zxid != -1 && self.is_participant(sid) {
                n.electing.insert(sid);
            }
        }
        let ids: Vec<i64> = n.electing.iter().copied().collect();
        if n.electing.contains(&self.peer.myid) && self.peer.quorum_verifier().contains_quorum(&ids) {
            n.election_finished = true;
            self.negotiation_cv.notify_all();
            return Ok(());
        }
        let end = Instant::now() + Duration::from_millis(self.init_limit_ms());
        while !n.election_finished && !self.is_shutdown() {
            if self.negotiation_cv.wait_until(&mut n, end).timed_out() {
                break;
            }
        }
        if !n.election_finished {
            return Err(Timeout("Timeout while waiting for epoch to be acked by quorum".into()));
        }
        Ok(())
    }

    /// `waitForNewLeaderAck`.
    pub fn wait_for_new_leader_ack(&self, sid: i64, zxid: i64) -> Result<(), Timeout> {
        let mut n = self.negotiation.lock();
        if n.quorum_formed {
            return Ok(());
        }
        if zxid != n.new_leader_zxid {
            log::error!(
                "NEWLEADER ACK from sid: {sid} is from a different epoch - current 0x{:x} received 0x{zxid:x}",
                n.new_leader_zxid
            );
            return Ok(());
        }
        if self.is_participant(sid) {
            n.new_leader.add_ack(sid);
        }
        if n.new_leader.has_all_quorums() {
            n.quorum_formed = true;
            self.negotiation_cv.notify_all();
            return Ok(());
        }
        let end = Instant::now() + Duration::from_millis(self.init_limit_ms());
        while !n.quorum_formed && !self.is_shutdown() {
            if self.negotiation_cv.wait_until(&mut n, end).timed_out() {
                break;
            }
        }
        if !n.quorum_formed {
            return Err(Timeout("Timeout while waiting for NEWLEADER to be acked by quorum".into()));
        }
        Ok(())
    }

    /// `waitForStartup`: a learner is told UPTODATE only once the leader serves.
    pub fn wait_for_startup(&self) {
        while !self.zk.is_running() && !self.is_shutdown() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // ----------------------------------------------------------- broadcast --

    /// `propose`: number the txn's proposal, remember it, send it to every forwarding
    /// follower. Returns the txn bytes (also the log entry). Refuses the last counter of
    /// an epoch: the leader steps down and a new election starts a new epoch.
    /// Puts a prepared request's txn into its wire form (`SerializeUtils.serializeRequest`).
    pub fn marshall(request: &mut Request) {
        if request.txn_bytes.is_some() {
            return;
        }
        if let Some(hdr) = request.hdr.as_ref() {
            request.txn_bytes = Some(Arc::from(crate::server::persistence::util::marshall_txn_entry(
                hdr,
                request.txn.as_ref(),
                request.digest.as_ref(),
            )));
        }
    }

    pub fn propose(&self, request: &Request) -> Result<(), String> {
        let Some(hdr) = request.hdr.as_ref() else { return Ok(()) };
        let zxid = hdr.zxid;
        if counter_from_zxid(zxid) == 0xffff_ffff {
            let msg = "zxid lower 32 bits have rolled over, forcing re-election, and therefore new epoch start".to_string();
            self.shutdown(&msg);
            return Err(msg);
        }
        let Some(data) = request.txn_bytes.clone() else { return Err("proposal without txn bytes".into()) };
        let packet = encode_parts(qp::PROPOSAL, zxid, Some(&data));
        let reconfig_qv = if hdr.r#type == crate::proto::op_code::RECONFIG { request.qv.clone() } else { None };
        if let Some(qv) = &reconfig_qv {
            self.peer.set_last_seen_quorum_verifier((**qv).clone(), true);
        }
        let mut acks = SyncedLearnerTracker::new();
        let qv = self.peer.quorum_verifier();
        acks.add_quorum_verifier(qv.clone());
        if let Some(ls) = self.peer.last_seen_quorum_verifier() {
            if qv.version() < ls.version() {
                acks.add_quorum_verifier(ls);
            }
        }
        let mut st = self.state.lock();
        log::debug!("Proposing:: {}", request.describe());
        let size = data.len() as i64;
        let (_, min, max) = st.proposal_sizes;
        st.proposal_sizes = (size, if min < 0 { size } else { min.min(size) }, max.max(size));
        st.last_proposed = zxid;
        st.outstanding.insert(zxid, Proposal { zxid, packet: packet.clone(), data, acks, request: request.log_copy(), reconfig_qv });
        for f in &st.forwarding {
            f.queue_packet(qp::PROPOSAL, zxid, packet.clone());
        }
        drop(st);
        crate::server::fault_points::hit("leader.proposal.sent");
        Ok(())
    }

    /// `processAck`: count the ack and commit what now has a quorum, in order.
    pub fn process_ack(&self, sid: i64, zxid: i64) {
        if counter_from_zxid(zxid) == 0 {
            // An ack of NEWLEADER or UPTODATE: nothing outstanding has that zxid.
            return;
        }
        let mut st = self.state.lock();
        if !st.allowed_to_commit {
            // The last commit was a reconfig that named another leader.
            return;
        }
        if st.outstanding.is_empty() {
            log::debug!("outstanding is 0");
            return;
        }
        if st.last_committed >= zxid {
            log::debug!("proposal has already been committed, pzxid: 0x{:x} zxid: 0x{zxid:x}", st.last_committed);
            return;
        }
        let Some(p) = st.outstanding.get_mut(&zxid) else {
            log::warn!("Trying to commit future proposal: zxid 0x{zxid:x} from {sid}");
            return;
        };
        p.acks.add_ack(sid);
        // A commit may unblock the ones acked while it waited.
        let mut next = zxid;
        while self.try_to_commit(&mut st, next) {
            next += 1;
            if !st.outstanding.contains_key(&next) {
                break;
            }
        }
    }

    /// `tryToCommit`: in zxid order only, and only with a quorum of every active config.
    fn try_to_commit(&self, st: &mut LeaderState, zxid: i64) -> bool {
        if st.outstanding.contains_key(&(zxid - 1)) {
            return false;
        }
        match st.outstanding.get(&zxid) {
            Some(p) if p.acks.has_all_quorums() => {}
            _ => return false,
        }
        if zxid != st.last_committed + 1 && epoch_from_zxid(zxid) == epoch_from_zxid(st.last_committed) {
            log::warn!("Commiting zxid 0x{zxid:x} not first!");
            log::warn!("First is 0x{:x}", st.last_committed + 1);
        }
        crate::server::fault_points::hit("leader.commit.beforeSend");
        let Some(p) = st.outstanding.remove(&zxid) else { return false };
        st.to_be_applied.push_back((zxid, p.data.clone()));
        st.last_committed = zxid;
        if let Some(new_qv) = p.reconfig_qv.clone() {
            log::debug!("Committing a reconfiguration! {}", st.outstanding.len());
            let designated = self.designated_leader(st, &p, zxid);
            self.peer.process_reconfig((*new_qv).clone(), Some((designated, self.zk.zxid())), true);
            if designated != self.peer.myid {
                log::info!(
                    "Committing a reconfiguration (reconfigEnabled={}); this leader is not the designated leader anymore, setting allowedToCommit=false",
                    self.peer.is_reconfig_enabled()
                );
                st.allowed_to_commit = false;
            }
            // Followers close the connection themselves if the leader changes: that way
            // a quorum of them surely got the commit.
            let commit = encode_parts(qp::COMMITANDACTIVATE, zxid, Some(&designated.to_be_bytes()));
            for f in &st.forwarding {
                f.queue_packet(qp::COMMITANDACTIVATE, zxid, commit.clone());
            }
            if !st.observing.is_empty() {
                let mut data = Vec::with_capacity(8 + p.data.len());
                data.extend_from_slice(&designated.to_be_bytes());
                data.extend_from_slice(&p.data);
                let inform = encode_parts(qp::INFORMANDACTIVATE, zxid, Some(&data));
                for o in &st.observing {
                    o.queue_packet(qp::INFORMANDACTIVATE, zxid, inform.clone());
                }
            }
        } else {
            let commit = encode_parts(qp::COMMIT, zxid, None);
            for f in &st.forwarding {
                f.queue_packet(qp::COMMIT, zxid, commit.clone());
            }
            if !st.observing.is_empty() {
                let inform = encode_parts(qp::INFORM, zxid, Some(&p.data));
                for o in &st.observing {
                    o.queue_packet(qp::INFORM, zxid, inform.clone());
                }
            }
        }
        self.commit.commit(p.request);
        if let Some(waiting) = st.pending_syncs.remove(&zxid) {
            for h in waiting {
                Self::send_sync(&h);
            }
        }
        true
    }

    /// `getDesignatedLeader` over a committed reconfig and what is outstanding after it.
    fn designated_leader(&self, st: &LeaderState, p: &Proposal, zxid: i64) -> i64 {
        let Some((new_qv, new_acks)) = p.acks.last_pair() else { return self.peer.myid };
        let mut later = Vec::new();
        let mut z = zxid + 1;
        while let Some(next) = st.outstanding.get(&z) {
            later.push(next.acks.ack_sets());
            z += 1;
        }
        crate::server::quorum::reconfig::designated_leader(self.peer.myid, self.peer.quorum_address().all(), new_qv, new_acks, &later)
    }

    /// `isQuorumSynced`: the voters of `qv` that are synced with us (and we, if we vote
    /// in it) form a quorum of it.
    pub fn is_quorum_synced(&self, qv: &QuorumVerifier) -> bool {
        let mut ids = Vec::new();
        if qv.is_voter(self.peer.myid) {
            ids.push(self.peer.myid);
        }
        let tick = self.tick.load(Ordering::Acquire);
        for f in self.forwarding_followers() {
            if f.synced(tick) && qv.is_voter(f.sid()) && !ids.contains(&f.sid()) {
                ids.push(f.sid());
            }
        }
        qv.contains_quorum(&ids)
    }

    /// ToBeAppliedRequestProcessor's bookkeeping: the applied txn leaves `toBeApplied`.
    pub fn applied(&self, zxid: i64) {
        let mut st = self.state.lock();
        if st.to_be_applied.front().map(|e| e.0) == Some(zxid) {
            st.to_be_applied.pop_front();
        } else if st.to_be_applied.iter().any(|e| e.0 == zxid) {
            st.to_be_applied.retain(|e| e.0 != zxid);
        } else {
            log::error!("Committed request not found on toBeApplied: 0x{zxid:x}");
        }
    }

    /// `processSync`: answer now if nothing is outstanding, else once the last proposal
    /// commits.
    pub fn process_sync(&self, h: &Arc<LearnerHandler>) {
        let mut st = self.state.lock();
        if st.outstanding.is_empty() {
            Self::send_sync(h);
        } else {
            let lp = st.last_proposed;
            st.pending_syncs.entry(lp).or_default().push(h.clone());
        }
    }

    fn send_sync(h: &LearnerHandler) {
        h.queue_packet(qp::SYNC, 0, encode_parts(qp::SYNC, 0, None));
    }

    /// `startForwarding`: queue what the learner misses after `last_seen_zxid` (committed
    /// but not yet applied, with COMMITs; and, for participants, what is still
    /// outstanding), then register it for every later broadcast.
    pub fn start_forwarding(&self, h: &Arc<LearnerHandler>, last_seen_zxid: i64) -> i64 {
        let mut st = self.state.lock();
        if st.last_proposed > last_seen_zxid {
            for (z, data) in st.to_be_applied.iter() {
                if *z <= last_seen_zxid {
                    continue;
                }
                h.queue_packet(qp::PROPOSAL, *z, encode_parts(qp::PROPOSAL, *z, Some(data)));
                h.queue_packet(qp::COMMIT, *z, encode_parts(qp::COMMIT, *z, None));
            }
            if h.learner_type() == LearnerType::Participant {
                for (z, p) in st.outstanding.iter() {
                    if *z <= last_seen_zxid {
                        continue;
                    }
                    h.queue_packet(qp::PROPOSAL, *z, p.packet.clone());
                }
            }
        }
        if h.learner_type() == LearnerType::Participant {
            st.forwarding.push(h.clone());
        } else {
            st.observing.push(h.clone());
        }
        st.last_proposed
    }

    // ------------------------------------------------------------- lifecycle --

    /// `lead`: discovery, synchronisation, then the broadcast loop until the quorum is
    /// lost or the peer stops.
    pub fn lead(self: &Arc<Self>) {
        let taken = crate::server::quorum::quorum_peer::run::record_election_time(&self.peer);
        log::info!("LEADING - LEADER ELECTION TOOK - {taken} MS");
        self.peer.set_zab_state(ZabState::Discovery);
        self.tick.store(0, Ordering::Release);
        *self.leader_state_summary.lock() = StateSummary { current_epoch: self.peer.epochs.current(), last_zxid: self.zk.db.last_processed_zxid() };
        match LearnerCnxAcceptor::start(self.clone()) {
            Ok(a) => *self.acceptor.lock() = Some(a),
            Err(e) => {
                log::error!("Unable to start the learner acceptor: {e}");
                self.shutdown(&format!("Unable to listen on the quorum port: {e}"));
                return;
            }
        }
        let epoch = match self.get_epoch_to_propose(self.peer.myid, self.peer.epochs.accepted()) {
            Ok(e) => e,
            Err(Timeout(m)) => {
                log::warn!("Unexpected exception: {m}");
                self.shutdown(&m);
                return;
            }
        };
        let zxid = make_zxid(epoch, 0);
        self.zk.set_zxid(zxid);
        self.state.lock().last_proposed = zxid;
        // ZOOKEEPER-1783: a configuration nobody versioned (version 0, from zoo.cfg)
        // gets this epoch's first zxid as its version once a quorum is established, so it
        // outranks the partial configs of joining servers. It travels as the last seen
        // configuration in NEWLEADER and is committed when the quorum has acked that.
        let cur = self.peer.quorum_verifier();
        if cur.version() == 0 && self.peer.last_seen_quorum_verifier().map(|l| l.version()).unwrap_or(0) == 0 {
            log::debug!("set lastSeenQuorumVerifier to currentQuorumVerifier ({cur})");
            let mut bumped = (*cur).clone();
            bumped.set_version(self.zk.zxid());
            self.peer.set_last_seen_quorum_verifier(bumped, true);
        }
        {
            let mut n = self.negotiation.lock();
            n.new_leader_zxid = zxid;
            let qv = self.peer.quorum_verifier();
            n.new_leader.add_quorum_verifier(qv.clone());
            if let Some(ls) = self.peer.last_seen_quorum_verifier() {
                if ls.version() > qv.version() {
                    n.new_leader.add_quorum_verifier(ls);
                }
            }
        }
        let summary = *self.leader_state_summary.lock();
        if let Err(Timeout(m)) = self.wait_for_epoch_ack(self.peer.myid, summary) {
            log::warn!("Unexpected exception: {m}");
            self.shutdown(&m);
            return;
        }
        if let Err(e) = self.peer.epochs.set_current(epoch) {
            log::error!("Unable to write currentEpoch {epoch}: {e}");
            self.shutdown("Unable to write currentEpoch");
            return;
        }
        let quorum_addr = self.peer.quorum_address().all().iter().map(|a| a.host.clone()).collect::<Vec<_>>().join("|");
        self.peer.set_leader_address_and_id(Some(quorum_addr), self.peer.myid);
        self.peer.set_zab_state(ZabState::Synchronization);
        if let Err(Timeout(_)) = self.wait_for_new_leader_ack(self.peer.myid, zxid) {
            let acks = self.negotiation.lock().new_leader.ack_sets_to_string();
            self.shutdown(&format!("Waiting for a quorum of followers, only synced with sids: [ {acks} ]"));
            let followers: Vec<i64> = self.learners().iter().map(|h| h.sid()).filter(|s| self.is_participant(*s)).collect();
            if self.peer.quorum_verifier().contains_quorum(&followers) {
                log::warn!("Enough followers present. Perhaps the initTicks need to be increased.");
            }
            return;
        }
        self.start_zk_server(zxid, epoch);
        if crate::system_properties::get_or("zookeeper.leaderServes", "yes") != "no" {
            self.peer.set_active_server(Some(self.zk.clone()));
        }
        self.peer.set_zab_state(ZabState::Broadcast);
        let reason = self.broadcast_loop();
        self.shutdown(&reason);
    }

    /// `startZkServer`.
    fn start_zk_server(&self, zxid: i64, epoch: i64) {
        self.state.lock().last_committed = zxid;
        let acks = self.negotiation.lock().new_leader.ack_sets_to_string();
        log::info!("Have quorum of supporters, sids: [{acks}]; starting up and setting last processed zxid: 0x{zxid:x}");
        if self.peer.is_reconfig_enabled() {
            // ZOOKEEPER-1324: the configuration NEWLEADER carried is now acked by a
            // quorum; it applies to this leader too.
            if let Some(new_qv) = self.peer.last_seen_quorum_verifier() {
                let designated = {
                    let n = self.negotiation.lock();
                    match n.new_leader.last_pair() {
                        Some((q, acks)) => crate::server::quorum::reconfig::designated_leader(self.peer.myid, self.peer.quorum_address().all(), q, acks, &[]),
                        None => self.peer.myid,
                    }
                };
                self.peer.process_reconfig((*new_qv).clone(), Some((designated, self.zk.zxid())), true);
                self.peer.init_config_in_zk_database();
                if designated != self.peer.myid {
                    log::warn!("This leader is not the designated leader, it will be initialized with allowedToCommit = false");
                    self.state.lock().allowed_to_commit = false;
                }
            }
        } else {
            log::info!("Dynamic reconfig feature is disabled, skip designatedLeader calculation and reconfig processing.");
        }
        self.leader_start_time.store(time::current_elapsed_time(), Ordering::Release);
        self.peer.update_election_vote(epoch);
        self.zk.db.set_last_processed_zxid(zxid);
        // `LeaderZooKeeperServer.startup` creates the session tracker: sessions expire only
        // under an established leader, each with its whole timeout from now. Started
        // earlier, it expired sessions while the leader still waited for its quorum and
        // proposed their closeSession with a zxid of the previous epoch, which no quorum
        // had accepted (logged locally, then replayed into the next election's vote).
        for t in self.zk.session_tracker().expiring_trackers() {
            t.touch_all();
        }
        if let Err(e) = self.zk.start_session_trackers() {
            log::error!("Unable to start the session tracker: {e}");
        }
        self.zk.set_serving();
        // `LeaderZooKeeperServer.startup`: the ContainerManager starts with the serving
        // server (started earlier, its first check could find the server not running yet
        // — with a short znode.container.checkIntervalMs and slow learners — and end for
        // good). Stopped by the server's shutdown, which joins it: a leader that steps
        // down must not wait for the next check (a minute by default).
        match crate::server::container_manager::ContainerManager::new(self.zk.clone()).start() {
            Ok((t, stop)) => {
                self.zk.on_shutdown(Box::new(move || stop.store(true, Ordering::Release)));
                self.zk.add_thread(t);
            }
            Err(e) => log::error!("Unable to start the ContainerManager: {e}"),
        }
    }

    /// The lead loop: PINGs every tickTime/2, and each tick a quorum of synced learners
    /// (counting ourselves), or the leader steps down.
    fn broadcast_loop(&self) -> String {
        let half = Duration::from_millis((self.peer.tick_time / 2).max(1) as u64);
        let mut tick_skip = true;
        loop {
            std::thread::sleep(half);
            if !tick_skip {
                self.tick.fetch_add(1, Ordering::AcqRel);
            }
            if !self.peer.is_running() || self.is_shutdown() {
                return "Unexpected internal error".into();
            }
            let mut synced = SyncedLearnerTracker::new();
            let qv = self.peer.quorum_verifier();
            synced.add_quorum_verifier(qv.clone());
            if let Some(ls) = self.peer.last_seen_quorum_verifier() {
                if ls.version() > qv.version() {
                    synced.add_quorum_verifier(ls);
                }
            }
            synced.add_ack(self.peer.myid);
            for f in self.learners() {
                if f.synced(self.tick.load(Ordering::Acquire)) {
                    synced.add_ack(f.sid());
                }
            }
            if !self.zk.is_running() {
                return "Unexpected internal error".into();
            }
            if !tick_skip && !synced.has_all_quorums() {
                return format!("Not sufficient followers synced, only synced with sids: [ {} ]", synced.ack_sets_to_string());
            }
            tick_skip = !tick_skip;
            let last_proposed = self.last_proposed();
            for f in self.learners() {
                f.ping(last_proposed, self.sync_timeout_ms());
            }
        }
    }

    /// `shutdown(reason)`: stop accepting learners, stop serving, drop every learner.
    pub fn shutdown(&self, reason: &str) {
        log::info!("Shutting down");
        if self.is_shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        log::info!("Shutdown called. For the reason {reason}");
        if let Some(a) = self.acceptor.lock().take() {
            a.halt();
        }
        self.negotiation_cv.notify_all();
        self.peer.set_active_server(None);
        self.zk.shutdown();
        let learners: Vec<Arc<LearnerHandler>> = std::mem::take(&mut *self.learners.lock());
        for f in learners {
            f.shutdown();
        }
    }
}
