//! Causal order for the oracle. The client sees the primary's replies, so its next
//! request may depend on anything the primary has answered so far, on any connection
//! (client B reads what client A's acknowledged write wrote). The oracle runs behind
//! the primary (it gets the same frames, but nobody waits for it), so B's read could
//! reach the oracle before A's write has: a false difference.
//!
//! So every request carries a barrier taken when the client thread read it: the number
//! of primary replies seen so far (proxy-wide), and the number of watch events the
//! primary sent this connection. The oracle writer holds the request until the oracle
//! has answered every request the primary had answered by then, and has sent this
//! connection as many events — or until the grace window runs out (then it goes on,
//! and whatever the oracle got wrong is reported as usual).
//!
//! The same bookkeeping pairs the two servers' zxids: when both have answered a request,
//! (primary zxid, oracle zxid) is a point where their histories agree. A zxid the client
//! sends (lastZxidSeen on reconnect, SetWatches' relativeZxid) is a primary zxid; the
//! oracle gets the oracle zxid of the latest pair at or below it.
//!
//! Requests that are truly concurrent (neither client could have seen the other's
//! reply) are not ordered: the two servers may order them differently, and a race
//! between clients (two creates of one path) can then show up as a difference.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A request's proxy-wide id.
pub type Gid = u64;

#[derive(Default)]
struct State {
    next_gid: Gid,
    /// Primary replies seen so far (the barrier's clock).
    next_seq: u64,
    /// Answered by the primary, not yet by the oracle: seq -> (gid, connection, zxid).
    waiting: BTreeMap<u64, (Gid, u64, i64)>,
    waiting_seq: HashMap<Gid, u64>,
    /// Answered by the oracle first: gid -> (connection, zxid).
    oracle_first: HashMap<Gid, (u64, i64)>,
    /// Primary zxid -> oracle zxid where both answered the same request.
    zxids: BTreeMap<i64, i64>,
    /// Waiting entries below this seq hold nobody any more: a waiter timed out on them
    /// (they stay in `waiting` until the oracle answers or their connection ends, so
    /// nothing leaks into `oracle_first`).
    released_below: u64,
}

/// Zxid pairs kept; the oldest go first (clients send recent zxids).
const MAX_ZXID_PAIRS: usize = 100_000;

impl State {
    fn barrier_met(&self, b: &Barrier) -> bool {
        self.released_below >= b.seq
            || !self.waiting.range(self.released_below..b.seq).any(|(_, (_, c, _))| Some(*c) != b.except)
    }

    fn pair(&mut self, primary: i64, oracle: i64) {
        if primary <= 0 || oracle <= 0 {
            return;
        }
        self.zxids.insert(primary, oracle);
        while self.zxids.len() > MAX_ZXID_PAIRS {
            self.zxids.pop_first();
        }
    }
}

#[derive(Default)]
pub struct Order {
    state: Mutex<State>,
    changed: Condvar,
}

/// What a request waits for before it is written to the oracle.
#[derive(Debug, Clone, Copy)]
pub struct Barrier {
    seq: u64,
    events: u64,
    /// A connection whose own requests are not waited for: a server answers one
    /// session's requests in order, so the oracle cannot overtake them anyway.
    except: Option<u64>,
}

impl Order {
    pub fn new_gid(&self) -> Gid {
        let mut s = self.state.lock();
        s.next_gid += 1;
        s.next_gid
    }

    /// The barrier of a request read now on connection `except` (whose own earlier
    /// requests need no wait), whose primary has sent `primary_events` watch events.
    pub fn barrier(&self, except: Option<u64>, primary_events: u64) -> Barrier {
        Barrier { seq: self.state.lock().next_seq, events: primary_events, except }
    }

    /// The primary answered request `gid` of connection `cnx`. Called before the reply
    /// is written to the client, so no later request can miss it.
    pub fn primary_answered(&self, gid: Gid, cnx: u64, zxid: i64) {
        let mut s = self.state.lock();
        if let Some((_, oracle_zxid)) = s.oracle_first.remove(&gid) {
            s.pair(zxid, oracle_zxid);
            return;
        }
        let seq = s.next_seq;
        s.next_seq += 1;
        s.waiting.insert(seq, (gid, cnx, zxid));
        s.waiting_seq.insert(gid, seq);
    }

    /// The oracle answered request `gid` of connection `cnx`.
    pub fn oracle_answered(&self, gid: Gid, cnx: u64, zxid: i64) {
        let mut s = self.state.lock();
        match s.waiting_seq.remove(&gid) {
            Some(seq) => {
                if let Some((_, _, primary_zxid)) = s.waiting.remove(&seq) {
                    s.pair(primary_zxid, zxid);
                }
                drop(s);
                self.changed.notify_all();
            }
            None => {
                s.oracle_first.insert(gid, (cnx, zxid));
            }
        }
    }

