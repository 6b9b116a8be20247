//! The workloads of `zk-bench run`: setup, timed phase (warm-up + measured window) and
//! cleanup, all through the crate's `ZooKeeper` client.
//!
//! Request workloads (create, set, get, delete, mixed, multi): one thread per client,
//! each owning one session and keeping `outstanding` async requests in flight. The
//! completion callbacks run on the session's EventThread; they only push (submit time,
//! completion time, error) into a channel bounded to `outstanding`, and the client
//! thread records latencies in its own histogram and issues the next request. Warm-up
//! and measured window are one continuous run: only completions inside the window
//! count, so the measured window starts with a full pipeline and warm JIT / caches.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::histogram::LatencyHistogram;
use super::{json_str, RunConfig, RunResult, Workload};
use crate::client::zookeeper::ops;
use crate::client::{KeeperError, WatchedEvent, Watcher, ZooKeeper};
use crate::proto::data::ACL;
use crate::proto::{event_type, ids, keeper_state, Code, CreateMode};

pub const SESSION_TIMEOUT_MS: i32 = 30_000;
/// How long a session may take to reach SyncConnected.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// A request without a reply for this long means the server (or client) is stuck;
/// the run stops waiting and counts the request as an error.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Sessions used for setup and cleanup (bulk creates / deletes are pipelined).
const ADMIN_SESSIONS: usize = 2;
/// Requests in flight per admin session during setup and cleanup.
const ADMIN_WINDOW: usize = 128;
/// `delete` pre-creates nodes for 1.5x the timed phase, at most this many: deletes
/// usually run at about the create rate, so the pool lasts the whole window without
/// filling the server's memory.
pub const DELETE_POOL_CAP: u64 = 1_000_000;
const DELETE_POOL_TIME_FACTOR: f64 = 1.5;
/// Threads that receive the watchers' notifications and re-arm their watches.
const WATCH_THREADS: usize = 4;
/// A write whose notification has not reached (and been re-armed by) every watcher
/// within this time ends the `watch` run.
const WATCH_ROUND_TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------ sessions --

/// Opens `n` sessions at once and waits until every one is SyncConnected. Opening them
/// concurrently keeps setup short when there are hundreds (watchers).
pub fn connect_many(server: &str, n: usize, timeout: Duration) -> Result<Vec<ZooKeeper>, String> {
    let mut pending = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = bounded::<()>(1);
        let w: Watcher = Arc::new(move |ev: &WatchedEvent| {
            if ev.event_type == event_type::NONE && ev.state == keeper_state::SYNC_CONNECTED {
                let _ = tx.try_send(());
            }
        });
        let zk = ZooKeeper::connect(server, SESSION_TIMEOUT_MS, Some(w))
            .map_err(|e| format!("cannot open a session to {server}: {e}"))?;
        pending.push((zk, rx));
    }
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    for (zk, rx) in pending {
        let connected = rx.recv_deadline(deadline).is_ok() || zk.state().is_connected();
        if !connected {
            return Err(format!(
                "no session with {server} within {:.0} s (client state {}); is the server running?",
                timeout.as_secs_f64(),
                zk.state().name()
            ));
        }
        out.push(zk);
    }
    Ok(out)
}

