//! `addauth scheme auth` (`AddAuthCommand`).

use super::command_line::{self, Options};
use super::{CliError, CliResult, Ctx};

pub const NAME: &str = "addauth";
pub const OPTION_STR: &str = "scheme auth";

const OPTIONS: Options = Options::new(&[]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let auth = cl.args.get(2).map(|a| a.as_bytes()).unwrap_or(b"");
    ctx.zk.add_auth_info(&cl.args[1], auth);
    Ok(false)
}
