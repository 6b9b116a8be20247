//! `org.apache.zookeeper.server.quorum`: configuration, membership, and the election
//! layer of a replicated server.

pub mod flexible;
pub mod quorum_peer_config;
pub mod quorum_server;
