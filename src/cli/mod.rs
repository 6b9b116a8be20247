//! `org.apache.zookeeper.ZooKeeperMain` and `org.apache.zookeeper.cli`: the zkCli shell.
//!
//! One module per upstream command class (`*_command.rs`), the shell loop in
//! [`zookeeper_main`], and the helpers the commands share: a commons-cli style option
//! parser ([`command_line`]), [`stat_printer`], [`acl_parser`], [`stats_track`] (quota
//! text) and [`zk_util`] (tree walks).

pub mod acl_parser;
pub mod add_auth_command;
pub mod add_watch_command;
pub mod close_command;
pub mod command_factory;
pub mod command_line;
pub mod create_command;
pub mod del_quota_command;
pub mod delete_all_command;
pub mod delete_command;
pub mod get_acl_command;
pub mod get_all_children_number_command;
pub mod get_command;
pub mod get_config_command;
pub mod get_ephemerals_command;
pub mod list_quota_command;
pub mod ls_command;
pub mod reconfig_command;
pub mod remove_watches_command;
pub mod set_acl_command;
pub mod set_command;
pub mod set_quota_command;
pub mod stat_command;
pub mod stat_printer;
pub mod stats_track;
pub mod sync_command;
pub mod version_command;
pub mod who_am_i_command;
pub mod zk_util;
pub mod zookeeper_main;

use std::io::Write;

use crate::client::{KeeperError, Watcher, ZooKeeper};
use crate::proto::Code;

/// `CliException`: the message zkCli prints on stderr and the process exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub exit_code: i32,
    /// An exception upstream does not catch (e.g. NumberFormatException from
    /// `set -v abc`): the shell prints `Exception in thread "main" <message>` and the
    /// process exits with 1, also in interactive mode.
    pub uncaught: bool,
}

impl CliError {
    /// `MalformedCommandException`, `MalformedPathException`, `CliParseException(String)`.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), exit_code: 1, uncaught: false }
    }

    /// An uncaught Java exception, e.g. `java.lang.NumberFormatException: For input string: "x"`.
    pub fn uncaught(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), exit_code: 1, uncaught: true }
    }

    /// `CommandNotFoundException` (exit code 127).
    pub fn command_not_found(command: &str) -> CliError {
        CliError { message: format!("Command not found: {command}"), exit_code: 127, uncaught: false }
    }

    /// `CliWrapperException(KeeperException)`: the friendly text for the common codes.
    pub fn wrap(e: &KeeperError) -> CliError {
        let p = e.path.as_deref().unwrap_or("null");
        let message = match e.code {
            Code::NoNode => format!("Node does not exist: {p}"),
            Code::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
            Code::NodeExists => format!("Node already exists: {p}"),
            Code::NotEmpty => format!("Node not empty: {p}"),
            Code::NotReadOnly => format!("Not a read-only call: {p}"),
            Code::InvalidAcl => format!("Acl is not valid : {p}"),
            Code::NoAuth => format!("Insufficient permission : {p}"),
            Code::BadArguments => format!("Arguments are not valid : {p}"),
            Code::BadVersion => format!("version No is not valid : {p}"),
            Code::ReconfigInProgress => "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".to_owned(),
            Code::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last committed config - try invoking reconfiguration after new servers are connected and synced".to_owned(),
            Code::QuotaExceeded => format!("Quota has exceeded : {p}"),
            _ => e.to_string(),
        };
        CliError::new(message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

pub type CliResult<T> = Result<T, CliError>;

/// What a command runs against: the session and the shell's default watcher (what
/// upstream's `watch = true` means).
pub struct Ctx<'a> {
    pub zk: &'a ZooKeeper,
    pub watcher: &'a Watcher,
}

impl Ctx<'_> {
    pub fn watch(&self, yes: bool) -> Option<Watcher> {
        yes.then(|| self.watcher.clone())
    }
}

/// `System.out.println` (errors writing to a closed stdout are ignored, as Java does).
pub fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// `System.err.println`.
pub fn err(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// `PathUtils.validatePath` as the Java client runs it before a call: the
/// IllegalArgumentException text becomes a `MalformedPathException`.
pub fn validate_path(path: &str) -> CliResult<()> {
    crate::common::path_utils::validate_path(path).map_err(CliError::new)
}

/// Java's `Integer.parseInt` (optional sign, decimal digits, 32-bit range).
pub fn parse_java_int(s: &str) -> Option<i32> {
    parse_java_long(s).and_then(|v| i32::try_from(v).ok())
}

/// Java's `Long.parseLong`.
pub fn parse_java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// The message of the NumberFormatException `Integer.parseInt`/`Long.parseLong` throw.
pub fn number_format_message(s: &str) -> String {
    format!("For input string: \"{s}\"")
}
