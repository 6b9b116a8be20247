//! `FileTxnSnapLog`: the txn log directory and the snapshot directory together, and
//! `restore` — newest valid snapshot, then the txns logged after it.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::proto::op_code;
use crate::proto::txn::TxnHeader;
use crate::server::data_tree::DataTree;
use crate::server::persistence::file_snap::FileSnap;
use crate::server::persistence::file_txn_log::{FileTxnLog, TornTail};
use crate::server::persistence::util::{self, VERSION_DIR};
use crate::server::txn_record::TxnRecord;
use crate::system_properties;


#[derive(Debug, Clone)]
pub struct FileTxnSnapLog {
    /// `<dataLogDir>/version-2`: the txn logs.
    pub data_dir: PathBuf,
    /// `<dataDir>/version-2`: the snapshots.
    pub snap_dir: PathBuf,
}

/// What `restore` found.
pub struct Restored {
    pub tree: DataTree,
    pub sessions: HashMap<i64, i32>,
    /// The snapshot it started from, if any.
    pub snapshot: Option<PathBuf>,
    /// Txns replayed from the logs.
    pub replayed: u64,
    /// The last `commitLogCount` replayed txns in their wire form, for the
    /// committedLog of a quorum peer (`ZKDatabase.addCommittedProposal` during replay).
    pub committed: Vec<crate::server::zk_database::CommittedProposal>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl FileTxnSnapLog {
    /// Checks (and, with `zookeeper.datadir.autocreate`, creates) both version-2
    /// directories, as upstream's constructor does.
    pub fn new(data_log_dir: &Path, data_dir: &Path) -> io::Result<FileTxnSnapLog> {
        let autocreate = system_properties::get_or("zookeeper.datadir.autocreate", "true") == "true";
        let data = data_log_dir.join(VERSION_DIR);
        let snap = data_dir.join(VERSION_DIR);
        for d in [&data, &snap] {
            if !d.exists() {
                if !autocreate {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "Missing data directory {}, automatic data directory creation is disabled (zookeeper.datadir.autocreate is false). Please create this directory manually.",
                            d.display()
                        ),
                    ));
                }
                std::fs::create_dir_all(d).map_err(|e| io::Error::new(e.kind(), format!("Unable to create data directory {}: {e}", d.display())))?;
            }
            let md = std::fs::metadata(d)?;
            if md.permissions().readonly() {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("Cannot write to data directory {}", d.display())));
            }
        }
        Ok(FileTxnSnapLog { data_dir: data, snap_dir: snap })
    }

    pub fn txn_log(&self) -> FileTxnLog {
        FileTxnLog::new(self.data_dir.clone())
    }

    pub fn snap(&self) -> FileSnap {
        FileSnap::new(self.snap_dir.clone())
    }

    /// `restore` + `fastForwardFromEdits`. A torn tail of the newest log (a record cut
    /// short by a crash) is truncated away; anything else unreadable in a log that has
    /// valid data after it stops start-up with the file and offset.
    pub fn restore(&self) -> io::Result<Restored> {
        let loaded = self.snap().deserialize()?;
        let (mut tree, mut sessions, snap_zxid, snapshot, mut pending_digest) = match loaded {
            Some(l) => {
                if l.digest_checked == Some(false) {
                    log::error!("Digest of the tree does not match the one in snapshot {}", l.file.display());
                }
                log::info!("Snapshot loaded in {} (highest zxid 0x{:x})", l.file.display(), l.zxid);
                (l.tree, l.sessions, l.zxid, Some(l.file), l.pending_digest)
            }
            None => {
                let last = self.txn_log().get_last_logged_zxid();
                let trust_empty = system_properties::get_bool("zookeeper.snapshot.trust.empty");
                if last > 0 && !trust_empty {
                    return Err(invalid(format!(
                        "No snapshot found, but there are log entries. Something is broken! (logs in {} reach zxid 0x{last:x}; set zookeeper.snapshot.trust.empty=true to start from the logs alone)",
                        self.data_dir.display()
                    )));
                }
                log::info!("No snapshot found in {}", self.snap_dir.display());
                (DataTree::new(), HashMap::new(), -1, None, None)
            }
        };
        tree.digest_fuzzy = pending_digest.is_some();
        let mut iter = self.txn_log().read(snap_zxid.saturating_add(1))?;
        let mut highest = tree.last_processed_zxid;
        let mut replayed = 0u64;
        let keep = crate::server::zk_database::commit_log_count();
        let mut recent: std::collections::VecDeque<crate::server::persistence::LogEntry> = std::collections::VecDeque::new();
        for entry in iter.by_ref() {
            let e = entry?;
            let hdr = &e.header;
            if hdr.zxid <= snap_zxid {
                continue;
            }
            if hdr.zxid < highest && highest != 0 {
                log::error!("0x{highest:x}(highestZxid) > 0x{:x}(next log) for type {}", hdr.zxid, hdr.r#type);
            } else {
                highest = hdr.zxid;
            }
            process_transaction(hdr, e.txn.as_ref(), &mut tree, &mut sessions);
            replayed += 1;
            if let Some(d) = pending_digest {
                if d.zxid == hdr.zxid {
                    if !d.matches(&tree) {
                        log::error!("Digest of the tree at zxid 0x{:x} does not match the snapshot's", d.zxid);
                    }
                    pending_digest = None;
                    tree.digest_fuzzy = false;
                }
            }

            if recent.len() >= keep {
                recent.pop_front();
            }
            recent.push_back(e);
        }
        tree.digest_fuzzy = false;
        self.handle_torn_tails(iter.torn_tails())?;
        if highest > tree.last_processed_zxid {
            tree.last_processed_zxid = highest;
        }
        if replayed > 0 {
            log::info!("{replayed} txns loaded from the txn logs up to zxid 0x{:x}", tree.last_processed_zxid);
        }
        let committed = recent
            .into_iter()
            .map(|e| crate::server::zk_database::CommittedProposal {
                zxid: e.header.zxid,
                data: std::sync::Arc::from(util::marshall_txn_entry(&e.header, e.txn.as_ref(), e.digest.as_ref())),
            })
            .collect();
        Ok(Restored { tree, sessions, snapshot, replayed, committed })
    }

    /// A log whose readable part ends early: harmless when only zeros follow
    /// (preallocation); truncated when it is the newest log (a crash mid-write: that
    /// record was never acknowledged); refused otherwise.
    fn handle_torn_tails(&self, tails: &[TornTail]) -> io::Result<()> {
        let logs = util::sort_data_dir(util::list_files(&self.data_dir)?.into_iter().filter(|p| {
            p.file_name().map(|n| util::is_log_file_name(&n.to_string_lossy())).unwrap_or(false)
        }).collect(), util::LOG_FILE_PREFIX, true);
        let newest = logs.last().cloned();
        for t in tails {
            if t.all_zero {
                continue;
            }
            // A damaged record with a valid one after it is not a torn write (a crash
            // leaves nothing valid behind the record it cut): cutting there would drop
            // acknowledged txns, so refuse like for a corrupt older log.
            if let Some(next) = valid_record_after(&t.file, t.offset)? {
                return Err(invalid(format!(
                    "Corrupt txn log {} at offset {}: {}, but a valid record follows at offset {next}; refusing to start",
                    t.file.display(),
                    t.offset,
                    t.reason
                )));
            }
            if Some(&t.file) == newest.as_ref() {
                log::warn!(
                    "Truncating torn tail of txn log {} at offset {} ({} bytes: {})",
                    t.file.display(),
                    t.offset,
                    t.trailing_bytes,
                    t.reason
                );
                let f = std::fs::OpenOptions::new().write(true).open(&t.file)?;
                f.set_len(t.offset)?;
                f.sync_all()?;
            } else {
                return Err(invalid(format!(
                    "Corrupt txn log {} at offset {}: {} with {} bytes after it, and newer logs follow; refusing to start",
                    t.file.display(),
                    t.offset,
                    t.reason,
                    t.trailing_bytes
                )));
            }
        }
        Ok(())
    }
}

