//! `close` (`CloseCommand`).

use super::{CliResult, Ctx};

pub const NAME: &str = "close";
pub const OPTION_STR: &str = "";

pub fn run(ctx: &Ctx, _args: &[String]) -> CliResult<bool> {
    ctx.zk.close();
    Ok(false)
}
