//! `PrometheusMetricsProvider`: the registry behind `mntr` served at `/metrics` in the
//! Prometheus text format 0.0.4, as upstream's provider writes it with simpleclient
//! 0.9.0: `# HELP` and `# TYPE` per family, names as registered (no prefix, no `_total`
//! on counters), labels with a trailing comma, values as Java prints doubles. Dashboards
//! built on Apache's names work unchanged.
//!
//! Differences, on purpose: quantiles come from the same uniform sample as `mntr`'s
//! percentiles (upstream's simpleclient keeps a 10-minute CKMS window), and with
//! `exportJvmInfo` the process families are exported but not the `jvm_*` ones (there
//! is no JVM).

use std::fmt::Write as _;
use std::sync::Arc;

use super::MetricsProviderConfig;
use crate::server::command::{self, MetricFamily, MetricKind};
use crate::server::server_stats::snapshot_quantile;
use crate::server::util::http_server::{error_page, HttpServer, HttpTls, Reply, Request};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the gauges come from: the serving server, if any (the AdminServer's view).
pub use crate::server::admin::jetty_admin_server::Target as Source;

pub struct PrometheusMetricsProvider {
    http: HttpServer,
}

impl PrometheusMetricsProvider {
    /// `start`: the `/metrics` endpoint, or why it cannot run.
    pub fn start(cfg: &MetricsProviderConfig, source: Source) -> Result<PrometheusMetricsProvider, String> {
        log::info!(
            "Starting /metrics HTTP endpoint at host: {}, port: {}, exportJvmInfo: {}",
            cfg.http_host,
            cfg.http_port,
            cfg.export_jvm_info
        );
        let export_process = cfg.export_jvm_info;
        let handler = Arc::new(move |req: &Request| respond(req, &source, export_process));
        let http = HttpServer::start("PrometheusMetricsProvider", &cfg.http_host, cfg.http_port, 30_000, HttpTls::Plain, handler).map_err(|e| {
            log::error!("Cannot start /metrics server: {e}");
            e.to_string()
        })?;
        Ok(PrometheusMetricsProvider { http })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.http.local_addr()
    }

    pub fn stop(&mut self) {
        self.http.shutdown();
    }
}

fn respond(req: &Request, source: &Source, export_process: bool) -> Reply {
    // Jetty: the method first (405 on any path), then the path.
    if req.method != "GET" && req.method != "HEAD" {
        return error_page(405, "Method Not Allowed");
    }
    if req.path != "/metrics" {
        return error_page(404, "Not Found");
    }
    let zks = source.server();
    let mut families = command::metric_families(zks.as_deref());
    if export_process {
        families.extend(process_families());
    }
    // simpleclient's servlet filters by `name[]` parameters; the servlet API hands
    // over every value, the query map here the first.
    if let Some(only) = req.query.get("name[]") {
        families.retain(|f| sample_names(f).iter().any(|n| n == only));
    }
    Reply::ok(Some(CONTENT_TYPE), text_format(&families).into_bytes())
}

fn sample_names(f: &MetricFamily) -> Vec<String> {
    match f.kind {
        MetricKind::Summary { .. } => vec![f.name.clone(), format!("{}_count", f.name), format!("{}_sum", f.name)],
        _ => vec![f.name.clone()],
    }
}

/// The quantiles a summary of each detail level reports.
pub fn quantiles(advanced: bool) -> &'static [f64] {
    if advanced {
        &[0.5, 0.9, 0.99]
    } else {
        &[0.5]
    }
}

