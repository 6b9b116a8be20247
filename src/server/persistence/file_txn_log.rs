//! `FileTxnLog`: the write-ahead log.
//!
//! File `log.<hex zxid of its first txn>`: a 16-byte FileHeader ("ZKLG", 2, dbid), then
//! records `long adler32(entry) | int len | entry | 'B'`, then preallocated zeros.
//! Reading follows `FileTxnIterator` exactly: a zero length, an end of file or a missing
//! `'B'` ends that file (a torn tail, reported in [`FileTxnIterator::torn_tails`]) and
//! the next newer file is read; a checksum mismatch is an error naming file and offset.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::jute::{self, OutputArchive, Record};
use crate::proto::op_code;
use crate::proto::quorum::FileHeader;
use crate::proto::txn::{TxnDigest, TxnHeader};
use crate::server::txn_record::TxnRecord;
use crate::system_properties;

use super::util::{self, FilePadding, FILE_FORMAT_VERSION, LOG_FILE_PREFIX};

/// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG" as a big-endian int.
pub const TXNLOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// Size of the file header.
pub const FILE_HEADER_LEN: u64 = 16;
/// Java's BufferedOutputStream default size: records reach the file in such chunks
/// between commits.
const WRITE_BUFFER: usize = 8192;
/// How far past a file's last record [`TornTail::all_zero`] looks.
const ZERO_SCAN_LIMIT: u64 = 1024 * 1024;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// The log file being appended to.
struct CurrentLog {
    path: PathBuf,
    file: File,
    /// Bytes handed to the OS so far (upstream: the channel position).
    flushed: u64,
    buf: Vec<u8>,
}

impl CurrentLog {
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.flushed += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// The txn log writer (`FileTxnLog`). Not thread-safe by itself: the server wraps it in
/// a lock, as upstream's methods are `synchronized`.
pub struct FileTxnLog {
    log_dir: PathBuf,
    dbid: i64,
    last_zxid_seen: i64,
    current: Option<CurrentLog>,
    /// Files written since the last commit (upstream `streamsToFlush`); the newest is
    /// the current one.
    to_flush: Vec<File>,
    padding: FilePadding,
    prealloc_size: i64,
    force_sync: bool,
    fsync_warning_threshold_ms: u64,
    txn_log_size_limit: i64,
    prev_logs_running_total: u64,
    sync_elapsed_ms: i64,
    fsync_threshold_exceed_count: u64,
}

/// `zookeeper.fsync.warningthresholdms`, else `fsync.warningthresholdms`, else 1000.
fn fsync_warning_threshold_from_properties() -> u64 {
    system_properties::get_i64("zookeeper.fsync.warningthresholdms")
        .or_else(|| system_properties::get_i64("fsync.warningthresholdms"))
        .unwrap_or(1000)
        .max(0) as u64
}

impl FileTxnLog {
    /// A log writer over `log_dir` (the `version-2` directory), configured from the
    /// system properties `zookeeper.preAllocSize`, `zookeeper.forceSync`,
    /// `zookeeper.fsync.warningthresholdms` and `zookeeper.txnLogSizeLimitInKb`.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        let limit_kb = system_properties::get_i64("zookeeper.txnLogSizeLimitInKb").unwrap_or(-1);
        let prealloc = util::prealloc_size_from_properties();
        FileTxnLog {
            log_dir: log_dir.into(),
            dbid: 0,
            last_zxid_seen: 0,
            current: None,
            to_flush: Vec::new(),
            padding: FilePadding::new(prealloc),
            prealloc_size: prealloc,
            force_sync: system_properties::get_or("zookeeper.forceSync", "yes") != "no",
            fsync_warning_threshold_ms: fsync_warning_threshold_from_properties(),
            txn_log_size_limit: if limit_kb > 0 { limit_kb * 1024 } else { -1 },
            prev_logs_running_total: 0,
            sync_elapsed_ms: -1,
            fsync_threshold_exceed_count: 0,
        }
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Preallocation step in bytes (takes effect for the next padding step).
    pub fn set_prealloc_size(&mut self, bytes: i64) {
        self.prealloc_size = bytes;
        let cur = self.padding.current_size();
        self.padding = FilePadding::new(bytes);
        self.padding.set_current_size(cur);
    }

