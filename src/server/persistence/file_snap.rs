//! `FileSnap` / `SnapStream` / `DataTree.serialize` and `deserialize`: snapshot files.
//!
//! Layout (plain, uncompressed): FileHeader("ZKSN", 2, -1); sessions (int count, then
//! (long id, int timeout) pairs); the ACL cache (int count, then (long id,
//! vector<ACL>)); the nodes in pre-order as (ustring path, DataNode = buffer data, long
//! acl, StatPersisted), root under "", ended by the path "/"; seal 1 = long Adler-32 of
//! every byte before it, then ustring "/". With digests enabled (the 3.8 default) a
//! trailer follows: long zxid, int digestVersion, long digest, and seal 2 = long
//! Adler-32 of every byte before it (seal 1 included) and "/" again.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::jute::{InputArchive, JuteError, OutputArchive, Record};
use crate::proto::data::{StatPersisted, ACL};
use crate::proto::quorum::FileHeader;
use crate::server::data_node::DataNode;
use crate::server::data_tree::DataTree;
use crate::common::ephemeral_type::{self, EphemeralType};
use crate::server::reference_counted_acl_cache::ReferenceCountedAclCache;
use crate::server::util::prefetch;
use crate::server::util::sharded_map::SHARDS;

use super::snap_stream::{SnapReadError, SnapStream, SnapStreamError};
use super::util::{self, StreamMode, FILE_FORMAT_VERSION, SNAPSHOT_FILE_PREFIX};
use crate::server::digest_calculator::{node_digest, DIGEST_VERSION};

/// `FileSnap.SNAP_MAGIC`: "ZKSN" as a big-endian int.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// The dbid upstream writes into snapshot headers.
pub const SNAP_DBID: i64 = -1;
/// How many valid snapshots a restore tries, newest first.
pub const SNAPSHOTS_TO_TRY: usize = 100;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

// -------------------------------------------------------------- digest --


/// `DataTree.ZxidDigest`: the tree digest as of a zxid, stored after seal 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub digest_version: i32,
    pub digest: i64,
}

impl ZxidDigest {
    fn serialize(&self, out: &mut OutputArchive) {
        out.write_long(self.zxid);
        out.write_int(self.digest_version);
        out.write_long(self.digest);
    }

    fn deserialize(inp: &mut InputArchive<'_>) -> Result<ZxidDigest, JuteError> {
        let zxid = inp.read_long()?;
        let digest_version = inp.read_int()?;
        let digest = if digest_version < 2 {
            // Old versions wrote the digest as a hex string.
            let s = inp.read_string()?;
            i64::from_str_radix(&s, 16)
                .or_else(|_| u64::from_str_radix(&s, 16).map(|v| v as i64))
                .map_err(|_| JuteError::Invalid(format!("bad hex digest {s:?}")))?
        } else {
            inp.read_long()?
        };
        Ok(ZxidDigest {
            zxid,
            digest_version,
            digest,
        })
    }

    /// Whether `tree`, as of this digest's zxid, has this digest (a different digest
    /// version is not comparable and counts as a match, as upstream skips it).
    pub fn matches(&self, tree: &DataTree) -> bool {
        // The tree keeps its digest up to date; no need to rescan it.
        self.digest_version != DIGEST_VERSION || tree.digest() == self.digest
    }
}

// ------------------------------------------------------------- writing --

fn sorted_children(node: &DataNode) -> Vec<&str> {
    let mut c: Vec<&str> = node.children.iter().collect();
    c.sort();
    c
}

/// The sessions section: count, then (id, timeout) pairs sorted by id.
fn write_sessions(out: &mut OutputArchive, sessions: &HashMap<i64, i32>) {
    let mut s: Vec<(&i64, &i32)> = sessions.iter().collect();
    s.sort();
    out.write_int(s.len() as i32);
    for (id, to) in s {
        out.write_long(*id);
        out.write_int(*to);
    }
}

/// The ACL cache section (`ReferenceCountedACLCache.serialize`): count, then (id,
/// vector<ACL>) in the order given (callers pass them sorted by id).
fn write_acl_table<'a>(out: &mut OutputArchive, table: impl IntoIterator<Item = (&'a i64, &'a Vec<ACL>), IntoIter: ExactSizeIterator>) {
    let table = table.into_iter();
    out.write_int(table.len() as i32);
    for (id, list) in table {
        out.write_long(*id);
        out.write_int(list.len() as i32);
        for a in list {
            a.serialize(out);
        }
    }
}

/// `DataTree.serialize`: ACL cache, nodes in pre-order (children sorted by name), "/".
pub fn serialize_tree(tree: &DataTree, out: &mut OutputArchive) {
    let mut ids: Vec<(&i64, &Vec<ACL>)> = tree.acl_cache.long_key_map.iter().collect();
    ids.sort_by_key(|(id, _)| **id);
    write_acl_table(out, ids);
    // Iterative pre-order walk; the root's path is "".
    let mut stack: Vec<String> = vec![String::new()];
    while let Some(path) = stack.pop() {
        let Some(node) = tree.get_node(&path) else { continue };
        out.write_string(&path);
        out.write_buffer(node.data());
        out.write_long(node.acl);
        node.stat.serialize(out);
        for c in sorted_children(node).into_iter().rev() {
            stack.push(format!("{path}/{c}"));
        }
    }
    out.write_string("/");
}

/// `SerializeUtils.serializeSnapshot`: sessions (sorted by id) then the tree. This is
/// also the body of a Zab SNAP (without header, seals and digest).
pub fn serialize_snapshot_body(tree: &DataTree, sessions: &HashMap<i64, i32>, out: &mut OutputArchive) {
    write_sessions(out, sessions);
    serialize_tree(tree, out);
}

/// `SnapStream.sealStream`: Adler-32 of everything so far, then "/".
fn seal(out: &mut OutputArchive) {
    let sum = util::adler32(out.as_slice());
    out.write_long(sum);
    out.write_string("/");
}

/// A whole snapshot file's bytes. The digest trailer (written when `with_digest`) is
/// (tree.last_processed_zxid, 2, tree digest): the tree is serialized in one consistent
/// state, so the digest is exact for that zxid (upstream's fuzzy snapshots carry the
/// digest of the last txn applied when serialization ended). A zxid of 0 means "no
/// digest" to readers.
pub fn snapshot_bytes(tree: &DataTree, sessions: &HashMap<i64, i32>, dbid: i64, with_digest: bool) -> Vec<u8> {
    let mut out = OutputArchive::with_buffer(Vec::with_capacity(64 * 1024));
    FileHeader {
        magic: SNAP_MAGIC,
        version: FILE_FORMAT_VERSION,
        dbid,
    }
    .serialize(&mut out);
    serialize_snapshot_body(tree, sessions, &mut out);
    seal(&mut out);
    if with_digest {
        let zxid = tree.last_processed_zxid.max(0);
        let digest = if zxid == 0 { 0 } else { tree.digest() };
        ZxidDigest {
            zxid,
            digest_version: DIGEST_VERSION,
            digest,
        }
        .serialize(&mut out);
        seal(&mut out);
    }
    out.into_inner()
}

// ------------------------------------------------------------- reading --

