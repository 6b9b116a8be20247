//! `ShardedMap` / `ShardedSet`: the node map and child sets, grown without a
//! stop-the-world rehash.
//!
//! A hash table that is full doubles and moves every entry in one go. For the node map
//! that happens under the tree's write lock: at a million znodes it moves ~150 MB of
//! inline node slots and rehashes a million paths, a pause of tens of milliseconds that
//! every client of the server waits out (issue #14: create p99.9 92 ms against Apache's
//! 55 ms). Upstream's `NodeHashMapImpl` sits on a `ConcurrentHashMap`, whose resize moves
//! bins a stripe at a time while readers carry on.
//!
//! Here a table stays one plain map (no extra hashing, no extra memory: the common case
//! of a node with a handful of children) until it is full at [`SPLIT_AT`] entries; instead
//! of doubling then, it splits into [`SHARDS`] maps chosen by hash. Each shard grows by
//! itself, so one growth step moves 1/[`SHARDS`] of the entries. Removal gives memory back
//! the same way, a shard at a time, and a set that falls below [`MERGE_AT`] becomes one
//! map again.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use hashbrown::hash_table::{self, Entry, HashTable};

/// The hasher of the node map and child sets: ahash keyed once per process (paths come
/// from clients, so the key must not be guessable), and zero-sized, so a million child
/// sets do not each carry hasher state.
#[derive(Debug, Clone, Copy, Default)]
pub struct FastState;

impl BuildHasher for FastState {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        static KEYS: std::sync::OnceLock<ahash::RandomState> = std::sync::OnceLock::new();
        KEYS.get_or_init(ahash::RandomState::new).build_hasher()
    }
}

/// A single map that is full at this many entries splits instead of doubling. The split
/// itself moves this many entries once (well under a millisecond).
pub const SPLIT_AT: usize = 1 << 14;
/// A split map whose entries fall below this becomes a single map again (a quarter of
/// [`SPLIT_AT`], so a set hovering near the threshold does not split and merge in turn).
pub const MERGE_AT: usize = SPLIT_AT / 4;
/// Shards of a split map: at a million entries one growth step moves ~4 000 of them.
pub const SHARDS: usize = 256;
/// Tables never shrink by themselves; one is halved once three-quarters empty (so the
/// rehash cost stays proportional to the removals that caused it), down to this floor
/// for a single map and [`SHARD_MIN_CAPACITY`] for a shard.
const FLAT_MIN_CAPACITY: usize = 1 << 12;
const SHARD_MIN_CAPACITY: usize = FLAT_MIN_CAPACITY / 64;

/// One hash per operation: the shard is chosen by bits 32..40 of the same hash the
/// table inside it indexes buckets with (low bits) and tags them with (top seven), so
/// the three stay independent.
fn hash_of<Q: Hash + ?Sized>(q: &Q) -> u64 {
    FastState.hash_one(q)
}

fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (SHARDS - 1)
}

fn rehash<T: Hash>(t: &T) -> u64 {
    hash_of(t)
}

fn shrink_if_sparse<T: Hash>(m: &mut HashTable<T>, floor: usize) {
    if m.capacity() > floor && m.len() * 4 < m.capacity() {
        m.shrink_to(m.len() * 2, rehash);
    }
}

enum Repr<T> {
    Single(HashTable<T>),
    Split(Box<[HashTable<T>]>),
}

/// A hash set that splits into [`SHARDS`] tables instead of doubling past
/// [`SPLIT_AT`] (see the module comment); its values are found by any borrowed form
/// (`&str` for a node), and can be changed in place as long as what they hash and
/// compare as stays the same.
pub struct ShardedSet<T> {
    repr: Repr<T>,
}

impl<T> Default for ShardedSet<T> {
    fn default() -> Self {
        ShardedSet { repr: Repr::Single(HashTable::new()) }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ShardedSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: Hash + Eq> ShardedSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Single(m) => m.len(),
            Repr::Split(s) => s.iter().map(HashTable::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Single(m) => m.is_empty(),
            Repr::Split(s) => s.iter().all(HashTable::is_empty),
        }
    }

