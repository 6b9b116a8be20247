//! Side-by-side benchmark: Apache ZooKeeper 3.8.0 standalone vs our `zk-server`
//! (the release build), on the same machine, in one run.
//!
//! Run with
//!
//! ```sh
//! cargo bench --bench standalone_compare -- [--quick] [--rounds N] [--secs S]
//!     [--warmup S] [--nodes N] [--conns N] [--depth N] [--perf DIR]
//! cargo bench --bench standalone_compare -- --persist [--quick] [--rounds N]
//!     [--restart-nodes N] [--restart-sets N]
//! ```
//!
//! What it does (see docs/benchmarks.md for the write-up):
//!
//! 1. starts three servers on free loopback ports with the same zoo.cfg (the library's
//!    `zookeeper::bench::servers`, as `zk-bench compare`: command lines, zoo.cfg,
//!    readiness, RSS readings, stop / restart):
//!    * `apache`        — Apache 3.8.0 `ZooKeeperServerMain`, default durability
//!      (fsync of the txn log on every commit batch),
//!    * `apache-nosync` — the same with `forceSync=no` (no fsync),
//!    * `ours`          — `zk-server` from this crate (txn log + snapshots, fsync per
//!      commit batch by default; the run checks that it wrote its start-up snapshot and
//!      says whether the set rows compare two durable servers);
//! 2. creates `--nodes` (default 100 000) nodes of 100 bytes under `/bench` on each
//!    (pipelined), and reads each server's VmRSS ("idle" RSS);
//! 3. warm-up (get and set) on each server, then `--rounds` rounds of a timed get
//!    run (getData, 100 bytes) alternating apache / ours, then rounds of a timed set
//!    run (setData, 100 bytes) alternating apache / apache-nosync / ours; every run
//!    uses fresh sessions: `--conns` connections × `--depth` outstanding requests;
//! 4. reads VmRSS again, prints the table, medians, ratios ours/Apache and a one-line
//!    JSON summary; kills all servers (also on an error or panic, and via
//!    PR_SET_PDEATHSIG if this process is killed). On an error the servers' directories
//!    (zoo.cfg, dataDir, logs) are kept and named.
//!
//! `--persist` runs the restart benchmark instead (`persist_main`): `apache` and `ours`
//! only; populate `--restart-nodes` (default 1 000 000) nodes of 100 bytes, wait for the
//! snapshots this triggers (snapCount default 100 000) to finish and read their times
//! from the logs (`Snapshotting: 0x<zxid> to <file>` + `Snapshot taken ... in <n> ms`);
//! then `--rounds` (3; `--quick` 2) rounds, alternating the servers, of SIGTERM, wait
//! for exit, respawn on the same dataDir and time spawn -> `ruok`=`imok`, `srvr` shows a
//! `Mode:` and a new session reads the last node; then one SIGKILL round. Rounds after the
//! first write `--restart-sets` (40 000) setData txns first, so every restart replays
//! a known log tail. The phases (snapshot read, log replay, start-up snapshot) come from
//! the restarted process's log. The smoke run ends with one small SIGTERM restart each.
//!
//! `--perf DIR` additionally records `perf record` profiles of our server during one
//! extra get run and one extra set run (not counted in the table) and prints the top
//! symbols (`ZKRS_BENCH_PERF_ARGS` overrides the default `-F 999`).
//!
//! The load client is a raw-protocol generator (one OS thread per connection that keeps
//! `depth` requests in flight: it reads whatever replies have arrived, then writes as
//! many new requests in one write), built on the crate's jute records and the frames
//! and session handshake of `zookeeper::bench::raw`; its latencies go into the library's
//! HDR histograms (`zookeeper::bench::LatencyHistogram`).

use std::collections::VecDeque;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use zookeeper::bench::compare::{in_work_dir, median, mib};
use zookeeper::bench::raw::{frame, open_session, read_frame, write_frame};
use zookeeper::bench::servers::{four_letter_word, Kind, ManagedServer, ServerExtra, ServerPrograms, DEFAULT_APACHE_JARS_DIR, DEFAULT_JAVA};
use zookeeper::bench::{LatencyHistogram, Percentiles};
use zookeeper::jute::{InputArchive, OutputArchive, Record};
use zookeeper::proto::proto::{CreateRequest, GetDataRequest, GetDataResponse, ReplyHeader, RequestHeader, SetDataRequest};
use zookeeper::proto::{ids, op_code};

// ------------------------------------------------------------ settings --

const DATA_LEN: usize = 100;

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
    /// Whether this is a smoke run (`cargo test`: no `--bench`).
    smoke: bool,
    /// `--persist`: the restart / snapshot benchmark instead of the throughput one.
    persist: bool,
    /// Nodes populated before the restarts (`--restart-nodes`).
    restart_nodes: usize,
    /// setData txns written between restart rounds (`--restart-sets`).
    restart_sets: usize,
    /// Seconds of idle before reading RSS after a restart.
    idle: f64,
}

fn parse_opts() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it. Then it is a smoke run (seconds, a small tree) so the benchmark cannot rot in
    // CI; it measures nothing worth reporting.
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = smoke || args.iter().any(|a| a == "--quick");
    let persist = args.iter().any(|a| a == "--persist");
    let mut o = Opts {
        quick,
        rounds: if smoke {
            1
        } else if persist {
            if quick {
                2
            } else {
                3
            }
        } else if quick {
            3
        } else {
            5
        },
        secs: if smoke { 1.0 } else if quick { 3.0 } else { 10.0 },
        warmup: if smoke { 0.5 } else if quick { 2.0 } else { 5.0 },
        nodes: if smoke { 2_000 } else { 100_000 },
        conns: 8,
        depth: 32,
        perf: None,
        smoke,
        persist,
        restart_nodes: 1_000_000,
        restart_sets: 40_000,
        idle: if smoke { 0.2 } else { 2.0 },
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
            "--restart-nodes" => o.restart_nodes = val(i).parse().expect("--restart-nodes N"),
            "--restart-sets" => o.restart_sets = val(i).parse().expect("--restart-sets N"),
            // `cargo bench` passes `--bench`; libtest-style filters are ignored too.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    assert!(o.rounds >= 1 && o.conns >= 1 && o.depth >= 1 && o.nodes >= 1 && o.secs > 0.0);
    assert!(o.restart_nodes >= 1);
    o
}


