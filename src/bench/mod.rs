//! `zk-bench`: a load generator built on the crate's own client (`zookeeper::client`),
//! and a side-by-side comparison of Apache ZooKeeper 3.8 with our `zk-server`.
//!
//! * [`run`]: one workload against one running server (`zk-bench run`).
//! * [`compare::compare`]: starts both servers with the same zoo.cfg and runs every
//!   workload against each, alternating, plus start-up, RSS and restart measurements
//!   (`zk-bench compare`, `bin/zkBench.sh compare`).
//! * [`election::election`]: Apache and our ensembles of 3 and 5 peers side by side:
//!   start -> leader, leader kill -> new leader, idle footprint (`zk-bench election`,
//!   `bin/zkBench.sh election`).
//! * [`ensemble::ensemble`]: a 3-node Apache ensemble and a 3-node ensemble of ours side
//!   by side: workloads with the clients spread over the nodes, RSS of every node, and
//!   failover (leader kill -> first write) under load (`zk-bench ensemble`,
//!   `bin/zkBench.sh ensemble`).
//! * [`tls`]: `compare --tls`, both servers on a secure client port: workloads over TLS
//!   through our client library, and session opening (full handshakes) per second.
//! * [`raw`]: the wire protocol without the client library (frames, the session
//!   handshake), for `compare --tls`'s session opening and `benches/standalone_compare.rs`.
//! * [`scrape::scrape`]: Prometheus `/metrics` scrape times of our server with a big
//!   tree, idle and under load (`zk-bench scrape`, `bin/zkBench.sh scrape`; ours only).
//!
//! Everything is OS threads and blocking calls; the client's async calls keep requests
//! in flight, a bounded channel per client thread carries their completions back.

pub mod compare;
pub mod election;
pub mod ensemble;
pub mod histogram;
pub mod raw;
pub mod scrape;
pub mod servers;
pub mod sessions;
pub mod tls;
mod workload;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

pub use histogram::{LatencyHistogram, Percentiles};
pub use workload::FailoverProbe;

/// The workloads of `zk-bench run`, in the order `compare` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Workload {
    /// create of new unique persistent nodes
    Create,
    /// setData on pre-created nodes
    Set,
    /// getData of pre-created nodes
    Get,
    /// delete of pre-created nodes
    Delete,
    /// getData with probability --read-ratio, else setData
    Mixed,
    /// multi of --multi-ops setData ops
    Multi,
    /// one writer, --watchers sessions with a data watch each: notification latency
    Watch,
    /// connect + close of sessions
    Churn,
}

impl Workload {
    pub const ALL: [Workload; 8] = [
        Workload::Create,
        Workload::Set,
        Workload::Get,
        Workload::Delete,
        Workload::Mixed,
        Workload::Multi,
        Workload::Watch,
        Workload::Churn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Delete => "delete",
            Workload::Mixed => "mixed",
            Workload::Multi => "multi",
            Workload::Watch => "watch",
            Workload::Churn => "churn",
        }
    }

    /// What one counted operation is, for the reports.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::Watch => "notifications",
            Workload::Churn => "sessions",
            Workload::Multi => "multis",
            _ => "ops",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.iter().copied().find(|w| w.name() == s)
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parameters of one `zk-bench run`.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Connect string (`host:port[,host:port...]`).
    pub server: String,
    pub workload: Workload,
    /// Sessions issuing requests, one thread each.
    pub clients: usize,
    /// Async requests each client keeps in flight.
    pub outstanding: usize,
    /// Bytes of data per create / setData.
    pub payload: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Key space of set / get / mixed / multi.
    pub nodes: usize,
    /// Share of getData in `mixed`.
    pub read_ratio: f64,
    /// Watcher sessions of `watch`.
    pub watchers: usize,
    /// setData ops per multi.
    pub multi_ops: usize,
    /// Parent of every node the run creates; created and removed by the run.
    pub root: String,
    /// With several servers in `server`: worker session i connects to server i mod n
    /// only (setup and cleanup sessions get the whole connect string).
    pub spread: bool,
    /// Completions of a request workload reported to another thread, which may also
    /// end the run early (`ensemble`'s failover measurement).
    pub probe: Option<Arc<FailoverProbe>>,
}

