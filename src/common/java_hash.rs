//! Java's hash-table iteration order. Upstream hands out some sets in `HashSet` /
//! `ConcurrentHashMap` order (a connection's auth ids, a session's ephemerals when the
//! session closes), and clients see that order (whoAmI, the order of NodeDeleted events).
//! Java iterates a table bucket by bucket, and within a bucket in insertion order; a
//! resize keeps that relative order. So the order is a stable sort of the insertion
//! order by bucket index at the final capacity.

/// `String.hashCode()` over UTF-16 units.
pub fn string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// `Long.hashCode()`.
pub fn long_hash(v: i64) -> i32 {
    (v ^ ((v as u64) >> 32) as i64) as i32
}

/// Bucket of a hash in a table of `cap` (a power of two): `HashMap.hash` and
/// `ConcurrentHashMap.spread` agree below bit 31.
pub fn bucket(h: i32, cap: usize) -> usize {
    let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
    spread as usize & (cap - 1)
}

/// `HashMap.tableSizeFor`.
pub fn table_size_for(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Capacity of a `HashMap`/`HashSet` created empty (16) after `n` inserts: it doubles
/// when the size exceeds 3/4 of the capacity.
pub fn hashmap_capacity_for_inserts(n: usize) -> usize {
    let mut cap = 16;
    while n > cap * 3 / 4 {
        cap *= 2;
    }
    cap
}

/// Capacity of a `ConcurrentHashMap` created empty after `n` inserts: it doubles when
/// the size reaches 3/4 of the capacity.
pub fn chm_capacity_for_inserts(n: usize) -> usize {
    let mut cap = 16;
    while n >= cap - (cap >> 2) {
        cap *= 2;
    }
    cap
}

/// Capacity of `HashSet.clone()` / `new HashMap(map)` of `n` entries.
pub fn clone_capacity(n: usize) -> usize {
    if n == 0 {
        return 16;
    }
    table_size_for((n as f32 / 0.75 + 1.0) as usize)
}

/// Orders `items` (given in insertion order) as a table of `cap` buckets iterates them.
pub fn iteration_order<T>(items: Vec<T>, cap: usize, hash: impl Fn(&T) -> i32) -> Vec<T> {
    let mut v: Vec<(usize, T)> = items.into_iter().map(|t| (bucket(hash(&t), cap), t)).collect();
    v.sort_by_key(|(b, _)| *b);
    v.into_iter().map(|(_, t)| t).collect()
}

/// `java.util.Properties` entries as `entrySet()` hands them out (Java 9+ keeps them in
/// a `ConcurrentHashMap` of initial capacity 8, a 16-bucket table): upstream writes
/// zoo.cfg back and builds zkCli's `config -c` string in this order. A key loaded twice
/// keeps its first place and takes the last value.
pub fn properties_order(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match unique.iter_mut().find(|(uk, _)| *uk == k) {
            Some(e) => e.1 = v,
            None => unique.push((k, v)),
        }
    }
    let cap = chm_capacity_for_inserts(unique.len());
    iteration_order(unique, cap, |(k, _)| string_hash(k))
}

/// The jute-generated `Id.hashCode()`.
pub fn id_hash(scheme: &str, id: &str) -> i32 {
    let mut r: i32 = 17;
    r = r.wrapping_mul(37).wrapping_add(string_hash(scheme));
    r.wrapping_mul(37).wrapping_add(string_hash(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_order_is_apaches() {
        // As Apache's zkCli `config -c` printed a 3-server config: 2, 1, 3.
        let p = |k: &str| (k.to_owned(), String::new());
        let keys: Vec<String> = properties_order(vec![p("server.1"), p("server.2"), p("server.3"), p("version")]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["server.2", "server.1", "server.3", "version"]);
        let dup = properties_order(vec![("a".into(), "1".into()), ("a".into(), "2".into())]);
        assert_eq!(dup, vec![("a".to_owned(), "2".to_owned())]);
    }

    #[test]
    fn java_string_hash() {
        assert_eq!(string_hash("hello"), 99162322);
        assert_eq!(string_hash(""), 0);
    }

    #[test]
    fn capacities() {
        assert_eq!(hashmap_capacity_for_inserts(12), 16);
        assert_eq!(hashmap_capacity_for_inserts(13), 32);
        assert_eq!(chm_capacity_for_inserts(11), 16);
        assert_eq!(chm_capacity_for_inserts(12), 32);
        assert_eq!(clone_capacity(1), 2);
        assert_eq!(clone_capacity(3), 8);
        assert_eq!(clone_capacity(12), 32);
    }
}
