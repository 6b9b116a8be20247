//! `persistence.Util`, `FilePadding` and the entry (de)serialization of
//! `SerializeUtils`: what both the txn log and the snapshot code share.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::jute::{InputArchive, JuteError, OutputArchive, Record};
use crate::proto::op_code;
use crate::proto::txn::{CreateTxn, CreateTxnV0, TxnDigest, TxnHeader};
use crate::server::txn_record::TxnRecord;
use crate::system_properties;

/// Prefix of txn log file names.
pub const LOG_FILE_PREFIX: &str = "log";
/// Prefix of snapshot file names.
pub const SNAPSHOT_FILE_PREFIX: &str = "snapshot";
/// The sub-directory both kinds of files live in (`FileTxnSnapLog.version` = 2).
pub const VERSION_DIR: &str = "version-2";
/// Version field of both file headers.
pub const FILE_FORMAT_VERSION: i32 = 2;
/// The end-of-record byte after every txn log entry (`'B'`).
pub const EOR: u8 = 0x42;
/// Default preallocation step of the txn log: 64 MiB (`zookeeper.preAllocSize` is in KiB).
pub const DEFAULT_PREALLOC_SIZE: i64 = 65536 * 1024;

/// `Util.makeLogName`: `log.<lowercase hex, no padding>`.
pub fn make_log_name(zxid: i64) -> String {
    format!("{LOG_FILE_PREFIX}.{zxid:x}")
}

/// `Util.makeSnapshotName` for an uncompressed snapshot.
pub fn make_snapshot_name(zxid: i64) -> String {
    format!("{SNAPSHOT_FILE_PREFIX}.{zxid:x}")
}

