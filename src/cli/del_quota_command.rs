//! `delquota [-n|-b|-N|-B] path` (`DelQuotaCommand`).

use super::command_line::{self, opt, Options};
use super::stats_track::{self as q, StatsTrack};
use super::{CliError, CliResult, Ctx};
use crate::client::{KeeperError, ZooKeeper};
use crate::proto::Code;

pub const NAME: &str = "delquota";
pub const OPTION_STR: &str = "[-n|-b|-N|-B] path";

const OPTIONS: Options = Options {
    opts: &[opt("n", false, "num soft quota"), opt("b", false, "bytes soft quota"), opt("N", false, "num hard quota"), opt("B", false, "bytes hard quota")],
    group: &["n", "b", "N", "B"],
    group_required: false,
};

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    let flags: Vec<&str> = [("n", q::COUNT), ("b", q::BYTES), ("N", q::COUNT_HARD_LIMIT), ("B", q::BYTE_HARD_LIMIT)]
        .iter()
        .filter(|(f, _)| cl.has(f))
        .map(|(_, k)| *k)
        .collect();
    match del_quota(ctx.zk, path, &flags) {
        Ok(()) => Ok(false),
        Err(DelErr::Keeper(e)) if e.code == Code::NoNode => {
            super::err(&format!("quota for {path} does not exist."));
            Ok(false)
        }
        Err(DelErr::Keeper(e)) => Err(CliError::wrap(&e)),
        Err(DelErr::Cli(e)) => Err(e),
    }
}

enum DelErr {
    Keeper(KeeperError),
    Cli(CliError),
}

impl From<KeeperError> for DelErr {
    fn from(e: KeeperError) -> Self {
        DelErr::Keeper(e)
    }
}

/// `DelQuotaCommand.delQuota`: no flags removes the quota nodes (and parents left
/// empty); flags reset those limits to -1.
fn del_quota(zk: &ZooKeeper, path: &str, flags: &[&str]) -> Result<(), DelErr> {
    let parent = q::quota_path(path);
    let limit = q::limit_path(path);
    super::validate_path(&limit).map_err(DelErr::Cli)?;
    if zk.exists(&limit, None)?.is_none() {
        super::out(&format!("Quota does not exist for {path}"));
        return Ok(());
    }
    let (data, _) = zk.get_data(&limit, None)?;
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"")).into_owned();
    let mut track = StatsTrack::parse(&text).unwrap_or_default();
    if flags.is_empty() {
        for c in zk.get_children(&parent, None)? {
            zk.delete(&format!("{parent}/{c}"), -1)?;
        }
        trim_proc_quotas(zk, &parent)?;
    } else {
        for k in flags {
            track.set(k, -1);
        }
        zk.set_data(&limit, Some(track.to_string().as_bytes()), -1)?;
    }
    Ok(())
}

fn trim_proc_quotas(zk: &ZooKeeper, path: &str) -> Result<(), KeeperError> {
    let mut p = path.to_owned();
    while p != q::QUOTA_ZOOKEEPER {
        if !zk.get_children(&p, None)?.is_empty() {
            break;
        }
        zk.delete(&p, -1)?;
        match p.rfind('/') {
            Some(i) => p.truncate(i),
            None => break,
        }
    }
    Ok(())
}
