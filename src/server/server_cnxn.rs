//! `ServerCnxn`: the server's view of one client connection.
//!
//! Its replies and watch events go onto an unbounded outgoing queue, like
//! `NIOServerCnxn.outgoingBuffers`, drained by whoever owns the socket: a selector thread
//! (`nio_server_cnxn_factory`, plain connections) or the connection's writer thread
//! (`server_cnxn_factory`, TLS). Anything in the server may queue a reply or a watch
//! event without blocking on a slow client; what bounds the queue is the reader side:
//! [`RecvThrottle`] stops reading new requests while the connection holds too much
//! (upstream's `disableRecv`/`enableRecv`).

use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::{Condvar, Mutex};

use crate::common::time;
use crate::jute::{OutputArchive, Record};
use crate::proto::data::Id;
use crate::proto::proto::{ReplyHeader, WatcherEvent};
use crate::proto::keeper_state;

/// What the writer thread of a connection consumes.
pub enum Outgoing {
    /// A complete frame, length prefix included.
    Frame(Vec<u8>),
    /// Flush what is queued, then close the socket (`ServerCnxnFactory.closeConn`).
    Close,
}

/// Per-connection counters reported by `cons`/`stat` (`ServerCnxn` stats fields).
#[derive(Default)]
pub struct CnxnStats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub min_latency: AtomicI64,
    pub max_latency: AtomicI64,
    pub total_latency: AtomicI64,
    pub count: AtomicI64,
    pub last_cxid: AtomicI64,
    pub last_zxid: AtomicI64,
    pub last_response_time: AtomicI64,
    pub last_latency: AtomicI64,
    pub last_op: Mutex<&'static str>,
}

impl CnxnStats {
    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.min_latency.store(i64::MAX, Ordering::Relaxed);
        self.max_latency.store(0, Ordering::Relaxed);
        self.total_latency.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.last_cxid.store(-1, Ordering::Relaxed);
        self.last_zxid.store(-1, Ordering::Relaxed);
        self.last_response_time.store(0, Ordering::Relaxed);
        self.last_latency.store(0, Ordering::Relaxed);
        *self.last_op.lock() = "NA";
    }
}

/// `ZooKeeperServer.DEFAULT_GLOBAL_OUTSTANDING_LIMIT`.
pub const DEFAULT_GLOBAL_OUTSTANDING_LIMIT: i64 = 1000;
/// Default of `zookeeper.rs.maxCnxnUnwrittenBytes`: four of the largest replies a client
/// accepts by default (its `jute.maxbuffer` is 1 MiB).
pub const DEFAULT_MAX_CNXN_UNWRITTEN_BYTES: usize = 4 << 20;
/// Default of `zookeeper.rs.maxCnxnPipelinedReads`: what `zk-bench` keeps in flight per
/// client, so pipelining clients are not slowed down.
pub const DEFAULT_MAX_CNXN_PIPELINED_READS: usize = 32;

/// When a connection's reader stops taking new requests.
///
/// Upstream bounds only the server as a whole (`globalOutstandingLimit`, counted in
/// requests); `NIOServerCnxn.outgoingBuffers` itself is unbounded. Apache gets away with
/// it for repeated reads of one large znode because its getData response cache hands the
/// same serialized array to every reply; with the cache off, a client that asks for a
/// 1 MB znode 800 times without reading makes Apache 3.8.0 (256 MB heap) die of
/// OutOfMemoryError. We copy each reply, so we bound what one connection may hold
/// instead: bytes queued but not yet written, and reads in the pipeline (their replies
/// are not queued yet, so the byte count cannot see them coming).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvLimits {
    /// `zookeeper.globalOutstandingLimit`, as upstream (default 1000).
    pub global_outstanding_limit: i64,
    /// `zookeeper.rs.maxCnxnUnwrittenBytes`: replies and watch events queued for the
    /// socket but not yet written; at or above it the connection reads nothing more.
    pub max_unwritten_bytes: usize,
    /// `zookeeper.rs.maxCnxnPipelinedReads`: requests whose reply may be much larger
    /// than the request ([`reply_may_amplify`]) allowed in the pipeline at once.
    pub max_pipelined_reads: usize,
}

