//! Four-letter words (`server/command/*Command.java`, `FourLetterCommands`): a client
//! sends four ASCII letters as the first bytes of a connection, the server answers in
//! text and closes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::server::metrics::server_metrics;
use crate::server::server_cnxn::ServerCnxn;
use crate::server::zookeeper_server::{ServerKind, ZooKeeperServer};
use crate::system_properties;

pub const ZK_NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

const WORDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat", "wchc", "wchp",
    "wchs", "mntr", "isro", "hash",
];

/// The word a length prefix spells, if it is a known command.
pub fn four_letter_word(len: i32) -> Option<&'static str> {
    let b = len.to_be_bytes();
    WORDS.iter().copied().find(|w| w.as_bytes() == b)
}

/// `FourLetterCommands.isEnabled`: the whitelist property, `*` for all; `srvr` is always
/// on, `isro` too in read-only mode.
pub fn is_enabled(cmd: &str) -> bool {
    static LIST: OnceLock<HashSet<String>> = OnceLock::new();
    let list = LIST.get_or_init(|| {
        let mut set = HashSet::new();
        if let Some(v) = system_properties::get("zookeeper.4lw.commands.whitelist") {
            for c in v.split(',') {
                let c = c.trim();
                if c == "*" {
                    set.extend(WORDS.iter().map(|w| w.to_string()));
                    break;
                }
                if !c.is_empty() {
                    set.insert(c.to_owned());
                }
            }
        }
        if system_properties::get_or("readonlymode.enabled", "false") == "true" {
            set.insert("isro".into());
        }
        set.insert("srvr".into());
        set
    });
    list.contains(cmd)
}

/// `ZooTrace` default mask: client request, server packet, session and watch events
/// traced (306).
static TRACE_MASK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(306);

/// Counts the answer of a 4lw as packets sent, like `SendBufferWriter`: a
/// `BufferedWriter` of 8192 chars hands it over in 8192-char pieces, each flushed
/// as one buffer (`sendBufferSync` → `packetSent`).
fn count_answer(text: &str, cnxn: &ServerCnxn, zks: &ZooKeeperServer) {
    let pieces = text.len().div_ceil(8192) as u64;
    cnxn.stats.packets_sent.fetch_add(pieces, Ordering::Relaxed);
    zks.stats.packets_sent.fetch_add(pieces, Ordering::Relaxed);
}

pub fn run(cmd: &'static str, stream: &mut dyn Read, cnxn: &Arc<ServerCnxn>, zks: &Arc<ZooKeeperServer>) -> String {
    let out = answer(cmd, stream, cnxn, zks);
    count_answer(&out, cnxn, zks);
    out
}

