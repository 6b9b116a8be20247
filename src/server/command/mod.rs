//! Four-letter words (`server/command/*Command.java`, `FourLetterCommands`): a client
//! sends four ASCII letters as the first bytes of a connection, the server answers in
//! text and closes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use crate::server::server_cnxn::ServerCnxn;
use crate::server::zookeeper_server::ZooKeeperServer;
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

static TRACE_MASK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0b1100_1010_0010);

pub fn run(cmd: &'static str, stream: &mut TcpStream, cnxn: &Arc<ServerCnxn>, zks: &Arc<ZooKeeperServer>) -> String {
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
            let cs = connections(zks);
            let _ = writeln!(out, "Connections Sets (0)/({}):", cs.len());
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
        "isro" => out.push_str("rw"),
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
        "hash" => {}
        _ => {}
    }
    out
}

fn connections(zks: &ZooKeeperServer) -> Vec<Arc<ServerCnxn>> {
    let mut v: Vec<_> = zks.cnxns.lock().values().cloned().collect();
    v.sort_by_key(|c| c.id);
    v
}

fn stat(out: &mut String, zks: &ZooKeeperServer, full: bool) {
    let _ = writeln!(out, "Zookeeper version: {}", crate::version::full_version());
    if full {
        out.push_str("Clients:\n");
        for c in connections(zks) {
            out.push_str(&c.connection_info(true));
            out.push('\n');
        }
        out.push('\n');
    }
    let s = &zks.stats;
    let _ = writeln!(out, "Latency min/avg/max: {}/{:?}/{}", s.min_latency(), s.avg_latency(), s.max_latency());
    let _ = writeln!(out, "Received: {}", s.packets_received.load(Ordering::Relaxed));
    let _ = writeln!(out, "Sent: {}", sent_packets(zks));
    let _ = writeln!(out, "Connections: {}", zks.cnxns.lock().len());
    let _ = writeln!(out, "Outstanding: {}", zks.outstanding_requests());
    let _ = writeln!(out, "Zxid: 0x{:x}", zks.last_processed_zxid());
    out.push_str("Mode: standalone\n");
    let _ = writeln!(out, "Node count: {}", zks.tree.read().node_count());
}

fn sent_packets(zks: &ZooKeeperServer) -> u64 {
    zks.stats.packets_sent.load(Ordering::Relaxed)
}

fn conf(out: &mut String, zks: &ZooKeeperServer) {
    let c = &zks.config;
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let _ = writeln!(out, "clientPort={}", c.client_port);
    let _ = writeln!(out, "secureClientPort=-1");
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
}

fn envi(out: &mut String) {
    out.push_str("Environment:\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "<NA>".into());
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_else(|_| "<NA>".into());
    let user = std::env::var("USER").unwrap_or_else(|_| "<NA>".into());
    let home = std::env::var("HOME").unwrap_or_else(|_| "<NA>".into());
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "<NA>".into());
    let items: [(&str, String); 18] = [
        ("zookeeper.version", crate::version::full_version()),
        ("host.name", host),
        ("java.version", "<NA>".into()),
        ("java.vendor", "<NA>".into()),
        ("java.home", "<NA>".into()),
        ("java.class.path", exe),
        ("java.library.path", "<NA>".into()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".into()),
        ("os.name", "Linux".into()),
        ("os.arch", std::env::consts::ARCH.into()),
        ("os.version", std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", format!("{}MB", 0)),
        ("os.memory.max", format!("{}MB", 0)),
        ("os.memory.total", format!("{}MB", rss_bytes() / (1024 * 1024))),
    ];
    for (k, v) in items {
        let _ = writeln!(out, "{k}={v}");
    }
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

fn mntr(out: &mut String, zks: &ZooKeeperServer) {
    let s = &zks.stats;
    let tree = zks.tree.read();
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(out, "zk_{k}\t{v}");
    };
    kv("version", crate::version::full_version());
    kv("server_state", "standalone".into());
    kv("avg_latency", format!("{:?}", s.avg_latency()));
    kv("max_latency", s.max_latency().to_string());
    kv("min_latency", s.min_latency().to_string());
    kv("packets_received", s.packets_received.load(Ordering::Relaxed).to_string());
    kv("packets_sent", sent_packets(zks).to_string());
    kv("num_alive_connections", zks.cnxns.lock().len().to_string());
    kv("outstanding_requests", zks.outstanding_requests().to_string());
    kv("uptime", (crate::common::time::current_wall_time() - zks.start_time).to_string());
    kv("znode_count", tree.node_count().to_string());
    kv("watch_count", tree.watch_count().to_string());
    kv("ephemerals_count", tree.ephemeral_count().to_string());
    kv("approximate_data_size", tree.approximate_data_size().to_string());
    kv("global_sessions", zks.session_tracker().session_count().to_string());
    kv("local_sessions", "0".into());
    kv("open_file_descriptor_count", open_fd_count().to_string());
    kv("max_file_descriptor_count", max_fd_count().to_string());
    kv("connection_drop_probability", "0.0".into());
    kv("last_client_response_size", s.last_client_response_size.load(Ordering::Relaxed).to_string());
    kv("max_client_response_size", s.max_client_response_size.load(Ordering::Relaxed).to_string());
    kv("min_client_response_size", s.min_client_response_size.load(Ordering::Relaxed).to_string());
    kv("outstanding_tls_handshake", "0".into());
    kv("auth_failed_count", s.auth_failed_count.load(Ordering::Relaxed).to_string());
    kv("non_mtls_remote_conn_count", "0".into());
    kv("non_mtls_local_conn_count", "0".into());
    kv("rss_bytes", rss_bytes().to_string());
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// Java's `Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date(ms: i64) -> String {
    let (y, mo, d, h, m, s, _, wd) = crate::common::time::civil_from_millis(ms);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {} {d:02} {h:02}:{m:02}:{s:02} UTC {y}", WD[wd], MO[(mo - 1) as usize])
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(super::java_date(1_700_000_000_000), "Tue Nov 14 22:13:20 UTC 2023");
    }

    #[test]
    fn words() {
        assert_eq!(super::four_letter_word(i32::from_be_bytes(*b"ruok")), Some("ruok"));
        assert_eq!(super::four_letter_word(100), None);
    }
}
