//! The AdminServer (upstream's embedded Jetty: `admin.enableServer`, `admin.serverAddress`,
//! `admin.serverPort`, `admin.commandURL`; commands under `/commands/<name>`) side by side
//! with Apache ZooKeeper 3.8.0 (the Debian package, servlet API added to its classpath).
//!
//! Every test sends the same HTTP requests to Apache and to our server in the same state
//! and compares what comes back:
//!
//! * `commands_match_apache_standalone` — every command under its primary name and every
//!   alias, after the same workload on both (znodes with data, 130 writes so that the
//!   digest log of `hash` has an entry, an ephemeral of a live session, watches of two
//!   sessions, one closed session): status, Content-Type, and the JSON with the same keys
//!   in the same order at every level and the same values, except the volatile ones,
//!   which are masked after their type was checked (see [`StandaloneNorm`]); objects
//!   Jackson writes from Java beans are compared without their key order, which is not
//!   stable across Apache processes (see [`sort_bean_objects`]); `monitor` (hash order)
//!   by key set, `system_properties` (JVM properties) by the `zookeeper.*` ones. Every JSON
//!   body of ours must also be laid out as Jackson's pretty printer does (re-rendered
//!   here and compared byte for byte; Apache's bodies check the renderer), and a few
//!   stable bodies must be byte-identical to Apache's. Then the HTTP surface: an unknown
//!   command, the `/commands` link list, `set_trace_mask` with and without its argument,
//!   other methods than GET, paths outside the command URL.
//! * `commands_match_apache_in_ensemble` — two mixed 3-node ensembles (Apache, ours,
//!   Apache and ours, Apache, ours; the highest sid leads): `leader`, `zabstate`,
//!   `voting_view`, `observers`, `configuration`, `server_stats` and `monitor` of a Java
//!   follower against a Rust follower of the same ensemble, and of the Java leader
//!   against the Rust leader; addresses, ports and ids are named by their role
//!   (SELF, LEADER, PEER...) before comparing.
//! * `admin_port_bad_input` — garbage, a 100 KB request line, a 100 KB header, an
//!   absolute URL, `..` in the path, a header section never finished, 50 idle
//!   connections: answers compared with Apache's, and afterwards (and while the idle
//!   connections are held) `/commands/ruok` answers within [`HELD_ANSWER_BOUND`] and the
//!   client port still answers `ruok` with `imok`.
//! * `admin_port_in_use` — the admin port already bound: both servers exit with the same
//!   status (upstream: ERROR_STARTING_ADMIN_SERVER = 4) and log "Unable to start
//!   AdminServer, exiting abnormally".
//!
//! Requests go through a small HTTP/1.1 client over `TcpStream` ([`send_raw`]):
//! `Connection: close`, status line, headers, body by Content-Length, chunked
//! transfer-encoding or end of stream. Everything is on 127.0.0.1 and bounded in time.
//!
//! `ZKRS_TEST_SHOW=1 cargo test --test admin_server -- --nocapture` prints Apache's bodies;
//! `ZKRS_TEST_OURS=apache` runs Apache on both sides (a check of the test itself).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl, Mode};
use common::{four_letter_word, free_port, line_diff, ApacheServer, OurServer, TestServer, MNTR_EXACT, MNTR_EXCEPTIONS};
use raw_client::{children, create, exists, get_data, set_data, RawClient};
use regex::Regex;
use serde_json::{Map, Value};
use zookeeper::common::tls_stream::TlsStream;

/// Time limit of one ordinary HTTP exchange.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the admin port may take to answer `ruok` while hostile connections are held
/// open (and after they went away).
const HELD_ANSWER_BOUND: Duration = Duration::from_secs(3);
/// Bound of the wait until a started server's AdminServer serves commands.
const ADMIN_READY: Duration = Duration::from_secs(30);


// ===================================================================== HTTP client ==

/// One HTTP response as read off the socket.
#[derive(Clone, Debug)]
struct HttpResponse {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON (key order kept), or Err with the body.
    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("body is not JSON ({e}): {:?}", self.text()))
    }
}

/// Parses `buf` as a complete response; Ok(None) while more bytes are needed. `eof`: the
/// server closed, so a body without length ends here. `head`: the request was HEAD.
fn parse_response(buf: &[u8], head: bool, eof: bool) -> Result<Option<HttpResponse>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if eof {
            return Err(format!("no complete header section: {:?}", String::from_utf8_lossy(buf)));
        }
        return Ok(None);
    };
    let head_text: String = buf[..end].iter().map(|&b| b as char).collect(); // ISO-8859-1
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l.split_once(':').ok_or_else(|| format!("bad header line {l:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut r = HttpResponse { status, reason, headers, body: Vec::new() };
    let rest = &buf[end + 4..];
    if head || status / 100 == 1 || status == 204 || status == 304 {
        return Ok(Some(r));
    }
    let chunked = r.header("Transfer-Encoding").map(|v| v.to_ascii_lowercase().contains("chunked")).unwrap_or(false);
    if chunked {
        let mut pos = 0;
        let mut body = Vec::new();
        loop {
            let Some(le) = rest[pos..].windows(2).position(|w| w == b"\r\n") else {
                return if eof { Err("chunked body cut short".into()) } else { Ok(None) };
            };
            let size_text = String::from_utf8_lossy(&rest[pos..pos + le]).to_string();
            let size_hex = size_text.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
            pos += le + 2;
            if size == 0 {
                // optional trailers, then an empty line
                let tail = &rest[pos..];
                if tail.starts_with(b"\r\n") || tail.windows(4).any(|w| w == b"\r\n\r\n") {
                    r.body = body;
                    return Ok(Some(r));
                }
                return if eof { Err("chunked body without its last CRLF".into()) } else { Ok(None) };
            }
            if rest.len() < pos + size + 2 {
                return if eof { Err("chunked body cut short".into()) } else { Ok(None) };
            }
            body.extend_from_slice(&rest[pos..pos + size]);
            if &rest[pos + size..pos + size + 2] != b"\r\n" {
                return Err("chunk not followed by CRLF".into());
            }
            pos += size + 2;
        }
    }
    if let Some(cl) = r.header("Content-Length") {
        let n: usize = cl.parse().map_err(|_| format!("bad Content-Length {cl:?}"))?;
        if rest.len() < n {
            return if eof { Err(format!("body cut short: {} of {n} bytes", rest.len())) } else { Ok(None) };
        }
        r.body = rest[..n].to_vec();
        return Ok(Some(r));
    }
    if eof {
        r.body = rest.to_vec();
        return Ok(Some(r));
    }
    Ok(None)
}

/// Writes `request` to 127.0.0.1:`port` and reads one response, for at most `timeout`.
/// A write error (the server answered and closed before reading everything) is not an
/// error by itself: what the server sent before closing is still read and parsed.
fn send_raw(port: u16, request: &[u8], head: bool, timeout: Duration) -> Result<HttpResponse, String> {
    send_raw_over(port, None, request, head, timeout)
}

/// [`send_raw`] over TLS (HTTPS) when `tls` is set.
fn send_raw_over(port: u16, tls: Option<&Arc<rustls::ClientConfig>>, request: &[u8], head: bool, timeout: Duration) -> Result<HttpResponse, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_write_timeout(Some(timeout));
    let _ = tcp.set_read_timeout(Some(timeout));
    let s = match tls {
        None => TlsStream::new(tcp),
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let s = TlsStream::tls_client(tcp, cfg.clone(), name).map_err(|e| format!("TLS to {addr}: {e}"))?;
            s.handshake().map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
            s
        }
    };
    let mut s = &s;
    let write_err = s.write_all(request).err();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut eof = false;
    let mut read_err = None;
    loop {
        if let Some(r) = parse_response(&buf, head, false)? {
            return Ok(r);
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let _ = s.set_read_timeout(Some(deadline - now));
        match s.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
            Err(e) => {
                read_err = Some(e);
                eof = true;
                break;
            }
        }
    }
    if eof && !buf.is_empty() {
        if let Some(r) = parse_response(&buf, head, true)? {
            return Ok(r);
        }
    }
    Err(format!(
        "no complete response within {timeout:?} ({} bytes read{}{}{})",
        buf.len(),
        if eof { ", connection closed" } else { "" },
        write_err.map(|e| format!(", write error: {e}")).unwrap_or_default(),
        read_err.map(|e| format!(", read error: {e}")).unwrap_or_default(),
    ))
}

