//! `DataNode`: one znode.

use std::collections::HashSet;

/// The hasher of the node map and child sets: ahash keyed once per process (paths come
/// from clients, so the key must not be guessable), and zero-sized, so a million child
/// sets do not each carry hasher state.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastState;

impl std::hash::BuildHasher for FastState {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        static KEYS: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
        KEYS.get_or_init(ahash::RandomState::new).build_hasher()
    }
}

use crate::proto::data::{Stat, StatPersisted};
use crate::common::ephemeral_type;

#[derive(Debug, Clone, Default)]
pub struct DataNode {
    /// None is a null payload (a create with null data), distinct from empty.
    pub data: Option<Vec<u8>>,
    /// Index into the ReferenceCountedAclCache.
    pub acl: i64,
    pub stat: StatPersisted,
    pub children: HashSet<String, FastState>,
}

impl DataNode {
    pub fn new(data: Option<Vec<u8>>, acl: i64, stat: StatPersisted) -> Self {
        DataNode { data, acl, stat, children: HashSet::default() }
    }

    pub fn data_len(&self) -> i32 {
        self.data.as_ref().map(|d| d.len() as i32).unwrap_or(0)
    }

    /// `DataNode.copyStat`: stored cversion counts creates only, so the reported value
    /// is `2 * cversion - numChildren` (creates plus deletes); containers and TTL nodes
    /// report ephemeralOwner 0.
    pub fn copy_stat(&self) -> Stat {
        let n = self.children.len() as i32;
        Stat {
            czxid: self.stat.czxid,
            mzxid: self.stat.mzxid,
            ctime: self.stat.ctime,
            mtime: self.stat.mtime,
            version: self.stat.version,
            cversion: self.stat.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: self.stat.aversion,
            ephemeral_owner: ephemeral_type::client_visible_owner(self.stat.ephemeral_owner),
            data_length: self.data_len(),
            num_children: n,
            pzxid: self.stat.pzxid,
        }
    }
}
