//! `Commands`: what the AdminServer can run, under a primary name and its aliases (the
//! four-letter words among them). Each answers a [`CommandResponse`] with upstream's
//! keys; a command that needs a serving server answers an error while there is none
//! (a peer electing or syncing), as upstream's `runCommand` does.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::json_outputter::{Json, JsonObject};
use crate::common::java_hash;
use crate::server::command as four_letter;
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::quorum::quorum_server::{LearnerType, MultipleAddresses, QuorumAddr};
use crate::server::server_cnxn::ServerCnxn;
use crate::server::zookeeper_server::{ServerKind, ZooKeeperServer};

/// `CommandResponse`: the command's own keys in insertion order, then `command` (the
/// primary name) and `error`; a command that sets `error` itself keeps it where it put
/// it.
#[derive(Debug, Clone)]
pub struct CommandResponse {
    pub command: String,
    pub error: Option<String>,
    pub data: JsonObject,
}

impl CommandResponse {
    fn new(command: &str) -> CommandResponse {
        CommandResponse { command: command.to_owned(), error: None, data: JsonObject::new() }
    }

    fn failed(command: &str, error: &str) -> CommandResponse {
        CommandResponse { command: command.to_owned(), error: Some(error.to_owned()), data: JsonObject::new() }
    }

    pub fn put(&mut self, key: &str, value: impl Into<Json>) {
        self.data.put(key, value);
    }

    /// `toMap`.
    pub fn to_json(&self) -> Json {
        let mut m = self.data.clone();
        if m.get("command").is_none() {
            m.put("command", self.command.as_str());
        }
        if m.get("error").is_none() {
            m.put("error", self.error.clone().map(Json::Str).unwrap_or(Json::Null));
        }
        m.into_json()
    }
}

/// What a command runs against: the server serving clients (none while a peer is
/// electing or syncing) and, on a quorum peer, the peer.
pub struct Context<'a> {
    pub zks: Option<&'a Arc<ZooKeeperServer>>,
    pub peer: Option<&'a Arc<QuorumPeer>>,
    /// Query parameters of the request (first value of each).
    pub kwargs: &'a BTreeMap<String, String>,
}

type Run = fn(&mut CommandResponse, &Context<'_>, Option<&Arc<ZooKeeperServer>>);

struct Command {
    names: &'static [&'static str],
    server_required: bool,
    run: Run,
}

// Upstream's registration list (Commands' static block).
static COMMANDS: [Command; 26] = [
    Command { names: &["connection_stat_reset", "crst"], server_required: true, run: crst },
    Command { names: &["configuration", "conf", "config"], server_required: true, run: conf },
    Command { names: &["connections", "cons"], server_required: true, run: cons },
    Command { names: &["hash"], server_required: true, run: hash },
    Command { names: &["dirs"], server_required: true, run: dirs },
    Command { names: &["dump"], server_required: true, run: dump },
    Command { names: &["environment", "env", "envi"], server_required: false, run: env },
    Command { names: &["get_trace_mask", "gtmk"], server_required: false, run: gtmk },
    Command { names: &["initial_configuration", "icfg"], server_required: true, run: icfg },
    Command { names: &["is_read_only", "isro"], server_required: true, run: isro },
    Command { names: &["last_snapshot", "lsnp"], server_required: true, run: lsnp },
    Command { names: &["leader", "lead"], server_required: true, run: leader },
    Command { names: &["monitor", "mntr"], server_required: false, run: mntr },
    Command { names: &["observer_connection_stat_reset", "orst"], server_required: true, run: orst },
    Command { names: &["ruok"], server_required: true, run: |_, _, _| {} },
    Command { names: &["set_trace_mask", "stmk"], server_required: false, run: stmk },
    Command { names: &["server_stats", "srvr"], server_required: true, run: srvr },
    Command { names: &["stats", "stat"], server_required: true, run: stat },
    Command { names: &["stat_reset", "srst"], server_required: true, run: srst },
    Command { names: &["observers", "obsr"], server_required: true, run: obsr },
    Command { names: &["system_properties", "sysp"], server_required: false, run: sysp },
    Command { names: &["voting_view"], server_required: true, run: voting_view },
    Command { names: &["watches", "wchc"], server_required: true, run: wchc },
    Command { names: &["watches_by_path", "wchp"], server_required: true, run: wchp },
    Command { names: &["watch_summary", "wchs"], server_required: true, run: wchs },
    Command { names: &["zabstate"], server_required: false, run: zabstate },
];

