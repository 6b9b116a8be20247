//! `ZKDatabase`: what outlives a server's role — the tree, the persisted session table
//! and the in-memory `committedLog` (the last `commitLogCount` committed txns, in their
//! wire form) that a leader uses to bring learners up to date with a DIFF. A standalone
//! server and each quorum role (leader, follower, observer) build their
//! `ZooKeeperServer` on the same database.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::server::data_tree::DataTree;
use crate::server::persistence::file_txn_log::FileTxnIterator;
use crate::server::persistence::util::marshall_txn_entry;
use crate::server::persistence::file_txn_snap_log::process_transaction;
use crate::server::persistence::{FileTxnSnapLog, Restored};
use crate::system_properties;

/// `ZKDatabase.DEFAULT_COMMIT_LOG_COUNT`, also the minimum.
pub const DEFAULT_COMMIT_LOG_COUNT: usize = 500;
/// `ZKDatabase.DEFAULT_SNAPSHOT_SIZE_FACTOR`.
pub const DEFAULT_SNAPSHOT_SIZE_FACTOR: f64 = 0.33;

/// One committed txn, as a PROPOSAL carries it (TxnHeader ‖ body ‖ [TxnDigest]).
#[derive(Debug, Clone)]
pub struct CommittedProposal {
    pub zxid: i64,
    pub data: Arc<[u8]>,
}

/// The committed log with its bounds (`minCommittedLog` / `maxCommittedLog`).
#[derive(Debug, Default)]
pub struct CommittedLog {
    pub proposals: VecDeque<CommittedProposal>,
    pub min: i64,
    pub max: i64,
}

pub struct ZKDatabase {
    pub tree: Arc<RwLock<DataTree>>,
    /// `sessionsWithTimeouts`: the sessions that snapshots persist, kept by the applied
    /// createSession / closeSession txns on every kind of server.
    pub sessions: Mutex<HashMap<i64, i32>>,
    /// `logLock` + `committedLog`: readers are learner syncs.
    committed_log: RwLock<CommittedLog>,
    commit_log_count: usize,
    pub txn_snap_log: FileTxnSnapLog,
}

impl ZKDatabase {
    /// A database from what `FileTxnSnapLog::restore` loaded.
    pub fn new(txn_snap_log: FileTxnSnapLog, restored: Restored) -> Arc<ZKDatabase> {
        let db = Arc::new(ZKDatabase {
            tree: Arc::new(RwLock::new(DataTree::new())),
            sessions: Mutex::new(HashMap::new()),
            committed_log: RwLock::new(CommittedLog::default()),
            commit_log_count: commit_log_count(),
            txn_snap_log,
        });
        db.install(restored);
        db
    }

