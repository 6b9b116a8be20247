//! Real Apache clients (kazoo, the Java zkCli, the C cli_mt) against Apache
//! ZooKeeper 3.8 and against our zk-server: each scenario runs on a fresh
//! server of each kind, the clients' outputs are normalised (timestamps,
//! zxids, session ids, ports, log noise) and must be identical.
//!
//! Apache's transcript is also checked for key lines, so a scenario that
//! silently did nothing cannot pass. Run with `ZKRS_TEST_OURS=apache` to
//! check the tests themselves (Apache against Apache), and with
//! `ZKRS_TEST_SHOW=1 cargo test --test interop_clients -- --nocapture` to
//! see the transcripts.

mod common;

use common::*;
use std::process::Output;

/// Runs `f` against a fresh Apache server and a fresh zk-server, both at
/// once (they are independent), and returns (apache, ours).
fn on_both<T: Send>(extra_cfg: &str, f: impl Fn(&str) -> T + Sync) -> (T, T) {
    std::thread::scope(|s| {
        let ha = s.spawn(|| {
            let apache = ApacheServer::start_standalone(extra_cfg);
            f(&apache.connect_string())
        });
        let ho = s.spawn(|| {
            let ours = OurServer::start_standalone(extra_cfg, &[]);
            f(&ours.connect_string())
        });
        let a = ha.join();
        let o = ho.join();
        match (a, o) {
            (Ok(a), Ok(o)) => (a, o),
            (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
        }
    })
}

fn assert_same(what: &str, apache: &str, ours: &str, raw: &str) {
    // ZKRS_TEST_SHOW=1 (with --nocapture) prints both transcripts.
    if std::env::var_os("ZKRS_TEST_SHOW").is_some() {
        eprintln!("===== {what}: Apache =====\n{apache}===== {what}: zk-server =====\n{ours}=====");
    }
    assert!(!apache.trim().is_empty(), "{what}: empty transcript from Apache\n{raw}");
    if apache != ours {
        panic!(
            "{what}: zk-server's transcript differs from Apache's\n{}\n{raw}",
            line_diff("apache", apache, "zk-server", ours)
        );
    }
}

fn assert_has_lines(what: &str, transcript: &str, lines: &[&str]) {
    for l in lines {
        assert!(
            transcript.lines().any(|t| t == *l),
            "{what}: Apache's transcript lacks the expected line {l:?}; the scenario is broken\n{transcript}"
        );
    }
}

// ------------------------------------------------------------------ kazoo --

const KAZOO_SCRIPT: &str = include_str!("interop/kazoo_transcript.py");

#[test]
fn kazoo_transcripts_match_apache() {
    let (a, o) = on_both("", |c| run_kazoo(KAZOO_SCRIPT, c));
    let raw = format!("{}\n{}", describe_output("kazoo vs Apache", &a), describe_output("kazoo vs zk-server", &o));
    assert!(a.status.success(), "the kazoo script failed against Apache:\n{raw}");
    let at = String::from_utf8_lossy(&a.stdout).into_owned();
    let ot = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(at.lines().last(), Some("DONE"), "{raw}");
    assert_has_lines(
        "kazoo",
        &at,
        &[
            "get /kz/a -> (b'v1', Stat(version=0 cversion=0 aversion=0 dataLength=2 numChildren=0 ephemeral=False))",
            "set /kz/a v3 version=0 -> BadVersionError",
            "create /kz/a again -> NodeExistsError",
            "delete /kz/a (not empty) -> NotEmptyError",
            "zk1 exists /kz/eph after close -> None",
            "ephemeral: event exists DELETED /kz/eph",
            "create /kz/seq/n- sequence #2 -> '/kz/seq/n-0000000002'",
            "data watch: event data CHANGED /kz/w",
            "data watch fired once: no further event -> True",
            "child watch: event child CHILD /kz/w",
            "child watch fired once: no further event -> True",
            "exists watch: event exists CREATED /kz/w/new",
            "alice get /kz/secret -> (b's', Stat(version=0 cversion=0 aversion=0 dataLength=1 numChildren=0 ephemeral=False))",
            "anon get /kz/secret -> NoAuthError",
            "bob get /kz/secret -> NoAuthError",
            "commit failing tx -> [RolledBackError, BadVersionError, RuntimeInconsistency]",
            "DONE",
        ],
    );
    assert_same("kazoo", &at, &ot, &raw);
    assert!(o.status.success(), "kazoo exited with an error against zk-server:\n{raw}");
}

// ------------------------------------------------------------- Java zkCli --

/// The zkCli batch commands, in order, each in a fresh JVM (and session).
/// Ephemeral nodes come last: a batch-mode zkCli exits without closing its
/// session, so they stay until the session expires (30 s).
const ZKCLI_COMMANDS: &[&[&str]] = &[
    &["ls", "/"],
    &["ls", "/zookeeper"],
    &["get", "-s", "/zookeeper/config"],
    &["create", "/a", "data"],
    &["create", "/a", "again"],
    &["get", "/a"],
    &["get", "-s", "/a"],
    &["set", "/a", "x"],
    &["set", "-s", "/a", "y"],
    &["set", "-v", "7", "/a", "z"],
    &["stat", "/a"],
    &["create", "/a/b", "child"],
    &["ls", "/a"],
    &["ls", "-s", "/a"],
    &["ls", "-R", "/a"],
    &["delete", "/a"],
    &["create", "-s", "/a/seq-", "s"],
    &["create", "-s", "/a/seq-", "s"],
    &["ls", "/a"],
    &["getAllChildrenNumber", "/a"],
    &["getAcl", "/a"],
    &["getAcl", "-s", "/a"],
    &["setAcl", "/a", "world:anyone:cdra"],
    &["set", "/a", "denied"],
    &["getAcl", "/a"],
    &["setAcl", "-v", "0", "/a", "world:anyone:cdrwa"],
    &["setAcl", "-v", "1", "/a", "world:anyone:cdrwa"],
    &["getAcl", "-s", "/a"],
    &["create", "/r", "data", "world:anyone:r"],
    &["create", "/r/c", "denied"],
    &["set", "/r", "denied"],
    &["get", "/r"],
    &["getAcl", "/r"],
    &["setAcl", "/r", "world:anyone:cdrwa"],
    &["create", "/r2", "data", "world:anyone:cr"],
    &["create", "/r2/c", "ok"],
    // Not `deleteall /r2`: whether zkCli then prints "Failed to delete some
    // node(s) in the subtree!" is a race inside the client (ZKUtil reads the
    // result flag before the multi callback has set it).
    &["delete", "/r2/c"],
    &["ls", "/r2"],
    &["create", "/d", "data", "digest:user:pw:cdrwa"],
    &["getAcl", "/d"],
    &["get", "/d"],
    &["create", "/bad", "data", "foo:bar:cdrwa"],
    &["create", "/ip", "data", "ip:127.0.0.1:cdrwa"],
    &["get", "/ip"],
    &["create", "-t", "3600000", "/ttl", "t"],
    &["stat", "/ttl"],
    &["create", "-c", "/cont"],
    &["stat", "/cont"],
    &["create", "/x/y"],
    &["whoami"],
    &["sync", "/"],
    &["getEphemerals", "/"],
    &["addWatch", "/a"],
    &["setquota", "-n", "5", "/a"],
    &["listquota", "/a"],
    &["ls", "-R", "/zookeeper/quota"],
    &["delquota", "-n", "/a"],
    &["listquota", "/a"],
    &["delete", "-v", "5", "/a/b"],
    &["delete", "/a/b"],
    &["deleteall", "/a"],
    &["get", "/a"],
    &["stat", "/nope"],
    &["ls", "/nope"],
    &["config"],
    &["create", "-e", "/eph", "e"],
    &["stat", "/eph"],
    &["create", "-e", "-s", "/eseq-", "e"],
    &["getEphemerals", "/"],
    &["ls", "/"],
];

/// Is this stderr line log output of the Java client (slf4j-simple format
/// "[thread] LEVEL logger - message") or JVM chatter?
fn java_noise(line: &str) -> bool {
    if line.starts_with("SLF4J:") || line.starts_with("Picked up ") {
        return true;
    }
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((_, after)) = rest.split_once("] ") {
            return ["TRACE ", "DEBUG ", "INFO ", "WARN ", "ERROR "]
                .iter()
                .any(|l| after.starts_with(l));
        }
    }
    false
}

