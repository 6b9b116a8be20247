//! Smoke tests of zk-bench: `bin/zkBench.sh compare --smoke` end to end (Apache 3.8 and
//! our zk-server, every workload, start-up, RSS, restart), `election --smoke`,
//! `bin/zkBench.sh ensemble --smoke` (3-node ensembles of both under load, failover),
//! and `zk-bench run` against our server. They check that the tool works and reports
//! what it should, never how fast anything is.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use zookeeper::client::ZooKeeper;

const WORKLOADS: [&str; 8] = ["create", "set", "get", "delete", "mixed", "multi", "watch", "churn"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lines of `out` that start with `{"` (the JSON summaries).
fn json_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("{\"")).collect()
}

#[test]
fn compare_smoke_via_script() {
    // Panics, naming bin/test.sh, when Java or the Apache jars are missing: this test
    // never skips.
    require_apache();
    let mut cmd = Command::new("bash");
    cmd.arg(manifest_dir().join("bin/zkBench.sh"))
        .args(["compare", "--smoke"])
        // The debug binaries cargo built for this test run; the script's own cargo build
        // then finds them up to date.
        .env("ZKBENCH_PROFILE", "debug")
        .current_dir(manifest_dir());
    let out = run_with_timeout(cmd, b"", Duration::from_secs(900));
    let report = describe_output("bin/zkBench.sh compare --smoke", &out);
    assert!(out.status.success(), "compare --smoke failed\n{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);

    // Final table rows: "<ratio>  <workload> throughput (<unit>/s)  <apache>  <ours>".
    for w in WORKLOADS {
        let row = stdout
            .lines()
            .find(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                t.len() >= 5 && t[1] == w && t[2] == "throughput"
            })
            .unwrap_or_else(|| panic!("no throughput row for workload {w}\n{report}"));
        let t: Vec<&str> = row.split_whitespace().collect();
        let num = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("bad number {s:?} in row {row:?}: {e}\n{report}"));
        let (apache, ours) = (num(t[t.len() - 2]), num(t[t.len() - 1]));
        assert!(apache > 0.0, "{w}: Apache throughput is {apache}\n{report}");
        assert!(ours > 0.0, "{w}: our throughput is {ours}\n{report}");
    }
    for label in ["start-up (ms)", "restart with 2000 nodes (ms)", "RSS after load workloads (MiB)"] {
        assert!(stdout.lines().any(|l| l.contains(label)), "no row {label:?}\n{report}");
    }
    assert!(stdout.contains("see `zk-bench ensemble`"), "the ensemble note is missing\n{report}");

    let json = json_lines(&stdout);
    assert_eq!(json.len(), 1, "expected exactly one JSON line, got {json:?}\n{report}");
    let j = json[0];
    if let Err(e) = check_json(j) {
        panic!("the JSON summary does not parse ({e}): {j}");
    }
    let mut keys = vec!["bench", "workloads", "startup_ms", "restart_ms", "rss_kib", "throughput_ratio", "p99_ratio", "ensemble"];
    keys.extend(WORKLOADS);
    for k in keys {
        assert!(j.contains(&format!("\"{k}\":")), "JSON summary lacks {k:?}: {j}");
    }
}

/// `zk-bench election --smoke`: one round of 3 Apache peers and 3 of ours (start ->
/// leader, one leader kill for Apache, footprint), under 20 s. Checks the rows and the
/// JSON summary, never a time.
#[test]
fn election_smoke() {
    require_apache();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zk-bench"));
    cmd.args(["election", "--smoke", "--server-bin", env!("CARGO_BIN_EXE_zk-server")]);
    let t0 = Instant::now();
    let out = run_with_timeout(cmd, b"", Duration::from_secs(180));
    let report = describe_output("zk-bench election --smoke", &out);
    assert!(out.status.success(), "zk-bench election --smoke failed\n{report}");
    eprintln!("zk-bench election --smoke took {:?}", t0.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    // "<ratio>  3 peers start -> leader, median (ms)  <apache> <ours>": both elected.
    let row = |label: &str| -> Vec<String> {
        let l = stdout.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no row {label:?}\n{report}"));
        l.split_whitespace().map(str::to_string).collect()
    };
    for label in ["3 peers start -> leader, median (ms)", "3 peers idle follower RSS (MiB)", "3 peers idle follower threads"] {
        let t = row(label);
        let num = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("bad number {s:?} in {t:?}: {e}\n{report}"));
        assert!(num(&t[t.len() - 2]) > 0.0 && num(&t[t.len() - 1]) > 0.0, "{label}: {t:?}\n{report}");
    }
    // Apache's survivors elect a new leader; ours need Zab for that (or it is measured).
    let kill = stdout.lines().find(|l| l.contains("3 peers leader kill -> new leader, median (ms)")).unwrap_or_else(|| panic!("no kill row\n{report}"));
    let apache_kill: f64 = kill.split("(ms)").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no Apache kill figure in {kill:?}"));
    assert!(apache_kill > 0.0, "{kill}");
    assert!(kill.ends_with("n/a (needs Zab)") || kill.split_whitespace().last().is_some_and(|v| v.parse::<f64>().is_ok()), "{kill}");
    let json = json_lines(&stdout);
    assert_eq!(json.len(), 1, "expected exactly one JSON line\n{report}");
    if let Err(e) = check_json(json[0]) {
        panic!("the JSON line does not parse ({e}): {}", json[0]);
    }
    for k in ["\"bench\":\"zk-bench-election\"", "\"start_to_leader_ms\":", "\"kill_to_leader_ms\":", "\"follower_rss_kib\":", "\"follower_threads\":"] {
        assert!(json[0].contains(k), "JSON lacks {k}: {}", json[0]);
    }
}

