//! `DataNode`: one znode, and `Children`, the znodes below it.
//!
//! Memory at scale (issue #14). The tree is held as a tree: a node's children are the
//! child nodes themselves, in a set keyed by their names, so no znode is stored under
//! its full path (upstream's flat `NodeHashMap` costs a path string and a map slot a
//! node; a lookup here walks one small set per path component instead). A znode is one
//! allocation: a fixed header (stat, ACL reference, children), then its name, then its
//! data. A set slot is that allocation's pointer, so at a million znodes a slot costs
//! ~19 bytes where a (path, node) map slot cost ~35 and a name slot ~50.
//!
//! Null data (a create with null data) stays distinct from empty, as upstream's `byte[]`
//! null and `new byte[0]`.

use std::alloc::{self, Layout};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

pub use crate::server::util::sharded_map::FastState;
use crate::server::util::sharded_map::{SetIter, ShardedSet};

use crate::common::ephemeral_type;
use crate::proto::data::{Stat, StatPersisted};

/// The fixed part of a znode, at the start of its allocation.
#[derive(Debug)]
pub struct NodeHeader {
    pub stat: StatPersisted,
    /// Index into the ReferenceCountedAclCache.
    pub acl: i64,
    pub children: Children,
    name_len: u32,
    /// [`NULL_DATA`] for null data.
    data_len: u32,
}

const NULL_DATA: u32 = u32::MAX;
const HEADER: usize = std::mem::size_of::<NodeHeader>();

fn layout(name_len: usize, data_len: usize) -> Layout {
    // Header, name and data are each far below isize::MAX (names and payloads come from
    // frames bounded by jute.maxbuffer), so the sum cannot overflow.
    match Layout::from_size_align(HEADER + name_len + data_len, std::mem::align_of::<NodeHeader>()) {
        Ok(l) => l,
        Err(_) => panic!("a znode of {} bytes", HEADER + name_len + data_len),
    }
}

/// A znode: one pointer to its header, name and data (see the module comment).
/// Hashes and compares as its name, so a child set is looked up by `&str`.
pub struct DataNode(NonNull<NodeHeader>);

// SAFETY: a DataNode owns its allocation exclusively, like a Box<NodeHeader>, and
// writes to it only through `&mut DataNode`.
unsafe impl Send for DataNode {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for DataNode {}

impl DataNode {
    /// A childless node named `name` (the last path component; "" for the root).
    pub fn new(name: &str, data: Option<&[u8]>, acl: i64, stat: StatPersisted) -> DataNode {
        let data_len = match data {
            None => NULL_DATA,
            Some(d) => match u32::try_from(d.len()) {
                Ok(n) if n != NULL_DATA => n,
                _ => panic!("{} bytes exceed a 4 GiB value", d.len()),
            },
        };
        let name_len = u32::try_from(name.len()).unwrap_or_else(|_| panic!("a {}-byte znode name", name.len()));
        let header = NodeHeader { stat, acl, children: Children::default(), name_len, data_len };
        let bytes = data.unwrap_or(&[]);
        let l = layout(name.len(), bytes.len());
        // SAFETY: the layout is non-zero (the header alone is).
        let p = unsafe { alloc::alloc(l) };
        let Some(p) = NonNull::new(p.cast::<NodeHeader>()) else { alloc::handle_alloc_error(l) };
        // SAFETY: p is a fresh allocation of HEADER + name + data bytes aligned for the
        // header: the header goes at its start, then the name, then the data.
        unsafe {
            p.as_ptr().write(header);
            let tail = p.as_ptr().cast::<u8>().add(HEADER);
            std::ptr::copy_nonoverlapping(name.as_ptr(), tail, name.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), tail.add(name.len()), bytes.len());
        }
        DataNode(p)
    }

    fn tail(&self) -> *const u8 {
        // SAFETY: the allocation is at least HEADER bytes long.
        unsafe { self.0.as_ptr().cast::<u8>().add(HEADER) }
    }

    /// The last component of the node's path ("" for the root).
    pub fn name(&self) -> &str {
        // SAFETY: `name_len` bytes copied from a `&str` follow the header, unchanged since.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.tail(), self.name_len as usize)) }
    }

    /// The bytes; None for null data.
    pub fn data(&self) -> Option<&[u8]> {
        if self.data_len == NULL_DATA {
            return None;
        }
        // SAFETY: `data_len` initialized bytes follow the name, inside the allocation.
        Some(unsafe { std::slice::from_raw_parts(self.tail().add(self.name_len as usize), self.data_len as usize) })
    }

    /// The length of the data (0 for null, as `DataNode`'s stat reports it).
    pub fn data_len(&self) -> i32 {
        if self.data_len == NULL_DATA {
            0
        } else {
            self.data_len as i32
        }
    }

    /// An owned copy of the data, as replies and txns carry it.
    pub fn data_vec(&self) -> Option<Vec<u8>> {
        self.data().map(<[u8]>::to_vec)
    }

