//! `org.apache.zookeeper.server.quorum.flexible`: who is a member and which sets of
//! members form a quorum. Plain data, no IO: elections, Zab acks and the config text
//! sent to peers all come from here.

pub mod quorum_hierarchical;
pub mod quorum_maj;

use std::collections::BTreeMap;

use crate::common::java_hash;
use crate::server::quorum::quorum_peer_config::ConfigException;
use crate::server::quorum::quorum_server::{LearnerType, QuorumServer};

pub use quorum_hierarchical::QuorumHierarchical;
pub use quorum_maj::QuorumMaj;

/// `QuorumVerifier`: majority or hierarchical (groups and weights).
#[derive(Debug, Clone)]
pub enum QuorumVerifier {
    Maj(QuorumMaj),
    Hierarchical(QuorumHierarchical),
}

/// The members of a configuration, keyed by server id.
#[derive(Debug, Clone, Default)]
pub struct Members {
    pub all: BTreeMap<i64, QuorumServer>,
}

impl Members {
    pub fn voting(&self) -> impl Iterator<Item = &QuorumServer> {
        self.all.values().filter(|s| s.learner_type == LearnerType::Participant)
    }

    pub fn observing(&self) -> impl Iterator<Item = &QuorumServer> {
        self.all.values().filter(|s| s.learner_type == LearnerType::Observer)
    }

    /// Java `HashMap<Long, QuorumServer>` iteration order, which upstream's `toString`
    /// (and so the config text every peer sees) follows.
    pub fn java_order(&self) -> Vec<&QuorumServer> {
        java_long_order(self.all.values().collect(), |s| s.id)
    }
}

/// Orders items keyed by longs as a Java `HashMap<Long, _>` filled with them iterates.
pub fn java_long_order<T>(mut items: Vec<T>, key: impl Fn(&T) -> i64) -> Vec<T> {
    items.sort_by_key(|t| key(t));
    let cap = java_hash::hashmap_capacity_for_inserts(items.len());
    java_hash::iteration_order(items, cap, |t| java_hash::long_hash(key(t)))
}

/// Builds the `server.N` members of a properties list (the lines of zoo.cfg or of a
/// dynamic file); the caller picks majority or hierarchical.
pub(crate) fn parse_members(props: &[(String, String)], multi_address_enabled: bool) -> Result<(Members, i64), ConfigException> {
    let mut members = Members::default();
    let mut version = 0i64;
    for (key, value) in props {
        if let Some(id) = key.strip_prefix("server.") {
            let sid = parse_long(id)?;
            members.all.insert(sid, QuorumServer::parse(sid, value, multi_address_enabled)?);
        } else if key == "version" {
            version = parse_hex_long(value)?;
        }
    }
    Ok((members, version))
}

/// `Long.parseLong` with Java's NumberFormatException text (an IllegalArgumentException).
pub(crate) fn parse_long(s: &str) -> Result<i64, ConfigException> {
    s.parse::<i64>()
        .map_err(|_| ConfigException::illegal_argument(format!("For input string: \"{s}\"")))
}

/// `Long.parseLong(s, 16)`.
pub(crate) fn parse_hex_long(s: &str) -> Result<i64, ConfigException> {
    let bad = || ConfigException::illegal_argument(format!("For input string: \"{s}\" under radix 16"));
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let v = i128::from_str_radix(digits, 16).map_err(|_| bad())?;
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| bad())
}

impl QuorumVerifier {
    /// `QuorumPeerConfig.createQuorumVerifier`: hierarchical as soon as any `group` or
    /// `weight` key is present.
    pub fn from_props(props: &[(String, String)], multi_address_enabled: bool) -> Result<QuorumVerifier, ConfigException> {
        let hierarchical = props.iter().any(|(k, _)| k.starts_with("group") || k.starts_with("weight"));
        if hierarchical {
            Ok(QuorumVerifier::Hierarchical(QuorumHierarchical::from_props(props, multi_address_enabled)?))
        } else {
            Ok(QuorumVerifier::Maj(QuorumMaj::from_props(props, multi_address_enabled)?))
        }
    }

    /// Parses a config text as sent in notifications and NEWLEADER
    /// (`QuorumPeer.configFromString`): only `server.`, `group`, `weight` and `version`
    /// keys are allowed.
    pub fn from_config_string(text: &str, multi_address_enabled: bool) -> Result<QuorumVerifier, ConfigException> {
        let props: Vec<(String, String)> = crate::server::quorum::quorum_peer_config::parse_properties(text)
            .into_iter()
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        for (k, _) in &props {
            if !(k.starts_with("server.") || k.starts_with("group") || k.starts_with("weight") || k == "version") {
                return Err(ConfigException::new(format!("Unrecognised parameter: {k}")));
            }
        }
        QuorumVerifier::from_props(&props, multi_address_enabled)
    }

    pub fn members(&self) -> &Members {
        match self {
            QuorumVerifier::Maj(q) => &q.members,
            QuorumVerifier::Hierarchical(q) => &q.members,
        }
    }

    pub fn members_mut(&mut self) -> &mut Members {
        match self {
            QuorumVerifier::Maj(q) => &mut q.members,
            QuorumVerifier::Hierarchical(q) => &mut q.members,
        }
    }

    pub fn all_members(&self) -> &BTreeMap<i64, QuorumServer> {
        &self.members().all
    }

