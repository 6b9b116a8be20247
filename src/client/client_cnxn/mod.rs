//! `ClientCnxn`: the connection machinery behind a `ZooKeeper` handle.
//!
//! As upstream: a **SendThread** owns the socket (connect, handshake, writing requests in
//! order, pings, reconnecting across the host list with the session id and password,
//! replaying auth and watches) and an **EventThread** delivers watch events and async
//! callbacks in the order their replies arrived. Deliberate difference, forced by
//! blocking sockets: the SendThread's reads happen on a companion thread
//! (`<name>-SendThread(host)-reader`), which matches replies to the pending queue in
//! order — upstream does both halves in one thread with a selector.

mod event_thread;
mod send_thread;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;

use crossbeam_channel::{unbounded, Sender};
use parking_lot::Mutex;

pub use event_thread::EventItem;

use super::static_host_provider::{Server, ServerAddress, StaticHostProvider};
use super::watched_event::{WatchedEvent, Watcher};
use super::zk_watch_manager::{WatchKind, ZKWatchManager};
use crate::proto::proto::ReplyHeader;

/// `ZooKeeper.States`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum States {
    Connecting = 0,
    Associating = 1,
    Connected = 2,
    ConnectedReadOnly = 3,
    Closed = 4,
    AuthFailed = 5,
    NotConnected = 6,
}

impl States {
    fn from_u8(v: u8) -> States {
        match v {
            0 => States::Connecting,
            1 => States::Associating,
            2 => States::Connected,
            3 => States::ConnectedReadOnly,
            4 => States::Closed,
            5 => States::AuthFailed,
            _ => States::NotConnected,
        }
    }

    pub fn is_alive(self) -> bool {
        !matches!(self, States::Closed | States::AuthFailed)
    }

    pub fn is_connected(self) -> bool {
        matches!(self, States::Connected | States::ConnectedReadOnly)
    }

    /// The name zkCli shows in its prompt.
    pub fn name(self) -> &'static str {
        match self {
            States::Connecting => "CONNECTING",
            States::Associating => "ASSOCIATING",
            States::Connected => "CONNECTED",
            States::ConnectedReadOnly => "CONNECTEDREADONLY",
            States::Closed => "CLOSED",
            States::AuthFailed => "AUTH_FAILED",
            States::NotConnected => "NOT_CONNECTED",
        }
    }
}

/// A reply as the application sees it: header fields and the undecoded body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub err: i32,
    pub zxid: i64,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn loss(err: i32) -> Reply {
        Reply { err, zxid: -1, body: Vec::new() }
    }
}

pub type Callback = Box<dyn FnOnce(Reply) + Send>;

pub enum Completion {
    /// A synchronous caller waits on this.
    Sync(Sender<Reply>),
    /// Runs on the EventThread, in reply order.
    Async(Callback),
    None,
}

/// What to register when the reply comes back (`WatchRegistration`).
pub struct WatchRegistration {
    pub path: String,
    pub watcher: Watcher,
    /// Kind on success; for exists, `Exist` is used instead when the reply is NoNode.
    pub kind: WatchKind,
    pub exists: bool,
}

/// `ClientCnxn.Packet`.
pub struct Packet {
    pub op: i32,
    pub xid: i32,
    pub body: Vec<u8>,
    pub watch: Option<WatchRegistration>,
    pub done: Completion,
}

impl Packet {
    pub fn new(op: i32, body: Vec<u8>, watch: Option<WatchRegistration>, done: Completion) -> Packet {
        Packet { op, xid: 0, body, watch, done }
    }
}

/// State shared by the handle, the SendThread and its reader.
pub struct Shared {
    state: AtomicU8,
    pub session_id: AtomicI64,
    pub passwd: Mutex<Vec<u8>>,
    pub negotiated_timeout: AtomicI32,
    pub session_timeout: i32,
    pub last_zxid: AtomicI64,
    pub pending: Mutex<VecDeque<Packet>>,
    pub auth: Mutex<Vec<(String, Vec<u8>)>>,
    pub chroot: Option<String>,
    pub watch_manager: Arc<ZKWatchManager>,
    pub events: event_thread::EventQueue,
    pub closing: AtomicBool,
    pub can_be_read_only: bool,
    /// `seenRwServerBefore`: until a read-write server gave us a session (or the
    /// application passed one in), a reconnect asks for a new session — a session made
    /// by a read-only server is local to it.
    pub seen_rw_server_before: AtomicBool,
    /// The server list; the SendThread takes `next` from it, the application replaces
    /// it (`updateServerList`).
    pub hosts: StaticHostProvider,
    /// The socket the SendThread has open (from the TCP connect until it gives the
    /// connection up), with the server it reached: upstream's
    /// `ClientCnxnSocket.getRemoteSocketAddress` and the handle `testableCloseSocket`
    /// closes.
    pub connection: Mutex<Option<Connection>>,
}

