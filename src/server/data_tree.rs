//! `DataTree`: the in-memory znode tree, its ephemeral/container/TTL indexes, the ACL
//! cache, quota bookkeeping and the two watch tables. Txns are applied here
//! (`processTxn`); reads come from FinalRequestProcessor.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::jute::InputArchive;
use crate::common::java_hash;
use crate::common::memory::PeakTracker;
use crate::proto::data::{Stat, StatPersisted, ACL};
use crate::proto::txn::{ErrorTxn, TxnHeader};
use crate::proto::{event_type, ids, op_code, Code};
use crate::server::data_node::{Children, DataNode};
use crate::common::ephemeral_type::{self, EphemeralType, CONTAINER_EPHEMERAL_OWNER};
use crate::common::quotas::{self, StatsTrack};
use crate::server::reference_counted_acl_cache::ReferenceCountedAclCache;
use crate::server::server_cnxn::ServerCnxn;
use crate::server::txn_record::TxnRecord;
use crate::server::watch::{WatchManager, WatcherMode};
use crate::proto::watcher_type;

/// `DataTree.ProcessTxnResult`.
#[derive(Debug, Clone, Default)]
pub struct ProcessTxnResult {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub err: i32,
    pub r#type: i32,
    pub path: String,
    pub stat: Option<Stat>,
    pub multi_result: Vec<ProcessTxnResult>,
}

/// A session's ephemeral paths, remembering insertion order so that they can be handed
/// out in the order upstream's `HashSet` iterates them (see `common::java_hash`).
#[derive(Debug, Clone, Default)]
pub struct EphemeralSet {
    seq: HashMap<String, u64>,
    next: u64,
    /// Largest size reached: the Java set's capacity never shrinks.
    max_len: usize,
}

impl EphemeralSet {
    pub fn insert(&mut self, path: &str) {
        if !self.seq.contains_key(path) {
            self.seq.insert(path.to_owned(), self.next);
            self.next += 1;
            self.max_len = self.max_len.max(self.seq.len());
        }
    }

    pub fn remove(&mut self, path: &str) -> bool {
        self.seq.remove(path).is_some()
    }

    pub fn contains(&self, path: &str) -> bool {
        self.seq.contains_key(path)
    }

    pub fn len(&self) -> usize {
        self.seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// The iteration order of upstream's per-session `HashSet`.
    pub fn java_order(&self) -> Vec<String> {
        let mut v: Vec<(&String, &u64)> = self.seq.iter().collect();
        v.sort_by_key(|(_, s)| **s);
        let v: Vec<String> = v.into_iter().map(|(p, _)| p.clone()).collect();
        java_hash::iteration_order(v, java_hash::hashmap_capacity_for_inserts(self.max_len), |p| java_hash::string_hash(p))
    }

    /// The order of a `clone()` of that set (what `DataTree.getEphemerals` returns).
    pub fn java_clone_order(&self) -> Vec<String> {
        let v = self.java_order();
        let cap = java_hash::clone_capacity(v.len());
        java_hash::iteration_order(v, cap, |p| java_hash::string_hash(p))
    }
}

/// `DataTree.DIGEST_LOG_INTERVAL` / `DIGEST_LOG_LIMIT`.
const DIGEST_LOG_INTERVAL: i64 = 128;
const DIGEST_LOG_LIMIT: usize = 1024;

pub struct DataTree {
    /// Upstream's `NodeHashMap`, held as the tree itself (see `data_node`): the root
    /// owns its children, each child its own, in sets keyed by name.
    root: DataNode,
    /// Nodes in the tree, the root included.
    count: usize,
    ephemerals: HashMap<i64, EphemeralSet>,
    containers: HashSet<String>,
    ttls: HashSet<String>,
    pub acl_cache: ReferenceCountedAclCache,
    data_watches: WatchManager,
    child_watches: WatchManager,
    /// Paths that have a quota (upstream's PathTrie).
    quota_prefixes: HashSet<String>,
    pub last_processed_zxid: i64,
    node_data_size: i64,
    /// Upstream's tree digest (`NodeHashMapImpl`): the wrapping sum of every node's
    /// digest, kept up to date on each change so snapshots can carry it for free.
    digest: i64,
    /// Recent digests for the `hash` command (`DataTree.digestLog`).
    digest_log: std::collections::VecDeque<(i64, i64)>,
    /// Replaying the txns a fuzzy snapshot already partly holds: digests are not
    /// logged until the snapshot's own digest zxid is reached (`digestFromLoadedSnapshot`).
    pub(crate) digest_fuzzy: bool,
    /// Mass deletes leave their nodes' memory free inside malloc's arenas: this says
    /// when enough went to hand it back (`common::memory`).
    node_peak: PeakTracker,
    memory_release_due: bool,
}

/// Nodes below which a mass delete is not worth a trim (a few MB of small znodes).
const RELEASE_NODE_PEAK_MIN: usize = 1 << 13;

/// One node's contribution to the tree digest.
fn nd(path: &str, n: &DataNode) -> i64 {
    crate::server::digest_calculator::node_digest(path, n.data(), &n.stat)
}

/// The node map key: upstream stores the root under both "" and "/"; we use "/".
fn key(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// The node at `path` under `root`, writable; a free function so a caller can hold it
/// while it uses the tree's other fields (the ACL cache).
fn find_node_mut<'a>(root: &'a mut DataNode, path: &str) -> Option<&'a mut DataNode> {
    let path = key(path);
    let mut node = root;
    if path == "/" {
        return Some(node);
    }
    for name in path.strip_prefix('/')?.split('/') {
        node = node.children.get_mut(name)?;
    }
    Some(node)
}

