//! `WorkerService`: a pool of worker threads that runs scheduled work (upstream
//! `server/WorkerService.java`).
//!
//! Only the "assignable" flavour is ported, the one the CommitProcessor uses: one
//! single-thread queue per worker, and a request goes to worker `id mod n`, so all the
//! work scheduled under one id (a session) runs in the order it was scheduled. The
//! non-assignable flavour (one shared N-thread queue) serves upstream's NIO socket
//! layer only, which has no counterpart here. With 0 threads, `schedule` runs the work
//! on the caller's thread, as upstream does.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// A unit of work (`WorkerService.WorkRequest`).
pub trait WorkRequest: Send {
    fn do_work(&mut self);

    /// Called instead of (or after a failed) `do_work` when the service is stopped or
    /// the work could not run.
    fn cleanup(&mut self) {}
}

pub struct WorkerService {
    /// One queue per worker; empty when the work runs on the caller's thread.
    workers: Vec<Sender<Box<dyn WorkRequest>>>,
    threads: Vec<JoinHandle<()>>,
    stopped: Arc<AtomicBool>,
    /// Disconnected once every worker thread has left its loop (each holds a sender).
    exited: Receiver<()>,
}

impl WorkerService {
    /// Starts `num_threads` assignable workers named `<name>Thread-<i>` (i from 1), like
    /// upstream's thread factory for an assignable service. `num_threads <= 0`: no
    /// threads; the work runs where it is scheduled.
    pub fn new(name: &str, num_threads: i32) -> std::io::Result<WorkerService> {
        let stopped = Arc::new(AtomicBool::new(false));
        let (exit_tx, exited) = crossbeam_channel::bounded::<()>(0);
        let mut workers = Vec::new();
        let mut threads = Vec::new();
        for i in 1..=num_threads.max(0) {
            let (tx, rx) = crossbeam_channel::unbounded::<Box<dyn WorkRequest>>();
            let worker_stopped = stopped.clone();
            let exit_tx = exit_tx.clone();
            let spawned = std::thread::Builder::new().name(format!("{name}Thread-{i}")).spawn(move || {
                let _exit = exit_tx;
                while let Ok(w) = rx.recv() {
                    run_scheduled(w, &worker_stopped);
                }
            });
            match spawned {
                Ok(t) => {
                    workers.push(tx);
                    threads.push(t);
                }
                Err(e) => {
                    // Let the ones already started leave before reporting the failure.
                    stopped.store(true, Ordering::Release);
                    drop(workers);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(WorkerService { workers, threads, stopped, exited })
    }

    pub fn num_workers(&self) -> usize {
        self.workers.len()
    }

    /// The worker that `id` maps to (`((id % n) + n) % n`, so negative ids map too).
    pub fn worker_for(id: i64, n: usize) -> usize {
        let n = n as i64;
        (((id % n) + n) % n) as usize
    }

    /// Runs `w` on the worker assigned to `id`, or right here without workers. A stopped
    /// service (or a worker that is gone) only cleans the work up.
    pub fn schedule(&self, mut w: Box<dyn WorkRequest>, id: i64) {
        if self.stopped.load(Ordering::Acquire) {
            w.cleanup();
            return;
        }
        if self.workers.is_empty() {
            run_scheduled(w, &self.stopped);
            return;
        }
        let worker = &self.workers[Self::worker_for(id, self.workers.len())];
        if let Err(e) = worker.send(w) {
            log::warn!("ExecutorService rejected execution");
            let mut w = e.into_inner();
            w.cleanup();
        }
    }

    /// `stop`: no new work runs; work already queued is cleaned up, not run.
    pub fn stop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        // Closing the queues lets each worker leave once it has emptied its own.
        self.workers.clear();
    }

    /// `join`: waits up to `timeout` for the workers to finish what they are running.
    /// Returns false when some did not; those threads are left to end on their own
    /// (upstream interrupts them with shutdownNow, which has no equivalent for a thread
    /// inside arbitrary code).
    pub fn join(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // All senders dropping (each worker holds one) is the signal; nothing is sent.
        let all_exited = loop {
            match self.exited.recv_deadline(deadline) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Disconnected) => break true,
                Err(RecvTimeoutError::Timeout) => break false,
            }
        };
        if all_exited {
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        } else {
            log::warn!("Worker threads did not finish within {} ms; leaving them", timeout.as_millis());
            self.threads.clear();
        }
        all_exited
    }
}