/// `METHOD TARGET HTTP/1.1` with a Host header and `Connection: close`.
fn request_bytes(method: &str, target: &str, port: u16) -> Vec<u8> {
    let body = if matches!(method, "POST" | "PUT") { "Content-Length: 0\r\n" } else { "" };
    format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{body}Connection: close\r\n\r\n").into_bytes()
}

fn try_http(port: u16, method: &str, target: &str) -> Result<HttpResponse, String> {
    send_raw(port, &request_bytes(method, target, port), method == "HEAD", HTTP_TIMEOUT)
}

/// An exchange that must work; panics with `who` and the reason otherwise.
fn http(who: &str, port: u16, method: &str, target: &str) -> HttpResponse {
    try_http(port, method, target).unwrap_or_else(|e| panic!("{who}: {method} {target} on admin port {port}: {e}"))
}

fn show() -> bool {
    std::env::var_os("ZKRS_TEST_SHOW").is_some()
}

// ============================================================ Jackson's layout ==

/// Java's `Double.toString`: plain decimal with at least one fractional digit for
/// 1e-3 <= |d| < 1e7, else computerized scientific notation (`1.0E-4`, `1.2345E7`).
fn java_double(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let a = d.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{d:e}"); // e.g. 1e-4, 1.2345e7
        let (m, e) = s.split_once('e').expect("exponent");
        let m = if m.contains('.') { m.to_string() } else { format!("{m}.0") };
        format!("{m}E{e}")
    }
}

/// A JSON string as Jackson writes it: `"` and `\` escaped, the short escapes for \b \t
/// \n \f \r, `\u00XX` for other control characters, everything else as is.
fn jackson_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `v` as Jackson's `DefaultPrettyPrinter` lays it out: objects one entry per line,
/// two-space indent per object level, `"key" : value`; arrays on the line of their
/// opening bracket, `[ a, b ]`; empty containers `{ }` and `[ ]`; no final newline.
fn jackson_pretty(v: &Value) -> String {
    fn go(v: &Value, depth: usize, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    out.push_str(&i.to_string())
                } else if let Some(u) = n.as_u64() {
                    out.push_str(&u.to_string())
                } else {
                    out.push_str(&java_double(n.as_f64().unwrap_or(f64::NAN)))
                }
            }
            Value::String(s) => jackson_string(s, out),
            Value::Array(a) if a.is_empty() => out.push_str("[ ]"),
            Value::Array(a) => {
                out.push_str("[ ");
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(x, depth, out);
                }
                out.push_str(" ]");
            }
            Value::Object(m) if m.is_empty() => out.push_str("{ }"),
            Value::Object(m) => {
                out.push_str("{\n");
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    out.push_str(&"  ".repeat(depth + 1));
                    jackson_string(k, out);
                    out.push_str(" : ");
                    go(x, depth + 1, out);
                }
                out.push('\n');
                out.push_str(&"  ".repeat(depth));
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    go(v, 0, &mut out);
    out
}

// ==================================================================== failures ==

/// Differences collected over a whole test, so that one run shows all of them.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn push(&mut self, msg: String) {
        eprintln!("DIFFERENCE: {msg}");
        self.0.push(msg);
    }
    fn check(&mut self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            let m = msg();
            self.push(m);
        }
    }
    fn finish(self, what: &str) {
        assert!(self.0.is_empty(), "{what}: {} difference(s) from Apache:\n\n{}", self.0.len(), self.0.join("\n\n"));
    }
}

// ================================================================== servers ==

/// zoo.cfg lines that turn the AdminServer on, on loopback (later lines win over the
/// harness's `admin.enableServer=false`).
fn admin_cfg(admin_port: u16) -> String {
    format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin_port}\n")
}

