//! `ServerCnxnFactory`: the accept thread (upstream's `NIOServerCnxnFactory.AcceptThread`)
//! and where each accepted connection goes.
//!
//! Plain connections go to the selector threads of `nio_server_cnxn_factory`, as with
//! upstream's default NIO factory. TLS connections (the secure port, and
//! `client.portUnification`), which upstream serves through Netty, and every connection
//! when `zookeeper.serverCnxnFactory` names the Netty factory, get a reader thread
//! (frames in, handshake, 4lw) and a writer thread (frames out) each, with blocking IO.
//! The observable behaviour (framing, limits, what closes a connection) follows
//! NIOServerCnxn either way.

use std::io::{self, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver};

use crate::common::tls_stream;
use crate::jute;
use crate::server::command;
use crate::server::nio_server_cnxn_factory::{self, Accepted, Selectors};
use crate::server::server_cnxn::{fmt_addr, Outgoing, ServerCnxn, SharedStream};
use crate::server::zookeeper_server::ZooKeeperServer;

static NEXT_CNXN_ID: AtomicU64 = AtomicU64::new(1);

/// Small stacks: a connection thread only parses frames.
const CNXN_THREAD_STACK: usize = 256 * 1024;

/// `zookeeper.maxCnxns`: the most client connections a server holds at once (0, the
/// default: no limit of the operator's).
pub const MAX_CNXNS: &str = "zookeeper.maxCnxns";

/// Each connection runs a reader and a writer thread.
const THREADS_PER_CNXN: u64 = 2;
/// Memory mappings a thread costs: its stack and guard page, and the signal stack and
/// guard page std gives every thread.
const MAPS_PER_THREAD: u64 = 4;
/// Mappings and threads kept for everything else (heap, libraries, the server's own
/// threads, connections of the election and quorum ports).
const RESERVED_MAPS: u64 = 4096;
const RESERVED_THREADS: u64 = 1024;

/// How many connections this process can run, given the kernel's `vm.max_map_count`
/// and `kernel.pid_max` (None: unknown, no bound from it). A thread that cannot get its
/// mappings aborts the whole process inside std (it cannot even panic), so the accept
/// thread must refuse connections before that point rather than find it. Upstream's
/// selector threads have no such bound; this goes once connections stop costing
/// threads.
pub fn process_cnxn_capacity(max_map_count: Option<u64>, pid_max: Option<u64>) -> Option<u64> {
    let by_maps = max_map_count.map(|m| m.saturating_sub(RESERVED_MAPS) / (MAPS_PER_THREAD * THREADS_PER_CNXN));
    let by_pids = pid_max.map(|p| p.saturating_sub(RESERVED_THREADS) / THREADS_PER_CNXN);
    match (by_maps, by_pids) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The connection limit in force: the operator's `zookeeper.maxCnxns` (if above 0) or
/// the process's capacity, whichever is lower; 0 for none.
pub fn total_cnxn_limit(max_cnxns: i64, capacity: Option<u64>) -> u64 {
    let operator = u64::try_from(max_cnxns).ok().filter(|m| *m > 0);
    match (operator, capacity) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0),
    }
}

fn read_proc_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `initMaxCnxns`, with upstream's log lines, then the process's own bound when each
/// connection costs threads (`threaded`).
fn init_max_cnxns(threaded: bool) -> u64 {
    let mut configured = crate::system_properties::get_i64(MAX_CNXNS).filter(|v| i32::try_from(*v).is_ok()).unwrap_or(0);
    if configured < 0 {
        configured = 0;
        log::warn!("maxCnxns should be greater than or equal to 0, using default value 0.");
    } else if configured == 0 {
        log::warn!("maxCnxns is not configured, using default value 0.");
    } else {
        log::info!("maxCnxns configured value is {configured}.");
    }
    let maps = read_proc_number("/proc/sys/vm/max_map_count");
    let pids = read_proc_number("/proc/sys/kernel/pid_max");
    let capacity = if threaded { process_cnxn_capacity(maps, pids) } else { None };
    let limit = total_cnxn_limit(configured, capacity);
    if let Some(c) = capacity {
        if configured <= 0 || c < configured as u64 {
            log::info!(
                "at most {c} client connections at once: {THREADS_PER_CNXN} threads each (vm.max_map_count {}, kernel.pid_max {})",
                maps.map_or("unknown".into(), |v| v.to_string()),
                pids.map_or("unknown".into(), |v| v.to_string())
            );
        }
    }
    limit
}