/// `ScheduledWorkRequest.run`: work queued before a stop is only cleaned up; a panic in
/// the work is logged and the work cleaned up, and the worker goes on.
fn run_scheduled(mut w: Box<dyn WorkRequest>, stopped: &AtomicBool) {
    if stopped.load(Ordering::Acquire) {
        w.cleanup();
        return;
    }
    if catch_unwind(AssertUnwindSafe(|| w.do_work())).is_err() {
        log::warn!("Unexpected exception");
        w.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    struct Push {
        id: i64,
        seen: Arc<Mutex<Vec<(String, i64)>>>,
        cleaned: Arc<Mutex<Vec<i64>>>,
        panic: bool,
    }

    impl WorkRequest for Push {
        fn do_work(&mut self) {
            if self.panic {
                panic!("boom");
            }
            let name = std::thread::current().name().unwrap_or("").to_string();
            self.seen.lock().push((name, self.id));
        }
        fn cleanup(&mut self) {
            self.cleaned.lock().push(self.id);
        }
    }

    fn push(id: i64, seen: &Arc<Mutex<Vec<(String, i64)>>>, cleaned: &Arc<Mutex<Vec<i64>>>) -> Box<Push> {
        Box::new(Push { id, seen: seen.clone(), cleaned: cleaned.clone(), panic: false })
    }

    #[test]
    fn ids_map_to_fixed_workers_in_order() {
        assert_eq!(WorkerService::worker_for(5, 3), 2);
        assert_eq!(WorkerService::worker_for(-1, 3), 2, "negative ids map into range");
        assert_eq!(WorkerService::worker_for(i64::MIN, 4), 0);
        let mut ws = WorkerService::new("TestWork", 3).expect("start");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cleaned = Arc::new(Mutex::new(Vec::new()));
        for i in 0..30 {
            ws.schedule(push(i, &seen, &cleaned), i % 3);
        }
        // Work still queued at stop() is cleaned up, not run: let it all run first.
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().len() < 30 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        ws.stop();
        assert!(ws.join(Duration::from_secs(5)));
        let seen = seen.lock();
        assert_eq!(seen.len(), 30);
        for id in 0..3 {
            let mine: Vec<i64> = seen.iter().filter(|(_, i)| i % 3 == id).map(|(_, i)| *i).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "in order per id: {mine:?}");
            let names: std::collections::HashSet<&String> = seen.iter().filter(|(_, i)| i % 3 == id).map(|(n, _)| n).collect();
            assert_eq!(names.len(), 1, "one thread per id");
            let n = names.into_iter().next().cloned().unwrap_or_default();
            assert_eq!(n, format!("TestWorkThread-{}", id + 1));
        }
    }

    #[test]
    fn no_threads_runs_on_the_caller() {
        let ws = WorkerService::new("TestWork", 0).expect("start");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cleaned = Arc::new(Mutex::new(Vec::new()));
        ws.schedule(push(7, &seen, &cleaned), 7);
        let me = std::thread::current().name().unwrap_or("").to_string();
        assert_eq!(*seen.lock(), vec![(me, 7)]);
    }

    #[test]
    fn stopped_and_failed_work_is_cleaned_up() {
        let mut ws = WorkerService::new("TestWork", 1).expect("start");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cleaned = Arc::new(Mutex::new(Vec::new()));
        ws.schedule(Box::new(Push { id: 1, seen: seen.clone(), cleaned: cleaned.clone(), panic: true }), 0);
        ws.schedule(push(2, &seen, &cleaned), 0);
        ws.stop();
        ws.schedule(push(3, &seen, &cleaned), 0);
        assert!(ws.join(Duration::from_secs(5)));
        let cleaned = cleaned.lock();
        assert!(cleaned.contains(&1), "a panicking work is cleaned up");
        assert!(cleaned.contains(&3), "work scheduled after stop is cleaned up");
    }

    struct Sleep(Duration);
    impl WorkRequest for Sleep {
        fn do_work(&mut self) {
            std::thread::sleep(self.0);
        }
    }

    #[test]
    fn join_gives_up_after_its_timeout() {
        let mut ws = WorkerService::new("TestWork", 2).expect("start");
        ws.schedule(Box::new(Sleep(Duration::from_millis(1500))), 0);
        std::thread::sleep(Duration::from_millis(50));
        ws.stop();
        let t = Instant::now();
        assert!(!ws.join(Duration::from_millis(200)));
        assert!(t.elapsed() < Duration::from_millis(1000), "returned at its timeout: {:?}", t.elapsed());
        let mut ws = WorkerService::new("TestWork", 2).expect("start");
        ws.schedule(Box::new(Sleep(Duration::from_millis(100))), 1);
        std::thread::sleep(Duration::from_millis(20));
        ws.stop();
        assert!(ws.join(Duration::from_secs(5)), "a short work finishes within the timeout");
    }
}
