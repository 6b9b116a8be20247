//! `org.apache.zookeeper.server.util`.

pub mod http_server;
pub mod zxid_utils;
