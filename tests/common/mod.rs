//! Integration-test harness: runs Apache ZooKeeper 3.8 (the Debian packages)
//! and our `zk-server` side by side on loopback, and drives the real Apache
//! clients (Java zkCli, the C `cli_mt`, Python kazoo) against either.
//!
//! Use it from an integration test with `mod common;`.
//!
//! * [`ApacheServer::start_standalone`] / [`OurServer::start_standalone`] write
//!   a `zoo.cfg` into a fresh temporary directory, start the server on a free
//!   port, wait until it answers `ruok` with `imok`, and kill it on `Drop`
//!   (also when the test panics). Logs go to a file in that directory
//!   ([`TestServer::log_contents`]) and are printed when start-up fails.
//! * Server processes are spawned from one long-lived helper thread with
//!   `PR_SET_PDEATHSIG`, so they also die if the test binary itself is killed
//!   (e.g. by a CI time limit) and Drop never runs.
//! * Missing Apache packages make the tests panic with a clear message
//!   (interop tests never skip silently; `bin/test.sh` installs the packages).
//!
//! Environment knobs (all optional):
//! * `ZKRS_TEST_OURS=apache` — run Apache wherever a test asks for our server,
//!   to check that a comparison test passes "Apache vs Apache". Refused when
//!   `CI=true`.
//! * `ZKRS_TEST_STARTUP_TIMEOUT` — seconds to wait for `imok` (default 60).
//! * `ZKRS_APACHE_LOG_LEVEL` — slf4j-simple level of Apache servers (default info).
//! * `ZKRS_APACHE_JVM_OPTS` — JVM flags of Apache servers
//!   (default `-Xms32m -Xmx256m -XX:+UseSerialGC`).
//! * `RUST_LOG` — passed to our server; set to `info` when none of
//!   `RUST_LOG`, `ZOO_LOG_LEVEL`, `ZOO_LOG` is set.

#![allow(dead_code)]

pub mod certs;
pub mod ensemble;
pub mod zab_packets;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

// ------------------------------------------------------------ constants --

/// Where Debian's `libzookeeper-java` and `libslf4j-java` put their jars.
pub const SHARE_JAVA: &str = "/usr/share/java";
/// The Java runtime pulled in by the `zookeeper` package.
pub const JAVA: &str = "/usr/bin/java";
/// The interpreter that has kazoo (`python3-kazoo`); the first `python3` on
/// PATH may be another one.
pub const PYTHON: &str = "/usr/bin/python3";
/// The multi-threaded C client shell from `zookeeper-bin`.
pub const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";

/// Jars of the Apache classpath. `zookeeper.jar`'s manifest pulls in every
/// other runtime dependency but the servlet API; slf4j-simple is the logging
/// binding (Debian puts none on the path, so Apache would otherwise log nothing
/// at all); servlet-api (package libservlet-api-java) lets the AdminServer
/// (Jetty) start where a test enables it (without it Apache logs "Unable to
/// load jetty, not starting JettyAdminServer" and runs without one); netty-codec
/// and netty-resolver (libnetty-java) are missing from the manifest too and the
/// Netty server and client (the secure client port, TLS clients) need them.
const APACHE_JARS: [&str; 7] = ["zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-simple", "servlet-api", "netty-codec", "netty-resolver"];

const LOOPBACK: &str = "127.0.0.1";

/// Lines every test server's zoo.cfg starts with (after tickTime, dataDir,
/// clientPort and clientPortAddress).
const COMMON_CFG: &str = "\
# Four-letter words (ruok, srvr, stat, mntr, ...) are how tests probe servers.
4lw.commands.whitelist=*
# Apache's AdminServer (Jetty) would otherwise bind 0.0.0.0:8080.
admin.enableServer=false
# Many test clients connect from 127.0.0.1; 60 per address is too few.
maxClientCnxns=0
# TTL nodes (createTTL); without it Apache answers UNIMPLEMENTED.
extendedTypesEnabled=true
# Short tests need no snapshot/txn-log purging.
autopurge.purgeInterval=0
";

/// A zoo.cfg comment line: put it into `extra_cfg` to leave out the
/// `4lw.commands.whitelist=*` line of [`COMMON_CFG`] (default whitelist: `srvr`).
pub const NO_4LW_WHITELIST: &str = "# harness: no 4lw.commands.whitelist line";

// --------------------------------------------------------- requirements --

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

