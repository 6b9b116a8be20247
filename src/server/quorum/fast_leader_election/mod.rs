//! `FastLeaderElection`: the election a LOOKING peer runs (`lookForLeader`, on the
//! QuorumPeer thread) and its `Messenger` — the [`worker_sender`] (`WorkerSender[myid=N]`)
//! that encodes outgoing notifications for the connection manager, and the
//! [`worker_receiver`] (`WorkerReceiver[myid=N]`) that decodes incoming ones, queues them
//! for a LOOKING peer and answers LOOKING peers itself once this peer has settled.
//!
//! The decisions are in [`predicates`]; the connection manager is reached through
//! [`ElectionTransport`], so the whole election runs in tests over an in-memory network.

pub mod notification;
pub mod predicates;
pub mod worker_receiver;
pub mod worker_sender;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::common::time;
use crate::server::quorum::quorum_cnx_manager::{Message, QuorumCnxManager};
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::quorum::quorum_server::LearnerType;
use crate::server::quorum::vote::{ServerState, Vote};
use crate::system_properties;

use notification::ToSend;
use predicates::{check_leader, total_order_predicate, vote_tracker, Proposal};

/// `finalizeWait`: how long a peer that sees a quorum for its proposal waits for a
/// better one before deciding.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// Default `maxNotificationInterval`.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;

/// `zookeeper.fastleader.minNotificationInterval` / `maxNotificationInterval`, read once
/// (upstream reads them in a static initializer and logs them).
pub fn notification_intervals() -> (u64, u64) {
    static V: OnceLock<(u64, u64)> = OnceLock::new();
    *V.get_or_init(|| {
        let min = system_properties::get_i64("zookeeper.fastleader.minNotificationInterval").map(|v| v.max(0) as u64).unwrap_or(FINALIZE_WAIT_MS);
        log::info!("zookeeper.fastleader.minNotificationInterval = {min} ms");
        let max = system_properties::get_i64("zookeeper.fastleader.maxNotificationInterval")
            .map(|v| v.max(0) as u64)
            .unwrap_or(MAX_NOTIFICATION_INTERVAL_MS);
        log::info!("zookeeper.fastleader.maxNotificationInterval = {max} ms");
        (min, max)
    })
}

/// What the election needs from `QuorumCnxManager`.
pub trait ElectionTransport: Send + Sync {
    fn to_send(&self, sid: i64, buf: Arc<[u8]>);
    fn poll_recv_queue(&self, timeout: Duration) -> Option<Message>;
    fn have_delivered(&self) -> bool;
    fn connect_all(&self);
    fn halt(&self);
}

impl ElectionTransport for Arc<QuorumCnxManager> {
    fn to_send(&self, sid: i64, buf: Arc<[u8]>) {
        QuorumCnxManager::to_send(self, sid, buf)
    }

    fn poll_recv_queue(&self, timeout: Duration) -> Option<Message> {
        QuorumCnxManager::poll_recv_queue(self, timeout)
    }

    fn have_delivered(&self) -> bool {
        QuorumCnxManager::have_delivered(self)
    }

    fn connect_all(&self) {
        QuorumCnxManager::connect_all(self)
    }

    fn halt(&self) {
        QuorumCnxManager::halt(self)
    }
}

/// `FastLeaderElection.Notification`, after the WorkerReceiver validated it.
#[derive(Debug, Clone)]
pub struct Notification {
    pub version: i32,
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub state: ServerState,
    pub sid: i64,
    pub peer_epoch: i64,
    /// Version of the config the sender attached, if it parsed.
    pub config_version: Option<i64>,
}

/// State shared by the election loop and the Messenger threads.
pub(crate) struct Shared {
    pub(crate) peer: Arc<QuorumPeer>,
    pub(crate) manager: Arc<dyn ElectionTransport>,
    /// The election round (`logicalclock`).
    pub(crate) logicalclock: AtomicI64,
    /// (proposedLeader, proposedZxid, proposedEpoch); `getVote` / `updateProposal` are
    /// synchronized upstream.
    proposal: Mutex<Proposal>,
    pub(crate) sendqueue: Sender<ToSend>,
    pub(crate) recvqueue_tx: Sender<Notification>,
    pub(crate) stop: AtomicBool,
}

impl Shared {
    /// `getVote`.
    pub(crate) fn get_vote(&self) -> Vote {
        let p = *self.proposal.lock();
        Vote::new(p.id, p.zxid, p.epoch)
    }