impl Default for RecvLimits {
    fn default() -> Self {
        RecvLimits {
            global_outstanding_limit: DEFAULT_GLOBAL_OUTSTANDING_LIMIT,
            max_unwritten_bytes: DEFAULT_MAX_CNXN_UNWRITTEN_BYTES,
            max_pipelined_reads: DEFAULT_MAX_CNXN_PIPELINED_READS,
        }
    }
}

impl RecvLimits {
    /// Reads the limits once, at server start. The global limit takes any int, like
    /// upstream's `Integer.getInteger`; the per-connection ones must be positive.
    pub fn from_system_properties() -> Self {
        use crate::system_properties::get_i64;
        let d = Self::default();
        let positive = |key: &str, default: usize| get_i64(key).filter(|v| *v > 0).map_or(default, |v| v as usize);
        RecvLimits {
            global_outstanding_limit: get_i64("zookeeper.globalOutstandingLimit")
                .filter(|v| i32::try_from(*v).is_ok())
                .unwrap_or(d.global_outstanding_limit),
            max_unwritten_bytes: positive("zookeeper.rs.maxCnxnUnwrittenBytes", d.max_unwritten_bytes),
            max_pipelined_reads: positive("zookeeper.rs.maxCnxnPipelinedReads", d.max_pipelined_reads),
        }
    }
}

/// Why a connection is not reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvThrottleReason {
    /// Its unwritten replies and events reached `max_unwritten_bytes`.
    Unwritten,
    /// `max_pipelined_reads` of its reads are in the pipeline.
    PipelinedReads,
    /// More than `globalOutstandingLimit` requests are in process server-wide and some
    /// are this connection's (`ZooKeeperServer.shouldThrottle`): a connection with
    /// nothing outstanding may always send one more request.
    GlobalOutstanding,
}

/// The throttle decision, kept free of IO so it can be tested on its own. A reader
/// stops at a per-connection bound and, once `parked`, resumes only when it is back
/// under half of it: resuming at the bound itself would park and wake the reader
/// around every single reply of a deep pipeline.
pub fn recv_throttle_reason(
    limits: &RecvLimits,
    unwritten: usize,
    pipelined_reads: usize,
    outstanding: i64,
    in_process: i64,
    parked: bool,
) -> Option<RecvThrottleReason> {
    let over = |value: usize, max: usize| if parked { value > max / 2 } else { value >= max };
    if over(unwritten, limits.max_unwritten_bytes) {
        Some(RecvThrottleReason::Unwritten)
    } else if over(pipelined_reads, limits.max_pipelined_reads) {
        Some(RecvThrottleReason::PipelinedReads)
    } else if limits.global_outstanding_limit < in_process && outstanding > 0 {
        Some(RecvThrottleReason::GlobalOutstanding)
    } else {
        None
    }
}

/// Requests whose reply carries stored data and so may be far larger than the request
/// (a 20-byte getData can ask for a megabyte). Other replies are a stat, a path or an
/// error code, at most about the size of their request.
pub fn reply_may_amplify(op: i32) -> bool {
    use crate::proto::op_code::*;
    matches!(op, GET_DATA | GET_CHILDREN | GET_CHILDREN2 | GET_ACL | MULTI_READ | GET_EPHEMERALS)
}

