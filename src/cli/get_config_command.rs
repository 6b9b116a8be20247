//! `config [-c] [-w] [-s]` (`GetConfigCommand`).

use super::command_line::{self, opt, Options};
use super::{stat_printer, CliError, CliResult, Ctx};

pub const NAME: &str = "config";
pub const OPTION_STR: &str = "[-c] [-w] [-s]";

const OPTIONS: Options = Options::new(&[opt("s", false, "stats"), opt("w", false, "watch"), opt("c", false, "client connection string")]);

/// `ConfigUtils.getClientConfigStr`: `<version> <host:clientPort,...>` from the
/// `server.N=host:p1:p2[:role];[clientHost:]clientPort` lines of a dynamic config.
pub fn client_config_str(config: &str) -> String {
    let mut version = String::new();
    let mut servers = Vec::new();
    // Upstream walks a `Properties`: its entry order, not the text's.
    let pairs = config.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    for (k, v) in crate::common::java_hash::properties_order(pairs) {
        let (k, v) = (k.as_str(), v.as_str());
        if k == "version" {
            version = v.to_owned();
        }
        if !k.starts_with("server.") {
            continue;
        }
        let client = match v.split_once(';') {
            Some((_, c)) => c.trim(),
            None => continue,
        };
        let addr = match client.rsplit_once(':') {
            Some((h, p)) => format!("{h}:{p}"),
            None => format!("0.0.0.0:{client}"),
        };
        servers.push(addr);
    }
    format!("{version} {}", servers.join(","))
}

pub fn run(ctx: &Ctx, args: &[String]) -> CliResult<bool> {
    let cl = command_line::parse(&OPTIONS, args).map_err(CliError::new)?;
    let watch = cl.has("w");
    let (data, stat) = ctx.zk.get_config(ctx.watch(watch)).map_err(|e| CliError::wrap(&e))?;
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"null")).into_owned();
    if cl.has("c") {
        super::out(&client_config_str(&text));
    } else {
        super::out(&text);
    }
    if cl.has("s") {
        stat_printer::print(&stat);
    }
    Ok(watch)
}
