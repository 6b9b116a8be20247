//! `currentEpoch` / `acceptedEpoch`: loaded and checked at start-up as
//! `QuorumPeer.loadDataBase` does, then kept in memory and written through.

use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::server::persistence::epoch_file::{read_long_from_file, write_long_to_file, ACCEPTED_EPOCH_FILENAME, CURRENT_EPOCH_FILENAME};
use crate::server::util::zxid_utils::{epoch_from_zxid, zxid_to_string};

/// Written by a learner before it persists what it synced for a new epoch and removed
/// once currentEpoch holds that epoch: a crash in between leaves data of an epoch newer
/// than currentEpoch, which upstream cannot start from (ZOOKEEPER-2354). The file names
/// the epoch, so start-up can tell this case from real damage.
pub const UPDATING_EPOCH_FILENAME: &str = "updatingEpoch";

#[derive(Debug)]
pub struct Epochs {
    snap_dir: PathBuf,
    /// (current, accepted)
    values: Mutex<(i64, i64)>,
}

impl Epochs {
    /// Reads both files. A missing file is created from the epoch of the last zxid
    /// ("This should only happen when you are upgrading"); a `currentEpoch` older than
    /// the data is repaired from `currentEpoch.tmp` when a crash left it there, and is
    /// fatal otherwise; `acceptedEpoch` below `currentEpoch` is fatal.
    pub fn load(snap_dir: &Path, last_processed_zxid: i64) -> Result<Epochs, String> {
        let fail = |e: String| {
            log::error!("Unable to load database on disk: {e}");
            format!("Unable to run quorum server : {e}")
        };
        let epoch_of_zxid = epoch_from_zxid(last_processed_zxid);
        let mut current = match read_long_from_file(snap_dir, CURRENT_EPOCH_FILENAME) {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::info!(
                    "{CURRENT_EPOCH_FILENAME} not found! Creating with a reasonable default of {epoch_of_zxid}. This should only happen when you are upgrading your installation"
                );
                write_long_to_file(snap_dir, CURRENT_EPOCH_FILENAME, epoch_of_zxid).map_err(|e| fail(e.to_string()))?;
                epoch_of_zxid
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        if epoch_of_zxid > current {
            let tmp_name = format!("{CURRENT_EPOCH_FILENAME}.tmp");
            let tmp = snap_dir.join(&tmp_name);
            let updating = snap_dir.join(UPDATING_EPOCH_FILENAME);
            let updating_epoch = if updating.exists() { read_long_from_file(snap_dir, UPDATING_EPOCH_FILENAME).ok() } else { None };
            if tmp.exists() {
                let v = read_long_from_file(snap_dir, &tmp_name).map_err(|e| fail(e.to_string()))?;
                log::info!("{} found. Setting current epoch to {v}.", tmp.display());
                write_long_to_file(snap_dir, CURRENT_EPOCH_FILENAME, v).map_err(|e| fail(e.to_string()))?;
                current = v;
            } else if updating_epoch == Some(epoch_of_zxid) {
                log::info!(
                    "{} found. The server was terminated after persisting the state synced for epoch {epoch_of_zxid} but before updating the current epoch. Setting current epoch to {epoch_of_zxid}.",
                    updating.display()
                );
                write_long_to_file(snap_dir, CURRENT_EPOCH_FILENAME, epoch_of_zxid).map_err(|e| fail(e.to_string()))?;
                let _ = std::fs::remove_file(&updating);
                current = epoch_of_zxid;
            } else if read_long_from_file(snap_dir, ACCEPTED_EPOCH_FILENAME).is_ok_and(|a| a >= epoch_of_zxid) {
                // A learner persists the committed txns of its sync before it records the
                // leader's epoch as current (ZOOKEEPER-4643's order): a crash in between
                // leaves txns of an epoch it had accepted and already holds durably. That
                // history is a prefix of the leader's, so the epoch is ours to claim.
                log::warn!(
                    "The current epoch, {}, is older than the last zxid, 0x{last_processed_zxid:x}, of accepted epoch {epoch_of_zxid}: a sync was persisted but its epoch not recorded. Setting current epoch to {epoch_of_zxid}.",
                    zxid_to_string(current)
                );
                write_long_to_file(snap_dir, CURRENT_EPOCH_FILENAME, epoch_of_zxid).map_err(|e| fail(e.to_string()))?;
                current = epoch_of_zxid;
            } else {
                return Err(fail(format!(
                    "The current epoch, {}, is older than the last zxid, {last_processed_zxid}",
                    zxid_to_string(current)
                )));
            }
        }
        let accepted = match read_long_from_file(snap_dir, ACCEPTED_EPOCH_FILENAME) {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::info!(
                    "{ACCEPTED_EPOCH_FILENAME} not found! Creating with a reasonable default of {epoch_of_zxid}. This should only happen when you are upgrading your installation"
                );
                write_long_to_file(snap_dir, ACCEPTED_EPOCH_FILENAME, epoch_of_zxid).map_err(|e| fail(e.to_string()))?;
                epoch_of_zxid
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        if accepted < current {
            return Err(fail(format!(
                "The accepted epoch, {} is less than the current epoch, {}",
                zxid_to_string(accepted),
                zxid_to_string(current)
            )));
        }
        Ok(Epochs { snap_dir: snap_dir.to_path_buf(), values: Mutex::new((current, accepted)) })
    }

    pub fn current(&self) -> i64 {
        self.values.lock().0
    }

    pub fn accepted(&self) -> i64 {
        self.values.lock().1
    }

    /// `setCurrentEpoch`: durable before it is visible.
    pub fn set_current(&self, e: i64) -> io::Result<()> {
        write_long_to_file(&self.snap_dir, CURRENT_EPOCH_FILENAME, e)?;
        self.values.lock().0 = e;
        Ok(())
    }

    /// Marks that the state of `epoch` is being persisted before currentEpoch says so.
    pub fn begin_update(&self, epoch: i64) -> io::Result<()> {
        write_long_to_file(&self.snap_dir, UPDATING_EPOCH_FILENAME, epoch)
    }

    /// currentEpoch now holds the epoch the marker named.
    pub fn end_update(&self) {
        let f = self.snap_dir.join(UPDATING_EPOCH_FILENAME);
        if f.exists() {
            if let Err(e) = std::fs::remove_file(&f) {
                log::warn!("Unable to remove {}: {e}", f.display());
            }
        }
    }

    /// `setAcceptedEpoch`.
    pub fn set_accepted(&self, e: i64) -> io::Result<()> {
        write_long_to_file(&self.snap_dir, ACCEPTED_EPOCH_FILENAME, e)?;
        self.values.lock().1 = e;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_created_from_the_data() {
        let d = tempfile::tempdir().unwrap();
        let e = Epochs::load(d.path(), 0x3_0000_0005).unwrap();
        assert_eq!((e.current(), e.accepted()), (3, 3));
        assert_eq!(std::fs::read_to_string(d.path().join("currentEpoch")).unwrap(), "3");
        assert_eq!(std::fs::read_to_string(d.path().join("acceptedEpoch")).unwrap(), "3");
        e.set_accepted(4).unwrap();
        e.set_current(4).unwrap();
        let e = Epochs::load(d.path(), 0x3_0000_0005).unwrap();
        assert_eq!((e.current(), e.accepted()), (4, 4));
    }

    #[test]
    fn stale_current_epoch_uses_tmp_or_fails() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("currentEpoch"), "1").unwrap();
        std::fs::write(d.path().join("acceptedEpoch"), "1").unwrap();
        let err = Epochs::load(d.path(), 0x2_0000_0001).unwrap_err();
        assert!(err.contains("The current epoch, 1, is older than the last zxid, 8589934593"), "{err}");
        std::fs::write(d.path().join("currentEpoch.tmp"), "2").unwrap();
        std::fs::write(d.path().join("acceptedEpoch"), "2").unwrap();
        let e = Epochs::load(d.path(), 0x2_0000_0001).unwrap();
        assert_eq!(e.current(), 2);
    }

    #[test]
    fn interrupted_epoch_update_is_repaired_only_for_the_marked_epoch() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("currentEpoch"), "1").unwrap();
        std::fs::write(d.path().join("acceptedEpoch"), "1").unwrap();
        // A marker for another epoch proves nothing (and epoch 2 was never accepted).
        std::fs::write(d.path().join(UPDATING_EPOCH_FILENAME), "3").unwrap();
        assert!(Epochs::load(d.path(), 0x2_0000_0001).is_err());
        std::fs::write(d.path().join(UPDATING_EPOCH_FILENAME), "2").unwrap();
        std::fs::write(d.path().join("acceptedEpoch"), "2").unwrap();
        let e = Epochs::load(d.path(), 0x2_0000_0001).unwrap();
        assert_eq!((e.current(), e.accepted()), (2, 2));
        assert!(!d.path().join(UPDATING_EPOCH_FILENAME).exists());
        assert_eq!(std::fs::read_to_string(d.path().join("currentEpoch")).unwrap(), "2");
    }

    #[test]
    fn sync_persisted_before_its_epoch_was_recorded() {
        // A learner crashed between persisting the committed txns of its NEWLEADER sync
        // (of epoch 2, which it had accepted) and writing currentEpoch.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("currentEpoch"), "1").unwrap();
        std::fs::write(d.path().join("acceptedEpoch"), "2").unwrap();
        let e = Epochs::load(d.path(), 0x2_0000_0005).unwrap();
        assert_eq!((e.current(), e.accepted()), (2, 2));
        assert_eq!(std::fs::read_to_string(d.path().join("currentEpoch")).unwrap(), "2");
    }

    #[test]
    fn accepted_below_current_is_fatal_and_garbage_is_reported() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("currentEpoch"), "5").unwrap();
        std::fs::write(d.path().join("acceptedEpoch"), "4").unwrap();
        let err = Epochs::load(d.path(), 0).unwrap_err();
        assert!(err.contains("The accepted epoch, 4 is less than the current epoch, 5"), "{err}");
        std::fs::write(d.path().join("acceptedEpoch"), "").unwrap();
        let err = Epochs::load(d.path(), 0).unwrap_err();
        assert!(err.contains("Found null in"), "{err}");
    }
}
