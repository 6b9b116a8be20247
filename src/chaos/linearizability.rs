//! A linearizability checker for recorded client histories, in the manner of Knossos and
//! Porcupine: Wing & Gong's search for a legal sequential order that respects real time,
//! with Lowe's memoization of (linearized set, model state) and partitioning by key
//! (P-compositionality: a history is linearizable iff each key's sub-history is).
//!
//! An operation whose outcome the client never learned (a timeout, a connection loss) is
//! recorded with no return: it may have taken effect at any point after its call, or
//! never. The checker tries both.
//!
//! ZooKeeper promises linearizable writes and FIFO client order, not linearizable reads: a
//! follower may answer a read from before a write another client already saw acknowledged.
//! Histories fed to this checker therefore read through `sync` + read on the same session
//! (or through conditional writes, whose version check is decided by the leader).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug + PartialEq;

    fn init(&self) -> Self::State;

    /// The state after `input` produced `output` from `state`, or None if that output is
    /// impossible from that state.
    fn step(&self, state: &Self::State, input: &Self::Input, output: &Self::Output) -> Option<Self::State>;

    /// The state after `input` took effect with an output nobody saw (an unknown outcome
    /// that is linearized); None if the input cannot take effect from `state`.
    fn step_unknown(&self, state: &Self::State, input: &Self::Input) -> Option<Self::State>;
}

/// One operation of a history. Times are any monotonic clock (ns).
#[derive(Debug, Clone)]
pub struct Operation<I, O> {
    pub client: usize,
    pub key: String,
    pub input: I,
    pub call: u64,
    /// None: the client never learned the outcome.
    pub ret: Option<(u64, O)>,
}

/// The verdict for one key's sub-history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Not linearizable: the longest prefix of operations (indices into the key's list)
    /// that could be linearized, for the report.
    Violation { key: String, longest_prefix: Vec<usize> },
    /// The search gave up (too many states); neither proven nor refuted.
    Unknown { key: String },
}

/// Checks each key's sub-history; the first violation (or give-up) found is returned.
pub fn check<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>], max_states: usize) -> Verdict {
    let mut by_key: BTreeMap<&str, Vec<&Operation<M::Input, M::Output>>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    for (key, ops) in by_key {
        match check_one(model, &ops, max_states) {
            Outcome::Ok => {}
            Outcome::Violation(longest) => return Verdict::Violation { key: key.to_owned(), longest_prefix: longest },
            Outcome::GaveUp => return Verdict::Unknown { key: key.to_owned() },
        }
    }
    Verdict::Ok
}

enum Outcome {
    Ok,
    Violation(Vec<usize>),
    GaveUp,
}

/// Events of the search: calls and returns in time order; a return comes after the
/// calls that happen at the same instant is not allowed (strict real-time order).
#[derive(Clone, Copy, Debug)]
enum Ev {
    Call(usize),
    Ret(usize),
}

