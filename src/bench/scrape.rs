//! `zk-bench scrape`: how long a Prometheus scrape of our `zk-server`'s `/metrics`
//! takes with a big tree, idle and under load.
//!
//! Ours only: Debian's Apache ZooKeeper 3.8 packages ship no
//! zookeeper-prometheus-metrics jar (nor simpleclient), so its `PrometheusMetricsProvider`
//! cannot be loaded and there is nothing to compare with.
//!
//! Method (docs/benchmarks.md, "Prometheus scrape: `zkBench.sh scrape`"): our server
//! with compare's zoo.cfg plus `metricsProvider.className=...PrometheusMetricsProvider`
//! on a free `metricsProvider.httpPort`; `scrapes` scrapes one after the other, each a new
//! TCP connection with `GET /metrics HTTP/1.1` and `Connection: close`, timed from the
//! connect to the end of the body (and to its first byte: what the server computes
//! before it writes); three phases: empty tree, `nodes` znodes (compare's populate:
//! pipelined creates) idle, and the same tree under a request load.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::compare::{in_work_dir, mib, ms};
use super::servers::{rss_kib, Kind, ManagedServer, ServerExtra, ServerPrograms};
use super::workload::{self, FailoverProbe};
use super::{json_f64, json_str, print_title, RunConfig, Workload};

pub const PROMETHEUS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// The target of issue #13: a scrape of a 1M-node server well inside a scrape interval.
pub const TARGET_MS: f64 = 50.0;
const REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
/// A scrape slower than this is a stuck server.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies are ~20 KiB; anything near this is not a metrics page.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;
const POPULATE_ROOT: &str = "/zkbench-scrape";
const LOAD_ROOT: &str = "/zkbench";
/// Key space of the load phase (its nodes come on top of the populated ones).
const LOAD_NODES: usize = 1000;

/// Parameters of `zk-bench scrape`.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub programs: ServerPrograms,
    pub smoke: bool,
    /// Znodes in the tree for the second and third phases.
    pub nodes: usize,
    /// Scrapes per phase.
    pub scrapes: usize,
    /// Bytes per populated znode.
    pub payload: usize,
    /// Sessions and requests in flight of the populate and of the load.
    pub clients: usize,
    pub outstanding: usize,
    /// The load of the third phase; None skips it.
    pub load: Option<Workload>,
    pub keep_dir: bool,
}

impl ScrapeConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if self.scrapes == 0 {
            return Err("--scrapes must be at least 1".into());
        }
        if self.clients == 0 || self.outstanding == 0 {
            return Err("--clients and --outstanding must be at least 1".into());
        }
        if let Some(w) = self.load {
            if !matches!(w, Workload::Get | Workload::Set | Workload::Mixed) {
                return Err(format!("--load must be get, set or mixed, not {w}"));
            }
        }
        Ok(())
    }
}

/// One scrape.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// Connect -> end of the body.
    pub total: Duration,
    /// Connect -> first byte of the response.
    pub first_byte: Duration,
    pub body_bytes: usize,
    /// The `znode_count` gauge of the page.
    pub znode_count: Option<u64>,
    /// Metric families (`# TYPE` lines) and samples (the other non-comment lines).
    pub families: usize,
    pub samples: usize,
}

/// `GET /metrics` on a new connection, read to the end (the server closes it).
pub fn scrape_once(addr: SocketAddr) -> Result<Scrape, String> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, SCRAPE_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true)
        .and_then(|_| s.set_read_timeout(Some(SCRAPE_TIMEOUT)))
        .and_then(|_| s.set_write_timeout(Some(SCRAPE_TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    s.write_all(REQUEST).map_err(|e| format!("send the request: {e}"))?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let mut first_byte = None;
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                first_byte.get_or_insert_with(|| t0.elapsed());
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    return Err(format!("the response is over {MAX_RESPONSE} bytes"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read the response: {e}")),
        }
    }
    let total = t0.elapsed();
    let (status, body) = split_response(&buf)?;
    if status != 200 {
        return Err(format!("HTTP status {status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)])));
    }
    let text = String::from_utf8_lossy(body);
    let znode_count = text
        .lines()
        .find_map(|l| l.strip_prefix("znode_count "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64);
    let (families, samples) = count_metrics(&text);
    Ok(Scrape { total, first_byte: first_byte.unwrap_or(total), body_bytes: body.len(), znode_count, families, samples })
}

/// Metric families (`# TYPE` lines) and samples (non-empty lines that are not comments)
/// of a Prometheus text page.
fn count_metrics(text: &str) -> (usize, usize) {
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let samples = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
    (families, samples)
}

/// The status code and the body of an HTTP/1.1 response read to its end; the body is
/// checked against Content-Length when there is one.
fn split_response(buf: &[u8]) -> Result<(u16, &[u8]), String> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| format!("no end of the headers in {} bytes", buf.len()))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let body = &buf[end + 4..];
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                let n: usize = v.trim().parse().map_err(|_| format!("bad Content-Length {v:?}"))?;
                if n != body.len() {
                    return Err(format!("Content-Length {n} but {} bytes of body", body.len()));
                }
            }
        }
    }
    Ok((status, body))
}

