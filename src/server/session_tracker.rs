//! `SessionTracker`: the session bookkeeping a server's pipeline talks to. A standalone
//! server owns its sessions and expires them ([`SessionTrackerImpl`]); a leader does the
//! same for the ensemble's global sessions ([`LeaderSessionTracker`]); a follower,
//! observer or read-only server only records client activity for the leader and knows
//! the sessions its applied txns created ([`LearnerSessionTracker`]). Quorum servers
//! may also keep local sessions (`localSessionsEnabled`, [`LocalSessions`]).

use std::sync::Arc;

use crate::proto::Code;
use crate::server::quorum::leader_session_tracker::LeaderSessionTracker;
use crate::server::quorum::learner_session_tracker::LearnerSessionTracker;
use crate::server::quorum::local_session_tracker::LocalSessions;
use crate::server::session_tracker_impl::SessionTrackerImpl;

#[derive(Clone)]
pub enum SessionTracker {
    Global(Arc<SessionTrackerImpl>),
    Leader(Arc<LeaderSessionTracker>),
    Learner(Arc<LearnerSessionTracker>),
}

impl SessionTracker {
    pub fn create_session(&self, timeout: i32) -> i64 {
        match self {
            SessionTracker::Global(t) => t.create_session(timeout),
            SessionTracker::Leader(t) => t.create_session(timeout),
            SessionTracker::Learner(t) => t.create_session(timeout),
        }
    }

    /// `trackSession`: a learner leaves global sessions to the leader.
    pub fn track_session(&self, id: i64, timeout: i32) -> bool {
        match self {
            SessionTracker::Global(t) => t.track_session(id, timeout),
            SessionTracker::Leader(t) => t.track_session(id, timeout),
            SessionTracker::Learner(_) => false,
        }
    }

    /// `commitSession`: a createSession txn was applied; `added` says the session was
    /// new in the database's session table.
    pub fn commit_session(&self, id: i64, timeout: i32, added: bool) {
        match self {
            SessionTracker::Global(t) => {
                t.track_session(id, timeout);
            }
            SessionTracker::Leader(t) => t.commit_session(id, timeout, added),
            SessionTracker::Learner(t) => t.commit_session(id, timeout, added),
        }
    }

    pub fn touch_session(&self, id: i64, timeout: i32) -> bool {
        match self {
            SessionTracker::Global(t) => t.touch_session(id, timeout),
            SessionTracker::Leader(t) => t.touch_session(id, timeout),
            SessionTracker::Learner(t) => t.touch_session(id, timeout),
        }
    }

    pub fn check_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        match self {
            SessionTracker::Global(t) => t.check_session(id, owner),
            SessionTracker::Leader(t) => t.check_session(id, owner),
            SessionTracker::Learner(t) => t.check_session(id, owner),
        }
    }

    /// `checkGlobalSession` (an ephemeral's owner): an unknown session has expired.
    pub fn check_global_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        match self {
            SessionTracker::Global(t) => match t.check_session(id, owner) {
                Err(Code::UnknownSession) => Err(Code::SessionExpired),
                r => r,
            },
            SessionTracker::Leader(t) => t.check_global_session(id, owner),
            // Upstream's learner tracker does not support it; a learner never prepares.
            SessionTracker::Learner(_) => Ok(()),
        }
    }

    /// `setOwner`: SessionExpired for an unknown or closing session.
    pub fn set_owner(&self, id: i64, owner: u64) -> Result<(), Code> {
        match self {
            SessionTracker::Global(t) => t.set_owner(id, owner),
            SessionTracker::Leader(t) => t.set_owner(id, owner),
            SessionTracker::Learner(t) => t.set_owner(id, owner),
        }
    }

    pub fn set_session_closing(&self, id: i64) {
        match self {
            SessionTracker::Global(t) => t.set_session_closing(id),
            SessionTracker::Leader(t) => t.set_session_closing(id),
            SessionTracker::Learner(t) => t.set_session_closing(id),
        }
    }

    pub fn remove_session(&self, id: i64) {
        match self {
            SessionTracker::Global(t) => {
                t.remove_session(id);
            }
            SessionTracker::Leader(t) => t.remove_session(id),
            SessionTracker::Learner(t) => t.remove_session(id),
        }
    }

    /// The local sessions, when this server keeps them.
    pub fn local(&self) -> Option<&Arc<LocalSessions>> {
        match self {
            SessionTracker::Global(_) => None,
            SessionTracker::Leader(t) => t.local.as_ref(),
            SessionTracker::Learner(t) => t.local.as_ref(),
        }
    }

    /// `isLocalSession`.
    pub fn is_local_session(&self, id: i64) -> bool {
        self.local().is_some_and(|l| l.is_local(id))
    }

    /// `isGlobalSession`.
    pub fn is_global_session(&self, id: i64) -> bool {
        match self {
            SessionTracker::Global(t) => t.is_tracking(id),
            SessionTracker::Leader(t) => t.is_global_session(id),
            SessionTracker::Learner(t) => t.is_global_session(id),
        }
    }

    /// `getLocalSessionCount`.
    pub fn local_session_count(&self) -> usize {
        self.local().map(|l| l.count()).unwrap_or(0)
    }

    /// `getSessionExpiryMap`: the global sessions' expiry buckets (a learner tracks none).
    pub fn expiry_buckets(&self) -> Vec<(i64, Vec<i64>)> {
        match self {
            SessionTracker::Global(t) => t.expiry_buckets(),
            SessionTracker::Leader(t) => t.global.expiry_buckets(),
            SessionTracker::Learner(_) => Vec::new(),
        }
    }

    pub fn dump(&self) -> String {
        match self {
            SessionTracker::Global(t) => t.dump(),
            SessionTracker::Leader(t) => t.dump(),
            SessionTracker::Learner(t) => t.dump(),
        }
    }

    pub fn shutdown(&self) {
        match self {
            SessionTracker::Global(t) => t.shutdown(),
            SessionTracker::Leader(t) => t.shutdown(),
            SessionTracker::Learner(t) => t.shutdown(),
        }
    }

    /// The trackers whose threads expire sessions on this server: the global one of a
    /// standalone server or leader, and the local one.
    pub fn expiring_trackers(&self) -> Vec<Arc<SessionTrackerImpl>> {
        let mut v = Vec::new();
        match self {
            SessionTracker::Global(t) => v.push(t.clone()),
            SessionTracker::Leader(t) => v.push(t.global.clone()),
            SessionTracker::Learner(_) => {}
        }
        if let Some(l) = self.local() {
            v.push(l.tracker.clone());
        }
        v
    }

    pub fn learner(&self) -> Option<&Arc<LearnerSessionTracker>> {
        match self {
            SessionTracker::Learner(t) => Some(t),
            _ => None,
        }
    }
}
