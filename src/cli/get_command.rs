//! `get [-s] [-w] path` (`GetCommand`).

use super::command_line::{self, opt, Options};
use super::{stat_printer, CliError, CliResult, Ctx};

pub const NAME: &str = "get";
pub const OPTION_STR: &str = "[-s] [-w] path";

const OPTIONS: Options = Options::new(&[opt("s", false, "stats"), opt("w", false, "watch")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let mut cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    if cl.args.len() > 2 {
        let mut rewritten = args.to_vec();
        rewritten[2] = "-w".to_owned();
        super::err("'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.");
        cl = command_line::parse(&OPTIONS, &rewritten).map_err(CliError::new)?;
    }
    let watch = cl.has("w");
    let path = cl.args.get(1).ok_or_else(|| CliError::new(format!("{NAME} {OPTION_STR}")))?;
    super::validate_path(path)?;
    let (data, stat) = ctx.zk.get_data(path, ctx.watch(watch)).map_err(|e| CliError::wrap(&e))?;
    super::out(&String::from_utf8_lossy(data.as_deref().unwrap_or(b"null")));
    if cl.has("s") {
        stat_printer::print(&stat);
    }
    Ok(watch)
}