    pub fn is_voter(&self, sid: i64) -> bool {
        self.members().all.get(&sid).is_some_and(|s| s.learner_type == LearnerType::Participant)
    }

    pub fn is_observer(&self, sid: i64) -> bool {
        self.members().all.get(&sid).is_some_and(|s| s.learner_type == LearnerType::Observer)
    }

    pub fn voting_ids(&self) -> Vec<i64> {
        self.members().voting().map(|s| s.id).collect()
    }

    pub fn voting_count(&self) -> usize {
        self.members().voting().count()
    }

    pub fn observing_count(&self) -> usize {
        self.members().observing().count()
    }

    pub fn version(&self) -> i64 {
        match self {
            QuorumVerifier::Maj(q) => q.version,
            QuorumVerifier::Hierarchical(q) => q.version,
        }
    }

    pub fn set_version(&mut self, v: i64) {
        match self {
            QuorumVerifier::Maj(q) => q.version = v,
            QuorumVerifier::Hierarchical(q) => q.version = v,
        }
    }

    /// `getWeight`: 1 for every majority member; the configured weight (default 1 for
    /// participants) in a hierarchy. FastLeaderElection never elects a weight-0 server.
    pub fn weight(&self, sid: i64) -> i64 {
        match self {
            QuorumVerifier::Maj(_) => 1,
            QuorumVerifier::Hierarchical(q) => q.weight(sid),
        }
    }

    /// `containsQuorum`.
    pub fn contains_quorum(&self, ids: &[i64]) -> bool {
        match self {
            QuorumVerifier::Maj(q) => q.contains_quorum(ids),
            QuorumVerifier::Hierarchical(q) => q.contains_quorum(ids),
        }
    }

    /// `QuorumMaj.equals` / `QuorumHierarchical.equals`: equal versions are enough;
    /// otherwise the same members (and groups and weights).
    pub fn same_as(&self, other: &QuorumVerifier) -> bool {
        match (self, other) {
            (QuorumVerifier::Maj(a), QuorumVerifier::Maj(b)) => a.same_as(b),
            (QuorumVerifier::Hierarchical(a), QuorumVerifier::Hierarchical(b)) => a.same_as(b),
            _ => false,
        }
    }

    fn members_text(&self) -> String {
        let mut out = String::new();
        for s in self.members().java_order() {
            out.push_str(&format!("server.{}={}\n", s.id, s.to_config_string()));
        }
        out
    }
}

impl std::fmt::Display for QuorumVerifier {
    /// The canonical config text: `server.N=...` lines, (groups and weights), then
    /// `version=<hex>` with no newline after it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = self.members_text();
        if let QuorumVerifier::Hierarchical(q) = self {
            out.push_str(&q.groups_and_weights_text());
        }
        out.push_str(&format!("version={:x}", self.version()));
        f.write_str(&out)
    }
}

/// The same-members comparison both verifiers share.
pub(crate) fn same_members(a: &Members, b: &Members) -> bool {
    a.all.len() == b.all.len() && a.all.values().all(|s| b.all.get(&s.id).is_some_and(|o| s.same_as(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Vec<(String, String)> {
        crate::server::quorum::quorum_peer_config::parse_properties(text)
    }

    #[test]
    fn majority_text_and_quorums() {
        let qv = QuorumVerifier::from_props(
            &props("server.3=127.0.0.1:3:30\nserver.1=127.0.0.1:1:10;127.0.0.1:100\nserver.2=127.0.0.1:2:20:observer\n"),
            false,
        )
        .unwrap();
        assert_eq!(
            qv.to_string(),
            "server.1=127.0.0.1:1:10:participant;127.0.0.1:100\nserver.2=127.0.0.1:2:20:observer\nserver.3=127.0.0.1:3:30:participant\nversion=0"
        );
        assert_eq!(qv.voting_ids(), vec![1, 3]);
        assert!(!qv.contains_quorum(&[1]));
        assert!(qv.contains_quorum(&[1, 3]));
        let back = QuorumVerifier::from_config_string(&qv.to_string(), false).unwrap();
        assert_eq!(back.to_string(), qv.to_string());
    }

    #[test]
    fn java_hashmap_order_of_large_ids() {
        // 17 and 1 share bucket 1 of a 16-slot table; 16 is bucket 0.
        let qv = QuorumVerifier::from_props(&props("server.17=h:1:2\nserver.1=h:3:4\nserver.16=h:5:6\nversion=100000000\n"), false).unwrap();
        let ids: Vec<i64> = qv.members().java_order().iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![16, 1, 17]);
        assert!(qv.to_string().ends_with("version=100000000"));
    }

    #[test]
    fn config_string_refuses_other_keys() {
        let e = QuorumVerifier::from_config_string("server.1=h:1:2\nclientPort=5\n", false).unwrap_err();
        assert_eq!(e.msg, "Unrecognised parameter: clientPort");
        assert!(QuorumVerifier::from_config_string("server.x=h:1:2", false).is_err());
        // A notification's config text with a multi-byte character after a ']' used to
        // panic the WorkerReceiver, leaving the peer deaf to every later notification.
        assert!(QuorumVerifier::from_config_string("server.1=[a]\u{e9}:2:3\nversion=1", false).is_err());
    }

    #[test]
    fn hex_versions() {
        assert_eq!(parse_hex_long("100000000").unwrap(), 0x1_0000_0000);
        assert_eq!(parse_hex_long("-1").unwrap(), -1);
        assert!(parse_hex_long("zz").is_err());
    }
}
