//! `org.apache.zookeeper.server.watch`.

pub mod watch_manager;
pub mod watcher_mode;

pub use watch_manager::WatchManager;
pub use watcher_mode::WatcherMode;
