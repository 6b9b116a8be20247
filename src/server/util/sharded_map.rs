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
use std::collections::hash_map::{self, Entry, HashMap};
use std::hash::{BuildHasher, Hash};

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

type Map<K, V> = HashMap<K, V, FastState>;

enum Repr<K, V> {
    Single(Map<K, V>),
    Split(Box<[Map<K, V>]>),
}

pub struct ShardedMap<K, V> {
    repr: Repr<K, V>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap { repr: Repr::Single(HashMap::with_hasher(FastState)) }
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Clone + Hash + Eq, V: Clone> Clone for ShardedMap<K, V> {
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            Repr::Single(m) => Repr::Single(m.clone()),
            Repr::Split(s) => Repr::Split(s.clone()),
        };
        ShardedMap { repr }
    }
}

/// Bits 32..40 of the hash: the table inside a shard indexes buckets with the low bits
/// and tags them with the top seven, so these leave both evenly spread.
fn shard_of<Q: Hash + ?Sized>(q: &Q) -> usize {
    (FastState.hash_one(q) >> 32) as usize & (SHARDS - 1)
}

fn shrink_if_sparse<K: Hash + Eq, V>(m: &mut Map<K, V>, floor: usize) {
    if m.capacity() > floor && m.len() * 4 < m.capacity() {
        m.shrink_to(m.len() * 2);
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Single(m) => m.len(),
            Repr::Split(s) => s.iter().map(HashMap::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Single(m) => m.is_empty(),
            Repr::Split(s) => s.iter().all(HashMap::is_empty),
        }
    }

    /// Slots allocated, over all shards.
    pub fn capacity(&self) -> usize {
        match &self.repr {
            Repr::Single(m) => m.capacity(),
            Repr::Split(s) => s.iter().map(HashMap::capacity).sum(),
        }
    }

    pub fn is_split(&self) -> bool {
        matches!(self.repr, Repr::Split(_))
    }

    fn map_of<Q: Hash + ?Sized>(&self, q: &Q) -> &Map<K, V> {
        match &self.repr {
            Repr::Single(m) => m,
            Repr::Split(s) => &s[shard_of(q)],
        }
    }

    fn map_of_mut<Q: Hash + ?Sized>(&mut self, q: &Q) -> &mut Map<K, V> {
        match &mut self.repr {
            Repr::Single(m) => m,
            Repr::Split(s) => &mut s[shard_of(q)],
        }
    }

    pub fn get<Q>(&self, q: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map_of(q).get(q)
    }

    pub fn get_mut<Q>(&mut self, q: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map_of_mut(q).get_mut(q)
    }

    pub fn contains_key<Q>(&self, q: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map_of(q).contains_key(q)
    }

    /// A single map about to double past [`SPLIT_AT`] splits instead.
    fn make_room(&mut self) {
        if let Repr::Single(m) = &self.repr {
            if m.len() >= SPLIT_AT && m.len() == m.capacity() {
                self.split(0);
            }
        }
    }

    /// Into [`SHARDS`] maps, each with room for twice its share of the entries now held
    /// plus `additional`, so none grows straight away.
    fn split(&mut self, additional: usize) {
        let Repr::Single(m) = &mut self.repr else { return };
        let old = std::mem::replace(m, HashMap::with_hasher(FastState));
        let each = (old.len() * 2 + additional) / SHARDS + 1;
        let mut shards: Vec<Map<K, V>> =
            (0..SHARDS).map(|_| HashMap::with_capacity_and_hasher(each, FastState)).collect();
        for (k, v) in old {
            shards[shard_of(&k)].insert(k, v);
        }
        self.repr = Repr::Split(shards.into_boxed_slice());
    }

    fn merge_if_small(&mut self) {
        let Repr::Split(s) = &mut self.repr else { return };
        let len: usize = s.iter().map(HashMap::len).sum();
        if len >= MERGE_AT {
            return;
        }
        let mut one = HashMap::with_capacity_and_hasher(len * 2, FastState);
        for shard in s.iter_mut() {
            one.extend(shard.drain());
        }
        self.repr = Repr::Single(one);
    }

    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.make_room();
        self.map_of_mut(&k).insert(k, v)
    }

    pub fn entry(&mut self, k: K) -> Entry<'_, K, V> {
        self.make_room();
        self.map_of_mut(&k).entry(k)
    }

    /// Removes and returns the value; the shard it was in is halved if three-quarters
    /// empty.
    pub fn remove<Q>(&mut self, q: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let v = match &mut self.repr {
            Repr::Single(m) => {
                let v = m.remove(q)?;
                shrink_if_sparse(m, FLAT_MIN_CAPACITY);
                return Some(v);
            }
            Repr::Split(s) => {
                let shard = &mut s[shard_of(q)];
                let v = shard.remove(q)?;
                shrink_if_sparse(shard, SHARD_MIN_CAPACITY);
                v
            }
        };
        self.merge_if_small();
        Some(v)
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Room for `additional` more entries; past [`SPLIT_AT`] that means splitting now
    /// (while the map is still small) rather than filling one map and splitting it late.
    pub fn reserve(&mut self, additional: usize) {
        match &mut self.repr {
            Repr::Single(m) if m.len() + additional <= SPLIT_AT => m.reserve(additional),
            Repr::Single(_) => self.split(additional),
            Repr::Split(s) => {
                let each = additional / SHARDS + 1;
                s.iter_mut().for_each(|m| m.reserve(each));
            }
        }
    }
}

