//! `ServerStats`: the counters `srvr`, `stat` and `mntr` print.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct ServerStats {
    pub packets_received: AtomicU64,
    /// Shared with every connection, which counts what it sends.
    pub packets_sent: std::sync::Arc<SentStats>,
    min_latency: AtomicI64,
    max_latency: AtomicI64,
    total_latency: AtomicI64,
    count: AtomicI64,
    pub fsync_threshold_exceed_count: AtomicU64,
    pub auth_failed_count: AtomicU64,
    /// `ServerMetrics.READ_LATENCY` (`readlatency`): requests without a txn.
    pub read_latency: Summary,
    /// `ServerMetrics.UPDATE_LATENCY` (`updatelatency`): requests with a txn.
    pub update_latency: Summary,
    pub sync: SyncStats,
}

/// Packets sent (derefs to the counter) and `BufferStats` of the client responses:
/// `ServerCnxn.sendResponse` records each response's length without the 4-byte prefix.
pub struct SentStats {
    count: AtomicU64,
    pub last_size: AtomicI64,
    pub max_size: AtomicI64,
    pub min_size: AtomicI64,
}

impl Default for SentStats {
    fn default() -> Self {
        SentStats { count: AtomicU64::new(0), last_size: AtomicI64::new(-1), max_size: AtomicI64::new(-1), min_size: AtomicI64::new(-1) }
    }
}

impl std::ops::Deref for SentStats {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        &self.count
    }
}

impl SentStats {
    /// `BufferStats.setLastBufferSize`.
    pub fn update_client_response_size(&self, size: i64) {
        self.last_size.store(size, Ordering::Relaxed);
        self.max_size.fetch_max(size, Ordering::Relaxed);
        let min = self.min_size.load(Ordering::Relaxed);
        if min < 0 || size < min {
            self.min_size.store(size, Ordering::Relaxed);
        }
    }

    pub fn reset_sizes(&self) {
        self.last_size.store(-1, Ordering::Relaxed);
        self.max_size.store(-1, Ordering::Relaxed);
        self.min_size.store(-1, Ordering::Relaxed);
    }
}

/// `AvgMinMaxCounter`: count, sum, min, max of data points.
pub struct Summary {
    count: AtomicI64,
    total: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
}

impl Default for Summary {
    fn default() -> Self {
        Summary::new()
    }
}

impl Summary {
    /// Usable in statics (process-wide metrics, like upstream's `ServerMetrics`).
    pub const fn new() -> Self {
        Summary { count: AtomicI64::new(0), total: AtomicI64::new(0), min: AtomicI64::new(i64::MAX), max: AtomicI64::new(i64::MIN) }
    }

    pub fn add(&self, v: i64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(v, Ordering::Relaxed);
        self.min.fetch_min(v, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
        self.min.store(i64::MAX, Ordering::Relaxed);
        self.max.store(i64::MIN, Ordering::Relaxed);
    }

    pub fn count(&self) -> i64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> i64 {
        self.total.load(Ordering::Relaxed)
    }

    /// 0 when empty, like `getMin`.
    pub fn min(&self) -> i64 {
        let m = self.min.load(Ordering::Relaxed);
        if m == i64::MAX { 0 } else { m }
    }

    /// 0 when empty, like `getMax`.
    pub fn max(&self) -> i64 {
        let m = self.max.load(Ordering::Relaxed);
        if m == i64::MIN { 0 } else { m }
    }

    /// `getAvg`: the mean rounded to 4 decimals (half up), 0.0 when empty.
    pub fn avg(&self) -> f64 {
        let c = self.count();
        if c == 0 {
            return 0.0;
        }
        let avg = self.total() as f64 / c as f64;
        (avg * 10_000.0).round() / 10_000.0
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            packets_received: AtomicU64::new(0),
            packets_sent: std::sync::Arc::new(SentStats::default()),
            min_latency: AtomicI64::new(i64::MAX),
            max_latency: AtomicI64::new(0),
            total_latency: AtomicI64::new(0),
            count: AtomicI64::new(0),
            fsync_threshold_exceed_count: AtomicU64::new(0),
            auth_failed_count: AtomicU64::new(0),
            read_latency: Summary::default(),
            update_latency: Summary::default(),
            sync: SyncStats::default(),
        }
    }
}

/// fsync bookkeeping of the sync processor (`fsynctime`, batch sizes in `mntr`).
#[derive(Default)]
pub struct SyncStats {
    pub count: AtomicU64,
    pub total_ms: AtomicU64,
    pub max_ms: AtomicU64,
    pub last_batch: AtomicU64,
}

impl ServerStats {
    /// One group commit: how long the flush+fsync took and how many requests it covered.
    pub fn record_sync(&self, elapsed_ms: i64, batch: usize) {
        let ms = elapsed_ms.max(0) as u64;
        self.sync.count.fetch_add(1, Ordering::Relaxed);
        self.sync.total_ms.fetch_add(ms, Ordering::Relaxed);
        self.sync.max_ms.fetch_max(ms, Ordering::Relaxed);
        self.sync.last_batch.store(batch as u64, Ordering::Relaxed);
    }

    pub fn update_latency(&self, lat: i64) {
        self.total_latency.fetch_add(lat, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.min_latency.fetch_min(lat, Ordering::Relaxed);
        self.max_latency.fetch_max(lat, Ordering::Relaxed);
    }

    /// `ServerStats.updateLatency(request, now)`: the request latency, and the read or
    /// update latency metric (`is_update`: the request carried a txn header).
    pub fn update_latency_for(&self, lat: i64, is_update: bool) {
        if lat < 0 {
            return;
        }
        self.update_latency(lat);
        if is_update {
            self.update_latency.add(lat);
        } else {
            self.read_latency.add(lat);
        }
    }

    pub fn min_latency(&self) -> i64 {
        let m = self.min_latency.load(Ordering::Relaxed);
        if m == i64::MAX {
            0
        } else {
            m
        }
    }

    pub fn max_latency(&self) -> i64 {
        self.max_latency.load(Ordering::Relaxed)
    }

    /// Average latency as upstream prints it (a double, `%.4f`-free `toString`).
    pub fn avg_latency(&self) -> f64 {
        let c = self.count.load(Ordering::Relaxed);
        if c == 0 {
            0.0
        } else {
            // AvgMinMaxCounter.getAvg: BigDecimal scale 4, HALF_UP.
            let avg = self.total_latency.load(Ordering::Relaxed) as f64 / c as f64;
            (avg * 10_000.0).round() / 10_000.0
        }
    }

    pub fn reset_latency(&self) {
        self.total_latency.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.min_latency.store(i64::MAX, Ordering::Relaxed);
        self.max_latency.store(0, Ordering::Relaxed);
    }

    pub fn reset_request_counters(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
    }

    pub fn reset(&self) {
        self.reset_latency();
        self.reset_request_counters();
        self.packets_sent.reset_sizes();
        // ServerMetrics.resetAll
        self.read_latency.reset();
        self.update_latency.reset();
    }

    pub fn update_client_response_size(&self, size: i64) {
        self.packets_sent.update_client_response_size(size);
    }
}
