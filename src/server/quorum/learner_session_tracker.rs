//! `LearnerSessionTracker`: a follower's, an observer's and a read-only server's
//! tracker. Global sessions belong to the leader: a learner hands out their ids from
//! its own range, never expires one, and records which ones its clients used since the
//! last PING so the leader can keep them alive (`touchTable`, swapped out by every PING
//! reply). With `localSessionsEnabled` new sessions are local ([`LocalSessions`]):
//! created, touched and expired here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::proto::Code;
use crate::server::quorum::local_session_tracker::LocalSessions;
use crate::server::session_tracker_impl::initialize_next_session_id;
use crate::server::zk_database::ZKDatabase;

pub struct LearnerSessionTracker {
    next_session_id: AtomicI64,
    touch_table: Mutex<HashMap<i64, i32>>,
    /// `globalSessionsWithTimeouts`: the database's session table.
    db: Arc<ZKDatabase>,
    pub local: Option<Arc<LocalSessions>>,
    /// `synchronized commitSession`.
    commit_lock: Mutex<()>,
}

impl LearnerSessionTracker {
    pub fn new(server_id: i64, db: Arc<ZKDatabase>, tick_time: i32, local_sessions_enabled: bool) -> Arc<LearnerSessionTracker> {
        Arc::new(LearnerSessionTracker {
            next_session_id: AtomicI64::new(initialize_next_session_id(server_id)),
            touch_table: Mutex::new(HashMap::new()),
            db,
            local: local_sessions_enabled.then(|| LocalSessions::new(tick_time, server_id)),
            commit_lock: Mutex::new(()),
        })
    }

    pub fn create_session(&self, timeout: i32) -> i64 {
        match &self.local {
            Some(l) => l.create_session(timeout),
            None => self.next_session_id.fetch_add(1, Ordering::AcqRel),
        }
    }

    /// `commitSession`: a createSession txn was applied (the caller put it in the
    /// database's table; `added` says it was not there yet).
    pub fn commit_session(&self, id: i64, timeout: i32, added: bool) {
        let _g = self.commit_lock.lock();
        if added {
            log::info!("Committing global session 0x{id:x}");
        }
        // A session that moved before its upgrade finished may have been made local
        // again here: once it is global it must not also be local.
        if let Some(l) = &self.local {
            l.remove(id);
            l.finished_upgrading(id);
        }
        self.touch_table.lock().insert(id, timeout);
    }

    /// `removeSession`.
    pub fn remove_session(&self, id: i64) {
        if let Some(l) = &self.local {
            l.remove(id);
        }
        self.touch_table.lock().remove(&id);
    }

    /// A local session is touched here; any other session a client uses is reported
    /// to the leader, which decides whether it is alive — with local sessions on, only
    /// a session known to be global (or being upgraded).
    pub fn touch_session(&self, id: i64, timeout: i32) -> bool {
        if let Some(l) = &self.local {
            if l.touch(id, timeout) {
                return true;
            }
            if !self.is_global_session(id) && !l.is_upgrading(id) {
                return false;
            }
        }
        self.touch_table.lock().insert(id, timeout);
        true
    }

    /// `checkSession`: a local session is checked here; global ones at the leader.
    pub fn check_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        let Some(l) = &self.local else { return Ok(()) };
        match l.check(id, owner) {
            Ok(()) => Ok(()),
            Err(Code::UnknownSession) if self.is_global_session(id) => Ok(()),
            Err(Code::UnknownSession) => Err(Code::SessionExpired),
            Err(e) => Err(e),
        }
    }

    /// `setOwner`.
    pub fn set_owner(&self, id: i64, owner: u64) -> Result<(), Code> {
        let Some(l) = &self.local else { return Ok(()) };
        match l.set_owner(id, owner) {
            Ok(()) => Ok(()),
            Err(_) if self.is_global_session(id) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn set_session_closing(&self, id: i64) {
        if let Some(l) = &self.local {
            l.set_closing(id);
        }
    }

    /// `snapshot()`: the sessions touched since the last call.
    pub fn take_touch_snapshot(&self) -> HashMap<i64, i32> {
        std::mem::take(&mut *self.touch_table.lock())
    }

    pub fn is_global_session(&self, id: i64) -> bool {
        self.db.sessions.lock().contains_key(&id)
    }

    pub fn global_session_count(&self) -> usize {
        self.db.sessions.lock().len()
    }

    /// `dumpSessions`: the local sessions (if enabled), then `Global Sessions(N):` and
    /// one line per session.
    pub fn dump(&self) -> String {
        let mut out = self.local.as_ref().map(|l| l.dump()).unwrap_or_default();
        let sessions = self.db.sessions.lock();
        let mut ids: Vec<(&i64, &i32)> = sessions.iter().collect();
        ids.sort();
        out.push_str(&format!("Global Sessions({}):\n", ids.len()));
        for (id, to) in ids {
            out.push_str(&format!("0x{id:x}\t{to}ms\n"));
        }
        out
    }

    pub fn shutdown(&self) {
        if let Some(l) = &self.local {
            l.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::persistence::{FileTxnSnapLog, Restored};

    fn db() -> Arc<ZKDatabase> {
        let log = FileTxnSnapLog { data_dir: std::path::PathBuf::new(), snap_dir: std::path::PathBuf::new() };
        let restored = Restored {
            tree: crate::server::data_tree::DataTree::new(),
            sessions: HashMap::from([(2 << 56 | 7, 4000)]),
            snapshot: None,
            replayed: 0,
            committed: Vec::new(),
        };
        ZKDatabase::new(log, restored)
    }

    #[test]
    fn with_local_sessions_only_known_sessions_are_touched() {
        let t = LearnerSessionTracker::new(3, db(), 2000, true);
        let id = t.create_session(6000);
        assert!(t.touch_session(id, 6000), "local session");
        assert!(t.take_touch_snapshot().is_empty(), "a local session is not reported to the leader");
        assert!(t.touch_session(2 << 56 | 7, 4000), "global session");
        assert!(!t.touch_session(3 << 56 | 99, 4000), "unknown session");
        assert_eq!(t.take_touch_snapshot().len(), 1);
        assert_eq!(t.check_session(3 << 56 | 99, None), Err(Code::SessionExpired));
        assert_eq!(t.check_session(2 << 56 | 7, None), Ok(()));
        assert!(t.dump().starts_with("Local Session Sets (1)/(1):\n"), "{}", t.dump());
        t.remove_session(id);
        assert_eq!(t.local.as_ref().map(|l| l.count()), Some(0));
    }

    #[test]
    fn without_local_sessions_everything_goes_to_the_leader() {
        let t = LearnerSessionTracker::new(3, db(), 2000, false);
        assert!(t.touch_session(3 << 56 | 99, 4000));
        assert_eq!(t.check_session(3 << 56 | 99, None), Ok(()));
        assert!(t.dump().starts_with("Global Sessions(1):\n"));
    }
}