    /// Changes the data: in place when the length is the same (a setData of a
    /// fixed-size payload allocates nothing), otherwise by moving the node to a new
    /// allocation that takes over the header and children. The name, and so the node's
    /// place in its parent's set, stays.
    pub fn set_data(&mut self, data: Option<&[u8]>) {
        if let Some(d) = data {
            if self.data_len != NULL_DATA && self.data_len as usize == d.len() {
                let at = self.tail().wrapping_add(self.name_len as usize).cast_mut();
                // SAFETY: `&mut self` owns the allocation exclusively and the data's
                // `d.len()` bytes lie inside it, after the name.
                unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), at, d.len()) };
                return;
            }
        }
        let mut new = DataNode::new(self.name(), data, self.acl, self.stat.clone());
        new.children = std::mem::take(&mut self.children);
        *self = new;
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

    /// The start of the allocation (the snapshot walk prefetches it).
    pub fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr().cast::<u8>()
    }
}

impl Deref for DataNode {
    type Target = NodeHeader;

    fn deref(&self) -> &NodeHeader {
        // SAFETY: the header was written in `new` and lives as long as self.
        unsafe { self.0.as_ref() }
    }
}

impl DerefMut for DataNode {
    fn deref_mut(&mut self) -> &mut NodeHeader {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for DataNode {
    fn drop(&mut self) {
        // Subtrees are let go with a work list, not by recursion: a chain of nodes a
        // hundred thousand deep (a path of 200 KB is a legal request) must not blow the
        // stack when a follower drops its tree for a SNAP.
        let mut pending: Vec<Box<ShardedSet<DataNode>>> = Vec::new();
        pending.extend(self.children.0.take());
        while let Some(set) = pending.pop() {
            set.drain_into(|mut child| pending.extend(child.children.0.take()));
        }
        let l = layout(self.name_len as usize, if self.data_len == NULL_DATA { 0 } else { self.data_len as usize });
        // SAFETY: the header was written in `new` and is dropped once, here; then the
        // allocation is freed with the layout it was made with.
        unsafe {
            std::ptr::drop_in_place(self.0.as_ptr());
            alloc::dealloc(self.0.as_ptr().cast::<u8>(), l);
        }
    }
}

impl Borrow<str> for DataNode {
    fn borrow(&self) -> &str {
        self.name()
    }
}

impl Hash for DataNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl PartialEq for DataNode {
    fn eq(&self, other: &DataNode) -> bool {
        self.name() == other.name()
    }
}

impl Eq for DataNode {}

impl std::fmt::Debug for DataNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataNode").field("name", &self.name()).field("data", &self.data()).field("header", &**self).finish()
    }
}

/// A node's children (upstream's `DataNode.children`, a `HashSet<String>` created on
/// the first child, here holding the child nodes themselves). A `ShardedSet`, so a
/// parent with a million children never regrows in one go; none at all for a leaf, and
/// dropped again when the last child goes.
#[derive(Default)]
pub struct Children(Option<Box<ShardedSet<DataNode>>>);

impl std::fmt::Debug for Children {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

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

    pub fn get(&self, name: &str) -> Option<&DataNode> {
        self.0.as_ref()?.get(name)
    }

    /// The child of that name, to change in place (never its name).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut DataNode> {
        self.0.as_mut()?.get_mut(name)
    }

    /// Adds `node` under its name; a node of that name already there is replaced and
    /// returned.
    pub fn insert(&mut self, node: DataNode) -> Option<DataNode> {
        self.0.get_or_insert_with(|| Box::new(ShardedSet::new())).replace(node)
    }

    /// Adds `node`, whose name the caller knows is not there yet (no name is compared).
    pub fn insert_new(&mut self, node: DataNode) {
        debug_assert!(!self.contains(node.name()), "{} is there already", node.name());
        self.0.get_or_insert_with(|| Box::new(ShardedSet::new())).insert_new(node);
    }

    /// The child of that name, taken out.
    pub fn remove(&mut self, name: &str) -> Option<DataNode> {
        let set = self.0.as_mut()?;
        let removed = set.take(name);
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

    /// The child names.
    pub fn iter(&self) -> ChildIter<'_> {
        ChildIter(self.nodes())
    }

    /// The child nodes.
    pub fn nodes(&self) -> ChildNodes<'_> {
        ChildNodes(self.0.as_ref().map(|s| s.iter()))
    }

    /// Visits the children in shard `from` (all of them when the set is not split) and
    /// returns the shard to go on from ([`SHARDS`](crate::server::util::sharded_map::SHARDS)
    /// when done). Over a series of calls, a child present throughout is visited
    /// exactly once however the set changes in between: a fuzzy snapshot writes a parent of a
    /// million children a shard at a time this way.
    pub fn visit_shard<'a>(&'a self, from: usize, f: impl FnMut(&'a DataNode)) -> usize {
        use crate::server::util::sharded_map::SHARDS;
        let Some(set) = self.0.as_ref() else { return SHARDS };
        let end = if set.is_split() { from + 1 } else { SHARDS };
        set.for_each_in_shards(from..end, f);
        end.max(from).min(SHARDS)
    }
}

