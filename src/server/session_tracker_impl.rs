//! `SessionTrackerImpl`: session ids, timeouts and expiry, with its own thread
//! ("SessionTracker") that wakes per tickTime bucket and expires whole buckets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::common::time;
use crate::proto::Code;
use crate::common::ephemeral_type::CONTAINER_EPHEMERAL_OWNER;
use crate::server::expiry_queue::ExpiryQueue;

pub struct Session {
    pub session_id: i64,
    pub timeout: i32,
    pub closing: bool,
    /// Upstream's session owner (the ServerCnxn class marker in standalone); a request
    /// from another owner gets SessionMoved. One owner value per server here.
    pub owner: Option<u64>,
}

struct State {
    sessions_by_id: HashMap<i64, Session>,
    queue: ExpiryQueue<i64>,
    next_session_id: i64,
}

/// Receives sessions whose time ran out (`SessionExpirer`).
pub type Expirer = Box<dyn Fn(i64, i32) + Send + Sync>;

pub struct SessionTrackerImpl {
    state: Mutex<State>,
    wake: Condvar,
    running: AtomicBool,
    pub tick_time: i32,
}

/// `initializeNextSessionId`: server id in the top byte, monotonic ms below.
pub fn initialize_next_session_id(sid: i64) -> i64 {
    let mut next = ((time::current_elapsed_time() << 24) as u64 >> 8) as i64;
    next |= sid << 56;
    if next == CONTAINER_EPHEMERAL_OWNER {
        next += 1;
    }
    next
}

impl SessionTrackerImpl {
    pub fn new(tick_time: i32, server_id: i64, sessions: &HashMap<i64, i32>) -> Arc<Self> {
        let t = Arc::new(SessionTrackerImpl {
            state: Mutex::new(State {
                sessions_by_id: HashMap::new(),
                queue: ExpiryQueue::new(tick_time as i64),
                next_session_id: initialize_next_session_id(server_id),
            }),
            wake: Condvar::new(),
            running: AtomicBool::new(true),
            tick_time,
        });
        for (&id, &to) in sessions {
            t.track_session(id, to);
        }
        t
    }

    /// Starts the "SessionTracker" thread.
    pub fn start(self: &Arc<Self>, expirer: Expirer) -> std::io::Result<thread::JoinHandle<()>> {
        let me = self.clone();
        thread::Builder::new().name("SessionTracker".into()).spawn(move || me.run(expirer))
    }

    fn run(&self, expirer: Expirer) {
        while self.running.load(Ordering::Acquire) {
            let expired: Vec<(i64, i32)> = {
                let mut st = self.state.lock();
                let wait = st.queue.wait_time();
                if wait > 0 {
                    self.wake.wait_for(&mut st, Duration::from_millis(wait as u64));
                    continue;
                }
                let ids = st.queue.poll();
                ids.into_iter()
                    .filter_map(|id| {
                        st.sessions_by_id.get_mut(&id).map(|s| {
                            s.closing = true;
                            (id, s.timeout)
                        })
                    })
                    .collect()
            };
            for (id, to) in expired {
                log::info!("Expiring session 0x{id:x}, timeout of {to}ms exceeded");
                expirer(id, to);
            }
        }
        log::info!("SessionTrackerImpl exited loop!");
    }

    pub fn shutdown(&self) {
        self.running.store(false, Ordering::Release);
        self.wake.notify_all();
    }

    pub fn create_session(&self, timeout: i32) -> i64 {
        let id = {
            let mut st = self.state.lock();
            let id = st.next_session_id;
            st.next_session_id += 1;
            id
        };
        self.track_session(id, timeout);
        id
    }

    pub fn track_session(&self, id: i64, timeout: i32) -> bool {
        let mut st = self.state.lock();
        let added = if let std::collections::hash_map::Entry::Vacant(e) = st.sessions_by_id.entry(id) {
            e.insert(Session { session_id: id, timeout, closing: false, owner: None });
            true
        } else {
            false
        };
        st.queue.update(id, timeout as i64);
        added
    }

