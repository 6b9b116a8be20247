//! Many sessions holding many watches, against Apache ZooKeeper 3.8 and our server side
//! by side: N sessions (2,000 here, `ZKRS_HOSTILE_SESSIONS=10000` for the full
//! figure) each watch 100 znodes; one change then fires one notification to every
//! session; then they all leave. Recorded for both servers: RSS and threads at each
//! stage, the `wchs` totals, how long registration and the fan-out take, and the worst
//! round trip a well-behaved client saw meanwhile.
//!
//! Both multiplex the connections on selector threads (ours: `nio_server_cnxn_factory`),
//! so holding them costs no thread each; the assertions bound what they cost and check
//! that every watch and thread is gone once the sessions are.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::fs;
use std::time::{Duration, Instant};

use common::{ApacheServer, OurServer, TestServer};
use raw_client::RawClient;
use zookeeper::jute::Record;
use zookeeper::proto::consts::ids;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{CreateRequest, ExistsRequest, GetDataRequest, SetDataRequest};

const WATCHED: usize = 100;
const MIB: u64 = 1 << 20;
/// The read timeout a client library would use for a 15 s session (two thirds of it,
/// as upstream's ClientCnxn): thousands of sessions closing at once queue a few
/// seconds of txns ahead of it on a loaded 2-core machine, Apache's and ours alike.
const GOOD_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Sessions registered between two rounds of the well-behaved client.
const CHUNK: usize = 250;
/// The sessions idle while the others register (minutes, for 10,000 of them on a
/// loaded machine); zoo.cfg's maxSessionTimeout allows it.
const SESSION_TIMEOUT_MS: i32 = 600_000;
/// OpCode.closeSession.
const CLOSE_SESSION: i32 = -11;
/// NodeDataChanged.
const DATA_CHANGED: i32 = 3;

fn proc_status(pid: u32, key: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

fn rss(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:") * 1024
}

fn threads(pid: u32) -> u64 {
    proc_status(pid, "Threads:")
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / MIB as f64)
}

fn soft_fd_limit() -> usize {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)?.parse().ok()))
        .unwrap_or(1024)
}

