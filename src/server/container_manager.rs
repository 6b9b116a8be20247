//! `ContainerManager`: a timer thread ("ContainerManagerTask") that deletes empty
//! containers that once had children and TTL nodes whose time ran out, through
//! ordinary deleteContainer requests, at most `znode.container.maxPerMinute` a minute.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::time;
use crate::proto::op_code;
use crate::common::ephemeral_type::{self, EphemeralType};
use crate::server::request::Request;
use crate::server::zookeeper_server::ZooKeeperServer;
use crate::system_properties;

pub struct ContainerManager {
    zks: Arc<ZooKeeperServer>,
    check_interval_ms: u64,
    max_per_minute: i64,
    max_never_used_interval_ms: i64,
    stop: Arc<AtomicBool>,
}

impl ContainerManager {
    /// Reads the `znode.container.*` properties (JVM properties upstream, `-D` here).
    pub fn new(zks: Arc<ZooKeeperServer>) -> Self {
        ContainerManager {
            zks,
            check_interval_ms: system_properties::get_i64("znode.container.checkIntervalMs").unwrap_or(60_000).max(1) as u64,
            max_per_minute: system_properties::get_i64("znode.container.maxPerMinute").unwrap_or(10_000).max(1),
            max_never_used_interval_ms: system_properties::get_i64("znode.container.maxNeverUsedIntervalMs").unwrap_or(0),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn start(self) -> std::io::Result<(thread::JoinHandle<()>, Arc<AtomicBool>)> {
        let stop = self.stop.clone();
        let h = thread::Builder::new().name("ContainerManagerTask".into()).spawn(move || {
            while !self.stop.load(Ordering::Acquire) {
                // Sleep in short steps: a quorum server stops and starts this task with
                // every role change, and must not wait a whole interval for it.
                let until = std::time::Instant::now() + Duration::from_millis(self.check_interval_ms);
                while std::time::Instant::now() < until && !self.stop.load(Ordering::Acquire) && !self.zks.is_shut_down() {
                    thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(std::time::Instant::now())));
                }
                if self.stop.load(Ordering::Acquire) || !self.zks.is_running() {
                    break;
                }
                self.check_containers();
            }
        })?;
        Ok((h, stop))
    }

    /// `getCandidates`.
    pub fn candidates(&self) -> Vec<String> {
        let tree = self.zks.tree.read();
        let now = time::current_wall_time();
        let mut out = Vec::new();
        for p in tree.containers() {
            let Some(n) = tree.get_node(p) else { continue };
            if !n.children.is_empty() {
                continue;
            }
            // cversion > 0: it had children once; a fresh container waits for its first.
            if n.stat.cversion > 0
                || (self.max_never_used_interval_ms != 0 && now - n.stat.mtime > self.max_never_used_interval_ms)
            {
                out.push(p.clone());
            }
        }
        for p in tree.ttls() {
            let Some(n) = tree.get_node(p) else { continue };
            if !n.children.is_empty() || ephemeral_type::get(n.stat.ephemeral_owner) != EphemeralType::Ttl {
                continue;
            }
            let ttl = ephemeral_type::ttl_of(n.stat.ephemeral_owner);
            if ttl != 0 && now - n.stat.mtime > ttl {
                out.push(p.clone());
            }
        }
        out
    }

    /// `checkContainers`.
    pub fn check_containers(&self) {
        let min_interval_ms = 60_000 / self.max_per_minute;
        for path in self.candidates() {
            let start = time::current_elapsed_time();
            log::info!("Attempting to delete candidate container: {path}");
            let r = Request::new(None, 0, 0, op_code::DELETE_CONTAINER, path.into_bytes(), Vec::new());
            self.zks.submit_request(r);
            let wait = min_interval_ms - (time::current_elapsed_time() - start);
            if wait > 0 {
                thread::sleep(Duration::from_millis(wait as u64));
            }
        }
    }
}