    pub fn touch_session(&self, id: i64, timeout: i32) -> bool {
        let mut st = self.state.lock();
        match st.sessions_by_id.get(&id) {
            None => false,
            Some(s) if s.closing => false,
            Some(_) => {
                st.queue.update(id, timeout as i64);
                true
            }
        }
    }

    /// Every session's deadline starts over from now: what upstream gets by creating the
    /// tracker only when the server starts (a leader's, once its epoch is established).
    pub fn touch_all(&self) {
        let mut st = self.state.lock();
        let sessions: Vec<(i64, i32)> = st.sessions_by_id.values().filter(|s| !s.closing).map(|s| (s.session_id, s.timeout)).collect();
        for (id, to) in sessions {
            st.queue.update(id, to as i64);
        }
    }

    pub fn set_session_closing(&self, id: i64) {
        if let Some(s) = self.state.lock().sessions_by_id.get_mut(&id) {
            s.closing = true;
        }
    }

    /// `removeSession`; returns the timeout of the session if it was tracked.
    pub fn remove_session(&self, id: i64) -> Option<i32> {
        let mut st = self.state.lock();
        let removed = st.sessions_by_id.remove(&id).map(|s| s.timeout);
        st.queue.remove(&id);
        removed
    }

    /// The timeout of a tracked session.
    pub fn session_timeout(&self, id: i64) -> Option<i32> {
        self.state.lock().sessions_by_id.get(&id).map(|s| s.timeout)
    }

    pub fn is_tracking(&self, id: i64) -> bool {
        self.state.lock().sessions_by_id.contains_key(&id)
    }

    /// `checkSession`: UnknownSession, SessionExpired (closing) or SessionMoved.
    pub fn check_session(&self, id: i64, owner: Option<u64>) -> Result<(), Code> {
        let mut st = self.state.lock();
        let Some(s) = st.sessions_by_id.get_mut(&id) else { return Err(Code::UnknownSession) };
        if s.closing {
            return Err(Code::SessionExpired);
        }
        match (s.owner, owner) {
            (None, o) => {
                s.owner = o;
                Ok(())
            }
            (Some(a), Some(b)) if a != b => Err(Code::SessionMoved),
            _ => Ok(()),
        }
    }

    /// `setOwner`.
    pub fn set_owner(&self, id: i64, owner: u64) -> Result<(), Code> {
        let mut st = self.state.lock();
        match st.sessions_by_id.get_mut(&id) {
            Some(s) if !s.closing => {
                s.owner = Some(owner);
                Ok(())
            }
            _ => Err(Code::SessionExpired),
        }
    }

    pub fn session_count(&self) -> usize {
        self.state.lock().sessions_by_id.len()
    }

    pub fn sessions_with_timeouts(&self) -> HashMap<i64, i32> {
        self.state.lock().sessions_by_id.iter().map(|(k, v)| (*k, v.timeout)).collect()
    }

    /// `getSessionExpiryMap`: expiry time to the sessions expiring then, times ascending.
    pub fn expiry_buckets(&self) -> Vec<(i64, Vec<i64>)> {
        self.state.lock().queue.buckets()
    }

    /// `SessionTrackerImpl.dumpSessions` (the `dump` word's first part).
    pub fn dump(&self) -> String {
        let st = self.state.lock();
        let buckets = st.queue.buckets();
        let total: usize = buckets.iter().map(|(_, v)| v.len()).sum();
        let mut out = format!("Session Sets ({})/({}):\n", buckets.len(), total);
        for (t, ids) in buckets {
            out.push_str(&format!("{} expire at {}:\n", ids.len(), crate::common::time::java_date(t)));
            for id in ids {
                out.push_str(&format!("\t0x{id:x}\n"));
            }
        }
        out
    }
}
