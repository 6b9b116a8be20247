//! `ls [-s] [-w] [-R] path` (`LsCommand`).

use super::command_line::{self, opt, Options};
use super::{stat_printer, zk_util, CliError, CliResult, Ctx};

pub const NAME: &str = "ls";
pub const OPTION_STR: &str = "[-s] [-w] [-R] path";

const OPTIONS: Options = Options::new(&[opt("?", false, "help"), opt("s", false, "stat"), opt("w", false, "watch"), opt("R", false, "recurse")]);

/// `HelpFormatter.printHelp("ls [options] path", options)`.
fn print_help() {
    super::out("usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch");
}

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let mut cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.has("?") {
        print_help();
    }
    if cl.args.len() > 2 {
        // Deprecated `ls path watch`: the third word becomes -w.
        let mut rewritten = args.to_vec();
        rewritten[2] = "-w".to_owned();
        super::err("'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.");
        cl = command_line::parse(&OPTIONS, &rewritten).map_err(CliError::new)?;
    }
    if cl.args.len() < 2 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    let watch = cl.has("w");
    if cl.has("R") {
        let w = ctx.watch(watch);
        zk_util::visit_sub_tree_dfs(ctx.zk, path, w.as_ref(), &mut |p| {
            super::out(p);
            Ok(())
        })
        .map_err(zk_util::WalkError::into_cli)?;
    } else {
        super::validate_path(path)?;
        let (mut children, stat) = if cl.has("s") {
            let (c, s) = ctx.zk.get_children2(path, ctx.watch(watch)).map_err(|e| CliError::wrap(&e))?;
            (c, Some(s))
        } else {
            (ctx.zk.get_children(path, ctx.watch(watch)).map_err(|e| CliError::wrap(&e))?, None)
        };
        children.sort();
        super::out(&format!("[{}]", children.join(", ")));
        if let Some(s) = stat {
            stat_printer::print(&s);
        }
    }
    Ok(watch)
}
