//! Latency recording: an HDR histogram of microseconds per recording thread, merged at
//! the end of a run.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Anything slower than this is clamped: a minute-long request is a stall, and the
/// report flags it through the error count or `max_us` anyway.
const HIGHEST_US: u64 = 60_000_000;

/// Percentiles of one run, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

pub struct LatencyHistogram {
    h: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // 3 significant digits: 0.1 % resolution at every magnitude, ~200 KiB per
        // histogram, so one per thread costs nothing worth counting.
        let h = match Histogram::new_with_bounds(1, HIGHEST_US, 3) {
            Ok(h) => h,
            // The bounds are constants that satisfy the documented constraints.
            Err(e) => unreachable!("histogram bounds rejected: {e:?}"),
        };
        LatencyHistogram { h }
    }

    pub fn record(&mut self, d: Duration) {
        // Sub-microsecond samples are recorded as 1 µs (the lowest trackable value).
        let us = (d.as_micros().min(u64::MAX as u128) as u64).max(1);
        self.h.saturating_record(us);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Both sides have the same bounds, so the only failure (a value out of range)
        // cannot happen; a failure would merely drop samples from the percentiles.
        if let Err(e) = self.h.add(&other.h) {
            log::warn!("merging latency histograms failed: {e:?}");
        }
    }

    pub fn count(&self) -> u64 {
        self.h.len()
    }

    pub fn percentiles(&self) -> Percentiles {
        if self.h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50_us: self.h.value_at_quantile(0.50),
            p99_us: self.h.value_at_quantile(0.99),
            p999_us: self.h.value_at_quantile(0.999),
            max_us: self.h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_merged_histograms() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for us in 1..=500u64 {
            a.record(Duration::from_micros(us));
        }
        for us in 501..=1000u64 {
            b.record(Duration::from_micros(us));
        }
        a.merge(&b);
        let p = a.percentiles();
        assert_eq!(a.count(), 1000);
        assert!((499..=501).contains(&p.p50_us), "{p:?}");
        assert!((989..=991).contains(&p.p99_us), "{p:?}");
        assert_eq!(p.max_us, 1000);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        assert_eq!(LatencyHistogram::new().percentiles(), Percentiles::default());
    }
}
