//! One proxied client connection: its threads and its comparator.
//!
//! Threads (upstream-style names, `<n>` the connection number):
//! * `OracleCnx-<n>-client` reads client frames, forwards each to the primary (a
//!   blocking write: the primary's pace is the client's pace, as with no proxy) and
//!   queues it for the oracle writer;
//! * `OracleCnx-<n>-primary` reads the primary's frames, writes them to the client and
//!   hands a copy to the comparator;
//! * `OracleCnx-<n>-oracle` reads the oracle's frames for the comparator (the client
//!   never sees them);
//! * `OracleCnx-<n>-oracleWriter` writes queued frames to the oracle, so a slow oracle
//!   never blocks the client;
//! * `OracleCnx-<n>-compare` pairs replies by xid and reports differences.
//!
//! Everything between them is bounded: the oracle queue (when full the oracle is
//! dropped for this connection), the comparator channel (its senders block, and the
//! comparator never blocks on a socket), and the pending-comparison map and watch-event
//! lists (when full, comparisons are dropped and counted).

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use super::frame::{is_four_letter_word, read_body, read_frame, read_len_word, write_frame, Frame};
use super::normalize::{code_name, event_key, op_name, parse_request, resolve_owners, Normalizer, RequestInfo};
use super::order::{Barrier, InFlight};
use super::{OracleSession, Shared};
use crate::jute::{InputArchive, Record};
use crate::proto::op_code;
use crate::proto::proto::{ConnectRequest, ConnectResponse, ReplyHeader, WatcherEvent};

/// Frames queued for the oracle writer before the oracle is declared lagging.
const ORACLE_QUEUE: usize = 1024;
/// Messages queued for the comparator (its senders block when it is full).
const COMPARATOR_QUEUE: usize = 1024;
/// How often the comparator looks for replies and events that never got a partner.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// The reserved xids of `ClientCnxn`.
const NOTIFICATION_XID: i32 = -1;

/// A frame for the oracle and what it must wait for (see `order`).
struct OracleFrame {
    frame: Vec<u8>,
    barrier: Option<Barrier>,
    rewrite: Rewrite,
}

/// What the oracle writer changes in a frame once its barrier is met (only then are the
/// session map and the zxid pairs it needs up to date).
enum Rewrite {
    None,
    /// The handshake: the client's session id and password are the primary's; the oracle
    /// knows that session under its own id (mapped when it was created). lastZxidSeen is
    /// a primary zxid: the oracle would refuse one above its own.
    Connect { req: ConnectRequest, trailer: Vec<u8> },
    /// SetWatches' relativeZxid (after the 8-byte header) is a primary zxid.
    SetWatches,
}

