//! `SyncRequestProcessor`: logs txns to disk and hands requests on only after the log is
//! flushed (group commit: a batch is fsynced once, then every request in it goes on).
//! Every `snapCount`/2 + random txns (or `snapSizeLimitInKb`/2 + random log bytes) it
//! rolls the log and takes a snapshot on a "Snapshot Thread" while requests keep
//! flowing. Runs on the thread `SyncThread:N`; in a standalone server
//! FinalRequestProcessor runs on this thread too. The thread owns the txn log: nothing
//! else writes it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, TryRecvError};

use crate::common::java_random::JavaRandom;
use crate::common::time;
use crate::server::persistence::FileTxnLog;
use crate::server::prep_request_processor::REQUEST_OF_DEATH;
use crate::server::request::Request;
use crate::server::request_processor::RequestProcessor;
use crate::server::zookeeper_server::ZooKeeperServer;
use crate::system_properties;

pub struct SyncRequestProcessor {
    zks: Arc<ZooKeeperServer>,
    next: Box<dyn RequestProcessor>,
    txn_log: FileTxnLog,
    max_batch_size: usize,
    snap_count: i64,
    snap_size_in_bytes: i64,
    rand_roll: i64,
    rand_size: i64,
    random: JavaRandom,
    log_count: i64,
}

impl SyncRequestProcessor {
    pub fn new(zks: Arc<ZooKeeperServer>, next: Box<dyn RequestProcessor>, txn_log: FileTxnLog) -> Self {
        let max_batch_size = system_properties::get_i64("zookeeper.maxBatchSize").unwrap_or(1000).max(1) as usize;
        // ZooKeeperServer.getSnapCount: at least 2.
        let snap_count = system_properties::get_i64("zookeeper.snapCount").unwrap_or(100_000).max(2);
        let snap_size_in_bytes = system_properties::get_i64("zookeeper.snapSizeLimitInKb").unwrap_or(4_194_304) * 1024;
        let mut p = SyncRequestProcessor {
            zks,
            next,
            txn_log,
            max_batch_size,
            snap_count,
            snap_size_in_bytes,
            rand_roll: 0,
            rand_size: 0,
            random: JavaRandom::new(time::current_elapsed_time()),
            log_count: 0,
        };
        p.reset_snapshot_stats();
        p
    }

    /// `resetSnapshotStats`: randomise the next snapshot point so that servers of an
    /// ensemble do not all snapshot at once.
    fn reset_snapshot_stats(&mut self) {
        let half = (self.snap_count / 2).max(1);
        self.rand_roll = (self.random.next_int() as i64).rem_euclid(half);
        if self.snap_size_in_bytes > 0 {
            self.rand_size = (self.random.next_int() as i64).rem_euclid((self.snap_size_in_bytes / 2).max(1));
        } else {
            self.rand_size = 0;
        }
    }

    fn should_snapshot(&self) -> bool {
        let log_size = self.txn_log.total_log_size() as i64;
        self.log_count > self.snap_count / 2 + self.rand_roll
            || (self.snap_size_in_bytes > 0 && log_size > self.snap_size_in_bytes / 2 + self.rand_size)
    }

    pub fn run(mut self, queue: Receiver<Request>) {
        let mut to_flush: Vec<Request> = Vec::new();
        loop {
            let si = if to_flush.is_empty() {
                match queue.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                match queue.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => {
                        // Nothing waiting: this is the end of the batch.
                        if let Err(e) = self.flush(&mut to_flush) {
                            self.fatal(e);
                            return;
                        }
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            };
            if si.r#type == REQUEST_OF_DEATH {
                break;
            }
            match self.append(&si) {
                Ok(true) => {
                    self.log_count += 1;
                    if self.should_snapshot() {
                        self.reset_snapshot_stats();
                        self.log_count = 0;
                        if let Err(e) = self.txn_log.roll_log() {
                            self.fatal(e);
                            return;
                        }
                        // ZKDatabase.rollLog/resetTxnCount: the size budget starts over with
                        // the new log (otherwise preallocated old files would trigger a
                        // roll and a snapshot on every following txn).
                        self.txn_log.set_total_log_size(0);
                        self.zks.start_snapshot_thread(false);
                    }
                }
                Ok(false) => {
                    // A read: with no writes waiting for the disk it can go straight on.
                    if to_flush.is_empty() {
                        self.next.process_request(si);
                        continue;
                    }
                }
                Err(e) => {
                    self.fatal(e);
                    return;
                }
            }
            to_flush.push(si);
            if to_flush.len() >= self.max_batch_size {
                if let Err(e) = self.flush(&mut to_flush) {
                    self.fatal(e);
                    return;
                }
            }
        }
        if let Err(e) = self.flush(&mut to_flush) {
            log::error!("Severe unrecoverable error, exiting: {e}");
        }
        let _ = self.txn_log.close();
        self.next.shutdown();
        // Wait briefly for a running snapshot so that shutdown leaves a complete file.
        for _ in 0..600 {
            if !self.zks.snapshot_in_progress.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log::info!("SyncRequestProcessor exited!");
    }

    /// `ZKDatabase.append`: only requests that carry a txn are logged.
    fn append(&mut self, si: &Request) -> std::io::Result<bool> {
        match (&si.hdr, &si.txn_bytes) {
            (Some(hdr), Some(bytes)) => self.txn_log.append_entry(hdr.zxid, hdr.r#type, bytes),
            (Some(hdr), None) => self.txn_log.append(hdr, si.txn.as_ref(), si.digest.as_ref()),
            (None, _) => Ok(false),
        }
    }

    /// Group commit: one flush+fsync for the batch, then every request goes on.
    fn flush(&mut self, to_flush: &mut Vec<Request>) -> std::io::Result<()> {
        if to_flush.is_empty() {
            return Ok(());
        }
        let start = time::current_elapsed_time();
        crate::server::fault_points::hit("sync.beforeFsync");
        self.txn_log.commit()?;
        crate::server::fault_points::hit("sync.afterFsync");
        let elapsed = time::current_elapsed_time() - start;
        self.zks.stats.record_sync(elapsed, to_flush.len());
        self.next.process_batch(to_flush);
        Ok(())
    }

    /// A txn log that cannot be written means acknowledged writes could be lost: like
    /// upstream (ExitCode.IO_ERROR_IN_SYNC... via the request processor listener), stop.
    fn fatal(&self, e: std::io::Error) {
        log::error!("Severe unrecoverable error, from thread : SyncThread:{}: {e}", self.zks.server_id);
        std::process::exit(crate::server::zookeeper_server_main::exit_code::UNEXPECTED_ERROR);
    }
}
