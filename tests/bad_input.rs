//! Bad input from clients: each case is run against Apache ZooKeeper 3.8 and
//! our `zk-server`, and the observable outcomes are compared (what comes back
//! before the close, whether and roughly when the socket is closed). After each
//! case a fresh well-behaved client must still read every node written at the
//! start, so a bad client can neither crash nor wedge the server.
//!
//! Run with `cargo test -j1 --test bad_input -- --nocapture`.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{ApacheServer, OurServer, TestServer};

const MAX_BUFFER: i32 = 0xfffff;
const OP_CREATE: i32 = 1;
const OP_GET_DATA: i32 = 4;
const SEED_NODES: [(&str, &str); 3] = [("/bad-input-a", "alpha"), ("/bad-input-b", "beta"), ("/bad-input-c", "gamma")];

// ------------------------------------------------------------- encoding --

fn put_int(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_long(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_buf(b: &mut Vec<u8>, v: &[u8]) {
    put_int(b, v.len() as i32);
    b.extend_from_slice(v);
}
fn frame(body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 4);
    put_int(&mut b, body.len() as i32);
    b.extend_from_slice(body);
    b
}
/// ConnectRequest{0, 0, 30000, 0, passwd} + readOnly=false, with the passwd
/// length field given explicitly (so it can be garbage).
fn connect_body(passwd_len: i32, passwd: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_int(&mut b, 0);
    put_long(&mut b, 0);
    put_int(&mut b, 30000);
    put_long(&mut b, 0);
    put_int(&mut b, passwd_len);
    b.extend_from_slice(passwd);
    b.push(0);
    b
}
fn good_connect() -> Vec<u8> {
    frame(&connect_body(16, &[0u8; 16]))
}
fn get_data(xid: i32, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    put_int(&mut b, xid);
    put_int(&mut b, OP_GET_DATA);
    put_buf(&mut b, path.as_bytes());
    b.push(0);
    frame(&b)
}
fn create(xid: i32, path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_int(&mut b, xid);
    put_int(&mut b, OP_CREATE);
    put_buf(&mut b, path.as_bytes());
    put_buf(&mut b, data);
    // acl: world:anyone, perms ALL
    put_int(&mut b, 1);
    put_int(&mut b, 31);
    put_buf(&mut b, b"world");
    put_buf(&mut b, b"anyone");
    put_int(&mut b, 0); // flags: persistent
    frame(&b)
}

/// Deterministic pseudo-random bytes (xorshift), first 4 bytes forced to a
/// negative length so they cannot be a four-letter word by accident.
fn garbage(n: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(n);
    v
}

// ------------------------------------------------------------ a client --

fn connect(addr: &SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(addr, Duration::from_secs(5)).expect("tcp connect");
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_write_timeout(Some(Duration::from_secs(10))).ok();
    s
}

fn read_frame(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut l = [0u8; 4];
    s.read_exact(&mut l)?;
    let n = i32::from_be_bytes(l);
    if !(0..=MAX_BUFFER).contains(&n) {
        return Err(io::Error::new(ErrorKind::InvalidData, format!("bad length {n}")));
    }
    let mut b = vec![0u8; n as usize];
    s.read_exact(&mut b)?;
    Ok(b)
}

/// Opens a session; returns the stream and the ConnectResponse body.
fn session(addr: &SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = connect(addr);
    s.write_all(&good_connect()).expect("send connect");
    let r = read_frame(&mut s).expect("ConnectResponse");
    assert!(r.len() >= 36, "short ConnectResponse {r:?}");
    let timeout = i32::from_be_bytes(r[4..8].try_into().unwrap());
    assert!(timeout > 0, "session refused: {r:?}");
    (s, r)
}

/// (xid, err, body after the ReplyHeader)
fn reply(s: &mut TcpStream) -> io::Result<(i32, i32, Vec<u8>)> {
    let f = read_frame(s)?;
    if f.len() < 16 {
        return Err(io::Error::new(ErrorKind::InvalidData, "short reply"));
    }
    let xid = i32::from_be_bytes(f[0..4].try_into().unwrap());
    let err = i32::from_be_bytes(f[12..16].try_into().unwrap());
    Ok((xid, err, f[16..].to_vec()))
}

fn good_get(s: &mut TcpStream, xid: i32, path: &str) -> Vec<u8> {
    s.write_all(&get_data(xid, path)).expect("send getData");
    let (rx, err, body) = reply(s).expect("getData reply");
    assert_eq!((rx, err), (xid, 0), "getData {path}");
    let n = i32::from_be_bytes(body[0..4].try_into().unwrap());
    body[4..4 + n.max(0) as usize].to_vec()
}

fn seed(addr: &SocketAddr) {
    let (mut s, _) = session(addr);
    for (i, (p, d)) in SEED_NODES.iter().enumerate() {
        s.write_all(&create(i as i32 + 1, p, d.as_bytes())).unwrap();
        let (xid, err, _) = reply(&mut s).unwrap();
        assert_eq!((xid, err), (i as i32 + 1, 0), "create {p}");
    }
}

/// A fresh well-behaved client reads every seeded node.
fn verify(addr: &SocketAddr, after: &str) {
    let (mut s, _) = session(addr);
    for (i, (p, d)) in SEED_NODES.iter().enumerate() {
        let got = good_get(&mut s, 100 + i as i32, p);
        assert_eq!(got, d.as_bytes(), "after {after}: data of {p}");
    }
}

// ------------------------------------------------------------ outcomes --

/// Reads until EOF / reset / `wait`; describes what was seen. Reply frames
/// are summarised by (xid, err) so zxids and session ids do not matter.
fn observe(s: &mut TcpStream, wait: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let end;
    loop {
        let left = wait.saturating_sub(start.elapsed());
        if left.is_zero() {
            end = "still open".to_string();
            break;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).ok();
        let mut b = [0u8; 4096];
        match s.read(&mut b) {
            Ok(0) => {
                end = "closed".into();
                break;
            }
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                end = "still open".into();
                break;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                // ECONNRESET and the like: the server closed with unread data.
                end = "closed".into();
                break;
            }
        }
    }
    (format!("{} then {end}", describe(&got)), start.elapsed())
}

