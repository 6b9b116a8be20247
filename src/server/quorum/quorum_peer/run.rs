//! The `QuorumPeer[myid=N](plain=…)(secure=…)` thread: `startLeaderElection`, then the
//! loop over the peer states — LOOKING runs FastLeaderElection; FOLLOWING, LEADING and
//! OBSERVING run the role (`Follower.followLeader`, `Leader.lead`,
//! `Observer.observeLeader`) until it ends, then the peer is LOOKING again.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::QuorumPeer;
use crate::common::time;
use crate::server::quorum::fast_leader_election::FastLeaderElection;
use crate::server::quorum::quorum_cnx_manager::QuorumCnxManager;
use crate::server::quorum::vote::ServerState;

/// What a peer does once the election gave it a role. Returns when the role ends (the
/// leader is gone, the quorum is lost, the peer shuts down).
pub trait Roles: Send + Sync {
    fn follow_leader(&self, peer: &Arc<QuorumPeer>);
    fn lead(&self, peer: &Arc<QuorumPeer>);
    fn observe_leader(&self, peer: &Arc<QuorumPeer>);
}

/// The running peer: its election and its thread.
pub struct RunningPeer {
    pub peer: Arc<QuorumPeer>,
    pub qcm: Arc<QuorumCnxManager>,
    pub fle: Arc<FastLeaderElection>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl RunningPeer {
    /// `startLeaderElection` + `super.start()`: the connection manager's listener, the
    /// election's Messenger, then the QuorumPeer thread.
    pub fn start(peer: Arc<QuorumPeer>, roles: Arc<dyn Roles>) -> io::Result<Arc<RunningPeer>> {
        if peer.peer_state() == ServerState::Looking {
            let z = peer.last_logged_zxid();
            let e = peer.epochs.current();
            peer.set_current_vote(crate::server::quorum::vote::Vote::new(peer.myid, z, e));
        }
        let qcm = QuorumCnxManager::new(peer.clone());
        peer.set_qcm(&qcm);
        qcm.start_listener()?;
        let fle = Arc::new(FastLeaderElection::start(peer.clone(), Arc::new(qcm.clone()))?);
        let rp = Arc::new(RunningPeer { peer: peer.clone(), qcm, fle, thread: Mutex::new(None) });
        let r2 = rp.clone();
        let t = thread::Builder::new().name(peer.thread_name()).spawn(move || main_loop(&r2, roles.as_ref()))?;
        *rp.thread.lock() = Some(t);
        Ok(rp)
    }

    /// Stops the loop, the election and the connection manager, and waits for the
    /// QuorumPeer thread.
    pub fn shutdown(&self) {
        self.peer.stop_running();
        self.fle.shutdown();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    pub fn join(&self) {
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn main_loop(rp: &RunningPeer, roles: &dyn Roles) {
    let peer = &rp.peer;
    log::debug!("Starting quorum peer");
    while peer.is_running() {
        match peer.peer_state() {
            ServerState::Looking => {
                log::info!("LOOKING");
                // `readonlymode.enabled`: a read-only server starts if the election
                // takes longer than the grace period, and stops when it ends.
                let ro = if crate::system_properties::get_bool("readonlymode.enabled") {
                    log::info!("Attempting to start ReadOnlyZooKeeperServer");
                    ReadOnlyManager::start(peer)
                } else {
                    None
                };
                // `reconfigFlagClear` + `shuttingDownLE`: a configuration committed or
                // learnt since the last round applies to this one.
                peer.reconfig_flag_clear();
                if peer.take_shutting_down_le() {
                    log::info!("Leader election restarts under config version {:x}", peer.quorum_verifier().version());
                }
                match rp.fle.look_for_leader() {
                    Some(v) => peer.set_current_vote(v),
                    None => {
                        if peer.is_running() {
                            peer.set_peer_state(ServerState::Looking);
                        }
                    }
                }
                if let Some(ro) = ro {
                    ro.stop(peer);
                }
            }
            ServerState::Observing => {
                log::info!("OBSERVING");
                record_election_time(peer);
                roles.observe_leader(peer);
                update_server_state(peer);
            }
            ServerState::Following => {
                log::info!("FOLLOWING");
                roles.follow_leader(peer);
                update_server_state(peer);
            }
            ServerState::Leading => {
                log::info!("LEADING");
                roles.lead(peer);
                update_server_state(peer);
            }
        }
    }
    log::warn!("QuorumPeer main thread exited");
}

/// The `roZkMgr` thread of upstream's LOOKING state: waits max(2000, tickTime) ms,
/// then starts the read-only server if the peer is still LOOKING.
struct ReadOnlyManager {
    state: Arc<(Mutex<ReadOnlyState>, Condvar)>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct ReadOnlyState {
    cancelled: bool,
    server: Option<Arc<crate::server::zookeeper_server::ZooKeeperServer>>,
}

impl ReadOnlyManager {
    fn start(peer: &Arc<QuorumPeer>) -> Option<ReadOnlyManager> {
        let db = peer.database()?;
        let state: Arc<(Mutex<ReadOnlyState>, Condvar)> = Arc::default();
        let st = state.clone();
        let p = peer.clone();
        let grace = Duration::from_millis(u64::try_from(peer.tick_time.max(2000)).unwrap_or(2000));
        let spawned = thread::Builder::new().name("ReadOnlyZooKeeperServerManager".into()).spawn(move || {
            let (lock, cv) = &*st;
            let mut g = lock.lock();
            let deadline = std::time::Instant::now() + grace;
            while !g.cancelled {
                if cv.wait_until(&mut g, deadline).timed_out() {
                    break;
                }
            }
            if g.cancelled {
                log::info!("Interrupted while attempting to start ReadOnlyZooKeeperServer, not started");
                return;
            }
            if p.peer_state() != ServerState::Looking || !p.is_running() {
                return;
            }
            match crate::server::quorum::read_only_zookeeper_server::start(&p, db) {
                Ok(zk) => g.server = Some(zk),
                Err(e) => log::error!("FAILED to start ReadOnlyZooKeeperServer: {e}"),
            }
        });
        match spawned {
            Ok(thread) => Some(ReadOnlyManager { state, thread }),
            Err(e) => {
                log::error!("FAILED to start ReadOnlyZooKeeperServer: {e}");
                None
            }
        }
    }

    /// The election ended: interrupt the grace period, or shut the server down.
    fn stop(self, peer: &QuorumPeer) {
        let server = {
            let (lock, cv) = &*self.state;
            let mut g = lock.lock();
            g.cancelled = true;
            cv.notify_all();
            g.server.take()
        };
        let _ = self.thread.join();
        let server = server.or_else(|| self.state.0.lock().server.take());
        if let Some(zk) = server {
            crate::server::quorum::read_only_zookeeper_server::shutdown(peer, &zk);
        }
    }
}

/// `end_fle - start_fle`, as Leader.lead / Follower.followLeader record it.
pub fn record_election_time(peer: &QuorumPeer) -> i64 {
    let end = time::current_elapsed_time();
    peer.end_fle.store(end, Ordering::Release);
    let taken = end - peer.start_fle.load(Ordering::Acquire);
    peer.election_time_taken.store(taken, Ordering::Release);
    taken
}

/// `updateServerState`: after a role ends the peer looks for a leader again — unless a
/// committed reconfig already named its next role (the designated leader, or this
/// peer's new learner type), which it then takes without an election.
fn update_server_state(peer: &QuorumPeer) {
    if !peer.is_running() {
        return;
    }
    if !peer.reconfig_flag() {
        peer.set_peer_state(ServerState::Looking);
        log::warn!("PeerState set to LOOKING");
        return;
    }
    let next = if peer.myid == peer.current_vote().id {
        ServerState::Leading
    } else if peer.learner_type() == crate::server::quorum::quorum_server::LearnerType::Participant {
        ServerState::Following
    } else {
        ServerState::Observing
    };
    peer.set_peer_state(next);
    log::debug!("PeerState set to {}", next.name());
    peer.reconfig_flag_clear();
}

/// The roles of a replicated server: Zab's leader, follower and observer on the
/// peer's database.
pub struct ZabRoles {
    pub db: Arc<crate::server::zk_database::ZKDatabase>,
}

impl Roles for ZabRoles {
    fn follow_leader(&self, peer: &Arc<QuorumPeer>) {
        crate::server::quorum::follower::follow_leader(peer, &self.db);
    }

    fn lead(&self, peer: &Arc<QuorumPeer>) {
        crate::server::quorum::leader::lead_with(peer, &self.db);
    }

    fn observe_leader(&self, peer: &Arc<QuorumPeer>) {
        crate::server::quorum::observer::observe_leader(peer, &self.db);
    }
}

/// The roles before Zab: log the outcome and hold it until the peer stops, answering
/// LOOKING peers through the WorkerReceiver meanwhile.
pub struct ElectionOnly;

impl ElectionOnly {
    fn hold(peer: &QuorumPeer) {
        while peer.is_running() {
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Roles for ElectionOnly {
    fn follow_leader(&self, peer: &Arc<QuorumPeer>) {
        let t = record_election_time(peer);
        log::info!("FOLLOWING - LEADER ELECTION TOOK - {t} MS");
        Self::hold(peer);
    }

    fn lead(&self, peer: &Arc<QuorumPeer>) {
        let t = record_election_time(peer);
        log::info!("LEADING - LEADER ELECTION TOOK - {t} MS");
        Self::hold(peer);
    }

    fn observe_leader(&self, peer: &Arc<QuorumPeer>) {
        Self::hold(peer);
    }
}