impl RunConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.clients == 0 {
            return Err("--clients must be at least 1".into());
        }
        if self.outstanding == 0 {
            return Err("--outstanding must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        if self.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(format!("--read-ratio must be between 0 and 1, not {}", self.read_ratio));
        }
        if self.watchers == 0 {
            return Err("--watchers must be at least 1".into());
        }
        if self.multi_ops == 0 {
            return Err("--multi-ops must be at least 1".into());
        }
        // jute.maxbuffer (1 MiB by default on both servers) bounds every request.
        if self.payload > 1024 * 1024 - 1024 {
            return Err(format!("--payload {} is above what a server accepts by default (jute.maxbuffer, 1 MiB)", self.payload));
        }
        if !self.root.starts_with('/') || self.root.len() < 2 || self.root.ends_with('/') {
            return Err(format!("--root must be an absolute znode path other than /, not {:?}", self.root));
        }
        Ok(())
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub config: RunConfig,
    /// Length of the measured window (shorter than `--duration` when `delete` ran out
    /// of nodes or `watch` had to stop).
    pub duration_s: f64,
    /// Successful operations that completed inside the measured window.
    pub ops: u64,
    /// Failed operations inside the measured window (plus requests left unanswered).
    pub errors: u64,
    pub first_error: Option<String>,
    pub latency: Percentiles,
    /// Setup facts and workload-specific counts, for the human summary.
    pub notes: Vec<String>,
    /// Workload-specific JSON members (`"key":value`, value already encoded).
    pub extra_json: Vec<(String, String)>,
}

impl RunResult {
    pub fn throughput(&self) -> f64 {
        per_second(self.ops, self.duration_s)
    }

    /// The one-line JSON summary of `zk-bench run`.
    pub fn json(&self) -> String {
        let c = &self.config;
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"workload\":{},\"server\":{},\"clients\":{},\"outstanding\":{},\"payload\":{},\"duration_s\":{},\
\"ops\":{},\"errors\":{},\"throughput\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}",
            json_str(c.workload.name()),
            json_str(&c.server),
            c.clients,
            c.outstanding,
            c.payload,
            json_f64(self.duration_s, 3),
            self.ops,
            self.errors,
            json_f64(self.throughput(), 1),
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.p999_us,
            self.latency.max_us
        );
        for (k, v) in &self.extra_json {
            let _ = write!(s, ",{}:{v}", json_str(k));
        }
        if let Some(e) = &self.first_error {
            let _ = write!(s, ",\"first_error\":{}", json_str(e));
        }
        s.push('}');
        s
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let mut s = String::new();
        let shape = match c.workload {
            Workload::Watch => format!("1 writer, {} watcher sessions", c.watchers),
            Workload::Churn => format!("{} clients, one session at a time each", c.clients),
            _ => format!("{} clients x {} outstanding", c.clients, c.outstanding),
        };
        let _ = writeln!(s, "zk-bench run: {} against {} ({shape}, payload {} B)", c.workload, c.server, c.payload);
        for n in &self.notes {
            let _ = writeln!(s, "  {n}");
        }
        let _ = writeln!(
            s,
            "  warm-up {:.1} s, measured {:.2} s: {} {}, {} errors, {:.1} {}/s",
            c.warmup.as_secs_f64(),
            self.duration_s,
            self.ops,
            c.workload.unit(),
            self.errors,
            self.throughput(),
            c.workload.unit()
        );
        let l = &self.latency;
        let _ = writeln!(s, "  latency (us): p50 {}  p99 {}  p99.9 {}  max {}", l.p50_us, l.p99_us, l.p999_us, l.max_us);
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "  first error: {e}");
        }
        s
    }
}

/// Runs one workload against a running server: setup (not timed), warm-up, the
/// measured window, cleanup of everything created under `root` (not timed).
/// `Err` only for what makes the numbers meaningless (no session, setup failed).
pub fn run(cfg: &RunConfig) -> Result<RunResult, String> {
    cfg.validate()?;
    workload::run(cfg)
}

/// `count` per second of `secs`; 0 for an empty window.
fn per_second(count: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Prints a benchmark's title line, marked when it is a smoke run.
fn print_title(title: &str, smoke: bool) {
    println!("{title}{}", if smoke { " -- SMOKE RUN, numbers mean nothing" } else { "" });
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number with `decimals` digits; `null` for NaN and infinities (no JSON form).
pub fn json_f64(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "null".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
        assert_eq!(json_f64(f64::NAN, 2), "null");
        assert_eq!(json_f64(1.5, 2), "1.50");
    }

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
    }
}