/// `SerializeUtils.deserializeSnapshot`: sessions, then the tree (`DataTree.deserialize`).
/// The tree's last_processed_zxid is left at 0. `file_len` (0 if unknown) bounds how far
/// the session table is presized.
pub fn deserialize_snapshot_body<R: Read + Send>(inp: &mut SnapStream<R>, file_len: u64) -> io::Result<(DataTree, HashMap<i64, i32>)> {
    let count = inp.decode(|a| a.read_int())?;
    // Each session takes 12 bytes: presize no further than the file can hold (a stream of
    // unknown length, a leader's SNAP, only modestly), so a bogus count costs no memory.
    let fits = if file_len > 0 { (file_len / 12) as usize } else { 4096 };
    let mut sessions = HashMap::with_capacity((count.max(0) as usize).min(1 << 20).min(fits));
    for _ in 0..count.max(0) {
        let (id, to) = inp.decode(|a| Ok((a.read_long()?, a.read_int()?)))?;
        sessions.insert(id, to);
    }
    let tree = deserialize_tree(inp)?;
    Ok((tree, sessions))
}

/// One node record as decoded from the file, with the pieces the tree builder would
/// otherwise have to compute on its own thread.
struct DecodedNode {
    path: String,
    is_root: bool,
    /// Named by the last path component (empty for the root, which is written as "");
    /// allocated here, so that is the reader thread's work, not the builder's.
    node: DataNode,
    digest: i64,
    /// File offset of the record, for error messages.
    at: u64,
}

/// Nodes per hand-over from the reader thread to the builder: enough to make the
/// channel cost vanish, small enough to keep both threads busy from the start.
const NODE_BATCH: usize = 1024;

/// `DataTree.deserialize`: rebuilds nodes, children, ephemeral/container/TTL indexes,
/// ACL reference counts (dropping unused entries) and quota bookkeeping.
///
/// The node records are decoded on a "SnapshotReader" thread (file reads, the string
/// and buffer allocations, the per-node digest) while this thread inserts them into the
/// tree: on a restart with a large tree those are the two halves of the work, and a
/// restart has nothing else to do with the second core. Upstream does both on one thread.
pub fn deserialize_tree<R: Read + Send>(inp: &mut SnapStream<R>) -> io::Result<DataTree> {
    let mut tree = DataTree::new();
    let mut cache = ReferenceCountedAclCache::new();
    let n = inp.decode(|a| a.read_int())?;
    for _ in 0..n.max(0) {
        let (id, acls) = inp.decode(|a| {
            let id = a.read_long()?;
            let len = a.read_vector_len()?;
            let mut acls = Vec::with_capacity(len.min(1024));
            for _ in 0..len {
                acls.push(ACL::deserialize(a)?);
            }
            Ok((id, acls))
        })?;
        cache.insert(id, acls);
    }
    // The snapshot holds the whole tree, /zookeeper included.
    *tree.root_mut() = DataNode::new("", None, -1, StatPersisted::default());
    {
        let (eph, containers, ttls) = tree.node_indexes_mut();
        eph.clear();
        containers.clear();
        ttls.clear();
    }
    let (tx, rx) = crossbeam_channel::bounded::<Vec<DecodedNode>>(16);
    // Emptied batches go back to the reader: no batch-sized allocation per batch (each
    // made glibc consolidate its free lists, a few percent of the load).
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded::<Vec<DecodedNode>>(20);
    let (built, decoded) = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("SnapshotReader".into())
            .spawn_scoped(scope, move || decode_nodes(inp, tx, recycle_rx));
        let reader = match reader {
            Ok(r) => r,
            Err(e) => return (Err(e), Ok(())),
        };
        let built = build_nodes(&mut tree, &mut cache, &rx, &recycle_tx);
        // Unblocks the reader if the builder stopped early.
        drop(rx);
        let decoded = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the snapshot reader thread panicked")));
        (built, decoded)
    });
    // A decoding error explains a builder that saw the stream end early.
    decoded?;
    let (count, size, digest, have_root) = built?;
    if !have_root {
        return Err(invalid("snapshot has no root node".into()));
    }
    cache.purge_unused();
    tree.acl_cache = cache;
    tree.finish_load(count, size, digest);
    Ok(tree)
}

