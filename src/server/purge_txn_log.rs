//! `PurgeTxnLog`: keeps the `num` most recent valid snapshots and the txn logs needed
//! to replay from the oldest of them (the newest log starting at or before its zxid and
//! every later one); deletes older snapshots and logs. Used by `zkCleanup.sh`
//! (`zk-purge`) and by the autopurge task ([`super::datadir_cleanup_manager`]).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::server::persistence::file_txn_log::get_log_files;
use crate::server::persistence::txn_log_toolkit::java_medium_date;
use crate::server::persistence::util::{self, LOG_FILE_PREFIX, SNAPSHOT_FILE_PREFIX};
use crate::server::persistence::{FileSnap, FileTxnSnapLog};

pub const COUNT_ERR_MSG: &str = "count should be greater than or equal to 3";

/// `PurgeTxnLog.purge(dataDir, snapDir, num)`: `data_dir` holds the txn logs (the
/// dataLogDir), `snap_dir` the snapshots; both are the parents of `version-2`.
/// Returns the files removed (or that failed to be removed).
pub fn purge(data_dir: &Path, snap_dir: &Path, num: i32) -> io::Result<Vec<PathBuf>> {
    if num < 3 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, COUNT_ERR_MSG));
    }
    let txn_log = FileTxnSnapLog::new(data_dir, snap_dir)?;
    let snaps = FileSnap::new(txn_log.snap_dir.clone()).find_n_valid_snapshots(num as usize)?;
    match snaps.last() {
        Some(oldest) => purge_older_snapshots(&txn_log, oldest),
        None => Ok(Vec::new()),
    }
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `purgeOlderSnapshots`: deletes the logs and snapshots older than `snapshot` except
/// the logs `FileTxnSnapLog.getSnapshotLogs` says its replay needs.
pub fn purge_older_snapshots(txn_log: &FileTxnSnapLog, snapshot: &Path) -> io::Result<Vec<PathBuf>> {
    let least = util::get_zxid_from_name(&name_of(snapshot), SNAPSHOT_FILE_PREFIX);
    let retained: HashSet<PathBuf> = get_log_files(util::list_files(&txn_log.data_dir)?, least)
        .into_iter()
        .collect();
    let candidates = |dir: &Path, prefix: &str| -> io::Result<Vec<PathBuf>> {
        let dotted = format!("{prefix}.");
        Ok(util::list_files(dir)?
            .into_iter()
            .filter(|f| {
                name_of(f).starts_with(&dotted)
                    && !retained.contains(f)
                    && util::get_zxid_from_name(&name_of(f), prefix) < least
            })
            .collect())
    };
    let mut files = candidates(&txn_log.data_dir, LOG_FILE_PREFIX)?;
    files.extend(candidates(&txn_log.snap_dir, SNAPSHOT_FILE_PREFIX)?);
    for f in &files {
        let mtime = std::fs::metadata(f)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let msg = format!("Removing file: {}\t{}", java_medium_date(mtime), f.display());
        log::info!("{msg}");
        println!("{msg}");
        if std::fs::remove_file(f).is_err() {
            eprintln!("Failed to remove {}", f.display());
        }
    }
    Ok(files)
}

fn print_usage() {
    println!("Usage:");
    println!("PurgeTxnLog dataLogDir [snapDir] -n count");
    println!("\tdataLogDir -- path to the txn log directory");
    println!("\tsnapDir -- path to the snapshot directory");
    println!("\tcount -- the number of old snaps/logs you want to keep, value should be greater than or equal to 3");
}

fn abs(p: &str) -> String {
    if p.starts_with('/') {
        p.to_owned()
    } else {
        let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        format!("{cwd}/{p}")
    }
}

/// `PurgeTxnLog.main`: `dataLogDir [snapDir] -n count`; returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let usage_exit = || {
        print_usage();
        1
    };
    if args.len() < 3 || args.len() > 4 {
        return usage_exit();
    }
    let validate_file = |p: &str| -> Option<PathBuf> {
        if Path::new(p).exists() {
            Some(PathBuf::from(p))
        } else {
            eprintln!("Path '{}' does not exist. ", abs(p));
            None
        }
    };
    let validate_count = |s: &str| -> Option<i32> {
        match s.parse::<i32>() {
            Ok(n) if n >= 3 => Some(n),
            Ok(_) => {
                eprintln!("{COUNT_ERR_MSG}");
                None
            }
            Err(_) => {
                eprintln!("'{s}' can not be parsed to integer.");
                None
            }
        }
    };
    let Some(data_dir) = validate_file(&args[0]) else { return usage_exit() };
    let (snap_dir, count_opt, num) = if args.len() == 3 {
        let Some(n) = validate_count(&args[2]) else { return usage_exit() };
        (data_dir.clone(), &args[1], n)
    } else {
        let Some(s) = validate_file(&args[1]) else { return usage_exit() };
        let Some(n) = validate_count(&args[3]) else { return usage_exit() };
        (s, &args[2], n)
    };
    if count_opt != "-n" {
        return usage_exit();
    }
    match purge(&data_dir, &snap_dir, num) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("Exception in thread \"main\" java.io.IOException: {e}");
            1
        }
    }
}
