//! `SyncedLearnerTracker`: acks (or votes) counted against every active configuration
//! at once — during a reconfiguration a decision needs a quorum of the old and of the
//! new membership.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::server::quorum::flexible::QuorumVerifier;

#[derive(Debug, Clone, Default)]
pub struct SyncedLearnerTracker {
    pairs: Vec<(Arc<QuorumVerifier>, BTreeSet<i64>)>,
}

impl SyncedLearnerTracker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_quorum_verifier(&mut self, qv: Arc<QuorumVerifier>) {
        self.pairs.push((qv, BTreeSet::new()));
    }

    /// Counts `sid` in every configuration where it votes; true if any took it.
    pub fn add_ack(&mut self, sid: i64) -> bool {
        let mut change = false;
        for (qv, acks) in &mut self.pairs {
            if qv.is_voter(sid) {
                acks.insert(sid);
                change = true;
            }
        }
        change
    }

    /// `hasSid`: `sid` votes in every configuration.
    pub fn has_sid(&self, sid: i64) -> bool {
        self.pairs.iter().all(|(qv, _)| qv.is_voter(sid))
    }

    /// `hasAllQuorums`: the acks form a quorum of each configuration.
    pub fn has_all_quorums(&self) -> bool {
        self.pairs.iter().all(|(qv, acks)| qv.contains_quorum(&acks.iter().copied().collect::<Vec<_>>()))
    }

    /// The last configuration and its acks (a reconfig's new configuration).
    pub fn last_pair(&self) -> Option<(&Arc<QuorumVerifier>, &BTreeSet<i64>)> {
        self.pairs.last().map(|(q, a)| (q, a))
    }

    /// Every configuration's ack set, in the order they were added.
    pub fn ack_sets(&self) -> Vec<BTreeSet<i64>> {
        self.pairs.iter().map(|(_, a)| a.clone()).collect()
    }

    /// `ackSetsToString`: `[1, 2],[1, 3]`.
    pub fn ack_sets_to_string(&self) -> String {
        self.pairs
            .iter()
            .map(|(_, a)| format!("[{}]", a.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::quorum::quorum_peer_config::parse_properties;

    fn qv(text: &str) -> Arc<QuorumVerifier> {
        Arc::new(QuorumVerifier::from_props(&parse_properties(text), false).unwrap())
    }

    #[test]
    fn needs_a_quorum_of_every_configuration() {
        let old = qv("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n");
        let new = qv("server.3=h:5:6\nserver.4=h:7:8\nserver.5=h:9:10\nserver.6=h:11:12:observer\n");
        let mut t = SyncedLearnerTracker::new();
        t.add_quorum_verifier(old);
        t.add_quorum_verifier(new);
        assert!(t.add_ack(1));
        assert!(t.add_ack(2));
        assert!(!t.has_all_quorums(), "a quorum of the old one only");
        assert!(!t.add_ack(6), "observers never count");
        t.add_ack(4);
        assert!(!t.has_all_quorums(), "one of three new voters");
        t.add_ack(3);
        assert!(t.has_all_quorums());
        assert_eq!(t.ack_sets_to_string(), "[1, 2, 3],[3, 4]");
        assert!(!t.has_sid(1));
    }
}