/// The reader half: node records up to the "/" that ends them.
fn decode_nodes<R: Read>(
    inp: &mut SnapStream<R>,
    tx: crossbeam_channel::Sender<Vec<DecodedNode>>,
    recycled: crossbeam_channel::Receiver<Vec<DecodedNode>>,
) -> io::Result<()> {
    let mut batch = Vec::with_capacity(NODE_BATCH);
    loop {
        let at = inp.position();
        let path = inp.decode(|a| a.read_string())?;
        if path == "/" {
            break;
        }
        let (data, acl, stat) = inp.decode(|a| Ok((a.read_buffer()?, a.read_long()?, StatPersisted::deserialize(a)?)))?;
        let (name, is_root) = match path.rfind('/') {
            Some(i) => (&path[i + 1..], false),
            None => ("", true),
        };
        let node = DataNode::new(name, data.as_deref(), acl, stat);
        // Upstream takes any path without a '/' as the root (written as ""); the builder
        // stores it under "/", so its digest is the root's whatever the file said (a
        // damaged file's "abc" would otherwise leave the tree digest off by that node).
        let digest = node_digest(if is_root { "" } else { &path }, node.data(), &node.stat);
        batch.push(DecodedNode { path, is_root, node, digest, at });
        if batch.len() == NODE_BATCH {
            let next = recycled.try_recv().unwrap_or_else(|_| Vec::with_capacity(NODE_BATCH));
            let full = std::mem::replace(&mut batch, next);
            if tx.send(full).is_err() {
                // The builder gave up; its error is the one to report.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
    Ok(())
}

/// Children waiting to be added to one parent: in pre-order, runs of siblings share a
/// parent, so the parent is looked up once per run instead of once per node.
struct PendingChildren {
    parent: String,
    /// The first child's file offset, for the error if the parent is missing; None
    /// when nothing is pending.
    first: Option<u64>,
    children: Vec<DataNode>,
}

/// What the builder has summed so far.
#[derive(Default)]
struct Totals {
    count: usize,
    size: i64,
    digest: i64,
}

impl Totals {
    /// A node written twice (only in a damaged file): the later one replaces the
    /// earlier, whose share of the totals goes.
    fn replaced(&mut self, path: &str, old: &DataNode) {
        self.count -= 1;
        self.size -= path.len() as i64 + old.data_len() as i64;
        self.digest = self.digest.wrapping_sub(node_digest(path, old.data(), &old.stat));
    }
}

impl PendingChildren {
    fn flush(&mut self, tree: &mut DataTree, totals: &mut Totals) -> io::Result<()> {
        let Some(at) = self.first.take() else { return Ok(()) };
        let key = if self.parent.is_empty() { "/" } else { self.parent.as_str() };
        let Some(children) = tree.children_mut(key) else {
            return Err(invalid(format!(
                "Invalid Datatree, unable to find parent {} of path {}/{} (offset {at})",
                self.parent,
                self.parent,
                self.children.first().map_or("", DataNode::name)
            )));
        };
        children.reserve(self.children.len());
        for node in self.children.drain(..) {
            if let Some(mut old) = children.insert(node) {
                // Its children were read already and stay, under the node that is kept.
                if let Some(kept) = children.get_mut(old.name()) {
                    kept.children = std::mem::take(&mut old.children);
                }
                totals.replaced(&format!("{}/{}", self.parent, old.name()), &old);
            }
        }
        Ok(())
    }
}

/// The builder half: inserts the decoded nodes in file (pre-)order. Returns the node
/// count, the approximate data size, the tree digest and whether a root was seen.
fn build_nodes(
    tree: &mut DataTree,
    cache: &mut ReferenceCountedAclCache,
    rx: &crossbeam_channel::Receiver<Vec<DecodedNode>>,
    recycle: &crossbeam_channel::Sender<Vec<DecodedNode>>,
) -> io::Result<(usize, i64, i64, bool)> {
    // The totals are summed here, from what the reader computed while each node was in
    // cache, rather than in a second pass over the tree.
    let mut totals = Totals::default();
    let mut have_root = false;
    let mut pending = PendingChildren { parent: String::new(), first: None, children: Vec::new() };
    // ACL reference counts, counted in runs of nodes with the same ACL.
    let (mut acl_run, mut acl_count) = (0i64, 0i64);
    for mut batch in rx.iter() {
        for d in batch.drain(..) {
            if d.node.acl != acl_run {
                cache.add_usages(acl_run, acl_count);
                (acl_run, acl_count) = (d.node.acl, 0);
            }
            acl_count += 1;
            totals.count += 1;
            totals.size += d.node.data_len() as i64;
            totals.digest = totals.digest.wrapping_add(d.digest);
            if d.is_root {
                pending.flush(tree, &mut totals)?;
                totals.size += 1;
                let mut node = d.node;
                let root = tree.root_mut();
                node.children = std::mem::take(&mut root.children);
                let old = std::mem::replace(root, node);
                if have_root {
                    totals.replaced("/", &old);
                }
                have_root = true;
                continue;
            }
            let path = d.path;
            let parent_len = path.len() - d.node.name().len() - 1;
            // A new parent, or this node is the pending parent itself (written twice,
            // in a damaged file): the pending children go in first, as they came first.
            if pending.first.is_some() && (pending.parent != path[..parent_len] || pending.parent == path) {
                pending.flush(tree, &mut totals)?;
            }
            if pending.first.is_none() {
                pending.parent.clear();
                pending.parent.push_str(&path[..parent_len]);
                pending.first = Some(d.at);
            }
            let owner = d.node.stat.ephemeral_owner;
            if owner != 0 {
                let (eph, containers, ttls) = tree.node_indexes_mut();
                match ephemeral_type::get(owner) {
                    EphemeralType::Container => {
                        containers.insert(path.clone());
                    }
                    EphemeralType::Ttl => {
                        ttls.insert(path.clone());
                    }
                    _ => eph.entry(owner).or_default().insert(&path),
                }
            }
            totals.size += path.len() as i64;
            pending.children.push(d.node);
        }
        let _ = recycle.try_send(batch);
    }
    pending.flush(tree, &mut totals)?;
    cache.add_usages(acl_run, acl_count);
    Ok((totals.count, totals.size, totals.digest, have_root))
}

/// A snapshot read from disk.
pub struct LoadedSnapshot {
    pub tree: DataTree,
    pub sessions: HashMap<i64, i32>,
    /// The zxid of the file name; also set as `tree.last_processed_zxid`. Replay the log
    /// from `zxid + 1`.
    pub zxid: i64,
    pub file: PathBuf,
    /// The digest trailer as written, if the file has one.
    pub trailer: Option<ZxidDigest>,
    /// `digestFromLoadedSnapshot`: the trailer when it is usable (zxid > 0 and not older
    /// than the file's zxid) and not yet checked. When it equals `zxid` it has been
    /// checked at load already (see `digest_checked`) and this is None; otherwise the
    /// replay should call [`ZxidDigest::matches`] after applying the txn with that zxid.
    pub pending_digest: Option<ZxidDigest>,
    /// Some(result) when the trailer's zxid is the file's zxid and it was compared at load.
    pub digest_checked: Option<bool>,
}

/// Reads and verifies one snapshot file (seal 1, and seal 2 when a digest trailer is
/// there). Errors name the file and the offset.
pub fn read_snapshot_file(path: &Path) -> io::Result<LoadedSnapshot> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if util::stream_mode_of(&name) != StreamMode::Checked {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("compressed snapshot {} (.gz/.snappy) is not supported", path.display()),
        ));
    }
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("snapshot {}: {e}", path.display()));
    let file = File::open(path).map_err(ctx)?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let zxid = util::get_zxid_from_name(&name, SNAPSHOT_FILE_PREFIX);
    let mut inp = SnapStream::new(file);
    let hdr = inp.decode(FileHeader::deserialize).map_err(|e| ctx(e.into()))?;
    if hdr.magic != SNAP_MAGIC {
        return Err(ctx(invalid(format!(
            "mismatching magic headers {} !=  {SNAP_MAGIC}",
            hdr.magic
        ))));
    }
    // Upstream does not look at the version; a file of another format version was
    // written by something else, and reading it as version 2 could load garbage.
    if hdr.version != FILE_FORMAT_VERSION {
        return Err(ctx(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("unsupported snapshot format version {} (this server reads version {FILE_FORMAT_VERSION})", hdr.version),
        )));
    }
    let (mut tree, sessions) = deserialize_snapshot_body(&mut inp, file_len).map_err(ctx)?;
    check_seal(&mut inp).map_err(ctx)?;
    let mut trailer = None;
    if util::digest_enabled() {
        let mark = inp.position();
        match inp.decode(ZxidDigest::deserialize) {
            Ok(d) => {
                trailer = Some(d);
                check_seal(&mut inp).map_err(ctx)?;
            }
            Err(SnapReadError::Decode(SnapStreamError { error: JuteError::Eof { .. }, .. })) => {
                log::warn!("Got EOF exception while reading the digest, likely due to the reading an older snapshot.");
            }
            Err(SnapReadError::Decode(e)) => return Err(ctx(invalid(format!("{} at offset {mark}", e.error)))),
            Err(SnapReadError::Io(e)) => return Err(ctx(e)),
        }
    }
    tree.last_processed_zxid = zxid;
    let mut pending = trailer.filter(|d| d.zxid > 0 && d.zxid >= zxid);
    let mut checked = None;
    if let Some(d) = pending {
        if d.zxid == zxid {
            pending = None;
            if d.digest_version == DIGEST_VERSION {
                let ok = d.matches(&tree);
                if !ok {
                    log::error!("Digests are not matching. Value is Zxid. {zxid}");
                }
                checked = Some(ok);
            }
        }
    }
    Ok(LoadedSnapshot {
        tree,
        sessions,
        zxid,
        file: path.to_path_buf(),
        trailer,
        pending_digest: pending,
        digest_checked: checked,
    })
}

/// `SnapStream.checkSealIntegrity`: the long at the cursor must be the Adler-32 of all
/// bytes before it; a "/" string follows.
fn check_seal<R: Read>(inp: &mut SnapStream<R>) -> io::Result<()> {
    let at = inp.position();
    let want = inp.checksum();
    let (val, _) = inp.decode(|a| Ok((a.read_long()?, a.read_string()?))).map_err(|e| match e {
        SnapReadError::Decode(d) => invalid(format!("{} reading the seal at offset {at}", d.error)),
        SnapReadError::Io(e) => e,
    })?;
    if val != want {
        return Err(invalid(format!("CRC corruption (seal at offset {at})")));
    }
    Ok(())
}

/// `FileSnap`: snapshots in one directory (the `version-2` snap dir).
pub struct FileSnap {
    snap_dir: PathBuf,
}

