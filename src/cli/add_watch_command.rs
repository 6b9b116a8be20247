//! `addWatch [-m mode] path` (`AddWatchCommand`).

use super::command_line::{self, opt, Options};
use super::{CliError, CliResult, Ctx};
use crate::proto::add_watch_mode;

pub const NAME: &str = "addWatch";
pub const OPTION_STR: &str = "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE";

const OPTIONS: Options = Options::new(&[opt("m", true, "")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let usage = || CliError::new(format!("{NAME} {OPTION_STR}"));
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() != 2 {
        return Err(usage());
    }
    let mode = match cl.value("m") {
        None => add_watch_mode::PERSISTENT_RECURSIVE,
        Some(m) => match m.to_uppercase().as_str() {
            "PERSISTENT" => add_watch_mode::PERSISTENT,
            "PERSISTENT_RECURSIVE" => add_watch_mode::PERSISTENT_RECURSIVE,
            _ => return Err(usage()),
        },
    };
    let path = &cl.args[1];
    super::validate_path(path)?;
    ctx.zk.add_watch(path, ctx.watcher.clone(), mode).map_err(|e| CliError::wrap(&e))?;
    Ok(false)
}