fn missing(what: &str) -> ! {
    panic!(
        "interop test prerequisite missing: {what}\n\
         Install the Debian packages with `bin/test.sh` (it installs them when missing) or\n\
         `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
         zookeeper zookeeper-bin python3-kazoo python3-pytest`.{}",
        if in_ci() {
            "\nCI=true: interop tests are never skipped in CI."
        } else {
            ""
        }
    )
}

/// Panics unless Java and the Apache ZooKeeper jars are installed.
pub fn require_apache() {
    if !Path::new(JAVA).exists() {
        missing(&format!("{JAVA} (package zookeeper pulls in a JRE)"));
    }
    for jar in APACHE_JARS {
        let p = format!("{SHARE_JAVA}/{jar}.jar");
        if !Path::new(&p).exists() {
            missing(&format!("{p} (packages zookeeper / libslf4j-java / libservlet-api-java)"));
        }
    }
}

/// Panics unless kazoo is importable by /usr/bin/python3.
pub fn require_kazoo() {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        Command::new(PYTHON)
            .args(["-c", "import kazoo"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    if !ok {
        missing(&format!("kazoo for {PYTHON} (package python3-kazoo)"));
    }
}

/// Panics unless the C client shell is installed.
pub fn require_cli_mt() {
    if !Path::new(CLI_MT).exists() {
        missing(&format!("{CLI_MT} (package zookeeper-bin)"));
    }
}

/// Classpath for Apache servers and the Java zkCli.
pub fn apache_classpath() -> String {
    require_apache();
    APACHE_JARS
        .iter()
        .map(|j| format!("{SHARE_JAVA}/{j}.jar"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---------------------------------------------------------------- ports --

/// A free TCP port on 127.0.0.1. The OS picks it (bind to port 0); a
/// process-wide set makes sure two tests of this binary never get the same
/// port even if the first has not bound it yet. (Another process can still
/// take it in between; server start-up retries on "address in use".)
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let l = TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        drop(l);
        if used.lock().unwrap().insert(port) {
            return port;
        }
    }
}

// ------------------------------------------------------ four-letter words --

/// Sends a four-letter word to `addr` and returns the answer. Reads until the
/// server closes the connection, but never longer than `timeout` in total (a
/// 3.8.0 server that is still loading its database may leave the socket
/// open). `ruok` stops after the 4 bytes of `imok`.
pub fn four_letter_word(addr: &str, word: &str, timeout: Duration) -> io::Result<String> {
    let sa: SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    zookeeper::bench::servers::four_letter_word(sa, word, timeout)
}

// ------------------------------------------------------ process spawning --

extern "C" {
    fn prctl(option: i32, ...) -> i32;
    fn getppid() -> i32;
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
const PR_SET_PDEATHSIG: i32 = 1;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const SIGSTOP: i32 = 19;
const SIGCONT: i32 = 18;

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` so that the child gets SIGKILL when this test process dies.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so
/// every child is forked by one helper thread that lives as long as the
/// process (test threads come and go; servers must not die with them).
pub fn spawn_guarded(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let parent = std::process::id() as i32;
    unsafe {
        cmd.pre_exec(move || {
            // Only async-signal-safe calls here (raw syscalls).
            if prctl(PR_SET_PDEATHSIG, SIGKILL as std::ffi::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if getppid() != parent {
                return Err(io::Error::new(io::ErrorKind::Other, "parent exited"));
            }
            Ok(())
        });
    }
    let tx = SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            thread::Builder::new()
                .name("zk-test-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .expect("spawn helper thread");
            Mutex::new(tx)
        })
        .lock()
        .unwrap()
        .clone();
    let (rtx, rrx) = mpsc::channel();
    tx.send((cmd, rtx)).expect("spawner thread alive");
    rrx.recv().expect("spawner thread reply")
}

/// Collects a child's pipe in the background.
fn collect<R: Read + Send + 'static>(mut r: R) -> (Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    let h = thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => b.lock().unwrap().extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    });
    (buf, h)
}

/// Waits for `child` until `deadline`; kills it when the deadline passes.
/// Returns the exit status and whether it was killed.
fn wait_deadline(child: &mut Child, deadline: Instant) -> (ExitStatus, bool) {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (st, false),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let st = child.wait().expect("wait after kill");
                return (st, true);
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for child: {e}"),
        }
    }
}