    pub fn set_force_sync(&mut self, force: bool) {
        self.force_sync = force;
    }

    pub fn is_force_sync(&self) -> bool {
        self.force_sync
    }

    /// `zookeeper.txnLogSizeLimitInKb` in bytes; ≤ 0 = no limit.
    pub fn set_txn_log_size_limit(&mut self, bytes: i64) {
        self.txn_log_size_limit = bytes;
    }

    /// Written into the header of new files (the server always uses 0).
    pub fn set_dbid(&mut self, dbid: i64) {
        self.dbid = dbid;
    }

    /// Milliseconds the last fsync took, -1 before any.
    pub fn txn_log_sync_elapsed_time(&self) -> i64 {
        self.sync_elapsed_ms
    }

    /// How many fsyncs took longer than the warning threshold (ServerStats counter).
    pub fn fsync_threshold_exceed_count(&self) -> u64 {
        self.fsync_threshold_exceed_count
    }

    /// The file being appended to, if any.
    pub fn current_log_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// `getCurrentLogSize`: length of the current file (preallocation included).
    pub fn current_log_size(&self) -> u64 {
        // Bytes of records written, not the preallocated file length (and no stat() per
        // txn: the sync processor asks on every append).
        self.current.as_ref().map(|c| c.flushed + c.buf.len() as u64).unwrap_or(0)
    }

    pub fn set_total_log_size(&mut self, size: u64) {
        self.prev_logs_running_total = size;
    }

    /// `getTotalLogSize`: rolled files plus the current one.
    pub fn total_log_size(&self) -> u64 {
        self.prev_logs_running_total + self.current_log_size()
    }