/// A four-letter word on a client port with no running server behind it (a quorum peer
/// that is electing or syncing): upstream's commands see a null ZooKeeperServer.
pub fn answer_not_serving(cmd: &'static str, stream: &mut dyn Read, remote: &std::net::SocketAddr) -> String {
    if !is_enabled(cmd) {
        log::debug!("Command {cmd} is not executed because it is not in the whitelist.");
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    log::info!("Processing {cmd} command from {}", crate::server::server_cnxn::fmt_addr(remote));
    let mut out = String::new();
    match cmd {
        "ruok" => out.push_str("imok"),
        "isro" => out.push_str("null"),
        "envi" => envi(&mut out),
        "gtmk" => out.push_str(&TRACE_MASK.load(Ordering::Relaxed).to_string()),
        "stmk" => {
            let mut b = [0u8; 8];
            if stream.read_exact(&mut b).is_ok() {
                let m = i64::from_be_bytes(b);
                TRACE_MASK.store(m, Ordering::Relaxed);
                out.push_str(&m.to_string());
            }
        }
        // DigestCommand prints the message without a line end.
        "hash" => out.push_str(ZK_NOT_SERVING),
        _ => {
            out.push_str(ZK_NOT_SERVING);
            out.push('\n');
        }
    }
    out
}

fn answer(cmd: &'static str, stream: &mut dyn Read, cnxn: &Arc<ServerCnxn>, zks: &Arc<ZooKeeperServer>) -> String {
    if !is_enabled(cmd) {
        log::debug!("Command {cmd} is not executed because it is not in the whitelist.");
        return format!("{cmd} is not executed because it is not in the whitelist.\n");
    }
    log::info!("Processing {cmd} command from {}", crate::server::server_cnxn::fmt_addr(&cnxn.remote));
    let mut out = String::new();
    match cmd {
        "ruok" => out.push_str("imok"),
        "srvr" | "stat" => stat(&mut out, zks, cmd == "stat"),
        "cons" => {
            for c in connections(zks) {
                out.push_str(&c.connection_info(false));
                out.push('\n');
            }
            out.push('\n');
        }
        "crst" => {
            for c in connections(zks) {
                c.stats.reset();
            }
            out.push_str("Connection stats reset.\n");
        }
        "srst" => {
            zks.stats.reset();
            reset_metrics();
            out.push_str("Server stats reset.\n");
        }
        "conf" => conf(&mut out, zks),
        "envi" => envi(&mut out),
        "dump" => {
            out.push_str("SessionTracker dump:\n");
            out.push_str(&zks.session_tracker().dump());
            out.push_str("ephemeral nodes dump:\n");
            let tree = zks.tree.read();
            let map = tree.ephemerals_map();
            let _ = writeln!(out, "Sessions with Ephemerals ({}):", map.len());
            for (sid, paths) in map {
                let _ = writeln!(out, "0x{sid:x}:");
                for p in paths.java_order() {
                    let _ = writeln!(out, "\t{p}");
                }
            }
            drop(tree);
            out.push_str("Connections dump:\n");
            dump_connections(&mut out, &connections(zks));
        }
        "wchs" => {
            let _ = writeln!(out, "{}", zks.tree.read().data_watches().summary());
        }
        "wchc" => {
            zks.tree.read().data_watches().dump_by_session(&mut out);
            out.push('\n');
        }
        "wchp" => {
            zks.tree.read().data_watches().dump_by_path(&mut out);
            out.push('\n');
        }
        "dirs" => {
            let _ = writeln!(out, "datadir_size: {}", dir_size(&zks.config.data_dir.join("version-2")));
            let _ = writeln!(out, "logdir_size: {}", dir_size(&zks.config.data_log_dir.join("version-2")));
        }
        "isro" => out.push_str(if zks.kind == ServerKind::ReadOnly { "ro" } else { "rw" }),
        "gtmk" => out.push_str(&TRACE_MASK.load(Ordering::Relaxed).to_string()),
        "stmk" => {
            let mut b = [0u8; 8];
            if stream.read_exact(&mut b).is_ok() {
                let m = i64::from_be_bytes(b);
                TRACE_MASK.store(m, Ordering::Relaxed);
                out.push_str(&m.to_string());
            }
        }
        "mntr" => mntr(&mut out, zks),
        // DigestCommand: the digest log, one `<zxid hex>: <digest>` line each.
        "hash" => {
            for (zxid, digest) in zks.tree.read().digest_log() {
                let _ = writeln!(out, "{zxid:x}: {digest}");
            }
        }
        _ => {}
    }
    out
}

fn connections(zks: &ZooKeeperServer) -> Vec<Arc<ServerCnxn>> {
    let mut v: Vec<_> = zks.cnxns.lock().values().cloned().collect();
    v.sort_by_key(|c| c.id);
    v
}

/// `NIOServerCnxnFactory.dumpConnections`: the connection expiry queue, buckets in
/// time order, each connection as `ip: <addr> sessionId: 0x<id>`.
fn dump_connections(out: &mut String, cs: &[Arc<ServerCnxn>]) {
    let mut buckets: std::collections::BTreeMap<i64, Vec<&Arc<ServerCnxn>>> = Default::default();
    for c in cs {
        buckets.entry(c.expires_at.load(Ordering::Relaxed)).or_default().push(c);
    }
    let _ = writeln!(out, "Connections Sets ({})/({}):", buckets.len(), cs.len());
    for (t, v) in buckets {
        let _ = writeln!(out, "{} expire at {}:", v.len(), crate::common::time::java_date(t));
        for c in v {
            let _ = writeln!(out, "\tip: {} sessionId: 0x{:x}", crate::server::server_cnxn::fmt_addr(&c.remote), c.session_id());
        }
    }
}

/// Java's `Double.toString`: `0.0`, `1.5`, `1.0E-4`, `1.2345E7`.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = v.abs();
    if v == 0.0 || (1e-3..1e7).contains(&a) {
        return format!("{v:?}");
    }
    let e = format!("{v:e}");
    let (m, x) = e.split_once('e').unwrap_or((&e, "0"));
    if m.contains('.') {
        format!("{m}E{x}")
    } else {
        format!("{m}.0E{x}")
    }
}