/// The counters behind [`recv_throttle_reason`] for one connection, and where its
/// reader thread parks while throttled (our `disableRecv`: a blocked reader is a
/// selector without OP_READ). The writer thread and FinalRequestProcessor wake it.
#[derive(Default)]
pub struct RecvThrottle {
    unwritten: AtomicUsize,
    peak_unwritten: AtomicUsize,
    written_total: AtomicU64,
    pipelined_reads: AtomicUsize,
    /// For `cons`: the reader is parked.
    throttled: AtomicBool,
    /// The reader is (about to be) parked; wakers skip the lock otherwise. SeqCst on
    /// both sides: either the waker sees this flag or the reader sees the new counts.
    waiting: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl RecvThrottle {
    /// A frame went onto the outgoing queue.
    pub fn queued(&self, bytes: usize) {
        let now = self.unwritten.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak_unwritten.fetch_max(now, Ordering::Relaxed);
    }

    /// A frame could not be queued after all (the writer is gone).
    pub fn unqueued(&self, bytes: usize) {
        self.unwritten.fetch_sub(bytes, Ordering::SeqCst);
    }

    /// The writer handed a frame to the socket and dropped it.
    pub fn written(&self, bytes: usize) {
        self.unwritten.fetch_sub(bytes, Ordering::SeqCst);
        self.written_total.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn read_submitted(&self) {
        self.pipelined_reads.fetch_add(1, Ordering::SeqCst);
    }

    pub fn read_answered(&self) {
        self.pipelined_reads.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn unwritten(&self) -> usize {
        self.unwritten.load(Ordering::SeqCst)
    }

    /// The most this connection ever had queued but unwritten.
    pub fn peak_unwritten(&self) -> usize {
        self.peak_unwritten.load(Ordering::Relaxed)
    }

    /// Bytes written so far: progress means the client is still reading.
    pub fn written_total(&self) -> u64 {
        self.written_total.load(Ordering::Relaxed)
    }

    pub fn pipelined_reads(&self) -> usize {
        self.pipelined_reads.load(Ordering::SeqCst)
    }

    pub fn is_throttled(&self) -> bool {
        self.throttled.load(Ordering::Relaxed)
    }

    /// The reader is parked, or about to be. Wakers load this after updating their
    /// counter and then evaluate the reader's condition themselves, so that they only
    /// wake it when it can go on.
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::SeqCst)
    }

    /// A selector thread stopped reading the connection (`disableRecv`); it re-checks
    /// on its own, and wakers tell it through the connection's selector.
    pub fn park(&self) {
        self.throttled.store(true, Ordering::Relaxed);
        self.waiting.store(true, Ordering::SeqCst);
    }

    pub fn unpark(&self) {
        self.waiting.store(false, Ordering::SeqCst);
        self.throttled.store(false, Ordering::Relaxed);
    }

    /// Lets a parked reader re-check its condition (`enableRecv`).
    pub fn wake(&self) {
        if self.is_waiting() {
            let _g = self.lock.lock();
            self.cv.notify_all();
        }
    }

    /// Parks the calling reader while `throttled()` holds. The condition is checked under
    /// the lock that [`wake`](Self::wake) takes, so a wake-up cannot slip in between the
    /// check and the wait; `recheck` bounds each wait anyway, and `between` runs after
    /// every wait without the lock held.
    pub fn wait_while(&self, recheck: Duration, mut throttled: impl FnMut() -> bool, mut between: impl FnMut()) {
        self.throttled.store(true, Ordering::Relaxed);
        loop {
            {
                let mut g = self.lock.lock();
                self.waiting.store(true, Ordering::SeqCst);
                if !throttled() {
                    break;
                }
                self.cv.wait_for(&mut g, recheck);
            }
            between();
        }
        self.waiting.store(false, Ordering::SeqCst);
        self.throttled.store(false, Ordering::Relaxed);
    }
}

/// The one socket of a connection, shared by its reader thread, its writer thread and
/// whoever closes it (with its TLS session on the secure client port).
pub type SharedStream = crate::common::tls_stream::TlsStream;

pub struct ServerCnxn {
    /// Process-unique id; the key of this connection in watch tables.
    pub id: u64,
    pub remote: SocketAddr,
    session_id: AtomicI64,
    session_timeout: AtomicI32,
    pub auth_info: Mutex<Vec<Id>>,
    /// The connection's SASL exchange (`zooKeeperSaslServer`), made at its first token.
    pub sasl_server: Mutex<Option<crate::common::digest_md5::DigestMd5Server>>,
    out: Sender<Outgoing>,
    server_sent: std::sync::Arc<crate::server::server_stats::SentStats>,
    closed: AtomicBool,
    socket: SharedStream,
    /// Requests submitted but not yet answered.
    pub outstanding: AtomicI64,
    pub stats: CnxnStats,
    pub established: i64,
    /// False when the client's ConnectRequest had no trailing readOnly byte.
    pub is_old_client: AtomicBool,
    /// Where `finishSessionInit` reports the handshake outcome to the reader thread,
    /// which reads nothing more until then (upstream's disableRecv/enableRecv).
    pub init_tx: Mutex<Option<Sender<bool>>>,
    /// `[interestOps]` as `cons` prints it: 1 while reading, 0 for a 4lw connection.
    pub interest_ops: std::sync::atomic::AtomicU8,
    /// Wall-clock ms at which an idle connection expires (NIO's `cnxnExpiryQueue`
    /// bucket, printed by `dump`); set by [`ServerCnxn::touch`].
    pub expires_at: AtomicI64,
    /// What this connection holds, and where its reader waits while it holds too much.
    pub throttle: RecvThrottle,
    /// Set by the factory from the server's configuration before the connection is shared.
    pub recv_limits: RecvLimits,
    /// The writer thread has exited and dropped whatever was still queued.
    writer_done: AtomicBool,
    /// Freed memory was handed back after this connection (at most once).
    memory_released: AtomicBool,
    /// Its watches were dropped (`ZooKeeperServer::remove_cnxn` ran; at most once).
    pub(crate) watches_dropped: AtomicBool,
    /// The selector thread that owns the socket; None on the threaded path.
    selector: Option<crate::server::nio_server_cnxn_factory::SelectorWaker>,
    /// An update request is on its way to the selector (one at a time is enough: the
    /// selector looks at everything the connection has when it takes it).
    update_pending: AtomicBool,
    /// The RequestThrottler dropped a request of this connection (`ServerCnxn.invalid`):
    /// every later one is dropped too, so that no reply follows a gap.
    invalid: AtomicBool,
}

impl ServerCnxn {
    pub fn new(id: u64, remote: SocketAddr, out: Sender<Outgoing>, socket: SharedStream, server_sent: std::sync::Arc<crate::server::server_stats::SentStats>) -> Self {
        let c = ServerCnxn {
            id,
            remote,
            session_id: AtomicI64::new(0),
            session_timeout: AtomicI32::new(0),
            auth_info: Mutex::new(Vec::new()),
            sasl_server: Mutex::new(None),
            out,
            server_sent,
            closed: AtomicBool::new(false),
            socket,
            outstanding: AtomicI64::new(0),
            stats: CnxnStats::default(),
            established: time::current_wall_time(),
            is_old_client: AtomicBool::new(true),
            init_tx: Mutex::new(None),
            interest_ops: std::sync::atomic::AtomicU8::new(1),
            expires_at: AtomicI64::new(0),
            throttle: RecvThrottle::default(),
            recv_limits: RecvLimits::default(),
            writer_done: AtomicBool::new(false),
            memory_released: AtomicBool::new(false),
            watches_dropped: AtomicBool::new(false),
            selector: None,
            update_pending: AtomicBool::new(false),
            invalid: AtomicBool::new(false),
        };
        c.stats.reset();
        c
    }

