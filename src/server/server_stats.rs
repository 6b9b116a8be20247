//! `ServerStats`: the counters `srvr`, `stat` and `mntr` print.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct ServerStats {
    pub packets_received: AtomicU64,
    pub packets_sent: std::sync::Arc<AtomicU64>,
    min_latency: AtomicI64,
    max_latency: AtomicI64,
    total_latency: AtomicI64,
    count: AtomicI64,
    pub fsync_threshold_exceed_count: AtomicU64,
    pub auth_failed_count: AtomicU64,
    pub last_client_response_size: AtomicI64,
    pub max_client_response_size: AtomicI64,
    pub min_client_response_size: AtomicI64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            packets_received: AtomicU64::new(0),
            packets_sent: std::sync::Arc::new(AtomicU64::new(0)),
            min_latency: AtomicI64::new(i64::MAX),
            max_latency: AtomicI64::new(0),
            total_latency: AtomicI64::new(0),
            count: AtomicI64::new(0),
            fsync_threshold_exceed_count: AtomicU64::new(0),
            auth_failed_count: AtomicU64::new(0),
            last_client_response_size: AtomicI64::new(-1),
            max_client_response_size: AtomicI64::new(-1),
            min_client_response_size: AtomicI64::new(-1),
        }
    }
}

impl ServerStats {
    pub fn update_latency(&self, lat: i64) {
        self.total_latency.fetch_add(lat, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.min_latency.fetch_min(lat, Ordering::Relaxed);
        self.max_latency.fetch_max(lat, Ordering::Relaxed);
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
        self.last_client_response_size.store(-1, Ordering::Relaxed);
        self.max_client_response_size.store(-1, Ordering::Relaxed);
        self.min_client_response_size.store(-1, Ordering::Relaxed);
    }

    pub fn update_client_response_size(&self, size: i64) {
        self.last_client_response_size.store(size, Ordering::Relaxed);
        self.max_client_response_size.fetch_max(size, Ordering::Relaxed);
        let min = self.min_client_response_size.load(Ordering::Relaxed);
        if min < 0 || size < min {
            self.min_client_response_size.store(size, Ordering::Relaxed);
        }
    }
}
