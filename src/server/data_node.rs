//! `DataNode`: one znode.
//!
//! Memory at scale (issue #14): the node map holds each node boxed behind its path, so a
//! table slot is three words and a half-empty table right after growth costs little; a
//! node's children are a set only once it has one (most znodes are leaves); paths are
//! boxed `str`s, not `String`s with a capacity word, and short child names are kept in
//! place (`CompactStr`).

pub use crate::server::util::sharded_map::FastState;
use crate::server::util::compact_str::CompactStr;
use crate::server::util::sharded_map::{SetIter, ShardedSet};

use crate::proto::data::{Stat, StatPersisted};
use crate::common::ephemeral_type;

#[derive(Debug, Clone, Default)]
pub struct DataNode {
    /// None is a null payload (a create with null data), distinct from empty.
    pub data: Option<Vec<u8>>,
    /// Index into the ReferenceCountedAclCache.
    pub acl: i64,
    pub stat: StatPersisted,
    pub children: Children,
}

/// A node's child names (upstream's `DataNode.children`, a `HashSet<String>` created
/// on the first child). A `ShardedSet`, so a parent with a million children never
/// regrows in one go; none at all for a leaf, and dropped again when the last child goes.
#[derive(Debug, Clone, Default)]
pub struct Children(Option<Box<ShardedSet<CompactStr>>>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|s| s.is_empty())
    }

    /// Slots allocated (0 for a leaf).
    pub fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.capacity())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|s| s.contains(name))
    }

    /// True if the name was not there before.
    pub fn insert(&mut self, name: &str) -> bool {
        let set = self.0.get_or_insert_with(|| Box::new(ShardedSet::new()));
        if set.contains(name) {
            return false;
        }
        set.insert(CompactStr::new(name))
    }

    /// True if the name was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(set) = self.0.as_mut() else { return false };
        let removed = set.remove(name);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    pub fn reserve(&mut self, additional: usize) {
        if additional > 0 {
            self.0.get_or_insert_with(|| Box::new(ShardedSet::new())).reserve(additional);
        }
    }

    pub fn iter(&self) -> ChildIter<'_> {
        ChildIter(self.0.as_ref().map(|s| s.iter()))
    }
}

impl Extend<CompactStr> for Children {
    fn extend<I: IntoIterator<Item = CompactStr>>(&mut self, iter: I) {
        let mut iter = iter.into_iter().peekable();
        if iter.peek().is_some() {
            self.0.get_or_insert_with(|| Box::new(ShardedSet::new())).extend(iter);
        }
    }
}

pub struct ChildIter<'a>(Option<SetIter<'a, CompactStr>>);

impl<'a> Iterator for ChildIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.0.as_mut()?.next().map(CompactStr::as_str)
    }
}

impl<'a> IntoIterator for &'a Children {
    type Item = &'a str;
    type IntoIter = ChildIter<'a>;

    fn into_iter(self) -> ChildIter<'a> {
        self.iter()
    }
}

impl DataNode {
    pub fn new(data: Option<Vec<u8>>, acl: i64, stat: StatPersisted) -> Self {
        DataNode { data, acl, stat, children: Children::default() }
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
