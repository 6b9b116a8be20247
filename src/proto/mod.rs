//! The records of `zookeeper.jute`, one module per jute module, plus the protocol
//! constants of `ZooDefs`, `KeeperException.Code`, `CreateMode` and `Watcher.Event`.

pub mod consts;
pub mod data;
pub mod multi;
pub mod proto;
pub mod quorum;
pub mod txn;

pub use consts::*;