/// `bin/zkBench.sh ensemble --smoke`: a 3-node Apache ensemble and a 3-node ensemble of
/// ours, one short round of get/set/create/mixed with the clients spread over the
/// nodes, RSS of every node, one leader kill under load per side. Checks the rows and
/// the JSON summary, never a speed or a time.
#[test]
fn ensemble_smoke_via_script() {
    require_apache();
    let mut cmd = Command::new("bash");
    cmd.arg(manifest_dir().join("bin/zkBench.sh"))
        .args(["ensemble", "--smoke"])
        // The debug binaries cargo built for this test run (see compare_smoke_via_script).
        .env("ZKBENCH_PROFILE", "debug")
        .current_dir(manifest_dir());
    let t0 = Instant::now();
    let out = run_with_timeout(cmd, b"", Duration::from_secs(600));
    let report = describe_output("bin/zkBench.sh ensemble --smoke", &out);
    assert!(out.status.success(), "ensemble --smoke failed\n{report}");
    eprintln!("zkBench.sh ensemble --smoke took {:?}", t0.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Final table rows: "<ratio>  <label>  <apache> <ours>  [<target>: met|NOT met]".
    let figures = |label: &str| -> (f64, f64) {
        let row = stdout.lines().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no row {label:?}\n{report}"));
        let rest = &row[row.find(label).map(|i| i + label.len()).unwrap_or(0)..];
        let t: Vec<&str> = rest.split_whitespace().collect();
        let num = |s: Option<&&str>| s.and_then(|v| v.parse::<f64>().ok()).unwrap_or_else(|| panic!("no figures after {label:?} in {row:?}\n{report}"));
        (num(t.first()), num(t.get(1)))
    };
    for w in ["get", "set", "create", "mixed"] {
        let (apache, ours) = figures(&format!("  {w} throughput (ops/s)"));
        assert!(apache > 0.0 && ours > 0.0, "{w} throughput: apache {apache}, ours {ours}\n{report}");
        figures(&format!("  {w} p99 latency (us)"));
    }
    for label in [
        "failover (set load): kill -> first write, median (ms)",
        "leader kill -> new leader serving, median (ms)",
        "RSS after the load, leader (MiB)",
        "RSS after the load, follower 1 (MiB)",
        "RSS after the load, follower 2 (MiB)",
    ] {
        let (apache, ours) = figures(label);
        assert!(apache > 0.0 && ours > 0.0, "{label}: apache {apache}, ours {ours}\n{report}");
    }
    let json = json_lines(&stdout);
    assert_eq!(json.len(), 1, "expected exactly one JSON line, got {json:?}\n{report}");
    let j = json[0];
    if let Err(e) = check_json(j) {
        panic!("the JSON summary does not parse ({e}): {j}");
    }
    for k in [
        "\"bench\":\"zk-bench-ensemble\"",
        "\"workloads\":",
        "\"get\":",
        "\"set\":",
        "\"create\":",
        "\"mixed\":",
        "\"throughput_ratio\":",
        "\"p99_ratio\":",
        "\"failover\":",
        "\"first_write_ms\":",
        "\"serving_ms\":",
        "\"rss_kib\":",
    ] {
        assert!(j.contains(k), "JSON summary lacks {k}: {j}");
    }
}

#[test]
fn run_get_against_our_server() {
    let srv = OurServer::start_standalone("", &[]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zk-bench"));
    cmd.args(["run", "--server", &srv.connect_string(), "--workload", "get"])
        .args(["--duration", "1", "--warmup", "0.2", "--clients", "2", "--outstanding", "8", "--nodes", "50"]);
    let out = run_with_timeout(cmd, b"", Duration::from_secs(120));
    let report = describe_output("zk-bench run --workload get", &out);
    assert!(out.status.success(), "zk-bench run failed\n{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = json_lines(&stdout);
    assert_eq!(json.len(), 1, "expected exactly one JSON line\n{report}");
    if let Err(e) = check_json(json[0]) {
        panic!("the JSON line does not parse ({e})\n{report}");
    }
    assert!(json[0].contains("\"workload\":\"get\""), "{report}");
    let ops: u64 = json[0]
        .split("\"ops\":")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"ops\" number in the JSON line\n{report}"));
    assert!(ops > 0, "no getData completed\n{report}");
    // The run removes what it created, root included.
    let zk = ZooKeeper::connect(&srv.connect_string(), 30_000, None).expect("client handle");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !zk.state().is_connected() {
        assert!(Instant::now() < deadline, "no session with our server after the run");
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = zk.exists("/zkbench", None).expect("exists /zkbench");
    assert!(left.is_none(), "/zkbench was not removed: {left:?}\n{report}");
    zk.close();
}

/// Checks that `s` is one JSON value (syntax only): enough to know the summary line is
/// machine-readable without a JSON dependency.
fn check_json(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let mut i = 0;
    value(b, &mut i)?;
    ws(b, &mut i);
    if i != b.len() {
        return Err(format!("trailing text at byte {i}"));
    }
    Ok(())
}

fn ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && b[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

fn expect(b: &[u8], i: &mut usize, c: u8) -> Result<(), String> {
    ws(b, i);
    if b.get(*i) == Some(&c) {
        *i += 1;
        Ok(())
    } else {
        Err(format!("expected {:?} at byte {}", c as char, *i))
    }
}

fn value(b: &[u8], i: &mut usize) -> Result<(), String> {
    ws(b, i);
    match b.get(*i) {
        Some(b'{') => {
            *i += 1;
            ws(b, i);
            if b.get(*i) == Some(&b'}') {
                *i += 1;
                return Ok(());
            }
            loop {
                ws(b, i);
                string(b, i)?;
                expect(b, i, b':')?;
                value(b, i)?;
                ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b'}') => {
                        *i += 1;
                        return Ok(());
                    }
                    _ => return Err(format!("expected ',' or '}}' at byte {}", *i)),
                }
            }
        }
        Some(b'[') => {
            *i += 1;
            ws(b, i);
            if b.get(*i) == Some(&b']') {
                *i += 1;
                return Ok(());
            }
            loop {
                value(b, i)?;
                ws(b, i);
                match b.get(*i) {
                    Some(b',') => *i += 1,
                    Some(b']') => {
                        *i += 1;
                        return Ok(());
                    }
                    _ => return Err(format!("expected ',' or ']' at byte {}", *i)),
                }
            }
        }
        Some(b'"') => string(b, i),
        Some(c) if *c == b'-' || c.is_ascii_digit() => {
            let start = *i;
            while *i < b.len() && matches!(b[*i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                *i += 1;
            }
            std::str::from_utf8(&b[start..*i])
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .map(|_| ())
                .ok_or_else(|| format!("bad number at byte {start}"))
        }
        _ => {
            for lit in ["true", "false", "null"] {
                if b[*i..].starts_with(lit.as_bytes()) {
                    *i += lit.len();
                    return Ok(());
                }
            }
            Err(format!("unexpected input at byte {}", *i))
        }
    }
}

fn string(b: &[u8], i: &mut usize) -> Result<(), String> {
    if b.get(*i) != Some(&b'"') {
        return Err(format!("expected a string at byte {}", *i));
    }
    *i += 1;
    while *i < b.len() {
        match b[*i] {
            b'"' => {
                *i += 1;
                return Ok(());
            }
            b'\\' => *i += 2,
            c if c < 0x20 => return Err(format!("control character in a string at byte {}", *i)),
            _ => *i += 1,
        }
    }
    Err("unterminated string".into())
}

#[test]
fn json_checker_accepts_and_rejects() {
    assert!(check_json(r#"{"a":1,"b":[true,null,-2.5e3],"c":{"d":"x\"y"}}"#).is_ok());
    assert!(check_json(r#"{"a":1,}"#).is_err());
    assert!(check_json(r#"{"a":NaN}"#).is_err());
    assert!(check_json(r#"{"a":1} x"#).is_err());
}