    /// `append`: writes one record; opens `log.<zxid>` first when no file is open (at
    /// start and after [`roll_log`](Self::roll_log)). Always returns true (upstream
    /// returns false only for a null header, which Rust cannot pass).
    pub fn append(&mut self, hdr: &TxnHeader, txn: Option<&TxnRecord>, digest: Option<&TxnDigest>) -> io::Result<bool> {
        let entry = util::marshall_txn_entry(hdr, txn, digest);
        self.append_entry(hdr.zxid, hdr.r#type, &entry)
    }

    /// `append` of an entry already in its marshalled form (TxnHeader ‖ body ‖
    /// [TxnDigest]), as a quorum server receives or builds it for a PROPOSAL.
    pub fn append_entry(&mut self, zxid: i64, txn_type: i32, entry: &[u8]) -> io::Result<bool> {
        if zxid <= self.last_zxid_seen {
            log::warn!(
                "Current zxid {} is <= {} for {}",
                zxid,
                self.last_zxid_seen,
                op_code::name(txn_type)
            );
        } else {
            self.last_zxid_seen = zxid;
        }
        if self.current.is_none() {
            let name = util::make_log_name(zxid);
            log::info!("Creating new log file: {name}");
            let path = self.log_dir.join(&name);
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display())))?;
            let mut cur = CurrentLog {
                path,
                file,
                flushed: 0,
                buf: Vec::with_capacity(WRITE_BUFFER),
            };
            let mut oa = OutputArchive::new();
            FileHeader {
                magic: TXNLOG_MAGIC,
                version: FILE_FORMAT_VERSION,
                dbid: self.dbid,
            }
            .serialize(&mut oa);
            cur.buf.extend_from_slice(oa.as_slice());
            // The header reaches the file before any padding.
            cur.flush()?;
            self.padding.set_current_size(cur.flushed as i64);
            self.to_flush.push(cur.file.try_clone()?);
            self.current = Some(cur);
        }
        let Some(cur) = self.current.as_mut() else {
            return Err(io::Error::other("no log file open"));
        };
        // Padding looks at everything written so far, buffered bytes included, so the
        // zeros always lie ahead of the data.
        let position = (cur.flushed + cur.buf.len() as u64) as i64;
        self.padding.pad_file(&cur.file, position)?;
        if entry.is_empty() {
            return Err(io::Error::other("Faulty serialization for header and txn"));
        }
        let mut oa = OutputArchive::with_buffer(std::mem::take(&mut cur.buf));
        oa.write_long(util::adler32(entry));
        oa.write_buffer(Some(entry));
        oa.write_byte(util::EOR);
        cur.buf = oa.into_inner();
        if cur.buf.len() >= WRITE_BUFFER {
            cur.flush()?;
        }
        Ok(true)
    }

    /// `rollLog`: flush and forget the current file; the next append starts a new one.
    /// The old file is still fsynced by the next [`commit`](Self::commit).
    pub fn roll_log(&mut self) -> io::Result<()> {
        if let Some(mut cur) = self.current.take() {
            cur.flush()?;
            self.prev_logs_running_total += cur.flushed;
        }
        Ok(())
    }

    /// `commit`: flush, then fsync (fdatasync) every file written since the last commit
    /// unless `zookeeper.forceSync=no`; keeps only the newest file open; rolls the log
    /// when it grew past `zookeeper.txnLogSizeLimitInKb`.
    pub fn commit(&mut self) -> io::Result<()> {
        if let Some(cur) = self.current.as_mut() {
            cur.flush()?;
        }
        for f in &self.to_flush {
            if self.force_sync {
                let start = Instant::now();
                f.sync_data()?;
                let ms = start.elapsed().as_millis() as u64;
                self.sync_elapsed_ms = ms as i64;
                if ms > self.fsync_warning_threshold_ms {
                    self.fsync_threshold_exceed_count += 1;
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    let thread = std::thread::current();
                    log::warn!(
                        "fsync-ing the write ahead log in {} took {}ms which will adversely effect operation latency.File size is {} bytes. See the ZooKeeper troubleshooting guide",
                        thread.name().unwrap_or("unnamed"),
                        ms,
                        size
                    );
                }
            }
        }
        while self.to_flush.len() > 1 {
            self.to_flush.remove(0);
        }
        if self.current.is_none() {
            // Rolled since the last commit: nothing is open any more.
            self.to_flush.clear();
        }
        if self.txn_log_size_limit > 0 && self.current_log_size() as i64 > self.txn_log_size_limit {
            log::debug!("Log size limit reached: {}", self.current_log_size());
            self.roll_log()?;
        }
        Ok(())
    }

    /// `close`: flush what is buffered (no fsync).
    pub fn close(&mut self) -> io::Result<()> {
        if let Some(cur) = self.current.as_mut() {
            cur.flush()?;
        }
        Ok(())
    }

    /// `read(zxid)`: iterate from the first txn with zxid ≥ `zxid` (fast-forward).
    pub fn read(&self, zxid: i64) -> io::Result<FileTxnIterator> {
        FileTxnIterator::new(&self.log_dir, zxid, true)
    }

    /// `read(zxid, fastForward)`: without fast-forward the iterator starts at the
    /// first txn of the newest file whose start zxid ≤ `zxid`.
    pub fn read_with(&self, zxid: i64, fast_forward: bool) -> io::Result<FileTxnIterator> {
        FileTxnIterator::new(&self.log_dir, zxid, fast_forward)
    }

    /// `getLastLoggedZxid`: the zxid of the last readable txn of the newest log file
    /// (-1 when there is no log). Read errors are logged, as upstream.
    pub fn get_last_logged_zxid(&self) -> i64 {
        last_logged_zxid(&self.log_dir)
    }

    /// `truncate(zxid)`: keep everything up to and including the first txn with zxid ≥
    /// `zxid`, cut the file right after it, delete all newer log files.
    pub fn truncate(&mut self, zxid: i64) -> io::Result<bool> {
        truncate_logs(&self.log_dir, zxid)
    }

    /// `getDbId`: the dbid in the header of the oldest log the iterator would open.
    pub fn get_db_id(&self) -> io::Result<i64> {
        let itr = FileTxnIterator::new(&self.log_dir, 0, true)?;
        let Some(f) = itr
            .current_file()
            .map(Path::to_path_buf)
            .or_else(|| itr.first_file.clone())
        else {
            return Err(invalid("Unsupported Format.".into()));
        };
        let mut b = [0u8; 16];
        File::open(&f)?
            .read_exact(&mut b)
            .map_err(|e| invalid(format!("Unsupported Format. ({}: {e})", f.display())))?;
        Ok(i64::from_be_bytes([
            b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15],
        ]))
    }
}