/// simpleclient's `doubleToGoString`.
pub fn go_double(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        command::java_double(v)
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n").replace('"', "\\\"")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `TextFormat.write004`.
pub fn text_format(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    for f in families {
        let kind = match f.kind {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Summary { .. } => "summary",
        };
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.name));
        let _ = writeln!(out, "# TYPE {} {kind}", f.name);
        for s in &f.series {
            let key_label = s.key.as_ref().map(|k| format!("key=\"{}\",", escape_label(k))).unwrap_or_default();
            match f.kind {
                MetricKind::Summary { advanced } => {
                    for q in quantiles(advanced) {
                        // An empty window has no quantiles: NaN, as simpleclient's CKMS.
                        let v = if s.sample.is_empty() { f64::NAN } else { snapshot_quantile(&s.sample, *q) };
                        let _ = writeln!(out, "{}{{{key_label}quantile=\"{}\",}} {}", f.name, command::java_double(*q), go_double(v));
                    }
                    let braces = |l: &str| if l.is_empty() { String::new() } else { format!("{{{l}}}") };
                    let _ = writeln!(out, "{}_count{} {}", f.name, braces(&key_label), go_double(s.count as f64));
                    let _ = writeln!(out, "{}_sum{} {}", f.name, braces(&key_label), go_double(s.sum as f64));
                }
                _ => {
                    let labels = if key_label.is_empty() { String::new() } else { format!("{{{key_label}}}") };
                    let _ = writeln!(out, "{}{labels} {}", f.name, go_double(s.value));
                }
            }
        }
    }
    out
}

/// simpleclient's `StandardExports` (the process half of `DefaultExports`).
fn process_families() -> Vec<MetricFamily> {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = 100.0; // USER_HZ
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the state.
    let cpu = (field(11) + field(12)) / ticks;
    let start_ticks = field(19);
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse::<f64>().ok())))
        .unwrap_or(0.0);
    let start = boot + start_ticks / ticks;
    let vsize = field(20);
    let rss_pages = field(21);
    let open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0) as f64;
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse::<f64>().ok()))
        })
        .unwrap_or(0.0);
    let one = |name: &str, kind, v: f64| MetricFamily {
        name: name.into(),
        kind,
        series: vec![command::MetricSeries { key: None, value: v, sample: Vec::new(), count: 0, sum: 0 }],
    };
    vec![
        one("process_cpu_seconds_total", MetricKind::Counter, cpu),
        one("process_start_time_seconds", MetricKind::Gauge, start),
        one("process_open_fds", MetricKind::Gauge, open_fds),
        one("process_max_fds", MetricKind::Gauge, max_fds),
        one("process_virtual_memory_bytes", MetricKind::Gauge, vsize),
        one("process_resident_memory_bytes", MetricKind::Gauge, rss_pages * 4096.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::command::MetricSeries;

    #[test]
    fn text_format_as_simpleclient_0_9() {
        let fams = vec![
            MetricFamily {
                name: "cc".into(),
                kind: MetricKind::Counter,
                series: vec![MetricSeries { key: None, value: 10.0, sample: vec![], count: 0, sum: 0 }],
            },
            MetricFamily {
                name: "gg".into(),
                kind: MetricKind::Gauge,
                series: vec![MetricSeries { key: None, value: 78.0, sample: vec![], count: 0, sum: 0 }],
            },
            MetricFamily {
                name: "ss".into(),
                kind: MetricKind::Summary { advanced: false },
                series: vec![MetricSeries { key: None, value: 0.0, sample: vec![10, 10], count: 2, sum: 20 }],
            },
            MetricFamily {
                name: "write_per_namespace".into(),
                kind: MetricKind::Summary { advanced: true },
                series: vec![MetricSeries { key: Some("a".into()), value: 0.0, sample: vec![], count: 0, sum: 0 }],
            },
        ];
        assert_eq!(
            text_format(&fams),
            "# HELP cc cc\n# TYPE cc counter\ncc 10.0\n\
             # HELP gg gg\n# TYPE gg gauge\ngg 78.0\n\
             # HELP ss ss\n# TYPE ss summary\nss{quantile=\"0.5\",} 10.0\nss_count 2.0\nss_sum 20.0\n\
             # HELP write_per_namespace write_per_namespace\n# TYPE write_per_namespace summary\n\
             write_per_namespace{key=\"a\",quantile=\"0.5\",} NaN\nwrite_per_namespace{key=\"a\",quantile=\"0.9\",} NaN\n\
             write_per_namespace{key=\"a\",quantile=\"0.99\",} NaN\nwrite_per_namespace_count{key=\"a\",} 0.0\nwrite_per_namespace_sum{key=\"a\",} 0.0\n"
        );
        assert_eq!(go_double(f64::INFINITY), "+Inf");
        assert_eq!(go_double(1.2345678e7), "1.2345678E7");
    }
}
