//! Shared by the election tests (`#[path = "support/election.rs"] mod election;`):
//! - [`Ensemble`]: `server.N` lines, a data dir with `myid` and the epoch files, and a
//!   `QuorumPeer` with a given last zxid and epoch;
//! - [`Net`]: an in-memory network implementing `ElectionTransport`, so several
//!   `FastLeaderElection`s run in one process without sockets, with a filter that can
//!   deliver, drop or hold each message, and "mock peers" (sids with no election) whose
//!   messages a test writes and reads by hand;
//! - [`MemPeer`]: a `QuorumPeer` + `FastLeaderElection` on a `Net`, whose
//!   `lookForLeader` runs on its own thread;
//! - [`logs`]: a test logger that keeps every record, to assert on upstream's log lines;
//! - thread counts from /proc/self/task.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use zookeeper::common::circular_blocking_queue::CircularBlockingQueue;
use zookeeper::server::persistence::epoch_file::{write_long_to_file, ACCEPTED_EPOCH_FILENAME, CURRENT_EPOCH_FILENAME};
use zookeeper::server::quorum::fast_leader_election::notification::build_msg;
use zookeeper::server::quorum::fast_leader_election::{ElectionTransport, FastLeaderElection};
use zookeeper::server::quorum::quorum_cnx_manager::{Message, RECV_CAPACITY};
use zookeeper::server::quorum::quorum_peer::QuorumPeer;
use zookeeper::server::quorum::quorum_peer_config::QuorumPeerConfig;
use zookeeper::server::quorum::vote::{ServerState, Vote};

// ------------------------------------------------------------------ logs --

pub mod logs {
    //! A `log::Log` that keeps every record of the quorum code (debug and up) and every
    //! other record at info and up; with RUST_LOG set it also prints them to stderr.

    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use parking_lot::Mutex;

    #[derive(Debug, Clone)]
    pub struct Rec {
        pub level: log::Level,
        pub thread: String,
        pub text: String,
    }

    impl std::fmt::Display for Rec {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:<5} [{}] {}", self.level, self.thread, self.text)
        }
    }

    struct Capture {
        echo: bool,
    }

    static RECORDS: Mutex<Vec<Rec>> = Mutex::new(Vec::new());
    static INSTALLED: OnceLock<()> = OnceLock::new();

    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::Level::Info || m.target().starts_with("zookeeper::server::quorum")
        }

        fn log(&self, r: &log::Record) {
            if !self.enabled(r.metadata()) {
                return;
            }
            let rec = Rec {
                level: r.level(),
                thread: std::thread::current().name().unwrap_or("?").to_owned(),
                text: r.args().to_string(),
            };
            if self.echo {
                eprintln!("{rec}");
            }
            RECORDS.lock().push(rec);
        }

        fn flush(&self) {}
    }

    /// Installs the capture (once per test binary).
    pub fn install() {
        INSTALLED.get_or_init(|| {
            let echo = std::env::var_os("RUST_LOG").is_some();
            if log::set_boxed_logger(Box::new(Capture { echo })).is_ok() {
                log::set_max_level(log::LevelFilter::Debug);
            }
        });
    }

    /// A position in the record list: later queries only see what came after it.
    pub fn mark() -> usize {
        RECORDS.lock().len()
    }

    pub fn since(mark: usize) -> Vec<Rec> {
        RECORDS.lock().get(mark..).map(<[Rec]>::to_vec).unwrap_or_default()
    }

    /// Records after `mark` whose text contains every one of `parts`.
    pub fn find(mark: usize, parts: &[&str]) -> Vec<Rec> {
        since(mark).into_iter().filter(|r| parts.iter().all(|p| r.text.contains(p))).collect()
    }

    /// Waits until a record after `mark` contains every one of `parts`.
    pub fn wait_for(mark: usize, parts: &[&str], timeout: Duration) -> Option<Rec> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(r) = find(mark, parts).into_iter().next() {
                return Some(r);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Panics with the records since `mark` when no record matches.
    pub fn expect(mark: usize, parts: &[&str], timeout: Duration) -> Rec {
        match wait_for(mark, parts, timeout) {
            Some(r) => r,
            None => {
                let recent: Vec<String> = since(mark).iter().rev().take(40).rev().map(|r| r.to_string()).collect();
                panic!("no log line with {parts:?}; recent lines:\n{}", recent.join("\n"))
            }
        }
    }
}

// --------------------------------------------------------------- threads --

/// Threads of this process.
pub fn process_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// Threads whose name (as the kernel keeps it: 15 bytes) starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    let Ok(d) = std::fs::read_dir("/proc/self/task") else { return 0 };
    d.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|c| c.trim_end().starts_with(prefix))
        .count()
}

