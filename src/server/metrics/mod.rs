//! `MetricsProviderBootstrap`: the registry behind `mntr` is always kept; with
//! `metricsProvider.className=...PrometheusMetricsProvider` it is also served over HTTP
//! for Prometheus.

pub mod prometheus_metrics_provider;
pub mod server_metrics;

use std::collections::BTreeMap;

pub const DEFAULT_METRICS_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";
pub const PROMETHEUS_METRICS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// Upstream loads the class at parse time; these are the providers this server has.
pub fn is_known_provider(class_name: &str) -> bool {
    class_name == DEFAULT_METRICS_PROVIDER || class_name == PROMETHEUS_METRICS_PROVIDER
}

/// `PrometheusMetricsProvider.configure`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsProviderConfig {
    pub http_host: String,
    pub http_port: u16,
    pub export_jvm_info: bool,
}

impl MetricsProviderConfig {
    /// The provider's keys; a bad `httpPort` is an error (upstream's
    /// `Integer.parseInt` fails the boot).
    pub fn from_properties(p: &BTreeMap<String, String>) -> Result<MetricsProviderConfig, String> {
        let port = p.get("httpPort").map(String::as_str).unwrap_or("7000");
        let http_port = port.trim().parse::<u16>().map_err(|_| format!("For input string: \"{port}\""))?;
        Ok(MetricsProviderConfig {
            http_host: p.get("httpHost").cloned().unwrap_or_else(|| "0.0.0.0".into()),
            http_port,
            // Boolean.parseBoolean: only "true" (any case) is true
            export_jvm_info: p.get("exportJvmInfo").map(|v| v.eq_ignore_ascii_case("true")).unwrap_or(true),
        })
    }
}

/// A started provider: nothing for the default one (its values are read by `mntr`).
pub enum MetricsProvider {
    Default,
    Prometheus(prometheus_metrics_provider::PrometheusMetricsProvider),
}

impl MetricsProvider {
    pub fn stop(&mut self) {
        if let MetricsProvider::Prometheus(p) = self {
            p.stop();
        }
    }
}

/// `startMetricsProvider`: Err is upstream's "Cannot boot MetricsProvider <class>".
pub fn start(
    class_name: &str,
    props: &BTreeMap<String, String>,
    source: prometheus_metrics_provider::Source,
) -> Result<MetricsProvider, String> {
    if class_name != PROMETHEUS_METRICS_PROVIDER {
        return Ok(MetricsProvider::Default);
    }
    let boot = |e: String| format!("Cannot boot MetricsProvider {class_name}: {e}");
    log::info!("Initializing metrics, configuration: {props:?}");
    let cfg = MetricsProviderConfig::from_properties(props).map_err(boot)?;
    let p = prometheus_metrics_provider::PrometheusMetricsProvider::start(&cfg, source).map_err(boot)?;
    PROMETHEUS_ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(MetricsProvider::Prometheus(p))
}

/// Whether the running server exports through Prometheus (it changes `mntr`'s keys).
pub fn prometheus_active() -> bool {
    PROMETHEUS_ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) static PROMETHEUS_ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
