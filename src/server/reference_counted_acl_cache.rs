//! `ReferenceCountedACLCache`: nodes store a long index into a table of ACL lists, so
//! thousands of nodes with the same ACL share one entry. The indexes are written to
//! snapshots, so they follow upstream (start at 1, -1 is the open ACL).

use std::collections::HashMap;

use crate::proto::data::ACL;
use crate::proto::ids;

/// Index upstream reserves for OPEN_ACL_UNSAFE.
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;

#[derive(Default)]
pub struct ReferenceCountedAclCache {
    pub long_key_map: HashMap<i64, Vec<ACL>>,
    acl_key_map: HashMap<Vec<ACL>, i64>,
    reference_counter: HashMap<i64, i64>,
    pub acl_index: i64,
}

impl ReferenceCountedAclCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// `convertAcls`: index for a list, adding a reference.
    pub fn convert_acls(&mut self, acls: &[ACL]) -> i64 {
        if let Some(&id) = self.acl_key_map.get(acls) {
            *self.reference_counter.entry(id).or_insert(0) += 1;
            return id;
        }
        self.acl_index += 1;
        let id = self.acl_index;
        self.long_key_map.insert(id, acls.to_vec());
        self.acl_key_map.insert(acls.to_vec(), id);
        self.reference_counter.insert(id, 1);
        id
    }

    /// `convertLong`: the list an index stands for.
    pub fn convert_long(&self, id: i64) -> Vec<ACL> {
        if id == OPEN_UNSAFE_ACL_ID {
            return ids::open_acl_unsafe();
        }
        match self.long_key_map.get(&id) {
            Some(a) => a.clone(),
            None => {
                log::error!("ERROR: ACL not available for long {id}");
                Vec::new()
            }
        }
    }

    /// The list an index stands for, borrowed (no copy on hot paths).
    pub fn acl_ref(&self, id: i64) -> &[ACL] {
        static OPEN: std::sync::OnceLock<Vec<ACL>> = std::sync::OnceLock::new();
        if id == OPEN_UNSAFE_ACL_ID {
            return OPEN.get_or_init(ids::open_acl_unsafe);
        }
        self.long_key_map.get(&id).map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub fn with_acl<R>(&self, id: i64, f: impl FnOnce(&[ACL]) -> R) -> R {
        if id == OPEN_UNSAFE_ACL_ID {
            return f(&ids::open_acl_unsafe());
        }
        match self.long_key_map.get(&id) {
            Some(a) => f(a),
            None => f(&[]),
        }
    }

    pub fn add_usage(&mut self, id: i64) {
        self.add_usages(id, 1);
    }

    /// `count` uses of `id` at once: a snapshot load counts runs of nodes with the same
    /// ACL. An unknown id is logged once per run rather than once per node.
    pub fn add_usages(&mut self, id: i64, count: i64) {
        if id == OPEN_UNSAFE_ACL_ID || count == 0 {
            return;
        }
        if !self.long_key_map.contains_key(&id) {
            log::info!("Ignoring acl {id} as it does not exist in the cache");
            return;
        }
        *self.reference_counter.entry(id).or_insert(0) += count;
    }

    pub fn remove_usage(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID {
            return;
        }
        let Some(count) = self.reference_counter.get_mut(&id) else { return };
        *count -= 1;
        if *count <= 0 {
            self.reference_counter.remove(&id);
            if let Some(acl) = self.long_key_map.remove(&id) {
                self.acl_key_map.remove(&acl);
            }
        }
    }

    /// Puts an entry read from a snapshot.
    pub fn insert(&mut self, id: i64, acls: Vec<ACL>) {
        if id > self.acl_index {
            self.acl_index = id;
        }
        self.acl_key_map.insert(acls.clone(), id);
        self.long_key_map.insert(id, acls);
        self.reference_counter.insert(id, 0);
    }

    pub fn size(&self) -> usize {
        self.long_key_map.len()
    }
}

impl ReferenceCountedAclCache {
    /// `purgeUnused`: drops entries no node refers to (after loading a snapshot).
    pub fn purge_unused(&mut self) {
        let unused: Vec<i64> =
            self.long_key_map.keys().copied().filter(|id| self.reference_counter.get(id).copied().unwrap_or(0) <= 0).collect();
        for id in unused {
            self.reference_counter.remove(&id);
            if let Some(acl) = self.long_key_map.remove(&id) {
                self.acl_key_map.remove(&acl);
            }
        }
    }

    /// The reference count of an entry (0 when absent).
    pub fn reference_count(&self, id: i64) -> i64 {
        self.reference_counter.get(&id).copied().unwrap_or(0)
    }
}