    /// Hands the socket to a selector thread; before the connection is shared.
    pub fn set_selector(&mut self, w: crate::server::nio_server_cnxn_factory::SelectorWaker) {
        self.selector = Some(w);
    }

    /// `requestInterestOpUpdate`: the owning selector thread should look at this
    /// connection (output queued, session decided, reader may resume, close).
    fn request_update(&self) {
        if let Some(w) = &self.selector {
            if !self.update_pending.swap(true, Ordering::SeqCst) {
                w.request(self.id);
            }
        }
    }

    /// The selector took the update request; later changes need a new one.
    pub fn update_taken(&self) {
        self.update_pending.store(false, Ordering::SeqCst);
    }

    pub fn session_id(&self) -> i64 {
        self.session_id.load(Ordering::Acquire)
    }

    pub fn set_session_id(&self, id: i64) {
        self.session_id.store(id, Ordering::Release)
    }

    pub fn session_timeout(&self) -> i32 {
        self.session_timeout.load(Ordering::Acquire)
    }

    pub fn set_session_timeout(&self, t: i32) {
        self.session_timeout.store(t, Ordering::Release)
    }

    /// The connection's ids in the order upstream's `ConcurrentHashMap`-backed set
    /// iterates them: whoAmI and the expansion of `auth` ACLs show that order.
    pub fn auth_info(&self) -> Vec<Id> {
        self.auth_info.lock().clone()
    }

