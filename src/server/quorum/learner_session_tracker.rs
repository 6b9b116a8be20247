//! `LearnerSessionTracker` (without local sessions): a follower or observer hands out
//! session ids from its own range, never expires a session (the leader does), and
//! records which sessions its clients used since the last PING so the leader can keep
//! them alive (`touchTable`, swapped out by every PING reply).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::server::session_tracker_impl::initialize_next_session_id;
use crate::server::zk_database::ZKDatabase;

pub struct LearnerSessionTracker {
    next_session_id: AtomicI64,
    touch_table: Mutex<HashMap<i64, i32>>,
    /// `globalSessionsWithTimeouts`: the database's session table.
    db: Arc<ZKDatabase>,
}

impl LearnerSessionTracker {
    pub fn new(server_id: i64, db: Arc<ZKDatabase>) -> Arc<LearnerSessionTracker> {
        Arc::new(LearnerSessionTracker {
            next_session_id: AtomicI64::new(initialize_next_session_id(server_id)),
            touch_table: Mutex::new(HashMap::new()),
            db,
        })
    }

    pub fn create_session(&self, _timeout: i32) -> i64 {
        self.next_session_id.fetch_add(1, Ordering::AcqRel)
    }

    /// Any session a client uses here is reported to the leader, which decides whether
    /// it is alive.
    pub fn touch_session(&self, id: i64, timeout: i32) -> bool {
        self.touch_table.lock().insert(id, timeout);
        true
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

    /// `dumpSessions`: `Global Sessions(N):` and one line per session.
    pub fn dump(&self) -> String {
        let sessions = self.db.sessions.lock();
        let mut ids: Vec<(&i64, &i32)> = sessions.iter().collect();
        ids.sort();
        let mut out = format!("Global Sessions({}):\n", ids.len());
        for (id, to) in ids {
            out.push_str(&format!("0x{id:x}\t{to}ms\n"));
        }
        out
    }
}
