//! Side-by-side benchmark: Apache ZooKeeper 3.8.0 standalone vs our `zk-server`
//! (the release build), on the same machine, in one run.
//!
//! Run with
//!
//! ```sh
//! cargo bench --bench standalone_compare -- [--quick] [--rounds N] [--secs S]
//!     [--warmup S] [--nodes N] [--conns N] [--depth N] [--perf DIR]
//! ```
//!
//! What it does (see docs/benchmarks.md for the write-up):
//!
//! 1. starts three servers on free loopback ports with the same zoo.cfg:
//!    * `apache`        — Apache 3.8.0 `ZooKeeperServerMain`, default durability
//!      (fsync of the txn log on every commit batch),
//!    * `apache-nosync` — the same with `forceSync=no` (no fsync: the fairer
//!      comparison for writes, since our server does not persist yet),
//!    * `ours`          — `zk-server` from this crate;
//! 2. creates `--nodes` (default 100 000) nodes of 100 bytes under `/bench` on each
//!    (pipelined), and reads each server's VmRSS ("idle" RSS);
//! 3. warm-up (get and set) on each server, then `--rounds` rounds of a timed get
//!    run (getData, 100 bytes) alternating apache / ours, then rounds of a timed set
//!    run (setData, 100 bytes) alternating apache / apache-nosync / ours; every run
//!    uses fresh sessions: `--conns` connections × `--depth` outstanding requests;
//! 4. reads VmRSS again, prints the table, medians, ratios ours/Apache and a one-line
//!    JSON summary; kills all servers (also on panic, and via PR_SET_PDEATHSIG if
//!    this process is killed).
//!
//! `--perf DIR` additionally records `perf record` profiles of our server during one
//! extra get run and one extra set run (not counted in the table) and prints the top
//! symbols (`ZKRS_BENCH_PERF_ARGS` overrides the default `-F 999`).
//!
//! The client is a raw-protocol load generator (one OS thread per connection that keeps
//! `depth` requests in flight: it reads whatever replies have arrived, then writes as
//! many new requests in one write), built on the crate's jute records.

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use zookeeper::jute::{InputArchive, OutputArchive, Record};
use zookeeper::proto::proto::{
    ConnectRequest, ConnectResponse, CreateRequest, GetDataRequest, GetDataResponse, ReplyHeader,
    RequestHeader, SetDataRequest,
};
use zookeeper::proto::{ids, op_code};

// ------------------------------------------------------------ settings --

const JAVA: &str = "/usr/bin/java";
const APACHE_CP: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:\
/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar";
const APACHE_MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
/// JVM flags of the Apache servers (a typical production-ish setting for a 2 GB heap).
const APACHE_JVM_FLAGS: &[&str] = &["-server", "-Xmx2g", "-XX:+UseParallelGC", "-Djava.net.preferIPv4Stack=true"];
const DATA_LEN: usize = 100;
const LOOPBACK: &str = "127.0.0.1";

#[derive(Clone, Debug)]
struct Opts {
    quick: bool,
    rounds: usize,
    secs: f64,
    warmup: f64,
    nodes: usize,
    conns: usize,
    depth: usize,
    perf: Option<PathBuf>,
}

