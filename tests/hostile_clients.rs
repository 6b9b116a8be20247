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
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{ApacheServer, OurServer, TestServer};
use raw_client::RawClient;
use zookeeper::jute::{OutputArchive, Record};
use zookeeper::proto::consts::ids;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{
    CheckVersionRequest, CreateRequest, DeleteRequest, ExistsRequest, GetChildrenRequest, GetDataRequest, MultiHeader,
    SetDataRequest,
};
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

/// Runs `abuse` on a default Apache server, then on ours (one at a time, so neither
/// competes with the other for the machine).
fn apache_then_ours<T>(abuse: impl Fn(&TestServer, &str) -> T) -> (T, T) {
    let apache = ApacheServer::start_standalone("");
    let a = abuse(&apache, "apache");
    drop(apache);
    let ours = OurServer::start_standalone("", &[]);
    (a, abuse(&ours, "ours"))
}

/// How many names a getChildren reply lists (the vector's length prefix).
fn child_count(reply: &[u8]) -> usize {
    let len: [u8; 4] = reply.get(..4).and_then(|b| b.try_into().ok()).unwrap_or_else(|| panic!("short getChildren reply"));
    i32::from_be_bytes(len) as usize
}

fn thread_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"))
}

/// A multi of creates and one check, as jute frames it (MultiHeader before each op,
/// a done header at the end).
fn multi_body(creates: &[(String, Vec<u8>)], check: Option<(&str, i32)>) -> Vec<u8> {
    let mut out = OutputArchive::new();
    for (path, data) in creates {
        MultiHeader { r#type: op_code::CREATE, done: false, err: -1 }.serialize(&mut out);
        CreateRequest { path: path.clone(), data: Some(data.clone()), acl: ids::open_acl_unsafe(), flags: 0 }.serialize(&mut out);
    }
    if let Some((path, version)) = check {
        MultiHeader { r#type: op_code::CHECK, done: false, err: -1 }.serialize(&mut out);
        CheckVersionRequest { path: path.into(), version }.serialize(&mut out);
    }
    MultiHeader { r#type: -1, done: true, err: -1 }.serialize(&mut out);
    out.into_inner()
}

/// What a client sees of one request: the error code and the reply body, minus the
/// parts that differ between any two servers (stats carry times and zxids).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Err(i32),
    Body(Vec<u8>),
    Ok,
}

/// czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner, dataLength,
/// numChildren, pzxid.
const STAT_BYTES: usize = 8 * 4 + 4 * 3 + 8 + 4 * 2 + 8;

/// A session whose every frame, the handshake included, is written one byte at a time.
fn dribbled_session(s: &TestServer, who: &str) -> Vec<(&'static str, Seen)> {
    let pause = Duration::from_millis(1);
    let mut c = RawClient::connect_dribbling(&addr(s), 30_000, Duration::from_secs(20), Some(pause))
        .unwrap_or_else(|e| panic!("{who}: dribbled handshake: {e}"));
    let mut good = RawClient::connect_with(&addr(s), 30_000, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    create(&mut good, SMALL, 200);
    let mut seen = Vec::new();
    let mut op = |c: &mut RawClient, name: &'static str, code: i32, body: Vec<u8>, keep_body: bool| {
        let (h, mut b) = c.call(code, &body).unwrap_or_else(|e| panic!("{who}: dribbled {name}: {e}"));
        if code == op_code::GET_DATA {
            // The Stat at the end carries times.
            b.truncate(b.len().saturating_sub(STAT_BYTES));
        }
        let v = if h.err != 0 {
            Seen::Err(h.err)
        } else if keep_body {
            Seen::Body(b)
        } else {
            Seen::Ok
        };
        seen.push((name, v));
    };
    let data = vec![7u8; 3000];
    op(&mut c, "create", op_code::CREATE, CreateRequest { path: "/dribble".into(), data: Some(data), acl: ids::open_acl_unsafe(), flags: 0 }.to_bytes(), true);
    good_round(&mut good, who);
    op(&mut c, "getData", op_code::GET_DATA, GetDataRequest { path: "/dribble".into(), watch: true }.to_bytes(), true);
    op(&mut c, "exists missing", op_code::EXISTS, ExistsRequest { path: "/dribble/none".into(), watch: false }.to_bytes(), false);
    op(&mut c, "setData bad version", op_code::SET_DATA, SetDataRequest { path: "/dribble".into(), data: Some(vec![1]), version: 5 }.to_bytes(), false);
    good_round(&mut good, who);
    let m = multi_body(&[("/dribble/a".into(), vec![1, 2, 3])], Some(("/dribble", 9)));
    op(&mut c, "multi with failing check", op_code::MULTI, m, true);
    let m = multi_body(&[("/dribble/b".into(), vec![4; 100])], Some(("/dribble", 0)));
    op(&mut c, "multi", op_code::MULTI, m, true);
    op(&mut c, "getChildren", op_code::GET_CHILDREN, GetChildrenRequest { path: "/dribble".into(), watch: false }.to_bytes(), true);
    // The watch set by the dribbled getData fires for the well-behaved client's change.
    let (h, _) = good
        .call_rec(op_code::SET_DATA, &SetDataRequest { path: "/dribble".into(), data: Some(vec![9]), version: -1 })
        .unwrap_or_else(|e| panic!("{who}: setData: {e}"));
    assert_eq!(h.err, 0, "{who}: setData");
    let events = c.drain_events(Duration::from_secs(2));
    op(&mut c, "delete with children", op_code::DELETE, DeleteRequest { path: "/dribble".into(), version: -1 }.to_bytes(), false);
    drop(op);
    seen.push(("watch event", Seen::Body(events.iter().map(|e| format!("{}:{}:{};", e.r#type, e.state, e.path)).collect::<String>().into_bytes())));
    let close = c.close_session().unwrap_or_else(|e| panic!("{who}: dribbled closeSession: {e}"));
    seen.push(("closeSession", if close.err == 0 { Seen::Ok } else { Seen::Err(close.err) }));
    seen
}

#[test]
fn frames_written_byte_by_byte_get_apache_s_replies() {
    let (a, o) = apache_then_ours(dribbled_session);
    eprintln!("[hostile] byte-by-byte session, 1 ms between bytes: {} operations, apache {:?}", a.len(), a.iter().map(|(n, v)| format!("{n}={}", match v { Seen::Err(e) => e.to_string(), Seen::Body(b) => format!("{}B", b.len()), Seen::Ok => "ok".into() })).collect::<Vec<_>>());
    assert_eq!(a.len(), o.len());
    for ((name, av), (_, ov)) in a.iter().zip(o.iter()) {
        let show = |v: &Seen| match v {
            Seen::Body(b) if b.len() > 64 => format!("{} bytes, {:?}...", b.len(), &b[..64]),
            v => format!("{v:?}"),
        };
        assert!(ov == av, "dribbled {name}: ours {} differs from Apache {}", show(ov), show(av));
    }
    // The operations must have done something worth comparing.
    assert!(a.iter().any(|(n, v)| *n == "watch event" && matches!(v, Seen::Body(b) if !b.is_empty())), "no watch event in {a:?}");
}

/// Connections that stop in the middle of a frame: without a session (part of a length
/// prefix, most of a handshake) and with one (half a request).
struct Stalled {
    conns: Vec<(TcpStream, Instant)>,
}

fn stall(s: &TestServer, who: &str, without_session: usize, with_session: usize) -> Stalled {
    let a: std::net::SocketAddr = addr(s).parse().unwrap_or_else(|e| panic!("addr: {e}"));
    let mut conns = Vec::new();
    for i in 0..without_session {
        let mut t = TcpStream::connect(a).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
        if i % 2 == 0 {
            t.write_all(&[0, 0, 0]).unwrap_or_else(|e| panic!("{who}: write: {e}"));
        } else {
            // A handshake frame announcing 44 bytes, of which 20 arrive.
            let mut f = 44i32.to_be_bytes().to_vec();
            f.extend_from_slice(&[0u8; 20]);
            t.write_all(&f).unwrap_or_else(|e| panic!("{who}: write: {e}"));
        }
        conns.push((t, Instant::now()));
    }
    for _ in 0..with_session {
        let c = RawClient::connect_with(&addr(s), 2_000, Duration::from_secs(5)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
        // Dismantled into its socket: half of a getData frame, then silence.
        let mut t = c.into_stream();
        let mut out = OutputArchive::new();
        zookeeper::proto::proto::RequestHeader { xid: 1, r#type: op_code::GET_DATA }.serialize(&mut out);
        GetDataRequest { path: SMALL.into(), watch: false }.serialize(&mut out);
        let body = out.into_inner();
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(&body[..body.len() / 2]);
        t.write_all(&f).unwrap_or_else(|e| panic!("{who}: write: {e}"));
        conns.push((t, Instant::now()));
    }
    Stalled { conns }
}

/// How long the server took to close each stalled connection (None: still open at the
/// deadline). A well-behaved client is served meanwhile.
fn wait_stalled_closed(s: &TestServer, who: &str, st: Stalled, deadline: Duration) -> Vec<Option<Duration>> {
    let mut good = RawClient::connect_with(&addr(s), 30_000, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let start = Instant::now();
    let mut open: Vec<(usize, TcpStream, Instant)> = st.conns.into_iter().enumerate().map(|(i, (t, at))| (i, t, at)).collect();
    let mut closed = vec![None; open.len()];
    for (_, t, _) in &open {
        let _ = t.set_nonblocking(true);
    }
    while !open.is_empty() && start.elapsed() < deadline {
        open.retain_mut(|(i, t, at)| {
            let mut b = [0u8; 64];
            match t.read(&mut b) {
                Ok(0) => {
                    closed[*i] = Some(at.elapsed());
                    false
                }
                Ok(_) => true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Err(_) => {
                    closed[*i] = Some(at.elapsed());
                    false
                }
            }
        });
        good_round(&mut good, who);
        std::thread::sleep(Duration::from_millis(100));
    }
    closed
}

#[test]
fn connections_stalled_mid_frame_are_closed_on_apache_s_schedule() {
    // Sessionless connections expire after zookeeper.nio.sessionlessCnxnTimeout (10 s by
    // default, 2 s here); one with a session after its session timeout (2 s here, the
    // tickTime of 500 ms allows it). Both on an expiry queue with 2-second buckets.
    const PROP: &str = "-Dzookeeper.nio.sessionlessCnxnTimeout=2000";
    let cfg = "tickTime=500\nmaxClientCnxns=0\n";
    let (without, with) = (40, 20);
    let run = |s: &TestServer, who: &str| {
        let mut good = RawClient::connect_with(&addr(s), 30_000, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
        create(&mut good, SMALL, 200);
        let pid = s.pid().unwrap_or_else(|| panic!("{who}: no pid"));
        let threads_before = thread_count(pid);
        let st = stall(s, who, without, with);
        std::thread::sleep(Duration::from_millis(300));
        let threads_during = thread_count(pid);
        let closed = wait_stalled_closed(s, who, st, Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(500));
        let threads_after = thread_count(pid);
        let max = |r: std::ops::Range<usize>| closed[r].iter().map(|c| c.unwrap_or(Duration::MAX)).max().unwrap_or(Duration::ZERO);
        let min = |r: std::ops::Range<usize>| closed[r].iter().map(|c| c.unwrap_or(Duration::MAX)).min().unwrap_or(Duration::ZERO);
        let (sl_min, sl_max) = (min(0..without), max(0..without));
        let (se_min, se_max) = (min(without..without + with), max(without..without + with));
        eprintln!(
            "[hostile] {who:6} {without} sessionless + {with} sessioned connections stalled mid-frame: sessionless closed after {sl_min:?}..{sl_max:?}, \
             sessioned after {se_min:?}..{se_max:?}; threads {threads_before} -> {threads_during} -> {threads_after}"
        );
        (sl_min, sl_max, se_min, se_max, threads_before, threads_after)
    };
    let apache = ApacheServer::start_standalone_with_jvm_args(cfg, &[PROP]);
    let a = run(&apache, "apache");
    drop(apache);
    let ours = OurServer::start_standalone(cfg, &[PROP]);
    let o = run(&ours, "ours");
    assert!(a.1 < Duration::from_secs(15) && a.3 < Duration::from_secs(15), "apache left stalled connections open: {a:?}");
    assert!(o.1 != Duration::MAX && o.3 != Duration::MAX, "ours left stalled connections open: {o:?}");
    // Neither closes before the timeout, and ours no later than Apache's last bucket plus one.
    assert!(o.0 >= Duration::from_millis(1500) && o.2 >= Duration::from_millis(1500), "ours closed a stalled connection early: {o:?}");
    assert!(o.1 <= a.1.max(a.3) + Duration::from_millis(2500), "ours closed sessionless stalls at {:?}, Apache by {:?}", o.1, a.1);
    assert!(o.3 <= a.1.max(a.3) + Duration::from_millis(2500), "ours closed sessioned stalls at {:?}, Apache by {:?}", o.3, a.3);
    // Every stalled connection's threads are gone again.
    assert!(o.5 <= o.4 + 2, "our threads went {} -> {} after the stalled connections closed", o.4, o.5);
}

/// Writes `rounds` 1 MB setData requests, `depth` in flight, while a well-behaved
/// client works; returns (RSS baseline, peak, after, worst good round, wall time).
fn big_writer(s: &TestServer, who: &str, rounds: usize, depth: usize) -> (u64, u64, u64, Duration, Duration) {
    let pid = s.pid().unwrap_or_else(|| panic!("{who}: no pid"));
    let mut good = RawClient::connect_with(&addr(s), 30_000, GOOD_CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    create(&mut good, SMALL, 200);
    create(&mut good, BIG, 10);
    let baseline = rss_bytes(pid);
    let mut w = RawClient::connect_with(&addr(s), 30_000, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let start = Instant::now();
    let mut peak = baseline;
    let mut worst = Duration::ZERO;
    let mut sent = 0usize;
    let mut done = 0usize;
    while done < rounds {
        while sent < rounds && sent - done < depth {
            let data = vec![(sent % 251) as u8; NODE_BYTES];
            let body = SetDataRequest { path: BIG.into(), data: Some(data), version: -1 }.to_bytes();
            w.send_request(sent as i32 + 1, op_code::SET_DATA, &body).unwrap_or_else(|e| panic!("{who}: big write: {e}"));
            sent += 1;
        }
        let (h, _) = w.recv_reply().unwrap_or_else(|e| panic!("{who}: big write reply: {e}"));
        assert_eq!(h.err, 0, "{who}: 1 MB setData");
        assert_eq!(h.xid as usize, done + 1, "{who}: replies out of order");
        done += 1;
        if done % 10 == 0 {
            worst = worst.max(good_round(&mut good, who));
            peak = peak.max(rss_bytes(pid));
        }
    }
    let wall = start.elapsed();
    peak = peak.max(rss_bytes(pid));
    drop(w);
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_bytes(pid);
    // The last value is the one stored.
    let (h, body) = good.call_rec(op_code::GET_DATA, &GetDataRequest { path: BIG.into(), watch: false }).unwrap_or_else(|e| panic!("{who}: getData: {e}"));
    assert_eq!(h.err, 0);
    assert!(body.len() > NODE_BYTES && body[4..4 + NODE_BYTES].iter().all(|b| *b == ((rounds - 1) % 251) as u8), "{who}: last 1 MB write not stored");
    eprintln!(
        "[hostile] {who:6} 1 MB writer ({rounds} setData, {depth} in flight): {:.1} s ({:.1} MB/s); RSS baseline {}, peak {} (+{}), after {}; well-behaved client worst round {worst:?}",
        wall.as_secs_f64(),
        (rounds * NODE_BYTES) as f64 / MIB as f64 / wall.as_secs_f64(),
        mb(baseline),
        mb(peak),
        mb(peak.saturating_sub(baseline)),
        mb(after)
    );
    (baseline, peak, after, worst, wall)
}

#[test]
fn client_writing_1mb_nodes_in_a_loop_keeps_memory_bounded() {
    let (rounds, depth) = (120, 8);
    // The harness's 256 MB heap runs out here (OutOfMemoryError in the request
    // processor); zkServer.sh's default heap is 1000 MB (ZK_SERVER_HEAP).
    let apache = ApacheServer::start_standalone_with_jvm_args("", &["-Xmx1000m"]);
    let a = big_writer(&apache, "apache", rounds, depth);
    drop(apache);
    let ours = OurServer::start_standalone("", &[]);
    let o = big_writer(&ours, "ours", rounds, depth);
    // In flight at once: `depth` requests in the pipeline plus the stored node and the
    // one being replaced; the log writes through a bounded buffer. Far below the 120 MB written.
    let bound = (depth as u64 + 4) * NODE_BYTES as u64 + SLACK;
    assert!(o.1.saturating_sub(o.0) <= bound, "our RSS grew by {} writing 1 MB nodes (bound {}, Apache grew {})", mb(o.1 - o.0), mb(bound), mb(a.1.saturating_sub(a.0)));
    assert!(o.3 < GOOD_CLIENT_TIMEOUT, "our well-behaved client waited {:?}", o.3);
}

/// jute.maxbuffer is 1 MiB - 1 on both: a multi just under it is applied whole, one
/// just over closes the connection without applying anything.
fn max_buffer_multis(s: &TestServer, who: &str) -> (i32, usize, bool, bool) {
    let mut c = RawClient::connect_with(&addr(s), 30_000, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    create(&mut c, "/mb", 0);
    let frame_len = |creates: &[(String, Vec<u8>)]| multi_body(creates, None).len() + 8;
    // Fill to just under the bound with 4000-byte creates and one remainder.
    let max = (1 << 20) - 1;
    let mut creates: Vec<(String, Vec<u8>)> = Vec::new();
    while frame_len(&creates) + 4100 < max {
        creates.push((format!("/mb/n{:04}", creates.len()), vec![b'm'; 4000]));
    }
    let rest = max - frame_len(&creates) - 200;
    creates.push((format!("/mb/n{:04}", creates.len()), vec![b'r'; rest]));
    let under = multi_body(&creates, None);
    assert!(under.len() + 8 <= max && under.len() + 8 > max - 400, "{who}: multi of {} bytes", under.len());
    let (h, _) = c.call(op_code::MULTI, &under).unwrap_or_else(|e| panic!("{who}: multi under jute.maxbuffer: {e}"));
    let (h2, kids) = c
        .call_rec(op_code::GET_CHILDREN, &GetChildrenRequest { path: "/mb".into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: getChildren: {e}"));
    assert_eq!(h2.err, 0);
    let n = child_count(&kids);

    // Just over: a connection the server must drop; nothing of it applied.
    let mut over_creates: Vec<(String, Vec<u8>)> = (0..creates.len()).map(|i| (format!("/mb/o{i:04}"), creates[i].1.clone())).collect();
    over_creates.push(("/mb/o-extra".into(), vec![b'x'; 1000]));
    let over = multi_body(&over_creates, None);
    assert!(over.len() + 8 > max);
    let mut c2 = RawClient::connect_with(&addr(s), 30_000, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let dropped = match c2.call(op_code::MULTI, &over) {
        Err(_) => c2.closed,
        Ok((h, _)) => panic!("{who}: multi over jute.maxbuffer answered with err {}", h.err),
    };
    let (h3, _) = c
        .call_rec(op_code::EXISTS, &ExistsRequest { path: "/mb/o0000".into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: exists: {e}"));
    let none_applied = h3.err == -101;
    eprintln!("[hostile] {who:6} multi of {} B: err {}, {n} nodes created; multi of {} B: connection dropped {dropped}, nothing applied {none_applied}", under.len() + 8, h.err, over.len() + 8);
    (h.err, n, dropped, none_applied)
}

#[test]
fn jute_maxbuffer_sized_multis_behave_like_apache() {
    let (a, o) = apache_then_ours(max_buffer_multis);
    assert_eq!(o, a, "ours (err, nodes created, over-size dropped, nothing applied) vs Apache");
    assert!(a.1 > 200, "the multi under the bound created only {} nodes", a.1);
}

/// `clients` sessions each pipeline `per_client` creates at once while `mntr` is
/// sampled; returns the most requests it ever reported outstanding, and the wall time.
fn pipelined_writers(s: &TestServer, who: &str, clients: usize, per_client: usize) -> (i64, Duration) {
    let a = addr(s);
    let mut setup = RawClient::connect_with(&a, 30_000, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    create(&mut setup, "/gol", 0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut max = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(t) = common::four_letter_word(&a, "mntr", Duration::from_secs(2)) {
                    let v = t.lines().find_map(|l| l.strip_prefix("zk_outstanding_requests")).and_then(|v| v.trim().parse().ok());
                    max = max.max(v.unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            max
        })
    };
    let start = Instant::now();
    let writers: Vec<_> = (0..clients)
        .map(|i| {
            let a = a.clone();
            let who = who.to_string();
            std::thread::spawn(move || {
                let mut c = RawClient::connect_with(&a, 30_000, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
                let frames: Vec<Vec<u8>> = (0..per_client)
                    .map(|j| CreateRequest { path: format!("/gol/c{i}-{j}"), data: Some(vec![b'g'; 100]), acl: ids::open_acl_unsafe(), flags: 0 }.to_bytes())
                    .collect();
                for (j, f) in frames.iter().enumerate() {
                    c.send_request(j as i32 + 1, op_code::CREATE, f).unwrap_or_else(|e| panic!("{who}: send: {e}"));
                }
                for j in 0..per_client {
                    let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("{who}: client {i} reply {j}: {e}"));
                    assert_eq!((h.xid, h.err), (j as i32 + 1, 0), "{who}: client {i}: replies in order, all created");
                }
            })
        })
        .collect();
    for w in writers {
        if let Err(e) = w.join() {
            std::panic::resume_unwind(e);
        }
    }
    let wall = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let max = sampler.join().unwrap_or_else(|_| panic!("{who}: sampler panicked"));
    let (h, body) = setup
        .call_rec(op_code::GET_CHILDREN, &GetChildrenRequest { path: "/gol".into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: getChildren: {e}"));
    assert_eq!(h.err, 0);
    let n = child_count(&body);
    assert_eq!(n, clients * per_client, "{who}: creates that took effect");
    (max, wall)
}

#[test]
fn global_outstanding_limit_bounds_requests_in_process_like_apache() {
    // A connection stops being read once more than the limit are in process server-wide
    // and it has one of them (ZooKeeperServer.shouldThrottle): what is outstanding stays
    // near the limit plus a request or two per connection (Apache, sampled through mntr,
    // peaks at about limit + 2 per connection), whatever the clients pipeline.
    const LIMIT: i64 = 10;
    let (clients, per_client) = (8, 400);
    let prop = format!("-Dzookeeper.globalOutstandingLimit={LIMIT}");
    let apache = ApacheServer::start_standalone_with_jvm_args("", &[prop.as_str()]);
    let (a_max, a_wall) = pipelined_writers(&apache, "apache", clients, per_client);
    drop(apache);
    let ours = OurServer::start_standalone("", &[prop.as_str()]);
    let (o_max, o_wall) = pipelined_writers(&ours, "ours", clients, per_client);
    drop(ours);
    // The same load without the limit (upstream's default, 1000) shows what it holds back.
    let ours = OurServer::start_standalone("", &[]);
    let (free_max, free_wall) = pipelined_writers(&ours, "ours", clients, per_client);
    eprintln!(
        "[hostile] globalOutstandingLimit={LIMIT}, {clients} clients pipelining {per_client} creates each: most outstanding seen by mntr: \
         apache {a_max} ({:.1} s), ours {o_max} ({:.1} s); ours with the default limit {free_max} ({:.1} s)",
        a_wall.as_secs_f64(),
        o_wall.as_secs_f64(),
        free_wall.as_secs_f64()
    );
    let bound = LIMIT + 2 * clients as i64 + 4;
    assert!(a_max <= bound, "apache had {a_max} outstanding over a limit of {LIMIT}: the bound under test is wrong");
    assert!(o_max <= bound, "we had {o_max} requests outstanding with globalOutstandingLimit={LIMIT} (bound {bound})");
    assert!(free_max > bound, "without the limit only {free_max} were ever outstanding: the load does not exercise the limit");
}