/// The lookups a connection table needs without a scan: connections per client address
/// (NIOServerCnxnFactory's `ipMap`, for `maxClientCnxns`) and per session
/// (ServerCnxnFactory's `sessionMap`, for closeSession, expiry and reconnects). With
/// 20 000 connections a scan per accepted connection or per closed session would cost
/// the accept thread, or the commit thread, milliseconds each time.
///
/// A session normally has one connection; a reconnect briefly has two, the old one
/// being closed.
#[derive(Default)]
pub struct CnxnIndex {
    per_ip: std::collections::HashMap<std::net::IpAddr, usize>,
    by_session: std::collections::HashMap<i64, Vec<u64>>,
}

impl CnxnIndex {
    pub fn added(&mut self, ip: std::net::IpAddr) {
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    /// A connection left; `session` is the one it was bound to (0: none).
    pub fn removed(&mut self, id: u64, ip: std::net::IpAddr, session: i64) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        self.unbind(id, session);
    }

    pub fn bind(&mut self, id: u64, session: i64) {
        let ids = self.by_session.entry(session).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }

    fn unbind(&mut self, id: u64, session: i64) {
        if let Some(ids) = self.by_session.get_mut(&session) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                self.by_session.remove(&session);
            }
        }
    }

    pub fn count_from(&self, ip: std::net::IpAddr) -> usize {
        self.per_ip.get(&ip).copied().unwrap_or(0)
    }

    pub fn of_session(&self, session: i64) -> &[u64] {
        self.by_session.get(&session).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Every open client connection (upstream keeps this set in the cnxn factory) with its
/// [`CnxnIndex`], under one lock. Reads see the map itself; changes go through the
/// methods, which keep the index in step.
#[derive(Default)]
pub struct CnxnTable {
    by_id: std::collections::HashMap<u64, Arc<ServerCnxn>>,
    index: CnxnIndex,
}

impl std::ops::Deref for CnxnTable {
    type Target = std::collections::HashMap<u64, Arc<ServerCnxn>>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl CnxnTable {
    /// True if the connection was not there before.
    pub fn insert(&mut self, cnxn: Arc<ServerCnxn>) -> bool {
        let ip = cnxn.remote.ip();
        let added = self.by_id.insert(cnxn.id, cnxn).is_none();
        if added {
            self.index.added(ip);
        }
        added
    }

    /// True if the connection was there.
    pub fn remove(&mut self, cnxn: &ServerCnxn) -> bool {
        let removed = self.by_id.remove(&cnxn.id).is_some();
        if removed {
            self.index.removed(cnxn.id, cnxn.remote.ip(), cnxn.session_id());
        }
        removed
    }

    /// Gives a connection its session (`ServerCnxnFactory.addSession`); one already
    /// gone stays out of the index.
    pub fn bind_session(&mut self, cnxn: &ServerCnxn, session_id: i64) {
        cnxn.set_session_id(session_id);
        if self.by_id.contains_key(&cnxn.id) {
            self.index.bind(cnxn.id, session_id);
        }
    }

    /// `getClientCnxnCount`.
    pub fn count_from(&self, ip: std::net::IpAddr) -> usize {
        self.index.count_from(ip)
    }

    pub fn of_session(&self, session_id: i64) -> Vec<Arc<ServerCnxn>> {
        self.index.of_session(session_id).iter().filter_map(|id| self.by_id.get(id).cloned()).collect()
    }
}

/// The server a client port serves, if any: a quorum peer's changes with its role and
/// is none while it elects or syncs (upstream's `ServerCnxnFactory.zkServer`).
pub struct ServerHolder {
    zks: parking_lot::RwLock<Option<Arc<ZooKeeperServer>>>,
}

impl ServerHolder {
    pub fn new(zks: Option<Arc<ZooKeeperServer>>) -> Arc<ServerHolder> {
        Arc::new(ServerHolder { zks: parking_lot::RwLock::new(zks) })
    }

    pub fn get(&self) -> Option<Arc<ZooKeeperServer>> {
        self.zks.read().clone()
    }

    pub fn set(&self, zks: Option<Arc<ZooKeeperServer>>) {
        *self.zks.write() = zks;
    }
}

/// What a client port speaks.
#[derive(Clone)]
pub enum ClientTls {
    Plain,
    /// `secureClientPort`: TLS only.
    Secure(Arc<rustls::ServerConfig>),
    /// `client.portUnification` on the plain port: TLS or plain, as each client opens.
    Unified(Arc<rustls::ServerConfig>),
}

pub struct ServerCnxnFactory {
    holder: Arc<ServerHolder>,
    local: SocketAddr,
    max_client_cnxns: i32,
    stopped: Arc<AtomicBool>,
    accept_thread: Option<thread::JoinHandle<()>>,
    selectors: Option<Arc<Selectors>>,
}

impl ServerCnxnFactory {
    /// `configure` + `startup`: bind, then start the accept thread.
    pub fn start(zks: Arc<ZooKeeperServer>, addr: SocketAddr, backlog: i32) -> io::Result<ServerCnxnFactory> {
        let max = zks.config.max_client_cnxns;
        Self::start_with_holder(ServerHolder::new(Some(zks)), max, addr, backlog)
    }

    /// A client port whose server comes and goes (a quorum peer's).
    pub fn start_with_holder(holder: Arc<ServerHolder>, max: i32, addr: SocketAddr, backlog: i32) -> io::Result<ServerCnxnFactory> {
        Self::start_with_holder_tls(holder, max, addr, backlog, ClientTls::Plain)
    }

    /// The secure client port (`secureClientPort`): every connection speaks TLS.
    pub fn start_secure(zks: Arc<ZooKeeperServer>, addr: SocketAddr, backlog: i32, tls: Arc<rustls::ServerConfig>) -> io::Result<ServerCnxnFactory> {
        let max = zks.config.max_client_cnxns;
        Self::start_with_holder_tls(ServerHolder::new(Some(zks)), max, addr, backlog, ClientTls::Secure(tls))
    }

    pub fn start_with_holder_tls(
        holder: Arc<ServerHolder>,
        max: i32,
        addr: SocketAddr,
        backlog: i32,
        tls: ClientTls,
    ) -> io::Result<ServerCnxnFactory> {
        let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(if backlog > 0 { backlog } else { 50 })?;
        let listener: TcpListener = socket.into();
        let local = listener.local_addr()?;
        let mode = match tls {
            ClientTls::Plain => "",
            ClientTls::Secure(_) => " (secure)",
            ClientTls::Unified(_) => " (TLS and plaintext: client.portUnification)",
        };
        log::info!("binding to port {}{mode}", fmt_addr(&local));
        log::info!("maxClientCnxns set to {max}");
        let selectors = match tls {
            ClientTls::Plain if nio_server_cnxn_factory::selectors_enabled() => Some(Arc::new(Selectors::start(local)?)),
            _ => None,
        };
        let total = init_max_cnxns(selectors.is_none());
        let stopped = Arc::new(AtomicBool::new(false));
        let h = holder.clone();
        let st = stopped.clone();
        let sel = selectors.clone();
        let accept_thread = thread::Builder::new()
            .name(format!("NIOServerCxnFactory.AcceptThread:{}", fmt_addr(&local)))
            .spawn(move || accept_loop(listener, h, max, total, st, tls, sel))?;
        Ok(ServerCnxnFactory { holder, local, max_client_cnxns: max, stopped, accept_thread: Some(accept_thread), selectors })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.local
    }

    pub fn max_client_cnxns(&self) -> i32 {
        self.max_client_cnxns
    }

    pub fn shutdown(&mut self) {
        self.stopped.store(true, Ordering::Release);
        // Wake the accept thread.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_millis(200));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        if let Some(s) = self.selectors.take() {
            s.shutdown();
        }
        if let Some(zks) = self.holder.get() {
            zks.shutdown();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    holder: Arc<ServerHolder>,
    max: i32,
    total: u64,
    stopped: Arc<AtomicBool>,
    tls: ClientTls,
    selectors: Option<Arc<Selectors>>,
) {
    // `acceptErrorLogger`: a flood of refusals logs once a second, not once each.
    let mut last_refusal_log: Option<std::time::Instant> = None;
    let mut refused_since_log = 0u64;
    for stream in listener.incoming() {
        if stopped.load(Ordering::Acquire) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Ignoring unexpected exception during accept: {e}");
                // Out of descriptors and the like: back off instead of spinning.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let Ok(remote) = stream.peer_addr() else { continue };
        let Some(zks) = holder.get() else {
            serve_not_running(stream, remote);
            continue;
        };
        if total > 0 {
            // `limitTotalNumberOfCnxns`.
            let alive = zks.cnxns.lock().len() as u64;
            if alive >= total {
                crate::server::request_throttler::METRICS.connection_rejected.fetch_add(1, Ordering::Relaxed);
                refused_since_log += 1;
                if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    log::error!("Too many connections {alive} - max is {total}");
                    log::warn!("Error accepting new connection: Too many connections max allowed is {total} ({refused_since_log} refused)");
                    last_refusal_log = Some(std::time::Instant::now());
                    refused_since_log = 0;
                }
                drop(stream);
                continue;
            }
        }
        if max > 0 {
            let ip = remote.ip();
            let count = zks.client_cnxn_count(ip);
            if count >= max as usize {
                log::warn!("Too many connections from {} - max is {}", fmt_addr(&remote).split(':').next().unwrap_or(""), max);
                drop(stream);
                continue;
            }
        }
        let started = match &selectors {
            Some(s) => start_selected_connection(stream, remote, &zks, s),
            None => start_connection(stream, remote, &zks, &tls),
        };
        if let Err(e) = started {
            log::warn!("Error accepting new connection: {e}");
        }
    }
    log::info!("accept thread exited run method");
}

/// A connection while no server runs: four-letter words get their "not serving"
/// answers; anything else is closed, as upstream closes a session request when
/// "ZooKeeperServer not running".
fn serve_not_running(stream: TcpStream, remote: SocketAddr) {
    let spawned = thread::Builder::new()
        .name(format!("ServerCnxn:{}", fmt_addr(&remote)))
        .stack_size(CNXN_THREAD_STACK)
        .spawn(move || {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_millis(sessionless_cnxn_timeout())));
            let mut len = [0u8; 4];
            if stream.read_exact(&mut len).is_ok() {
                if let Some(cmd) = command::four_letter_word(i32::from_be_bytes(len)) {
                    let text = command::answer_not_serving(cmd, &mut stream, &remote);
                    let _ = stream.write_all(text.as_bytes());
                    let _ = stream.flush();
                } else {
                    log::info!("Closing connection from {}: ZooKeeperServer not running", fmt_addr(&remote));
                }
            }
            let _ = stream.shutdown(std::net::Shutdown::Both);
        });
    if let Err(e) = spawned {
        log::warn!("Error accepting new connection: {e}");
    }
}

