//! The two throttles of upstream's ZooKeeperServer, run side by side against Apache
//! ZooKeeper 3.8 and our server with the same `-D` properties:
//!
//! * the connection throttle (`BlueThrottle`, `zookeeper.connection_throttle_*`): a
//!   burst of connects against a small, slowly refilling token bucket, with BLUE's
//!   drop probability adapting while the bucket is empty;
//! * the RequestThrottler (`zookeeper.request_throttle_*`): clients pipelining writes
//!   past `max_requests`, and a client that pipelines and then disconnects, whose
//!   queued requests must be dropped as stale rather than processed.
//!
//! Figures are printed as `[throttle] apache ... / ours ...` (run with `--nocapture`).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::collections::HashMap;
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl};
use common::{ApacheServer, OurServer, TestServer};
use raw_client::{Handshake, RawClient};
use zookeeper::jute::Record;
use zookeeper::proto::consts::ids;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{ConnectRequest, CreateRequest, GetChildrenRequest, GetChildrenResponse};

fn mntr(s: &TestServer) -> HashMap<String, String> {
    s.four_letter("mntr")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn metric(m: &HashMap<String, String>, key: &str) -> i64 {
    let v = m.get(key).unwrap_or_else(|| panic!("mntr has no {key}"));
    v.parse::<f64>().unwrap_or_else(|e| panic!("{key}={v}: {e}")) as i64
}

// ------------------------------------------------------------------ connections --

const BURST: usize = 200;
const TOKENS: usize = 20;

/// 20 tokens, one more per minute (so none during the burst), BLUE adapting on every
/// millisecond tick by half: once the bucket is empty the drop chance reaches 1.
const CONN_ARGS: [&str; 6] = [
    "-Dzookeeper.connection_throttle_tokens=20",
    "-Dzookeeper.connection_throttle_fill_time=60000",
    "-Dzookeeper.connection_throttle_fill_count=1",
    "-Dzookeeper.connection_throttle_freeze_time=0",
    "-Dzookeeper.connection_throttle_drop_increase=0.5",
    "-Dzookeeper.connection_throttle_drop_decrease=0.5",
];

#[derive(Debug, Default)]
struct Burst {
    accepted: usize,
    rejected: usize,
    other: usize,
    rejected_mntr: i64,
    drop_probability: String,
    elapsed: Duration,
}

fn connect_burst(s: &TestServer) -> Burst {
    let addr = s.connect_string();
    let req = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: 30_000, session_id: 0, passwd: Some(vec![0; 16]) };
    let mut b = Burst::default();
    // Accepted sessions stay open until the end, as a storm of clients would.
    let mut kept = Vec::new();
    let start = Instant::now();
    for _ in 0..BURST {
        match RawClient::handshake(&addr, &req, Duration::from_secs(5)) {
            Ok((c, Handshake::Response(r, _))) if r.time_out > 0 => {
                b.accepted += 1;
                kept.push(c);
            }
            Ok((_, Handshake::Closed)) => b.rejected += 1,
            other => {
                eprintln!("[throttle] unexpected handshake outcome: {:?}", other.map(|(_, h)| h));
                b.other += 1;
            }
        }
    }
    b.elapsed = start.elapsed();
    let m = mntr(s);
    b.rejected_mntr = metric(&m, "zk_connection_rejected");
    b.drop_probability = m.get("zk_connection_drop_probability").cloned().unwrap_or_default();
    b
}

