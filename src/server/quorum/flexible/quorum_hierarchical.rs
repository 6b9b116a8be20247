//! `QuorumHierarchical`: voters are split into groups (`group.G=a:b:c`) and weighed
//! (`weight.N=w`, default 1); a set is a quorum when it holds more than half the weight
//! of more than half of the groups.

use std::collections::BTreeMap;

use super::{java_long_order, parse_long, parse_members, same_members, Members};
use crate::server::quorum::quorum_peer_config::ConfigException;
use crate::server::quorum::quorum_server::LearnerType;

#[derive(Debug, Clone, Default)]
pub struct QuorumHierarchical {
    pub members: Members,
    pub version: i64,
    /// sid -> weight.
    pub server_weight: BTreeMap<i64, i64>,
    /// sid -> group id.
    pub server_group: BTreeMap<i64, i64>,
    /// group id -> total weight of its members.
    pub group_weight: BTreeMap<i64, i64>,
    /// The number of `group` lines.
    pub num_groups: i64,
}

impl QuorumHierarchical {
    pub fn from_props(props: &[(String, String)], multi_address_enabled: bool) -> Result<QuorumHierarchical, ConfigException> {
        let (members, version) = parse_members(props, multi_address_enabled)?;
        let mut q = QuorumHierarchical { members, version, ..Default::default() };
        for (key, value) in props {
            if key.starts_with("server.") {
                continue;
            }
            if key.starts_with("group") {
                let gid = parse_long(after_dot(key))?;
                q.num_groups += 1;
                for s in value.split(':') {
                    let sid = parse_long(s)?;
                    if q.server_group.contains_key(&sid) {
                        // Upstream's message has no space before "is".
                        return Err(ConfigException::new(format!("Server {sid}is in multiple groups")));
                    }
                    q.server_group.insert(sid, gid);
                }
            } else if key.starts_with("weight") {
                let sid = parse_long(after_dot(key))?;
                q.server_weight.insert(sid, parse_long(value)?);
            }
        }
        for s in q.members.all.values() {
            if s.learner_type == LearnerType::Participant {
                if !q.server_group.contains_key(&s.id) {
                    return Err(ConfigException::new(format!("Server {}is not in a group", s.id)));
                }
                q.server_weight.entry(s.id).or_insert(1);
            }
        }
        for (&sid, &gid) in &q.server_group {
            // Java long arithmetic: a config received in a notification may carry any
            // weights, and an overflow must not panic the WorkerReceiver.
            let w = q.group_weight.entry(gid).or_insert(0);
            *w = w.wrapping_add(q.server_weight.get(&sid).copied().unwrap_or(0));
        }
        log::info!("{}, {}, {}", q.server_weight.len(), q.server_group.len(), q.group_weight.len());
        Ok(q)
    }

    pub fn weight(&self, sid: i64) -> i64 {
        self.server_weight.get(&sid).copied().unwrap_or(0)
    }

    /// `containsQuorum`: sum the weight the set holds in each group; a group counts when
    /// that is more than half its weight; a quorum needs more than half of the groups.
    pub fn contains_quorum(&self, ids: &[i64]) -> bool {
        if ids.is_empty() {
            return false;
        }
        let mut expansion: BTreeMap<i64, i64> = BTreeMap::new();
        for sid in ids {
            if let Some(gid) = self.server_group.get(sid) {
                let w = expansion.entry(*gid).or_insert(0);
                *w = w.wrapping_add(self.weight(*sid));
            }
        }
        let majority_groups = expansion
            .iter()
            .filter(|(gid, w)| **w > self.group_weight.get(gid).copied().unwrap_or(0) / 2)
            .count() as i64;
        majority_groups > self.num_groups / 2
    }

    pub fn same_as(&self, o: &QuorumHierarchical) -> bool {
        if self.version == o.version {
            return true;
        }
        same_members(&self.members, &o.members)
            && self.server_weight == o.server_weight
            && self.group_weight == o.group_weight
            && self.server_group == o.server_group
    }