    fn update_proposal(&self, leader: i64, zxid: i64, epoch: i64) {
        let mut p = self.proposal.lock();
        log::debug!(
            "Updating proposal: {leader} (newleader), 0x{zxid:x} (newzxid), {} (oldleader), 0x{:x} (oldzxid)",
            p.id,
            p.zxid
        );
        *p = Proposal { id: leader, zxid, epoch };
    }

    /// `validVoter`.
    pub(crate) fn valid_voter(&self, sid: i64) -> bool {
        self.peer.current_and_next_config_voters().contains(&sid)
    }

    /// The config text this peer sends with every notification.
    pub(crate) fn config_bytes(&self) -> Arc<[u8]> {
        Arc::from(self.peer.quorum_verifier().to_string().into_bytes())
    }
}

pub struct FastLeaderElection {
    shared: Arc<Shared>,
    recvqueue: Receiver<Notification>,
    /// Dropped by `shutdown`: wakes a waiting `lookForLeader` and the WorkerSender at once
    /// (upstream interrupts the threads).
    stop_tx: Mutex<Option<Sender<()>>>,
    stop_rx: Receiver<()>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl FastLeaderElection {
    /// Creates the election and starts its Messenger threads.
    pub fn start(peer: Arc<QuorumPeer>, manager: Arc<dyn ElectionTransport>) -> std::io::Result<FastLeaderElection> {
        notification_intervals();
        let (sendqueue, send_rx) = unbounded();
        let (recvqueue_tx, recvqueue) = unbounded();
        let shared = Arc::new(Shared {
            peer,
            manager,
            logicalclock: AtomicI64::new(0),
            proposal: Mutex::new(Proposal { id: -1, zxid: -1, epoch: 0 }),
            sendqueue,
            recvqueue_tx,
            stop: AtomicBool::new(false),
        });
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let ws = worker_sender::spawn(shared.clone(), send_rx, stop_rx.clone())?;
        let wr = match worker_receiver::spawn(shared.clone()) {
            Ok(t) => t,
            Err(e) => {
                shared.stop.store(true, Ordering::Release);
                return Err(e);
            }
        };
        Ok(FastLeaderElection { shared, recvqueue, stop_tx: Mutex::new(Some(stop_tx)), stop_rx, threads: Mutex::new(vec![ws, wr]) })
    }

    pub fn logical_clock(&self) -> i64 {
        self.shared.logicalclock.load(Ordering::Acquire)
    }

    pub fn get_vote(&self) -> Vote {
        self.shared.get_vote()
    }

    /// `shutdown`: stop the election, the connection manager and the Messenger.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.stop_tx.lock().take();
        let epoch = self.shared.proposal.lock().epoch;
        self.shared.update_proposal(-1, -1, epoch);
        log::debug!("Shutting down connection manager");
        self.shared.manager.halt();
        log::debug!("Shutting down messenger");
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        log::debug!("FLE is down");
    }

    fn peer(&self) -> &QuorumPeer {
        &self.shared.peer
    }

    fn init_id(&self) -> i64 {
        let me = self.peer().myid;
        if self.peer().quorum_verifier().is_voter(me) {
            me
        } else {
            i64::MIN
        }
    }

    fn init_last_logged_zxid(&self) -> i64 {
        if self.peer().learner_type() == LearnerType::Participant {
            self.peer().last_logged_zxid()
        } else {
            i64::MIN
        }
    }

    fn init_peer_epoch(&self) -> i64 {
        if self.peer().learner_type() == LearnerType::Participant {
            self.peer().epochs.current()
        } else {
            i64::MIN
        }
    }

    fn beats(&self, leader: i64, zxid: i64, epoch: i64, cur: Proposal) -> bool {
        let new = Proposal { id: leader, zxid, epoch };
        log::debug!("id: {leader}, proposed id: {}, zxid: 0x{zxid:x}, proposed zxid: 0x{:x}", cur.id, cur.zxid);
        total_order_predicate(self.peer().quorum_verifier().weight(leader), new, cur)
    }

    /// `sendNotifications`: our proposal to every voter, ourselves included.
    fn send_notifications(&self) {
        let p = *self.shared.proposal.lock();
        let round = self.logical_clock();
        let config = self.shared.config_bytes();
        for sid in self.peer().current_and_next_config_voters() {
            log::debug!(
                "Sending Notification: {} (n.leader), 0x{:x} (n.zxid), 0x{round:x} (n.round), {sid} (recipient), {} (myid), 0x{:x} (n.peerEpoch) ",
                p.id,
                p.zxid,
                self.peer().myid,
                p.epoch
            );
            let _ = self.shared.sendqueue.send(ToSend {
                leader: p.id,
                zxid: p.zxid,
                election_epoch: round,
                state: ServerState::Looking,
                sid,
                peer_epoch: p.epoch,
                config_data: config.clone(),
            });
        }
    }

