//! `DataNode`: one znode.
//!
//! Memory at scale (issue #14): the node map holds each node boxed behind its path, so a
//! table slot is three words and a half-empty table right after growth costs little; a
//! node's children are a set only once it has one (most znodes are leaves); paths are
//! boxed `str`s, not `String`s with a capacity word, and short child names are kept in
//! place (`CompactStr`).

pub use crate::server::util::sharded_map::FastState;
use crate::server::util::compact_str::CompactStr;
pub use crate::server::util::node_data::NodeData;
use crate::server::util::sharded_map::{SetIter, ShardedSet};

use crate::proto::data::{Stat, StatPersisted};
use crate::common::ephemeral_type;

#[derive(Debug, Clone, Default)]
pub struct DataNode {
    /// Null (a create with null data) is distinct from empty.
    pub data: NodeData,
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

    /// Appends names followed by '/' to `out`, from shard `from` on, a whole shard at a
    /// time until at least `at_least` names are in (all that are left when the set is
    /// not split, at most a few thousand); returns the shard to go on from
    /// ([`SHARDS`](crate::server::util::sharded_map::SHARDS) when done) and the names
    /// appended. A name present throughout a series of calls is appended exactly once,
    /// however the set changes in between (a fuzzy snapshot copies a parent of a
    /// million children a slice at a time this way).
    pub fn copy_names(&self, from: usize, at_least: usize, out: &mut String) -> (usize, usize) {
        use crate::server::util::sharded_map::SHARDS;
        let Some(set) = self.0.as_ref() else { return (SHARDS, 0) };
        let (mut shard, mut copied) = (from, 0);
        while shard < SHARDS && copied < at_least {
            let end = if set.is_split() { shard + 1 } else { SHARDS };
            set.for_each_in_shards(shard..end, |c| {
                out.push_str(c);
                out.push('/');
                copied += 1;
            });
            shard = end;
        }
        (shard, copied)
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
    pub fn new(data: impl Into<NodeData>, acl: i64, stat: StatPersisted) -> Self {
        DataNode { data: data.into(), acl, stat, children: Children::default() }
    }

    pub fn data_len(&self) -> i32 {
        self.data.len() as i32
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Copied in batches while the set changes (split, then merged back, names added
    /// and removed between batches): every name present throughout is copied exactly
    /// once, and nothing that was never there appears.
    #[test]
    fn names_copied_in_batches_come_out_once_whatever_changes_between() {
        use crate::server::util::sharded_map::{SHARDS, SPLIT_AT};
        use std::collections::HashMap;
        let n = SPLIT_AT * 3;
        let mut c = Children::default();
        for i in 0..n {
            c.insert(&format!("n{i:07}"));
        }
        let (mut out, mut shard, mut batches) = (String::new(), 0, 0);
        while shard < SHARDS {
            let (next, copied) = c.copy_names(shard, 1000, &mut out);
            assert!(next > shard && copied > 0 || next == SHARDS);
            shard = next;
            batches += 1;
            // Between batches: the upper half goes, so the set merges back into one
            // table halfway, and new names arrive.
            if batches == 3 {
                for i in n / 8..n {
                    c.remove(&format!("n{i:07}"));
                }
            }
            c.insert(&format!("late{batches}"));
        }
        assert!(batches > 3, "copied in {batches} batches");
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for name in out.split('/').filter(|s| !s.is_empty()) {
            *seen.entry(name).or_default() += 1;
        }
        for i in 0..n / 8 {
            assert_eq!(seen.get(format!("n{i:07}").as_str()), Some(&1), "n{i:07}");
        }
        assert!(seen.values().all(|&k| k == 1), "a name copied twice");
        assert!(seen.keys().all(|k| k.starts_with('n') || k.starts_with("late")));
        // A set that is not split comes out whole in one call.
        let mut small = Children::default();
        small.insert("a");
        small.insert("b");
        let mut out = String::new();
        assert_eq!(small.copy_names(0, 1, &mut out), (SHARDS, 2));
    }

    /// A node is boxed behind its path in the node map: 88 bytes take a 96-byte malloc
    /// chunk where 104 took 112 (16 bytes a znode, 16 MB at a million).
    #[test]
    fn a_node_fits_the_96_byte_malloc_class() {
        assert!(std::mem::size_of::<DataNode>() <= 88, "DataNode is {} bytes", std::mem::size_of::<DataNode>());
    }

    #[test]
    fn data_length_of_null_and_empty_is_zero() {
        let st = StatPersisted::default();
        assert_eq!(DataNode::new(None::<Vec<u8>>, -1, st.clone()).data_len(), 0);
        assert_eq!(DataNode::new(Some(Vec::new()), -1, st.clone()).data_len(), 0);
        let n = DataNode::new(Some(b"abc".to_vec()), -1, st);
        assert_eq!(n.data_len(), 3);
        assert_eq!(n.copy_stat().data_length, 3);
        assert_eq!(n.data.as_deref(), Some(&b"abc"[..]));
    }
}
