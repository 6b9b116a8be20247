//! `SessionTracker`: the session bookkeeping a server's pipeline talks to. A standalone
//! server and a leader own the global sessions and expire them
//! ([`SessionTrackerImpl`]); a follower or observer only records client activity for
//! the leader and knows the sessions its applied txns created
//! ([`LearnerSessionTracker`]).

use std::sync::Arc;

use crate::proto::Code;
use crate::server::quorum::learner_session_tracker::LearnerSessionTracker;
use crate::server::session_tracker_impl::SessionTrackerImpl;

#[derive(Clone)]
pub enum SessionTracker {
    Global(Arc<SessionTrackerImpl>),
    Learner(Arc<LearnerSessionTracker>),
}

impl SessionTracker {
    pub fn create_session(&self, timeout: i32) -> i64 {
        match self {
            SessionTracker::Global(t) => t.create_session(timeout),
            SessionTracker::Learner(t) => t.create_session(timeout),
        }
    }

    /// `trackSession`: a learner leaves global sessions to the leader.
    pub fn track_session(&self, id: i64, timeout: i32) -> bool {
        match self {
            SessionTracker::Global(t) => t.track_session(id, timeout),
            SessionTracker::Learner(_) => false,
        }
    }

    /// `commitSession`: a createSession txn was applied.
    pub fn commit_session(&self, id: i64, timeout: i32) {
        match self {
            SessionTracker::Global(t) => {
                t.track_session(id, timeout);
            }
            SessionTracker::Learner(_) => {}
        }
    }

    pub fn touch_session(&self, id: i64, timeout: i32) -> bool {
        match self {
            SessionTracker::Global(t) => t.touch_session(id, timeout),
            SessionTracker::Learner(t) => t.touch_session(id, timeout),
        }
    }

    pub fn check_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        match self {
            SessionTracker::Global(t) => t.check_session(id, owner),
            SessionTracker::Learner(_) => Ok(()),
        }
    }

    /// `setOwner`: SessionExpired for an unknown or closing session.
    pub fn set_owner(&self, id: i64, owner: u64) -> Result<(), Code> {
        match self {
            SessionTracker::Global(t) => t.set_owner(id, owner),
            SessionTracker::Learner(_) => Ok(()),
        }
    }

    pub fn set_session_closing(&self, id: i64) {
        if let SessionTracker::Global(t) = self {
            t.set_session_closing(id);
        }
    }

    pub fn remove_session(&self, id: i64) {
        if let SessionTracker::Global(t) = self {
            t.remove_session(id);
        }
    }

    pub fn session_count(&self) -> usize {
        match self {
            SessionTracker::Global(t) => t.session_count(),
            SessionTracker::Learner(t) => t.global_session_count(),
        }
    }

    pub fn dump(&self) -> String {
        match self {
            SessionTracker::Global(t) => t.dump(),
            SessionTracker::Learner(t) => t.dump(),
        }
    }

    pub fn shutdown(&self) {
        if let SessionTracker::Global(t) = self {
            t.shutdown();
        }
    }

    pub fn global(&self) -> Option<&Arc<SessionTrackerImpl>> {
        match self {
            SessionTracker::Global(t) => Some(t),
            SessionTracker::Learner(_) => None,
        }
    }

    pub fn learner(&self) -> Option<&Arc<LearnerSessionTracker>> {
        match self {
            SessionTracker::Learner(t) => Some(t),
            SessionTracker::Global(_) => None,
        }
    }
}