impl<K: Hash, V> ShardedMap<K, V> {
    /// Visits the entries whose shard (a function of the key alone, whether or not the
    /// map is split right now) is in `shards`. Over calls with adjoining ranges, an
    /// entry present throughout is visited exactly once even if the map splits or
    /// merges in between: a walk can copy a huge set a few shards at a time.
    pub fn for_each_in_shards(&self, shards: std::ops::Range<usize>, mut f: impl FnMut(&K, &V)) {
        match &self.repr {
            Repr::Split(s) => {
                for m in &s[shards.start.min(SHARDS)..shards.end.min(SHARDS)] {
                    for (k, v) in m {
                        f(k, v);
                    }
                }
            }
            // The whole range needs no hashing.
            Repr::Single(m) if shards.start == 0 && shards.end >= SHARDS => {
                for (k, v) in m {
                    f(k, v);
                }
            }
            Repr::Single(m) => {
                for (k, v) in m {
                    if shards.contains(&shard_of(k)) {
                        f(k, v);
                    }
                }
            }
        }
    }
}

/// Iteration needs no hashing: it walks the shards in turn.
impl<K, V> ShardedMap<K, V> {
    pub fn iter(&self) -> Iter<'_, K, V> {
        match &self.repr {
            Repr::Single(m) => Iter { rest: [].iter(), cur: Some(m.iter()) },
            Repr::Split(s) => Iter { rest: s.iter(), cur: None },
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: Hash + Eq, V> Extend<(K, V)> for ShardedMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K, Q, V> std::ops::Index<&Q> for ShardedMap<K, V>
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    type Output = V;

    fn index(&self, q: &Q) -> &V {
        self.get(q).expect("no entry for the key")
    }
}

pub struct Iter<'a, K, V> {
    rest: std::slice::Iter<'a, Map<K, V>>,
    cur: Option<hash_map::Iter<'a, K, V>>,
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.cur.as_mut().and_then(Iterator::next) {
                return Some(item);
            }
            self.cur = Some(self.rest.next()?.iter());
        }
    }
}

impl<'a, K, V> IntoIterator for &'a ShardedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

/// A set on [`ShardedMap`]: a node's children.
#[derive(Default)]
pub struct ShardedSet<T> {
    map: ShardedMap<T, ()>,
}

impl<T: Clone + Hash + Eq> Clone for ShardedSet<T> {
    fn clone(&self) -> Self {
        ShardedSet { map: self.map.clone() }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ShardedSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.iter().map(|(k, _)| k)).finish()
    }
}

impl<T: Hash + Eq> ShardedSet<T> {
    pub fn new() -> Self {
        ShardedSet { map: ShardedMap::new() }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.map.capacity()
    }

    pub fn is_split(&self) -> bool {
        self.map.is_split()
    }

    /// True if the value was not there before.
    pub fn insert(&mut self, v: T) -> bool {
        self.map.insert(v, ()).is_none()
    }

    pub fn contains<Q>(&self, q: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(q)
    }

    /// True if the value was there.
    pub fn remove<Q>(&mut self, q: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(q).is_some()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional)
    }

    pub fn iter(&self) -> SetIter<'_, T> {
        SetIter(self.map.iter())
    }

    /// [`ShardedMap::for_each_in_shards`] over the values.
    pub fn for_each_in_shards(&self, shards: std::ops::Range<usize>, mut f: impl FnMut(&T)) {
        self.map.for_each_in_shards(shards, |k, _| f(k))
    }
}

pub struct SetIter<'a, T>(Iter<'a, T, ()>);

impl<'a, T> Iterator for SetIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        self.0.next().map(|(k, _)| k)
    }
}

impl<'a, T> IntoIterator for &'a ShardedSet<T> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;

    fn into_iter(self) -> SetIter<'a, T> {
        SetIter(self.map.iter())
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
        let mut m: ShardedMap<String, u64> = ShardedMap::new();
        let n = 300_000;
        let mut largest_single = 0;
        for i in 0..n {
            m.insert(format!("/p/n{i:010}"), i as u64);
            if let Repr::Single(s) = &m.repr {
                largest_single = largest_single.max(s.capacity());
            }
        }
        assert!(m.is_split());
        assert!(largest_single <= SPLIT_AT * 2, "{largest_single}");
        let Repr::Split(s) = &m.repr else { unreachable!() };
        let biggest = s.iter().map(HashMap::capacity).max().unwrap_or(0);
        assert!(biggest * 32 < n, "one shard holds {biggest} slots of {n} entries");
        assert_eq!(m.len(), n);
        for i in (0..n).step_by(7) {
            assert_eq!(m.get(format!("/p/n{i:010}").as_str()), Some(&(i as u64)));
        }
        assert_eq!(m.iter().count(), n);
        let sum: u64 = m.values().sum();
        assert_eq!(sum, (0..n as u64).sum());
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
            for _ in 0..SPLIT_AT * 3 {
                let k = format!("c{}", rnd() % (SPLIT_AT as u64 * 4));
                assert_eq!(ours.insert(k.clone()), std_set.insert(k));
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
        let mut m: ShardedMap<String, [u8; 100]> = ShardedMap::new();
        for i in 0..100_000 {
            m.insert(format!("k{i}"), [0; 100]);
        }
        let high = m.capacity();
        for i in 0..99_000 {
            assert!(m.remove(format!("k{i}").as_str()).is_some());
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

    #[test]
    fn entry_and_index() {
        let mut m: ShardedMap<String, i32> = ShardedMap::new();
        for i in 0..SPLIT_AT * 2 {
            match m.entry(format!("k{i}")) {
                Entry::Vacant(v) => {
                    v.insert(i as i32);
                }
                Entry::Occupied(_) => panic!("duplicate"),
            }
        }
        assert!(matches!(m.entry("k5".to_owned()), Entry::Occupied(_)));
        assert_eq!(m["k7"], 7);
        m.clear();
        assert!(m.is_empty());
    }
}