/// The primary names, sorted (the links of the command index page).
pub fn primary_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMANDS.iter().map(|c| c.names[0]).collect();
    v.sort_unstable();
    v
}

/// Whether `run_command` with no server behind it would still dereference one: upstream
/// marks `monitor` serverless but reads the server's values, and the servlet fails.
pub fn fails_without_server(name: &str) -> bool {
    matches!(name, "monitor" | "mntr")
}

/// `Commands.runCommand`.
pub fn run_command(name: &str, ctx: &Context<'_>) -> CommandResponse {
    let Some(cmd) = COMMANDS.iter().find(|c| c.names.contains(&name)) else {
        return CommandResponse::failed(name, &format!("Unknown command: {name}"));
    };
    let serving = ctx.zks.filter(|z| z.is_running());
    if cmd.server_required && serving.is_none() {
        return CommandResponse::failed(name, four_letter::ZK_NOT_SERVING);
    }
    let mut r = CommandResponse::new(cmd.names[0]);
    (cmd.run)(&mut r, ctx, serving);
    r
}

fn server(zks: Option<&Arc<ZooKeeperServer>>) -> &Arc<ZooKeeperServer> {
    // run_command checked it for every server-requiring command
    zks.expect("a server-requiring command runs with a server")
}

/// The quorum peer behind a serving quorum server (`instanceof QuorumZooKeeperServer`;
/// a read-only server is one too).
fn quorum_of<'a>(ctx: &Context<'a>, zks: Option<&Arc<ZooKeeperServer>>) -> Option<&'a Arc<QuorumPeer>> {
    zks.filter(|z| z.kind != ServerKind::Standalone).and(ctx.peer)
}

fn connections(zks: &ZooKeeperServer) -> Vec<Arc<ServerCnxn>> {
    let mut v: Vec<_> = zks.cnxns.lock().values().cloned().collect();
    v.sort_by_key(|c| c.id);
    v
}

