//! Containers, TTL nodes and session expiry, side by side with Apache 3.8: the same
//! scenario runs against both servers and the observed outcomes must be equal (and be
//! what upstream documents, so the test cannot pass on two equally broken servers).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::time::{Duration, Instant};

use common::{ApacheServer, OurServer};
use raw_client::RawClient;
use zookeeper::proto::proto::*;
use zookeeper::proto::{event_type, ids, op_code};

const FAST_CHECK: &str = "-Dznode.container.checkIntervalMs=100";

fn exists(c: &mut RawClient, path: &str, watch: bool) -> i32 {
    let (h, _) = c.call_rec(op_code::EXISTS, &ExistsRequest { path: path.into(), watch }).expect("exists");
    h.err
}

fn create(c: &mut RawClient, op: i32, path: &str, flags: i32, ttl: Option<i64>) -> i32 {
    let (h, _) = match ttl {
        Some(ttl) => c.call_rec(
            op,
            &CreateTTLRequest { path: path.into(), data: Some(b"x".to_vec()), acl: ids::open_acl_unsafe(), flags, ttl },
        ),
        None => c.call_rec(op, &CreateRequest { path: path.into(), data: Some(b"x".to_vec()), acl: ids::open_acl_unsafe(), flags }),
    }
    .expect("create");
    h.err
}

/// Polls until `path` is gone (true) or `limit` passes (false).
fn gone_within(c: &mut RawClient, path: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if exists(c, path, false) == -101 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn scenario(addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut c = RawClient::connect(addr).expect("connect");
    // A container is removed once it had a child and is empty again.
    out.push(format!("create /c: {}", create(&mut c, op_code::CREATE_CONTAINER, "/c", 4, None)));
    out.push(format!("create /c/x: {}", create(&mut c, op_code::CREATE, "/c/x", 0, None)));
    out.push(format!("create /fresh: {}", create(&mut c, op_code::CREATE_CONTAINER, "/fresh", 4, None)));
    let (h, _) = c.call_rec(op_code::DELETE, &DeleteRequest { path: "/c/x".into(), version: -1 }).expect("delete");
    out.push(format!("delete /c/x: {}", h.err));
    out.push(format!("/c removed: {}", gone_within(&mut c, "/c", Duration::from_secs(10))));
    // A TTL node is removed once its TTL passed without a change; a long TTL stays.
    out.push(format!("createTTL /t: {}", create(&mut c, op_code::CREATE_TTL, "/t", 5, Some(300))));
    out.push(format!("createTTL /long: {}", create(&mut c, op_code::CREATE_TTL, "/long", 5, Some(600_000))));
    out.push(format!("/t removed: {}", gone_within(&mut c, "/t", Duration::from_secs(10))));
    std::thread::sleep(Duration::from_millis(500));
    out.push(format!("/fresh still there: {}", exists(&mut c, "/fresh", false) == 0));
    out.push(format!("/long still there: {}", exists(&mut c, "/long", false) == 0));

    // Session expiry: a session that stops talking loses its ephemerals, and a watcher
    // hears NodeDeleted.
    let mut dying = RawClient::connect_with(addr, 4000, Duration::from_secs(10)).expect("connect");
    out.push(format!("create /eph: {}", create(&mut dying, op_code::CREATE, "/eph", 1, None)));
    out.push(format!("watch /eph: {}", exists(&mut c, "/eph", true)));
    let start = Instant::now();
    let mut deleted = false;
    while start.elapsed() < Duration::from_secs(15) && !deleted {
        let _ = c.ping();
        deleted = c.take_events().iter().any(|e| e.r#type == event_type::NODE_DELETED && e.path == "/eph");
        std::thread::sleep(Duration::from_millis(100));
    }
    let waited = start.elapsed();
    out.push(format!("NodeDeleted /eph after expiry: {deleted}"));
    // Negotiated 4000 ms (2 x tickTime); expiry is bucketed by tickTime, so it lands
    // between the timeout and timeout + 2 ticks.
    out.push(format!("expired in time window: {}", waited >= Duration::from_millis(3000) && waited < Duration::from_millis(9000)));
    out.push(format!("/eph: {}", exists(&mut c, "/eph", false)));
    drop(dying);
    out
}

#[test]
fn containers_ttl_and_expiry_match_apache() {
    let cfg = "tickTime=2000\nextendedTypesEnabled=true\n";
    let apache = ApacheServer::start_standalone_with_jvm_args(cfg, &[FAST_CHECK]);
    let a = scenario(&apache.connect_string());
    drop(apache);
    let ours = OurServer::start_standalone(cfg, &[FAST_CHECK]);
    let o = scenario(&ours.connect_string());
    assert_eq!(a, o, "apache vs ours:\n{}", common::line_diff("apache", &a.join("\n"), "ours", &o.join("\n")));
    let expected = [
        "create /c: 0",
        "create /c/x: 0",
        "create /fresh: 0",
        "delete /c/x: 0",
        "/c removed: true",
        "createTTL /t: 0",
        "createTTL /long: 0",
        "/t removed: true",
        "/fresh still there: true",
        "/long still there: true",
        "create /eph: 0",
        "watch /eph: 0",
        "NodeDeleted /eph after expiry: true",
        "expired in time window: true",
        "/eph: -101",
    ];
    assert_eq!(o, expected);
}
