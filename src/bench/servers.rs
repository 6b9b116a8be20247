//! Server processes for `zk-bench compare` and `benches/standalone_compare.rs`: Apache
//! ZooKeeper 3.8 standalone (`ZooKeeperServerMain`) and our `zk-server`, each with its
//! own directory, zoo.cfg, dataDir and log, on a free loopback port.
//!
//! Servers are killed when their `ManagedServer` is dropped (every exit path that
//! unwinds), and `PR_SET_PDEATHSIG` kills them when the bench process dies without
//! unwinding (SIGKILL, a CI time limit).

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::workload::connect_many;

/// Where Debian's packages put the Apache jars.
pub const DEFAULT_APACHE_JARS_DIR: &str = "/usr/share/java";
pub const DEFAULT_JAVA: &str = "/usr/bin/java";
/// `zookeeper.jar`'s manifest names the other runtime jars; slf4j-simple is the
/// logging binding (Debian puts none on the class path).
pub const APACHE_JARS: [&str; 4] = ["zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar"];
const APACHE_MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
/// A production-like JVM for a server with a 2 GB heap.
pub const APACHE_JVM_FLAGS: &[&str] = &["-server", "-Xmx2g", "-XX:+UseParallelGC", "-Djava.net.preferIPv4Stack=true"];
/// Warnings only, plus the snapshot / restore lines, so both servers log about as much.
pub const APACHE_LOG_FLAGS: &[&str] = &[
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.ZooKeeperServer=info",
    "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.ZKDatabase=info",
    "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.persistence=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss,SSS",
    "-Dorg.slf4j.simpleLogger.logFile=System.out",
];
/// `RUST_LOG` of our server: the counterpart of `APACHE_LOG_FLAGS`.
pub const OURS_RUST_LOG: &str = "warn,zookeeper::server::zookeeper_server=info,zookeeper::server::persistence=info";
const LOOPBACK: &str = "127.0.0.1";
/// Longest start-up (or restart) we wait for; a JVM on a busy 2-core machine with a
/// big snapshot to load can take tens of seconds.
pub const START_TIMEOUT: Duration = Duration::from_secs(180);
/// Longest a signalled server may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

extern "C" {
    fn prctl(option: i32, ...) -> i32;
    fn getppid() -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const PR_SET_PDEATHSIG: i32 = 1;
const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Apache,
    Ours,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Apache => "apache",
            Kind::Ours => "ours",
        }
    }
}

/// The two server programs.
#[derive(Clone, Debug)]
pub struct ServerPrograms {
    pub java: PathBuf,
    pub apache_jars_dir: PathBuf,
    pub ours: PathBuf,
}

impl ServerPrograms {
    /// Checks that both servers can be started, with a message saying what to install.
    pub fn check(&self) -> Result<(), String> {
        let mut missing = Vec::new();
        if !self.java.is_file() {
            missing.push(self.java.display().to_string());
        }
        for jar in APACHE_JARS {
            let p = self.apache_jars_dir.join(jar);
            if !p.is_file() {
                missing.push(p.display().to_string());
            }
        }
        if !missing.is_empty() {
            return Err(format!(
                "Apache ZooKeeper 3.8 is not installed (missing: {}). Install the Debian packages with \
                 bin/test.sh (or: apt-get install zookeeper), or point --java / --apache-jars at them.",
                missing.join(", ")
            ));
        }
        if !self.ours.is_file() {
            return Err(format!(
                "zk-server not found at {}: build it (cargo build --release --bin zk-server) or pass --server-bin",
                self.ours.display()
            ));
        }
        Ok(())
    }

    /// As [`check`](Self::check), for only the kinds a run starts.
    pub fn check_for(&self, kinds: &[Kind]) -> Result<(), String> {
        if kinds.contains(&Kind::Apache) {
            return self.check();
        }
        if !self.ours.is_file() {
            return Err(format!("zk-server not found at {}: build it (cargo build --release --bin zk-server) or pass --server-bin", self.ours.display()));
        }
        Ok(())
    }