    fn learning_state(&self) -> ServerState {
        if self.peer().learner_type() == LearnerType::Participant {
            ServerState::Following
        } else {
            ServerState::Observing
        }
    }

    fn set_peer_state(&self, proposed_leader: i64) {
        let s = if proposed_leader == self.peer().myid { ServerState::Leading } else { self.learning_state() };
        self.peer().set_peer_state(s);
    }

    fn leave_instance(&self, v: &Vote) {
        log::debug!(
            "About to leave FLE instance: leader={}, zxid=0x{:x}, my id={}, my state={}",
            v.id,
            v.zxid,
            self.peer().myid,
            self.peer().peer_state()
        );
        while self.recvqueue.try_recv().is_ok() {}
    }

    fn poll(&self, timeout_ms: u64) -> Option<Notification> {
        crossbeam_channel::select! {
            recv(self.recvqueue) -> n => n.ok(),
            recv(self.stop_rx) -> _ => None,
            default(Duration::from_millis(timeout_ms)) => None,
        }
    }

    /// `lookForLeader`: runs one election; returns the elected vote with the peer state
    /// already set, or None when the election was stopped.
    pub fn look_for_leader(&self) -> Option<Vote> {
        let peer = self.peer();
        peer.start_fle.store(time::current_elapsed_time(), Ordering::Release);
        let (min_interval, max_interval) = notification_intervals();
        let mut recvset: HashMap<i64, Vote> = HashMap::new();
        let mut outofelection: HashMap<i64, Vote> = HashMap::new();
        let mut not_timeout = min_interval.max(1);
        {
            let mut p = self.shared.proposal.lock();
            self.shared.logicalclock.fetch_add(1, Ordering::AcqRel);
            *p = Proposal { id: self.init_id(), zxid: self.init_last_logged_zxid(), epoch: self.init_peer_epoch() };
        }
        log::info!("New election. My id = {}, proposed zxid=0x{:x}", peer.myid, self.shared.proposal.lock().zxid);
        self.send_notifications();

        while peer.peer_state() == ServerState::Looking && !self.shared.stop.load(Ordering::Acquire) {
            let polled = self.poll(not_timeout);
            if peer.is_shutting_down_le() {
                // A newer configuration arrived (WorkerReceiver's processReconfig): this
                // round ends and the next one runs under it.
                log::info!("restarting leader election");
                return None;
            }
            let Some(n) = polled else {
                // Nothing came: resend if something got through, else redial everyone.
                if self.shared.manager.have_delivered() {
                    self.send_notifications();
                } else {
                    self.shared.manager.connect_all();
                }
                not_timeout = (not_timeout << 1).min(max_interval);
                log::info!("Notification time out: {not_timeout} ms");
                continue;
            };
            if !(self.shared.valid_voter(n.sid) && self.shared.valid_voter(n.leader)) {
                if !self.shared.valid_voter(n.leader) {
                    log::warn!("Ignoring notification for non-cluster member sid {} from sid {}", n.leader, n.sid);
                }
                if !self.shared.valid_voter(n.sid) {
                    log::warn!("Ignoring notification for sid {} from non-quorum member sid {}", n.leader, n.sid);
                }
                continue;
            }
            match n.state {
                ServerState::Looking => {
                    if let Some(v) = self.on_looking(n, &mut recvset) {
                        return Some(v);
                    }
                }
                ServerState::Observing => log::debug!("Notification from observer: {}", n.sid),
                ServerState::Following => {
                    if let Some(v) = self.received_following_notification(&mut recvset, &mut outofelection, &n) {
                        return Some(v);
                    }
                }
                ServerState::Leading => {
                    if let Some(v) = self.received_following_notification(&mut recvset, &mut outofelection, &n) {
                        return Some(v);
                    }
                    // Only an oracle (a two-server QuorumOracleMaj) could tell us to follow now.
                    log::info!("Oracle indicates not to follow");
                }
            }
        }
        None
    }

