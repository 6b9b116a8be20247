//! `StatsTrack` (the text of quota limit and stats nodes) and `Quotas` (their paths).

use std::collections::BTreeMap;

// The quota layout is the server's: one definition of the paths.
pub use crate::common::quotas::{limit_path, quota_path, stat_path, LIMIT_NODE, PROC_ZOOKEEPER, QUOTA_ZOOKEEPER, STAT_NODE};

/// `Quotas.trimQuotaPath` as the shell uses it (`substring(len)`: shorter paths give "").
pub fn trim_quota_path(p: &str) -> &str {
    p.get(QUOTA_ZOOKEEPER.len()..).unwrap_or("")
}

pub const COUNT: &str = "count";
pub const BYTES: &str = "bytes";
pub const COUNT_HARD_LIMIT: &str = "countHardLimit";
pub const BYTE_HARD_LIMIT: &str = "byteHardLimit";

/// Key/value pairs; absent keys read as -1 ("no limit").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses `count=1,bytes=2=;countHardLimit=3`: pairs split on `,`/`;`, then on `=`
    /// (an empty value reads -1). None where upstream's parser would throw.
    pub fn parse(text: &str) -> Option<StatsTrack> {
        let mut stats = BTreeMap::new();
        if text.is_empty() {
            return Some(StatsTrack { stats });
        }
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let kv = super::acl_parser::java_split(pair, '=');
            let key = kv.first()?;
            let v = kv.get(1)?;
            let value = if v.is_empty() { -1 } else { super::parse_java_long(v)? };
            stats.insert((*key).to_owned(), value);
        }
        Some(StatsTrack { stats })
    }

    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.stats.insert(key.to_owned(), value);
    }
}

/// `StatsTrack.toString`: count and bytes first; any other keys after an extra `=`,
/// sorted, each as `;key=value`.
impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{COUNT}={},{BYTES}={}", self.get(COUNT), self.get(BYTES))?;
        let rest: Vec<_> = self.stats.iter().filter(|(k, _)| *k != COUNT && *k != BYTES).collect();
        if !rest.is_empty() {
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2";
        let s = StatsTrack::parse(t).unwrap();
        assert_eq!(s.get(COUNT_HARD_LIMIT), 2);
        assert_eq!(s.to_string(), t);
        assert_eq!(StatsTrack::parse("count=4,bytes=8").unwrap().to_string(), "count=4,bytes=8");
    }
}
