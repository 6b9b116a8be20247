//! `delete [-v version] path` (`DeleteCommand`).

use super::command_line::{self, opt, Options};
use super::{CliError, CliResult, Ctx};

pub const NAME: &str = "delete";
pub const OPTION_STR: &str = "[-v version] path";

const OPTIONS: Options = Options::new(&[opt("v", true, "version")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    if cl.args.len() > 2 {
        // Deprecated `delete path version`: upstream only warns; the version word is
        // not used (the node is deleted whatever its version).
        super::err("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
    }
    let path = &cl.args[1];
    let version = super::set_command::version_option(if cl.has("v") { Some(cl.value("v").unwrap_or("")) } else { None })?;
    super::validate_path(path)?;
    ctx.zk.delete(path, version).map_err(|e| CliError::wrap(&e))?;
    Ok(false)
}
