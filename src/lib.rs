//! zookeeper-rs: a port of Apache ZooKeeper 3.8, wire- and disk-compatible with it.
//!
//! The module tree follows upstream's packages: `jute` (org.apache.jute), `proto`
//! (the records of zookeeper.jute and ZooDefs), `server` (org.apache.zookeeper.server and
//! its subpackages), `client` and `cli`; `bench` is the `zk-bench` load generator and
//! `oracle` the `zk-oracle` cross-checking proxy.

pub mod bench;
pub mod chaos;
pub mod oracle;
pub mod cli;
pub mod client;
pub mod common;
pub mod fuzz_targets;
pub mod jute;
pub mod proto;
pub mod server;
pub mod system_properties;
pub mod version;