/// The SendThread's current socket, as seen from outside it.
pub struct Connection {
    pub server: ServerAddress,
    /// A second handle on the socket (`try_clone`): shutting it down breaks the
    /// SendThread's reads and writes, which then reconnects as after any IO error.
    pub socket: std::net::TcpStream,
}

impl Shared {
    pub fn state(&self) -> States {
        States::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: States) {
        self.state.store(s as u8, Ordering::Release)
    }

    /// Server path → client path (chroot stripped).
    pub fn strip_chroot(&self, server_path: &str) -> String {
        match &self.chroot {
            None => server_path.to_owned(),
            Some(c) => {
                if server_path == c {
                    "/".to_owned()
                } else if server_path.len() > c.len() {
                    server_path[c.len()..].to_owned()
                } else {
                    server_path.to_owned()
                }
            }
        }
    }

    /// Client path → server path.
    pub fn prepend_chroot(&self, client_path: &str) -> String {
        match &self.chroot {
            None => client_path.to_owned(),
            Some(c) if client_path == "/" => c.clone(),
            Some(c) => format!("{c}{client_path}"),
        }
    }

    /// `finishPacket`: register the watch if the reply allows it, then complete.
    pub fn finish_packet(&self, mut p: Packet, hdr: &ReplyHeader, body: Vec<u8>) {
        if let Some(w) = p.watch.take() {
            let kind = if w.exists {
                match hdr.err {
                    0 => Some(WatchKind::Data),
                    -101 => Some(WatchKind::Exist),
                    _ => None,
                }
            } else if hdr.err == 0 || (hdr.err == -101 && matches!(w.kind, WatchKind::Persistent | WatchKind::PersistentRecursive)) {
                Some(w.kind)
            } else {
                None
            };
            if let Some(k) = kind {
                self.watch_manager.register(k, &w.path, &w.watcher);
            }
        }
        let reply = Reply { err: hdr.err, zxid: hdr.zxid, body };
        self.complete(p.done, reply);
    }

    pub fn complete(&self, done: Completion, reply: Reply) {
        match done {
            Completion::Sync(tx) => {
                let _ = tx.send(reply);
            }
            Completion::Async(cb) => self.events.queue_callback(Box::new(move || cb(reply))),
            Completion::None => {}
        }
    }

    /// Queues a state event (type None) for the default watcher and every watcher.
    pub fn queue_state_event(&self, state: i32) {
        let ev = WatchedEvent { event_type: crate::proto::event_type::NONE, state, path: None };
        let watchers = self.watch_manager.materialize(ev.event_type, None);
        self.events.queue_event(ev, watchers);
    }
}

