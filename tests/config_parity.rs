//! Bad zoo.cfg files, side by side with Apache 3.8's `QuorumPeerMain`: both servers
//! get the very same file (same path), and must exit with the same code and report the
//! same ConfigException messages (Apache: "Invalid config, exiting abnormally" on
//! stderr, the exception chain in its log). Every case also states the upstream
//! message it expects, so the test cannot pass on two equally wrong servers. A server
//! that starts when it should not is killed by the time limit and fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{apache_classpath, four_letter_word, free_port, our_server_bin, run_with_timeout, spawn_guarded, JAVA};

const LIMIT: Duration = Duration::from_secs(40);

fn apache_cmd(cfg: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(JAVA);
    cmd.args(["-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-Djava.net.preferIPv4Stack=true"])
        .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
        .arg("-Dorg.slf4j.simpleLogger.logFile=System.out")
        .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=info")
        .arg("-cp")
        .arg(apache_classpath())
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(cfg)
        .current_dir(dir);
    cmd
}

fn ours_cmd(cfg: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(our_server_bin());
    cmd.env("RUST_LOG", "info").arg(cfg).current_dir(dir);
    cmd
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The messages of the exception chain Apache logged after "Invalid config, exiting
/// abnormally": the ConfigException's own message, then each "Caused by:" message.
fn apache_messages(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in log.lines() {
        let l = line.trim();
        let rest = if let Some(r) = l.strip_prefix("Caused by: ") { r } else { l };
        if let Some(i) = rest.find("ConfigException: ") {
            out.push(rest[i + "ConfigException: ".len()..].to_string());
        } else if l.starts_with("Caused by: ") {
            if let Some(i) = rest.find(": ") {
                out.push(rest[i + 2..].to_string());
            }
        }
    }
    out
}

fn base_cfg(dir: &Path, port: u16) -> Vec<String> {
    vec![
        "tickTime=2000".into(),
        format!("dataDir={}", dir.join("data").display()),
        format!("clientPort={port}"),
        "clientPortAddress=127.0.0.1".into(),
        "admin.enableServer=false".into(),
        "4lw.commands.whitelist=*".into(),
    ]
}

struct Case {
    name: &'static str,
    /// Edits the base lines (remove / add).
    edit: fn(&mut Vec<String>),
    /// The upstream message (innermost cause) the output must contain.
    key: &'static str,
    /// Whether upstream wraps the message in "Error processing <path>".
    wrapped: bool,
}

fn drop_key(lines: &mut Vec<String>, key: &str) {
    lines.retain(|l| !l.starts_with(&format!("{key}=")));
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "missing dataDir", edit: |l| drop_key(l, "dataDir"), key: "dataDir is not set", wrapped: true },
        Case {
            name: "tickTime=0",
            edit: |l| {
                drop_key(l, "tickTime");
                l.push("tickTime=0".into())
            },
            key: "tickTime is not set",
            wrapped: true,
        },
        Case {
            name: "tickTime=abc",
            edit: |l| {
                drop_key(l, "tickTime");
                l.push("tickTime=abc".into())
            },
            key: "For input string: \"abc\"",
            wrapped: true,
        },
        Case {
            name: "min > max session timeout",
            edit: |l| {
                l.push("minSessionTimeout=10000".into());
                l.push("maxSessionTimeout=5000".into())
            },
            key: "minSessionTimeout must not be larger than maxSessionTimeout",
            wrapped: true,
        },
        Case {
            name: "electionAlg=1",
            edit: |l| l.push("electionAlg=1".into()),
            key: "Invalid electionAlg value. Only 3 is supported.",
            wrapped: false,
        },
        Case {
            name: "peerType=bogus",
            edit: |l| l.push("peerType=bogus".into()),
            key: "Unrecognised peertype: bogus",
            wrapped: false,
        },
        Case {
            name: "clientPortAddress without clientPort",
            edit: |l| drop_key(l, "clientPort"),
            key: "clientPortAddress is set but clientPort is not set",
            wrapped: true,
        },
    ]
}

