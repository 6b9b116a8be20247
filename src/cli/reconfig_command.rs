//! `reconfig [-s] [-v version] [[-file path] | [-members ...]] | [-add ...] [-remove ...]`
//! (`ReconfigCommand`).

use super::command_line::{self, opt, Options};
use super::{stat_printer, CliError, CliResult, Ctx};

pub const NAME: &str = "reconfig";
pub const OPTION_STR: &str = "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";

const OPTIONS: Options = Options::new(&[
    opt("s", false, "stats"),
    opt("v", true, "required current config version"),
    opt("file", true, "path of config file to parse for membership"),
    opt("members", true, "comma-separated list of config strings for non-incremental reconfig"),
    opt("add", true, "comma-separated list of config strings for new servers"),
    opt("remove", true, "comma-separated list of server IDs to remove"),
]);

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    let (file, members_opt, add, remove) = (cl.has("file"), cl.has("members"), cl.has("add"), cl.has("remove"));
    if !(file || members_opt || add || remove) {
        return Err(CliError::new(format!("{NAME} {OPTION_STR}")));
    }
    let version = match cl.value("v") {
        Some(v) => i64::from_str_radix(v, 16).map_err(|_| CliError::new("-v must be followed by a long (configuration version)"))?,
        None => -1,
    };
    if (file || members_opt) && (add || remove) {
        return Err(CliError::new(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)",
        ));
    }
    if file && members_opt {
        return Err(CliError::new("Can't use -file and -members together (conflicting non-incremental modes)"));
    }
    let joining = cl.value("add").map(str::to_lowercase);
    let leaving = cl.value("remove").map(str::to_lowercase);
    let mut members = cl.value("members").map(str::to_lowercase);
    if let Some(f) = cl.value("file") {
        // The membership lines of the file (upstream re-renders the parsed config).
        let text = std::fs::read_to_string(f).map_err(|e| CliError::new(format!("Error processing {f}{e}")))?;
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.starts_with("server.") || l.starts_with("version=")).collect();
        members = Some(lines.join("\n"));
    }
    let (data, stat) = ctx
        .zk
        .reconfig(joining.as_deref(), leaving.as_deref(), members.as_deref(), version)
        .map_err(|e| CliError::wrap(&e))?;
    super::out(&format!("Committed new configuration:\n{}", String::from_utf8_lossy(data.as_deref().unwrap_or(b"null"))));
    if cl.has("s") {
        stat_printer::print(&stat);
    }
    Ok(false)
}
