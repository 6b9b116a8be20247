//! `metricsProvider.className=...PrometheusMetricsProvider` side by side with Apache.
//!
//! Debian ships no Prometheus provider jar, so Apache runs its default provider and its
//! `mntr` is the registry to match: every metric Apache registers (gauges, counters,
//! summaries and their detail level, summary sets) must be a family of our `/metrics`
//! with the name upstream registers, the type upstream's provider gives it (counters
//! per `ServerMetrics`' `getCounter` calls), and the quantiles of its detail level. The
//! scrape is parsed by the Python Prometheus client's text-format parser (Debian's
//! python3-prometheus-client), and the values of the same workload are compared with
//! Apache's `mntr` and ours.
//!
//! Run: `cargo test --test prometheus_metrics -- --nocapture`.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, four_letter_word, ApacheServer, OurServer};
use raw_client::RawClient;
use zookeeper::proto::data::ACL;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{CreateRequest, GetDataRequest, SetDataRequest};

/// `ServerMetrics`' counters in 3.8 (its `getCounter` calls); everything else that is
/// not a summary is a gauge.
const UPSTREAM_COUNTERS: [&str; 47] = [
    "looking_count", "diff_count", "snap_count", "commit_count", "connection_request_count",
    "connection_rejected", "bytes_received_count", "unrecoverable_error_count", "add_dead_watcher_stall_time",
    "dead_watchers_queued", "dead_watchers_cleared", "response_packet_cache_hits", "response_packet_cache_misses",
    "response_packet_get_children_cache_hits", "response_packet_get_children_cache_misses",
    "ensemble_auth_success", "ensemble_auth_fail", "ensemble_auth_skip", "prep_processor_request_queued",
    "outstanding_changes_queued", "outstanding_changes_removed", "revalidate_count", "connection_drop_count",
    "connection_revalidate_count", "sessionless_connections_expired", "stale_sessions_expired",
    "request_commit_queued", "throttled_ops", "learner_proposal_received_count",
    "learner_commit_received_count", "sync_processor_request_queued", "proposal_count",
    "quit_leading_due_to_disloyal_voter", "stale_requests", "stale_requests_dropped", "stale_replies",
    "request_throttle_wait_count", "large_requests_rejected", "digest_mismatches_count",
    "unsuccessful_handshake", "insecure_admin_count", "tls_handshake_exceeded",
    "cnxn_closed_without_zk_server_running", "skip_learner_request_to_next_processor_count", "response_bytes",
    "watch_bytes", "requests_not_forwarded_to_commit_processor",
];

/// Metrics of the JVM's pause monitor: there is no JVM.
const NOT_EXPORTED: [&str; 1] = ["jvm_pause_time_ms"];

/// The per-namespace summary sets and their key in this test's workload.
const SETS: [&str; 2] = ["write_per_namespace", "read_per_namespace"];

fn open_acl() -> Vec<ACL> {
    vec![ACL::new(31, "world", "anyone")]
}

/// The same operations on either server: a namespace /prom with children, reads and
/// writes, one ephemeral, one data watch.
fn workload(addr: &str) -> RawClient {
    let mut c = RawClient::connect(addr).expect("connect");
    for (p, flags) in [("/prom", 0), ("/prom/a", 0), ("/prom/b", 0), ("/prom/e", 1)] {
        let req = CreateRequest { path: p.into(), data: Some(b"0123456789".to_vec()), acl: open_acl(), flags };
        let (h, _) = c.call_rec(op_code::CREATE, &req).expect("create");
        assert_eq!(h.err, 0, "create {p}");
    }
    for i in 0..20 {
        let req = GetDataRequest { path: "/prom/a".into(), watch: i == 0 };
        let (h, _) = c.call_rec(op_code::GET_DATA, &req).expect("getData");
        assert_eq!(h.err, 0);
    }
    for i in 0..5 {
        let req = SetDataRequest { path: "/prom/b".into(), data: Some(format!("v{i}").into_bytes()), version: -1 };
        let (h, _) = c.call_rec(op_code::SET_DATA, &req).expect("setData");
        assert_eq!(h.err, 0);
    }
    c
}

