//! `listquota path` (`ListQuotaCommand`).

use super::command_line::{self, Options};
use super::stats_track::{self as q, StatsTrack};
use super::{CliError, CliResult, Ctx};
use crate::proto::Code;

pub const NAME: &str = "listquota";
pub const OPTION_STR: &str = "path";

const OPTIONS: Options = Options::new(&[]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    let limit_path = q::limit_path(path);
    super::err(&format!("absolute path is {limit_path}"));
    let mut tracks = Vec::new();
    for p in [limit_path, q::stat_path(path)] {
        super::validate_path(&p)?;
        match ctx.zk.get_data(&p, None) {
            Ok((data, _)) => {
                let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"")).into_owned();
                tracks.push(StatsTrack::parse(&text).unwrap_or_default());
            }
            Err(e) if e.code == Code::NoNode => {
                super::err(&format!("quota for {path} does not exist."));
                return Ok(false);
            }
            Err(e) => return Err(CliError::wrap(&e)),
        }
    }
    for (i, t) in tracks.iter().enumerate() {
        let what = if i == 0 { "quota" } else { "stat" };
        super::out(&format!("Output {what} for {path} {t}"));
    }
    Ok(false)
}