pub struct ChildNodes<'a>(Option<SetIter<'a, DataNode>>);

impl<'a> Iterator for ChildNodes<'a> {
    type Item = &'a DataNode;

    fn next(&mut self) -> Option<&'a DataNode> {
        self.0.as_mut()?.next()
    }
}

pub struct ChildIter<'a>(ChildNodes<'a>);

impl<'a> Iterator for ChildIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.0.next().map(DataNode::name)
    }
}

impl<'a> IntoIterator for &'a Children {
    type Item = &'a str;
    type IntoIter = ChildIter<'a>;

    fn into_iter(self) -> ChildIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Visited a shard at a time while the set changes (split, then merged back, names added
    /// and removed between batches): every name present throughout is copied exactly
    /// once, and nothing that was never there appears.
    #[test]
    fn names_copied_in_batches_come_out_once_whatever_changes_between() {
        use crate::server::util::sharded_map::{SHARDS, SPLIT_AT};
        use std::collections::HashMap;
        let n = SPLIT_AT * 3;
        let mut c = Children::default();
        for i in 0..n {
            c.insert(leaf(&format!("n{i:07}")));
        }
        let (mut out, mut shard, mut batches) = (String::new(), 0, 0);
        while shard < SHARDS {
            let mut copied = 0;
            let next = c.visit_shard(shard, |n| {
                out.push_str(n.name());
                out.push('/');
                copied += 1;
            });
            assert!(next > shard && copied > 0 || next == SHARDS);
            shard = next;
            batches += 1;
            // Between batches: the upper half goes, so the set merges back into one
            // table halfway, and new names arrive.
            if batches == 3 {
                for i in n / 8..n {
                    assert!(c.remove(&format!("n{i:07}")).is_some());
                }
            }
            c.insert(leaf(&format!("late{batches}")));
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
        small.insert(leaf("a"));
        small.insert(leaf("b"));
        let mut seen = 0;
        assert_eq!(small.visit_shard(0, |_| seen += 1), SHARDS);
        assert_eq!(seen, 2);
    }

    /// The fixed part of a znode is 88 bytes: with a 10-byte name and 100 bytes of data
    /// the one allocation takes a 208-byte malloc chunk, where the node, data and path
    /// chunks of a flat map took 96 + 112 + 32; a set slot is one pointer.
    #[test]
    fn a_znode_is_one_allocation_behind_one_pointer() {
        assert!(std::mem::size_of::<NodeHeader>() <= 88, "NodeHeader is {} bytes", std::mem::size_of::<NodeHeader>());
        assert_eq!(std::mem::size_of::<DataNode>(), 8);
        assert_eq!(std::mem::size_of::<Children>(), 8);
    }

    #[test]
    fn null_empty_and_changed_data_read_back_with_the_name_and_stat() {
        let st = StatPersisted { czxid: 7, pzxid: 9, ..StatPersisted::default() };
        let null = DataNode::new("n", None, -1, st.clone());
        assert_eq!((null.data(), null.data_len(), null.name()), (None, 0, "n"));
        let empty = DataNode::new("", Some(&[]), -1, st.clone());
        assert_eq!((empty.data(), empty.data_len(), empty.name()), (Some(&[][..]), 0, ""));
        let mut n = DataNode::new("ünï", Some(b"abc"), 42, st.clone());
        n.children.insert(leaf("kid"));
        assert_eq!((n.data(), n.copy_stat().data_length, n.acl, n.name()), (Some(&b"abc"[..]), 3, 42, "ünï"));
        // Same length: in place. Other lengths, null and back: a new allocation that
        // keeps the name, stat, ACL and children.
        let at = n.as_ptr();
        n.set_data(Some(b"xyz"));
        assert_eq!((n.as_ptr(), n.data()), (at, Some(&b"xyz"[..])));
        for d in [Some(&b"longer data"[..]), None, Some(&[][..]), Some(&[7u8; 5000][..])] {
            n.set_data(d);
            assert_eq!((n.data(), n.name(), n.acl, n.stat.czxid), (d, "ünï", 42, 7));
            assert!(n.children.contains("kid") && n.children.len() == 1);
            assert_eq!(n.copy_stat().num_children, 1);
        }
    }

    /// A chain of nodes far deeper than any stack could recurse through is dropped.
    #[test]
    fn a_very_deep_subtree_drops_without_recursion() {
        let mut bottom = leaf("x");
        for _ in 0..300_000 {
            let mut parent = leaf("x");
            parent.children.insert(bottom);
            bottom = parent;
        }
        drop(bottom);
    }

    fn leaf(name: &str) -> DataNode {
        DataNode::new(name, Some(b"d"), -1, StatPersisted::default())
    }
}
