//! `AtomicFileWritingIdiom`: a file is replaced whole or not at all — the bytes go to
//! `<file>.tmp`, which is fsynced and renamed over the file; on failure the temp file
//! is removed. The epoch files, the dynamic config files, the rewritten zoo.cfg and its
//! backup are written this way, as upstream writes them.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub fn write_atomically(file: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", file.display()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, file)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