fn describe(b: &[u8]) -> String {
    if b.is_empty() {
        return "no bytes".into();
    }
    let mut out = Vec::new();
    let mut rest = b;
    while rest.len() >= 4 {
        let n = i32::from_be_bytes(rest[0..4].try_into().unwrap());
        if n < 0 || rest.len() < 4 + n as usize {
            break;
        }
        let f = &rest[4..4 + n as usize];
        if f.len() == 36 || f.len() == 37 {
            let t = i32::from_be_bytes(f[4..8].try_into().unwrap());
            out.push(format!("ConnectResponse({}, {}B)", if t > 0 { "session" } else { "refused" }, f.len()));
        } else if f.len() >= 16 {
            out.push(format!(
                "reply(xid={}, err={}, body={}B)",
                i32::from_be_bytes(f[0..4].try_into().unwrap()),
                i32::from_be_bytes(f[12..16].try_into().unwrap()),
                f.len() - 16
            ));
        } else {
            out.push(format!("frame({}B)", f.len()));
        }
        rest = &rest[4 + n as usize..];
    }
    if !rest.is_empty() {
        out.push(format!("{} unframed bytes", rest.len()));
    }
    out.join(", ")
}

struct Outcome {
    what: String,
    elapsed: Duration,
}

type Case = fn(&SocketAddr) -> Outcome;

fn obs(s: &mut TcpStream, wait: Duration) -> Outcome {
    let (what, elapsed) = observe(s, wait);
    Outcome { what, elapsed }
}

// --------------------------------------------------------------- cases --

fn case_garbage_first(a: &SocketAddr) -> Outcome {
    let mut s = connect(a);
    let mut g = garbage(4096, 0x1234_5678_9abc_def1);
    g[0] = 0xde; // negative length: never a 4lw
    let _ = s.write_all(&g);
    obs(&mut s, Duration::from_secs(5))
}

