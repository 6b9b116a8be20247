//! The election connection pool: upstream's `ThreadPoolExecutor(3, max, 60 s,
//! SynchronousQueue)` with core threads allowed to time out. Outgoing connection
//! attempts (`QuorumConnectionReqThread`) and incoming handshakes
//! (`QuorumConnectionReceiverThread`) run here, so one slow or silent peer never holds up
//! the others. Threads are named `QuorumConnectionThread-[myid=N]-k`.
//!
//! A task is handed straight to an idle thread (a rendezvous, like the SynchronousQueue);
//! with none idle a new thread is started up to the maximum; beyond it the task is
//! refused, as upstream's executor rejects it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;

type Task = Box<dyn FnOnce() + Send + 'static>;

/// Upstream's keep-alive of idle pool threads.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

pub struct ConnectionExecutor {
    name_prefix: String,
    max_threads: usize,
    keep_alive: Duration,
    /// None once shut down: idle threads see the channel close and exit.
    handoff: Mutex<Option<Sender<Task>>>,
    rx: Receiver<Task>,
    live: Arc<AtomicUsize>,
    next_index: AtomicUsize,
}

/// The task could not be run (pool full or shut down).
#[derive(Debug)]
pub struct Rejected(pub String);

impl ConnectionExecutor {
    pub fn new(my_sid: i64, max_threads: usize) -> ConnectionExecutor {
        Self::with_keep_alive(my_sid, max_threads, KEEP_ALIVE)
    }

    pub fn with_keep_alive(my_sid: i64, max_threads: usize, keep_alive: Duration) -> ConnectionExecutor {
        let (tx, rx) = bounded::<Task>(0);
        ConnectionExecutor {
            name_prefix: format!("QuorumConnectionThread-[myid={my_sid}]-"),
            max_threads: max_threads.max(1),
            keep_alive,
            handoff: Mutex::new(Some(tx)),
            rx,
            live: Arc::new(AtomicUsize::new(0)),
            next_index: AtomicUsize::new(1),
        }
    }

    /// Runs `task` on an idle pool thread, or on a new one.
    pub fn execute(&self, task: impl FnOnce() + Send + 'static) -> Result<(), Rejected> {
        let guard = self.handoff.lock();
        let Some(tx) = guard.as_ref() else {
            return Err(Rejected("executor is shut down".into()));
        };
        let task: Task = Box::new(task);
        let task = match tx.try_send(task) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Full(t)) | Err(TrySendError::Disconnected(t)) => t,
        };
        // Reserve a slot before spawning so concurrent callers cannot overshoot.
        let reserved = self
            .live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| if n < self.max_threads { Some(n + 1) } else { None });
        if reserved.is_err() {
            return Err(Rejected(format!("all {} connection threads are busy", self.max_threads)));
        }
        let rx = self.rx.clone();
        let live = self.live.clone();
        let keep_alive = self.keep_alive;
        let name = format!("{}{}", self.name_prefix, self.next_index.fetch_add(1, Ordering::Relaxed));
        let spawned = thread::Builder::new().name(name).spawn(move || {
            task();
            loop {
                match rx.recv_timeout(keep_alive) {
                    Ok(t) => t(),
                    Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            live.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejected(format!("cannot start a thread: {e}")));
        }
        Ok(())
    }

    /// Threads alive in the pool.
    pub fn thread_count(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Refuses new tasks; idle threads exit now, busy ones after their task.
    pub fn shutdown(&self) {
        self.handoff.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait_until(f: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < end, "condition not reached");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn reuses_idle_threads_bounds_and_times_out() {
        let pool = ConnectionExecutor::with_keep_alive(7, 2, Duration::from_millis(300));
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let d = done_tx.clone();
        pool.execute(move || d.send(thread::current().name().unwrap_or("").to_owned()).unwrap()).unwrap();
        let first = done_rx.recv().unwrap();
        assert_eq!(first, "QuorumConnectionThread-[myid=7]-1");
        // The idle thread takes the next task.
        wait_until(|| pool.thread_count() == 1);
        thread::sleep(Duration::from_millis(20));
        let d = done_tx.clone();
        pool.execute(move || d.send(thread::current().name().unwrap_or("").to_owned()).unwrap()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), first);
        // Two blocked tasks fill the pool; a third is refused.
        let (gate_tx, gate_rx) = crossbeam_channel::unbounded::<()>();
        for _ in 0..2 {
            let g = gate_rx.clone();
            pool.execute(move || {
                let _ = g.recv();
            })
            .unwrap();
        }
        assert!(pool.execute(|| {}).is_err());
        drop(gate_tx);
        // Idle threads time out.
        wait_until(|| pool.thread_count() == 0);
        pool.shutdown();
        assert!(pool.execute(|| {}).is_err());
    }
}
