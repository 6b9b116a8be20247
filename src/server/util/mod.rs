//! `org.apache.zookeeper.server.util`.

pub mod atomic_file_writing_idiom;
pub mod epoll;
pub mod http_server;
pub mod prefetch;
pub mod sharded_map;
pub mod zxid_utils;
