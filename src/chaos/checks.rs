//! What a chaos run must show once the faults stop: the checks over the recorded
//! history and the final trees. Each check is a plain function over data, tested
//! below with histories that must pass and ones that must be flagged.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::linearizability::{check, Operation, RegisterInput, RegisterOutput, Verdict, VersionedRegister};
use super::workload::{MultiTxn, Outcome, SeqCreate};

/// One znode as a client reads it, for comparing peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub data: Vec<u8>,
    pub version: i32,
    pub cversion: i32,
    pub ephemeral_owner: i64,
    pub czxid: i64,
    pub mzxid: i64,
}

pub type Tree = BTreeMap<String, NodeState>;

/// Bound of the linearizability search per key (states visited).
pub const MAX_STATES: usize = 2_000_000;

/// Registers: every key's history must be linearizable. `Err` carries the finding;
/// `Ok(Some(key))` says the search gave up on that key (inconclusive, not a finding).
pub fn registers(history: &[Operation<RegisterInput, RegisterOutput>]) -> Result<Option<String>, String> {
    match check(&VersionedRegister { initial: Vec::new() }, history, MAX_STATES) {
        Verdict::Ok => Ok(None),
        Verdict::Unknown { key } => Ok(Some(key)),
        Verdict::Violation { key, longest_prefix } => {
            let ops: Vec<&Operation<RegisterInput, RegisterOutput>> = history.iter().filter(|o| o.key == key).collect();
            let shown: Vec<String> = ops.iter().take(40).map(|o| format!("  {}", describe(o))).collect();
            Err(format!(
                "register {key} is not linearizable ({} ops; the longest linearizable prefix has {} of them):\n{}",
                ops.len(),
                longest_prefix.len(),
                shown.join("\n")
            ))
        }
    }
}

fn describe(o: &Operation<RegisterInput, RegisterOutput>) -> String {
    let input = match &o.input {
        RegisterInput::Read => "read".to_owned(),
        RegisterInput::Write { data, expected_version } => format!("write {:?} if version {expected_version}", String::from_utf8_lossy(data)),
    };
    let out = match &o.ret {
        None => "unknown".to_owned(),
        Some((t, RegisterOutput::Read { data, version })) => format!("@{t} read {:?} v{version}", String::from_utf8_lossy(data)),
        Some((t, RegisterOutput::Written { version })) => format!("@{t} ok v{version}"),
        Some((t, RegisterOutput::BadVersion)) => format!("@{t} BadVersion"),
    };
    format!("client {} @{} {input} -> {out}", o.client, o.call)
}

/// Sequential creates against the final children of their parent (`seq -> data`):
/// acknowledged creates are all there with their data, numbers are never reused, no
/// failed create left a node, the numbers have no gaps (nothing else changes that
/// parent's cversion), and the numbers respect real time: a create that returned
/// before another was called got the smaller number.
pub fn sequential(ops: &[SeqCreate], children: &BTreeMap<i64, String>) -> Vec<String> {
    let mut out = Vec::new();
    let by_tag: HashMap<&str, &SeqCreate> = ops.iter().map(|o| (o.tag.as_str(), o)).collect();
    let mut acked: HashMap<i64, &str> = HashMap::new();
    for o in ops {
        if let Outcome::Ok(n) = o.outcome {
            if let Some(prev) = acked.insert(n, &o.tag) {
                out.push(format!("sequence number {n} handed to two acknowledged creates ({prev} and {})", o.tag));
            }
            match children.get(&n) {
                None => out.push(format!("acknowledged create {} (number {n}) is lost", o.tag)),
                Some(d) if d != &o.tag => out.push(format!("number {n} was acknowledged to {} but holds {d}", o.tag)),
                Some(_) => {}
            }
        }
    }
    // (number, call, return or never) of every create that took effect.
    let mut applied: Vec<(i64, u64, u64)> = Vec::new();
    for (&n, tag) in children {
        match by_tag.get(tag.as_str()) {
            None => out.push(format!("number {n} holds {tag}, which no client created")),
            Some(o) => match o.outcome {
                Outcome::Failed(c) => out.push(format!("create {tag} failed with {c:?} but its node exists (number {n})")),
                Outcome::Ok(_) => applied.push((n, o.call, o.ret)),
                Outcome::Unknown(_) => applied.push((n, o.call, u64::MAX)),
            },
        }
    }
    for (i, &n) in children.keys().enumerate() {
        if n != i as i64 {
            out.push(format!("sequence numbers have a gap: the {i}th child has number {n}"));
            break;
        }
    }
    // Real time: no op with a larger number may have returned before this one's call.
    applied.sort_by_key(|a| a.0);
    let mut min_ret_after = u64::MAX;
    let mut min_ret_who = 0;
    for &(n, call, ret) in applied.iter().rev() {
        if min_ret_after < call {
            out.push(format!("number {n} was handed out after number {min_ret_who} had been acknowledged (real-time order broken)"));
            break;
        }
        if ret < min_ret_after {
            min_ret_after = ret;
            min_ret_who = n;
        }
    }
    out
}

