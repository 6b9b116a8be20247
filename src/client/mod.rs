//! `org.apache.zookeeper` client side: the `ZooKeeper` handle over `ClientCnxn`
//! (a SendThread owning the socket and an EventThread delivering watch events and
//! callbacks in order), `ZKWatchManager`, `StaticHostProvider` and the connect string.

pub mod client_cnxn;
pub mod connect_string_parser;
pub mod keeper_error;
pub mod static_host_provider;
pub mod watched_event;
pub mod zk_watch_manager;
pub mod zookeeper;

pub use keeper_error::KeeperError;
pub use watched_event::{WatchedEvent, Watcher};
pub use zookeeper::{States, ZooKeeper};
