//! `CommitProcessor` (thread `CommitProcessor:<sid>`): holds every write until the
//! quorum has committed it, keeps each session's requests in order, and lets reads of
//! sessions with nothing pending through at once. Committed txns that no local client
//! asked for (other servers' writes) are applied as they come.
//!
//! Upstream hands reads and commits to a worker pool (`commitProcessor.numWorkerThreads`);
//! we run FinalRequestProcessor on this thread, which is upstream's behaviour with
//! `zookeeper.commitProcessor.numWorkerThreads=0`: the same order, without the pool.

use std::collections::{HashMap, VecDeque};

use crossbeam_channel::{Receiver, Sender};

use crate::proto::op_code;
use crate::server::request::Request;
use crate::server::request_processor::RequestProcessor;

/// What the CommitProcessor thread consumes.
pub enum CommitEvent {
    /// A request from this server's clients (or, on a leader, from any learner).
    Request(Request),
    /// A txn the quorum committed (a follower's proposal, a leader's commit, or the
    /// SYNC answer for a learner's sync).
    Committed(Request),
    Shutdown,
}

/// `needCommit`: what must wait for the quorum. `match_syncs`: followers and observers
/// also hold a sync until the leader answers it.
pub fn need_commit(r: &Request, match_syncs: bool) -> bool {
    match r.r#type {
        t if op_code::is_quorum_write(t) => true,
        op_code::SYNC => match_syncs,
        // A global session's are txns; a local session's never leave this server.
        op_code::CREATE_SESSION | op_code::CLOSE_SESSION => !r.is_local_session,
        _ => false,
    }
}

/// The state of the processor: per-session queues and the order of pending writes.
pub struct CommitQueues {
    match_syncs: bool,
    /// (session, cxid) of every write waiting for its commit, in arrival order.
    queued_writes: VecDeque<(i64, i32)>,
    /// Per session: the requests that wait behind a pending write.
    pending: HashMap<i64, VecDeque<Request>>,
}

impl CommitQueues {
    pub fn new(match_syncs: bool) -> Self {
        CommitQueues { match_syncs, queued_writes: VecDeque::new(), pending: HashMap::new() }
    }

    /// A new request: the ones that can run now are appended to `ready`.
    pub fn on_request(&mut self, r: Request, ready: &mut Vec<Request>) {
        let s = r.session_id;
        if need_commit(&r, self.match_syncs) {
            self.queued_writes.push_back((s, r.cxid));
            self.pending.entry(s).or_default().push_back(r);
        } else if self.pending.get(&s).is_some_and(|q| !q.is_empty()) {
            self.pending.entry(s).or_default().push_back(r);
        } else {
            ready.push(r);
        }
    }

    /// A committed txn: the local request it answers (or the txn itself), then the reads
    /// of that session that waited behind it.
    pub fn on_committed(&mut self, mut c: Request, ready: &mut Vec<Request>) {
        let key = committed_key(&c);
        if self.queued_writes.front() == Some(&key) {
            self.queued_writes.pop_front();
            let session = key.0;
            let queue = self.pending.entry(session).or_default();
            if let Some(mut local) = queue.pop_front() {
                merge_committed(&mut local, c);
                ready.push(local);
                // Everything of this session up to its next write can go now.
                while let Some(next) = queue.front() {
                    if need_commit(next, self.match_syncs) {
                        break;
                    }
                    if let Some(n) = queue.pop_front() {
                        ready.push(n);
                    }
                }
            }
            if queue.is_empty() {
                self.pending.remove(&session);
            }
        } else {
            ensure_txn(&mut c);
            ready.push(c);
        }
    }

    pub fn pending_count(&self) -> usize {
        self.pending.values().map(|q| q.len()).sum()
    }
}

/// The (session, cxid) a commit answers: the txn header's, or the request's own for a
/// sync answered by the leader.
fn committed_key(c: &Request) -> (i64, i32) {
    match &c.hdr {
        Some(h) => (h.client_id, h.cxid),
        None => (c.session_id, c.cxid),
    }
}

/// Gives the local request what the quorum decided: header, txn and its wire form. A
/// leader's local request already has them (it prepared the txn itself).
fn merge_committed(local: &mut Request, c: Request) {
    if local.hdr.is_none() {
        local.hdr = c.hdr;
        local.txn = c.txn;
        local.digest = c.digest;
        local.zxid = c.zxid;
    }
    if local.txn_bytes.is_none() {
        local.txn_bytes = c.txn_bytes;
    }
    ensure_txn(local);
}

/// Decodes the txn from its wire form when only the bytes came along.
fn ensure_txn(r: &mut Request) {
    if r.txn.is_some() {
        return;
    }
    let (Some(hdr), Some(bytes)) = (&r.hdr, &r.txn_bytes) else { return };
    match crate::server::persistence::util::deserialize_txn_entry(bytes) {
        Ok((_, txn, digest)) => {
            r.txn = txn;
            if r.digest.is_none() {
                r.digest = digest;
            }
        }
        Err(e) => log::error!("Unable to decode committed txn 0x{:x}: {e}", hdr.zxid),
    }
}

pub struct CommitProcessor;