fn start_connection(stream: TcpStream, remote: SocketAddr, zks: &Arc<ZooKeeperServer>, tls: &ClientTls) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let stream = match tls {
        ClientTls::Plain => SharedStream::new(stream),
        ClientTls::Secure(cfg) => SharedStream::tls(stream, cfg.clone())?,
        ClientTls::Unified(cfg) => {
            // The mode is known only from the client's first bytes: wait for them on
            // the connection's own thread, never on the accept thread.
            let (cfg, z) = (cfg.clone(), zks.clone());
            thread::Builder::new()
                .name(format!("ServerCnxn:{}", fmt_addr(&remote)))
                .stack_size(CNXN_THREAD_STACK)
                .spawn(move || {
                    let detected = tls_stream::client_starts_tls(&stream, Duration::from_millis(sessionless_cnxn_timeout()))
                        .and_then(|tls| if tls { SharedStream::tls(stream, cfg) } else { Ok(SharedStream::new(stream)) });
                    let opened = detected.and_then(|s| open_connection(s.clone(), remote, &z).map(|c| (c, s)));
                    match opened {
                        Ok((cnxn, s)) => {
                            reader_loop(s, &cnxn, &z);
                            close_cnxn(&cnxn, &z);
                        }
                        Err(e) => log::warn!("Error accepting new connection: {e}"),
                    }
                })?;
            return Ok(());
        }
    };
    let cnxn = open_connection(stream.clone(), remote, zks)?;
    let z = zks.clone();
    let c3 = cnxn.clone();
    let spawned = thread::Builder::new()
        .name(format!("ServerCnxn:{}", fmt_addr(&remote)))
        .stack_size(CNXN_THREAD_STACK)
        .spawn(move || {
            reader_loop(stream, &c3, &z);
            close_cnxn(&c3, &z);
        });
    if let Err(e) = spawned {
        close_cnxn(&cnxn, zks);
        return Err(e);
    }
    Ok(())
}

