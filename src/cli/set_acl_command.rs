//! `setAcl [-s] [-v version] [-R] path acl` (`SetAclCommand`).

use std::io::Write;

use super::command_line::{self, opt, Options};
use super::{acl_parser, stat_printer, zk_util, CliError, CliResult, Ctx};
use crate::client::KeeperError;
use crate::proto::Code;

pub const NAME: &str = "setAcl";
pub const OPTION_STR: &str = "[-s] [-v version] [-R] path acl";

const OPTIONS: Options = Options::new(&[opt("s", false, "stats"), opt("v", true, "version"), opt("R", false, "recursive")]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    if cl.args.len() < 3 {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let path = &cl.args[1];
    let acl = acl_parser::parse(&cl.args[2]);
    let version = super::set_command::version_option(if cl.has("v") { Some(cl.value("v").unwrap_or("")) } else { None })?;
    let set = |p: &str| -> Result<crate::proto::data::Stat, KeeperError> {
        if acl.is_empty() {
            return Err(KeeperError::new(Code::InvalidAcl));
        }
        ctx.zk.set_acl(p, &acl, version)
    };
    if cl.has("R") {
        zk_util::visit_sub_tree_dfs(ctx.zk, path, None, &mut |p| {
            if let Err(e) = set(p) {
                // Upstream prints the message without a line end.
                let mut o = std::io::stdout().lock();
                let _ = write!(o, "{e}");
                let _ = o.flush();
            }
            Ok(())
        })
        .map_err(zk_util::WalkError::into_cli)?;
    } else {
        super::validate_path(path)?;
        let stat = set(path).map_err(|e| CliError::wrap(&e))?;
        if cl.has("s") {
            stat_printer::print(&stat);
        }
    }
    Ok(false)
}
