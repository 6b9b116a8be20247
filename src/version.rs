//! What `Version.getFullVersion` reports. We speak 3.8.0's protocol; the suffix names us.

pub const VERSION: &str = "3.8.0";
pub const REVISION: &str = "zookeeper-rs";
pub const BUILD_DATE: &str = "2026-11-25 00:00 UTC";

/// `3.8.0-<revision>, built on <date>`, the shape `srvr` and `envi` print.
pub fn full_version() -> String {
    format!("{VERSION}-{REVISION}, built on {BUILD_DATE}")
}
