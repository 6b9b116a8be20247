//! The request chains of a follower and an observer (`FollowerZooKeeperServer`,
//! `ObserverZooKeeperServer`):
//! - clients' requests: `FollowerRequestProcessor:<sid>` (or `ObserverRequestProcessor`)
//!   → CommitProcessor → FinalRequestProcessor; writes, syncs and session changes are
//!   also forwarded to the leader;
//! - the leader's proposals: SyncRequestProcessor → SendAckRequestProcessor (a follower
//!   acks what it logged; an observer only logs, with `syncEnabled`), and their commits
//!   (or an observer's INFORMs) go to the CommitProcessor.

use std::collections::VecDeque;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::proto::op_code;
use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::persistence::FileTxnLog;
use crate::server::prep_request_processor::REQUEST_OF_DEATH;
use crate::server::quorum::commit_processor::{CommitProcessor, CommitSink};
use crate::server::quorum::learner::{LeaderConnection, UNMATCHED_TXN_COMMIT};
use crate::server::quorum::learner_handler::is_forwarded_write;
use crate::server::quorum::learner_session_tracker::LearnerSessionTracker;
use crate::server::quorum::quorum_packet::{self as qp, encode_parts};
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::request::Request;
use crate::server::request_processor::RequestProcessor;
use crate::server::session_tracker::SessionTracker;
use crate::server::sync_request_processor::SyncRequestProcessor;
use crate::server::zk_database::ZKDatabase;
use crate::server::zookeeper_server::{ServerKind, ZooKeeperServer};

/// A learner's server and the queues its Follower/Observer loop feeds.
pub struct LearnerServer {
    pub zk: Arc<ZooKeeperServer>,
    first_rx: Mutex<Option<Receiver<Request>>>,
    commit: Mutex<Option<CommitSink>>,
    sync_tx: Mutex<Option<Sender<Request>>>,
    /// `pendingTxns`: logged proposals waiting for their COMMIT, in zxid order.
    pending_txns: Mutex<VecDeque<Request>>,
    /// `pendingSyncs`: our clients' syncs waiting for the leader's SYNC.
    pending_syncs: Arc<Mutex<VecDeque<Request>>>,
    observer: bool,
}

impl LearnerServer {
    /// The server (not running yet) on the shared database.
    pub fn new(peer: &Arc<QuorumPeer>, db: Arc<ZKDatabase>, observer: bool) -> Arc<LearnerServer> {
        let tracker = LearnerSessionTracker::new(peer.myid, db.clone(), peer.tick_time, peer.config.local_sessions_enabled);
        let kind = if observer { ServerKind::Observer } else { ServerKind::Follower };
        let (zk, first_rx) = ZooKeeperServer::new(peer.config.clone(), db, peer.myid, kind, SessionTracker::Learner(tracker), Some(peer.clone()));
        Arc::new(LearnerServer {
            zk,
            first_rx: Mutex::new(Some(first_rx)),
            commit: Mutex::new(None),
            sync_tx: Mutex::new(None),
            pending_txns: Mutex::new(VecDeque::new()),
            pending_syncs: Arc::new(Mutex::new(VecDeque::new())),
            observer,
        })
    }

    /// `setupRequestProcessors` + `startup`: the chains, once the sync is done.
    pub fn start(&self, peer: &QuorumPeer, conn: Arc<LeaderConnection>, txn_log: FileTxnLog) -> std::io::Result<()> {
        let zk = &self.zk;
        let sid = peer.myid;
        let (commit_tx, commit_thread) = CommitProcessor::start(sid, true, Arc::new(FinalRequestProcessor::new(zk.clone())))?;
        zk.add_thread(commit_thread);
        let commit = CommitSink(commit_tx);
        *self.commit.lock() = Some(commit.clone());
        let sync_enabled = !self.observer || peer.config.sync_enabled;
        if sync_enabled {
            let (sync_tx, sync_rx) = bounded::<Request>(10_000);
            let next: Box<dyn RequestProcessor> = if self.observer { Box::new(Discard) } else { Box::new(SendAckRequestProcessor { conn: conn.clone() }) };
            let sync = SyncRequestProcessor::new(zk.clone(), next, txn_log);
            zk.add_thread(std::thread::Builder::new().name(format!("SyncThread:{sid}")).spawn(move || sync.run(sync_rx))?);
            *self.sync_tx.lock() = Some(sync_tx.clone());
            zk.on_shutdown(Box::new(move || {
                let _ = sync_tx.send(Request::new(None, 0, 0, REQUEST_OF_DEATH, Vec::new(), Vec::new()));
            }));
        }
        let Some(first_rx) = self.first_rx.lock().take() else {
            return Err(std::io::Error::other("learner server started twice"));
        };
        let pending_syncs = self.pending_syncs.clone();
        let name = if self.observer { format!("ObserverRequestProcessor:{sid}") } else { format!("FollowerRequestProcessor:{sid}") };
        let c2 = commit.clone();
        let conn2 = conn.clone();
        zk.add_thread(std::thread::Builder::new().name(name).spawn(move || follower_request_processor(first_rx, c2, conn2, pending_syncs))?);
        let c3 = commit.clone();
        zk.on_shutdown(Box::new(move || c3.shutdown()));
        *zk.learner_link.lock() = Some(conn);
        zk.start_session_trackers()?;
        Ok(())
    }