/// Runs `cmd` with `stdin` as its input and a time limit. On timeout the
/// process is killed and a note is appended to its stderr.
pub fn run_with_timeout(mut cmd: Command, stdin: &[u8], timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = spawn_guarded(cmd).unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    let (out, ho) = collect(child.stdout.take().unwrap());
    let (err, he) = collect(child.stderr.take().unwrap());
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let hi = thread::spawn(move || {
        let _ = sin.write_all(&input);
        // dropping sin closes the pipe: EOF for the child
    });
    let (status, killed) = wait_deadline(&mut child, Instant::now() + timeout);
    let _ = hi.join();
    let _ = ho.join();
    let _ = he.join();
    let stdout = std::mem::take(&mut *out.lock().unwrap());
    let mut stderr = std::mem::take(&mut *err.lock().unwrap());
    if killed {
        stderr.extend_from_slice(
            format!("\n[harness] killed after {timeout:?}: {desc}\n").as_bytes(),
        );
    }
    Output { status, stdout, stderr }
}

// --------------------------------------------------------------- servers --

fn startup_timeout() -> Duration {
    let secs = std::env::var("ZKRS_TEST_STARTUP_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Which implementation a [`TestServer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Apache,
    Ours,
}

/// A standalone server process in its own temporary directory:
/// `DIR/zoo.cfg`, `DIR/data` (dataDir), `DIR/server.log` (stdout+stderr).
pub struct TestServer {
    kind: Kind,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    cfg_path: PathBuf,
    log_path: PathBuf,
    /// The dataDir in zoo.cfg (`DIR/data` unless started on an existing one).
    data: PathBuf,
    /// Builds the command line again, for [`TestServer::restart`].
    make_cmd: CmdMaker,
    /// How many times the process was (re)spawned.
    spawns: u32,
}

/// Builds a server command line from (zoo.cfg path, server directory).
type CmdMaker = Arc<dyn Fn(&Path, &Path) -> Command + Send + Sync>;

impl TestServer {
    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `127.0.0.1:PORT`, for any client.
    pub fn connect_string(&self) -> String {
        format!("{LOOPBACK}:{}", self.port)
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }
    pub fn cfg_path(&self) -> &Path {
        &self.cfg_path
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    /// Everything the server wrote to stdout/stderr so far.
    pub fn log_contents(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
    /// The answer to a four-letter word, or "" when the server does not
    /// answer (5 s limit).
    pub fn four_letter(&self, word: &str) -> String {
        four_letter_word(&self.connect_string(), word, Duration::from_secs(5)).unwrap_or_default()
    }
    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
    /// Kills the server (SIGKILL) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM (a "clean" stop: the process may run its
    /// shutdown hooks) and waits up to `timeout` for it to exit; SIGKILL after that.
    /// Returns the exit status, or None if it had to be killed.
    pub fn stop_term(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        unsafe {
            libc_kill(c.id() as i32, SIGTERM);
        }
        let (st, killed) = wait_deadline(&mut c, Instant::now() + timeout);
        if killed {
            None
        } else {
            Some(st)
        }
    }

    /// Spawns the server process again with the same zoo.cfg, port and dataDir
    /// (killing the running one first) without waiting for it to serve. The log of
    /// the previous run is kept as `server.log.N`; [`log_contents`](Self::log_contents)
    /// shows the new run's.
    pub fn respawn(&mut self) {
        self.kill();
        let old = self.dir.path().join(format!("server.log.{}", self.spawns));
        let _ = fs::rename(&self.log_path, old);
        let log = fs::File::create(&self.log_path).expect("create server.log");
        let mut cmd = (self.make_cmd)(&self.cfg_path, self.dir.path());
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        let desc = format!("{cmd:?}");
        self.child = Some(spawn_guarded(cmd).unwrap_or_else(|e| panic!("cannot start {desc}: {e}")));
        self.spawns += 1;
    }

    /// [`respawn`](Self::respawn), then waits until the server serves; Err(why)
    /// (with the process killed) when it does not within `timeout`.
    pub fn try_restart(&mut self, timeout: Duration) -> Result<(), String> {
        self.respawn();
        let r = self.wait_ready(timeout);
        if r.is_err() {
            self.kill();
        }
        r
    }

    /// [`try_restart`](Self::try_restart); panics with the log when start-up fails.
    pub fn restart(&mut self) {
        if let Err(why) = self.try_restart(startup_timeout()) {
            panic!(
                "{:?} server did not restart ({why}).\n--- server log ---\n{}--- end of log ---",
                self.kind,
                self.log_contents()
            );
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, or None
    /// (process still running, or not running at all).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.child.as_mut()?;
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn write_cfg(dir: &Path, port: u16, extra_cfg: &str, data_dir: Option<&Path>) -> PathBuf {
        let data = data_dir.map(Path::to_path_buf).unwrap_or_else(|| dir.join("data"));
        fs::create_dir_all(&data).expect("create dataDir");
        let cfg = format!(
            "# Written by the zookeeper-rs test harness (tests/common/mod.rs).\n\
             tickTime=2000\n\
             dataDir={}\n\
             clientPort={port}\n\
             clientPortAddress={LOOPBACK}\n\
             {}\
             # extra lines of this test:\n\
             {extra_cfg}\n",
            data.display(),
            // A test that wants the default 4lw whitelist puts NO_4LW_WHITELIST in extra_cfg.
            if extra_cfg.contains(NO_4LW_WHITELIST) {
                COMMON_CFG.replace("4lw.commands.whitelist=*\n", "")
            } else {
                COMMON_CFG.to_string()
            }
        );
        let path = dir.join("zoo.cfg");
        fs::write(&path, cfg).expect("write zoo.cfg");
        path
    }

    /// Starts a server whose command line `make_cmd(cfg)` builds, waiting
    /// for `imok`. Retries with another port if the chosen one was taken.
    fn start(kind: Kind, extra_cfg: &str, make_cmd: CmdMaker) -> TestServer {
        Self::start_on(kind, extra_cfg, None, make_cmd)
    }

    /// Writes a fresh directory and zoo.cfg (new client port) and spawns the server
    /// without waiting for anything; returns it with the command line, for messages.
    fn spawn_on(kind: Kind, extra_cfg: &str, data_dir: Option<&Path>, make_cmd: &CmdMaker) -> (TestServer, String) {
        let dir = tempfile::Builder::new()
            .prefix(match kind {
                Kind::Apache => "zk-apache-",
                Kind::Ours => "zk-ours-",
            })
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let cfg_path = Self::write_cfg(dir.path(), port, extra_cfg, data_dir);
        let log_path = dir.path().join("server.log");
        let log = fs::File::create(&log_path).expect("create server.log");
        let mut cmd = make_cmd(&cfg_path, dir.path());
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        let desc = format!("{cmd:?}");
        let child = spawn_guarded(cmd).unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
        let data = data_dir.map(Path::to_path_buf).unwrap_or_else(|| dir.path().join("data"));
        let srv = TestServer {
            kind,
            child: Some(child),
            port,
            dir,
            cfg_path,
            log_path,
            data,
            make_cmd: make_cmd.clone(),
            spawns: 1,
        };
        (srv, desc)
    }

    /// Like `start`; `data_dir` (when given) is used as dataDir instead of `DIR/data`.
    fn start_on(kind: Kind, extra_cfg: &str, data_dir: Option<&Path>, make_cmd: CmdMaker) -> TestServer {
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let (mut srv, desc) = Self::spawn_on(kind, extra_cfg, data_dir, &make_cmd);
            let port = srv.port;
            match srv.wait_ready(startup_timeout()) {
                Ok(()) => return srv,
                Err(why) => {
                    srv.kill();
                    last_log = srv.log_contents();
                    let in_use = last_log.contains("Address already in use")
                        || last_log.contains("AddrInUse")
                        || last_log.contains("address already in use");
                    if in_use {
                        eprintln!("[harness] port {port} was taken; retrying with another port");
                        continue;
                    }
                    panic!(
                        "{kind:?} server did not start ({why}).\ncommand: {desc}\nzoo.cfg:\n{}\n--- server log ---\n{last_log}--- end of log ---",
                        fs::read_to_string(srv.cfg_path()).unwrap_or_default()
                    );
                }
            }
        }
        panic!("{kind:?} server: no free port after 3 attempts; last log:\n{last_log}");
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("process exited early with {st}"));
                }
            }
            // `imok` only says the port is up: Apache 3.8 answers it before
            // it serves requests (srvr then says "This ZooKeeper instance is
            // not currently serving requests"). Ready = imok and a Mode line.
            // A word left out of a test's 4lw whitelist is not waited for.
            let not_listed = |s: &str| s.contains("not in the whitelist");
            let r = four_letter_word(&self.connect_string(), "ruok", Duration::from_secs(2));
            if matches!(&r, Ok(s) if s == "imok" || not_listed(s)) {
                let m = four_letter_word(&self.connect_string(), "srvr", Duration::from_secs(2));
                if matches!(&m, Ok(s) if s.contains("\nMode: ") || not_listed(s)) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no `imok` within {timeout:?} (last answer: {r:?})"));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() && std::env::var_os("ZKRS_TEST_QUIET").is_none() {
            let log = self.log_contents();
            // The tail of the server log is usually what explains a failure.
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- last lines of the {:?} server log ({}) ---",
                self.kind,
                self.log_path.display()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            eprintln!("--- end ---");
        }
    }
}

fn apache_command(cfg: &Path, dir: &Path, extra_jvm_args: &[&str]) -> Command {
    apache_main_command("org.apache.zookeeper.server.ZooKeeperServerMain", cfg, dir, extra_jvm_args)
}

/// `java <flags> -cp <apache classpath> MAIN_CLASS CFG`, logging at info (slf4j-simple,
/// stdout) with the JVM flags of every test server. Ensemble members use it with
/// `QuorumPeerMain` (see `ensemble.rs`).
fn apache_main_command(main_class: &str, cfg: &Path, dir: &Path, extra_jvm_args: &[&str]) -> Command {
    let mut cmd = Command::new(JAVA);
    let opts = std::env::var("ZKRS_APACHE_JVM_OPTS")
        .unwrap_or_else(|_| "-Xms32m -Xmx256m -XX:+UseSerialGC".to_string());
    cmd.args(opts.split_whitespace());
    cmd.arg("-Djava.net.preferIPv4Stack=true")
        .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
        .arg("-Dorg.slf4j.simpleLogger.logFile=System.out")
        .arg(format!(
            "-Dorg.slf4j.simpleLogger.defaultLogLevel={}",
            std::env::var("ZKRS_APACHE_LOG_LEVEL").unwrap_or_else(|_| "info".into())
        ))
        .arg("-Dorg.slf4j.simpleLogger.showDateTime=true")
        .arg("-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS")
        .arg("-Dorg.slf4j.simpleLogger.showShortLogName=true");
    cmd.args(extra_jvm_args);
    cmd.arg("-cp").arg(apache_classpath()).arg(main_class).arg(cfg);
    cmd
}

/// Apache ZooKeeper 3.8 (`ZooKeeperServerMain`) in standalone mode.
pub struct ApacheServer(TestServer);

impl ApacheServer {
    /// `extra_cfg`: zoo.cfg lines appended after the defaults (later lines win).
    pub fn start_standalone(extra_cfg: &str) -> ApacheServer {
        Self::start_standalone_with_jvm_args(extra_cfg, &[])
    }

    /// Like [`start_standalone`](Self::start_standalone), with extra JVM
    /// arguments such as `-Djute.maxbuffer=...`.
    pub fn start_standalone_with_jvm_args(extra_cfg: &str, jvm_args: &[&str]) -> ApacheServer {
        require_apache();
        let args: Vec<String> = jvm_args.iter().map(|s| s.to_string()).collect();
        ApacheServer(TestServer::start(Kind::Apache, extra_cfg, Self::cmd_maker(args)))
    }

    fn cmd_maker(args: Vec<String>) -> CmdMaker {
        Arc::new(move |cfg: &Path, dir: &Path| {
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            apache_command(cfg, dir, &a)
        })
    }

    /// Spawns Apache standalone with `extra_cfg` without waiting for it to serve (nor
    /// retrying on a taken port): for tests of start-up failures, which then use
    /// [`TestServer::wait_exit`] and [`TestServer::log_contents`].
    pub fn spawn_standalone(extra_cfg: &str) -> ApacheServer {
        Self::spawn_standalone_with_jvm_args(extra_cfg, &[])
    }

    /// [`spawn_standalone`](Self::spawn_standalone) with JVM arguments.
    pub fn spawn_standalone_with_jvm_args(extra_cfg: &str, jvm_args: &[&str]) -> ApacheServer {
        require_apache();
        let args: Vec<String> = jvm_args.iter().map(|s| s.to_string()).collect();
        ApacheServer(TestServer::spawn_on(Kind::Apache, extra_cfg, None, &Self::cmd_maker(args)).0)
    }

    /// Starts Apache on an existing `data_dir` (e.g. one another server wrote);
    /// zoo.cfg, port and log are new.
    pub fn start_on_data_dir(data_dir: &Path, extra_cfg: &str) -> ApacheServer {
        require_apache();
        ApacheServer(TestServer::start_on(Kind::Apache, extra_cfg, Some(data_dir), Self::cmd_maker(Vec::new())))
    }
}

impl std::ops::Deref for ApacheServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}
impl std::ops::DerefMut for ApacheServer {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.0
    }
}

