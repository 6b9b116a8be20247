//! `WatchedEvent` and `Watcher`.

use std::fmt;
use std::sync::Arc;

use crate::proto::{event_type, keeper_state};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: Option<String>,
}

/// A watcher: called on the EventThread, once per event even when registered several
/// times for it.
pub type Watcher = Arc<dyn Fn(&WatchedEvent) + Send + Sync>;

pub fn event_type_name(t: i32) -> &'static str {
    match t {
        event_type::NONE => "None",
        event_type::NODE_CREATED => "NodeCreated",
        event_type::NODE_DELETED => "NodeDeleted",
        event_type::NODE_DATA_CHANGED => "NodeDataChanged",
        event_type::NODE_CHILDREN_CHANGED => "NodeChildrenChanged",
        event_type::DATA_WATCH_REMOVED => "DataWatchRemoved",
        event_type::CHILD_WATCH_REMOVED => "ChildWatchRemoved",
        event_type::PERSISTENT_WATCH_REMOVED => "PersistentWatchRemoved",
        _ => "Unknown",
    }
}

pub fn keeper_state_name(s: i32) -> &'static str {
    match s {
        keeper_state::DISCONNECTED => "Disconnected",
        keeper_state::SYNC_CONNECTED => "SyncConnected",
        keeper_state::AUTH_FAILED => "AuthFailed",
        keeper_state::CONNECTED_READ_ONLY => "ConnectedReadOnly",
        keeper_state::SASL_AUTHENTICATED => "SaslAuthenticated",
        keeper_state::EXPIRED => "Expired",
        keeper_state::CLOSED => "Closed",
        _ => "Unknown",
    }
}

/// `WatchedEvent.toString`: what zkCli prints after `WATCHER::`.
impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            keeper_state_name(self.state),
            event_type_name(self.event_type),
            self.path.as_deref().unwrap_or("null")
        )
    }
}
