//! `org.apache.zookeeper.server.util`.

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
