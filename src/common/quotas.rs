//! `Quotas` and `StatsTrack`: the `/zookeeper/quota` layout and its text format.

use std::collections::BTreeMap;

pub const PROC_ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA_ZOOKEEPER: &str = "/zookeeper/quota";
pub const CONFIG_ZOOKEEPER: &str = "/zookeeper/config";
pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

pub fn quota_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}")
}

pub fn limit_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{LIMIT_NODE}")
}

pub fn stat_path(path: &str) -> String {
    format!("{QUOTA_ZOOKEEPER}{path}/{STAT_NODE}")
}

pub fn trim_quota_path(quota_path: &str) -> &str {
    quota_path.strip_prefix(QUOTA_ZOOKEEPER).unwrap_or(quota_path)
}

/// `StatsTrack`: `count=N,bytes=N` and, when other keys exist, `=;key=value...` sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    pub fn parse(text: &str) -> StatsTrack {
        let mut stats = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let k = kv.next().unwrap_or("");
            let v = kv.next().unwrap_or("");
            if k.is_empty() {
                continue;
            }
            let v = if v.is_empty() { -1 } else { v.trim().parse::<i64>().unwrap_or(-1) };
            stats.insert(k.to_owned(), v);
        }
        StatsTrack { stats }
    }

    pub fn from_bytes(data: Option<&[u8]>) -> StatsTrack {
        StatsTrack::parse(&String::from_utf8_lossy(data.unwrap_or(&[])))
    }

    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, v: i64) {
        self.stats.insert(key.to_owned(), v);
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }

    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("count={},bytes={}", self.count(), self.bytes());
        let extra: Vec<_> = self.stats.iter().filter(|(k, _)| *k != "count" && *k != "bytes").collect();
        if !extra.is_empty() {
            s.push('=');
            for (k, v) in extra {
                s.push_str(&format!(";{k}={v}"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_text() {
        let t = StatsTrack::parse("count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
        assert_eq!(t.get("countHardLimit"), 2);
        assert_eq!(t.to_text(), "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2");
        assert_eq!(StatsTrack::parse("count=3,bytes=10").to_text(), "count=3,bytes=10");
    }
}