/// How many sessions to open: the requested number, or what the descriptor limit allows
/// (the test process and the server each hold one socket per session; bin/test.sh
/// raises the soft limit to the hard one).
fn session_count() -> usize {
    let wanted = std::env::var("ZKRS_HOSTILE_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000usize);
    let room = soft_fd_limit().saturating_sub(256);
    if wanted > room {
        eprintln!("[hostile] open-files limit {}: {room} sessions instead of {wanted}", soft_fd_limit());
    }
    wanted.min(room)
}

fn path(i: usize) -> String {
    format!("/w/{i:03}")
}

/// `wchs`: "<c> connections watching <p> paths\nTotal watches:<t>".
fn wchs_total(s: &TestServer) -> (u64, u64) {
    let t = s.four_letter("wchs");
    let num = |after: &str, before: &str| -> u64 {
        t.split(after)
            .nth(1)
            .and_then(|v| v.split(before).next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected wchs output: {t:?}"))
    };
    (num("watching", "paths"), num("Total watches:", "\n"))
}

fn last_warnings(s: &TestServer) -> String {
    let log = s.log_contents();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn good_round(c: &mut RawClient, who: &str, phase: &str) -> Duration {
    let start = Instant::now();
    let (h, _) = c
        .call_rec(op_code::EXISTS, &ExistsRequest { path: "/w".into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: well-behaved exists(/w) while {phase}: {e}"));
    assert_eq!(h.err, 0);
    start.elapsed()
}

#[derive(Debug, Default)]
struct Figures {
    rss_base: u64,
    rss_connected: u64,
    rss_watching: u64,
    rss_after: u64,
    threads_base: u64,
    threads_connected: u64,
    threads_after: u64,
    connect: Duration,
    register: Duration,
    fan_out: Duration,
    /// `wchs` after registration and after the change fired: (paths, total watches).
    wchs_watching: (u64, u64),
    wchs_fired: (u64, u64),
    wchs_after: (u64, u64),
    /// Sessions that got exactly one NodeDataChanged for the changed path.
    notified: usize,
    worst_good: Duration,
}

fn many_watchers(s: &TestServer, who: &str, n: usize) -> Figures {
    let pid = s.pid().unwrap_or_else(|| panic!("{who}: no pid"));
    let addr = format!("127.0.0.1:{}", s.port());
    let mut good = RawClient::connect_with(&addr, SESSION_TIMEOUT_MS, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    for p in std::iter::once("/w".to_string()).chain((0..WATCHED).map(path)) {
        let req = CreateRequest { path: p.clone(), data: Some(b"v".to_vec()), acl: ids::open_acl_unsafe(), flags: 0 };
        let (h, _) = good.call_rec(op_code::CREATE, &req).unwrap_or_else(|e| panic!("{who}: create {p}: {e}"));
        assert_eq!(h.err, 0, "{who}: create {p}");
    }
    let mut f = Figures { rss_base: rss(pid), threads_base: threads(pid), ..Figures::default() };

    let start = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        clients.push(
            RawClient::connect_with(&addr, SESSION_TIMEOUT_MS, Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("{who}: session {i}: {e}\nserver log, last warnings:\n{}", last_warnings(s))),
        );
        if i % CHUNK == 0 {
            f.worst_good = f.worst_good.max(good_round(&mut good, who, "connecting"));
        }
    }
    f.connect = start.elapsed();
    f.rss_connected = rss(pid);
    f.threads_connected = threads(pid);

    // Half the paths watched through getData, half through exists: both are data watches.
    let requests: Vec<(i32, Vec<u8>)> = (0..WATCHED)
        .map(|i| {
            if i % 2 == 0 {
                (op_code::GET_DATA, GetDataRequest { path: path(i), watch: true }.to_bytes())
            } else {
                (op_code::EXISTS, ExistsRequest { path: path(i), watch: true }.to_bytes())
            }
        })
        .collect();
    let start = Instant::now();
    for chunk in clients.chunks_mut(CHUNK) {
        for c in chunk.iter_mut() {
            for (xid, (op, body)) in requests.iter().enumerate() {
                c.send_request(xid as i32 + 1, *op, body).unwrap_or_else(|e| panic!("{who}: watch request: {e}"));
            }
        }
        for c in chunk.iter_mut() {
            for xid in 1..=WATCHED as i32 {
                let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("{who}: watch reply: {e}"));
                assert_eq!((h.xid, h.err), (xid, 0), "{who}: watch reply");
            }
        }
        f.worst_good = f.worst_good.max(good_round(&mut good, who, "registering"));
    }
    f.register = start.elapsed();
    f.rss_watching = rss(pid);
    f.wchs_watching = wchs_total(s);

    // One change, one notification to each of the n sessions.
    let start = Instant::now();
    let (h, _) = good
        .call_rec(op_code::SET_DATA, &SetDataRequest { path: path(0), data: Some(b"changed".to_vec()), version: -1 })
        .unwrap_or_else(|e| panic!("{who}: setData: {e}"));
    assert_eq!(h.err, 0);
    for (i, c) in clients.iter_mut().enumerate() {
        if i % CHUNK == 0 {
            f.worst_good = f.worst_good.max(good_round(&mut good, who, "fan-out"));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.events.is_empty() && Instant::now() < deadline {
            // A ping's reply carries any notification queued ahead of it.
            let _ = c.ping();
        }
        let evs = c.take_events();
        if evs.len() == 1 && evs[0].r#type == DATA_CHANGED && evs[0].path == path(0) {
            f.notified += 1;
        }
    }
    f.fan_out = start.elapsed();
    f.worst_good = f.worst_good.max(good_round(&mut good, who, "after fan-out"));
    f.wchs_fired = wchs_total(s);

    // All sessions leave at once: every closeSession sent, then every reply read.
    for (i, c) in clients.iter_mut().enumerate() {
        c.send_request(WATCHED as i32 + 1, CLOSE_SESSION, &[]).unwrap_or_else(|e| panic!("{who}: closeSession {i}: {e}"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        if i % CHUNK == 0 {
            f.worst_good = f.worst_good.max(good_round(&mut good, who, "closing"));
        }
        let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("{who}: closeSession {i}: {e}"));
        assert_eq!((h.xid, h.err), (WATCHED as i32 + 1, 0), "{who}: closeSession {i}");
    }
    drop(clients);
    // The server forgets a closed connection's watches as it closes the socket, after
    // the closeSession reply: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        f.threads_after = threads(pid);
        if (f.threads_after <= f.threads_base && wchs_total(s).1 == 0) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f.rss_after = rss(pid);
    f.wchs_after = wchs_total(s);
    f.worst_good = f.worst_good.max(good_round(&mut good, who, "after close"));
    eprintln!(
        "[hostile] {who:6} {n} sessions x {WATCHED} watches: connect {:.1} s, register {:.1} s, fan-out of one change {:.2} s ({} notified); \
         RSS {} -> {} connected (+{:.1} KB/session) -> {} watching (+{:.0} B/watch) -> {} after; threads {} -> {} -> {}; \
         wchs {:?} -> {:?} -> {:?}; well-behaved client worst round {:?}",
        f.connect.as_secs_f64(),
        f.register.as_secs_f64(),
        f.fan_out.as_secs_f64(),
        f.notified,
        mb(f.rss_base),
        mb(f.rss_connected),
        f.rss_connected.saturating_sub(f.rss_base) as f64 / 1024.0 / n as f64,
        mb(f.rss_watching),
        f.rss_watching.saturating_sub(f.rss_connected) as f64 / (n * WATCHED) as f64,
        mb(f.rss_after),
        f.threads_base,
        f.threads_connected,
        f.threads_after,
        f.wchs_watching,
        f.wchs_fired,
        f.wchs_after,
        f.worst_good
    );
    f
}

#[test]
fn many_sessions_with_many_watches_like_apache() {
    let n = session_count();
    assert!(n >= 500, "only {n} sessions fit the open-files limit; raise it (ulimit -n)");
    // Any number of connections from one address (the default is 60).
    let cfg = format!("maxClientCnxns=0\nmaxSessionTimeout={SESSION_TIMEOUT_MS}\n");
    let cfg = cfg.as_str();
    let apache = ApacheServer::start_standalone_with_jvm_args(cfg, &["-Xmx1000m"]);
    let a = many_watchers(&apache, "apache", n);
    drop(apache);
    let ours = OurServer::start_standalone(cfg, &[]);
    let o = many_watchers(&ours, "ours", n);

    let nw = (n * WATCHED) as u64;
    assert_eq!(a.wchs_watching, (WATCHED as u64, nw), "apache wchs after registration");
    assert_eq!(o.wchs_watching, a.wchs_watching, "our wchs after registration vs Apache's");
    assert_eq!(o.wchs_fired, a.wchs_fired, "our wchs after the change fired vs Apache's");
    assert_eq!(o.wchs_after, a.wchs_after, "our wchs after the sessions closed vs Apache's");
    assert_eq!(a.notified, n, "apache notified {} of {n} sessions exactly once", a.notified);
    assert_eq!(o.notified, n, "we notified {} of {n} sessions exactly once", o.notified);
    assert!(o.worst_good < GOOD_CLIENT_TIMEOUT, "our well-behaved client waited {:?}", o.worst_good);

    // No thread per connection (a four-letter word's CommandThread may come and go),
    // and none left behind.
    assert!(o.threads_connected <= o.threads_base + 4, "our threads: {} idle, {} holding {n} sessions", o.threads_base, o.threads_connected);
    assert!(o.threads_after <= o.threads_base + 2, "our threads: {} before, {} after the sessions left", o.threads_base, o.threads_after);
    // What a connection costs: its state, its queue and a session (about 3 KB measured,
    // Apache 13 KB; kernel socket buffers are outside RSS). A watch is an entry in two
    // hash maps (path -> watchers, watcher -> paths).
    let per_session = o.rss_connected.saturating_sub(o.rss_base) / n as u64;
    assert!(per_session <= 8 * 1024, "our RSS grew {} per session", per_session);
    let per_watch = o.rss_watching.saturating_sub(o.rss_connected) / nw;
    assert!(per_watch <= 400, "our RSS grew {per_watch} B per watch");
    // And the sessions' memory is given back (Apache's heap does not shrink): at
    // least three quarters of what they took (2,000 sessions: 142 MB -> 36 MB).
    assert!(
        o.rss_after <= o.rss_base + (o.rss_watching - o.rss_base) / 4 + 8 * MIB,
        "our RSS: {} before, {} with the sessions, {} after they left",
        mb(o.rss_base),
        mb(o.rss_watching),
        mb(o.rss_after)
    );
}