/// Multis: all or nothing, acknowledged ones applied, failed and doomed ones not.
/// `present` holds the children of the multi parent.
pub fn multis(txns: &[MultiTxn], present: &HashSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for t in txns {
        let a = present.contains(&format!("{}-a", t.tag));
        let b = present.contains(&format!("{}-b", t.tag));
        if a != b {
            out.push(format!("multi {} applied in part ({}-a: {a}, {}-b: {b})", t.tag, t.tag, t.tag));
        }
        let applied = a || b;
        match &t.outcome {
            Outcome::Ok(()) if t.doomed => out.push(format!("multi {} holds a check that cannot pass, yet succeeded", t.tag)),
            _ if t.doomed && applied => out.push(format!("multi {} holds a check that cannot pass, yet was applied", t.tag)),
            Outcome::Ok(()) if !applied => out.push(format!("acknowledged multi {} is lost", t.tag)),
            Outcome::Failed(c) if applied => out.push(format!("multi {} failed with {c:?} but was applied", t.tag)),
            _ => {}
        }
    }
    out
}

/// Every peer must hold the same tree.
pub fn identical(trees: &[(usize, Tree)]) -> Vec<String> {
    let mut out = Vec::new();
    let Some((first_sid, first)) = trees.first() else { return out };
    for (sid, t) in &trees[1..] {
        if t == first {
            continue;
        }
        let diff = first
            .iter()
            .find(|(p, s)| t.get(*p) != Some(*s))
            .map(|(p, s)| format!("{p}: peer {first_sid} has {s:?}, peer {sid} has {:?}", t.get(p)))
            .or_else(|| t.keys().find(|p| !first.contains_key(*p)).map(|p| format!("{p} exists only on peer {sid}")))
            .unwrap_or_default();
        out.push(format!("peers {first_sid} and {sid} differ ({} vs {} znodes): {diff}", first.len(), t.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Code;

    fn seq(tag: &str, call: u64, ret: u64, o: Outcome<i64>) -> SeqCreate {
        SeqCreate { client: 0, parent: "/p".into(), tag: tag.into(), call, ret, outcome: o }
    }

    fn kids(v: &[(i64, &str)]) -> BTreeMap<i64, String> {
        v.iter().map(|(n, t)| (*n, t.to_string())).collect()
    }

    #[test]
    fn sequential_accepts_a_clean_history_with_unknowns() {
        let ops = vec![
            seq("a", 0, 10, Outcome::Ok(0)),
            seq("b", 5, 20, Outcome::Unknown(Code::ConnectionLoss)),
            seq("c", 30, 40, Outcome::Ok(2)),
            seq("d", 50, 60, Outcome::Unknown(Code::ConnectionLoss)),
        ];
        // b applied (number 1), d did not.
        assert_eq!(sequential(&ops, &kids(&[(0, "a"), (1, "b"), (2, "c")])), Vec::<String>::new());
    }

    #[test]
    fn sequential_flags_loss_reuse_gaps_and_time_travel() {
        let ops = vec![seq("a", 0, 10, Outcome::Ok(0)), seq("b", 20, 30, Outcome::Ok(1))];
        assert!(sequential(&ops, &kids(&[(0, "a")])).iter().any(|f| f.contains("lost")));
        let reuse = vec![seq("a", 0, 10, Outcome::Ok(0)), seq("b", 20, 30, Outcome::Ok(0))];
        assert!(sequential(&reuse, &kids(&[(0, "a")])).iter().any(|f| f.contains("two acknowledged")));
        assert!(sequential(&ops, &kids(&[(0, "a"), (2, "b")])).iter().any(|f| f.contains("gap") || f.contains("lost")));
        // b returned before c was called, yet c got the smaller number.
        let travel = vec![seq("b", 0, 10, Outcome::Ok(1)), seq("c", 20, 30, Outcome::Ok(0))];
        assert!(sequential(&travel, &kids(&[(0, "c"), (1, "b")])).iter().any(|f| f.contains("real-time")));
        let failed = vec![seq("a", 0, 10, Outcome::Failed(Code::NoNode))];
        assert!(sequential(&failed, &kids(&[(0, "a")])).iter().any(|f| f.contains("failed")));
        assert!(sequential(&[], &kids(&[(0, "x")])).iter().any(|f| f.contains("no client")));
    }

    fn txn(tag: &str, doomed: bool, o: Outcome<()>) -> MultiTxn {
        MultiTxn { tag: tag.into(), doomed, outcome: o }
    }

    fn set(v: &[&str]) -> HashSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn multis_all_or_nothing() {
        let t = vec![
            txn("m1", false, Outcome::Ok(())),
            txn("m2", true, Outcome::Failed(Code::BadVersion)),
            txn("m3", false, Outcome::Unknown(Code::ConnectionLoss)),
        ];
        assert!(multis(&t, &set(&["m1-a", "m1-b"])).is_empty());
        assert!(multis(&t, &set(&["m1-a", "m1-b", "m3-a", "m3-b"])).is_empty());
        assert!(multis(&t, &set(&["m1-a"])).iter().any(|f| f.contains("in part")));
        assert!(multis(&t, &set(&[])).iter().any(|f| f.contains("lost")));
        assert!(multis(&t, &set(&["m1-a", "m1-b", "m2-a", "m2-b"])).iter().any(|f| f.contains("cannot pass")));
    }

    fn st(v: i32) -> NodeState {
        NodeState { data: vec![], version: v, cversion: 0, ephemeral_owner: 0, czxid: 1, mzxid: 1 }
    }

    #[test]
    fn identical_trees() {
        let a: Tree = [("/x".to_string(), st(1))].into_iter().collect();
        let b: Tree = [("/x".to_string(), st(2))].into_iter().collect();
        assert!(identical(&[(1, a.clone()), (2, a.clone())]).is_empty());
        assert_eq!(identical(&[(1, a.clone()), (2, b)]).len(), 1);
        let c: Tree = [("/x".to_string(), st(1)), ("/y".to_string(), st(1))].into_iter().collect();
        assert!(identical(&[(1, a), (2, c)])[0].contains("/y"));
    }

    #[test]
    fn registers_flag_a_lost_write() {
        let w = |d: &str, ev: i32| RegisterInput::Write { data: d.as_bytes().to_vec(), expected_version: ev };
        let mut h = vec![
            Operation { client: 0, key: "k".into(), input: w("a", 0), call: 0, ret: Some((10, RegisterOutput::Written { version: 1 })) },
            // The final read sees the initial value: the acknowledged write is gone.
            Operation { client: 1, key: "k".into(), input: RegisterInput::Read, call: 20, ret: Some((30, RegisterOutput::Read { data: vec![], version: 0 })) },
        ];
        assert!(registers(&h).is_err());
        h[1].ret = Some((30, RegisterOutput::Read { data: b"a".to_vec(), version: 1 }));
        assert_eq!(registers(&h), Ok(None));
    }
}
