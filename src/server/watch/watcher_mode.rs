//! `WatcherMode`: one-shot, persistent, or persistent-recursive.

use crate::proto::add_watch_mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatcherMode {
    #[default]
    Standard,
    Persistent,
    PersistentRecursive,
}

impl WatcherMode {
    /// `WatcherMode.fromZooDef`; anything but the two AddWatchModes is invalid.
    pub fn from_zoo_def(mode: i32) -> Option<WatcherMode> {
        match mode {
            add_watch_mode::PERSISTENT => Some(WatcherMode::Persistent),
            add_watch_mode::PERSISTENT_RECURSIVE => Some(WatcherMode::PersistentRecursive),
            _ => None,
        }
    }

    pub fn is_persistent(self) -> bool {
        self != WatcherMode::Standard
    }

    pub fn is_recursive(self) -> bool {
        self == WatcherMode::PersistentRecursive
    }
}