    pub fn apache_classpath(&self) -> String {
        APACHE_JARS.iter().map(|j| self.apache_jars_dir.join(j).display().to_string()).collect::<Vec<_>>().join(":")
    }

    /// The class path with `extra_jars` (file names in the jars directory) after the
    /// usual ones.
    pub fn apache_classpath_with(&self, extra_jars: &[&str]) -> String {
        let mut cp = self.apache_classpath();
        for j in extra_jars {
            cp.push(':');
            cp.push_str(&self.apache_jars_dir.join(j).display().to_string());
        }
        cp
    }

    /// Err naming those of `jars` (file names in the jars directory) that are missing.
    pub fn check_jars(&self, jars: &[&str]) -> Result<(), String> {
        let missing: Vec<String> = jars.iter().map(|j| self.apache_jars_dir.join(j)).filter(|p| !p.is_file()).map(|p| p.display().to_string()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "missing {}: install their Debian package (libnetty-java for the Netty jars; bin/test.sh installs it), or point --apache-jars at them",
                missing.join(", ")
            ))
        }
    }

    fn command(&self, kind: Kind, cfg: &Path, dir: &Path, extra_jars: &[&str]) -> Command {
        match kind {
            Kind::Apache => {
                let mut c = Command::new(&self.java);
                c.args(APACHE_JVM_FLAGS)
                    .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
                    .args(APACHE_LOG_FLAGS)
                    .arg("-cp")
                    .arg(self.apache_classpath_with(extra_jars))
                    .arg(APACHE_MAIN)
                    .arg(cfg);
                c
            }
            Kind::Ours => {
                let mut c = Command::new(&self.ours);
                c.env("RUST_LOG", OURS_RUST_LOG).arg(cfg);
                c
            }
        }
    }

    /// The command lines, for the report.
    pub fn describe(&self, kind: Kind) -> String {
        self.describe_with(kind, &[])
    }

    /// As [`describe`](Self::describe), with `extra_jars` on Apache's class path.
    pub fn describe_with(&self, kind: Kind, extra_jars: &[&str]) -> String {
        match kind {
            Kind::Apache => format!(
                "{} {} {} -cp {} {APACHE_MAIN} zoo.cfg",
                self.java.display(),
                APACHE_JVM_FLAGS.join(" "),
                APACHE_LOG_FLAGS.join(" "),
                self.apache_classpath_with(extra_jars)
            ),
            Kind::Ours => format!("RUST_LOG={OURS_RUST_LOG} {} zoo.cfg", self.ours.display()),
        }
    }
}

/// A directory removed on drop unless [`keep`](Self::keep) was called (so that logs
/// survive a failed run).
pub struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    pub fn new(prefix: &str) -> Result<WorkDir, String> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos:09}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(WorkDir { path, keep: false })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A free TCP port on 127.0.0.1 (the OS picks it; start-up retries if another process
/// takes it first).
pub fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((LOOPBACK, 0)).map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))
}

/// `n` free ports, distinct from each other and from `taken` (the OS may hand out a
/// port again once its probe listener is closed).
fn distinct_free_ports(n: usize, taken: u16) -> Result<Vec<u16>, String> {
    let mut out = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n {
        let p = free_port()?;
        if p != taken && !out.contains(&p) {
            out.push(p);
        } else {
            tries += 1;
            if tries > 100 {
                return Err("cannot find distinct free ports on 127.0.0.1".into());
            }
        }
    }
    Ok(out)
}

/// The zoo.cfg both servers get (only dataDir and port differ).
pub fn zoo_cfg(data_dir: &Path, port: u16) -> String {
    format!(
        "# Written by zk-bench compare; identical for Apache and zookeeper-rs.\n\
         tickTime=2000\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress={LOOPBACK}\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         # ruok and srvr tell when a server is up.\n\
         4lw.commands.whitelist=*\n",
        data_dir.display()
    )
}