/// Polls `f` every 10 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// -------------------------------------------------------------- ensemble --

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The membership of a test ensemble.
pub struct Ensemble {
    pub sids: Vec<i64>,
    pub observers: Vec<i64>,
    /// sid -> (quorum port, election port)
    pub ports: HashMap<i64, (u16, u16)>,
    /// Extra zoo.cfg lines.
    pub extra: String,
}

impl Ensemble {
    /// Real free loopback ports, for peers that open sockets.
    pub fn loopback(sids: &[i64], observers: &[i64], extra: &str) -> Ensemble {
        let ports = sids.iter().map(|&s| (s, (free_port(), free_port()))).collect();
        Ensemble { sids: sids.to_vec(), observers: observers.to_vec(), ports, extra: extra.to_owned() }
    }

    /// Ports nobody binds, for peers on a [`Net`].
    pub fn in_memory(sids: &[i64], observers: &[i64]) -> Ensemble {
        let ports = sids.iter().map(|&s| (s, (40_000 + 2 * s as u16, 40_001 + 2 * s as u16))).collect();
        Ensemble { sids: sids.to_vec(), observers: observers.to_vec(), ports, extra: String::new() }
    }

    pub fn election_port(&self, sid: i64) -> u16 {
        self.ports[&sid].1
    }

    pub fn config(&self, sid: i64, dir: &Path) -> QuorumPeerConfig {
        let mut text = format!("tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\n{}\n", dir.display(), self.extra);
        for s in &self.sids {
            let (q, e) = self.ports[s];
            let kind = if self.observers.contains(s) { ":observer" } else { "" };
            text.push_str(&format!("server.{s}=127.0.0.1:{q}:{e}{kind}\n"));
        }
        std::fs::create_dir_all(dir.join("version-2")).expect("mkdir");
        std::fs::write(dir.join("myid"), sid.to_string()).expect("myid");
        let f = dir.join("zoo.cfg");
        std::fs::write(&f, text).expect("cfg");
        QuorumPeerConfig::parse(&f).expect("config parses")
    }

    /// A peer whose database ends at `zxid` and whose current epoch is `epoch`.
    pub fn peer(&self, sid: i64, dir: &Path, zxid: i64, epoch: i64) -> Arc<QuorumPeer> {
        let cfg = self.config(sid, dir);
        let snap = dir.join("version-2");
        write_long_to_file(&snap, CURRENT_EPOCH_FILENAME, epoch).expect("epoch");
        write_long_to_file(&snap, ACCEPTED_EPOCH_FILENAME, epoch).expect("epoch");
        QuorumPeer::new(cfg, zxid, snap).expect("peer")
    }
}

/// A notification as a 3.8 peer sends it, with an empty config.
pub fn notification(state: ServerState, leader: i64, zxid: i64, election_epoch: i64, peer_epoch: i64) -> Vec<u8> {
    build_msg(state.ordinal(), leader, zxid, election_epoch, peer_epoch, b"")
}

// ------------------------------------------------------- in-memory network --

/// What the network does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    /// Keep it in [`Net::held`] until the test delivers or drops it.
    Hold,
}

pub type Filter = Box<dyn FnMut(i64, i64, &[u8]) -> Fate + Send>;

/// One message as a peer handed it to the network.
#[derive(Debug, Clone)]
pub struct Sent {
    pub from: i64,
    pub to: i64,
    pub bytes: Vec<u8>,
    pub fate: Fate,
}

/// Routes `to_send` buffers between the receive queues of the peers, as
/// QuorumCnxManager does over TCP: a message to oneself goes straight into one's own
/// queue (never filtered); each receive queue keeps the newest RECV_CAPACITY messages.
pub struct Net {
    queues: Mutex<HashMap<i64, Arc<CircularBlockingQueue<Message>>>>,
    filter: Mutex<Option<Filter>>,
    held: Mutex<Vec<(i64, i64, Vec<u8>)>>,
    sent: Mutex<Vec<Sent>>,
    down: Mutex<HashSet<i64>>,
}

impl Net {
    pub fn new() -> Arc<Net> {
        Arc::new(Net {
            queues: Mutex::new(HashMap::new()),
            filter: Mutex::new(None),
            held: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            down: Mutex::new(HashSet::new()),
        })
    }

    pub fn queue(&self, sid: i64) -> Arc<CircularBlockingQueue<Message>> {
        self.queues.lock().entry(sid).or_insert_with(|| Arc::new(CircularBlockingQueue::new(RECV_CAPACITY))).clone()
    }

    pub fn transport(self: &Arc<Self>, sid: i64) -> Arc<dyn ElectionTransport> {
        Arc::new(MemTransport { net: self.clone(), me: sid })
    }

    pub fn set_filter(&self, f: impl FnMut(i64, i64, &[u8]) -> Fate + Send + 'static) {
        *self.filter.lock() = Some(Box::new(f));
    }

    pub fn clear_filter(&self) {
        *self.filter.lock() = None;
    }

