//! `org.apache.zookeeper.server.util`.

/// The traits a string key type with `new(&str)` and `as_str()` needs to stand in for
/// `str` in the node map and child sets: it derefs, borrows, hashes, compares and prints
/// as the `str` it holds, so lookups by `&str` find it.
macro_rules! impl_str_key {
    ($t:ident) => {
        impl std::ops::Deref for $t {
            type Target = str;

            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                std::hash::Hash::hash(self.as_str(), state)
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &$t) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $t {}

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl From<&str> for $t {
            fn from(s: &str) -> $t {
                $t::new(s)
            }
        }
    };
}

pub mod atomic_file_writing_idiom;
pub mod compact_str;
pub mod epoll;
pub mod http_server;
pub mod node_data;
pub mod prefetch;
pub mod sharded_map;
pub mod thin_bytes;
pub mod thin_str;
pub mod zxid_utils;
