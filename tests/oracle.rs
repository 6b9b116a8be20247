//! zk-oracle, the cross-checking proxy: real client workloads through it with our
//! server as primary and Apache ZooKeeper 3.8 as oracle report no difference; a planted
//! difference between two Apache servers is reported (by the built binary, which also
//! exits 1 with --fail-on-diff); a missing or dying oracle never stops the clients; a
//! client sending garbage is closed while the others are still served.
//!
//! Run: `cargo test --test oracle -- --nocapture` (the report lines are printed).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, run_kazoo, ApacheServer, OurServer};
use raw_client::{Handshake, RawClient};
use zookeeper::client::zookeeper::ops;
use zookeeper::client::{WatchedEvent, Watcher, ZooKeeper};
use zookeeper::jute::Record;
use zookeeper::oracle::{OracleConfig, OracleProxy};
use zookeeper::proto::proto::{CreateRequest, ExistsRequest, ExistsResponse, SetDataRequest, SetWatches};
use zookeeper::proto::{ids, op_code, CreateMode};

const KAZOO_SCRIPT: &str = include_str!("interop/kazoo_transcript.py");

fn proxy(primary: &str, oracle: &str) -> OracleProxy {
    // RUST_LOG=zookeeper::oracle=debug shows the proxy's own log.
    let _ = env_logger::builder().is_test(true).try_init();
    let mut cfg = OracleConfig::new("127.0.0.1:0", primary, oracle);
    // Generous: an Apache oracle on a loaded 2-core CI machine (other tests start JVMs
    // beside it) can stall for seconds; a late reply is still compared within the window.
    cfg.grace = Duration::from_secs(10);
    cfg.stats_interval = None;
    OracleProxy::start(cfg).expect("start the proxy")
}

fn report(p: &OracleProxy) -> String {
    p.report_lines().join("\n")
}

