//! `RequestThrottler`: a queue and a thread between the connections and the first
//! request processor.
//!
//! Our connection readers already stop at `globalOutstandingLimit` (see `RecvLimits`),
//! but like upstream's NIO layer each connection may always send one request, so with
//! many connections far more than that limit can be in the pipeline. When
//! `zookeeper.request_throttle_max_requests` is above 0, requests queue here and the
//! "RequestThrottler" thread hands them on only while fewer than that many are in
//! process, stalling up to `zookeeper.request_throttle_stall_time` ms at a time
//! (woken early whenever a request finishes). With
//! `zookeeper.request_throttle_drop_stale` (default true) a request whose connection
//! has closed meanwhile is dropped instead of processed; the connection is then marked
//! invalid (and closed if it was not), and every later request of it is dropped too, so
//! that a client never sees a reply after a gap.
//!
//! Deliberate difference: upstream runs the thread even when throttling is off (0, the
//! default) and then only forwards. We skip that hop and submit in the caller's thread
//! ([`RequestThrottler::enabled`]); the counters it keeps (`stale_requests`,
//! `request_throttle_queue_time_ms`) are kept either way. A request handed on that way
//! has waited 0 ms, so `zookeeper.throttled_op_wait_time` only ever throttles requests
//! that queued here (upstream's could also trip when its forwarding thread lags).
//!
//! The decisions ([`admission`], [`is_stale`]) are plain functions, tested on their own.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

use crate::common::time;
use crate::proto::op_code;
use crate::server::request::Request;
use crate::server::server_stats::Summary;
use crate::server::zookeeper_server::ZooKeeperServer;
use crate::system_properties;

pub const MAX_REQUESTS: &str = "zookeeper.request_throttle_max_requests";
pub const STALL_TIME: &str = "zookeeper.request_throttle_stall_time";
pub const DROP_STALE: &str = "zookeeper.request_throttle_drop_stale";
pub const SHUTDOWN_TIMEOUT: &str = "zookeeper.request_throttler.shutdownTimeout";
/// `Request.staleConnectionCheck`: a request of a closed connection is stale.
pub const STALE_CONNECTION_CHECK: &str = "zookeeper.request_stale_connection_check";
/// `Request.staleLatencyCheck`: a request older than its session timeout is stale.
pub const STALE_LATENCY_CHECK: &str = "zookeeper.request_stale_latency_check";
/// `ZooKeeperServer.throttledOpWaitTime`: a request that waited longer than this in
/// the throttler's queue is answered THROTTLEDOP instead of processed (0: never).
pub const THROTTLED_OP_WAIT_TIME: &str = "zookeeper.throttled_op_wait_time";

/// The throttler's configuration, read once at server start (upstream's statics; we
/// have no JMX to change them later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottlerSettings {
    /// 0 turns throttling off.
    pub max_requests: i64,
    pub stall_time_ms: i64,
    pub drop_stale: bool,
    pub shutdown_timeout_ms: i64,
    pub stale_connection_check: bool,
    pub stale_latency_check: bool,
    /// 0 (the default) turns it off.
    pub throttled_op_wait_time_ms: i64,
}

impl Default for ThrottlerSettings {
    fn default() -> Self {
        ThrottlerSettings {
            max_requests: 0,
            stall_time_ms: 100,
            drop_stale: true,
            shutdown_timeout_ms: 10_000,
            stale_connection_check: true,
            stale_latency_check: false,
            throttled_op_wait_time_ms: 0,
        }
    }
}

