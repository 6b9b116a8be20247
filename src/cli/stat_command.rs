//! `stat [-w] path` (`StatCommand`).

use super::command_line::{self, opt, Options};
use super::{stat_printer, CliError, CliResult, Ctx};
use crate::client::KeeperError;
use crate::proto::Code;

pub const NAME: &str = "stat";
pub const OPTION_STR: &str = "[-w] path";

const OPTIONS: Options = Options::new(&[opt("w", false, "watch")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let mut cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    if cl.args.len() > 2 {
        let mut rewritten = args.to_vec();
        rewritten[2] = "-w".to_owned();
        super::err("'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.");
        cl = command_line::parse(&OPTIONS, &rewritten).map_err(CliError::new)?;
    }
    let path = cl.args.get(1).ok_or_else(|| CliError::new(format!("{NAME} {OPTION_STR}")))?;
    let watch = cl.has("w");
    super::validate_path(path)?;
    match ctx.zk.exists(path, ctx.watch(watch)).map_err(|e| CliError::wrap(&e))? {
        Some(stat) => stat_printer::print(&stat),
        None => return Err(CliError::wrap(&KeeperError::with_path(Code::NoNode, path))),
    }
    Ok(watch)
}
