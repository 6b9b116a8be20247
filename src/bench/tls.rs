//! `zk-bench compare --tls`: Apache ZooKeeper 3.8 standalone and our `zk-server` side by
//! side on a secure client port, with the same zoo.cfg, certificates and client (ours).
//!
//! Method (docs/benchmarks.md, "TLS on the client port: `compare --tls`"):
//! * certificates: a CA and a server certificate for 127.0.0.1 / localhost made per run
//!   with openssl; the server's key store is PEM (key and certificate in one file), the
//!   trust store the CA's PEM, as Apache 3.8 reads them;
//! * servers: compare's zoo.cfg plus `secureClientPort` and the `ssl.*` keys, identical
//!   for both; Apache serves TLS only with its `NettyServerCnxnFactory` (which then serves
//!   the plain port too), so that factory is set, and Netty's codec and resolver jars
//!   (missing from zookeeper.jar's manifest) join its class path;
//! * workloads (get and set by default): compare's runners, rounds and A B / B A order,
//!   with every session of our client library on the secure port
//!   (`zookeeper.client.secure`: `x509_util::client_config` over `TlsStream`, the code
//!   applications use);
//! * session opening: threads each opening one connection at a time over raw sockets
//!   (`TlsStream::tls_client` + `handshake`): TCP connect + full TLS handshake (no session
//!   resumption, as a new client process) + ConnectRequest / ConnectResponse +
//!   closeSession / reply + close; also the handshake alone and the same session on the
//!   plain port, so the share of TLS shows. Sequential (1 opener) and concurrent.
//!
//! Ratios are ours / Apache, as in `compare`.

use std::fmt::Write as _;
use std::fs;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::compare::{
    alternate_rounds, idx, medians, mib, ms, pair_json, params_json, print_rounds, print_workload_rounds, rounds_line, run_rounds, sides_json, workload_json, CompareConfig,
    Figures, Round, RoundRuns, RoundsText, Servers, KINDS,
};
use super::ensemble::{Target, TargetTable};
use super::histogram::LatencyHistogram;
use super::raw::{open_session, read_frame, write_frame};
use super::servers::{Kind, ManagedServer, ServerExtra};
use super::workload::SESSION_TIMEOUT_MS;
use super::{json_f64, json_str, per_second, print_title, Percentiles, RunResult, Workload};
use crate::common::tls_stream::TlsStream;
use crate::common::x509_util::{self, SslSettings, CLIENT_PREFIX};
use crate::jute::Record;
use crate::proto::op_code;
use crate::proto::proto::{ReplyHeader, RequestHeader};
use crate::system_properties;

/// Jars Apache's Netty server factory needs besides zookeeper.jar's manifest (package
/// libnetty-java).
pub const NETTY_JARS: [&str; 2] = ["netty-codec.jar", "netty-resolver.jar"];
const OPENSSL: &str = "/usr/bin/openssl";
/// Subject alternative names of the server certificate: our client checks the address
/// it connects to against them (`hostnameVerification`, on by default).
const SERVER_SAN: &str = "IP:127.0.0.1,DNS:localhost";
/// Longest a connect, handshake or reply may take while opening sessions; a server
/// that takes longer is stuck, and the attempt counts as an error.
const OPEN_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The client properties [`TlsClient`] sets, and clears when dropped.
const CLIENT_PROPS: [&str; 3] = ["zookeeper.client.secure", "zookeeper.ssl.trustStore.location", "zookeeper.ssl.trustStore.type"];

/// The server key of the run's certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyType {
    /// RSA 2048 (keytool's default and the common choice)
    Rsa,
    /// ECDSA P-256 (a much cheaper signature per handshake)
    Ec,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa2048",
            KeyType::Ec => "ec-p256",
        }
    }

    fn newkey(self) -> &'static [&'static str] {
        match self {
            KeyType::Rsa => &["-newkey", "rsa:2048"],
            KeyType::Ec => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        }
    }
}

