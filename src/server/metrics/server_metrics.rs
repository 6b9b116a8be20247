//! `ServerMetrics`' summary sets kept by name: bytes read and written per top-level
//! znode, and each learner's queue, fed from the tree and the LearnerHandlers and read
//! by `mntr`, the AdminServer and the Prometheus provider.

use std::sync::Arc;

use crate::server::server_stats::Summary;

/// `ServerMetrics.READ_PER_NAMESPACE` / `WRITE_PER_NAMESPACE`: bytes read and written
/// per top-level znode (`DataTree.updateReadStat` / `updateWriteStat`). Process-wide,
/// like upstream's metrics singleton; `srst` zeroes the values and keeps the names.
pub struct NamespaceSet {
    /// In insertion order; `mntr` prints them in `ConcurrentHashMap` order.
    entries: parking_lot::RwLock<Vec<(String, Arc<Summary>)>>,
}

impl NamespaceSet {
    const fn new() -> Self {
        NamespaceSet { entries: parking_lot::RwLock::new(Vec::new()) }
    }

    fn add(&self, path: &str, value: i64) {
        // PathUtils.getTopNamespace: "/a/b" → "a"; "/" has none
        let Some(ns) = path.split('/').nth(1).filter(|n| !n.is_empty()) else { return };
        self.add_key(ns, value);
    }

    fn add_key(&self, ns: &str, value: i64) {
        if let Some((_, m)) = self.entries.read().iter().find(|(n, _)| n == ns) {
            m.add(value);
            return;
        }
        let mut w = self.entries.write();
        if !w.iter().any(|(n, _)| n == ns) {
            w.push((ns.to_owned(), Arc::default()));
        }
        if let Some((_, m)) = w.iter().find(|(n, _)| n == ns) {
            m.add(value);
        }
    }

    fn reset(&self) {
        for (_, m) in self.entries.read().iter() {
            m.reset();
        }
    }

    pub fn ordered(&self) -> Vec<(String, Arc<Summary>)> {
        use crate::common::java_hash::{chm_capacity_for_inserts, iteration_order, string_hash};
        let v = self.entries.read().clone();
        let cap = chm_capacity_for_inserts(v.len());
        iteration_order(v, cap, |(n, _)| string_hash(n))
    }
}

/// `SESSIONLESS_CONNECTIONS_EXPIRED`: connections closed for idling past their bound.
pub static SESSIONLESS_CONNECTIONS_EXPIRED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub static READ_PER_NAMESPACE: NamespaceSet = NamespaceSet::new();
pub static WRITE_PER_NAMESPACE: NamespaceSet = NamespaceSet::new();
/// `LEARNER_HANDLER_QP_SIZE` / `LEARNER_HANDLER_QP_TIME`: per learner sid, the leader's
/// queue length and queueing time (ms) of each packet it sends.
pub static LEARNER_HANDLER_QP_SIZE: NamespaceSet = NamespaceSet::new();
pub static LEARNER_HANDLER_QP_TIME: NamespaceSet = NamespaceSet::new();

/// A packet left a LearnerHandler's queue: queue length then, and time spent queued.
pub fn record_learner_queue(sid: i64, queue_len: i64, queued_ms: i64) {
    let k = sid.to_string();
    LEARNER_HANDLER_QP_SIZE.add_key(&k, queue_len);
    LEARNER_HANDLER_QP_TIME.add_key(&k, queued_ms);
}

/// `DataTree.STAT_OVERHEAD_BYTES`: six longs and five ints of a Stat.
const STAT_OVERHEAD_BYTES: i64 = 6 * 8 + 5 * 4;

/// A successful read of `path` returning `bytes` (data length, or the total length of
/// the child names).
pub fn record_read(path: &str, bytes: i64) {
    READ_PER_NAMESPACE.add(path, path.len() as i64 + bytes + STAT_OVERHEAD_BYTES);
}

/// A create, delete (`bytes` 0) or setData of `path` applied to the tree.
pub fn record_write(path: &str, bytes: i64) {
    WRITE_PER_NAMESPACE.add(path, path.len() as i64 + bytes);
}

/// `srst` (ServerMetrics.resetAll) of these sets: values zeroed, names kept.
pub fn reset() {
    SESSIONLESS_CONNECTIONS_EXPIRED.store(0, std::sync::atomic::Ordering::Relaxed);
    READ_PER_NAMESPACE.reset();
    WRITE_PER_NAMESPACE.reset();
}