fn check_one<M: Model>(model: &M, ops: &[&Operation<M::Input, M::Output>], max_states: usize) -> Outcome {
    let n = ops.len();
    // Ops without a return never return: they sit at the end.
    let mut events: Vec<(u64, u8, Ev)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, 1, Ev::Call(i)));
        if let Some((t, _)) = &op.ret {
            events.push((*t, 0, Ev::Ret(i)));
        }
    }
    // At equal times a return goes first: the two did not overlap.
    events.sort_by_key(|(t, kind, ev)| (*t, *kind, match ev { Ev::Call(i) | Ev::Ret(i) => *i }));
    let events: Vec<Ev> = events.into_iter().map(|(_, _, e)| e).collect();

    // Doubly linked list over `events`, so linearized entries can be lifted out and
    // put back (Porcupine's structure).
    let len = events.len();
    let mut next: Vec<usize> = (1..=len).collect();
    let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
    let head_sentinel = usize::MAX;
    let mut head = if len > 0 { 0 } else { head_sentinel };
    // Where each op's return event sits (None: no return).
    let mut ret_pos = vec![None; n];
    let mut call_pos = vec![0usize; n];
    for (p, e) in events.iter().enumerate() {
        match e {
            Ev::Call(i) => call_pos[*i] = p,
            Ev::Ret(i) => ret_pos[*i] = Some(p),
        }
    }
    let mut linearized = vec![false; n];
    let mut state = model.init();
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut cache: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let mut longest: Vec<usize> = Vec::new();
    let bits = |lin: &[bool]| -> Vec<u64> {
        let mut v = vec![0u64; lin.len().div_ceil(64)];
        for (i, b) in lin.iter().enumerate() {
            if *b {
                v[i / 64] |= 1 << (i % 64);
            }
        }
        v
    };

    let unlink = |p: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>, head: &mut usize| {
        let (pp, np) = (prev[p], next[p]);
        if pp == usize::MAX {
            *head = if np < len { np } else { head_sentinel };
        } else {
            next[pp] = np;
        }
        if np < len {
            prev[np] = pp;
        }
    };
    let relink = |p: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>, head: &mut usize| {
        let (pp, np) = (prev[p], next[p]);
        if pp == usize::MAX {
            *head = p;
        } else {
            next[pp] = p;
        }
        if np < len {
            prev[np] = p;
        }
    };

    let mut cur = head;
    loop {
        if head == head_sentinel || all_unreturned(&events, &linearized, head, &next, len) {
            // Everything that returned is linearized; the rest may never have happened.
            return Outcome::Ok;
        }
        if cache.len() > max_states {
            return Outcome::GaveUp;
        }
        let mut advanced = false;
        while cur != head_sentinel && cur < len {
            match events[cur] {
                Ev::Call(i) => {
                    let op = ops[i];
                    let next_state = match &op.ret {
                        Some((_, out)) => model.step(&state, &op.input, out),
                        None => model.step_unknown(&state, &op.input),
                    };
                    if let Some(s2) = next_state {
                        linearized[i] = true;
                        let key = (bits(&linearized), s2.clone());
                        if cache.insert(key) {
                            stack.push((i, state.clone()));
                            state = s2;
                            unlink(call_pos[i], &mut next, &mut prev, &mut head);
                            if let Some(rp) = ret_pos[i] {
                                unlink(rp, &mut next, &mut prev, &mut head);
                            }
                            if stack.len() > longest.len() {
                                longest = stack.iter().map(|(i, _)| *i).collect();
                            }
                            cur = head;
                            advanced = true;
                            break;
                        }
                        linearized[i] = false;
                    }
                    cur = next[cur];
                }
                Ev::Ret(_) => break,
            }
        }
        if advanced {
            continue;
        }
        // Stuck at a return (or at the end): undo the last choice.
        let Some((i, s_before)) = stack.pop() else {
            return Outcome::Violation(longest);
        };
        linearized[i] = false;
        state = s_before;
        if let Some(rp) = ret_pos[i] {
            relink(rp, &mut next, &mut prev, &mut head);
        }
        relink(call_pos[i], &mut next, &mut prev, &mut head);
        cur = next[call_pos[i]];
    }
}

/// True when every event still in the list belongs to an operation that never returned:
/// those may simply not have happened.
fn all_unreturned(events: &[Ev], _lin: &[bool], head: usize, next: &[usize], len: usize) -> bool {
    let mut p = head;
    while p < len {
        if let Ev::Ret(_) = events[p] {
            return false;
        }
        p = next[p];
    }
    // Only calls of unreturned ops are left (a returned op's call precedes its return).
    let _ = events;
    true
}

// ------------------------------------------------------------------ models --

