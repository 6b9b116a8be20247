//! `getAllChildrenNumber path` (`GetAllChildrenNumberCommand`).

use super::command_line::{self, Options};
use super::{CliError, CliResult, Ctx};

pub const NAME: &str = "getAllChildrenNumber";
pub const OPTION_STR: &str = "path";

const OPTIONS: Options = Options::new(&[]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    super::validate_path(path)?;
    let n = ctx.zk.get_all_children_number(path).map_err(|e| CliError::wrap(&e))?;
    super::out(&n.to_string());
    Ok(false)
}
