//! `QuorumCnxManager`: one TCP connection per pair of peers on the election port, and
//! the queues FastLeaderElection reads and writes.
//!
//! Threads (names as upstream's): the [`listener`] (`QuorumPeerListener`, one
//! `ListenerHandler-<addr>` per election address), a [`send_worker`] (`SendWorker:<sid>`)
//! and a [`recv_worker`] (`RecvWorker:<sid>`) per connected peer, and the
//! [`connection_executor`] pool (`QuorumConnectionThread-[myid=N]-k`) that dials out and
//! handshakes. Outgoing messages wait in a per-peer queue of capacity 1 (a newer
//! notification replaces an unsent older one); incoming ones in a shared queue of 100
//! that drops its oldest when full.
//!
//! Which side keeps a connection is decided by [`keeps_connection`]: the one dialled by
//! the larger sid. A smaller sid "knocks": its connection is dropped by both ends and the
//! larger sid dials back.
//!
//! Deliberate difference: upstream handshakes incoming connections on the listener
//! thread unless quorum SASL is on; we always hand them to the connection pool (the path
//! upstream takes with SASL), so a peer that connects and says nothing cannot stall the
//! listener for the whole socket timeout.

pub mod connection_executor;
pub mod initial_message;
pub mod listener;
pub mod recv_worker;
pub mod send_worker;

use std::collections::{HashMap, HashSet};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use byteorder::{BigEndian, ReadBytesExt};
use parking_lot::Mutex;

use crate::common::tls_stream::TlsStream;
use crate::common::circular_blocking_queue::CircularBlockingQueue;
use crate::server::quorum::quorum_peer::{QuorumPeer, OBSERVER_ID};
use crate::server::quorum::quorum_server::{MultipleAddresses, QuorumAddr};
use crate::server::quorum::quorum_packet::{PacketReader, PeerReader};
use crate::server::quorum::quorum_x509_util;
use crate::system_properties;

use connection_executor::ConnectionExecutor;
use initial_message::{InitialMessageError, PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2};
use send_worker::SendWorker;

/// Capacity of the shared receive queue (`RECV_CAPACITY`).
pub const RECV_CAPACITY: usize = 100;
/// Capacity of each per-peer send queue (`SEND_CAPACITY`): only the newest message
/// waits, so a reconnecting peer never gets stale notifications.
pub const SEND_CAPACITY: usize = 1;
/// Largest election frame accepted (`PACKETMAXSIZE`).
pub const PACKETMAXSIZE: i32 = 1024 * 512;
/// Default connect timeout, ms (`cnxTO`, `zookeeper.cnxTimeout`).
pub const DEFAULT_CNX_TIMEOUT_MS: u64 = 5000;
/// Default minimum of the connection pool size (`quorum.cnxn.threads.size`).
pub const QUORUM_CNXN_THREADS_SIZE_DEFAULT: usize = 20;

/// An election message and the sid of the connection it came from.
#[derive(Debug, Clone)]
pub struct Message {
    pub buffer: Vec<u8>,
    pub sid: i64,
}

/// Which end of a new connection survives: the one dialled by the larger sid. `Keep` for
/// the initiator means "my id is larger, use it"; for the acceptor it means "the dialler
/// is larger, use it".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionDecision {
    /// Use this socket and start the workers.
    Keep,
    /// Close it; the peer with the larger id dials (or has dialled) us.
    Drop,
    /// Close it and dial the peer ourselves (we are the larger id).
    DropAndConnectBack,
    /// A peer claims our own id: a configuration error; ignore it.
    SameId,
}

/// `startConnection` / `handleConnection`: the rule of who keeps a connection.
pub fn keeps_connection(my_sid: i64, remote_sid: i64, initiator: bool) -> ConnectionDecision {
    if initiator {
        if remote_sid > my_sid {
            ConnectionDecision::Drop
        } else {
            ConnectionDecision::Keep
        }
    } else if remote_sid < my_sid {
        ConnectionDecision::DropAndConnectBack
    } else if remote_sid == my_sid {
        ConnectionDecision::SameId
    } else {
        ConnectionDecision::Keep
    }
}

