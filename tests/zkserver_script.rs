//! Tests of bin/zkServer.sh (and bin/zkEnv.sh).
//!
//! Most tests give the script a stand-in server through ZK_SERVER_BIN, so
//! they check the script alone: a wrapper that runs Apache ZooKeeper
//! (`-D...` words become JVM system properties, exactly what they stand for),
//! or one that fails at once. `lifecycle_with_zk_server` drives our own
//! zk-server (the debug build cargo made for the tests).

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bin/zkServer.sh")
}

/// A conf dir, data dir and log dir in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

impl Setup {
    fn new(bin: PathBuf) -> Setup {
        let dir = tempfile::Builder::new().prefix("zk-script-").tempdir().unwrap();
        let port = free_port();
        fs::create_dir_all(dir.path().join("conf")).unwrap();
        fs::write(
            dir.path().join("conf/zoo.cfg"),
            format!(
                "tickTime=2000\n\
                 dataDir={}\n\
                 clientPort={port}\n\
                 clientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\n\
                 admin.enableServer=false\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        Setup { dir, port, bin }
    }
    fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }
    fn cfg(&self) -> PathBuf {
        self.conf_dir().join("zoo.cfg")
    }
    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("data/zookeeper_server.pid")
    }
    fn pid(&self) -> Option<u32> {
        fs::read_to_string(self.pid_file()).ok().and_then(|s| s.trim().parse().ok())
    }
    /// Runs `zkServer.sh ARGS` with this setup's environment.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .args(args)
            .env("ZOOCFGDIR", self.conf_dir())
            .env("ZOO_LOG_DIR", self.log_dir())
            .env("ZK_SERVER_BIN", &self.bin)
            .env_remove("ZOOCFG")
            .env_remove("ZOOPIDFILE")
            .env_remove("SERVER_JVMFLAGS")
            .env_remove("JVMFLAGS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_timeout(cmd, b"", Duration::from_secs(90))
    }
    /// Out file of the daemon: zookeeper-$USER-server-$HOSTNAME.out.
    fn out_files(&self) -> Vec<PathBuf> {
        fs::read_dir(self.log_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let n = p.file_name().unwrap().to_string_lossy().into_owned();
                        n.starts_with("zookeeper-") && n.contains("-server-") && n.ends_with(".out")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Setup {
    /// Whatever happens, no server started by the script survives the test.
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')).unwrap_or(false))
        .unwrap_or(false)
}

fn write_exe(path: &Path, body: &str) {
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in for zk-server that runs Apache ZooKeeper: the `-D...`
/// arguments become JVM system properties, the last argument is zoo.cfg.
fn apache_wrapper(dir: &Path) -> PathBuf {
    require_apache();
    let p = dir.join("apache-zk-server");
    write_exe(
        &p,
        &format!(
            "#!/usr/bin/env bash\n\
             # zk-server stand-in: Apache ZooKeeper with the same arguments\n\
             exec {JAVA} -Xmx128m -XX:+UseSerialGC -Dorg.slf4j.simpleLogger.logFile=System.out \
             \"${{@:1:$#-1}}\" -cp {cp} org.apache.zookeeper.server.ZooKeeperServerMain \"${{@: -1}}\"\n",
            cp = apache_classpath()
        ),
    );
    p
}

#[test]
fn status_without_server() {
    let s = Setup::new(PathBuf::from("/bin/false"));
    let o = s.run(&["status"], &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{}", describe_output("status", &o));
    assert_eq!(
        out,
        format!(
            "Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\n\
             Error contacting service. It is probably not running.\n",
            s.port
        )
    );
    assert!(err.contains(&format!("Using config: {}", s.cfg().display())), "{err}");
}

#[test]
fn stop_without_server() {
    let s = Setup::new(PathBuf::from("/bin/false"));
    let o = s.run(&["stop"], &[]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{}", describe_output("stop", &o));
    assert_eq!(
        out,
        format!(
            "Stopping zookeeper ... no zookeeper to stop (could not find file {})\n",
            s.pid_file().display()
        )
    );
}

#[test]
fn print_cmd_passes_only_defines() {
    let s = Setup::new(PathBuf::from("/opt/somewhere/zk-server"));
    let o = s.run(
        &["print-cmd"],
        &[
            ("SERVER_JVMFLAGS", "-Xmx1g -Dfoo=bar"),
            ("JVMFLAGS", "-Djute.maxbuffer=4096 -XX:+UseG1GC"),
        ],
    );
    let (out, _) = text(&o);
    assert!(o.status.success(), "{}", describe_output("print-cmd", &o));
    assert!(out.starts_with("/opt/somewhere/zk-server "), "{out}");
    let foo = out.find("-Dfoo=bar").expect(&out);
    let jute = out.find("-Djute.maxbuffer=4096").expect(&out);
    assert!(foo < jute, "SERVER_JVMFLAGS come before JVMFLAGS: {out}");
    assert!(!out.contains("Xmx1g") && !out.contains("UseG1GC"), "{out}");
    assert!(out.contains(&format!("{} >", s.cfg().display())), "config path last: {out}");
    assert!(out.contains(&format!("{}/zookeeper-", s.log_dir().display())), "{out}");
    assert!(out.contains(".out 2>&1 < /dev/null"), "{out}");
}

#[test]
fn config_argument_and_option() {
    let s = Setup::new(PathBuf::from("/bin/false"));
    let other = s.conf_dir().join("other.cfg");
    fs::copy(s.cfg(), &other).unwrap();
    // A plain name is looked up in the conf dir.
    let o = s.run(&["print-cmd", "other.cfg"], &[]);
    assert!(text(&o).1.contains(&format!("Using config: {}", other.display())), "{}", describe_output("", &o));
    // --config <dir> sets the conf dir.
    let o = s.run(&["--config", s.conf_dir().to_str().unwrap(), "status"], &[("ZOOCFGDIR", "/nonexistent")]);
    assert!(text(&o).1.contains(&format!("Using config: {}", s.cfg().display())), "{}", describe_output("", &o));
    // A missing config is an error.
    let o = s.run(&["status", "/nonexistent/zoo.cfg"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("cannot read config file /nonexistent/zoo.cfg"), "{}", describe_output("", &o));
}

#[test]
fn usage_on_unknown_subcommand() {
    let s = Setup::new(PathBuf::from("/bin/false"));
    let o = s.run(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("Usage: "), "{}", describe_output("", &o));
}

#[test]
fn shipped_conf_is_found() {
    // No ZOOCFGDIR: the checkout's conf/zoo.cfg. `status` creates nothing.
    let mut cmd = Command::new("bash");
    cmd.arg(script())
        .arg("status")
        .env_remove("ZOOCFGDIR")
        .env_remove("ZOOCFG")
        .env("ZK_SERVER_BIN", "/bin/false");
    let o = run_with_timeout(cmd, b"", Duration::from_secs(30));
    let (out, err) = text(&o);
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/zoo.cfg");
    assert!(err.contains(&format!("Using config: {}", cfg.display())), "{err}");
    assert!(
        out.starts_with("Client port found: 2181. Client address: 127.0.0.1. Client SSL: false.\n"),
        "{out}"
    );
}

#[test]
fn start_reports_failure_of_a_dying_server() {
    let mut s = Setup::new(PathBuf::new());
    let bin = s.dir.path().join("dies");
    write_exe(&bin, "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n");
    s.bin = bin;
    let o = s.run(&["start"], &[]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{}", describe_output("start", &o));
    assert_eq!(out, "Starting zookeeper ... FAILED TO START\n");
    assert!(s.pid().is_none(), "pid file left behind");
    let outs = s.out_files();
    assert_eq!(outs.len(), 1, "one .out file in {}", s.log_dir().display());
    assert!(fs::read_to_string(&outs[0]).unwrap().contains("cannot start"));
}

/// start, status, start again, restart, stop, status, stop again.
fn lifecycle(s: &Setup) {
    let env = [("JVMFLAGS", "-Dzkrs.script.marker=42 -Xmx64m")];

    let o = s.run(&["start"], &env);
    let (out, err) = text(&o);
    assert_eq!(out, "Starting zookeeper ... STARTED\n", "{}", describe_output("start", &o));
    assert!(err.contains(&format!("Using config: {}", s.cfg().display())), "{err}");
    let pid = s.pid().expect("pid file in dataDir");
    assert!(alive(pid));
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("-Dzkrs.script.marker=42"), "{cmdline}");
    assert!(!cmdline.contains("-Xmx64m"), "{cmdline}");
    assert_eq!(s.out_files().len(), 1, "no .out file in {}", s.log_dir().display());

    let o = s.run(&["status"], &[]);
    assert_eq!(
        text(&o).0,
        format!(
            "Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\nMode: standalone\n",
            s.port
        ),
        "{}\nserver output:\n{}",
        describe_output("status", &o),
        fs::read_to_string(&s.out_files()[0]).unwrap_or_default()
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(four_letter_word(&format!("127.0.0.1:{}", s.port), "ruok", Duration::from_secs(5)).unwrap(), "imok");

    let o = s.run(&["start"], &env);
    assert_eq!(o.status.code(), Some(1), "{}", describe_output("second start", &o));
    assert_eq!(text(&o).0, format!("Starting zookeeper ... already running as process {pid}.\n"));

    let o = s.run(&["restart"], &env);
    assert_eq!(
        text(&o).0,
        "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n",
        "{}",
        describe_output("restart", &o)
    );
    assert!(!alive(pid), "old server {pid} still alive after restart");
    let pid2 = s.pid().expect("pid file after restart");
    assert_ne!(pid, pid2);
    assert!(alive(pid2));
    let o = s.run(&["status"], &[]);
    assert!(text(&o).0.ends_with("Mode: standalone\n"), "{}", describe_output("status", &o));

    let o = s.run(&["stop"], &[]);
    assert_eq!(text(&o).0, "Stopping zookeeper ... STOPPED\n", "{}", describe_output("stop", &o));
    assert_eq!(o.status.code(), Some(0));
    assert!(!alive(pid2), "server {pid2} still alive after stop");
    assert!(s.pid().is_none(), "pid file still there after stop");

    let o = s.run(&["status"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).0.ends_with("Error contacting service. It is probably not running.\n"));
}

#[test]
fn lifecycle_with_apache_stand_in() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Setup::new(apache_wrapper(tmp.path()));
    lifecycle(&s);
}

#[test]
fn lifecycle_with_zk_server() {
    let s = Setup::new(our_server_bin());
    lifecycle(&s);
}

/// conf/logging.conf sets the level when the environment does not: at `warn` the
/// start-up INFO lines are gone, at the shipped `info` they are there.
#[test]
fn logging_conf_sets_the_level() {
    for (spec, expect_info) in [("warn", false), ("info", true)] {
        let s = Setup::new(our_server_bin());
        fs::write(s.conf_dir().join("logging.conf"), format!("# test\n{spec}\n")).unwrap();
        let o = s.run(&["start"], &[("RUST_LOG", ""), ("ZOO_LOG_LEVEL", "")]);
        assert_eq!(text(&o).0, "Starting zookeeper ... STARTED\n", "{}", describe_output("start", &o));
        assert_eq!(four_letter_word(&format!("127.0.0.1:{}", s.port), "ruok", Duration::from_secs(5)).unwrap(), "imok");
        let o = s.run(&["stop"], &[]);
        assert_eq!(o.status.code(), Some(0), "{}", describe_output("stop", &o));
        let log = fs::read_to_string(&s.out_files()[0]).unwrap_or_default();
        assert_eq!(log.contains(" - INFO  ["), expect_info, "level {spec}, log:\n{log}");
    }
}

/// As [`apache_wrapper`], for a quorum peer (`QuorumPeerMain`, what Apache's own script runs).
fn apache_quorum_wrapper(dir: &Path) -> PathBuf {
    require_apache();
    let p = dir.join("apache-zk-quorum-peer");
    write_exe(
        &p,
        &format!(
            "#!/usr/bin/env bash\n\
             exec {JAVA} -Xmx128m -XX:+UseSerialGC -Dorg.slf4j.simpleLogger.logFile=System.out \
             \"${{@:1:$#-1}}\" -cp {cp} org.apache.zookeeper.server.quorum.QuorumPeerMain \"${{@: -1}}\"\n",
            cp = apache_classpath()
        ),
    );
    p
}

/// Waits until `zkServer.sh status` says `Mode: leader` or `Mode: follower` on every peer
/// in `peers`, and returns the modes.
fn quorum_modes(peers: &[&Setup]) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let outs: Vec<Output> = peers.iter().map(|s| s.run(&["status"], &[])).collect();
        let modes: Vec<Option<String>> = outs
            .iter()
            .zip(peers)
            .map(|(o, s)| {
                let out = text(o).0;
                let want = format!("Client port found: {}. Client address: 127.0.0.1. Client SSL: false.\n", s.port);
                let mode = out.strip_prefix(&want)?.strip_prefix("Mode: ")?.strip_suffix('\n')?.to_string();
                (o.status.code() == Some(0)).then_some(mode)
            })
            .collect();
        if modes.iter().all(|m| m.is_some()) {
            return modes.into_iter().flatten().collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no quorum after 60 s: {:?}",
            outs.iter().map(|o| describe_output("status", o)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `zkServer.sh start|status|stop` on a quorum of two of our peers and one Apache peer,
/// each in its own conf dir: status prints the mode as Apache's script does, exactly one
/// leader; a peer without a quorum is "not running" for status (exit 1), as an Apache peer
/// that is not serving is; stop leaves nothing behind.
#[test]
fn quorum_status_with_our_peers_and_an_apache_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let apache = apache_quorum_wrapper(tmp.path());
    let bins = [our_server_bin(), our_server_bin(), apache];
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (q, e))| format!("server.{}=127.0.0.1:{q}:{e}\n", i + 1))
        .collect();
    let peers: Vec<Setup> = bins
        .iter()
        .enumerate()
        .map(|(i, bin)| {
            let s = Setup::new(bin.clone());
            let data = s.dir.path().join("data");
            fs::create_dir_all(&data).unwrap();
            fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
            let mut cfg = fs::read_to_string(s.cfg()).unwrap();
            cfg = cfg.replace("tickTime=2000", "tickTime=500");
            cfg.push_str(&format!("initLimit=10\nsyncLimit=5\nstandaloneEnabled=false\n{servers}"));
            fs::write(s.cfg(), cfg).unwrap();
            s
        })
        .collect();

    // One peer alone has no quorum: it is not serving, and the script says so.
    let o = peers[0].run(&["start"], &[]);
    assert_eq!(text(&o).0, "Starting zookeeper ... STARTED\n", "{}", describe_output("start", &o));
    std::thread::sleep(Duration::from_secs(2));
    let o = peers[0].run(&["status"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", describe_output("status without quorum", &o));
    assert!(text(&o).0.ends_with("Error contacting service. It is probably not running.\n"), "{}", describe_output("status", &o));

    for s in &peers[1..] {
        let o = s.run(&["start"], &[]);
        assert_eq!(text(&o).0, "Starting zookeeper ... STARTED\n", "{}", describe_output("start", &o));
    }
    let all: Vec<&Setup> = peers.iter().collect();
    let modes = quorum_modes(&all);
    assert_eq!(modes.iter().filter(|m| *m == "leader").count(), 1, "{modes:?}");
    assert_eq!(modes.iter().filter(|m| *m == "follower").count(), 2, "{modes:?}");

    // Stop the leader through the script: the other two elect one of themselves.
    let leader = modes.iter().position(|m| m == "leader").unwrap();
    let o = peers[leader].run(&["stop"], &[]);
    assert_eq!(text(&o).0, "Stopping zookeeper ... STOPPED\n", "{}", describe_output("stop", &o));
    let rest: Vec<&Setup> = peers.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, s)| s).collect();
    let modes = quorum_modes(&rest);
    let mut sorted = modes.clone();
    sorted.sort();
    assert_eq!(sorted, ["follower", "leader"], "{modes:?}");

    for s in &rest {
        let pid = s.pid().expect("pid file");
        let o = s.run(&["stop"], &[]);
        assert_eq!(text(&o).0, "Stopping zookeeper ... STOPPED\n", "{}", describe_output("stop", &o));
        assert!(!alive(pid));
        let o = s.run(&["status"], &[]);
        assert_eq!(o.status.code(), Some(1));
    }
}