impl Drop for FileTxnLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// `getLogFiles(files, snapshotZxid)`: sorted ascending, from the newest log that
/// starts at or before `snapshot_zxid` on.
pub fn get_log_files(files: Vec<PathBuf>, snapshot_zxid: i64) -> Vec<PathBuf> {
    let files = util::sort_data_dir(files, LOG_FILE_PREFIX, true);
    let mut log_zxid = 0;
    for f in &files {
        let z = util::zxid_of(f, LOG_FILE_PREFIX);
        if z > snapshot_zxid {
            break;
        }
        if z > log_zxid {
            log_zxid = z;
        }
    }
    files
        .into_iter()
        .filter(|f| util::zxid_of(f, LOG_FILE_PREFIX) >= log_zxid)
        .collect()
}

fn log_files_in(dir: &Path) -> io::Result<Vec<PathBuf>> {
    // Upstream lists everything; only `log.*` names carry a zxid ≥ 0 and so survive
    // get_log_files (its filter drops the -1 of other names).
    Ok(util::list_files(dir)?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .map(|n| util::is_log_file_name(&n.to_string_lossy()))
                .unwrap_or(false)
        })
        .collect())
}

/// See [`FileTxnLog::get_last_logged_zxid`].
pub fn last_logged_zxid(log_dir: &Path) -> i64 {
    let files = match log_files_in(log_dir) {
        Ok(f) => get_log_files(f, 0),
        Err(e) => {
            log::warn!("Unexpected exception {e}");
            return -1;
        }
    };
    let max_log = files.last().map(|f| util::zxid_of(f, LOG_FILE_PREFIX)).unwrap_or(-1);
    let mut zxid = max_log;
    match FileTxnIterator::new(log_dir, max_log, true) {
        Ok(itr) => {
            for e in itr {
                match e {
                    Ok(e) => zxid = e.header.zxid,
                    Err(e) => {
                        log::warn!("Unexpected exception {e}");
                        break;
                    }
                }
            }
        }
        Err(e) => log::warn!("Unexpected exception {e}"),
    }
    zxid
}

/// See [`FileTxnLog::truncate`].
pub fn truncate_logs(log_dir: &Path, zxid: i64) -> io::Result<bool> {
    let mut itr = FileTxnIterator::new(log_dir, zxid, true)?;
    let (file, pos) = match (&itr.current, &itr.entry) {
        (Some(_), Some(Ok(e))) => (e.file.clone(), e.end_offset),
        (_, Some(Err(e))) => return Err(io::Error::new(e.kind(), e.to_string())),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "No log files found to truncate! This could happen if you still have snapshots from an old setup or log files were deleted accidentally or dataLogDir was changed in zoo.cfg.",
            ))
        }
    };
    OpenOptions::new().write(true).open(&file)?.set_len(pos)?;
    while let Some(f) = itr.stored_files.pop() {
        if let Err(e) = std::fs::remove_file(&f) {
            log::warn!("Unable to truncate {}: {e}", f.display());
        }
    }
    itr.current = None;
    Ok(true)
}