/// Java's `Long.parseLong(s, 16)`: optional sign, at least one hex digit, must fit a
/// signed long.
fn parse_java_hex_long(s: &str) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mag = u64::from_str_radix(digits, 16).ok()?;
    if neg {
        if mag > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((mag as i64).wrapping_neg())
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// `Util.getZxidFromName`: the zxid of `prefix.<hex>[.anything]`, or -1.
pub fn get_zxid_from_name(name: &str, prefix: &str) -> i64 {
    // Java's String.split drops trailing empty strings, which only matters for the
    // length test below when the name ends in dots.
    let mut parts: Vec<&str> = name.split('.').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() >= 2 && parts[0] == prefix {
        parse_java_hex_long(parts[1]).unwrap_or(-1)
    } else {
        -1
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The zxid in a path's file name, -1 when it has none.
pub fn zxid_of(path: &Path, prefix: &str) -> i64 {
    get_zxid_from_name(&file_name(path), prefix)
}

/// `Util.sortDataDir`: by the zxid in the name (numerically, never as a string);
/// files without one sort as -1. Stable.
pub fn sort_data_dir(mut files: Vec<PathBuf>, prefix: &str, ascending: bool) -> Vec<PathBuf> {
    files.sort_by(|a, b| {
        let o = zxid_of(a, prefix).cmp(&zxid_of(b, prefix));
        if ascending {
            o
        } else {
            o.reverse()
        }
    });
    files
}

/// Every entry of a directory (`File.listFiles`); a missing directory lists as empty.
pub fn list_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut v = Vec::new();
            for e in rd {
                v.push(e?.path());
            }
            Ok(v)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot list {}: {e}", dir.display()))),
    }
}

pub fn is_log_file_name(name: &str) -> bool {
    name.starts_with("log.")
}

pub fn is_snapshot_file_name(name: &str) -> bool {
    name.starts_with("snapshot.")
}

/// `zookeeper.digest.enabled` (default true): whether entries carry a TxnDigest and
/// snapshots a zxid-digest trailer.
pub fn digest_enabled() -> bool {
    system_properties::get_bool_or("zookeeper.digest.enabled", true)
}

// ------------------------------------------------------------ checksums --

/// Adler-32 of a byte slice, as `java.util.zip.Adler32.getValue()` (always ≥ 0).
pub fn adler32(bytes: &[u8]) -> i64 {
    let mut a = adler2::Adler32::new();
    a.write_slice(bytes);
    a.checksum() as i64
}

// ------------------------------------------------------------- entries --

/// `Util.marshallTxnEntry`: TxnHeader, then the txn body (if any), then the TxnDigest
/// (if any). The same bytes are a Zab PROPOSAL's data.
pub fn marshall_txn_entry(hdr: &TxnHeader, txn: Option<&TxnRecord>, digest: Option<&TxnDigest>) -> Vec<u8> {
    let mut out = OutputArchive::new();
    hdr.serialize(&mut out);
    if let Some(t) = txn {
        t.serialize(&mut out);
    }
    if let Some(d) = digest {
        d.serialize(&mut out);
    }
    out.into_inner()
}

/// One decoded log entry: header, body, optional digest.
pub type TxnEntryParts = (TxnHeader, Option<TxnRecord>, Option<TxnDigest>);

/// `SerializeUtils.deserializeTxn`: decodes an entry written by [`marshall_txn_entry`].
/// As upstream: an old-style create (no parentCVersion) reads with parentCVersion -1; a
/// closeSession without body reads as None; the digest is read only when digests are
/// enabled, and a missing digest is None.
pub fn deserialize_txn_entry(bytes: &[u8]) -> Result<TxnEntryParts, JuteError> {
    let mut inp = InputArchive::new(bytes);
    let hdr = TxnHeader::deserialize(&mut inp)?;
    let mark = inp.position();
    let mut body_eof = false;
    let txn = match TxnRecord::deserialize(hdr.r#type, &mut inp) {
        Ok(t) => t,
        Err(JuteError::Eof { .. }) if hdr.r#type == op_code::CREATE => {
            let mut v0 = InputArchive::new(&bytes[mark..]);
            let old = CreateTxnV0::deserialize(&mut v0)?;
            inp = InputArchive::new(&bytes[mark + v0.position()..]);
            Some(TxnRecord::Create(CreateTxn {
                path: old.path,
                data: old.data,
                acl: old.acl,
                ephemeral: old.ephemeral,
                parent_c_version: -1,
            }))
        }
        Err(JuteError::Eof { .. }) if hdr.r#type == op_code::CLOSE_SESSION => {
            body_eof = true;
            None
        }
        Err(e) => return Err(e),
    };
    let digest = if digest_enabled() && !body_eof {
        TxnDigest::deserialize(&mut inp).ok()
    } else {
        None
    };
    Ok((hdr, txn, digest))
}

// ------------------------------------------------------------- padding --

/// `zookeeper.preAllocSize` (KiB) in bytes; 64 MiB by default.
pub fn prealloc_size_from_properties() -> i64 {
    match system_properties::get("zookeeper.preAllocSize") {
        None => DEFAULT_PREALLOC_SIZE,
        Some(s) => match s.trim().parse::<i64>() {
            Ok(kib) => kib.saturating_mul(1024),
            Err(_) => {
                log::warn!("{s} is not a valid value for preAllocSize");
                DEFAULT_PREALLOC_SIZE
            }
        },
    }
}

/// `FilePadding.calculateFileSizeWithPadding`: the new file size when `position` is
/// within 4 KiB of `file_size`, else `file_size` unchanged.
pub fn calculate_file_size_with_padding(position: i64, file_size: i64, prealloc_size: i64) -> i64 {
    let mut size = file_size;
    if prealloc_size > 0 && position + 4096 >= size {
        if position > size {
            size = position + prealloc_size;
            size -= size % prealloc_size;
        } else {
            size += prealloc_size;
        }
    }
    size
}

/// `FilePadding`: grows the log file in `prealloc_size` steps by writing one zero byte
/// at the new last offset (the file system fills the gap with zeros).
#[derive(Debug, Clone)]
pub struct FilePadding {
    current_size: i64,
    prealloc_size: i64,
}

impl FilePadding {
    pub fn new(prealloc_size: i64) -> Self {
        FilePadding {
            current_size: 0,
            prealloc_size,
        }
    }

