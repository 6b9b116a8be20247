//! `org.apache.zookeeper.server.quorum`. So far: the configuration parser shared by
//! standalone and replicated start-up.

pub mod quorum_peer_config;