fn stat(out: &mut String, zks: &ZooKeeperServer, full: bool) {
    let _ = writeln!(out, "Zookeeper version: {}", crate::version::full_version());
    if zks.kind == ServerKind::ReadOnly {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if full {
        out.push_str("Clients:\n");
        for c in connections(zks) {
            out.push_str(&c.connection_info(true));
            out.push('\n');
        }
        out.push('\n');
    }
    let s = &zks.stats;
    let _ = writeln!(out, "Latency min/avg/max: {}/{}/{}", s.min_latency(), java_double(s.avg_latency()), s.max_latency());
    let _ = writeln!(out, "Received: {}", s.packets_received.load(Ordering::Relaxed));
    let _ = writeln!(out, "Sent: {}", sent_packets(zks));
    let _ = writeln!(out, "Connections: {}", zks.cnxns.lock().len());
    let _ = writeln!(out, "Outstanding: {}", zks.outstanding_requests());
    let _ = writeln!(out, "Zxid: 0x{:x}", zks.last_processed_zxid());
    let _ = writeln!(out, "Mode: {}", server_state(zks));
    let _ = writeln!(out, "Node count: {}", zks.tree.read().node_count());
    // LeaderZooKeeperServer adds the proposal sizes.
    if let Some(l) = zks.quorum_peer.as_ref().and_then(|p| p.leader()).filter(|_| zks.kind == ServerKind::Leader) {
        let (last, min, max) = l.proposal_sizes();
        let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
}

/// `ServerStats.getServerState`: `standalone`, `leader`, `follower`, `observer`,
/// `read-only`.
pub fn server_state(zks: &ZooKeeperServer) -> &'static str {
    match zks.kind {
        ServerKind::Standalone => "standalone",
        ServerKind::Leader => "leader",
        ServerKind::Follower => "follower",
        ServerKind::Observer => "observer",
        ServerKind::ReadOnly => "read-only",
    }
}

fn sent_packets(zks: &ZooKeeperServer) -> u64 {
    zks.stats.packets_sent.load(Ordering::Relaxed)
}

fn conf(out: &mut String, zks: &ZooKeeperServer) {
    let c = &zks.config;
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let _ = writeln!(out, "clientPort={}", c.client_port);
    let _ = writeln!(out, "secureClientPort={}", if c.secure_client_port > 0 { c.secure_client_port } else { -1 });
    let _ = writeln!(out, "dataDir={}", abs(&c.data_dir.join("version-2")).display());
    let _ = writeln!(out, "dataDirSize={}", dir_size(&c.data_dir.join("version-2")));
    let _ = writeln!(out, "dataLogDir={}", abs(&c.data_log_dir.join("version-2")).display());
    let _ = writeln!(out, "dataLogSize={}", dir_size(&c.data_log_dir.join("version-2")));
    let _ = writeln!(out, "tickTime={}", c.tick_time);
    let _ = writeln!(out, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(out, "minSessionTimeout={}", c.min_session_timeout);
    let _ = writeln!(out, "maxSessionTimeout={}", c.max_session_timeout);
    let _ = writeln!(out, "clientPortListenBacklog={}", c.client_port_listen_backlog);
    let _ = writeln!(out, "serverId={}", zks.server_id);
    // QuorumZooKeeperServer.dumpConf
    if let Some(p) = zks.quorum_peer.as_ref() {
        let ports = |a: crate::server::quorum::quorum_server::MultipleAddresses| {
            a.all().iter().map(|x| x.port.to_string()).collect::<Vec<_>>().join("|")
        };
        let _ = writeln!(out, "initLimit={}", p.init_limit);
        let _ = writeln!(out, "syncLimit={}", p.sync_limit);
        let _ = writeln!(out, "electionAlg={}", p.config.election_alg);
        let _ = writeln!(out, "electionPort={}", ports(p.election_address()));
        let _ = writeln!(out, "quorumPort={}", ports(p.quorum_address()));
        let peer_type = match p.learner_type() {
            crate::server::quorum::quorum_server::LearnerType::Participant => 0,
            crate::server::quorum::quorum_server::LearnerType::Observer => 1,
        };
        let _ = writeln!(out, "peerType={peer_type}");
        // ReadOnlyZooKeeperServer.dumpConf stops before the membership.
        if zks.kind != ServerKind::ReadOnly {
            out.push_str("membership: \n");
            out.push_str(&p.quorum_verifier().to_string());
        }
    }
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    for (k, v) in environment() {
        let _ = writeln!(out, "{k}={v}");
    }
}

/// `Environment.list`: what `envi` prints and the AdminServer's `environment` returns.
pub fn environment() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "<NA>".into());
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "<NA>".into());
    let user = user_name().unwrap_or_else(|| "<NA>".into());
    let home = std::env::var("HOME").unwrap_or_else(|_| "<NA>".into());
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "<NA>".into());
    let items: [(&'static str, String); 18] = [
        ("zookeeper.version", crate::version::full_version()),
        ("host.name", host),
        ("java.version", "<NA>".into()),
        ("java.vendor", "<NA>".into()),
        ("java.home", "<NA>".into()),
        ("java.class.path", exe),
        ("java.library.path", "<NA>".into()),
        // Java's default, whatever TMPDIR says
        ("java.io.tmpdir", "/tmp".into()),
        ("java.compiler", "<NA>".into()),
        ("os.name", "Linux".into()),
        ("os.arch", java_arch().into()),
        ("os.version", std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", format!("{}MB", 0)),
        ("os.memory.max", format!("{}MB", 0)),
        ("os.memory.total", format!("{}MB", rss_bytes() / (1024 * 1024))),
    ];
    items.into()
}

/// `ZooTrace.getTextTraceLevel`.
pub fn trace_mask() -> i64 {
    TRACE_MASK.load(Ordering::Relaxed)
}

/// `ZooTrace.setTextTraceLevel`.
pub fn set_trace_mask(m: i64) {
    TRACE_MASK.store(m, Ordering::Relaxed);
}

/// A `mntr` value as the AdminServer's JSON carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Float(f64),
    Str(String),
}

