//! `currentEpoch` / `acceptedEpoch`: the quorum epochs a replicated server keeps next to
//! its snapshots (`QuorumPeer.readLongFromFile` / `writeLongToFile`). The file holds the
//! number in decimal with no newline, written atomically (temp file + fsync + rename, as
//! `AtomicFileWritingIdiom`). A standalone server does not use them.

use std::io;
use std::path::Path;

pub const CURRENT_EPOCH_FILENAME: &str = "currentEpoch";
pub const ACCEPTED_EPOCH_FILENAME: &str = "acceptedEpoch";

/// Reads the first line as a long; `Found <line> in <file>` when it is not one.
pub fn read_long_from_file(snap_dir: &Path, name: &str) -> io::Result<i64> {
    let file = snap_dir.join(name);
    let text = std::fs::read_to_string(&file)?;
    // BufferedReader.readLine() of an empty file is null, which upstream prints as such.
    let line = text.lines().next().unwrap_or("null");
    line.parse::<i64>()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("Found {line} in {}", file.display())))
}

pub fn write_long_to_file(snap_dir: &Path, name: &str, value: i64) -> io::Result<()> {
    crate::server::util::atomic_file_writing_idiom::write_atomically(&snap_dir.join(name), value.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let d = tempfile::tempdir().unwrap();
        write_long_to_file(d.path(), CURRENT_EPOCH_FILENAME, 7).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join(CURRENT_EPOCH_FILENAME)).unwrap(), "7");
        assert_eq!(read_long_from_file(d.path(), CURRENT_EPOCH_FILENAME).unwrap(), 7);
        std::fs::write(d.path().join(ACCEPTED_EPOCH_FILENAME), "x\n").unwrap();
        let e = read_long_from_file(d.path(), ACCEPTED_EPOCH_FILENAME).unwrap_err();
        assert!(e.to_string().starts_with("Found x in "), "{e}");
        assert!(read_long_from_file(d.path(), "missing").is_err());
    }
}