// ------------------------------------------------------------- reading --

/// One txn read from a log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub header: TxnHeader,
    pub txn: Option<TxnRecord>,
    pub digest: Option<TxnDigest>,
    /// The log file it was read from.
    pub file: PathBuf,
    /// Offset of the record (its checksum) in that file.
    pub offset: u64,
    /// Offset just after the record's `'B'`: where a truncation keeping it cuts.
    pub end_offset: u64,
}

/// Where and why a log file's readable content ended before its physical end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    /// Offset of the first byte that is not part of a complete record.
    pub offset: u64,
    /// Bytes in the file from `offset` on.
    pub trailing_bytes: u64,
    /// What was found there: "zero length" (preallocation), "end of file" (a record cut
    /// short) or "missing end-of-record byte".
    pub reason: &'static str,
    /// True when only zero bytes follow `offset` (a clean, preallocated end); checked
    /// over at most the first MiB from `offset`.
    pub all_zero: bool,
}

struct OpenLog {
    path: PathBuf,
    reader: BufReader<File>,
    pos: u64,
    len: u64,
}

enum Step {
    Record(LogEntry),
    End(&'static str, u64),
}

impl OpenLog {
    fn open(path: &Path) -> io::Result<OpenLog> {
        let file =
            File::open(path).map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
        let len = file.metadata()?.len();
        let mut log = OpenLog {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(64 * 1024, file),
            pos: 0,
            len,
        };
        let mut h = [0u8; 16];
        match log.read_fully(&mut h)? {
            true => {}
            // Upstream: an EOFException from the header read escapes the iterator's
            // constructor as an IOException.
            false => {
                return Err(invalid(format!(
                    "Transaction log: {} is too short for a file header",
                    path.display()
                )))
            }
        }
        let magic = i32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        if magic != TXNLOG_MAGIC {
            return Err(invalid(format!(
                "Transaction log: {} has invalid magic number {magic} != {TXNLOG_MAGIC}",
                path.display()
            )));
        }
        // Stricter than upstream, which ignores the version: records of another format
        // must not be replayed as version 2.
        let version = i32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if version != FILE_FORMAT_VERSION {
            return Err(invalid(format!(
                "Transaction log: {} has unsupported format version {version} (this server reads version {FILE_FORMAT_VERSION})",
                path.display()
            )));
        }
        Ok(log)
    }