/// Normalises one zkCli output stream.
fn normalise_zkcli(text: &str, connect: &str, stderr: bool) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.replace(connect, "<server>").lines() {
        if stderr && java_noise(line) {
            continue;
        }
        let l = if let Some((k, v)) = line.split_once(" = ") {
            match k {
                "ctime" | "mtime" => format!("{k} = <date>"),
                "cZxid" | "mZxid" | "pZxid" => format!("{k} = <zxid>"),
                "ephemeralOwner" if v != "0x0" => format!("{k} = <session>"),
                _ => line.to_string(),
            }
        } else {
            line.to_string()
        };
        out.push(l);
    }
    out
}

/// Runs every command of ZKCLI_COMMANDS against `connect` and returns the
/// normalised transcript and the raw outputs.
fn zkcli_transcript(connect: &str) -> (String, String) {
    let mut t = String::new();
    let mut raw = String::new();
    for args in ZKCLI_COMMANDS {
        let o = run_java_zkcli(connect, args);
        let cmd = args.join(" ");
        raw.push_str(&describe_output(&format!("zkCli {cmd}"), &o));
        raw.push('\n');
        t.push_str(&format!("$ zkCli {cmd}\n"));
        for l in normalise_zkcli(&String::from_utf8_lossy(&o.stdout), connect, false) {
            t.push_str(&l);
            t.push('\n');
        }
        for l in normalise_zkcli(&String::from_utf8_lossy(&o.stderr), connect, true) {
            t.push_str("[stderr] ");
            t.push_str(&l);
            t.push('\n');
        }
        t.push_str(&format!("[exit {:?}]\n", o.status.code()));
        // A server that does not answer would cost a connection timeout per
        // command: stop at the first one.
        let err = String::from_utf8_lossy(&o.stderr);
        if err.contains("ConnectionLoss") || err.contains("[harness] killed") {
            t.push_str("[aborted: no connection]\n");
            break;
        }
    }
    (t, raw)
}