    /// Slots allocated, over all shards.
    pub fn capacity(&self) -> usize {
        match &self.repr {
            Repr::Single(m) => m.capacity(),
            Repr::Split(s) => s.iter().map(HashTable::capacity).sum(),
        }
    }

    pub fn is_split(&self) -> bool {
        matches!(self.repr, Repr::Split(_))
    }

    fn table(&self, hash: u64) -> &HashTable<T> {
        match &self.repr {
            Repr::Single(m) => m,
            Repr::Split(s) => &s[shard_of(hash)],
        }
    }

    fn table_mut(&mut self, hash: u64) -> &mut HashTable<T> {
        match &mut self.repr {
            Repr::Single(m) => m,
            Repr::Split(s) => &mut s[shard_of(hash)],
        }
    }

    /// The stored value equal to `q`.
    pub fn get<Q>(&self, q: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = hash_of(q);
        self.table(h).find(h, |v| v.borrow() == q)
    }

    /// The stored value equal to `q`, to change in ways that keep its hash and equality.
    pub fn get_mut<Q>(&mut self, q: &Q) -> Option<&mut T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = hash_of(q);
        self.table_mut(h).find_mut(h, |v| v.borrow() == q)
    }

    pub fn contains<Q>(&self, q: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(q).is_some()
    }

    /// A single table about to double past [`SPLIT_AT`] splits instead.
    fn make_room(&mut self) {
        if let Repr::Single(m) = &self.repr {
            if m.len() >= SPLIT_AT && m.len() == m.capacity() {
                self.split(0);
            }
        }
    }

    /// Into [`SHARDS`] tables, each with room for twice its share of the values now
    /// held plus `additional`, so none grows straight away.
    fn split(&mut self, additional: usize) {
        let Repr::Single(m) = &mut self.repr else { return };
        let old = std::mem::take(m);
        let each = (old.len() * 2 + additional) / SHARDS + 1;
        let mut shards: Vec<HashTable<T>> = (0..SHARDS).map(|_| HashTable::with_capacity(each)).collect();
        for v in old {
            let h = hash_of(&v);
            shards[shard_of(h)].insert_unique(h, v, rehash);
        }
        self.repr = Repr::Split(shards.into_boxed_slice());
    }

    fn merge_if_small(&mut self) {
        let Repr::Split(s) = &mut self.repr else { return };
        let len: usize = s.iter().map(HashTable::len).sum();
        if len >= MERGE_AT {
            return;
        }
        let mut one = HashTable::with_capacity(len * 2);
        for shard in s.iter_mut() {
            for v in shard.drain() {
                one.insert_unique(hash_of(&v), v, rehash);
            }
        }
        self.repr = Repr::Single(one);
    }

    /// True if the value was not there before; if it was, the stored one stays and `v`
    /// is dropped (as `HashSet::insert`).
    pub fn insert(&mut self, v: T) -> bool {
        self.make_room();
        let h = hash_of(&v);
        match self.table_mut(h).entry(h, |x| *x == v, rehash) {
            Entry::Occupied(_) => false,
            Entry::Vacant(e) => {
                e.insert(v);
                true
            }
        }
    }

    /// Stores `v`, returning the equal value it replaces, if any (one probe).
    pub fn replace(&mut self, v: T) -> Option<T> {
        self.make_room();
        let h = hash_of(&v);
        match self.table_mut(h).entry(h, |x| *x == v, rehash) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), v)),
            Entry::Vacant(e) => {
                e.insert(v);
                None
            }
        }
    }

    /// Stores `v`, which the caller knows is not there (no equality test at all).
    pub fn insert_new(&mut self, v: T) {
        self.make_room();
        let h = hash_of(&v);
        self.table_mut(h).insert_unique(h, v, rehash);
    }

    /// Removes and returns the stored value equal to `q`; the shard it was in is halved
    /// if three-quarters empty.
    pub fn take<Q>(&mut self, q: &Q) -> Option<T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h = hash_of(q);
        let (table, floor) = match &mut self.repr {
            Repr::Single(m) => (m, FLAT_MIN_CAPACITY),
            Repr::Split(s) => (&mut s[shard_of(h)], SHARD_MIN_CAPACITY),
        };
        let Ok(entry) = table.find_entry(h, |v| v.borrow() == q) else { return None };
        let (v, _) = entry.remove();
        shrink_if_sparse(table, floor);
        self.merge_if_small();
        Some(v)
    }

    /// True if the value was there.
    pub fn remove<Q>(&mut self, q: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.take(q).is_some()
    }

    /// Room for `additional` more values; past [`SPLIT_AT`] that means splitting now
    /// (while the set is still small) rather than filling one table and splitting it late.
    pub fn reserve(&mut self, additional: usize) {
        match &mut self.repr {
            Repr::Single(m) if m.len() + additional <= SPLIT_AT => m.reserve(additional, rehash),
            Repr::Single(_) => self.split(additional),
            Repr::Split(s) => {
                let each = additional / SHARDS + 1;
                s.iter_mut().for_each(|m| m.reserve(each, rehash));
            }
        }
    }

    /// Visits the values whose shard (a function of the value alone, whether or not the
    /// set is split right now) is in `shards`. Over calls with adjoining ranges, a value
    /// present throughout is visited exactly once even if the set splits or merges in
    /// between: a walk can go through a huge set a few shards at a time.
    pub fn for_each_in_shards<'a>(&'a self, shards: std::ops::Range<usize>, mut f: impl FnMut(&'a T)) {
        match &self.repr {
            Repr::Split(s) => {
                for m in &s[shards.start.min(SHARDS)..shards.end.min(SHARDS)] {
                    m.iter().for_each(&mut f);
                }
            }
            // The whole range needs no hashing.
            Repr::Single(m) if shards.start == 0 && shards.end >= SHARDS => m.iter().for_each(f),
            Repr::Single(m) => {
                for v in m {
                    if shards.contains(&shard_of(hash_of(v))) {
                        f(v);
                    }
                }
            }
        }
    }
}

