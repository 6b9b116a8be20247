//! `version` (`VersionCommand`).

use super::command_line::{self, Options};
use super::{CliError, CliResult, Ctx};

pub const NAME: &str = "version";
pub const OPTION_STR: &str = "";

const OPTIONS: Options = Options::new(&[]);

pub fn run(_ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() > 1 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    super::out(&format!("ZooKeeper CLI version: {}", crate::version::full_version()));
    Ok(false)
}
