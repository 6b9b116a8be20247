//! Our client against a 3-node Apache 3.8 ensemble: the node it is connected to is
//! killed under a stream of writes; the client moves to another node within the session
//! timeout, keeps its session and ephemerals, and its watches fire exactly once. Then a
//! session that outlives its timeout is reported Expired and calls fail fast.

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{apache_classpath, four_letter_word, free_port, require_apache, spawn_guarded};
use zookeeper::client::{States, WatchedEvent, Watcher, ZooKeeper};
use zookeeper::proto::{ids, CreateMode, Code};

struct Node {
    client_port: u16,
    child: Option<Child>,
    cfg: std::path::PathBuf,
    log: std::path::PathBuf,
}

struct Ensemble {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl Ensemble {
    fn start(n: usize) -> Ensemble {
        require_apache();
        let dir = tempfile::Builder::new().prefix("zk-ensemble-").tempdir().expect("tempdir");
        let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (c, q, e))| format!("server.{}=127.0.0.1:{q}:{e};127.0.0.1:{c}\n", i + 1))
            .collect();
        let mut nodes = Vec::new();
        for (i, (c, _, _)) in ports.iter().enumerate() {
            let nd = dir.path().join(format!("node{}", i + 1));
            fs::create_dir_all(nd.join("data")).expect("mkdir");
            fs::write(nd.join("data/myid"), format!("{}\n", i + 1)).expect("myid");
            let cfg = nd.join("zoo.cfg");
            fs::write(
                &cfg,
                format!(
                    "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={c}\nclientPortAddress=127.0.0.1\n\
                     4lw.commands.whitelist=*\nadmin.enableServer=false\nmaxClientCnxns=0\nstandaloneEnabled=false\n\
                     reconfigEnabled=false\n{servers}",
                    nd.join("data").display()
                ),
            )
            .expect("zoo.cfg");
            nodes.push(Node { client_port: *c, child: None, cfg, log: nd.join("log") });
        }
        let mut e = Ensemble { _dir: dir, nodes };
        for i in 0..n {
            e.launch(i);
        }
        e.wait_serving(Duration::from_secs(60));
        e
    }

    fn launch(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = fs::File::create(&node.log).expect("log");
        let mut cmd = Command::new("/usr/bin/java");
        cmd.args(["-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-Djava.net.preferIPv4Stack=true"])
            .arg("-Dorg.slf4j.simpleLogger.logFile=System.out")
            .arg("-cp")
            .arg(apache_classpath())
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&node.cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log);
        node.child = Some(spawn_guarded(cmd).expect("start java"));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn mode(&self, i: usize) -> String {
        let addr = format!("127.0.0.1:{}", self.nodes[i].client_port);
        four_letter_word(&addr, "srvr", Duration::from_secs(2))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("Mode: ")).map(|l| l[6..].to_owned()))
            .unwrap_or_else(|| "down".into())
    }

    fn wait_serving(&self, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let modes: Vec<String> = (0..self.nodes.len()).filter(|i| self.nodes[*i].child.is_some()).map(|i| self.mode(i)).collect();
            if modes.iter().all(|m| m == "leader" || m == "follower") {
                return;
            }
            if Instant::now() > end {
                let logs: Vec<String> = self.nodes.iter().map(|n| fs::read_to_string(&n.log).unwrap_or_default()).collect();
                panic!("ensemble not serving: {modes:?}\n{}", logs.join("\n-----\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn connect_string(&self) -> String {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.client_port)).collect::<Vec<_>>().join(",")
    }

    /// The node a session is connected to, from `cons` (its session id in hex).
    fn node_of_session(&self, sid: i64) -> Option<usize> {
        let needle = format!("sid=0x{sid:x}");
        (0..self.nodes.len()).find(|&i| {
            self.nodes[i].child.is_some()
                && four_letter_word(&format!("127.0.0.1:{}", self.nodes[i].client_port), "cons", Duration::from_secs(2))
                    .map(|s| s.contains(&needle))
                    .unwrap_or(false)
        })
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn recorder() -> (Watcher, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    (Arc::new(move |e: &WatchedEvent| { if let Ok(mut v) = l.lock() { v.push(e.to_string()) } }), log)
}

#[test]
fn failover_keeps_session_ephemerals_and_watches() {
    let mut ens = Ensemble::start(3);
    let open = ids::open_acl_unsafe();
    let (dw, states) = recorder();
    let zk = Arc::new(ZooKeeper::connect(&ens.connect_string(), 6000, Some(dw)).expect("connect"));
    let end = Instant::now() + Duration::from_secs(20);
    while !zk.state().is_connected() {
        assert!(Instant::now() < end, "no connection");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sid = zk.session_id();
    zk.create("/eph", Some(b"e"), &open, CreateMode::Ephemeral).expect("ephemeral");
    zk.create("/w", Some(b"0"), &open, CreateMode::Persistent).expect("create /w");
    let (w, events) = recorder();
    zk.get_data("/w", Some(w)).expect("watch");

    // A stream of writes from another thread, counting acknowledged and failed ones.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let losses = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (zk, stop, acked, losses) = (zk.clone(), stop.clone(), acked.clone(), losses.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                match zk.create("/s-", Some(format!("{i}").as_bytes()), &ids::open_acl_unsafe(), CreateMode::PersistentSequential) {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        assert!(matches!(e.code, Code::ConnectionLoss | Code::SessionMoved), "unexpected error {e}");
                        losses.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let victim = ens.node_of_session(sid).expect("session not found on any node");
    ens.kill(victim);
    let killed_at = Instant::now();
    // Reconnected within the session timeout, to another node.
    let mut reconnected = None;
    while killed_at.elapsed() < Duration::from_secs(6) {
        if zk.state().is_connected() && ens.node_of_session(sid).is_some_and(|n| n != victim) {
            reconnected = Some(killed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reconnected = reconnected.unwrap_or_else(|| panic!("no reconnect within the session timeout; states {:?}", states.lock().unwrap()));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    assert_eq!(zk.session_id(), sid, "session changed");
    assert!(zk.exists("/eph", None).expect("exists").is_some(), "ephemeral lost");
    assert!(acked.load(Ordering::SeqCst) > 10, "too few writes acknowledged");
    // Every acknowledged write is there.
    let kids = zk.get_children("/", None).expect("children");
    let seq = kids.iter().filter(|k| k.starts_with("s-")).count();
    assert!(seq >= acked.load(Ordering::SeqCst), "{seq} sequential nodes for {} acknowledged", acked.load(Ordering::SeqCst));
    // The watch set before the failover fires exactly once.
    zk.set_data("/w", Some(b"1"), -1).expect("set");
    zk.set_data("/w", Some(b"2"), -1).expect("set again");
    std::thread::sleep(Duration::from_millis(500));
    let evs: Vec<String> = events.lock().unwrap().iter().filter(|e| !e.contains("type:None")).cloned().collect();
    assert_eq!(evs, vec!["WatchedEvent state:SyncConnected type:NodeDataChanged path:/w".to_string()]);
    let st = states.lock().unwrap().clone();
    assert!(st.iter().any(|s| s.contains("Disconnected")) && st.last().is_some_and(|s| s.contains("SyncConnected")), "{st:?}");
    eprintln!(
        "[failover] reconnected after {reconnected:?}; {} writes acknowledged, {} failed with ConnectionLoss",
        acked.load(Ordering::SeqCst),
        losses.load(Ordering::SeqCst)
    );

    // Expiry: the session is closed behind the client's back (a second handle resumes
    // it with the id and password, then closes it — the usual way to expire a session in
    // tests); the client learns Expired when it reconnects, then fails fast.
    let killer = ZooKeeper::connect_with(&ens.connect_string(), 6000, None, Some((sid, zk.session_passwd())), false).expect("killer");
    let end = Instant::now() + Duration::from_secs(20);
    while !killer.state().is_connected() {
        assert!(Instant::now() < end, "killer did not connect");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(killer.session_id(), sid);
    killer.close();
    let end = Instant::now() + Duration::from_secs(30);
    while zk.state().is_alive() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(zk.state(), States::Closed, "states seen: {:?}", states.lock().unwrap());
    assert!(states.lock().unwrap().iter().any(|s| s.contains("state:Expired")), "{:?}", states.lock().unwrap());
    let t = Instant::now();
    let err = zk.get_data("/w", None).unwrap_err();
    assert_eq!(err.code, Code::SessionExpired);
    assert!(t.elapsed() < Duration::from_millis(100), "did not fail fast");
}
