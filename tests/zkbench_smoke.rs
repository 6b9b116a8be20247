//! Smoke tests of zk-bench: `bin/zkBench.sh compare --smoke` end to end (Apache 3.8 and
//! our zk-server, every workload, start-up, RSS, restart), `compare --tls --smoke` (both
//! on a secure client port), `election --smoke`, `bin/zkBench.sh ensemble --smoke`
//! (3-node ensembles of both under load, failover), `scrape --smoke` (Prometheus
//! /metrics of our server) and `zk-bench run` against our server. They check that the
//! tool works and reports what it should, never how fast anything is.

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

/// Runs `zk-bench <args> --server-bin <zk-server>` (the binaries cargo built for this test
/// run) within `timeout`: its stdout and a report of its output for assertion messages.
/// Panics, with the report, unless it succeeds.
fn zk_bench_with_our_server(args: &[&str], timeout: Duration) -> (String, String) {
    let what = format!("zk-bench {}", args.join(" "));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zk-bench"));
    cmd.args(args).args(["--server-bin", env!("CARGO_BIN_EXE_zk-server")]);
    let t0 = Instant::now();
    let out = run_with_timeout(cmd, b"", timeout);
    let report = describe_output(&what, &out);
    assert!(out.status.success(), "{what} failed\n{report}");
    eprintln!("{what} took {:?}", t0.elapsed());
    (String::from_utf8_lossy(&out.stdout).into_owned(), report)
}

/// The one JSON line of `stdout`, parsed; panics with `report` unless there is exactly one
/// and it parses.
fn one_json(stdout: &str, report: &str) -> serde_json::Value {
    let json = json_lines(stdout);
    assert_eq!(json.len(), 1, "expected exactly one JSON line, got {json:?}\n{report}");
    serde_json::from_str(json[0]).unwrap_or_else(|e| panic!("the JSON summary does not parse ({e}): {}", json[0]))
}

/// The number at `path` (object keys) in `j`; panics naming the path when it is missing
/// or not a number (a NaN or infinite figure is written as null).
fn num_at(j: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(j, |v, k| v.get(k))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {} in the JSON summary: {j}", path.join(".")))
}

/// `zk-bench compare --tls --smoke`: Apache and our server on a secure client port
/// (certificates made with openssl), get and set over TLS through our client library,
/// and session opening (1 and 8 openers), ~20 s. Checks that both negotiated TLS, that
/// every measurement completed operations on both sides and the JSON summary, never a
/// speed.
#[test]
fn compare_tls_smoke() {
    // Also requires the Netty jars Apache's secure port needs.
    require_apache();
    let (stdout, report) = zk_bench_with_our_server(&["compare", "--tls", "--smoke"], Duration::from_secs(240));
    let j = one_json(&stdout, &report);
    assert_eq!(j["bench"], "zk-bench-compare", "{j}");
    assert_eq!(j["mode"], "tls", "{j}");
    assert_eq!(j["smoke"], true, "{j}");
    // Both servers spoke TLS on their secure port, e.g. "TLSv1.2 TLS_ECDHE_RSA_WITH_...".
    for side in ["apache", "ours"] {
        let n = j["tls"]["negotiated"][side].as_str().unwrap_or_default();
        assert!(n.starts_with("TLSv1.") && n.contains(" TLS_"), "{side} negotiated {n:?}\n{report}");
    }
    for w in ["get", "set"] {
        for side in ["apache", "ours"] {
            let thr = num_at(&j, &["workloads", w, side, "throughput"]);
            assert!(thr > 0.0, "{w} over TLS: {side} throughput is {thr}\n{report}");
            assert!(num_at(&j, &["workloads", w, side, "p99_us"]) > 0.0, "{w} over TLS: no {side} latency\n{report}");
        }
        assert!(num_at(&j, &["workloads", w, "throughput_ratio"]) > 0.0, "{w}: no ratio\n{report}");
        // The final table has the row too: "<ratio>  TLS get throughput (ops/s)  <apache> <ours>  <target>".
        let label = format!("TLS {w} throughput (ops/s)");
        assert!(stdout.lines().any(|l| l.contains(&label)), "no row {label:?}\n{report}");
    }
    for what in ["tls_session", "tls_handshake", "plain_session"] {
        for openers in [1, 8] {
            let key = format!("{what}_x{openers}");
            assert_eq!(num_at(&j, &["opening", key.as_str(), "openers"]), f64::from(openers), "{key}: {j}");
            for side in ["apache", "ours"] {
                let per_s = num_at(&j, &["opening", key.as_str(), side, "per_s"]);
                assert!(per_s > 0.0, "{key}: {side} opened {per_s}/s\n{report}");
            }
        }
    }
    for side in ["apache", "ours"] {
        assert!(num_at(&j, &["rss_kib_after_load", side]) > 0.0, "no {side} RSS\n{report}");
    }
}

