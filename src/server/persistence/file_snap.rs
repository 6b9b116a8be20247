//! `FileSnap` / `SnapStream` / `DataTree.serialize` and `deserialize`: snapshot files.
//!
//! Layout (plain, uncompressed): FileHeader("ZKSN", 2, -1); sessions (int count, then
//! (long id, int timeout) pairs); the ACL cache (int count, then (long id,
//! vector<ACL>)); the nodes in pre-order as (ustring path, DataNode = buffer data, long
//! acl, StatPersisted), root under "", ended by the path "/"; seal 1 = long Adler-32 of
//! every byte before it, then ustring "/". With digests enabled (the 3.8 default) a
//! trailer follows: long zxid, int digestVersion, long digest, and seal 2 = long
//! Adler-32 of every byte before it (seal 1 included) and "/" again.

use std::collections::hash_map::Entry;
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
use crate::server::util::compact_str::CompactStr;
use crate::server::util::prefetch;
use crate::server::util::sharded_map::SHARDS;
use crate::server::util::thin_str::ThinStr;

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
        out.write_buffer(node.data.as_deref());
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
/// The tree's last_processed_zxid is left at 0. `file_len` (0 if unknown) presizes the
/// node map.
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
    let tree = deserialize_tree(inp, file_len.saturating_sub(inp.position()))?;
    Ok((tree, sessions))
}

/// One node record as decoded from the file, with the pieces the tree builder would
/// otherwise have to compute on its own thread.
struct DecodedNode {
    path: String,
    /// The last path component (empty for the root, which is written as "").
    child: CompactStr,
    is_root: bool,
    /// Boxed here, so the allocation is the reader thread's work, not the builder's.
    node: Box<DataNode>,
    digest: i64,
    /// File offset of the record, for error messages.
    at: u64,
}

/// Nodes per hand-over from the reader thread to the builder: enough to make the
/// channel cost vanish, small enough to keep both threads busy from the start.
const NODE_BATCH: usize = 1024;

/// `DataTree.deserialize`: rebuilds nodes, children, ephemeral/container/TTL indexes,
/// ACL reference counts (dropping unused entries) and quota bookkeeping. `size_hint`
/// (the bytes left in the file, 0 if unknown) presizes the node map.
///
/// The node records are decoded on a "SnapshotReader" thread (file reads, the string
/// and buffer allocations, the per-node digest) while this thread inserts them into the
/// tree: on a restart with a large tree those are the two halves of the work, and a
/// restart has nothing else to do with the second core. Upstream does both on one thread.
pub fn deserialize_tree<R: Read + Send>(inp: &mut SnapStream<R>, size_hint: u64) -> io::Result<DataTree> {
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
    tree.nodes_mut().clear();
    // A node with 100 bytes of data takes ~190 bytes in the file; presize for that. An
    // under-estimate costs one rehash, an over-estimate a table twice the size for good.
    tree.nodes_mut().reserve((size_hint / 192).min(1 << 26) as usize);
    {
        let (eph, containers, ttls) = tree.node_indexes_mut();
        eph.clear();
        containers.clear();
        ttls.clear();
    }
    let (tx, rx) = crossbeam_channel::bounded::<Vec<DecodedNode>>(16);
    let (built, decoded) = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("SnapshotReader".into())
            .spawn_scoped(scope, move || decode_nodes(inp, tx));
        let reader = match reader {
            Ok(r) => r,
            Err(e) => return (Err(e), Ok(())),
        };
        let built = build_nodes(&mut tree, &mut cache, &rx);
        // Unblocks the reader if the builder stopped early.
        drop(rx);
        let decoded = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the snapshot reader thread panicked")));
        (built, decoded)
    });
    // A decoding error explains a builder that saw the stream end early.
    decoded?;
    let (size, digest, have_root) = built?;
    if !have_root {
        return Err(invalid("snapshot has no root node".into()));
    }
    cache.purge_unused();
    tree.acl_cache = cache;
    tree.finish_load(size, digest);
    Ok(tree)
}