/// Sends a four-letter word and returns the answer (read until EOF or `timeout`).
pub fn four_letter_word(addr: SocketAddr, word: &str, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(word.as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if word == "ruok" && buf.len() >= 4 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The deadline passed mid-read: the answer is what came so far (a 3.8.0
            // server still loading its database may leave the socket open).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => break,
            Err(_) if !buf.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    let _ = s.shutdown(Shutdown::Both);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// (VmRSS, VmHWM) of a process in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64), String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Makes the child of `cmd` die with zk-bench: `PR_SET_PDEATHSIG` (SIGKILL), and a
/// refusal to start if zk-bench is already gone. The signal fires when the *thread*
/// that spawned the child exits: zk-bench spawns every server from its main thread.
pub(crate) fn guard_child(cmd: &mut Command) {
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe raw syscalls.
    unsafe {
        cmd.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGKILL as std::ffi::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if getppid() != parent {
                return Err(io::Error::other("zk-bench exited during the spawn"));
            }
            Ok(())
        });
    }
}

/// How long a (re)start took, both from the instant before the spawn.
#[derive(Debug, Clone, Copy)]
pub struct StartTimes {
    /// Until getData through our client succeeded: the figure compare reports.
    pub serving: Duration,
    /// Until `srvr` first showed a `Mode:` line (no client involved).
    pub mode: Duration,
}

/// zoo.cfg lines given the ports picked for them.
pub type CfgLines = Box<dyn Fn(&[u16]) -> String>;

/// What a benchmark adds to the common zoo.cfg ([`zoo_cfg`]) and to Apache's class
/// path: `compare --tls` a secure client port, `scrape` the Prometheus endpoint.
pub struct ServerExtra {
    /// Free ports picked for each start attempt besides the client port (a retry after
    /// "address in use" picks new ones), handed to `cfg`.
    pub ports: usize,
    /// zoo.cfg lines appended to the common ones, given those ports.
    pub cfg: CfgLines,
    /// Jars (file names in the Apache jars directory) added to Apache's class path.
    pub apache_jars: Vec<&'static str>,
}

impl ServerExtra {
    /// Nothing added: the plain `compare` server.
    pub fn none() -> ServerExtra {
        ServerExtra { ports: 0, cfg: Box::new(|_| String::new()), apache_jars: Vec::new() }
    }
}

/// One server: `<dir>/zoo.cfg`, `<dir>/data`, `<dir>/server-<n>.log` per spawn.
pub struct ManagedServer {
    pub kind: Kind,
    programs: ServerPrograms,
    dir: PathBuf,
    cfg: PathBuf,
    port: u16,
    /// The [`ServerExtra`] ports of the attempt that started, in its order.
    extra_ports: Vec<u16>,
    apache_jars: Vec<&'static str>,
    child: Option<Child>,
    log: PathBuf,
    spawns: u32,
}

impl ManagedServer {
    /// Creates `dir`, writes zoo.cfg and starts the server; returns it with the time
    /// from spawn to serving (`ruok` = imok, `srvr` shows a Mode, and getData of "/"
    /// through our client succeeds). Retries on another port if the first was taken.
    pub fn start(kind: Kind, programs: &ServerPrograms, dir: PathBuf) -> Result<(ManagedServer, StartTimes), String> {
        Self::start_with(kind, programs, dir, &ServerExtra::none())
    }

    /// As [`start`](Self::start), with `extra`'s zoo.cfg lines, ports and jars.
    pub fn start_with(kind: Kind, programs: &ServerPrograms, dir: PathBuf, extra: &ServerExtra) -> Result<(ManagedServer, StartTimes), String> {
        let mut last = String::new();
        for attempt in 0..3 {
            let d = if attempt == 0 { dir.clone() } else { dir.with_extension(format!("retry{attempt}")) };
            let data = d.join("data");
            fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            let port = free_port()?;
            let extra_ports = distinct_free_ports(extra.ports, port)?;
            let cfg = d.join("zoo.cfg");
            let text = format!("{}{}", zoo_cfg(&data, port), (extra.cfg)(&extra_ports));
            fs::write(&cfg, text).map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
            let mut srv = ManagedServer {
                kind,
                programs: programs.clone(),
                log: d.join("server-1.log"),
                dir: d,
                cfg,
                port,
                extra_ports,
                apache_jars: extra.apache_jars.clone(),
                child: None,
                spawns: 0,
            };
            let t0 = srv.spawn()?;
            match srv.wait_serving("/", t0, START_TIMEOUT) {
                Ok(times) => return Ok((srv, times)),
                Err(why) => {
                    srv.kill();
                    let log = fs::read_to_string(&srv.log).unwrap_or_default();
                    if log.contains("Address already in use") || log.contains("AddrInUse") {
                        last = why;
                        continue;
                    }
                    return Err(format!("{} server did not start: {why}\n{}", kind.name(), srv.log_report()));
                }
            }
        }
        Err(format!("{} server: no free port after 3 attempts ({last})", kind.name()))
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn connect_string(&self) -> String {
        format!("{LOOPBACK}:{}", self.port)
    }

    /// The ports [`ServerExtra::ports`] asked for, in the order `cfg` got them.
    pub fn extra_ports(&self) -> &[u16] {
        &self.extra_ports
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's dataDir (`<dir>/data`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// (VmRSS, VmHWM) of the running process in KiB ([`rss_kib`]).
    pub fn rss_kib(&self) -> Result<(u64, u64), String> {
        let pid = self.pid().ok_or_else(|| format!("{} server is not running", self.kind.name()))?;
        rss_kib(pid)
    }

    /// The log's path and its last lines, for error messages.
    pub fn log_report(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- last lines of {} ---\n{tail}\n--- end ---", self.log.display())
    }

    /// Err (with the log) if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let name = self.kind.name();
        match self.child.as_mut() {
            None => Err(format!("{name} server is not running")),
            Some(c) => match c.try_wait() {
                Ok(None) => Ok(()),
                Ok(Some(st)) => Err(format!("{name} server exited unexpectedly ({st})\n{}", self.log_report())),
                Err(e) => Err(format!("{name} server: cannot check the process: {e}")),
            },
        }
    }

    /// Spawns the process on the existing zoo.cfg and dataDir, logging to a new file.
    /// Returns the instant just before the spawn.
    fn spawn(&mut self) -> Result<Instant, String> {
        if self.child.is_some() {
            return Err(format!("{} server is already running", self.kind.name()));
        }
        self.spawns += 1;
        self.log = self.dir.join(format!("server-{}.log", self.spawns));
        let logf = fs::File::create(&self.log).map_err(|e| format!("cannot create {}: {e}", self.log.display()))?;
        let logf2 = logf.try_clone().map_err(|e| format!("cannot dup the log file: {e}"))?;
        let mut cmd = self.programs.command(self.kind, &self.cfg, &self.dir, &self.apache_jars);
        cmd.current_dir(&self.dir).stdin(Stdio::null()).stdout(logf).stderr(logf2);
        guard_child(&mut cmd);
        let t0 = Instant::now();
        let child = cmd.spawn().map_err(|e| format!("cannot start the {} server ({cmd:?}): {e}", self.kind.name()))?;
        self.child = Some(child);
        Ok(t0)
    }

    /// Starts the process again on the same zoo.cfg, port and dataDir and waits until
    /// getData of `probe` succeeds; returns spawn -> serving.
    pub fn respawn_and_wait(&mut self, probe: &str) -> Result<StartTimes, String> {
        let t0 = self.spawn()?;
        self.wait_serving(probe, t0, START_TIMEOUT)
            .map_err(|why| format!("{} server did not restart: {why}\n{}", self.kind.name(), self.log_report()))
    }

    /// Polls until the server serves `probe` (see [`start`](Self::start)).
    fn wait_serving(&mut self, probe: &str, t0: Instant, timeout: Duration) -> Result<StartTimes, String> {
        let deadline = Instant::now() + timeout;
        let mut mode_at: Option<Duration> = None;
        let addr = self.addr();
        let connect = self.connect_string();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("the process exited with {st}"));
                }
            }
            let last;
            let ruok = four_letter_word(addr, "ruok", Duration::from_secs(2));
            if matches!(&ruok, Ok(s) if s == "imok") {
                // Apache answers imok before it serves; a Mode line in srvr means it
                // does, and spares the client probe a connection refused mid-load.
                let srvr = four_letter_word(addr, "srvr", Duration::from_secs(2));
                if matches!(&srvr, Ok(s) if s.contains("\nMode: ")) {
                    let mode = *mode_at.get_or_insert_with(|| t0.elapsed());
                    match probe_get_data(&connect, probe) {
                        Ok(()) => return Ok(StartTimes { serving: t0.elapsed(), mode }),
                        Err(e) => {
                            log::debug!("{} server: probe failed: {e}", self.kind.name());
                            last = e;
                        }
                    }
                } else {
                    last = format!("srvr answered {srvr:?}");
                }
            } else {
                last = format!("ruok answered {ruok:?}");
            }
            if Instant::now() >= deadline {
                return Err(format!("not serving within {:.0} s (last: {last})", timeout.as_secs_f64()));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then waits for the exit; returns how long the exit took.
    pub fn stop_term(&mut self) -> Result<Duration, String> {
        self.stop_with(SIGTERM, "SIGTERM")
    }

    /// SIGKILL (a crash: nothing is flushed or closed), then waits for the exit;
    /// returns how long the exit took. The server can be respawned on its dataDir.
    pub fn stop_kill(&mut self) -> Result<Duration, String> {
        self.stop_with(SIGKILL, "SIGKILL")
    }

    /// Sends `sig` (named `sig_name` in errors) and waits for the exit.
    fn stop_with(&mut self, sig: i32, sig_name: &str) -> Result<Duration, String> {
        let name = self.kind.name();
        let mut c = self.child.take().ok_or_else(|| format!("{name} server is not running"))?;
        let t0 = Instant::now();
        // SAFETY: plain kill(2) on our own child's pid, which it still is (not reaped).
        if unsafe { kill(c.id() as i32, sig) } != 0 {
            let e = io::Error::last_os_error();
            let _ = c.kill();
            let _ = c.wait();
            return Err(format!("cannot {sig_name} the {name} server: {e}"));
        }
        loop {
            match c.try_wait() {
                Ok(Some(_)) => return Ok(t0.elapsed()),
                Ok(None) if t0.elapsed() < STOP_TIMEOUT => thread::sleep(Duration::from_millis(1)),
                Ok(None) => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return Err(format!("{name} server did not exit within {} s of {sig_name}", STOP_TIMEOUT.as_secs()));
                }
                Err(e) => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return Err(format!("{name} server: waiting for the exit: {e}"));
                }
            }
        }
    }

    /// SIGKILL and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One fresh session, getData of `path`, close. A fresh session per attempt because a
/// session that failed to connect backs off before retrying.
fn probe_get_data(connect: &str, path: &str) -> Result<(), String> {
    let t = Instant::now();
    let zk = connect_many(connect, 1, Duration::from_secs(5))?.pop().ok_or("no session")?;
    let connected = t.elapsed();
    let r = zk.get_data(path, None).map(|_| ()).map_err(|e| format!("getData {path}: {e}"));
    log::debug!("probe {connect}: session in {connected:?}, getData {path} after {:?}: {r:?}", t.elapsed());
    zk.close();
    r
}