/// `dumpMonitorValues` and the metrics provider's dump, in `mntr`'s order. The values
/// are the ones the four-letter word prints; a long prints as digits and a double
/// always with a point or an exponent (`Double.toString`), so each reads back as the
/// type the metric has upstream.
pub fn monitor_values(zks: &ZooKeeperServer) -> Vec<(String, MetricValue)> {
    typed_values(zks, crate::server::metrics::prometheus_active())
}

fn typed_values(zks: &ZooKeeperServer, prometheus: bool) -> Vec<(String, MetricValue)> {
    let mut text = String::new();
    mntr_with(&mut text, zks, prometheus);
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            let k = k.strip_prefix("zk_").unwrap_or(k).to_owned();
            let typed = if matches!(k.as_str(), "version" | "server_state" | "peer_state") {
                MetricValue::Str(v.to_owned())
            } else if let Ok(i) = v.parse::<i64>() {
                MetricValue::Int(i)
            } else if let Ok(f) = v.parse::<f64>() {
                MetricValue::Float(f)
            } else {
                MetricValue::Str(v.to_owned())
            };
            Some((k, typed))
        })
        .collect()
}

/// Java's `os.arch` names for the machine.
fn java_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

/// `user.name` as the JVM finds it: the passwd entry of the real uid.
fn user_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid).then(|| f[0].to_owned())
    })
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn max_fd_count() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