fn case_garbage_small_len(a: &SocketAddr) -> Outcome {
    // Garbage whose length prefix is in range: it is parsed as a ConnectRequest.
    let mut s = connect(a);
    let _ = s.write_all(&frame(&garbage(60, 0x0bad_cafe_f00d_0001)));
    obs(&mut s, Duration::from_secs(5))
}

fn case_len_max(a: &SocketAddr) -> Outcome {
    let mut s = connect(a);
    let _ = s.write_all(&0x7fff_ffffi32.to_be_bytes());
    obs(&mut s, Duration::from_secs(5))
}

fn case_len_negative(a: &SocketAddr) -> Outcome {
    let mut s = connect(a);
    let _ = s.write_all(&(-1i32).to_be_bytes());
    obs(&mut s, Duration::from_secs(5))
}

fn case_len_over_max_after_session(a: &SocketAddr) -> Outcome {
    let (mut s, _) = session(a);
    let _ = s.write_all(&(MAX_BUFFER + 1).to_be_bytes());
    let _ = s.write_all(&[0u8; 64]);
    obs(&mut s, Duration::from_secs(5))
}

fn case_truncated_then_eof(a: &SocketAddr) -> Outcome {
    let mut s = connect(a);
    let mut b = Vec::new();
    put_int(&mut b, 100);
    b.extend_from_slice(&[1u8; 10]);
    let _ = s.write_all(&b);
    let _ = s.shutdown(Shutdown::Write);
    obs(&mut s, Duration::from_secs(5))
}

fn case_truncated_after_session_then_eof(a: &SocketAddr) -> Outcome {
    let (mut s, _) = session(a);
    let mut b = Vec::new();
    put_int(&mut b, 100);
    b.extend_from_slice(&[1u8; 10]);
    let _ = s.write_all(&b);
    let _ = s.shutdown(Shutdown::Write);
    obs(&mut s, Duration::from_secs(5))
}

/// A stuck half-frame before any session; other clients must keep working
/// meanwhile. Upstream closes session-less connections after
/// zookeeper.nio.sessionlessCnxnTimeout (10 s, rounded up to 10 s buckets).
fn case_truncated_stays_open(a: &SocketAddr) -> Outcome {
    let mut s = connect(a);
    let mut b = Vec::new();
    put_int(&mut b, 100);
    b.extend_from_slice(&[1u8; 10]);
    let _ = s.write_all(&b);
    let t = Instant::now();
    // Meanwhile another client works.
    let (mut o, _) = session(a);
    assert_eq!(good_get(&mut o, 7, SEED_NODES[0].0), SEED_NODES[0].1.as_bytes());
    assert!(t.elapsed() < Duration::from_secs(5), "second client was slow: {:?}", t.elapsed());
    drop(o);
    let out = obs(&mut s, Duration::from_secs(25));
    Outcome { what: out.what, elapsed: t.elapsed() }
}

fn case_unknown_opcode(a: &SocketAddr) -> Outcome {
    let (mut s, _) = session(a);
    let mut b = Vec::new();
    put_int(&mut b, 5);
    put_int(&mut b, 9999);
    let _ = s.write_all(&frame(&b));
    obs(&mut s, Duration::from_secs(5))
}

fn case_request_before_handshake(a: &SocketAddr) -> Outcome {
    let mut s = connect(a);
    let _ = s.write_all(&get_data(1, SEED_NODES[0].0));
    obs(&mut s, Duration::from_secs(5))
}

fn passwd_case(a: &SocketAddr, len: i32, bytes: &[u8]) -> Outcome {
    let mut s = connect(a);
    let _ = s.write_all(&frame(&connect_body(len, bytes)));
    obs(&mut s, Duration::from_secs(5))
}
fn case_passwd_len_huge(a: &SocketAddr) -> Outcome {
    passwd_case(a, 0x7fff_ffff, &[0u8; 16])
}
fn case_passwd_len_past_end(a: &SocketAddr) -> Outcome {
    passwd_case(a, 1000, &[0u8; 16])
}
fn case_passwd_len_minus5(a: &SocketAddr) -> Outcome {
    passwd_case(a, -5, &[])
}
fn case_passwd_len_minus1(a: &SocketAddr) -> Outcome {
    // -1 is jute's null buffer: a legal (if odd) ConnectRequest.
    passwd_case(a, -1, &[])
}

