//! The decisions of FastLeaderElection as plain functions: which of two proposals wins
//! (`totalOrderPredicate`), whether a set of votes elects a proposal (`termPredicate`,
//! through the vote tracker), and whether an announced leader may be followed
//! (`checkLeader`, the old `ooePredicate`). No IO and no clocks: the election loop and
//! the property tests call the same code.

use std::collections::HashMap;
use std::sync::Arc;

use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::synced_learner_tracker::SyncedLearnerTracker;
use crate::server::quorum::vote::{ServerState, Vote};

/// A proposal: (leader id, its last zxid, its epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub id: i64,
    pub zxid: i64,
    pub epoch: i64,
}

/// `totalOrderPredicate`: does `new` beat `cur`? A server of weight 0 never wins;
/// otherwise the higher epoch, then the higher zxid, then the higher id.
pub fn total_order_predicate(new_weight: i64, new: Proposal, cur: Proposal) -> bool {
    if new_weight == 0 {
        return false;
    }
    new.epoch > cur.epoch
        || (new.epoch == cur.epoch && (new.zxid > cur.zxid || (new.zxid == cur.zxid && new.id > cur.id)))
}

/// `getVoteTracker`: the senders whose vote equals `vote`, counted against the current
/// configuration and, when it is newer, the last proposed one.
pub fn vote_tracker(
    current: &Arc<QuorumVerifier>,
    last_seen: Option<&Arc<QuorumVerifier>>,
    votes: &HashMap<i64, Vote>,
    vote: &Vote,
) -> SyncedLearnerTracker {
    let mut t = SyncedLearnerTracker::new();
    t.add_quorum_verifier(current.clone());
    if let Some(ls) = last_seen {
        if ls.version() > current.version() {
            t.add_quorum_verifier(ls.clone());
        }
    }
    for (sid, v) in votes {
        if vote.same_as(v) {
            t.add_ack(*sid);
        }
    }
    t
}

/// `checkLeader`: following someone else needs their own LEADING vote among `votes`;
/// "following" ourselves needs the round to be our current one.
pub fn check_leader(votes: &HashMap<i64, Vote>, leader: i64, election_epoch: i64, my_id: i64, logical_clock: i64) -> bool {
    if leader != my_id {
        matches!(votes.get(&leader), Some(v) if v.state == ServerState::Leading)
    } else {
        logical_clock == election_epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::quorum::quorum_peer_config::parse_properties;

    fn p(id: i64, zxid: i64, epoch: i64) -> Proposal {
        Proposal { id, zxid, epoch }
    }

    fn three() -> Arc<QuorumVerifier> {
        Arc::new(QuorumVerifier::from_props(&parse_properties("server.1=h:1:2\nserver.2=h:3:4\nserver.3=h:5:6\n"), false).unwrap())
    }

    #[test]
    fn epoch_then_zxid_then_id() {
        assert!(total_order_predicate(1, p(1, 0, 2), p(3, 9, 1)), "higher epoch wins");
        assert!(total_order_predicate(1, p(1, 9, 1), p(3, 8, 1)), "then higher zxid");
        assert!(total_order_predicate(1, p(3, 9, 1), p(1, 9, 1)), "then higher id");
        assert!(!total_order_predicate(1, p(3, 9, 1), p(3, 9, 1)), "never beats itself");
        assert!(!total_order_predicate(0, p(9, 9, 9), p(1, 0, 0)), "weight 0 never wins");
    }

    #[test]
    fn tracker_counts_equal_votes() {
        let qv = three();
        let mut votes = HashMap::new();
        let v = Vote::with_round(3, 5, 1, 1);
        votes.insert(1, v);
        assert!(!vote_tracker(&qv, None, &votes, &v).has_all_quorums());
        votes.insert(2, Vote::with_round(3, 5, 2, 1));
        assert!(!vote_tracker(&qv, None, &votes, &v).has_all_quorums(), "another round does not count");
        votes.insert(3, v);
        assert!(vote_tracker(&qv, None, &votes, &v).has_all_quorums());
    }

    #[test]
    fn check_leader_rules() {
        let mut votes = HashMap::new();
        votes.insert(2, Vote::with_state(3, 0, 1, 1, ServerState::Following));
        assert!(!check_leader(&votes, 3, 1, 1, 1), "no word from the leader itself");
        votes.insert(3, Vote::with_state(3, 0, 1, 1, ServerState::Following));
        assert!(!check_leader(&votes, 3, 1, 1, 1), "the leader must say it leads");
        votes.insert(3, Vote::with_state(3, 0, 1, 1, ServerState::Leading));
        assert!(check_leader(&votes, 3, 1, 1, 1));
        assert!(check_leader(&votes, 1, 4, 1, 4), "ourselves: the round must be ours");
        assert!(!check_leader(&votes, 1, 3, 1, 4));
    }
}