/// A plain connection for a selector thread: registered with the server, then handed
/// over with its outgoing queue.
fn start_selected_connection(stream: TcpStream, remote: SocketAddr, zks: &Arc<ZooKeeperServer>, selectors: &Selectors) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let stream = SharedStream::new(stream);
    let (tx, rx) = unbounded::<Outgoing>();
    let id = NEXT_CNXN_ID.fetch_add(1, Ordering::Relaxed);
    let mut cnxn = ServerCnxn::new(id, remote, tx, stream.clone(), zks.stats.packets_sent.clone());
    cnxn.recv_limits = zks.recv_limits;
    let (i, waker) = selectors.next_waker();
    cnxn.set_selector(waker);
    let cnxn = Arc::new(cnxn);
    cnxn.add_auth_info(crate::proto::data::Id::new("ip", &remote.ip().to_string()));
    zks.add_cnxn(cnxn.clone());
    let handed = selectors.hand_over(i, Accepted { stream, cnxn: cnxn.clone(), out: rx, zks: zks.clone() });
    if let Err(e) = handed {
        cnxn.mark_closed();
        zks.remove_cnxn(&cnxn);
        return Err(e);
    }
    Ok(())
}

/// Registers the connection and starts its writer thread; the caller runs the reader.
fn open_connection(stream: SharedStream, remote: SocketAddr, zks: &Arc<ZooKeeperServer>) -> io::Result<Arc<ServerCnxn>> {
    let (tx, rx) = unbounded::<Outgoing>();
    let id = NEXT_CNXN_ID.fetch_add(1, Ordering::Relaxed);
    let mut cnxn = ServerCnxn::new(id, remote, tx, stream.clone(), zks.stats.packets_sent.clone());
    cnxn.recv_limits = zks.recv_limits;
    let cnxn = Arc::new(cnxn);
    cnxn.add_auth_info(crate::proto::data::Id::new("ip", &remote.ip().to_string()));
    zks.add_cnxn(cnxn.clone());
    let c2 = cnxn.clone();
    let spawned = thread::Builder::new()
        .name(format!("ServerCnxn.Sender:{}", fmt_addr(&remote)))
        .stack_size(CNXN_THREAD_STACK)
        .spawn(move || writer_loop(stream, rx, c2));
    if let Err(e) = spawned {
        zks.remove_cnxn(&cnxn);
        return Err(e);
    }
    Ok(cnxn)
}