#[test]
fn connection_throttle_rejects_a_burst_like_apache() {
    let apache = ApacheServer::start_standalone_with_jvm_args("", &CONN_ARGS);
    let a = connect_burst(&apache);
    drop(apache);
    let ours = OurServer::start_standalone("", &CONN_ARGS);
    let o = connect_burst(&ours);
    println!(
        "[throttle] connect burst of {BURST}, {TOKENS} tokens: apache accepted {} rejected {} (mntr {}) drop chance {} in {:?} / ours accepted {} rejected {} (mntr {}) drop chance {} in {:?}",
        a.accepted, a.rejected, a.rejected_mntr, a.drop_probability, a.elapsed, o.accepted, o.rejected, o.rejected_mntr, o.drop_probability, o.elapsed
    );
    // Apache is the reference: the bucket admits exactly its tokens, nothing refills.
    assert_eq!((a.accepted, a.rejected, a.other), (TOKENS, BURST - TOKENS, 0), "Apache's own figures: {a:?}");
    assert_eq!((o.accepted, o.rejected, o.other), (a.accepted, a.rejected, 0), "ours vs Apache: {o:?} / {a:?}");
    assert_eq!(o.rejected_mntr, o.rejected as i64, "zk_connection_rejected counts what the clients saw");
    assert_eq!(a.rejected_mntr, a.rejected as i64);
    // BLUE raised the drop chance while the bucket was empty, to its cap.
    assert_eq!(o.drop_probability, a.drop_probability);
    assert_eq!(o.drop_probability, "1.0");
    // Upstream's wording for a rejection (NIOServerCnxn's warning).
    let log = ours.log_contents();
    assert!(
        log.contains("Closing session 0x0") && log.contains("Connection throttle rejected connection"),
        "our log lacks the rejection warning"
    );
}

// --------------------------------------------------------------------- requests --

const MAX_REQUESTS: i64 = 5;
const REQ_ARGS: [&str; 1] = ["-Dzookeeper.request_throttle_max_requests=5"];
const CLIENTS: usize = 3;
const WRITES: usize = 200;

fn create_body(path: &str) -> Vec<u8> {
    CreateRequest { path: path.into(), data: Some(b"x".to_vec()), acl: ids::open_acl_unsafe(), flags: 0 }.to_bytes()
}

/// Each client pipelines all its creates, then reads the replies: every one must come,
/// successful and in order. Returns the elapsed time.
fn pipelined_writers(s: &TestServer, prefix: &str) -> Duration {
    pipelined_writers_at(&s.connect_string(), prefix, CLIENTS, WRITES)
}

fn pipelined_writers_at(addr: &str, prefix: &str, clients: usize, writes: usize) -> Duration {
    let addr = addr.to_owned();
    let mut setup = RawClient::connect(&addr).unwrap_or_else(|e| panic!("connect: {e}"));
    let (h, _) = setup.call(op_code::CREATE, &create_body(prefix)).unwrap_or_else(|e| panic!("create {prefix}: {e}"));
    assert_eq!(h.err, 0, "create {prefix}");
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addr.clone();
            let prefix = prefix.to_owned();
            thread::spawn(move || {
                let mut c = RawClient::connect_with(&addr, 30_000, Duration::from_secs(20)).unwrap_or_else(|e| panic!("connect: {e}"));
                for j in 0..writes {
                    let body = create_body(&format!("{prefix}/c{i}-{j}"));
                    c.send_request(j as i32 + 1, op_code::CREATE, &body).unwrap_or_else(|e| panic!("send {j}: {e}"));
                }
                for j in 0..writes {
                    let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("client {i}: reply {j}: {e}"));
                    assert_eq!(h.xid, j as i32 + 1, "client {i}: replies out of order");
                    assert_eq!(h.err, 0, "client {i}: create {j} failed");
                }
            })
        })
        .collect();
    for w in workers {
        if let Err(e) = w.join() {
            std::panic::resume_unwind(e);
        }
    }
    start.elapsed()
}

/// Pipelines `n` creates, waits for the first reply (the rest are queued behind the
/// throttle by then), and disconnects without closing the session. Returns how many
/// of the creates were made.
fn pipeline_then_vanish(s: &TestServer, prefix: &str, n: usize) -> usize {
    let addr = s.connect_string();
    let mut setup = RawClient::connect(&addr).unwrap_or_else(|e| panic!("connect: {e}"));
    let (h, _) = setup.call(op_code::CREATE, &create_body(prefix)).unwrap_or_else(|e| panic!("create {prefix}: {e}"));
    assert_eq!(h.err, 0);
    // The server reads all of them at once (they are far under globalOutstandingLimit)
    // and the throttler lets max_requests through at a time: most are still queued when
    // the first reply arrives.
    let mut c = RawClient::connect(&addr).unwrap_or_else(|e| panic!("connect: {e}"));
    for j in 0..n {
        c.send_request(j as i32 + 1, op_code::CREATE, &create_body(&format!("{prefix}/n{j}"))).unwrap_or_else(|e| panic!("send {j}: {e}"));
    }
    let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("first reply: {e}"));
    assert_eq!(h.xid, 1);
    // A half-close: the server reads every request up to the FIN, then closes the
    // connection. (A full close with replies unread would reset the connection, and a
    // server may then lose requests it had not read yet: nothing left to drop.)
    let stream = c.into_stream();
    let _ = stream.shutdown(Shutdown::Write);
    thread::sleep(Duration::from_millis(500));
    drop(stream);
    // Whatever the server still does with the queue, it does within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = usize::MAX;
    loop {
        thread::sleep(Duration::from_millis(300));
        let (h, body) = setup
            .call_rec(op_code::GET_CHILDREN, &GetChildrenRequest { path: prefix.into(), watch: false })
            .unwrap_or_else(|e| panic!("getChildren: {e}"));
        assert_eq!(h.err, 0);
        let kids = GetChildrenResponse::from_bytes(&body).unwrap_or_else(|e| panic!("children: {e}")).children.len();
        if kids == last || Instant::now() >= deadline {
            return kids;
        }
        last = kids;
    }
}

