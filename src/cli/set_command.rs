//! `set [-s] [-v version] path data` (`SetCommand`).

use super::command_line::{self, opt, Options};
use super::{stat_printer, CliError, CliResult, Ctx};

pub const NAME: &str = "set";
pub const OPTION_STR: &str = "[-s] [-v version] path data";

const OPTIONS: Options = Options::new(&[opt("s", false, "stats"), opt("v", true, "version")]);

/// The version option as `Integer.parseInt` reads it. Upstream lets the
/// NumberFormatException escape: the shell dies (exit code 1).
pub fn version_option(v: Option<&str>) -> CliResult<i32> {
    match v {
        None => Ok(-1),
        Some(v) => super::parse_java_int(v).ok_or_else(|| CliError::uncaught(format!("java.lang.NumberFormatException: {}", super::number_format_message(v)))),
    }
}

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 3 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    let data = cl.args[2].as_bytes();
    let version = version_option(if cl.has("v") { Some(cl.value("v").unwrap_or("")) } else { None })?;
    super::validate_path(path)?;
    let stat = ctx.zk.set_data(path, Some(data), version).map_err(|e| CliError::wrap(&e))?;
    if cl.has("s") {
        stat_printer::print(&stat);
    }
    Ok(false)
}
