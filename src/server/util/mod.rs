//! `org.apache.zookeeper.server.util`.

pub mod zxid_utils;