#[derive(Debug)]
struct RequestFigures {
    pipelined: Duration,
    wait_count: i64,
    queue_time_cnt: i64,
    queue_time_max: i64,
    stale_created: usize,
    stale_dropped: i64,
}

fn request_throttle_run(s: &TestServer) -> RequestFigures {
    let pipelined = pipelined_writers(s, "/piped");
    let m = mntr(s);
    let wait_count = metric(&m, "zk_request_throttle_wait_count");
    let queue_time_cnt = metric(&m, "zk_cnt_request_throttle_queue_time_ms");
    let queue_time_max = metric(&m, "zk_max_request_throttle_queue_time_ms");
    let stale_created = pipeline_then_vanish(s, "/vanish", 500);
    let stale_dropped = metric(&mntr(s), "zk_stale_requests_dropped");
    RequestFigures { pipelined, wait_count, queue_time_cnt, queue_time_max, stale_created, stale_dropped }
}

#[test]
fn request_throttle_stalls_keeps_order_and_drops_stale_like_apache() {
    let apache = ApacheServer::start_standalone_with_jvm_args("", &REQ_ARGS);
    let a = request_throttle_run(&apache);
    drop(apache);
    let ours = OurServer::start_standalone("", &REQ_ARGS);
    let o = request_throttle_run(&ours);
    println!(
        "[throttle] {CLIENTS}x{WRITES} pipelined creates, max_requests {MAX_REQUESTS}: apache {:?}, {} stalls, queue time cnt {} max {} ms / ours {:?}, {} stalls, queue time cnt {} max {} ms",
        a.pipelined, a.wait_count, a.queue_time_cnt, a.queue_time_max, o.pipelined, o.wait_count, o.queue_time_cnt, o.queue_time_max
    );
    println!(
        "[throttle] 500 pipelined then disconnect: apache created {} stale dropped {} / ours created {} stale dropped {}",
        a.stale_created, a.stale_dropped, o.stale_created, o.stale_dropped
    );
    assert!(a.wait_count > 0, "Apache's throttler never stalled: {a:?}");
    assert!(o.wait_count > 0, "our throttler never stalled: {o:?}");
    // Every request that went through was timed (the setup create, the pipelined ones).
    let total = (CLIENTS * WRITES) as i64;
    assert!(a.queue_time_cnt > total && o.queue_time_cnt > total, "queue time counts {a:?} / {o:?}");
    // Apache drops the queued rest once it has seen the connection close; on a very
    // slow machine it could in principle have processed all 500 by then.
    assert!(a.stale_dropped > 0 || a.stale_created == 500, "Apache neither dropped nor processed the requests: {a:?}");
    assert!(o.stale_dropped > 0, "ours dropped nothing as stale: {o:?}");
    assert!(o.stale_created < 500, "ours processed every request of the closed connection: {o:?}");
    // After the first drop the connection is invalid and the rest go without being
    // counted again: one drop per connection, as Apache.
    assert_eq!(o.stale_dropped, 1, "stale drops per connection");
    if a.stale_dropped > 0 {
        assert_eq!(o.stale_dropped, a.stale_dropped, "stale drops per connection, ours vs Apache");
    }
}