// The metrics of Apache's `ServerMetrics` in the order `mntr` prints them
// (DefaultMetricsProvider's hash maps: gauges, counters, basic summaries,
// percentile summaries). Values we do not measure are printed as zero.
const GAUGES: [&str; 24] = [
    "ephemerals_count", "num_alive_connections", "avg_latency", "outstanding_requests", "znode_count",
    "global_sessions", "non_mtls_remote_conn_count", "last_client_response_size", "packets_sent",
    "packets_received", "max_client_response_size", "connection_drop_probability", "watch_count",
    "auth_failed_count", "min_latency", "max_file_descriptor_count", "approximate_data_size",
    "open_file_descriptor_count", "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake",
    "min_client_response_size", "non_mtls_local_conn_count",
];
const COUNTERS: [&str; 47] = [
    "proposal_count", "watch_bytes", "outstanding_changes_removed", "throttled_ops", "stale_requests_dropped",
    "large_requests_rejected", "insecure_admin_count", "connection_rejected",
    "cnxn_closed_without_zk_server_running", "sessionless_connections_expired", "looking_count",
    "dead_watchers_queued", "stale_requests", "connection_drop_count", "learner_proposal_received_count",
    "digest_mismatches_count", "dead_watchers_cleared", "response_packet_cache_hits", "bytes_received_count",
    "add_dead_watcher_stall_time", "request_throttle_wait_count",
    "requests_not_forwarded_to_commit_processor", "response_packet_cache_misses", "ensemble_auth_success",
    "prep_processor_request_queued", "learner_commit_received_count", "stale_replies",
    "connection_request_count", "response_bytes", "ensemble_auth_fail", "diff_count",
    "response_packet_get_children_cache_misses", "connection_revalidate_count",
    "quit_leading_due_to_disloyal_voter", "snap_count", "unrecoverable_error_count", "unsuccessful_handshake",
    "commit_count", "stale_sessions_expired", "response_packet_get_children_cache_hits",
    "sync_processor_request_queued", "outstanding_changes_queued", "request_commit_queued",
    "ensemble_auth_skip", "skip_learner_request_to_next_processor_count", "tls_handshake_exceeded",
    "revalidate_count",
];
const SUMMARIES: [&str; 41] = [
    "socket_closing_time", "proposal_process_time", "leader_unavailable_time", "node_created_watch_count",
    "session_queues_drained", "write_commit_proc_req_queued", "connection_token_deficit",
    "read_commit_proc_req_queued", "node_deleted_watch_count", "startup_txns_load_time",
    "sync_processor_queue_size", "follower_sync_time", "prep_processor_queue_size", "fsynctime",
    "inflight_snap_count", "reads_issued_from_session_queue", "learner_request_processor_queue_size",
    "snapshottime", "unavailable_time", "startup_txns_loaded", "reads_after_write_in_session_queue",
    "requests_in_session_queue", "write_commit_proc_issued", "prep_process_time",
    "pending_session_queue_size", "time_waiting_empty_pool_in_commit_processor_read_ms",
    "commit_process_time", "dbinittime", "inflight_diff_count", "netty_queued_buffer_capacity",
    "election_time", "commit_commit_proc_req_queued", "sync_processor_batch_size",
    "node_children_watch_count", "write_batch_time_in_commit_processor", "read_commit_proc_issued",
    "concurrent_request_processing_in_commit_processor", "observer_sync_time", "node_changed_watch_count",
    "sync_process_time", "startup_snap_load_time",
];
const PERCENTILE_SUMMARIES: [&str; 23] = [
    "prep_processor_queue_time_ms", "jvm_pause_time_ms", "close_session_prep_time", "read_commitproc_time_ms",
    "updatelatency", "local_write_committed_time_ms", "request_throttle_queue_time_ms", "readlatency",
    "quorum_ack_latency", "om_commit_process_time_ms", "read_final_proc_time_ms",
    "commit_propagation_latency", "dead_watchers_cleaner_latency", "write_final_proc_time_ms",
    "proposal_ack_creation_latency", "proposal_latency", "om_proposal_process_time_ms",
    "sync_processor_queue_and_flush_time_ms", "propagation_latency", "server_write_committed_time_ms",
    "sync_processor_queue_time_ms", "sync_processor_queue_flush_time_ms", "write_commitproc_time_ms",
];

/// The leader's gauges in the order Apache's `mntr` prints them (its registry's hash
/// order once the leader's own gauges are registered).
const LEADER_GAUGES: [&str; 33] = [
    "ephemerals_count", "num_alive_connections", "avg_latency", "min_proposal_size", "outstanding_requests",
    "znode_count", "global_sessions", "non_mtls_remote_conn_count", "last_client_response_size", "packets_sent",
    "packets_received", "max_proposal_size", "max_client_response_size", "synced_followers",
    "connection_drop_probability", "watch_count", "synced_non_voting_followers", "synced_observers",
    "auth_failed_count", "min_latency", "max_file_descriptor_count", "approximate_data_size",
    "open_file_descriptor_count", "last_proposal_size", "pending_syncs", "leader_uptime", "local_sessions",
    "uptime", "max_latency", "outstanding_tls_handshake", "learners", "min_client_response_size",
    "non_mtls_local_conn_count",
];

/// `srst` (ServerMetrics.resetAll) for the metrics kept here.
fn reset_metrics() {
    server_metrics::reset();
    crate::server::quorum::commit_processor::METRICS.reset();
    crate::server::request_throttler::METRICS.reset();
}

/// Metrics left out on purpose: the JVM pause monitor (there is no JVM).
const OMITTED: [&str; 1] = ["jvm_pause_time_ms"];

fn mntr(out: &mut String, zks: &ZooKeeperServer) {
    mntr_with(out, zks, crate::server::metrics::prometheus_active());
}