/// Closes sessions from a few threads: each close waits for the server's answer to
/// closeSession, which is a logged (fsynced) transaction.
fn close_all(sessions: Vec<ZooKeeper>) {
    if sessions.len() <= 2 {
        for zk in sessions {
            zk.close();
        }
        return;
    }
    let mut groups: Vec<Vec<ZooKeeper>> = (0..4).map(|_| Vec::new()).collect();
    for (i, zk) in sessions.into_iter().enumerate() {
        groups[i % 4].push(zk);
    }
    let handles: Vec<_> = groups
        .into_iter()
        .filter_map(|g| thread::Builder::new().name("zk-bench-close".into()).spawn(move || g.into_iter().for_each(|zk| zk.close())).ok())
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

// ----------------------------------------------------------------- rng --

/// xorshift64*: per-client key choice without a dependency; quality is plenty for
/// spreading requests over a key space.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

// ---------------------------------------------------------------- bulk --

enum BulkOp<'a> {
    /// One create per request.
    Create(&'a [u8]),
    /// Creates in multis of up to `batch` ops: several times the rate of single
    /// creates on both servers, so large setup pools are quick to build.
    CreateMulti(&'a [u8], usize),
    Delete,
    /// Deletes in multis of up to `batch` ops; a failed multi (one node already gone
    /// fails all) is retried as single deletes.
    DeleteMulti(usize),
}

#[derive(Default)]
struct BulkOutcome {
    /// Nodes created / deleted.
    ok: u64,
    /// Nodes whose request failed.
    errors: u64,
    first_error: Option<String>,
}

/// Ops per multi for bulk creates: at most 50, and well under jute.maxbuffer (1 MiB).
fn multi_batch(payload_len: usize) -> usize {
    (512 * 1024 / (payload_len + 128)).clamp(1, 50)
}

/// Pipelines `op` over `paths` on `sessions` from the calling thread, `window` requests
/// in flight per session, stopping early at `deadline`.
fn bulk(sessions: &[ZooKeeper], paths: &mut dyn Iterator<Item = String>, op: BulkOp, window: usize, deadline: Option<Instant>) -> BulkOutcome {
    let mut out = BulkOutcome::default();
    if sessions.is_empty() {
        return out;
    }
    let cap = window * sessions.len();
    // (nodes in the request, result, paths to retry one by one)
    let (tx, rx) = bounded::<(u64, Result<(), KeeperError>, Vec<String>)>(cap);
    let mut retry: Vec<String> = Vec::new();
    let acl = ids::open_acl_unsafe();
    let mut inflight = 0usize;
    let mut inflight_nodes = 0u64;
    let mut next_session = 0usize;
    let mut exhausted = false;
    loop {
        while !exhausted && inflight < cap && deadline.is_none_or(|d| Instant::now() < d) {
            let zk = &sessions[next_session % sessions.len()];
            let tx = tx.clone();
            let n = match op {
                BulkOp::Create(data) => {
                    let Some(path) = paths.next() else {
                        exhausted = true;
                        break;
                    };
                    zk.create_async(&path, Some(data), &acl, CreateMode::Persistent, move |r| {
                        let _ = tx.send((1, r.map(|_| ()), Vec::new()));
                    });
                    1
                }
                BulkOp::CreateMulti(data, batch) => {
                    let ops: Vec<_> = paths.take(batch).map(|p| ops::create(&p, Some(data), &acl, CreateMode::Persistent)).collect();
                    if ops.is_empty() {
                        exhausted = true;
                        break;
                    }
                    let n = ops.len() as u64;
                    zk.multi_async(ops, move |r| {
                        let _ = tx.send((n, r.map(|_| ()).map_err(|(e, _)| e), Vec::new()));
                    });
                    n
                }
                BulkOp::Delete => {
                    let Some(path) = paths.next() else {
                        exhausted = true;
                        break;
                    };
                    zk.delete_async(&path, -1, move |r| {
                        let _ = tx.send((1, r, Vec::new()));
                    });
                    1
                }
                BulkOp::DeleteMulti(batch) => {
                    let batch_paths: Vec<String> = paths.take(batch).collect();
                    if batch_paths.is_empty() {
                        exhausted = true;
                        break;
                    }
                    let n = batch_paths.len() as u64;
                    let ops = batch_paths.iter().map(|p| ops::delete(p, -1)).collect();
                    zk.multi_async(ops, move |r| {
                        let again = if r.is_err() { batch_paths } else { Vec::new() };
                        let _ = tx.send((n, r.map(|_| ()).map_err(|(e, _)| e), again));
                    });
                    n
                }
            };
            next_session += 1;
            inflight += 1;
            inflight_nodes += n;
        }
        if inflight == 0 {
            break;
        }
        match rx.recv_timeout(STALL_TIMEOUT) {
            Ok((n, r, again)) => {
                inflight -= 1;
                inflight_nodes -= n;
                match r {
                    Ok(()) => out.ok += n,
                    Err(_) if !again.is_empty() => retry.extend(again),
                    // NoNode on delete: already gone, which is what cleanup wants.
                    Err(e) if e.code == Code::NoNode && matches!(op, BulkOp::Delete | BulkOp::DeleteMulti(_)) => {}
                    Err(e) => {
                        out.errors += n;
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            Err(_) => {
                out.errors += inflight_nodes;
                out.first_error.get_or_insert_with(|| format!("{inflight} requests got no reply within {} s", STALL_TIMEOUT.as_secs()));
                break;
            }
        }
    }
    if !retry.is_empty() {
        drop(rx);
        let o = bulk(sessions, &mut retry.into_iter(), BulkOp::Delete, window, deadline);
        out.ok += o.ok;
        out.errors += o.errors;
        if out.first_error.is_none() {
            out.first_error = o.first_error;
        }
    }
    out
}

fn key_path(root: &str, i: usize) -> String {
    format!("{root}/n-{i}")
}

fn delete_pool_path(root: &str, i: u64) -> String {
    format!("{root}/d-{i}")
}

fn created_path(root: &str, client: usize, n: u64) -> String {
    format!("{root}/c-{client}-{n}")
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

// ------------------------------------------------------------ the run --

/// The measured window.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    to: Instant,
}

impl Window {
    fn contains(&self, t: Instant) -> bool {
        t >= self.from && t < self.to
    }
}

/// What the timed phase produced, before it becomes a `RunResult`.
#[derive(Default)]
struct Tally {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    hist: LatencyHistogram,
    /// Last successful completion inside the window (for runs that end early).
    last_done: Option<Instant>,
}

impl Tally {
    fn error(&mut self, msg: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(msg());
        }
    }
    fn absorb(&mut self, o: Tally) {
        self.ops += o.ops;
        self.errors += o.errors;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.hist.merge(&o.hist);
        self.last_done = match (self.last_done, o.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What to remove after the run.
#[derive(Default)]
struct Created {
    keys: usize,
    /// Per client: how many `c-<client>-<n>` names were used.
    per_client: Vec<u64>,
    /// `d-<i>` for i in `delete_from..delete_to` may still exist.
    delete_from: u64,
    delete_to: u64,
    watched: bool,
}

/// The `host:port` entries of a connect string (chroot appended to each).
fn server_list(server: &str) -> Result<Vec<String>, String> {
    let cs = crate::client::connect_string_parser::parse(server).map_err(|e| format!("bad --server {server:?}: {e}"))?;
    let chroot = cs.chroot.unwrap_or_default();
    Ok(cs.servers.iter().map(|(h, p)| format!("{h}:{p}{chroot}")).collect())
}

/// With several servers, a session may be served by one that has not applied the
/// setup's last txns yet: `sync` on every session first (untimed), so that no worker
/// starts by failing with NoNode.
fn sync_sessions(sessions: &[ZooKeeper], root: &str) -> Result<(), String> {
    let (tx, rx) = bounded::<Result<String, KeeperError>>(sessions.len().max(1));
    for zk in sessions {
        let tx = tx.clone();
        zk.sync_async(root, move |r| {
            let _ = tx.send(r);
        });
    }
    for _ in sessions {
        match rx.recv_timeout(STALL_TIMEOUT) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("setup: sync {root}: {e}")),
            Err(_) => return Err(format!("setup: sync {root}: no reply within {} s", STALL_TIMEOUT.as_secs())),
        }
    }
    Ok(())
}

/// Fails fast, with the reason, when no server of the connect string accepts TCP
/// connections (the client itself would retry quietly until the connect timeout).
fn check_reachable(server: &str) -> Result<(), String> {
    let cs = crate::client::connect_string_parser::parse(server).map_err(|e| format!("bad --server {server:?}: {e}"))?;
    let mut last = String::from("no address");
    for (host, port) in &cs.servers {
        let addrs = match (host.as_str(), *port).to_socket_addrs() {
            Ok(a) => a,
            Err(e) => {
                last = format!("{host}:{port}: {e}");
                continue;
            }
        };
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                Ok(_) => return Ok(()),
                Err(e) => last = format!("{a}: {e}"),
            }
        }
    }
    Err(format!("cannot reach a ZooKeeper server at {server} ({last})"))
}

pub fn run(cfg: &RunConfig) -> Result<RunResult, String> {
    check_reachable(&cfg.server)?;
    // All sessions of the run are opened together: session establishment then costs
    // one round of waiting, however many sessions there are.
    let workers = match cfg.workload {
        Workload::Watch => cfg.watchers,
        Workload::Churn => 0,
        _ => cfg.clients,
    };
    let t = Instant::now();
    let hosts = server_list(&cfg.server)?;
    let (admin, sessions) = if cfg.spread && hosts.len() > 1 {
        // Setup and cleanup sessions get the whole connect string; worker i only
        // server i mod n. Opened together, as below.
        let counts: Vec<usize> = (0..hosts.len()).map(|h| (h..workers).step_by(hosts.len()).count()).collect();
        let (admin, all) = thread::scope(|s| {
            let per_host: Vec<_> = hosts.iter().zip(&counts).map(|(h, &n)| s.spawn(move || connect_many(h, n, CONNECT_TIMEOUT))).collect();
            let admin = connect_many(&cfg.server, ADMIN_SESSIONS, CONNECT_TIMEOUT);
            let all: Vec<_> = per_host.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a connecting thread panicked".into()))).collect();
            (admin, all)
        });
        let admin = admin.map_err(|e| format!("setup: {e}"))?;
        let mut per_host = Vec::with_capacity(hosts.len());
        for r in all {
            per_host.push(r.map_err(|e| format!("setup: {e}"))?.into_iter());
        }
        // Round-robin order: client i is served by host i mod n.
        let mut sessions = Vec::with_capacity(workers);
        for i in 0..workers {
            if let Some(zk) = per_host[i % hosts.len()].next() {
                sessions.push(zk);
            }
        }
        (admin, sessions)
    } else {
        let mut admin = connect_many(&cfg.server, ADMIN_SESSIONS + workers, CONNECT_TIMEOUT).map_err(|e| format!("setup: {e}"))?;
        let sessions = admin.split_off(ADMIN_SESSIONS);
        (admin, sessions)
    };
    let mut notes = vec![format!("setup: {} sessions connected in {:.2} s (not timed)", ADMIN_SESSIONS + workers, t.elapsed().as_secs_f64())];
    if cfg.spread && hosts.len() > 1 && workers > 0 {
        notes.push(format!("sessions spread: client i connects to server i mod {} of {} only", hosts.len(), cfg.server));
    }
    prepare_root(&admin[0], &cfg.root)?;
    let mut extra = Vec::new();
    let mut created = Created::default();
    let outcome = match cfg.workload {
        Workload::Watch => run_watch(cfg, &admin, sessions, &mut created, &mut notes, &mut extra),
        Workload::Churn => run_churn(cfg),
        _ => run_requests(cfg, &admin, sessions, &mut created, &mut notes, &mut extra),
    };
    // Clean up even when the timed phase failed, so the next run starts from an empty root.
    let t = Instant::now();
    match cleanup(&admin, &cfg.root, &created) {
        Ok(n) => log::info!("cleanup: removed {n} nodes and {} in {:.2} s", cfg.root, t.elapsed().as_secs_f64()),
        Err(e) => {
            notes.push(format!("WARNING: cleanup of {} incomplete: {e}", cfg.root));
        }
    }
    close_all(admin);
    let (tally, duration_s) = outcome?;
    Ok(RunResult {
        config: cfg.clone(),
        duration_s,
        ops: tally.ops,
        errors: tally.errors,
        first_error: tally.first_error.clone(),
        latency: tally.hist.percentiles(),
        notes,
        extra_json: extra,
    })
}

/// Creates `root` (or accepts an empty one): leftovers of an interrupted run would
/// make creates fail with NodeExists and skew every number.
fn prepare_root(zk: &ZooKeeper, root: &str) -> Result<(), String> {
    let acl = ids::open_acl_unsafe();
    match zk.create(root, None, &acl, CreateMode::Persistent) {
        Ok(_) => Ok(()),
        Err(e) if e.code == Code::NodeExists => match zk.exists(root, None) {
            Ok(Some(st)) if st.num_children == 0 => Ok(()),
            Ok(Some(st)) => Err(format!(
                "setup: {root} already has {} children (left over from an interrupted run?); \
                 remove it (zkCli.sh deleteall {root}) or choose another --root",
                st.num_children
            )),
            Ok(None) => prepare_root(zk, root),
            Err(e) => Err(format!("setup: exists {root}: {e}")),
        },
        Err(e) if e.code == Code::NoNode => Err(format!("setup: cannot create {root}: its parent does not exist")),
        Err(e) => Err(format!("setup: cannot create {root}: {e}")),
    }
}

/// Deletes what the run created, then `root`. Returns how many nodes were deleted.
fn cleanup(admin: &[ZooKeeper], root: &str, c: &Created) -> Result<u64, String> {
    let mut deleted = 0;
    let mut first_error = None;
    let mut sweep = |paths: &mut dyn Iterator<Item = String>| {
        let o = bulk(admin, paths, BulkOp::DeleteMulti(50), ADMIN_WINDOW / 4, None);
        deleted += o.ok;
        if first_error.is_none() {
            first_error = o.first_error;
        }
    };
    sweep(&mut (0..c.keys).map(|i| key_path(root, i)));
    for (client, &n) in c.per_client.iter().enumerate() {
        sweep(&mut (0..n).map(|i| created_path(root, client, i)));
    }
    sweep(&mut (c.delete_from..c.delete_to).map(|i| delete_pool_path(root, i)));
    if c.watched {
        sweep(&mut std::iter::once(format!("{root}/watched")));
    }
    match admin[0].delete(root, -1) {
        Ok(()) => Ok(deleted),
        Err(e) if e.code == Code::NoNode => Ok(deleted),
        Err(e) if e.code == Code::NotEmpty => {
            // Requests that failed during the run (e.g. connection loss) may have
            // left nodes the bookkeeping above does not name.
            let children = admin[0].get_children(root, None).map_err(|e| format!("list {root}: {e}"))?;
            let n = children.len();
            sweep(&mut children.into_iter().map(|c| format!("{root}/{c}")));
            admin[0].delete(root, -1).map_err(|e| format!("delete {root} after removing {n} stray children: {e}"))?;
            Ok(deleted)
        }
        Err(e) => Err(format!("delete {root}: {e}{}", first_error.map(|f| format!(" (first error: {f})")).unwrap_or_default())),
    }
}

fn setup_failed(what: &str, o: &BulkOutcome) -> String {
    format!(
        "setup: {what}: {} of {} requests failed (first error: {})",
        o.errors,
        o.ok + o.errors,
        o.first_error.as_deref().unwrap_or("none")
    )
}

// ------------------------------------------------------ failover probe --

/// Watches the completions of a request workload from another thread, for
/// `ensemble`'s failover measurement: [`mark_kill`](Self::mark_kill) when a server is
/// killed; then the first successful request *submitted* after that instant (a request
/// already on its way when the leader died cannot tell that writes work again), per
/// client and overall. [`stop`](Self::stop) ends the run early (client threads stop
/// issuing, drain what is in flight and the run cleans up as usual).
#[derive(Debug)]
pub struct FailoverProbe {
    base: Instant,
    kill: OnceLock<Instant>,
    ok: AtomicU64,
    /// Per client: done time (ns since `base`) of its first success submitted after
    /// the kill; `u64::MAX` for none yet.
    first_ok_ns: Vec<AtomicU64>,
    errors_after_kill: AtomicU64,
    stop: AtomicBool,
}

impl FailoverProbe {
    pub fn new(clients: usize) -> FailoverProbe {
        FailoverProbe {
            base: Instant::now(),
            kill: OnceLock::new(),
            ok: AtomicU64::new(0),
            first_ok_ns: (0..clients).map(|_| AtomicU64::new(u64::MAX)).collect(),
            errors_after_kill: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    fn record(&self, client: usize, submitted: Instant, done: Instant, ok: bool) {
        let after_kill = self.kill.get().is_some_and(|k| submitted >= *k);
        if !ok {
            if after_kill {
                self.errors_after_kill.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        self.ok.fetch_add(1, Ordering::Relaxed);
        if after_kill {
            if let Some(slot) = self.first_ok_ns.get(client) {
                slot.fetch_min(done.saturating_duration_since(self.base).as_nanos() as u64, Ordering::Relaxed);
            }
        }
    }

    /// Successful requests so far (any time).
    pub fn successes(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// The instant the server was killed (taken just before the kill). Only the first
    /// call counts.
    pub fn mark_kill(&self, at: Instant) {
        let _ = self.kill.set(at);
    }

    /// Kill -> first successful request submitted after it, any client.
    pub fn first_success_after_kill(&self) -> Option<Duration> {
        self.client_firsts().into_iter().flatten().min()
    }

    /// Per client: kill -> its first successful request submitted after the kill.
    pub fn client_firsts(&self) -> Vec<Option<Duration>> {
        let Some(kill) = self.kill.get() else { return vec![None; self.first_ok_ns.len()] };
        let k = kill.saturating_duration_since(self.base);
        self.first_ok_ns
            .iter()
            .map(|a| match a.load(Ordering::Relaxed) {
                u64::MAX => None,
                ns => Some(Duration::from_nanos(ns).saturating_sub(k)),
            })
            .collect()
    }

    /// Failed requests submitted after the kill (ConnectionLoss while the ensemble
    /// has no leader, mostly).
    pub fn errors_after_kill(&self) -> u64 {
        self.errors_after_kill.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ------------------------------------------------------ request workloads --

/// Shared by the client threads of a request workload.
struct OpCtx {
    workload: Workload,
    root: String,
    keys: Vec<String>,
    payload: Vec<u8>,
    acl: Vec<ACL>,
    read_ratio: f64,
    multi_ops: usize,
    delete_next: AtomicU64,
    delete_pool: u64,
    window: Window,
    probe: Option<Arc<FailoverProbe>>,
}

impl OpCtx {
    /// True while the client threads should issue requests.
    fn running(&self) -> bool {
        Instant::now() < self.window.to && !self.probe.as_ref().is_some_and(|p| p.stop.load(Ordering::Relaxed))
    }
}

struct Done {
    submitted: Instant,
    done: Instant,
    err: Option<KeeperError>,
}

struct ClientOut {
    tally: Tally,
    /// `c-<client>-<n>` names used (create).
    used: u64,
    exhausted: bool,
}

fn run_requests(
    cfg: &RunConfig,
    admin: &[ZooKeeper],
    sessions: Vec<ZooKeeper>,
    created: &mut Created,
    notes: &mut Vec<String>,
    extra: &mut Vec<(String, String)>,
) -> Result<(Tally, f64), String> {
    let data = payload(cfg.payload);
    let batch = multi_batch(cfg.payload);
    let mut keys = Vec::new();
    let mut delete_pool = 0;
    match cfg.workload {
        Workload::Get | Workload::Set | Workload::Mixed | Workload::Multi => {
            let t = Instant::now();
            created.keys = cfg.nodes;
            let o = bulk(admin, &mut (0..cfg.nodes).map(|i| key_path(&cfg.root, i)), BulkOp::CreateMulti(&data, batch), ADMIN_WINDOW, None);
            if o.errors > 0 {
                return Err(setup_failed(&format!("creating {} nodes", cfg.nodes), &o));
            }
            notes.push(format!("setup: created {} nodes of {} B under {} in {:.2} s (not timed)", cfg.nodes, cfg.payload, cfg.root, t.elapsed().as_secs_f64()));
            keys = (0..cfg.nodes).map(|i| key_path(&cfg.root, i)).collect();
        }
        Workload::Delete => {
            // Multis of creates for 1.5x the timed phase: several times as many nodes
            // as single deletes get through in that time, so the pool lasts the window
            // (otherwise the run ends when the pool is empty, and says so).
            let budget = (cfg.warmup + cfg.duration).mul_f64(DELETE_POOL_TIME_FACTOR);
            let t = Instant::now();
            let o = bulk(
                &sessions,
                &mut (0..DELETE_POOL_CAP).map(|i| delete_pool_path(&cfg.root, i)),
                BulkOp::CreateMulti(&data, batch),
                cfg.outstanding.min(8),
                Some(t + budget),
            );
            delete_pool = o.ok + o.errors;
            created.delete_to = delete_pool;
            if o.errors > 0 {
                return Err(setup_failed("creating the nodes to delete", &o));
            }
            notes.push(format!(
                "setup: created {delete_pool} nodes to delete in {:.2} s (multis of {batch} creates for {:.1} x the timed phase, at most {DELETE_POOL_CAP}; not timed)",
                t.elapsed().as_secs_f64(),
                DELETE_POOL_TIME_FACTOR
            ));
            extra.push(("delete_pool".into(), delete_pool.to_string()));
        }
        _ => {}
    }
    if server_list(&cfg.server)?.len() > 1 {
        sync_sessions(&sessions, &cfg.root)?;
    }

    let t0 = Instant::now();
    let from = t0 + cfg.warmup;
    let window = Window { from, to: from + cfg.duration };
    let ctx = Arc::new(OpCtx {
        workload: cfg.workload,
        root: cfg.root.clone(),
        keys,
        payload: data,
        acl: ids::open_acl_unsafe(),
        read_ratio: cfg.read_ratio,
        multi_ops: cfg.multi_ops,
        delete_next: AtomicU64::new(0),
        delete_pool,
        window,
        probe: cfg.probe.clone(),
    });
    let mut handles = Vec::with_capacity(cfg.clients);
    for (client, zk) in sessions.into_iter().enumerate() {
        let ctx = ctx.clone();
        let outstanding = cfg.outstanding;
        let h = thread::Builder::new()
            .name(format!("zk-bench-client-{client}"))
            .spawn(move || request_client(&ctx, client, zk, outstanding))
            .map_err(|e| format!("cannot start a client thread: {e}"))?;
        handles.push(h);
    }
    let mut tally = Tally::default();
    let mut exhausted = false;
    let mut used = vec![0; handles.len()];
    for (client, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(o) => {
                used[client] = o.used;
                exhausted |= o.exhausted;
                tally.absorb(o.tally);
            }
            // A panicked create client's names are unknown; cleanup's listing of the
            // root's remaining children catches them.
            Err(_) => tally.error(|| format!("client thread {client} panicked")),
        }
    }
    if cfg.workload == Workload::Create {
        created.per_client = used;
    }
    created.delete_from = ctx.delete_next.load(Ordering::Relaxed).min(delete_pool);
    let mut duration = cfg.duration.as_secs_f64();
    if ctx.probe.as_ref().is_some_and(|p| p.stop.load(Ordering::SeqCst)) {
        let end = tally.last_done.unwrap_or(window.from);
        duration = end.saturating_duration_since(window.from).as_secs_f64().min(duration);
        notes.push(format!("stopped from outside after {duration:.2} s of the measured window; throughput is over that time"));
    }
    if exhausted {
        let used = tally.last_done.map(|t| t.saturating_duration_since(window.from).as_secs_f64()).unwrap_or(0.0);
        duration = used.min(duration);
        notes.push(format!("all {delete_pool} nodes were deleted after {duration:.2} s of the measured window; throughput is over that time"));
        extra.push(("exhausted".into(), "true".into()));
    }
    if cfg.workload == Workload::Multi {
        extra.push(("multi_ops".into(), cfg.multi_ops.to_string()));
    }
    if cfg.workload == Workload::Mixed {
        extra.push(("read_ratio".into(), format!("{}", cfg.read_ratio)));
    }
    if matches!(cfg.workload, Workload::Get | Workload::Set | Workload::Mixed | Workload::Multi) {
        extra.push(("nodes".into(), cfg.nodes.to_string()));
    }
    Ok((tally, duration))
}

/// One client thread: keeps `outstanding` requests in flight until the window ends.
fn request_client(ctx: &OpCtx, client: usize, zk: ZooKeeper, outstanding: usize) -> ClientOut {
    let (tx, rx) = bounded::<Done>(outstanding);
    let mut rng = Rng::new(client as u64 + 1);
    let mut seq = 0u64;
    let mut out = ClientOut { tally: Tally::default(), used: 0, exhausted: false };
    let mut inflight = 0usize;
    for _ in 0..outstanding {
        if !ctx.running() {
            break;
        }
        if !issue(ctx, client, &zk, &mut rng, &mut seq, &tx) {
            out.exhausted = true;
            break;
        }
        inflight += 1;
    }
    while inflight > 0 {
        let d = match rx.recv_timeout(STALL_TIMEOUT) {
            Ok(d) => d,
            Err(_) => {
                out.tally.errors += inflight as u64;
                out.tally.first_error.get_or_insert_with(|| format!("{inflight} requests got no reply within {} s", STALL_TIMEOUT.as_secs()));
                break;
            }
        };
        inflight -= 1;
        if let Some(p) = &ctx.probe {
            p.record(client, d.submitted, d.done, d.err.is_none());
        }
        if ctx.window.contains(d.done) {
            match d.err {
                None => {
                    out.tally.ops += 1;
                    out.tally.hist.record(d.done - d.submitted);
                    out.tally.last_done = Some(d.done);
                }
                Some(e) => out.tally.error(|| e.to_string()),
            }
        }
        if !out.exhausted && ctx.running() {
            if issue(ctx, client, &zk, &mut rng, &mut seq, &tx) {
                inflight += 1;
            } else {
                out.exhausted = true;
            }
        }
    }
    out.used = seq;
    zk.close();
    out
}

/// Submits one request of the workload; false when there is nothing left to do
/// (the delete pool is empty).
fn issue(ctx: &OpCtx, client: usize, zk: &ZooKeeper, rng: &mut Rng, seq: &mut u64, tx: &Sender<Done>) -> bool {
    let tx = tx.clone();
    let submitted = Instant::now();
    let complete = move |err: Option<KeeperError>| {
        let _ = tx.send(Done { submitted, done: Instant::now(), err });
    };
    let data = Some(ctx.payload.as_slice());
    match ctx.workload {
        Workload::Create => {
            let path = created_path(&ctx.root, client, *seq);
            *seq += 1;
            zk.create_async(&path, data, &ctx.acl, CreateMode::Persistent, move |r| complete(r.err()));
        }
        Workload::Get => {
            let key = &ctx.keys[rng.below(ctx.keys.len())];
            zk.get_data_async(key, move |r| complete(r.err()));
        }
        Workload::Set => {
            let key = &ctx.keys[rng.below(ctx.keys.len())];
            zk.set_data_async(key, data, -1, move |r| complete(r.err()));
        }
        Workload::Mixed => {
            let key = &ctx.keys[rng.below(ctx.keys.len())];
            if rng.unit() < ctx.read_ratio {
                zk.get_data_async(key, move |r| complete(r.err()));
            } else {
                zk.set_data_async(key, data, -1, move |r| complete(r.err()));
            }
        }
        Workload::Multi => {
            // Consecutive keys from a random start: distinct nodes whenever the key
            // space allows, without a set per request.
            let n = ctx.keys.len();
            let start = rng.below(n);
            let ops = (0..ctx.multi_ops).map(|j| ops::set_data(&ctx.keys[(start + j) % n], data, -1)).collect();
            zk.multi_async(ops, move |r| complete(r.err().map(|(e, _)| e)));
        }
        Workload::Delete => {
            let i = ctx.delete_next.fetch_add(1, Ordering::Relaxed);
            if i >= ctx.delete_pool {
                return false;
            }
            zk.delete_async(&delete_pool_path(&ctx.root, i), -1, move |r| complete(r.err()));
        }
        Workload::Watch | Workload::Churn => return false,
    }
    true
}

// --------------------------------------------------------------- watch --

/// State the writer shares with the watcher threads. Only one write is outstanding at
/// a time, so "the current write" is unambiguous.
struct WatchShared {
    base: Instant,
    /// Submit time of the current write, in ns since `base`.
    write_at_ns: AtomicU64,
    round: AtomicU64,
    stop: AtomicBool,
    window: Window,
}

struct Ack {
    round: u64,
    err: Option<String>,
}

/// Fan-out: `watchers` sessions each hold one one-shot data watch on `<root>/watched`;
/// one writer (an admin session) sets it. Each notification's latency is write submit
/// -> the watcher's event. The watcher re-arms with getData+watch, and the writer waits
/// until every watcher has re-armed before the next write, so each write notifies all
/// watchers. One-shot watches (not addWatch persistent ones) because get-and-rewatch is
/// how most ZooKeeper applications consume change notifications; it also makes each
/// round cost a read per watcher, which both servers pay alike.
fn run_watch(
    cfg: &RunConfig,
    admin: &[ZooKeeper],
    sessions: Vec<ZooKeeper>,
    created: &mut Created,
    notes: &mut Vec<String>,
    extra: &mut Vec<(String, String)>,
) -> Result<(Tally, f64), String> {
    let path = format!("{}/watched", cfg.root);
    let data = payload(cfg.payload);
    let writer = &admin[0];
    writer
        .create(&path, Some(&data), &ids::open_acl_unsafe(), CreateMode::Persistent)
        .map_err(|e| format!("setup: create {path}: {e}"))?;
    created.watched = true;
    if server_list(&cfg.server)?.len() > 1 {
        sync_sessions(&sessions, &cfg.root)?;
    }
    let t = Instant::now();
    let nthreads = cfg.watchers.min(WATCH_THREADS);
    let mut groups: Vec<Vec<ZooKeeper>> = (0..nthreads).map(|_| Vec::new()).collect();
    for (i, zk) in sessions.into_iter().enumerate() {
        groups[i % nthreads].push(zk);
    }
    // The window starts once every watch is armed (below), so that arming 100s of
    // sessions is not part of the warm-up.
    let base = Instant::now();
    let shared = Arc::new(WatchShared {
        base,
        write_at_ns: AtomicU64::new(0),
        round: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        window: Window { from: base + Duration::from_secs(3600), to: base + Duration::from_secs(3601) },
    });
    let (ack_tx, ack_rx) = unbounded::<Ack>();
    let mut handles = Vec::new();
    // The window is only known after arming; the threads get it through a channel.
    let mut window_txs = Vec::new();
    for (j, group) in groups.into_iter().enumerate() {
        let (wtx, wrx) = bounded::<Window>(1);
        window_txs.push(wtx);
        let (shared, ack_tx, path) = (shared.clone(), ack_tx.clone(), path.clone());
        let h = thread::Builder::new()
            .name(format!("zk-bench-watch-{j}"))
            .spawn(move || watch_thread(group, &path, &shared, wrx, ack_tx))
            .map_err(|e| format!("cannot start a watcher thread: {e}"))?;
        handles.push(h);
    }
    drop(ack_tx);
    let stop_threads = |handles: Vec<thread::JoinHandle<Tally>>, shared: &WatchShared| {
        shared.stop.store(true, Ordering::SeqCst);
        let mut t = Tally::default();
        for h in handles {
            match h.join() {
                Ok(o) => t.absorb(o),
                Err(_) => t.error(|| "a watcher thread panicked".into()),
            }
        }
        t
    };

    // Round 0: the initial getData+watch of every watcher.
    if let Err(e) = wait_acks(&ack_rx, 0, cfg.watchers, Instant::now() + CONNECT_TIMEOUT) {
        stop_threads(handles, &shared);
        return Err(format!("setup: arming the watches: {e}"));
    }
    notes.push(format!(
        "setup: {} watches armed in {:.2} s, watcher sessions served by {nthreads} threads (not timed)",
        cfg.watchers,
        t.elapsed().as_secs_f64()
    ));
    let from = Instant::now() + cfg.warmup;
    let window = Window { from, to: from + cfg.duration };
    for wtx in &window_txs {
        let _ = wtx.send(window);
    }

    let mut writer_tally = Tally::default();
    let mut writes = 0u64;
    let mut stopped_early = None;
    let mut round = 0u64;
    loop {
        let now = Instant::now();
        if now >= window.to {
            break;
        }
        round += 1;
        shared.round.store(round, Ordering::SeqCst);
        shared.write_at_ns.store(now.duration_since(shared.base).as_nanos() as u64, Ordering::SeqCst);
        if let Err(e) = writer.set_data(&path, Some(&data), -1) {
            if window.contains(Instant::now()) {
                writer_tally.error(|| format!("writer: {e}"));
            }
            continue;
        }
        if window.contains(now) {
            writes += 1;
        }
        match wait_acks(&ack_rx, round, cfg.watchers, Instant::now() + WATCH_ROUND_TIMEOUT) {
            Ok(()) => {}
            Err(e) => {
                writer_tally.error(|| e.clone());
                stopped_early = Some(e);
                break;
            }
        }
    }
    let end = Instant::now();
    let mut tally = stop_threads(handles, &shared);
    tally.absorb(writer_tally);
    let mut duration = cfg.duration.as_secs_f64();
    if let Some(e) = stopped_early {
        duration = end.saturating_duration_since(window.from).as_secs_f64().min(duration);
        notes.push(format!("stopped early: {e}"));
    }
    notes.push(format!(
        "{writes} writes in the window, each notifying all {} watchers ({:.1} writes/s)",
        cfg.watchers,
        if duration > 0.0 { writes as f64 / duration } else { 0.0 }
    ));
    extra.push(("watchers".into(), cfg.watchers.to_string()));
    extra.push(("writes".into(), writes.to_string()));
    extra.push(("watch_mode".into(), json_str("one-shot, re-armed")));
    Ok((tally, duration))
}

/// Waits for `n` acknowledgements of `round`; Err on a failed re-arm or timeout.
fn wait_acks(rx: &Receiver<Ack>, round: u64, n: usize, deadline: Instant) -> Result<(), String> {
    let mut got = 0usize;
    while got < n {
        match rx.recv_deadline(deadline) {
            Ok(a) if a.round == round => {
                if let Some(e) = a.err {
                    return Err(format!("a watcher could not re-arm its watch: {e}"));
                }
                got += 1;
            }
            Ok(_) => {}
            Err(_) if round == 0 => return Err(format!("{} of {n} watchers could not set their watch", n - got)),
            Err(_) => {
                return Err(format!(
                    "{} of {n} watchers did not get write #{round}'s notification and re-arm within {} s",
                    n - got,
                    WATCH_ROUND_TIMEOUT.as_secs()
                ))
            }
        }
    }
    Ok(())
}

fn watch_thread(group: Vec<ZooKeeper>, path: &str, shared: &WatchShared, window_rx: Receiver<Window>, acks: Sender<Ack>) -> Tally {
    let (ev_tx, ev_rx) = unbounded::<(usize, Instant)>();
    let watchers: Vec<Watcher> = (0..group.len())
        .map(|i| {
            let tx = ev_tx.clone();
            let w: Watcher = Arc::new(move |ev: &WatchedEvent| {
                // Taken on the session's EventThread, before any queueing of ours.
                if ev.event_type == event_type::NODE_DATA_CHANGED {
                    let _ = tx.send((i, Instant::now()));
                }
            });
            w
        })
        .collect();
    let arm = |i: usize, round: u64| {
        let acks = acks.clone();
        group[i].get_data_watch_async(path, Some(watchers[i].clone()), move |r| {
            let _ = acks.send(Ack { round, err: r.err().map(|e| e.to_string()) });
        });
    };
    for i in 0..group.len() {
        arm(i, 0);
    }
    let mut tally = Tally::default();
    let mut window = shared.window;
    loop {
        match ev_rx.recv_timeout(Duration::from_millis(20)) {
            Ok((i, at)) => {
                // The window is sent before the first write, so it is here by the
                // time that write's notification is.
                while let Ok(w) = window_rx.try_recv() {
                    window = w;
                }
                if window.contains(at) {
                    let write_at = shared.base + Duration::from_nanos(shared.write_at_ns.load(Ordering::SeqCst));
                    tally.ops += 1;
                    tally.hist.record(at.saturating_duration_since(write_at));
                    tally.last_done = Some(at);
                }
                arm(i, shared.round.load(Ordering::SeqCst));
            }
            Err(_) => {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
    }
    drop(watchers);
    for zk in group {
        zk.close();
    }
    tally
}

// --------------------------------------------------------------- churn --

/// Each client loops: open a session, wait for SyncConnected, close it (waiting for the
/// closeSession reply). One sample = connect + close. A sample belongs to the window it
/// *started* in (each client finishes its last one): a session can take as long as a
/// short window, and counting by completion would then see none.
fn run_churn(cfg: &RunConfig) -> Result<(Tally, f64), String> {
    let from = Instant::now() + cfg.warmup;
    let window = Window { from, to: from + cfg.duration };
    let mut handles = Vec::new();
    for client in 0..cfg.clients {
        let server = cfg.server.clone();
        let h = thread::Builder::new()
            .name(format!("zk-bench-churn-{client}"))
            .spawn(move || {
                let mut t = Tally::default();
                while Instant::now() < window.to {
                    let start = Instant::now();
                    match connect_many(&server, 1, CONNECT_TIMEOUT) {
                        Ok(v) => {
                            for zk in v {
                                zk.close();
                            }
                            let done = Instant::now();
                            if window.contains(start) {
                                t.ops += 1;
                                t.hist.record(done - start);
                                t.last_done = Some(done);
                            }
                        }
                        Err(e) => {
                            if window.contains(start) {
                                t.error(|| e);
                            }
                        }
                    }
                }
                t
            })
            .map_err(|e| format!("cannot start a client thread: {e}"))?;
        handles.push(h);
    }
    let mut tally = Tally::default();
    for h in handles {
        match h.join() {
            Ok(t) => tally.absorb(t),
            Err(_) => tally.error(|| "a churn thread panicked".into()),
        }
    }
    Ok((tally, cfg.duration.as_secs_f64()))
}

/// Creates `<root>` and `<root>/n-0 .. n-<count-1>` with `payload_len` bytes each,
/// pipelined over `sessions` sessions x `window` requests (for `compare`'s restart
/// measurement). Returns the path of the last node and the creates per second.
pub fn populate(server: &str, root: &str, count: usize, payload_len: usize, sessions: usize, window: usize) -> Result<(String, f64), String> {
    let zks = connect_many(server, sessions.max(1), CONNECT_TIMEOUT)?;
    prepare_root(&zks[0], root)?;
    let data = payload(payload_len);
    let t = Instant::now();
    let o = bulk(&zks, &mut (0..count).map(|i| key_path(root, i)), BulkOp::Create(&data), window, None);
    let rate = count as f64 / t.elapsed().as_secs_f64().max(1e-9);
    close_all(zks);
    if o.errors > 0 {
        return Err(setup_failed(&format!("populating {count} nodes under {root}"), &o));
    }
    Ok((key_path(root, count.saturating_sub(1)), rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_covers_the_key_space() {
        let mut r = Rng::new(1);
        let mut seen = [false; 16];
        for _ in 0..1000 {
            seen[r.below(16)] = true;
        }
        assert!(seen.iter().all(|s| *s));
        let u = r.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn failover_probe_counts_only_writes_submitted_after_the_kill() {
        let p = FailoverProbe::new(2);
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        p.record(0, ms(1), ms(2), true);
        assert_eq!(p.successes(), 1);
        assert_eq!(p.first_success_after_kill(), None);
        p.mark_kill(ms(10));
        // Submitted before the kill, done after: not a sign that writes work again.
        p.record(0, ms(9), ms(30), true);
        p.record(1, ms(11), ms(12), false);
        assert_eq!(p.first_success_after_kill(), None);
        assert_eq!(p.errors_after_kill(), 1);
        p.record(1, ms(20), ms(50), true);
        p.record(0, ms(40), ms(70), true);
        p.record(1, ms(45), ms(60), true);
        let to_ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        assert_eq!(to_ms(p.first_success_after_kill()), Some(40));
        assert_eq!(p.client_firsts().into_iter().map(to_ms).collect::<Vec<_>>(), vec![Some(60), Some(40)]);
        // A later kill mark is ignored.
        p.mark_kill(ms(100));
        assert_eq!(to_ms(p.first_success_after_kill()), Some(40));
    }

    #[test]
    fn server_list_keeps_the_chroot() {
        assert_eq!(server_list("a:1,b:2/x").unwrap(), vec!["a:1/x".to_string(), "b:2/x".to_string()]);
        assert_eq!(server_list("a:1").unwrap(), vec!["a:1".to_string()]);
    }

    #[test]
    fn window_is_half_open() {
        let from = Instant::now();
        let w = Window { from, to: from + Duration::from_secs(1) };
        assert!(w.contains(from));
        assert!(!w.contains(from + Duration::from_secs(1)));
    }
}