/// The throttler sits in front of every role's first processor: on an ensemble of two
/// of ours and one Apache server (ours the likely leader, having the highest sid), all
/// with max_requests 5, clients pipelining writes to each node (followers forward
/// them, the leader proposes them) get every reply in order, and each node's throttler
/// stalls.
#[test]
fn request_throttle_on_every_role_of_a_mixed_ensemble() {
    let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Ours])
        .ours_arg(REQ_ARGS[0])
        .apache_jvm_arg(REQ_ARGS[0])
        .cfg("maxClientCnxns=0\n");
    let ens = Ensemble::start(spec);
    let leader = ens.wait_for_leader(Duration::from_secs(60));
    ens.wait_for_mode_all(Duration::from_secs(60));
    let sids = ens.sids();
    let workers: Vec<_> = sids
        .iter()
        .map(|&sid| {
            let addr = format!("127.0.0.1:{}", ens.node(sid).client_port());
            thread::spawn(move || pipelined_writers_at(&addr, &format!("/ens{sid}"), 2, 150))
        })
        .collect();
    let elapsed: Vec<Duration> = workers.into_iter().map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
    let mut report = Vec::new();
    for (&sid, took) in sids.iter().zip(&elapsed) {
        let text = ens.node(sid).four_letter("mntr");
        let m: HashMap<String, String> = text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let waits = metric(&m, "zk_request_throttle_wait_count");
        let role = if sid == leader { "leader" } else { "follower" };
        report.push(format!("{:?} {role} {took:?} {waits} stalls", ens.node(sid).imp()));
        assert!(waits > 0, "sid {sid} ({:?} {role}) never stalled", ens.node(sid).imp());
    }
    println!("[throttle] mixed ensemble, 2x150 pipelined creates per node, max_requests {MAX_REQUESTS}: {}", report.join(" / "));
}

/// Threads of this process whose name starts with `prefix` (`/proc/self/task/*/comm`,
/// which holds at most 15 bytes of a name).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
                .filter(|n| n.trim_end().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// Our server in this process, so that its threads can be seen: the throttler runs as
/// upstream's "RequestThrottler" thread, and a shutdown while it holds a queue ends
/// (within zookeeper.request_throttler.shutdownTimeout) with the thread gone.
#[test]
fn in_process_throttler_thread_and_shutdown() {
    use zookeeper::server::zookeeper_server_main::{parse_args, run_from_config};
    use zookeeper::system_properties;
    // The server's log lines show with --nocapture (ZOO_LOG_LEVEL/RUST_LOG, info by default).
    zookeeper::server::zookeeper_server_main::init_logging();
    system_properties::set("zookeeper.request_throttle_max_requests", "2");
    system_properties::set("zookeeper.request_throttler.shutdownTimeout", "3000");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let cfg_path = dir.path().join("zoo.cfg");
    std::fs::create_dir_all(dir.path().join("data")).expect("dataDir");
    std::fs::write(
        &cfg_path,
        format!("tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n", dir.path().join("data").display()),
    )
    .expect("write zoo.cfg");
    let cfg = parse_args(&[cfg_path.display().to_string()]).unwrap_or_else(|(code, e)| panic!("config ({code}): {e}"));
    let mut factory = run_from_config(cfg).unwrap_or_else(|(code, e)| panic!("start ({code}): {e}"));
    assert_eq!(threads_named("RequestThrottle"), 1, "one RequestThrottler thread");

    // A client pipelines writes and reads nothing: the throttler has a queue when the
    // server shuts down.
    let addr = format!("127.0.0.1:{port}");
    let mut c = RawClient::connect(&addr).unwrap_or_else(|e| panic!("connect: {e}"));
    for j in 0..300 {
        c.send_request(j + 1, op_code::CREATE, &create_body(&format!("/s{j}"))).unwrap_or_else(|e| panic!("send {j}: {e}"));
    }
    // The first reply: by then the server has read the pipeline, two at a time go on.
    let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("first reply: {e}"));
    assert_eq!((h.xid, h.err), (1, 0));
    let start = Instant::now();
    factory.shutdown();
    let took = start.elapsed();
    println!("[throttle] in-process shutdown with a queued pipeline: {took:?}");
    assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
    assert_eq!(threads_named("RequestThrottle"), 0, "the RequestThrottler thread is gone");
    drop(c);
}

// ------------------------------------------------------------------ throttled ops --