/// `mntr` with the default provider's dump, or the Prometheus provider's.
fn mntr_with(out: &mut String, zks: &ZooKeeperServer, prometheus: bool) {
    let s = &zks.stats;
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "zk_{k}\t{v}");
    };
    // ZooKeeperServer.dumpMonitorValues
    kv("version", crate::version::full_version());
    kv("server_state", server_state(zks).into());
    // QuorumZooKeeperServer's values; a ReadOnlyZooKeeperServer is not one.
    let peer = zks.quorum_peer.as_ref().filter(|_| zks.kind != ServerKind::ReadOnly);
    if let Some(p) = peer {
        kv("peer_state", p.detailed_peer_state());
        if zks.kind == ServerKind::Observer {
            kv("observer_master_id", p.leader_id().to_string());
        }
    }
    if prometheus {
        // PrometheusMetricsProvider.dump: every sample of the registry, labels in braces.
        for (k, v) in prometheus_dump(zks) {
            kv(&k, java_double(v));
        }
        return;
    }
    // The tree's figures, taken at once: a scrape must not hold the tree while it
    // formats, nor queue behind a writer that waits for a snapshot's read lock (a
    // recursive read passes queued writers).
    let (ephemerals, nodes, watches, data_size) = {
        let tree = zks.tree.read_recursive();
        (tree.ephemeral_count(), tree.node_count(), tree.watch_count(), tree.approximate_data_size())
    };
    let leader = peer.and_then(|p| p.leader()).filter(|_| zks.kind == ServerKind::Leader);
    let gauges: &[&str] = if leader.is_some() { &LEADER_GAUGES } else { &GAUGES };
    for g in gauges.iter().copied() {
        if let Some(l) = &leader {
            let (last, min, max) = l.proposal_sizes();
            let learners = l.learners();
            let v = match g {
                "min_proposal_size" => Some(min.to_string()),
                "max_proposal_size" => Some(max.to_string()),
                "last_proposal_size" => Some(last.to_string()),
                "synced_followers" => Some(l.forwarding_followers().len().to_string()),
                "synced_non_voting_followers" => Some(
                    l.forwarding_followers().iter().filter(|h| !l.is_participant(h.sid())).count().to_string(),
                ),
                "synced_observers" => Some(l.observing_learners().len().to_string()),
                "pending_syncs" => Some(l.pending_sync_count().to_string()),
                "leader_uptime" => Some(
                    (crate::common::time::current_elapsed_time() - l.leader_start_time.load(Ordering::Relaxed)).to_string(),
                ),
                "learners" => Some(learners.len().to_string()),
                _ => None,
            };
            if let Some(v) = v {
                kv(g, v);
                continue;
            }
        }
        let v = match g {
            "ephemerals_count" => ephemerals.to_string(),
            "num_alive_connections" => zks.cnxns.lock().len().to_string(),
            "avg_latency" => java_double(s.avg_latency()),
            "outstanding_requests" => zks.outstanding_requests().to_string(),
            "znode_count" => nodes.to_string(),
            "global_sessions" => zks.db.sessions.lock().len().to_string(),
            "local_sessions" => zks.session_tracker().local_session_count().to_string(),
            "last_client_response_size" => s.packets_sent.last_size.load(Ordering::Relaxed).to_string(),
            "packets_sent" => sent_packets(zks).to_string(),
            "packets_received" => s.packets_received.load(Ordering::Relaxed).to_string(),
            "max_client_response_size" => s.packets_sent.max_size.load(Ordering::Relaxed).to_string(),
            "connection_drop_probability" => java_double(zks.conn_throttle.drop_chance()),
            "watch_count" => watches.to_string(),
            "auth_failed_count" => s.auth_failed_count.load(Ordering::Relaxed).to_string(),
            "min_latency" => s.min_latency().to_string(),
            "max_file_descriptor_count" => max_fd_count().to_string(),
            "approximate_data_size" => data_size.to_string(),
            "open_file_descriptor_count" => open_fd_count().to_string(),
            "uptime" => (crate::common::time::current_wall_time() - zks.start_time).to_string(),
            "max_latency" => s.max_latency().to_string(),
            "min_client_response_size" => s.packets_sent.min_size.load(Ordering::Relaxed).to_string(),
            // outstanding_tls_handshake, non_mtls_*: Netty's handshake counters, not kept
            _ => "0".into(),
        };
        kv(g, v);
    }
    if let Some(p) = peer {
        // QuorumZooKeeperServer's gauge: the number of voters.
        kv("quorum_size", p.quorum_verifier().voting_count().to_string());
    }
    for c in COUNTERS {
        kv(c, counter_value(c).to_string());
    }
    let zero = crate::server::server_stats::Summary::default();
    let summary = |name: &str| match name {
        "readlatency" => &s.read_latency,
        "updatelatency" => &s.update_latency,
        n => crate::server::quorum::commit_processor::METRICS
            .summary(n)
            .or_else(|| crate::server::request_throttler::METRICS.summary(n))
            .unwrap_or(&zero),
    };
    for name in SUMMARIES {
        let m = summary(name);
        kv(&format!("avg_{name}"), java_double(m.avg()));
        kv(&format!("min_{name}"), m.min().to_string());
        kv(&format!("max_{name}"), m.max().to_string());
        kv(&format!("cnt_{name}"), m.count().to_string());
        kv(&format!("sum_{name}"), m.total().to_string());
    }
    for name in PERCENTILE_SUMMARIES {
        if OMITTED.contains(&name) {
            continue;
        }
        let m = summary(name);
        kv(&format!("avg_{name}"), java_double(m.avg()));
        kv(&format!("min_{name}"), m.min().to_string());
        kv(&format!("max_{name}"), m.max().to_string());
        kv(&format!("cnt_{name}"), m.count().to_string());
        kv(&format!("sum_{name}"), m.total().to_string());
        for (p, v) in m.percentiles() {
            kv(&format!("{p}_{name}"), v.to_string());
        }
    }
    // Summary sets, in the registry's hash order of their names.
    for (set, suffix) in [
        (&server_metrics::LEARNER_HANDLER_QP_SIZE, "learner_handler_qp_size"),
        (&server_metrics::READ_PER_NAMESPACE, "read_per_namespace"),
        (&server_metrics::WRITE_PER_NAMESPACE, "write_per_namespace"),
    ] {
        for (ns, m) in set.ordered() {
            let name = format!("{ns}_{suffix}");
            kv(&format!("avg_{name}"), java_double(m.avg()));
            kv(&format!("min_{name}"), m.min().to_string());
            kv(&format!("max_{name}"), m.max().to_string());
            kv(&format!("cnt_{name}"), m.count().to_string());
            kv(&format!("sum_{name}"), m.total().to_string());
        }
    }
    for (ns, m) in server_metrics::LEARNER_HANDLER_QP_TIME.ordered() {
        let name = format!("{ns}_learner_handler_qp_time_ms");
        kv(&format!("avg_{name}"), java_double(m.avg()));
        kv(&format!("min_{name}"), m.min().to_string());
        kv(&format!("max_{name}"), m.max().to_string());
        kv(&format!("cnt_{name}"), m.count().to_string());
        kv(&format!("sum_{name}"), m.total().to_string());
        for (p, v) in m.percentiles() {
            kv(&format!("{p}_{name}"), v.to_string());
        }
    }
}