pub(crate) fn close_cnxn(cnxn: &Arc<ServerCnxn>, zks: &Arc<ZooKeeperServer>) {
    // Closed first, so that a request still in the pipeline cannot register a watch
    // for this connection after its watches were dropped.
    cnxn.mark_closed();
    zks.remove_cnxn(cnxn);
    cnxn.send_close();
    log::debug!(
        "Closed socket connection for client {} {}",
        fmt_addr(&cnxn.remote),
        if cnxn.session_id() != 0 {
            format!("which had sessionid 0x{:x}", cnxn.session_id())
        } else {
            "(no session established for client)".into()
        }
    );
}

fn writer_loop(stream: SharedStream, rx: Receiver<Outgoing>, cnxn: Arc<ServerCnxn>) {
    let mut w = BufWriter::with_capacity(64 * 1024, stream);
    let mut ok = true;
    let mut timeout_set = None;
    while let Ok(msg) = rx.recv() {
        set_write_timeout(&w, &cnxn, &mut timeout_set);
        match msg {
            Outgoing::Frame(f) => {
                if ok && w.write_all(&f).is_err() {
                    ok = false;
                }
                let len = f.len();
                drop(f);
                cnxn.frame_written(len);
            }
            Outgoing::Close => break,
        }
        // Batch: keep writing while more is queued, flush when the queue runs dry.
        if rx.is_empty() && ok && w.flush().is_err() {
            ok = false;
        }
        if !ok {
            break;
        }
    }
    let _ = w.flush();
    cnxn.mark_closed();
    cnxn.shutdown_socket();
    // Whatever was still queued goes now (a receiver-less channel drops its messages).
    drop(rx);
    drop(w);
    cnxn.writer_exited();
}

