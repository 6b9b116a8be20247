//! `CompactStr`: a child name stored in place when short, boxed when long.
//!
//! A znode's child names are nearly always short ("n0000001", "lock-0000000012"). As
//! `Box<str>` each is a 16-byte handle plus a 32-byte heap chunk somewhere else, which a
//! child listing or a snapshot walk then visits one cache miss at a time. Up to
//! [`INLINE`] bytes live inside the 24-byte value itself.


/// Bytes kept in place; longer strings are boxed.
pub const INLINE: usize = 22;

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

/// Hashes, compares and borrows exactly as the `str` it holds, so sets of it are
/// looked up by `&str`.
#[derive(Clone)]
pub struct CompactStr(Repr);

impl CompactStr {
    pub fn new(s: &str) -> CompactStr {
        if s.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            CompactStr(Repr::Inline { len: s.len() as u8, buf })
        } else {
            CompactStr(Repr::Heap(s.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: the bytes were copied whole from a `&str` in `new`, so the first
            // `len` of them are valid UTF-8.
            Repr::Inline { len, buf } => unsafe { std::str::from_utf8_unchecked(&buf[..*len as usize]) },
            Repr::Heap(b) => b,
        }
    }
}

impl_str_key!(CompactStr);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn short_and_long_strings_read_back_hash_and_compare_as_str() {
        assert_eq!(std::mem::size_of::<CompactStr>(), 24);
        let state = std::collections::hash_map::RandomState::new();
        for s in ["", "a", "n0000001", "lock-0000000012", "exactly-twenty-two-b22", "twenty-three-bytes-xx23", "ünïcödé-ünïcödé-ünïcödé", &"x".repeat(300)] {
            let c = CompactStr::new(s);
            assert_eq!(c.as_str(), s);
            assert_eq!(&*c, s);
            assert_eq!(state.hash_one(&c), state.hash_one(s), "{s:?}");
            assert_eq!(c, CompactStr::from(s));
            assert_eq!(matches!(c.0, Repr::Inline { .. }), s.len() <= INLINE, "{s:?}");
        }
        let set: HashSet<CompactStr> = ["a", "bb", &"c".repeat(40)].into_iter().map(CompactStr::new).collect();
        assert!(set.contains("a") && set.contains("bb") && set.contains(&*"c".repeat(40)));
        assert!(!set.contains("b"));
    }
}
