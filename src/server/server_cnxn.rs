//! `ServerCnxn`: the server's view of one client connection.
//!
//! Deliberate difference from upstream's NIO selector design: each connection has a
//! reader thread (see `server_cnxn_factory`) and a writer thread draining an unbounded
//! outgoing queue, like `NIOServerCnxn.outgoingBuffers`. Anything in the server may
//! queue a reply or a watch event without blocking on a slow client.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};

use crossbeam_channel::Sender;
use parking_lot::Mutex;

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

pub struct ServerCnxn {
    /// Process-unique id; the key of this connection in watch tables.
    pub id: u64,
    pub remote: SocketAddr,
    session_id: AtomicI64,
    session_timeout: AtomicI32,
    pub auth_info: Mutex<Vec<Id>>,
    out: Sender<Outgoing>,
    server_sent: std::sync::Arc<crate::server::server_stats::SentStats>,
    closed: AtomicBool,
    socket: TcpStream,
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
}

impl ServerCnxn {
    pub fn new(id: u64, remote: SocketAddr, out: Sender<Outgoing>, socket: TcpStream, server_sent: std::sync::Arc<crate::server::server_stats::SentStats>) -> Self {
        let c = ServerCnxn {
            id,
            remote,
            session_id: AtomicI64::new(0),
            session_timeout: AtomicI32::new(0),
            auth_info: Mutex::new(Vec::new()),
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
        };
        c.stats.reset();
        c
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
    pub fn add_auth_info(&self, id: Id) {
        let mut a = self.auth_info.lock();
        if !a.contains(&id) {
            a.push(id);
            let ids = std::mem::take(&mut *a);
            let cap = crate::common::java_hash::chm_capacity_for_inserts(ids.len());
            *a = crate::common::java_hash::iteration_order(ids, cap, |i| crate::common::java_hash::id_hash(&i.scheme, &i.id));
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub fn session_initialized(&self, valid: bool) {
        if let Some(tx) = self.init_tx.lock().take() {
            let _ = tx.send(valid);
        }
    }

    /// Queues a raw frame (length prefix included).
    pub fn send_frame(&self, frame: Vec<u8>) {
        if self.out.send(Outgoing::Frame(frame)).is_ok() {
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            self.server_sent.fetch_add(1, Ordering::Relaxed);
        }
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
    }

    /// Closes at once: the reader thread sees EOF/error, the writer stops.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.socket.shutdown(Shutdown::Both);
            let _ = self.out.send(Outgoing::Close);
        }
    }

    pub fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
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
            self.interest_ops.load(Ordering::Relaxed),
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