/// One phase's scrapes, in order.
struct Phase {
    label: String,
    key: &'static str,
    scrapes: Vec<Scrape>,
    /// The load's throughput while the phase ran, when it had one.
    load: Option<String>,
}

/// Nearest-rank percentile of sorted milliseconds.
fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// (min, median, p99, max) of a phase's total times, ms.
fn stats(p: &Phase) -> [f64; 4] {
    let mut v: Vec<f64> = p.scrapes.iter().map(|s| ms(s.total)).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    [v.first().copied().unwrap_or(f64::NAN), pct(&v, 0.5), pct(&v, 0.99), v.last().copied().unwrap_or(f64::NAN)]
}

fn first_byte_median(p: &Phase) -> f64 {
    let mut v: Vec<f64> = p.scrapes.iter().map(|s| ms(s.first_byte)).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    pct(&v, 0.5)
}

/// The `n` slowest scrapes of a phase: which one (1-based, in order), total and first
/// byte, so a tail can be told apart from the server's work (first byte late) and from
/// the transfer, and placed in time (e.g. the first scrapes after the populate).
fn slowest(p: &Phase, n: usize) -> String {
    let mut v: Vec<(usize, &Scrape)> = p.scrapes.iter().enumerate().collect();
    v.sort_by_key(|(_, s)| std::cmp::Reverse(s.total));
    v.iter()
        .take(n)
        .map(|(i, s)| format!("#{} {:.2} ms (first byte {:.2})", i + 1, ms(s.total), ms(s.first_byte)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scrapes(addr: SocketAddr, n: usize) -> Result<Vec<Scrape>, String> {
    (0..n).map(|i| scrape_once(addr).map_err(|e| format!("scrape {} of {n}: {e}", i + 1))).collect()
}

/// Runs the benchmark in a temp directory (kept, with the log named, on failure).
pub fn scrape(cfg: &ScrapeConfig) -> Result<(), String> {
    cfg.validate()?;
    cfg.programs.check_for(&[Kind::Ours])?;
    in_work_dir("zk-bench-scrape", cfg.keep_dir, |work| scrape_in(cfg, work))
}

fn scrape_in(cfg: &ScrapeConfig, work: &Path) -> Result<(), String> {
    print_header(cfg, work);
    let extra = ServerExtra {
        ports: 1,
        cfg: Box::new(|p: &[u16]| {
            format!(
                "# zk-bench scrape: the Prometheus endpoint.\n\
                 metricsProvider.className={PROMETHEUS_PROVIDER}\n\
                 metricsProvider.httpHost=127.0.0.1\n\
                 metricsProvider.httpPort={}\n",
                p.first().copied().unwrap_or(0)
            )
        }),
        apache_jars: Vec::new(),
    };
    let (mut srv, took) = ManagedServer::start_with(Kind::Ours, &cfg.programs, work.join("ours"), &extra)?;
    let port = srv.extra_ports().first().copied().ok_or("the server has no metrics port")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eprintln!("  [start-up] ours: {:.0} ms (pid {}, {}, metrics http://{addr}/metrics)", ms(took.serving), srv.pid().unwrap_or(0), srv.connect_string());
    // The endpoint starts with the server; wait for its first answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match scrape_once(addr) {
            Ok(_) => break,
            Err(e) if Instant::now() >= deadline => return Err(format!("no /metrics at {addr}: {e}\n{}", srv.log_report())),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }

    let mut phases = Vec::new();
    phases.push(Phase { label: "empty tree, idle".into(), key: "empty_idle", scrapes: scrapes(addr, cfg.scrapes)?, load: None });
    srv.check_alive()?;

    let (_, rate) = workload::populate(&srv.connect_string(), POPULATE_ROOT, cfg.nodes, cfg.payload, cfg.clients, cfg.outstanding)
        .map_err(|e| format!("populating {} nodes: {e}", cfg.nodes))?;
    eprintln!("  [populate] {} nodes of {} B: {rate:.0} creates/s", cfg.nodes, cfg.payload);
    // Let the snapshot the populate triggered finish, so that "idle" is idle.
    thread::sleep(if cfg.smoke { Duration::from_millis(300) } else { Duration::from_secs(3) });
    srv.check_alive()?;
    let rss = srv.pid().map(rss_kib).transpose()?.map(|r| r.0).unwrap_or(0);
    phases.push(Phase { label: format!("{} nodes, idle", cfg.nodes), key: "populated_idle", scrapes: scrapes(addr, cfg.scrapes)?, load: None });

    if let Some(w) = cfg.load {
        phases.push(scrape_under_load(cfg, &mut srv, addr, w)?);
    }
    srv.check_alive()?;

    print_results(cfg, &phases, rss, rate);
    println!("{}", summary_json(cfg, &phases, rss, rate));
    Ok(())
}

/// Scrapes while `cfg.clients` sessions run workload `w` (compare's runner, stopped from
/// here once the scrapes are done).
fn scrape_under_load(cfg: &ScrapeConfig, srv: &mut ManagedServer, addr: SocketAddr, w: Workload) -> Result<Phase, String> {
    let probe = Arc::new(FailoverProbe::new(cfg.clients));
    let rc = RunConfig {
        server: srv.connect_string(),
        workload: w,
        clients: cfg.clients,
        outstanding: cfg.outstanding,
        payload: cfg.payload,
        // Ended by the probe once the scrapes are done; this only bounds a run whose
        // scrapes got stuck.
        duration: Duration::from_secs(3600),
        warmup: Duration::ZERO,
        nodes: LOAD_NODES,
        read_ratio: 0.9,
        watchers: 1,
        multi_ops: 1,
        root: LOAD_ROOT.into(),
        spread: false,
        probe: Some(probe.clone()),
    };
    let load = thread::Builder::new().name("zk-bench-scrape-load".into()).spawn(move || super::run(&rc)).map_err(|e| format!("cannot start the load thread: {e}"))?;
    // Scrape once the load runs at full speed (setup done, pipelines full).
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe.successes() == 0 && Instant::now() < deadline && !load.is_finished() {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(if cfg.smoke { Duration::from_millis(200) } else { Duration::from_secs(1) });
    let before = probe.successes();
    let t = Instant::now();
    let got = scrapes(addr, cfg.scrapes);
    let during = probe.successes().saturating_sub(before) as f64 / t.elapsed().as_secs_f64().max(1e-9);
    probe.stop();
    let run = load.join().map_err(|_| "the load thread panicked".to_string())?;
    let run = run.map_err(|e| format!("the {w} load: {e}"))?;
    let got = got?;
    if run.errors > 0 {
        eprintln!("  WARNING: the {w} load had {} errors (first: {})", run.errors, run.first_error.as_deref().unwrap_or("-"));
    }
    let load = format!("{w} {} clients x {} outstanding: {during:.0} ops/s while scraping, p99 {} us", cfg.clients, cfg.outstanding, run.latency.p99_us);
    Ok(Phase { label: format!("{} nodes, {w} load", cfg.nodes), key: "populated_load", scrapes: got, load: Some(load) })
}

fn print_header(cfg: &ScrapeConfig, work: &Path) {
    print_title(&format!("zk-bench scrape: Prometheus /metrics of zookeeper-rs zk-server with {} znodes", cfg.nodes), cfg.smoke);
    println!(
        "  ours only: Debian's Apache ZooKeeper 3.8 has no Prometheus metrics provider jar (zookeeper-prometheus-metrics, simpleclient), so Apache cannot serve /metrics to compare with"
    );
    println!(
        "  {} scrapes per phase, one after the other: a new TCP connection, GET /metrics HTTP/1.1 with Connection: close, read to the end; time from connect to the end of the body",
        cfg.scrapes
    );
    println!(
        "  phases: empty tree idle; {} nodes of {} B (pipelined creates, {} sessions x {}) idle; {}",
        cfg.nodes,
        cfg.payload,
        cfg.clients,
        cfg.outstanding,
        match cfg.load {
            Some(w) => format!("the same tree under a {w} load ({} clients x {} outstanding on {LOAD_NODES} keys)", cfg.clients, cfg.outstanding),
            None => "no load phase".into(),
        }
    );
    println!("  ours: {}", cfg.programs.describe(Kind::Ours));
    println!(
        "  zoo.cfg: compare's lines + metricsProvider.className={PROMETHEUS_PROVIDER} metricsProvider.httpHost=127.0.0.1 metricsProvider.httpPort=<free> (exportJvmInfo: default true)"
    );
    println!("  work dir {}", work.display());
}

fn met(v: f64) -> &'static str {
    if !v.is_finite() {
        "n/a"
    } else if v < TARGET_MS {
        "met"
    } else {
        "NOT met"
    }
}

fn print_results(cfg: &ScrapeConfig, phases: &[Phase], rss: u64, populate_rate: f64) {
    println!("\n== /metrics scrape times (ms; {} scrapes per phase) ==", cfg.scrapes);
    println!(
        "{:<36} {:>8} {:>8} {:>8} {:>8} {:>11} {:>10} {:>12}",
        "phase", "min", "median", "p99", "max", "1st byte", "body B", "znode_count"
    );
    for p in phases {
        let [min, med, p99, max] = stats(p);
        let last = p.scrapes.last();
        println!(
            "{:<36} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11.2} {:>10} {:>12}",
            p.label,
            min,
            med,
            p99,
            max,
            first_byte_median(p),
            last.map(|s| s.body_bytes).unwrap_or(0),
            last.and_then(|s| s.znode_count).map(|c| c.to_string()).unwrap_or_else(|| "-".into())
        );
        if let Some(l) = &p.load {
            println!("{:<36} load: {l}", "");
        }
        println!("{:<36} slowest: {}", "", slowest(p, 3));
    }
    println!("populate: {populate_rate:.0} creates/s; RSS after populating {} nodes: {:.1} MiB", cfg.nodes, mib(rss));
    for p in phases {
        let [_, med, p99, _] = stats(p);
        println!("target < {TARGET_MS:.0} ms, {}: median {med:.2} ms {}, p99 {p99:.2} ms {}", p.label, met(med), met(p99));
    }
    println!("apache: not measured (no Prometheus provider in Debian's ZooKeeper 3.8)");
}

fn summary_json(cfg: &ScrapeConfig, phases: &[Phase], rss: u64, populate_rate: f64) -> String {
    let ScrapeConfig { smoke, nodes, payload, scrapes, .. } = cfg;
    let mut s = format!("{{\"bench\":\"zk-bench-scrape\",\"smoke\":{smoke},\"nodes\":{nodes},\"payload\":{payload},\"scrapes\":{scrapes}");
    let apache = json_str("not measured: no Prometheus metrics provider in Debian's ZooKeeper 3.8");
    let _ = write!(s, ",\"target_ms\":{},\"apache\":{apache}", json_f64(TARGET_MS, 0));
    let members: Vec<String> = phases
        .iter()
        .map(|p| {
            let [min, med, p99, max] = stats(p);
            let last = p.scrapes.last();
            format!(
                "{}:{{\"label\":{},\"min_ms\":{},\"median_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"first_byte_median_ms\":{},\"body_bytes\":{},\"znode_count\":{},\"families\":{},\"samples\":{},\"target_met\":{}{}}}",
                json_str(p.key),
                json_str(&p.label),
                json_f64(min, 3),
                json_f64(med, 3),
                json_f64(p99, 3),
                json_f64(max, 3),
                json_f64(first_byte_median(p), 3),
                last.map(|s| s.body_bytes).unwrap_or(0),
                last.and_then(|s| s.znode_count).map(|c| c.to_string()).unwrap_or_else(|| "null".into()),
                last.map(|s| s.families).unwrap_or(0),
                last.map(|s| s.samples).unwrap_or(0),
                med < TARGET_MS && p99 < TARGET_MS,
                p.load.as_ref().map(|l| format!(",\"load\":{}", json_str(l))).unwrap_or_default()
            )
        })
        .collect();
    let _ = write!(s, ",\"phases\":{{{}}}", members.join(","));
    let _ = write!(s, ",\"populate_per_s\":{},\"rss_kib_after_populate\":{rss}}}", json_f64(populate_rate, 0));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_is_split_and_checked() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nznode_count 42\n";
        let (status, body) = split_response(r).unwrap();
        assert_eq!((status, body.len()), (200, 15));
        assert!(split_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort").is_err());
        assert!(split_response(b"garbage").is_err());
    }

    #[test]
    fn metrics_are_counted() {
        let page = "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n\n# HELP x x\n# TYPE x summary\nx{quantile=\"0.5\"} 1.0\nx_count 2.0\nx_sum 3.0\n";
        assert_eq!(count_metrics(page), (2, 4));
        assert_eq!(count_metrics(""), (0, 0));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 0.5), 50.0);
        assert_eq!(pct(&v, 0.99), 99.0);
        assert_eq!(pct(&[7.0], 0.99), 7.0);
        assert!(pct(&[], 0.5).is_nan());
    }
}