/// The reader half: node records up to the "/" that ends them.
fn decode_nodes<R: Read>(inp: &mut SnapStream<R>, tx: crossbeam_channel::Sender<Vec<DecodedNode>>) -> io::Result<()> {
    let mut batch = Vec::with_capacity(NODE_BATCH);
    loop {
        let at = inp.position();
        let path = inp.decode(|a| a.read_string())?;
        if path == "/" {
            break;
        }
        let (data, acl, stat) = inp.decode(|a| Ok((a.read_buffer()?, a.read_long()?, StatPersisted::deserialize(a)?)))?;
        let (child, is_root) = match path.rfind('/') {
            Some(i) => (CompactStr::new(&path[i + 1..]), false),
            None => (CompactStr::new(""), true),
        };
        // Upstream takes any path without a '/' as the root (written as ""); the builder
        // stores it under "/", so its digest is the root's whatever the file said (a
        // damaged file's "abc" would otherwise leave the tree digest off by that node).
        let digest = node_digest(if is_root { "" } else { &path }, data.as_deref(), &stat);
        batch.push(DecodedNode { path, child, is_root, node: Box::new(DataNode::new(data, acl, stat)), digest, at });
        if batch.len() == NODE_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(NODE_BATCH));
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
    children: Vec<CompactStr>,
}

impl PendingChildren {
    fn flush(&mut self, tree: &mut DataTree) -> io::Result<()> {
        let Some(at) = self.first.take() else { return Ok(()) };
        let key = if self.parent.is_empty() { "/" } else { self.parent.as_str() };
        match tree.nodes_mut().get_mut(key) {
            Some(parent) => {
                parent.children.reserve(self.children.len());
                parent.children.extend(self.children.drain(..));
                Ok(())
            }
            None => Err(invalid(format!(
                "Invalid Datatree, unable to find parent {} of path {}/{} (offset {at})",
                self.parent,
                self.parent,
                self.children.first().map_or("", CompactStr::as_str)
            ))),
        }
    }
}