/// Path of our server binary (built by cargo for integration tests).
pub fn our_server_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zk-server"))
}

/// True when `ZKRS_TEST_OURS=apache` asks to replace our server by Apache.
pub fn ours_is_apache() -> bool {
    let yes = std::env::var("ZKRS_TEST_OURS").map(|v| v == "apache").unwrap_or(false);
    if yes && in_ci() {
        panic!("ZKRS_TEST_OURS=apache is for local harness checks only; refused with CI=true");
    }
    yes
}

/// Our `zk-server` in standalone mode.
pub struct OurServer(TestServer);

impl OurServer {
    /// `extra_cfg`: zoo.cfg lines appended after the defaults;
    /// `extra_args`: arguments before the config path (e.g. `-Djute.maxbuffer=4096`).
    pub fn start_standalone(extra_cfg: &str, extra_args: &[&str]) -> OurServer {
        if ours_is_apache() {
            eprintln!("[harness] ZKRS_TEST_OURS=apache: starting Apache ZooKeeper in place of zk-server");
            let jvm: Vec<&str> = extra_args.iter().copied().filter(|a| a.starts_with("-D")).collect();
            let a = ApacheServer::start_standalone_with_jvm_args(extra_cfg, &jvm);
            return OurServer(a.into_inner());
        }
        OurServer(TestServer::start(Kind::Ours, extra_cfg, Self::cmd_maker(extra_args)))
    }

