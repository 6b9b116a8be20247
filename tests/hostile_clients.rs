//! Clients that try to make the server hold memory for them, run against Apache
//! ZooKeeper 3.8 and our server side by side.
//!
//! The slow reader asks 800 times for a 1 MB znode and never reads its socket. Apache
//! reads all 800 requests and queues 800 replies (`NIOServerCnxn.outgoingBuffers` has no
//! bound), but its getData response cache makes them share one serialized array, so its
//! heap hardly moves. Our replies are separate copies; what keeps them bounded is the
//! reader throttle (`RecvLimits`): the connection stops being read once it holds its
//! byte bound of unwritten replies or its quota of reads in the pipeline.
//!
//! Figures are printed (run with `--nocapture` to see them); the assertions are on our
//! server, with Apache's run as the reference for what a client may expect.

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
use zookeeper::proto::proto::{CreateRequest, ExistsRequest, GetDataRequest};
use zookeeper::server::server_cnxn::{DEFAULT_MAX_CNXN_PIPELINED_READS, DEFAULT_MAX_CNXN_UNWRITTEN_BYTES};

const BIG: &str = "/hostile-big";
const SMALL: &str = "/hostile-small";
/// Under jute.maxbuffer (1 MiB - 1) with room for the request around it.
const NODE_BYTES: usize = 1_000_000;
const REQUESTS: usize = 800;
const MIB: u64 = 1 << 20;
/// What the slow reader would make a server buffer if nothing stopped it.
const BUFFERED_TOTAL: u64 = (REQUESTS * NODE_BYTES) as u64;
/// What our bounds let one connection hold: its unwritten-bytes bound, plus the replies
/// of the reads already in the pipeline when it was reached.
const OUR_BOUND: u64 = DEFAULT_MAX_CNXN_UNWRITTEN_BYTES as u64 + (DEFAULT_MAX_CNXN_PIPELINED_READS * NODE_BYTES) as u64;
/// Allocator slack, thread stacks, the znode itself.
const SLACK: u64 = 24 * MIB;
/// How long the well-behaved client waits for any one answer.
const GOOD_CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
const ABUSE_WINDOW: Duration = Duration::from_secs(4);

fn rss_bytes(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"));
    kb * 1024
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / MIB as f64)
}

fn addr(s: &TestServer) -> String {
    format!("127.0.0.1:{}", s.port())
}

fn create(c: &mut RawClient, path: &str, len: usize) {
    let req = CreateRequest { path: path.into(), data: Some(vec![b'x'; len]), acl: ids::open_acl_unsafe(), flags: 0 };
    let (h, _) = c.call_rec(op_code::CREATE, &req).unwrap_or_else(|e| panic!("create {path}: {e}"));
    assert_eq!(h.err, 0, "create {path}");
}