fn case_getdata_truncated_path(a: &SocketAddr) -> Outcome {
    let (mut s, _) = session(a);
    let mut b = Vec::new();
    put_int(&mut b, 9);
    put_int(&mut b, OP_GET_DATA);
    put_int(&mut b, 50); // path length 50, only 5 bytes follow
    b.extend_from_slice(b"/abcd");
    let _ = s.write_all(&frame(&b));
    let mut out = obs(&mut s, Duration::from_secs(3));
    if out.what.ends_with("still open") {
        // Is the connection still usable?
        let ok = s.write_all(&get_data(10, SEED_NODES[1].0)).is_ok()
            && matches!(reply(&mut s), Ok((10, 0, _)));
        out.what.push_str(if ok { " (and still serves)" } else { " (but does not serve)" });
    }
    out
}

fn case_create_truncated_body(a: &SocketAddr) -> Outcome {
    let (mut s, _) = session(a);
    let mut b = Vec::new();
    put_int(&mut b, 11);
    put_int(&mut b, OP_CREATE);
    put_buf(&mut b, b"/bad-input-x");
    put_int(&mut b, 4); // data length 4, then nothing
    let _ = s.write_all(&frame(&b));
    let mut out = obs(&mut s, Duration::from_secs(3));
    if out.what.ends_with("still open") {
        let ok = s.write_all(&get_data(12, SEED_NODES[1].0)).is_ok()
            && matches!(reply(&mut s), Ok((12, 0, _)));
        out.what.push_str(if ok { " (and still serves)" } else { " (but does not serve)" });
    }
    out
}

const CASES: &[(&str, Case)] = &[
    ("garbage 4 KiB as first packet", case_garbage_first),
    ("garbage ConnectRequest (in-range length)", case_garbage_small_len),
    ("length 0x7fffffff", case_len_max),
    ("length -1", case_len_negative),
    ("length maxbuffer+1 after session", case_len_over_max_after_session),
    ("truncated frame, write half closed", case_truncated_then_eof),
    ("truncated frame after session, write half closed", case_truncated_after_session_then_eof),
    ("truncated frame kept open", case_truncated_stays_open),
    ("unknown opcode 9999", case_unknown_opcode),
    ("getData before handshake", case_request_before_handshake),
    ("passwd length 0x7fffffff", case_passwd_len_huge),
    ("passwd length past end", case_passwd_len_past_end),
    ("passwd length -5", case_passwd_len_minus5),
    ("passwd length -1 (null)", case_passwd_len_minus1),
    ("getData with truncated path", case_getdata_truncated_path),
    ("create with truncated body", case_create_truncated_body),
];

fn addr_of(s: &TestServer) -> SocketAddr {
    format!("127.0.0.1:{}", s.port()).parse().unwrap()
}