impl<T> ShardedSet<T> {
    /// Iteration needs no hashing: it walks the shards in turn.
    pub fn iter(&self) -> SetIter<'_, T> {
        match &self.repr {
            Repr::Single(m) => SetIter { rest: [].iter(), cur: Some(m.iter()) },
            Repr::Split(s) => SetIter { rest: s.iter(), cur: None },
        }
    }

    /// Consumes the set, handing each value to `f` (no table is rebuilt).
    pub fn drain_into(self, mut f: impl FnMut(T)) {
        match self.repr {
            Repr::Single(m) => m.into_iter().for_each(f),
            Repr::Split(s) => {
                for m in Vec::from(s) {
                    m.into_iter().for_each(&mut f);
                }
            }
        }
    }
}

pub struct SetIter<'a, T> {
    rest: std::slice::Iter<'a, HashTable<T>>,
    cur: Option<hash_table::Iter<'a, T>>,
}

impl<'a, T> Iterator for SetIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(v) = self.cur.as_mut().and_then(Iterator::next) {
                return Some(v);
            }
            self.cur = Some(self.rest.next()?.iter());
        }
    }
}

impl<'a, T> IntoIterator for &'a ShardedSet<T> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;

    fn into_iter(self) -> SetIter<'a, T> {
        self.iter()
    }
}

