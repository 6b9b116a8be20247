//! The selector half of `NIOServerCnxnFactory`: plain client connections multiplexed on
//! `zookeeper.nio.numSelectorThreads` selector threads instead of two threads each.
//!
//! The accept thread stays `server_cnxn_factory`'s (upstream's AcceptThread): it applies
//! the connection limits, then hands each accepted socket to a selector thread in turn.
//! Each [`SelectorThread`](selector_thread::SelectorThread) owns its sockets outright:
//! it reads and parses their frames, submits the requests, writes their replies and
//! watch events, parks a throttled reader (`disableRecv`) and expires idle connections.
//! Other threads touch a connection only through its outgoing queue and
//! [`SelectorWaker`] (`requestInterestOpUpdate`), so no socket has two owners.
//!
//! Deliberate differences from upstream, each for 2-core machines:
//! - IO runs on the selector threads, as upstream does with `numWorkerThreads=0`; a
//!   worker hop per read costs a context switch that the parse it would offload does not
//!   pay back.
//! - Idle connections are expired by their selector thread on its one-second tick (the
//!   `expires_at` buckets `touch` keeps, printed by `dump`) instead of a
//!   `ConnnectionExpirer` thread over an `ExpiryQueue`.
//! - A closed connection's deregistration (its watches, under the tree's lock, which a
//!   snapshot may hold for a second) runs on one `NIOServerCxnFactory.Closer` thread, so
//!   a snapshot never stalls a selector.
//!
//! TLS and `client.portUnification` connections keep the threaded path: upstream serves
//! them through Netty, never through NIO.

pub mod nio_server_cnxn;
pub mod selector_thread;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::server::server_cnxn::{Outgoing, ServerCnxn, SharedStream};
use crate::server::util::epoll::EventFd;
use crate::server::zookeeper_server::ZooKeeperServer;

/// `zookeeper.nio.numSelectorThreads`.
pub const NUM_SELECTOR_THREADS: &str = "zookeeper.nio.numSelectorThreads";
/// `zookeeper.nio.numWorkerThreads`: read for the log line only (see the module notes).
pub const NUM_WORKER_THREADS: &str = "zookeeper.nio.numWorkerThreads";
/// `zookeeper.serverCnxnFactory`: naming the Netty factory keeps plain connections on
/// the threaded path (one reader and one writer thread each), which is what ours does
/// for the Netty-only TLS connections too.
pub const SERVER_CNXN_FACTORY: &str = "zookeeper.serverCnxnFactory";

/// Whether plain client connections go to selector threads (the default, as upstream's
/// default factory is NIO).
pub fn selectors_enabled() -> bool {
    match crate::system_properties::get(SERVER_CNXN_FACTORY) {
        Some(v) => !v.trim().ends_with("NettyServerCnxnFactory"),
        None => true,
    }
}

/// Upstream's default: the square root of half the cores, at least one ("32 cores sweet
/// spot seems to be 4 selector threads").
pub fn default_selector_threads(cores: usize) -> usize {
    ((cores as f64 / 2.0).sqrt() as usize).max(1)
}

/// A wake-up for one selector thread: the ids of connections with something new (output
/// queued, a session decided, a reader that may resume, a close).
#[derive(Clone)]
pub struct SelectorWaker {
    updates: Sender<u64>,
    wakeup: Arc<EventFd>,
}

impl SelectorWaker {
    pub fn request(&self, cnxn_id: u64) {
        if self.updates.send(cnxn_id).is_ok() {
            self.wakeup.wake();
        }
    }
}

/// A connection handed from the accept thread to its selector thread.
pub struct Accepted {
    pub stream: SharedStream,
    pub cnxn: Arc<ServerCnxn>,
    pub out: Receiver<Outgoing>,
    pub zks: Arc<ZooKeeperServer>,
}

struct Handle {
    accepted: Sender<Accepted>,
    waker: SelectorWaker,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
}