/// Close times within this much of each other count as the same.
fn same_time(a: Duration, b: Duration, what: &str) -> bool {
    if what.ends_with("still open") {
        return true;
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    // Quick closes (< 2 s) match each other; slow ones (timeouts) must be
    // within 10 s (upstream's expiry buckets are 10 s wide).
    (hi < Duration::from_secs(2)) || (lo >= Duration::from_secs(2) && hi - lo <= Duration::from_secs(11))
}

#[test]
fn bad_input_matches_apache() {
    let apache = ApacheServer::start_standalone("");
    let ours = OurServer::start_standalone("", &[]);
    let (aa, oa) = (addr_of(&apache), addr_of(&ours));
    seed(&aa);
    seed(&oa);
    let only: Option<String> = std::env::var("BAD_INPUT_ONLY").ok();
    let mut diffs = Vec::new();
    let cases: Vec<_> = CASES.iter().filter(|(n, _)| only.as_deref().map_or(true, |o| n.contains(o))).collect();
    // Both servers at once: the slow (timeout) cases then cost their time once.
    for (name, case) in cases {
        let c1 = *case;
        let h = thread::spawn(move || c1(&aa));
        let o = case(&oa);
        let a = h.join().unwrap_or_else(|_| panic!("case {name} panicked against Apache"));
        let same = a.what == o.what && same_time(a.elapsed, o.elapsed, &a.what);
        eprintln!(
            "[{}] {name}\n    apache: {} ({:.1?})\n    ours:   {} ({:.1?})",
            if same { "same" } else { "DIFF" },
            a.what,
            a.elapsed,
            o.what,
            o.elapsed
        );
        if !same {
            diffs.push(name.to_string());
        }
        verify(&aa, name);
        verify(&oa, name);
        let mut a2 = apache.four_letter("ruok");
        let mut o2 = ours.four_letter("ruok");
        a2.truncate(10);
        o2.truncate(10);
        assert_eq!((a2.as_str(), o2.as_str()), ("imok", "imok"), "after {name}");
    }
    assert!(diffs.is_empty(), "outcomes differ from Apache in: {diffs:?}");
}

// --------------------------------------------------------------- flood --

#[derive(Debug)]
#[allow(dead_code)]
struct FloodResult {
    opened: usize,
    kept_open: usize,
    closed_by_server: usize,
}

fn soft_fd_limit() -> usize {
    // /proc/self/limits: "Max open files   <soft>   <hard>   files"
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

fn count_open(conns: &[TcpStream]) -> usize {
    let mut open = 0;
    for s in conns {
        s.set_nonblocking(true).ok();
        let mut b = [0u8; 1];
        if let Err(e) = (&*s).read(&mut b) {
            if e.kind() == ErrorKind::WouldBlock {
                open += 1;
            }
        }
    }
    open
}

fn flood(a: &SocketAddr, target: usize) -> FloodResult {
    flood_paced(a, target, Duration::ZERO)
}

/// A flood with `pace` between connects.
fn flood_paced(a: &SocketAddr, target: usize, pace: Duration) -> FloodResult {
    let mut conns = Vec::new();
    let mut failures = 0;
    while conns.len() < target && failures < 20 {
        thread::sleep(pace);
        match TcpStream::connect_timeout(a, Duration::from_secs(2)) {
            Ok(s) => conns.push(s),
            // Accept queue full: the server is busy rejecting; retry.
            Err(_) => failures += 1,
        }
    }
    let opened = conns.len();
    // Wait until the server has accepted (and dropped) everything: the
    // number of open connections stops changing.
    let mut kept_open = count_open(&conns);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stable = 0;
    while stable < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_secs(1));
        let n = count_open(&conns);
        stable = if n == kept_open { stable + 1 } else { 0 };
        kept_open = n;
    }
    drop(conns);
    FloodResult { opened, kept_open, closed_by_server: opened - kept_open }
}