/// Visits every node strictly below `node` (whose path is `prefix`, "" for the root)
/// in pre-order, with its path; a work list, not recursion, so depth costs no stack.
fn walk_below<'a>(node: &'a DataNode, prefix: &str, mut f: impl FnMut(&str, &'a DataNode)) {
    let mut path = String::from(prefix);
    let mut stack = vec![(path.len(), node.children.nodes())];
    while let Some((len, it)) = stack.last_mut() {
        let len = *len;
        let Some(child) = it.next() else {
            stack.pop();
            continue;
        };
        path.truncate(len);
        path.push('/');
        path.push_str(child.name());
        f(&path, child);
        if !child.children.is_empty() {
            stack.push((path.len(), child.children.nodes()));
        }
    }
}

pub fn create_stat(zxid: i64, time: i64, ephemeral_owner: i64) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner,
        pzxid: zxid,
    }
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    pub fn new() -> Self {
        let mut t = DataTree {
            root: DataNode::new("", Some(&[]), -1, StatPersisted::default()),
            count: 1,
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            acl_cache: ReferenceCountedAclCache::new(),
            data_watches: WatchManager::new(),
            child_watches: WatchManager::new(),
            quota_prefixes: HashSet::new(),
            last_processed_zxid: 0,
            node_data_size: 0,
            digest: 0,
            digest_log: std::collections::VecDeque::new(),
            digest_fuzzy: false,
            node_peak: PeakTracker::new(RELEASE_NODE_PEAK_MIN),
            memory_release_due: false,
        };
        let mut proc_node = DataNode::new("zookeeper", Some(&[]), -1, StatPersisted::default());
        proc_node.children.insert(DataNode::new("quota", Some(&[]), -1, StatPersisted::default()));
        t.root.children.insert(proc_node);
        t.count = 3;
        t.add_config_node();
        t.node_data_size = t.approximate_data_size_full();
        t.digest = t.full_digest();
        t
    }

    fn full_digest(&self) -> i64 {
        crate::server::digest_calculator::tree_digest(self)
    }

    /// The node at `path` ("" and "/" are the root); None for a path that is not
    /// absolute or has an empty component, as no node is stored under one.
    fn find(&self, path: &str) -> Option<&DataNode> {
        let path = key(path);
        if path == "/" {
            return Some(&self.root);
        }
        let mut node = &self.root;
        for name in path.strip_prefix('/')?.split('/') {
            node = node.children.get(name)?;
        }
        Some(node)
    }

    /// [`find`](Self::find), writable (never the node's name: it is its key).
    fn find_mut(&mut self, path: &str) -> Option<&mut DataNode> {
        find_node_mut(&mut self.root, path)
    }

    /// Every node with its path, the root ("/") first, then in pre-order.
    pub fn for_each_node<'a>(&'a self, mut f: impl FnMut(&str, &'a DataNode)) {
        f("/", &self.root);
        walk_below(&self.root, "", f);
    }

    /// Every (path, node), collected (dumps and tests; a walk allocates nothing).
    pub fn nodes(&self) -> Vec<(String, &DataNode)> {
        let mut out = Vec::with_capacity(self.count);
        self.for_each_node(|p, n| out.push((p.to_owned(), n)));
        out
    }

    /// Every node strictly below `path`, with its path.
    pub fn for_each_below<'a>(&'a self, path: &str, f: impl FnMut(&str, &'a DataNode)) {
        if let Some(n) = self.find(path) {
            walk_below(n, if key(path) == "/" { "" } else { path }, f);
        }
    }

    /// The tree digest as of `last_processed_zxid`.
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// `logZxidDigest`: every `DIGEST_LOG_INTERVAL`th zxid's digest, the newest
    /// `DIGEST_LOG_LIMIT` kept (the `hash` command's history).
    fn log_zxid_digest(&mut self, zxid: i64) {
        if zxid % DIGEST_LOG_INTERVAL == 0 {
            self.digest_log.push_back((zxid, self.digest));
            if self.digest_log.len() > DIGEST_LOG_LIMIT {
                self.digest_log.pop_front();
            }
        }
    }

    /// `getDigestLog`: (zxid, digest), oldest first.
    pub fn digest_log(&self) -> Vec<(i64, i64)> {
        self.digest_log.iter().copied().collect()
    }

    /// Subtracts a node's digest before it changes (`preChange`).
    fn digest_out(&mut self, path: &str) {
        if let Some(n) = self.find(path) {
            self.digest = self.digest.wrapping_sub(nd(key(path), n));
        }
    }

    /// Adds it back after the change (`postChange`).
    fn digest_in(&mut self, path: &str) {
        if let Some(n) = self.find(path) {
            self.digest = self.digest.wrapping_add(nd(key(path), n));
        }
    }

    /// `addConfigNode`: `/zookeeper/config`, world-readable, aversion -1.
    pub fn add_config_node(&mut self) {
        if let Some(z) = self.find_mut(quotas::PROC_ZOOKEEPER) {
            if !z.children.contains("config") {
                z.children.insert(DataNode::new("config", Some(&[]), -1, StatPersisted::default()));
                self.count += 1;
            }
        }
        let _ = self.set_acl(quotas::CONFIG_ZOOKEEPER, &ids::read_acl_unsafe(), -1);
    }

    /// `ZKDatabase.initConfigInZKDatabase`: `/zookeeper/config` holds the membership text,
    /// stat version -1 and mzxid = the config's version.
    pub fn set_config_node(&mut self, text: &[u8], version: i64) {
        if self.find(quotas::CONFIG_ZOOKEEPER).is_none() {
            log::warn!("configuration znode missing (should only happen during upgrade), creating the node");
            self.add_config_node();
        }
        let _ = self.set_data(quotas::CONFIG_ZOOKEEPER, Some(text), -1, version, crate::common::time::current_wall_time());
    }

    /// `isSpecialPath`: nodes no client may delete.
    pub fn is_special_path(path: &str) -> bool {
        path == "/" || path == quotas::PROC_ZOOKEEPER || path == quotas::QUOTA_ZOOKEEPER || path == quotas::CONFIG_ZOOKEEPER
    }

    pub fn get_node(&self, path: &str) -> Option<&DataNode> {
        self.find(path)
    }

    /// True once after the node count has halved from a large peak: the caller should
    /// `common::memory::release_free_memory()` once it has let go of the tree's lock.
    pub fn take_memory_release(&mut self) -> bool {
        std::mem::take(&mut self.memory_release_due)
    }

    /// Upstream counts the root twice (it sits in the map under "" and "/").
    pub fn node_count(&self) -> usize {
        self.count + 1
    }

    pub fn acl_of(&self, node: &DataNode) -> Vec<ACL> {
        self.acl_cache.convert_long(node.acl)
    }

    /// `getEphemerals`: a copy of the session's set, in the copy's Java order.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals.get(&session).map(|s| s.java_clone_order()).unwrap_or_default()
    }

    pub fn ephemerals_map(&self) -> &HashMap<i64, EphemeralSet> {
        &self.ephemerals
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub fn containers(&self) -> &HashSet<String> {
        &self.containers
    }

    pub fn ttls(&self) -> &HashSet<String> {
        &self.ttls
    }

    pub fn watch_count(&self) -> usize {
        self.data_watches.size() + self.child_watches.size()
    }

    pub fn data_watches(&self) -> &WatchManager {
        &self.data_watches
    }

    pub fn approximate_data_size(&self) -> i64 {
        self.node_data_size
    }

    fn approximate_data_size_full(&self) -> i64 {
        let mut size = 0;
        // upstream keys the root under "" and "/": the "/" entry adds 1
        self.for_each_node(|p, n| size += p.len() as i64 + n.data_len() as i64);
        size
    }

    fn node_size(path: &str, node: &DataNode) -> i64 {
        path.len() as i64 + node.data_len() as i64
    }

    /// `getAllChildrenNumber`: all descendants of `path`.
    pub fn all_children_number(&self, path: &str) -> i32 {
        if path == "/" {
            return self.count as i32 - 1;
        }
        let mut n = 0;
        self.for_each_below(path, |_, _| n += 1);
        n
    }

    // ------------------------------------------------------------- mutations --

    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[ACL],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, Code> {
        let (parent_name, child_name) = split_parent(path);
        let stat = create_stat(zxid, time, ephemeral_owner);
        // One walk to the parent for the whole change.
        let parent = find_node_mut(&mut self.root, parent_name).ok_or(Code::NoNode)?;
        if parent.children.contains(child_name) {
            return Err(Code::NodeExists);
        }
        let acl_id = self.acl_cache.convert_acls(acl);
        let parent_digest_before = nd(key(parent_name), parent);
        let child = DataNode::new(child_name, data, acl_id, stat);
        let out = child.copy_stat();
        let size = Self::node_size(path, &child);
        let bytes = child.data_len() as i64;
        let child_digest = nd(path, &child);
        let mut pcv = parent_cversion;
        if pcv == -1 {
            pcv = parent.stat.cversion + 1;
        }
        // A replayed create may carry an older cversion than the (fuzzy) snapshot has.
        if pcv > parent.stat.cversion {
            parent.stat.cversion = pcv;
            parent.stat.pzxid = zxid;
        }
        // Checked above, under the same `&mut self`.
        parent.children.insert_new(child);
        let (parent_digest_after, parent_acl_id) = (nd(key(parent_name), parent), parent.acl);
        self.node_data_size += size;
        self.count += 1;
        self.node_peak.grew(self.count);
        self.digest = self.digest.wrapping_sub(parent_digest_before).wrapping_add(parent_digest_after).wrapping_add(child_digest);
        match ephemeral_type::get(ephemeral_owner) {
            EphemeralType::Container => {
                self.containers.insert(path.to_owned());
            }
            EphemeralType::Ttl => {
                self.ttls.insert(path.to_owned());
            }
            _ if ephemeral_owner != 0 => {
                self.ephemerals.entry(ephemeral_owner).or_default().insert(path);
            }
            _ => {}
        }
        if parent_name.starts_with(quotas::QUOTA_ZOOKEEPER) {
            let real = quotas::trim_quota_path(parent_name).to_owned();
            if child_name == quotas::LIMIT_NODE {
                self.quota_prefixes.insert(real.clone());
            }
            if child_name == quotas::STAT_NODE {
                self.update_quota_for_path(&real);
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, bytes, 1);
        }
        // Watch events are filtered by READ permission (CVE-2024-23944 fix).
        let parent_acl = Some(self.acl_cache.acl_ref(parent_acl_id));
        self.data_watches.trigger_watch_acl(path, event_type::NODE_CREATED, Some(acl), None);
        let parent_watch = if parent_name.is_empty() { "/" } else { parent_name };
        self.child_watches.trigger_watch_acl(parent_watch, event_type::NODE_CHILDREN_CHANGED, parent_acl, None);
        crate::server::metrics::server_metrics::record_write(path, bytes);
        Ok(out)
    }

    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Result<(), Code> {
        let (parent_name, child_name) = split_parent(path);
        // As upstream's deleteNode, the parent moves first: its pzxid advances even
        // when the child is already gone. Replaying a log over a fuzzy snapshot meets
        // children deleted after their parent was written (a closeSession's
        // ephemerals, say), and the parent must end as it did on the live tree.
        // One walk to the parent for the whole change, as in create_node.
        let parent = find_node_mut(&mut self.root, parent_name).ok_or(Code::NoNode)?;
        let parent_digest_before = nd(key(parent_name), parent);
        let removed = parent.children.remove(child_name);
        // Never backwards: a replayed create may already have set a later pzxid.
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let (parent_digest_after, parent_acl_id) = (nd(key(parent_name), parent), parent.acl);
        self.digest = self.digest.wrapping_sub(parent_digest_before).wrapping_add(parent_digest_after);
        let Some(node) = removed else { return Err(Code::NoNode) };
        self.digest = self.digest.wrapping_sub(nd(path, &node));
        self.count -= 1;
        if !node.children.is_empty() {
            // Only a replay over a fuzzy snapshot gets here (a client cannot delete a
            // node with children): the snapshot caught children created after this
            // delete, which later txns of the log create again. Upstream's flat map
            // keeps them as unreachable entries until then; here they go with their
            // parent, and the totals say so.
            walk_below(&node, path, |p, n| {
                self.digest = self.digest.wrapping_sub(nd(p, n));
                self.node_data_size -= Self::node_size(p, n);
                self.count -= 1;
            });
        }
        if self.node_peak.shrank(self.count) {
            self.memory_release_due = true;
        }
        // The node's ACL entry must outlive the watch triggers below.
        self.node_data_size -= Self::node_size(path, &node);
        let owner = node.stat.ephemeral_owner;
        match ephemeral_type::get(owner) {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl => {
                self.ttls.remove(path);
            }
            _ if owner != 0 => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                }
            }
            _ => {}
        }
        if parent_name.starts_with(quotas::PROC_ZOOKEEPER) && child_name == quotas::LIMIT_NODE {
            self.quota_prefixes.remove(quotas::trim_quota_path(parent_name));
        }
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, -(node.data_len() as i64), -1);
        }
        let node_acl = self.acl_cache.acl_ref(node.acl);
        let parent_acl = Some(self.acl_cache.acl_ref(parent_acl_id));
        let processed = self.data_watches.trigger_watch_acl(path, event_type::NODE_DELETED, Some(node_acl), None);
        self.child_watches.trigger_watch_acl(path, event_type::NODE_DELETED, Some(node_acl), Some(&processed));
        let parent_watch = if parent_name.is_empty() { "/" } else { parent_name };
        self.child_watches.trigger_watch_acl(parent_watch, event_type::NODE_CHILDREN_CHANGED, parent_acl, None);
        self.acl_cache.remove_usage(node.acl);
        crate::server::metrics::server_metrics::record_write(path, 0);
        Ok(())
    }

    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, Code> {
        // One walk to the node for the whole change (digest out and in, stat, ACL).
        let n = self.find_mut(path).ok_or(Code::NoNode)?;
        let old_len = n.data_len() as i64;
        let digest_before = nd(key(path), n);
        n.set_data(data);
        n.stat.mtime = time;
        n.stat.mzxid = zxid;
        n.stat.version = version;
        let stat = n.copy_stat();
        let (digest_after, acl) = (nd(key(path), n), n.acl);
        let new_len = stat.data_length as i64;
        self.digest = self.digest.wrapping_sub(digest_before).wrapping_add(digest_after);
        self.node_data_size += new_len - old_len;
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, new_len - old_len, 0);
        }
        let node_acl = Some(self.acl_cache.acl_ref(acl));
        self.data_watches.trigger_watch_acl(path, event_type::NODE_DATA_CHANGED, node_acl, None);
        crate::server::metrics::server_metrics::record_write(path, new_len);
        Ok(stat)
    }

    pub fn set_acl(&mut self, path: &str, acl: &[ACL], version: i32) -> Result<Stat, Code> {
        let old = self.find(path).ok_or(Code::NoNode)?.acl;
        self.acl_cache.remove_usage(old);
        let id = self.acl_cache.convert_acls(acl);
        self.digest_out(path);
        let Some(node) = self.find_mut(path) else { return Err(Code::NoNode) };
        node.acl = id;
        node.stat.aversion = version;
        let stat = node.copy_stat();
        self.digest_in(path);
        Ok(stat)
    }

    /// `setCversionPzxid`: used when a replayed create finds its node already present.
    pub fn set_cversion_pzxid(&mut self, path: &str, new_cversion: i32, zxid: i64) -> Result<(), Code> {
        let p = path.strip_suffix('/').unwrap_or(path);
        self.digest_out(p);
        let node = self.find_mut(p).ok_or(Code::NoNode)?;
        let mut ncv = new_cversion;
        if ncv == -1 {
            ncv = node.stat.cversion + 1;
        }
        if ncv > node.stat.cversion {
            node.stat.cversion = ncv;
            node.stat.pzxid = zxid;
        }
        self.digest_in(p);
        Ok(())
    }

    /// `ZKDatabase.killSession` at load: removes a dead session's ephemerals without a
    /// txn (zxid is the tree's last processed one, so no pzxid moves forward).
    pub fn kill_session_local(&mut self, session: i64) {
        let zxid = self.last_processed_zxid;
        self.kill_session(session, zxid, Vec::new());
    }

    fn kill_session(&mut self, session: i64, zxid: i64, paths: Vec<String>) {
        // As upstream: the txn's paths first, then any the txn did not know of.
        let mut all: Vec<String> = paths;
        if let Some(mut rest) = self.ephemerals.remove(&session) {
            for p in &all {
                rest.remove(p);
            }
            if !rest.is_empty() {
                log::warn!("Unexpected extra paths under session 0x{session:x} which are not in txn 0x{zxid:x}");
            }
            all.extend(rest.java_order());
        }
        for p in all {
            match self.delete_node(&p, zxid) {
                Ok(()) => log::debug!("Deleting ephemeral node {p} for session 0x{session:x}"),
                Err(_) => log::warn!("Ignoring NoNodeException for path {p} while removing ephemeral for dead session 0x{session:x}"),
            }
        }
        self.ephemerals.remove(&session);
    }

    // ------------------------------------------------------------- quotas --

    /// `getMaxPrefixWithQuota`: the deepest ancestor-or-self of `path` with a quota.
    pub fn max_prefix_with_quota(&self, path: &str) -> Option<String> {
        if self.quota_prefixes.is_empty() {
            return None;
        }
        let mut p = path;
        loop {
            if self.quota_prefixes.contains(p) && p != "/" && p != quotas::PROC_ZOOKEEPER && !p.is_empty() {
                return Some(p.to_owned());
            }
            match p.rfind('/') {
                Some(0) | None => return None,
                Some(i) => p = &p[..i],
            }
        }
    }

    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let stat_path = quotas::stat_path(prefix);
        let Some(node) = self.find(&stat_path) else {
            log::error!("Missing node for stat {stat_path}");
            return;
        };
        let mut st = StatsTrack::from_bytes(node.data());
        st.set("count", st.count() + count_diff);
        st.set("bytes", st.bytes() + bytes_diff);
        // As upstream's updateQuotaStat: the stat node's digest is not updated.
        if let Some(n) = self.find_mut(&stat_path) {
            n.set_data(Some(st.to_text().as_bytes()));
        }
    }

    fn counts(&self, path: &str, count: &mut i64, bytes: &mut i64) {
        let Some(node) = self.find(path) else { return };
        *count += 1;
        *bytes += node.data_len() as i64;
        for c in &node.children {
            self.counts(&format!("{path}/{c}"), count, bytes);
        }
    }

    fn update_quota_for_path(&mut self, path: &str) {
        let (mut count, mut bytes) = (0, 0);
        self.counts(path, &mut count, &mut bytes);
        let stat_path = quotas::stat_path(path);
        let Some(node) = self.find_mut(&stat_path) else {
            log::warn!("Missing quota stat node {stat_path}");
            return;
        };
        let mut st = StatsTrack::default();
        st.set("count", count);
        st.set("bytes", bytes);
        node.set_data(Some(st.to_text().as_bytes()));
    }

    /// `setupQuota`: rebuild the quota prefixes after loading a snapshot.
    pub fn setup_quota(&mut self) {
        let suffix_len = quotas::LIMIT_NODE.len() + 1;
        let mut limits: Vec<String> = Vec::new();
        self.for_each_below(quotas::QUOTA_ZOOKEEPER, |k, _| {
            if k.ends_with(quotas::LIMIT_NODE) && k.len() > suffix_len && k.as_bytes()[k.len() - suffix_len] == b'/' {
                limits.push(k.to_owned());
            }
        });
        for l in limits {
            let parent = split_parent(&l).0;
            let real = quotas::trim_quota_path(parent).to_owned();
            self.update_quota_for_path(&real);
            self.quota_prefixes.insert(real);
        }
    }

    // ---------------------------------------------------------------- reads --

    pub fn stat_node(&mut self, path: &str, watcher: Option<&Arc<ServerCnxn>>) -> Result<Stat, Code> {
        if let Some(w) = watcher {
            self.data_watches.add_watch(path, w, WatcherMode::Standard);
        }
        let r = self.find(path).map(|n| n.copy_stat()).ok_or(Code::NoNode);
        if r.is_ok() {
            crate::server::metrics::server_metrics::record_read(path, 0);
        }
        r
    }

    pub fn get_data(&mut self, path: &str, watcher: Option<&Arc<ServerCnxn>>) -> Result<(Option<Vec<u8>>, Stat), Code> {
        let n = self.find(path).ok_or(Code::NoNode)?;
        let r = (n.data_vec(), n.copy_stat());
        if let Some(w) = watcher {
            self.data_watches.add_watch(path, w, WatcherMode::Standard);
        }
        crate::server::metrics::server_metrics::record_read(path, r.0.as_ref().map_or(0, |d| d.len() as i64));
        Ok(r)
    }

    pub fn get_children(&mut self, path: &str, watcher: Option<&Arc<ServerCnxn>>) -> Result<(Vec<String>, Stat), Code> {
        let n = self.find(path).ok_or(Code::NoNode)?;
        let r: (Vec<String>, Stat) = (n.children.iter().map(str::to_owned).collect(), n.copy_stat());
        if let Some(w) = watcher {
            self.child_watches.add_watch(path, w, WatcherMode::Standard);
        }
        crate::server::metrics::server_metrics::record_read(path, r.0.iter().map(|c| c.encode_utf16().count() as i64).sum());
        Ok(r)
    }

    pub fn add_watch(&mut self, path: &str, watcher: &Arc<ServerCnxn>, mode: WatcherMode) {
        self.data_watches.add_watch(path, watcher, mode);
        self.child_watches.add_watch(path, watcher, mode);
    }

    /// `setWatches`: re-registers a reconnecting client's watches, firing at once the
    /// ones whose condition already changed since `relative_zxid`.
    #[allow(clippy::too_many_arguments)]
    pub fn set_watches(
        &mut self,
        relative_zxid: i64,
        data_watches: &[String],
        exist_watches: &[String],
        child_watches: &[String],
        persistent: &[String],
        persistent_recursive: &[String],
        w: &Arc<ServerCnxn>,
    ) {
        for p in data_watches {
            match self.find(p) {
                None => w.process_watch_event(event_type::NODE_DELETED, p),
                Some(n) if n.stat.mzxid > relative_zxid => w.process_watch_event(event_type::NODE_DATA_CHANGED, p),
                Some(_) => {
                    self.data_watches.add_watch(p, w, WatcherMode::Standard);
                }
            }
        }
        for p in exist_watches {
            if self.find(p).is_some() {
                w.process_watch_event(event_type::NODE_CREATED, p);
            } else {
                self.data_watches.add_watch(p, w, WatcherMode::Standard);
            }
        }
        for p in child_watches {
            match self.find(p) {
                None => w.process_watch_event(event_type::NODE_DELETED, p),
                Some(n) if n.stat.pzxid > relative_zxid => w.process_watch_event(event_type::NODE_CHILDREN_CHANGED, p),
                Some(_) => {
                    self.child_watches.add_watch(p, w, WatcherMode::Standard);
                }
            }
        }
        for p in persistent {
            self.child_watches.add_watch(p, w, WatcherMode::Persistent);
            self.data_watches.add_watch(p, w, WatcherMode::Persistent);
        }
        for p in persistent_recursive {
            self.child_watches.add_watch(p, w, WatcherMode::PersistentRecursive);
            self.data_watches.add_watch(p, w, WatcherMode::PersistentRecursive);
        }
    }

    pub fn contains_watcher(&self, path: &str, wtype: i32, w: u64) -> bool {
        match wtype {
            watcher_type::CHILDREN => self.child_watches.contains_watcher(path, w),
            watcher_type::DATA => self.data_watches.contains_watcher(path, w),
            _ => self.child_watches.contains_watcher(path, w) || self.data_watches.contains_watcher(path, w),
        }
    }

    pub fn remove_watch(&mut self, path: &str, wtype: i32, w: u64) -> bool {
        match wtype {
            watcher_type::CHILDREN => self.child_watches.remove_path_watcher(path, w),
            watcher_type::DATA => self.data_watches.remove_path_watcher(path, w),
            _ => {
                let a = self.child_watches.remove_path_watcher(path, w);
                let b = self.data_watches.remove_path_watcher(path, w);
                a || b
            }
        }
    }

    /// `removeCnxn`: a connection closed; forget its watches.
    pub fn remove_cnxn(&mut self, w: u64) {
        self.data_watches.remove_watcher(w);
        self.child_watches.remove_watcher(w);
    }

    // ----------------------------------------------------------- processTxn --

    /// `compareDigest`: after applying a txn, the tree's digest must be the one the
    /// leader (or the log) recorded with it. A mismatch means this replica diverged: it is
    /// counted (`digest_mismatches_count`) and reported, as upstream does.
    pub fn compare_digest(&self, hdr: &TxnHeader, digest: &crate::proto::txn::TxnDigest) -> bool {
        if !crate::server::persistence::util::digest_enabled() {
            return true;
        }
        if digest.version != crate::server::digest_calculator::DIGEST_VERSION {
            log::warn!("Message:Digest version not the same on zxid. Value:{}", hdr.zxid);
            return true;
        }
        let actual = self.digest();
        if digest.tree_digest != actual {
            DIGEST_MISMATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            log::warn!("Message:Digests are not matching. Value is Zxid. Value:{}", hdr.zxid);
            log::debug!("Digest in log: {}, actual tree: {actual}", digest.tree_digest);
            if !FIRST_MISMATCH_REPORTED.swap(true, std::sync::atomic::Ordering::AcqRel) {
                log::error!(
                    "First digest mismatch on txn: {},{},{},{},{}, expected digest is {}, actual digest is {actual}, ",
                    hdr.client_id,
                    hdr.cxid,
                    hdr.zxid,
                    hdr.time,
                    hdr.r#type,
                    digest.tree_digest
                );
            }
            return false;
        }
        log::trace!("Digests are matching for Zxid: {:x}, Digest in log and actual tree: {actual}", hdr.zxid);
        true
    }

    pub fn process_txn(&mut self, hdr: &TxnHeader, txn: Option<&TxnRecord>) -> ProcessTxnResult {
        self.process_txn_inner(hdr, txn, false)
    }

    fn process_txn_inner(&mut self, hdr: &TxnHeader, txn: Option<&TxnRecord>, sub: bool) -> ProcessTxnResult {
        let mut rc = ProcessTxnResult {
            client_id: hdr.client_id,
            cxid: hdr.cxid,
            zxid: hdr.zxid,
            r#type: hdr.r#type,
            ..Default::default()
        };
        let res: Result<(), Code> = match (hdr.r#type, txn) {
            (op_code::CREATE, Some(TxnRecord::Create(t))) => {
                rc.path = t.path.clone();
                let owner = if t.ephemeral { hdr.client_id } else { 0 };
                self.create_node(&t.path, t.data.as_deref(), &t.acl, owner, t.parent_c_version, hdr.zxid, hdr.time)
                    .map(|_| ())
            }
            (op_code::CREATE2, Some(TxnRecord::Create(t))) => {
                rc.path = t.path.clone();
                let owner = if t.ephemeral { hdr.client_id } else { 0 };
                self.create_node(&t.path, t.data.as_deref(), &t.acl, owner, t.parent_c_version, hdr.zxid, hdr.time)
                    .map(|s| rc.stat = Some(s))
            }
            (op_code::CREATE_TTL, Some(TxnRecord::CreateTtl(t))) => {
                rc.path = t.path.clone();
                let owner = ephemeral_type::ttl_to_ephemeral_owner(t.ttl).unwrap_or(0);
                self.create_node(&t.path, t.data.as_deref(), &t.acl, owner, t.parent_c_version, hdr.zxid, hdr.time)
                    .map(|s| rc.stat = Some(s))
            }
            (op_code::CREATE_CONTAINER, Some(TxnRecord::CreateContainer(t))) => {
                rc.path = t.path.clone();
                self.create_node(
                    &t.path,
                    t.data.as_deref(),
                    &t.acl,
                    CONTAINER_EPHEMERAL_OWNER,
                    t.parent_c_version,
                    hdr.zxid,
                    hdr.time,
                )
                .map(|s| rc.stat = Some(s))
            }
            (op_code::DELETE | op_code::DELETE_CONTAINER, Some(TxnRecord::Delete(t))) => {
                rc.path = t.path.clone();
                self.delete_node(&t.path, hdr.zxid)
            }
            (op_code::SET_DATA | op_code::RECONFIG, Some(TxnRecord::SetData(t))) => {
                rc.path = t.path.clone();
                self.set_data(&t.path, t.data.as_deref(), t.version, hdr.zxid, hdr.time).map(|s| rc.stat = Some(s))
            }
            (op_code::SET_ACL, Some(TxnRecord::SetAcl(t))) => {
                rc.path = t.path.clone();
                self.set_acl(&t.path, &t.acl, t.version).map(|s| rc.stat = Some(s))
            }
            (op_code::CLOSE_SESSION, t) => {
                let paths = match t {
                    Some(TxnRecord::CloseSession(c)) => c.paths2_delete.clone(),
                    _ => Vec::new(),
                };
                self.kill_session(hdr.client_id, hdr.zxid, paths);
                Ok(())
            }
            (op_code::ERROR, Some(TxnRecord::Error(e))) => {
                rc.err = e.err;
                Ok(())
            }
            (op_code::CHECK, Some(TxnRecord::Check(c))) => {
                rc.path = c.path.clone();
                Ok(())
            }
            (op_code::CREATE_SESSION, _) => Ok(()),
            (op_code::MULTI, Some(TxnRecord::Multi(m))) => {
                let failed = m.txns.iter().any(|t| t.r#type == op_code::ERROR);
                let mut post_failed = false;
                for sub_txn in &m.txns {
                    let data = sub_txn.data.as_deref().unwrap_or(&[]);
                    let mut inp = InputArchive::new(data);
                    let mut ty = sub_txn.r#type;
                    let mut record = match TxnRecord::deserialize(ty, &mut inp) {
                        Ok(r) => r,
                        Err(e) => {
                            log::error!("Invalid type of op in multi txn 0x{:x}: {e}", hdr.zxid);
                            None
                        }
                    };
                    if ty == op_code::ERROR {
                        post_failed = true;
                    }
                    if failed && ty != op_code::ERROR {
                        let ec = if post_failed { Code::RuntimeInconsistency.int() } else { Code::Ok.int() };
                        ty = op_code::ERROR;
                        record = Some(TxnRecord::Error(ErrorTxn { err: ec }));
                    }
                    let sub_hdr = TxnHeader { r#type: ty, ..hdr.clone() };
                    let sub_rc = self.process_txn_inner(&sub_hdr, record.as_ref(), true);
                    if sub_rc.err != 0 && rc.err == 0 {
                        rc.err = sub_rc.err;
                    }
                    rc.multi_result.push(sub_rc);
                }
                Ok(())
            }
            (t, _) => {
                log::warn!("Unknown txn type {t} in txn 0x{:x}", hdr.zxid);
                Ok(())
            }
        };
        if let Err(code) = res {
            log::debug!("Failed: {} 0x{:x} {code:?}", crate::proto::op_code::name(hdr.r#type), hdr.zxid);
            rc.err = code.int();
        }
        // A create replayed on top of a fuzzy snapshot may find its node already there;
        // the parent's cversion/pzxid must still move forward.
        if hdr.r#type == op_code::CREATE && rc.err == Code::NodeExists.int() {
            if let Some(TxnRecord::Create(t)) = txn {
                let (parent, _) = split_parent(&t.path);
                let _ = self.set_cversion_pzxid(parent, t.parent_c_version, hdr.zxid);
            }
        }
        if !sub && rc.zxid > self.last_processed_zxid {
            self.last_processed_zxid = rc.zxid;
        }
        if !sub && !self.digest_fuzzy {
            self.log_zxid_digest(rc.zxid);
        }
        rc
    }
}

/// Raw access for the snapshot reader/writer (`server::persistence::file_snap`), which
/// rebuilds a tree from (path, node) pairs as upstream's `DataTree.deserialize` does.
impl DataTree {
    /// The root, to be replaced by the snapshot's.
    pub(crate) fn root_mut(&mut self) -> &mut DataNode {
        &mut self.root
    }

    /// The children of the node at `path`, for the loader to add to.
    pub(crate) fn children_mut(&mut self, path: &str) -> Option<&mut Children> {
        self.find_mut(path).map(|n| &mut n.children)
    }

    pub(crate) fn node_indexes_mut(
        &mut self,
    ) -> (&mut HashMap<i64, EphemeralSet>, &mut HashSet<String>, &mut HashSet<String>) {
        (&mut self.ephemerals, &mut self.containers, &mut self.ttls)
    }

    /// Recomputes the approximate data size and the quota prefixes after a load.
    /// Ends a snapshot load; the loader summed the approximate data size and the digest
    /// of the nodes it inserted.
    pub(crate) fn finish_load(&mut self, count: usize, size: i64, digest: i64) {
        self.count = count;
        self.quota_prefixes.clear();
        debug_assert_eq!(digest, self.full_digest());
        debug_assert_eq!(size, self.approximate_data_size_full());
        self.node_data_size = size;
        self.digest = digest;
        debug_assert_eq!(count, {
            let mut n = 0;
            self.for_each_node(|_, _| n += 1);
            n
        });
        self.node_peak.grew(self.count);
        self.setup_quota();
    }
}

#[cfg(test)]
mod digest_tests {
    use super::*;
    use crate::proto::txn::*;

    fn hdr(zxid: i64, ty: i32, client: i64) -> TxnHeader {
        TxnHeader { client_id: client, cxid: zxid as i32, zxid, time: 1_000 + zxid, r#type: ty }
    }

    /// After a mass delete the node map and the parent's child set give their slots
    /// back (they hold nodes inline, so a high-water table would pin the memory).
    #[test]
    fn tables_shrink_after_mass_delete() {
        let mut t = DataTree::new();
        let open = ids::open_acl_unsafe();
        t.create_node("/p", None, &open, 0, -1, 1, 1).unwrap();
        for i in 0..20_000 {
            t.create_node(&format!("/p/n{i}"), Some(&[1; 10][..]), &open, 0, -1, 2 + i, 2 + i).unwrap();
        }
        let children = |t: &DataTree| t.get_node("/p").map_or(0, |p| p.children.capacity());
        let big_children = children(&t);
        for i in 0..19_900 {
            t.delete_node(&format!("/p/n{i}"), 30_000 + i).unwrap();
        }
        // Down to a quarter or less (`ShardedMap` halves a table three-quarters empty).
        assert!(children(&t) <= 4096, "{}", children(&t));
        assert!(children(&t) * 4 <= big_children);
        assert_eq!(t.get_node("/p").map(|p| p.children.len()), Some(100));
        assert_eq!(t.all_children_number("/p"), 100);
        assert_eq!(t.node_count(), 106);
        assert_eq!(t.digest(), t.full_digest());
    }

    /// The digest kept up to date change by change equals a full recomputation.
    #[test]
    fn incremental_digest_matches_full_scan() {
        let mut t = DataTree::new();
        let open = ids::open_acl_unsafe();
        let mut z = 0;
        let mut apply = |t: &mut DataTree, ty: i32, client: i64, txn: TxnRecord| {
            z += 1;
            t.process_txn(&hdr(z, ty, client), Some(&txn));
            assert_eq!(t.digest(), t.full_digest(), "after txn {z} ({ty})");
        };
        for i in 0..20 {
            let path = format!("/n{i}");
            apply(&mut t, op_code::CREATE, 7, TxnRecord::Create(CreateTxn { path: path.clone(), data: Some(vec![i as u8; i]), acl: open.clone(), ephemeral: i % 3 == 0, parent_c_version: -1 }));
            apply(&mut t, op_code::CREATE, 7, TxnRecord::Create(CreateTxn { path: format!("{path}/c"), data: None, acl: open.clone(), ephemeral: false, parent_c_version: -1 }));
        }
        apply(&mut t, op_code::SET_DATA, 7, TxnRecord::SetData(SetDataTxn { path: "/n4".into(), data: Some(b"new".to_vec()), version: 1 }));
        apply(&mut t, op_code::SET_ACL, 7, TxnRecord::SetAcl(SetACLTxn { path: "/n5".into(), acl: ids::read_acl_unsafe(), version: 1 }));
        apply(&mut t, op_code::DELETE, 7, TxnRecord::Delete(DeleteTxn { path: "/n6/c".into() }));
        apply(&mut t, op_code::DELETE, 7, TxnRecord::Delete(DeleteTxn { path: "/n6".into() }));
        // A replayed create that finds its node (fuzzy snapshot) still moves the parent.
        apply(&mut t, op_code::CREATE, 7, TxnRecord::Create(CreateTxn { path: "/n7/c".into(), data: None, acl: open.clone(), ephemeral: false, parent_c_version: 9 }));
        apply(&mut t, op_code::CLOSE_SESSION, 7, TxnRecord::CloseSession(CloseSessionTxn { paths2_delete: vec![] }));
        let sub = |path: &str| TxnRecord::Create(CreateTxn { path: path.into(), data: None, acl: open.clone(), ephemeral: false, parent_c_version: -1 }).to_sub_txn(op_code::CREATE);
        apply(&mut t, op_code::MULTI, 8, TxnRecord::Multi(MultiTxn { txns: vec![sub("/m1"), sub("/m2")] }));
        // Quota nodes live under /zookeeper/ and do not count; their stats still change.
        apply(&mut t, op_code::CREATE, 8, TxnRecord::Create(CreateTxn { path: "/zookeeper/quota/n1".into(), data: None, acl: open.clone(), ephemeral: false, parent_c_version: -1 }));
        apply(&mut t, op_code::CREATE, 8, TxnRecord::Create(CreateTxn { path: "/zookeeper/quota/n1/zookeeper_limits".into(), data: Some(b"count=5,bytes=-1".to_vec()), acl: open.clone(), ephemeral: false, parent_c_version: -1 }));
        apply(&mut t, op_code::CREATE, 8, TxnRecord::Create(CreateTxn { path: "/zookeeper/quota/n1/zookeeper_stats".into(), data: Some(b"count=0,bytes=0".to_vec()), acl: open.clone(), ephemeral: false, parent_c_version: -1 }));
        apply(&mut t, op_code::CREATE, 8, TxnRecord::Create(CreateTxn { path: "/n1/q".into(), data: Some(b"xyz".to_vec()), acl: open.clone(), ephemeral: false, parent_c_version: -1 }));
        assert_ne!(t.digest(), 0);
    }

    /// A closeSession replayed over a fuzzy snapshot, where the session's ephemeral
    /// was deleted after its parent had been written, must leave the parent as the
    /// live tree has it (pzxid moved, digest equal), as upstream's deleteNode does.
    #[test]
    fn replayed_close_session_moves_the_parent_of_an_already_missing_ephemeral() {
        let open = ids::open_acl_unsafe();
        let create = |path: &str, ephemeral: bool| {
            TxnRecord::Create(CreateTxn { path: path.into(), data: Some(b"d".to_vec()), acl: open.clone(), ephemeral, parent_c_version: -1 })
        };
        let close = TxnRecord::CloseSession(CloseSessionTxn { paths2_delete: vec!["/app/e".into()] });
        let mut live = DataTree::new();
        live.process_txn(&hdr(1, op_code::CREATE, 5), Some(&create("/app", false)));
        live.process_txn(&hdr(2, op_code::CREATE, 5), Some(&create("/app/e", true)));
        // The snapshot wrote /app here, then the closeSession ran before /app/e was
        // reached, so the snapshot holds /app at zxid 2 without its child.
        let mut fuzzy = DataTree::new();
        fuzzy.process_txn(&hdr(1, op_code::CREATE, 5), Some(&create("/app", false)));
        fuzzy.process_txn(&hdr(2, op_code::CREATE, 5), Some(&create("/app/e", true)));
        fuzzy.digest_out("/app/e");
        fuzzy.digest_out("/app");
        assert!(fuzzy.find_mut("/app").and_then(|n| n.children.remove("e")).is_some());
        fuzzy.count -= 1;
        fuzzy.ephemerals.remove(&5);
        fuzzy.digest_in("/app");
        live.process_txn(&hdr(3, op_code::CLOSE_SESSION, 5), Some(&close));
        fuzzy.process_txn(&hdr(3, op_code::CLOSE_SESSION, 5), Some(&close));
        let stat = |t: &DataTree| t.get_node("/app").map(|n| n.copy_stat());
        assert_eq!(stat(&live).map(|s| s.pzxid), Some(3));
        assert_eq!(stat(&fuzzy), stat(&live));
        assert_eq!(fuzzy.digest(), live.digest());
        assert_eq!(fuzzy.digest(), fuzzy.full_digest());
        // A delete that finds no parent changes nothing.
        let before = fuzzy.digest();
        assert_eq!(fuzzy.delete_node("/nope/x", 4), Err(Code::NoNode));
        assert_eq!(fuzzy.digest(), before);
        // A stale delete never moves pzxid backwards.
        assert_eq!(fuzzy.delete_node("/app/gone", 2), Err(Code::NoNode));
        assert_eq!(stat(&fuzzy).map(|s| s.pzxid), Some(3));
    }
}

/// `ServerMetrics.DIGEST_MISMATCHES_COUNT` (process-wide, like upstream's metrics).
pub static DIGEST_MISMATCHES: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
static FIRST_MISMATCH_REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
