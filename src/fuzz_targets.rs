//! Fuzzing entry points: one function per decoder family, each taking raw bytes the way
//! the server receives or loads them and running them through the server's own decoding
//! code (not a copy of it).
//!
//! Both the cargo-fuzz targets (`tests/fuzz/fuzz_targets/*.rs`, libFuzzer, nightly) and
//! the stable corpus replay (`tests/fuzz_corpora.rs`, plain `cargo test`) call these
//! functions. The contract is the server's: any input may be refused with an error, but
//! none may panic, hang or allocate far beyond its size (every length prefix is checked
//! against `jute.maxbuffer`, `PACKETMAXSIZE` or what is left of the input, as upstream
//! does). Errors are therefore ignored here; only panics, timeouts and out-of-memory are
//! findings. See docs/reliability.md ("Fuzzing") for how to run them.
//!
//! | target | what the bytes are | code exercised |
//! | --- | --- | --- |
//! | `client_handshake` | a client's first bytes on the client port | frame length / four-letter-word check, `ConnectRequest` + readOnly byte |
//! | `client_request` | frames after the handshake | frame lengths, `RequestHeader`, each opcode's request record as prep/final processors decode it (multi included), path/ACL/mode checks |
//! | `quorum_packets` | a quorum socket stream (leader side if it starts with FOLLOWERINFO/OBSERVERINFO, learner side otherwise) | `read_packet`, LearnerInfo, ACKEPOCH, REQUEST/PING/REVALIDATE payloads; LEADERINFO, NEWLEADER config, SNAP body, PROPOSAL/INFORM txn entries |
//! | `election` | an election connection stream | initial message (protocol version, sid, addresses), frames, notifications and their config |
//! | `txn_log` | a `log.N` file | `FileTxnSnapLog::restore` (iterator, checksums, torn tails, replay into a DataTree) |
//! | `snapshot` | a `snapshot.N` file | `FileTxnSnapLog::restore` (snapshot deserialize, seals, digest trailer) |
//! | `epoch_files` | currentEpoch / acceptedEpoch (and their .tmp / updatingEpoch) | `Epochs::load` |
//! | `zoo_cfg` | a zoo.cfg text | `QuorumPeerConfig` parsing, dynamic config / NEWLEADER config parsing |

use std::io;
use std::path::{Path, PathBuf};

use crate::jute::{self, InputArchive, Record};
use crate::proto::multi::MultiOperationRecord;
use crate::proto::op_code;
use crate::proto::proto::*;
use crate::proto::CreateMode;
use crate::server::data_tree::DataTree;
use crate::server::persistence::file_snap::{deserialize_snapshot_body, snapshot_bytes};
use crate::server::persistence::snap_stream::SnapStream;
use crate::server::persistence::FileTxnSnapLog;
use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::quorum_packet::{self as qp, PacketReader};
use crate::server::quorum::{learner, learner_handler};

/// Packets / frames read from one input at most: inputs are small, this only bounds
/// the work on a pathological one.
const MAX_ITEMS: usize = 4096;

/// Every target, by name, for the corpus replay and `bin/zkFuzz.sh list`.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("client_handshake", client_handshake),
    ("client_request", client_request),
    ("quorum_packets", quorum_packets),
    ("election", election),
    ("txn_log", txn_log),
    ("snapshot", snapshot),
    ("epoch_files", epoch_files),
    ("zoo_cfg", zoo_cfg),
];

/// Looks a target up by name.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

// ------------------------------------------------------------- client port --

/// Splits off one length-prefixed client frame as `reader_loop` does.
fn client_frame<'a>(data: &mut &'a [u8], max: usize) -> Option<&'a [u8]> {
    let len = i32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let n = crate::server::server_cnxn_factory::checked_frame_len(len, max)?;
    let frame = data.get(4..4usize.checked_add(n)?)?;
    *data = &data[4 + n..];
    Some(frame)
}