impl<T: Hash + Eq> Extend<T> for ShardedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            self.insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Growth past SPLIT_AT never moves more than a shard's worth at once: the largest
    /// single table any insert can rehash stays a small fraction of the whole.
    #[test]
    fn growth_is_a_shard_at_a_time() {
        let mut m: ShardedSet<String> = ShardedSet::new();
        let n = 300_000;
        let mut largest_single = 0;
        for i in 0..n {
            assert!(m.insert(format!("/p/n{i:010}")));
            if let Repr::Single(s) = &m.repr {
                largest_single = largest_single.max(s.capacity());
            }
        }
        assert!(m.is_split());
        assert!(largest_single <= SPLIT_AT * 2, "{largest_single}");
        let Repr::Split(s) = &m.repr else { unreachable!() };
        let biggest = s.iter().map(HashTable::capacity).max().unwrap_or(0);
        assert!(biggest * 32 < n, "one shard holds {biggest} slots of {n} values");
        assert_eq!(m.len(), n);
        for i in (0..n).step_by(7) {
            let k = format!("/p/n{i:010}");
            assert_eq!(m.get(k.as_str()), Some(&k));
        }
        assert_eq!(m.iter().count(), n);
    }

    /// The same operations on a ShardedSet and a std HashSet agree, through split and
    /// merge.
    #[test]
    fn behaves_like_a_hash_set_through_split_and_merge() {
        let mut ours: ShardedSet<String> = ShardedSet::new();
        let mut std_set: HashSet<String> = HashSet::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut split_seen = false;
        for round in 0..3 {
            // Fill past SPLIT_AT, then empty down past MERGE_AT.
            for i in 0..SPLIT_AT * 3 {
                let k = format!("c{}", rnd() % (SPLIT_AT as u64 * 4));
                if i % 3 == 0 {
                    assert_eq!(ours.replace(k.clone()).is_none(), std_set.insert(k));
                } else {
                    assert_eq!(ours.insert(k.clone()), std_set.insert(k));
                }
            }
            split_seen |= ours.is_split();
            for _ in 0..SPLIT_AT * 12 {
                let k = format!("c{}", rnd() % (SPLIT_AT as u64 * 4));
                assert_eq!(ours.remove(k.as_str()), std_set.remove(&k), "round {round}");
            }
            assert_eq!(ours.len(), std_set.len());
            let mut a: Vec<&String> = ours.iter().collect();
            a.sort();
            let mut b: Vec<&String> = std_set.iter().collect();
            b.sort();
            assert_eq!(a, b);
            for k in &std_set {
                assert!(ours.contains(k.as_str()));
            }
        }
        assert!(split_seen);
        assert!(!ours.is_split(), "{} left", ours.len());
    }

    /// After a mass removal the slots go back: a quarter or less of the high water.
    #[test]
    fn removal_gives_slots_back() {
        let mut m: ShardedSet<String> = ShardedSet::new();
        for i in 0..100_000 {
            m.insert_new(format!("k{i}"));
        }
        let high = m.capacity();
        for i in 0..99_000 {
            assert_eq!(m.take(format!("k{i}").as_str()), Some(format!("k{i}")));
        }
        assert!(!m.is_split());
        assert!(m.capacity() * 4 <= high, "{} of {high}", m.capacity());
        assert_eq!(m.len(), 1_000);
    }

    /// Reserving for a big load splits first, so loading a million children does not
    /// fill one table and split it at the end.
    #[test]
    fn reserve_splits_up_front() {
        let mut s: ShardedSet<String> = ShardedSet::new();
        s.reserve(100_000);
        assert!(s.is_split());
        let before = s.capacity();
        s.extend((0..100_000).map(|i| format!("n{i}")));
        assert_eq!(s.len(), 100_000);
        assert!(s.capacity() <= before * 2, "{} vs {before}", s.capacity());
    }

    /// A value changed in place (same key) is found again, and replace hands back the
    /// one it displaced.
    #[test]
    fn get_mut_and_replace_keep_the_slot() {
        #[derive(Debug)]
        struct Kv(String, u32);
        impl Hash for Kv {
            fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
                self.0.hash(h)
            }
        }
        impl PartialEq for Kv {
            fn eq(&self, o: &Kv) -> bool {
                self.0 == o.0
            }
        }
        impl Eq for Kv {}
        impl Borrow<str> for Kv {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        let mut s: ShardedSet<Kv> = ShardedSet::new();
        for i in 0..SPLIT_AT * 2 {
            s.insert_new(Kv(format!("k{i}"), 0));
        }
        if let Some(v) = s.get_mut("k5") {
            v.1 = 5;
        }
        assert_eq!(s.get("k5").map(|v| v.1), Some(5));
        assert_eq!(s.replace(Kv("k5".into(), 6)).map(|v| v.1), Some(5));
        assert_eq!(s.get("k5").map(|v| v.1), Some(6));
        assert!(!s.insert(Kv("k5".into(), 7)));
        assert_eq!(s.get("k5").map(|v| v.1), Some(6));
        assert_eq!(s.len(), SPLIT_AT * 2);
    }
}