fn mntr(addr: &str) -> BTreeMap<String, String> {
    let text = four_letter_word(addr, "mntr", Duration::from_secs(10)).expect("mntr");
    text.lines()
        .filter_map(|l| l.strip_prefix("zk_").and_then(|l| l.split_once('\t')))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[derive(Debug, Default)]
struct Registry {
    /// name -> "gauge" / "counter" / "summary"
    kinds: BTreeMap<String, &'static str>,
    /// summaries with p50_ keys (DetailLevel.ADVANCED)
    advanced: BTreeSet<String>,
}

/// Apache's registry as its default provider prints it in `mntr`.
fn apache_registry(m: &BTreeMap<String, String>) -> Registry {
    let mut r = Registry::default();
    for k in m.keys() {
        if matches!(k.as_str(), "version" | "server_state" | "peer_state") {
            continue;
        }
        // A summary prints avg_/min_/max_/cnt_/sum_ of its name; gauges such as
        // avg_latency or max_file_descriptor_count only share a prefix.
        let summary = ["avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_", "p999_"]
            .iter()
            .find_map(|p| k.strip_prefix(p).map(|rest| (*p, rest)))
            .filter(|(_, rest)| m.contains_key(&format!("cnt_{rest}")));
        match summary {
            Some((prefix, rest)) => {
                // avg_<key>_<set> for the sets
                let name = SETS.iter().find(|s| rest.ends_with(&format!("_{s}"))).map(|s| s.to_string()).unwrap_or(rest.to_owned());
                r.kinds.insert(name.clone(), "summary");
                if prefix == "p50_" {
                    r.advanced.insert(name);
                }
            }
            None => {
                let kind = if UPSTREAM_COUNTERS.contains(&k.as_str()) { "counter" } else { "gauge" };
                r.kinds.insert(k.clone(), kind);
            }
        }
    }
    for n in NOT_EXPORTED {
        r.kinds.remove(n);
        r.advanced.remove(n);
    }
    r
}

fn http_get(addr: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect /metrics");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    let ctype = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (status, ctype, body.to_owned())
}

/// One parsed sample: (sample name, labels, value).
type Sample = (String, BTreeMap<String, String>, f64);

/// The Python Prometheus client's parser over the scrape: family name -> (type, samples).
fn parse_with_prometheus_client(text: &str) -> BTreeMap<String, (String, Vec<Sample>)> {
    let script = r#"
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = [f.type, [[s.name, s.labels, s.value if s.value == s.value else "NaN"] for s in f.samples]]
print(json.dumps(out))
"#;
    let mut child = Command::new(common::PYTHON)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (package python3-prometheus-client)");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed the parser");
    let out = child.wait_with_output().expect("parser");
    assert!(out.status.success(), "the Prometheus text parser rejected our scrape: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser JSON");
    let mut fams = BTreeMap::new();
    for (name, fv) in v.as_object().expect("object") {
        let kind = fv[0].as_str().unwrap_or_default().to_owned();
        let samples = fv[1]
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                let labels = s[1]
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default();
                let value = s[2].as_f64().unwrap_or(f64::NAN);
                (s[0].as_str().unwrap_or_default().to_owned(), labels, value)
            })
            .collect();
        fams.insert(name.clone(), (kind, samples));
    }
    fams
}

fn value(fams: &BTreeMap<String, (String, Vec<Sample>)>, family: &str, sample: &str, key: Option<&str>) -> f64 {
    let (_, samples) = fams.get(family).unwrap_or_else(|| panic!("no family {family}"));
    samples
        .iter()
        .find(|(n, l, _)| n == sample && l.get("key").map(String::as_str) == key && !l.contains_key("quantile"))
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no sample {sample} (key {key:?}) in {family}"))
}