/// A client's first bytes: a four-letter word (the whole first int), or a ConnectRequest
/// frame followed by the first requests.
pub fn client_handshake(data: &[u8]) {
    let Some(first) = data.get(..4) else { return };
    let len = i32::from_be_bytes([first[0], first[1], first[2], first[3]]);
    if crate::server::command::four_letter_word(len).is_some() {
        return;
    }
    let mut rest = data;
    let Some(frame) = client_frame(&mut rest, jute::max_buffer()) else { return };
    if let Ok((req, _read_only)) = crate::server::zookeeper_server::decode_connect_request(frame) {
        let _ = req.passwd.as_deref().map(<[u8]>::len);
        // What follows a handshake is request frames.
        client_request(rest);
    }
}

/// Request frames after the handshake: header, then the opcode's record as the server's
/// processors decode it.
pub fn client_request(data: &[u8]) {
    let max = jute::max_buffer();
    let mut rest = data;
    for _ in 0..MAX_ITEMS {
        let Some(frame) = client_frame(&mut rest, max) else { return };
        let Ok((h, body)) = crate::server::zookeeper_server::decode_request_header(frame) else { return };
        request_body(h.r#type, body);
    }
}

fn check_path(path: &str) {
    let _ = crate::common::path_utils::validate_path(path);
    let _ = crate::common::path_utils::parent_of(path);
    let _ = DataTree::is_special_path(path);
}

fn check_create(path: &str, acl: &[crate::proto::data::ACL], flags: i32, ttl: i64) {
    check_path(path);
    if let Some(mode) = CreateMode::from_flag(flags) {
        if mode.is_ttl() {
            let _ = crate::common::ephemeral_type::ttl_to_ephemeral_owner(ttl);
        }
    }
    let _ = crate::server::prep_request_processor::PrepRequestProcessor::fixup_acl(&[], acl);
}

/// Reads on an empty tree (root, /zookeeper, quota nodes): path lookups with any string.
fn read_paths(paths: &[&str]) {
    thread_local! {
        static TREE: std::cell::RefCell<DataTree> = std::cell::RefCell::new(DataTree::new());
    }
    TREE.with(|t| {
        let mut t = t.borrow_mut();
        for p in paths {
            check_path(p);
            let _ = t.stat_node(p, None);
            let _ = t.get_data(p, None);
            let _ = t.get_children(p, None);
            let _ = t.all_children_number(p);
            let _ = t.max_prefix_with_quota(p);
        }
    });
}

fn request_body(op: i32, body: &[u8]) {
    match op {
        op_code::AUTH => {
            let _ = AuthPacket::from_bytes(body);
        }
        op_code::CREATE | op_code::CREATE2 | op_code::CREATE_CONTAINER => {
            if let Ok(r) = CreateRequest::from_bytes(body) {
                check_create(&r.path, &r.acl, r.flags, -1);
            }
        }
        op_code::CREATE_TTL => {
            if let Ok(r) = CreateTTLRequest::from_bytes(body) {
                check_create(&r.path, &r.acl, r.flags, r.ttl);
            }
        }
        op_code::DELETE_CONTAINER => check_path(&String::from_utf8_lossy(body)),
        op_code::DELETE => {
            if let Ok(r) = DeleteRequest::from_bytes(body) {
                check_path(&r.path);
            }
        }
        op_code::SET_DATA => {
            if let Ok(r) = SetDataRequest::from_bytes(body) {
                check_path(&r.path);
            }
        }
        op_code::RECONFIG => {
            if let Ok(r) = ReconfigRequest::from_bytes(body) {
                let _ = r;
            }
        }
        op_code::SET_ACL => {
            if let Ok(r) = SetACLRequest::from_bytes(body) {
                check_path(&r.path);
                let _ = crate::server::prep_request_processor::PrepRequestProcessor::fixup_acl(&[], &r.acl);
            }
        }
        op_code::CHECK => {
            if let Ok(r) = CheckVersionRequest::from_bytes(body) {
                check_path(&r.path);
            }
        }
        op_code::MULTI | op_code::MULTI_READ => {
            if let Ok(m) = MultiOperationRecord::from_bytes(body) {
                for op in &m.ops {
                    match op {
                        crate::proto::multi::Op::Create { req, .. } => check_create(&req.path, &req.acl, req.flags, req.ttl),
                        other => read_paths(&[other.path()]),
                    }
                }
            }
        }
        op_code::CREATE_SESSION => {
            let _ = InputArchive::new(body).read_int();
        }
        op_code::SYNC => {
            if let Ok(r) = SyncRequest::from_bytes(body) {
                check_path(&r.path);
            }
        }
        op_code::EXISTS => {
            if let Ok(r) = ExistsRequest::from_bytes(body) {
                read_paths(&[&r.path]);
            }
        }
        op_code::GET_DATA => {
            if let Ok(r) = GetDataRequest::from_bytes(body) {
                read_paths(&[&r.path]);
            }
        }
        op_code::SET_WATCHES => {
            if let Ok(r) = SetWatches::from_bytes(body) {
                for p in r.data_watches.iter().chain(&r.exist_watches).chain(&r.child_watches) {
                    check_path(p);
                }
            }
        }
        op_code::SET_WATCHES2 => {
            if let Ok(r) = SetWatches2::from_bytes(body) {
                for p in r.data_watches.iter().chain(&r.persistent_recursive_watches) {
                    check_path(p);
                }
            }
        }
        op_code::ADD_WATCH => {
            if let Ok(r) = AddWatchRequest::from_bytes(body) {
                let _ = crate::server::watch::watcher_mode::WatcherMode::from_zoo_def(r.mode);
                check_path(&r.path);
            }
        }
        op_code::GET_ACL => {
            if let Ok(r) = GetACLRequest::from_bytes(body) {
                read_paths(&[&r.path]);
            }
        }
        op_code::GET_CHILDREN => {
            if let Ok(r) = GetChildrenRequest::from_bytes(body) {
                read_paths(&[&r.path]);
            }
        }
        op_code::GET_ALL_CHILDREN_NUMBER => {
            if let Ok(r) = GetAllChildrenNumberRequest::from_bytes(body) {
                read_paths(&[&r.path]);
            }
        }
        op_code::GET_CHILDREN2 => {
            if let Ok(r) = GetChildren2Request::from_bytes(body) {
                read_paths(&[&r.path]);
            }
        }
        op_code::CHECK_WATCHES => {
            if let Ok(r) = CheckWatchesRequest::from_bytes(body) {
                check_path(&r.path);
            }
        }
        op_code::REMOVE_WATCHES => {
            if let Ok(r) = RemoveWatchesRequest::from_bytes(body) {
                check_path(&r.path);
            }
        }
        op_code::GET_EPHEMERALS => {
            if let Ok(r) = GetEphemeralsRequest::from_bytes(body) {
                check_path(&r.prefix_path);
            }
        }
        _ => {}
    }
}

// ------------------------------------------------------------------ quorum --

/// A quorum socket stream. Starting with FOLLOWERINFO / OBSERVERINFO it is what a
/// leader's LearnerHandler reads; otherwise what a learner reads from its leader.
pub fn quorum_packets(data: &[u8]) {
    let mut reader = PacketReader::new(data);
    let Ok(first) = reader.read_packet() else { return };
    if first.r#type == qp::FOLLOWERINFO || first.r#type == qp::OBSERVERINFO {
        leader_side(first, &mut reader);
    } else {
        learner_side(first, &mut reader);
    }
}

