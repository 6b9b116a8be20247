//! `CommitProcessor` (thread `CommitProcessor:<sid>`): holds every write until the
//! quorum has committed it, keeps each session's requests in order, and lets reads of
//! sessions with nothing pending through at once. Committed txns that no local client
//! asked for (other servers' writes) are applied as they come.
//!
//! As upstream (3.6+), the rest of the chain runs on a [`WorkerService`] of
//! `zookeeper.commitProcessor.numWorkerThreads` assignable threads (`CommitProcWorkThread-<i>`):
//! a request goes to the worker of its session, so one session's requests run in order,
//! while reads of different sessions run in parallel. Writes run on this thread, one at
//! a time, and only once no request is in flight in the pool: a write never races a read
//! of another session that could set a watch it should trigger. With 0 worker threads
//! everything runs on this thread.
//!
//! The decisions (which request may run now, how many reads or commits per round) are
//! made by [`CommitQueues`], which has no threads; the thread around it only moves
//! requests between the queue, the pool and the next processor.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::{Condvar, Mutex};

use crate::common::time::current_elapsed_time as now;
use crate::proto::op_code;
use crate::server::request::Request;
use crate::server::request_processor::SharedRequestProcessor;
use crate::server::server_stats::Summary;
use crate::server::worker_service::{WorkRequest, WorkerService};

/// Worker threads of the pool; default the number of cores, 0 = none.
pub const NUM_WORKER_THREADS: &str = "zookeeper.commitProcessor.numWorkerThreads";
/// How long shutdown waits for the workers (ms); default 5000.
pub const SHUTDOWN_TIMEOUT: &str = "zookeeper.commitProcessor.shutdownTimeout";
/// Reads issued per round before commits get a turn; default -1 (no limit).
pub const MAX_READ_BATCH_SIZE: &str = "zookeeper.commitProcessor.maxReadBatchSize";
/// Commits applied per round before reads get a turn; default 1, must be positive.
pub const MAX_COMMIT_BATCH_SIZE: &str = "zookeeper.commitProcessor.maxCommitBatchSize";

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
    if r.throttled {
        // Never sent to the leader: it goes straight on, to be answered THROTTLEDOP.
        return false;
    }
    match r.r#type {
        t if op_code::is_quorum_write(t) => true,
        op_code::SYNC => match_syncs,
        // A global session's are txns; a local session's never leave this server.
        op_code::CREATE_SESSION | op_code::CLOSE_SESSION => !r.is_local_session,
        _ => false,
    }
}

/// The settings upstream's `CommitProcessor.start` reads from system properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitConfig {
    /// <= 0: no pool, the CommitProcessor thread runs the chain itself.
    pub num_worker_threads: i32,
    pub shutdown_timeout_ms: i64,
    /// Negative: no limit.
    pub max_read_batch_size: i32,
    /// Always positive.
    pub max_commit_batch_size: i32,
}

impl CommitConfig {
    /// Reads the properties and logs them as upstream's `start` / `initBatchSizes` do.
    pub fn from_properties() -> std::io::Result<CommitConfig> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let config = Self::parse(crate::system_properties::get_i64, i32::try_from(cores).unwrap_or(i32::MAX))?;
        log::info!(
            "Configuring CommitProcessor with readBatchSize {} commitBatchSize {}",
            config.max_read_batch_size,
            config.max_commit_batch_size
        );
        if config.num_worker_threads > 0 {
            log::info!("Configuring CommitProcessor with {} worker threads.", config.num_worker_threads);
        } else {
            log::info!("Configuring CommitProcessor with no worker threads.");
        }
        Ok(config)
    }

    /// The settings from a property lookup (`Long.decode` values). Integers follow
    /// `Integer.getInteger`: missing, unparsable or out of int range gives the default.
    /// A non-positive commit batch size is refused (upstream throws
    /// IllegalArgumentException, and the server does not start its chain).
    pub fn parse(get: impl Fn(&str) -> Option<i64>, cores: i32) -> std::io::Result<CommitConfig> {
        let int = |key: &str, default: i32| get(key).and_then(|v| i32::try_from(v).ok()).unwrap_or(default);
        let config = CommitConfig {
            num_worker_threads: int(NUM_WORKER_THREADS, cores),
            shutdown_timeout_ms: get(SHUTDOWN_TIMEOUT).unwrap_or(5000),
            max_read_batch_size: int(MAX_READ_BATCH_SIZE, -1),
            max_commit_batch_size: int(MAX_COMMIT_BATCH_SIZE, 1),
        };
        if config.max_commit_batch_size <= 0 {
            let msg = format!("maxCommitBatchSize must be positive, was {}", config.max_commit_batch_size);
            log::error!("{msg}");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
        }
        Ok(config)
    }

    fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.shutdown_timeout_ms).unwrap_or(0))
    }
}

/// The CommitProcessor's share of upstream's `ServerMetrics` (process-wide, like
/// upstream's singleton); `mntr` prints them under the same names.
pub struct CommitProcMetrics {
    pub reads_queued: Summary,
    pub writes_queued: Summary,
    pub commits_queued_in_processor: Summary,
    pub commits_queued: AtomicI64,
    pub reads_issued: Summary,
    pub writes_issued: Summary,
    pub requests_in_session_queue: Summary,
    pub pending_session_queue_size: Summary,
    pub reads_after_write_in_session_queue: Summary,
    pub session_queues_drained: Summary,
    pub reads_issued_from_session_queue: Summary,
    pub time_waiting_empty_pool: Summary,
    pub concurrent_request_processing: Summary,
    pub write_batch_time: Summary,
    pub commit_process_time: Summary,
    pub read_commitproc_time: Summary,
    pub write_commitproc_time: Summary,
    pub local_write_committed_time: Summary,
    pub server_write_committed_time: Summary,
    pub read_final_proc_time: Summary,
    pub write_final_proc_time: Summary,
}