/// The builder half: inserts the decoded nodes in file (pre-)order. Returns the
/// approximate data size, the tree digest and whether a root was seen.
fn build_nodes(
    tree: &mut DataTree,
    cache: &mut ReferenceCountedAclCache,
    rx: &crossbeam_channel::Receiver<Vec<DecodedNode>>,
) -> io::Result<(i64, i64, bool)> {
    // The totals are summed here, from what the reader computed while each node was in
    // cache, rather than in a second pass over the map.
    let (mut size, mut digest) = (0i64, 0i64);
    let mut have_root = false;
    let mut pending = PendingChildren { parent: String::new(), first: None, children: Vec::new() };
    // ACL reference counts, counted in runs of nodes with the same ACL.
    let (mut acl_run, mut acl_count) = (0i64, 0i64);
    for batch in rx.iter() {
        for d in batch {
            if d.node.acl != acl_run {
                cache.add_usages(acl_run, acl_count);
                (acl_run, acl_count) = (d.node.acl, 0);
            }
            acl_count += 1;
            let data_len = d.node.data_len() as i64;
            let old = if d.is_root {
                pending.flush(tree)?;
                have_root = true;
                size += 1;
                let mut old = tree.nodes_mut().insert("/".into(), d.node);
                if let (Some(old), Some(new)) = (old.as_mut(), tree.nodes_mut().get_mut("/")) {
                    new.children = std::mem::take(&mut old.children);
                }
                old.map(|o| ("/".to_owned(), o))
            } else {
                let path = d.path;
                let parent_len = path.len() - d.child.len() - 1;
                // A new parent, or this node is the pending parent itself (written twice,
                // in a damaged file): the pending children go in first, as they came first.
                if pending.first.is_some() && (pending.parent != path[..parent_len] || pending.parent == path) {
                    pending.flush(tree)?;
                }
                if pending.first.is_none() {
                    pending.parent.clear();
                    pending.parent.push_str(&path[..parent_len]);
                    pending.first = Some(d.at);
                }
                pending.children.push(d.child);
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
                size += path.len() as i64;
                match tree.nodes_mut().entry(ThinStr::new(&path)) {
                    Entry::Vacant(v) => {
                        v.insert(d.node);
                        None
                    }
                    Entry::Occupied(mut o) => {
                        let key = o.key().to_string();
                        Some((key, o.insert(d.node)))
                    }
                }
            };
            size += data_len;
            digest = digest.wrapping_add(d.digest);
            // A path written twice (only in a damaged file) replaces the earlier node;
            // keep the totals those of the map.
            if let Some((key, o)) = old {
                size -= key.len() as i64 + o.data_len() as i64;
                digest = digest.wrapping_sub(node_digest(&key, o.data.as_deref(), &o.stat));
            }
        }
    }
    pending.flush(tree)?;
    cache.add_usages(acl_run, acl_count);
    Ok((size, digest, have_root))
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
/// Child names copied per visit of a node whose child set is split (the rest at the
/// next visits): a slice never copies a million names under its lock.
const CHILD_BATCH: usize = 2048;
const SLICE_BYTES: usize = 1 << 19;
/// Siblings looked up together by the snapshot walk (see `stream_fuzzy`).
const LOOKUP_BATCH: usize = 16;

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
    // Pre-order walk with an explicit stack, like `DataTree.serializeNode`: each frame
    // is a visited node's path and a copy of its child names (upstream, too, reads a
    // node's children once and then descends, so a concurrent change is either in or
    // out, which the replay from zxid0 + 1 makes right).
    // Child names are copied into one '/'-separated string (a name cannot hold a
    // '/'): a node with a million children is copied without a million allocations.
    // A node with a huge child set is copied a few thousand names at a time, one
    // batch per visit under whichever slice's lock is held then (see
    // `Children::copy_names`), so no slice holds the lock for the whole set.
    struct Frame {
        prefix: String,
        children: String,
        next: usize,
        /// The child set's shard to copy from next; `SHARDS` once all are copied.
        next_shard: usize,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut next_path: Option<String> = Some(String::new());
    // The run of siblings being looked up: each one's path (buffers kept from run to
    // run, so a leaf costs no allocation) and the offset just past its name in the
    // parent's frame (None for the root).
    let mut paths: [String; LOOKUP_BATCH] = std::array::from_fn(|_| String::new());
    let mut resume: [Option<usize>; LOOKUP_BATCH] = [None; LOOKUP_BATCH];
    let (mut slices, mut longest) = (0usize, std::time::Duration::ZERO);
    loop {
        // No hand-over inside a slice (`RwLockReadGuard::bump` at each run was tried):
        // under a create storm every run then waited for a commit batch, and the
        // snapshots written while populating took twice as long.
        let slice_guard = if guard.is_none() { Some(tree.read()) } else { None };
        let Some(t) = guard.as_deref().or(slice_guard.as_deref()) else { break };
        let held = std::time::Instant::now();
        let mut budget = SLICE_NODES;
        while budget > 0 && (whole || rec.len() < SLICE_BYTES) {
            // The next run of siblings (or the root).
            let mut n = 0;
            match next_path.take() {
                Some(p) => {
                    paths[0] = p;
                    resume[0] = None;
                    n = 1;
                }
                None => {
                    let Some(top) = stack.last_mut() else { break };
                    if top.next >= top.children.len() {
                        if top.next_shard < SHARDS {
                            top.children.clear();
                            top.next = 0;
                            // Gone meanwhile: so are its children (a node with
                            // children cannot be deleted).
                            top.next_shard = match t.get_node(&top.prefix) {
                                Some(parent) => {
                                    let (next, copied) = parent.children.copy_names(top.next_shard, CHILD_BATCH, &mut top.children);
                                    budget = budget.saturating_sub(copied / 64);
                                    next
                                }
                                None => SHARDS,
                            };
                            continue;
                        }
                        stack.pop();
                        continue;
                    }
                    while n < LOOKUP_BATCH.min(budget) && top.next < top.children.len() {
                        let rest = &top.children[top.next..];
                        let c = rest.split('/').next().unwrap_or(rest);
                        top.next += c.len() + 1;
                        let p = &mut paths[n];
                        p.clear();
                        p.push_str(&top.prefix);
                        p.push('/');
                        p.push_str(c);
                        resume[n] = Some(top.next);
                        n += 1;
                    }
                }
            }
            // All the run's lookups first: they do not depend on one another, so their
            // cache misses (the walk's whole cost on a big tree) overlap instead of
            // coming one after the other.
            let mut found: [Option<&DataNode>; LOOKUP_BATCH] = [None; LOOKUP_BATCH];
            for (slot, p) in found.iter_mut().zip(paths[..n].iter()) {
                *slot = t.get_node(p);
            }
            // Then the nodes (two cache lines each), then their data, asked for ahead
            // of the writes below: one wave of misses each instead of two per node.
            for node in found.iter().flatten() {
                let at: *const DataNode = *node;
                prefetch::read(at);
                prefetch::read(at.cast::<u8>().wrapping_add(64));
            }
            for node in found.iter().flatten() {
                if let Some(d) = node.data.as_deref() {
                    prefetch::read(d.as_ptr());
                    if d.len() > 64 {
                        prefetch::read(d.as_ptr().wrapping_add(64));
                    }
                }
            }
            for i in 0..n {
                if !whole {
                    budget = budget.saturating_sub(1);
                }
                // Deleted since its parent was read: left out, as upstream does.
                let Some(node) = found[i] else { continue };
                let p = &paths[i];
                rec.write_string(p);
                rec.write_buffer(node.data.as_deref());
                rec.write_long(node.acl);
                node.stat.serialize(&mut rec);
                if !acls.contains_key(&node.acl) && !missing.contains_key(&node.acl) {
                    if let Some(list) = t.acl_cache.long_key_map.get(&node.acl) {
                        missing.insert(node.acl, list.clone());
                    }
                }
                let descend = !node.children.is_empty();
                let full = !whole && rec.len() >= SLICE_BYTES;
                if descend || full {
                    // Pre-order: the subtree comes before the rest of the run, which
                    // is read again from the parent's frame afterwards.
                    if let (Some(top), Some(resume)) = (stack.last_mut(), resume[i]) {
                        top.next = resume;
                    }
                }
                if descend {
                    let mut children = String::with_capacity(node.children.len().min(CHILD_BATCH + 1024) * 16);
                    let (next_shard, copied) = node.children.copy_names(0, CHILD_BATCH, &mut children);
                    budget = budget.saturating_sub(copied / 64);
                    let prefix = paths[i].clone();
                    stack.push(Frame { prefix, children, next: 0, next_shard });
                }
                if whole && rec.len() >= SLICE_BYTES {
                    out.put(rec.as_slice())?;
                    rec.clear();
                }
                if descend || full {
                    break;
                }
            }
        }
        let done = stack.is_empty() && next_path.is_none();
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
                out.push((p.to_owned(), n.data.to_vec(), n.stat.clone(), tree.acl_of(n), c));
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

    fn rows(tree: &DataTree) -> Vec<(String, Option<Vec<u8>>, StatPersisted, Vec<ACL>, Vec<String>)> {
        let mut out: Vec<_> = tree
            .nodes()
            .map(|(p, n)| {
                let mut c: Vec<String> = n.children.iter().map(str::to_owned).collect();
                c.sort();
                (p.to_owned(), n.data.to_vec(), n.stat.clone(), tree.acl_of(n), c)
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



    /// The walk looks siblings up in runs but still writes the nodes in pre-order:
    /// each node right after its parent's subtree began, its own subtree contiguous
    /// after it, every node once. The tree mixes leaves and inner nodes in every run,
    /// and the slices are small enough to end mid-run.
    #[test]
    fn fuzzy_snapshot_writes_nodes_in_pre_order() {
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
        // Pre-order: after popping the ancestors whose subtree ended, the top is the parent.
        let mut open_subtrees: Vec<&str> = Vec::new();
        for p in &paths {
            while open_subtrees.last().is_some_and(|a| !p.starts_with(&format!("{a}/"))) {
                open_subtrees.pop();
            }
            let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
            assert_eq!(open_subtrees.last().copied().unwrap_or(""), parent, "{p} is not right after its parent's subtree");
            open_subtrees.push(p);
        }
    }
}
