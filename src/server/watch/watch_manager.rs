//! `WatchManager`: one table of path → watching connections, with per-(connection,
//! path) modes. DataTree keeps two of them, data watches and child watches.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use super::WatcherMode;
use crate::proto::data::{Id, ACL};
use crate::server::server_cnxn::ServerCnxn;

/// `ZooKeeperServer.checkACL(cnxn, acl, READ, authInfo, path, null)` as the watch
/// delivery of the CVE-2024-23944 fix uses it: true when the event may be sent.
fn read_permitted(acl: &[ACL], ids: &[Id]) -> bool {
    if crate::system_properties::get_or("zookeeper.skipACL", "no") == "yes" || acl.is_empty() {
        return true;
    }
    if ids.iter().any(|i| i.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms & crate::proto::perms::READ != 0).any(|a| {
        (a.id.scheme == "world" && a.id.id == "anyone")
            || ids.iter().any(|i| {
                i.scheme == a.id.scheme && crate::server::auth::matches(&a.id.scheme, &i.id, &a.id.id) == Some(true)
            })
    })
}

pub type WatcherId = u64;

#[derive(Default)]
pub struct WatchManager {
    watch_table: HashMap<String, HashSet<WatcherId>>,
    watch2paths: HashMap<WatcherId, HashSet<String>>,
    /// Only non-standard modes are stored, as upstream's WatcherModeManager does.
    modes: HashMap<(WatcherId, String), WatcherMode>,
    recursive_qty: usize,
    watchers: HashMap<WatcherId, Arc<ServerCnxn>>,
}

