//! `CommandFactory` and `ZooKeeperMain.commandMap`: every command zkCli knows, with
//! the option text its usage line shows.

use super::*;

/// A command that runs against a session: parses its words (the command name first)
/// and executes; `Ok(true)` when it left a watch.
pub type RunFn = fn(&Ctx, &[String]) -> CliResult<bool>;

pub struct CliCommand {
    pub name: &'static str,
    pub option_str: &'static str,
    pub run: RunFn,
}

macro_rules! cmd {
    ($m:ident) => {
        CliCommand { name: $m::NAME, option_str: $m::OPTION_STR, run: $m::run }
    };
}

/// The `cli/*Command` classes.
pub const COMMANDS: &[CliCommand] = &[
    cmd!(close_command),
    cmd!(create_command),
    cmd!(delete_command),
    cmd!(delete_all_command),
    cmd!(set_command),
    cmd!(get_command),
    cmd!(ls_command),
    cmd!(get_acl_command),
    cmd!(set_acl_command),
    cmd!(stat_command),
    cmd!(sync_command),
    cmd!(set_quota_command),
    cmd!(list_quota_command),
    cmd!(del_quota_command),
    cmd!(add_auth_command),
    cmd!(reconfig_command),
    cmd!(get_config_command),
    cmd!(remove_watches_command),
    cmd!(get_ephemerals_command),
    cmd!(get_all_children_number_command),
    cmd!(version_command),
    cmd!(add_watch_command),
    cmd!(who_am_i_command),
];

/// Commands the shell itself handles.
pub const SHELL_COMMANDS: &[(&str, &str)] = &[("connect", "host:port"), ("history", ""), ("redo", "cmdno"), ("printwatches", "on|off"), ("quit", "")];

pub fn get(name: &str) -> Option<&'static CliCommand> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// `commandMap`: (name, options) of every command, sorted by name.
pub fn command_map() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> = SHELL_COMMANDS.to_vec();
    v.extend(COMMANDS.iter().map(|c| (c.name, c.option_str)));
    v.sort();
    v
}

pub fn is_command(name: &str) -> bool {
    get(name).is_some() || SHELL_COMMANDS.iter().any(|(n, _)| *n == name)
}
