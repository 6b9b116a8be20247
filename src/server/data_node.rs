//! `DataNode`: one znode.

pub use crate::server::util::sharded_map::FastState;
use crate::server::util::sharded_map::ShardedSet;

use crate::proto::data::{Stat, StatPersisted};
use crate::common::ephemeral_type;

#[derive(Debug, Clone, Default)]
pub struct DataNode {
    /// None is a null payload (a create with null data), distinct from empty.
    pub data: Option<Vec<u8>>,
    /// Index into the ReferenceCountedAclCache.
    pub acl: i64,
    pub stat: StatPersisted,
    /// A `ShardedSet`, so a parent with a million children never regrows in one go.
    pub children: ShardedSet<String>,
}

impl DataNode {
    pub fn new(data: Option<Vec<u8>>, acl: i64, stat: StatPersisted) -> Self {
        DataNode { data, acl, stat, children: ShardedSet::new() }
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
