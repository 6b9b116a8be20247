//! `zk-oracle`: a cross-checking proxy for migrations (the idea of etcd's zetcd
//! `--oracle`). Clients connect to the proxy; every client frame goes to the primary
//! (the server under test) and to an oracle (a reference Apache ZooKeeper 3.8 holding
//! the same data). The client sees only the primary's replies; the oracle's are paired
//! with them by xid (watch events by type, state and path) and every difference is
//! reported. See docs/oracle.md for what is compared and how to run it.
//!
//! Sessions: the two servers hand out different session ids and passwords. The proxy
//! keeps a map primary session -> oracle session (filled from each pair of connect
//! responses) so a client that reconnects with its primary session resumes the matching
//! oracle session, and ephemeral owners compare as "the same session".

pub mod connection;
mod frame;
pub mod normalize;
mod order;
pub mod report;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

use connection::Conn;
pub use normalize::{StatFields, STAT_FIELD_NAMES};
pub use report::{CountersSnapshot, Report};

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct OracleConfig {
    /// Where clients connect (host:port; port 0 picks a free one).
    pub listen: String,
    /// The server under test (host:port); its replies go to the clients.
    pub primary: String,
    /// The reference server (host:port); its replies are only compared.
    pub oracle: String,
    /// The report file (appended to); None: stderr.
    pub report: Option<PathBuf>,
    /// The Stat fields that are compared.
    pub stat_fields: StatFields,
    /// How long a reply or watch event may wait for its partner from the other server.
    pub grace: Duration,
    /// Requests (and, separately, events of each side) awaiting comparison per
    /// connection; beyond it comparisons are dropped and counted.
    pub max_pending: usize,
    /// Client connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Connect timeout towards both servers.
    pub connect_timeout: Duration,
    /// How often the counters are written to the report; None: only at exit.
    pub stats_interval: Option<Duration>,
    /// Largest client frame accepted (`jute.maxbuffer`, as the servers enforce it);
    /// a larger one is garbage and closes that client's connection.
    pub max_frame: usize,
}

impl OracleConfig {
    pub fn new(listen: &str, primary: &str, oracle: &str) -> OracleConfig {
        OracleConfig {
            listen: listen.to_owned(),
            primary: primary.to_owned(),
            oracle: oracle.to_owned(),
            report: None,
            stat_fields: StatFields::default(),
            grace: Duration::from_secs(5),
            max_pending: 10_000,
            max_connections: 1_000,
            connect_timeout: Duration::from_secs(5),
            stats_interval: Some(Duration::from_secs(60)),
            max_frame: crate::jute::max_buffer(),
        }
    }
}

/// The oracle's side of a proxied session.
#[derive(Debug, Clone)]
pub(crate) struct OracleSession {
    pub sid: i64,
    pub passwd: Vec<u8>,
}

/// Sessions kept at most; past it an arbitrary old one is forgotten (its client, if it
/// ever resumes, gets a new oracle session and ephemeral owners may then differ).
const MAX_SESSIONS: usize = 100_000;

#[derive(Default)]
pub(crate) struct SessionMap {
    pub by_primary: HashMap<i64, OracleSession>,
    pub by_oracle: HashMap<i64, i64>,
}

/// What every connection of one proxy shares.
pub(crate) struct Shared {
    pub cfg: OracleConfig,
    pub report: Report,
    pub sessions: Mutex<SessionMap>,
    pub order: order::Order,
    active: Mutex<HashMap<u64, Option<Arc<Conn>>>>,
    idle: Condvar,
    stopping: AtomicBool,
}

impl Shared {
    pub(crate) fn register(&self, id: u64, conn: Arc<Conn>) {
        self.active.lock().insert(id, Some(conn));
    }

    pub(crate) fn connection_ended(&self, id: u64) {
        let mut active = self.active.lock();
        active.remove(&id);
        if active.is_empty() {
            self.idle.notify_all();
        }
    }

    pub(crate) fn remember_session(&self, primary: i64, oracle: OracleSession) {
        let mut m = self.sessions.lock();
        if m.by_primary.len() >= MAX_SESSIONS && !m.by_primary.contains_key(&primary) {
            if let Some(old) = m.by_primary.keys().next().copied() {
                if let Some(o) = m.by_primary.remove(&old) {
                    m.by_oracle.remove(&o.sid);
                }
            }
        }
        let sid = oracle.sid;
        if let Some(prev) = m.by_primary.insert(primary, oracle) {
            if prev.sid != sid {
                m.by_oracle.remove(&prev.sid);
            }
        }
        m.by_oracle.insert(sid, primary);
    }