    /// A LOOKING peer's notification: adopt the round or a better proposal, record the
    /// vote, and decide once a quorum agrees and nothing better arrives within
    /// finalizeWait.
    fn on_looking(&self, n: Notification, recvset: &mut HashMap<i64, Vote>) -> Option<Vote> {
        if self.init_last_logged_zxid() == -1 {
            log::debug!("Ignoring notification as our zxid is -1");
            return None;
        }
        if n.zxid == -1 {
            log::debug!("Ignoring notification from member with -1 zxid {}", n.sid);
            return None;
        }
        let round = self.logical_clock();
        if n.election_epoch > round {
            self.shared.logicalclock.store(n.election_epoch, Ordering::Release);
            recvset.clear();
            let init = Proposal { id: self.init_id(), zxid: self.init_last_logged_zxid(), epoch: self.init_peer_epoch() };
            if self.beats(n.leader, n.zxid, n.peer_epoch, init) {
                self.shared.update_proposal(n.leader, n.zxid, n.peer_epoch);
            } else {
                self.shared.update_proposal(init.id, init.zxid, init.epoch);
            }
            self.send_notifications();
        } else if n.election_epoch < round {
            log::debug!(
                "Notification election epoch is smaller than logicalclock. n.electionEpoch = 0x{:x}, logicalclock=0x{round:x}",
                n.election_epoch
            );
            return None;
        } else {
            let cur = *self.shared.proposal.lock();
            if self.beats(n.leader, n.zxid, n.peer_epoch, cur) {
                self.shared.update_proposal(n.leader, n.zxid, n.peer_epoch);
                self.send_notifications();
            }
        }
        log::debug!(
            "Adding vote: from={}, proposed leader={}, proposed zxid=0x{:x}, proposed election epoch=0x{:x}",
            n.sid,
            n.leader,
            n.zxid,
            n.election_epoch
        );
        // The version does not matter while looking.
        recvset.insert(n.sid, Vote::with_round(n.leader, n.zxid, n.election_epoch, n.peer_epoch));
        let p = *self.shared.proposal.lock();
        let mine = Vote::with_round(p.id, p.zxid, self.logical_clock(), p.epoch);
        let qv = self.peer().quorum_verifier();
        let ls = self.peer().last_seen_quorum_verifier();
        if !vote_tracker(&qv, ls.as_ref(), recvset, &mine).has_all_quorums() {
            return None;
        }
        // A quorum agrees; wait a little for a better proposal before committing.
        while let Some(n2) = self.poll(FINALIZE_WAIT_MS) {
            let cur = *self.shared.proposal.lock();
            if self.beats(n2.leader, n2.zxid, n2.peer_epoch, cur) {
                let _ = self.shared.recvqueue_tx.send(n2);
                return None;
            }
        }
        self.set_peer_state(p.id);
        let end = Vote::with_round(p.id, p.zxid, self.logical_clock(), p.epoch);
        self.leave_instance(&end);
        Some(end)
    }

    /// `receivedFollowingNotification`: a settled peer tells us who leads. Follow when a
    /// quorum in our round says so, or when a quorum of settled peers (whatever their
    /// round) does — and the leader itself says it leads.
    fn received_following_notification(
        &self,
        recvset: &mut HashMap<i64, Vote>,
        outofelection: &mut HashMap<i64, Vote>,
        n: &Notification,
    ) -> Option<Vote> {
        let myid = self.peer().myid;
        let qv = self.peer().quorum_verifier();
        let ls = self.peer().last_seen_quorum_verifier();
        let vote = Vote { version: n.version, id: n.leader, zxid: n.zxid, election_epoch: n.election_epoch, peer_epoch: n.peer_epoch, state: n.state };
        if n.election_epoch == self.logical_clock() {
            recvset.insert(n.sid, Vote::with_state(n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state));
            if vote_tracker(&qv, ls.as_ref(), recvset, &vote).has_all_quorums()
                && check_leader(recvset, n.leader, n.election_epoch, myid, self.logical_clock())
            {
                self.set_peer_state(n.leader);
                let end = Vote::with_round(n.leader, n.zxid, n.election_epoch, n.peer_epoch);
                self.leave_instance(&end);
                return Some(end);
            }
        }
        outofelection.insert(n.sid, vote);
        if vote_tracker(&qv, ls.as_ref(), outofelection, &vote).has_all_quorums()
            && check_leader(outofelection, n.leader, n.election_epoch, myid, self.logical_clock())
        {
            {
                let _p = self.shared.proposal.lock();
                self.shared.logicalclock.store(n.election_epoch, Ordering::Release);
                self.set_peer_state(n.leader);
            }
            let end = Vote::with_round(n.leader, n.zxid, n.election_epoch, n.peer_epoch);
            self.leave_instance(&end);
            return Some(end);
        }
        None
    }
}
