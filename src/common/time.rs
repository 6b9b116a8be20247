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

/// Splits epoch milliseconds (UTC) into (year, month 1-12, day, hour, minute, second,
/// millisecond, weekday 0=Thursday) — Howard Hinnant's civil-from-days.
pub fn civil_from_millis(ms: i64) -> (i64, i64, i64, i64, i64, i64, i64, usize) {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    (y, mo, d, rem / 3600, (rem % 3600) / 60, rem % 60, ms.rem_euclid(1000), days.rem_euclid(7) as usize)
}

/// Java's `Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(ms: i64) -> String {
    let (y, mo, d, h, m, s, _, wd) = civil_from_millis(ms);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {} {d:02} {h:02}:{m:02}:{s:02} UTC {y}", WD[wd], MO[(mo - 1) as usize])
}

