//! `ZooKeeperMain`: the zkCli shell. With a command on the command line it runs that
//! command once and exits with its code; otherwise it reads commands from the terminal
//! (rustyline: line editing, history, completion of commands and znode paths) or, when
//! stdin is not a terminal, line by line from stdin (upstream without JLine).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{command_factory, err, out, CliError, Ctx};
use crate::client::{States, WatchedEvent, Watcher, ZooKeeper};
use crate::proto::{event_type, keeper_state};

/// How a command can end: a `CliException`, or an exception upstream does not catch
/// (the JVM then prints it and exits with 1).
enum CmdError {
    Cli(CliError),
    Fatal(String),
}

impl From<CliError> for CmdError {
    fn from(e: CliError) -> Self {
        CmdError::Cli(e)
    }
}

type SharedZk = Arc<Mutex<Option<Arc<ZooKeeper>>>>;

pub struct ZooKeeperMain {
    server: String,
    timeout: String,
    read_only: bool,
    wait_for_connection: bool,
    /// The words of the command line after the options (batch mode), or of the last
    /// parsed shell line.
    cmd_args: Option<Vec<String>>,
    history: HashMap<i32, String>,
    command_count: i32,
    print_watches: Arc<AtomicBool>,
    exit_code: i32,
    zk: SharedZk,
    /// The session's default watcher; commands that watch pass this same watcher
    /// (upstream's `watch = true`), so an event reaches it once.
    watcher: Option<Watcher>,
    host: String,
}

/// `ZooKeeper.States` names, as the prompt shows them.
pub fn state_name(s: States) -> &'static str {
    match s {
        States::Connecting => "CONNECTING",
        States::Associating => "ASSOCIATING",
        States::Connected => "CONNECTED",
        States::ConnectedReadOnly => "CONNECTEDREADONLY",
        States::Closed => "CLOSED",
        States::AuthFailed => "AUTH_FAILED",
        States::NotConnected => "NOT_CONNECTED",
    }
}

/// `usage()`, on stderr.
pub fn usage() {
    let mut text = String::from("ZooKeeper -server host:port -client-configuration properties-file cmd args");
    for (name, opts) in command_factory::command_map() {
        text.push_str(&format!("\n\t{name} {opts}"));
    }
    err(&text);
}

/// `MyCommandOptions.parseCommand`: words split on white space; a word starting with a
/// quote runs to the matching quote, and surrounding quotes are removed.
pub fn parse_command_line(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut p = 0;
    while p < n {
        let mut q = p;
        while q < n && chars[q].is_whitespace() {
            q += 1;
        }
        let word_end = |from: usize| {
            let mut e = from;
            while e < n && !chars[e].is_whitespace() {
                e += 1;
            }
            e
        };
        let span = if q >= n {
            // Only white space left: the pattern can still match one white-space
            // character as a word (after backtracking), unless nothing was skipped.
            if q > p {
                Some((q - 1, q))
            } else {
                None
            }
        } else if chars[q] == '"' || chars[q] == '\'' {
            match chars[q + 1..].iter().position(|c| *c == chars[q]) {
                Some(off) => Some((q, q + 1 + off + 1)),
                None if q > p => Some((q - 1, word_end(q))),
                None => None,
            }
        } else {
            Some((q, word_end(q + 1)))
        };
        match span {
            Some((s, e)) => {
                let mut w: String = chars[s..e].iter().collect();
                let wc: Vec<char> = w.chars().collect();
                if wc.len() >= 2 && (wc[0] == '"' || wc[0] == '\'') && wc[wc.len() - 1] == wc[0] {
                    w = wc[1..wc.len() - 1].iter().collect();
                }
                words.push(w);
                let mut t = e;
                while t < n && chars[t].is_whitespace() {
                    t += 1;
                }
                p = t;
            }
            None => p += 1,
        }
    }
    words
}

/// `Integer.decode`: decimal, `0x`/`#` hex or leading-zero octal, optional sign.
fn java_decode(s: &str) -> Option<i32> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")).or_else(|| body.strip_prefix('#')) {
        (16, h)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || digits.starts_with(['-', '+']) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    i32::try_from(if neg { -v } else { v }).ok()
}

