//! `whoami` (`WhoAmICommand`).

use super::{CliResult, Ctx};

pub const NAME: &str = "whoami";
pub const OPTION_STR: &str = "";

pub fn run(ctx: &Ctx, _args: &[String]) -> CliResult<bool> {
    let infos = ctx.zk.who_am_i().map_err(|e| super::CliError::wrap(&e))?;
    super::out("Auth scheme: User");
    for i in infos {
        super::out(&format!("{}: {}", i.auth_scheme, i.user));
    }
    Ok(false)
}