pub static METRICS: CommitProcMetrics = CommitProcMetrics {
    reads_queued: Summary::new(),
    writes_queued: Summary::new(),
    commits_queued_in_processor: Summary::new(),
    commits_queued: AtomicI64::new(0),
    reads_issued: Summary::new(),
    writes_issued: Summary::new(),
    requests_in_session_queue: Summary::new(),
    pending_session_queue_size: Summary::new(),
    reads_after_write_in_session_queue: Summary::new(),
    session_queues_drained: Summary::new(),
    reads_issued_from_session_queue: Summary::new(),
    time_waiting_empty_pool: Summary::new(),
    concurrent_request_processing: Summary::new(),
    write_batch_time: Summary::new(),
    commit_process_time: Summary::new(),
    read_commitproc_time: Summary::new(),
    write_commitproc_time: Summary::new(),
    local_write_committed_time: Summary::new(),
    server_write_committed_time: Summary::new(),
    read_final_proc_time: Summary::new(),
    write_final_proc_time: Summary::new(),
};

impl CommitProcMetrics {
    /// The summary `mntr` prints under upstream's name.
    pub fn summary(&self, name: &str) -> Option<&Summary> {
        Some(match name {
            "read_commit_proc_req_queued" => &self.reads_queued,
            "write_commit_proc_req_queued" => &self.writes_queued,
            "commit_commit_proc_req_queued" => &self.commits_queued_in_processor,
            "read_commit_proc_issued" => &self.reads_issued,
            "write_commit_proc_issued" => &self.writes_issued,
            "requests_in_session_queue" => &self.requests_in_session_queue,
            "pending_session_queue_size" => &self.pending_session_queue_size,
            "reads_after_write_in_session_queue" => &self.reads_after_write_in_session_queue,
            "session_queues_drained" => &self.session_queues_drained,
            "reads_issued_from_session_queue" => &self.reads_issued_from_session_queue,
            "time_waiting_empty_pool_in_commit_processor_read_ms" => &self.time_waiting_empty_pool,
            "concurrent_request_processing_in_commit_processor" => &self.concurrent_request_processing,
            "write_batch_time_in_commit_processor" => &self.write_batch_time,
            "commit_process_time" => &self.commit_process_time,
            "read_commitproc_time_ms" => &self.read_commitproc_time,
            "write_commitproc_time_ms" => &self.write_commitproc_time,
            "local_write_committed_time_ms" => &self.local_write_committed_time,
            "server_write_committed_time_ms" => &self.server_write_committed_time,
            "read_final_proc_time_ms" => &self.read_final_proc_time,
            "write_final_proc_time_ms" => &self.write_final_proc_time,
            _ => return None,
        })
    }

    /// The counter `request_commit_queued`.
    pub fn counter(&self, name: &str) -> Option<i64> {
        (name == "request_commit_queued").then(|| self.commits_queued.load(Ordering::Relaxed))
    }

    /// `srst`.
    pub fn reset(&self) {
        for s in [
            &self.reads_queued,
            &self.writes_queued,
            &self.commits_queued_in_processor,
            &self.reads_issued,
            &self.writes_issued,
            &self.requests_in_session_queue,
            &self.pending_session_queue_size,
            &self.reads_after_write_in_session_queue,
            &self.session_queues_drained,
            &self.reads_issued_from_session_queue,
            &self.time_waiting_empty_pool,
            &self.concurrent_request_processing,
            &self.write_batch_time,
            &self.commit_process_time,
            &self.read_commitproc_time,
            &self.write_commitproc_time,
            &self.local_write_committed_time,
            &self.server_write_committed_time,
            &self.read_final_proc_time,
            &self.write_final_proc_time,
        ] {
            s.reset();
        }
        self.commits_queued.store(0, Ordering::Relaxed);
    }
}

/// The queues of the processor and the rules that take requests out of them (upstream's
/// `run` loop without its threads). One round is [`issue_reads`](Self::issue_reads),
/// then, when it says a commit is waiting and once the pool is empty,
/// [`issue_commits`](Self::issue_commits).
pub struct CommitQueues {
    match_syncs: bool,
    max_read_batch_size: i32,
    max_commit_batch_size: usize,
    /// `queuedRequests`: arrived, not yet looked at.
    queued_requests: VecDeque<Request>,
    /// `queuedWriteRequests`: (session, cxid) of every request that needs a commit, in
    /// arrival order, recorded on arrival (a commit can come before its request left
    /// `queued_requests` when a read batch limit stopped the round).
    queued_writes: VecDeque<(i64, i32)>,
    /// `committedRequests`.
    committed: VecDeque<Request>,
    /// `pendingRequests`: per session, a write waiting for its commit and what came
    /// after it.
    pending: HashMap<i64, VecDeque<Request>>,
    /// `numReadQueuedRequests` / `numWriteQueuedRequests`, for the metrics.
    num_read_queued: i64,
    num_write_queued: i64,
}

impl CommitQueues {
    /// Upstream's defaults: no read batch limit, one commit per round.
    pub fn new(match_syncs: bool) -> Self {
        Self::with_batches(match_syncs, -1, 1)
    }

    pub fn with_batches(match_syncs: bool, max_read_batch_size: i32, max_commit_batch_size: i32) -> Self {
        CommitQueues {
            match_syncs,
            max_read_batch_size,
            max_commit_batch_size: usize::try_from(max_commit_batch_size).unwrap_or(1).max(1),
            queued_requests: VecDeque::new(),
            queued_writes: VecDeque::new(),
            committed: VecDeque::new(),
            pending: HashMap::new(),
            num_read_queued: 0,
            num_write_queued: 0,
        }
    }