impl ZooKeeperMain {
    /// `MyCommandOptions.parseOptions`: -server, -timeout, -r, -client-configuration,
    /// -waitforconnection; the first word not starting with `-` starts the command.
    pub fn new(args: &[String]) -> ZooKeeperMain {
        let mut m = ZooKeeperMain {
            server: "localhost:2181".to_owned(),
            timeout: "30000".to_owned(),
            read_only: false,
            wait_for_connection: false,
            cmd_args: None,
            history: HashMap::new(),
            command_count: 0,
            print_watches: Arc::new(AtomicBool::new(true)),
            exit_code: 0,
            zk: Arc::new(Mutex::new(None)),
            watcher: None,
            host: String::new(),
        };
        let mut it = args.iter();
        while let Some(opt) = it.next() {
            let value = |it: &mut std::slice::Iter<String>| {
                let v = it.next().cloned();
                if v.is_none() {
                    err(&format!("Error: no argument found for option {opt}"));
                }
                v
            };
            match opt.as_str() {
                "-server" => match value(&mut it) {
                    Some(v) => m.server = v,
                    None => break,
                },
                "-timeout" => match value(&mut it) {
                    Some(v) => m.timeout = v,
                    None => break,
                },
                "-r" => m.read_only = true,
                // Client properties files (TLS, SASL) are not supported; the option
                // and its value are accepted and ignored.
                "-client-configuration" if value(&mut it).is_none() => break,
                "-waitforconnection" => m.wait_for_connection = true,
                _ => {}
            }
            if !opt.starts_with('-') {
                let mut words = vec![opt.clone()];
                words.extend(it.by_ref().cloned());
                m.cmd_args = Some(words);
                break;
            }
        }
        m
    }

    fn current_zk(&self) -> Option<Arc<ZooKeeper>> {
        self.zk.lock().ok().and_then(|g| g.clone())
    }

    /// `MyWatcher`: prints events (when printwatches is on) and opens the connect latch.
    fn make_watcher(&self, latch: Option<Arc<(Mutex<bool>, Condvar)>>) -> Watcher {
        let print = self.print_watches.clone();
        Arc::new(move |e: &WatchedEvent| {
            if print.load(Ordering::Acquire) {
                out(&format!("\nWATCHER::\n\n{e}"));
            }
            if let Some(l) = &latch {
                if e.event_type == event_type::NONE && e.state == keeper_state::SYNC_CONNECTED {
                    if let Ok(mut g) = l.0.lock() {
                        *g = true;
                        l.1.notify_all();
                    }
                }
            }
        })
    }

    /// `connectToZK`.
    fn connect_to_zk(&mut self, new_host: &str) -> Result<(), String> {
        if let Some(zk) = self.current_zk() {
            if zk.state().is_alive() {
                zk.close();
            }
        }
        self.host = new_host.to_owned();
        let latch = self.wait_for_connection.then(|| Arc::new((Mutex::new(false), Condvar::new())));
        let timeout = super::parse_java_int(&self.timeout)
            .ok_or_else(|| format!("java.lang.NumberFormatException: {}", super::number_format_message(&self.timeout)))?;
        let watcher = self.make_watcher(latch.clone());
        let zk = ZooKeeper::connect_with(&self.host, timeout, Some(watcher.clone()), None, self.read_only)
            .map_err(|e| format!("java.lang.IllegalArgumentException: {e}"))?;
        let zk = Arc::new(zk);
        self.watcher = Some(watcher);
        if let Ok(mut g) = self.zk.lock() {
            *g = Some(zk.clone());
        }
        if let Some(l) = latch {
            let deadline = Instant::now() + Duration::from_millis(timeout.max(0) as u64);
            let mut connected = l.0.lock().map_err(|_| "latch poisoned".to_owned())?;
            while !*connected {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                connected = l.1.wait_timeout(connected, left).map_err(|_| "latch poisoned".to_owned())?.0;
            }
            if !*connected {
                drop(connected);
                zk.close();
                return Err("java.io.IOException: org.apache.zookeeper.KeeperException$ConnectionLossException: KeeperErrorCode = ConnectionLoss".to_owned());
            }
        }
        Ok(())
    }