    fn cmd_maker(extra_args: &[&str]) -> CmdMaker {
        let bin = our_server_bin();
        let args: Vec<OsString> = extra_args.iter().map(OsString::from).collect();
        Arc::new(move |cfg: &Path, _dir: &Path| {
            let mut cmd = Command::new(&bin);
            if ["RUST_LOG", "ZOO_LOG_LEVEL", "ZOO_LOG"].iter().all(|v| std::env::var_os(v).is_none()) {
                cmd.env("RUST_LOG", "info");
            }
            cmd.env("RUST_BACKTRACE", "1");
            cmd.args(&args).arg(cfg);
            cmd
        })
    }

    /// Spawns our server standalone without waiting for it to serve (see
    /// [`ApacheServer::spawn_standalone`]). (Honours `ZKRS_TEST_OURS=apache`.)
    pub fn spawn_standalone(extra_cfg: &str, extra_args: &[&str]) -> OurServer {
        if ours_is_apache() {
            return OurServer(ApacheServer::spawn_standalone(extra_cfg).into_inner());
        }
        OurServer(TestServer::spawn_on(Kind::Ours, extra_cfg, None, &Self::cmd_maker(extra_args)).0)
    }

    /// Starts our server on an existing `data_dir` (e.g. one Apache wrote); zoo.cfg,
    /// port and log are new. (Honours `ZKRS_TEST_OURS=apache`.)
    pub fn start_on_data_dir(data_dir: &Path, extra_cfg: &str, extra_args: &[&str]) -> OurServer {
        if ours_is_apache() {
            return OurServer(ApacheServer::start_on_data_dir(data_dir, extra_cfg).into_inner());
        }
        OurServer(TestServer::start_on(Kind::Ours, extra_cfg, Some(data_dir), Self::cmd_maker(extra_args)))
    }
}

