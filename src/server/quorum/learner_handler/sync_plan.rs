//! How a leader brings a learner up to date (`LearnerHandler.syncFollower` and
//! `queueCommittedProposals`), as a plain function: from the learner's last zxid, the
//! leader's committed log and (when needed) its on-disk txn log, decide between DIFF
//! (send the missing committed txns), TRUNC (the learner has txns the leader never
//! committed; cut them) and SNAP (send the whole tree), and list the packets to queue.

use crate::server::util::zxid_utils::epoch_from_zxid;
use crate::server::zk_database::CommittedProposal;

/// One packet of the sync, in queue order.
#[derive(Debug, Clone)]
pub enum SyncItem {
    Diff(i64),
    Trunc(i64),
    Proposal(CommittedProposal),
    Commit(i64),
}

impl PartialEq for SyncItem {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (SyncItem::Diff(a), SyncItem::Diff(b)) | (SyncItem::Trunc(a), SyncItem::Trunc(b)) | (SyncItem::Commit(a), SyncItem::Commit(b)) => a == b,
            (SyncItem::Proposal(a), SyncItem::Proposal(b)) => a.zxid == b.zxid,
            _ => false,
        }
    }
}

/// The outcome of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPlan {
    /// Send the whole tree (after a SNAP packet) instead of `items`.
    pub need_snap: bool,
    /// DIFF/TRUNC and the proposals + commits to queue (empty when `need_snap`).
    pub items: Vec<SyncItem>,
    /// The last zxid the learner will have once the queued packets are applied; the
    /// leader forwards everything after it (`startForwarding`).
    pub current_zxid: i64,
    /// Log lines upstream writes at info level for this decision.
    pub notes: Vec<String>,
}

/// What the leader knows when it decides.
pub struct SyncInputs<'a> {
    pub peer_last_zxid: i64,
    pub last_processed_zxid: i64,
    /// `minCommittedLog` / `maxCommittedLog` and the committed log itself.
    pub min_committed: i64,
    pub max_committed: i64,
    pub committed: &'a [CommittedProposal],
    pub force_snap: bool,
    pub txn_log_sync_enabled: bool,
}

struct Queue {
    items: Vec<SyncItem>,
    need_op_packet: bool,
    notes: Vec<String>,
}