    /// Puts `bytes` into `to`'s receive queue as if `from` had sent it (no filter).
    pub fn deliver(&self, from: i64, to: i64, bytes: Vec<u8>) {
        if self.down.lock().contains(&to) {
            return;
        }
        self.queue(to).offer(Message { buffer: bytes, sid: from });
    }

    fn route(&self, from: i64, to: i64, bytes: Vec<u8>) {
        let fate = if from == to {
            Fate::Deliver
        } else {
            match self.filter.lock().as_mut() {
                Some(f) => f(from, to, &bytes),
                None => Fate::Deliver,
            }
        };
        self.sent.lock().push(Sent { from, to, bytes: bytes.clone(), fate });
        match fate {
            Fate::Deliver => self.deliver(from, to, bytes),
            Fate::Drop => {}
            Fate::Hold => self.held.lock().push((from, to, bytes)),
        }
    }

    /// Takes every held message out of the network.
    pub fn take_held(&self) -> Vec<(i64, i64, Vec<u8>)> {
        std::mem::take(&mut *self.held.lock())
    }

    pub fn held_len(&self) -> usize {
        self.held.lock().len()
    }

    /// Takes the held message at `i` (for a scheduler that picks one at a time).
    pub fn take_held_at(&self, i: usize) -> Option<(i64, i64, Vec<u8>)> {
        let mut h = self.held.lock();
        (i < h.len()).then(|| h.swap_remove(i))
    }

    /// Puts a message (back) among the held ones.
    pub fn hold(&self, from: i64, to: i64, bytes: Vec<u8>) {
        self.held.lock().push((from, to, bytes));
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().clone()
    }

    /// A stopped peer: nothing reaches it any more.
    pub fn set_down(&self, sid: i64) {
        self.down.lock().insert(sid);
    }
}

struct MemTransport {
    net: Arc<Net>,
    me: i64,
}

impl ElectionTransport for MemTransport {
    fn to_send(&self, sid: i64, buf: Arc<[u8]>) {
        self.net.route(self.me, sid, buf.to_vec());
    }

    fn poll_recv_queue(&self, timeout: Duration) -> Option<Message> {
        self.net.queue(self.me).poll(timeout)
    }

    /// Every message leaves at once, so the election resends on a timeout rather than
    /// redialling (upstream's haveDelivered is true once a send queue drained).
    fn have_delivered(&self) -> bool {
        true
    }

    fn connect_all(&self) {}

    fn halt(&self) {
        self.net.set_down(self.me);
    }
}

// -------------------------------------------------------------- MemPeer --

/// A peer on a [`Net`]: its `QuorumPeer`, its election (Messenger threads running), and
/// `lookForLeader` on a thread of its own when [`MemPeer::elect`] is called — which then
/// records the outcome as the QuorumPeer thread does (`setCurrentVote`).
pub struct MemPeer {
    pub sid: i64,
    pub peer: Arc<QuorumPeer>,
    pub fle: Arc<FastLeaderElection>,
    result_tx: Sender<Option<Vote>>,
    result_rx: Receiver<Option<Vote>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    _dir: tempfile::TempDir,
}

impl MemPeer {
    pub fn new(ens: &Ensemble, net: &Arc<Net>, sid: i64, zxid: i64, epoch: i64) -> MemPeer {
        logs::install();
        let dir = tempfile::tempdir().expect("tmp");
        let peer = ens.peer(sid, dir.path(), zxid, epoch);
        let fle = Arc::new(FastLeaderElection::start(peer.clone(), net.transport(sid)).expect("fle"));
        let (result_tx, result_rx) = crossbeam_channel::unbounded();
        MemPeer { sid, peer, fle, result_tx, result_rx, thread: Mutex::new(None), _dir: dir }
    }

    /// Runs one `lookForLeader` (after joining a previous one).
    pub fn elect(&self) {
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        self.peer.set_peer_state(ServerState::Looking);
        let (peer, fle, tx) = (self.peer.clone(), self.fle.clone(), self.result_tx.clone());
        let t = thread::Builder::new()
            .name(format!("LE-{}", self.sid))
            .spawn(move || {
                let v = fle.look_for_leader();
                if let Some(v) = v {
                    peer.set_current_vote(v);
                }
                let _ = tx.send(v);
            })
            .expect("spawn");
        *self.thread.lock() = Some(t);
    }

    /// The outcome of the running `lookForLeader`, if it ends within `timeout`.
    pub fn decided(&self, timeout: Duration) -> Option<Vote> {
        self.result_rx.recv_timeout(timeout).ok().flatten()
    }

    pub fn state(&self) -> ServerState {
        self.peer.peer_state()
    }

    pub fn shutdown(&self) {
        self.peer.stop_running();
        self.fle.shutdown();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for MemPeer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ------------------------------------------------------------------ rng --

#[allow(unused_imports)]
pub use zookeeper::common::split_mix::Rng;