fn leader_side(first: crate::proto::quorum::QuorumPacket, reader: &mut PacketReader<&[u8]>) {
    if let Some(d) = first.data.as_deref() {
        let _ = learner_handler::parse_learner_info(d);
        // Learners of 3.8 write a LearnerInfo record; decode it as one too.
        let _ = crate::proto::quorum::LearnerInfo::from_bytes(d);
    }
    for _ in 0..MAX_ITEMS {
        let Ok(p) = reader.read_packet() else { return };
        let _ = qp::packet_to_string(&p);
        let d = p.data.as_deref().unwrap_or(&[]);
        match p.r#type {
            qp::ACKEPOCH => {
                let _ = learner_handler::parse_ack_epoch(p.data.as_deref());
            }
            qp::PING => {
                let _ = learner_handler::ping_sessions(d).count();
            }
            qp::REVALIDATE => {
                let _ = learner_handler::parse_revalidate(d);
            }
            qp::REQUEST => {
                if let Ok((_, _, t, body)) = learner_handler::parse_request_packet(d) {
                    request_body(t, body);
                }
            }
            _ => {}
        }
    }
}

fn learner_side(first: crate::proto::quorum::QuorumPacket, reader: &mut PacketReader<&[u8]>) {
    // LEADERINFO carries the leader's protocol version; NEWLEADER (pre-1.0 leaders) the config.
    if first.r#type == qp::LEADERINFO {
        let _ = first.data.as_deref().map(|d| InputArchive::new(d).read_int());
    }
    let mut last_queued = 0i64;
    let mut follower_last = 0i64;
    for _ in 0..MAX_ITEMS {
        let Ok(p) = reader.read_packet() else { return };
        let d = p.data.as_deref().unwrap_or(&[]);
        match p.r#type {
            qp::SNAP => {
                let mut stream = SnapStream::for_stream(&mut *reader);
                if deserialize_snapshot_body(&mut stream, 0).is_err() {
                    return;
                }
                let Ok(_signature) = stream.decode(|a| a.read_string()) else { return };
                let (_, rest) = stream.into_remainder();
                reader.unread(rest);
            }
            qp::PROPOSAL => {
                if let Ok(r) = learner::request_from_txn_bytes(d) {
                    let zxid = r.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1);
                    if let Ok(z) = learner::enforce_continuous_proposal(last_queued, zxid) {
                        last_queued = z;
                    }
                    // The follower's loop after UPTODATE.
                    let _ = crate::server::quorum::follower::proposal_in_order(follower_last, zxid);
                    follower_last = zxid;
                }
            }
            qp::INFORM | qp::INFORMANDACTIVATE => {
                if let Ok(r) = learner::request_from_txn_bytes(learner::inform_txn_bytes(p.r#type, d)) {
                    if p.r#type == qp::INFORM {
                        let zxid = r.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1);
                        if let Ok(z) = learner::enforce_continuous_proposal(last_queued, zxid) {
                            last_queued = z;
                        }
                    }
                }
            }
            qp::NEWLEADER | qp::COMMITANDACTIVATE => {
                // The config the leader sends with NEWLEADER (and with COMMITANDACTIVATE).
                let text = String::from_utf8_lossy(d);
                let _ = QuorumVerifier::from_config_string(&text, false);
                let _ = QuorumVerifier::from_config_string(&text, true);
            }
            qp::REVALIDATE => {
                let _ = learner::parse_revalidate_answer(d);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- election --

/// An election connection: the initial message (a bare sid, or protocol version, sid
/// and address list), then length-prefixed notification frames.
pub fn election(data: &[u8]) {
    use crate::server::quorum::fast_leader_election::notification;
    let mut r: &[u8] = data;
    if crate::server::quorum::quorum_cnx_manager::read_initial(&mut r).is_err() {
        return;
    }
    for _ in 0..MAX_ITEMS {
        let Ok(frame) = crate::server::quorum::quorum_cnx_manager::recv_worker::read_frame(&mut r) else { return };
        if let Ok(n) = notification::decode(&frame) {
            let _ = n.server_state();
            if let Some(cfg) = &n.config {
                let text = String::from_utf8_lossy(cfg);
                let _ = QuorumVerifier::from_config_string(&text, false);
            }
        }
    }
}

// ------------------------------------------------------------------- files --

/// Where the file targets write: `ZK_FUZZ_TMPDIR`, else /dev/shm when there is one (a
/// disk-backed temp dir makes every input wait on the journal: ~50 ms per directory
/// removal on a busy ext4), else the system temp dir.
fn scratch_base() -> PathBuf {
    if let Some(d) = std::env::var_os("ZK_FUZZ_TMPDIR") {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// A scratch directory of this process, emptied for each input.
fn scratch(name: &str) -> io::Result<PathBuf> {
    let dir = scratch_base().join(format!("zk-fuzz-{}-{name}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Removes this process's scratch directories (the corpus replay calls it at the end).
pub fn cleanup() {
    let prefix = format!("zk-fuzz-{}-", std::process::id());
    if let Ok(rd) = std::fs::read_dir(scratch_base()) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn restore_dir(dir: &Path) {
    if let Ok(snap_log) = FileTxnSnapLog::new(dir, dir) {
        if let Ok(r) = snap_log.restore() {
            let _ = r.tree.digest();
        }
    }
}

/// The bytes as `version-2/log.1` next to an empty `snapshot.0`, loaded as at start-up.
pub fn txn_log(data: &[u8]) {
    let Ok(dir) = scratch("txnlog") else { return };
    let v2 = dir.join(crate::server::persistence::util::VERSION_DIR);
    let empty = snapshot_bytes(&DataTree::new(), &Default::default(), 0, true);
    if std::fs::create_dir_all(&v2).is_err()
        || std::fs::write(v2.join("snapshot.0"), empty).is_err()
        || std::fs::write(v2.join("log.1"), data).is_err()
    {
        return;
    }
    restore_dir(&dir);
}

/// The bytes as `version-2/snapshot.1`, loaded as at start-up.
pub fn snapshot(data: &[u8]) {
    let Ok(dir) = scratch("snapshot") else { return };
    let v2 = dir.join(crate::server::persistence::util::VERSION_DIR);
    if std::fs::create_dir_all(&v2).is_err() || std::fs::write(v2.join("snapshot.1"), data).is_err() {
        return;
    }
    restore_dir(&dir);
}

/// Epoch files: the input is `<lastZxid as 8 bytes><flags byte>` then the contents of
/// currentEpoch, acceptedEpoch, currentEpoch.tmp and updatingEpoch separated by `\0`
/// (a file whose flag bit is clear is not written).
pub fn epoch_files(data: &[u8]) {
    use crate::server::quorum::quorum_peer::epochs::{Epochs, UPDATING_EPOCH_FILENAME};
    let (Some(z), Some(&flags)) = (data.get(..8), data.get(8)) else { return };
    let mut zb = [0u8; 8];
    zb.copy_from_slice(z);
    let last_zxid = i64::from_be_bytes(zb);
    let Ok(dir) = scratch("epochs") else { return };
    let names = ["currentEpoch", "acceptedEpoch", "currentEpoch.tmp", UPDATING_EPOCH_FILENAME];
    let mut parts = data.get(9..).unwrap_or(&[]).split(|&b| b == 0);
    for (i, name) in names.iter().enumerate() {
        let content = parts.next().unwrap_or(&[]);
        if flags & (1 << i) != 0 && std::fs::write(dir.join(name), content).is_err() {
            return;
        }
    }
    let _ = Epochs::load(&dir, last_zxid);
}

/// A zoo.cfg text (static config; the same text as a dynamic config / NEWLEADER config).
pub fn zoo_cfg(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::server::quorum::quorum_peer_config::QuorumPeerConfig::parse_text(&text);
    let _ = QuorumVerifier::from_config_string(&text, true);
}