    /// `getLastSnapshotInfo`: (zxid, modification time in ms) of the newest snapshot
    /// in the snapshot directory, the one written last or loaded at start.
    pub fn last_snapshot_info(&self) -> Option<(i64, i64)> {
        let snap = self.txn_snap_log.snap();
        let path = snap.find_most_recent_snapshot().ok().flatten()?;
        let zxid = crate::server::persistence::util::zxid_of(&path, crate::server::persistence::util::SNAPSHOT_FILE_PREFIX);
        let ms = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)?;
        Some((zxid, ms))
    }

    fn install(&self, restored: Restored) {
        let Restored { tree, sessions, committed, .. } = restored;
        *self.tree.write() = tree;
        *self.sessions.lock() = sessions;
        let mut log = self.committed_log.write();
        log.proposals.clear();
        for p in committed {
            push_bounded(&mut log, p, self.commit_log_count);
        }
        if log.proposals.is_empty() {
            log.min = 0;
            log.max = 0;
        }
    }

    /// `loadDataBase`: restore from disk again (after a TRUNC).
    pub fn load_database(&self) -> io::Result<i64> {
        let restored = self.txn_snap_log.restore()?;
        let zxid = restored.tree.last_processed_zxid;
        self.install(restored);
        Ok(zxid)
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.tree.read().last_processed_zxid
    }

    pub fn set_last_processed_zxid(&self, zxid: i64) {
        self.tree.write().last_processed_zxid = zxid;
    }

    /// `addCommittedProposal`.
    pub fn add_committed_proposal(&self, zxid: i64, data: Arc<[u8]>) {
        let mut log = self.committed_log.write();
        push_bounded(&mut log, CommittedProposal { zxid, data }, self.commit_log_count);
    }

    /// A copy of the committed log under its read lock (`getCommittedLog`, min, max).
    pub fn committed_log(&self) -> (i64, i64, Vec<CommittedProposal>) {
        let log = self.committed_log.read();
        (log.min, log.max, log.proposals.iter().cloned().collect())
    }

    /// Runs `f` with the committed log read-locked: a learner's sync decision and its
    /// hand-over to forwarding must see no commit in between.
    pub fn with_committed_log<T>(&self, f: impl FnOnce(&CommittedLog) -> T) -> T {
        f(&self.committed_log.read())
    }

    /// `clear`: forget everything (before loading a snapshot from the leader).
    pub fn clear(&self) {
        *self.tree.write() = DataTree::new();
        self.sessions.lock().clear();
        let mut log = self.committed_log.write();
        log.proposals.clear();
        log.min = 0;
        log.max = 0;
    }

    /// `truncateLog`: cut the txn log after `zxid` and reload the database from disk.
    pub fn truncate_log(&self, zxid: i64) -> io::Result<bool> {
        self.clear();
        let truncated = self.txn_snap_log.txn_log().truncate(zxid)?;
        if !truncated {
            return Ok(false);
        }
        self.load_database()?;
        Ok(true)
    }

    /// `fastForwardDataBase`: apply what the txn log holds beyond the tree. When a quorum
    /// role ends, its log may hold proposals it accepted (and acked) whose COMMIT never
    /// came; they are part of this peer's history, so the tree, the vote of the next
    /// election (the last processed zxid) and the committed log must include them —
    /// otherwise a peer with acked txns votes with an older zxid, a peer without them
    /// can win, and the txns come back from the log only at the next restart, on top of
    /// another history. `ZooKeeperServer.shutdown(false)` does this upstream. Returns the
    /// last processed zxid.
    pub fn fast_forward_database(&self) -> io::Result<i64> {
        let mut added = Vec::new();
        let zxid = {
            let mut tree = self.tree.write();
            let mut sessions = self.sessions.lock();
            let from = tree.last_processed_zxid;
            for entry in self.txn_snap_log.txn_log().read(from + 1)? {
                let e = entry?;
                if e.header.zxid <= tree.last_processed_zxid {
                    continue;
                }
                process_transaction(&e.header, e.txn.as_ref(), &mut tree, &mut sessions);
                tree.last_processed_zxid = e.header.zxid;
                added.push(CommittedProposal {
                    zxid: e.header.zxid,
                    data: Arc::from(marshall_txn_entry(&e.header, e.txn.as_ref(), e.digest.as_ref())),
                });
            }
            if !added.is_empty() {
                log::info!("Fast-forwarded the database from 0x{from:x} to 0x{:x} with {} txns of the txn log", tree.last_processed_zxid, added.len());
            }
            tree.last_processed_zxid
        };
        // The committed log is locked after the tree is released: learner syncs take them
        // in the other order.
        let mut log = self.committed_log.write();
        for p in added {
            push_bounded(&mut log, p, self.commit_log_count);
        }
        Ok(zxid)
    }

    /// `isTxnLogSyncEnabled`: syncing a learner from the on-disk txn log is allowed
    /// unless `snapshotSizeFactor` is negative.
    pub fn is_txn_log_sync_enabled(&self) -> bool {
        snapshot_size_factor() >= 0.0
    }

    /// `calculateTxnLogSizeLimit`: the log bytes a DIFF may read, a fraction of the newest
    /// snapshot's size (-1: no limit known).
    pub fn calculate_txn_log_size_limit(&self) -> i64 {
        let factor = snapshot_size_factor();
        if factor < 0.0 {
            return -1;
        }
        match self.txn_snap_log.snap().find_most_recent_snapshot().ok().flatten() {
            Some(f) => match std::fs::metadata(&f) {
                Ok(m) => (m.len() as f64 * factor) as i64,
                Err(_) => -1,
            },
            None => -1,
        }
    }

    /// `getProposalsFromTxnLog`: the logged txns from `start_zxid` on, if the logs reach
    /// back that far and the files to read stay within `size_limit` bytes (-1: none).
    pub fn proposals_from_txn_log(&self, start_zxid: i64, size_limit: i64) -> Vec<CommittedProposal> {
        let itr = match FileTxnIterator::new(&self.txn_snap_log.data_dir, start_zxid, false) {
            Ok(i) => i,
            Err(e) => {
                log::error!("Unable to read txn log from 0x{start_zxid:x}: {e}");
                return Vec::new();
            }
        };
        // The first txn must be at or before the start, else there is a gap.
        match itr.peek() {
            Some(e) if e.header.zxid <= start_zxid => {}
            _ => return Vec::new(),
        }
        if size_limit >= 0 && itr.storage_size() as i64 > size_limit {
            log::info!(
                "Txnlog size: {} exceeds sizeLimit: {size_limit}",
                itr.storage_size()
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for e in itr {
            match e {
                Ok(e) => out.push(CommittedProposal {
                    zxid: e.header.zxid,
                    data: Arc::from(marshall_txn_entry(&e.header, e.txn.as_ref(), e.digest.as_ref())),
                }),
                Err(err) => {
                    log::error!("Error reading txn log for a learner sync: {err}");
                    break;
                }
            }
        }
        out
    }
}

/// [`ZKDatabase::fast_forward_database`] once a role has ended (a no-op when the role's
/// server already did it on shutdown); a log that cannot be read leaves the database as
/// it was (logged).
pub fn fast_forward(db: &ZKDatabase) {
    if let Err(e) = db.fast_forward_database() {
        log::error!("Error updating DB from the txn log: {e}");
    }
}

fn push_bounded(log: &mut CommittedLog, p: CommittedProposal, cap: usize) {
    if log.proposals.len() >= cap {
        log.proposals.pop_front();
        if let Some(f) = log.proposals.front() {
            log.min = f.zxid;
        }
    }
    if log.proposals.is_empty() {
        log.min = p.zxid;
    }
    log.max = p.zxid;
    log.proposals.push_back(p);
}

/// `zookeeper.commitLogCount`: at least the default.
pub fn commit_log_count() -> usize {
    system_properties::get_usize("zookeeper.commitLogCount")
        .map(|v| v.max(DEFAULT_COMMIT_LOG_COUNT))
        .unwrap_or(DEFAULT_COMMIT_LOG_COUNT)
}

/// `zookeeper.snapshotSizeFactor`.
pub fn snapshot_size_factor() -> f64 {
    system_properties::get("zookeeper.snapshotSizeFactor")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(DEFAULT_SNAPSHOT_SIZE_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower's log holds proposals its tree never applied (their COMMIT did not
    /// come before the role ended): fast-forwarding applies them, moves the last
    /// processed zxid (the next vote) to the last logged txn, and extends the committed
    /// log. Regression for issue #11: a follower voted with its last *applied* zxid, a
    /// peer without its acked txns won, and the txns came back from the log at the next
    /// restart on top of the new leader's history.
    #[test]
    fn fast_forward_applies_logged_but_uncommitted_txns() {
        use crate::proto::data::ACL;
        use crate::proto::op_code;
        use crate::proto::txn::{CreateTxn, TxnHeader};
        use crate::server::txn_record::TxnRecord;

        let dir = tempfile::tempdir().unwrap();
        let snap_log = FileTxnSnapLog::new(dir.path(), dir.path()).unwrap();
        let append = |zxids: std::ops::RangeInclusive<i64>| {
            let mut log = snap_log.txn_log();
            log.set_prealloc_size(64 * 1024);
            for z in zxids {
                let hdr = TxnHeader { client_id: 0x55, cxid: z as i32, zxid: z, time: 1_700_000_000_000, r#type: op_code::CREATE };
                let txn = TxnRecord::Create(CreateTxn {
                    path: format!("/n{z}"),
                    data: Some(vec![z as u8]),
                    acl: vec![ACL::new(31, "world", "anyone")],
                    ephemeral: false,
                    parent_c_version: -1,
                });
                log.append(&hdr, Some(&txn), None).unwrap();
            }
            log.commit().unwrap();
            log.close().unwrap();
        };
        let empty = Restored { tree: DataTree::new(), sessions: HashMap::new(), snapshot: None, replayed: 0, committed: Vec::new() };
        let db = ZKDatabase::new(snap_log.clone(), empty);
        append(0x1_0000_0001..=0x1_0000_0003);
        assert_eq!(db.fast_forward_database().unwrap(), 0x1_0000_0003);
        // Proposals 4 and 5 get logged (and acked) but never committed.
        append(0x1_0000_0004..=0x1_0000_0005);
        assert_eq!(db.last_processed_zxid(), 0x1_0000_0003);
        assert_eq!(db.fast_forward_database().unwrap(), 0x1_0000_0005);
        assert_eq!(db.last_processed_zxid(), 0x1_0000_0005);
        assert!(db.tree.read().get_node("/n4294967301").is_some(), "txn 0x100000005 applied");
        let (min, max, log) = db.committed_log();
        assert_eq!((min, max, log.len()), (0x1_0000_0001, 0x1_0000_0005, 5));
        // Nothing new: no change.
        assert_eq!(db.fast_forward_database().unwrap(), 0x1_0000_0005);
        assert_eq!(db.committed_log().2.len(), 5);
    }

    #[test]
    fn committed_log_keeps_the_newest_and_its_bounds() {
        let mut log = CommittedLog::default();
        for z in 1..=7 {
            push_bounded(&mut log, CommittedProposal { zxid: z, data: Arc::from(vec![z as u8]) }, 5);
        }
        assert_eq!(log.proposals.len(), 5);
        assert_eq!((log.min, log.max), (3, 7));
        assert_eq!(log.proposals.front().map(|p| p.zxid), Some(3));
    }
}