/// A counter of `ServerMetrics` (0 for those not kept).
fn counter_value(name: &str) -> i64 {
    match name {
        "digest_mismatches_count" => crate::server::data_tree::DIGEST_MISMATCHES.load(Ordering::Relaxed),
        "sessionless_connections_expired" => {
            crate::server::metrics::server_metrics::SESSIONLESS_CONNECTIONS_EXPIRED.load(Ordering::Relaxed)
        }
        c => crate::server::quorum::commit_processor::METRICS
            .counter(c)
            .or_else(|| crate::server::request_throttler::METRICS.counter(c))
            .unwrap_or(0),
    }
}

/// `PrometheusMetricsProvider.dump`: (sample key, value) of every sample.
pub fn prometheus_dump(zks: &ZooKeeperServer) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for f in metric_families(Some(zks)) {
        for s in &f.series {
            let key = s.key.as_ref().map(|k| format!("key=\"{k}\"")).unwrap_or_default();
            let with = |extra: &str| {
                let labels: Vec<&str> = [key.as_str(), extra].into_iter().filter(|l| !l.is_empty()).collect();
                if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) }
            };
            match f.kind {
                MetricKind::Summary { advanced } => {
                    let qs: &[f64] = if advanced { &[0.5, 0.9, 0.99] } else { &[0.5] };
                    for q in qs {
                        let v = if s.sample.is_empty() {
                            f64::NAN
                        } else {
                            crate::server::server_stats::snapshot_quantile(&s.sample, *q)
                        };
                        out.push((format!("{}{}", f.name, with(&format!("quantile=\"{}\"", java_double(*q)))), v));
                    }
                    out.push((format!("{}_count{}", f.name, with("")), s.count as f64));
                    out.push((format!("{}_sum{}", f.name, with("")), s.sum as f64));
                }
                _ => out.push((format!("{}{}", f.name, with("")), s.value)),
            }
        }
    }
    out
}

