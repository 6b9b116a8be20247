//! `DatadirCleanupManager`: the autopurge task. With `autopurge.purgeInterval` > 0
//! (hours) a daemon thread named "PurgeTask" runs [`purge_txn_log::purge`] right away
//! and then every interval, keeping `autopurge.snapRetainCount` snapshots.
//!
//! Test aid (not an upstream setting): the system property
//! `zookeeper.autopurge.purgeIntervalMs`, when set to a positive number, replaces the
//! period by that many milliseconds. The task is still only scheduled when
//! `autopurge.purgeInterval` > 0, as upstream.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::server::purge_txn_log;
use crate::system_properties;

/// The system property that overrides the purge period (milliseconds), for tests.
pub const PURGE_INTERVAL_MS_PROPERTY: &str = "zookeeper.autopurge.purgeIntervalMs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeTaskStatus {
    NotStarted,
    Started,
    Completed,
}

pub struct DatadirCleanupManager {
    snap_dir: PathBuf,
    data_log_dir: PathBuf,
    snap_retain_count: i32,
    purge_interval: i32,
    status: PurgeTaskStatus,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DatadirCleanupManager {
    pub fn new(snap_dir: PathBuf, data_log_dir: PathBuf, snap_retain_count: i32, purge_interval: i32) -> Self {
        log::info!("autopurge.snapRetainCount set to {snap_retain_count}");
        log::info!("autopurge.purgeInterval set to {purge_interval}");
        DatadirCleanupManager {
            snap_dir,
            data_log_dir,
            snap_retain_count,
            purge_interval,
            status: PurgeTaskStatus::NotStarted,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// The period between two purges.
    pub fn period(&self) -> Duration {
        match system_properties::get_i64(PURGE_INTERVAL_MS_PROPERTY) {
            Some(ms) if ms > 0 => Duration::from_millis(ms as u64),
            _ => Duration::from_secs(self.purge_interval.max(0) as u64 * 3600),
        }
    }

    /// Schedules the purge task (at a fixed rate, first run immediately). The thread
    /// runs until [`shutdown`](Self::shutdown); dropping the manager does not stop it.
    pub fn start(&mut self) {
        if self.status == PurgeTaskStatus::Started {
            log::warn!("Purge task is already running.");
            return;
        }
        if self.purge_interval <= 0 {
            log::info!("Purge task is not scheduled.");
            return;
        }
        let period = self.period();
        let (logs, snaps, count) = (self.data_log_dir.clone(), self.snap_dir.clone(), self.snap_retain_count);
        let stop = self.stop.clone();
        let spawned = std::thread::Builder::new().name("PurgeTask".into()).spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                log::info!("Purge task started.");
                if let Err(e) = purge_txn_log::purge(&logs, &snaps, count) {
                    log::error!("Error occurred while purging. {e}");
                }
                log::info!("Purge task completed.");
                next += period;
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    std::thread::park_timeout(next - now);
                }
            }
        });
        match spawned {
            Ok(h) => {
                self.thread = Some(h);
                self.status = PurgeTaskStatus::Started;
            }
            Err(e) => log::error!("Unable to start the purge task: {e}"),
        }
    }

    pub fn shutdown(&mut self) {
        if self.status == PurgeTaskStatus::Started {
            log::info!("Shutting down purge task.");
            self.stop.store(true, Ordering::SeqCst);
            if let Some(h) = self.thread.take() {
                h.thread().unpark();
            }
            self.status = PurgeTaskStatus::Completed;
        } else {
            log::warn!("Purge task not started. Ignoring shutdown!");
        }
    }

    pub fn purge_task_status(&self) -> PurgeTaskStatus {
        self.status
    }

    pub fn snap_dir(&self) -> &PathBuf {
        &self.snap_dir
    }

    pub fn data_log_dir(&self) -> &PathBuf {
        &self.data_log_dir
    }

    pub fn purge_interval(&self) -> i32 {
        self.purge_interval
    }

    pub fn snap_retain_count(&self) -> i32 {
        self.snap_retain_count
    }
}
