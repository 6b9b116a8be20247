//! The clients of a chaos run and the histories they record.
//!
//! Each client thread holds one session (a new one when it expires) on the whole
//! ensemble and, until the deadline, picks among:
//! * **cas**: `sync` + `getData` of a versioned register, then `setData` with the version
//!   read (sometimes with -1); the write's outcome goes into the register history.
//!   Registers rotate every `epoch` (fresh znodes), which keeps each key's history short
//!   enough for the exhaustive linearizability search even with many unknown outcomes.
//! * **seq**: a persistent sequential create under one parent, the data naming the op.
//! * **multi**: two creates in one multi; one in four also carries a `check` that must
//!   fail, so the whole multi must leave no trace.
//! * **eph**: an ephemeral create on the client's session; **zombie**: a raw session that
//!   creates an ephemeral and vanishes without closeSession (its expiry must remove it).
//! * **bump**: an unconditional `setData` of the watched node.
//!
//! An outcome is *unknown* when the client cannot tell whether the request took effect
//! (connection loss, expiry, timeouts): the checks accept both.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, RecvTimeoutError};

use super::linearizability::{Operation, RegisterInput, RegisterOutput};
use super::Rng;
use crate::client::keeper_error::KeeperError;
use crate::client::watched_event::{WatchedEvent, Watcher};
use crate::client::zookeeper::ZooKeeper;
use crate::client::zookeeper::ops;
use crate::jute::{InputArchive, OutputArchive, Record};
use crate::proto::consts::ids;
use crate::proto::proto::{ConnectRequest, ConnectResponse, CreateRequest, ReplyHeader, RequestHeader};
use crate::proto::{event_type, op_code, Code, CreateMode};

pub const ROOT: &str = "/chaos";
pub const REG: &str = "/chaos/reg";
pub const SEQ: &str = "/chaos/seq";
pub const MULTI: &str = "/chaos/multi";
pub const EPH: &str = "/chaos/eph";
pub const WATCHED: &str = "/chaos/watched";
/// The version no `check` in a doomed multi can match.
const IMPOSSIBLE_VERSION: i32 = 1 << 30;

/// What a request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Ok(T),
    /// A definite failure: nothing happened.
    Failed(Code),
    /// The client cannot know.
    Unknown(Code),
}

/// Codes after which a write may or may not have been applied.
pub fn is_indefinite(c: Code) -> bool {
    matches!(
        c,
        Code::ConnectionLoss
            | Code::OperationTimeout
            | Code::SessionExpired
            | Code::SessionMoved
            | Code::RequestTimeout
            | Code::SystemError
            | Code::MarshallingError
            | Code::RuntimeInconsistency
    )
}

fn outcome<T>(r: Result<T, KeeperError>) -> Outcome<T> {
    match r {
        Ok(v) => Outcome::Ok(v),
        Err(e) if is_indefinite(e.code) => Outcome::Unknown(e.code),
        Err(e) => Outcome::Failed(e.code),
    }
}

#[derive(Debug, Clone)]
pub struct SeqCreate {
    pub client: usize,
    /// The parent (one per epoch, so no listing outgrows jute.maxbuffer).
    pub parent: String,
    /// The node's data: unique per op.
    pub tag: String,
    pub call: u64,
    pub ret: u64,
    /// The sequence number.
    pub outcome: Outcome<i64>,
}

#[derive(Debug, Clone)]
pub struct MultiTxn {
    /// `e<epoch>/<op>`: the multi's nodes are `<MULTI>/<tag>-a` and `-b`.
    pub tag: String,
    pub doomed: bool,
    pub outcome: Outcome<()>,
}

#[derive(Debug, Clone)]
pub struct EphemeralCreate {
    pub path: String,
    pub session: i64,
    pub zombie: bool,
    pub outcome: Outcome<()>,
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    pub sessions: u64,
    pub expired: u64,
}

impl Counts {
    fn add<T>(&mut self, o: &Outcome<T>) {
        match o {
            Outcome::Ok(_) => self.ok += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Unknown(c) => {
                self.unknown += 1;
                if *c == Code::SessionExpired {
                    self.expired += 1;
                }
            }
        }
    }
    fn merge(&mut self, o: &Counts) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.unknown += o.unknown;
        self.sessions += o.sessions;
        self.expired += o.expired;
    }
}