    /// `processRequest`.
    pub fn push_request(&mut self, r: Request) {
        if need_commit(&r, self.match_syncs) {
            self.queued_writes.push_back((r.session_id, r.cxid));
            self.num_write_queued += 1;
        } else {
            self.num_read_queued += 1;
        }
        self.queued_requests.push_back(r);
    }

    /// `commit`.
    pub fn push_committed(&mut self, c: Request) {
        self.committed.push_back(c);
    }

    /// Whether a round can do anything: something arrived, or the oldest commit can be
    /// applied. (A commit that waits for its request to be looked at implies the
    /// request is in `queued_requests`.)
    pub fn has_work(&self) -> bool {
        !self.queued_requests.is_empty() || self.commit_ready()
    }

    fn commit_ready(&self) -> bool {
        let Some(c) = self.committed.front() else { return false };
        if self.queued_writes.front() != Some(&committed_key(c)) {
            return true;
        }
        self.pending.get(&committed_key(c).0).and_then(|q| q.front()).is_some_and(|h| need_commit(h, self.match_syncs))
    }

    /// The first half of a round: looks at what arrived (what was there when the round
    /// began), parks writes and whatever follows a pending write of the same session,
    /// and appends the reads that may run now to `ready`. Returns whether a commit is
    /// waiting (then the caller empties the pool and calls `issue_commits`).
    ///
    /// With a read batch limit `m >= 0`, the round stops looking once `m + 1` reads were
    /// issued (upstream tests `readsProcessed <= maxReadBatchSize` before each poll;
    /// kept so that a limit of 0 still lets one read through per round). Without a
    /// limit, the round stops as soon as a session has a pending write and a commit is
    /// waiting, so that commits are not starved by a stream of reads.
    pub fn issue_reads(&mut self, ready: &mut Vec<Request>) -> bool {
        let mut to_process = self.queued_requests.len();
        let mut reads = 0i64;
        let mut commit_waiting = false;
        while to_process > 0 && (self.max_read_batch_size < 0 || reads <= i64::from(self.max_read_batch_size)) {
            let Some(r) = self.queued_requests.pop_front() else { break };
            to_process -= 1;
            if need_commit(&r, self.match_syncs) || self.pending.contains_key(&r.session_id) {
                let q = self.pending.entry(r.session_id).or_default();
                q.push_back(r);
                METRICS.requests_in_session_queue.add(q.len() as i64);
            } else {
                reads += 1;
                self.num_read_queued -= 1;
                ready.push(r);
            }
            if self.max_read_batch_size < 0 && !self.pending.is_empty() && !self.committed.is_empty() {
                commit_waiting = true;
                break;
            }
        }
        METRICS.reads_issued.add(reads);
        commit_waiting || !self.committed.is_empty()
    }

    /// The second half of a round, with the pool empty: up to the commit batch size of
    /// committed txns, in order, go to `writes` (to run one after the other); a commit
    /// of a local write takes the local request (which has the client to answer) with
    /// the committed header. Stops early at a commit whose local request was not looked
    /// at yet. Then the reads that waited behind those writes go to `reads_after`.
    pub fn issue_commits(&mut self, writes: &mut Vec<Request>, reads_after: &mut Vec<Request>) {
        let mut budget = self.max_commit_batch_size;
        let mut drained: Vec<i64> = Vec::new();
        let mut issued = 0i64;
        while budget > 0 {
            let Some(head) = self.committed.front() else { break };
            let key = committed_key(head);
            let local = if self.queued_writes.front() == Some(&key) {
                METRICS.pending_session_queue_size.add(self.pending.len() as i64);
                let Some(q) = self.pending.get_mut(&key.0).filter(|q| q.front().is_some_and(|h| need_commit(h, self.match_syncs)))
                else {
                    // Its request is still among those not looked at: the next round.
                    break;
                };
                METRICS.requests_in_session_queue.add(q.len() as i64);
                q.pop_front()
            } else {
                None
            };
            let Some(mut c) = self.committed.pop_front() else { break };
            let request = match local {
                Some(mut local) => {
                    self.queued_writes.pop_front();
                    self.num_write_queued -= 1;
                    if !drained.contains(&key.0) {
                        drained.push(key.0);
                    }
                    merge_committed(&mut local, c);
                    local
                }
                None => {
                    ensure_txn(&mut c);
                    c
                }
            };
            budget -= 1;
            issued += 1;
            writes.push(request);
        }
        METRICS.writes_issued.add(issued);
        let mut reads = 0i64;
        for session in &drained {
            let Some(q) = self.pending.get_mut(session) else { continue };
            let mut after = 0i64;
            while q.front().is_some_and(|n| !need_commit(n, self.match_syncs)) {
                if let Some(n) = q.pop_front() {
                    self.num_read_queued -= 1;
                    reads_after.push(n);
                    after += 1;
                }
            }
            METRICS.reads_after_write_in_session_queue.add(after);
            reads += after;
            if q.is_empty() {
                self.pending.remove(session);
            }
        }
        METRICS.session_queues_drained.add(drained.len() as i64);
        METRICS.reads_issued_from_session_queue.add(reads);
    }

    /// Requests parked in session queues.
    pub fn pending_count(&self) -> usize {
        self.pending.values().map(|q| q.len()).sum()
    }

    /// Samples the queue lengths once per round, as upstream does.
    fn record_queue_sizes(&self) {
        METRICS.reads_queued.add(self.num_read_queued);
        METRICS.writes_queued.add(self.num_write_queued);
        METRICS.commits_queued_in_processor.add(self.committed.len() as i64);
    }