    fn prompt(&self) -> String {
        let state = self.current_zk().map(|z| state_name(z.state())).unwrap_or("CLOSED");
        format!("[zk: {}({}) {}] ", self.host, state, self.command_count)
    }

    /// Runs the shell; never returns (the process exits with the last command's code).
    pub fn run(mut self) -> ! {
        match self.cmd_args.clone() {
            Some(args) => {
                self.process_cmd(&args);
            }
            None => {
                out("Welcome to ZooKeeper!");
                if std::io::stdin().is_terminal() && self.run_line_editor() {
                    // done
                } else {
                    out("JLine support is disabled");
                    let stdin = std::io::stdin();
                    let mut lines = stdin.lock();
                    let mut buf = Vec::new();
                    loop {
                        buf.clear();
                        match lines.read_until(b'\n', &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                let line = String::from_utf8_lossy(&buf);
                                let line = line.strip_suffix('\n').unwrap_or(&line);
                                let line = line.strip_suffix('\r').unwrap_or(line).to_owned();
                                self.execute_line(&line);
                            }
                        }
                    }
                }
            }
        }
        // Like upstream, exit without closing the session.
        std::process::exit(self.exit_code)
    }

    /// The interactive loop with rustyline. False if the terminal cannot be used.
    fn run_line_editor(&mut self) -> bool {
        let config = rustyline::Config::builder().auto_add_history(false).max_history_size(500).map(|b| b.build());
        let Ok(config) = config else { return false };
        let Ok(mut editor) = rustyline::Editor::<ZNodeCompleter, rustyline::history::DefaultHistory>::with_config(config) else {
            return false;
        };
        editor.set_helper(Some(ZNodeCompleter { zk: self.zk.clone() }));
        out("JLine support is enabled");
        loop {
            match editor.readline(&self.prompt()) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    self.execute_line(&line);
                }
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => break,
            }
        }
        true
    }

    /// `executeLine`.
    pub fn execute_line(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        let words = parse_command_line(line);
        if !words.is_empty() {
            self.cmd_args = Some(words);
        }
        self.history.insert(self.command_count, line.to_owned());
        // A blank (white-space only) line re-runs the previous command, as upstream's
        // parser leaves the previous words in place.
        let args = self.cmd_args.clone().unwrap_or_default();
        self.process_cmd(&args);
        self.command_count += 1;
    }

    /// `processCmd`: runs one command and records its exit code.
    fn process_cmd(&mut self, args: &[String]) {
        match self.process_zk_cmd(args) {
            Ok(_) => self.exit_code = 0,
            Err(CmdError::Cli(e)) if e.uncaught => {
                err(&format!("Exception in thread \"main\" {}", e.message));
                std::process::exit(1);
            }
            Err(CmdError::Cli(e)) => {
                self.exit_code = e.exit_code;
                err(&e.message);
            }
            Err(CmdError::Fatal(msg)) => {
                err(&format!("Exception in thread \"main\" {msg}"));
                std::process::exit(1);
            }
        }
    }

    fn process_zk_cmd(&mut self, args: &[String]) -> Result<bool, CmdError> {
        let Some(cmd) = args.first().cloned() else {
            usage();
            return Err(CliError::new("No command entered").into());
        };
        if !command_factory::is_command(&cmd) {
            usage();
            return Err(CliError::command_not_found(&format!("Command not found {cmd}")).into());
        }
        match cmd.as_str() {
            "quit" => {
                if let Some(zk) = self.current_zk() {
                    zk.close();
                }
                std::process::exit(self.exit_code);
            }
            "redo" if args.len() >= 2 => {
                let i = java_decode(&args[1])
                    .ok_or_else(|| CmdError::Fatal(format!("java.lang.NumberFormatException: {}", super::number_format_message(&args[1]))))?;
                if self.command_count <= i || i < 0 {
                    return Err(CliError::new("Command index out of range").into());
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let words = parse_command_line(&line);
                if !words.is_empty() {
                    self.cmd_args = Some(words);
                }
                let redo_args = self.cmd_args.clone().unwrap_or_default();
                if redo_args.first().map(String::as_str) == Some("redo") {
                    return Err(CliError::new("No redoing redos").into());
                }
                self.history.insert(self.command_count, line);
                self.process_cmd(&redo_args);
            }
            "history" => {
                for i in (self.command_count - 10).max(0)..=self.command_count {
                    out(&format!("{i} - {}", self.history.get(&i).map(String::as_str).unwrap_or("null")));
                }
            }
            "printwatches" => {
                if args.len() == 1 {
                    out(&format!("printwatches is {}", if self.print_watches.load(Ordering::Acquire) { "on" } else { "off" }));
                } else {
                    self.print_watches.store(args[1] == "on", Ordering::Release);
                }
            }
            "connect" => {
                let host = if args.len() >= 2 { args[1].clone() } else { self.host.clone() };
                self.connect_to_zk(&host).map_err(CmdError::Fatal)?;
            }
            _ => {}
        }
        let zk = match self.current_zk() {
            Some(zk) if zk.state().is_alive() => zk,
            _ => {
                out("Not connected");
                return Ok(false);
            }
        };
        match command_factory::get(&cmd) {
            Some(c) => {
                let watcher = self.watcher.clone().unwrap_or_else(|| self.make_watcher(None));
                let ctx = Ctx { zk: &zk, watcher: &watcher };
                Ok((c.run)(&ctx, args)?)
            }
            None => Ok(false),
        }
    }
}