impl Rewrite {
    fn apply(self, id: u64, shared: &Shared, mut frame: Vec<u8>) -> Vec<u8> {
        match self {
            Rewrite::None => frame,
            Rewrite::SetWatches => {
                if let Some(Ok(z)) = frame.get(8..16).map(<[u8; 8]>::try_from) {
                    let oracle_zxid = shared.order.oracle_zxid(i64::from_be_bytes(z));
                    frame[8..16].copy_from_slice(&oracle_zxid.to_be_bytes());
                }
                frame
            }
            Rewrite::Connect { req, trailer } => {
                let known: Option<OracleSession> =
                    if req.session_id != 0 { shared.sessions.lock().by_primary.get(&req.session_id).cloned() } else { None };
                if req.session_id != 0 && known.is_none() {
                    log::info!(
                        "connection {id}: session {:#x} is unknown to the oracle map; the oracle gets a new session",
                        req.session_id
                    );
                }
                let oracle_req = ConnectRequest {
                    protocol_version: req.protocol_version,
                    last_zxid_seen: if known.is_some() { shared.order.oracle_zxid(req.last_zxid_seen) } else { 0 },
                    time_out: req.time_out,
                    session_id: known.as_ref().map(|k| k.sid).unwrap_or(0),
                    passwd: Some(known.map(|k| k.passwd).unwrap_or_else(|| vec![0; 16])),
                };
                let mut f = oracle_req.to_bytes();
                f.extend_from_slice(&trailer);
                f
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Primary,
    Oracle,
}


enum Msg {
    /// A client request about to be forwarded to both servers.
    Request(RequestInfo, Instant),
    /// A frame from one server; each side's first frame is its ConnectResponse.
    Frame(Side, Vec<u8>, Instant),
    /// A server closed the connection (or reading from it failed).
    Closed(Side, String),
    /// The client went away; `garbage` when the proxy closed it for a malformed frame.
    ClientClosed { reason: String },
    /// The oracle cannot be used any more on this connection.
    OracleDown(String),
}

/// What the threads of one connection share.
pub(crate) struct Conn {
    pub id: u64,
    client: TcpStream,
    primary: TcpStream,
    oracle: Option<TcpStream>,
    /// Cleared when the oracle fails or lags: the client thread stops mirroring.
    oracle_live: AtomicBool,
    /// Set by the primary reader when the primary ended the connection: the client
    /// thread then leaves the oracle's socket alone (the comparator checks that the
    /// oracle closes on its own).
    primary_eof: AtomicBool,
    /// Set by the client thread when the client went away: the oracle writer half-closes
    /// the oracle's socket once it has written everything queued.
    oracle_half_close: AtomicBool,
    /// Requests awaiting each server's reply, for the causal order (see `order`).
    primary_inflight: InFlight,
    oracle_inflight: InFlight,
    /// Watch events each server sent this connection.
    primary_events: AtomicU64,
    oracle_events: AtomicU64,
}

impl Conn {
    /// Closes every socket of the connection: blocked reads and writes return, so
    /// every thread of the connection ends.
    pub fn shutdown_all(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.primary.shutdown(Shutdown::Both);
        if let Some(o) = &self.oracle {
            let _ = o.shutdown(Shutdown::Both);
        }
    }
}

fn spawn_named(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name(name).spawn(f).map(|_| ())
}

/// Connects to `addr` (host:port) within `timeout`, trying each address it resolves to.
pub(crate) fn connect_to(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr} resolves to no address"));
    for sa in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Starts serving an accepted client connection on its own thread.
pub(crate) fn spawn(id: u64, client: TcpStream, shared: Arc<Shared>) {
    let s = shared.clone();
    if let Err(e) = spawn_named(format!("OracleCnx-{id}-client"), move || serve(id, client, s)) {
        log::error!("cannot start a thread for connection {id}: {e}");
        shared.connection_ended(id);
    }
}

/// The client thread: handshake, then the forwarding loop.
fn serve(id: u64, client: TcpStream, shared: Arc<Shared>) {
    let result = handshake_and_forward(id, client, &shared);
    if let Err(e) = result {
        log::info!("connection {id}: {e}");
        // The comparator was never started: nothing else will end the connection.
        shared.connection_ended(id);
    }
}

fn handshake_and_forward(id: u64, client: TcpStream, shared: &Arc<Shared>) -> Result<(), String> {
    let cfg = &shared.cfg;
    let _ = client.set_nodelay(true);
    let head = match read_len_word(&mut &client) {
        Ok(Some(h)) => h,
        Ok(None) => return Err("client closed before its handshake".into()),
        Err(e) => return Err(format!("client handshake: {e}")),
    };
    if is_four_letter_word(&head) {
        relay_four_letter_word(&head, &client, shared);
        return Err(format!("relayed four-letter word {:?} to the primary", String::from_utf8_lossy(&head)));
    }
    let connect = read_body(&mut &client, head, cfg.max_frame).map_err(|e| format!("garbage handshake from client: {e}"))?;
    let mut inp = InputArchive::new(&connect);
    let req = ConnectRequest::deserialize(&mut inp).map_err(|e| format!("garbage ConnectRequest from client: {e}"))?;
    // Whatever follows the record (the readOnly flag) is passed on untouched.
    let trailer = connect[inp.position()..].to_vec();

    let primary = connect_to(&cfg.primary, cfg.connect_timeout)
        .map_err(|e| format!("cannot connect to the primary {}: {e}", cfg.primary))?;
    let oracle = match connect_to(&cfg.oracle, cfg.connect_timeout) {
        Ok(o) => {
            // A wedged oracle must fail the writer, not hold it forever.
            let _ = o.set_write_timeout(Some(cfg.grace.max(Duration::from_secs(1))));
            Some(o)
        }
        Err(e) => {
            shared.report.oracle_unavailable(id, &format!("cannot connect to {}: {e}", cfg.oracle));
            None
        }
    };

    let clone = |s: &TcpStream| s.try_clone().map_err(|e| format!("cannot clone a socket: {e}"));
    let conn = Arc::new(Conn {
        id,
        client: clone(&client)?,
        primary: clone(&primary)?,
        oracle: match &oracle {
            Some(o) => Some(clone(o)?),
            None => None,
        },
        oracle_live: AtomicBool::new(oracle.is_some()),
        primary_eof: AtomicBool::new(false),
        oracle_half_close: AtomicBool::new(false),
        primary_inflight: InFlight::default(),
        oracle_inflight: InFlight::default(),
        primary_events: AtomicU64::new(0),
        oracle_events: AtomicU64::new(0),
    });
    shared.register(id, conn.clone());

    let (tx, rx) = bounded::<Msg>(COMPARATOR_QUEUE);
    let comparator = Comparator::new(conn.clone(), shared.clone(), req.session_id);
    if let Err(e) = spawn_named(format!("OracleCnx-{id}-compare"), move || comparator.run(rx)) {
        conn.shutdown_all();
        return Err(format!("cannot start the comparator thread: {e}"));
    }
    // From here on the comparator ends the connection (it owns connection_ended).
    let started = start_readers(&conn, shared, &tx, primary, oracle);
    let otx = match started {
        Ok(otx) => otx,
        Err(e) => {
            log::error!("connection {id}: cannot start its threads: {e}");
            conn.shutdown_all();
            let _ = tx.send(Msg::ClientClosed { reason: format!("proxy error: {e}") });
            return Ok(());
        }
    };

    if write_frame(&mut &conn.primary, &connect).is_err() {
        conn.shutdown_all();
        let _ = tx.send(Msg::ClientClosed { reason: "primary refused the handshake".into() });
        return Ok(());
    }
    if let Some(otx) = &otx {
        // A resumed session must see what its previous connection did.
        let barrier = Some(shared.order.barrier(Some(id), 0));
        let rewrite = Rewrite::Connect { req, trailer };
        offer_to_oracle(&conn, &tx, otx, OracleFrame { frame: Vec::new(), barrier, rewrite });
    }
    forward_loop(&conn, shared, &tx, otx.as_ref());
    Ok(())
}

/// Starts the reader threads and the oracle writer; returns the oracle queue.
fn start_readers(
    conn: &Arc<Conn>,
    shared: &Arc<Shared>,
    tx: &Sender<Msg>,
    primary: TcpStream,
    oracle: Option<TcpStream>,
) -> io::Result<Option<Sender<OracleFrame>>> {
    let id = conn.id;
    let upstream_max = shared.cfg.max_frame.saturating_mul(2).saturating_add(1024);
    {
        let (c, s, tx) = (conn.clone(), shared.clone(), tx.clone());
        spawn_named(format!("OracleCnx-{id}-primary"), move || primary_reader(c, s, primary, tx, upstream_max))?;
    }
    let Some(oracle) = oracle else { return Ok(None) };
    let (otx, orx) = bounded::<OracleFrame>(ORACLE_QUEUE);
    {
        let (c, s, tx) = (conn.clone(), shared.clone(), tx.clone());
        let reader = oracle.try_clone()?;
        spawn_named(format!("OracleCnx-{id}-oracle"), move || oracle_reader(c, s, reader, tx, upstream_max))?;
    }
    {
        let (tx, c, s) = (tx.clone(), conn.clone(), shared.clone());
        spawn_named(format!("OracleCnx-{id}-oracleWriter"), move || oracle_writer(c, s, oracle, orx, tx))?;
    }
    Ok(Some(otx))
}

/// Queues a frame for the oracle; a full queue means the oracle cannot keep up with
/// this client, and it is dropped for the connection rather than buffering without end.
fn offer_to_oracle(conn: &Conn, tx: &Sender<Msg>, otx: &Sender<OracleFrame>, frame: OracleFrame) {
    match otx.try_send(frame) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            if conn.oracle_live.swap(false, Ordering::SeqCst) {
                let _ = tx.send(Msg::OracleDown(format!("oracle lagging: {ORACLE_QUEUE} requests queued")));
            }
        }
        Err(TrySendError::Disconnected(_)) => {
            // The writer ended; it has already said why.
            conn.oracle_live.store(false, Ordering::SeqCst);
        }
    }
}

fn forward_loop(conn: &Conn, shared: &Shared, tx: &Sender<Msg>, otx: Option<&Sender<OracleFrame>>) {
    let counters = &shared.report.counters;
    let reason = loop {
        let frame = match read_frame(&mut &conn.client, shared.cfg.max_frame) {
            Ok(Frame::Data(f)) => f,
            Ok(Frame::Eof) => break None,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => break Some(format!("garbage from client: {e}")),
            Err(e) => break Some(format!("client read: {e}")),
        };
        let Some(info) = parse_request(&frame) else {
            break Some(format!("garbage from client: a {}-byte frame holds no request header", frame.len()));
        };
        let mirror = otx.is_some() && conn.oracle_live.load(Ordering::SeqCst);
        let mut oracle_frame = None;
        if mirror {
            let rewrite = if matches!(info.op, op_code::SET_WATCHES | op_code::SET_WATCHES2) {
                Rewrite::SetWatches
            } else {
                Rewrite::None
            };
            // Pings carry nothing a later request could depend on.
            let barrier = (info.op != op_code::PING).then(|| {
                let gid = shared.order.new_gid();
                let max = shared.cfg.max_pending;
                if conn.primary_inflight.push(info.xid, gid, max) {
                    conn.oracle_inflight.push(info.xid, gid, max);
                }
                shared.order.barrier(Some(conn.id), conn.primary_events.load(Ordering::SeqCst))
            });
            oracle_frame = Some(OracleFrame { frame: frame.clone(), barrier, rewrite });
            if tx.send(Msg::Request(info, Instant::now())).is_err() {
                break Some("comparator ended".into());
            }
        }
        if let Err(e) = write_frame(&mut &conn.primary, &frame) {
            break Some(format!("write to primary: {e}"));
        }
        match (oracle_frame, otx) {
            (Some(f), Some(otx)) => {
                counters.requests_mirrored.fetch_add(1, Ordering::Relaxed);
                offer_to_oracle(conn, tx, otx, f);
            }
            _ => {
                counters.requests_primary_only.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    // Said before the upstream sockets are touched: the primary's close that follows
    // must not look like the primary's own doing.
    let _ = tx.send(Msg::ClientClosed { reason: reason.clone().unwrap_or_else(|| "client closed".into()) });
    match &reason {
        Some(r) if r.starts_with("garbage") => {
            log::warn!("connection {}: {r}; closing it", conn.id);
            // The servers never saw the garbage: nothing is left to compare.
            conn.shutdown_all();
        }
        _ if conn.primary_eof.load(Ordering::SeqCst) => {}
        _ => {
            // Both servers see the client's end the same way (EOF) and close; the oracle
            // once its writer has sent what is still queued.
            let _ = conn.primary.shutdown(Shutdown::Write);
            conn.oracle_half_close.store(true, Ordering::SeqCst);
        }
    }
}

/// The xid of a reply frame (None for a frame too short to hold one).
fn reply_xid(f: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(f.get(..4)?.try_into().ok()?))
}

/// Feeds a server's frame to the causal order: an answered request or a watch event
/// (the first frame, the handshake reply, is neither).
fn track_reply(conn: &Conn, shared: &Shared, side: Side, f: &[u8], handshake: &mut bool) {
    if std::mem::replace(handshake, false) {
        return;
    }
    let (inflight, events) = match side {
        Side::Primary => (&conn.primary_inflight, &conn.primary_events),
        Side::Oracle => (&conn.oracle_inflight, &conn.oracle_events),
    };
    match reply_xid(f) {
        Some(NOTIFICATION_XID) => {
            events.fetch_add(1, Ordering::SeqCst);
            if side == Side::Oracle {
                shared.order.oracle_event();
            }
        }
        Some(xid) => {
            if let Some(gid) = inflight.take(xid) {
                let zxid = f.get(4..12).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_be_bytes).unwrap_or(0);
                match side {
                    Side::Primary => shared.order.primary_answered(gid, conn.id, zxid),
                    Side::Oracle => shared.order.oracle_answered(gid, conn.id, zxid),
                }
            }
        }
        None => {}
    }
}

fn primary_reader(conn: Arc<Conn>, shared: Arc<Shared>, primary: TcpStream, tx: Sender<Msg>, max: usize) {
    let mut client_ok = true;
    let mut handshake = true;
    let reason = loop {
        match read_frame(&mut &primary, max) {
            Ok(Frame::Data(f)) => {
                // Recorded before the client can see the reply (see `order`).
                track_reply(&conn, &shared, Side::Primary, &f, &mut handshake);
                // A client that went away ends through its own thread; the primary's
                // replies are still read (and compared) until the primary closes.
                if client_ok && write_frame(&mut &conn.client, &f).is_err() {
                    client_ok = false;
                    let _ = conn.client.shutdown(Shutdown::Both);
                }
                if tx.send(Msg::Frame(Side::Primary, f, Instant::now())).is_err() {
                    break "comparator ended".into();
                }
            }
            Ok(Frame::Eof) => break "primary closed the connection".into(),
            Err(e) => break format!("primary read: {e}"),
        }
    };
    // The comparator hears of the close before the client thread can report the
    // client's end (which this close causes). The client sees the primary's close as it
    // would without the proxy. The oracle's socket is left to the comparator, which
    // checks that the oracle closes too.
    conn.primary_eof.store(true, Ordering::SeqCst);
    let _ = tx.send(Msg::Closed(Side::Primary, reason));
    let _ = conn.client.shutdown(Shutdown::Both);
}

fn oracle_reader(conn: Arc<Conn>, shared: Arc<Shared>, oracle: TcpStream, tx: Sender<Msg>, max: usize) {
    let mut handshake = true;
    let reason = loop {
        match read_frame(&mut &oracle, max) {
            Ok(Frame::Data(f)) => {
                track_reply(&conn, &shared, Side::Oracle, &f, &mut handshake);
                if tx.send(Msg::Frame(Side::Oracle, f, Instant::now())).is_err() {
                    break "comparator ended".into();
                }
            }
            Ok(Frame::Eof) => break "oracle closed the connection".into(),
            Err(e) => break format!("oracle read: {e}"),
        }
    };
    let _ = tx.send(Msg::Closed(Side::Oracle, reason));
}

fn oracle_writer(conn: Arc<Conn>, shared: Arc<Shared>, oracle: TcpStream, frames: Receiver<OracleFrame>, tx: Sender<Msg>) {
    for f in frames.iter() {
        if let Some(b) = f.barrier {
            // Half the grace window: the other half is the oracle's to answer in before
            // the comparator calls its reply missing.
            let deadline = Instant::now() + shared.cfg.grace / 2;
            if !shared.order.wait(b, || conn.oracle_events.load(Ordering::SeqCst), deadline) {
                log::debug!("connection {}: the oracle is behind by more than the grace window", conn.id);
            }
        }
        if !conn.oracle_live.load(Ordering::SeqCst) {
            return;
        }
        let frame = f.rewrite.apply(conn.id, &shared, f.frame);
        if let Err(e) = write_frame(&mut &oracle, &frame) {
            if conn.oracle_live.swap(false, Ordering::SeqCst) {
                let _ = tx.send(Msg::OracleDown(format!("write to oracle: {e}")));
            }
            return;
        }
    }
    if conn.oracle_half_close.load(Ordering::SeqCst) {
        // A server drops the replies still owed when it reads EOF: let the oracle first
        // answer what the primary answered (closeSession, typically), so those compare.
        // This connection's own owed replies included.
        let b = shared.order.barrier(None, conn.primary_events.load(Ordering::SeqCst));
        shared.order.wait(b, || conn.oracle_events.load(Ordering::SeqCst), Instant::now() + shared.cfg.grace / 2);
        let _ = oracle.shutdown(Shutdown::Write);
    }
}

/// A four-letter word carries no session: it goes to the primary alone and its answer
/// back to the client.
fn relay_four_letter_word(word: &[u8; 4], client: &TcpStream, shared: &Shared) {
    let cfg = &shared.cfg;
    let Ok(primary) = connect_to(&cfg.primary, cfg.connect_timeout) else { return };
    let _ = primary.set_read_timeout(Some(Duration::from_secs(30)));
    if (&primary).write_all(word).is_err() {
        return;
    }
    let mut buf = [0u8; 8192];
    loop {
        match (&primary).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if (&*client).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// A request waiting for its two replies.
struct Pending {
    info: RequestInfo,
    at: Instant,
    primary: Option<String>,
    oracle: Option<String>,
}

/// A watch event waiting for its partner from the other server.
struct Event {
    key: String,
    at: Instant,
}

struct ConnectReply {
    resp: ConnectResponse,
    read_only: Option<bool>,
    at: Instant,
}

struct Comparator {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    /// The session the client asked for (0: a new one).
    requested_session: i64,
    primary_sid: i64,
    oracle_sid: i64,
    primary_connect: Option<ConnectReply>,
    oracle_connect: Option<ConnectReply>,
    connects_compared: bool,
    /// Requests by xid; a queue per xid keeps the reserved xids (ping -2, auth -4,
    /// setWatches -8) and a hostile client's reused xids in order.
    pending: HashMap<i32, VecDeque<Pending>>,
    npending: usize,
    primary_events: VecDeque<Event>,
    oracle_events: VecDeque<Event>,
    oracle_active: bool,
    client_closed: bool,
    primary_closed: bool,
    oracle_closed: bool,
    /// Who ended the connection first: "client", "primary" or "oracle".
    initiator: Option<&'static str>,
    /// When the connection is given up even if a server has not closed yet.
    deadline: Option<Instant>,
    /// The oracle closed while both others were open: the time, and whether it left
    /// requests unanswered (a close caused by a request, not a dead oracle).
    oracle_closed_early: Option<(Instant, Option<RequestInfo>)>,
}

impl Comparator {
    fn new(conn: Arc<Conn>, shared: Arc<Shared>, requested_session: i64) -> Comparator {
        let oracle_active = conn.oracle.is_some();
        Comparator {
            conn,
            shared,
            requested_session,
            primary_sid: 0,
            oracle_sid: 0,
            primary_connect: None,
            oracle_connect: None,
            connects_compared: false,
            pending: HashMap::new(),
            npending: 0,
            primary_events: VecDeque::new(),
            oracle_events: VecDeque::new(),
            oracle_active,
            client_closed: false,
            primary_closed: false,
            oracle_closed: false,
            initiator: None,
            deadline: None,
            oracle_closed_early: None,
        }
    }

    fn grace(&self) -> Duration {
        self.shared.cfg.grace
    }

    fn max_pending(&self) -> usize {
        self.shared.cfg.max_pending
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut last_sweep = Instant::now();
        loop {
            match rx.recv_timeout(SWEEP_EVERY) {
                Ok(m) => self.handle(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now.duration_since(last_sweep) >= SWEEP_EVERY {
                last_sweep = now;
                self.sweep(now);
            }
            if self.finished(now) {
                break;
            }
        }
        self.finish();
    }

    fn diff(&self, xid: Option<i32>, op: &str, path: &str, primary: &str, oracle: &str) {
        let xid = xid.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let path = if path.is_empty() { "-" } else { path };
        self.shared.report.difference(format!(
            "DIFF cnx={} session={:#x} xid={xid} op={op} path={path} primary: {primary} | oracle: {oracle}",
            self.conn.id, self.primary_sid
        ));
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Request(info, at) => self.request(info, at),
            Msg::Frame(side, f, at) => self.frame(side, f, at),
            Msg::Closed(side, reason) => self.closed(side, reason),
            Msg::ClientClosed { reason } => {
                log::debug!("connection {}: {reason}", self.conn.id);
                self.client_closed = true;
                self.initiator.get_or_insert("client");
                self.deadline.get_or_insert(Instant::now() + self.grace());
            }
            Msg::OracleDown(reason) => self.oracle_down(&reason),
        }
    }

    fn request(&mut self, info: RequestInfo, at: Instant) {
        if !self.oracle_active {
            return;
        }
        if self.npending >= self.max_pending() {
            self.shared.report.counters.dropped_comparisons.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.npending += 1;
        self.pending.entry(info.xid).or_default().push_back(Pending { info, at, primary: None, oracle: None });
    }

    /// Drops the oracle for the rest of the connection; the client goes on with the
    /// primary. Replies already waiting for a partner are counted as uncompared.
    fn oracle_down(&mut self, reason: &str) {
        if !self.oracle_active {
            return;
        }
        self.oracle_active = false;
        self.conn.oracle_live.store(false, Ordering::SeqCst);
        self.shared.order.forget_connection(self.conn.id);
        if let Some(o) = &self.conn.oracle {
            let _ = o.shutdown(Shutdown::Both);
        }
        if !self.client_closed && !self.primary_closed {
            self.shared.report.oracle_unavailable(self.conn.id, reason);
        }
        let uncompared = self.pending.values().flatten().filter(|p| p.primary.is_some() || p.oracle.is_some()).count()
            + self.primary_events.len()
            + self.oracle_events.len();
        self.shared.report.counters.uncompared.fetch_add(uncompared as u64, Ordering::Relaxed);
        self.pending.clear();
        self.npending = 0;
        self.primary_events.clear();
        self.oracle_events.clear();
    }

    fn frame(&mut self, side: Side, f: Vec<u8>, at: Instant) {
        let first = match side {
            Side::Primary => self.primary_connect.is_none(),
            Side::Oracle => self.oracle_connect.is_none(),
        };
        if side == Side::Oracle && !self.oracle_active {
            return;
        }
        if first {
            return self.connect_reply(side, &f, at);
        }
        let mut inp = InputArchive::new(&f);
        let h = match ReplyHeader::deserialize(&mut inp) {
            Ok(h) => h,
            Err(e) => {
                let what = format!("<undecodable {}-byte reply: {e}>", f.len());
                let (p, o) = if side == Side::Primary { (what.as_str(), "-") } else { ("-", what.as_str()) };
                self.diff(None, "reply", "", p, o);
                return;
            }
        };
        if !self.oracle_active {
            // Nothing to pair the primary's frames with.
            return;
        }
        let body = inp.rest();
        if h.xid == NOTIFICATION_XID {
            return self.event(side, body, at);
        }
        let Some(queue) = self.pending.get_mut(&h.xid) else {
            log::debug!("connection {}: {:?} reply to xid {} has no request waiting", self.conn.id, side, h.xid);
            self.shared.report.counters.uncompared.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let slot_free = |p: &Pending| match side {
            Side::Primary => p.primary.is_none(),
            Side::Oracle => p.oracle.is_none(),
        };
        let Some(idx) = queue.iter().position(slot_free) else {
            self.shared.report.counters.uncompared.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let op = queue[idx].info.op;
        let summary = self.summarize(op, h.err, body);
        let queue = match self.pending.get_mut(&h.xid) {
            Some(q) => q,
            None => return,
        };
        let entry = &mut queue[idx];
        match side {
            Side::Primary => entry.primary = Some(summary),
            Side::Oracle => entry.oracle = Some(summary),
        }
        if entry.primary.is_some() && entry.oracle.is_some() {
            if let Some(done) = queue.remove(idx) {
                if queue.is_empty() {
                    self.pending.remove(&h.xid);
                }
                self.npending -= 1;
                self.compare(done);
            }
        }
    }

    fn compare(&mut self, p: Pending) {
        self.shared.report.counters.replies_compared.fetch_add(1, Ordering::Relaxed);
        let ps = self.resolve(Side::Primary, p.primary.as_deref().unwrap_or_default());
        let os = self.resolve(Side::Oracle, p.oracle.as_deref().unwrap_or_default());
        if ps != os {
            self.diff(Some(p.info.xid), &op_name(p.info.op), &p.info.path, &ps, &os);
        }
        // A closed session is gone on both servers: forget its mapping.
        if p.info.op == op_code::CLOSE_SESSION && ps == code_name(0) {
            self.shared.forget_session(self.primary_sid);
        }
    }

    fn summarize(&self, op: i32, err: i32, body: &[u8]) -> String {
        Normalizer { fields: self.shared.cfg.stat_fields }.reply(op, err, body)
    }

    /// Names the ephemeral owners in a summary from `side` in side-independent terms:
    /// this connection's session, another proxied session (by its primary id), or a
    /// session the proxy never saw.
    fn resolve(&self, side: Side, summary: &str) -> String {
        let own = match side {
            Side::Primary => self.primary_sid,
            Side::Oracle => self.oracle_sid,
        };
        resolve_owners(summary, |o| {
            if o == own {
                return "this-session".into();
            }
            let sessions = self.shared.sessions.lock();
            let primary_id = match side {
                Side::Primary => sessions.by_primary.contains_key(&o).then_some(o),
                Side::Oracle => sessions.by_oracle.get(&o).copied(),
            };
            match primary_id {
                Some(p) => format!("session {p:#x}"),
                None => "unproxied-session".into(),
            }
        })
    }

    /// Reports a pending request whose pair is incomplete (`missing` stands in for the
    /// absent reply).
    fn diff_pending(&self, p: Pending, missing: &str) {
        let ps = p.primary.map(|s| self.resolve(Side::Primary, &s)).unwrap_or_else(|| missing.to_owned());
        let os = p.oracle.map(|s| self.resolve(Side::Oracle, &s)).unwrap_or_else(|| missing.to_owned());
        self.diff(Some(p.info.xid), &op_name(p.info.op), &p.info.path, &ps, &os);
    }

    fn event(&mut self, side: Side, body: &[u8], at: Instant) {
        let key = match WatcherEvent::from_bytes(body) {
            Ok(e) => event_key(&e),
            Err(e) => format!("<undecodable event: {e}>"),
        };
        let (mine, theirs) = match side {
            Side::Primary => (&mut self.primary_events, &mut self.oracle_events),
            Side::Oracle => (&mut self.oracle_events, &mut self.primary_events),
        };
        if let Some(i) = theirs.iter().position(|e| e.key == key) {
            theirs.remove(i);
            self.shared.report.counters.events_compared.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if mine.len() >= self.shared.cfg.max_pending {
            self.shared.report.counters.dropped_comparisons.fetch_add(1, Ordering::Relaxed);
            return;
        }
        mine.push_back(Event { key, at });
    }

    fn connect_reply(&mut self, side: Side, f: &[u8], at: Instant) {
        let mut inp = InputArchive::new(f);
        let resp = match ConnectResponse::deserialize(&mut inp) {
            Ok(r) => r,
            Err(e) => {
                let what = format!("<undecodable ConnectResponse: {e}>");
                let (p, o) = if side == Side::Primary { (what.as_str(), "-") } else { ("-", what.as_str()) };
                self.diff(None, "connect", "", p, o);
                // Keep going: later frames are replies even if this one was garbage.
                ConnectResponse::default()
            }
        };
        let read_only = inp.read_bool().ok();
        let reply = ConnectReply { resp, read_only, at };
        match side {
            Side::Primary => {
                self.primary_sid = reply.resp.session_id;
                self.primary_connect = Some(reply);
            }
            Side::Oracle => {
                self.oracle_sid = reply.resp.session_id;
                self.oracle_connect = Some(reply);
            }
        }
        self.compare_connects();
    }

    fn connect_summary(r: &ConnectReply) -> String {
        let session = if r.resp.session_id == 0 { "refused (session 0)" } else { "session granted" };
        let ro = match r.read_only {
            Some(true) => " readOnly",
            _ => "",
        };
        format!("protocolVersion={} timeOut={} {session}{ro}", r.resp.protocol_version, r.resp.time_out)
    }

    fn compare_connects(&mut self) {
        if self.connects_compared || !self.oracle_active {
            return;
        }
        let (Some(p), Some(o)) = (&self.primary_connect, &self.oracle_connect) else { return };
        self.connects_compared = true;
        self.shared.report.counters.replies_compared.fetch_add(1, Ordering::Relaxed);
        let (ps, os) = (Self::connect_summary(p), Self::connect_summary(o));
        if ps != os {
            let what = if self.requested_session != 0 {
                format!("resume {:#x}", self.requested_session)
            } else {
                "new session".to_owned()
            };
            self.diff(None, "connect", &what, &ps, &os);
        }
        if p.resp.session_id != 0 && o.resp.session_id != 0 {
            let passwd = o.resp.passwd.clone().unwrap_or_default();
            self.shared.remember_session(p.resp.session_id, OracleSession { sid: o.resp.session_id, passwd });
        }
    }

    fn closed(&mut self, side: Side, reason: String) {
        log::debug!("connection {}: {reason}", self.conn.id);
        let now = Instant::now();
        match side {
            Side::Primary => {
                self.primary_closed = true;
                self.initiator.get_or_insert("primary");
            }
            Side::Oracle => {
                self.oracle_closed = true;
                if self.oracle_active && !self.client_closed && !self.primary_closed {
                    // Maybe the oracle closed on a request the primary will close on too
                    // in a moment; wait a grace window before calling it.
                    let outstanding = self.pending.values().flatten().find(|p| p.oracle.is_none()).map(|p| p.info.clone());
                    self.oracle_closed_early = Some((now, outstanding));
                }
                self.initiator.get_or_insert("oracle");
            }
        }
        if self.client_closed || self.primary_closed {
            self.deadline.get_or_insert(now + self.grace());
        }
    }

    fn finished(&self, now: Instant) -> bool {
        if !(self.client_closed || self.primary_closed) {
            return false;
        }
        let oracle_done = self.oracle_closed || !self.oracle_active;
        (self.primary_closed && oracle_done) || self.deadline.is_some_and(|d| now >= d)
    }

    /// Reports replies and events still without a partner after the grace window.
    fn sweep(&mut self, now: Instant) {
        let grace = self.grace();
        if let Some((at, outstanding)) = self.oracle_closed_early.clone() {
            if !self.primary_closed && !self.client_closed && now.duration_since(at) >= grace {
                self.oracle_closed_early = None;
                if let Some(info) = outstanding {
                    self.diff(
                        Some(info.xid),
                        &op_name(info.op),
                        &info.path,
                        "connection kept open",
                        "closed the connection instead of replying",
                    );
                }
                self.oracle_down("oracle closed the connection");
            }
        }
        if !self.oracle_active {
            return;
        }
        if self.connects_compared_or_waiting(now) {
            return;
        }
        let mut late: Vec<Pending> = Vec::new();
        for queue in self.pending.values_mut() {
            let mut i = 0;
            while i < queue.len() {
                let p = &queue[i];
                let one_sided = p.primary.is_some() != p.oracle.is_some();
                if one_sided && now.duration_since(p.at) >= grace {
                    if let Some(p) = queue.remove(i) {
                        late.push(p);
                    }
                } else {
                    i += 1;
                }
            }
        }
        self.pending.retain(|_, q| !q.is_empty());
        self.npending -= late.len();
        let missing = format!("<no reply within {} ms>", grace.as_millis());
        for p in late {
            self.diff_pending(p, &missing);
        }
        self.sweep_events(now, false);
    }

    /// Until both handshakes are in, a missing oracle handshake is the only thing to
    /// look for; true when the sweep should stop there.
    fn connects_compared_or_waiting(&mut self, now: Instant) -> bool {
        if self.connects_compared {
            return false;
        }
        if let Some(p) = &self.primary_connect {
            if self.oracle_connect.is_none() && now.duration_since(p.at) >= self.grace() {
                self.oracle_down(&format!("no handshake reply from the oracle within {} ms", self.grace().as_millis()));
            }
        }
        true
    }

    /// Events without a partner: after the grace window (or at the end, all of them).
    fn sweep_events(&mut self, now: Instant, all: bool) {
        let grace = self.grace();
        for side in [Side::Primary, Side::Oracle] {
            let list = match side {
                Side::Primary => &mut self.primary_events,
                Side::Oracle => &mut self.oracle_events,
            };
            let mut late = Vec::new();
            while list.front().is_some_and(|e| all || now.duration_since(e.at) >= grace) {
                if let Some(e) = list.pop_front() {
                    late.push(e);
                }
            }
            for e in late {
                let missing = "<no such event>";
                let (p, o) = match side {
                    Side::Primary => (e.key.as_str(), missing),
                    Side::Oracle => (missing, e.key.as_str()),
                };
                self.diff(Some(NOTIFICATION_XID), "notification", "", p, o);
            }
        }
    }

    /// The connection is over: report what never got a partner (unless the client's own
    /// close explains it), close every socket and forget the connection.
    fn finish(mut self) {
        // At proxy shutdown every socket is closed at once: nothing left is telling.
        let client_first = self.initiator == Some("client") || self.shared.stopping.load(Ordering::SeqCst);
        if self.oracle_active && !client_first {
            if self.primary_closed && !self.oracle_closed {
                self.diff(None, "close", "", "closed the connection", "kept the connection open");
            }
            let leftovers: Vec<Pending> = self.pending.drain().flat_map(|(_, q)| q).collect();
            for p in leftovers {
                if p.primary.is_some() || p.oracle.is_some() {
                    self.diff_pending(p, "<no reply; connection closed>");
                }
            }
            self.sweep_events(Instant::now(), true);
        } else {
            let n = self.pending.values().flatten().filter(|p| p.primary.is_some() || p.oracle.is_some()).count()
                + self.primary_events.len()
                + self.oracle_events.len();
            if n > 0 && log::log_enabled!(log::Level::Debug) {
                let replies: Vec<String> = self
                    .pending
                    .values()
                    .flatten()
                    .filter(|p| p.primary.is_some() || p.oracle.is_some())
                    .map(|p| format!("{} xid {} ({} only)", op_name(p.info.op), p.info.xid, if p.primary.is_some() { "primary" } else { "oracle" }))
                    .collect();
                let events: Vec<&str> = self.primary_events.iter().chain(&self.oracle_events).map(|e| e.key.as_str()).collect();
                log::debug!("connection {}: left unpaired by the client's close: {replies:?} {events:?}", self.conn.id);
            }
            self.shared.report.counters.uncompared.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.conn.shutdown_all();
        self.shared.order.forget_connection(self.conn.id);
        self.shared.connection_ended(self.conn.id);
    }
}