/// `zk-bench election --smoke`: one round of 3 Apache peers and 3 of ours (start ->
/// leader, one leader kill for Apache, footprint), under 20 s. Checks the rows and the
/// JSON summary, never a time.
#[test]
fn election_smoke() {
    require_apache();
    let (stdout, report) = zk_bench_with_our_server(&["election", "--smoke"], Duration::from_secs(180));
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

/// `zk-bench scrape --smoke`: our server with the Prometheus provider, 10 scrapes of
/// /metrics per phase with an empty tree, with 20 000 znodes idle and under a set load,
/// a few seconds. Checks that every phase has times, that the page is a plausible metrics
/// page counting the tree, and the JSON summary, never a time.
#[test]
fn scrape_smoke() {
    let (stdout, report) = zk_bench_with_our_server(&["scrape", "--smoke"], Duration::from_secs(180));
    let j = one_json(&stdout, &report);
    assert_eq!(j["bench"], "zk-bench-scrape", "{j}");
    assert_eq!(j["smoke"], true, "{j}");
    let nodes = num_at(&j, &["nodes"]);
    assert_eq!(nodes, 20_000.0, "{j}");
    assert_eq!(num_at(&j, &["scrapes"]), 10.0, "{j}");
    // znode_count: the empty tree has the system nodes only; the populated one has
    // `nodes` more (and their parent), the load phase also the load's own keys.
    for (phase, min_znodes, max_znodes) in [("empty_idle", 1.0, 100.0), ("populated_idle", nodes, nodes + 100.0), ("populated_load", nodes, nodes + 2_000.0)] {
        let f = |k: &str| num_at(&j, &["phases", phase, k]);
        let (min, med, p99, max) = (f("min_ms"), f("median_ms"), f("p99_ms"), f("max_ms"));
        assert!(0.0 < min && min <= med && med <= p99 && p99 <= max, "{phase}: min {min} median {med} p99 {p99} max {max}\n{report}");
        assert!(f("first_byte_median_ms") > 0.0, "{phase}: no time to the first byte\n{report}");
        let znodes = f("znode_count");
        assert!((min_znodes..=max_znodes).contains(&znodes), "{phase}: znode_count {znodes}, expected {min_znodes}..={max_znodes}\n{report}");
        // ZooKeeper's server metrics plus the process/JVM families: well over 50, and
        // one sample line at least per family.
        let (families, samples) = (f("families"), f("samples"));
        assert!((50.0..=5_000.0).contains(&families), "{phase}: {families} metric families\n{report}");
        assert!(samples >= families, "{phase}: {samples} samples for {families} families\n{report}");
        assert!(f("body_bytes") > 1_000.0, "{phase}: a page of {} bytes\n{report}", f("body_bytes"));
    }
    let load = j["phases"]["populated_load"]["load"].as_str().unwrap_or_default();
    assert!(load.starts_with("set ") && load.contains("ops/s while scraping"), "load phase: {load:?}\n{report}");
    assert!(num_at(&j, &["populate_per_s"]) > 0.0 && num_at(&j, &["rss_kib_after_populate"]) > 0.0, "{j}");
    for label in ["empty tree, idle", "20000 nodes, idle", "20000 nodes, set load"] {
        assert!(stdout.lines().any(|l| l.starts_with("target < 50 ms, ") && l.contains(label)), "no target line for {label:?}\n{report}");
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

/// `zk-bench sessions --smoke`: 300 sessions held on Apache and on ours, a get load on
/// top. Checks the JSON summary's figures exist and that no session was refused or
/// lost, never a time; ours holds them on its idle thread count (no thread per
/// connection), Apache on its selector threads.
#[test]
fn sessions_smoke() {
    let (stdout, report) = zk_bench_with_our_server(&["sessions", "--smoke"], Duration::from_secs(180));
    let j = one_json(&stdout, &report);
    assert_eq!(j["bench"], "zk-bench-sessions", "{j}");
    assert_eq!(j["smoke"], true, "{j}");
    assert_eq!(num_at(&j, &["sessions"]), 300.0, "{j}");
    assert_eq!(num_at(&j, &["refused_or_lost"]), 0.0, "{j}\n{report}");
    for side in ["apache", "ours"] {
        let f = |k: &str| num_at(&j, &[side, k]);
        assert!(f("open_s") > 0.0 && f("get_ops_s") > 0.0 && f("get_p99_ms") > 0.0, "{side}: {j}\n{report}");
        assert!(f("rss_kib") > 0.0 && f("threads") > 0.0, "{side}: {j}");
    }
    let (idle, holding) = (num_at(&j, &["ours", "idle_threads"]), num_at(&j, &["ours", "threads"]));
    assert!(holding <= idle + 4.0, "ours: {holding} threads holding 300 sessions, {idle} idle\n{report}");
}
