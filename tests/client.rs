//! Our client library (`zookeeper::client::ZooKeeper`) against Apache 3.8 and against
//! our server: the same scenario on both, transcripts equal and as upstream documents.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ApacheServer, OurServer, TestServer};
use zookeeper::client::zookeeper::ops;
use zookeeper::client::{WatchedEvent, Watcher, ZooKeeper};
use zookeeper::proto::multi::OpResult;
use zookeeper::proto::{ids, CreateMode};

fn recorder() -> (Watcher, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let w: Watcher = Arc::new(move |e: &WatchedEvent| l.lock().unwrap().push(e.to_string()));
    (w, log)
}

fn wait_connected(zk: &ZooKeeper) {
    let end = Instant::now() + Duration::from_secs(15);
    while !zk.state().is_connected() {
        assert!(Instant::now() < end, "client did not connect");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(log: &Arc<Mutex<Vec<String>>>, n: usize) {
    let end = Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < n && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn scenario(srv: &mut TestServer) -> Vec<String> {
    let mut out = Vec::new();
    let open = ids::open_acl_unsafe();
    let (default_w, default_log) = recorder();
    let zk = ZooKeeper::connect(&srv.connect_string(), 30000, Some(default_w)).expect("connect");
    wait_connected(&zk);
    // The state flips before the EventThread has delivered SyncConnected: wait for it.
    wait_for(&default_log, 1);
    out.push(format!("default: {:?}", default_log.lock().unwrap()));
    out.push(format!("create /a: {:?}", zk.create("/a", Some(b"1"), &open, CreateMode::Persistent)));
    out.push(format!("create /a again: {}", zk.create("/a", None, &open, CreateMode::Persistent).unwrap_err()));
    out.push(format!("seq: {:?}", zk.create("/a/s-", None, &open, CreateMode::PersistentSequential)));
    out.push(format!("seq: {:?}", zk.create("/a/s-", None, &open, CreateMode::PersistentSequential)));
    out.push(format!("eph: {:?}", zk.create("/e", Some(b""), &open, CreateMode::Ephemeral)));
    let (data, stat) = zk.get_data("/a", None).expect("get");
    out.push(format!("get /a: {data:?} version {} children {}", stat.version, stat.num_children));
    out.push(format!("get /missing: {}", zk.get_data("/missing", None).unwrap_err()));
    out.push(format!("set bad version: {}", zk.set_data("/a", Some(b"2"), 7).unwrap_err()));
    out.push(format!("exists /missing: {:?}", zk.exists("/missing", None)));
    let mut kids = zk.get_children("/a", None).expect("children");
    kids.sort();
    out.push(format!("children /a: {kids:?}"));
    out.push(format!("delete non-empty: {}", zk.delete("/a", -1).unwrap_err()));
    out.push(format!("bad path: {}", zk.get_data("a/b", None).unwrap_err().code.message()));

    // Watches: one-shot data, child and exists; a persistent-recursive one.
    let (w, log) = recorder();
    zk.get_data("/a", Some(w.clone())).expect("watch data");
    zk.get_children("/a", Some(w.clone())).expect("watch children");
    zk.exists("/b", Some(w.clone())).expect("watch exists");
    let (rw, rlog) = recorder();
    zk.add_watch("/a", rw, 1).expect("addWatch");
    zk.set_data("/a", Some(b"2"), -1).expect("set");
    zk.set_data("/a", Some(b"3"), -1).expect("set again: the one-shot watch must not fire twice");
    zk.create("/a/c", None, &open, CreateMode::Persistent).expect("create child");
    zk.create("/b", None, &open, CreateMode::Persistent).expect("create /b");
    wait_for(&log, 3);
    wait_for(&rlog, 3);
    std::thread::sleep(Duration::from_millis(200));
    out.push(format!("one-shot events: {:?}", log.lock().unwrap()));
    out.push(format!("recursive events: {:?}", rlog.lock().unwrap()));

    // multi: success and failure.
    let ok = zk.multi(vec![ops::create("/m", None, &open, CreateMode::Persistent), ops::set_data("/m", Some(b"x"), 0), ops::check("/a", -1)]);
    out.push(format!("multi ok: {}", ok.map(|r| r.len()).unwrap_or(0)));
    match zk.multi(vec![ops::delete("/m", -1), ops::create("/a", None, &open, CreateMode::Persistent), ops::delete("/b", -1)]) {
        Ok(_) => out.push("multi fail: unexpectedly ok".into()),
        Err((e, results)) => {
            let codes: Vec<i32> = results.iter().map(|r| if let OpResult::Error { err } = r { *err } else { 1 }).collect();
            out.push(format!("multi fail: {e} {codes:?}"));
        }
    }
    out.push(format!("/m still there: {}", zk.exists("/m", None).map(|s| s.is_some()).unwrap_or(false)));

    // Async calls complete in submission order.
    let order = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..2000usize {
        let (o, d) = (order.clone(), done.clone());
        if i % 2 == 0 {
            zk.set_data_async("/a", Some(format!("{i}").as_bytes()), -1, move |r| {
                o.lock().unwrap().push((i, r.is_ok()));
                d.fetch_add(1, Ordering::SeqCst);
            });
        } else {
            zk.get_data_async("/a", move |r| {
                o.lock().unwrap().push((i, r.is_ok()));
                d.fetch_add(1, Ordering::SeqCst);
            });
        }
    }
    let end = Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::SeqCst) < 2000 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = order.lock().unwrap();
    let in_order = o.iter().enumerate().all(|(k, (i, ok))| k == *i && *ok);
    out.push(format!("async: {} done, in order and ok: {in_order}", o.len()));
    drop(o);

    // A watch event caused by a write is delivered before that write's callback (the
    // server sends the notification first; the EventThread keeps the order).
    zk.create("/o", None, &open, CreateMode::Persistent).expect("create /o");
    let seq = Arc::new(Mutex::new(Vec::new()));
    let s1 = seq.clone();
    let ow: Watcher = Arc::new(move |e: &WatchedEvent| s1.lock().unwrap().push(format!("watch {}", e.path.as_deref().unwrap_or(""))));
    zk.get_data("/o", Some(ow)).expect("watch /o");
    let s2 = seq.clone();
    zk.set_data_async("/o", Some(b"x"), -1, move |r| s2.lock().unwrap().push(format!("callback {}", r.is_ok())));
    let end = Instant::now() + Duration::from_secs(10);
    while seq.lock().unwrap().len() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    out.push(format!("event/callback order: {:?}", seq.lock().unwrap()));

    // Chroot: a second handle rooted at /a.
    let zk2 = ZooKeeper::connect(&format!("{}/a", srv.connect_string()), 30000, None).expect("connect chroot");
    wait_connected(&zk2);
    out.push(format!("chroot create: {:?}", zk2.create("/x", None, &open, CreateMode::Persistent)));
    out.push(format!("chroot seen from root: {:?}", zk.exists("/a/x", None).map(|s| s.is_some())));
    zk2.close();

    // The server restarts (both persist): same session, ephemeral kept, the watch set
    // before the restart fires once afterwards.
    let session = zk.session_id();
    let (w2, log2) = recorder();
    zk.get_data("/a/c", Some(w2)).expect("watch before restart");
    srv.restart();
    wait_connected(&zk);
    out.push(format!("same session after restart: {}", zk.session_id() == session));
    out.push(format!("ephemeral kept: {:?}", zk.exists("/e", None).map(|s| s.is_some())));
    zk.set_data("/a/c", Some(b"after"), -1).expect("set after restart");
    wait_for(&log2, 1);
    std::thread::sleep(Duration::from_millis(200));
    out.push(format!("watch across restart: {:?}", log2.lock().unwrap()));
    let states: Vec<String> = default_log.lock().unwrap().clone();
    out.push(format!("default watcher saw: {states:?}"));
    zk.close();
    std::thread::sleep(Duration::from_millis(200));
    out.push(format!("after close: {:?}", default_log.lock().unwrap().last()));
    out
}

#[test]
fn client_against_apache_and_ours() {
    let mut apache = ApacheServer::start_standalone("");
    let a = scenario(&mut apache);
    drop(apache);
    let mut ours = OurServer::start_standalone("", &[]);
    let o = scenario(&mut ours);
    assert_eq!(a, o, "apache vs ours:\n{}", common::line_diff("apache", &a.join("\n"), "ours", &o.join("\n")));
    let expect = [
        "create /a again: KeeperErrorCode = NodeExists for /a",
        "get /missing: KeeperErrorCode = NoNode for /missing",
        "set bad version: KeeperErrorCode = BadVersion for /a",
        "exists /missing: Ok(None)",
        // The server keeps one watch mode per (connection, path): addWatch(/a, recursive)
        // turned this connection's child watch on /a into a recursive one, and recursive
        // watches never get NodeChildrenChanged — so no child event, on Apache as on ours.
        "one-shot events: [\"WatchedEvent state:SyncConnected type:NodeDataChanged path:/a\", \"WatchedEvent state:SyncConnected type:NodeCreated path:/b\"]",
        "recursive events: [\"WatchedEvent state:SyncConnected type:NodeDataChanged path:/a\", \"WatchedEvent state:SyncConnected type:NodeDataChanged path:/a\", \"WatchedEvent state:SyncConnected type:NodeCreated path:/a/c\"]",
        "multi fail: KeeperErrorCode = NodeExists [0, -110, -2]",
        "async: 2000 done, in order and ok: true",
        "event/callback order: [\"watch /o\", \"callback true\"]",
        "same session after restart: true",
        // State changes go to every registered watcher too (ZKWatchManager.materialize).
        "watch across restart: [\"WatchedEvent state:Disconnected type:None path:null\", \"WatchedEvent state:SyncConnected type:None path:null\", \"WatchedEvent state:SyncConnected type:NodeDataChanged path:/a/c\"]",
        "after close: Some(\"WatchedEvent state:Closed type:None path:null\")",
    ];
    for e in expect {
        assert!(o.iter().any(|l| l == e), "missing line {e:?} in:\n{}", o.join("\n"));
    }
}