    /// Kept in that Java order as ids are added (a stable re-sort by bucket keeps
    /// insertion order inside each bucket, as the Java table does across resizes), so
    /// that every request does not have to reorder it.
    /// Whether it came in on the secure client port.
    pub fn is_secure(&self) -> bool {
        self.socket.is_tls()
    }

    pub fn add_auth_info(&self, id: Id) {
        let mut a = self.auth_info.lock();
        if !a.contains(&id) {
            a.push(id);
            let ids = std::mem::take(&mut *a);
            let cap = crate::common::java_hash::chm_capacity_for_inserts(ids.len());
            *a = crate::common::java_hash::iteration_order(ids, cap, |i| crate::common::java_hash::id_hash(&i.scheme, &i.id));
        }
    }

    /// Also upstream's `isStale`: a closed connection's queued requests are stale.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn is_invalid(&self) -> bool {
        self.invalid.load(Ordering::SeqCst)
    }

    /// `setInvalid`: a request of this connection was dropped, so the connection goes
    /// (flushed first, as `sendCloseSession`) unless it has closed already.
    pub fn set_invalid(&self) {
        if !self.invalid.swap(true, Ordering::SeqCst) && !self.is_closed() {
            self.send_close();
        }
    }

    pub fn session_initialized(&self, valid: bool) {
        if let Some(tx) = self.init_tx.lock().take() {
            let _ = tx.send(valid);
        }
        self.request_update();
    }

    /// Queues a raw frame (length prefix included). Never blocks, whatever the
    /// connection holds: watch events and replies must not stall the pipeline.
    pub fn send_frame(&self, frame: Vec<u8>) {
        let len = frame.len();
        self.throttle.queued(len);
        if self.out.send(Outgoing::Frame(frame)).is_ok() {
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            self.server_sent.fetch_add(1, Ordering::Relaxed);
            self.request_update();
        } else {
            self.throttle.unqueued(len);
        }
    }

    /// A request of this connection entered the pipeline (`incrOutstandingAndCheckThrottle`;
    /// the check itself is the reader's, before it reads the next request).
    pub fn request_submitted(&self, op: i32) {
        if reply_may_amplify(op) {
            self.throttle.read_submitted();
        }
        self.outstanding.fetch_add(1, Ordering::SeqCst);
    }

    /// FinalRequestProcessor is about to answer a request: a read stops counting against
    /// the pipelined-reads bound. [`request_answered`](Self::request_answered) follows.
    pub fn read_left_pipeline(&self, op: i32) {
        if reply_may_amplify(op) {
            self.throttle.read_answered();
        }
    }

