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

/// `AvgMinMaxCounter` / `AvgMinMaxPercentileCounter`: count, sum, min, max of data
/// points, and a uniform sample of them for percentiles.
pub struct Summary {
    count: AtomicI64,
    total: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
    sample: parking_lot::Mutex<Reservoir>,
}

/// `ResettableUniformReservoir`: the first 4,096 points, then each later point replaces
/// a random slot with probability 4096/n (Vitter's algorithm R), so the sample stays
/// uniform over everything since the last reset. Filled lazily: a summary never
/// updated holds nothing.
struct Reservoir {
    values: Vec<i64>,
    seen: u64,
    rng: u64,
}

const RESERVOIR_SIZE: usize = 4096;

impl Reservoir {
    const fn new() -> Reservoir {
        Reservoir { values: Vec::new(), seen: 0, rng: 0x9E37_79B9_7F4A_7C15 }
    }

    fn update(&mut self, v: i64) {
        self.seen += 1;
        if self.values.len() < RESERVOIR_SIZE {
            self.values.push(v);
            return;
        }
        // xorshift64*: statistical quality is all a sample needs.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % self.seen;
        if (r as usize) < RESERVOIR_SIZE {
            self.values[r as usize] = v;
        }
    }
}

/// Dropwizard's `UniformSnapshot.getValue` over sorted values: linear interpolation at
/// position q·(n+1), clamped to the ends.
pub fn snapshot_quantile(sorted: &[i64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q * (sorted.len() + 1) as f64;
    let index = pos as usize;
    if index < 1 {
        return sorted[0] as f64;
    }
    if index >= sorted.len() {
        return sorted[sorted.len() - 1] as f64;
    }
    let lower = sorted[index - 1] as f64;
    let upper = sorted[index] as f64;
    lower + (pos - pos.floor()) * (upper - lower)
}

impl Default for Summary {
    fn default() -> Self {
        Summary::new()
    }
}

impl Summary {
    /// Usable in statics (process-wide metrics, like upstream's `ServerMetrics`).
    pub const fn new() -> Self {
        Summary {
            count: AtomicI64::new(0),
            total: AtomicI64::new(0),
            min: AtomicI64::new(i64::MAX),
            max: AtomicI64::new(i64::MIN),
            sample: parking_lot::const_mutex(Reservoir::new()),
        }
    }

    pub fn add(&self, v: i64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(v, Ordering::Relaxed);
        self.min.fetch_min(v, Ordering::Relaxed);
        self.max.fetch_max(v, Ordering::Relaxed);
        self.sample.lock().update(v);
    }

    pub fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
        self.min.store(i64::MAX, Ordering::Relaxed);
        self.max.store(i64::MIN, Ordering::Relaxed);
        *self.sample.lock() = Reservoir::new();
    }

    /// The sampled points, sorted (`getSnapshot`).
    pub fn sorted_sample(&self) -> Vec<i64> {
        let mut v = self.sample.lock().values.clone();
        v.sort_unstable();
        v
    }

    /// `p50_`, `p95_`, `p99_`, `p999_` as `mntr` prints them: each quantile of the
    /// sample rounded half up (`Math.round`).
    pub fn percentiles(&self) -> [(&'static str, i64); 4] {
        let s = self.sorted_sample();
        let q = |x: f64| (snapshot_quantile(&s, x) + 0.5).floor() as i64;
        [("p50", q(0.5)), ("p95", q(0.95)), ("p99", q(0.99)), ("p999", q(0.999))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_as_dropwizard() {
        let s = Summary::new();
        assert_eq!(s.percentiles(), [("p50", 0), ("p95", 0), ("p99", 0), ("p999", 0)]);
        for v in (1..=100).rev() {
            s.add(v);
        }
        // positions q·101: 50.5 → 50.5, 95.95 → 95.95, 99.99 → 99.99, past the end → 100
        assert_eq!(s.percentiles(), [("p50", 51), ("p95", 96), ("p99", 100), ("p999", 100)]);
        s.reset();
        assert!(s.sorted_sample().is_empty());
        s.add(7);
        assert_eq!(s.percentiles(), [("p50", 7), ("p95", 7), ("p99", 7), ("p999", 7)]);
    }

    #[test]
    fn the_sample_stays_bounded_and_uniform() {
        let s = Summary::new();
        for v in 0..200_000 {
            s.add(v);
        }
        let sample = s.sorted_sample();
        assert_eq!(sample.len(), RESERVOIR_SIZE);
        let p50 = s.percentiles()[0].1;
        assert!((90_000..110_000).contains(&p50), "median of a uniform 0..200000 sample: {p50}");
        // Points from the whole range, not only the first 4,096.
        assert!(*sample.last().unwrap_or(&0) > 150_000);
    }
}