pub struct QuorumCnxManager {
    pub my_sid: i64,
    peer: Arc<QuorumPeer>,
    socket_timeout: Duration,
    cnx_timeout: Duration,
    tcp_keep_alive: bool,
    listen_on_all_ips: bool,
    sender_worker_map: Mutex<HashMap<i64, Arc<SendWorker>>>,
    queue_send_map: Mutex<HashMap<i64, Arc<CircularBlockingQueue<Arc<[u8]>>>>>,
    last_message_sent: Mutex<HashMap<i64, Arc<[u8]>>>,
    recv_queue: CircularBlockingQueue<Message>,
    inprogress_connections: Mutex<HashSet<i64>>,
    /// `connectOne` is synchronized upstream; so is ours.
    connect_lock: Mutex<()>,
    executor: ConnectionExecutor,
    observer_counter: AtomicI64,
    shutdown: AtomicBool,
    /// Live SendWorker + RecvWorker threads (`threadCnt`).
    pub(crate) thread_cnt: AtomicI64,
    /// Connection tasks handed to the pool (`connectionThreadCnt`).
    connection_thread_cnt: AtomicI64,
    next_worker_id: AtomicU64,
    listener: Mutex<Option<listener::Listener>>,
}

impl QuorumCnxManager {
    pub fn new(peer: Arc<QuorumPeer>) -> Arc<QuorumCnxManager> {
        let cnx_timeout = system_properties::get_i64("zookeeper.cnxTimeout").filter(|v| *v > 0).map(|v| v as u64).unwrap_or(DEFAULT_CNX_TIMEOUT_MS);
        let timeout_ms = peer.quorum_cnxn_socket_timeout_ms();
        log::info!("Using {timeout_ms}ms as the quorum cnxn socket timeout");
        let threads = (peer.config.quorum_cnxn_threads_size.max(0) as usize).max(QUORUM_CNXN_THREADS_SIZE_DEFAULT);
        Arc::new(QuorumCnxManager {
            my_sid: peer.myid,
            socket_timeout: Duration::from_millis(timeout_ms),
            cnx_timeout: Duration::from_millis(cnx_timeout),
            tcp_keep_alive: system_properties::get_bool("zookeeper.tcpKeepAlive"),
            listen_on_all_ips: peer.config.quorum_listen_on_all_ips,
            sender_worker_map: Mutex::new(HashMap::new()),
            queue_send_map: Mutex::new(HashMap::new()),
            last_message_sent: Mutex::new(HashMap::new()),
            recv_queue: CircularBlockingQueue::new(RECV_CAPACITY),
            inprogress_connections: Mutex::new(HashSet::new()),
            connect_lock: Mutex::new(()),
            executor: ConnectionExecutor::new(peer.myid, threads),
            observer_counter: AtomicI64::new(-1),
            shutdown: AtomicBool::new(false),
            thread_cnt: AtomicI64::new(0),
            connection_thread_cnt: AtomicI64::new(0),
            next_worker_id: AtomicU64::new(1),
            listener: Mutex::new(None),
            peer,
        })
    }

    /// Starts the Listener thread (`createElectionAlgorithm` does this upstream).
    pub fn start_listener(self: &Arc<Self>) -> io::Result<()> {
        let addresses = if self.listen_on_all_ips { self.peer.election_address().wildcard() } else { self.peer.election_address().all().to_vec() };
        let l = listener::Listener::start(self.clone(), addresses)?;
        *self.listener.lock() = Some(l);
        Ok(())
    }

    pub fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    pub(crate) fn peer(&self) -> &Arc<QuorumPeer> {
        &self.peer
    }

