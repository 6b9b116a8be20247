//! `LeaderSessionTracker`: the leader's global sessions (a [`SessionTrackerImpl`] that
//! expires them for the whole ensemble) and, with `localSessionsEnabled`, the local
//! sessions of the leader's own clients.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::proto::Code;
use crate::server::quorum::local_session_tracker::LocalSessions;
use crate::server::session_tracker_impl::SessionTrackerImpl;

pub struct LeaderSessionTracker {
    pub global: Arc<SessionTrackerImpl>,
    pub local: Option<Arc<LocalSessions>>,
    server_id: i64,
    /// `synchronized commitSession`.
    commit_lock: Mutex<()>,
}

/// `getServerIdFromSessionId`: the top byte of a session id.
pub fn server_id_from_session_id(id: i64) -> i64 {
    id >> 56
}

impl LeaderSessionTracker {
    pub fn new(global: Arc<SessionTrackerImpl>, tick_time: i32, server_id: i64, local_sessions_enabled: bool) -> Arc<LeaderSessionTracker> {
        Arc::new(LeaderSessionTracker {
            global,
            local: local_sessions_enabled.then(|| LocalSessions::new(tick_time, server_id)),
            server_id,
            commit_lock: Mutex::new(()),
        })
    }

    pub fn create_session(&self, timeout: i32) -> i64 {
        match &self.local {
            Some(l) => l.create_session(timeout),
            None => self.global.create_session(timeout),
        }
    }

    /// `trackSession`: a global session the leader now expires.
    pub fn track_session(&self, id: i64, timeout: i32) -> bool {
        let tracked = self.global.track_session(id, timeout);
        if self.local.is_some() && tracked {
            log::info!("Tracking global session 0x{id:x}");
        }
        tracked
    }

    /// `commitSession`: a createSession txn was applied (`added`: new in the database's
    /// table).
    pub fn commit_session(&self, id: i64, timeout: i32, added: bool) {
        let _g = self.commit_lock.lock();
        self.global.track_session(id, timeout);
        if added {
            log::info!("Committing global session 0x{id:x}");
        }
        if let Some(l) = &self.local {
            l.remove(id);
            l.finished_upgrading(id);
        }
    }

    pub fn remove_session(&self, id: i64) {
        if let Some(l) = &self.local {
            l.remove(id);
        }
        self.global.remove_session(id);
    }

    pub fn touch_session(&self, id: i64, timeout: i32) -> bool {
        if let Some(l) = &self.local {
            if l.touch(id, timeout) {
                return true;
            }
        }
        self.global.touch_session(id, timeout)
    }

    pub fn is_global_session(&self, id: i64) -> bool {
        self.global.is_tracking(id)
    }

    /// `checkSession`: local first (a session may be both while it is upgraded), then
    /// global; a session of ours that neither knows has expired, while another server's
    /// local session is left to that server.
    pub fn check_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        if let Some(l) = &self.local {
            match l.check(id, owner) {
                Ok(()) if !self.is_global_session(id) => return Ok(()),
                Ok(()) | Err(Code::UnknownSession) => {}
                Err(e) => return Err(e),
            }
        }
        match self.global.check_session(id, owner) {
            Ok(()) => return Ok(()),
            Err(Code::UnknownSession) => {}
            Err(e) => return Err(e),
        }
        if self.local.is_none() || server_id_from_session_id(id) == self.server_id {
            return Err(Code::SessionExpired);
        }
        Ok(())
    }

    /// `checkGlobalSession`: an unknown session has expired.
    pub fn check_global_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        match self.global.check_session(id, owner) {
            Err(Code::UnknownSession) => Err(Code::SessionExpired),
            r => r,
        }
    }

    pub fn set_owner(&self, id: i64, owner: u64) -> Result<(), Code> {
        if let Some(l) = &self.local {
            if l.set_owner(id, owner).is_ok() {
                return Ok(());
            }
        }
        self.global.set_owner(id, owner)
    }

    pub fn set_session_closing(&self, id: i64) {
        if let Some(l) = &self.local {
            l.set_closing(id);
        }
        self.global.set_session_closing(id);
    }

    /// `dumpSessions`: "Local " + the local sets, "Global " + the global sets.
    pub fn dump(&self) -> String {
        match &self.local {
            Some(l) => format!("{}Global {}", l.dump(), self.global.dump()),
            None => self.global.dump(),
        }
    }

    pub fn shutdown(&self) {
        if let Some(l) = &self.local {
            l.shutdown();
        }
        self.global.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn tracker(local: bool) -> Arc<LeaderSessionTracker> {
        LeaderSessionTracker::new(SessionTrackerImpl::new(2000, 1, &HashMap::new()), 2000, 1, local)
    }

    #[test]
    fn new_sessions_are_local_and_upgrade_to_global() {
        let t = tracker(true);
        let local = t.local.clone().expect("local tracker");
        let id = t.create_session(5000);
        assert_eq!(server_id_from_session_id(id), 1);
        assert!(local.is_local(id) && !t.is_global_session(id));
        assert_eq!(t.check_session(id, Some(1)), Ok(()));
        let timeout = local.upgrade_session(id, |i, to| {
            t.track_session(i, to);
        });
        assert_eq!(timeout, Some(5000));
        assert!(!local.is_local(id) && local.is_upgrading(id) && t.is_global_session(id));
        assert_eq!(local.upgrade_session(id, |_, _| panic!("upgraded twice")), None);
        t.commit_session(id, 5000, true);
        assert!(!local.is_upgrading(id));
        assert_eq!(t.check_global_session(id, Some(1)), Ok(()));
    }

    #[test]
    fn unknown_sessions_by_whose_they_are() {
        let t = tracker(true);
        // Ours but unknown: expired. Another server's: its local session, not ours to judge.
        assert_eq!(t.check_session(1 << 56 | 5, None), Err(Code::SessionExpired));
        assert_eq!(t.check_session(2 << 56 | 5, None), Ok(()));
        assert_eq!(t.check_global_session(2 << 56 | 5, None), Err(Code::SessionExpired));
        let t = tracker(false);
        assert_eq!(t.check_session(2 << 56 | 5, None), Err(Code::SessionExpired));
        let id = t.create_session(5000);
        assert!(t.is_global_session(id));
    }
}