#[derive(Default)]
pub struct History {
    pub registers: Vec<Operation<RegisterInput, RegisterOutput>>,
    /// Every register key used (final reads cover them).
    pub register_keys: Vec<String>,
    pub seq: Vec<SeqCreate>,
    pub multis: Vec<MultiTxn>,
    pub ephemerals: Vec<EphemeralCreate>,
    pub bumps_ok: u64,
    pub counts: Counts,
}

impl History {
    fn merge(&mut self, o: History) {
        self.registers.extend(o.registers);
        for k in o.register_keys {
            if !self.register_keys.contains(&k) {
                self.register_keys.push(k);
            }
        }
        self.seq.extend(o.seq);
        self.multis.extend(o.multis);
        self.ephemerals.extend(o.ephemerals);
        self.bumps_ok += o.bumps_ok;
        self.counts.merge(&o.counts);
    }
}

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub clients: usize,
    pub registers: usize,
    pub epoch: Duration,
    pub session_timeout_ms: i32,
    /// Also put the `sync`+`getData` reads into the register history (see docs: upstream
    /// does not promise that `sync` makes a read linearizable across leader changes).
    pub check_reads: bool,
    pub seed: u64,
}

/// The clock of a run: ns since its start.
#[derive(Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

pub fn connect(connect_string: &str, timeout_ms: i32) -> Option<ZooKeeper> {
    ZooKeeper::connect(connect_string, timeout_ms, None).ok()
}

