//! `zk-bench sessions`: many idle sessions held at once, Apache and ours side by side
//! (issue #14's connection targets).
//!
//! Per round and server (A B / B A alternating): a fresh server with compare's zoo.cfg
//! (plus a session timeout long enough that held sessions need no pings); `sessions`
//! sessions opened by `openers` threads at once, each a raw socket and a ConnectRequest
//! (timed: the first connect to the last ConnectResponse; refusals counted); after a
//! short idle, the server's VmRSS and thread count; then a `get` load (`clients` x
//! `outstanding`) on top of the held sessions; then one ping on every held session (an
//! expired or dropped one fails it); then all are closed.
//!
//! The client sockets live in this process, so `sessions` is bounded by its open-file
//! limit, and the server's by its own: 20 000 needs a limit above that (`ulimit -n`).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::compare::{in_work_dir, median, mib};
use super::election::threads_of;
use super::raw::{frame, open_session, read_frame};
use super::servers::{Kind, ManagedServer, ServerExtra, ServerPrograms};
use super::{json_f64, json_str, print_title, RunConfig, Workload};
use crate::jute::{OutputArchive, Record};
use crate::proto::proto::RequestHeader;

/// Held sessions must outlive the whole measurement without pings.
const SESSION_TIMEOUT_MS: i32 = 600_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const ROOT: &str = "/zkbench-sessions";

/// Parameters of `zk-bench sessions`.
#[derive(Debug, Clone)]
pub struct SessionsConfig {
    pub programs: ServerPrograms,
    pub smoke: bool,
    pub sessions: usize,
    pub openers: usize,
    pub rounds: usize,
    /// The get load run while the sessions are held.
    pub clients: usize,
    pub outstanding: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub idle: Duration,
    pub keep_dir: bool,
}

impl SessionsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.sessions == 0 || self.openers == 0 || self.rounds == 0 {
            return Err("--sessions, --openers and --rounds must be at least 1".into());
        }
        let limit = open_file_limit();
        if let Some(l) = limit {
            // Our own sockets, plus the load's and a margin.
            let need = (self.sessions + self.clients + 64) as u64;
            if need > l {
                return Err(format!(
                    "--sessions {} needs about {need} open files in this process; the limit is {l} (ulimit -n)",
                    self.sessions
                ));
            }
        }
        self.load_config("127.0.0.1:1".into()).validate()
    }

    fn load_config(&self, server: String) -> RunConfig {
        RunConfig {
            server,
            workload: Workload::Get,
            clients: self.clients,
            outstanding: self.outstanding,
            payload: 100,
            duration: self.duration,
            warmup: self.warmup,
            nodes: 1000,
            read_ratio: 1.0,
            watchers: 1,
            multi_ops: 1,
            root: ROOT.into(),
            spread: false,
            probe: None,
        }
    }
}

/// RLIMIT_NOFILE's soft limit of this process.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One server's figures in one round.
#[derive(Debug, Clone, Default)]
pub struct SessionsRun {
    pub open: Duration,
    pub refused: usize,
    pub rss_kib: u64,
    pub threads: u64,
    pub idle_rss_kib: u64,
    pub idle_threads: u64,
    pub get_ops_s: f64,
    pub get_p99_us: u64,
    /// Held sessions that did not answer a ping afterwards (expired or dropped).
    pub lost: usize,
}

/// The source address of opener `o`: each opener connects from its own loopback
/// address when the server is on loopback (127.0.0.0/8 is all local on Linux).
///
/// From one address, every connection to the server needs its own ephemeral port;
/// past about 14 000 (the half of the default 28 000-port range that connect() tries
/// first) each connect() walks thousands of taken ports in the kernel, and the open
/// time measured that walk more than either server (19 000 sessions took ~2 s more
/// on both). Ten openers on ten addresses keep each range a tenth full, as ten client
/// machines would.
fn source_for(server: SocketAddr, o: usize) -> Option<std::net::IpAddr> {
    match server.ip() {
        std::net::IpAddr::V4(v4) if v4.is_loopback() => {
            let host = 2 + (o % 250) as u8;
            Some(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, host)))
        }
        _ => None,
    }
}