/// A client that reads nothing leaves the writer blocked in `write` for good, holding
/// the connection and its queue. Upstream expires a connection that sees no IO for its
/// session timeout (`NIOServerCnxnFactory.touchCnxn`, the sessionless timeout before
/// the handshake); a send that makes no progress for that long ends ours the same way.
fn set_write_timeout(w: &BufWriter<SharedStream>, cnxn: &ServerCnxn, set: &mut Option<u64>) {
    let ms = match cnxn.session_timeout() {
        t if t > 0 => t as u64,
        _ => sessionless_cnxn_timeout(),
    };
    if *set != Some(ms) {
        let _ = w.get_ref().set_write_timeout(Some(Duration::from_millis(ms)));
        *set = Some(ms);
    }
}

/// How long a throttled reader sleeps at most before it looks again; wake-ups normally
/// come sooner, from the writer and from FinalRequestProcessor.
const THROTTLE_RECHECK: Duration = Duration::from_millis(500);

/// Our `disableRecv`: parks the reader while the connection is over one of its bounds
/// (`RecvLimits`), holding the request it has just read; the rest stay unread in the
/// socket. Checking once a request is there, rather than before reading, keeps a
/// client whose window is exactly the bound from parking the reader on every round
/// trip. Order is kept and nothing is dropped. Returns false when the connection
/// closed meanwhile.
fn wait_until_recv_enabled(cnxn: &ServerCnxn, zks: &ZooKeeperServer) -> bool {
    let Some(reason) = zks.recv_throttle_reason(cnxn, false) else { return !cnxn.is_closed() };
    log::debug!(
        "Throttling - disabling recv {} (session 0x{:x}): {reason:?}, {} bytes unwritten, {} reads in the pipeline, {} requests outstanding",
        fmt_addr(&cnxn.remote),
        cnxn.session_id(),
        cnxn.throttle.unwritten(),
        cnxn.throttle.pipelined_reads(),
        cnxn.outstanding.load(Ordering::Relaxed)
    );
    // While the reader is parked the client's pings are not read, so they cannot keep
    // the session alive; a client that is still taking its replies is alive, so
    // progress of the writer counts as its pings would have.
    let mut written = cnxn.throttle.written_total();
    cnxn.throttle.wait_while(
        THROTTLE_RECHECK,
        || !cnxn.is_closed() && zks.recv_throttle_reason(cnxn, true).is_some(),
        || {
            let now = cnxn.throttle.written_total();
            if now != written && !cnxn.is_closed() {
                written = now;
                zks.session_tracker().touch_session(cnxn.session_id(), cnxn.session_timeout());
            }
        },
    );
    log::debug!("Sending unthrottle event {} (session 0x{:x})", fmt_addr(&cnxn.remote), cnxn.session_id());
    !cnxn.is_closed()
}

fn read_full(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    stream.read_exact(buf)
}

/// How long a client may take over its TLS handshake: Netty's `SslHandler` default
/// (10 s), which upstream's secure client port keeps (`zookeeper.ssl.handshakeDetectionTimeoutMillis`
/// is the quorum's UnifiedServerSocket's, not the client port's).
const CLIENT_TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// `zookeeper.nio.sessionlessCnxnTimeout` (ms): how long a connection without a session may
/// stay silent; also the bucket width of upstream's connection expiry queue.
pub fn sessionless_cnxn_timeout() -> u64 {
    crate::system_properties::get_i64("zookeeper.nio.sessionlessCnxnTimeout").filter(|v| *v > 0).unwrap_or(10_000) as u64
}

/// How long a read may block before the connection counts as idle, like upstream's
/// `cnxnExpiryQueue` (NIOServerCnxnFactory.touchCnxn): expiry at
/// `roundToNextInterval(now + timeout)` with the sessionless timeout as interval. A connection
/// without a session uses the sessionless timeout, one with a session its session timeout.
fn idle_read_timeout(timeout_ms: u64) -> Duration {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let interval = sessionless_cnxn_timeout();
    let now = EPOCH.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64;
    let expire = ((now + timeout_ms) / interval + 1) * interval;
    Duration::from_millis((expire - now).max(1))
}

/// A client frame's length prefix as `NIOServerCnxn.readLength` checks it: negative or
/// above `jute.maxbuffer` is "Len error" and closes the connection (None).
pub fn checked_frame_len(len: i32, max: usize) -> Option<usize> {
    usize::try_from(len).ok().filter(|&n| n <= max)
}