    /// `halt`: what arrived but was not looked at is dropped.
    fn clear(&mut self) {
        self.queued_requests.clear();
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
    local.commit_recv_time = c.commit_recv_time;
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

/// `processCommitMetrics`: time in the processor (and since the commit) of a request
/// about to run.
fn record_commit_metrics(r: &Request, is_write: bool) {
    let t = now();
    if is_write {
        if r.commit_proc_queue_start_time != -1 && r.commit_recv_time != -1 {
            METRICS.write_commitproc_time.add(t - r.commit_proc_queue_start_time);
            METRICS.local_write_committed_time.add(t - r.commit_recv_time);
        } else if r.commit_recv_time != -1 {
            METRICS.server_write_committed_time.add(t - r.commit_recv_time);
        }
    } else if r.commit_proc_queue_start_time != -1 {
        METRICS.read_commitproc_time.add(t - r.commit_proc_queue_start_time);
    }
}

/// What the processor thread and its workers share: `numRequestsProcessing` with the
/// `emptyPoolSync` monitor, and `stopped`.
struct PoolState {
    in_flight: Mutex<usize>,
    empty: Condvar,
    stopped: AtomicBool,
    /// Wakes the processor thread when a worker halts it.
    wake: Sender<()>,
}

impl PoolState {
    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn started(&self) {
        *self.in_flight.lock() += 1;
    }

    fn finished(&self) {
        let mut n = self.in_flight.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.empty.notify_all();
        }
    }

    /// `halt`'s signalling half: nothing more runs, and a processor thread waiting for
    /// the pool or for requests wakes up.
    fn halt(&self) {
        self.stopped.store(true, Ordering::Release);
        {
            let _n = self.in_flight.lock();
            self.empty.notify_all();
        }
        let _ = self.wake.try_send(());
    }
}

/// Decrements the in-flight count however the work ends (a panic included).
struct InFlight<'a>(&'a PoolState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.finished();
    }
}

/// `CommitWorkRequest`: one request run on a worker.
struct CommitWork {
    request: Option<Request>,
    next: Arc<dyn SharedRequestProcessor>,
    pool: Arc<PoolState>,
    match_syncs: bool,
}

impl WorkRequest for CommitWork {
    fn do_work(&mut self) {
        let _in_flight = InFlight(&self.pool);
        let Some(r) = self.request.take() else { return };
        let is_write = need_commit(&r, self.match_syncs);
        record_commit_metrics(&r, is_write);
        let t = now();
        self.next.process_request(r);
        let elapsed = now() - t;
        if is_write {
            METRICS.write_final_proc_time.add(elapsed);
        } else {
            METRICS.read_final_proc_time.add(elapsed);
        }
    }

    fn cleanup(&mut self) {
        if !self.pool.stopped() {
            log::error!("Exception thrown by downstream processor, unable to continue.");
            self.pool.halt();
        }
    }
}

/// The processor thread's state.
struct Processor {
    queues: CommitQueues,
    rx: Receiver<CommitEvent>,
    wake_rx: Receiver<()>,
    pool: WorkerService,
    state: Arc<PoolState>,
    next: Arc<dyn SharedRequestProcessor>,
    match_syncs: bool,
    shutdown_timeout: Duration,
}

impl Processor {
    fn new(config: CommitConfig, match_syncs: bool, rx: Receiver<CommitEvent>, next: Arc<dyn SharedRequestProcessor>) -> std::io::Result<Processor> {
        let (wake, wake_rx) = crossbeam_channel::bounded(1);
        let pool = WorkerService::new("CommitProcWork", config.num_worker_threads)?;
        Ok(Processor {
            queues: CommitQueues::with_batches(match_syncs, config.max_read_batch_size, config.max_commit_batch_size),
            rx,
            wake_rx,
            pool,
            state: Arc::new(PoolState { in_flight: Mutex::new(0), empty: Condvar::new(), stopped: AtomicBool::new(false), wake }),
            next,
            match_syncs,
            shutdown_timeout: config.shutdown_timeout(),
        })
    }

    /// Takes in an event; false on Shutdown.
    fn accept(&mut self, ev: CommitEvent) -> bool {
        match ev {
            CommitEvent::Request(mut r) => {
                r.commit_proc_queue_start_time = now();
                self.queues.push_request(r);
            }
            CommitEvent::Committed(mut c) => {
                c.commit_recv_time = now();
                METRICS.commits_queued.fetch_add(1, Ordering::Relaxed);
                self.queues.push_committed(c);
            }
            CommitEvent::Shutdown => {
                log::info!("Shutting down");
                return false;
            }
        }
        true
    }