/// The offset of the first complete record (CRC, length, payload, end-of-record byte
/// all consistent) that starts after `offset` in `file`, if any.
fn valid_record_after(file: &Path, offset: u64) -> io::Result<Option<u64>> {
    let bytes = std::fs::read(file)?;
    let start = (offset as usize).min(bytes.len());
    // Preallocated zeros hold no records: scan up to the last non-zero byte only.
    let end = bytes.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1).max(start);
    let data = &bytes[..end];
    for p in start + 1..end {
        if p + 13 > end {
            break;
        }
        let len = i32::from_be_bytes([data[p + 8], data[p + 9], data[p + 10], data[p + 11]]);
        if len <= 0 || p + 12 + len as usize >= end {
            continue;
        }
        let body = &data[p + 12..p + 12 + len as usize];
        if data[p + 12 + len as usize] != util::EOR {
            continue;
        }
        let mut crc_bytes = [0u8; 8];
        crc_bytes.copy_from_slice(&data[p..p + 8]);
        let crc = i64::from_be_bytes(crc_bytes);
        if crc == util::adler32(body) {
            return Ok(Some(p as u64));
        }
    }
    Ok(None)
}

/// `processTransaction`: session bookkeeping, then the tree.
pub fn process_transaction(hdr: &TxnHeader, txn: Option<&TxnRecord>, tree: &mut DataTree, sessions: &mut HashMap<i64, i32>) {
    match hdr.r#type {
        op_code::CREATE_SESSION => {
            if let Some(TxnRecord::CreateSession(t)) = txn {
                sessions.insert(hdr.client_id, t.time_out);
            }
        }
        op_code::CLOSE_SESSION => {
            sessions.remove(&hdr.client_id);
        }
        _ => {}
    }
    let rc = tree.process_txn(hdr, txn);
    if rc.err != 0 {
        log::debug!("Ignoring processTxn failure hdr: {} : error: {}", hdr.r#type, rc.err);
    }
}