pub struct ClientCnxn {
    pub shared: Arc<Shared>,
    outgoing: Sender<Packet>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl ClientCnxn {
    pub fn start(
        servers: Vec<Server>,
        chroot: Option<String>,
        session_timeout: i32,
        watch_manager: Arc<ZKWatchManager>,
        session: Option<(i64, Vec<u8>)>,
        can_be_read_only: bool,
    ) -> std::io::Result<ClientCnxn> {
        let (events, event_rx) = event_thread::EventQueue::new();
        let session_given = session.is_some();
        let first = servers.first().map(|(h, p)| format!("{h}:{p}")).unwrap_or_default();
        let hosts = StaticHostProvider::new(servers).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let shared = Arc::new(Shared {
            state: AtomicU8::new(States::Connecting as u8),
            session_id: AtomicI64::new(session.as_ref().map(|s| s.0).unwrap_or(0)),
            passwd: Mutex::new(session.map(|s| s.1).unwrap_or_else(|| vec![0u8; 16])),
            negotiated_timeout: AtomicI32::new(0),
            session_timeout,
            last_zxid: AtomicI64::new(0),
            pending: Mutex::new(VecDeque::new()),
            auth: Mutex::new(Vec::new()),
            chroot,
            watch_manager,
            events,
            closing: AtomicBool::new(false),
            can_be_read_only,
            seen_rw_server_before: AtomicBool::new(session_given),
            hosts,
            connection: Mutex::new(None),
        });
        let (tx, rx) = unbounded::<Packet>();
        let thread_name = std::thread::current().name().unwrap_or("main").to_owned();
        let ev = event_thread::EventThread::start(&thread_name, event_rx)?;
        let st = send_thread::SendThread::start(&thread_name, &first, shared.clone(), rx)?;
        Ok(ClientCnxn { shared, outgoing: tx, threads: Mutex::new(vec![st, ev]) })
    }

    /// `queuePacket`: fails at once when the connection is closing or closed.
    pub fn queue_packet(&self, p: Packet) {
        let state = self.shared.state();
        if !state.is_alive() || (self.shared.closing.load(Ordering::Acquire) && p.op != crate::proto::op_code::CLOSE_SESSION) {
            let err = if state == States::AuthFailed { -115 } else if state == States::Closed { -112 } else { -4 };
            self.shared.complete(p.done, Reply::loss(err));
            return;
        }
        if let Err(e) = self.outgoing.send(p) {
            self.shared.complete(e.0.done, Reply::loss(-4));
        }
    }

    /// `submitRequest`: queue and wait for the reply (bounded by `timeout`, if any).
    pub fn submit(&self, op: i32, body: Vec<u8>, watch: Option<WatchRegistration>, timeout: Option<std::time::Duration>) -> Reply {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.queue_packet(Packet::new(op, body, watch, Completion::Sync(tx)));
        match timeout {
            Some(t) => rx.recv_timeout(t).unwrap_or_else(|_| Reply::loss(crate::proto::Code::RequestTimeout.int())),
            None => rx.recv().unwrap_or_else(|_| Reply::loss(-4)),
        }
    }

    /// `ZooKeeper.updateServerList` below the parsing: hand the new list and the server
    /// connected to (if any) to the provider, and when it decides this client should
    /// move, close the socket so that the SendThread reconnects through `next`, which
    /// follows the rebalancing plan. The session is kept (a reconnect, not a new
    /// session); pending requests fail with ConnectionLoss as on any disconnect.
    /// Returns whether the client is moving.
    pub fn update_server_list(&self, servers: Vec<Server>) -> Result<bool, String> {
        // The connection slot stays locked from the decision to the close, so the
        // SendThread cannot swap sockets in between: the socket closed is the one the
        // decision was about. (Lock order: connection, then the provider's; the
        // SendThread never holds both.)
        let connection = self.shared.connection.lock();
        let current = connection.as_ref().map(|c| &c.server);
        let reconfig_mode = self.shared.hosts.update_server_list(servers, current)?;
        if reconfig_mode {
            if let Some(c) = connection.as_ref() {
                log::info!("Closing the connection to {} to rebalance over the new server list", c.server.addr.map_or_else(|| c.server.host.clone(), |a| a.to_string()));
                Self::close_socket(c);
            }
        }
        Ok(reconfig_mode)
    }

    /// `testableCloseSocket`: drop the current connection; the SendThread reconnects
    /// (to `next`) with the same session.
    pub fn testable_close_socket(&self) {
        if let Some(c) = self.shared.connection.lock().as_ref() {
            Self::close_socket(c);
        }
    }

    fn close_socket(c: &Connection) {
        if let Err(e) = c.socket.shutdown(std::net::Shutdown::Both) {
            log::debug!("closing the socket to {}:{}: {e}", c.server.host, c.server.port);
        }
    }

    /// The address of the server the SendThread has a socket to
    /// (`testableRemoteSocketAddress`).
    pub fn remote_socket_address(&self) -> Option<std::net::SocketAddr> {
        self.shared.connection.lock().as_ref().and_then(|c| c.server.addr)
    }

    /// `disconnect` after closeSession: stop both threads.
    pub fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.set_state(States::Closed);
        let _ = self.outgoing.send(Packet::new(send_thread::OP_SHUTDOWN, Vec::new(), None, Completion::None));
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for t in threads {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}
