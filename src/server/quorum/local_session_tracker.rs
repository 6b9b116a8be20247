//! Local sessions (`localSessionsEnabled`): `LocalSessionTracker` and the part of
//! `UpgradeableSessionTracker` that every quorum server's tracker shares.
//!
//! A local session lives only on the server its client connected to: that server
//! creates it, touches it and expires it with its own `SessionTracker` thread; no txn
//! is logged for it and the leader never hears of it. A client that needs a global
//! session (an ephemeral node) has its local session upgraded: it leaves this tracker,
//! is marked upgrading, and a createSession txn makes it global.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::proto::Code;
use crate::server::session_tracker_impl::SessionTrackerImpl;

pub struct LocalSessions {
    /// `LocalSessionTracker`: a SessionTrackerImpl of its own (ids from this server's
    /// range, its own expiry thread).
    pub tracker: Arc<SessionTrackerImpl>,
    /// `upgradingSessions`: upgraded here, their createSession not yet applied.
    upgrading: Mutex<HashMap<i64, i32>>,
    /// `makeUpgradeRequest`'s `synchronized (upgradeableSessionTracker)`.
    upgrade_lock: Mutex<()>,
}

impl LocalSessions {
    pub fn new(tick_time: i32, server_id: i64) -> Arc<LocalSessions> {
        Arc::new(LocalSessions {
            tracker: SessionTrackerImpl::new(tick_time, server_id, &HashMap::new()),
            upgrading: Mutex::new(HashMap::new()),
            upgrade_lock: Mutex::new(()),
        })
    }

    /// `LocalSessionTracker.createSession`: tracked (and committed) at once.
    pub fn create_session(&self, timeout: i32) -> i64 {
        self.tracker.create_session(timeout)
    }

    /// `isLocalSession`.
    pub fn is_local(&self, id: i64) -> bool {
        self.tracker.is_tracking(id)
    }

    /// `isUpgradingSession`.
    pub fn is_upgrading(&self, id: i64) -> bool {
        self.upgrading.lock().contains_key(&id)
    }

    /// `finishedUpgrading`: the session's createSession was applied.
    pub fn finished_upgrading(&self, id: i64) {
        self.upgrading.lock().remove(&id);
    }

    pub fn touch(&self, id: i64, timeout: i32) -> bool {
        self.tracker.touch_session(id, timeout)
    }

    pub fn check(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        self.tracker.check_session(id, owner)
    }

    pub fn set_owner(&self, id: i64, owner: u64) -> Result<(), Code> {
        self.tracker.set_owner(id, owner)
    }

    pub fn set_closing(&self, id: i64) {
        self.tracker.set_session_closing(id);
    }

    pub fn remove(&self, id: i64) {
        self.tracker.remove_session(id);
    }

    /// `getLocalSessionCount`.
    pub fn count(&self) -> usize {
        self.tracker.session_count()
    }

    /// `upgradeSession`: the session leaves the local tracker and is marked upgrading;
    /// `track_global` tracks it as global first (the leader's tracker does, from now on;
    /// a learner leaves that to the leader). Returns its timeout, or None if it is not
    /// a local session (any more).
    pub fn upgrade_session(&self, id: i64, track_global: impl FnOnce(i64, i32)) -> Option<i32> {
        let timeout = self.tracker.session_timeout(id)?;
        log::info!("Upgrading session 0x{id:x}");
        track_global(id, timeout);
        self.upgrading.lock().insert(id, timeout);
        self.tracker.remove_session(id);
        Some(timeout)
    }

    /// Holds the lock under which a local session is checked, upgraded and its
    /// createSession made, so two threads cannot upgrade it twice.
    pub fn upgrade_guard(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.upgrade_lock.lock()
    }

    /// `dumpSessions` of the local tracker, after "Local ".
    pub fn dump(&self) -> String {
        format!("Local {}", self.tracker.dump())
    }

    pub fn shutdown(&self) {
        self.tracker.shutdown();
    }
}