fn parse_opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it. Then it is a smoke run (seconds, a small tree) so the benchmark cannot rot in
    // CI; it measures nothing worth reporting.
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = smoke || args.iter().any(|a| a == "--quick");
    let mut o = Opts {
        quick,
        rounds: if smoke { 1 } else if quick { 3 } else { 5 },
        secs: if smoke { 1.0 } else if quick { 3.0 } else { 10.0 },
        warmup: if smoke { 0.5 } else if quick { 2.0 } else { 5.0 },
        nodes: if smoke { 2_000 } else { 100_000 },
        conns: 8,
        depth: 32,
        perf: None,
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let val = |i: usize| -> &str {
            args.get(i + 1).map(|s| s.as_str()).unwrap_or_else(|| panic!("{a} needs a value"))
        };
        match a {
            "--rounds" => o.rounds = val(i).parse().expect("--rounds N"),
            "--secs" => o.secs = val(i).parse().expect("--secs S"),
            "--warmup" => o.warmup = val(i).parse().expect("--warmup S"),
            "--nodes" => o.nodes = val(i).parse().expect("--nodes N"),
            "--conns" => o.conns = val(i).parse().expect("--conns N"),
            "--depth" => o.depth = val(i).parse().expect("--depth N"),
            "--perf" => o.perf = Some(PathBuf::from(val(i))),
            // `cargo bench` passes `--bench`; libtest-style filters are ignored too.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(o.rounds >= 1 && o.conns >= 1 && o.depth >= 1 && o.nodes >= 1 && o.secs > 0.0);
    o
}

// ------------------------------------------------------------- servers --

extern "C" {
    fn prctl(option: i32, ...) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const PR_SET_PDEATHSIG: i32 = 1;
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Apache,
    Ours,
}

/// A server process; killed (SIGKILL) and reaped on drop, so also on panic.
struct Server {
    name: &'static str,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    fn addr(&self) -> SocketAddr {
        format!("{LOOPBACK}:{}", self.port).parse().unwrap()
    }
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
    /// Panics (with the log) if the process has exited.
    fn check_alive(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                panic!("{} server exited with {st}; log tail:\n{}", self.name, self.log_tail());
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind((LOOPBACK, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn zoo_cfg(data_dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "tickTime=2000\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress={LOOPBACK}\n\
         maxClientCnxns=0\n\
         4lw.commands.whitelist=*\n\
         admin.enableServer=false\n\
         {extra}",
        data_dir.display()
    )
}

/// The command line a server of `kind` is started with (printed in the report).
fn server_command(kind: Kind, cfg: &Path, dir: &Path) -> Command {
    match kind {
        Kind::Apache => {
            let mut c = Command::new(JAVA);
            c.args(APACHE_JVM_FLAGS)
                .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
                .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                .arg("-Dorg.slf4j.simpleLogger.logFile=System.out")
                .arg("-cp")
                .arg(APACHE_CP)
                .arg(APACHE_MAIN)
                .arg(cfg);
            c
        }
        Kind::Ours => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_zk-server"));
            c.env("RUST_LOG", "warn").arg(cfg);
            c
        }
    }
}

fn start_server(name: &'static str, kind: Kind, extra_cfg: &str) -> Server {
    let mut last = String::new();
    for _attempt in 0..3 {
        let dir = tempfile::Builder::new().prefix(&format!("zkbench-{name}-")).tempdir().expect("tempdir");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        let port = free_port();
        let cfg = dir.path().join("zoo.cfg");
        fs::write(&cfg, zoo_cfg(&data, port, extra_cfg)).unwrap();
        let log = dir.path().join("server.log");
        let logf = fs::File::create(&log).unwrap();
        let mut cmd = server_command(kind, &cfg, dir.path());
        cmd.current_dir(dir.path()).stdin(Stdio::null()).stdout(logf.try_clone().unwrap()).stderr(logf);
        unsafe {
            // Servers die with this process even if it is SIGKILLed. PDEATHSIG is tied to
            // the forking thread: all servers are started from the main thread.
            cmd.pre_exec(|| {
                if prctl(PR_SET_PDEATHSIG, SIGKILL as std::ffi::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut srv = Server { name, child: Some(child), port, dir, log };
        match wait_ready(&mut srv, Duration::from_secs(90)) {
            Ok(()) => return srv,
            Err(why) => {
                last = format!("{why}\n{}", srv.log_tail());
                if last.contains("Address already in use") || last.contains("AddrInUse") {
                    continue;
                }
                panic!("{name} did not start: {last}");
            }
        }
    }
    panic!("{name} did not start after 3 attempts: {last}");
}

fn four_letter_word(addr: SocketAddr, word: &str, timeout: Duration) -> io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(word.as_bytes())?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn wait_ready(srv: &mut Server, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(c) = srv.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                return Err(format!("exited early with {st}"));
            }
        }
        let r = four_letter_word(srv.addr(), "ruok", Duration::from_secs(2));
        if matches!(&r, Ok(s) if s == "imok") {
            let m = four_letter_word(srv.addr(), "srvr", Duration::from_secs(2));
            if matches!(&m, Ok(s) if s.contains("\nMode: ")) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("not ready within {timeout:?} (last ruok answer {r:?})"));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let field = |name: &str| -> u64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// -------------------------------------------------------------- client --

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 4);
    v.extend_from_slice(&(body.len() as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A framed request whose xid (bytes 4..8) is patched per send.
fn request_template<R: Record>(op: i32, rec: &R) -> Vec<u8> {
    let mut out = OutputArchive::new();
    RequestHeader { xid: 0, r#type: op }.serialize(&mut out);
    rec.serialize(&mut out);
    frame(out.as_slice())
}

fn node_path(i: usize) -> String {
    format!("/bench/n{i}")
}

fn payload() -> Vec<u8> {
    (0..DATA_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

fn read_frame(s: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(|e| format!("read: {e}"))?;
    let n = i32::from_be_bytes(len);
    if !(0..=16 << 20).contains(&n) {
        return Err(format!("bad frame length {n}"));
    }
    let mut body = vec![0u8; n as usize];
    s.read_exact(&mut body).map_err(|e| format!("read: {e}"))?;
    Ok(body)
}

/// Connects and does the handshake (ConnectRequest + readOnly=false).
fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    let mut out = OutputArchive::new();
    ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: 30000, session_id: 0, passwd: Some(vec![0; 16]) }
        .serialize(&mut out);
    out.write_bool(false);
    s.write_all(&frame(out.as_slice())).map_err(|e| format!("write: {e}"))?;
    let body = read_frame(&mut s)?;
    let resp = ConnectResponse::from_bytes(&body).map_err(|e| format!("bad ConnectResponse: {e}"))?;
    if resp.time_out <= 0 {
        return Err(format!("session refused: {resp:?}"));
    }
    Ok(s)
}

/// One synchronous request (setup and sanity checks only).
fn call(s: &mut TcpStream, xid: i32, op: i32, body: &[u8]) -> Result<(ReplyHeader, Vec<u8>), String> {
    let mut out = OutputArchive::new();
    RequestHeader { xid, r#type: op }.serialize(&mut out);
    out.write_raw(body);
    s.write_all(&frame(out.as_slice())).map_err(|e| format!("write: {e}"))?;
    loop {
        let b = read_frame(s)?;
        let mut inp = InputArchive::new(&b);
        let h = ReplyHeader::deserialize(&mut inp).map_err(|e| e.to_string())?;
        if h.xid == xid {
            return Ok((h, inp.rest().to_vec()));
        }
    }
}

fn close_session(s: &mut TcpStream, xid: i32) {
    let _ = call(s, xid, op_code::CLOSE_SESSION, &[]);
    let _ = s.shutdown(Shutdown::Both);
}

/// Which templates a connection sends.
#[derive(Clone)]
enum Plan {
    /// Forever (until stopped): index `start`, `start+stride`, ... modulo the table size.
    Cycle { start: usize, stride: usize },
    /// These indices, once each.
    Once(Vec<usize>),
}

#[derive(Default)]
struct ConnResult {
    /// Replies received inside the measured window.
    ops: u64,
    errors: u64,
    first_error: Option<i32>,
    /// Per-reply latency in µs (measured window only).
    lat_us: Vec<u32>,
}

/// One connection keeping `depth` requests in flight. Replies come back in xid order.
fn conn_worker(
    addr: SocketAddr,
    templates: Arc<Vec<Vec<u8>>>,
    plan: Plan,
    depth: usize,
    barrier: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) -> Result<ConnResult, String> {
    let mut s = match connect(addr) {
        Ok(s) => s,
        Err(e) => {
            barrier.wait();
            return Err(e);
        }
    };
    barrier.wait();
    let timed = matches!(plan, Plan::Cycle { .. });
    let n = templates.len();
    let mut k = 0usize; // requests issued so far
    let mut next_index = move || -> Option<usize> {
        let r = match &plan {
            Plan::Cycle { start, stride } => Some((start + k.wrapping_mul(*stride)) % n),
            Plan::Once(v) => v.get(k).copied(),
        };
        k += 1;
        r
    };
    let mut res = ConnResult::default();
    let mut xid: i32 = 1;
    let mut inflight: VecDeque<(i32, Instant)> = VecDeque::with_capacity(depth);
    let mut out: Vec<u8> = Vec::with_capacity(depth * 256);
    let mut rbuf = vec![0u8; 256 * 1024];
    let (mut rs, mut re) = (0usize, 0usize);
    let mut exhausted = false;

    macro_rules! issue {
        ($count:expr) => {
            issue_requests($count, &mut out, &mut inflight, &mut xid, &mut exhausted, &mut next_index, &templates, &mut s)
        };
    }

    issue!(depth)?;
    let mut stopped = false;
    loop {
        if inflight.is_empty() {
            break;
        }
        if re == rbuf.len() {
            if rs > 0 {
                rbuf.copy_within(rs..re, 0);
                re -= rs;
                rs = 0;
            } else {
                rbuf.resize(rbuf.len() * 2, 0);
            }
        }
        let got = match s.read(&mut rbuf[re..]) {
            Ok(0) => return Err(format!("{addr}: connection closed by server")),
            Ok(g) => g,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{addr}: read: {e}")),
        };
        re += got;
        let now = Instant::now();
        let measuring = !stopped;
        let mut completed = 0usize;
        while re - rs >= 4 {
            let len = i32::from_be_bytes(rbuf[rs..rs + 4].try_into().unwrap());
            if len < 16 {
                return Err(format!("{addr}: bad reply frame length {len}"));
            }
            let len = len as usize;
            if re - rs < 4 + len {
                break;
            }
            let h = ReplyHeader::deserialize(&mut InputArchive::new(&rbuf[rs + 4..rs + 4 + len]))
                .map_err(|e| format!("bad ReplyHeader: {e}"))?;
            rs += 4 + len;
            if h.xid < 0 {
                continue; // notification / ping: not expected, not counted
            }
            let (want, sent) = inflight.pop_front().ok_or_else(|| format!("unsolicited reply xid {}", h.xid))?;
            if h.xid != want {
                return Err(format!("{addr}: reply xid {} while expecting {want}", h.xid));
            }
            completed += 1;
            if h.err != 0 {
                res.errors += 1;
                res.first_error.get_or_insert(h.err);
            }
            if measuring {
                res.ops += 1;
                res.lat_us.push((now - sent).as_micros().min(u32::MAX as u128) as u32);
            }
        }
        if rs == re {
            rs = 0;
            re = 0;
        }
        if timed && !stopped && stop.load(Ordering::Relaxed) {
            stopped = true;
        }
        if !stopped && !exhausted && completed > 0 {
            issue!(completed)?;
        }
    }
    close_session(&mut s, xid);
    Ok(res)
}

#[allow(clippy::too_many_arguments)]
/// Appends `count` requests (xids patched) to `out` and writes them in one go.
fn issue_requests(
    count: usize,
    out: &mut Vec<u8>,
    inflight: &mut VecDeque<(i32, Instant)>,
    xid: &mut i32,
    exhausted: &mut bool,
    next_index: &mut dyn FnMut() -> Option<usize>,
    templates: &[Vec<u8>],
    w: &mut TcpStream,
) -> Result<(), String> {
    out.clear();
    let now = Instant::now();
    for _ in 0..count {
        match next_index() {
            Some(i) => {
                let t = &templates[i];
                let at = out.len();
                out.extend_from_slice(t);
                out[at + 4..at + 8].copy_from_slice(&xid.to_be_bytes());
                inflight.push_back((*xid, now));
                *xid += 1;
            }
            None => {
                *exhausted = true;
                break;
            }
        }
    }
    if !out.is_empty() {
        w.write_all(out).map_err(|e| format!("write: {e}"))?;
    }
    Ok(())
}

// ------------------------------------------------------------- running --

struct RunResult {
    ops: u64,
    secs: f64,
    errors: u64,
    first_error: Option<i32>,
    p50_us: u32,
    p99_us: u32,
}

impl RunResult {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `conns` connections against `addr`. `secs = Some(d)`: each connection cycles
/// through `templates` (starting at a different offset) for `d` seconds; `None`: the
/// templates are split round-robin over the connections and each is sent once.
fn run_load(addr: SocketAddr, templates: &Arc<Vec<Vec<u8>>>, conns: usize, depth: usize, secs: Option<f64>) -> RunResult {
    let n = templates.len();
    let barrier = Arc::new(Barrier::new(conns + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for c in 0..conns {
        let plan = match secs {
            // 7919 is prime, so the walk visits every node (n = 100 000) in a scattered order.
            Some(_) => Plan::Cycle { start: c * n / conns, stride: if n % 7919 == 0 { 1 } else { 7919 } },
            None => Plan::Once((c..n).step_by(conns).collect()),
        };
        let (t, b, st) = (templates.clone(), barrier.clone(), stop.clone());
        handles.push(
            thread::Builder::new()
                .name(format!("load-{c}"))
                .spawn(move || conn_worker(addr, t, plan, depth, b, st))
                .expect("spawn load thread"),
        );
    }
    barrier.wait();
    let t0 = Instant::now();
    let elapsed = match secs {
        Some(d) => {
            thread::sleep(Duration::from_secs_f64(d));
            let e = t0.elapsed();
            stop.store(true, Ordering::Relaxed);
            e
        }
        None => Duration::ZERO,
    };
    let mut ops = 0;
    let mut errors = 0;
    let mut first_error = None;
    let mut lat = Vec::new();
    for h in handles {
        let r = h.join().expect("load thread panicked").unwrap_or_else(|e| panic!("load generator failed: {e}"));
        ops += r.ops;
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        lat.extend_from_slice(&r.lat_us);
    }
    let elapsed = if secs.is_some() { elapsed } else { t0.elapsed() };
    lat.sort_unstable();
    RunResult {
        ops,
        secs: elapsed.as_secs_f64(),
        errors,
        first_error,
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
    }
}

struct Workload {
    create: Arc<Vec<Vec<u8>>>,
    get: Arc<Vec<Vec<u8>>>,
    set: Arc<Vec<Vec<u8>>>,
}

fn workload(nodes: usize) -> Workload {
    let data = payload();
    let acl = ids::open_acl_unsafe();
    let mut create = Vec::with_capacity(nodes);
    let mut get = Vec::with_capacity(nodes);
    let mut set = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let path = node_path(i);
        create.push(request_template(
            op_code::CREATE,
            &CreateRequest { path: path.clone(), data: Some(data.clone()), acl: acl.clone(), flags: 0 },
        ));
        get.push(request_template(op_code::GET_DATA, &GetDataRequest { path: path.clone(), watch: false }));
        set.push(request_template(op_code::SET_DATA, &SetDataRequest { path, data: Some(data.clone()), version: -1 }));
    }
    Workload { create: Arc::new(create), get: Arc::new(get), set: Arc::new(set) }
}

/// Creates /bench and the nodes; checks one node; returns creates per second.
fn populate(srv: &mut Server, w: &Workload, opts: &Opts) -> f64 {
    let mut s = connect(srv.addr()).unwrap_or_else(|e| panic!("{}: {e}", srv.name));
    let body = CreateRequest { path: "/bench".into(), data: None, acl: ids::open_acl_unsafe(), flags: 0 }.to_bytes();
    let (h, _) = call(&mut s, 1, op_code::CREATE, &body).unwrap();
    assert_eq!(h.err, 0, "{}: create /bench failed", srv.name);
    let r = run_load(srv.addr(), &w.create, opts.conns, opts.depth, None);
    assert_eq!(r.errors, 0, "{}: {} creates failed (first error {:?})", srv.name, r.errors, r.first_error);
    // Sanity: the last node is there with its 100 bytes.
    let last = GetDataRequest { path: node_path(opts.nodes - 1), watch: false }.to_bytes();
    let (h, b) = call(&mut s, 2, op_code::GET_DATA, &last).unwrap();
    assert_eq!(h.err, 0, "{}: getData failed", srv.name);
    let resp = GetDataResponse::from_bytes(&b).unwrap();
    assert_eq!(resp.data.as_deref(), Some(&payload()[..]), "{}: wrong data", srv.name);
    close_session(&mut s, 3);
    srv.check_alive();
    opts.nodes as f64 / r.secs
}

fn timed(srv: &mut Server, templates: &Arc<Vec<Vec<u8>>>, opts: &Opts, secs: f64) -> RunResult {
    let r = run_load(srv.addr(), templates, opts.conns, opts.depth, Some(secs));
    srv.check_alive();
    assert_eq!(r.errors, 0, "{}: {} requests failed (first error {:?})", srv.name, r.errors, r.first_error);
    r
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

// --------------------------------------------------------------- perf --

/// Records a profile of `pid` while `f` runs; prints the top symbols.
fn with_perf<T>(dir: &Path, label: &str, pid: u32, f: impl FnOnce() -> T) -> T {
    fs::create_dir_all(dir).expect("create perf dir");
    let data = dir.join(format!("perf-{label}.data"));
    let extra = std::env::var("ZKRS_BENCH_PERF_ARGS").unwrap_or_else(|_| "-F 999".into());
    let mut cmd = Command::new("perf");
    cmd.arg("record").args(extra.split_whitespace()).arg("-p").arg(pid.to_string()).arg("-o").arg(&data);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("perf not available ({e}); running without a profile");
            return f();
        }
    };
    thread::sleep(Duration::from_millis(500));
    let r = f();
    unsafe {
        kill(child.id() as i32, SIGINT);
    }
    let _ = child.wait();
    let rep = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "--sort", "symbol", "--percent-limit", "0.7", "-i"])
        .arg(&data)
        .output();
    match rep {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let report = dir.join(format!("perf-{label}.txt"));
            let _ = fs::write(&report, text.as_bytes());
            println!("\n-- perf: our server, {label} workload (self time, top symbols; full: {}) --", report.display());
            for l in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty() && l.contains('%')).take(25) {
                println!("{l}");
            }
        }
        Err(e) => eprintln!("perf report failed: {e}"),
    }
    r
}

// --------------------------------------------------------------- main --

/// (files, bytes) under `dir`, recursively.
fn dir_usage(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => {
                    let (f, b) = dir_usage(&e.path());
                    files += f;
                    bytes += b;
                }
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

fn fmt_kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn main() {
    let opts = parse_opts();
    let bin = env!("CARGO_BIN_EXE_zk-server");
    println!("standalone_compare: Apache ZooKeeper 3.8.0 vs zookeeper-rs zk-server");
    println!(
        "  {} rounds x {} s per run, warm-up {} s per op and server, {} nodes x {} B, {} conns x {} outstanding{}",
        opts.rounds,
        opts.secs,
        opts.warmup,
        opts.nodes,
        DATA_LEN,
        opts.conns,
        opts.depth,
        if opts.quick { " (--quick)" } else { "" }
    );
    println!("  ours:   {bin} (RUST_LOG=warn)");
    println!(
        "  apache: {JAVA} {} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp <zookeeper, zookeeper-jute, slf4j-api, slf4j-simple> {APACHE_MAIN}",
        APACHE_JVM_FLAGS.join(" ")
    );
    println!("  zoo.cfg (all): tickTime=2000 dataDir=<tmp> clientPort=<free> clientPortAddress=127.0.0.1 maxClientCnxns=0 4lw.commands.whitelist=* admin.enableServer=false");
    println!("  apache-nosync: the same plus forceSync=no");
    println!(
        "  CAVEAT: Apache fsyncs its txn log on every write batch; our server did not persist when this\n\
         \x20         benchmark was written (no txn log, no snapshots: see the dataDir line at the end).\n\
         \x20         `set` vs `apache` then compares a durable server with a non-durable one;\n\
         \x20         `set` vs `apache-nosync` (forceSync=no) is the fairer row."
    );

    let w = workload(opts.nodes);

    // Start one at a time: JVM start-up is CPU-heavy on a small machine.
    let mut apache = start_server("apache", Kind::Apache, "");
    let mut nosync = start_server("apache-nosync", Kind::Apache, "forceSync=no\n");
    let mut ours = start_server("ours", Kind::Ours, "");
    println!(
        "  servers: apache pid {} port {}, apache-nosync pid {} port {}, ours pid {} port {}",
        apache.pid(),
        apache.port,
        nosync.pid(),
        nosync.port,
        ours.pid(),
        ours.port
    );

    let rss_start = [rss_kib(apache.pid()), rss_kib(nosync.pid()), rss_kib(ours.pid())];

    // ---- populate
    let mut create_rate = [0.0f64; 3];
    for (i, srv) in [&mut apache, &mut nosync, &mut ours].into_iter().enumerate() {
        create_rate[i] = populate(srv, &w, &opts);
        println!("  populated {:<13} {} nodes, {:>9.0} creates/s", srv.name, opts.nodes, create_rate[i]);
    }
    thread::sleep(Duration::from_secs(2));
    let rss_idle = [rss_kib(apache.pid()), rss_kib(nosync.pid()), rss_kib(ours.pid())];

    // ---- warm-up (not measured)
    for srv in [&mut apache, &mut nosync, &mut ours] {
        timed(srv, &w.get, &opts, opts.warmup);
        timed(srv, &w.set, &opts, opts.warmup);
    }

    // ---- get rounds: apache, ours, apache, ours, ...
    let mut get_a = Vec::new();
    let mut get_o = Vec::new();
    for round in 1..=opts.rounds {
        let a = timed(&mut apache, &w.get, &opts, opts.secs);
        let o = timed(&mut ours, &w.get, &opts, opts.secs);
        eprintln!("  get round {round}: apache {:.0}/s, ours {:.0}/s", a.ops_per_sec(), o.ops_per_sec());
        get_a.push(a);
        get_o.push(o);
    }
    // ---- set rounds: apache, apache-nosync, ours, ...
    let mut set_a = Vec::new();
    let mut set_n = Vec::new();
    let mut set_o = Vec::new();
    for round in 1..=opts.rounds {
        let a = timed(&mut apache, &w.set, &opts, opts.secs);
        let n = timed(&mut nosync, &w.set, &opts, opts.secs);
        let o = timed(&mut ours, &w.set, &opts, opts.secs);
        eprintln!(
            "  set round {round}: apache {:.0}/s, apache-nosync {:.0}/s, ours {:.0}/s",
            a.ops_per_sec(),
            n.ops_per_sec(),
            o.ops_per_sec()
        );
        set_a.push(a);
        set_n.push(n);
        set_o.push(o);
    }
    thread::sleep(Duration::from_secs(2));
    let rss_after = [rss_kib(apache.pid()), rss_kib(nosync.pid()), rss_kib(ours.pid())];

    // ---- report
    let rates = |v: &[RunResult]| v.iter().map(|r| r.ops_per_sec()).collect::<Vec<_>>();
    let med = |v: &[RunResult]| median(&rates(v));
    let med_p = |v: &[RunResult], p99: bool| median(&v.iter().map(|r| if p99 { r.p99_us } else { r.p50_us } as f64).collect::<Vec<_>>());

    println!("\n== throughput (ops/s; {} conns x {} outstanding; {} s per run) ==", opts.conns, opts.depth, opts.secs);
    println!("{:<8} {:>14} {:>16} {:>14} {:>10}", "round", "get apache", "", "get ours", "ours/apa");
    for r in 0..opts.rounds {
        println!(
            "{:<8} {:>14.0} {:>16} {:>14.0} {:>10.2}",
            r + 1,
            get_a[r].ops_per_sec(),
            "",
            get_o[r].ops_per_sec(),
            get_o[r].ops_per_sec() / get_a[r].ops_per_sec()
        );
    }
    println!("{:<8} {:>14} {:>16} {:>14} {:>10} {:>14}", "round", "set apache", "set apache-nosync", "set ours", "ours/apa", "ours/nosync");
    for r in 0..opts.rounds {
        println!(
            "{:<8} {:>14.0} {:>16.0} {:>14.0} {:>10.2} {:>14.2}",
            r + 1,
            set_a[r].ops_per_sec(),
            set_n[r].ops_per_sec(),
            set_o[r].ops_per_sec(),
            set_o[r].ops_per_sec() / set_a[r].ops_per_sec(),
            set_o[r].ops_per_sec() / set_n[r].ops_per_sec()
        );
    }

    let (ga, go) = (med(&get_a), med(&get_o));
    let (sa, sn, so) = (med(&set_a), med(&set_n), med(&set_o));
    println!("\n== summary (medians of {} rounds; ratio = ours / Apache) ==", opts.rounds);
    println!("{:<34} {:>12} {:>12} {:>8} {:>22} {:>22}", "metric", "apache", "ours", "ratio", "p50/p99 apache (ms)", "p50/p99 ours (ms)");
    let lat = |v: &[RunResult]| format!("{:.2} / {:.2}", med_p(v, false) / 1000.0, med_p(v, true) / 1000.0);
    println!("{:<34} {:>12.0} {:>12.0} {:>8.2} {:>22} {:>22}", "get ops/s", ga, go, go / ga, lat(&get_a), lat(&get_o));
    println!("{:<34} {:>12.0} {:>12.0} {:>8.2} {:>22} {:>22}", "set ops/s (apache fsync)", sa, so, so / sa, lat(&set_a), lat(&set_o));
    println!("{:<34} {:>12.0} {:>12.0} {:>8.2} {:>22} {:>22}", "set ops/s (apache forceSync=no)", sn, so, so / sn, lat(&set_n), lat(&set_o));
    println!(
        "{:<34} {:>12.0} {:>12.0} {:>8.2}   (single run; apache-nosync {:.0})",
        "create ops/s (populate)",
        create_rate[0],
        create_rate[2],
        create_rate[2] / create_rate[0],
        create_rate[1]
    );
    println!("\n== memory (VmRSS; VmHWM = peak) ==");
    println!("{:<34} {:>12} {:>12} {:>8} {:>14}", "", "apache", "ours", "ratio", "apache-nosync");
    let row = |label: &str, i: usize, v: &[(u64, u64); 3]| {
        let x = if i == 0 { v[0].0 } else { v[0].1 };
        let y = if i == 0 { v[2].0 } else { v[2].1 };
        let z = if i == 0 { v[1].0 } else { v[1].1 };
        println!("{:<34} {:>12} {:>12} {:>8.2} {:>14}", label, fmt_kib(x), fmt_kib(y), y as f64 / x as f64, fmt_kib(z));
    };
    row("RSS at start (empty tree)", 0, &rss_start);
    row(&format!("RSS idle after {} creates", opts.nodes), 0, &rss_idle);
    row("RSS after get/set rounds", 0, &rss_after);
    row("peak RSS (VmHWM) at the end", 1, &rss_after);
    let disk: Vec<(u64, u64)> = [&apache, &nosync, &ours].iter().map(|s| dir_usage(&s.dir.path().join("data"))).collect();
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>14}",
        "dataDir at the end (files / size)",
        format!("{} / {:.0} MiB", disk[0].0, disk[0].1 as f64 / 1048576.0),
        format!("{} / {:.0} MiB", disk[2].0, disk[2].1 as f64 / 1048576.0),
        "",
        format!("{} / {:.0} MiB", disk[1].0, disk[1].1 as f64 / 1048576.0)
    );
    let ours_persists = disk[2].1 > 0;
    if ours_persists {
        println!("NOTE: our server wrote to its dataDir: it persists now; check whether it fsyncs before trusting the caveat below.");
    }
    if ours_persists {
        println!("\nCAVEAT: `apache` fsyncs every write batch (`apache-nosync` does not); ours wrote to its dataDir.");
    } else {
        println!(
            "\nCAVEAT: `apache` fsyncs every write batch; ours does not persist (its dataDir stayed empty):\n\
             compare `set` with the forceSync=no row (which still writes its txn log, without fsync)."
        );
    }
    println!(
        "The client shares the machine's cores with the server under test.\n\
         Apache's RSS includes JVM heap that has not been collected yet (-Xmx2g, ParallelGC)."
    );

    let json = format!(
        "{{\"bench\":\"standalone_compare\",\"quick\":{},\"rounds\":{},\"secs\":{},\"conns\":{},\"depth\":{},\"nodes\":{},\
\"get\":{{\"apache\":{:.0},\"ours\":{:.0},\"ratio\":{:.3},\"p50_us\":[{:.0},{:.0}],\"p99_us\":[{:.0},{:.0}]}},\
\"set_fsync\":{{\"apache\":{:.0},\"ours\":{:.0},\"ratio\":{:.3}}},\
\"set_nosync\":{{\"apache\":{:.0},\"ours\":{:.0},\"ratio\":{:.3}}},\
\"create\":{{\"apache\":{:.0},\"ours\":{:.0}}},\
\"rss_idle_kib\":{{\"apache\":{},\"ours\":{},\"ratio\":{:.3}}},\
\"rss_after_kib\":{{\"apache\":{},\"ours\":{},\"ratio\":{:.3}}},\
\"ours_datadir_bytes\":{},\"caveat\":\"apache fsyncs its txn log; ours persisted {} bytes\"}}",
        opts.quick,
        opts.rounds,
        opts.secs,
        opts.conns,
        opts.depth,
        opts.nodes,
        ga,
        go,
        go / ga,
        med_p(&get_a, false),
        med_p(&get_o, false),
        med_p(&get_a, true),
        med_p(&get_o, true),
        sa,
        so,
        so / sa,
        sn,
        so,
        so / sn,
        create_rate[0],
        create_rate[2],
        rss_idle[0].0,
        rss_idle[2].0,
        rss_idle[2].0 as f64 / rss_idle[0].0 as f64,
        rss_after[0].0,
        rss_after[2].0,
        rss_after[2].0 as f64 / rss_after[0].0 as f64,
        disk[2].1,
        disk[2].1,
    );
    println!("\nJSON {json}");

    // ---- optional profiles of our server (extra runs, not in the table)
    if let Some(dir) = opts.perf.clone() {
        let pid = ours.pid();
        with_perf(&dir, "get", pid, || timed(&mut ours, &w.get, &opts, opts.secs));
        with_perf(&dir, "set", pid, || timed(&mut ours, &w.set, &opts, opts.secs));
    }

    drop(ours);
    drop(nosync);
    drop(apache);
}