#[test]
fn prometheus_families_match_apaches_registry() {
    common::require_apache();
    let metrics_port = free_port();
    let ours = OurServer::start_standalone(
        &format!(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics_port}\n"
        ),
        &[],
    );
    let apache = ApacheServer::start_standalone("");
    let _a = workload(&apache.connect_string());
    let _o = workload(&ours.connect_string());

    let apache_mntr = mntr(&apache.connect_string());
    let want = apache_registry(&apache_mntr);
    assert!(want.kinds.len() > 100, "Apache's registry: {} metrics", want.kinds.len());

    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (status, ctype, body) = http_get(&metrics_addr, "/metrics");
    assert_eq!((status, ctype.as_str()), (200, "text/plain; version=0.0.4; charset=utf-8"));
    // simpleclient 0.9 text: HELP is the name, labels end with a comma, doubles as Java.
    assert!(body.contains("# HELP znode_count znode_count\n# TYPE znode_count gauge\n"), "{body:.400}");
    assert!(body.contains("readlatency{quantile=\"0.5\",}"));
    assert!(body.contains("write_per_namespace{key=\"prom\",quantile=\"0.5\",}"));
    let fams = parse_with_prometheus_client(&body);

    // Every metric of Apache's registry is a family of ours, with upstream's type.
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    for (name, kind) in &want.kinds {
        match fams.get(name) {
            None => missing.push(name.clone()),
            // The parser reports a counter family without its `_total`.
            Some((k, _)) if k != kind => wrong.push(format!("{name}: {k}, upstream {kind}")),
            Some(_) => {}
        }
    }
    assert!(missing.is_empty(), "families of Apache's registry missing from our /metrics: {missing:?}");
    assert!(wrong.is_empty(), "types differ: {wrong:?}");
    // And nothing of ours that Apache does not register, except the process families
    // and sets without series (registered, empty: Apache's mntr prints nothing for them).
    let extra: Vec<&String> = fams
        .iter()
        .filter(|(n, (_, samples))| !want.kinds.contains_key(*n) && !n.starts_with("process_") && !samples.is_empty())
        .map(|(n, _)| n)
        .collect();
    assert!(extra.is_empty(), "families Apache does not register: {extra:?}");

    // Quantiles by detail level: ADVANCED 0.5, 0.9, 0.99; BASIC 0.5.
    for (name, (kind, samples)) in &fams {
        if kind != "summary" || samples.is_empty() {
            continue;
        }
        let qs: BTreeSet<String> = samples.iter().filter_map(|(_, l, _)| l.get("quantile").cloned()).collect();
        let expect: BTreeSet<String> = if want.advanced.contains(name) {
            ["0.5", "0.9", "0.99"].iter().map(|s| s.to_string()).collect()
        } else {
            ["0.5"].iter().map(|s| s.to_string()).collect()
        };
        assert_eq!(qs, expect, "quantiles of {name}");
    }

    // The same workload gives the same values as Apache's registry.
    let ours_mntr = mntr(&ours.connect_string());
    // (num_alive_connections: Apache's mntr counts its own four-letter connection.)
    assert_eq!(value(&fams, "num_alive_connections", "num_alive_connections", None), 1.0);
    for g in ["znode_count", "ephemerals_count", "watch_count", "global_sessions"] {
        let a: f64 = apache_mntr[g].parse().expect("number");
        assert_eq!(value(&fams, g, g, None), a, "{g} vs Apache's mntr");
    }
    for (fam, apache_key) in [("readlatency", "cnt_readlatency"), ("updatelatency", "cnt_updatelatency")] {
        let a: f64 = apache_mntr[apache_key].parse().expect("number");
        assert_eq!(value(&fams, fam, &format!("{fam}_count"), None), a, "{fam}_count vs Apache's {apache_key}");
    }
    for set in SETS {
        let a: f64 = apache_mntr[&format!("cnt_prom_{set}")].parse().expect("number");
        let sum_a: f64 = apache_mntr[&format!("sum_prom_{set}")].parse().expect("number");
        assert_eq!(value(&fams, set, &format!("{set}_count"), Some("prom")), a, "{set}_count{{key=prom}}");
        assert_eq!(value(&fams, set, &format!("{set}_sum"), Some("prom")), sum_a, "{set}_sum{{key=prom}}");
    }
    // The read latencies were observed: the median is a number, within min..max.
    let (_, rl) = &fams["readlatency"];
    let p50 = rl.iter().find(|(_, l, _)| l.get("quantile").map(String::as_str) == Some("0.5")).map(|s| s.2).unwrap_or(f64::NAN);
    assert!(p50.is_finite() && p50 >= 0.0, "readlatency median {p50}");

    // Our mntr under this provider prints the Prometheus samples, as upstream's dump.
    assert!(ours_mntr.contains_key("readlatency{quantile=\"0.5\"}"), "{:?}", ours_mntr.keys().take(10).collect::<Vec<_>>());
    assert!(ours_mntr.contains_key("write_per_namespace_count{key=\"prom\"}"));
    assert!(!ours_mntr.contains_key("avg_readlatency"));
    assert_eq!(ours_mntr["znode_count"], "9.0");

    // The process families (simpleclient's StandardExports).
    for p in ["process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"] {
        let v = value(&fams, p, p, None);
        assert!(v > 0.0, "{p} = {v}");
    }
    // The parser names a counter family without its `_total`.
    let cpu = value(&fams, "process_cpu_seconds", "process_cpu_seconds_total", None);
    assert!(cpu >= 0.0, "process_cpu_seconds_total = {cpu}");

    // Only /metrics; garbage on the port does not hurt the next scrape.
    assert_eq!(http_get(&metrics_addr, "/other").0, 404);
    for junk in [&b"\x16\x03\x01\x02\x00garbage"[..], b"GET /metrics HTTP/9.9\r\n\r\n", &[b'A'; 20_000][..]] {
        let mut s = TcpStream::connect(&metrics_addr).expect("connect");
        let _ = s.write_all(junk);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.read_to_end(&mut sink);
    }
    let (status, _, again) = http_get(&metrics_addr, "/metrics");
    assert_eq!(status, 200);
    assert!(again.contains("# TYPE znode_count gauge"));
    eprintln!("[prometheus] {} families, {} from Apache's registry", fams.len(), want.kinds.len());
}

#[test]
fn metrics_port_in_use_fails_the_start_as_upstream() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let cfg = format!(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n"
    );
    let mut ours = OurServer::spawn_standalone(&cfg, &[]);
    let status = ours.wait_exit(Duration::from_secs(20)).expect("our server should exit");
    assert_eq!(status.code(), Some(1), "exit status");
    assert!(ours.log_contents().contains("Cannot boot MetricsProvider org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"));
    // An unknown provider class is a config error (exit 2), as upstream's parse.
    let mut bad = OurServer::spawn_standalone("metricsProvider.className=com.example.NoSuchProvider\n", &[]);
    let status = bad.wait_exit(Duration::from_secs(20)).expect("our server should exit");
    assert_eq!(status.code(), Some(2), "exit status");
    assert!(bad.log_contents().contains("metrics provider class was not found"));
    drop(taken);
}