    /// `setSockOpts`: TCP_NODELAY, keep-alive per `zookeeper.tcpKeepAlive`, and the
    /// handshake read timeout.
    pub(crate) fn set_sock_opts(&self, s: &TcpStream) -> io::Result<()> {
        s.set_nodelay(true)?;
        socket2::SockRef::from(s).set_keepalive(self.tcp_keep_alive)?;
        s.set_read_timeout(Some(self.socket_timeout))
    }

    // ------------------------------------------------------------ outgoing --

    /// `toSend`: to ourselves straight into the receive queue, otherwise into the peer's
    /// send queue (replacing an unsent message), then make sure we are connected.
    pub fn to_send(self: &Arc<Self>, sid: i64, buf: Arc<[u8]>) {
        if sid == self.my_sid {
            self.add_to_recv_queue(Message { buffer: buf.to_vec(), sid });
            return;
        }
        let q = self.queue_send_map.lock().entry(sid).or_insert_with(|| Arc::new(CircularBlockingQueue::new(SEND_CAPACITY))).clone();
        q.offer(buf);
        self.connect_one(sid);
    }

    /// `connectOne(sid)`: dial a peer we have no connection to, at the address the
    /// committed configuration (or else the last proposed one) gives.
    pub fn connect_one(self: &Arc<Self>, sid: i64) {
        let _g = self.connect_lock.lock();
        if self.sender_worker_map.lock().contains_key(&sid) {
            log::debug!("There is a connection already for server {sid}");
            return;
        }
        let mut known = false;
        let committed = self.peer.view_member(sid);
        if let Some(s) = &committed {
            known = true;
            log::debug!("Server {} knows {sid} already, it is in the lastCommittedView", self.my_sid);
            if self.connect_one_at(sid, s.election_addr.clone()) {
                return;
            }
        }
        if let Some(ls) = self.peer.last_seen_quorum_verifier() {
            if let Some(s) = ls.all_members().get(&sid) {
                let differs = committed.as_ref().map(|c| !c.election_addr.same_set(&s.election_addr)).unwrap_or(true);
                if !known || differs {
                    known = true;
                    log::debug!("Server {} knows {sid} already, it is in the lastProposedView", self.my_sid);
                    if self.connect_one_at(sid, s.election_addr.clone()) {
                        return;
                    }
                }
            }
        }
        if !known {
            log::warn!("Invalid server id: {sid} ");
        }
    }

    /// `connectOne(sid, electionAddr)`.
    fn connect_one_at(self: &Arc<Self>, sid: i64, addr: MultipleAddresses) -> bool {
        if self.sender_worker_map.lock().contains_key(&sid) {
            log::debug!("There is a connection already for server {sid}");
            return true;
        }
        self.initiate_connection_async(addr, sid)
    }

    /// `initiateConnectionAsync`: at most one dial per peer in flight.
    fn initiate_connection_async(self: &Arc<Self>, addr: MultipleAddresses, sid: i64) -> bool {
        if !self.inprogress_connections.lock().insert(sid) {
            log::debug!("Connection request to server id: {sid} is already in progress, so skipping this request");
            return true;
        }
        let me = self.clone();
        let res = self.executor.execute(move || {
            // QuorumConnectionReqThread
            me.initiate_connection(&addr, sid);
            me.inprogress_connections.lock().remove(&sid);
        });
        match res {
            Ok(()) => {
                self.connection_thread_cnt.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.inprogress_connections.lock().remove(&sid);
                log::error!("Exception while submitting quorum connection request: {}", e.0);
                false
            }
        }
    }