impl ThrottlerSettings {
    pub fn from_system_properties() -> ThrottlerSettings {
        let d = ThrottlerSettings::default();
        let int = |key: &str, default: i64| system_properties::get_i64(key).filter(|v| i32::try_from(*v).is_ok()).unwrap_or(default);
        let s = ThrottlerSettings {
            max_requests: int(MAX_REQUESTS, d.max_requests),
            stall_time_ms: int(STALL_TIME, d.stall_time_ms),
            drop_stale: system_properties::get_bool_or(DROP_STALE, d.drop_stale),
            shutdown_timeout_ms: int(SHUTDOWN_TIMEOUT, d.shutdown_timeout_ms),
            stale_connection_check: system_properties::get_bool_or(STALE_CONNECTION_CHECK, d.stale_connection_check),
            stale_latency_check: system_properties::get_bool_or(STALE_LATENCY_CHECK, d.stale_latency_check),
            throttled_op_wait_time_ms: int(THROTTLED_OP_WAIT_TIME, d.throttled_op_wait_time_ms),
        };
        // Once per process, as upstream's static initializer.
        static LOGGED: std::sync::Once = std::sync::Once::new();
        LOGGED.call_once(|| log::info!("{} = {} ms", SHUTDOWN_TIMEOUT, s.shutdown_timeout_ms));
        s
    }
}

/// What the throttler does with the request at the head of its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Hand it to the first processor now.
    Submit,
    /// Stale: drop it (and invalidate its connection).
    Drop,
    /// Too much in process: wait, then decide again.
    Stall,
}

/// The loop body of `RequestThrottler.run`: with throttling on, a stale request is
/// dropped (when dropping is on) before the in-process count is even looked at, and a
/// fresh one waits until fewer than `max_requests` are in process.
pub fn admission(max_requests: i64, drop_stale: bool, stale: bool, in_process: i64) -> Admission {
    if max_requests <= 0 {
        Admission::Submit
    } else if drop_stale && stale {
        Admission::Drop
    } else if in_process < max_requests {
        Admission::Submit
    } else {
        Admission::Stall
    }
}

/// `RequestThrottler.shouldThrottleOp`: a throttlable request that waited in the queue
/// longer than a positive `zookeeper.throttled_op_wait_time`.
pub fn should_throttle_op(throttlable: bool, throttled_op_wait_time_ms: i64, queued_ms: i64) -> bool {
    throttlable && throttled_op_wait_time_ms > 0 && queued_ms > throttled_op_wait_time_ms
}

/// What [`is_stale`] needs to know of a request's connection.
#[derive(Clone, Copy, Debug)]
pub struct CnxnState {
    /// Closed (upstream's `ServerCnxn.isStale`: set when the connection closes).
    pub closed: bool,
    /// A request of it was dropped before (`isInvalid`).
    pub invalid: bool,
    pub session_timeout_ms: i64,
}

/// `Request.isStale`. Requests without a connection (expiry, learners) never are, nor
/// is a closeSession, which must outlive its connection to clean up the session.
/// `age_ms` is only asked for when the latency check is on.
pub fn is_stale(settings: &ThrottlerSettings, op: i32, cnxn: Option<CnxnState>, age_ms: impl FnOnce() -> i64) -> bool {
    let Some(c) = cnxn else { return false };
    if op == op_code::CLOSE_SESSION {
        return false;
    }
    if settings.stale_connection_check && (c.closed || c.invalid) {
        return true;
    }
    settings.stale_latency_check && age_ms() > c.session_timeout_ms
}