    pub fn set_current_size(&mut self, size: i64) {
        self.current_size = size;
    }

    pub fn current_size(&self) -> i64 {
        self.current_size
    }

    /// Extends `file` if `position` came within 4 KiB of its known end; returns the size.
    pub fn pad_file(&mut self, file: &File, position: i64) -> io::Result<i64> {
        let new_size = calculate_file_size_with_padding(position, self.current_size, self.prealloc_size);
        if new_size != self.current_size {
            file.write_at(&[0u8], (new_size - 1) as u64)?;
            self.current_size = new_size;
        }
        Ok(self.current_size)
    }
}

// ------------------------------------------------------ snapshot checks --

/// Compression of a snapshot file, from its last name component (`SnapStream.getStreamMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    Checked,
    Gzip,
    Snappy,
}

pub fn stream_mode_of(name: &str) -> StreamMode {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 1 {
        let last = parts[parts.len() - 1];
        if last.eq_ignore_ascii_case("gz") {
            return StreamMode::Gzip;
        }
        if last.eq_ignore_ascii_case("snappy") {
            return StreamMode::Snappy;
        }
    }
    StreamMode::Checked
}

/// `SnapStream.isValidSnapshot`: a zxid in the name and, for plain files, at least 10
/// bytes ending in int 1 and `'/'` (the seal's "/" string); compressed files are only
/// checked for their magic.
pub fn is_valid_snapshot(path: &Path) -> io::Result<bool> {
    let name = file_name(path);
    if get_zxid_from_name(&name, SNAPSHOT_FILE_PREFIX) == -1 {
        return Ok(false);
    }
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    match stream_mode_of(&name) {
        StreamMode::Gzip => {
            let mut b = [0u8; 2];
            Ok(len >= 2 && f.read_exact_at(&mut b, 0).is_ok() && b == [0x1f, 0x8b])
        }
        StreamMode::Snappy => {
            const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
            let mut b = [0u8; 8];
            Ok(len >= 8 && f.read_exact_at(&mut b, 0).is_ok() && b == MAGIC)
        }
        StreamMode::Checked => {
            if len < 10 {
                return Ok(false);
            }
            let mut b = [0u8; 5];
            f.read_exact_at(&mut b, len - 5)?;
            let n = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if n != 1 || b[4] != b'/' {
                log::info!("Invalid snapshot {name}. len = {n}, byte = {}", b[4]);
                return Ok(false);
            }
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_zxids() {
        assert_eq!(make_log_name(0x1_0000_00ab), "log.1000000ab");
        assert_eq!(make_snapshot_name(0), "snapshot.0");
        assert_eq!(get_zxid_from_name("log.1000000ab", "log"), 0x1_0000_00ab);
        assert_eq!(get_zxid_from_name("snapshot.1f.gz", "snapshot"), 0x1f);
        assert_eq!(get_zxid_from_name("snapshot.zz", "snapshot"), -1);
        assert_eq!(get_zxid_from_name("log.10", "snapshot"), -1);
        assert_eq!(get_zxid_from_name("log", "log"), -1);
        let v = sort_data_dir(
            vec!["log.a".into(), "log.100".into(), "log.9".into(), "log.x".into()],
            "log",
            true,
        );
        let names: Vec<String> = v.iter().map(|p| file_name(p)).collect();
        assert_eq!(names, ["log.x", "log.9", "log.a", "log.100"]);
    }

    #[test]
    fn checksums_match_java() {
        // java.util.zip.Adler32 of "Wikipedia" (CRC32: digest_calculator).
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn padding_steps() {
        assert_eq!(calculate_file_size_with_padding(16, 0, 100), 100);
        assert_eq!(calculate_file_size_with_padding(16, 5000, 100), 5000);
        assert_eq!(calculate_file_size_with_padding(1000, 5000, 100), 5100);
        assert_eq!(calculate_file_size_with_padding(6050, 5000, 100), 6100);
        assert_eq!(calculate_file_size_with_padding(6050, 5000, 0), 5000);
    }
}