impl ApacheServer {
    fn into_inner(self) -> TestServer {
        // ApacheServer has no Drop of its own; moving the field out is fine.
        self.0
    }
}

impl std::ops::Deref for OurServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}
impl std::ops::DerefMut for OurServer {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.0
    }
}

// --------------------------------------------------------------- clients --

/// Runs a Python script with /usr/bin/python3 (which has kazoo); the connect
/// string is `sys.argv[1]` and also `$ZK_CONNECT`. Time limit: 180 s.
pub fn run_kazoo(script: &str, connect: &str) -> Output {
    require_kazoo();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("script.py");
    fs::write(&path, script).expect("write script");
    let mut cmd = Command::new(PYTHON);
    cmd.arg("-u")
        .arg(&path)
        .arg(connect)
        .env("ZK_CONNECT", connect)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8");
    run_with_timeout(cmd, b"", Duration::from_secs(180))
}

/// JVM flags of the short-lived Java clients: fast start, small heap, only
/// warnings of the client library, on stderr; no "Exiting JVM" message.
fn java_client_command(main_class: &str) -> Command {
    java_client_command_with(main_class, &[])
}

/// [`java_client_command`] with more JVM arguments (`-D...`) before the class.
pub fn java_client_command_with(main_class: &str, jvm_args: &[&str]) -> Command {
    let mut cmd = Command::new(JAVA);
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.net.preferIPv4Stack=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.util.ServiceUtils=off",
        "-Dorg.slf4j.simpleLogger.logFile=System.err",
    ])
    .env_remove("JAVA_TOOL_OPTIONS")
    .env_remove("_JAVA_OPTIONS")
    .env("TZ", "UTC")
    .args(jvm_args)
    .arg("-cp")
    .arg(apache_classpath())
    .arg(main_class);
    cmd
}