    /// The oracle's zxid for the primary's `zxid`: that of the latest pair at or below
    /// it (0 when there is none: the oracle then takes it as "seen nothing").
    pub fn oracle_zxid(&self, zxid: i64) -> i64 {
        self.state.lock().zxids.range(..=zxid).next_back().map(|(_, o)| *o).unwrap_or(0)
    }

    /// The oracle sent a watch event (a writer may be waiting for it).
    pub fn oracle_event(&self) {
        let _guard = self.state.lock();
        self.changed.notify_all();
    }

    /// Waits until `b` is met or `deadline` passes; false on timeout.
    /// `oracle_events` reads the connection's count of events from the oracle.
    pub fn wait(&self, b: Barrier, oracle_events: impl Fn() -> u64, deadline: Instant) -> bool {
        let mut s = self.state.lock();
        loop {
            if s.barrier_met(&b) && oracle_events() >= b.events {
                return true;
            }
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                // The oracle did not answer those within a grace window (the comparator
                // reports them); later requests are not held for them again.
                s.released_below = s.released_below.max(b.seq);
                return false;
            }
        }
    }

    /// A connection's oracle is gone (or the connection ended): nobody waits for its
    /// requests any more.
    pub fn forget_connection(&self, cnx: u64) {
        let mut s = self.state.lock();
        let gone: Vec<(u64, Gid)> =
            s.waiting.iter().filter(|(_, (_, c, _))| *c == cnx).map(|(seq, (g, _, _))| (*seq, *g)).collect();
        for (seq, gid) in gone {
            s.waiting.remove(&seq);
            s.waiting_seq.remove(&gid);
        }
        s.oracle_first.retain(|_, (c, _)| *c != cnx);
        drop(s);
        self.changed.notify_all();
    }
}

/// Requests of one connection awaiting a reply from one server, as (xid, gid), in
/// request order. Replies are matched by xid (the first entry with that xid), since a
/// server answers auth packets at once, ahead of requests still in its pipeline.
#[derive(Default)]
pub struct InFlight {
    q: Mutex<VecDeque<(i32, Gid)>>,
}

impl InFlight {
    /// Tracks a request; false (not tracked) when `max` are already in flight.
    pub fn push(&self, xid: i32, gid: Gid, max: usize) -> bool {
        let mut q = self.q.lock();
        if q.len() >= max {
            return false;
        }
        q.push_back((xid, gid));
        true
    }

    pub fn take(&self, xid: i32) -> Option<Gid> {
        let mut q = self.q.lock();
        let i = q.iter().position(|(x, _)| *x == xid)?;
        q.remove(i).map(|(_, g)| g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_request_waits_for_what_the_primary_answered_before_it() {
        let o = Order::default();
        let (a, b) = (o.new_gid(), o.new_gid());
        o.primary_answered(a, 1, 100);
        let barrier = o.barrier(None, 0);
        let soon = || Instant::now() + Duration::from_millis(20);
        let waiter = {
            let o = &o;
            std::thread::scope(|sc| {
                let h = sc.spawn(move || o.wait(barrier, || 0, Instant::now() + Duration::from_secs(10)));
                std::thread::sleep(Duration::from_millis(50));
                o.oracle_answered(b, 2, 7); // the oracle answering something else does not help
                std::thread::sleep(Duration::from_millis(50));
                assert!(!h.is_finished(), "a is not answered by the oracle yet");
                o.oracle_answered(a, 1, 50);
                h.join().expect("waiter")
            })
        };
        assert!(waiter, "released when the oracle answered a");
        // The zxids of request a are a pair.
        assert_eq!((o.oracle_zxid(99), o.oracle_zxid(100), o.oracle_zxid(500)), (0, 50, 50));
        // Events: the oracle must have sent as many as the primary had.
        assert!(!o.wait(o.barrier(None, 2), || 1, soon()));
        assert!(o.wait(o.barrier(None, 2), || 2, soon()));
        // A dead connection's requests release their waiters.
        let c = o.new_gid();
        o.primary_answered(c, 3, 200);
        let barrier = o.barrier(None, 0);
        o.forget_connection(3);
        assert!(o.wait(barrier, || 0, soon()));
        // A timed-out wait releases what it waited for, for later waiters too.
        let d = o.new_gid();
        o.primary_answered(d, 4, 300);
        assert!(!o.wait(o.barrier(None, 0), || 0, soon()));
        assert!(o.wait(o.barrier(None, 0), || 0, soon()));
        o.oracle_answered(d, 4, 90);
        assert_eq!(o.oracle_zxid(300), 90);
        // A connection does not wait for its own requests.
        let e = o.new_gid();
        o.primary_answered(e, 5, 400);
        assert!(o.wait(o.barrier(Some(5), 0), || 0, soon()));
        assert!(!o.wait(o.barrier(Some(6), 0), || 0, soon()));
    }
}