    /// Fills `buf`; false on a clean or partial end of file.
    fn read_fully(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        let mut n = 0;
        while n < buf.len() {
            match self.reader.read(&mut buf[n..]) {
                Ok(0) => {
                    self.pos += n as u64;
                    return Ok(false);
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(true)
    }

    fn err(&self, offset: u64, what: &str) -> io::Error {
        invalid(format!("{what} in txn log {} at offset {offset}", self.path.display()))
    }

    /// One record (`FileTxnIterator.next` + `Util.readTxnBytes`).
    fn next_record(&mut self) -> io::Result<Step> {
        let start = self.pos;
        let mut crc = [0u8; 8];
        if !self.read_fully(&mut crc)? {
            return Ok(Step::End("end of file", start));
        }
        let mut lenb = [0u8; 4];
        if !self.read_fully(&mut lenb)? {
            return Ok(Step::End("end of file", start));
        }
        let len = i32::from_be_bytes(lenb);
        if len == 0 {
            return Ok(Step::End("zero length", start));
        }
        let max = jute::max_buffer().saturating_add(jute::max_buffer_extra());
        if len < 0 || len as usize > max {
            // -1 (null) makes upstream fail with a NullPointerException, any other bad
            // length with "Unreasonable length": both stop the load.
            return Err(self.err(start, &format!("Unreasonable length = {len}")));
        }
        let mut bytes = vec![0u8; len as usize];
        if !self.read_fully(&mut bytes)? {
            return Ok(Step::End("end of file", start));
        }
        let mut eor = [0u8; 1];
        if !self.read_fully(&mut eor)? {
            return Ok(Step::End("end of file", start));
        }
        if eor[0] != util::EOR {
            log::error!("Last transaction was partial.");
            return Ok(Step::End("missing end-of-record byte", start));
        }
        let want = i64::from_be_bytes(crc);
        if want != util::adler32(&bytes) {
            return Err(self.err(start, "CRC check failed"));
        }
        let (header, txn, digest) = util::deserialize_txn_entry(&bytes)
            .map_err(|e| self.err(start, &format!("undecodable txn entry ({e})")))?;
        Ok(Step::Record(LogEntry {
            header,
            txn,
            digest,
            file: self.path.clone(),
            offset: start,
            end_offset: self.pos,
        }))
    }

    fn all_zero_from(&self, offset: u64) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        let f = self.reader.get_ref();
        let mut off = offset;
        let mut buf = vec![0u8; 64 * 1024];
        // A preallocated tail is mostly a hole: look at the first MiB only.
        let end = self.len.min(offset.saturating_add(ZERO_SCAN_LIMIT));
        while off < end {
            let n = f.read_at(&mut buf, off)?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
            off += n as u64;
        }
        Ok(true)
    }
}

/// `FileTxnIterator`: walks the logs oldest first, starting with the newest file whose
/// start zxid ≤ the requested zxid. Yields `Ok(LogEntry)` per txn, then `None`; an
/// error is yielded once and ends the iteration.
pub struct FileTxnIterator {
    /// Files still to read, newest first (popped from the end).
    stored_files: Vec<PathBuf>,
    first_file: Option<PathBuf>,
    current: Option<OpenLog>,
    /// The entry the iterator is positioned on (upstream reads one ahead).
    entry: Option<io::Result<LogEntry>>,
    torn: Vec<TornTail>,
    storage_size: u64,
    done: bool,
}

impl FileTxnIterator {
    pub fn new(log_dir: &Path, zxid: i64, fast_forward: bool) -> io::Result<FileTxnIterator> {
        let files = util::sort_data_dir(get_log_files(log_files_in(log_dir)?, 0), LOG_FILE_PREFIX, false);
        let mut stored = Vec::new();
        for f in files {
            let z = util::zxid_of(&f, LOG_FILE_PREFIX);
            stored.push(f);
            if z < zxid {
                break;
            }
        }
        let storage_size = stored
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        let mut it = FileTxnIterator {
            first_file: stored.last().cloned(),
            stored_files: stored,
            current: None,
            entry: None,
            torn: Vec::new(),
            storage_size,
            done: false,
        };
        if it.go_to_next_log()? {
            it.advance();
        }
        if fast_forward {
            while let Some(Ok(e)) = &it.entry {
                if e.header.zxid >= zxid {
                    break;
                }
                it.advance();
            }
        }
        Ok(it)
    }

    fn go_to_next_log(&mut self) -> io::Result<bool> {
        match self.stored_files.pop() {
            Some(f) => {
                // ZOOKEEPER-2332 (upstream 3.9.3): a crash between creating the newest
                // log and writing its header leaves an empty file that would stop every
                // later start; it can hold no transaction, so it goes.
                if self.stored_files.is_empty() && std::fs::metadata(&f).map(|m| m.len() == 0).unwrap_or(false) {
                    std::fs::remove_file(&f).map_err(|e| {
                        io::Error::new(e.kind(), format!("Failed to delete empty tail log file: {}: {e}", f.display()))
                    })?;
                    log::warn!("Deleted empty tail log file {} (created before its header was written)", f.display());
                    return Ok(false);
                }
                self.current = Some(OpenLog::open(&f)?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Reads the next record into `self.entry` (None at the end).
    fn advance(&mut self) {
        loop {
            let Some(cur) = self.current.as_mut() else {
                self.entry = None;
                return;
            };
            match cur.next_record() {
                Ok(Step::Record(e)) => {
                    self.entry = Some(Ok(e));
                    return;
                }
                Ok(Step::End(reason, offset)) => {
                    let trailing = cur.len.saturating_sub(offset);
                    if trailing > 0 {
                        let all_zero = cur.all_zero_from(offset).unwrap_or(false);
                        if !all_zero && !self.stored_files.is_empty() {
                            log::warn!(
                                "txn log {} ends with an incomplete record at offset {offset} ({reason}) but newer logs follow",
                                cur.path.display()
                            );
                        }
                        self.torn.push(TornTail {
                            file: cur.path.clone(),
                            offset,
                            trailing_bytes: trailing,
                            reason,
                            all_zero,
                        });
                    }
                    self.current = None;
                    match self.go_to_next_log() {
                        Ok(true) => continue,
                        Ok(false) => {
                            self.entry = None;
                            return;
                        }
                        Err(e) => {
                            self.entry = Some(Err(e));
                            return;
                        }
                    }
                }
                Err(e) => {
                    self.current = None;
                    self.entry = Some(Err(e));
                    return;
                }
            }
        }
    }

    /// The txn the iterator is positioned on (upstream `getHeader`/`getTxn`).
    pub fn peek(&self) -> Option<&LogEntry> {
        match &self.entry {
            Some(Ok(e)) => Some(e),
            _ => None,
        }
    }

    /// The file being read.
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// `getStorageSize`: total size of the files this iterator covers.
    pub fn storage_size(&self) -> u64 {
        self.storage_size
    }

    /// Every place so far where a file's readable records ended before its physical
    /// end. The one of the newest file, when it is not `all_zero`, is where a torn
    /// write begins: a writer continuing that file must cut it there.
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn
    }
}

impl Iterator for FileTxnIterator {
    type Item = io::Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let e = self.entry.take()?;
        if e.is_err() {
            self.done = true;
        } else {
            self.advance();
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::data::ACL;
    use crate::proto::txn::{CreateTxn, SetDataTxn};

    fn hdr(zxid: i64, ty: i32) -> TxnHeader {
        TxnHeader {
            client_id: 0x55,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            r#type: ty,
        }
    }

    fn create(path: &str) -> TxnRecord {
        TxnRecord::Create(CreateTxn {
            path: path.into(),
            data: Some(path.as_bytes().to_vec()),
            acl: vec![ACL::new(31, "world", "anyone")],
            ephemeral: false,
            parent_c_version: 1,
        })
    }

    #[test]
    fn write_roll_read_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileTxnLog::new(dir.path());
        log.set_prealloc_size(64 * 1024);
        log.set_force_sync(false);
        for z in 1..=10 {
            let d = TxnDigest {
                version: 2,
                tree_digest: z * 7,
            };
            assert!(log
                .append(&hdr(z, op_code::CREATE), Some(&create(&format!("/n{z}"))), Some(&d))
                .unwrap());
            if z == 6 {
                log.commit().unwrap();
                log.roll_log().unwrap();
            }
        }
        log.commit().unwrap();
        assert!(dir.path().join("log.1").exists() && dir.path().join("log.7").exists());
        // Upstream grows from the header end: 16 + one step.
        assert_eq!(
            std::fs::metadata(dir.path().join("log.7")).unwrap().len(),
            16 + 64 * 1024
        );
        let all: Vec<LogEntry> = log.read(1).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(
            all.iter().map(|e| e.header.zxid).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(all[2].txn, Some(create("/n3")));
        assert_eq!(
            all[2].digest,
            Some(TxnDigest {
                version: 2,
                tree_digest: 21
            })
        );
        assert_eq!(all[0].offset, FILE_HEADER_LEN);
        let from8: Vec<i64> = log.read(8).unwrap().map(|e| e.unwrap().header.zxid).collect();
        assert_eq!(from8, vec![8, 9, 10]);
        let from5: Vec<i64> = log.read(5).unwrap().map(|e| e.unwrap().header.zxid).collect();
        assert_eq!(from5, vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(log.get_last_logged_zxid(), 10);
        // Both files end in zeros: clean ends, reported as such.
        let mut it = log.read(1).unwrap();
        for e in it.by_ref() {
            e.unwrap();
        }
        assert!(it.torn_tails().iter().all(|t| t.all_zero && t.reason == "zero length"));
        drop(log);

        let mut log = FileTxnLog::new(dir.path());
        log.truncate(4).unwrap();
        assert!(!dir.path().join("log.7").exists());
        assert_eq!(log.get_last_logged_zxid(), 4);
        let rest: Vec<i64> = log.read(0).unwrap().map(|e| e.unwrap().header.zxid).collect();
        assert_eq!(rest, vec![1, 2, 3, 4]);
    }

    #[test]
    fn set_data_and_bad_magic() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileTxnLog::new(dir.path());
        log.set_prealloc_size(0);
        log.set_force_sync(false);
        let sd = TxnRecord::SetData(SetDataTxn {
            path: "/a".into(),
            data: None,
            version: 3,
        });
        log.append(&hdr(0x100000001, op_code::SET_DATA), Some(&sd), None)
            .unwrap();
        log.commit().unwrap();
        let f = dir.path().join("log.100000001");
        // No preallocation: header + 8 + 4 + entry + 1.
        let entry_len = util::marshall_txn_entry(&hdr(1, 5), Some(&sd), None).len() as u64;
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 16 + 13 + entry_len);
        let e: Vec<LogEntry> = log.read(0).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(e[0].txn, Some(sd));
        assert_eq!(e[0].digest, None);
        let mut b = std::fs::read(&f).unwrap();
        b[0] = b'X';
        std::fs::write(&f, b).unwrap();
        let err = log.read(0).err().unwrap().to_string();
        assert!(
            err.contains("invalid magic number") && err.contains("log.100000001"),
            "{err}"
        );
    }

    /// ZOOKEEPER-2332: an empty newest log (crash before its header) is deleted and
    /// the older logs load; an empty log with newer logs after it is still an error.
    #[test]
    fn empty_tail_log_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileTxnLog::new(dir.path());
        log.set_prealloc_size(0);
        log.set_force_sync(false);
        for z in 1..=3 {
            log.append(&hdr(z, op_code::CREATE), Some(&create(&format!("/n{z}"))), None)
                .unwrap();
        }
        log.commit().unwrap();
        drop(log);
        let empty = dir.path().join("log.4");
        std::fs::write(&empty, b"").unwrap();
        let log = FileTxnLog::new(dir.path());
        let z: Vec<i64> = log.read(1).unwrap().map(|e| e.unwrap().header.zxid).collect();
        assert_eq!(z, vec![1, 2, 3]);
        assert!(!empty.exists());
        assert_eq!(log.get_last_logged_zxid(), 3);

        // In the middle it is not a torn tail: stop, as upstream does.
        std::fs::write(&empty, b"").unwrap();
        let mut log = FileTxnLog::new(dir.path());
        log.set_prealloc_size(0);
        log.set_force_sync(false);
        log.append(&hdr(9, op_code::CREATE), Some(&create("/n9")), None)
            .unwrap();
        log.commit().unwrap();
        drop(log);
        let log = FileTxnLog::new(dir.path());
        let err = match log.read(5) {
            Err(e) => e.to_string(),
            Ok(mut it) => match it.find(|e| e.is_err()) {
                Some(Err(e)) => e.to_string(),
                _ => String::new(),
            },
        };
        assert!(err.contains("too short for a file header"), "{err:?}");
        assert!(empty.exists());
    }
}