fn connect_from(addr: SocketAddr, source: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(src) = source else { return TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) };
    let sock = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    // IP_BIND_ADDRESS_NO_PORT: the port is left to connect(), which needs it unique
    // only per destination. Best effort: bind() picking it works too, a little slower.
    let on: libc::c_int = 1;
    // SAFETY: a valid socket, a c_int option value and its size.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    sock.bind(&SocketAddr::new(src, 0).into())?;
    sock.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
    Ok(sock.into())
}

fn open_one(addr: SocketAddr, source: Option<std::net::IpAddr>) -> Result<TcpStream, String> {
    let mut s = connect_from(addr, source).map_err(|e| format!("connect: {e}"))?;
    s.set_nodelay(true)
        .and_then(|_| s.set_read_timeout(Some(CONNECT_TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    open_session(&mut s, SESSION_TIMEOUT_MS)?;
    Ok(s)
}

/// Opens `n` sessions from `openers` threads; returns the sockets, the time and the
/// refusals.
fn open_many(addr: SocketAddr, n: usize, openers: usize) -> (Vec<TcpStream>, Duration, usize) {
    let held = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let refused = Arc::new(Mutex::new(0usize));
    let t0 = Instant::now();
    let threads: Vec<_> = (0..openers)
        .map(|o| {
            let (held, refused) = (held.clone(), refused.clone());
            thread::spawn(move || {
                let mut mine = Vec::with_capacity(n / openers + 1);
                let mut bad = 0;
                let source = source_for(addr, o);
                for _ in (o..n).step_by(openers) {
                    match open_one(addr, source) {
                        Ok(s) => mine.push(s),
                        Err(_) => bad += 1,
                    }
                }
                held.lock().map(|mut h| h.extend(mine)).ok();
                refused.lock().map(|mut r| *r += bad).ok();
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let took = t0.elapsed();
    let held = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
    let refused = *refused.lock().unwrap_or_else(|e| e.into_inner());
    (held, took, refused)
}

/// A ping on every held session, all sent before any answer is read.
fn count_lost(held: &mut [TcpStream]) -> usize {
    let mut out = OutputArchive::new();
    RequestHeader { xid: -2, r#type: crate::proto::op_code::PING }.serialize(&mut out);
    let ping = frame(out.as_slice());
    let mut sent = vec![false; held.len()];
    for (i, s) in held.iter_mut().enumerate() {
        sent[i] = s.write_all(&ping).is_ok();
    }
    let mut lost = 0;
    for (s, sent) in held.iter_mut().zip(sent) {
        if !sent || read_frame(&mut *s).is_err() {
            lost += 1;
        }
    }
    lost
}

fn measure(cfg: &SessionsConfig, kind: Kind, dir: &Path) -> Result<SessionsRun, String> {
    let extra = ServerExtra { ports: 0, cfg: Box::new(|_| "maxSessionTimeout=1200000\n".into()), apache_jars: Vec::new() };
    let (mut srv, _) = ManagedServer::start_with(kind, &cfg.programs, dir.to_path_buf(), &extra)?;
    let pid = srv.pid().ok_or("no pid")?;
    thread::sleep(cfg.idle);
    let (idle_rss_kib, _) = srv.rss_kib()?;
    let idle_threads = threads_of(pid) as u64;
    let (mut held, open, refused) = open_many(srv.addr(), cfg.sessions, cfg.openers);
    thread::sleep(cfg.idle);
    let (rss_kib, _) = srv.rss_kib()?;
    let threads = threads_of(pid) as u64;
    let load = super::run(&cfg.load_config(srv.connect_string()))?;
    let lost = count_lost(&mut held);
    drop(held);
    srv.check_alive()?;
    let _ = srv.stop_term();
    Ok(SessionsRun {
        open,
        refused,
        rss_kib,
        threads,
        idle_rss_kib,
        idle_threads,
        get_ops_s: load.throughput(),
        get_p99_us: load.latency.p99_us,
        lost,
    })
}

pub fn sessions(cfg: &SessionsConfig) -> Result<(), String> {
    cfg.validate()?;
    cfg.programs.check()?;
    in_work_dir("zk-bench-sessions", cfg.keep_dir, |work| sessions_in(cfg, work))
}

fn sessions_in(cfg: &SessionsConfig, work: &Path) -> Result<(), String> {
    print_title(
        &format!(
            "zk-bench sessions: {} sessions from {} openers held at once, then get ({} x {}) for {:?}; {} round(s)",
            cfg.sessions, cfg.openers, cfg.clients, cfg.outstanding, cfg.duration, cfg.rounds
        ),
        cfg.smoke,
    );
    let mut runs: [Vec<SessionsRun>; 2] = [Vec::new(), Vec::new()];
    for round in 0..cfg.rounds {
        for kind in super::compare::order(round) {
            let r = measure(cfg, kind, &work.join(format!("{}-{round}", kind.name())))?;
            println!(
                "  round {} {:<7} open {:>8.2} s  refused {}  RSS {:>7.1} MiB  threads {:>5}  get {:>9.0} ops/s p99 {:>6.2} ms  lost {}",
                round + 1,
                kind.name(),
                r.open.as_secs_f64(),
                r.refused,
                mib(r.rss_kib),
                r.threads,
                r.get_ops_s,
                r.get_p99_us as f64 / 1000.0,
                r.lost
            );
            runs[if kind == Kind::Apache { 0 } else { 1 }].push(r);
        }
    }
    let med = |i: usize, f: &dyn Fn(&SessionsRun) -> f64| median(&runs[i].iter().map(f).collect::<Vec<f64>>());
    let rows: [(&str, &dyn Fn(&SessionsRun) -> f64, &str); 7] = [
        ("time to open them (s)", &|r| r.open.as_secs_f64(), "<= 0.5"),
        ("RSS holding them (MiB)", &|r| mib(r.rss_kib), "<= 0.5"),
        ("threads holding them", &|r| r.threads as f64, "bounded"),
        ("idle RSS before (MiB)", &|r| mib(r.idle_rss_kib), ""),
        ("idle threads before", &|r| r.idle_threads as f64, ""),
        ("get under them (ops/s)", &|r| r.get_ops_s, ">= 2"),
        ("get p99 under them (ms)", &|r| r.get_p99_us as f64 / 1000.0, ""),
    ];
    println!("\n{:>8}  {:<28} {:>12} {:>12}  target", "ours/A", "measure (medians)", "Apache", "ours");
    for (name, f, target) in rows {
        let (a, o) = (med(0, f), med(1, f));
        let ratio = if a > 0.0 { format!("{:.2}x", o / a) } else { "-".into() };
        println!("{ratio:>8}  {name:<28} {a:>12.2} {o:>12.2}  {target}");
    }
    let refused: usize = runs.iter().flatten().map(|r| r.refused + r.lost).sum();
    println!("refused, expired or dropped sessions, all runs: {refused}");
    let side = |i: usize| {
        format!(
            "{{\"open_s\":{},\"rss_kib\":{},\"threads\":{},\"idle_rss_kib\":{},\"idle_threads\":{},\"get_ops_s\":{},\"get_p99_ms\":{}}}",
            json_f64(med(i, &|r| r.open.as_secs_f64()), 3),
            json_f64(med(i, &|r| r.rss_kib as f64), 0),
            json_f64(med(i, &|r| r.threads as f64), 0),
            json_f64(med(i, &|r| r.idle_rss_kib as f64), 0),
            json_f64(med(i, &|r| r.idle_threads as f64), 0),
            json_f64(med(i, &|r| r.get_ops_s), 1),
            json_f64(med(i, &|r| r.get_p99_us as f64 / 1000.0), 3)
        )
    };
    println!(
        "{{\"bench\":{},\"smoke\":{},\"sessions\":{},\"openers\":{},\"rounds\":{},\"apache\":{},\"ours\":{},\"refused_or_lost\":{refused}}}",
        json_str("zk-bench-sessions"),
        cfg.smoke,
        cfg.sessions,
        cfg.openers,
        cfg.rounds,
        side(0),
        side(1)
    );
    if refused > 0 {
        return Err(format!("{refused} sessions were refused or lost"));
    }
    Ok(())
}