fn wait_connected(zk: &ZooKeeper) {
    let end = Instant::now() + Duration::from_secs(20);
    while !zk.state().is_connected() {
        assert!(Instant::now() < end, "client did not connect through the proxy");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn recorder() -> (Watcher, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let w: Watcher = Arc::new(move |e: &WatchedEvent| l.lock().unwrap().push(e.to_string()));
    (w, log)
}

fn wait_events(log: &Arc<Mutex<Vec<String>>>, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < n {
        assert!(Instant::now() < end, "watch events did not arrive: {:?}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Our client through the proxy: every kind of request the brief lists, with watches.
fn our_client_workload(addr: &str) {
    let open = ids::open_acl_unsafe();
    let zk = ZooKeeper::connect(addr, 30000, None).expect("connect");
    wait_connected(&zk);
    zk.create("/o", Some(b"root"), &open, CreateMode::Persistent).expect("create /o");
    assert!(zk.create("/o", None, &open, CreateMode::Persistent).is_err(), "NodeExists expected");
    for _ in 0..3 {
        zk.create("/o/seq-", Some(b"s"), &open, CreateMode::PersistentSequential).expect("sequential");
    }
    zk.create("/o/eph", Some(b"e"), &open, CreateMode::Ephemeral).expect("ephemeral");
    zk.create("/o/eseq-", None, &open, CreateMode::EphemeralSequential).expect("ephemeral sequential");
    zk.get_data("/o/eph", None).expect("get ephemeral");
    zk.get_data("/o", None).expect("getData");
    assert!(zk.get_data("/o/missing", None).is_err());
    let st = zk.set_data("/o", Some(b"v1"), 0).expect("setData version 0");
    assert_eq!(st.version, 1);
    assert!(zk.set_data("/o", Some(b"v2"), 0).is_err(), "BadVersion expected");
    zk.set_data("/o", Some(b"v2"), -1).expect("setData any version");
    zk.exists("/o", None).expect("exists");
    assert_eq!(zk.exists("/o/none", None).expect("exists missing"), None);
    zk.get_children("/o", None).expect("getChildren");
    zk.get_children2("/", None).expect("getChildren2");
    zk.get_acl("/o").expect("getACL");
    zk.sync("/o").expect("sync");
    // multi: one that commits, one that fails on a version check (rolled back).
    zk.multi(vec![
        ops::create("/o/m1", Some(b"m"), &open, CreateMode::Persistent),
        ops::set_data("/o/m1", Some(b"m2"), 0),
        ops::check("/o", 2),
    ])
    .expect("multi");
    assert!(zk
        .multi(vec![ops::create("/o/m2", None, &open, CreateMode::Persistent), ops::check("/o", 99)])
        .is_err());
    assert!(zk.delete("/o", -1).is_err(), "NotEmpty expected");
    assert!(zk.delete("/o/m1", 5).is_err(), "BadVersion expected");
    zk.delete("/o/m1", 1).expect("delete with version");

    // Watches: data, child, exists (creation) and deletion events.
    let (w, log) = recorder();
    zk.get_data("/o", Some(w.clone())).expect("getData watch");
    zk.get_children("/o", Some(w.clone())).expect("getChildren watch");
    zk.exists("/o/later", Some(w.clone())).expect("exists watch");
    zk.set_data("/o", Some(b"v3"), -1).expect("fire data watch");
    zk.create("/o/later", None, &open, CreateMode::Persistent).expect("fire child+exists watches");
    wait_events(&log, 3);
    zk.exists("/o/later", Some(w.clone())).expect("exists watch on an existing node");
    zk.delete("/o/later", -1).expect("fire the deletion watch");
    wait_events(&log, 4);
    zk.close();
}

/// A raw session dropped without closeSession, resumed on a new proxied connection
/// (the oracle must resume its own session), then SetWatches with the primary's zxid.
fn raw_resume_workload(addr: &str) {
    let mut c = RawClient::connect(addr).expect("raw connect");
    let create = |path: &str, flags: i32| CreateRequest {
        path: path.into(),
        data: Some(b"r".to_vec()),
        acl: ids::open_acl_unsafe(),
        flags,
    };
    let (h, _) = c.call_rec(op_code::CREATE, &create("/r", 0)).expect("create /r");
    assert_eq!(h.err, 0);
    let (h, _) = c.call_rec(op_code::CREATE, &create("/r/eph", 1)).expect("create ephemeral");
    assert_eq!(h.err, 0);
    let last_zxid = h.zxid;
    let (sid, passwd) = (c.session_id, c.passwd.clone());
    drop(c);
    let (mut c2, hs) = RawClient::reconnect(addr, sid, &passwd, 30000).expect("reconnect");
    assert!(matches!(hs, Handshake::Response(ref r, _) if r.session_id == sid), "session not resumed: {hs:?}");
    let (h, body) = c2
        .call_rec(op_code::EXISTS, &ExistsRequest { path: "/r/eph".into(), watch: false })
        .expect("exists ephemeral");
    assert_eq!(h.err, 0);
    let stat = ExistsResponse::from_bytes(&body).expect("stat").stat;
    assert_eq!(stat.ephemeral_owner, sid, "the ephemeral belongs to the resumed session");
    let sw = SetWatches {
        relative_zxid: last_zxid,
        data_watches: vec!["/r".into()],
        exist_watches: vec![],
        child_watches: vec!["/r".into()],
    };
    let (h, _) = c2.call_xid(-8, op_code::SET_WATCHES, &sw.to_bytes()).expect("setWatches");
    assert_eq!(h.err, 0);
    let (h, _) = c2
        .call_rec(op_code::SET_DATA, &SetDataRequest { path: "/r".into(), data: Some(b"x".to_vec()), version: -1 })
        .expect("setData /r");
    assert_eq!(h.err, 0);
    let events = c2.drain_events(Duration::from_secs(2));
    assert_eq!(events.len(), 1, "the watch set by SetWatches fired: {events:?}");
    c2.close_session().expect("closeSession");
}

#[test]
fn mirrored_workload_our_server_vs_apache_has_no_differences() {
    let (ours, apache) = std::thread::scope(|s| {
        let a = s.spawn(|| ApacheServer::start_standalone(""));
        let o = OurServer::start_standalone("", &[]);
        (o, a.join().expect("Apache start"))
    });
    let p = proxy(&ours.connect_string(), &apache.connect_string());
    let addr = p.local_addr().to_string();

    our_client_workload(&addr);
    raw_resume_workload(&addr);
    let k = run_kazoo(KAZOO_SCRIPT, &addr);
    let kout = String::from_utf8_lossy(&k.stdout);
    assert!(k.status.success() && kout.lines().last() == Some("DONE"), "kazoo through the proxy failed:\n{kout}\n{}", String::from_utf8_lossy(&k.stderr));

    assert!(p.wait_idle(Duration::from_secs(30)), "connections still open:\n{}", report(&p));
    let c = p.counters();
    eprintln!("{}\ncounters: {c}", report(&p));
    assert!(p.differences().is_empty(), "differences reported:\n{}", report(&p));
    assert_eq!(c.oracle_unavailable, 0, "{}", report(&p));
    assert_eq!(c.dropped_comparisons, 0);
    assert!(c.connections >= 5, "{c}");
    assert!(c.replies_compared >= 100, "too few comparisons: {c}");
    assert!(c.events_compared >= 8, "too few watch events compared: {c}");
    assert_eq!(c.requests_primary_only, 0, "{c}");
}

/// Starts the zk-oracle binary; returns the child and the address it listens on.
fn start_binary(primary: &str, oracle: &str, report: &Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zk-oracle"))
        .args(["--listen", "127.0.0.1:0", "--primary", primary, "--oracle", oracle])
        .arg("--report")
        .arg(report)
        .args(["--fail-on-diff", "--grace-ms", "10000", "--stats-interval", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn zk-oracle");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line).expect("zk-oracle's first line");
    let addr = line.trim().strip_prefix("zk-oracle listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr = addr.to_owned();
    // Keep reading stdout in the background so the final counters line never blocks.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        eprintln!("[zk-oracle stdout] {rest}");
    });
    (child, addr)
}

#[test]
fn planted_difference_between_two_apache_servers_is_reported_by_the_binary() {
    let (a, b) = std::thread::scope(|s| {
        let b = s.spawn(|| ApacheServer::start_standalone(""));
        (ApacheServer::start_standalone(""), b.join().expect("Apache B start"))
    });
    let open = ids::open_acl_unsafe();
    // The same node with different data on each, and a node only the primary has.
    for (srv, data) in [(&a, &b"primary"[..]), (&b, &b"oracle"[..])] {
        let zk = ZooKeeper::connect(&srv.connect_string(), 30000, None).expect("connect");
        wait_connected(&zk);
        zk.create("/planted", Some(data), &open, CreateMode::Persistent).expect("plant");
        zk.close();
    }
    {
        let zk = ZooKeeper::connect(&a.connect_string(), 30000, None).expect("connect");
        wait_connected(&zk);
        zk.create("/only-primary", None, &open, CreateMode::Persistent).expect("plant");
        zk.close();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let report_path = dir.path().join("oracle.report");
    let (mut child, addr) = start_binary(&a.connect_string(), &b.connect_string(), &report_path);

    let zk = ZooKeeper::connect(&addr, 30000, None).expect("connect through zk-oracle");
    wait_connected(&zk);
    // The client gets the primary's answers, whatever the oracle says.
    assert_eq!(zk.get_data("/planted", None).expect("getData").0.as_deref(), Some(&b"primary"[..]));
    assert!(zk.exists("/only-primary", None).expect("exists").is_some());
    zk.get_data("/planted", None).expect("getData again");
    zk.close();

    // Wait for the comparisons and a periodic COUNTERS line, then SIGTERM.
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let text = std::fs::read_to_string(&report_path).unwrap_or_default();
        if text.contains("path=/only-primary") && text.contains("COUNTERS") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("zk-oracle did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let text = std::fs::read_to_string(&report_path).expect("report file");
    eprintln!("{text}");
    assert_eq!(status.code(), Some(1), "--fail-on-diff with differences exits 1\n{text}");
    let diff_lines: Vec<&str> = text.lines().filter(|l| l.contains(" DIFF ")).collect();
    assert!(
        diff_lines.iter().filter(|l| l.contains("op=getData path=/planted")).count() == 2,
        "both getData /planted differences reported:\n{text}"
    );
    assert!(
        diff_lines.iter().any(|l| l.contains("op=getData path=/planted")
            && l.contains("primary: Ok data=\"primary\"")
            && l.contains("oracle: Ok data=\"oracle\"")),
        "{text}"
    );
    assert!(
        diff_lines.iter().any(|l| l.contains("op=exists path=/only-primary") && l.contains("oracle: NoNode")),
        "{text}"
    );
    assert_eq!(diff_lines.len(), 3, "exactly the planted differences:\n{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains("COUNTERS") && last.contains("differences=3"), "final counters line:\n{text}");
}

#[test]
fn oracle_down_or_dying_never_stops_the_clients() {
    let ours = OurServer::start_standalone("", &[]);
    let open = ids::open_acl_unsafe();

    // 1. No oracle at all: nothing listens on its port.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let p = proxy(&ours.connect_string(), &nowhere);
    let zk = ZooKeeper::connect(&p.local_addr().to_string(), 30000, None).expect("connect");
    wait_connected(&zk);
    zk.create("/down", Some(b"d"), &open, CreateMode::Persistent).expect("served without an oracle");
    assert_eq!(zk.get_data("/down", None).expect("get").0.as_deref(), Some(&b"d"[..]));
    zk.close();
    assert!(p.wait_idle(Duration::from_secs(10)));
    let c = p.counters();
    assert!(report(&p).contains("oracle unavailable: cannot connect"), "{}", report(&p));
    assert!(c.oracle_unavailable >= 1 && c.requests_primary_only >= 2 && c.requests_mirrored == 0, "{c}");
    assert!(p.differences().is_empty(), "{}", report(&p));
    drop(p);

    // 2. The oracle dies in the middle of a session.
    let mut oracle = OurServer::start_standalone("", &[]);
    let p = proxy(&ours.connect_string(), &oracle.connect_string());
    let zk = ZooKeeper::connect(&p.local_addr().to_string(), 30000, None).expect("connect");
    wait_connected(&zk);
    // The fresh oracle has no /down: a difference, but the client gets the primary's node.
    assert_eq!(zk.get_data("/down", None).expect("get").0.as_deref(), Some(&b"d"[..]));
    // Kill the oracle once it has answered (else its death looks like a refusal to
    // answer, which is reported as a difference of that request).
    let end = Instant::now() + Duration::from_secs(10);
    while p.differences().is_empty() {
        assert!(Instant::now() < end, "the missing /down was not reported:\n{}", report(&p));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(p.differences()[0].contains("op=getData path=/down"), "{}", report(&p));
    oracle.kill();
    // Reported once the grace window confirms the primary keeps the connection.
    let end = Instant::now() + Duration::from_secs(30);
    while !report(&p).contains("ORACLE_UNAVAILABLE") {
        assert!(Instant::now() < end, "the oracle's death was not reported:\n{}", report(&p));
        std::thread::sleep(Duration::from_millis(50));
    }
    zk.set_data("/down", Some(b"still served"), -1).expect("served after the oracle died");
    assert_eq!(zk.get_data("/down", None).expect("get").0.as_deref(), Some(&b"still served"[..]));
    zk.close();
    assert!(p.wait_idle(Duration::from_secs(10)));
    eprintln!("{}", report(&p));
    assert!(report(&p).contains("oracle unavailable"), "{}", report(&p));
    assert!(p.counters().requests_primary_only >= 2, "{}", p.counters());
}

/// Reads until the proxy closes the connection; true if it did within 10 s.
fn closed_by_proxy(s: &mut TcpStream) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn garbage_from_one_client_closes_it_and_the_others_are_served() {
    let (primary, oracle) = (OurServer::start_standalone("", &[]), OurServer::start_standalone("", &[]));
    let p = proxy(&primary.connect_string(), &oracle.connect_string());
    let addr = p.local_addr().to_string();
    let open = ids::open_acl_unsafe();
    let zk = ZooKeeper::connect(&addr, 30000, None).expect("connect");
    wait_connected(&zk);
    zk.create("/g", Some(b"1"), &open, CreateMode::Persistent).expect("create");

    // An absurd length word.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3]).expect("write");
    assert!(closed_by_proxy(&mut s), "huge length: not closed");
    // A negative length word.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(&[0xff, 0xff, 0xff, 0xf0]).expect("write");
    assert!(closed_by_proxy(&mut s), "negative length: not closed");
    // A well-framed handshake too short to be a ConnectRequest.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(&frame(&[9; 10])).expect("write");
    assert!(closed_by_proxy(&mut s), "short ConnectRequest: not closed");
    // A valid session, then a frame too short for a request header.
    let (mut c, hs) = RawClient::handshake(
        &addr,
        &zookeeper::proto::proto::ConnectRequest { time_out: 30000, passwd: Some(vec![0; 16]), ..Default::default() },
        Duration::from_secs(10),
    )
    .expect("handshake");
    assert!(matches!(hs, Handshake::Response(..)), "{hs:?}");
    c.send_request(1, op_code::EXISTS, &[]).expect("send a body-less exists");
    let _ = c.recv_reply();
    drop(c);
    let mut s = TcpStream::connect(&addr).expect("connect");
    let cr = zookeeper::proto::proto::ConnectRequest { time_out: 30000, passwd: Some(vec![0; 16]), ..Default::default() };
    s.write_all(&frame(&cr.to_bytes())).expect("handshake");
    s.write_all(&frame(&[1, 2, 3])).expect("write");
    assert!(closed_by_proxy(&mut s), "3-byte request: not closed");
    // A four-letter word is relayed to the primary.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(b"ruok").expect("write");
    let mut answer = String::new();
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.read_to_string(&mut answer);
    assert_eq!(answer, "imok");

    // The well-behaved client was never disturbed, and new ones are still accepted.
    zk.set_data("/g", Some(b"2"), 0).expect("set after the garbage");
    let zk2 = ZooKeeper::connect(&addr, 30000, None).expect("connect");
    wait_connected(&zk2);
    assert_eq!(zk2.get_data("/g", None).expect("get").0.as_deref(), Some(&b"2"[..]));
    zk.close();
    zk2.close();
    assert!(p.wait_idle(Duration::from_secs(15)), "connections left:\n{}", report(&p));
    eprintln!("{}\ncounters: {}", report(&p), p.counters());
    // Both servers are ours here: whatever they did with the body-less exists, they
    // did the same.
    assert!(p.differences().is_empty(), "{}", report(&p));
    assert_eq!(p.counters().oracle_unavailable, 0, "{}", report(&p));
}

#[test]
fn a_pipelining_client_with_a_stalled_oracle_is_served_and_bounded() {
    let (primary, oracle) = (OurServer::start_standalone("", &[]), OurServer::start_standalone("", &[]));
    let _ = env_logger::builder().is_test(true).try_init();
    let mut cfg = OracleConfig::new("127.0.0.1:0", &primary.connect_string(), &oracle.connect_string());
    cfg.grace = Duration::from_secs(10);
    cfg.stats_interval = None;
    cfg.max_pending = 8;
    let p = OracleProxy::start(cfg).expect("start the proxy");
    let addr = p.local_addr().to_string();
    let mut c = RawClient::connect(&addr).expect("connect");
    let (h, _) = c
        .call_rec(op_code::CREATE, &CreateRequest { path: "/p".into(), data: Some(b"p".to_vec()), acl: ids::open_acl_unsafe(), flags: 0 })
        .expect("create /p");
    assert_eq!(h.err, 0);

    // The oracle stops answering; the client pipelines 100 reads. It must get all of
    // them from the primary at once, while the proxy keeps only 8 comparisons pending.
    let pid = oracle.pid().expect("oracle pid") as i32;
    // SAFETY: kill(2) on a child process of this test.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let get = zookeeper::proto::proto::GetDataRequest { path: "/p".into(), watch: false }.to_bytes();
    for i in 0..100 {
        c.send_request(100 + i, op_code::GET_DATA, &get).expect("pipeline");
    }
    for i in 0..100 {
        let (h, _) = c.recv_reply().expect("reply from the primary while the oracle is stalled");
        assert_eq!((h.xid, h.err), (100 + i, 0));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    c.close_session().expect("closeSession");
    assert!(p.wait_idle(Duration::from_secs(30)), "connections left:\n{}", report(&p));
    let counters = p.counters();
    eprintln!("{}\ncounters: {counters}", report(&p));
    assert!(counters.dropped_comparisons >= 80, "the pending map was not bounded: {counters}");
    assert!(counters.replies_compared >= 9, "{counters}");
    assert!(p.differences().is_empty(), "{}", report(&p));
}