/// A znode used as a versioned register: `getData` returns (data, version); `setData`
/// with an expected version (-1 = any) succeeds with the new version or fails with
/// BadVersion. The node exists from the start with `initial`, version 0.
#[derive(Debug, Clone)]
pub struct VersionedRegister {
    pub initial: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RegisterInput {
    Read,
    Write { data: Vec<u8>, expected_version: i32 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum RegisterOutput {
    Read { data: Vec<u8>, version: i32 },
    Written { version: i32 },
    BadVersion,
}

impl Model for VersionedRegister {
    type State = (Vec<u8>, i32);
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Self::State {
        (self.initial.clone(), 0)
    }

    fn step(&self, s: &Self::State, input: &RegisterInput, output: &RegisterOutput) -> Option<Self::State> {
        match (input, output) {
            (RegisterInput::Read, RegisterOutput::Read { data, version }) => (data == &s.0 && *version == s.1).then(|| s.clone()),
            (RegisterInput::Write { data, expected_version }, RegisterOutput::Written { version }) => {
                let ok = *expected_version == -1 || *expected_version == s.1;
                (ok && *version == s.1 + 1).then(|| (data.clone(), s.1 + 1))
            }
            (RegisterInput::Write { expected_version, .. }, RegisterOutput::BadVersion) => {
                (*expected_version != -1 && *expected_version != s.1).then(|| s.clone())
            }
            _ => None,
        }
    }

    fn step_unknown(&self, s: &Self::State, input: &RegisterInput) -> Option<Self::State> {
        match input {
            // An unanswered read changes nothing and constrains nothing.
            RegisterInput::Read => Some(s.clone()),
            RegisterInput::Write { data, expected_version } => {
                (*expected_version == -1 || *expected_version == s.1).then(|| (data.clone(), s.1 + 1))
            }
        }
    }
}

/// Sequential children of one parent: each successful create is handed the parent's
/// next sequence number, which must never repeat or go back.
#[derive(Debug, Clone)]
pub struct SequenceCounter;

impl Model for SequenceCounter {
    type State = i64;
    type Input = ();
    /// The sequence number the create returned.
    type Output = i64;

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, s: &i64, _input: &(), output: &i64) -> Option<i64> {
        (*output == *s).then_some(s + 1)
    }

    fn step_unknown(&self, s: &i64, _input: &()) -> Option<i64> {
        Some(s + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op<I, O>(client: usize, key: &str, input: I, call: u64, ret: Option<(u64, O)>) -> Operation<I, O> {
        Operation { client, key: key.into(), input, call, ret }
    }

    fn w(d: &str, ev: i32) -> RegisterInput {
        RegisterInput::Write { data: d.as_bytes().to_vec(), expected_version: ev }
    }

    fn r(d: &str, v: i32) -> RegisterOutput {
        RegisterOutput::Read { data: d.as_bytes().to_vec(), version: v }
    }

    const REG: VersionedRegister = VersionedRegister { initial: Vec::new() };

    #[test]
    fn overlapping_write_and_read_may_go_either_way() {
        let h = vec![
            op(0, "a", w("x", -1), 0, Some((10, RegisterOutput::Written { version: 1 }))),
            op(1, "a", RegisterInput::Read, 5, Some((6, r("", 0)))),
            op(2, "a", RegisterInput::Read, 7, Some((8, r("x", 1)))),
        ];
        assert_eq!(check(&REG, &h, 100_000), Verdict::Ok);
    }

    #[test]
    fn stale_read_after_acknowledged_write_is_a_violation() {
        let h = vec![
            op(0, "a", w("x", -1), 0, Some((10, RegisterOutput::Written { version: 1 }))),
            op(1, "a", RegisterInput::Read, 11, Some((12, r("", 0)))),
        ];
        assert!(matches!(check(&REG, &h, 100_000), Verdict::Violation { .. }));
    }

    #[test]
    fn lost_acknowledged_write() {
        // Two sequential CAS writes both acknowledged with version 1: one was lost.
        let h = vec![
            op(0, "a", w("x", 0), 0, Some((1, RegisterOutput::Written { version: 1 }))),
            op(1, "a", w("y", 0), 2, Some((3, RegisterOutput::Written { version: 1 }))),
        ];
        assert!(matches!(check(&REG, &h, 100_000), Verdict::Violation { .. }));
        // The same, overlapping in time: one must have failed with BadVersion.
        let h = vec![
            op(0, "a", w("x", 0), 0, Some((5, RegisterOutput::Written { version: 1 }))),
            op(1, "a", w("y", 0), 1, Some((6, RegisterOutput::Written { version: 1 }))),
        ];
        assert!(matches!(check(&REG, &h, 100_000), Verdict::Violation { .. }));
    }

    #[test]
    fn unknown_outcomes_may_or_may_not_have_happened() {
        // A write that timed out, then a read that sees it: fine.
        let h = vec![op(0, "a", w("x", 0), 0, None), op(1, "a", RegisterInput::Read, 5, Some((6, r("x", 1))))];
        assert_eq!(check(&REG, &h, 100_000), Verdict::Ok);
        // ... or a read that does not: fine too.
        let h = vec![op(0, "a", w("x", 0), 0, None), op(1, "a", RegisterInput::Read, 5, Some((6, r("", 0))))];
        assert_eq!(check(&REG, &h, 100_000), Verdict::Ok);
        // But it cannot be seen and then unseen.
        let h = vec![
            op(0, "a", w("x", 0), 0, None),
            op(1, "a", RegisterInput::Read, 5, Some((6, r("x", 1)))),
            op(1, "a", RegisterInput::Read, 7, Some((8, r("", 0)))),
        ];
        assert!(matches!(check(&REG, &h, 100_000), Verdict::Violation { .. }));
    }

    #[test]
    fn keys_are_checked_apart() {
        let h = vec![
            op(0, "a", w("x", -1), 0, Some((1, RegisterOutput::Written { version: 1 }))),
            op(0, "b", RegisterInput::Read, 2, Some((3, r("", 0)))),
            op(0, "a", RegisterInput::Read, 4, Some((5, r("", 0)))),
        ];
        match check(&REG, &h, 100_000) {
            Verdict::Violation { key, .. } => assert_eq!(key, "a"),
            v => panic!("expected a violation on a, got {v:?}"),
        }
    }

    #[test]
    fn sequence_numbers_never_repeat() {
        let c = SequenceCounter;
        let ok = vec![op(0, "p", (), 0, Some((5, 1))), op(1, "p", (), 1, Some((6, 0))), op(2, "p", (), 7, Some((8, 2)))];
        assert_eq!(check(&c, &ok, 100_000), Verdict::Ok);
        let dup = vec![op(0, "p", (), 0, Some((1, 0))), op(1, "p", (), 2, Some((3, 0)))];
        assert!(matches!(check(&c, &dup, 100_000), Verdict::Violation { .. }));
        // A timed-out create may have consumed a number.
        let gap = vec![op(0, "p", (), 0, None), op(1, "p", (), 2, Some((3, 1)))];
        assert_eq!(check(&c, &gap, 100_000), Verdict::Ok);
        let backwards = vec![op(0, "p", (), 0, Some((1, 1))), op(1, "p", (), 2, Some((3, 0)))];
        assert!(matches!(check(&c, &backwards, 100_000), Verdict::Violation { .. }));
    }

    #[test]
    fn many_concurrent_clients_stay_tractable() {
        // 8 clients × 30 sequential-consistent writes and reads, heavily overlapping.
        let mut h = Vec::new();
        let mut version = 0;
        let mut data = String::new();
        let mut t = 0u64;
        for round in 0..30 {
            for c in 0..8 {
                t += 10;
                if c % 2 == 0 {
                    version += 1;
                    data = format!("{round}-{c}");
                    h.push(op(c, "k", w(&data, -1), t, Some((t + 3, RegisterOutput::Written { version }))));
                } else {
                    h.push(op(c, "k", RegisterInput::Read, t, Some((t + 3, r(&data, version)))));
                }
            }
        }
        assert_eq!(check(&REG, &h, 1_000_000), Verdict::Ok);
    }
}