/// `syncFollower`. `txn_log` reads the on-disk log from a zxid (within the size limit;
/// empty when it cannot serve the range) and is only called when the committed log does
/// not reach back far enough.
pub fn plan_sync(inp: &SyncInputs<'_>, txn_log: impl FnOnce(i64) -> Vec<CommittedProposal>) -> SyncPlan {
    let peer = inp.peer_last_zxid;
    let is_peer_new_epoch_zxid = (peer & 0xffff_ffff) == 0;
    let mut current_zxid = peer;
    let mut need_snap = true;
    let mut q = Queue { items: Vec::new(), need_op_packet: true, notes: Vec::new() };
    let (mut min, mut max) = (inp.min_committed, inp.max_committed);
    if inp.committed.is_empty() {
        // Nothing committed in memory: the tree's last zxid is the only reference.
        min = inp.last_processed_zxid;
        max = inp.last_processed_zxid;
    }
    if inp.force_snap {
        q.notes.push("Forcing snapshot sync - should not see this in production".into());
    } else if inp.last_processed_zxid == peer {
        q.notes.push(format!("Sending DIFF zxid=0x{peer:x} for peer"));
        q.items.push(SyncItem::Diff(peer));
        q.need_op_packet = false;
        need_snap = false;
    } else if peer > max && !is_peer_new_epoch_zxid {
        q.items.push(SyncItem::Trunc(max));
        current_zxid = max;
        q.need_op_packet = false;
        need_snap = false;
    } else if max >= peer && min <= peer {
        if let Some((a, b)) = hole_after(inp.committed, peer) {
            q.notes.push(format!("Detected a hole in committedLog between 0x{a:x} and 0x{b:x}, cannot diff from it"));
        } else {
            q.notes.push("Using committedLog for peer".into());
            current_zxid = queue_committed_proposals(&mut q, inp.committed.iter(), peer, None, max);
            need_snap = false;
        }
    } else if peer < min && inp.txn_log_sync_enabled {
        let from_log = txn_log(peer);
        let hole = hole_after(&from_log, peer).or_else(|| hole_after(inp.committed, min));
        if let Some((a, b)) = hole {
            // A learner synced by SNAP keeps its older log files: its log jumps over what
            // the snapshot brought. Read as a history, such a log makes a peer inside the
            // jump look divergent, and the TRUNC it would get drops committed txns.
            q.notes.push(format!("Detected a hole in txnlog between 0x{a:x} and 0x{b:x}, cannot diff from it"));
        } else if !from_log.is_empty() {
            q.notes.push("Use txnlog and committedLog for peer".into());
            current_zxid = queue_committed_proposals(&mut q, from_log.iter(), peer, Some(min), max);
            if current_zxid < min {
                q.notes.push(format!("Detected gap between end of txnlog: 0x{current_zxid:x} and start of committedLog: 0x{min:x}"));
                current_zxid = peer;
                q.items.clear();
                q.need_op_packet = true;
            } else {
                current_zxid = queue_committed_proposals(&mut q, inp.committed.iter(), current_zxid, None, max);
                need_snap = false;
            }
        }
    } else {
        q.notes.push(format!(
            "Unhandled scenario for peer maxCommittedLog=0x{max:x} minCommittedLog=0x{min:x} lastProcessedZxid=0x{:x} peerLastZxid=0x{peer:x} txnLogSyncEnabled={}",
            inp.last_processed_zxid, inp.txn_log_sync_enabled
        ));
    }
    if q.need_op_packet && !need_snap {
        q.notes.push("Unhandled scenario for peer, fall back to use snapshot".into());
        need_snap = true;
    }
    if need_snap {
        current_zxid = inp.last_processed_zxid;
        q.items.clear();
    }
    SyncPlan { need_snap, items: q.items, current_zxid, notes: q.notes }
}

/// `next` may follow `prev` in one history: the next counter of the same epoch, or the
/// first txn of a later epoch.
fn follows(prev: i64, next: i64) -> bool {
    let (pe, ne) = (epoch_from_zxid(prev), epoch_from_zxid(next));
    (ne == pe && next == prev + 1) || (ne > pe && (next & 0xffff_ffff) == 1)
}

/// The first discontinuity of `proposals` from the last one before `peer` on (what a
/// sync from `peer` reads): a DIFF or TRUNC computed across it would be wrong
/// (ZOOKEEPER-4925's hole in the history a leader propagates).
fn hole_after(proposals: &[CommittedProposal], peer: i64) -> Option<(i64, i64)> {
    let start = proposals.iter().rposition(|p| p.zxid < peer).unwrap_or(0);
    proposals.get(start..)?.windows(2).find(|w| !follows(w[0].zxid, w[1].zxid)).map(|w| (w[0].zxid, w[1].zxid))
}