impl CommitProcessor {
    /// Starts the thread; returns the queue that feeds it.
    pub fn start(
        server_id: i64,
        match_syncs: bool,
        next: Box<dyn RequestProcessor>,
    ) -> std::io::Result<(Sender<CommitEvent>, std::thread::JoinHandle<()>)> {
        let (tx, rx): (Sender<CommitEvent>, Receiver<CommitEvent>) = crossbeam_channel::unbounded();
        let t = Self::spawn(server_id, match_syncs, rx, next)?;
        Ok((tx, t))
    }

    /// Starts the thread on a queue made beforehand (a leader's commits need the queue
    /// before the stage behind the processor exists).
    pub fn spawn(
        server_id: i64,
        match_syncs: bool,
        rx: Receiver<CommitEvent>,
        mut next: Box<dyn RequestProcessor>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name(format!("CommitProcessor:{server_id}")).spawn(move || {
            let mut q = CommitQueues::new(match_syncs);
            let mut ready = Vec::new();
            while let Ok(ev) = rx.recv() {
                match ev {
                    CommitEvent::Request(r) => q.on_request(r, &mut ready),
                    CommitEvent::Committed(c) => q.on_committed(c, &mut ready),
                    CommitEvent::Shutdown => break,
                }
                for r in ready.drain(..) {
                    next.process_request(r);
                }
            }
            next.shutdown();
            log::info!("CommitProcessor exited loop!");
        })
    }
}

/// Hands client requests to the CommitProcessor (a leader's ProposalRequestProcessor
/// and a learner's request processors feed it this way).
#[derive(Clone)]
pub struct CommitSink(pub Sender<CommitEvent>);

impl CommitSink {
    pub fn request(&self, r: Request) {
        let _ = self.0.send(CommitEvent::Request(r));
    }

    pub fn commit(&self, r: Request) {
        let _ = self.0.send(CommitEvent::Committed(r));
    }

    pub fn shutdown(&self) {
        let _ = self.0.send(CommitEvent::Shutdown);
    }
}

/// Decodes the txn of a request that carries only its header and wire bytes (used by
/// observers applying INFORMs directly).
pub fn decoded(mut r: Request) -> Request {
    ensure_txn(&mut r);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::txn::TxnHeader;

    fn req(session: i64, cxid: i32, t: i32) -> Request {
        Request::new(None, session, cxid, t, Vec::new(), Vec::new())
    }

    fn committed(session: i64, cxid: i32, zxid: i64, t: i32) -> Request {
        let mut r = req(session, cxid, t);
        r.hdr = Some(TxnHeader { client_id: session, cxid, zxid, time: 0, r#type: t });
        r.zxid = zxid;
        r
    }

    fn ids(v: &[Request]) -> Vec<(i64, i32)> {
        v.iter().map(|r| (r.session_id, r.cxid)).collect()
    }

    #[test]
    fn reads_wait_behind_their_sessions_writes_only() {
        let mut q = CommitQueues::new(true);
        let mut ready = Vec::new();
        q.on_request(req(1, 1, op_code::SET_DATA), &mut ready);
        q.on_request(req(1, 2, op_code::GET_DATA), &mut ready);
        q.on_request(req(2, 1, op_code::GET_DATA), &mut ready);
        assert_eq!(ids(&ready), vec![(2, 1)], "another session's read runs at once");
        ready.clear();
        // Another server's write is applied as it comes.
        q.on_committed(committed(9, 4, 10, op_code::CREATE), &mut ready);
        assert_eq!(ids(&ready), vec![(9, 4)]);
        ready.clear();
        q.on_committed(committed(1, 1, 11, op_code::SET_DATA), &mut ready);
        assert_eq!(ids(&ready), vec![(1, 1), (1, 2)]);
        assert_eq!(ready[0].hdr.as_ref().map(|h| h.zxid), Some(11), "the local request gets the committed header");
        assert_eq!(q.pending_count(), 0);
    }

    #[test]
    fn local_session_changes_need_no_commit() {
        let mut q = CommitQueues::new(true);
        let mut ready = Vec::new();
        let mut create = req(1, 0, op_code::CREATE_SESSION);
        create.is_local_session = true;
        q.on_request(create, &mut ready);
        let mut close = req(1, 1, op_code::CLOSE_SESSION);
        close.is_local_session = true;
        q.on_request(close, &mut ready);
        assert_eq!(ids(&ready), vec![(1, 0), (1, 1)]);
        ready.clear();
        q.on_request(req(2, 0, op_code::CREATE_SESSION), &mut ready);
        assert!(ready.is_empty(), "a global session waits for its txn");
    }

    #[test]
    fn syncs_wait_on_learners_only() {
        let mut q = CommitQueues::new(false);
        let mut ready = Vec::new();
        q.on_request(req(1, 1, op_code::SYNC), &mut ready);
        assert_eq!(ready.len(), 1, "a leader answers sync at once");
        let mut q = CommitQueues::new(true);
        ready.clear();
        q.on_request(req(1, 1, op_code::SYNC), &mut ready);
        assert!(ready.is_empty());
        q.on_committed(req(1, 1, op_code::SYNC), &mut ready);
        assert_eq!(ids(&ready), vec![(1, 1)]);
    }
}