    pub(crate) fn forget_session(&self, primary: i64) {
        let mut m = self.sessions.lock();
        if let Some(o) = m.by_primary.remove(&primary) {
            m.by_oracle.remove(&o.sid);
        }
    }
}

/// A running proxy. Dropping it stops it (like [`OracleProxy::shutdown`]).
pub struct OracleProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    stats: Option<(Sender<()>, JoinHandle<()>)>,
}

impl OracleProxy {
    /// Binds the listen address and starts accepting clients.
    pub fn start(cfg: OracleConfig) -> io::Result<OracleProxy> {
        let out: Box<dyn Write + Send> = match &cfg.report {
            Some(p) => Box::new(OpenOptions::new().create(true).append(true).open(p).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open the report file {}: {e}", p.display()))
            })?),
            None => Box::new(io::stderr()),
        };
        let listener = TcpListener::bind(&cfg.listen)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", cfg.listen)))?;
        let addr = listener.local_addr()?;
        let stats_interval = cfg.stats_interval;
        let shared = Arc::new(Shared {
            cfg,
            report: Report::new(out),
            sessions: Mutex::new(SessionMap::default()),
            order: order::Order::default(),
            active: Mutex::new(HashMap::new()),
            idle: Condvar::new(),
            stopping: AtomicBool::new(false),
        });
        log::info!(
            "zk-oracle listening on {addr}: primary {} (replies to clients), oracle {} (compared only)",
            shared.cfg.primary,
            shared.cfg.oracle
        );
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("OracleAcceptor:{}", addr.port()))
            .spawn(move || accept_loop(listener, s))?;
        let stats = match stats_interval {
            Some(every) => {
                let (tx, rx) = bounded::<()>(0);
                let s = shared.clone();
                let h = thread::Builder::new().name("OracleStats".into()).spawn(move || loop {
                    match rx.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => s.report.counters_line(),
                        _ => return,
                    }
                })?;
                Some((tx, h))
            }
            None => None,
        };
        Ok(OracleProxy { shared, addr, acceptor: Some(acceptor), stats })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn counters(&self) -> CountersSnapshot {
        self.shared.report.snapshot()
    }

    /// Every report line so far (the most recent 10,000), without timestamps.
    pub fn report_lines(&self) -> Vec<String> {
        self.shared.report.lines()
    }

    /// The `DIFF` lines of [`report_lines`](Self::report_lines).
    pub fn differences(&self) -> Vec<String> {
        self.report_lines().into_iter().filter(|l| l.starts_with("DIFF")).collect()
    }

    /// Connections still being served or compared.
    pub fn active_connections(&self) -> usize {
        self.shared.active.lock().len()
    }

    /// Waits until no connection is left (every comparison done); false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut active = self.shared.active.lock();
        while !active.is_empty() {
            if self.shared.idle.wait_until(&mut active, end).timed_out() {
                return active.is_empty();
            }
        }
        true
    }

    /// Stops accepting, closes every connection, waits for their comparators (a grace
    /// window at most), writes the final counters and returns them.
    pub fn shutdown(mut self) -> CountersSnapshot {
        self.stop();
        self.counters()
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the acceptor out of accept().
        let _ = TcpStream::connect_timeout(&self.wake_addr(), Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        let conns: Vec<Arc<Conn>> = self.shared.active.lock().values().flatten().cloned().collect();
        for c in conns {
            c.shutdown_all();
        }
        if !self.wait_idle(self.shared.cfg.grace + Duration::from_secs(1)) {
            log::warn!("{} connections still closing at shutdown", self.active_connections());
        }
        if let Some((tx, h)) = self.stats.take() {
            drop(tx);
            let _ = h.join();
        }
        self.shared.report.counters_line();
    }

    fn wake_addr(&self) -> SocketAddr {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        a
    }
}

impl Drop for OracleProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let next = AtomicU64::new(1);
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let client = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        {
            let mut active = shared.active.lock();
            if active.len() >= shared.cfg.max_connections {
                log::warn!(
                    "too many connections ({}); closing the one from {:?}",
                    active.len(),
                    client.peer_addr().ok()
                );
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            let id = next.fetch_add(1, Ordering::Relaxed);
            // Reserved before the thread starts, so wait_idle sees it at once.
            active.insert(id, None);
            shared.report.counters.connections.fetch_add(1, Ordering::Relaxed);
            drop(active);
            log::debug!("connection {id} from {:?}", client.peer_addr().ok());
            connection::spawn(id, client, shared.clone());
        }
    }
}