/// Runs one failing configuration with both servers; returns a normalised transcript.
fn run_case(name: &str, cfg: &Path, dir: &Path, key: &str, wrapped: bool) -> Vec<String> {
    let a = run_with_timeout(apache_cmd(cfg, dir), b"", LIMIT);
    let o = run_with_timeout(ours_cmd(cfg, dir), b"", LIMIT);
    let (a_out, a_err) = text(&a);
    let (o_out, o_err) = text(&o);
    let a_all = format!("{a_out}\n{a_err}");
    let o_all = format!("{o_out}\n{o_err}");
    let dump = || format!("--- apache stdout ---\n{a_out}\n--- apache stderr ---\n{a_err}\n--- ours stdout ---\n{o_out}\n--- ours stderr ---\n{o_err}");
    let banner = "Invalid config, exiting abnormally";
    let mut t = Vec::new();
    // Apache: the banner on stderr, exit code 2 (INVALID_INVOCATION).
    assert!(a_err.contains(banner), "{name}: Apache stderr lacks the banner\n{}", dump());
    assert_eq!(a.status.code(), Some(2), "{name}: Apache exit code\n{}", dump());
    let msgs = apache_messages(&a_out);
    assert!(msgs.iter().any(|m| m == key), "{name}: Apache did not log {key:?}: {msgs:?}\n{}", dump());
    let processing = format!("Error processing {}", cfg.display());
    assert_eq!(msgs.iter().any(|m| *m == processing), wrapped, "{name}: Apache wrapping: {msgs:?}\n{}", dump());
    for (who, st, err, all) in [("apache", &a.status, &a_err, &a_all), ("ours", &o.status, &o_err, &o_all)] {
        t.push(format!("{who}: exit {:?}", st.code()));
        t.push(format!("{who}: banner on stderr: {}", err.contains(banner)));
        t.push(format!("{who}: key message: {}", all.contains(key)));
        t.push(format!("{who}: 'Error processing <cfg>': {}", all.contains(&processing)));
        // Every message of Apache's exception chain appears in our output too.
        for m in &msgs {
            t.push(format!("{who}: mentions {m:?}: {}", all.contains(m.as_str())));
        }
    }
    let (ap, ou): (Vec<String>, Vec<String>) = {
        let mut ap = Vec::new();
        let mut ou = Vec::new();
        for l in &t {
            if let Some(r) = l.strip_prefix("apache: ") {
                ap.push(r.to_string());
            } else if let Some(r) = l.strip_prefix("ours: ") {
                ou.push(r.to_string());
            }
        }
        (ap, ou)
    };
    assert_eq!(ou, ap, "{name}: ours differs from Apache\n{}\n{}", common::line_diff("apache", &ap.join("\n"), "ours", &ou.join("\n")), dump());
    t
}

#[test]
fn bad_configs_parity() {
    let mut failures = Vec::new();
    for c in cases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lines = base_cfg(dir.path(), free_port());
        (c.edit)(&mut lines);
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, lines.join("\n") + "\n").expect("write cfg");
        let r = std::panic::catch_unwind(|| run_case(c.name, &cfg, dir.path(), c.key, c.wrapped));
        match r {
            Ok(t) => eprintln!("== {} ==\n{}", c.name, t.join("\n")),
            Err(_) => failures.push(c.name),
        }
    }
    assert!(failures.is_empty(), "cases that differ: {failures:?}");
}

#[test]
fn missing_config_file_parity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg: PathBuf = dir.path().join("no-such-zoo.cfg");
    // VerifyingFileFactory throws IllegalArgumentException("<path> file is missing")
    // inside parse(), which wraps it in ConfigException("Error processing <path>").
    let key = format!("{} file is missing", cfg.display());
    let t = run_case("missing config file", &cfg, dir.path(), &key, true);
    eprintln!("{}", t.join("\n"));
}

/// An unknown key is accepted (upstream turns it into the system property
/// `zookeeper.<key>`): both servers start and serve.
#[test]
fn unknown_key_is_accepted() {
    for ours in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut lines = base_cfg(dir.path(), port);
        lines.push("someUnknownKey=whatever".into());
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, lines.join("\n") + "\n").expect("write cfg");
        let mut cmd = if ours { ours_cmd(&cfg, dir.path()) } else { apache_cmd(&cfg, dir.path()) };
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
        cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log);
        let mut child = spawn_guarded(cmd).expect("spawn");
        let end = Instant::now() + LIMIT;
        let mut ok = false;
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if four_letter_word(&format!("127.0.0.1:{port}"), "ruok", Duration::from_secs(2)).map(|s| s == "imok").unwrap_or(false) {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        let logtxt = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        assert!(ok, "{} did not start with an unknown key:\n{logtxt}", if ours { "ours" } else { "Apache" });
    }
}