/// One command of the Java shell in batch mode:
/// `ZooKeeperMain -server CONNECT -waitforconnection ARGS...`.
/// `-waitforconnection` makes the connection event print before the
/// command's output, so stdout is deterministic. Note that batch mode exits
/// the JVM without closing the session: ephemeral nodes it creates live until
/// the session times out (30 s). Time limit: 60 s.
pub fn run_java_zkcli(connect: &str, args: &[&str]) -> Output {
    run_java_zkcli_with(connect, &[], args)
}

/// [`run_java_zkcli`] with JVM arguments, e.g. a JAAS file for SASL.
pub fn run_java_zkcli_with(connect: &str, jvm_args: &[&str], args: &[&str]) -> Output {
    let mut cmd = java_client_command_with("org.apache.zookeeper.ZooKeeperMain", jvm_args);
    cmd.args(["-server", connect, "-waitforconnection"]).args(args);
    run_with_timeout(cmd, b"", Duration::from_secs(60))
}

/// Does a line of `cli_mt` stderr mark the end of a command?
fn cli_mt_marker(line: &str) -> bool {
    line.contains(": rc = ")
        || line.starts_with("Error ")
        || line.starts_with("Path must start with /")
        || line.starts_with("Unknown option")
        || line.starts_with("Invalid mode")
        || line.starts_with("Missing ttl value")
        || line.starts_with("ttl value must")
        || line.starts_with("No data found after path")
}

/// Commands of `cli_mt` that finish with an asynchronous completion.
fn cli_mt_is_async(line: &str) -> bool {
    let l = line.trim_start();
    let l = l.strip_prefix('a').filter(|_| !l.starts_with("addauth")).unwrap_or(l);
    ["create ", "create2 ", "delete ", "set ", "get ", "ls ", "ls2 ", "sync "]
        .iter()
        .any(|p| l.starts_with(p))
        || l == "config"
}

