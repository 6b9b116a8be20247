//! `getEphemerals path` (`GetEphemeralsCommand`).

use super::command_line::{self, Options};
use super::{CliError, CliResult, Ctx};

pub const NAME: &str = "getEphemerals";
pub const OPTION_STR: &str = "path";

const OPTIONS: Options = Options::new(&[]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    let path = cl.args.get(1).map(String::as_str).unwrap_or("/");
    super::validate_path(path)?;
    let eph = ctx.zk.get_ephemerals(path).map_err(|e| CliError::wrap(&e))?;
    super::out(&format!("[{}]", eph.join(", ")));
    Ok(false)
}