/// Waits until `/commands/ruok` answers with `error` null (Apache's AdminServer is up
/// before the server serves and answers "not currently serving requests" meanwhile).
fn wait_admin_serving(who: &str, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last;
    loop {
        last = match try_http(port, "GET", "/commands/ruok") {
            Ok(r) if r.status == 200 => match r.json() {
                Ok(v) if v.get("error") == Some(&Value::Null) => return,
                Ok(v) => format!("answer {v}"),
                Err(e) => e,
            },
            Ok(r) => format!("status {} {}", r.status, r.reason),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            panic!("{who}: the AdminServer on port {port} does not serve /commands/ruok within {timeout:?}: {last}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// =================================================================== workload ==


/// The same state on either server. Returns the two live clients and the session ids of
/// all three sessions in order (the third is closed), with the error codes seen.
///
/// * `/a` ("hello"), `/a/b` (written 130 times: the zxid passes 128, so upstream's
///   digest log, which `hash` shows, keeps one entry), `/a/e1` ephemeral of session 0;
/// * session 2 creates the ephemeral `/a/gone` and closes: both are gone;
/// * watches: session 0 on `/a` (data) and `/nope` (exists), session 1 on `/a`
///   (children and data) and `/a/b` (data). Nothing fires.
fn workload(connect: &str) -> (Vec<RawClient>, Vec<i64>, Vec<i32>) {
    let mut s0 = RawClient::connect(connect).expect("connect session 0");
    let mut s1 = RawClient::connect(connect).expect("connect session 1");
    let mut s2 = RawClient::connect(connect).expect("connect session 2");
    let sids = vec![s0.session_id, s1.session_id, s2.session_id];
    let mut errs = vec![create(&mut s0, "/a", b"hello", 0), create(&mut s0, "/a/b", b"data", 0)];
    for i in 0..130 {
        errs.push(set_data(&mut s0, "/a/b", format!("v{i}").as_bytes(), -1));
    }
    errs.push(create(&mut s0, "/a/e1", b"eph", 1));
    errs.push(create(&mut s2, "/a/gone", b"", 1));
    errs.push(s2.close_session().expect("close session 2").err);
    errs.push(get_data(&mut s0, "/a", true));
    errs.push(exists(&mut s0, "/nope", true));
    errs.push(children(&mut s1, "/a", true));
    errs.push(get_data(&mut s1, "/a/b", true));
    errs.push(get_data(&mut s1, "/a", true));
    (vec![s0, s1], sids, errs)
}

// ============================================================== normalising ==

/// Replaces a value by `<WHAT>` after checking its JSON type; a value of another type
/// becomes `<WHAT: unexpected VALUE>`, which then shows in the diff.
fn mask_value(x: &mut Value, what: &str) {
    let ok = match what {
        "INT" => x.is_i64() || x.is_u64(),
        "FLOAT" => x.is_f64(),
        "STRING" => x.is_string(),
        _ => true,
    };
    *x = if ok { Value::String(format!("<{what}>")) } else { Value::String(format!("<{what}: unexpected {x}>")) };
}

/// [`mask_value`] at a JSON pointer, when present (a missing key shows in the diff).
fn mask(v: &mut Value, ptr: &str, what: &str) {
    if let Some(x) = v.pointer_mut(ptr) {
        mask_value(x, what);
    }
}

/// Applies `f` to every string in `v` (values, not keys).
fn map_strings(v: &mut Value, f: &dyn Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(a) => a.iter_mut().for_each(|x| map_strings(x, f)),
        Value::Object(m) => m.values_mut().for_each(|x| map_strings(x, f)),
        _ => {}
    }
}

/// Sorts an array by the compact text of its elements (hash order upstream).
fn sort_array(v: &mut Value) {
    if let Value::Array(a) = v {
        a.sort_by_key(|x| x.to_string());
    }
}

/// An object with its keys sorted (hash order upstream).
fn sort_object(m: Map<String, Value>) -> Map<String, Value> {
    let mut entries: Vec<(String, Value)> = m.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

/// Objects that Jackson writes from Java beans (getters), whose key order is HotSpot's
/// reflection order: it is not stable across Apache processes (two Apache followers of
/// one run wrote `zabstate`'s address objects in different orders; `server_stats` comes
/// in one order standalone and in another in a quorum). Their keys are sorted before
/// comparing: the key set and the values still count, the order does not.
fn sort_bean_objects(primary: &str, v: &mut Value) {
    let ptrs: &[&str] = match primary {
        "server_stats" | "stats" => {
            &["/server_stats", "/server_stats/client_response_stats", "/client_response", "/proposal_stats"]
        }
        "zabstate" => &["/quorum_address", "/election_address"],
        _ => &[],
    };
    for p in ptrs {
        if let Some(x) = v.pointer_mut(p) {
            if let Value::Object(m) = x {
                *m = sort_object(std::mem::take(m));
            }
        }
    }
    if primary == "hash" {
        if let Some(Value::Array(a)) = v.get_mut("digests") {
            for d in a {
                if let Value::Object(m) = d {
                    *m = sort_object(std::mem::take(m));
                }
            }
        }
    }
}

/// `127.0.0.1:PORT` → `127.0.0.1:<P>` (a client's ephemeral port).
fn mask_client_address(x: &mut Value) {
    let ok = x
        .as_str()
        .and_then(|s| s.strip_prefix("127.0.0.1:"))
        .map(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or(false);
    *x = if ok { Value::String("127.0.0.1:<P>".into()) } else { Value::String(format!("<ADDRESS: unexpected {x}>")) };
}

/// What differs between the two standalone servers by necessity: directory, ports,
/// session ids.
struct StandaloneNorm {
    /// The server's directory (its dataDir is `DIR/data`, its working directory `DIR`).
    dir: String,
    client_port: u16,
    admin_port: u16,
    /// Session ids of the workload in order: shown as `S0`, `S1`, `S2`.
    sids: Vec<i64>,
    /// Right after `connection_stat_reset`: the connections' latencies and last response
    /// time are the reset values (0), compared exactly.
    conns_reset: bool,
    /// Right after `stat_reset`: the server's latencies are the reset values, compared
    /// exactly.
    stats_reset: bool,
}

impl StandaloneNorm {
    fn new(srv: &TestServer, admin_port: u16, sids: &[i64]) -> StandaloneNorm {
        StandaloneNorm {
            dir: srv.dir().display().to_string(),
            client_port: srv.port(),
            admin_port,
            sids: sids.to_vec(),
            conns_reset: false,
            stats_reset: false,
        }
    }

    /// This normaliser for the answers right after `reset` ran.
    fn after(&self, reset: Reset) -> StandaloneNorm {
        StandaloneNorm {
            dir: self.dir.clone(),
            client_port: self.client_port,
            admin_port: self.admin_port,
            sids: self.sids.clone(),
            conns_reset: reset == Reset::Connections,
            stats_reset: reset == Reset::Server,
        }
    }

    fn sid_label(&self, id: i64) -> String {
        match self.sids.iter().position(|&s| s == id) {
            Some(k) => format!("S{k}"),
            None => format!("<SESSION NOT OF THE WORKLOAD: 0x{id:x}>"),
        }
    }

    /// A session id given as a JSON number or as a decimal string (object keys).
    fn sid_value(&self, x: &Value) -> String {
        match x.as_i64().or_else(|| x.as_str().and_then(|s| s.parse().ok())) {
            Some(id) => self.sid_label(id),
            None => format!("<NOT A SESSION ID: {x}>"),
        }
    }

    /// A connection entry of `cons`/`stat`: address, session id, times and latencies.
    fn connection(&self, c: &mut Value) {
        if let Some(x) = c.get_mut("remote_socket_address") {
            mask_client_address(x);
        }
        if let Some(x) = c.get_mut("session_id") {
            *x = Value::String(self.sid_value(x));
        }
        mask(c, "/established", "INT");
        if !self.conns_reset {
            for k in ["last_response_time", "last_latency", "min_latency", "avg_latency", "max_latency"] {
                mask(c, &format!("/{k}"), "INT");
            }
        }
    }

    fn connection_list(&self, v: &mut Value, key: &str) {
        if let Some(Value::Array(a)) = v.get_mut(key) {
            a.iter_mut().for_each(|c| self.connection(c));
        }
        if let Some(a) = v.get_mut(key) {
            sort_array(a);
        }
    }

    /// `server_stats`/`stats` minus what time and the file system decide.
    fn server_stats(&self, v: &mut Value) {
        mask(v, "/version", "VERSION");
        for k in ["data_dir_size", "log_dir_size", "uptime"] {
            mask(v, &format!("/server_stats/{k}"), "INT");
        }
        if !self.stats_reset {
            mask(v, "/server_stats/max_latency", "INT");
            mask(v, "/server_stats/min_latency", "INT");
            mask(v, "/server_stats/avg_latency", "FLOAT");
        }
    }

    /// Normalises the answer of the command `primary` (not `monitor`, not
    /// `system_properties`: those are compared by their own functions).
    fn normalise(&self, primary: &str, v: &mut Value) {
        let dir = self.dir.clone();
        map_strings(v, &|s| s.replace(&dir, "<DIR>"));
        sort_bean_objects(primary, v);
        match primary {
            "configuration" => {
                if let Some(x) = v.get_mut("client_port") {
                    *x = if x.as_u64() == Some(self.client_port as u64) {
                        Value::String("<CLIENT_PORT>".into())
                    } else {
                        Value::String(format!("<NOT THE CLIENT PORT: {x}>"))
                    };
                }
            }
            "connections" => {
                self.connection_list(v, "connections");
                self.connection_list(v, "secure_connections");
            }
            "dirs" => {
                mask(v, "/datadir_size", "INT");
                mask(v, "/logdir_size", "INT");
            }
            "dump" => {
                // {expiry time: [session ids]}: the buckets depend on timing, the set of
                // sessions does not: one sorted list under a placeholder key
                if let Some(Value::Object(m)) = v.get_mut("expiry_time_to_session_ids") {
                    let mut all: Vec<String> = Vec::new();
                    let mut bad = Vec::new();
                    for (t, ids) in m.iter() {
                        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                            bad.push(format!("<BAD EXPIRY TIME {t:?}>"));
                        }
                        match ids.as_array() {
                            Some(a) => all.extend(a.iter().map(|x| self.sid_value(x))),
                            None => bad.push(format!("<NOT AN ARRAY: {ids}>")),
                        }
                    }
                    all.sort();
                    all.extend(bad);
                    let mut nm = Map::new();
                    nm.insert("<EXPIRY BUCKETS>".into(), Value::Array(all.into_iter().map(Value::String).collect()));
                    *m = nm;
                }
                if let Some(Value::Object(m)) = v.get_mut("session_id_to_ephemeral_paths") {
                    let old = std::mem::take(m);
                    let mut nm = Map::new();
                    for (k, mut paths) in old {
                        sort_array(&mut paths);
                        nm.insert(self.sid_value(&Value::String(k)), paths);
                    }
                    *m = sort_object(nm);
                }
            }
            "environment" => {
                if let Value::Object(m) = v {
                    for (k, x) in m.iter_mut() {
                        match k.as_str() {
                            "command" | "error" => {}
                            "zookeeper.version" => mask_value(x, "VERSION"),
                            // the same machine and user on both sides
                            "os.name" | "os.arch" | "os.version" | "user.name" | "user.home" | "java.io.tmpdir" => {}
                            // the working directory: the server's own (already <DIR>)
                            "user.dir" => {}
                            "os.memory.free" | "os.memory.max" | "os.memory.total" => {
                                let ok = x
                                    .as_str()
                                    .and_then(|s| s.strip_suffix("MB"))
                                    .map(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                                    .unwrap_or(false);
                                *x = Value::String(if ok { "<N>MB".into() } else { format!("<NOT NMB: {x}>") });
                            }
                            // the host name lookup and the JVM's facts (java.*)
                            _ => mask_value(x, "STRING"),
                        }
                    }
                }
            }
            "hash" => {
                if let Some(Value::Array(a)) = v.get_mut("digests") {
                    for d in a {
                        // the digest covers ctime/mtime of every node: time
                        mask(d, "/digest", "INT");
                    }
                }
            }
            "initial_configuration" => {
                let (cp, ap) = (self.client_port, self.admin_port);
                map_strings(v, &|s| {
                    s.replace(&format!("clientPort={cp}\n"), "clientPort=<CLIENT_PORT>\n")
                        .replace(&format!("admin.serverPort={ap}\n"), "admin.serverPort=<ADMIN_PORT>\n")
                });
            }
            "last_snapshot" => mask(v, "/timestamp", "INT"),
            "server_stats" => self.server_stats(v),
            "stats" => {
                self.server_stats(v);
                self.connection_list(v, "connections");
                self.connection_list(v, "secure_connections");
            }
            "watches" => {
                if let Some(Value::Object(m)) = v.get_mut("session_id_to_watched_paths") {
                    let old = std::mem::take(m);
                    let mut nm = Map::new();
                    for (k, mut paths) in old {
                        sort_array(&mut paths);
                        nm.insert(self.sid_value(&Value::String(k)), paths);
                    }
                    *m = sort_object(nm);
                }
            }
            "watches_by_path" => {
                if let Some(Value::Object(m)) = v.get_mut("path_to_session_ids") {
                    let old = std::mem::take(m);
                    let mut nm = Map::new();
                    for (path, ids) in old {
                        let mut ids = match ids {
                            Value::Array(a) => {
                                Value::Array(a.iter().map(|x| Value::String(self.sid_value(x))).collect())
                            }
                            other => Value::String(format!("<NOT AN ARRAY: {other}>")),
                        };
                        sort_array(&mut ids);
                        nm.insert(path, ids);
                    }
                    *m = sort_object(nm);
                }
            }
            _ => {}
        }
    }
}

// ================================================================ comparing ==

/// Keys of a JSON object in order ([] for anything else).
fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// The JSON type of a value, for "same type" checks.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Status code and Content-Type (or its absence) must be Apache's.
fn same_status_and_type(what: &str, ra: &HttpResponse, ro: &HttpResponse, f: &mut Failures) {
    f.check(ra.status == ro.status, || format!("{what}: status: Apache {}, ours {}", ra.status, ro.status));
    let (ta, to) = (ra.header("Content-Type"), ro.header("Content-Type"));
    f.check(ta == to, || format!("{what}: Content-Type: Apache {ta:?}, ours {to:?}"));
}

/// Compares the normalised values as Jackson would print them (so key order counts).
fn compare_values(what: &str, a: &Value, o: &Value, f: &mut Failures) {
    let (ta, to) = (jackson_pretty(a), jackson_pretty(o));
    if ta != to {
        f.push(format!("{what}: differs after normalising:\n{}", line_diff("apache", &ta, "ours", &to)));
    }
}

/// The body must be exactly what Jackson's pretty printer makes of its own JSON. On
/// Apache's side this checks the renderer of this test.
fn check_layout(who: &str, what: &str, r: &HttpResponse, v: &Value, f: &mut Failures) {
    let want = jackson_pretty(v);
    let got = r.text();
    if want != got {
        f.push(format!(
            "{who} {what}: body is not laid out as Jackson's pretty printer does:\n{}",
            line_diff("jackson layout", &want, "body", &got)
        ));
    }
}

/// `monitor`/`mntr`: its metrics come in hash order, so the key SET is compared (minus
/// [`MNTR_EXCEPTIONS`]), the first keys (written before the metrics) and the last two
/// (`command`, `error`) in order, every value's JSON type, and the `exact` values.
fn compare_mntr(what: &str, a: &Value, o: &Value, exact: &[&str], first: &[&str], f: &mut Failures) {
    let excepted = |k: &str| MNTR_EXCEPTIONS.iter().any(|(e, _)| *e == k);
    let (ka, ko) = (keys(a), keys(o));
    let sa: BTreeSet<&str> = ka.iter().map(|s| s.as_str()).filter(|k| !excepted(k)).collect();
    let so: BTreeSet<&str> = ko.iter().map(|s| s.as_str()).filter(|k| !excepted(k)).collect();
    let missing: Vec<&&str> = sa.difference(&so).collect();
    let extra: Vec<&&str> = so.difference(&sa).collect();
    f.check(missing.is_empty() && extra.is_empty(), || {
        format!("{what}: key sets differ; missing in ours: {missing:?}; only in ours: {extra:?}")
    });
    for (i, k) in first.iter().enumerate() {
        for (who, ks) in [("Apache", &ka), ("ours", &ko)] {
            let got = ks.get(i).map(|s| s.as_str());
            f.check(got == Some(*k), || format!("{what}: {who}: key #{i} is {got:?}, want {k:?}"));
        }
    }
    let tail = |k: &[String]| k.iter().rev().take(2).rev().cloned().collect::<Vec<_>>();
    let last = tail(&ko);
    f.check(last == ["command", "error"], || format!("{what}: our last keys are {last:?}, want [command, error]"));
    for k in sa.intersection(&so) {
        let (va, vo) = (&a[*k], &o[*k]);
        f.check(json_type(va) == json_type(vo), || {
            format!("{what}: {k}: Apache has a {} ({va}), ours a {} ({vo})", json_type(va), json_type(vo))
        });
        if *k == "version" {
            f.check(vo.as_str().map(|s| s.starts_with("3.8.")).unwrap_or(false), || format!("{what}: version {vo}"));
        } else if exact.contains(k) || ["command", "error"].contains(k) {
            f.check(va == vo, || format!("{what}: {k}: Apache {va}, ours {vo}"));
        }
    }
}

/// `system_properties`/`sysp`: JVM properties, sorted. Ours has no JVM; what must agree:
/// the keys are sorted with `command`, `error` last, every `zookeeper.*` property Apache
/// got from zoo.cfg (all of its `zookeeper.*` but the harness's `-Dzookeeper.log.dir`) is
/// there with the same value (the admin port: each its own), and properties of the
/// machine that ours reports too have Apache's values.
fn compare_sysp(what: &str, a: &Value, o: &Value, an: &StandaloneNorm, on: &StandaloneNorm, f: &mut Failures) {
    let (ka, ko) = (keys(a), keys(o));
    for (who, k) in [("Apache", &ka), ("ours", &ko)] {
        let n = k.len();
        f.check(n >= 2 && k[n - 2] == "command" && k[n - 1] == "error", || format!("{what}: {who}: last keys {k:?}"));
        let props = &k[..n.saturating_sub(2)];
        f.check(props.windows(2).all(|w| w[0] < w[1]), || format!("{what}: {who}: keys not sorted: {props:?}"));
    }
    let value = |v: &Value, k: &str, n: &StandaloneNorm| -> Option<String> {
        let s = v.get(k)?.as_str()?.to_string();
        Some(s.replace(&n.dir, "<DIR>").replace(&format!("={}", n.admin_port), "=<ADMIN_PORT>"))
    };
    for k in ka.iter().filter(|k| k.starts_with("zookeeper.") && *k != "zookeeper.log.dir") {
        let mut va = value(a, k, an);
        let mut vo = value(o, k, on);
        if k == "zookeeper.admin.serverPort" {
            let norm = |v: Option<String>, p: u16| v.map(|s| if s == p.to_string() { "<PORT>".into() } else { s });
            va = norm(va, an.admin_port);
            vo = norm(vo, on.admin_port);
        }
        f.check(va == vo, || format!("{what}: {k}: Apache {va:?}, ours {vo:?}"));
    }
    for k in [
        "os.name", "os.arch", "os.version", "user.name", "user.home", "user.dir", "file.separator", "path.separator",
        "line.separator",
    ] {
        if o.get(k).is_some() {
            let (va, vo) = (value(a, k, an), value(o, k, on));
            f.check(va == vo, || format!("{what}: {k}: Apache {va:?}, ours {vo:?}"));
        }
    }
    for k in ["command", "error"] {
        f.check(a.get(k) == o.get(k), || format!("{what}: {k}: Apache {:?}, ours {:?}", a.get(k), o.get(k)));
    }
}

/// GETs `target` on both, compares status and Content-Type, checks our layout, and
/// returns both JSON bodies (None when a body is not JSON; that is recorded).
fn get_both(
    target: &str,
    aport: u16,
    oport: u16,
    f: &mut Failures,
) -> (HttpResponse, HttpResponse, Option<(Value, Value)>) {
    let ra = http("Apache", aport, "GET", target);
    let ro = http("ours", oport, "GET", target);
    if show() {
        println!("=== Apache GET {target}: {} {:?}\n{}", ra.status, ra.header("Content-Type"), ra.text());
    }
    same_status_and_type(&format!("GET {target}"), &ra, &ro, f);
    let va = ra.json().unwrap_or_else(|e| panic!("Apache GET {target}: {e}"));
    check_layout("Apache", &format!("GET {target}"), &ra, &va, f);
    let vo = match ro.json() {
        Ok(v) => v,
        Err(e) => {
            f.push(format!("ours GET {target}: {e}"));
            return (ra, ro, None);
        }
    };
    check_layout("ours", &format!("GET {target}"), &ro, &vo, f);
    (ra, ro, Some((va, vo)))
}

/// One command of the standalone comparison: `target` is the name typed (primary or
/// alias, maybe with a query); `primary` what `command` must say.
fn compare_command(
    target: &str,
    primary: &str,
    aport: u16,
    oport: u16,
    an: &StandaloneNorm,
    on: &StandaloneNorm,
    f: &mut Failures,
) -> Option<(Value, Value)> {
    let path = format!("/commands/{target}");
    let (ra, _ro, vals) = get_both(&path, aport, oport, f);
    assert_eq!(ra.status, 200, "Apache GET {path}");
    assert_eq!(ra.header("Content-Type"), Some("application/json"), "Apache GET {path}");
    let (va, vo) = vals?;
    assert_eq!(va.get("command").and_then(Value::as_str), Some(primary), "Apache GET {path}: command");
    match primary {
        "monitor" => compare_mntr(&format!("GET {path}"), &va, &vo, MNTR_EXACT, &["version", "server_state"], f),
        "system_properties" => compare_sysp(&format!("GET {path}"), &va, &vo, an, on, f),
        _ => {
            let (mut na, mut no) = (va.clone(), vo.clone());
            an.normalise(primary, &mut na);
            on.normalise(primary, &mut no);
            if show() {
                println!("--- normalised:\n{}", jackson_pretty(&na));
            }
            compare_values(&format!("GET {path}"), &na, &no, f);
        }
    }
    Some((va, vo))
}

/// The 26 commands of 3.8 with their aliases, in the order the standalone test asks them:
/// first those that only read, then (below) the resets.
const READING_COMMANDS: &[(&str, &[&str])] = &[
    ("ruok", &[]),
    ("configuration", &["conf", "config"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("get_trace_mask", &["gtmk"]),
    ("hash", &[]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("observers", &["obsr"]),
    ("server_stats", &["srvr"]),
    ("stats", &["stat"]),
    ("system_properties", &["sysp"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// What a resetting command resets.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reset {
    Connections,
    Server,
    Nothing,
}

/// Commands that change counters or settings, each followed by the commands that show it.
const RESETTING_COMMANDS: &[(&str, &[&str], &[&str], Reset)] = &[
    ("connection_stat_reset", &["crst"], &["cons", "stat"], Reset::Connections),
    ("observer_connection_stat_reset", &["orst"], &["obsr"], Reset::Nothing),
    ("stat_reset", &["srst"], &["srvr", "mntr"], Reset::Server),
    // without its argument: an error, the mask stays
    ("set_trace_mask", &["stmk"], &["gtmk"], Reset::Nothing),
];

/// Commands whose bodies must be byte-identical to Apache's (deterministic for the state;
/// `stmk?traceMask=123` right before makes `gtmk` say 123).
const BYTE_IDENTICAL: &[&str] = &[
    "ruok",
    "gtmk",
    "get_trace_mask",
    "wchs",
    "isro",
    "obsr",
    "zabstate",
    "voting_view",
    "lead",
    "crst",
    "orst",
    "srst",
    "nosuch",
    "ruok/",
    "RUOK",
    "stmk",
    "stmk?traceMask=abc",
    "stmk?traceMask=123",
    "set_trace_mask?traceMask=123",
    "ruok?unused=1&flag",
];

fn primary_of(name: &str) -> &'static str {
    let all = READING_COMMANDS
        .iter()
        .map(|(p, a)| (*p, *a))
        .chain(RESETTING_COMMANDS.iter().map(|(p, a, _, _)| (*p, *a)));
    for (p, aliases) in all {
        if p == name || aliases.contains(&name) {
            return p;
        }
    }
    panic!("unknown command name {name}")
}

#[test]
fn commands_match_apache_standalone() {
    let (aport, oport) = (free_port(), free_port());
    let apache = ApacheServer::start_standalone(&admin_cfg(aport));
    let ours = OurServer::start_standalone(&admin_cfg(oport), &[]);
    wait_admin_serving("Apache", aport, ADMIN_READY);
    wait_admin_serving("ours", oport, ADMIN_READY);
    // The harness polled both with 4lw ruok/srvr until they served (a different number
    // of times): counters start from zero here.
    for (who, p) in [("Apache", aport), ("ours", oport)] {
        let r = http(who, p, "GET", "/commands/srst");
        assert_eq!(r.status, 200, "{who} srst");
    }
    let (_ac, asids, aerr) = workload(&apache.connect_string());
    let (_oc, osids, oerr) = workload(&ours.connect_string());
    assert_eq!(aerr, oerr, "workload error codes differ (Apache, ours)");
    // everything succeeds but the exists of /nope (NONODE, the watch is set all the same)
    let nonode = aerr.len() - 4;
    let want: Vec<i32> = (0..aerr.len()).map(|i| if i == nonode { -101 } else { 0 }).collect();
    assert_eq!(aerr, want, "workload on Apache");
    let an = StandaloneNorm::new(&apache, aport, &asids);
    let on = StandaloneNorm::new(&ours, oport, &osids);
    let mut f = Failures::default();

    // -- every command, every alias --
    for (primary, aliases) in READING_COMMANDS {
        for name in std::iter::once(primary).chain(aliases.iter()) {
            compare_command(name, primary, aport, oport, &an, &on, &mut f);
        }
    }
    for (primary, aliases, then, reset) in RESETTING_COMMANDS {
        let (ar, or) = (an.after(*reset), on.after(*reset));
        for name in std::iter::once(primary).chain(aliases.iter()) {
            compare_command(name, primary, aport, oport, &an, &on, &mut f);
            for t in *then {
                compare_command(t, primary_of(t), aport, oport, &ar, &or, &mut f);
            }
        }
    }
    // The ones that must say exactly what Apache says, byte for byte (in this order: the
    // stmk ones set the mask to 123, which the gtmk at the end reads).
    for target in BYTE_IDENTICAL.iter().chain(["gtmk"].iter()) {
        let path = format!("/commands/{target}");
        let ra = http("Apache", aport, "GET", &path);
        let ro = http("ours", oport, "GET", &path);
        if show() {
            println!("=== Apache GET {path}: {}\n{}", ra.status, ra.text());
        }
        same_status_and_type(&format!("GET {path}"), &ra, &ro, &mut f);
        f.check(ra.body == ro.body, || {
            format!("GET {path}: body not byte-identical:\n{}", line_diff("apache", &ra.text(), "ours", &ro.text()))
        });
    }
    // Spot checks of Apache's own answers (the spec the comparison above relies on).
    let ra = http("Apache", aport, "GET", "/commands/nosuch").json().unwrap();
    assert_eq!(ra["error"], "Unknown command: nosuch", "Apache nosuch");
    let ra = http("Apache", aport, "GET", "/commands/gtmk").json().unwrap();
    assert_eq!(ra["tracemask"], 123, "Apache gtmk after stmk?traceMask=123");

    // -- the link list: GET <commandURL> and <commandURL>/ --
    for target in ["/commands", "/commands/"] {
        let ra = http("Apache", aport, "GET", target);
        let ro = http("ours", oport, "GET", target);
        if show() {
            println!("=== Apache GET {target}: {} {:?}\n{}", ra.status, ra.header("Content-Type"), ra.text());
        }
        assert_eq!(ra.status, 200, "Apache GET {target}");
        same_status_and_type(&format!("GET {target}"), &ra, &ro, &mut f);
        f.check(ra.body == ro.body, || {
            format!("GET {target}: body not byte-identical:\n{}", line_diff("apache", &ra.text(), "ours", &ro.text()))
        });
        // The list names exactly the primary names this test asks (26 in 3.8).
        let listed: BTreeSet<String> = Regex::new(r#"<a href="/commands/([a-z_]+)">"#)
            .unwrap()
            .captures_iter(&ra.text())
            .map(|c| c[1].to_string())
            .collect();
        let asked: BTreeSet<String> = READING_COMMANDS
            .iter()
            .map(|(p, _)| p.to_string())
            .chain(RESETTING_COMMANDS.iter().map(|(p, _, _, _)| p.to_string()))
            .collect();
        assert_eq!(listed, asked, "Apache's command list vs this test's");
        assert_eq!(asked.len(), 26);
    }

    // -- other methods than GET; paths outside the command URL: statuses only (Apache's
    // bodies there are Jetty's HTML error pages) --
    for (method, target) in [
        ("POST", "/commands/ruok"),
        ("PUT", "/commands/ruok"),
        ("DELETE", "/commands/ruok"),
        ("TRACE", "/commands/ruok"),
        ("OPTIONS", "/commands/ruok"),
        ("HEAD", "/commands/ruok"),
        ("POST", "/commands"),
        ("GET", "/foo"),
        ("GET", "/"),
        ("GET", "/commandsruok"),
        ("POST", "/foo"),
    ] {
        let ra = http("Apache", aport, method, target);
        let ro = http("ours", oport, method, target);
        if show() {
            println!("=== Apache {method} {target}: {} {}", ra.status, ra.reason);
        }
        if method == "HEAD" {
            same_status_and_type(&format!("HEAD {target}"), &ra, &ro, &mut f);
        } else {
            let (sa, so) = (ra.status, ro.status);
            f.check(sa == so, || format!("{method} {target}: status: Apache {sa}, ours {so}"));
        }
    }
    f.finish("AdminServer, standalone");
}

// =================================================================== ensemble ==

/// What differs between two nodes in the same role: ids, ports, directory. Every port
/// and sid of the ensemble is named by its node's role as seen from the node asked:
/// `SELF`, `LEADER`, `PEER` (a follower's fellow follower), or `PEER1`/`PEER2` (a
/// leader's followers, by sid).
struct RoleNorm {
    dir: String,
    /// port → `<ROLE_KIND>` (CLIENT, QUORUM, ELECTION, ADMIN)
    ports: HashMap<u16, String>,
    /// sid → `<ROLE_ID>`
    sids: HashMap<u64, String>,
}

impl RoleNorm {
    fn new(ens: &Ensemble, admin: &BTreeMap<u64, u16>, me: u64, leader: u64) -> RoleNorm {
        let others: Vec<u64> = ens.sids().into_iter().filter(|&s| s != me && s != leader).collect();
        let role = |sid: u64| -> String {
            if sid == me {
                "SELF".into()
            } else if sid == leader {
                "LEADER".into()
            } else if me == leader {
                format!("PEER{}", others.iter().position(|&s| s == sid).unwrap() + 1)
            } else {
                "PEER".into()
            }
        };
        let mut ports = HashMap::new();
        let mut sids = HashMap::new();
        for n in ens.nodes() {
            let r = role(n.sid());
            ports.insert(n.client_port(), format!("<{r}_CLIENT>"));
            ports.insert(n.quorum_port(), format!("<{r}_QUORUM>"));
            ports.insert(n.election_port(), format!("<{r}_ELECTION>"));
            ports.insert(admin[&n.sid()], format!("<{r}_ADMIN>"));
            sids.insert(n.sid(), format!("<{r}_ID>"));
        }
        RoleNorm { dir: ens.node(me).dir().display().to_string(), ports, sids }
    }

    fn sid_value(&self, x: &Value) -> Value {
        let id = x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok()));
        Value::String(match id.and_then(|i| self.sids.get(&i)) {
            Some(l) => l.clone(),
            None => format!("<NOT A SID OF THE ENSEMBLE: {x}>"),
        })
    }

    /// Ports after a ':' in every string, ids under the keys that hold sids, the
    /// `voting_view` map's keys; then the volatile values of `server_stats`.
    fn normalise(&self, primary: &str, v: &mut Value) {
        let re = Regex::new(r":(\d{1,5})\b").unwrap();
        let dir = self.dir.clone();
        map_strings(v, &|s| {
            let s = s.replace(&dir, "<DIR>");
            re.replace_all(&s, |c: &regex::Captures| {
                match c[1].parse::<u16>().ok().and_then(|p| self.ports.get(&p)) {
                    Some(l) => format!(":{l}"),
                    None => c[0].to_string(),
                }
            })
            .into_owned()
        });
        sort_bean_objects(primary, v);
        if primary == "zabstate" {
            // the address objects list their ports as numbers too
            for p in ["/quorum_address/all_ports", "/election_address/all_ports"] {
                if let Some(Value::Array(a)) = v.pointer_mut(p) {
                    for x in a.iter_mut() {
                        let l = x.as_u64().and_then(|p| self.ports.get(&(p as u16))).cloned();
                        *x = Value::String(l.unwrap_or_else(|| format!("<NOT A PORT OF THE ENSEMBLE: {x}>")));
                    }
                }
            }
        }
        if let Value::Object(m) = v {
            for k in ["myid", "server_id", "leader_id"] {
                if let Some(x) = m.get_mut(k) {
                    *x = self.sid_value(x);
                }
            }
            if primary == "configuration" {
                if let Some(x) = m.get_mut("client_port") {
                    let l = x.as_u64().and_then(|p| self.ports.get(&(p as u16))).cloned();
                    *x = Value::String(l.unwrap_or_else(|| format!("<NOT A CLIENT PORT: {x}>")));
                }
            }
            if let Some(Value::Object(cc)) = m.get_mut("current_config") {
                let old = std::mem::take(cc);
                let mut nm = Map::new();
                for (k, x) in old {
                    let label = self.sid_value(&Value::String(k));
                    nm.insert(label.as_str().unwrap().to_string(), x);
                }
                *cc = sort_object(nm);
            }
        }
        if primary == "server_stats" {
            mask(v, "/version", "VERSION");
            // the harness's 4lw polling and the admin requests count differently
            for k in [
                "packets_sent",
                "packets_received",
                "data_dir_size",
                "log_dir_size",
                "uptime",
                "max_latency",
                "min_latency",
                "client_response_stats/last_buffer_size",
                "client_response_stats/min_buffer_size",
                "client_response_stats/max_buffer_size",
            ] {
                mask(v, &format!("/server_stats/{k}"), "INT");
            }
            mask(v, "/server_stats/avg_latency", "FLOAT");
            for k in ["last_buffer_size", "min_buffer_size", "max_buffer_size"] {
                mask(v, &format!("/client_response/{k}"), "INT");
            }
        }
    }
}

/// Commands compared between nodes of the same role.
const ENSEMBLE_COMMANDS: &[(&str, &[&str])] = &[
    ("ruok", &[]),
    ("leader", &["lead"]),
    ("zabstate", &[]),
    ("voting_view", &[]),
    ("observers", &["obsr"]),
    ("configuration", &["conf"]),
    ("server_stats", &["srvr"]),
    ("monitor", &["mntr"]),
];

/// `mntr` values compared exactly between two nodes of the same role in a quorum.
const MNTR_EXACT_QUORUM: &[&str] = &[
    "server_state",
    "peer_state",
    "znode_count",
    "ephemerals_count",
    "watch_count",
    "global_sessions",
    "local_sessions",
    "outstanding_requests",
    "approximate_data_size",
    "learners",
    "synced_followers",
    "synced_non_voting_followers",
    "synced_observers",
    "pending_syncs",
];

/// Every answer of one node: (name typed, primary) → response.
struct NodeAnswers {
    sid: u64,
    imp: Impl,
    norm: RoleNorm,
    answers: Vec<(String, String, HttpResponse)>,
}

/// An ensemble of `imps` (sids 1..=3, sid 3 starts first and leads) with the AdminServer
/// on every node; after one write through the leader and every node at the same zxid,
/// the answers of `ENSEMBLE_COMMANDS` on each node. The ensemble stops on return.
fn ensemble_answers(imps: &[Impl]) -> BTreeMap<u64, NodeAnswers> {
    let mut spec = EnsembleSpec::of(imps);
    let mut admin = BTreeMap::new();
    for sid in 1..=imps.len() as u64 {
        let p = free_port();
        admin.insert(sid, p);
        spec = spec.node_cfg(sid, &admin_cfg(p));
    }
    let ens = Ensemble::start(spec);
    let modes = ens.wait_for_mode_all(Duration::from_secs(60));
    let leader = 3;
    assert_eq!(modes.get(&leader), Some(&Mode::Leader), "sid 3 (started first) leads: {modes:?}");
    for (&sid, &p) in &admin {
        wait_admin_serving(&format!("node {sid} ({:?})", ens.node(sid).imp()), p, ADMIN_READY);
    }
    // One session writes through the leader and goes; then every node shows the same zxid.
    let mut c = RawClient::connect(&ens.node(leader).connect_string()).expect("connect to the leader");
    assert_eq!(create(&mut c, "/admin", b"x", 0), 0, "create /admin");
    c.close_session().expect("close session");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let zxids: BTreeMap<u64, Value> = admin
            .iter()
            .map(|(&sid, &p)| {
                let v = http("node", p, "GET", "/commands/zabstate").json().unwrap_or(Value::Null);
                (sid, v["last_zxid"].clone())
            })
            .collect();
        if zxids.values().all(|z| z == &zxids[&leader]) && zxids[&leader] != Value::Null {
            break;
        }
        assert!(Instant::now() < deadline, "the nodes do not reach the same zxid: {zxids:?}");
        thread::sleep(Duration::from_millis(100));
    }
    let mut out = BTreeMap::new();
    for n in ens.nodes() {
        let sid = n.sid();
        let mut answers = Vec::new();
        for (primary, aliases) in ENSEMBLE_COMMANDS {
            for name in std::iter::once(primary).chain(aliases.iter()) {
                let r = http(&format!("node {sid}"), admin[&sid], "GET", &format!("/commands/{name}"));
                answers.push((name.to_string(), primary.to_string(), r));
            }
        }
        out.insert(sid, NodeAnswers { sid, imp: n.imp(), norm: RoleNorm::new(&ens, &admin, sid, leader), answers });
    }
    out
}

/// Compares the answers of an Apache node and of ours in the same role.
fn compare_nodes(role: &str, a: &NodeAnswers, o: &NodeAnswers, f: &mut Failures) {
    let what = format!("{role}: Apache node {} vs our node {}", a.sid, o.sid);
    for ((name, primary, ra), (_, _, ro)) in a.answers.iter().zip(o.answers.iter()) {
        let w = format!("{what}: GET /commands/{name}");
        if show() {
            println!("=== {role} Apache node {} GET /commands/{name}: {}\n{}", a.sid, ra.status, ra.text());
        }
        assert_eq!(ra.status, 200, "{w}: Apache's status");
        same_status_and_type(&w, ra, ro, f);
        let va = ra.json().unwrap_or_else(|e| panic!("{w}: Apache: {e}"));
        check_layout("Apache", &w, ra, &va, f);
        let vo = match ro.json() {
            Ok(v) => v,
            Err(e) => {
                f.push(format!("{w}: ours: {e}"));
                continue;
            }
        };
        check_layout("ours", &w, ro, &vo, f);
        if primary == "monitor" {
            compare_mntr(&w, &va, &vo, MNTR_EXACT_QUORUM, &["version", "server_state", "peer_state"], f);
            continue;
        }
        let (mut na, mut no) = (va.clone(), vo.clone());
        a.norm.normalise(primary, &mut na);
        o.norm.normalise(primary, &mut no);
        compare_values(&w, &na, &no, f);
    }
}

/// Facts of a node's answers that hold whatever the implementation.
fn check_role_facts(n: &NodeAnswers, leader: bool, f: &mut Failures) {
    let get = |name: &str| -> Value {
        n.answers.iter().find(|(t, _, _)| t == name).and_then(|(_, _, r)| r.json().ok()).unwrap_or(Value::Null)
    };
    let who = format!("node {} ({:?})", n.sid, n.imp);
    let lead = get("leader");
    f.check(lead["is_leader"] == leader && lead["leader_id"] == 3 && lead["error"].is_null(), || {
        format!("{who}: leader: {lead}")
    });
    let z = get("zabstate");
    f.check(
        z["zabstate"] == "broadcast" && z["voting"] == true && z["is_leader"] == leader && z["myid"] == n.sid,
        || format!("{who}: zabstate: {z}"),
    );
    let s = get("server_stats");
    let state = if leader { "leader" } else { "follower" };
    f.check(s["server_stats"]["server_state"] == state, || format!("{who}: server_stats: {s}"));
}

#[test]
fn commands_match_apache_in_ensemble() {
    use Impl::{Apache as J, Ours as R};
    let mut f = Failures::default();
    // Java leader 3; followers: 1 Java, 2 ours.
    let e1 = ensemble_answers(&[J, R, J]);
    // Rust leader 3; followers: 1 ours, 2 Java.
    let e2 = ensemble_answers(&[R, J, R]);
    for n in e1.values().chain(e2.values()) {
        check_role_facts(n, n.sid == 3, &mut f);
    }
    compare_nodes("followers of a Java leader", &e1[&1], &e1[&2], &mut f);
    compare_nodes("followers of a Rust leader", &e2[&2], &e2[&1], &mut f);
    compare_nodes("leaders", &e1[&3], &e2[&3], &mut f);
    f.finish("AdminServer, ensemble");
}

// ================================================================= bad input ==

/// How ours must answer a hostile request, given Apache's answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// The same status as Apache; for a 200, the same JSON body.
    Same,
    /// A refusal: a 4xx/5xx status or the connection closed without an answer (Apache's
    /// exact status is printed; Jetty's choice among refusals is not a contract).
    Refused,
}

/// The hostile requests; `{PORT}` is replaced by the admin port.
fn bad_requests() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let long_line = {
        let mut r = b"GET /commands/".to_vec();
        r.extend(std::iter::repeat(b'a').take(100 * 1024));
        r.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        r
    };
    let long_header = {
        let mut r = b"GET /commands/ruok HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        r.extend(std::iter::repeat(b'b').take(100 * 1024));
        r.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        r
    };
    let req = |s: &str| s.as_bytes().to_vec();
    // a request for `target` with Host and `Connection: close`
    let get = |method: &str, target: &str| {
        format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    };
    vec![
        // binary garbage: Jetty 400 "Illegal character"
        ("binary garbage", b"\x00\x01\x02\xff\xfe garbage\r\n\r\n".to_vec(), Expect::Same),
        // a request line over Jetty's 8 KiB limit: 414 (the server must read the rest of
        // the request, or our side sees a reset instead of the answer)
        ("100 KB request line", long_line, Expect::Same),
        // a header over the limit: 431
        ("100 KB header", long_header, Expect::Same),
        // an absolute URL as target: served as its path
        (
            "absolute URL",
            req(&get("GET", "http://127.0.0.1:{PORT}/commands/ruok")),
            Expect::Same,
        ),
        // `..` inside the command URL: resolved, served as ruok
        ("dot-dot inside", req(&get("GET", "/commands/../commands/ruok")), Expect::Same),
        // `..` above the root: 400
        ("dot-dot above root", req(&get("GET", "/commands/../../etc/passwd")), Expect::Same),
        // HTTP/1.0 without Host: served
        ("HTTP/1.0", req("GET /commands/ruok HTTP/1.0\r\n\r\n"), Expect::Same),
        // HTTP/1.1 without Host: 400
        ("no Host", req("GET /commands/ruok HTTP/1.1\r\nConnection: close\r\n\r\n"), Expect::Same),
        // text that is no request: Jetty 505 "HTTP/0.9 not supported"
        ("words", req("HELLO WORLD\r\n\r\n"), Expect::Refused),
        // an unknown HTTP version: Jetty 426
        ("HTTP/2.0 text", req(&get("GET", "/commands/ruok").replace("HTTP/1.1", "HTTP/2.0")), Expect::Refused),
        // a lower-case method: Jetty 501
        ("lower-case method", req(&get("get", "/commands/ruok")), Expect::Refused),
        // a bad percent escape
        ("bad escape", req(&get("GET", "/commands/%zz")), Expect::Refused),
    ]
}

/// `ruok` on the admin port within [`HELD_ANSWER_BOUND`], and `imok` on the client port.
fn still_serving(who: &str, srv: &TestServer, admin: u16, f: &mut Failures, when: &str) {
    let t = Instant::now();
    let r = send_raw(admin, &request_bytes("GET", "/commands/ruok", admin), false, HELD_ANSWER_BOUND);
    let ok = matches!(&r, Ok(r) if r.status == 200 && r.json().map(|v| v["error"].is_null()).unwrap_or(false));
    let took = t.elapsed();
    f.check(ok, || format!("{who} {when}: /commands/ruok within {HELD_ANSWER_BOUND:?}: {r:?} (after {took:?})"));
    let imok = four_letter_word(&srv.connect_string(), "ruok", Duration::from_secs(5));
    f.check(matches!(&imok, Ok(s) if s == "imok"), || format!("{who} {when}: 4lw ruok on the client port: {imok:?}"));
}

#[test]
fn admin_port_bad_input() {
    let (aport, oport) = (free_port(), free_port());
    let apache = ApacheServer::start_standalone(&admin_cfg(aport));
    let mut ours = OurServer::start_standalone(&admin_cfg(oport), &[]);
    wait_admin_serving("Apache", aport, ADMIN_READY);
    wait_admin_serving("ours", oport, ADMIN_READY);
    let mut f = Failures::default();

    for (name, raw, expect) in bad_requests() {
        let with_port = |p: u16| -> Vec<u8> {
            match std::str::from_utf8(&raw) {
                Ok(text) if text.contains("{PORT}") => text.replace("{PORT}", &p.to_string()).into_bytes(),
                _ => raw.clone(),
            }
        };
        let ra = send_raw(aport, &with_port(aport), false, HTTP_TIMEOUT);
        let ro = send_raw(oport, &with_port(oport), false, HTTP_TIMEOUT);
        let desc = |r: &Result<HttpResponse, String>| match r {
            Ok(r) => format!("{} {}", r.status, r.reason),
            Err(e) => format!("no answer: {e}"),
        };
        println!("bad input {name:?}: Apache {}; ours {}", desc(&ra), desc(&ro));
        let ra = ra.unwrap_or_else(|e| panic!("Apache gives no answer to {name}: {e}"));
        match expect {
            Expect::Same => match &ro {
                Ok(ro) => {
                    let (sa, so) = (ra.status, ro.status);
                    f.check(so == sa, || format!("{name}: status: Apache {sa}, ours {so}"));
                    if sa == 200 {
                        let (ba, bo) = (ra.text(), ro.text());
                        f.check(ba == bo, || format!("{name}: body: Apache {ba:?}, ours {bo:?}"));
                    }
                }
                Err(e) => f.push(format!("{name}: Apache answers {} {}, ours: {e}", ra.status, ra.reason)),
            },
            Expect::Refused => {
                assert!(ra.status >= 400, "{name}: Apache answers {}", ra.status);
                f.check(ro.as_ref().map(|r| r.status >= 400).unwrap_or(true), || {
                    format!("{name}: Apache refuses ({} {}), ours answers {}", ra.status, ra.reason, desc(&ro))
                });
            }
        }
        assert!(ours.is_running(), "our server died after {name:?}\n{}", ours.log_contents());
    }

    // Hostile connections held open: 50 idle ones and one whose header section never
    // ends, on both servers; meanwhile both must still answer.
    let mut held: Vec<TcpStream> = Vec::new();
    for p in [aport, oport] {
        for _ in 0..50 {
            held.push(TcpStream::connect(("127.0.0.1", p)).expect("idle connection"));
        }
        let mut s = TcpStream::connect(("127.0.0.1", p)).expect("slow connection");
        s.write_all(b"GET /commands/ruok HTTP/1.1\r\nHost: x\r\nX-Never: ends").expect("partial header");
        held.push(s);
    }
    let since = Instant::now();
    still_serving("Apache", &apache, aport, &mut f, "with 51 hostile connections open");
    still_serving("ours", &ours, oport, &mut f, "with 51 hostile connections open");
    // keep them a few seconds, then drop them all at once
    thread::sleep(Duration::from_secs(3).saturating_sub(since.elapsed()));
    drop(held);
    thread::sleep(Duration::from_millis(200));
    assert!(ours.is_running(), "our server died with hostile connections\n{}", ours.log_contents());
    still_serving("Apache", &apache, aport, &mut f, "after the hostile connections");
    still_serving("ours", &ours, oport, &mut f, "after the hostile connections");
    f.finish("AdminServer, bad input");
}

// ============================================================== port in use ==

#[test]
fn admin_port_in_use() {
    // The admin port taken by us; the client ports are free.
    let blocker = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    let port = blocker.local_addr().unwrap().port();
    let cfg = admin_cfg(port);
    let mut apache = ApacheServer::spawn_standalone(&cfg);
    let mut ours = OurServer::spawn_standalone(&cfg, &[]);
    let a = apache.wait_exit(Duration::from_secs(60));
    let o = ours.wait_exit(Duration::from_secs(30));
    let (alog, olog) = (apache.log_contents(), ours.log_contents());
    let a = a.unwrap_or_else(|| panic!("Apache did not exit with its admin port taken\n{alog}"));
    println!("Apache exit status with the admin port taken: {a:?}");
    assert_eq!(a.code(), Some(4), "Apache: ERROR_STARTING_ADMIN_SERVER\n{alog}");
    const LINE: &str = "Unable to start AdminServer, exiting abnormally";
    assert!(alog.contains(LINE), "Apache's log lacks {LINE:?}:\n{alog}");
    let o = o.unwrap_or_else(|| panic!("our server did not exit within 30 s with its admin port taken\n{olog}"));
    assert_eq!(o.code(), a.code(), "exit status: Apache {a:?}, ours {o:?}\n--- our log ---\n{olog}");
    assert!(olog.contains(LINE), "our log lacks {LINE:?}:\n{olog}");
    drop(blocker);
}

// ===================================================================== HTTPS ==

/// `admin.forceHttps` and `admin.portUnification` with the quorum's PEM stores
/// (`ssl.quorum.*`, as JettyAdminServer reads them), side by side: the same commands
/// answer the same JSON over HTTPS with Jetty's `Strict-Transport-Security`, plain HTTP
/// is refused on a forced port and served on a unified one, and a bad key store stops
/// the start.
#[test]
fn https_like_apache() {
    common::require_apache();
    let c = common::certs::Certs::new();
    let san = "DNS:localhost,IP:127.0.0.1";
    c.make("ca", "/CN=admin-ca", None, san);
    c.make("server", "/CN=localhost", Some("ca"), san);
    let stores = format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\nssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        c.path("server.pem").display(),
        c.path("ca.crt").display()
    );
    let settings = zookeeper::common::x509_util::SslSettings {
        prefix: "zookeeper.ssl.".into(),
        key_store_location: None,
        key_store_type: None,
        key_store_password: None,
        trust_store_location: Some(c.path("ca.crt").display().to_string()),
        trust_store_type: Some("PEM".into()),
        trust_store_password: None,
        cipher_suites: None,
        client_auth: zookeeper::common::x509_util::ClientAuth::None,
        protocol: "TLSv1.2".into(),
        enabled_protocols: None,
        hostname_verification: true,
    };
    let tls = zookeeper::common::x509_util::client_config(&settings).expect("client config");
    let https = |who: &str, port: u16, target: &str| -> HttpResponse {
        send_raw_over(port, Some(&tls), &request_bytes("GET", target, port), false, HTTP_TIMEOUT)
            .unwrap_or_else(|e| panic!("{who}: GET {target} over HTTPS on {port}: {e}"))
    };
    for mode in ["admin.forceHttps=true", "admin.portUnification=true"] {
        let (aport, oport) = (free_port(), free_port());
        let apache = ApacheServer::start_standalone(&format!("{}{mode}\n{stores}", admin_cfg(aport)));
        let ours = OurServer::start_standalone(&format!("{}{mode}\n{stores}", admin_cfg(oport)), &[]);
        for (who, port) in [("apache", aport), ("ours", oport)] {
            let deadline = Instant::now() + ADMIN_READY;
            while https(who, port, "/commands/ruok").json().ok().and_then(|v| v.get("error").cloned()) != Some(Value::Null) {
                assert!(Instant::now() < deadline, "{who}: {mode}: not serving");
                thread::sleep(Duration::from_millis(100));
            }
        }
        for target in ["/commands/ruok", "/commands/is_read_only", "/commands/no_such_command"] {
            let (a, o) = (https("apache", aport, target), https("ours", oport, target));
            assert_eq!((a.status, a.json().ok()), (o.status, o.json().ok()), "{mode} {target}");
            assert_eq!(a.header("Strict-Transport-Security"), o.header("Strict-Transport-Security"), "{mode} {target}");
            assert!(o.header("Strict-Transport-Security").is_some_and(|v| v.contains("max-age=86400")), "{mode} {target}: {:?}", o.headers);
        }
        let (a, o) = (try_http(aport, "GET", "/commands/ruok"), try_http(oport, "GET", "/commands/ruok"));
        if mode.starts_with("admin.forceHttps") {
            assert!(!matches!(a, Ok(ref r) if r.status == 200), "apache served plain HTTP on a forced HTTPS port: {a:?}");
            assert!(!matches!(o, Ok(ref r) if r.status == 200), "ours served plain HTTP on a forced HTTPS port: {o:?}");
        } else {
            let (a, o) = (a.expect("apache plain"), o.expect("ours plain"));
            assert_eq!((a.status, a.json().ok()), (o.status, o.json().ok()), "{mode} plain");
            assert_eq!(o.header("Strict-Transport-Security"), None);
        }
        drop((apache, ours));
    }
    // A key store that cannot be read: ours does not start (standalone), as Apache's
    // AdminServerException stops it.
    let port = free_port();
    let mut bad = OurServer::spawn_standalone(
        &format!("{}admin.forceHttps=true\nssl.quorum.keyStore.location=/nonexistent/k.pem\nssl.quorum.keyStore.type=PEM\n", admin_cfg(port)),
        &[],
    );
    let st = bad.wait_exit(Duration::from_secs(20)).expect("our server should exit");
    assert!(!st.success());
    let log = bad.log_contents();
    assert!(log.contains("Failed to load authentication certificates for admin server") && log.contains("/nonexistent/k.pem"), "{log}");
}