/// Feeds `stdin_script` to the C shell `cli_mt CONNECT`, one line at a time.
///
/// `cli_mt` runs most commands asynchronously and prints their results
/// (on stderr) from its completion thread, so a script written in one go
/// gives interleaved, unordered output. Here each line is sent only after
/// the previous one finished: after the session is established ("Got a new
/// session id"), and, for asynchronous commands, after their completion line
/// (`...: rc = N`, or an immediate error) has appeared and stderr has been
/// quiet for 100 ms. Then stdin is closed (`cli_mt` prints "bye" and exits).
/// Time limit: 15 s per command.
pub fn run_cli_mt(connect: &str, stdin_script: &str) -> Output {
    require_cli_mt();
    let mut cmd = Command::new(CLI_MT);
    cmd.arg(connect)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_guarded(cmd).expect("start cli_mt");
    let (out, ho) = collect(child.stdout.take().unwrap());
    let (err, he) = collect(child.stderr.take().unwrap());
    let mut sin = child.stdin.take().unwrap();
    let step = Duration::from_secs(15);
    let mut notes = String::new();

    let markers = |buf: &[u8]| -> usize {
        String::from_utf8_lossy(buf).lines().filter(|l| cli_mt_marker(l)).count()
    };
    let wait_for = |pred: &dyn Fn(&[u8]) -> bool| -> bool {
        let deadline = Instant::now() + step;
        while Instant::now() < deadline {
            if pred(&err.lock().unwrap()) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    };
    let wait_quiet = || {
        let deadline = Instant::now() + step;
        let mut last = err.lock().unwrap().len();
        let mut since = Instant::now();
        while Instant::now() < deadline && since.elapsed() < Duration::from_millis(100) {
            thread::sleep(Duration::from_millis(10));
            let now = err.lock().unwrap().len();
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
    };

    if !wait_for(&|b| String::from_utf8_lossy(b).contains("Got a new session id")) {
        notes.push_str("[harness] cli_mt: no session within 15 s\n");
    } else {
        wait_quiet();
        for line in stdin_script.lines() {
            let before = markers(&err.lock().unwrap());
            if sin.write_all(format!("{line}\n").as_bytes()).is_err() {
                notes.push_str(&format!("[harness] cli_mt: stdin closed before `{line}`\n"));
                break;
            }
            let _ = sin.flush();
            if cli_mt_is_async(line) && !wait_for(&|b| markers(b) > before) {
                notes.push_str(&format!("[harness] cli_mt: no completion for `{line}` within 15 s\n"));
            }
            wait_quiet();
        }
    }
    drop(sin);
    let (status, killed) = wait_deadline(&mut child, Instant::now() + step);
    let _ = ho.join();
    let _ = he.join();
    let stdout = std::mem::take(&mut *out.lock().unwrap());
    let mut stderr = std::mem::take(&mut *err.lock().unwrap());
    if killed {
        notes.push_str("[harness] cli_mt killed: did not exit after stdin was closed\n");
    }
    stderr.extend_from_slice(notes.as_bytes());
    Output { status, stdout, stderr }
}

// ------------------------------------------------------------- utilities --

/// A readable dump of a client run, for assertion messages.
pub fn describe_output(what: &str, o: &Output) -> String {
    format!(
        "--- {what}: {} ---\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end of {what} ---",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A unified-style line diff of two texts (only differing regions, with a
/// little context), for assertion messages. Small and dependency-free: an
/// LCS table, fine for transcripts of a few hundred lines.
pub fn line_diff(left_name: &str, left: &str, right_name: &str, right: &str) -> String {
    let a: Vec<&str> = left.lines().collect();
    let b: Vec<&str> = right.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Edit script: (' ', line) / ('-', line) / ('+', line)
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let mut out = format!("--- {left_name}\n+++ {right_name}\n");
    let ctx = 3;
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (c, _))| *c != ' ')
        .map(|(k, _)| k)
        .collect();
    if changed.is_empty() {
        out.push_str("(no differences)\n");
        return out;
    }
    let mut shown_until = 0usize;
    for &k in &changed {
        let start = k.saturating_sub(ctx).max(shown_until);
        if start > shown_until && shown_until != 0 {
            out.push_str("@@\n");
        }
        let end = (k + ctx + 1).min(ops.len());
        for (c, l) in &ops[start.max(shown_until)..end] {
            out.push_str(&format!("{c}{l}\n"));
        }
        shown_until = shown_until.max(end);
    }
    out
}

// ------------------------------------------------------------------ mntr --

/// mntr keys Apache prints that we leave out on purpose, with the reason.
pub const MNTR_EXCEPTIONS: &[(&str, &str)] = &[
    // JvmPauseMonitor: time the JVM stood still (GC pauses). There is no JVM.
    ("avg_jvm_pause_time_ms", "JVM pause monitor"),
    ("min_jvm_pause_time_ms", "JVM pause monitor"),
    ("max_jvm_pause_time_ms", "JVM pause monitor"),
    ("cnt_jvm_pause_time_ms", "JVM pause monitor"),
    ("sum_jvm_pause_time_ms", "JVM pause monitor"),
    ("p50_jvm_pause_time_ms", "JVM pause monitor"),
    ("p95_jvm_pause_time_ms", "JVM pause monitor"),
    ("p99_jvm_pause_time_ms", "JVM pause monitor"),
    ("p999_jvm_pause_time_ms", "JVM pause monitor"),
];

/// mntr keys whose values must be equal (the data, sessions, connections and
/// the request/response counting of the identical workload).
pub const MNTR_EXACT: &[&str] = &[
    "server_state",
    "ephemerals_count",
    "num_alive_connections",
    "outstanding_requests",
    "znode_count",
    "global_sessions",
    "non_mtls_remote_conn_count",
    "last_client_response_size",
    "max_client_response_size",
    "min_client_response_size",
    "packets_sent",
    "packets_received",
    "connection_drop_probability",
    "watch_count",
    "auth_failed_count",
    "approximate_data_size",
    "local_sessions",
    "outstanding_tls_handshake",
    "non_mtls_local_conn_count",
    "cnt_readlatency",
    "cnt_updatelatency",
];