#[test]
fn connection_flood_matches_apache() {
    let limit = soft_fd_limit();
    // Two floods run one after the other; leave room for the test's own fds.
    // Default 300 connections (under 10 s, before the sessionless expiry sets in): the good client must outlive the flood on both servers
    // without pinging (a 2 000 flood takes ~35 s against Apache here, longer than the
    // 30 s session, and Apache's sessionless expiry then frees every slot).
    // BAD_INPUT_FLOOD=10000 runs the full flood (about 3 minutes against ours).
    let want = std::env::var("BAD_INPUT_FLOOD").ok().and_then(|v| v.parse().ok()).unwrap_or(300usize);
    let target = want.min(limit.saturating_sub(200));
    eprintln!("fd soft limit {limit}; flooding with up to {target} connections");
    let apache = ApacheServer::start_standalone("maxClientCnxns=60");
    let ours = OurServer::start_standalone("maxClientCnxns=60", &[]);
    let mut results = Vec::new();
    for (name, srv) in [("apache", &*apache), ("ours", &*ours)] {
        let a = addr_of(srv);
        seed(&a);
        // The good client connects first and keeps its session.
        let (mut good, _) = session(&a);
        let t = Instant::now();
        let r = flood(&a, target);
        eprintln!("[flood] {name}: {r:?} in {:.1?}", t.elapsed());
        // The existing session still works.
        assert_eq!(good_get(&mut good, 50, SEED_NODES[2].0), SEED_NODES[2].1.as_bytes(), "{name}: old session");
        // After the flood is gone, a new client works (the server needs a
        // moment to notice the closes).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = std::panic::catch_unwind(|| verify(&a, "flood")).is_ok();
            if !ok {
                eprintln!("[flood] {name}: new client not served yet, retrying");
            }
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: no new client after the flood");
            thread::sleep(Duration::from_millis(500));
        }
        results.push((name, r));
    }
    let (a, o) = (&results[0].1, &results[1].1);
    assert!(a.opened >= 250 && o.opened >= 250, "flood too small: {results:?}");
    // Apache's per-IP check races with its selector threads (a connection is
    // counted only once a selector has registered it) and its 10 s sessionless
    // expiry frees slots during a long flood, so it keeps *at least* ~59 open;
    // ours must keep the limit minus the good client, and close the rest.
    // Apache's count depends on timing (see above; under load its selector threads lag
    // further behind its per-IP check): only check that it refused some.
    assert!(a.closed_by_server > 0, "apache closed none: {a:?}");
    assert!((55..=60).contains(&o.kept_open), "ours kept {} open (limit 60, one good client)", o.kept_open);
    assert!(o.closed_by_server >= o.opened - 60, "ours closed too few: {o:?}");
}

/// `zookeeper.maxCnxns`: the total number of client connections, whatever their
/// address (maxClientCnxns off). A flood of 150 past a limit of 40: the good client's
/// session keeps working, the rest are closed at accept as Apache does, and a new
/// client is served once the flood has gone.
#[test]
fn total_connection_limit_matches_apache() {
    const LIMIT: usize = 40;
    let arg = format!("-Dzookeeper.maxCnxns={LIMIT}");
    let apache = ApacheServer::start_standalone_with_jvm_args("maxClientCnxns=0", &[arg.as_str()]);
    let ours = OurServer::start_standalone("maxClientCnxns=0", &[arg.as_str()]);
    let mut results = Vec::new();
    for (name, srv) in [("apache", &*apache), ("ours", &*ours)] {
        let a = addr_of(srv);
        seed(&a);
        let (mut good, _) = session(&a);
        // Paced: Apache counts a connection only once its selector thread has
        // registered it, so an unpaced flood can be accepted whole before any is
        // counted (150 of 150 kept in one CI run). 4 ms apart, the count keeps up.
        let r = flood_paced(&a, 150, Duration::from_millis(4));
        eprintln!("[maxCnxns] {name}: {r:?}");
        assert_eq!(good_get(&mut good, 50, SEED_NODES[2].0), SEED_NODES[2].1.as_bytes(), "{name}: old session");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::panic::catch_unwind(|| verify(&a, "maxcnxns")).is_err() {
            assert!(Instant::now() < deadline, "{name}: no new client after the flood");
            thread::sleep(Duration::from_millis(500));
        }
        results.push((name, r));
    }
    let (a, o) = (&results[0].1, &results[1].1);
    assert!(a.opened >= 140 && o.opened >= 140, "flood too small: {results:?}");
    // Apache counts a connection once a selector thread has registered it, so even a
    // paced flood may get more in the busier the machine is: only check that it
    // refused some.
    assert!(a.closed_by_server > 0, "apache closed none: {a:?}");
    // Ours counts at accept: the limit minus the good client (and seed's, if still
    // closing), exactly.
    assert!((LIMIT - 3..LIMIT).contains(&o.kept_open), "ours kept {} open (limit {LIMIT}, one good client)", o.kept_open);
    let rejected = ours.four_letter("mntr").lines().find_map(|l| l.strip_prefix("zk_connection_rejected\t").map(str::to_owned));
    let rejected: usize = rejected.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no zk_connection_rejected in mntr"));
    assert!(rejected >= o.closed_by_server, "zk_connection_rejected {rejected} < {} closed", o.closed_by_server);
    assert!(ours.log_contents().contains(&format!("maxCnxns configured value is {LIMIT}.")), "upstream's log line");
}