    /// The `group.G=` and `weight.N=` lines of `toString`, in Java hash order.
    pub fn groups_and_weights_text(&self) -> String {
        let mut out = String::new();
        let pairs = java_long_order(self.server_group.iter().map(|(s, g)| (*s, *g)).collect(), |p| p.0);
        let mut groups: Vec<(i64, String)> = Vec::new();
        for (sid, gid) in pairs {
            match groups.iter_mut().find(|(g, _)| *g == gid) {
                Some((_, text)) => text.push_str(&format!(":{sid}")),
                None => groups.push((gid, sid.to_string())),
            }
        }
        for (gid, text) in java_long_order(groups, |g| g.0) {
            out.push_str(&format!("group.{gid}={text}\n"));
        }
        for (sid, w) in java_long_order(self.server_weight.iter().map(|(s, w)| (*s, *w)).collect(), |p| p.0) {
            out.push_str(&format!("weight.{sid}={w}\n"));
        }
        out
    }
}

fn after_dot(key: &str) -> &str {
    match key.find('.') {
        Some(i) => &key[i + 1..],
        None => key,
    }
}

#[cfg(test)]
mod tests {

    use crate::server::quorum::flexible::QuorumVerifier;
    use crate::server::quorum::quorum_peer_config::parse_properties;

    fn nine() -> QuorumVerifier {
        let mut text = String::new();
        for i in 1..=9 {
            text.push_str(&format!("server.{i}=127.0.0.1:{}:{}\n", 1000 + i, 2000 + i));
        }
        text.push_str("group.1=1:2:3\ngroup.2=4:5:6\ngroup.3=7:8:9\nweight.9=0\n");
        QuorumVerifier::from_props(&parse_properties(&text), false).unwrap()
    }

    #[test]
    fn majority_of_groups_with_majority_weight() {
        let qv = nine();
        assert!(matches!(qv, QuorumVerifier::Hierarchical(_)));
        // Two of each of two groups: a quorum.
        assert!(qv.contains_quorum(&[1, 2, 4, 5]));
        // Five servers but a majority in only one group.
        assert!(!qv.contains_quorum(&[1, 2, 3, 4, 7]));
        // 7 and 8 carry all of group 3's weight (9 weighs 0): 7 alone is not more than half of 2.
        assert!(!qv.contains_quorum(&[1, 2, 7]));
        assert!(qv.contains_quorum(&[1, 2, 7, 8]));
        assert_eq!(qv.weight(9), 0);
        assert_eq!(qv.weight(1), 1);
        assert!(!qv.contains_quorum(&[]));
    }

    #[test]
    fn huge_weights_wrap_as_java_longs() {
        // Such a config can arrive in any notification: parsing it must not panic.
        let text = format!("server.1=h:1:2\nserver.2=h:3:4\ngroup.1=1:2\nweight.1={m}\nweight.2={m}\n", m = i64::MAX);
        let qv = QuorumVerifier::from_config_string(&text, false).unwrap();
        assert!(!qv.contains_quorum(&[1, 2]), "the group weight wrapped to -2, as in Java");
    }

    #[test]
    fn config_errors() {
        let e = QuorumVerifier::from_props(&parse_properties("server.1=h:1:2\nserver.2=h:3:4\ngroup.1=1\n"), false).unwrap_err();
        assert_eq!(e.msg, "Server 2is not in a group");
        let e = QuorumVerifier::from_props(&parse_properties("server.1=h:1:2\ngroup.1=1\ngroup.2=1\n"), false).unwrap_err();
        assert_eq!(e.msg, "Server 1is in multiple groups");
    }

    #[test]
    fn text_round_trips() {
        let qv = nine();
        let text = qv.to_string();
        assert!(text.contains("group.1=1:2:3\n"), "{text}");
        assert!(text.contains("weight.9=0\n"), "{text}");
        let back = QuorumVerifier::from_config_string(&text, false).unwrap();
        assert_eq!(back.to_string(), text);
    }
}