impl FileSnap {
    pub fn new(snap_dir: impl Into<PathBuf>) -> Self {
        FileSnap {
            snap_dir: snap_dir.into(),
        }
    }

    pub fn snap_dir(&self) -> &Path {
        &self.snap_dir
    }

    fn sorted_desc(&self) -> io::Result<Vec<PathBuf>> {
        Ok(util::sort_data_dir(
            util::list_files(&self.snap_dir)?,
            SNAPSHOT_FILE_PREFIX,
            false,
        ))
    }

    /// `findNValidSnapshots`: up to `n` files passing [`util::is_valid_snapshot`],
    /// newest first; files whose check fails are skipped with a warning.
    pub fn find_n_valid_snapshots(&self, n: usize) -> io::Result<Vec<PathBuf>> {
        let mut list = Vec::new();
        for f in self.sorted_desc()? {
            match util::is_valid_snapshot(&f) {
                Ok(true) => {
                    list.push(f);
                    if list.len() == n {
                        break;
                    }
                }
                Ok(false) => {}
                Err(e) => log::warn!("invalid snapshot {}: {e}", f.display()),
            }
        }
        Ok(list)
    }

    /// `findNRecentSnapshots`: the `n` newest `snapshot.<zxid>` files, valid or not.
    pub fn find_n_recent_snapshots(&self, n: usize) -> io::Result<Vec<PathBuf>> {
        Ok(self
            .sorted_desc()?
            .into_iter()
            .filter(|f| util::zxid_of(f, SNAPSHOT_FILE_PREFIX) != -1)
            .take(n)
            .collect())
    }

    /// `findMostRecentSnapshot`: the newest valid snapshot.
    pub fn find_most_recent_snapshot(&self) -> io::Result<Option<PathBuf>> {
        Ok(self.find_n_valid_snapshots(1)?.into_iter().next())
    }

    /// `FileSnap.deserialize`: tries the (up to) 100 newest valid snapshots in order and
    /// returns the first that reads and whose seals match. Ok(None) when no file passes
    /// the validity check (upstream's -1); an error when some did but none could be read.
    pub fn deserialize(&self) -> io::Result<Option<LoadedSnapshot>> {
        let list = self.find_n_valid_snapshots(SNAPSHOTS_TO_TRY)?;
        if list.is_empty() {
            return Ok(None);
        }
        for f in &list {
            log::info!("Reading snapshot {}", f.display());
            match read_snapshot_file(f) {
                Ok(s) => return Ok(Some(s)),
                // A corrupt file is skipped for an older one; one from an unknown
                // format version means the dataDir is not ours to read: stop.
                Err(e) if e.kind() == io::ErrorKind::Unsupported && !e.to_string().contains(".gz") && !e.to_string().contains("compressed") => {
                    return Err(e)
                }
                Err(e) => log::warn!("problem reading snap file {}: {e}", f.display()),
            }
        }
        Err(invalid(format!(
            "Not able to find valid snapshots in {}",
            self.snap_dir.display()
        )))
    }

    /// `FileSnap.serialize` into `file`. With `fsync` the bytes go to `<file>.tmp`,
    /// which is fsynced and renamed (upstream's AtomicFileOutputStream); without, the
    /// file is written in place and not synced. A digest trailer is written when
    /// `zookeeper.digest.enabled` (default true).
    pub fn serialize(&self, tree: &DataTree, sessions: &HashMap<i64, i32>, file: &Path, fsync: bool) -> io::Result<()> {
        let bytes = snapshot_bytes(tree, sessions, SNAP_DBID, util::digest_enabled());
        self.write_file(&bytes, file, fsync)
    }

    /// Writes `<file>.tmp`, fsyncs it when asked, and renames it into place: a crash
    /// or a second writer never leaves a half-written file under a snapshot's name
    /// (a same-zxid snapshot simply replaces the old one atomically).
    fn write_file(&self, bytes: &[u8], file: &Path, fsync: bool) -> io::Result<()> {
        self.write_file_with(file, fsync, |w| w.write_all(bytes).map(|()| true)).map(|_| ())
    }

    /// [`Self::write_file`] for a writer that streams: `write` fills the temp file
    /// and says whether it is complete; an incomplete one is removed, not renamed.
    fn write_file_with<T>(
        &self,
        file: &Path,
        fsync: bool,
        write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<T>,
    ) -> io::Result<T>
    where
        T: Complete,
    {
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("writing snapshot {}: {e}", file.display()));
        let mut tmp_name = file.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let res = (|| {
            let mut w = io::BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
            let out = write(&mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            if !out.complete() {
                return Ok((out, false));
            }
            if fsync {
                f.sync_all()?;
            }
            drop(f);
            std::fs::rename(&tmp, file).map(|()| (out, true))
        })();
        if !matches!(res, Ok((_, true))) {
            let _ = std::fs::remove_file(&tmp);
        }
        res.map(|(out, _)| out).map_err(ctx)
    }

    /// A fuzzy snapshot of a live tree, as upstream takes them: the file is named after
    /// the zxid when it starts; nodes are copied a slice at a time under the read lock,
    /// so writers are held up only for a slice, and txns applied meanwhile may or may not
    /// be in it — replaying the log from the starting zxid (idempotent) repairs that.
    /// The digest trailer is the (zxid, digest) pair at the end, which the loader checks
    /// once replay reaches that zxid.
    ///
    /// The file is streamed, as `FileSnap.serialize` does: header, sessions and the ACL
    /// table as of the start go out first, then each slice of node records as soon as
    /// the lock is released, with the seal's Adler-32 carried along. Memory stays at one
    /// slice whatever the tree's size.
    ///
    /// A node created during the walk may carry an ACL the table written at the start
    /// lacks; upstream writes such a file anyway and then cannot resolve that node's ACL
    /// after a restart. Here the attempt is thrown away and the walk runs again with the
    /// table it missed; the third attempt takes the whole walk under one read lock, so
    /// no new ACL can appear.
    pub fn save_fuzzy(
        &self,
        tree: &parking_lot::RwLock<DataTree>,
        sessions: &HashMap<i64, i32>,
        fsync: bool,
    ) -> io::Result<PathBuf> {
        const ATTEMPTS: usize = 3;
        let (zxid0, mut acls) = {
            let t = tree.read();
            let acls: BTreeMap<i64, Vec<ACL>> = t.acl_cache.long_key_map.iter().map(|(k, v)| (*k, v.clone())).collect();
            (t.last_processed_zxid, acls)
        };
        let path = self.snap_dir.join(util::make_snapshot_name(zxid0));
        log::info!("Snapshotting: 0x{zxid0:x} to {}", path.display());
        for attempt in 1.. {
            let missing = self.write_file_with(&path, fsync, |out| {
                stream_fuzzy(tree, sessions, &acls, attempt == ATTEMPTS, out).map(MissingAcls)
            })?
            .0;
            if missing.is_empty() {
                break;
            }
            if attempt == ATTEMPTS {
                // Cannot happen: the last attempt reads the table under the walk's lock.
                return Err(invalid(format!("snapshot 0x{zxid0:x}: nodes use ACLs missing from its table")));
            }
            log::warn!(
                "Snapshot 0x{zxid0:x}: {} ACL(s) created during the walk were not in the file; writing it again",
                missing.len()
            );
            acls.extend(missing);
        }
        Ok(path)
    }