/// A metric family of the registry, as a metrics provider exports it.
pub struct MetricFamily {
    pub name: String,
    pub kind: MetricKind,
    /// One series per label set (`key` of a set; none for a plain metric).
    pub series: Vec<MetricSeries>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
    /// `DetailLevel.ADVANCED` summaries carry more quantiles.
    Summary { advanced: bool },
}

pub struct MetricSeries {
    pub key: Option<String>,
    pub value: f64,
    /// Summaries: the sampled points (sorted), count and sum.
    pub sample: Vec<i64>,
    pub count: i64,
    pub sum: i64,
}

impl MetricSeries {
    fn value(value: f64) -> MetricSeries {
        MetricSeries { key: None, value, sample: Vec::new(), count: 0, sum: 0 }
    }

    fn summary(key: Option<String>, m: &crate::server::server_stats::Summary) -> MetricSeries {
        MetricSeries { key, value: 0.0, sample: m.sorted_sample(), count: m.count(), sum: m.total() }
    }
}

/// The registry behind `mntr`, family by family: the serving server's gauges (none
/// while a quorum peer serves no one: upstream registers them with the server), then
/// the process-wide counters and summaries and the summary sets.
pub fn metric_families(zks: Option<&ZooKeeperServer>) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    if let Some(z) = zks {
        let values = typed_values(z, false);
        let is_leader = zks.is_some_and(|z| z.kind == ServerKind::Leader);
        let gauges: &[&str] = if is_leader { &LEADER_GAUGES } else { &GAUGES };
        let mut names: Vec<&str> = gauges.to_vec();
        names.push("quorum_size");
        for g in names {
            let v = values.iter().find(|(k, _)| k == g).and_then(|(_, v)| match v {
                MetricValue::Int(i) => Some(*i as f64),
                MetricValue::Float(f) => Some(*f),
                MetricValue::Str(_) => None,
            });
            if let Some(v) = v {
                out.push(MetricFamily { name: g.into(), kind: MetricKind::Gauge, series: vec![MetricSeries::value(v)] });
            }
        }
    }
    for c in COUNTERS {
        out.push(MetricFamily {
            name: c.into(),
            kind: MetricKind::Counter,
            series: vec![MetricSeries::value(counter_value(c) as f64)],
        });
    }
    let zero = crate::server::server_stats::Summary::default();
    let summary = |name: &str| -> &crate::server::server_stats::Summary {
        match (name, zks) {
            ("readlatency", Some(z)) => &z.stats.read_latency,
            ("updatelatency", Some(z)) => &z.stats.update_latency,
            (n, _) => crate::server::quorum::commit_processor::METRICS
                .summary(n)
                .or_else(|| crate::server::request_throttler::METRICS.summary(n))
                .unwrap_or(&zero),
        }
    };
    for (list, advanced) in [(&SUMMARIES[..], false), (&PERCENTILE_SUMMARIES[..], true)] {
        for name in list.iter().copied().filter(|n| !OMITTED.contains(n)) {
            out.push(MetricFamily {
                name: name.into(),
                kind: MetricKind::Summary { advanced },
                series: vec![MetricSeries::summary(None, summary(name))],
            });
        }
    }
    for (set, name, advanced) in [
        (&server_metrics::WRITE_PER_NAMESPACE, "write_per_namespace", false),
        (&server_metrics::READ_PER_NAMESPACE, "read_per_namespace", false),
        (&server_metrics::LEARNER_HANDLER_QP_SIZE, "learner_handler_qp_size", false),
        (&server_metrics::LEARNER_HANDLER_QP_TIME, "learner_handler_qp_time_ms", true),
    ] {
        let series: Vec<MetricSeries> = set.ordered().iter().map(|(k, m)| MetricSeries::summary(Some(k.clone()), m)).collect();
        out.push(MetricFamily { name: name.into(), kind: MetricKind::Summary { advanced }, series });
    }
    // Sets upstream registers that hold no series here: per-follower ack latency and
    // quota violations are not kept yet.
    out.push(MetricFamily { name: "ack_latency".into(), kind: MetricKind::Summary { advanced: true }, series: vec![] });
    out.push(MetricFamily { name: "quota_exceeded_error_per_namespace".into(), kind: MetricKind::Counter, series: vec![] });
    out
}

pub fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn words() {
        assert_eq!(super::four_letter_word(i32::from_be_bytes(*b"ruok")), Some("ruok"));
        assert_eq!(super::four_letter_word(100), None);
    }
}