    /// Its reply, if any, is queued (`decrOutstandingAndCheckThrottle`): the reader may
    /// go on if this was what held it back. `in_process` is the server-wide count after
    /// this request left it.
    pub fn request_answered(&self, in_process: i64) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        if self.throttle.is_waiting() && self.recv_throttle_reason(in_process, true).is_none() {
            self.throttle.wake();
            self.request_update();
        }
        if self.is_closed() {
            self.maybe_release_memory();
        }
    }

    /// A request counted by [`request_submitted`](Self::request_submitted) will never
    /// reach FinalRequestProcessor (dropped by the RequestThrottler, session gone, or
    /// of an unknown type): end its accounting the same way.
    pub fn request_dropped(&self, op: i32, in_process: i64) {
        self.read_left_pipeline(op);
        self.request_answered(in_process);
    }

    /// The writer wrote a frame of `bytes` (length prefix included) and dropped it.
    pub fn frame_written(&self, bytes: usize) {
        self.throttle.written(bytes);
        // Only the byte bound is the writer's business; the reader's other reasons
        // clear in FinalRequestProcessor, which wakes it then.
        if self.throttle.is_waiting() && self.throttle.unwritten() <= self.recv_limits.max_unwritten_bytes / 2 {
            self.throttle.wake();
        }
    }

    /// Whether the reader must stop before its next request (`parked`: it already has,
    /// and is checking whether it may resume), given the server-wide count of requests
    /// in process.
    pub fn recv_throttle_reason(&self, in_process: i64, parked: bool) -> Option<RecvThrottleReason> {
        recv_throttle_reason(
            &self.recv_limits,
            self.throttle.unwritten(),
            self.throttle.pipelined_reads(),
            self.outstanding.load(Ordering::SeqCst),
            in_process,
            parked,
        )
    }

    /// The writer thread is gone, and with it the frames it had not written.
    pub fn writer_exited(&self) {
        self.writer_done.store(true, Ordering::SeqCst);
        self.maybe_release_memory();
    }

    /// glibc keeps freed chunks in its arenas (see `common::memory`), so a connection
    /// that made us hold its byte bound's worth of replies would leave the process at
    /// that high-water mark for good. Once it is closed, its writer has dropped the
    /// queue and no request of it is left in the pipeline (whichever of the writer and
    /// FinalRequestProcessor sees that last), hand the memory back.
    fn maybe_release_memory(&self) {
        if self.writer_done.load(Ordering::SeqCst)
            && self.outstanding.load(Ordering::SeqCst) <= 0
            && self.throttle.peak_unwritten() >= self.recv_limits.max_unwritten_bytes
            && !self.memory_released.swap(true, Ordering::AcqRel)
        {
            log::debug!(
                "Connection {} held up to {} unwritten bytes; releasing free memory",
                fmt_addr(&self.remote),
                self.throttle.peak_unwritten()
            );
            crate::common::memory::release_free_memory();
        }
    }

    /// `[interestOps]` as `cons` prints it: OP_READ (1) unless throttled, OP_WRITE (4)
    /// while something is waiting to be written; 0 for a 4lw connection.
    pub fn interest_ops(&self) -> u8 {
        if self.interest_ops.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        let read = if self.throttle.is_throttled() { 0 } else { 1 };
        let write = if self.throttle.unwritten() > 0 { 4 } else { 0 };
        read | write
    }

    /// `sendResponse`: header, then the body when there is one.
    pub fn send_response(&self, hdr: &ReplyHeader, body: Option<&dyn Fn(&mut OutputArchive)>) {
        let mut out = OutputArchive::with_buffer(Vec::with_capacity(64));
        out.write_int(-1);
        hdr.serialize(&mut out);
        if let Some(b) = body {
            b(&mut out);
        }
        let mut frame = out.into_inner();
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.server_sent.update_client_response_size(len as i64);
        self.send_frame(frame);
    }

    pub fn send_record<R: Record>(&self, hdr: &ReplyHeader, body: Option<&R>) {
        match body {
            Some(r) => self.send_response(hdr, Some(&|o: &mut OutputArchive| r.serialize(o))),
            None => self.send_response(hdr, None),
        }
    }

    /// `process(WatchedEvent)`: a notification, xid -1, zxid -1.
    pub fn process_watch_event(&self, event_type: i32, path: &str) {
        let hdr = ReplyHeader { xid: -1, zxid: -1, err: 0 };
        let ev = WatcherEvent { r#type: event_type, state: keeper_state::SYNC_CONNECTED, path: path.to_owned() };
        self.send_record(&hdr, Some(&ev));
    }

    /// `sendCloseSession`: flush what is queued, then close.
    pub fn send_close(&self) {
        let _ = self.out.send(Outgoing::Close);
        self.request_update();
    }

    /// Closes at once: the reader thread sees EOF/error (or, parked by the throttle,
    /// is woken), the writer stops.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = self.socket.shutdown(Shutdown::Both);
            let _ = self.out.send(Outgoing::Close);
        }
        self.throttle.wake();
        self.request_update();
    }

    pub fn mark_closed(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::SeqCst);
        self.throttle.wake();
        first
    }

    pub fn shutdown_socket(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// `NIOServerCnxnFactory.touchCnxn`: the connection expires `timeout_ms` after its
    /// last activity, rounded up to the next multiple of `interval_ms`.
    pub fn touch(&self, timeout_ms: u64, interval_ms: u64) {
        let now = time::current_wall_time();
        let i = interval_ms.max(1) as i64;
        self.expires_at.store((now + timeout_ms as i64) / i * i + i, Ordering::Relaxed);
    }

    /// Latency bookkeeping after a reply (`ServerCnxn.updateStatsForResponse`).
    pub fn update_stats_for_response(&self, cxid: i64, zxid: i64, op: &'static str, start: i64, end: i64) {
        if cxid >= 0 {
            self.stats.last_cxid.store(cxid, Ordering::Relaxed);
        }
        self.stats.last_zxid.store(zxid, Ordering::Relaxed);
        *self.stats.last_op.lock() = op;
        self.stats.last_response_time.store(end, Ordering::Relaxed);
        let lat = end - start;
        self.stats.last_latency.store(lat, Ordering::Relaxed);
        self.stats.min_latency.fetch_min(lat, Ordering::Relaxed);
        self.stats.max_latency.fetch_max(lat, Ordering::Relaxed);
        self.stats.total_latency.fetch_add(lat, Ordering::Relaxed);
        self.stats.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The `cons` line for this connection (`ServerCnxn.dumpConnectionInfo`).
    pub fn connection_info(&self, brief: bool) -> String {
        let s = &self.stats;
        let mut out = format!(
            " {}[{}](queued={},recved={},sent={}",
            fmt_addr(&self.remote),
            self.interest_ops(),
            self.outstanding.load(Ordering::Relaxed),
            s.packets_received.load(Ordering::Relaxed),
            s.packets_sent.load(Ordering::Relaxed)
        );
        if !brief {
            let sid = self.session_id();
            if sid != 0 {
                out.push_str(&format!(
                    ",sid=0x{:x},lop={},est={},to={}",
                    sid,
                    *s.last_op.lock(),
                    self.established,
                    self.session_timeout()
                ));
                let lcxid = s.last_cxid.load(Ordering::Relaxed);
                if lcxid >= 0 {
                    out.push_str(&format!(",lcxid=0x{lcxid:x}"));
                }
                let count = s.count.load(Ordering::Relaxed);
                let min = if count == 0 { 0 } else { s.min_latency.load(Ordering::Relaxed) };
                let avg = if count == 0 { 0 } else { s.total_latency.load(Ordering::Relaxed) / count };
                out.push_str(&format!(
                    ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                    s.last_zxid.load(Ordering::Relaxed),
                    s.last_response_time.load(Ordering::Relaxed),
                    s.last_latency.load(Ordering::Relaxed),
                    min,
                    avg,
                    s.max_latency.load(Ordering::Relaxed)
                ));
            }
        }
        out.push(')');
        out
    }
}

/// Java's `InetSocketAddress.toString()`: `/127.0.0.1:port`.
pub fn fmt_addr(a: &SocketAddr) -> String {
    format!("/{}:{}", a.ip(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::op_code;
    use std::sync::Arc;
    use std::time::Instant;

    const LIMITS: RecvLimits = RecvLimits { global_outstanding_limit: 1000, max_unwritten_bytes: 4096, max_pipelined_reads: 4 };

    #[test]
    fn throttle_reason_follows_each_bound() {
        let r = |unwritten, reads, outstanding, in_process| recv_throttle_reason(&LIMITS, unwritten, reads, outstanding, in_process, false);
        assert_eq!(r(0, 0, 0, 0), None);
        assert_eq!(r(4095, 3, 3, 1000), None, "just under every bound");
        assert_eq!(r(4096, 0, 1, 1), Some(RecvThrottleReason::Unwritten));
        assert_eq!(r(0, 4, 4, 4), Some(RecvThrottleReason::PipelinedReads));
        assert_eq!(r(0, 0, 1, 1001), Some(RecvThrottleReason::GlobalOutstanding));
        // shouldThrottle: a connection with nothing outstanding may always send one more.
        assert_eq!(r(0, 0, 0, 5000), None);
    }

    #[test]
    fn parked_reader_resumes_at_half_the_bound() {
        let parked = |unwritten, reads| recv_throttle_reason(&LIMITS, unwritten, reads, 1, 1, true);
        assert_eq!(parked(2049, 0), Some(RecvThrottleReason::Unwritten));
        assert_eq!(parked(2048, 0), None);
        assert_eq!(parked(0, 3), Some(RecvThrottleReason::PipelinedReads));
        assert_eq!(parked(0, 2), None);
        // The global rule has no low-water mark, as upstream's shouldThrottle.
        assert_eq!(recv_throttle_reason(&LIMITS, 0, 0, 1, 1001, true), Some(RecvThrottleReason::GlobalOutstanding));
        assert_eq!(recv_throttle_reason(&LIMITS, 0, 0, 0, 1001, true), None);
    }

    #[test]
    fn default_limits() {
        assert_eq!(RecvLimits::default().global_outstanding_limit, 1000);
        assert_eq!(RecvLimits::default().max_unwritten_bytes, 4 << 20);
    }

    #[test]
    fn only_data_carrying_reads_count_as_amplifying() {
        for op in [op_code::GET_DATA, op_code::GET_CHILDREN, op_code::GET_CHILDREN2, op_code::GET_ACL, op_code::MULTI_READ, op_code::GET_EPHEMERALS] {
            assert!(reply_may_amplify(op), "op {op}");
        }
        for op in [op_code::EXISTS, op_code::CREATE, op_code::SET_DATA, op_code::MULTI, op_code::PING, op_code::SYNC, op_code::GET_ALL_CHILDREN_NUMBER] {
            assert!(!reply_may_amplify(op), "op {op}");
        }
    }

    #[test]
    fn counts_queued_written_and_peak() {
        let t = RecvThrottle::default();
        t.queued(1000);
        t.queued(3000);
        assert_eq!(t.unwritten(), 4000);
        t.written(1000);
        t.unqueued(500);
        assert_eq!(t.unwritten(), 2500);
        assert_eq!(t.peak_unwritten(), 4000);
        assert_eq!(t.written_total(), 1000);
        t.read_submitted();
        t.read_submitted();
        t.read_answered();
        assert_eq!(t.pipelined_reads(), 1);
    }

    #[test]
    fn parked_reader_wakes_when_the_writer_drains() {
        let t = Arc::new(RecvThrottle::default());
        t.queued(LIMITS.max_unwritten_bytes);
        let t2 = t.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.written(LIMITS.max_unwritten_bytes);
            t2.wake();
        });
        let start = Instant::now();
        let mut rechecks = 0;
        // A long recheck interval: only the wake-up can end the wait in time.
        t.wait_while(Duration::from_secs(30), || t.unwritten() >= LIMITS.max_unwritten_bytes, || rechecks += 1);
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(!t.is_throttled());
        assert!(rechecks >= 1);
        writer.join().unwrap();
    }

    #[test]
    fn wait_returns_at_once_when_not_throttled() {
        let t = RecvThrottle::default();
        let mut rechecks = 0;
        t.wait_while(Duration::from_secs(30), || false, || rechecks += 1);
        assert_eq!(rechecks, 0);
        assert!(!t.is_throttled());
    }
}