fn stale(settings: &ThrottlerSettings, r: &Request) -> bool {
    let cnxn = r.cnxn.as_ref().map(|c| CnxnState {
        closed: c.is_closed(),
        invalid: c.is_invalid(),
        session_timeout_ms: c.session_timeout() as i64,
    });
    is_stale(settings, r.r#type, cnxn, || time::current_elapsed_time() - r.create_time)
}

/// `Request.mustDrop`: an earlier request of the same connection was dropped.
fn must_drop(r: &Request) -> bool {
    r.cnxn.as_ref().is_some_and(|c| c.is_invalid())
}

/// The `ServerMetrics` the throttles feed, under upstream's names (process-wide, like
/// upstream's singleton).
pub struct ThrottleMetrics {
    pub request_throttle_wait_count: AtomicI64,
    pub stale_requests: AtomicI64,
    pub stale_requests_dropped: AtomicI64,
    pub throttled_ops: AtomicI64,
    pub request_throttle_queue_time: Summary,
    pub connection_rejected: AtomicI64,
    pub connection_request_count: AtomicI64,
    pub connection_token_deficit: Summary,
}

pub static METRICS: ThrottleMetrics = ThrottleMetrics {
    request_throttle_wait_count: AtomicI64::new(0),
    stale_requests: AtomicI64::new(0),
    stale_requests_dropped: AtomicI64::new(0),
    throttled_ops: AtomicI64::new(0),
    request_throttle_queue_time: Summary::new(),
    connection_rejected: AtomicI64::new(0),
    connection_request_count: AtomicI64::new(0),
    connection_token_deficit: Summary::new(),
};

impl ThrottleMetrics {
    pub fn counter(&self, name: &str) -> Option<i64> {
        let c = match name {
            "request_throttle_wait_count" => &self.request_throttle_wait_count,
            "stale_requests" => &self.stale_requests,
            "stale_requests_dropped" => &self.stale_requests_dropped,
            "throttled_ops" => &self.throttled_ops,
            "connection_rejected" => &self.connection_rejected,
            "connection_request_count" => &self.connection_request_count,
            _ => return None,
        };
        Some(c.load(Ordering::Relaxed))
    }

    pub fn summary(&self, name: &str) -> Option<&Summary> {
        match name {
            "request_throttle_queue_time_ms" => Some(&self.request_throttle_queue_time),
            "connection_token_deficit" => Some(&self.connection_token_deficit),
            _ => None,
        }
    }

    /// `srst`.
    pub fn reset(&self) {
        for c in [
            &self.request_throttle_wait_count,
            &self.stale_requests,
            &self.stale_requests_dropped,
            &self.throttled_ops,
            &self.connection_rejected,
            &self.connection_request_count,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.request_throttle_queue_time.reset();
        self.connection_token_deficit.reset();
    }
}

enum Queued {
    /// A request and when it was queued (`requestThrottleQueueTime`).
    Request(Request, i64),
    /// `Request.requestOfDeath`.
    Death,
}

pub struct RequestThrottler {
    pub settings: ThrottlerSettings,
    tx: Sender<Queued>,
    rx: Receiver<Queued>,
    stopping: AtomicBool,
    killed: AtomicBool,
    /// The thread is in (or about to enter) its stall; wakers skip the lock otherwise.
    waiting: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
    /// Signalled when the thread has left its loop and drained the queue.
    done: (Sender<()>, Receiver<()>),
    handle: Mutex<Option<thread::JoinHandle<()>>>,
    /// The thread runs: requests are queued for it.
    active: AtomicBool,
}

impl RequestThrottler {
    pub fn new(settings: ThrottlerSettings) -> RequestThrottler {
        let (tx, rx) = unbounded();
        RequestThrottler {
            settings,
            tx,
            rx,
            stopping: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            done: crossbeam_channel::bounded(1),
            handle: Mutex::new(None),
            active: AtomicBool::new(false),
        }
    }

    /// Whether requests go through the queue and thread at all (see the module doc).
    pub fn enabled(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Starts the "RequestThrottler" thread (only when throttling is configured). The
    /// thread holds the server weakly: a server dropped without `shutdown` (a quorum
    /// role that never served) must not be kept alive by its own throttler.
    pub fn start(self: &Arc<Self>, zks: &Arc<ZooKeeperServer>) -> std::io::Result<()> {
        if self.settings.max_requests <= 0 {
            return Ok(());
        }
        let me = self.clone();
        let weak = Arc::downgrade(zks);
        let h = thread::Builder::new().name("RequestThrottler".into()).spawn(move || me.run(weak))?;
        *self.handle.lock() = Some(h);
        self.active.store(true, Ordering::Release);
        Ok(())
    }

    /// `getInflight`: requests waiting in the queue.
    pub fn inflight(&self) -> i64 {
        self.rx.len() as i64
    }

    /// `submitRequest`: queue a request, or drop it once shutdown has begun.
    pub fn submit_request(&self, zks: &ZooKeeperServer, r: Request) {
        if self.stopping.load(Ordering::Acquire) {
            log::debug!("Shutdown in progress. Request cannot be processed");
            self.drop_request(zks, r);
            return;
        }
        if let Err(e) = self.tx.send(Queued::Request(r, time::current_elapsed_time())) {
            // Cannot happen while we hold the receiver; account for it all the same.
            if let Queued::Request(r, _) = e.into_inner() {
                self.drop_request(zks, r);
            }
        }
    }

    /// The bookkeeping of a request that is handed on, whether by the thread or, with
    /// throttling off, by the caller (queued for 0 ms): `stale_requests`, the time it
    /// spent queued, and whether it waited too long to be processed (`throttled_ops`).
    pub fn record_submitted(&self, r: &mut Request, queued_ms: i64) {
        if stale(&self.settings, r) {
            METRICS.stale_requests.fetch_add(1, Ordering::Relaxed);
        }
        METRICS.request_throttle_queue_time.add(queued_ms);
        if should_throttle_op(r.is_throttlable(), self.settings.throttled_op_wait_time_ms, queued_ms) {
            r.throttled = true;
            METRICS.throttled_ops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn run(&self, weak: Weak<ZooKeeperServer>) {
        loop {
            if self.killed.load(Ordering::Acquire) {
                break;
            }
            let (r, queued_at) = match self.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Queued::Request(r, t)) => (r, t),
                Ok(Queued::Death) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) if weak.strong_count() == 0 => break,
                Err(RecvTimeoutError::Timeout) => continue,
            };
            let Some(zks) = weak.upgrade() else { break };
            if !self.throttle(&zks, r, queued_at) {
                break;
            }
        }
        let dropped = weak.upgrade().map_or(0, |zks| self.drain_queue(&zks));
        log::info!("RequestThrottler shutdown. Dropped {dropped} requests");
        let _ = self.done.0.try_send(());
    }

    /// One request through the loop of `RequestThrottler.run`: dropped, or handed on
    /// once the pipeline has room. False when the throttler was killed meanwhile.
    fn throttle(&self, zks: &ZooKeeperServer, mut r: Request, queued_at: i64) -> bool {
        if must_drop(&r) {
            zks.request_dropped(&r);
            return true;
        }
        loop {
            if self.killed.load(Ordering::Acquire) {
                self.drop_request(zks, r);
                return false;
            }
            match admission(self.settings.max_requests, self.settings.drop_stale, stale(&self.settings, &r), zks.in_process()) {
                Admission::Submit => break,
                Admission::Drop => {
                    // Closes the connection if it is not already.
                    self.drop_request(zks, r);
                    METRICS.stale_requests_dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Admission::Stall => self.throttle_sleep(zks),
            }
        }
        self.record_submitted(&mut r, time::current_elapsed_time() - queued_at);
        zks.submit_request_now(r);
        true
    }

    /// `throttleSleep`: wait up to the stall time, or until a request finishes.
    fn throttle_sleep(&self, zks: &ZooKeeperServer) {
        METRICS.request_throttle_wait_count.fetch_add(1, Ordering::Relaxed);
        let mut g = self.lock.lock();
        self.waiting.store(true, Ordering::SeqCst);
        // A request that finished between the decision and here would have found
        // `waiting` unset and not notified: look again under the lock.
        if zks.in_process() >= self.settings.max_requests && !self.killed.load(Ordering::Acquire) {
            self.cv.wait_for(&mut g, Duration::from_millis(self.settings.stall_time_ms.max(0) as u64));
        }
        self.waiting.store(false, Ordering::SeqCst);
    }

    /// `throttleWake`: a request left the pipeline.
    pub fn throttle_wake(&self) {
        if self.waiting.load(Ordering::SeqCst) {
            let _g = self.lock.lock();
            self.cv.notify_all();
        }
    }

    fn drain_queue(&self, zks: &ZooKeeperServer) -> usize {
        log::info!("Draining request throttler queue");
        let mut dropped = 0;
        while let Ok(q) = self.rx.try_recv() {
            if let Queued::Request(r, _) = q {
                dropped += 1;
                self.drop_request(zks, r);
            }
        }
        dropped
    }

    /// `dropRequest`: the connection is marked invalid so that none of its later
    /// requests is processed either (order must hold), and the request's accounting
    /// ends here.
    fn drop_request(&self, zks: &ZooKeeperServer, r: Request) {
        if let Some(c) = &r.cnxn {
            c.set_invalid();
        }
        zks.request_dropped(&r);
    }

    /// `shutdown`: let the thread work through what is queued for up to the shutdown
    /// timeout, then stop it and drop the rest.
    pub fn shutdown(&self) {
        let Some(h) = self.handle.lock().take() else { return };
        log::info!("Shutting down");
        self.stopping.store(true, Ordering::Release);
        let _ = self.tx.send(Queued::Death);
        let timeout = Duration::from_millis(self.settings.shutdown_timeout_ms.max(0) as u64);
        let _ = self.done.1.recv_timeout(timeout);
        self.killed.store(true, Ordering::Release);
        {
            let _g = self.lock.lock();
            self.cv.notify_all();
        }
        if h.join().is_err() {
            log::error!("RequestThrottler thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_always_submits() {
        assert_eq!(admission(0, true, true, 1_000_000), Admission::Submit);
        assert_eq!(admission(-3, true, false, 10), Admission::Submit);
    }

    #[test]
    fn stalls_at_the_limit_and_not_below() {
        assert_eq!(admission(5, true, false, 4), Admission::Submit);
        assert_eq!(admission(5, true, false, 5), Admission::Stall);
        assert_eq!(admission(5, true, false, 50), Admission::Stall);
    }

    #[test]
    fn stale_requests_are_dropped_only_when_asked_even_under_the_limit() {
        assert_eq!(admission(5, true, true, 0), Admission::Drop);
        assert_eq!(admission(5, true, true, 9), Admission::Drop);
        assert_eq!(admission(5, false, true, 0), Admission::Submit);
        assert_eq!(admission(5, false, true, 9), Admission::Stall);
    }

    fn cnxn(closed: bool, invalid: bool) -> Option<CnxnState> {
        Some(CnxnState { closed, invalid, session_timeout_ms: 4000 })
    }

    #[test]
    fn staleness() {
        let s = ThrottlerSettings::default();
        assert!(!is_stale(&s, op_code::CREATE, None, || 1_000_000), "no connection");
        assert!(!is_stale(&s, op_code::CREATE, cnxn(false, false), || 1_000_000), "no latency check by default");
        assert!(is_stale(&s, op_code::CREATE, cnxn(true, false), || 0));
        assert!(is_stale(&s, op_code::GET_DATA, cnxn(false, true), || 0));
        assert!(!is_stale(&s, op_code::CLOSE_SESSION, cnxn(true, true), || 0), "closeSession must clean up");
        let off = ThrottlerSettings { stale_connection_check: false, ..s.clone() };
        assert!(!is_stale(&off, op_code::CREATE, cnxn(true, true), || 0));
        let latency = ThrottlerSettings { stale_latency_check: true, ..s };
        assert!(!is_stale(&latency, op_code::CREATE, cnxn(false, false), || 4000));
        assert!(is_stale(&latency, op_code::CREATE, cnxn(false, false), || 4001));
    }

    #[test]
    fn throttled_ops_only_when_waited_too_long_and_throttlable() {
        assert!(!should_throttle_op(true, 0, 1_000_000), "0 turns it off");
        assert!(!should_throttle_op(true, 5, 5), "at the limit is not over it");
        assert!(should_throttle_op(true, 5, 6));
        assert!(!should_throttle_op(false, 5, 6), "pings and session changes are never throttled");
        let r = |t| Request::new(None, 1, 1, t, Vec::new(), Vec::new());
        assert!(r(op_code::CREATE).is_throttlable() && r(op_code::GET_DATA).is_throttlable() && r(op_code::SYNC).is_throttlable());
        for t in [op_code::PING, op_code::CREATE_SESSION, op_code::CLOSE_SESSION] {
            assert!(!r(t).is_throttlable(), "{}", op_code::name(t));
        }
    }

    #[test]
    fn defaults() {
        let d = ThrottlerSettings::default();
        assert_eq!((d.max_requests, d.stall_time_ms, d.drop_stale, d.shutdown_timeout_ms), (0, 100, true, 10_000));
    }
}