/// Creates the fixed part of the tree; retried until `deadline`.
pub fn setup(connect_string: &str, timeout_ms: i32, deadline: Instant) -> Result<(), String> {
    let mut last = String::new();
    while Instant::now() < deadline {
        let Some(zk) = connect(connect_string, timeout_ms) else {
            thread::sleep(Duration::from_millis(200));
            continue;
        };
        let mut ok = true;
        for p in [ROOT, REG, SEQ, MULTI, EPH, WATCHED] {
            match zk.create(p, Some(b""), &ids::open_acl_unsafe(), CreateMode::Persistent) {
                Ok(_) => {}
                Err(e) if e.code == Code::NodeExists => {}
                Err(e) => {
                    last = format!("create {p}: {e}");
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(200));
    }
    Err(format!("cannot create the {ROOT} tree: {last}"))
}

struct Client {
    id: usize,
    cs: String,
    cfg: WorkloadConfig,
    clock: Clock,
    rng: Rng,
    zk: Option<ZooKeeper>,
    n: u64,
    h: History,
}

impl Client {
    /// Makes sure `zk` holds a live session (a new one after an expiry).
    fn ensure_session(&mut self) -> bool {
        if self.zk.as_ref().is_some_and(|z| !z.state().is_alive()) {
            self.zk = None;
        }
        if self.zk.is_none() {
            self.zk = connect(&self.cs, self.cfg.session_timeout_ms);
            self.h.counts.sessions += 1;
        }
        self.zk.is_some()
    }

    fn tag(&mut self) -> String {
        self.n += 1;
        format!("c{}-{}", self.id, self.n)
    }

    fn step(&mut self) {
        let dice = self.rng.below(100);
        match dice {
            0..=54 => self.cas(),
            55..=74 => self.seq(),
            75..=86 => self.multi(),
            87..=91 => self.eph(),
            92..=93 => self.zombie(),
            _ => self.bump(),
        }
    }

    /// Registers, sequential parents and multi parents are fresh every epoch.
    fn epoch(&self) -> u128 {
        self.clock.0.elapsed().as_nanos() / self.cfg.epoch.as_nanos().max(1)
    }

    fn register_key(&mut self) -> String {
        let epoch = self.epoch();
        let k = self.rng.below(self.cfg.registers as u64);
        format!("{REG}/e{epoch}-k{k}")
    }

    /// Creates a missing epoch parent (NodeExists is fine; a failure is counted and the
    /// op skipped).
    fn create_parent(&mut self, parent: &str) {
        let Some(zk) = self.zk.as_ref() else { return };
        match zk.create(parent, Some(b""), &ids::open_acl_unsafe(), CreateMode::Persistent) {
            Err(e) if e.code != Code::NodeExists => self.h.counts.add(&outcome::<()>(Err(e))),
            _ => {}
        }
    }

    fn cas(&mut self) {
        let key = self.register_key();
        if !self.h.register_keys.contains(&key) {
            self.h.register_keys.push(key.clone());
        }
        let (id, clock, check_reads) = (self.id, self.clock, self.cfg.check_reads);
        let value = self.tag();
        let unconditional = self.rng.below(10) == 0;
        if !self.ensure_session() {
            return;
        }
        let Some(zk) = self.zk.as_ref() else { return };
        let call = clock.now();
        let read = zk.sync(&key).and_then(|_| zk.get_data(&key, None));
        let ret = clock.now();
        let (data, version) = match read {
            Ok((d, st)) => (d.unwrap_or_default(), st.version),
            Err(e) if e.code == Code::NoNode => {
                let r = zk.create(&key, Some(b""), &ids::open_acl_unsafe(), CreateMode::Persistent);
                if let Err(e) = r {
                    if e.code != Code::NodeExists {
                        self.h.counts.add(&outcome::<()>(Err(e)));
                    }
                }
                return;
            }
            Err(e) => {
                self.h.counts.add(&outcome::<()>(Err(e)));
                return;
            }
        };
        if check_reads {
            self.h.registers.push(Operation {
                client: id,
                key: key.clone(),
                input: RegisterInput::Read,
                call,
                ret: Some((ret, RegisterOutput::Read { data, version })),
            });
        }
        let expected = if unconditional { -1 } else { version };
        let call = clock.now();
        let r = outcome(zk.set_data(&key, Some(value.as_bytes()), expected));
        let ret = clock.now();
        self.h.counts.add(&r);
        let out = match r {
            Outcome::Ok(st) => Some((ret, RegisterOutput::Written { version: st.version })),
            Outcome::Failed(Code::BadVersion) => Some((ret, RegisterOutput::BadVersion)),
            // NoNode cannot happen (registers are never deleted); anything else definite
            // did nothing and says nothing.
            Outcome::Failed(_) => return,
            Outcome::Unknown(_) => None,
        };
        self.h.registers.push(Operation {
            client: id,
            key,
            input: RegisterInput::Write { data: value.into_bytes(), expected_version: expected },
            call,
            ret: out,
        });
    }

    fn seq(&mut self) {
        let tag = self.tag();
        let (id, clock) = (self.id, self.clock);
        let parent = format!("{SEQ}/e{}", self.epoch());
        if !self.ensure_session() {
            return;
        }
        let Some(zk) = self.zk.as_ref() else { return };
        let call = clock.now();
        let r = zk.create(&format!("{parent}/s-"), Some(tag.as_bytes()), &ids::open_acl_unsafe(), CreateMode::PersistentSequential);
        let ret = clock.now();
        if matches!(&r, Err(e) if e.code == Code::NoNode) {
            self.create_parent(&parent);
            return;
        }
        let o = match outcome(r) {
            Outcome::Ok(path) => match sequence_number(&path) {
                Some(n) => Outcome::Ok(n),
                None => Outcome::Failed(Code::MarshallingError),
            },
            Outcome::Failed(c) => Outcome::Failed(c),
            Outcome::Unknown(c) => Outcome::Unknown(c),
        };
        self.h.counts.add(&o);
        self.h.seq.push(SeqCreate { client: id, parent, tag, call, ret, outcome: o });
    }

    fn multi(&mut self) {
        let tag = format!("e{}/{}", self.epoch(), self.tag());
        let doomed = self.rng.below(4) == 0;
        if !self.ensure_session() {
            return;
        }
        let Some(zk) = self.zk.as_ref() else { return };
        let acl = ids::open_acl_unsafe();
        let mut ops = vec![
            ops::create(&format!("{MULTI}/{tag}-a"), Some(tag.as_bytes()), &acl, CreateMode::Persistent),
            ops::create(&format!("{MULTI}/{tag}-b"), Some(tag.as_bytes()), &acl, CreateMode::Persistent),
        ];
        if doomed {
            ops.push(ops::check(MULTI, IMPOSSIBLE_VERSION));
        }
        let o = match zk.multi(ops) {
            Ok(_) => Outcome::Ok(()),
            // The epoch's parent is missing: the multi did nothing; make the parent.
            Err((e, _)) if e.code == Code::NoNode => {
                if let Some(parent) = tag.split('/').next() {
                    self.create_parent(&format!("{MULTI}/{parent}"));
                }
                return;
            }
            Err((e, _)) if is_indefinite(e.code) => Outcome::Unknown(e.code),
            Err((e, _)) => Outcome::Failed(e.code),
        };
        self.h.counts.add(&o);
        self.h.multis.push(MultiTxn { tag, doomed, outcome: o });
    }

    fn eph(&mut self) {
        let tag = self.tag();
        if !self.ensure_session() {
            return;
        }
        let Some(zk) = self.zk.as_ref() else { return };
        let session = zk.session_id();
        let path = format!("{EPH}/{tag}");
        let o = outcome(zk.create(&path, Some(b""), &ids::open_acl_unsafe(), CreateMode::Ephemeral).map(|_| ()));
        self.h.counts.add(&o);
        self.h.ephemerals.push(EphemeralCreate { path, session, zombie: false, outcome: o });
    }

    fn zombie(&mut self) {
        let tag = self.tag();
        let addrs: Vec<&str> = self.cs.split(',').collect();
        let addr = addrs[self.rng.below(addrs.len() as u64) as usize];
        let path = format!("{EPH}/z-{tag}");
        let Ok(sa) = addr.parse::<SocketAddr>() else { return };
        let (session, o) = zombie_ephemeral(sa, &path, self.cfg.session_timeout_ms);
        if session != 0 {
            self.h.counts.add(&o);
            self.h.ephemerals.push(EphemeralCreate { path, session, zombie: true, outcome: o });
        }
    }

    fn bump(&mut self) {
        let tag = self.tag();
        if !self.ensure_session() {
            return;
        }
        let Some(zk) = self.zk.as_ref() else { return };
        let o = outcome(zk.set_data(WATCHED, Some(tag.as_bytes()), -1));
        if matches!(o, Outcome::Ok(_)) {
            self.h.bumps_ok += 1;
        }
        self.h.counts.add(&o);
    }
}

/// `s-0000000042` -> 42.
pub fn sequence_number(path: &str) -> Option<i64> {
    let tail = path.rsplit('/').next()?;
    let digits = tail.get(tail.len().checked_sub(10)?..)?;
    digits.parse().ok()
}

/// A session that creates an ephemeral and disappears without closeSession, as a
/// crashed application does: returns its id (0 if it never got one).
fn zombie_ephemeral(addr: SocketAddr, path: &str, timeout_ms: i32) -> (i64, Outcome<()>) {
    let io = Duration::from_millis(timeout_ms.max(1000) as u64);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, io) else { return (0, Outcome::Failed(Code::ConnectionLoss)) };
    let _ = s.set_read_timeout(Some(io));
    let _ = s.set_write_timeout(Some(io));
    let mut out = OutputArchive::new();
    ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: timeout_ms, session_id: 0, passwd: Some(vec![0; 16]) }.serialize(&mut out);
    out.write_bool(false);
    let Some(body) = roundtrip(&mut s, out.as_slice()) else { return (0, Outcome::Failed(Code::ConnectionLoss)) };
    let session = match ConnectResponse::from_bytes(&body) {
        Ok(r) if r.time_out > 0 => r.session_id,
        _ => return (0, Outcome::Failed(Code::ConnectionLoss)),
    };
    let mut out = OutputArchive::new();
    RequestHeader { xid: 1, r#type: op_code::CREATE }.serialize(&mut out);
    CreateRequest { path: path.to_owned(), data: Some(Vec::new()), acl: ids::open_acl_unsafe(), flags: 1 }.serialize(&mut out);
    let o = match roundtrip(&mut s, out.as_slice()).and_then(|b| ReplyHeader::deserialize(&mut InputArchive::new(&b)).ok()) {
        Some(h) if h.err == 0 => Outcome::Ok(()),
        Some(h) => match Code::from_i32(h.err) {
            Some(c) if !is_indefinite(c) => Outcome::Failed(c),
            _ => Outcome::Unknown(Code::ConnectionLoss),
        },
        None => Outcome::Unknown(Code::ConnectionLoss),
    };
    // Dropping the socket without closeSession: only expiry can end this session.
    (session, o)
}

fn roundtrip(s: &mut TcpStream, body: &[u8]) -> Option<Vec<u8>> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    s.write_all(&frame).ok()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = i32::from_be_bytes(len);
    if !(0..=1 << 20).contains(&n) {
        return None;
    }
    let mut b = vec![0u8; n as usize];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct WatchLog {
    pub events: u64,
    pub violations: Vec<String>,
}

/// A client that keeps a data watch on [`WATCHED`]: after every NodeDataChanged the
/// version read must have grown (a watch fires only for a change), and `last` ends
/// at the node's final version (a watch set before the last change fired).
pub struct Watchdog {
    pub last: Arc<AtomicI32>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<WatchLog>>,
}

impl Watchdog {
    pub fn start(cs: String, timeout_ms: i32) -> Watchdog {
        let last = Arc::new(AtomicI32::new(-1));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (last.clone(), stop.clone());
        let handle = thread::Builder::new().name("ChaosWatcher".into()).spawn(move || watch_loop(&cs, timeout_ms, &l, &s)).ok();
        Watchdog { last, stop, handle }
    }

    pub fn stop(mut self) -> WatchLog {
        self.stop.store(true, Ordering::Release);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_else(|| WatchLog {
            events: 0,
            violations: vec!["the watcher thread could not start or panicked".into()],
        })
    }
}

fn watch_loop(cs: &str, timeout_ms: i32, last: &AtomicI32, stop: &AtomicBool) -> WatchLog {
    let mut log = WatchLog::default();
    let mut zk: Option<ZooKeeper> = None;
    while !stop.load(Ordering::Acquire) {
        if zk.as_ref().is_some_and(|z| !z.state().is_alive()) {
            zk = None;
        }
        if zk.is_none() {
            zk = connect(cs, timeout_ms);
        }
        let Some(z) = zk.as_ref() else {
            thread::sleep(Duration::from_millis(200));
            continue;
        };
        let (tx, rx) = bounded::<WatchedEvent>(16);
        let w: Watcher = Arc::new(move |e: &WatchedEvent| {
            let _ = tx.try_send(e.clone());
        });
        let Ok((_, st)) = z.get_data(WATCHED, Some(w)) else {
            thread::sleep(Duration::from_millis(100));
            continue;
        };
        let before = st.version;
        last.fetch_max(before, Ordering::AcqRel);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(e) if e.event_type == event_type::NODE_DATA_CHANGED => {
                    log.events += 1;
                    match z.get_data(WATCHED, None) {
                        Ok((_, st)) if st.version <= before => log.violations.push(format!(
                            "NodeDataChanged for {WATCHED} after version {before}, but it still reads version {}",
                            st.version
                        )),
                        _ => {}
                    }
                    break;
                }
                Ok(e) if e.event_type == event_type::NONE => {
                    if !z.state().is_alive() {
                        break;
                    }
                }
                Ok(e) => {
                    log.violations.push(format!("unexpected event {e:?} for a data watch on {WATCHED}"));
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Acquire) || !z.state().is_alive() {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    log
}

/// Runs the clients until `deadline`; returns their merged history.
pub fn run_clients(cs: &str, cfg: &WorkloadConfig, clock: Clock, deadline: Instant, ops_done: &Arc<AtomicU64>) -> History {
    let mut handles = Vec::new();
    for id in 0..cfg.clients {
        let mut c = Client {
            id,
            cs: cs.to_owned(),
            cfg: cfg.clone(),
            clock,
            rng: Rng::new(cfg.seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            zk: None,
            n: 0,
            h: History::default(),
        };
        let done = ops_done.clone();
        if let Ok(h) = thread::Builder::new().name(format!("ChaosClient-{id}")).spawn(move || {
            while Instant::now() < deadline {
                c.step();
                done.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(zk) = c.zk.take() {
                zk.close();
            }
            c.h
        }) {
            handles.push(h);
        }
    }
    let mut all = History::default();
    for h in handles {
        if let Ok(part) = h.join() {
            all.merge(part);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_parse() {
        assert_eq!(sequence_number("/chaos/seq/s-0000000042"), Some(42));
        assert_eq!(sequence_number("/chaos/seq/s-"), None);
        assert_eq!(sequence_number("x"), None);
    }

    #[test]
    fn outcomes_classify() {
        assert_eq!(outcome::<()>(Err(KeeperError::new(Code::ConnectionLoss))), Outcome::Unknown(Code::ConnectionLoss));
        assert_eq!(outcome::<()>(Err(KeeperError::new(Code::BadVersion))), Outcome::Failed(Code::BadVersion));
        assert_eq!(outcome::<i32>(Ok(3)), Outcome::Ok(3));
    }
}