/// What `--tls` adds to `compare`.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub key: KeyType,
    /// Concurrent openers of the session-opening measurement (it also runs with one).
    pub openers: usize,
    /// Measured window of each session-opening run.
    pub open_duration: Duration,
}

impl TlsOptions {
    pub fn validate(&self) -> Result<(), String> {
        if self.openers == 0 {
            return Err("--openers must be at least 1".into());
        }
        if self.open_duration.is_zero() {
            return Err("--open-duration must be positive".into());
        }
        Ok(())
    }

    /// 1 (sequential), then `openers` if more.
    fn opener_counts(&self) -> Vec<usize> {
        if self.openers > 1 {
            vec![1, self.openers]
        } else {
            vec![1]
        }
    }
}

// ---------------------------------------------------------- certificates --

/// The run's certificates: `ca.crt` (the trust store of both sides) and `server.pem`
/// (the servers' key store: private key, then certificate).
pub struct TlsFiles {
    pub ca_crt: PathBuf,
    pub server_pem: PathBuf,
    pub key: KeyType,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let o = Command::new(OPENSSL)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {OPENSSL} (package openssl): {e}"))?;
    if !o.status.success() {
        return Err(format!("openssl {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()));
    }
    Ok(())
}

/// Makes a CA and a server certificate it signs in `dir` (valid for 2 days: they live as
/// long as the run).
pub fn make_certs(dir: &Path, key: KeyType) -> Result<TlsFiles, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let with_key = |args: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["req"];
        v.extend_from_slice(key.newkey());
        v.extend_from_slice(args);
        v
    };
    openssl(
        dir,
        &with_key(&[
            "-x509", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=zk-bench-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ]),
    )?;
    fs::write(dir.join("server.ext"), format!("subjectAltName={SERVER_SAN}\n")).map_err(|e| format!("cannot write server.ext: {e}"))?;
    openssl(dir, &with_key(&["-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]))?;
    openssl(
        dir,
        &[
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2",
            "-extfile", "server.ext",
        ],
    )?;
    let read = |n: &str| fs::read(dir.join(n)).map_err(|e| format!("cannot read {n}: {e}"));
    let pem = [read("server.key")?, read("server.crt")?].concat();
    let server_pem = dir.join("server.pem");
    fs::write(&server_pem, pem).map_err(|e| format!("cannot write {}: {e}", server_pem.display()))?;
    Ok(TlsFiles { ca_crt: dir.join("ca.crt"), server_pem, key })
}

/// The zoo.cfg lines of the secure client port, the same for both servers.
pub fn secure_cfg(port: u16, key_store: &Path, trust_store: &Path) -> String {
    format!(
        "# zk-bench compare --tls: the secure client port, the same for both.\n\
         secureClientPort={port}\n\
         secureClientPortAddress=127.0.0.1\n\
         # Apache has TLS only in its Netty factory (which then serves both ports).\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\n\
         ssl.keyStore.type=PEM\n\
         ssl.trustStore.location={}\n\
         ssl.trustStore.type=PEM\n\
         ssl.clientAuth=none\n",
        key_store.display(),
        trust_store.display()
    )
}

fn server_extra(files: &TlsFiles) -> ServerExtra {
    let (ks, ts) = (files.server_pem.clone(), files.ca_crt.clone());
    ServerExtra {
        ports: 1,
        cfg: Box::new(move |p: &[u16]| secure_cfg(p.first().copied().unwrap_or(0), &ks, &ts)),
        apache_jars: NETTY_JARS.to_vec(),
    }
}

/// The secure client port of a server started with [`server_extra`].
fn secure_addr(s: &ManagedServer) -> Result<SocketAddr, String> {
    s.extra_ports()
        .first()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .ok_or_else(|| format!("{} server has no secure client port", s.kind.name()))
}

// ---------------------------------------------------------------- client --

/// The bench's TLS client side. While it lives, every session our client library opens
/// speaks TLS: `zookeeper.client.secure=true` with the run's CA as the
/// `zookeeper.ssl.*` trust store (what CLIENT_JVMFLAGS sets for a Java client), so the
/// workloads run through `x509_util::client_config` and `TlsStream` as applications do.
/// [`raw`](Self::raw) is the same configuration for the session-opening measurement.
/// The properties are process-wide: nothing else may open plain sessions meanwhile.
pub struct TlsClient {
    raw: Arc<rustls::ClientConfig>,
}

impl TlsClient {
    pub fn enable(trust_store: &Path) -> Result<TlsClient, String> {
        system_properties::set("zookeeper.client.secure", "true");
        system_properties::set("zookeeper.ssl.trustStore.location", &trust_store.display().to_string());
        system_properties::set("zookeeper.ssl.trustStore.type", "PEM");
        let cfg = SslSettings::from_system_properties(CLIENT_PREFIX).and_then(|s| x509_util::client_config(&s));
        match cfg {
            Ok(c) => {
                let mut c = (*c).clone();
                // Each opened connection pays a full handshake, as a new client process
                // does (the library's sessions build a configuration per connection and
                // so never resume either).
                c.resumption = rustls::client::Resumption::disabled();
                Ok(TlsClient { raw: Arc::new(c) })
            }
            Err(e) => {
                clear_client_props();
                Err(format!("TLS client configuration: {e}"))
            }
        }
    }

    pub fn raw(&self) -> &Arc<rustls::ClientConfig> {
        &self.raw
    }
}

impl Drop for TlsClient {
    fn drop(&mut self) {
        clear_client_props();
    }
}

fn clear_client_props() {
    for k in CLIENT_PROPS {
        system_properties::clear(k);
    }
}

// ------------------------------------------------------- session opening --

/// What one opening does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// TCP connect + full TLS handshake + close: no ZooKeeper traffic.
    Handshake,
    /// TCP connect + TLS handshake + ConnectRequest/Response + closeSession/reply + close.
    TlsSession,
    /// The same session on the plain client port (what TLS adds to it).
    PlainSession,
}

impl Opening {
    pub const ALL: [Opening; 3] = [Opening::TlsSession, Opening::Handshake, Opening::PlainSession];

    pub fn name(self) -> &'static str {
        match self {
            Opening::Handshake => "tls_handshake",
            Opening::TlsSession => "tls_session",
            Opening::PlainSession => "plain_session",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Opening::Handshake => "handshakes",
            _ => "sessions",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Opening::Handshake => "TCP connect + full TLS handshake + close (no ZooKeeper session)",
            Opening::TlsSession => "TCP connect + full TLS handshake + ConnectRequest/Response + closeSession/reply + close",
            Opening::PlainSession => "the same session on the plain client port: TCP connect + ConnectRequest/Response + closeSession/reply + close",
        }
    }
}

/// A new session and its close, as our client does them (a 16-byte zero password, the
/// read-only flag off).
fn session_round_trip(mut stream: &TlsStream) -> Result<(), String> {
    open_session(&mut stream, SESSION_TIMEOUT_MS)?;
    write_frame(stream, &RequestHeader { xid: 1, r#type: op_code::CLOSE_SESSION }.to_bytes())?;
    // A session without watches gets nothing but the reply; a few stray frames are
    // skipped rather than trusted to end.
    for _ in 0..8 {
        let hdr = ReplyHeader::from_bytes(&read_frame(stream)?).map_err(|e| format!("bad reply header: {e}"))?;
        if hdr.xid == 1 {
            return if hdr.err == 0 { Ok(()) } else { Err(format!("closeSession failed with error {}", hdr.err)) };
        }
    }
    Err("no reply to closeSession".into())
}

/// One opening of `what` at `addr`; the negotiated protocol and cipher suite with TLS.
pub fn open_once(addr: SocketAddr, what: Opening, tls: &Arc<rustls::ClientConfig>) -> Result<Option<(String, String)>, String> {
    let sock = TcpStream::connect_timeout(&addr, OPEN_IO_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    sock.set_nodelay(true)
        .and_then(|_| sock.set_read_timeout(Some(OPEN_IO_TIMEOUT)))
        .and_then(|_| sock.set_write_timeout(Some(OPEN_IO_TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    let stream = if what == Opening::PlainSession {
        TlsStream::new(sock)
    } else {
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let s = TlsStream::tls_client(sock, tls.clone(), name).map_err(|e| format!("TLS client: {e}"))?;
        s.handshake().map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        s
    };
    let negotiated = stream.negotiated();
    let r = if what == Opening::Handshake { Ok(()) } else { session_round_trip(&stream) };
    let _ = stream.shutdown(Shutdown::Both);
    r.map(|_| negotiated)
}

/// One session-opening run: `openers` threads, each opening one connection at a time.
/// An opening counts in the window it started in (as `churn`'s sessions).
#[derive(Debug, Clone)]
pub struct OpenRun {
    pub count: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub duration_s: f64,
    pub latency: Percentiles,
}

impl OpenRun {
    pub fn rate(&self) -> f64 {
        per_second(self.count, self.duration_s)
    }
}

impl Round for OpenRun {
    fn figures(&self) -> Figures<'_> {
        Figures { per_s: self.rate(), latency: &self.latency, errors: self.errors, first_error: self.first_error.as_deref(), warnings: Vec::new() }
    }
}

pub fn measure_opening(addr: SocketAddr, what: Opening, tls: &Arc<rustls::ClientConfig>, openers: usize, warmup: Duration, duration: Duration) -> OpenRun {
    let from = Instant::now() + warmup;
    let to = from + duration;
    let handles: Vec<_> = (0..openers)
        .filter_map(|i| {
            let tls = tls.clone();
            thread::Builder::new()
                .name(format!("zk-bench-open-{i}"))
                .spawn(move || {
                    let (mut count, mut errors, mut first_error, mut hist) = (0u64, 0u64, None, LatencyHistogram::new());
                    while Instant::now() < to {
                        let start = Instant::now();
                        let r = open_once(addr, what, &tls);
                        let counted = start >= from && start < to;
                        match r {
                            Ok(_) if counted => {
                                count += 1;
                                hist.record(start.elapsed());
                            }
                            Err(e) if counted => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                            _ => {}
                        }
                    }
                    (count, errors, first_error, hist)
                })
                .ok()
        })
        .collect();
    let mut run = OpenRun { count: 0, errors: 0, first_error: None, duration_s: duration.as_secs_f64(), latency: Percentiles::default() };
    if handles.len() < openers {
        run.errors += 1;
        run.first_error = Some(format!("only {} of {openers} opener threads started", handles.len()));
    }
    let mut hist = LatencyHistogram::new();
    for h in handles {
        match h.join() {
            Ok((c, e, f, hi)) => {
                run.count += c;
                run.errors += e;
                if run.first_error.is_none() {
                    run.first_error = f;
                }
                hist.merge(&hi);
            }
            Err(_) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| "an opener thread panicked".into());
            }
        }
    }
    run.latency = hist.percentiles();
    run
}

/// Rounds of one opening measurement against both servers ([`alternate_rounds`]).
fn open_rounds(cfg: &CompareConfig, t: &TlsOptions, servers: &mut Servers, client: &TlsClient, what: Opening, openers: usize) -> Result<RoundRuns<OpenRun>, String> {
    let label = format!("{} x{openers}", what.name());
    alternate_rounds(cfg.rounds, servers, (&label, what.unit(), 8), |servers, k| {
        let s = servers.at(k);
        let addr = if what == Opening::PlainSession { s.addr() } else { secure_addr(s)? };
        let r = measure_opening(addr, what, client.raw(), openers, cfg.warmup, t.open_duration);
        if r.count == 0 {
            return Err(format!(
                "{label} on {}: nothing opened in {:.1} s (first error: {})\n{}",
                k.name(),
                t.open_duration.as_secs_f64(),
                r.first_error.as_deref().unwrap_or("none"),
                s.log_report()
            ));
        }
        Ok(r)
    })
}

fn print_open(what: Opening, openers: usize, duration: Duration, (runs, firsts): &RoundRuns<OpenRun>) {
    let title = format!(
        "{} x{openers}: {} ({} opener{} one at a time each; {} rounds x {:.1} s, latency in us)",
        what.name(),
        what.describe(),
        openers,
        if openers == 1 { "," } else { "s," },
        runs[0].len(),
        duration.as_secs_f64()
    );
    let label = format!("{} x{openers}", what.name());
    let unit = format!("{}/s", what.unit());
    print_rounds(&RoundsText { title: &title, heads: ["apache /s", "ours /s", "o/a"], label: &label, measure: "rate", unit: &unit }, runs, firsts);
}

// ------------------------------------------------------------ comparison --

/// What one (opening, openers) measurement gave both servers.
struct OpenResult {
    what: Opening,
    openers: usize,
    runs: [Vec<OpenRun>; 2],
}

/// The TLS comparison in `work` (see the module documentation).
pub(super) fn compare_tls_in(cfg: &CompareConfig, t: &TlsOptions, work: &Path) -> Result<(), String> {
    let idle = if cfg.smoke { Duration::from_millis(300) } else { Duration::from_secs(2) };
    let files = make_certs(&work.join("certs"), t.key)?;
    print_header(cfg, t, &files, work);

    // ---- servers: one start each (start-up is plain compare's measurement).
    let extra = server_extra(&files);
    let mut started: [Option<ManagedServer>; 2] = [None, None];
    let mut start_ms = [0.0; 2];
    for k in KINDS {
        let (srv, took) = ManagedServer::start_with(k, &cfg.programs, work.join(k.name()), &extra)?;
        let secure = secure_addr(&srv)?;
        eprintln!("  [start-up] {}: {:.0} ms (pid {}, plain {}, secure {secure})", k.name(), ms(took.serving), srv.pid().unwrap_or(0), srv.connect_string());
        start_ms[idx(k)] = ms(took.serving);
        started[idx(k)] = Some(srv);
    }
    let [Some(apache), Some(ours)] = started else {
        return Err("internal error: a started server is missing".into());
    };
    let mut servers = Servers { s: [apache, ours] };

    // From here on every session of the client library speaks TLS.
    let client = TlsClient::enable(&files.ca_crt)?;
    // One session on each secure port: it works, and both negotiate the same.
    let mut negotiated = [String::new(), String::new()];
    for k in KINDS {
        let s = servers.at(k);
        let addr = secure_addr(s)?;
        match open_once(addr, Opening::TlsSession, client.raw()) {
            Ok(n) => negotiated[idx(k)] = n.map(|(p, c)| format!("{p} {c}")).unwrap_or_default(),
            Err(e) => return Err(format!("{} server: a TLS session on its secure port {addr} failed: {e}\n{}", k.name(), s.log_report())),
        }
    }
    println!("\n== servers (secure client port; start-up: spawn -> serving a session on the plain port, one start each) ==");
    for k in KINDS {
        let s = servers.at(k);
        println!(
            "{:<6} plain {} secure {} start-up {:.0} ms, negotiated {} (log {})",
            k.name(),
            s.connect_string(),
            secure_addr(s)?,
            start_ms[idx(k)],
            negotiated[idx(k)],
            s.log_path().display()
        );
    }

    // ---- workloads over TLS
    let secure_target = |s: &ManagedServer| secure_addr(s).map(|a| a.to_string()).unwrap_or_default();
    let mut results: Vec<(Workload, [Vec<RunResult>; 2])> = Vec::new();
    for &w in &cfg.workloads {
        let (runs, firsts) = run_rounds(cfg, &mut servers, w, &secure_target)?;
        let title = format!(
            "{w} over TLS: {} ({} rounds x {:.1} s, latency in us)",
            super::compare::describe(cfg, w),
            cfg.rounds,
            cfg.duration.as_secs_f64()
        );
        print_workload_rounds(&title, w, &runs, &firsts);
        results.push((w, runs));
    }

    // ---- session opening
    let mut opens = Vec::new();
    for what in Opening::ALL {
        for openers in t.opener_counts() {
            let rounds = open_rounds(cfg, t, &mut servers, &client, what, openers)?;
            print_open(what, openers, t.open_duration, &rounds);
            opens.push(OpenResult { what, openers, runs: rounds.0 });
        }
    }
    drop(client);

    thread::sleep(idle);
    servers.check_alive()?;
    let rss = servers.rss()?;
    print_final(cfg, &results, &opens, rss);
    println!("{}", summary_json(cfg, t, &negotiated, start_ms, &results, &opens, rss));
    Ok(())
}

fn print_header(cfg: &CompareConfig, t: &TlsOptions, files: &TlsFiles, work: &Path) {
    print_title("zk-bench compare --tls: Apache ZooKeeper 3.8 vs zookeeper-rs zk-server (standalone) on a secure client port", cfg.smoke);
    println!("{}; key space {} nodes", rounds_line(cfg), cfg.nodes);
    println!(
        "  session opening: {} opener(s), one connection at a time each; warm-up {:.1} s + {:.1} s measured per round and server; full handshakes (no session resumption)",
        t.opener_counts().iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" and "),
        cfg.warmup.as_secs_f64(),
        t.open_duration.as_secs_f64()
    );
    println!(
        "  certificates (openssl, per run): a CA and a server certificate ({}, SAN {SERVER_SAN}); key store {} (PEM: key + certificate), trust store {} (PEM)",
        files.key.name(),
        files.server_pem.display(),
        files.ca_crt.display()
    );
    println!("  apache: {}", cfg.programs.describe_with(Kind::Apache, &NETTY_JARS));
    println!("  ours:   {}", cfg.programs.describe(Kind::Ours));
    println!(
        "  zoo.cfg (both): compare's lines + secureClientPort=<free> secureClientPortAddress=127.0.0.1 \
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory ssl.keyStore.location=<server.pem> ssl.keyStore.type=PEM \
         ssl.trustStore.location=<ca.crt> ssl.trustStore.type=PEM ssl.clientAuth=none"
    );
    println!(
        "  client: zookeeper-rs's own client library for both servers with zookeeper.client.secure=true and the CA as zookeeper.ssl.trustStore \
         (rustls with ring; hostname verification on); work dir {}",
        work.display()
    );
}

fn throughput_target(w: Workload) -> Option<Target> {
    match w {
        Workload::Watch | Workload::Churn => None,
        _ => Some(Target::AtLeast(1.5)),
    }
}

fn print_final(cfg: &CompareConfig, results: &[(Workload, [Vec<RunResult>; 2])], opens: &[OpenResult], rss: [u64; 2]) {
    println!(
        "\n== TLS: ratios ours/Apache (medians of {} rounds; throughput and rates: >1 = ours faster; latency, memory: <1 = ours better){} ==",
        cfg.rounds,
        if cfg.smoke { " -- SMOKE RUN" } else { "" }
    );
    let table = TargetTable { width: 48 };
    table.head("target");
    table.workload_rows("TLS ", results, throughput_target);
    for r in opens {
        let (a, o) = (medians(&r.runs[0]), medians(&r.runs[1]));
        table.row(&format!("{} x{} ({}/s)", r.what.name(), r.openers, r.what.unit()), a.throughput, o.throughput, 0, None);
        table.row(&format!("{} x{} p99 (us)", r.what.name(), r.openers), a.p99, o.p99, 0, None);
    }
    table.row("RSS after the TLS load (MiB)", mib(rss[0]), mib(rss[1]), 1, None);
}

fn summary_json(
    cfg: &CompareConfig,
    t: &TlsOptions,
    negotiated: &[String; 2],
    start_ms: [f64; 2],
    results: &[(Workload, [Vec<RunResult>; 2])],
    opens: &[OpenResult],
    rss: [u64; 2],
) -> String {
    let mut s = format!("{{\"bench\":\"zk-bench-compare\",\"mode\":\"tls\"{}", params_json(cfg));
    let _ = write!(
        s,
        ",\"tls\":{{\"key\":{},\"client_auth\":\"none\",\"resumption\":false,\"negotiated\":{{\"apache\":{},\"ours\":{}}}}}",
        json_str(t.key.name()),
        json_str(&negotiated[0]),
        json_str(&negotiated[1])
    );
    let _ = write!(s, ",\"startup_ms\":{}", pair_json(start_ms[0], start_ms[1], 0));
    let members: Vec<String> = results.iter().map(|(w, runs)| workload_json(*w, runs)).collect();
    let _ = write!(s, ",\"workloads\":{{{}}}", members.join(","));
    let opening: Vec<String> = opens
        .iter()
        .map(|r| {
            format!(
                "{}:{{\"unit\":{},\"openers\":{},\"duration_s\":{},{}}}",
                json_str(&format!("{}_x{}", r.what.name(), r.openers)),
                json_str(r.what.unit()),
                r.openers,
                json_f64(t.open_duration.as_secs_f64(), 3),
                sides_json(&r.runs, "per_s", "rate_ratio")
            )
        })
        .collect();
    let _ = write!(s, ",\"opening\":{{{}}}", opening.join(","));
    let _ = write!(s, ",\"rss_kib_after_load\":{}", pair_json(rss[0] as f64, rss[1] as f64, 0));
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_cfg_has_every_key_both_servers_need() {
        let c = secure_cfg(2281, Path::new("/c/server.pem"), Path::new("/c/ca.crt"));
        for line in [
            "secureClientPort=2281",
            "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "ssl.keyStore.location=/c/server.pem",
            "ssl.keyStore.type=PEM",
            "ssl.trustStore.location=/c/ca.crt",
            "ssl.trustStore.type=PEM",
            "ssl.clientAuth=none",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} missing from\n{c}");
        }
    }

    #[test]
    fn opening_json_has_rates_medians_and_ratios() {
        let run = |count: u64, p99_us: u64, errors: u64| OpenRun {
            count,
            errors,
            first_error: None,
            duration_s: 2.0,
            latency: Percentiles { p50_us: p99_us / 2, p99_us, p999_us: p99_us, max_us: p99_us },
        };
        let runs = [vec![run(100, 4000, 1), run(300, 8000, 0)], vec![run(400, 2000, 0)]];
        assert_eq!(
            sides_json(&runs, "per_s", "rate_ratio"),
            "\"apache\":{\"per_s\":100.0,\"p50_us\":3000,\"p99_us\":6000,\"p999_us\":6000,\"errors\":1},\
             \"ours\":{\"per_s\":200.0,\"p50_us\":1000,\"p99_us\":2000,\"p999_us\":2000,\"errors\":0},\"rate_ratio\":2.000,\"p99_ratio\":0.333"
        );
    }

    #[test]
    fn one_opener_is_measured_once() {
        let t = TlsOptions { key: KeyType::Rsa, openers: 1, open_duration: Duration::from_secs(1) };
        assert_eq!(t.opener_counts(), vec![1]);
        let t = TlsOptions { openers: 8, ..t };
        assert_eq!(t.opener_counts(), vec![1, 8]);
    }
}
