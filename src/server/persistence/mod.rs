//! `org.apache.zookeeper.server.persistence`: the on-disk formats of ZooKeeper 3.8
//! (txn logs `log.<zxid>` and snapshots `snapshot.<zxid>` under `version-2`),
//! byte-compatible with Apache in both directions.
//!
//! * [`util`]: file names, sorting, entry marshalling, checksums, preallocation.
//! * [`file_txn_log`]: the write-ahead log writer and its reader/iterator.
//! * [`file_snap`]: snapshot writer and reader (with the seals and the digest trailer).

pub mod epoch_file;
pub mod file_snap;
pub mod file_txn_log;
pub mod file_txn_snap_log;
pub mod snap_stream;
pub mod txn_log_toolkit;
pub mod util;

pub use file_snap::{FileSnap, LoadedSnapshot, ZxidDigest};
pub use file_txn_log::{FileTxnIterator, FileTxnLog, LogEntry, TornTail};
pub use file_txn_snap_log::{FileTxnSnapLog, Restored};
