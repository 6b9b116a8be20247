//! `ThinStr`: the node map's path key in one pointer.
//!
//! The node map holds a key and a node handle per slot; with a `Box<str>` key (two
//! words) a slot is 24 bytes, with this (one word) 16. A table just grown is about half
//! empty, so at a million znodes that is some 16 MB of slots. The path's own chunk is
//! about what it was: a 4-byte length in front of the bytes instead of beside the
//! pointer.


use super::thin_bytes::ThinBytes;

/// Always UTF-8: built from a `str` only.
#[derive(Clone)]
pub struct ThinStr(ThinBytes);

impl ThinStr {
    pub fn new(s: &str) -> ThinStr {
        ThinStr(ThinBytes::new(s.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes were copied from a str and never change.
        unsafe { std::str::from_utf8_unchecked(self.0.as_bytes()) }
    }
}

impl_str_key!(ThinStr);

impl PartialOrd for ThinStr {
    fn partial_cmp(&self, other: &ThinStr) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ThinStr {
    fn cmp(&self, other: &ThinStr) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::fmt::Display for ThinStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn one_pointer_wide() {
        assert_eq!(std::mem::size_of::<ThinStr>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn found_by_str_in_a_map_like_the_str_it_holds() {
        let mut m: HashMap<ThinStr, u32> = HashMap::new();
        for (i, p) in ["/", "/a", "/a/b", "/zookeeper/quota", "", "/ünïcödé/路径"].iter().enumerate() {
            m.insert(ThinStr::new(p), i as u32);
        }
        assert_eq!(m.get("/a/b"), Some(&2));
        assert_eq!(m.get(""), Some(&4));
        assert_eq!(m.get("/ünïcödé/路径"), Some(&5));
        assert_eq!(m.get("/a/"), None);
        let k = ThinStr::from("/a/b");
        assert_eq!(&*k.clone(), "/a/b");
        assert_eq!(format!("{k} {k:?}"), "/a/b \"/a/b\"");
        assert!(ThinStr::new("/a") < ThinStr::new("/b"));
    }
}