/// Jackson's `InetSocketAddress` form: `ip:port`, IPv6 in brackets.
fn socket_address(a: &std::net::SocketAddr) -> String {
    match a {
        std::net::SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        std::net::SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// `ServerCnxn.getConnectionInfo`.
pub fn connection_info(c: &ServerCnxn, brief: bool) -> Json {
    let s = &c.stats;
    let mut m = JsonObject::new();
    m.put("remote_socket_address", socket_address(&c.remote));
    m.put("interest_ops", c.interest_ops() as i64);
    m.put("outstanding_requests", c.outstanding.load(Ordering::Relaxed) as i64);
    m.put("packets_received", s.packets_received.load(Ordering::Relaxed));
    m.put("packets_sent", s.packets_sent.load(Ordering::Relaxed));
    if !brief {
        let count = s.count.load(Ordering::Relaxed);
        m.put("session_id", c.session_id());
        m.put("last_operation", *s.last_op.lock());
        m.put("established", c.established);
        m.put("session_timeout", c.session_timeout() as i64);
        m.put("last_cxid", s.last_cxid.load(Ordering::Relaxed));
        m.put("last_zxid", s.last_zxid.load(Ordering::Relaxed));
        m.put("last_response_time", s.last_response_time.load(Ordering::Relaxed));
        m.put("last_latency", s.last_latency.load(Ordering::Relaxed));
        m.put("min_latency", if count == 0 { 0 } else { s.min_latency.load(Ordering::Relaxed) as i64 });
        m.put("avg_latency", if count == 0 { 0 } else { (s.total_latency.load(Ordering::Relaxed) / count) as i64 });
        m.put("max_latency", s.max_latency.load(Ordering::Relaxed));
    }
    m.into_json()
}

fn crst(_: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    for c in connections(server(zks)) {
        c.stats.reset();
    }
}

/// `ZooKeeperServerConf.toMap`.
fn conf(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let z = server(zks);
    let c = &z.config;
    let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    r.put("client_port", c.client_port as i64);
    r.put("data_dir", abs(&c.data_dir.join("version-2")));
    r.put("data_log_dir", abs(&c.data_log_dir.join("version-2")));
    r.put("tick_time", c.tick_time as i64);
    r.put("max_client_cnxns", c.max_client_cnxns as i64);
    r.put("min_session_timeout", c.min_session_timeout as i64);
    r.put("max_session_timeout", c.max_session_timeout as i64);
    r.put("server_id", z.server_id);
    r.put("client_port_listen_backlog", c.client_port_listen_backlog as i64);
}

/// `getAllConnectionInfo` of the client port's factory and of the secure one.
fn put_connections(r: &mut CommandResponse, zks: &ZooKeeperServer, brief: bool) {
    let all = connections(zks);
    let (secure, plain): (Vec<_>, Vec<_>) = all.iter().partition(|c| c.is_secure());
    r.put("connections", Json::Arr(plain.iter().map(|c| connection_info(c, brief)).collect()));
    r.put("secure_connections", Json::Arr(secure.iter().map(|c| connection_info(c, brief)).collect()));
}

fn cons(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    put_connections(r, server(zks), false);
}

/// `DataTree.getDigestLog` as `ZxidDigest` beans.
fn hash(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let log = server(zks).tree.read().digest_log();
    let list = log
        .into_iter()
        .map(|(zxid, digest)| {
            let mut m = JsonObject::new();
            m.put("zxid", zxid);
            m.put("digest", digest);
            m.put("digest_version", crate::server::digest_calculator::DIGEST_VERSION as i64);
            m.into_json()
        })
        .collect();
    r.put("digests", Json::Arr(list));
}

fn dirs(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let c = &server(zks).config;
    r.put("datadir_size", four_letter::dir_size(&c.data_dir.join("version-2")));
    r.put("logdir_size", four_letter::dir_size(&c.data_log_dir.join("version-2")));
}

/// A `HashSet<Long>` / `HashMap<Long, _>` of `n` entries as Java iterates it.
fn java_long_order<T>(items: Vec<(i64, T)>, cap: usize) -> Vec<(i64, T)> {
    java_hash::iteration_order(items, cap, |(k, _)| java_hash::long_hash(*k))
}

fn dump(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let z = server(zks);
    // getSessionExpiryMap: a TreeMap of expiry time to a HashSet of session ids.
    let mut expiry = Vec::new();
    for (t, ids) in z.session_tracker().expiry_buckets() {
        let n = ids.len();
        let ids = java_long_order(ids.into_iter().map(|i| (i, ())).collect(), java_hash::hashmap_capacity_for_inserts(n));
        expiry.push((t.to_string(), Json::Arr(ids.into_iter().map(|(i, _)| Json::Int(i)).collect())));
    }
    r.put("expiry_time_to_session_ids", Json::Obj(expiry));
    // getEphemerals: a HashMap of session id to a copy of its path set.
    let tree = z.tree.read();
    let map = tree.ephemerals_map();
    let entries: Vec<(i64, Json)> = map
        .iter()
        .map(|(sid, paths)| (*sid, Json::Arr(paths.java_clone_order().into_iter().map(Json::Str).collect())))
        .collect();
    let cap = java_hash::hashmap_capacity_for_inserts(entries.len());
    let entries = java_long_order(entries, cap);
    r.put("session_id_to_ephemeral_paths", Json::Obj(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
}

fn env(r: &mut CommandResponse, _: &Context<'_>, _: Option<&Arc<ZooKeeperServer>>) {
    for (k, v) in four_letter::environment() {
        r.put(k, v);
    }
}

fn gtmk(r: &mut CommandResponse, _: &Context<'_>, _: Option<&Arc<ZooKeeperServer>>) {
    r.put("tracemask", four_letter::trace_mask());
}

fn icfg(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let text = &server(zks).config.initial_config;
    r.put("initial_configuration", if text.is_empty() { Json::Null } else { Json::Str(text.clone()) });
}

fn isro(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    r.put("read_only", server(zks).kind == ServerKind::ReadOnly);
}

/// `FileTxnSnapLog.getLastSnapshotInfo`: the newest snapshot written or loaded.
fn lsnp(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let info = server(zks).db.last_snapshot_info();
    r.put("zxid", format!("{:x}", info.map(|i| i.0).unwrap_or(-1)));
    // SnapshotInfo.timestamp is in seconds.
    r.put("timestamp", info.map(|i| i.1 / 1000).unwrap_or(-1));
}

fn leader(r: &mut CommandResponse, ctx: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    match quorum_of(ctx, zks) {
        Some(p) => {
            r.put("is_leader", server(zks).kind == ServerKind::Leader);
            r.put("leader_id", p.leader_id());
            r.put("leader_ip", p.leader_address().unwrap_or_default());
        }
        None => r.put("error", "server is not initialized"),
    }
}

fn mntr(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let Some(z) = zks else { return };
    for (k, v) in four_letter::monitor_values(z) {
        let v = match v {
            four_letter::MetricValue::Int(i) => Json::Int(i),
            four_letter::MetricValue::Float(f) => Json::Float(f),
            four_letter::MetricValue::Str(s) => Json::Str(s),
        };
        r.put(&k, v);
    }
}

fn orst(_: &mut CommandResponse, ctx: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    if let Some(l) = quorum_of(ctx, zks).and_then(|p| p.leader()).filter(|_| server(zks).kind == ServerKind::Leader) {
        l.reset_observer_connection_stats();
    }
}

fn stmk(r: &mut CommandResponse, ctx: &Context<'_>, _: Option<&Arc<ZooKeeperServer>>) {
    let Some(arg) = ctx.kwargs.get("traceMask") else {
        r.put("error", "setTraceMask requires long traceMask argument");
        return;
    };
    match arg.parse::<i64>().ok() {
        Some(m) => {
            four_letter::set_trace_mask(m);
            r.put("tracemask", m);
        }
        None => r.put("error", format!("setTraceMask requires long traceMask argument, got {arg}")),
    }
}

fn buffer_stats(last: i64, min: i64, max: i64) -> Json {
    let mut m = JsonObject::new();
    m.put("last_buffer_size", last);
    m.put("min_buffer_size", min);
    m.put("max_buffer_size", max);
    m.into_json()
}

fn srvr(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    log::info!("running stat");
    let z = server(zks);
    let s = &z.stats;
    let sent = &s.packets_sent;
    let client_response = buffer_stats(
        sent.last_size.load(Ordering::Relaxed),
        sent.min_size.load(Ordering::Relaxed),
        sent.max_size.load(Ordering::Relaxed),
    );
    r.put("version", crate::version::full_version());
    r.put("read_only", z.kind == ServerKind::ReadOnly);
    // The ServerStats bean, property by property as Jackson finds them.
    let mut b = JsonObject::new();
    b.put("packets_sent", sent.load(Ordering::Relaxed));
    b.put("packets_received", s.packets_received.load(Ordering::Relaxed));
    b.put("fsync_threshold_exceed_count", s.fsync_threshold_exceed_count.load(Ordering::Relaxed));
    b.put("client_response_stats", client_response.clone());
    b.put("data_dir_size", four_letter::dir_size(&z.config.data_dir.join("version-2")));
    b.put("log_dir_size", four_letter::dir_size(&z.config.data_log_dir.join("version-2")));
    b.put("provider_null", false);
    b.put("server_state", four_letter::server_state(z));
    b.put("last_processed_zxid", z.last_processed_zxid());
    b.put("outstanding_requests", z.outstanding_requests());
    b.put("avg_latency", s.avg_latency());
    b.put("max_latency", s.max_latency());
    b.put("min_latency", s.min_latency());
    b.put("num_alive_client_connections", z.cnxns.lock().len());
    b.put("uptime", crate::common::time::current_wall_time() - z.start_time);
    b.put("auth_failed_count", s.auth_failed_count.load(Ordering::Relaxed));
    b.put("non_mtlsremote_conn_count", 0i64);
    b.put("non_mtlslocal_conn_count", 0i64);
    r.put("server_stats", b);
    r.put("client_response", client_response);
    if z.kind == ServerKind::Leader {
        if let Some(l) = z.quorum_peer.as_ref().and_then(|p| p.leader()) {
            let (last, min, max) = l.proposal_sizes();
            r.put("proposal_stats", buffer_stats(last, min, max));
        }
    }
    r.put("node_count", z.tree.read().node_count());
}

fn stat(r: &mut CommandResponse, ctx: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    srvr(r, ctx, zks);
    put_connections(r, server(zks), true);
}

fn srst(_: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    server(zks).stats.reset();
}

fn obsr(r: &mut CommandResponse, ctx: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let leader = quorum_of(ctx, zks).and_then(|p| p.leader()).filter(|_| server(zks).kind == ServerKind::Leader);
    match leader {
        Some(l) => {
            let obs = l.observing_learners();
            r.put("synced_observers", obs.len());
            r.put("observers", Json::Arr(obs.iter().map(|h| h.info()).collect()));
        }
        None => {
            r.put("synced_observers", 0i64);
            r.put("observers", Json::Arr(vec![]));
        }
    }
}

fn sysp(r: &mut CommandResponse, _: &Context<'_>, _: Option<&Arc<ZooKeeperServer>>) {
    for (k, v) in crate::system_properties::all_sorted() {
        r.put(&k, v);
    }
}

/// `QuorumServer.delimitedHostString` and the port.
fn address_string(a: &QuorumAddr) -> String {
    format!("{}:{}", a.delimited_host_string(), a.port)
}

fn address_list(a: &MultipleAddresses) -> Json {
    Json::Arr(a.all().iter().map(|x| Json::Str(address_string(x))).collect())
}

fn voting_view(r: &mut CommandResponse, ctx: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let Some(p) = quorum_of(ctx, zks) else {
        r.put("current_config", Json::Obj(vec![]));
        return;
    };
    let qv = p.quorum_verifier();
    let voters: Vec<(i64, Json)> = qv
        .all_members()
        .iter()
        .filter(|(sid, _)| qv.is_voter(**sid))
        .map(|(sid, s)| {
            let mut m = JsonObject::new();
            m.put("server_addresses", address_list(&s.addr));
            m.put("election_addresses", address_list(&s.election_addr));
            m.put("client_address", s.client_addr.as_ref().map(address_string).unwrap_or_default());
            m.put(
                "learner_type",
                match s.learner_type {
                    LearnerType::Participant => "participant",
                    LearnerType::Observer => "observer",
                },
            );
            (*sid, m.into_json())
        })
        .collect();
    let cap = java_hash::hashmap_capacity_for_inserts(voters.len());
    let voters = java_long_order(voters, cap);
    r.put("current_config", Json::Obj(voters.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
}

fn wchc(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let by_session = server(zks).tree.read().data_watches().paths_by_session();
    let cap = java_hash::hashmap_capacity_for_inserts(by_session.len());
    let entries: Vec<(i64, Json)> = by_session
        .into_iter()
        .map(|(sid, paths)| {
            let cap = java_hash::clone_capacity(paths.len());
            let paths = java_hash::iteration_order(paths, cap, |p| java_hash::string_hash(p));
            (sid, Json::Arr(paths.into_iter().map(Json::Str).collect()))
        })
        .collect();
    let entries = java_long_order(entries, cap);
    r.put("session_id_to_watched_paths", Json::Obj(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
}

fn wchp(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let by_path = server(zks).tree.read().data_watches().sessions_by_path();
    let cap = java_hash::hashmap_capacity_for_inserts(by_path.len());
    let entries: Vec<(String, Json)> = by_path
        .into_iter()
        .map(|(path, sids)| {
            let cap = java_hash::clone_capacity(sids.len());
            let sids = java_long_order(sids.into_iter().map(|s| (s, ())).collect(), cap);
            (path, Json::Arr(sids.into_iter().map(|(s, _)| Json::Int(s)).collect()))
        })
        .collect();
    let entries = java_hash::iteration_order(entries, cap, |(p, _)| java_hash::string_hash(p));
    r.put("path_to_session_ids", Json::Obj(entries));
}

fn wchs(r: &mut CommandResponse, _: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let (connections, paths, total) = server(zks).tree.read().data_watches().summary_counts();
    r.put("num_connections", connections);
    r.put("num_paths", paths);
    r.put("num_total_watches", total);
}

fn zabstate(r: &mut CommandResponse, ctx: &Context<'_>, zks: Option<&Arc<ZooKeeperServer>>) {
    let Some(p) = quorum_of(ctx, zks) else {
        r.put("voting", false);
        r.put("zabstate", "");
        return;
    };
    let z = server(zks);
    let qv = p.quorum_verifier();
    let voting = qv.is_voter(p.myid)
        && qv
            .all_members()
            .get(&p.myid)
            .map(|s| s.addr.same_set(&p.quorum_address()) && s.election_addr.same_set(&p.election_address()))
            .unwrap_or(false);
    let zxid = z.tree.read().last_processed_zxid;
    r.put("myid", z.server_id);
    r.put("is_leader", z.kind == ServerKind::Leader);
    r.put("quorum_address", multiple_addresses_bean(&p.quorum_address()));
    r.put("election_address", multiple_addresses_bean(&p.election_address()));
    // QuorumPeer.getClientAddress: the client address of this server's line, if any.
    let client = qv.all_members().get(&p.myid).and_then(|s| s.client_addr.as_ref()).filter(|_| {
        qv.all_members().get(&p.myid).is_some_and(|s| !s.is_client_addr_from_static)
    });
    r.put("client_address", client.map(|a| Json::Str(socket_display(a))).unwrap_or(Json::Null));
    r.put("voting", voting);
    r.put("last_zxid", format!("0x{zxid:x}"));
    r.put("zab_epoch", zxid >> 32);
    r.put("zab_counter", zxid & 0xffff_ffff);
    r.put("zabstate", p.zab_state().name().to_lowercase());
}

/// Jackson's view of a `MultipleAddresses`: its getters as properties (their order
/// varies between Apache runs; this is one it printed). The reachability getters
/// answer with the configured addresses, which this server can always bind.
fn multiple_addresses_bean(a: &MultipleAddresses) -> Json {
    let addr = |x: &QuorumAddr| Json::Str(socket_display(x));
    let all: Vec<Json> = a.all().iter().map(addr).collect();
    let one = a.one().map(addr).unwrap_or(Json::Null);
    let mut m = JsonObject::new();
    m.put("empty", a.is_empty());
    m.put("all_addresses", Json::Arr(all.clone()));
    m.put("all_reachable_addresses", Json::Arr(all.clone()));
    m.put("one", one.clone());
    m.put("reachable_address", one.clone());
    m.put("wildcard_addresses", Json::Arr(a.all().iter().map(|x| Json::Str(format!("0.0.0.0:{}", x.port))).collect()));
    m.put("all_ports", Json::Arr(a.all().iter().map(|x| Json::Int(x.port as i64)).collect()));
    m.put("all_host_strings", Json::Arr(a.all().iter().map(|x| Json::Str(x.host.clone())).collect()));
    m.put("all_reachable_addresses_or_all", Json::Arr(all));
    m.put("reachable_or_one", one);
    m.into_json()
}

/// Jackson's `InetSocketAddress` string: the host as written (or the IP for a
/// literal), a colon, the port.
fn socket_display(a: &QuorumAddr) -> String {
    format!("{}:{}", a.delimited_host_string(), a.port)
}