/// Two requests in process at a time, and a request that queued longer than 50 ms is
/// answered THROTTLEDOP (-127) instead of processed.
const OP_ARGS: [&str; 2] = ["-Dzookeeper.request_throttle_max_requests=2", "-Dzookeeper.throttled_op_wait_time=50"];
/// The same with a 10 ms bound, for a standalone server: two at a time, each create
/// waits for its fsync, and 400 of them never finish within 10 ms on a disk; with 50 ms
/// ours once answered all 400 before any had queued that long (a CI run, fast fsyncs).
const STANDALONE_OP_ARGS: [&str; 2] = ["-Dzookeeper.request_throttle_max_requests=2", "-Dzookeeper.throttled_op_wait_time=10"];
const THROTTLED: i32 = -127;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct OpFigures {
    ok: usize,
    throttled: usize,
}

/// `clients` connections pipeline `writes` creates under `prefix` each; every reply must
/// come, in order, either OK or THROTTLEDOP. Returns the counts of each.
fn throttled_pipelines(addr: &str, prefix: &str, clients: usize, writes: usize) -> OpFigures {
    let mut setup = RawClient::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
    // The setup create may itself be throttled if the queue is busy: retry.
    loop {
        let (h, _) = setup.call(op_code::CREATE, &create_body(prefix)).unwrap_or_else(|e| panic!("create {prefix}: {e}"));
        match h.err {
            0 => break,
            THROTTLED => thread::sleep(Duration::from_millis(20)),
            e => panic!("create {prefix}: {e}"),
        }
    }
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addr.to_owned();
            let prefix = prefix.to_owned();
            thread::spawn(move || {
                let mut c = RawClient::connect_with(&addr, 30_000, Duration::from_secs(20)).unwrap_or_else(|e| panic!("connect: {e}"));
                for j in 0..writes {
                    c.send_request(j as i32 + 1, op_code::CREATE, &create_body(&format!("{prefix}/c{i}-{j}")))
                        .unwrap_or_else(|e| panic!("send {j}: {e}"));
                }
                let mut f = OpFigures::default();
                for j in 0..writes {
                    let (h, _) = c.recv_reply().unwrap_or_else(|e| panic!("client {i}: reply {j}: {e}"));
                    assert_eq!(h.xid, j as i32 + 1, "client {i}: replies out of order");
                    match h.err {
                        0 => f.ok += 1,
                        THROTTLED => f.throttled += 1,
                        e => panic!("client {i}: create {j} failed with {e}"),
                    }
                }
                // The connection still works after its throttled requests.
                let mut body = None;
                for _ in 0..100 {
                    let (h, b) = c
                        .call_rec(op_code::GET_CHILDREN, &GetChildrenRequest { path: prefix.clone(), watch: false })
                        .unwrap_or_else(|e| panic!("client {i}: getChildren: {e}"));
                    if h.err == 0 {
                        body = Some(b);
                        break;
                    }
                    assert_eq!(h.err, THROTTLED, "client {i}: getChildren");
                    thread::sleep(Duration::from_millis(20));
                }
                assert!(body.is_some(), "client {i}: getChildren throttled 100 times in a row");
                f
            })
        })
        .collect();
    let mut total = OpFigures::default();
    for w in workers {
        let f = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        total.ok += f.ok;
        total.throttled += f.throttled;
    }
    total
}

fn children_count(addr: &str, path: &str) -> usize {
    let mut c = RawClient::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
    // A sync first, so that a follower has applied everything its leader committed.
    let _ = c.call(op_code::SYNC, &zookeeper::proto::proto::SyncRequest { path: path.into() }.to_bytes());
    let (h, body) = c
        .call_rec(op_code::GET_CHILDREN, &GetChildrenRequest { path: path.into(), watch: false })
        .unwrap_or_else(|e| panic!("getChildren {path}: {e}"));
    assert_eq!(h.err, 0, "getChildren {path}");
    GetChildrenResponse::from_bytes(&body).unwrap_or_else(|e| panic!("children: {e}")).children.len()
}

fn throttled_ops_run(s: &TestServer) -> (OpFigures, usize, i64) {
    let addr = s.connect_string();
    let f = throttled_pipelines(&addr, "/thr", 4, 100);
    let kids = children_count(&addr, "/thr");
    (f, kids, metric(&mntr(s), "zk_throttled_ops"))
}