/// `JLineZNodeCompleter`: completes command names, and znode paths for words starting
/// with `/` (children of the parent path, read from the server).
pub struct ZNodeCompleter {
    zk: SharedZk,
}

impl rustyline::completion::Completer for ZNodeCompleter {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _ctx: &rustyline::Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let buffer = line.get(..pos).unwrap_or(line);
        let token = if buffer.ends_with(' ') { "" } else { buffer.rsplit(' ').next().unwrap_or("") };
        if token.starts_with('/') {
            let idx = token.rfind('/').map_or(0, |i| i + 1);
            let prefix = &token[idx..];
            let dir = if idx == 1 { "/" } else { &token[..idx - 1] };
            let zk = self.zk.lock().ok().and_then(|g| g.clone());
            let mut children: Vec<String> = match zk.map(|z| z.get_children(dir, None)) {
                Some(Ok(c)) => c.into_iter().filter(|c| c.starts_with(prefix)).collect(),
                _ => return Ok((0, Vec::new())),
            };
            children.sort();
            let start = if children.is_empty() { buffer.len() } else { buffer.rfind('/').map_or(0, |i| i + 1) };
            return Ok((start, children));
        }
        let names: Vec<String> = command_factory::command_map().into_iter().map(|(n, _)| n).filter(|n| n.starts_with(token)).map(str::to_owned).collect();
        Ok((buffer.rfind(' ').map_or(0, |i| i + 1), names))
    }
}

impl rustyline::hint::Hinter for ZNodeCompleter {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for ZNodeCompleter {}
impl rustyline::validate::Validator for ZNodeCompleter {}
impl rustyline::Helper for ZNodeCompleter {}

/// The `main` of zkCli: `[-server host:port[,...][/chroot]] [-timeout ms] [-r]
/// [-waitforconnection] [cmd args...]`.
pub fn main_with_args(args: &[String]) -> ! {
    let mut m = ZooKeeperMain::new(args);
    out(&format!("Connecting to {}", m.server));
    let server = m.server.clone();
    if let Err(e) = m.connect_to_zk(&server) {
        err(&format!("Exception in thread \"main\" {e}"));
        std::process::exit(1);
    }
    m.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_upstream() {
        assert_eq!(parse_command_line("create /a \"hello world\" 'x y'"), vec!["create", "/a", "hello world", "x y"]);
        assert_eq!(parse_command_line("  ls   /  "), vec!["ls", "/"]);
        assert_eq!(parse_command_line("set /a \"\""), vec!["set", "/a", ""]);
        assert_eq!(parse_command_line("set /a 'abc"), vec!["set", "/a", "abc"]);
        assert_eq!(parse_command_line(" 'abc"), vec![" 'abc"]);
        assert_eq!(java_decode("0x10"), Some(16));
        assert_eq!(java_decode("010"), Some(8));
        assert_eq!(java_decode("-3"), Some(-3));
        assert_eq!(java_decode("x"), None);
    }
}