/// `queueCommittedProposals`: the first proposal at or after the peer's zxid decides
/// the op packet (DIFF when the peer has it or starts a new epoch, TRUNC to the previous
/// proposal when the peer has something the leader lacks — within one epoch only), then
/// every later proposal goes out with its COMMIT.
fn queue_committed_proposals<'a>(
    q: &mut Queue,
    itr: impl Iterator<Item = &'a CommittedProposal>,
    peer_last_zxid: i64,
    max_zxid: Option<i64>,
    last_committed_zxid: i64,
) -> i64 {
    let is_peer_new_epoch_zxid = (peer_last_zxid & 0xffff_ffff) == 0;
    let mut queued_zxid = peer_last_zxid;
    let mut prev_proposal_zxid = -1i64;
    for p in itr {
        let packet_zxid = p.zxid;
        if max_zxid.is_some_and(|m| packet_zxid > m) {
            break;
        }
        if packet_zxid < peer_last_zxid {
            prev_proposal_zxid = packet_zxid;
            continue;
        }
        if q.need_op_packet {
            if packet_zxid == peer_last_zxid {
                q.notes.push(format!("Sending DIFF zxid=0x{last_committed_zxid:x} for peer"));
                q.items.push(SyncItem::Diff(last_committed_zxid));
                q.need_op_packet = false;
                continue;
            }
            if is_peer_new_epoch_zxid {
                q.notes.push(format!("Sending DIFF zxid=0x{last_committed_zxid:x} for peer"));
                q.items.push(SyncItem::Diff(last_committed_zxid));
                q.need_op_packet = false;
            } else if packet_zxid > peer_last_zxid {
                if epoch_from_zxid(packet_zxid) != epoch_from_zxid(peer_last_zxid) {
                    q.notes.push("Cannot send TRUNC to peer: peer zxid is from different epoch".into());
                    return queued_zxid;
                }
                q.notes.push(format!("Sending TRUNC zxid=0x{prev_proposal_zxid:x} for peer"));
                q.items.push(SyncItem::Trunc(prev_proposal_zxid));
                q.need_op_packet = false;
            }
        }
        if packet_zxid <= queued_zxid {
            continue;
        }
        q.items.push(SyncItem::Proposal(p.clone()));
        q.items.push(SyncItem::Commit(packet_zxid));
        queued_zxid = packet_zxid;
    }
    if q.need_op_packet && is_peer_new_epoch_zxid {
        q.notes.push(format!("Sending DIFF zxid=0x{last_committed_zxid:x} for peer"));
        q.items.push(SyncItem::Diff(last_committed_zxid));
        q.need_op_packet = false;
    }
    queued_zxid
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn log(zxids: &[i64]) -> Vec<CommittedProposal> {
        zxids.iter().map(|&z| CommittedProposal { zxid: z, data: Arc::from(vec![]) }).collect()
    }

    fn plan(peer: i64, last: i64, committed: &[CommittedProposal], disk: Vec<CommittedProposal>) -> SyncPlan {
        let (min, max) = (committed.first().map(|p| p.zxid).unwrap_or(0), committed.last().map(|p| p.zxid).unwrap_or(0));
        plan_sync(
            &SyncInputs { peer_last_zxid: peer, last_processed_zxid: last, min_committed: min, max_committed: max, committed, force_snap: false, txn_log_sync_enabled: true },
            |_| disk,
        )
    }

    fn z(e: i64, c: i64) -> i64 {
        (e << 32) | c
    }

    #[test]
    fn same_zxid_is_an_empty_diff() {
        let c = log(&[z(1, 1), z(1, 2)]);
        let p = plan(z(1, 2), z(1, 2), &c, vec![]);
        assert!(!p.need_snap);
        assert_eq!(p.items, vec![SyncItem::Diff(z(1, 2))]);
    }

    #[test]
    fn diff_sends_the_missing_proposals_with_commits() {
        let c = log(&[z(1, 1), z(1, 2), z(1, 3)]);
        let p = plan(z(1, 1), z(1, 3), &c, vec![]);
        assert_eq!(
            p.items,
            vec![SyncItem::Diff(z(1, 3)), SyncItem::Proposal(c[1].clone()), SyncItem::Commit(z(1, 2)), SyncItem::Proposal(c[2].clone()), SyncItem::Commit(z(1, 3))]
        );
        assert_eq!(p.current_zxid, z(1, 3));
    }

    #[test]
    fn peer_ahead_is_truncated_to_the_last_commit() {
        let c = log(&[z(1, 1), z(1, 2)]);
        let p = plan(z(1, 5), z(1, 2), &c, vec![]);
        assert_eq!(p.items, vec![SyncItem::Trunc(z(1, 2))]);
        assert_eq!(p.current_zxid, z(1, 2));
        // A new-epoch zxid (counter 0) past the log is not truncated but snapshotted.
        let p = plan(z(2, 0), z(1, 2), &c, vec![]);
        assert!(!p.items.iter().any(|i| matches!(i, SyncItem::Trunc(_))));
    }

    #[test]
    fn divergent_peer_across_epochs_or_into_a_hole_gets_a_snapshot() {
        // The peer logged 2.3 which was never committed; the leader's history goes on in epoch 3.
        let c = log(&[z(2, 1), z(2, 2), z(3, 1)]);
        let p = plan(z(2, 3), z(3, 1), &c, vec![]);
        assert!(p.need_snap, "across epochs: snapshot");
        // Upstream would TRUNC a peer at 1.3 to 1.2 when the leader has 1.4 after 1.2; in
        // one epoch that is a hole in the leader's history (1.4 committed means 1.3 was):
        // never TRUNC into it.
        let c = log(&[z(1, 1), z(1, 2), z(1, 4)]);
        let p = plan(z(1, 3), z(1, 4), &c, vec![]);
        assert!(p.need_snap);
        assert!(p.items.is_empty());
        // Across epochs the TRUNC is refused: snapshot instead.
        let c = log(&[z(1, 1), z(2, 1)]);
        let p = plan(z(1, 3), z(2, 1), &c, vec![]);
        assert!(p.need_snap);
        assert!(p.items.is_empty());
    }

    #[test]
    fn old_peer_uses_the_txn_log_then_the_committed_log() {
        let c = log(&[z(1, 5), z(1, 6)]);
        let disk = log(&[z(1, 1), z(1, 2), z(1, 3), z(1, 4), z(1, 5)]);
        let p = plan(z(1, 2), z(1, 6), &c, disk);
        assert!(!p.need_snap);
        let zx: Vec<i64> = p.items.iter().filter_map(|i| if let SyncItem::Commit(z) = i { Some(*z) } else { None }).collect();
        assert_eq!(zx, vec![z(1, 3), z(1, 4), z(1, 5), z(1, 6)]);
        assert_eq!(p.items[0], SyncItem::Diff(z(1, 6)));
        // A hole between the disk log and the committed log: snapshot.
        let disk = log(&[z(1, 1), z(1, 2), z(1, 3)]);
        let p = plan(z(1, 2), z(1, 6), &c, disk);
        assert!(p.need_snap);
        // Nothing on disk reaches back: snapshot.
        let p = plan(z(1, 2), z(1, 6), &c, vec![]);
        assert!(p.need_snap);
        assert_eq!(p.current_zxid, z(1, 6));
    }

    #[test]
    fn hole_in_the_txn_log_is_not_read_as_history() {
        // The leader was synced by SNAP at 1.8 while its log ended at 1.4: its log jumps
        // from 1.4 to 1.9. A peer at 1.8 must not be told to TRUNC to 1.4.
        let c = log(&[z(1, 9), z(1, 10)]);
        let disk = log(&[z(1, 1), z(1, 2), z(1, 3), z(1, 4), z(1, 9), z(1, 10)]);
        let p = plan(z(1, 8), z(1, 10), &c, disk.clone());
        assert!(p.need_snap, "{p:?}");
        assert!(!p.items.iter().any(|i| matches!(i, SyncItem::Trunc(_))));
        // A peer before the hole: its DIFF would cross the hole too.
        let p = plan(z(1, 2), z(1, 10), &c, disk);
        assert!(p.need_snap);
        // Holes wholly before the peer do not matter.
        let disk = log(&[z(1, 1), z(1, 5), z(1, 6), z(1, 7), z(1, 8), z(1, 9)]);
        let p = plan(z(1, 7), z(1, 10), &c, disk);
        assert!(!p.need_snap, "{p:?}");
        assert_eq!(p.items[0], SyncItem::Diff(z(1, 10)));
        // A new epoch starting at counter 1 is no hole.
        let c = log(&[z(2, 1), z(2, 2)]);
        let disk = log(&[z(1, 1), z(1, 2), z(2, 1)]);
        let p = plan(z(1, 2), z(2, 2), &c, disk);
        assert!(!p.need_snap, "{p:?}");
    }

    #[test]
    fn empty_committed_log_uses_the_tree_zxid() {
        let p = plan(z(1, 0), z(1, 0), &[], vec![]);
        assert_eq!(p.items, vec![SyncItem::Diff(z(1, 0))]);
        // A fresh learner (zxid 0) against a leader with data but no committed log: snapshot.
        let p = plan(0, z(1, 7), &[], vec![]);
        assert!(p.need_snap);
    }
}