fn reader_loop(stream: SharedStream, cnxn: &Arc<ServerCnxn>, zks: &Arc<ZooKeeperServer>) {
    // Plain connections read over `&TcpStream`, whose reads fill the buffer without
    // zeroing it first: a reader that needs initialized memory would touch all 64 KB of
    // every idle connection. TLS connections read through their session.
    if stream.is_tls() {
        reader_loop_on(&stream, &stream, cnxn, zks)
    } else {
        reader_loop_on(&*stream, &stream, cnxn, zks)
    }
}

/// `X509AuthenticationProvider.handleAuthentication` at the end of the handshake: the
/// client certificate's subject becomes the connection's `x509` id (and `super` when
/// `zookeeper.X509AuthenticationProvider.superUser` names it).
fn authenticate_x509(stream: &SharedStream, cnxn: &ServerCnxn) {
    let Some(cert) = stream.peer_certificate() else { return };
    let Some(id) = crate::common::x509_util::subject_rfc2253(&cert) else {
        log::error!("Failed to read the client certificate's subject for {}", fmt_addr(&cnxn.remote));
        return;
    };
    if crate::system_properties::get("zookeeper.X509AuthenticationProvider.superUser").as_deref() == Some(id.as_str()) {
        cnxn.add_auth_info(crate::proto::data::Id::new("super", &id));
        log::info!("Authenticated Id '{id}' as super user");
    }
    cnxn.add_auth_info(crate::proto::data::Id::new("x509", &id));
    log::info!("Authenticated Id '{id}' for Scheme 'x509'");
}