/// A quorum zoo.cfg (three servers on loopback ports) with `extra` lines; `myid` is
/// written into the data dir when given.
fn quorum_case(dir: &Path, extra: &[&str], myid: Option<&str>) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    if let Some(id) = myid {
        std::fs::write(data.join("myid"), id).expect("myid");
    }
    let mut lines = vec![
        "tickTime=2000".to_string(),
        format!("dataDir={}", data.display()),
        "admin.enableServer=false".into(),
        "standaloneEnabled=false".into(),
    ];
    let has = |k: &str| extra.iter().any(|l| l.starts_with(k));
    if !has("initLimit") && !extra.contains(&"#no-initLimit") {
        lines.push("initLimit=5".into());
    }
    if !has("syncLimit") && !extra.contains(&"#no-syncLimit") {
        lines.push("syncLimit=2".into());
    }
    if !extra.iter().any(|l| l.starts_with("server.")) {
        for i in 1..=3 {
            lines.push(format!("server.{i}=127.0.0.1:{}:{};127.0.0.1:{}", free_port(), free_port(), free_port()));
        }
    }
    lines.extend(extra.iter().filter(|l| !l.starts_with('#')).map(|l| l.to_string()));
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, lines.join("\n") + "\n").expect("write cfg");
    cfg
}

/// Quorum configurations upstream refuses: the same exit code and messages from both
/// servers, each checked against the message Apache 3.8 prints.
#[test]
fn bad_quorum_configs_parity() {
    struct QCase {
        name: &'static str,
        extra: Vec<&'static str>,
        myid: Option<&'static str>,
        key: &'static str,
        wrapped: bool,
    }
    let cases = vec![
        QCase { name: "myid missing", extra: vec![], myid: None, key: "myid file is missing", wrapped: true },
        QCase { name: "myid not a number", extra: vec![], myid: Some("one"), key: "serverid one is not a number", wrapped: true },
        QCase { name: "initLimit not set", extra: vec!["#no-initLimit"], myid: Some("1"), key: "initLimit is not set", wrapped: true },
        QCase { name: "syncLimit not set", extra: vec!["#no-syncLimit"], myid: Some("1"), key: "syncLimit is not set", wrapped: true },
        QCase {
            name: "same quorum and election port",
            extra: vec!["server.1=127.0.0.1:5555:5555", "server.2=127.0.0.1:5556:5557"],
            myid: Some("1"),
            key: "Client and election port must be different! Please update the configuration file on server.1",
            wrapped: false,
        },
        QCase {
            name: "multiple addresses without multiAddress.enabled",
            extra: vec!["server.1=127.0.0.1:5555:5556|127.0.0.2:5555:5556", "server.2=127.0.0.1:5557:5558"],
            myid: Some("1"),
            key: "Multiple address feature is disabled, but multiple addresses were specified for sid 1",
            wrapped: false,
        },
        QCase {
            name: "bad server line",
            extra: vec!["server.1=127.0.0.1:5555", "server.2=127.0.0.1:5557:5558"],
            myid: Some("1"),
            key: "127.0.0.1:5555 does not have the form server_config or server_config;client_config where server_config is the pipe separated list of host:port:port or host:port:port:type and client_config is port or host:port",
            wrapped: false,
        },
        QCase {
            name: "observers only",
            extra: vec!["server.1=127.0.0.1:5555:5556:observer", "server.2=127.0.0.1:5557:5558:observer"],
            myid: Some("1"),
            key: "standaloneEnabled = false then number of participants should be >0",
            wrapped: true,
        },
        QCase { name: "electionAlg=2", extra: vec!["electionAlg=2"], myid: Some("1"), key: "Invalid electionAlg value. Only 3 is supported.", wrapped: false },
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = quorum_case(dir.path(), &c.extra, c.myid);
        let r = std::panic::catch_unwind(|| run_case(c.name, &cfg, dir.path(), c.key, c.wrapped));
        match r {
            Ok(t) => eprintln!("== {} ==\n{}", c.name, t.join("\n")),
            Err(_) => failures.push(c.name),
        }
    }
    assert!(failures.is_empty(), "cases that differ: {failures:?}");
}

/// A server whose myid is not in the server list: upstream's QuorumPeer.start throws
/// "My id 4 not in the peer list", which QuorumPeerMain reports as an unexpected
/// exception with exit code 1 (not a config error). Both servers: same code, same text.
#[test]
fn myid_not_in_the_peer_list_parity() {
    for ours in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = quorum_case(dir.path(), &[], Some("4"));
        let cmd = if ours { ours_cmd(&cfg, dir.path()) } else { apache_cmd(&cfg, dir.path()) };
        let o = run_with_timeout(cmd, b"", LIMIT);
        let (out, err) = text(&o);
        let who = if ours { "ours" } else { "Apache" };
        assert_eq!(o.status.code(), Some(1), "{who}: exit code\n{out}\n{err}");
        assert!(format!("{out}\n{err}").contains("My id 4 not in the peer list"), "{who}: message\n{out}\n{err}");
    }
}
