//! `org.apache.zookeeper.common.Time`: wall-clock for txn times, a monotonic clock for
//! intervals and session ids.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// `Time.currentWallTime()`: milliseconds since the epoch.
pub fn current_wall_time() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `Time.currentElapsedTime()`: monotonic milliseconds (`System.nanoTime()/1e6`). The
/// origin is arbitrary but fixed for the process; we offset it so values look like
/// nanoTime-derived ones (large and positive).
pub fn current_elapsed_time() -> i64 {
    static START: OnceLock<(Instant, i64)> = OnceLock::new();
    let (start, base) = START.get_or_init(|| (Instant::now(), current_wall_time()));
    base + start.elapsed().as_millis() as i64
}
