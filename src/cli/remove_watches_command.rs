//! `removewatches path [-c|-d|-a] [-l]` (`RemoveWatchesCommand`).

use super::command_line::{self, opt, Options};
use super::{CliError, CliResult, Ctx};

pub const NAME: &str = "removewatches";
pub const OPTION_STR: &str = "path [-c|-d|-a] [-l]";

const OPTIONS: Options = Options::new(&[
    opt("c", false, "child watcher type"),
    opt("d", false, "data watcher type"),
    opt("a", false, "any watcher type"),
    opt("l", false, "remove locally when there is no server connection"),
]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    // WatcherType: Children 1, Data 2, Any 3.
    let wtype = if cl.has("c") {
        1
    } else if cl.has("d") {
        2
    } else {
        3
    };
    super::validate_path(path)?;
    ctx.zk.remove_all_watches(path, wtype, cl.has("l")).map_err(|e| CliError::wrap(&e))?;
    Ok(true)
}