    /// `logRequest`: a proposal goes to the log (and, once logged, is acked) and waits
    /// for its COMMIT.
    pub fn log_request(&self, r: Request) {
        let copy = r.log_copy();
        self.pending_txns.lock().push_back(r);
        if let Some(tx) = self.sync_tx.lock().as_ref() {
            let _ = tx.send(copy);
        }
    }

    /// `commit`: the COMMIT must name the oldest pending proposal; anything else means
    /// this follower's history differs from the leader's, and it must not go on.
    pub fn commit(&self, zxid: i64) {
        let request = {
            let mut pending = self.pending_txns.lock();
            let Some(first) = pending.front() else {
                log::warn!("Committing 0x{zxid:x} without seeing txn");
                return;
            };
            let first_zxid = first.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1);
            if first_zxid != zxid {
                log::error!("Committing zxid 0x{zxid:x} but next pending txn 0x{first_zxid:x}");
                std::process::exit(UNMATCHED_TXN_COMMIT);
            }
            pending.pop_front()
        };
        if let (Some(r), Some(c)) = (request, self.commit.lock().as_ref()) {
            c.commit(r);
        }
    }

    /// `sync`: the leader answered the oldest of our clients' syncs.
    pub fn sync(&self) {
        let r = self.pending_syncs.lock().pop_front();
        match (r, self.commit.lock().as_ref()) {
            (Some(r), Some(c)) => c.commit(r),
            (None, _) => log::warn!("Not expecting a sync."),
            _ => {}
        }
    }

    /// `ObserverZooKeeperServer.commitRequest`: an INFORM is logged (with syncEnabled)
    /// and applied.
    pub fn commit_request(&self, r: Request) {
        if let Some(tx) = self.sync_tx.lock().as_ref() {
            let _ = tx.send(r.log_copy());
        }
        if let Some(c) = self.commit.lock().as_ref() {
            c.commit(r);
        }
    }

    /// The configuration the oldest pending txn proposes, if it is a reconfig
    /// (`pendingTxns.element()` at COMMITANDACTIVATE).
    pub fn pending_reconfig(&self, multi_address_enabled: bool) -> Option<crate::server::quorum::flexible::QuorumVerifier> {
        self.pending_txns.lock().front().and_then(|r| crate::server::quorum::learner::reconfig_qv(r, multi_address_enabled))
    }

    pub fn pending_txn_count(&self) -> usize {
        self.pending_txns.lock().len()
    }
}

/// `FollowerRequestProcessor` / `ObserverRequestProcessor`: every request goes to the
/// CommitProcessor first (so the answer finds it waiting), then writes, syncs and global
/// session changes go to the leader.
fn follower_request_processor(rx: Receiver<Request>, commit: CommitSink, conn: Arc<LeaderConnection>, pending_syncs: Arc<Mutex<VecDeque<Request>>>) {
    while let Ok(r) = rx.recv() {
        if r.r#type == REQUEST_OF_DEATH {
            break;
        }
        // A local session's create/close is not forwarded to the leader, nor is a
        // throttled request (upstream exits if one reaches Learner.request).
        let forward = !r.throttled
            && (is_forwarded_write(r.r#type)
            || r.r#type == op_code::SYNC
                || (matches!(r.r#type, op_code::CREATE_SESSION | op_code::CLOSE_SESSION) && !r.is_local_session));
        let mut forwarded = None;
        if forward {
            let mut copy = Request::new(None, r.session_id, r.cxid, r.r#type, r.request.clone(), r.auth_info.clone());
            copy.owner = r.owner;
            if r.r#type == op_code::SYNC {
                pending_syncs.lock().push_back(r.log_copy());
            }
            forwarded = Some(copy);
        }
        commit.request(r);
        if let Some(f) = forwarded {
            if let Err(e) = conn.request(&f) {
                log::warn!("Unable to forward request to the leader: {e}");
                conn.close();
            }
        }
    }
    log::info!("FollowerRequestProcessor exited loop!");
}

/// `SendAckRequestProcessor`: ACK each logged proposal; flush once per group commit.
pub struct SendAckRequestProcessor {
    pub conn: Arc<LeaderConnection>,
}

impl SendAckRequestProcessor {
    fn ack(&self, r: &Request) {
        if r.r#type == op_code::SYNC {
            return;
        }
        let Some(hdr) = &r.hdr else { return };
        if let Err(e) = self.conn.write_packet(&encode_parts(qp::ACK, hdr.zxid, None), false) {
            log::warn!("Closing connection to leader, exception during packet send: {e}");
            self.conn.close();
        }
        crate::server::fault_points::hit("follower.ack.queued");
    }
}

impl RequestProcessor for SendAckRequestProcessor {
    fn process_request(&mut self, request: Request) {
        self.ack(&request);
        if let Err(e) = self.conn.flush() {
            log::warn!("Closing connection to leader, exception during packet send: {e}");
            self.conn.close();
        }
    }

    fn process_batch(&mut self, requests: &mut Vec<Request>) {
        for r in requests.drain(..) {
            self.ack(&r);
        }
        if let Err(e) = self.conn.flush() {
            log::warn!("Closing connection to leader, exception during packet send: {e}");
            self.conn.close();
        }
        crate::server::fault_points::hit("follower.ack.sent");
    }
}

/// An observer's SyncRequestProcessor has nothing after it.
struct Discard;

impl RequestProcessor for Discard {
    fn process_request(&mut self, _request: Request) {}
}
