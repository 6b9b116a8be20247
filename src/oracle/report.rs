//! The oracle's report: one line per difference, "oracle unavailable" notices, and the
//! counters, written to the report file (or stderr) and kept in memory for callers.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::common::time::{civil_from_millis, current_wall_time};

/// Counters of one proxy run.
#[derive(Default)]
pub struct Counters {
    /// Client connections accepted.
    pub connections: AtomicU64,
    /// Client requests forwarded to both servers.
    pub requests_mirrored: AtomicU64,
    /// Client requests forwarded to the primary alone (no oracle for that connection).
    pub requests_primary_only: AtomicU64,
    /// Reply pairs (and connect-response pairs) compared.
    pub replies_compared: AtomicU64,
    /// Watch-event pairs matched.
    pub events_compared: AtomicU64,
    /// Differences reported.
    pub differences: AtomicU64,
    /// Comparisons given up because the pending map was full.
    pub dropped_comparisons: AtomicU64,
    /// Replies that could not be paired (their request was not tracked, or their pair
    /// was already reported missing, or the client closed before both sides answered).
    pub uncompared: AtomicU64,
    /// Connections on which the oracle could not be used.
    pub oracle_unavailable: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub connections: u64,
    pub requests_mirrored: u64,
    pub requests_primary_only: u64,
    pub replies_compared: u64,
    pub events_compared: u64,
    pub differences: u64,
    pub dropped_comparisons: u64,
    pub uncompared: u64,
    pub oracle_unavailable: u64,
}

impl std::fmt::Display for CountersSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections={} requests_mirrored={} requests_primary_only={} replies_compared={} events_compared={} \
             differences={} dropped_comparisons={} uncompared={} oracle_unavailable={}",
            self.connections,
            self.requests_mirrored,
            self.requests_primary_only,
            self.replies_compared,
            self.events_compared,
            self.differences,
            self.dropped_comparisons,
            self.uncompared,
            self.oracle_unavailable
        )
    }
}

/// Lines kept in memory for [`Report::lines`]; older ones are only in the file.
const KEPT_LINES: usize = 10_000;

pub struct Report {
    pub counters: Counters,
    out: Mutex<Box<dyn Write + Send>>,
    kept: Mutex<VecDeque<String>>,
}

fn timestamp() -> String {
    let (y, mo, d, h, mi, s, ms, _) = civil_from_millis(current_wall_time());
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02},{ms:03}")
}

impl Report {
    pub fn new(out: Box<dyn Write + Send>) -> Report {
        Report { counters: Counters::default(), out: Mutex::new(out), kept: Mutex::new(VecDeque::new()) }
    }

    fn emit(&self, line: String) {
        {
            let mut out = self.out.lock();
            // A report that cannot be written must not take the proxy down with it.
            if let Err(e) = writeln!(out, "{} {line}", timestamp()).and_then(|_| out.flush()) {
                log::error!("cannot write the oracle report: {e}");
            }
        }
        let mut kept = self.kept.lock();
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }

    /// Reports one difference (a line starting `DIFF`).
    pub fn difference(&self, line: String) {
        self.counters.differences.fetch_add(1, Ordering::Relaxed);
        log::warn!("{line}");
        self.emit(line);
    }

    /// Reports that the oracle could not be used for a connection (a line starting
    /// `ORACLE_UNAVAILABLE`); the client is still served by the primary.
    pub fn oracle_unavailable(&self, cnx: u64, reason: &str) {
        self.counters.oracle_unavailable.fetch_add(1, Ordering::Relaxed);
        let line = format!("ORACLE_UNAVAILABLE cnx={cnx} oracle unavailable: {reason}");
        log::warn!("{line}");
        self.emit(line);
    }

    /// Writes the counters (a line starting `COUNTERS`).
    pub fn counters_line(&self) {
        let line = format!("COUNTERS {}", self.snapshot());
        log::info!("{line}");
        self.emit(line);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountersSnapshot {
            connections: g(&c.connections),
            requests_mirrored: g(&c.requests_mirrored),
            requests_primary_only: g(&c.requests_primary_only),
            replies_compared: g(&c.replies_compared),
            events_compared: g(&c.events_compared),
            differences: g(&c.differences),
            dropped_comparisons: g(&c.dropped_comparisons),
            uncompared: g(&c.uncompared),
            oracle_unavailable: g(&c.oracle_unavailable),
        }
    }

    /// The report lines written so far (the last [`KEPT_LINES`]), without timestamps.
    pub fn lines(&self) -> Vec<String> {
        self.kept.lock().iter().cloned().collect()
    }
}