/// One round of the well-behaved client; returns how long it took.
fn good_round(c: &mut RawClient, who: &str) -> Duration {
    let start = Instant::now();
    let (h, _) = c
        .call_rec(op_code::EXISTS, &ExistsRequest { path: "/".into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: exists(/) during the abuse: {e}"));
    assert_eq!(h.err, 0);
    let (h, body) = c
        .call_rec(op_code::GET_DATA, &GetDataRequest { path: SMALL.into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: getData({SMALL}) during the abuse: {e}"));
    assert_eq!(h.err, 0);
    assert!(body.len() > 100, "{who}: short getData reply");
    start.elapsed()
}

/// `recved=` of the busiest connection in `cons`: how many packets the server read.
fn max_recved(s: &TestServer) -> u64 {
    s.four_letter("cons")
        .lines()
        .filter_map(|l| l.split("recved=").nth(1))
        .filter_map(|v| v.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

struct Figures {
    baseline: u64,
    peak: u64,
    after: u64,
    worst_good: Duration,
    recved: u64,
}

/// Runs the slow reader against `s`; a well-behaved client works throughout. After the
/// abuser leaves, waits up to `settle` for the RSS to fall to `settle_to` above the
/// baseline (Apache's heap does not shrink, so it just gets the time).
fn slow_reader(s: &TestServer, who: &str, settle: Duration, settle_to: u64) -> Figures {
    let pid = s.pid().unwrap_or_else(|| panic!("{who}: no server pid"));
    let mut good = RawClient::connect_with(&addr(s), 30_000, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    create(&mut good, BIG, NODE_BYTES);
    create(&mut good, SMALL, 200);
    good_round(&mut good, who);
    let baseline = rss_bytes(pid);

    let mut abuser = RawClient::connect_with(&addr(s), 30_000, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let get = GetDataRequest { path: BIG.into(), watch: false }.to_bytes();
    for xid in 1..=REQUESTS as i32 {
        // 800 small frames fit in the socket buffers even when nobody reads them.
        abuser.send_request(xid, op_code::GET_DATA, &get).unwrap_or_else(|e| panic!("{who}: abuser send: {e}"));
    }
    let mut peak = baseline;
    let mut worst_good = Duration::ZERO;
    let start = Instant::now();
    while start.elapsed() < ABUSE_WINDOW {
        worst_good = worst_good.max(good_round(&mut good, who));
        peak = peak.max(rss_bytes(pid));
        std::thread::sleep(Duration::from_millis(200));
    }
    let recved = max_recved(s);
    peak = peak.max(rss_bytes(pid));

    drop(abuser);
    let deadline = Instant::now() + settle;
    let mut after = rss_bytes(pid);
    while after > baseline + settle_to && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = rss_bytes(pid);
    }
    worst_good = worst_good.max(good_round(&mut good, who));
    let f = Figures { baseline, peak, after, worst_good, recved };
    eprintln!(
        "[hostile] {who:6} slow reader ({REQUESTS} x getData of {NODE_BYTES} B, {} if all buffered): \
         RSS baseline {}, peak {} (+{}), after it left {}; requests read {}; well-behaved client worst round {:?}",
        mb(BUFFERED_TOTAL),
        mb(f.baseline),
        mb(f.peak),
        mb(f.peak.saturating_sub(f.baseline)),
        mb(f.after),
        f.recved,
        f.worst_good
    );
    f
}

#[test]
fn slow_reader_holds_a_bounded_amount_like_apache() {
    assert!(OUR_BOUND + SLACK < BUFFERED_TOTAL / 8, "the bound under test must be far below what the abuse buffers");

    let apache = ApacheServer::start_standalone("");
    let a = slow_reader(&apache, "apache", Duration::from_secs(2), 0);
    drop(apache);

    let ours = OurServer::start_standalone("", &[]);
    let o = slow_reader(&ours, "ours", Duration::from_secs(8), 16 * MIB);

    // Apache reads every request (recved counts the ConnectRequest too); our reader
    // stops once the connection is over its bounds.
    assert!(a.recved > REQUESTS as u64, "apache read {} packets; expected all {REQUESTS} requests", a.recved);
    assert!(o.recved < (REQUESTS / 4) as u64, "our server read {} of {REQUESTS} requests it cannot send replies for", o.recved);

    let growth = o.peak.saturating_sub(o.baseline);
    assert!(
        growth <= OUR_BOUND + SLACK,
        "our RSS grew by {} under the slow reader; bound {} + {} slack (unbounded it was ~{})",
        mb(growth),
        mb(OUR_BOUND),
        mb(SLACK),
        mb(BUFFERED_TOTAL)
    );
    // Apache holds one shared copy; we may hold up to our bound more than it does.
    assert!(
        o.peak <= a.peak + OUR_BOUND,
        "our peak RSS {} is more than our bound {} above Apache's {}",
        mb(o.peak),
        mb(OUR_BOUND),
        mb(a.peak)
    );
    assert!(o.worst_good < GOOD_CLIENT_TIMEOUT, "our well-behaved client waited {:?}", o.worst_good);
    assert!(
        o.after <= o.baseline + 16 * MIB,
        "our RSS stayed at {} after the abuser left (baseline {})",
        mb(o.after),
        mb(o.baseline)
    );
}

/// Session ids of the connections `cons` lists.
fn cons_sessions(s: &TestServer) -> Vec<i64> {
    s.four_letter("cons")
        .lines()
        .filter_map(|l| l.split("sid=0x").nth(1))
        .filter_map(|v| i64::from_str_radix(v.split(|c: char| !c.is_ascii_hexdigit()).next()?, 16).ok())
        .collect()
}

/// A reader that never reads and never leaves: its session expires, and the server must
/// then drop the connection and everything queued for it, even though the replies can
/// never be written.
fn stuck_reader(s: &TestServer, who: &str) -> (Duration, u64, u64) {
    let pid = s.pid().unwrap_or_else(|| panic!("{who}: no server pid"));
    let mut good = RawClient::connect_with(&addr(s), 30_000, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    create(&mut good, BIG, NODE_BYTES);
    create(&mut good, SMALL, 200);
    let baseline = rss_bytes(pid);
    // The shortest session the server grants (2 x tickTime).
    let mut abuser = RawClient::connect_with(&addr(s), 1000, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let sid = abuser.session_id;
    let get = GetDataRequest { path: BIG.into(), watch: false }.to_bytes();
    for xid in 1..=REQUESTS as i32 {
        abuser.send_request(xid, op_code::GET_DATA, &get).unwrap_or_else(|e| panic!("{who}: abuser send: {e}"));
    }
    let start = Instant::now();
    let mut gone = None;
    while start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(250));
        good_round(&mut good, who);
        if !cons_sessions(s).contains(&sid) {
            gone = Some(start.elapsed());
            break;
        }
    }
    let gone = gone.unwrap_or_else(|| panic!("{who}: the never-reading connection of expired session 0x{sid:x} is still open after 15 s"));
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_bytes(pid);
    eprintln!(
        "[hostile] {who:6} stuck reader (session timeout 1 s): connection dropped after {gone:?}; RSS baseline {}, after {}",
        mb(baseline),
        mb(after)
    );
    drop(abuser);
    (gone, baseline, after)
}

#[test]
fn never_reading_connection_is_dropped_when_its_session_expires() {
    // tickTime 500 ms: sessions of 1 s; later zoo.cfg lines win.
    let cfg = "tickTime=500\n";
    let apache = ApacheServer::start_standalone(cfg);
    stuck_reader(&apache, "apache");
    drop(apache);

    let ours = OurServer::start_standalone(cfg, &[]);
    let (gone, baseline, after) = stuck_reader(&ours, "ours");
    // Expiry, then the writer's send timeout (the session timeout) without progress.
    assert!(gone < Duration::from_secs(10), "took {gone:?}");
    assert!(after <= baseline + 16 * MIB, "our RSS stayed at {} after the connection was dropped (baseline {})", mb(after), mb(baseline));
}
