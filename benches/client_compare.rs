//! Our client vs Apache's Java client, both against one Apache 3.8 standalone server:
//! async getData / setData of a 100-byte node with a fixed number of requests in flight
//! (default 32), alternating A B rounds, medians and ratios ours/Java.
//!
//! `cargo bench --bench client_compare [-- --rounds N --secs S --depth N]`; without
//! `--bench` (as `cargo test --all-targets` runs it) it is a short smoke run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use zookeeper::client::ZooKeeper;
use zookeeper::proto::{ids, CreateMode};

const JARS: [&str; 4] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-simple.jar",
];

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(22999)
}

fn ruok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = s.write_all(b"ruok");
    let mut b = String::new();
    let _ = s.read_to_string(&mut b);
    b == "imok"
}

fn ours(connect: &str, op: &str, secs: f64, depth: usize, warmup: f64) -> f64 {
    let zk = ZooKeeper::connect(connect, 30000, None).expect("connect");
    let end = Instant::now() + Duration::from_secs(10);
    while !zk.state().is_connected() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    let data = vec![0u8; 100];
    let _ = zk.create("/clientbench", Some(&data), &ids::open_acl_unsafe(), CreateMode::Persistent);
    let (slot_tx, slot_rx) = bounded::<()>(depth);
    for _ in 0..depth {
        let _ = slot_tx.send(());
    }
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let stop_at = measure_from + Duration::from_secs_f64(secs);
    let mut at_measure: Option<u64> = None;
    loop {
        let now = Instant::now();
        if at_measure.is_none() && now >= measure_from {
            at_measure = Some(done.load(Ordering::Relaxed));
        }
        if now >= stop_at {
            break;
        }
        if slot_rx.recv().is_err() {
            break;
        }
        let (tx, d, e) = (slot_tx.clone(), done.clone(), errors.clone());
        if op == "get" {
            zk.get_data_async("/clientbench", move |r| {
                if r.is_err() {
                    e.fetch_add(1, Ordering::Relaxed);
                }
                d.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(());
            });
        } else {
            zk.set_data_async("/clientbench", Some(&data), -1, move |r| {
                if r.is_err() {
                    e.fetch_add(1, Ordering::Relaxed);
                }
                d.fetch_add(1, Ordering::Relaxed);
                let _ = tx.send(());
            });
        }
    }
    let measured = done.load(Ordering::Relaxed) - at_measure.unwrap_or(0);
    for _ in 0..depth {
        let _ = slot_rx.recv_timeout(Duration::from_secs(10));
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0, "our client saw errors");
    zk.close();
    measured as f64 / secs
}

fn java(classes: &PathBuf, connect: &str, op: &str, secs: f64, depth: usize, warmup: f64) -> f64 {
    let cp = format!("{}:{}", classes.display(), JARS.join(":"));
    let out = Command::new("java")
        .args(["-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", &cp, "ClientBench", connect, op])
        .arg(format!("{secs}"))
        .arg(format!("{depth}"))
        .arg(format!("{warmup}"))
        .output()
        .expect("run java client");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT ")).unwrap_or_else(|| {
        panic!("java client failed: {}\n{}", text, String::from_utf8_lossy(&out.stderr))
    });
    assert!(line.contains("errors=0"), "java client saw errors: {line}");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("ops_per_sec="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = !args.iter().any(|a| a == "--bench");
    let arg = |name: &str, default: f64| -> f64 {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let rounds = arg("--rounds", if smoke { 1.0 } else { 3.0 }) as usize;
    let secs = arg("--secs", if smoke { 1.0 } else { 10.0 });
    let warmup = arg("--warmup", if smoke { 0.5 } else { 3.0 });
    let depth = arg("--depth", 32.0) as usize;

    // Compile the Java load generator.
    let classes = tempfile::tempdir().expect("tempdir");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/java/ClientBench.java");
    let st = Command::new("javac")
        .args(["-cp", &JARS.join(":"), "-d"])
        .arg(classes.path())
        .arg(&src)
        .status()
        .expect("javac");
    assert!(st.success(), "javac failed");
    let classes_dir = classes.path().to_path_buf();

    // One Apache standalone for both clients.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=*\nforceSync=no\n",
            dir.path().join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let server = Command::new("java")
        .args(["-server", "-Xmx2g", "-XX:+UseParallelGC", "-Djava.net.preferIPv4Stack=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", &JARS.join(":"), "org.apache.zookeeper.server.ZooKeeperServerMain"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apache");
    let _server = Killed(server);
    let end = Instant::now() + Duration::from_secs(30);
    while !ruok(port) {
        assert!(Instant::now() < end, "apache did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let connect = format!("127.0.0.1:{port}");
    println!("client_compare: Apache 3.8 standalone (forceSync=no), 1 connection, {depth} async requests in flight, {rounds} x {secs} s");
    let mut json = Vec::new();
    for op in ["get", "set"] {
        let (mut o, mut j) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let jv = java(&classes_dir, &connect, op, secs, depth, warmup);
            let ov = ours(&connect, op, secs, depth, warmup);
            println!("  {op} round {}: java {jv:.0}/s, ours {ov:.0}/s", r + 1);
            j.push(jv);
            o.push(ov);
        }
        let (mj, mo) = (median(j), median(o));
        println!("{op}: java {mj:.0}/s  ours {mo:.0}/s  ratio ours/java {:.2}", mo / mj.max(1.0));
        json.push(format!("\"{op}\":{{\"java\":{mj:.0},\"ours\":{mo:.0},\"ratio\":{:.3}}}", mo / mj.max(1.0)));
    }
    println!("JSON {{\"bench\":\"client_compare\",\"depth\":{depth},\"rounds\":{rounds},\"secs\":{secs},{}}}", json.join(","));
}
