//! `deleteall path [-b batch size]` (`DeleteAllCommand`).

use super::command_line::{self, opt, Options};
use super::{zk_util, CliError, CliResult, Ctx};

pub const NAME: &str = "deleteall";
pub const OPTION_STR: &str = "path [-b batch size]";

const OPTIONS: Options = Options::new(&[opt("b", true, "batch size")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let batch = match cl.value("b") {
        Some(b) if cl.has("b") => super::parse_java_int(b).ok_or_else(|| CliError::new("-b argument must be an int value"))?,
        _ => 1000,
    };
    let path = &cl.args[1];
    if !zk_util::delete_recursive(ctx.zk, path, batch).map_err(zk_util::WalkError::into_cli)? {
        super::err("Failed to delete some node(s) in the subtree!");
    }
    Ok(false)
}