    /// Waits for something to do, then takes in everything that arrived. False when
    /// the processor must stop.
    fn gather(&mut self) -> bool {
        if !self.queues.has_work() {
            crossbeam_channel::select! {
                recv(self.rx) -> ev => match ev {
                    Ok(ev) => {
                        if !self.accept(ev) {
                            return false;
                        }
                    }
                    // Every sender is gone: nothing more can come.
                    Err(_) => return false,
                },
                recv(self.wake_rx) -> _ => {}
            }
        }
        loop {
            match self.rx.try_recv() {
                Ok(ev) => {
                    if !self.accept(ev) {
                        return false;
                    }
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        !self.state.stopped()
    }

    fn run(mut self) {
        let mut ready = Vec::new();
        let mut writes = Vec::new();
        while self.gather() {
            self.queues.record_queue_sizes();
            let round_start = now();
            let commit_waiting = self.queues.issue_reads(&mut ready);
            for r in ready.drain(..) {
                self.send_to_next(r);
            }
            if commit_waiting && !self.state.stopped() {
                self.wait_for_empty_pool();
                if self.state.stopped() {
                    break;
                }
                let batch_start = now();
                self.queues.issue_commits(&mut writes, &mut ready);
                for w in writes.drain(..) {
                    if self.state.stopped() {
                        break;
                    }
                    self.process_write(w);
                }
                METRICS.write_batch_time.add(now() - batch_start);
                for r in ready.drain(..) {
                    self.send_to_next(r);
                }
            }
            METRICS.commit_process_time.add(now() - round_start);
        }
        log::info!("CommitProcessor exited loop!");
        self.shutdown();
    }

    /// `sendToNextProcessor`: counted in flight until it has run.
    fn send_to_next(&self, r: Request) {
        self.state.started();
        let session = r.session_id;
        let work = CommitWork { request: Some(r), next: self.next.clone(), pool: self.state.clone(), match_syncs: self.match_syncs };
        self.pool.schedule(Box::new(work), session);
    }

    /// `processWrite`: on this thread, with the pool empty.
    fn process_write(&self, r: Request) {
        record_commit_metrics(&r, true);
        let t = now();
        self.next.process_request(r);
        METRICS.write_final_proc_time.add(now() - t);
    }

    /// `waitForEmptyPool`: no read may be running when a write is applied.
    fn wait_for_empty_pool(&self) {
        let start = now();
        let mut n = self.state.in_flight.lock();
        if *n != 0 {
            METRICS.concurrent_request_processing.add(*n as i64);
        }
        while !self.state.stopped() && *n != 0 {
            self.state.empty.wait(&mut n);
        }
        drop(n);
        METRICS.time_waiting_empty_pool.add(now() - start);
    }

    /// `halt` + `shutdown`: drop what was not looked at, stop the pool, give its
    /// workers the shutdown timeout to finish, then shut the next processor down.
    fn shutdown(mut self) {
        self.state.halt();
        self.queues.clear();
        self.pool.stop();
        self.pool.join(self.shutdown_timeout);
        self.next.shutdown();
    }
}

pub struct CommitProcessor;

impl CommitProcessor {
    /// Starts the thread (and its workers, from the system properties); returns the
    /// queue that feeds it.
    pub fn start(
        server_id: i64,
        match_syncs: bool,
        next: Arc<dyn SharedRequestProcessor>,
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
        next: Arc<dyn SharedRequestProcessor>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        Self::spawn_with(CommitConfig::from_properties()?, server_id, match_syncs, rx, next)
    }

    /// [`spawn`](Self::spawn) with explicit settings.
    pub fn spawn_with(
        config: CommitConfig,
        server_id: i64,
        match_syncs: bool,
        rx: Receiver<CommitEvent>,
        next: Arc<dyn SharedRequestProcessor>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let p = Processor::new(config, match_syncs, rx, next)?;
        std::thread::Builder::new().name(format!("CommitProcessor:{server_id}")).spawn(move || p.run())
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
    use std::time::Instant;

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

    /// One round as the processor thread runs it: (reads issued first, writes, reads
    /// issued after the writes).
    fn round(q: &mut CommitQueues) -> (Vec<(i64, i32)>, Vec<(i64, i32)>, Vec<(i64, i32)>) {
        let (mut ready, mut writes, mut after) = (Vec::new(), Vec::new(), Vec::new());
        if q.issue_reads(&mut ready) {
            q.issue_commits(&mut writes, &mut after);
        }
        (ids(&ready), ids(&writes), ids(&after))
    }

    #[test]
    fn reads_wait_behind_their_sessions_writes_only() {
        let mut q = CommitQueues::new(true);
        q.push_request(req(1, 1, op_code::SET_DATA));
        q.push_request(req(1, 2, op_code::GET_DATA));
        q.push_request(req(2, 1, op_code::GET_DATA));
        assert_eq!(round(&mut q), (vec![(2, 1)], vec![], vec![]), "another session's read runs at once");
        assert!(!q.has_work());
        // Another server's write is applied as it comes.
        q.push_committed(committed(9, 4, 10, op_code::CREATE));
        assert!(q.has_work());
        assert_eq!(round(&mut q), (vec![], vec![(9, 4)], vec![]));
        let mut c = committed(1, 1, 11, op_code::SET_DATA);
        c.commit_recv_time = 1234;
        q.push_committed(c);
        let (mut ready, mut writes, mut after) = (Vec::new(), Vec::new(), Vec::new());
        assert!(q.issue_reads(&mut ready));
        q.issue_commits(&mut writes, &mut after);
        assert_eq!((ids(&writes), ids(&after)), (vec![(1, 1)], vec![(1, 2)]), "the read runs after its session's write");
        assert_eq!(writes[0].hdr.as_ref().map(|h| h.zxid), Some(11), "the local request gets the committed header");
        assert_eq!(writes[0].commit_recv_time, 1234);
        assert_eq!(q.pending_count(), 0);
        assert!(!q.has_work());
    }

    #[test]
    fn a_throttled_write_waits_for_no_commit_but_keeps_its_place() {
        let mut q = CommitQueues::new(true);
        let mut throttled = req(1, 1, op_code::CREATE);
        throttled.throttled = true;
        assert!(!need_commit(&throttled, true));
        q.push_request(throttled);
        q.push_request(req(1, 2, op_code::GET_DATA));
        assert_eq!(round(&mut q), (vec![(1, 1), (1, 2)], vec![], vec![]), "both go on at once, in order");
        // Behind a real write of the session, a throttled one waits its turn.
        q.push_request(req(1, 3, op_code::SET_DATA));
        let mut t = req(1, 4, op_code::SET_DATA);
        t.throttled = true;
        q.push_request(t);
        assert_eq!(round(&mut q), (vec![], vec![], vec![]));
        q.push_committed(committed(1, 3, 12, op_code::SET_DATA));
        assert_eq!(round(&mut q), (vec![], vec![(1, 3)], vec![(1, 4)]), "the write, then the throttled one");
        assert!(!q.has_work());
    }

    #[test]
    fn local_session_changes_need_no_commit() {
        let mut q = CommitQueues::new(true);
        let mut create = req(1, 0, op_code::CREATE_SESSION);
        create.is_local_session = true;
        q.push_request(create);
        let mut close = req(1, 1, op_code::CLOSE_SESSION);
        close.is_local_session = true;
        q.push_request(close);
        assert_eq!(round(&mut q).0, vec![(1, 0), (1, 1)]);
        q.push_request(req(2, 0, op_code::CREATE_SESSION));
        assert_eq!(round(&mut q), (vec![], vec![], vec![]), "a global session waits for its txn");
        assert_eq!(q.pending_count(), 1);
    }

    #[test]
    fn syncs_wait_on_learners_only() {
        let mut q = CommitQueues::new(false);
        q.push_request(req(1, 1, op_code::SYNC));
        assert_eq!(round(&mut q).0, vec![(1, 1)], "a leader answers sync at once");
        let mut q = CommitQueues::new(true);
        q.push_request(req(1, 1, op_code::SYNC));
        assert_eq!(round(&mut q), (vec![], vec![], vec![]));
        q.push_committed(req(1, 1, op_code::SYNC));
        assert_eq!(round(&mut q), (vec![], vec![(1, 1)], vec![]));
    }

    #[test]
    fn a_later_write_of_the_session_holds_its_reads_again() {
        let mut q = CommitQueues::new(true);
        for (cxid, t) in [(1, op_code::CREATE), (2, op_code::GET_DATA), (3, op_code::DELETE), (4, op_code::EXISTS)] {
            q.push_request(req(5, cxid, t));
        }
        assert_eq!(round(&mut q), (vec![], vec![], vec![]));
        q.push_committed(committed(5, 1, 1, op_code::CREATE));
        assert_eq!(round(&mut q), (vec![], vec![(5, 1)], vec![(5, 2)]));
        assert_eq!(q.pending_count(), 2, "the delete and the read after it still wait");
        q.push_request(req(5, 5, op_code::GET_DATA));
        assert_eq!(round(&mut q), (vec![], vec![], vec![]), "a new read queues behind the pending delete");
        q.push_committed(committed(5, 3, 2, op_code::DELETE));
        assert_eq!(round(&mut q), (vec![], vec![(5, 3)], vec![(5, 4), (5, 5)]));
        assert_eq!(q.pending_count(), 0);
    }

    #[test]
    fn unlimited_reads_stop_for_a_waiting_commit() {
        let mut q = CommitQueues::new(true);
        q.push_request(req(1, 1, op_code::SET_DATA));
        q.push_committed(committed(1, 1, 7, op_code::SET_DATA));
        for s in 2..6 {
            q.push_request(req(s, 1, op_code::GET_DATA));
        }
        // The write is parked with its commit waiting: the round turns to commits before
        // looking at the reads behind it.
        assert_eq!(round(&mut q), (vec![], vec![(1, 1)], vec![]));
        assert_eq!(round(&mut q).0, vec![(2, 1), (3, 1), (4, 1), (5, 1)]);
    }

    #[test]
    fn read_batch_limit_gives_commits_a_turn() {
        // maxReadBatchSize 2: at most 3 reads per round (upstream's `<=` test).
        let mut q = CommitQueues::with_batches(true, 2, 1);
        for s in 0..8 {
            q.push_request(req(s, 1, op_code::GET_DATA));
        }
        q.push_committed(committed(100, 1, 1, op_code::CREATE));
        q.push_committed(committed(100, 2, 2, op_code::CREATE));
        let (r1, w1, _) = round(&mut q);
        assert_eq!((r1.len(), w1), (3, vec![(100, 1)]));
        let (r2, w2, _) = round(&mut q);
        assert_eq!((r2.len(), w2), (3, vec![(100, 2)]));
        let (r3, w3, _) = round(&mut q);
        assert_eq!((r3.len(), w3.len()), (2, 0));
        // A limit of 0 still lets one read through per round.
        let mut q = CommitQueues::with_batches(true, 0, 1);
        q.push_request(req(1, 1, op_code::GET_DATA));
        q.push_request(req(2, 1, op_code::GET_DATA));
        assert_eq!(round(&mut q).0, vec![(1, 1)]);
        assert_eq!(round(&mut q).0, vec![(2, 1)]);
    }

    #[test]
    fn commit_batch_limit() {
        let mut q = CommitQueues::new(true);
        for z in 1..=5 {
            q.push_committed(committed(100, z as i32, z, op_code::CREATE));
        }
        assert_eq!(round(&mut q).1, vec![(100, 1)], "one commit per round by default");
        let mut q = CommitQueues::with_batches(true, -1, 2);
        for z in 1..=5 {
            q.push_committed(committed(100, z as i32, z, op_code::CREATE));
        }
        assert_eq!(round(&mut q).1, vec![(100, 1), (100, 2)]);
        assert_eq!(round(&mut q).1, vec![(100, 3), (100, 4)]);
        assert_eq!(round(&mut q).1, vec![(100, 5)]);
        assert!(!q.has_work());
    }

    #[test]
    fn a_commit_waits_until_its_request_was_looked_at() {
        // The read limit stops the round before the local write is parked, while its
        // commit is already there: the commit must not be taken for a remote one.
        let mut q = CommitQueues::with_batches(true, 0, 1);
        q.push_request(req(1, 1, op_code::GET_DATA));
        q.push_request(req(2, 1, op_code::GET_DATA));
        q.push_request(req(3, 1, op_code::SET_DATA));
        q.push_committed(committed(3, 1, 9, op_code::SET_DATA));
        assert_eq!(round(&mut q), (vec![(1, 1)], vec![], vec![]));
        assert_eq!(round(&mut q), (vec![(2, 1)], vec![], vec![]));
        assert!(q.has_work());
        let (mut ready, mut writes, mut after) = (Vec::new(), Vec::new(), Vec::new());
        assert!(q.issue_reads(&mut ready));
        q.issue_commits(&mut writes, &mut after);
        assert_eq!(ids(&writes), vec![(3, 1)]);
        assert!(writes[0].commit_proc_queue_start_time == -1 || writes[0].cnxn.is_none());
        assert!(!q.has_work());
    }

    // ------------------------------------------------- the thread and its pool --

    #[derive(Clone, Debug)]
    struct Ran {
        thread: String,
        session: i64,
        cxid: i32,
        write: bool,
        start: Instant,
        end: Instant,
    }

    /// Stands for FinalRequestProcessor: records who ran what when, and counts any
    /// write that overlaps a read.
    struct Recorder {
        ran: parking_lot::Mutex<Vec<Ran>>,
        reads_running: AtomicI64,
        writes_running: AtomicI64,
        max_reads_running: AtomicI64,
        overlaps: AtomicI64,
        read_time: Duration,
        write_time: Duration,
        /// A read of this session takes this long instead.
        slow: Option<(i64, Duration)>,
        shut: AtomicBool,
    }

    impl Recorder {
        fn new(read_time: Duration, write_time: Duration) -> Recorder {
            Recorder {
                ran: parking_lot::Mutex::new(Vec::new()),
                reads_running: AtomicI64::new(0),
                writes_running: AtomicI64::new(0),
                max_reads_running: AtomicI64::new(0),
                overlaps: AtomicI64::new(0),
                read_time,
                write_time,
                slow: None,
                shut: AtomicBool::new(false),
            }
        }

        fn of_session(&self, s: i64) -> Vec<i32> {
            self.ran.lock().iter().filter(|r| r.session == s).map(|r| r.cxid).collect()
        }
    }

    impl SharedRequestProcessor for Recorder {
        fn process_request(&self, r: Request) {
            let write = r.hdr.is_some();
            let start = Instant::now();
            if write {
                self.writes_running.fetch_add(1, Ordering::SeqCst);
                if self.reads_running.load(Ordering::SeqCst) != 0 {
                    self.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(self.write_time);
                self.writes_running.fetch_sub(1, Ordering::SeqCst);
            } else {
                let n = self.reads_running.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_reads_running.fetch_max(n, Ordering::SeqCst);
                if self.writes_running.load(Ordering::SeqCst) != 0 {
                    self.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                let t = match self.slow {
                    Some((s, t)) if s == r.session_id => t,
                    _ => self.read_time,
                };
                std::thread::sleep(t);
                self.reads_running.fetch_sub(1, Ordering::SeqCst);
            }
            let thread = std::thread::current().name().unwrap_or("").to_string();
            self.ran.lock().push(Ran { thread, session: r.session_id, cxid: r.cxid, write, start, end: Instant::now() });
        }

        fn shutdown(&self) {
            self.shut.store(true, Ordering::SeqCst);
        }
    }

    fn config(workers: i32) -> CommitConfig {
        CommitConfig { num_worker_threads: workers, shutdown_timeout_ms: 5000, max_read_batch_size: -1, max_commit_batch_size: 1 }
    }

    fn start(config: CommitConfig, rec: &Arc<Recorder>) -> (CommitSink, std::thread::JoinHandle<()>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let t = CommitProcessor::spawn_with(config, 7, true, rx, rec.clone()).expect("spawn");
        (CommitSink(tx), t)
    }

    fn wait_for(rec: &Recorder, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while rec.ran.lock().len() < n {
            assert!(Instant::now() < deadline, "only {} of {n} requests ran", rec.ran.lock().len());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn reads_of_different_sessions_run_in_parallel_each_in_order() {
        let rec = Arc::new(Recorder::new(Duration::from_millis(100), Duration::ZERO));
        let (sink, t) = start(config(2), &rec);
        let begin = Instant::now();
        for cxid in 1..=3 {
            sink.request(req(10, cxid, op_code::GET_DATA));
            sink.request(req(11, cxid, op_code::GET_DATA));
        }
        wait_for(&rec, 6);
        let took = begin.elapsed();
        assert_eq!(rec.of_session(10), vec![1, 2, 3]);
        assert_eq!(rec.of_session(11), vec![1, 2, 3]);
        assert_eq!(rec.max_reads_running.load(Ordering::SeqCst), 2, "two sessions' reads at once");
        assert!(took < Duration::from_millis(550), "6 reads of 100 ms on 2 workers took {took:?}");
        let ran = rec.ran.lock().clone();
        for r in &ran {
            // Session ids map to a worker by id mod n (10 → 1st, 11 → 2nd).
            let want = format!("CommitProcWorkThread-{}", (r.session % 2) + 1);
            assert_eq!(r.thread, want, "{r:?}");
        }
        sink.shutdown();
        t.join().expect("join");
        assert!(rec.shut.load(Ordering::SeqCst), "the next processor is shut down");
    }

    #[test]
    fn writes_never_run_while_a_read_is_in_flight() {
        let rec = Arc::new(Recorder::new(Duration::from_millis(30), Duration::from_millis(5)));
        let (sink, t) = start(config(3), &rec);
        // Reads of several sessions, a remote commit right behind them, more reads.
        for s in 0..6 {
            sink.request(req(s, 1, op_code::GET_DATA));
        }
        sink.commit(committed(100, 1, 1, op_code::CREATE));
        for s in 0..6 {
            sink.request(req(s, 2, op_code::GET_DATA));
        }
        wait_for(&rec, 13);
        let ran = rec.ran.lock().clone();
        let write = ran.iter().find(|r| r.write).cloned().expect("the write ran");
        assert_eq!(write.thread, "CommitProcessor:7", "writes run on the processor thread");
        for r in ran.iter().filter(|r| !r.write) {
            assert!(r.end <= write.start || r.start >= write.end, "read {r:?} overlaps write {write:?}");
            if r.cxid == 1 {
                assert!(r.end <= write.start, "a read issued before the commit ends before it: {r:?}");
            }
        }
        assert_eq!(rec.overlaps.load(Ordering::SeqCst), 0);
        sink.shutdown();
        t.join().expect("join");
    }

    /// Several sessions with mixed reads and writes, commits coming from another thread
    /// as a leader's would: every session's requests run in its order, writes in commit
    /// order, and never beside a read.
    #[test]
    fn mixed_sessions_keep_their_order_under_the_pool() {
        let rec = Arc::new(Recorder::new(Duration::from_millis(1), Duration::ZERO));
        let (sink, t) = start(config(3), &rec);
        let (leader_tx, leader_rx) = crossbeam_channel::unbounded::<(i64, i32)>();
        let commit_sink = sink.clone();
        let leader = std::thread::spawn(move || {
            let mut zxid = 0;
            for (s, cxid) in leader_rx {
                zxid += 1;
                std::thread::sleep(Duration::from_micros(300));
                commit_sink.commit(committed(s, cxid, zxid, op_code::SET_DATA));
            }
        });
        let mut expected: HashMap<i64, Vec<i32>> = HashMap::new();
        let mut writes = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut total = 0;
        for i in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let s = (seed % 5) as i64;
            let cxid = i;
            let write = seed % 3 == 0;
            sink.request(req(s, cxid, if write { op_code::SET_DATA } else { op_code::GET_DATA }));
            if write {
                let _ = leader_tx.send((s, cxid));
                writes.push((s, cxid));
            }
            expected.entry(s).or_default().push(cxid);
            total += 1;
        }
        drop(leader_tx);
        wait_for(&rec, total);
        let _ = leader.join();
        for (s, want) in &expected {
            assert_eq!(&rec.of_session(*s), want, "session {s} ran out of order");
        }
        let ran = rec.ran.lock().clone();
        let applied: Vec<(i64, i32)> = ran.iter().filter(|r| r.write).map(|r| (r.session, r.cxid)).collect();
        assert_eq!(applied, writes, "writes run in commit order");
        assert_eq!(rec.overlaps.load(Ordering::SeqCst), 0, "a write ran beside a read");
        assert!(ran.iter().filter(|r| !r.write).all(|r| r.thread.starts_with("CommitProcWorkThread-")));
        sink.shutdown();
        t.join().expect("join");
    }

    #[test]
    fn no_worker_threads_runs_everything_on_the_processor_thread() {
        let rec = Arc::new(Recorder::new(Duration::ZERO, Duration::ZERO));
        let (sink, t) = start(config(0), &rec);
        sink.request(req(1, 1, op_code::SET_DATA));
        sink.request(req(1, 2, op_code::GET_DATA));
        sink.request(req(2, 1, op_code::GET_DATA));
        sink.commit(committed(1, 1, 1, op_code::SET_DATA));
        wait_for(&rec, 3);
        let ran = rec.ran.lock().clone();
        assert!(ran.iter().all(|r| r.thread == "CommitProcessor:7"), "{ran:?}");
        assert_eq!(rec.of_session(1), vec![1, 2], "the read waits for its session's write");
        assert_eq!(rec.of_session(2), vec![1]);
        sink.shutdown();
        t.join().expect("join");
        assert!(rec.shut.load(Ordering::SeqCst));
    }

    #[test]
    fn shutdown_waits_for_workers_at_most_its_timeout() {
        let mut rec = Recorder::new(Duration::ZERO, Duration::ZERO);
        rec.slow = Some((3, Duration::from_secs(3)));
        let rec = Arc::new(rec);
        let mut cfg = config(2);
        cfg.shutdown_timeout_ms = 300;
        let (sink, t) = start(cfg, &rec);
        sink.request(req(3, 1, op_code::GET_DATA));
        let deadline = Instant::now() + Duration::from_secs(5);
        while rec.reads_running.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the slow read never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        let begin = Instant::now();
        sink.shutdown();
        t.join().expect("join");
        let took = begin.elapsed();
        assert!(took >= Duration::from_millis(250) && took < Duration::from_millis(1500), "shutdown took {took:?}");
        assert!(rec.shut.load(Ordering::SeqCst));
        // Workers that are idle leave at once.
        let rec = Arc::new(Recorder::new(Duration::ZERO, Duration::ZERO));
        let (sink, t) = start(config(4), &rec);
        sink.request(req(1, 1, op_code::GET_DATA));
        wait_for(&rec, 1);
        let begin = Instant::now();
        sink.shutdown();
        t.join().expect("join");
        assert!(begin.elapsed() < Duration::from_millis(500), "idle shutdown took {:?}", begin.elapsed());
    }

    #[test]
    fn settings_from_properties() {
        let props = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).and_then(|(_, v)| crate::system_properties::parse_java_long(v))
        };
        let d = CommitConfig::parse(props(&[]), 2).expect("defaults");
        assert_eq!(d, CommitConfig { num_worker_threads: 2, shutdown_timeout_ms: 5000, max_read_batch_size: -1, max_commit_batch_size: 1 });
        assert!(CommitConfig::parse(props(&[(MAX_COMMIT_BATCH_SIZE, "0")]), 2).is_err());
        assert!(CommitConfig::parse(props(&[(MAX_COMMIT_BATCH_SIZE, "-3")]), 2).is_err());
        let c = CommitConfig::parse(
            props(&[(NUM_WORKER_THREADS, "0"), (MAX_READ_BATCH_SIZE, "bogus"), (MAX_COMMIT_BATCH_SIZE, "4"), (SHUTDOWN_TIMEOUT, "250")]),
            8,
        )
        .expect("valid");
        assert_eq!(c, CommitConfig { num_worker_threads: 0, shutdown_timeout_ms: 250, max_read_batch_size: -1, max_commit_batch_size: 4 });
        let big = CommitConfig::parse(props(&[(NUM_WORKER_THREADS, "99999999999")]), 3).expect("valid");
        assert_eq!(big.num_worker_threads, 3, "out of int range: the default");
    }
}