    /// `initiateConnection`: dial, then `startConnection`.
    fn initiate_connection(self: &Arc<Self>, addr: &MultipleAddresses, sid: i64) {
        log::debug!("Opening channel to server {sid}");
        let target = addr.one().cloned();
        let sock = target
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no election address"))
            .and_then(|a| a.resolve())
            .and_then(|sa| TcpStream::connect_timeout(&sa, self.cnx_timeout))
            .and_then(|s| {
                self.set_sock_opts(&s)?;
                Ok(s)
            });
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Cannot open channel to {sid} at election address {}: {e}", fmt_addrs(addr));
                return;
            }
        };
        let sock = match quorum_x509_util::connect(self.peer.x509.as_deref(), sock) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Cannot open secure channel to {sid} at election address {}: {e}", fmt_addrs(addr));
                return;
            }
        };
        log::debug!("Connected to server {sid} using election address: {}", fmt_addrs(addr));
        // The connection's place in time, taken before the handshake (see start_workers).
        let seq = self.next_worker_id.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.start_connection(sock, sid, seq) {
            log::error!("Exception while connecting, id: {sid}, addr: {}, closing learner connection: {e}", fmt_addrs(addr));
        }
    }

    /// `startConnection`: send our initial message, then keep the socket only if our id
    /// is the larger.
    fn start_connection(self: &Arc<Self>, mut sock: TlsStream, sid: i64, seq: u64) -> io::Result<bool> {
        log::debug!("startConnection (myId:{} --> sid:{sid})", self.my_sid);
        let multi = self.peer.is_multi_address_enabled();
        let version = if multi { PROTOCOL_VERSION_V2 } else { PROTOCOL_VERSION_V1 };
        let own = self.peer.election_address();
        let addrs: Vec<String> = if multi {
            own.all().iter().map(QuorumAddr::format_inet_addr).collect()
        } else {
            own.one().map(|a| vec![a.format_inet_addr()]).unwrap_or_default()
        };
        let msg = initial_message::encode(version, self.my_sid, &addrs);
        if let Err(e) = sock.write_all(&msg).and_then(|_| sock.flush()) {
            log::warn!("Ignoring exception reading or writing challenge: {e}");
            let _ = sock.shutdown(Shutdown::Both);
            return Ok(false);
        }
        if let Some(learner) = &self.peer.quorum_auth.learner {
            if let Err(e) = learner.authenticate(&sock) {
                let _ = sock.shutdown(Shutdown::Both);
                return Err(e);
            }
        }
        match keeps_connection(self.my_sid, sid, true) {
            ConnectionDecision::Keep => {
                log::debug!("Have larger server identifier, so keeping the connection: (myId:{} --> sid:{sid})", self.my_sid);
                let din = PacketReader::new(BufReader::new(sock.clone()));
                self.start_workers(sock, din, sid, seq)?;
                Ok(true)
            }
            _ => {
                log::info!("Have smaller server identifier, so dropping the connection: (myId:{} --> sid:{sid})", self.my_sid);
                let _ = sock.shutdown(Shutdown::Both);
                Ok(false)
            }
        }
    }

    // ------------------------------------------------------------ incoming --

    /// `receiveConnectionAsync`: handshake on the pool.
    pub(crate) fn receive_connection_async(self: &Arc<Self>, sock: TcpStream) {
        let remote = sock.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        log::debug!("Async handling of connection request received from: {remote}");
        let me = self.clone();
        let shut = sock.try_clone();
        // Accept order: handshakes run in parallel, but a peer's newer connection must
        // win over an older one whose handshake happened to finish later.
        let seq = self.next_worker_id.fetch_add(1, Ordering::Relaxed);
        let res = self.executor.execute(move || me.receive_connection(sock, seq));
        match res {
            Ok(()) => {
                self.connection_thread_cnt.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                log::error!("Exception handling connection, addr: {remote}, closing server connection: {}", e.0);
                if let Ok(s) = shut {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }

    /// `receiveConnection` + `handleConnection`.
    fn receive_connection(self: &Arc<Self>, sock: TcpStream, seq: u64) {
        let remote = sock.peer_addr().map(|a| format!("/{a}")).unwrap_or_default();
        // TLS detection and handshake (UnifiedServerSocket) run here, off the Listener.
        let sock = match quorum_x509_util::accept(self.peer.x509.as_deref(), sock) {
            Ok(s) => s,
            Err(e) => {
                log::error!("Exception handling connection, addr: {remote}, closing server connection: {e}");
                return;
            }
        };
        let mut din = PacketReader::new(BufReader::new(sock.clone()));
        let (sid, election_addr) = match read_initial(&mut din) {
            Ok(v) => v,
            Err(InitialMessageError::Bad(m)) => {
                log::error!("Initial message parsing error! {m}");
                let _ = sock.shutdown(Shutdown::Both);
                return;
            }
            Err(InitialMessageError::Io(e)) => {
                log::warn!("Exception reading or writing challenge: {e}");
                let _ = sock.shutdown(Shutdown::Both);
                return;
            }
        };
        let sid = if sid == OBSERVER_ID {
            let s = self.observer_counter.fetch_sub(1, Ordering::AcqRel);
            log::info!("Setting arbitrary identifier to observer: {s}");
            s
        } else {
            sid
        };
        if let Some(server) = &self.peer.quorum_auth.server {
            if let Err(e) = server.authenticate(&sock, &mut din) {
                log::error!("Exception handling connection, addr: {remote}, closing server connection: {e}");
                let _ = sock.shutdown(Shutdown::Both);
                return;
            }
        }
        match keeps_connection(self.my_sid, sid, false) {
            ConnectionDecision::DropAndConnectBack => {
                if let Some(sw) = self.sender_worker(sid) {
                    sw.finish(self);
                }
                log::debug!("Create new connection to server: {sid}");
                let _ = sock.shutdown(Shutdown::Both);
                match election_addr {
                    Some(a) => {
                        let _g = self.connect_lock.lock();
                        self.connect_one_at(sid, a);
                    }
                    None => self.connect_one(sid),
                }
            }
            ConnectionDecision::SameId => {
                log::warn!("We got a connection request from a server with our own ID. This should be either a configuration error, or a bug.");
                let _ = sock.shutdown(Shutdown::Both);
            }
            ConnectionDecision::Keep | ConnectionDecision::Drop => {
                if let Err(e) = self.start_workers(sock, din, sid, seq) {
                    log::error!("Exception handling connection, addr: {remote}, closing server connection: {e}");
                }
            }
        }
    }

    /// Starts the SendWorker/RecvWorker pair for a kept connection, replacing (and
    /// finishing) any older pair for the same peer.
    ///
    /// `seq` orders connections as they were accepted (or dialled): upstream handshakes
    /// one accepted connection at a time, so the newest always replaces the older; our
    /// handshakes run in parallel on the pool, so an older connection whose handshake
    /// finishes last is the one dropped.
    fn start_workers(self: &Arc<Self>, sock: TlsStream, din: PeerReader, sid: i64, seq: u64) -> io::Result<()> {
        if self.is_shutdown() {
            let _ = sock.shutdown(Shutdown::Both);
            return Ok(());
        }
        let (sw, stop_rx) = SendWorker::new(sid, seq, sock.clone());
        let old = {
            let mut map = self.sender_worker_map.lock();
            if map.get(&sid).is_some_and(|w| w.id > seq) {
                log::debug!("Dropping an older connection from server {sid}: a newer one is in use");
                let _ = sock.shutdown(Shutdown::Both);
                return Ok(());
            }
            map.insert(sid, sw.clone())
        };
        if let Some(old) = old {
            old.finish(self);
        }
        let q = self.queue_send_map.lock().entry(sid).or_insert_with(|| Arc::new(CircularBlockingQueue::new(SEND_CAPACITY))).clone();
        send_worker::spawn(self.clone(), sw.clone(), q, stop_rx, sock)?;
        recv_worker::spawn(self.clone(), sw, din)?;
        Ok(())
    }

    pub(crate) fn sender_worker(&self, sid: i64) -> Option<Arc<SendWorker>> {
        self.sender_worker_map.lock().get(&sid).cloned()
    }

    /// Called by a finishing SendWorker: forget it if it is still the registered one.
    pub(crate) fn remove_sender_worker(&self, sid: i64, id: u64) {
        let mut m = self.sender_worker_map.lock();
        if m.get(&sid).is_some_and(|w| w.id == id) {
            m.remove(&sid);
        }
    }

    pub(crate) fn last_message_sent(&self, sid: i64) -> Option<Arc<[u8]>> {
        self.last_message_sent.lock().get(&sid).cloned()
    }

    pub(crate) fn set_last_message_sent(&self, sid: i64, b: Arc<[u8]>) {
        self.last_message_sent.lock().insert(sid, b);
    }

    // --------------------------------------------------------------- queues --

    pub fn add_to_recv_queue(&self, m: Message) {
        self.recv_queue.offer(m);
    }

    /// `pollRecvQueue`.
    pub fn poll_recv_queue(&self, timeout: Duration) -> Option<Message> {
        self.recv_queue.poll(timeout)
    }

    /// `haveDelivered`: true when some peer's queue is empty (something got out).
    pub fn have_delivered(&self) -> bool {
        self.queue_send_map.lock().values().any(|q| q.is_empty())
    }

    /// `connectAll`: dial every peer we ever queued a message for.
    pub fn connect_all(self: &Arc<Self>) {
        let sids: Vec<i64> = self.queue_send_map.lock().keys().copied().collect();
        for sid in sids {
            self.connect_one(sid);
        }
    }

    pub fn connected_to_peer(&self, sid: i64) -> bool {
        self.sender_worker_map.lock().contains_key(&sid)
    }

    /// Live worker threads (`getThreadCount`).
    pub fn thread_count(&self) -> i64 {
        self.thread_cnt.load(Ordering::Acquire)
    }

    pub fn connection_thread_count(&self) -> i64 {
        self.connection_thread_cnt.load(Ordering::Acquire)
    }

    /// Threads alive in the connection pool.
    pub fn pool_thread_count(&self) -> usize {
        self.executor.thread_count()
    }

    /// `halt`: stop listening, finish every worker, stop the pool.
    pub fn halt(&self) {
        self.shutdown.store(true, Ordering::Release);
        log::debug!("Halting listener");
        let l = self.listener.lock().take();
        if let Some(l) = l {
            l.halt_and_join();
        }
        self.soft_halt();
        self.executor.shutdown();
        self.inprogress_connections.lock().clear();
        self.connection_thread_cnt.store(0, Ordering::Release);
    }

    /// `softHalt`: drop every peer connection (they come back on demand).
    pub fn soft_halt(&self) {
        let workers: Vec<Arc<SendWorker>> = self.sender_worker_map.lock().values().cloned().collect();
        for sw in workers {
            log::debug!("Server {} is soft-halting sender towards: {}", self.my_sid, sw.sid);
            sw.finish(self);
        }
    }
}

/// Reads the first bytes of an incoming connection: a bare sid (pre-3.5 peers) or a
/// versioned initial message.
pub(crate) fn read_initial<R: Read>(din: &mut R) -> Result<(i64, Option<MultipleAddresses>), InitialMessageError> {
    let first = din.read_i64::<BigEndian>()?;
    if first >= 0 {
        return Ok((first, None));
    }
    let init = initial_message::parse(first, din)?;
    log::debug!("Initial message parsed: sid={}, electionAddr={:?}", init.sid, init.election_addr);
    let addr = if init.election_addr.is_empty() { None } else { Some(MultipleAddresses(init.election_addr)) };
    Ok((init.sid, addr))
}

fn fmt_addrs(a: &MultipleAddresses) -> String {
    a.all().iter().map(|x| x.to_string()).collect::<Vec<_>>().join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_sid_keeps_the_connection() {
        assert_eq!(keeps_connection(3, 1, true), ConnectionDecision::Keep);
        assert_eq!(keeps_connection(1, 3, true), ConnectionDecision::Drop);
        assert_eq!(keeps_connection(3, 1, false), ConnectionDecision::DropAndConnectBack);
        assert_eq!(keeps_connection(1, 3, false), ConnectionDecision::Keep);
        assert_eq!(keeps_connection(2, 2, false), ConnectionDecision::SameId);
    }
}