impl WatchManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> usize {
        self.watch_table.values().map(|s| s.len()).sum()
    }

    fn mode_of(&self, w: WatcherId, path: &str) -> WatcherMode {
        // Most servers hold no persistent or recursive watch: skip building the key.
        if self.modes.is_empty() {
            return WatcherMode::default();
        }
        self.modes.get(&(w, path.to_owned())).copied().unwrap_or_default()
    }

    fn set_mode(&mut self, w: WatcherId, path: &str, mode: WatcherMode) {
        let key = (w, path.to_owned());
        let old = if mode == WatcherMode::Standard {
            self.modes.remove(&key)
        } else {
            self.modes.insert(key, mode)
        };
        if old.map(|m| m.is_recursive()).unwrap_or(false) {
            self.recursive_qty -= 1;
        }
        if mode.is_recursive() {
            self.recursive_qty += 1;
        }
    }

    fn remove_mode(&mut self, w: WatcherId, path: &str) {
        if let Some(m) = self.modes.remove(&(w, path.to_owned())) {
            if m.is_recursive() {
                self.recursive_qty -= 1;
            }
        }
    }

    pub fn add_watch(&mut self, path: &str, watcher: &Arc<ServerCnxn>, mode: WatcherMode) -> bool {
        if watcher.is_closed() {
            // Upstream's dead-watcher check: a closed connection never registers.
            return false;
        }
        let id = watcher.id;
        self.watch_table.entry(path.to_owned()).or_default().insert(id);
        self.watch2paths.entry(id).or_default().insert(path.to_owned());
        self.watchers.entry(id).or_insert_with(|| watcher.clone());
        self.set_mode(id, path, mode);
        true
    }

    /// Paths to check for a change at `path`: the path itself, then (only while some
    /// recursive watch exists) each ancestor up to "/".
    fn path_and_parents(&self, path: &str) -> Vec<String> {
        let mut v = vec![path.to_owned()];
        if self.recursive_qty == 0 {
            return v;
        }
        let mut p = path;
        while p.len() > 1 {
            p = match p.rfind('/') {
                Some(0) => "/",
                Some(i) => &p[..i],
                None => break,
            };
            v.push(p.to_owned());
        }
        v
    }

    /// `triggerWatch`: sends the event to every watcher of `path` (and recursive
    /// watchers of its ancestors) not in `suppress`; one-shot watches are removed.
    pub fn trigger_watch(
        &mut self,
        path: &str,
        event_type: i32,
        suppress: Option<&HashSet<WatcherId>>,
    ) -> HashSet<WatcherId> {
        self.trigger_watch_acl(path, event_type, None, suppress)
    }

    /// `triggerWatch(path, type, acl, supress)` as shipped with the CVE-2024-23944 fix
    /// (ZOOKEEPER-4799; Debian's 3.8.0 carries it): when `acl` is given, a watcher whose
    /// connection lacks READ permission on it is not sent the event (it still counts as
    /// fired, and one-shot watches are still consumed).
    pub fn trigger_watch_acl(
        &mut self,
        path: &str,
        event_type: i32,
        acl: Option<&[ACL]>,
        suppress: Option<&HashSet<WatcherId>>,
    ) -> HashSet<WatcherId> {
        let mut fired: HashSet<WatcherId> = HashSet::new();
        if self.watch_table.is_empty() {
            return fired;
        }
        for (i, local) in self.path_and_parents(path).into_iter().enumerate() {
            let at_parent = i > 0;
            let Some(set) = self.watch_table.get(&local) else { continue };
            let ids: Vec<WatcherId> = set.iter().copied().collect();
            let mut removed = Vec::new();
            for w in ids {
                let mode = self.mode_of(w, &local);
                if mode.is_recursive() {
                    if event_type != crate::proto::event_type::NODE_CHILDREN_CHANGED {
                        fired.insert(w);
                    }
                } else if !at_parent {
                    fired.insert(w);
                    if !mode.is_persistent() {
                        removed.push(w);
                    }
                }
            }
            for w in removed {
                if let Some(set) = self.watch_table.get_mut(&local) {
                    set.remove(&w);
                }
                if let Some(paths) = self.watch2paths.get_mut(&w) {
                    paths.remove(&local);
                }
            }
            if self.watch_table.get(&local).map(|s| s.is_empty()).unwrap_or(false) {
                self.watch_table.remove(&local);
            }
        }
        // Settled once per trigger, not per watcher: skipACL, and an ACL that lets
        // anyone read (the common case) need no look at each connection's ids.
        let acl = acl.filter(|acl| !read_permitted(acl, &[]));
        for w in &fired {
            if suppress.map(|s| s.contains(w)).unwrap_or(false) {
                continue;
            }
            if let Some(c) = self.watchers.get(w) {
                if let Some(acl) = acl {
                    if !read_permitted(acl, &c.auth_info()) {
                        log::trace!("Not delivering event {event_type} {path} to 0x{:x} (filtered by ACL)", c.session_id());
                        continue;
                    }
                }
                c.process_watch_event(event_type, path);
            }
        }
        // A connection whose last watch fired keeps its (empty) entry until it closes
        // (`remove_watcher`), as upstream's watch2Paths does: `wchs` counts it and
        // `wchc` lists its session with no paths.
        fired
    }

    /// Drops every watch of a connection (it closed).
    pub fn remove_watcher(&mut self, w: WatcherId) {
        let Some(paths) = self.watch2paths.remove(&w) else {
            self.watchers.remove(&w);
            return;
        };
        for p in paths {
            if let Some(set) = self.watch_table.get_mut(&p) {
                set.remove(&w);
                if set.is_empty() {
                    self.watch_table.remove(&p);
                }
            }
            self.remove_mode(w, &p);
        }
        self.watchers.remove(&w);
    }

    /// `removeWatcher(path, watcher)`: false when that connection had no watch there.
    pub fn remove_path_watcher(&mut self, path: &str, w: WatcherId) -> bool {
        let Some(paths) = self.watch2paths.get_mut(&w) else { return false };
        if !paths.remove(path) {
            return false;
        }
        let Some(set) = self.watch_table.get_mut(path) else { return false };
        if !set.remove(&w) {
            return false;
        }
        if set.is_empty() {
            self.watch_table.remove(path);
        }
        self.remove_mode(w, path);
        true
    }

    /// `containsWatcher`. As upstream, the mode consulted for ancestors is the one
    /// registered at `path` itself.
    pub fn contains_watcher(&self, path: &str, w: WatcherId) -> bool {
        let mode = self.mode_of(w, path);
        for (i, local) in self.path_and_parents(path).into_iter().enumerate() {
            // Upstream quirk: at the leaf, any watcher (of any connection) counts.
            if i == 0 && self.watch_table.contains_key(&local) {
                return true;
            }
            if mode.is_recursive() {
                return true;
            }
        }
        false
    }

    /// `wchs` line: `<c> connections watching <p> paths\nTotal watches:<t>`.
    pub fn summary(&self) -> String {
        format!(
            "{} connections watching {} paths\nTotal watches:{}",
            self.watch2paths.len(),
            self.watch_table.len(),
            self.size()
        )
    }

    /// `(connections, paths, watches)` of the `wchs` summary.
    pub fn summary_counts(&self) -> (usize, usize, usize) {
        (self.watch2paths.len(), self.watch_table.len(), self.size())
    }

    /// `getWatches`: each watching connection's session and paths.
    pub fn paths_by_session(&self) -> Vec<(i64, Vec<String>)> {
        self.watch2paths
            .iter()
            .map(|(w, paths)| {
                let sid = self.watchers.get(w).map(|c| c.session_id()).unwrap_or(0);
                (sid, paths.iter().cloned().collect())
            })
            .collect()
    }

    /// `getWatchesByPath`: each watched path and the sessions watching it.
    pub fn sessions_by_path(&self) -> Vec<(String, Vec<i64>)> {
        self.watch_table
            .iter()
            .map(|(p, ws)| (p.clone(), ws.iter().map(|w| self.watchers.get(w).map(|c| c.session_id()).unwrap_or(0)).collect()))
            .collect()
    }

    /// `wchc`: by session.
    pub fn dump_by_session(&self, out: &mut String) {
        for (w, paths) in &self.watch2paths {
            let sid = self.watchers.get(w).map(|c| c.session_id()).unwrap_or(0);
            let _ = writeln!(out, "0x{sid:x}");
            for p in paths {
                let _ = writeln!(out, "\t{p}");
            }
        }
    }

    /// `wchp`: by path.
    pub fn dump_by_path(&self, out: &mut String) {
        for (p, ws) in &self.watch_table {
            let _ = writeln!(out, "{p}");
            for w in ws {
                let sid = self.watchers.get(w).map(|c| c.session_id()).unwrap_or(0);
                let _ = writeln!(out, "\t0x{sid:x}");
            }
        }
    }
}