#[test]
fn java_zkcli_transcripts_match_apache() {
    let ((at, araw), (ot, oraw)) = on_both("", zkcli_transcript);
    let raw = format!("=== raw output, Apache ===\n{araw}\n=== raw output, zk-server ===\n{oraw}");
    assert_has_lines(
        "zkCli",
        &at,
        &[
            "[zookeeper]",
            "[stderr] Created /a",
            "[stderr] Node already exists: /a",
            "[stderr] version No is not valid : /a",
            "[stderr] Node not empty: /a",
            "[stderr] Created /a/seq-0000000001",
            "[stderr] Insufficient permission : /a",
            "'world,'anyone",
            ": cdrwa",
            ": r",
            ": cdra",
            "[stderr] Insufficient permission : /r/c",
            "[stderr] Insufficient permission : /r2/c",
            "Output stat for /a count=4,bytes=8",
            "aclVersion = -1",
            "Auth scheme: User",
            "[stderr] Node does not exist: /x/y",
            "[stderr] Created /eph",
            "ephemeralOwner = <session>",
            "[exit Some(0)]",
            "[exit Some(1)]",
        ],
    );
    assert!(!at.contains("[aborted"), "zkCli could not talk to Apache:\n{at}\n{raw}");
    assert_same("zkCli", &at, &ot, &format!("=== Apache transcript ===\n{at}\n{raw}"));
}

// ----------------------------------------------------------------- cli_mt --

/// Commands fed to `cli_mt` on stdin (one session). Its `create` always
/// writes the data "new"; `get`/`ls` leave watches that fire later in the
/// script (printed as "Watcher ..." lines).
const CLI_MT_SCRIPT: &str = "\
create /c
create /c
get /c
set /c hello
get /c
ls /
ls2 /c
create +e /c/e
create +s /c/s
create2 +es /c/es
create2 /c2
exists /c
exists /nope
wexists /c/w
create /c/w
sync /c
delete /c
delete /c/e
create /nope/x
create +t=3600000 /ttl
create +c /cont
create +x /bad
get nope
set /c
config
myid
addauth digest u:p
create /after-auth
get /after-auth
delete /c/w
ls /c
";