/// `zookeeper.throttled_op_wait_time`: a request that waited too long in the
/// throttler's queue is answered THROTTLEDOP in its turn and not applied; the others
/// are, and `throttled_ops` counts the former. Apache 3.8 and ours, same arguments.
#[test]
fn throttled_ops_are_answered_throttled_and_not_applied_like_apache() {
    let apache = ApacheServer::start_standalone_with_jvm_args("", &STANDALONE_OP_ARGS);
    let (a, a_kids, a_metric) = throttled_ops_run(&apache);
    drop(apache);
    let ours = OurServer::start_standalone("", &STANDALONE_OP_ARGS);
    let (o, o_kids, o_metric) = throttled_ops_run(&ours);
    println!(
        "[throttle] 4x100 pipelined creates, max_requests 2, throttled_op_wait_time 10 ms: apache ok {} throttled {} (mntr {a_metric}) / ours ok {} throttled {} (mntr {o_metric})",
        a.ok, a.throttled, o.ok, o.throttled
    );
    for (name, f, kids, m) in [("apache", a, a_kids, a_metric), ("ours", o, o_kids, o_metric)] {
        assert!(f.throttled > 0, "{name}: nothing throttled: {f:?}");
        assert!(f.ok > 0, "{name}: everything throttled: {f:?}");
        assert_eq!(kids, f.ok, "{name}: the znodes are exactly the creates answered OK");
        // The setup create and the getChildren retries may be throttled too.
        assert!(m >= f.throttled as i64, "{name}: zk_throttled_ops {m} < {} throttled replies", f.throttled);
    }
}

/// The same on every role of an ensemble of two of ours and one Apache server (the
/// Apache one, sid 3, most likely leads): a throttled request on a follower is never
/// forwarded to the leader, it passes its CommitProcessor without waiting for a commit,
/// and every node ends with the same tree.
#[test]
fn throttled_ops_on_every_role_of_a_mixed_ensemble() {
    let spec = EnsembleSpec::of(&[Impl::Ours, Impl::Ours, Impl::Apache])
        .ours_arg(OP_ARGS[0])
        .ours_arg(OP_ARGS[1])
        .apache_jvm_arg(OP_ARGS[0])
        .apache_jvm_arg(OP_ARGS[1])
        .cfg("maxClientCnxns=0\n");
    let ens = Ensemble::start(spec);
    let leader = ens.wait_for_leader(Duration::from_secs(60));
    ens.wait_for_mode_all(Duration::from_secs(60));
    let sids = ens.sids();
    let addrs: Vec<String> = sids.iter().map(|&sid| format!("127.0.0.1:{}", ens.node(sid).client_port())).collect();
    let workers: Vec<_> = sids
        .iter()
        .zip(&addrs)
        .map(|(&sid, addr)| {
            let addr = addr.clone();
            thread::spawn(move || throttled_pipelines(&addr, &format!("/ens{sid}"), 2, 100))
        })
        .collect();
    let figures: Vec<OpFigures> = workers.into_iter().map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
    let mut report = Vec::new();
    for (&sid, f) in sids.iter().zip(&figures) {
        let role = if sid == leader { "leader" } else { "follower" };
        let m = metric(&ens.node(sid).four_letter("mntr").lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect(), "zk_throttled_ops");
        report.push(format!("{:?} {role}: ok {} throttled {} (mntr {m})", ens.node(sid).imp(), f.ok, f.throttled));
        assert!(f.ok > 0, "sid {sid}: everything throttled: {f:?}");
        assert!(m >= f.throttled as i64, "sid {sid}: zk_throttled_ops {m} < {}", f.throttled);
        // Every node holds exactly the creates that some node answered OK.
        for addr in &addrs {
            assert_eq!(children_count(addr, &format!("/ens{sid}")), f.ok, "/ens{sid} as seen through {addr}");
        }
    }
    println!("[throttle] mixed ensemble, 2x100 pipelined creates per node, throttled_op_wait_time 50 ms: {}", report.join(" / "));
    let throttled: usize = figures.iter().map(|f| f.throttled).sum();
    assert!(throttled > 0, "nothing throttled anywhere: {figures:?}");
}