/// The selector threads of one client port, and the closer behind them.
pub struct Selectors {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stopped: Arc<AtomicBool>,
    closer: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Selectors {
    pub fn start(local: SocketAddr) -> io::Result<Selectors> {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let n = match crate::system_properties::get_i64(NUM_SELECTOR_THREADS) {
            Some(v) if v < 1 => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "numSelectorThreads must be at least 1"));
            }
            Some(v) => v.min(64) as usize,
            None => default_selector_threads(cores),
        };
        let sessionless = selector_thread::sessionless_cnxn_timeout();
        if crate::system_properties::get_i64(NUM_WORKER_THREADS).is_some_and(|w| w > 0) {
            log::info!("{NUM_WORKER_THREADS} is ignored: IO runs on the selector threads");
        }
        log::info!(
            "Configuring NIO connection handler with {}s sessionless connection timeout, {n} selector thread(s), no worker threads, and gathered writes.",
            sessionless / 1000
        );
        let stopped = Arc::new(AtomicBool::new(false));
        let (close_tx, close_rx) = unbounded::<(Arc<ServerCnxn>, Arc<ZooKeeperServer>)>();
        let closer = thread::Builder::new()
            .name(format!("NIOServerCxnFactory.Closer:{}", crate::server::server_cnxn::fmt_addr(&local)))
            .spawn(move || {
                for (cnxn, zks) in close_rx {
                    crate::server::server_cnxn_factory::close_cnxn(&cnxn, &zks);
                    cnxn.writer_exited();
                }
            })?;
        let mut handles = Vec::with_capacity(n);
        for id in 0..n {
            let (accepted_tx, accepted_rx) = unbounded();
            let (updates_tx, updates_rx) = unbounded();
            let wakeup = Arc::new(EventFd::new()?);
            let waker = SelectorWaker { updates: updates_tx, wakeup: wakeup.clone() };
            let st = selector_thread::SelectorThread::new(
                id,
                wakeup,
                accepted_rx,
                updates_rx,
                stopped.clone(),
                close_tx.clone(),
            )?;
            let thread = thread::Builder::new().name(format!("NIOServerCxnFactory.SelectorThread-{id}")).spawn(move || st.run())?;
            handles.push(Handle { accepted: accepted_tx, waker, thread: Mutex::new(Some(thread)) });
        }
        Ok(Selectors { handles, next: AtomicUsize::new(0), stopped, closer: Mutex::new(Some(closer)) })
    }

    /// The waker of the selector thread the next connection goes to; the connection
    /// must carry it before it is shared.
    pub fn next_waker(&self) -> (usize, SelectorWaker) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        (i, self.handles[i].waker.clone())
    }

    /// Hands a registered connection to selector thread `i`.
    pub fn hand_over(&self, i: usize, a: Accepted) -> io::Result<()> {
        let h = &self.handles[i];
        h.accepted.send(a).map_err(|_| io::Error::other("selector thread has stopped"))?;
        h.waker.wakeup.wake();
        Ok(())
    }

    /// Stops the selector threads (each closes its connections) and waits for them and
    /// the closer.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        for h in &self.handles {
            h.waker.wakeup.wake();
        }
        for h in &self.handles {
            let t = h.thread.lock().take();
            if let Some(t) = t {
                let _ = t.join();
            }
        }
        // The selector threads held the closer's senders; with them gone it finishes
        // what is queued and ends. (A CommandThread still answering holds one too; the
        // closer outlives the join then, and ends with it.)
        let t = self.closer.lock().take();
        if let Some(t) = t {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                thread::sleep(std::time::Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Selectors {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_selector_threads_follow_upstream() {
        assert_eq!(default_selector_threads(1), 1);
        assert_eq!(default_selector_threads(2), 1);
        assert_eq!(default_selector_threads(8), 2);
        assert_eq!(default_selector_threads(32), 4);
    }
}