    /// `FileTxnSnapLog.save`: writes `snapshot.<hex tree.last_processed_zxid>` and
    /// returns its path.
    pub fn save(&self, tree: &DataTree, sessions: &HashMap<i64, i32>, fsync: bool) -> io::Result<PathBuf> {
        let path = self.snap_dir.join(util::make_snapshot_name(tree.last_processed_zxid));
        log::info!("Snapshotting: 0x{:x} to {}", tree.last_processed_zxid, path.display());
        self.serialize(tree, sessions, &path, fsync)?;
        Ok(path)
    }
}

/// What a streamed write says about the file it wrote: whether it may take the
/// snapshot's name.
trait Complete {
    fn complete(&self) -> bool;
}

impl Complete for bool {
    fn complete(&self) -> bool {
        *self
    }
}

/// ACLs the nodes of a fuzzy snapshot use but its ACL table lacks.
struct MissingAcls(BTreeMap<i64, Vec<ACL>>);

impl Complete for MissingAcls {
    fn complete(&self) -> bool {
        self.0.is_empty()
    }
}

/// A `Write` that keeps the Adler-32 of everything written through it: the snapshot's
/// seals are sums over the bytes before them.
struct SealedWriter<W: Write> {
    inner: W,
    adler: adler2::Adler32,
}

impl<W: Write> SealedWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.adler.write_slice(bytes);
        self.inner.write_all(bytes)
    }
}

/// A node slice ends after this many nodes or this many bytes of records, whichever
/// comes first: a writer waits for at most one slice, and a slice of 1 MB nodes does
/// not pile up gigabytes before it is written out.
const SLICE_NODES: usize = 2048;
const SLICE_BYTES: usize = 1 << 19;
/// The records a slice may add to finish a child-set shard it began (see `stream_fuzzy`).
const SHARD_BYTES: usize = 4 * SLICE_BYTES;
/// Siblings looked up together by the snapshot walk (see `stream_fuzzy`).
const LOOKUP_BATCH: usize = 16;

/// Asks for a node's first cache lines ahead of its use. A node is one allocation:
/// header, name, then data; 256 bytes cover a 100-byte payload. Its lengths are not
/// read here (that would wait for the miss this is meant to overlap).
fn prefetch_node(node: &DataNode) {
    let at = node.as_ptr();
    for off in [0, 64, 128, 192] {
        prefetch::read(at.wrapping_add(off));
    }
}