fn reader_loop_on<R: Read + Write>(io: R, stream: &SharedStream, cnxn: &Arc<ServerCnxn>, zks: &Arc<ZooKeeperServer>) {
    let mut initialized = false;
    let max = jute::max_buffer();
    // Buffered once the session is set up; the handshake (and a 4lw, which may read
    // more bytes itself) is read straight from the socket, so nothing is buffered early.
    let mut reader = io::BufReader::with_capacity(64 * 1024, io);
    let mut authenticated = false;
    let mut idle_set: Option<u64> = None;
    loop {
        // Each read that returns data counts as activity (the timeout is per read call);
        // a read that times out closes the connection (CONNECTION_EXPIRED upstream).
        // The timeout only changes when the session does: no setsockopt per request.
        let idle_ms = match cnxn.session_timeout() {
            t if initialized && t > 0 => t as u64,
            _ => sessionless_cnxn_timeout(),
        };
        cnxn.touch(idle_ms, sessionless_cnxn_timeout());
        // A TLS handshake has its own bound (Netty's SslHandler timeout).
        if stream.is_tls() && !authenticated {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(CLIENT_TLS_HANDSHAKE_TIMEOUT_MS.min(idle_ms))));
        } else if idle_set != Some(idle_ms) {
            let _ = stream.set_read_timeout(Some(idle_read_timeout(idle_ms)));
            idle_set = Some(idle_ms);
        }
        let mut len_buf = [0u8; 4];
        let res = if initialized { reader.read_exact(&mut len_buf) } else { read_full(reader.get_mut(), &mut len_buf) };
        if let Err(e) = res {
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
                crate::server::metrics::server_metrics::SESSIONLESS_CONNECTIONS_EXPIRED.fetch_add(1, Ordering::Relaxed);
                log::info!(
                    "Closing idle connection from {} (session 0x{:x}): connection expired",
                    fmt_addr(&cnxn.remote),
                    cnxn.session_id()
                );
            } else if !cnxn.is_closed() {
                log::debug!(
                    "EndOfStreamException: Unable to read additional data from client, it probably closed the socket: address = {}, session = 0x{:x} ({e})",
                    fmt_addr(&cnxn.remote),
                    cnxn.session_id()
                );
            }
            return;
        }
        let len = i32::from_be_bytes(len_buf);
        if stream.is_tls() && !authenticated {
            authenticated = true;
            authenticate_x509(stream, cnxn);
        }
        if !initialized {
            if let Some(cmd) = command::four_letter_word(len) {
                cnxn.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                zks.stats.packets_received.fetch_add(1, Ordering::Relaxed);
                cnxn.interest_ops.store(0, Ordering::Relaxed);
                let stream = reader.get_mut();
                let text = command::run(cmd, stream, cnxn, zks);
                let _ = stream.write_all(text.as_bytes());
                let _ = stream.flush();
                return;
            }
        }
        let Some(len) = checked_frame_len(len, max) else {
            log::warn!(
                "Len error. A message from {} with advertised length of {len} is either a malformed message or too large to process (length is greater than jute.maxbuffer={max})",
                fmt_addr(&cnxn.remote)
            );
            return;
        };
        let mut buf = vec![0u8; len];
        let res = if initialized { reader.read_exact(&mut buf) } else { read_full(reader.get_mut(), &mut buf) };
        if res.is_err() {
            return;
        }
        cnxn.stats.packets_received.fetch_add(1, Ordering::Relaxed);
        zks.stats.packets_received.fetch_add(1, Ordering::Relaxed);
        if !zks.is_running() {
            return;
        }
        if !initialized {
            let (tx, rx) = bounded(1);
            *cnxn.init_tx.lock() = Some(tx);
            if let Err(e) = zks.process_connect_request(cnxn, &buf) {
                log::info!("Closing connection from {}: {}", fmt_addr(&cnxn.remote), e.0);
                return;
            }
            // Read nothing more until the session is set up (disableRecv).
            let outcome = loop {
                match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(v) => break Some(v),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) if !cnxn.is_closed() && zks.is_running() => {}
                    Err(_) => break None,
                }
            };
            match outcome {
                Some(true) => initialized = true,
                _ => {
                    // The writer closes after sending the refusal; wait for it.
                    while !cnxn.is_closed() {
                        thread::sleep(Duration::from_millis(5));
                    }
                    return;
                }
            }
        } else if !wait_until_recv_enabled(cnxn, zks) {
            return;
        } else if let Err(e) = zks.process_packet(cnxn, &buf) {
            log::info!("Closing connection from {}: {}", fmt_addr(&cnxn.remote), e.0);
            return;
        }
        if cnxn.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cnxn_index_counts_addresses_and_binds_sessions() {
        let (a, b): (std::net::IpAddr, std::net::IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        let mut ix = CnxnIndex::default();
        ix.added(a);
        ix.added(a);
        ix.added(b);
        assert_eq!((ix.count_from(a), ix.count_from(b)), (2, 1));
        ix.bind(1, 0x10);
        ix.bind(2, 0x10); // a reconnect: the old connection is still there
        ix.bind(2, 0x10);
        ix.bind(3, 0x20);
        assert_eq!(ix.of_session(0x10), &[1, 2]);
        ix.removed(1, a, 0x10);
        assert_eq!(ix.of_session(0x10), &[2]);
        assert_eq!(ix.count_from(a), 1);
        ix.removed(2, a, 0x10);
        ix.removed(3, b, 0x20);
        assert!(ix.of_session(0x10).is_empty() && ix.of_session(0x20).is_empty());
        assert_eq!((ix.count_from(a), ix.count_from(b)), (0, 0));
        assert!(ix.per_ip.is_empty() && ix.by_session.is_empty(), "nothing is left behind");
        // A connection that never had a session leaves only its address count.
        ix.added(a);
        ix.removed(4, a, 0);
        assert!(ix.per_ip.is_empty() && ix.by_session.is_empty());
    }

    #[test]
    fn connection_capacity_follows_the_kernels_limits() {
        // The default vm.max_map_count runs out first: 4 mappings per thread, 2 threads.
        assert_eq!(process_cnxn_capacity(Some(65530), Some(32768)), Some((65530 - 4096) / 8));
        assert_eq!(process_cnxn_capacity(Some(1 << 20), Some(32768)), Some((32768 - 1024) / 2));
        assert_eq!(process_cnxn_capacity(None, Some(4096)), Some(1536));
        assert_eq!(process_cnxn_capacity(None, None), None);
        assert_eq!(process_cnxn_capacity(Some(100), None), Some(0));
        assert_eq!(total_cnxn_limit(0, Some(7679)), 7679);
        assert_eq!(total_cnxn_limit(100, Some(7679)), 100);
        assert_eq!(total_cnxn_limit(100_000, Some(7679)), 7679);
        assert_eq!(total_cnxn_limit(-5, None), 0);
        assert_eq!(total_cnxn_limit(10, None), 10);
    }
}