fn is_stat_line(l: &str) -> bool {
    ["\tctime = ", "\tczxid=", "\tmtime=", "\tmzxid=", "\tversion=", "\tephemeralOwner = ", "\tname = "]
        .iter()
        .any(|p| l.starts_with(p))
}

/// Normalises cli_mt output: drops "time = N msec" and C-client log lines,
/// masks dates, zxids and session ids, and sorts each list of children
/// (the server returns them in no particular order and cli_mt prints them
/// as they come).
fn normalise_cli_mt(text: &str, connect: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut children: Vec<String> = Vec::new();
    let flush = |lines: &mut Vec<String>, children: &mut Vec<String>| {
        children.sort();
        lines.append(children);
    };
    for line in text.replace(connect, "<server>").lines() {
        if line.starts_with("time = ") && line.ends_with(" msec") {
            continue;
        }
        if line.contains(":ZOO_") && line.contains('@') {
            continue; // C client log line (timestamp:pid(tid):ZOO_LEVEL@function@line: ...)
        }
        if line.starts_with('\t') && !is_stat_line(line) {
            children.push(line.to_string());
            continue;
        }
        flush(&mut lines, &mut children);
        let l = if line.starts_with("Got a new session id: ") {
            "Got a new session id: <session>".to_string()
        } else if line.starts_with("session Id = ") {
            "session Id = <session>".to_string()
        } else if line.starts_with("\tctime = ") {
            "\tctime = <date>".to_string()
        } else if line.starts_with("\tmtime=") {
            "\tmtime=<date>".to_string()
        } else if line.starts_with("\tczxid=") {
            "\tczxid=<zxid>".to_string()
        } else if line.starts_with("\tmzxid=") {
            "\tmzxid=<zxid>".to_string()
        } else if line.starts_with("\tephemeralOwner = ") && line != "\tephemeralOwner = 0" {
            "\tephemeralOwner = <session>".to_string()
        } else {
            line.to_string()
        };
        lines.push(l);
    }
    flush(&mut lines, &mut children);
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

fn cli_mt_transcript(connect: &str) -> (String, Output) {
    let o = run_cli_mt(connect, CLI_MT_SCRIPT);
    let t = format!(
        "--- stderr ---\n{}--- stdout ---\n{}--- exit {:?} ---\n",
        normalise_cli_mt(&String::from_utf8_lossy(&o.stderr), connect),
        normalise_cli_mt(&String::from_utf8_lossy(&o.stdout), connect),
        o.status.code()
    );
    (t, o)
}

#[test]
fn cli_mt_transcripts_match_apache() {
    let ((at, ao), (ot, oo)) = on_both("", cli_mt_transcript);
    let raw = format!(
        "=== Apache transcript ===\n{at}\n{}\n{}",
        describe_output("cli_mt vs Apache", &ao),
        describe_output("cli_mt vs zk-server", &oo)
    );
    assert!(!at.contains("[harness]"), "cli_mt did not run cleanly against Apache:\n{raw}");
    assert_has_lines(
        "cli_mt",
        &at,
        &[
            "Watcher SESSION_EVENT state = CONNECTED_STATE",
            "[/c]: rc = 0",
            "[/c]: rc = -110",
            "Watcher CHANGED_EVENT state = CONNECTED_STATE for path /c",
            "hello",
            "\tzookeeper",
            "\tname = /c/s0000000001",
            "Error -101 for /nope",
            "Watcher CREATED_EVENT state = CONNECTED_STATE for path /c/w",
            "/c: rc = -111",
            "[/nope/x]: rc = -101",
            "Unknown option: x",
            "Path must start with /, found: nope",
            "session Id = <session>",
            "bye",
        ],
    );
    assert_same("cli_mt", &at, &ot, &raw);
}