/// One attempt of [`FileSnap::save_fuzzy`] into `sink`. Returns the ACLs that nodes
/// in the file use but `acls` (the table written) lacks; the file is complete only when
/// that is empty. With `whole`, the walk holds the read lock from start to end.
fn stream_fuzzy<W: Write>(
    tree: &parking_lot::RwLock<DataTree>,
    sessions: &HashMap<i64, i32>,
    acls: &BTreeMap<i64, Vec<ACL>>,
    whole: bool,
    sink: W,
) -> io::Result<BTreeMap<i64, Vec<ACL>>> {
    let mut guard = if whole { Some(tree.read()) } else { None };
    // Whole: the table is the one under the walk's own lock.
    let whole_table: BTreeMap<i64, Vec<ACL>>;
    let acls = match &guard {
        Some(g) => {
            let mut m = acls.clone();
            m.extend(g.acl_cache.long_key_map.iter().map(|(k, v)| (*k, v.clone())));
            whole_table = m;
            &whole_table
        }
        None => acls,
    };
    let mut out = SealedWriter { inner: sink, adler: adler2::Adler32::new() };
    let mut rec = OutputArchive::with_buffer(Vec::with_capacity(SLICE_BYTES + 64 * 1024));
    FileHeader { magic: SNAP_MAGIC, version: FILE_FORMAT_VERSION, dbid: SNAP_DBID }.serialize(&mut rec);
    write_sessions(&mut rec, sessions);
    write_acl_table(&mut rec, acls);
    out.put(rec.as_slice())?;
    rec.clear();

    let mut missing: BTreeMap<i64, Vec<ACL>> = BTreeMap::new();
    // The walk, with an explicit stack of frames, one per node whose children are being
    // written. A frame writes its node's children straight out of the child set, a
    // shard at a time (a set that is not split is one shard), so a child costs no
    // lookup and a parent of a million children is never copied whole under one slice's
    // lock; the children that have children of their own are descended into after their
    // siblings. Every node still comes after its parent, which is all a reader (ours,
    // or upstream's `DataTree.deserialize`) needs. When a slice's budget runs out in
    // the middle of a shard, the names of the rest of that shard are copied into the
    // frame (one '/'-separated string, under the same lock, so nothing is written
    // twice or skipped) and looked up by path in the next slices. As in upstream, a
    // node changed during the walk is either in or out, which the replay from
    // zxid0 + 1 makes right.
    struct Frame {
        /// The node's path ("" for the root).
        prefix: String,
        /// Names left over from a shard cut short, and how far they are written.
        leftover: String,
        next: usize,
        /// The child set's shard to write next; `SHARDS` once all are.
        next_shard: usize,
        /// Written children that have children, to descend into once the rest are out.
        descend: Vec<String>,
    }
    impl Frame {
        fn new(prefix: String) -> Frame {
            Frame { prefix, leftover: String::new(), next: 0, next_shard: 0, descend: Vec::new() }
        }
    }
    /// One node's record; notes a child with children, and an ACL the table lacks.
    struct Writer<'a> {
        rec: &'a mut OutputArchive,
        path: String,
        acls: &'a BTreeMap<i64, Vec<ACL>>,
        missing: &'a mut BTreeMap<i64, Vec<ACL>>,
    }
    impl Writer<'_> {
        fn write(&mut self, t: &DataTree, prefix: &str, node: &DataNode, descend: Option<&mut Vec<String>>) {
            self.path.clear();
            self.path.push_str(prefix);
            if let Some(d) = descend {
                self.path.push('/');
                self.path.push_str(node.name());
                if !node.children.is_empty() {
                    d.push(node.name().to_owned());
                }
            }
            self.rec.write_string(&self.path);
            self.rec.write_buffer(node.data());
            self.rec.write_long(node.acl);
            node.stat.serialize(self.rec);
            if !self.acls.contains_key(&node.acl) && !self.missing.contains_key(&node.acl) {
                if let Some(list) = t.acl_cache.long_key_map.get(&node.acl) {
                    self.missing.insert(node.acl, list.clone());
                }
            }
        }
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_written = false;
    let mut paths: [String; LOOKUP_BATCH] = std::array::from_fn(|_| String::new());
    let (mut slices, mut longest) = (0usize, std::time::Duration::ZERO);
    loop {
        // No hand-over inside a slice (`RwLockReadGuard::bump` at each run was tried):
        // under a create storm every run then waited for a commit batch, and the
        // snapshots written while populating took twice as long.
        let slice_guard = if guard.is_none() { Some(tree.read()) } else { None };
        let Some(t) = guard.as_deref().or(slice_guard.as_deref()) else { break };
        let held = std::time::Instant::now();
        let mut w = Writer { rec: &mut rec, path: String::new(), acls, missing: &mut missing };
        let mut budget = SLICE_NODES;
        let mut io_err: Option<io::Error> = None;
        while whole || (budget > 0 && w.rec.len() < SLICE_BYTES) {
            if !root_written {
                w.write(t, "", t.get_node("/").unwrap_or_else(|| unreachable!("a tree has a root")), None);
                root_written = true;
                stack.push(Frame::new(String::new()));
                continue;
            }
            let Some(top) = stack.last_mut() else { break };
            if top.next < top.leftover.len() {
                // A run of leftover siblings, looked up together: their cache misses
                // overlap instead of coming one after the other.
                let mut n = 0;
                while n < LOOKUP_BATCH && top.next < top.leftover.len() {
                    let rest = &top.leftover[top.next..];
                    let c = rest.split('/').next().unwrap_or(rest);
                    top.next += c.len() + 1;
                    let p = &mut paths[n];
                    p.clear();
                    p.push_str(&top.prefix);
                    p.push('/');
                    p.push_str(c);
                    n += 1;
                }
                let mut found: [Option<&DataNode>; LOOKUP_BATCH] = [None; LOOKUP_BATCH];
                for (slot, p) in found.iter_mut().zip(paths[..n].iter()) {
                    *slot = t.get_node(p);
                }
                for node in found.iter().flatten() {
                    prefetch_node(node);
                }
                // Deleted since the names were copied: left out, as upstream does.
                for node in found.iter().flatten() {
                    w.write(t, &top.prefix, node, Some(&mut top.descend));
                    budget = budget.saturating_sub(1);
                }
            } else if top.next_shard < SHARDS {
                top.leftover.clear();
                top.next = 0;
                // Gone meanwhile: so are its children (a node with children cannot be
                // deleted).
                let Some(parent) = t.get_node(if top.prefix.is_empty() { "/" } else { &top.prefix }) else {
                    top.next_shard = SHARDS;
                    continue;
                };
                let Frame { prefix, leftover, next_shard, descend, .. } = top;
                // The children come in runs of LOOKUP_BATCH whose nodes are asked for
                // ahead of the writes: their cache misses (the walk's whole cost on a
                // big tree, whose nodes lie in no order the set's would follow) overlap
                // instead of coming one after the other.
                let mut run: Vec<&DataNode> = Vec::with_capacity(LOOKUP_BATCH);
                let mut write_run = |run: &mut Vec<&DataNode>, w: &mut Writer<'_>, budget: &mut usize| {
                    for node in run.iter() {
                        prefetch_node(node);
                    }
                    for c in run.drain(..) {
                        // A shard once begun is written to its end (a few thousand
                        // nodes at a million children, about a millisecond) unless
                        // its records pass SHARD_BYTES: big payloads, or a set too
                        // big for its shards; the rest is then looked up by name.
                        if whole || w.rec.len() < SHARD_BYTES {
                            w.write(t, prefix, c, Some(descend));
                            *budget = budget.saturating_sub(1);
                            if whole && w.rec.len() >= SLICE_BYTES && io_err.is_none() {
                                if let Err(e) = out.put(w.rec.as_slice()) {
                                    io_err = Some(e);
                                }
                                w.rec.clear();
                            }
                        } else {
                            leftover.push_str(c.name());
                            leftover.push('/');
                        }
                    }
                };
                *next_shard = parent.children.visit_shard(*next_shard, |c| {
                    run.push(c);
                    if run.len() == LOOKUP_BATCH {
                        write_run(&mut run, &mut w, &mut budget);
                    }
                });
                write_run(&mut run, &mut w, &mut budget);
                if let Some(e) = io_err.take() {
                    return Err(e);
                }
            } else if let Some(name) = top.descend.pop() {
                let path = format!("{}/{name}", top.prefix);
                // Written with its parent; its children may have gone since.
                if t.get_node(&path).is_some_and(|n| !n.children.is_empty()) {
                    stack.push(Frame::new(path));
                }
            } else {
                stack.pop();
            }
            if whole && w.rec.len() >= SLICE_BYTES {
                out.put(w.rec.as_slice())?;
                w.rec.clear();
            }
        }
        let done = root_written && stack.is_empty();
        // The trailer's (zxid, digest) pair is read under the last slice's lock.
        let end = done.then(|| (t.last_processed_zxid, t.digest()));
        slices += 1;
        longest = longest.max(held.elapsed());
        drop(slice_guard);
        if done {
            guard = None;
        }
        // The slice goes to the file with the lock released.
        out.put(rec.as_slice())?;
        rec.clear();
        if let Some((zxid_end, digest_end)) = end {
            rec.write_string("/");
            out.put(rec.as_slice())?;
            rec.clear();
            rec.write_long(out.adler.checksum() as i64);
            rec.write_string("/");
            if util::digest_enabled() {
                let zxid = zxid_end.max(0);
                ZxidDigest { zxid, digest_version: DIGEST_VERSION, digest: if zxid == 0 { 0 } else { digest_end } }.serialize(&mut rec);
                out.put(rec.as_slice())?;
                rec.clear();
                rec.write_long(out.adler.checksum() as i64);
                rec.write_string("/");
            }
            out.put(rec.as_slice())?;
            break;
        }
    }
    log::debug!("Snapshot walk: {slices} read-lock slices, the longest {} us", longest.as_micros());
    out.inner.flush()?;
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::digest_calculator::tree_digest;
    use crate::proto::op_code;
    use crate::proto::txn::{CreateTxn, TxnHeader};
    use crate::server::txn_record::TxnRecord;

    fn sample_tree() -> DataTree {
        let mut t = DataTree::new();
        let acl_a = vec![ACL::new(31, "world", "anyone")];
        let acl_b = vec![ACL::new(1, "digest", "u:abc"), ACL::new(31, "ip", "127.0.0.1")];
        let mut z = 0;
        let mut mk = |t: &mut DataTree, path: &str, acl: &Vec<ACL>, eph: bool| {
            z += 1;
            let hdr = TxnHeader {
                client_id: 0x77,
                cxid: z as i32,
                zxid: z,
                time: 1000 + z,
                r#type: op_code::CREATE,
            };
            let txn = TxnRecord::Create(CreateTxn {
                path: path.into(),
                data: Some(format!("d{path}").into_bytes()),
                acl: acl.clone(),
                ephemeral: eph,
                parent_c_version: t
                    .get_node(
                        path.rsplit_once('/')
                            .map(|p| if p.0.is_empty() { "/" } else { p.0 })
                            .unwrap_or("/"),
                    )
                    .map(|n| n.stat.cversion + 1)
                    .unwrap_or(1),
            });
            assert_eq!(t.process_txn(&hdr, Some(&txn)).err, 0, "{path}");
        };
        mk(&mut t, "/a", &acl_a, false);
        mk(&mut t, "/a/b", &acl_b, false);
        mk(&mut t, "/a/b/c", &acl_b, true);
        mk(&mut t, "/e", &acl_a, true);
        t
    }

    #[test]
    fn round_trip_and_seals() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample_tree();
        let sessions: HashMap<i64, i32> = [(0x77, 30000), (0x78, 4000)].into_iter().collect();
        let snap = FileSnap::new(dir.path());
        let p = snap.save(&t, &sessions, true).unwrap();
        assert_eq!(p.file_name().unwrap(), "snapshot.4");
        assert!(util::is_valid_snapshot(&p).unwrap());
        let l = snap.deserialize().unwrap().unwrap();
        assert_eq!(l.zxid, 4);
        assert_eq!(l.sessions, sessions);
        assert_eq!(l.digest_checked, Some(true));
        assert_eq!(l.trailer.map(|d| d.digest), Some(tree_digest(&t)));
        type Row = (String, Option<Vec<u8>>, StatPersisted, Vec<ACL>, Vec<String>);
        let mut a: Vec<Row> = Vec::new();
        let mut b = Vec::new();
        for (tree, out) in [(&t, &mut a), (&l.tree, &mut b)] {
            for (p, n) in tree.nodes() {
                let mut c: Vec<String> = n.children.iter().map(str::to_owned).collect();
                c.sort();
                out.push((p.to_owned(), n.data_vec(), n.stat.clone(), tree.acl_of(n), c));
            }
            out.sort_by(|x, y| x.0.cmp(&y.0));
        }
        assert_eq!(a, b);
        assert_eq!(l.tree.ephemerals_of(0x77).len(), 2);
        // Shared ACL lists share a cache entry with the right reference count.
        let id = l.tree.get_node("/a/b").unwrap().acl;
        assert_eq!(l.tree.acl_cache.reference_count(id), 2);
        // Re-serializing the loaded tree gives the same bytes.
        let mut lt = l.tree;
        lt.last_processed_zxid = 4;
        assert_eq!(snapshot_bytes(&lt, &sessions, -1, true), std::fs::read(&p).unwrap());

        // A corrupted newer snapshot is skipped for the older valid one.
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[40] ^= 0x01;
        let bad = dir.path().join("snapshot.9");
        std::fs::write(&bad, &bytes).unwrap();
        assert!(read_snapshot_file(&bad)
            .err()
            .unwrap()
            .to_string()
            .contains("snapshot.9"));
        let l = snap.deserialize().unwrap().unwrap();
        assert_eq!(l.zxid, 4);
    }

    /// A snapshot body of raw node records (root first or not, duplicates allowed), as a
    /// damaged file could hold them.
    fn load_raw(nodes: &[(&str, &[u8])]) -> io::Result<DataTree> {
        let mut out = OutputArchive::with_buffer(Vec::new());
        FileHeader { magic: SNAP_MAGIC, version: FILE_FORMAT_VERSION, dbid: SNAP_DBID }.serialize(&mut out);
        out.write_int(0);
        out.write_int(0);
        for (path, data) in nodes {
            out.write_string(path);
            out.write_buffer(Some(data));
            out.write_long(-1);
            StatPersisted { czxid: data.len() as i64, ..StatPersisted::default() }.serialize(&mut out);
        }
        out.write_string("/");
        let bytes = out.into_inner();
        let mut inp = SnapStream::new(&bytes[..]);
        assert!(inp.decode(FileHeader::deserialize).is_ok());
        deserialize_snapshot_body(&mut inp, 0).map(|(t, _)| t)
    }

    /// As upstream's `DataTree.deserialize`: a path written twice replaces the earlier
    /// node (whose children stay in the tree), a node whose parent came nowhere before
    /// it is an error naming both, and a file without a root is refused. The totals
    /// (count, digest) are those of the tree that results.
    #[test]
    fn damaged_node_records_load_as_upstream_reads_them() {
        let t = load_raw(&[("", b""), ("/a", b"1"), ("/a/x", b"2"), ("/b", b"3"), ("/a", b"four"), ("/a/y", b"5"), ("/a/x", b"six")]).unwrap();
        let data = |p: &str| t.get_node(p).and_then(|n| n.data_vec());
        assert_eq!(data("/a").as_deref(), Some(&b"four"[..]));
        assert_eq!(data("/a/x").as_deref(), Some(&b"six"[..]));
        assert_eq!(t.get_node("/a").map(|n| n.children.len()), Some(2));
        assert_eq!(t.node_count(), 6);
        assert_eq!(t.digest(), tree_digest(&t));
        // Path length plus data length: "/" 1 + 0, /a 2 + 4, /a/x 4 + 3, /b 2 + 1, /a/y 4 + 1.
        assert_eq!(t.approximate_data_size(), 1 + 6 + 7 + 3 + 5);
        let e = load_raw(&[("", b""), ("/a", b""), ("/b/c", b"")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("Invalid Datatree, unable to find parent /b of path /b/c"), "{e}");
        let e = load_raw(&[("/a", b"")]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("no root node"), "{e}");
    }

    fn rows(tree: &DataTree) -> Vec<(String, Option<Vec<u8>>, StatPersisted, Vec<ACL>, Vec<String>)> {
        let mut out: Vec<_> = tree
            .nodes()
            .into_iter()
            .map(|(p, n)| {
                let mut c: Vec<String> = n.children.iter().map(str::to_owned).collect();
                c.sort();
                (p.to_owned(), n.data_vec(), n.stat.clone(), tree.acl_of(n), c)
            })
            .collect();
        out.sort_by(|x, y| x.0.cmp(&y.0));
        out
    }

    /// A fuzzy snapshot taken while another thread keeps changing the tree, loaded and
    /// followed by the replay of every txn after its zxid, gives the final tree: the
    /// contract of `save_fuzzy`. The tree is wide (a node with more children than one
    /// lock slice) and deep, so the walk crosses many lock releases mid-frame.
    #[test]
    fn fuzzy_snapshot_plus_replay_equals_final_tree() {
        use crate::proto::txn::{DeleteTxn, SetDataTxn};
        let dir = tempfile::tempdir().unwrap();
        let open = crate::proto::ids::open_acl_unsafe();
        let creator = |zxid: i64, path: String| {
            (
                TxnHeader { client_id: 0x5, cxid: 0, zxid, time: zxid, r#type: op_code::CREATE },
                TxnRecord::Create(CreateTxn { path, data: Some(vec![zxid as u8; 10]), acl: open.clone(), ephemeral: false, parent_c_version: -1 }),
            )
        };
        let mut txns = Vec::new();
        let mut z = 0;
        txns.push(creator({ z += 1; z }, "/wide".into()));
        // Past SPLIT_AT: the child set is split, and copied a batch at a time.
        for i in 0..40_000 {
            txns.push(creator({ z += 1; z }, format!("/wide/n{i}")));
        }
        let mut deep = String::new();
        for i in 0..300 {
            deep.push_str(&format!("/d{i}"));
            txns.push(creator({ z += 1; z }, deep.clone()));
        }
        let base = z as usize;
        // Changes made while the snapshot runs: creates, sets, deletes over both shapes.
        for i in 0..6_000 {
            z += 1;
            let (hdr, txn) = match i % 3 {
                0 => creator(z, format!("/wide/m{i}")),
                1 => (
                    TxnHeader { client_id: 0x5, cxid: 0, zxid: z, time: z, r#type: op_code::SET_DATA },
                    TxnRecord::SetData(SetDataTxn { path: format!("/wide/n{i}"), data: Some(vec![7; 20]), version: 1 }),
                ),
                _ => (
                    TxnHeader { client_id: 0x5, cxid: 0, zxid: z, time: z, r#type: op_code::DELETE },
                    TxnRecord::Delete(DeleteTxn { path: format!("/wide/n{i}") }),
                ),
            };
            txns.push((hdr, txn));
        }
        // Creates carry their parent's next cversion, as PrepRequestProcessor writes
        // them: that is what makes replaying a create the snapshot already holds leave
        // the parent's cversion right (with -1 the replay adds one, and the result
        // depended on how many creates fell between the start zxid and the walk).
        let mut sim = DataTree::new();
        for (h, t) in txns.iter_mut() {
            if let TxnRecord::Create(c) = t {
                let parent = c.path.rsplit_once('/').map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
                c.parent_c_version = sim.get_node(parent).map_or(0, |n| n.stat.cversion) + 1;
            }
            sim.process_txn(h, Some(t));
        }
        let tree = parking_lot::RwLock::new(DataTree::new());
        for (h, t) in &txns[..base] {
            let mut g = tree.write();
            assert_eq!(g.process_txn(h, Some(t)).err, 0);
            g.last_processed_zxid = h.zxid;
        }
        let snap = FileSnap::new(dir.path());
        let file = std::thread::scope(|s| {
            let writer = s.spawn(|| {
                for (h, t) in &txns[base..] {
                    let mut g = tree.write();
                    g.process_txn(h, Some(t));
                    g.last_processed_zxid = h.zxid;
                    drop(g);
                    std::thread::yield_now();
                }
            });
            let f = snap.save_fuzzy(&tree, &HashMap::new(), false).unwrap();
            writer.join().unwrap();
            f
        });
        let mut loaded = read_snapshot_file(&file).unwrap();
        for (h, t) in txns.iter().filter(|(h, _)| h.zxid > loaded.zxid) {
            loaded.tree.process_txn(h, Some(t));
        }
        let fin = tree.read();
        assert_eq!(rows(&loaded.tree), rows(&fin));
        assert_eq!(loaded.tree.digest(), fin.digest());
        assert_eq!(loaded.tree.digest(), tree_digest(&fin));
    }

    /// A node whose ACL is not in the table a fuzzy snapshot wrote at its start (one
    /// created during the walk) makes that attempt incomplete, and `save_fuzzy` writes
    /// the file again with it: every node of the file resolves its ACL after a load.
    #[test]
    fn fuzzy_snapshot_keeps_acls_created_during_the_walk() {
        let tree = parking_lot::RwLock::new(sample_tree());
        let all: BTreeMap<i64, Vec<ACL>> =
            tree.read().acl_cache.long_key_map.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert!(all.len() >= 2, "{all:?}");
        let missing = stream_fuzzy(&tree, &HashMap::new(), &BTreeMap::new(), false, Vec::new()).unwrap();
        assert_eq!(missing, all);
        let mut one = all.clone();
        let last = one.pop_last().unwrap();
        let missing = stream_fuzzy(&tree, &HashMap::new(), &one, false, Vec::new()).unwrap();
        assert_eq!(missing, BTreeMap::from([last]));
        assert!(stream_fuzzy(&tree, &HashMap::new(), &all, false, Vec::new()).unwrap().is_empty());
        // The last resort reads the table under the walk's own lock.
        assert!(stream_fuzzy(&tree, &HashMap::new(), &BTreeMap::new(), true, Vec::new()).unwrap().is_empty());

        // Live: new ACLs under parents the walk reaches late, while it runs.
        let open = crate::proto::ids::open_acl_unsafe();
        let mut z = 100;
        let mut create = |t: &mut DataTree, path: String, acl: Vec<ACL>| {
            z += 1;
            let hdr = TxnHeader { client_id: 0x5, cxid: 0, zxid: z, time: z, r#type: op_code::CREATE };
            let txn = TxnRecord::Create(CreateTxn { path, data: Some(vec![1; 10]), acl, ephemeral: false, parent_c_version: -1 });
            assert_eq!(t.process_txn(&hdr, Some(&txn)).err, 0);
            t.last_processed_zxid = z;
        };
        {
            let mut t = tree.write();
            for p in 0..40 {
                create(&mut t, format!("/p{p:02}"), open.clone());
                for c in 0..500 {
                    create(&mut t, format!("/p{p:02}/c{c}"), open.clone());
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let snap = FileSnap::new(dir.path());
        let file = std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..2_000 {
                    let acl = vec![ACL::new(31, "digest", &format!("u{i}:x"))];
                    create(&mut tree.write(), format!("/p39/new{i}"), acl);
                    std::thread::yield_now();
                }
            });
            snap.save_fuzzy(&tree, &HashMap::new(), false).unwrap()
        });
        let loaded = read_snapshot_file(&file).unwrap();
        let cache = &loaded.tree.acl_cache.long_key_map;
        for (p, n) in loaded.tree.nodes() {
            assert!(n.acl == -1 || cache.contains_key(&n.acl), "{p}: ACL {} not in the file", n.acl);
        }
    }



    /// The walk writes every node once and each after its parent (all that upstream's
    /// `DataTree.deserialize` and ours need), with slices small enough to end in the
    /// middle of a child set: leaves and inner nodes mixed in every set, some payloads
    /// large, and one parent with enough children to be split into shards.
    #[test]
    fn fuzzy_snapshot_writes_every_node_once_after_its_parent() {
        let open = crate::proto::ids::open_acl_unsafe();
        let mut t = DataTree::new();
        let mut z = 0;
        let mut mk = |t: &mut DataTree, path: String, len: usize| {
            z += 1;
            let hdr = TxnHeader { client_id: 0x5, cxid: 0, zxid: z, time: z, r#type: op_code::CREATE };
            let txn = TxnRecord::Create(CreateTxn { path, data: Some(vec![7; len]), acl: open.clone(), ephemeral: false, parent_c_version: -1 });
            assert_eq!(t.process_txn(&hdr, Some(&txn)).err, 0);
        };
        for a in 0..30 {
            mk(&mut t, format!("/a{a}"), 10);
            for b in 0..(a * 7) % 41 {
                mk(&mut t, format!("/a{a}/b{b}"), if b % 5 == 0 { 200_000 } else { 10 });
                for c in 0..(b % 3) * 4 {
                    mk(&mut t, format!("/a{a}/b{b}/c{c}"), 10);
                }
            }
        }
        for w in 0..crate::server::util::sharded_map::SPLIT_AT + 5000 {
            mk(&mut t, format!("/a3/w{w}"), if w % 1000 == 0 { 300_000 } else { 10 });
        }
        let expected = t.node_count() - 1;
        let acls: BTreeMap<i64, Vec<ACL>> = t.acl_cache.long_key_map.iter().map(|(k, v)| (*k, v.clone())).collect();
        let tree = parking_lot::RwLock::new(t);
        let mut bytes = Vec::new();
        assert!(stream_fuzzy(&tree, &HashMap::new(), &acls, false, &mut bytes).unwrap().is_empty());
        let mut inp = InputArchive::new(&bytes);
        FileHeader::deserialize(&mut inp).unwrap();
        for _ in 0..inp.read_int().unwrap() {
            inp.read_long().unwrap();
            inp.read_int().unwrap();
        }
        for _ in 0..inp.read_int().unwrap() {
            inp.read_long().unwrap();
            for _ in 0..inp.read_vector_len().unwrap() {
                ACL::deserialize(&mut inp).unwrap();
            }
        }
        let mut paths = Vec::new();
        loop {
            let p = inp.read_string().unwrap();
            if p == "/" {
                break;
            }
            inp.read_buffer().unwrap();
            inp.read_long().unwrap();
            StatPersisted::deserialize(&mut inp).unwrap();
            paths.push(p);
        }
        assert_eq!(paths.len(), expected);
        assert_eq!(paths.iter().collect::<std::collections::HashSet<_>>().len(), expected, "a node written twice");
        let mut written: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for p in &paths {
            let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
            assert!(p.is_empty() || written.contains(parent), "{p} written before its parent");
            written.insert(p);
        }
        // And the file loads back into the same tree.
        let mut inp = SnapStream::new(&bytes[..]);
        assert!(inp.decode(FileHeader::deserialize).is_ok());
        let (loaded, _) = deserialize_snapshot_body(&mut inp, 0).unwrap();
        assert_eq!(rows(&loaded), rows(&tree.read()));
    }
}