// ------------------------------------------------------------- servers --

/// Apache's jars from Debian's packages and the `zk-server` cargo built for this bench.
fn programs() -> Result<ServerPrograms, String> {
    let programs = ServerPrograms {
        java: DEFAULT_JAVA.into(),
        apache_jars_dir: DEFAULT_APACHE_JARS_DIR.into(),
        ours: env!("CARGO_BIN_EXE_zk-server").into(),
    };
    programs.check()?;
    Ok(programs)
}

/// Starts `name` in `<work>/<name>`: the common zoo.cfg plus the lines `extra_cfg`.
fn start(programs: &ServerPrograms, work: &Path, name: &str, kind: Kind, extra_cfg: &'static str) -> Result<ManagedServer, String> {
    let extra = ServerExtra { cfg: Box::new(move |_| extra_cfg.to_string()), ..ServerExtra::none() };
    let (srv, _) = ManagedServer::start_with(kind, programs, work.join(name), &extra).map_err(|e| format!("{name}: {e}"))?;
    Ok(srv)
}

// -------------------------------------------------------------- client --

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

/// Connects and opens a session (30 s timeout).
fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    open_session(&mut s, 30_000)?;
    Ok(s)
}

/// One synchronous request (setup and sanity checks only).
fn call(s: &mut TcpStream, xid: i32, op: i32, body: &[u8]) -> Result<(ReplyHeader, Vec<u8>), String> {
    let mut out = OutputArchive::new();
    RequestHeader { xid, r#type: op }.serialize(&mut out);
    out.write_raw(body);
    write_frame(&mut *s, out.as_slice())?;
    loop {
        let b = read_frame(&mut *s)?;
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
    /// Per-reply latency (measured window only).
    latency: LatencyHistogram,
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
                res.latency.record(now - sent);
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
    latency: Percentiles,
}

impl RunResult {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.secs
    }
}

/// Runs `conns` connections against `addr`. `secs = Some(d)`: each connection cycles
/// through `templates` (starting at a different offset) for `d` seconds; `None`: the
/// templates are split round-robin over the connections and each is sent once.
fn run_load(addr: SocketAddr, templates: &Arc<Vec<Vec<u8>>>, conns: usize, depth: usize, secs: Option<f64>) -> Result<RunResult, String> {
    let n = templates.len();
    let barrier = Arc::new(Barrier::new(conns + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for c in 0..conns {
        let plan = match secs {
            // 7919 is prime, so the walk visits every node (n = 100 000) in a scattered order.
            Some(_) => Plan::Cycle { start: c * n / conns, stride: if n.is_multiple_of(7919) { 1 } else { 7919 } },
            None => Plan::Once((c..n).step_by(conns).collect()),
        };
        let (t, b, st) = (templates.clone(), barrier.clone(), stop.clone());
        handles.push(
            thread::Builder::new()
                .name(format!("load-{c}"))
                .spawn(move || conn_worker(addr, t, plan, depth, b, st))
                .map_err(|e| format!("cannot start a load thread: {e}"))?,
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
    let mut latency = LatencyHistogram::new();
    let mut failed = None;
    for h in handles {
        match h.join() {
            Ok(Ok(r)) => {
                ops += r.ops;
                errors += r.errors;
                first_error = first_error.or(r.first_error);
                latency.merge(&r.latency);
            }
            Ok(Err(e)) => failed = failed.or(Some(format!("load generator failed: {e}"))),
            Err(_) => failed = failed.or(Some("a load thread panicked".to_string())),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let elapsed = if secs.is_some() { elapsed } else { t0.elapsed() };
    Ok(RunResult { ops, secs: elapsed.as_secs_f64(), errors, first_error, latency: latency.percentiles() })
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

/// Creates /bench and the nodes on `name`; checks one node; returns creates per second.
fn populate(name: &str, srv: &mut ManagedServer, w: &Workload, opts: &Opts) -> Result<f64, String> {
    let addr = srv.addr();
    let mut s = connect(addr).map_err(|e| format!("{name}: {e}"))?;
    let body = CreateRequest { path: "/bench".into(), data: None, acl: ids::open_acl_unsafe(), flags: 0 }.to_bytes();
    let (h, _) = call(&mut s, 1, op_code::CREATE, &body).map_err(|e| format!("{name}: create /bench: {e}"))?;
    if h.err != 0 {
        return Err(format!("{name}: create /bench failed with error {}", h.err));
    }
    close_session(&mut s, 2);
    let r = run_load(addr, &w.create, opts.conns, opts.depth, None).map_err(|e| format!("{name}: {e}"))?;
    if r.errors > 0 {
        return Err(format!("{name}: {} creates failed (first error {:?})", r.errors, r.first_error));
    }
    // A fresh session: an idle one would expire (30 s) while a big tree is populated.
    let mut s = connect(addr).map_err(|e| format!("{name}: {e}"))?;
    // Sanity: the last node is there with its 100 bytes.
    let last = GetDataRequest { path: node_path(opts.nodes - 1), watch: false }.to_bytes();
    let (h, b) = call(&mut s, 2, op_code::GET_DATA, &last).map_err(|e| format!("{name}: getData: {e}"))?;
    if h.err != 0 {
        return Err(format!("{name}: getData of the last node failed with error {}", h.err));
    }
    let resp = GetDataResponse::from_bytes(&b).map_err(|e| format!("{name}: bad GetDataResponse: {e}"))?;
    if resp.data.as_deref() != Some(&payload()[..]) {
        return Err(format!("{name}: wrong data in the last node"));
    }
    close_session(&mut s, 3);
    srv.check_alive()?;
    Ok(opts.nodes as f64 / r.secs)
}

fn timed(name: &str, srv: &mut ManagedServer, templates: &Arc<Vec<Vec<u8>>>, opts: &Opts, secs: f64) -> Result<RunResult, String> {
    let r = run_load(srv.addr(), templates, opts.conns, opts.depth, Some(secs)).map_err(|e| format!("{name}: {e}"))?;
    srv.check_alive()?;
    if r.errors > 0 {
        return Err(format!("{name}: {} requests failed (first error {:?})", r.errors, r.first_error));
    }
    Ok(r)
}

// --------------------------------------------------------------- perf --

/// Records a profile of `pid` while `f` runs; prints the top symbols.
fn with_perf<T>(dir: &Path, label: &str, pid: u32, f: impl FnOnce() -> T) -> T {
    if let Err(e) = fs::create_dir_all(dir) {
        eprintln!("cannot create {} ({e}); running without a profile", dir.display());
        return f();
    }
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
    // SAFETY: plain kill(2) on our own child's pid, which it still is (not reaped).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
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


// ------------------------------------------------------------ persist --

/// A server's log from byte `offset` on.
fn log_text(path: &Path, offset: usize) -> String {
    let b = fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&b[offset.min(b.len())..]).into_owned()
}

fn log_len(path: &Path) -> usize {
    fs::metadata(path).map(|m| m.len() as usize).unwrap_or(0)
}

/// Milliseconds since the epoch of a log line starting `YYYY-MM-DD HH:MM:SS,mmm` (both
/// servers' formats; only differences between lines of one log are used).
fn log_ts_ms(line: &str) -> Option<i64> {
    let b = line.get(0..23)?;
    let num = |r: std::ops::Range<usize>| -> Option<i64> { b.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

/// The number before `suffix` at the end of `s` (`"... in 123 ms"` -> 123).
fn number_before(s: &str, suffix: &str) -> Option<f64> {
    let t = s.trim_end();
    let t = t.strip_suffix(suffix).unwrap_or(t).trim_end();
    t.rsplit(' ').next()?.parse().ok()
}

/// One snapshot seen in a server's log.
#[derive(Clone, Debug)]
struct SnapRecord {
    zxid: i64,
    file: PathBuf,
    ms: f64,
    bytes: u64,
}

/// Pairs each `Snapshotting: 0x<zxid> to <file>` (both servers log it when a snapshot
/// starts) with the next `Snapshot taken ... in <n> ms` (Apache: `Snapshot taken in <n>
/// ms`; ours: `Snapshot taken: <file> in <n> ms`).
fn parse_snapshots(text: &str) -> Vec<SnapRecord> {
    let mut pending: VecDeque<(i64, PathBuf)> = VecDeque::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(i) = line.find("Snapshotting: 0x") {
            let rest = &line[i + "Snapshotting: 0x".len()..];
            if let Some((z, f)) = rest.split_once(" to ") {
                pending.push_back((i64::from_str_radix(z.trim(), 16).unwrap_or(-1), PathBuf::from(f.trim())));
            }
        } else if let Some(i) = line.find("Snapshot taken") {
            let ms = line[i..].rsplit_once(" in ").and_then(|(_, t)| number_before(t, "ms"));
            if let (Some(ms), Some((zxid, file))) = (ms, pending.pop_front()) {
                let bytes = fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
                out.push(SnapRecord { zxid, file, ms, bytes });
            }
        }
    }
    out
}

/// Waits until every snapshot started in the log (from `offset`) has finished; returns them.
fn wait_snapshots_settled(srv: &mut ManagedServer, offset: usize, timeout: Duration) -> Result<Vec<SnapRecord>, String> {
    let t0 = Instant::now();
    // A snapshot thread started by the last creates may not have logged yet.
    thread::sleep(Duration::from_millis(1000));
    loop {
        srv.check_alive()?;
        let text = log_text(srv.log_path(), offset);
        let started = text.matches("Snapshotting: 0x").count();
        let done = text.matches("Snapshot taken").count();
        if started == done {
            return Ok(parse_snapshots(&text));
        }
        if t0.elapsed() >= timeout {
            return Err(format!("{}: a snapshot did not finish within {timeout:?}", srv.kind.name()));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The `srvr` fields we check: (Zxid, Node count).
fn srvr_info(addr: SocketAddr) -> Result<(i64, u64), String> {
    let s = four_letter_word(addr, "srvr", Duration::from_secs(10)).map_err(|e| format!("srvr {addr}: {e}"))?;
    let field = |name: &str| s.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
    let zxid = field("Zxid: 0x").and_then(|v| i64::from_str_radix(&v, 16).ok()).unwrap_or(-1);
    let nodes = field("Node count: ").and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok((zxid, nodes))
}

/// Where the restart time went, from the timestamped log lines of the new process.
#[derive(Clone, Debug, Default)]
struct Phases {
    /// Reading (and deserialising) the newest snapshot.
    snap_read_ms: Option<f64>,
    /// Replaying the txn log after the snapshot.
    replay_ms: Option<f64>,
    replayed: Option<u64>,
    /// The snapshot taken at start-up (both servers take one after loading).
    startup_snap_ms: Option<f64>,
}

fn parse_restart_phases(kind: Kind, text: &str) -> Phases {
    let mut p = Phases::default();
    let find = |needle: &str| text.lines().find(|l| l.contains(needle));
    p.startup_snap_ms = find("Snapshot taken").and_then(|l| l.rsplit_once(" in ")).and_then(|(_, t)| number_before(t, "ms"));
    match kind {
        Kind::Apache => {
            // FileTxnSnapLog: "<n> txns loaded in <m> ms" (the replay);
            // ZKDatabase: "Snapshot loaded in <t> ms, ..." (snapshot read + replay).
            if let Some(l) = find(" txns loaded in ") {
                let (a, b) = l.rsplit_once(" txns loaded in ").unwrap();
                p.replayed = a.rsplit(' ').next().and_then(|v| v.parse().ok());
                p.replay_ms = number_before(b, "ms");
            }
            let total = find("Snapshot loaded in ").and_then(|l| {
                let t = &l[l.find("Snapshot loaded in ").unwrap() + "Snapshot loaded in ".len()..];
                t.split(' ').next()?.parse::<f64>().ok()
            });
            if let Some(t) = total {
                p.snap_read_ms = Some(t - p.replay_ms.unwrap_or(0.0));
                p.replay_ms.get_or_insert(0.0);
                p.replayed.get_or_insert(0);
            }
        }
        Kind::Ours => {
            // "Reading snapshot <f>" .. "Snapshot loaded in <f> (highest zxid ..)" ..
            // "<n> txns loaded from the txn logs up to zxid .." (absent when n = 0).
            let ts = |needle: &str| find(needle).and_then(log_ts_ms);
            let (a, b) = (ts("Reading snapshot "), ts("Snapshot loaded in "));
            if let (Some(a), Some(b)) = (a, b) {
                p.snap_read_ms = Some((b - a) as f64);
                match find(" txns loaded from the txn logs") {
                    Some(l) => {
                        p.replay_ms = log_ts_ms(l).map(|c| (c - b) as f64);
                        let before = &l[..l.find(" txns loaded").unwrap()];
                        p.replayed = before.rsplit(' ').next().and_then(|v| v.parse().ok());
                    }
                    None => {
                        p.replay_ms = Some(0.0);
                        p.replayed = Some(0);
                    }
                }
            }
        }
    }
    p
}

#[derive(Clone, Debug)]
struct Restart {
    server: &'static str,
    round: usize,
    signal: &'static str,
    stop_ms: f64,
    ready_ms: f64,
    rss_kib: u64,
    hwm_kib: u64,
    phases: Phases,
}

/// Stops `srv` (SIGKILL if `crash`, else SIGTERM), restarts it on the same dataDir,
/// times it until a new session reads `last_node`, checks the node count survived,
/// reads the idle RSS.
fn restart_once(srv: &mut ManagedServer, crash: bool, last_node: &str, round: usize, opts: &Opts) -> Result<Restart, String> {
    let name = srv.kind.name();
    let (zxid_before, nodes_before) = srvr_info(srv.addr())?;
    let stop = if crash { srv.stop_kill()? } else { srv.stop_term()? };
    let ready = srv.respawn_and_wait(last_node)?.serving;
    thread::sleep(Duration::from_secs_f64(opts.idle));
    srv.check_alive()?;
    let (rss, hwm) = srv.rss_kib()?;
    let (zxid_after, nodes_after) = srvr_info(srv.addr())?;
    if nodes_after != nodes_before {
        return Err(format!("{name}: node count changed across the restart ({nodes_before} -> {nodes_after})"));
    }
    if zxid_after < zxid_before {
        return Err(format!("{name}: zxid went back from 0x{zxid_before:x} to 0x{zxid_after:x}"));
    }
    let phases = parse_restart_phases(srv.kind, &log_text(srv.log_path(), 0));
    Ok(Restart {
        server: name,
        round,
        signal: if crash { "KILL" } else { "TERM" },
        stop_ms: stop.as_secs_f64() * 1000.0,
        ready_ms: ready.as_secs_f64() * 1000.0,
        rss_kib: rss,
        hwm_kib: hwm,
        phases,
    })
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "-".into())
}

fn print_restart_header() {
    println!(
        "{:<6} {:<7} {:<5} {:>9} {:>8} {:>9} {:>10} {:>9} {:>11} {:>9} {:>11} {:>11}",
        "round", "server", "sig", "replayed", "stop ms", "ready ms", "snap read", "replay", "start snap", "other", "RSS", "VmHWM"
    );
}

fn print_restart(r: &Restart) {
    let known = r.phases.snap_read_ms.unwrap_or(0.0) + r.phases.replay_ms.unwrap_or(0.0) + r.phases.startup_snap_ms.unwrap_or(0.0);
    println!(
        "{:<6} {:<7} {:<5} {:>9} {:>8.0} {:>9.0} {:>10} {:>9} {:>11} {:>9.0} {:>11} {:>11}",
        r.round,
        r.server,
        r.signal,
        r.phases.replayed.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
        r.stop_ms,
        r.ready_ms,
        fmt_opt(r.phases.snap_read_ms),
        fmt_opt(r.phases.replay_ms),
        fmt_opt(r.phases.startup_snap_ms),
        r.ready_ms - known,
        fmt_kib(r.rss_kib),
        fmt_kib(r.hwm_kib)
    );
}

/// (count, median ms, max ms) of snapshot records.
fn snap_stats(v: &[SnapRecord]) -> (usize, f64, f64) {
    if v.is_empty() {
        return (0, 0.0, 0.0);
    }
    let ms: Vec<f64> = v.iter().map(|r| r.ms).collect();
    (v.len(), median(&ms), ms.iter().cloned().fold(0.0, f64::max))
}

fn persist_workload(nodes: usize, sets: usize) -> Workload {
    let data = payload();
    let acl = ids::open_acl_unsafe();
    let create = (0..nodes)
        .map(|i| {
            request_template(
                op_code::CREATE,
                &CreateRequest { path: node_path(i), data: Some(data.clone()), acl: acl.clone(), flags: 0 },
            )
        })
        .collect();
    let sets = sets.min(nodes).max(1);
    let step = nodes / sets;
    let set = (0..sets)
        .map(|i| request_template(op_code::SET_DATA, &SetDataRequest { path: node_path(i * step), data: Some(data.clone()), version: -1 }))
        .collect();
    Workload { create: Arc::new(create), get: Arc::new(Vec::new()), set: Arc::new(set) }
}

/// `--persist`: populate, snapshot times, restart times and RSS after restart; the
/// servers live in `work`.
fn persist_main(opts: &Opts, work: &Path) -> Result<(), String> {
    let programs = programs()?;
    let n = opts.restart_nodes;
    let k = opts.restart_sets.min(n);
    println!("standalone_compare --persist: Apache ZooKeeper 3.8.0 vs zookeeper-rs zk-server, restart from disk");
    println!(
        "  {n} nodes x {DATA_LEN} B, {} SIGTERM restart rounds + 1 SIGKILL round per server (alternating apache / ours),\n\
         \x20 {k} setData txns before every restart after the first, {} conns x {} outstanding{}",
        opts.rounds,
        opts.conns,
        opts.depth,
        if opts.quick { " (--quick)" } else { "" }
    );
    println!("  ours:   {} (forceSync default = yes)", programs.describe(Kind::Ours));
    println!("  apache: {} (forceSync default = yes)", programs.describe(Kind::Apache));
    println!("  zoo.cfg (both): tickTime=2000 dataDir=<tmp> clientPort=<free> clientPortAddress=127.0.0.1 maxClientCnxns=0 4lw.commands.whitelist=* admin.enableServer=false (snapCount default 100000)");
    println!("  ready = spawn -> `ruok` answers imok AND `srvr` shows a Mode AND a new session's getData of the last-created node succeeds");

    let t_build = Instant::now();
    let w = persist_workload(n, k);
    eprintln!("  built {} create and {} set requests in {:.1} s", w.create.len(), w.set.len(), t_build.elapsed().as_secs_f64());
    let popts = Opts { nodes: n, ..opts.clone() };
    let last_node = node_path(n - 1);

    let mut apache = start(&programs, work, "apache", Kind::Apache, "")?;
    let mut ours = start(&programs, work, "ours", Kind::Ours, "")?;
    println!("  servers: apache {}, ours {}", describe_process(&apache), describe_process(&ours));

    // ---- populate, one server at a time; wait for its snapshots to finish
    struct Pop {
        rate: f64,
        secs: f64,
        snaps: Vec<SnapRecord>,
        zxid: i64,
        rss: (u64, u64),
        disk: (u64, u64),
    }
    let mut pops = Vec::new();
    for srv in [&mut apache, &mut ours] {
        let name = srv.kind.name();
        let off = log_len(srv.log_path());
        let t0 = Instant::now();
        let rate = populate(name, srv, &w, &popts)?;
        let snaps = wait_snapshots_settled(srv, off, Duration::from_secs(600))?;
        let secs = t0.elapsed().as_secs_f64();
        let (zxid, nodes) = srvr_info(srv.addr())?;
        if nodes as usize <= n {
            return Err(format!("{name}: node count {nodes} after populating {n}"));
        }
        thread::sleep(Duration::from_secs_f64(opts.idle));
        let rss = srv.rss_kib()?;
        let disk = dir_usage(&srv.data_dir());
        if log_text(srv.log_path(), 0).contains("OutOfMemoryError") {
            println!("  WARNING: {name} logged an OutOfMemoryError while populating: raise -Xmx");
        }
        eprintln!("  populated {name:<6} {n} nodes, {rate:.0} creates/s, {} snapshots, settled after {secs:.1} s", snaps.len());
        pops.push(Pop { rate, secs, snaps, zxid, rss, disk });
    }

    // ---- restarts: round 1 right after populating (replays the tail of the population
    // after the last snapshot), then `k` sets before each further round.
    let mut restarts: Vec<Restart> = Vec::new();
    let total_rounds = opts.rounds + 1; // the last one is the SIGKILL round
    for round in 1..=total_rounds {
        let crash = round == total_rounds;
        for srv in [&mut apache, &mut ours] {
            let name = srv.kind.name();
            if round > 1 {
                let r = run_load(srv.addr(), &w.set, opts.conns, opts.depth, None).map_err(|e| format!("{name}: {e}"))?;
                if r.errors > 0 {
                    return Err(format!("{name}: {} sets failed (first error {:?})", r.errors, r.first_error));
                }
            }
            let r = restart_once(srv, crash, &last_node, round, opts)?;
            eprintln!(
                "  restart round {round} ({}) {:<6}: ready in {:.0} ms, RSS {}",
                r.signal,
                r.server,
                r.ready_ms,
                fmt_kib(r.rss_kib)
            );
            restarts.push(r);
        }
    }

    // ---- report
    println!("\n== populate ({n} nodes; snapshots taken meanwhile, from each server's log) ==");
    println!(
        "{:<7} {:>10} {:>9} {:>6} {:>10} {:>9} {:>22} {:>12} {:>16} {:>11}",
        "server", "creates/s", "settled s", "snaps", "median ms", "max ms", "last snap zxid / zxid", "last snap", "dataDir", "RSS idle"
    );
    for (srv, p) in [&apache, &ours].iter().zip(&pops) {
        let (c, med_ms, max_ms) = snap_stats(&p.snaps);
        let last = p.snaps.last();
        println!(
            "{:<7} {:>10.0} {:>9.1} {:>6} {:>10.0} {:>9.0} {:>22} {:>12} {:>16} {:>11}",
            srv.kind.name(),
            p.rate,
            p.secs,
            c,
            med_ms,
            max_ms,
            last.map(|s| format!("0x{:x} / 0x{:x}", s.zxid, p.zxid)).unwrap_or_else(|| "-".into()),
            last.map(|s| format!("{:.1} MiB", s.bytes as f64 / 1048576.0)).unwrap_or_else(|| "-".into()),
            format!("{} / {:.0} MiB", p.disk.0, p.disk.1 as f64 / 1048576.0),
            fmt_kib(p.rss.0)
        );
    }
    for (srv, p) in [&apache, &ours].iter().zip(&pops) {
        let list: Vec<String> = p.snaps.iter().map(|s| format!("{:.0}", s.ms)).collect();
        println!(
            "  {} snapshot times (ms, in order): {} (sum {:.0} ms of {:.1} s)",
            srv.kind.name(),
            list.join(" "),
            p.snaps.iter().map(|r| r.ms).sum::<f64>(),
            p.secs
        );
        if let Some(l) = p.snaps.last() {
            println!("  {} last snapshot: {} ({} bytes)", srv.kind.name(), l.file.display(), l.bytes);
        }
    }

    println!("\n== restarts (ms from spawn; phases from the new process's log; other = ready - phases) ==");
    print_restart_header();
    for r in &restarts {
        print_restart(r);
    }

    let pick = |name: &str, sig: &str| -> Vec<&Restart> { restarts.iter().filter(|r| r.server == name && r.signal == sig).collect() };
    let med_of = |v: &[&Restart], f: &dyn Fn(&Restart) -> f64| median(&v.iter().map(|r| f(r)).collect::<Vec<_>>());
    let (ta, to) = (pick("apache", "TERM"), pick("ours", "TERM"));
    let (ka, ko) = (pick("apache", "KILL"), pick("ours", "KILL"));
    println!("\n== summary (medians over the {} SIGTERM rounds; ratio = ours / Apache) ==", opts.rounds);
    println!("{:<40} {:>12} {:>12} {:>8}", "metric", "apache", "ours", "ratio");
    let row_ms = |label: &str, a: f64, o: f64| println!("{:<40} {:>12.0} {:>12.0} {:>8.2}", label, a, o, o / a);
    let ready = |r: &Restart| r.ready_ms;
    row_ms("restart: spawn -> ready (ms)", med_of(&ta, &ready), med_of(&to, &ready));
    row_ms("  snapshot read (ms)", med_of(&ta, &|r| r.phases.snap_read_ms.unwrap_or(0.0)), med_of(&to, &|r| r.phases.snap_read_ms.unwrap_or(0.0)));
    row_ms("  log replay (ms)", med_of(&ta, &|r| r.phases.replay_ms.unwrap_or(0.0)), med_of(&to, &|r| r.phases.replay_ms.unwrap_or(0.0)));
    row_ms("  start-up snapshot (ms)", med_of(&ta, &|r| r.phases.startup_snap_ms.unwrap_or(0.0)), med_of(&to, &|r| r.phases.startup_snap_ms.unwrap_or(0.0)));
    row_ms("restart after SIGKILL: spawn -> ready (ms)", med_of(&ka, &ready), med_of(&ko, &ready));
    row_ms("stop: SIGTERM -> exit (ms)", med_of(&ta, &|r| r.stop_ms), med_of(&to, &|r| r.stop_ms));
    let rss = |r: &Restart| r.rss_kib as f64;
    let hwm = |r: &Restart| r.hwm_kib as f64;
    let row_kib = |label: &str, a: f64, o: f64| {
        println!("{:<40} {:>12} {:>12} {:>8.2}", label, fmt_kib(a as u64), fmt_kib(o as u64), o / a)
    };
    row_kib(&format!("RSS idle after populating {n}"), pops[0].rss.0 as f64, pops[1].rss.0 as f64);
    row_kib("RSS idle after restart", med_of(&ta, &rss), med_of(&to, &rss));
    row_kib("peak RSS (VmHWM) of the restarted process", med_of(&ta, &hwm), med_of(&to, &hwm));
    let (sa, so) = (snap_stats(&pops[0].snaps), snap_stats(&pops[1].snaps));
    row_ms("snapshot during populate: median (ms)", sa.1, so.1);
    row_ms("snapshot during populate: max (ms)", sa.2, so.2);
    let sz = |p: &Pop| p.snaps.last().map(|s| s.bytes).unwrap_or(0) as f64;
    println!(
        "{:<40} {:>12} {:>12} {:>8.2}",
        "last snapshot file size",
        format!("{:.1} MiB", sz(&pops[0]) / 1048576.0),
        format!("{:.1} MiB", sz(&pops[1]) / 1048576.0),
        sz(&pops[1]) / sz(&pops[0])
    );
    println!("{:<40} {:>12.0} {:>12.0} {:>8.2}", "create ops/s (populate, fsync on)", pops[0].rate, pops[1].rate, pops[1].rate / pops[0].rate);
    println!(
        "Restart round 1 replays the population's txns after its last snapshot; later rounds replay\n\
         the {k} sets (plus session txns) written after the previous restart's start-up snapshot.\n\
         Both servers fsync their txn log per commit batch (forceSync default yes)."
    );

    let j_r = |v: &[&Restart]| {
        let items: Vec<String> = v
            .iter()
            .map(|r| {
                format!(
                    "{{\"round\":{},\"ready_ms\":{:.0},\"stop_ms\":{:.0},\"snap_read_ms\":{},\"replay_ms\":{},\"replayed\":{},\"startup_snap_ms\":{},\"rss_kib\":{},\"hwm_kib\":{}}}",
                    r.round,
                    r.ready_ms,
                    r.stop_ms,
                    r.phases.snap_read_ms.map(|v| format!("{v:.0}")).unwrap_or_else(|| "null".into()),
                    r.phases.replay_ms.map(|v| format!("{v:.0}")).unwrap_or_else(|| "null".into()),
                    r.phases.replayed.map(|v| v.to_string()).unwrap_or_else(|| "null".into()),
                    r.phases.startup_snap_ms.map(|v| format!("{v:.0}")).unwrap_or_else(|| "null".into()),
                    r.rss_kib,
                    r.hwm_kib
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let j_snaps = |p: &Pop| {
        let (c, m, x) = snap_stats(&p.snaps);
        format!(
            "{{\"count\":{c},\"median_ms\":{m:.0},\"max_ms\":{x:.0},\"last_bytes\":{},\"last_zxid\":{},\"zxid\":{},\"create_per_s\":{:.0},\"rss_idle_kib\":{},\"datadir_bytes\":{}}}",
            p.snaps.last().map(|s| s.bytes).unwrap_or(0),
            p.snaps.last().map(|s| s.zxid).unwrap_or(-1),
            p.zxid,
            p.rate,
            p.rss.0,
            p.disk.1
        )
    };
    let (ra, ro) = (med_of(&ta, &ready), med_of(&to, &ready));
    let (rsa, rso) = (med_of(&ta, &rss), med_of(&to, &rss));
    println!(
        "\nJSON {{\"bench\":\"standalone_compare_persist\",\"quick\":{},\"nodes\":{n},\"sets_between\":{k},\"rounds\":{},\"fsync\":{{\"apache\":true,\"ours\":true}},\
\"restart_ready_ms\":{{\"apache\":{ra:.0},\"ours\":{ro:.0},\"ratio\":{:.3}}},\"restart_rss_kib\":{{\"apache\":{rsa:.0},\"ours\":{rso:.0},\"ratio\":{:.3}}},\
\"kill_restart_ready_ms\":{{\"apache\":{:.0},\"ours\":{:.0}}},\
\"populate\":{{\"apache\":{},\"ours\":{}}},\"restarts\":{{\"apache\":{},\"ours\":{},\"apache_kill\":{},\"ours_kill\":{}}}}}",
        opts.quick,
        opts.rounds,
        ro / ra,
        rso / rsa,
        med_of(&ka, &ready),
        med_of(&ko, &ready),
        j_snaps(&pops[0]),
        j_snaps(&pops[1]),
        j_r(&ta),
        j_r(&to),
        j_r(&ka),
        j_r(&ko)
    );
    Ok(())
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
    format!("{:.1} MiB", mib(k))
}

/// `pid <pid> port <port>` of a running server, for the report.
fn describe_process(srv: &ManagedServer) -> String {
    format!("pid {} port {}", srv.pid().unwrap_or(0), srv.addr().port())
}

fn main() {
    let opts = parse_opts();
    // The servers' directories live in one work directory, removed at the end and kept
    // (its logs named) when the run fails.
    let r = in_work_dir("zkbench-standalone", false, |work| {
        if opts.persist && !opts.smoke {
            persist_main(&opts, work)
        } else {
            throughput_main(&opts, work)
        }
    });
    if let Err(e) = r {
        eprintln!("standalone_compare failed: {e}");
        std::process::exit(1);
    }
}

/// The get / set comparison of `apache`, `apache-nosync` and `ours` in `work`.
fn throughput_main(opts: &Opts, work: &Path) -> Result<(), String> {
    let programs = programs()?;
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
    println!("  ours:   {}", programs.describe(Kind::Ours));
    println!("  apache: {}", programs.describe(Kind::Apache));
    println!("  zoo.cfg (all): tickTime=2000 dataDir=<tmp> clientPort=<free> clientPortAddress=127.0.0.1 maxClientCnxns=0 4lw.commands.whitelist=* admin.enableServer=false");
    println!("  apache-nosync: the same plus forceSync=no");

    let w = workload(opts.nodes);

    // Start one at a time: JVM start-up is CPU-heavy on a small machine.
    let mut apache = start(&programs, work, "apache", Kind::Apache, "")?;
    let mut nosync = start(&programs, work, "apache-nosync", Kind::Apache, "forceSync=no\n")?;
    let mut ours = start(&programs, work, "ours", Kind::Ours, "")?;
    // Our server persists if it wrote its start-up snapshot (older builds kept nothing).
    let ours_persists = dir_usage(&ours.data_dir()).1 > 0;
    if ours_persists {
        println!(
            "  durability: `apache` and `ours` both write a txn log and snapshots and fsync the log per commit\n\
             \x20             batch (forceSync default = yes); `apache-nosync` does not fsync"
        );
    } else {
        println!(
            "  CAVEAT: our server does not persist (its dataDir is empty after start-up): `set` vs `apache`\n\
             \x20         compares a durable server with a non-durable one; `apache-nosync` is the fairer row"
        );
    }
    let log_off = [log_len(apache.log_path()), log_len(nosync.log_path()), log_len(ours.log_path())];
    println!(
        "  servers: apache {}, apache-nosync {}, ours {}",
        describe_process(&apache),
        describe_process(&nosync),
        describe_process(&ours)
    );

    let rss_start = [apache.rss_kib()?, nosync.rss_kib()?, ours.rss_kib()?];

    // ---- populate
    let mut create_rate = [0.0f64; 3];
    for (i, (name, srv)) in [("apache", &mut apache), ("apache-nosync", &mut nosync), ("ours", &mut ours)].into_iter().enumerate() {
        create_rate[i] = populate(name, srv, &w, opts)?;
        println!("  populated {:<13} {} nodes, {:>9.0} creates/s", name, opts.nodes, create_rate[i]);
    }
    thread::sleep(Duration::from_secs(2));
    let rss_idle = [apache.rss_kib()?, nosync.rss_kib()?, ours.rss_kib()?];

    // ---- warm-up (not measured)
    for (name, srv) in [("apache", &mut apache), ("apache-nosync", &mut nosync), ("ours", &mut ours)] {
        timed(name, srv, &w.get, opts, opts.warmup)?;
        timed(name, srv, &w.set, opts, opts.warmup)?;
    }

    // ---- get rounds: apache, ours, apache, ours, ...
    let mut get_a = Vec::new();
    let mut get_o = Vec::new();
    for round in 1..=opts.rounds {
        let a = timed("apache", &mut apache, &w.get, opts, opts.secs)?;
        let o = timed("ours", &mut ours, &w.get, opts, opts.secs)?;
        eprintln!("  get round {round}: apache {:.0}/s, ours {:.0}/s", a.ops_per_sec(), o.ops_per_sec());
        get_a.push(a);
        get_o.push(o);
    }
    // ---- set rounds: apache, apache-nosync, ours, ...
    let mut set_a = Vec::new();
    let mut set_n = Vec::new();
    let mut set_o = Vec::new();
    for round in 1..=opts.rounds {
        let a = timed("apache", &mut apache, &w.set, opts, opts.secs)?;
        let n = timed("apache-nosync", &mut nosync, &w.set, opts, opts.secs)?;
        let o = timed("ours", &mut ours, &w.set, opts, opts.secs)?;
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
    let rss_after = [apache.rss_kib()?, nosync.rss_kib()?, ours.rss_kib()?];

    // ---- report
    let rates = |v: &[RunResult]| v.iter().map(|r| r.ops_per_sec()).collect::<Vec<_>>();
    let med = |v: &[RunResult]| median(&rates(v));
    let med_p = |v: &[RunResult], p99: bool| median(&v.iter().map(|r| if p99 { r.latency.p99_us } else { r.latency.p50_us } as f64).collect::<Vec<_>>());

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
    let set_label = if ours_persists { "both fsync" } else { "apache fsync, ours in memory" };
    let (sa, sn, so) = (med(&set_a), med(&set_n), med(&set_o));
    println!("\n== summary (medians of {} rounds; ratio = ours / Apache) ==", opts.rounds);
    println!("{:<34} {:>12} {:>12} {:>8} {:>22} {:>22}", "metric", "apache", "ours", "ratio", "p50/p99 apache (ms)", "p50/p99 ours (ms)");
    let lat = |v: &[RunResult]| format!("{:.2} / {:.2}", med_p(v, false) / 1000.0, med_p(v, true) / 1000.0);
    println!("{:<34} {:>12.0} {:>12.0} {:>8.2} {:>22} {:>22}", "get ops/s", ga, go, go / ga, lat(&get_a), lat(&get_o));
    println!("{:<34} {:>12.0} {:>12.0} {:>8.2} {:>22} {:>22}", format!("set ops/s ({set_label})"), sa, so, so / sa, lat(&set_a), lat(&set_o));
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
    let disk: Vec<(u64, u64)> = [&apache, &nosync, &ours].iter().map(|s| dir_usage(&s.data_dir())).collect();
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>14}",
        "dataDir at the end (files / size)",
        format!("{} / {:.0} MiB", disk[0].0, disk[0].1 as f64 / 1048576.0),
        format!("{} / {:.0} MiB", disk[2].0, disk[2].1 as f64 / 1048576.0),
        "",
        format!("{} / {:.0} MiB", disk[1].0, disk[1].1 as f64 / 1048576.0)
    );
    // Snapshots the servers took during the run (after their start-up snapshot).
    let snaps: Vec<Vec<SnapRecord>> =
        [&apache, &nosync, &ours].iter().zip(log_off).map(|(s, off)| parse_snapshots(&log_text(s.log_path(), off))).collect();
    let sstat: Vec<(usize, f64, f64)> = snaps.iter().map(|v| snap_stats(v)).collect();
    println!(
        "{:<34} {:>12} {:>12} {:>8} {:>14}",
        "snapshots in the run (n / med / max ms)",
        format!("{} / {:.0} / {:.0}", sstat[0].0, sstat[0].1, sstat[0].2),
        format!("{} / {:.0} / {:.0}", sstat[2].0, sstat[2].1, sstat[2].2),
        "",
        format!("{} / {:.0} / {:.0}", sstat[1].0, sstat[1].1, sstat[1].2)
    );
    if ours_persists {
        println!(
            "\nDurability: `apache` and `ours` both fsync their txn log per commit batch (forceSync default yes);\n\
             `apache-nosync` (forceSync=no) writes its log without fsync."
        );
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
\"ours_datadir_bytes\":{},\"ours_persists\":{},\"set_fsync_both\":{},\
\"snapshots\":{{\"apache\":[{},{:.0},{:.0}],\"ours\":[{},{:.0},{:.0}]}},\
\"durability\":\"{}\"}}",
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
        ours_persists,
        ours_persists,
        sstat[0].0,
        sstat[0].1,
        sstat[0].2,
        sstat[2].0,
        sstat[2].1,
        sstat[2].2,
        if ours_persists {
            "apache and ours fsync their txn log per commit batch (forceSync=yes); apache-nosync does not"
        } else {
            "apache fsyncs its txn log; ours does not persist"
        },
    );
    println!("\nJSON {json}");

    // ---- optional profiles of our server (extra runs, not in the table)
    if let Some(dir) = opts.perf.clone() {
        let pid = ours.pid().ok_or("ours server is not running")?;
        with_perf(&dir, "get", pid, || timed("ours", &mut ours, &w.get, opts, opts.secs))?;
        with_perf(&dir, "set", pid, || timed("ours", &mut ours, &w.set, opts, opts.secs))?;
    }

    // ---- smoke only: one SIGTERM restart of each server on its dataDir (the --persist
    // path, small)
    if opts.smoke && ours_persists {
        let t0 = Instant::now();
        drop(nosync);
        let last = node_path(opts.nodes - 1);
        println!("\n== smoke: restart on the same dataDir (SIGTERM; --persist does this with 1M nodes) ==");
        print_restart_header();
        for srv in [&mut apache, &mut ours] {
            print_restart(&restart_once(srv, false, &last, 1, opts)?);
        }
        println!("(smoke restart part took {:.1} s)", t0.elapsed().as_secs_f64());
    }
    Ok(())
}
