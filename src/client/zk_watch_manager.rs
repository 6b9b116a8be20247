//! `ZKWatchManager`: the client's record of which watcher waits for what, and
//! `materialize`, which picks (and for one-shot watches removes) the watchers an event
//! goes to.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::watched_event::Watcher;
use crate::proto::event_type;

#[derive(Default)]
struct Maps {
    data: HashMap<String, Vec<Watcher>>,
    exist: HashMap<String, Vec<Watcher>>,
    child: HashMap<String, Vec<Watcher>>,
    persistent: HashMap<String, Vec<Watcher>>,
    persistent_recursive: HashMap<String, Vec<Watcher>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Data,
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

pub struct ZKWatchManager {
    maps: Mutex<Maps>,
    pub default_watcher: Mutex<Option<Watcher>>,
}

fn add(map: &mut HashMap<String, Vec<Watcher>>, path: &str, w: &Watcher) {
    let v = map.entry(path.to_owned()).or_default();
    if !v.iter().any(|x| Arc::ptr_eq(x, w)) {
        v.push(w.clone());
    }
}

impl ZKWatchManager {
    pub fn new(default_watcher: Option<Watcher>) -> Self {
        ZKWatchManager { maps: Mutex::new(Maps::default()), default_watcher: Mutex::new(default_watcher) }
    }

    pub fn register(&self, kind: WatchKind, path: &str, w: &Watcher) {
        let mut m = self.maps.lock();
        match kind {
            WatchKind::Data => add(&mut m.data, path, w),
            WatchKind::Exist => add(&mut m.exist, path, w),
            WatchKind::Child => add(&mut m.child, path, w),
            WatchKind::Persistent => add(&mut m.persistent, path, w),
            WatchKind::PersistentRecursive => add(&mut m.persistent_recursive, path, w),
        }
    }

    /// Paths to re-register on reconnect (SetWatches), per map.
    pub fn watched_paths(&self) -> [Vec<String>; 5] {
        let m = self.maps.lock();
        let keys = |h: &HashMap<String, Vec<Watcher>>| h.keys().cloned().collect::<Vec<_>>();
        [keys(&m.data), keys(&m.exist), keys(&m.child), keys(&m.persistent), keys(&m.persistent_recursive)]
    }

    /// `materialize`.
    pub fn materialize(&self, ev_type: i32, path: Option<&str>) -> Vec<Watcher> {
        let mut out: Vec<Watcher> = Vec::new();
        let push = |v: &[Watcher], out: &mut Vec<Watcher>| {
            for w in v {
                if !out.iter().any(|x| Arc::ptr_eq(x, w)) {
                    out.push(w.clone());
                }
            }
        };
        let mut m = self.maps.lock();
        if ev_type == event_type::NONE {
            if let Some(d) = self.default_watcher.lock().clone() {
                push(&[d], &mut out);
            }
            for map in [&m.data, &m.exist, &m.child, &m.persistent, &m.persistent_recursive] {
                for v in map.values() {
                    push(v, &mut out);
                }
            }
            return out;
        }
        let Some(path) = path else { return out };
        let take = |map: &mut HashMap<String, Vec<Watcher>>| map.remove(path).unwrap_or_default();
        match ev_type {
            event_type::NODE_CREATED | event_type::NODE_DATA_CHANGED => {
                let a = take(&mut m.data);
                push(&a, &mut out);
                let b = take(&mut m.exist);
                push(&b, &mut out);
            }
            event_type::NODE_CHILDREN_CHANGED => {
                let a = take(&mut m.child);
                push(&a, &mut out);
            }
            event_type::NODE_DELETED => {
                let a = take(&mut m.data);
                push(&a, &mut out);
                let b = take(&mut m.exist);
                push(&b, &mut out);
                let c = take(&mut m.child);
                push(&c, &mut out);
            }
            _ => {}
        }
        if let Some(v) = m.persistent.get(path) {
            push(v, &mut out);
        }
        // Persistent-recursive watches of the path and every ancestor.
        let mut p = path.to_owned();
        let mut seen = HashSet::new();
        loop {
            if seen.insert(p.clone()) {
                if let Some(v) = m.persistent_recursive.get(&p) {
                    if ev_type != event_type::NODE_CHILDREN_CHANGED {
                        push(v, &mut out);
                    }
                }
            }
            if p == "/" {
                break;
            }
            p = match p.rfind('/') {
                Some(0) => "/".to_owned(),
                Some(i) => p[..i].to_owned(),
                None => break,
            };
        }
        out
    }

    /// Whether `path` has a watcher of any of the given kinds.
    pub fn contains(&self, path: &str, kinds: &[WatchKind]) -> bool {
        let m = self.maps.lock();
        kinds.iter().any(|k| {
            let map = match k {
                WatchKind::Data => &m.data,
                WatchKind::Exist => &m.exist,
                WatchKind::Child => &m.child,
                WatchKind::Persistent => &m.persistent,
                WatchKind::PersistentRecursive => &m.persistent_recursive,
            };
            map.get(path).is_some_and(|v| !v.is_empty())
        })
    }

    /// Removes the watchers of `path` of the given kinds and returns them, grouped by
    /// the event type they are told with (child, data+exist, persistent), each watcher
    /// once per group.
    pub fn take(&self, path: &str, kinds: &[WatchKind]) -> Vec<(WatchKind, Vec<Watcher>)> {
        let mut m = self.maps.lock();
        let mut groups: Vec<(WatchKind, Vec<Watcher>)> = Vec::new();
        for k in [WatchKind::Child, WatchKind::Data, WatchKind::Exist, WatchKind::Persistent, WatchKind::PersistentRecursive] {
            if !kinds.contains(&k) {
                continue;
            }
            let map = match k {
                WatchKind::Data => &mut m.data,
                WatchKind::Exist => &mut m.exist,
                WatchKind::Child => &mut m.child,
                WatchKind::Persistent => &mut m.persistent,
                WatchKind::PersistentRecursive => &mut m.persistent_recursive,
            };
            let Some(ws) = map.remove(path) else { continue };
            let group_kind = match k {
                WatchKind::Exist => WatchKind::Data,
                WatchKind::PersistentRecursive => WatchKind::Persistent,
                other => other,
            };
            let idx = match groups.iter().position(|(g, _)| *g == group_kind) {
                Some(i) => i,
                None => {
                    groups.push((group_kind, Vec::new()));
                    groups.len() - 1
                }
            };
            for w in ws {
                if !groups[idx].1.iter().any(|x| Arc::ptr_eq(x, &w)) {
                    groups[idx].1.push(w);
                }
            }
        }
        groups
    }

    /// Removes watchers of `path` of the given kinds; returns whether any was there.
    pub fn remove(&self, path: &str, kinds: &[WatchKind]) -> bool {
        let mut m = self.maps.lock();
        let mut any = false;
        for k in kinds {
            let map = match k {
                WatchKind::Data => &mut m.data,
                WatchKind::Exist => &mut m.exist,
                WatchKind::Child => &mut m.child,
                WatchKind::Persistent => &mut m.persistent,
                WatchKind::PersistentRecursive => &mut m.persistent_recursive,
            };
            any |= map.remove(path).is_some();
        }
        any
    }
}
