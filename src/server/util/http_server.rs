//! A small blocking HTTP/1.1 server for the endpoints upstream serves with embedded
//! Jetty (the AdminServer, the Prometheus `/metrics`): one acceptor thread and a bounded
//! set of connection threads, each serving keep-alive requests until the idle timeout.
//! Request heads are bounded (Jetty's 8 KB), bodies are read and dropped, anything
//! malformed gets Jetty's status and a closed connection.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::tls_stream::{self, TlsStream};

/// Jetty's default `requestHeaderSize`: a request line or header block past it is
/// refused (414 / 431).
const MAX_HEADER_BYTES: usize = 8192;
/// Bodies are read and thrown away (no command takes one); past this the connection
/// is closed instead.
const MAX_DISCARDED_BODY: u64 = 1 << 20;
/// Connections served at once; more wait in the accept backlog (Jetty's pool is 200
/// threads, but its connections do not hold one while idle).
const MAX_CONNECTION_THREADS: usize = 64;

/// Answers one request.
pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// What the port speaks.
#[derive(Clone)]
pub enum HttpTls {
    Plain,
    /// HTTPS only (`admin.forceHttps`).
    Force(Arc<rustls::ServerConfig>),
    /// HTTPS or plain HTTP, by the client's first byte (`admin.portUnification`, Jetty's
    /// `UnifiedConnectionFactory`).
    Unified(Arc<rustls::ServerConfig>),
}

/// `JettyAdminServer.DEFAULT_STS_MAX_AGE`: what Jetty's `SecureRequestCustomizer` puts
/// in `Strict-Transport-Security` on HTTPS answers.
const STS_HEADER: &str = "max-age=86400; includeSubDomains";

struct Shared {
    tls: HttpTls,
    handler: Handler,
    idle_timeout_ms: u64,
    stopping: AtomicBool,
    active: AtomicUsize,
}

pub struct HttpServer {
    shared: Arc<Shared>,
    local: SocketAddr,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `address:port` and serves `handler`; threads are named `<name>-acceptor`
    /// and `<name>-<n>`.
    pub fn start(name: &str, address: &str, port: u16, idle_timeout_ms: u64, tls: HttpTls, handler: Handler) -> io::Result<HttpServer> {
        let listener = bind(address, port)?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared { tls, handler, idle_timeout_ms, stopping: AtomicBool::new(false), active: AtomicUsize::new(0) });
        let s2 = shared.clone();
        let n2 = name.to_owned();
        let acceptor = thread::Builder::new().name(format!("{name}-acceptor")).spawn(move || accept_loop(listener, s2, n2))?;
        Ok(HttpServer { shared, local, acceptor: Some(acceptor) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting; connection threads end at their next request or idle timeout
    /// (they hold nothing anyone waits for).
    pub fn shutdown(&mut self) {
        if self.shared.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the acceptor with a connection of our own.
        let wake = match self.local {
            SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
            SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
            a => a,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Jetty's ServerConnector binds with SO_REUSEADDR.
fn bind(address: &str, port: u16) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let ip: std::net::IpAddr = match address.parse() {
        Ok(ip) => ip,
        Err(_) => {
            use std::net::ToSocketAddrs;
            (address, port)
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {address}")))?
                .ip()
        }
    };
    let addr = SocketAddr::new(ip, port);
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(50)?;
    Ok(sock.into())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, name: String) {
    let mut n = 0u64;
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                log::warn!("{name}: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // Bounded like a thread pool: wait for a slot rather than spawn without limit.
        while shared.active.load(Ordering::Acquire) >= MAX_CONNECTION_THREADS {
            if shared.stopping.load(Ordering::Acquire) {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        shared.active.fetch_add(1, Ordering::AcqRel);
        n += 1;
        let s2 = shared.clone();
        let spawned = thread::Builder::new().name(format!("{name}-{n}")).spawn(move || {
            serve_connection(stream, &s2);
            s2.active.fetch_sub(1, Ordering::AcqRel);
        });
        if let Err(e) = spawned {
            shared.active.fetch_sub(1, Ordering::AcqRel);
            log::warn!("{name}: cannot serve {remote}: {e}");
        }
    }
}

/// One parsed request head.
#[derive(Debug, PartialEq)]
pub struct Request {
    pub method: String,
    /// The path, percent-decoded, with `.` and `..` segments resolved.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub keep_alive: bool,
    pub content_length: u64,
    pub chunked: bool,
}

/// Why a request head could not be served; each maps to Jetty's status.
#[derive(Debug, PartialEq)]
pub enum BadRequest {
    /// The peer closed or went idle before a full head: nothing to answer.
    Closed,
    UriTooLong,
    HeadersTooLarge,
    Malformed(&'static str),
    VersionNotSupported,
}

fn serve_connection(sock: TcpStream, shared: &Shared) {
    let idle = Duration::from_millis(shared.idle_timeout_ms.max(1));
    let _ = sock.set_read_timeout(Some(idle));
    let _ = sock.set_write_timeout(Some(idle));
    let _ = sock.set_nodelay(true);
    let tls = match &shared.tls {
        HttpTls::Plain => None,
        HttpTls::Force(cfg) => Some(cfg.clone()),
        HttpTls::Unified(cfg) => match tls_stream::client_starts_tls(&sock, idle) {
            Ok(true) => Some(cfg.clone()),
            Ok(false) => None,
            Err(_) => return,
        },
    };
    let secure = tls.is_some();
    let stream = match tls {
        // The handshake runs with the first read; a client that fails it gets rustls'
        // alert and the connection closes, as Jetty's SslConnection does.
        Some(cfg) => match TlsStream::tls(sock, cfg) {
            Ok(s) => s,
            Err(_) => return,
        },
        None => TlsStream::new(sock),
    };
    let mut writer = &stream;
    let mut reader = BufReader::with_capacity(MAX_HEADER_BYTES, &stream);
    loop {
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        let req = match read_request(&mut reader, idle) {
            Ok(r) => r,
            Err(BadRequest::Closed) => break,
            Err(bad) => {
                let (status, reason) = match bad {
                    BadRequest::UriTooLong => (414, "URI Too Long"),
                    BadRequest::HeadersTooLarge => (431, "Request Header Fields Too Large"),
                    BadRequest::VersionNotSupported => (505, "HTTP Version Not Supported"),
                    _ => (400, "Bad Request"),
                };
                let _ = write_response(&mut writer, status, reason, None, &[], b"", false, false);
                break;
            }
        };
        if req.chunked || req.content_length > MAX_DISCARDED_BODY {
            let _ = write_response(&mut writer, 400, "Bad Request", None, &[], b"", false, false);
            break;
        }
        if req.content_length > 0
            && io::copy(&mut (&mut reader).take(req.content_length), &mut io::sink()).ok() != Some(req.content_length)
        {
            break;
        }
        let head_only = req.method == "HEAD";
        let Reply { status, reason, content_type, mut extra, body } = (shared.handler)(&req);
        if secure {
            extra.push(("Strict-Transport-Security", STS_HEADER.to_owned()));
        }
        let written = write_response(&mut writer, status, reason, content_type, &extra, &body, req.keep_alive, head_only);
        if written.is_err() || !req.keep_alive {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// What a handler answers.
pub struct Reply {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: Option<&'static str>,
    pub extra: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(content_type: Option<&'static str>, body: Vec<u8>) -> Reply {
        Reply { status: 200, reason: "OK", content_type, extra: vec![], body }
    }
}

/// Jetty's error pages are HTML; clients look at the status.
pub fn error_page(status: u16, reason: &'static str) -> Reply {
    let body = format!(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n<title>Error {status} {reason}</title>\n</head>\n<body><h2>HTTP ERROR {status} {reason}</h2>\n</body>\n</html>\n"
    );
    Reply { status, reason, content_type: Some("text/html;charset=utf-8"), extra: vec![], body: body.into_bytes() }
}

#[allow(clippy::too_many_arguments)]
fn write_response(
    w: &mut impl Write,
    status: u16,
    reason: &str,
    content_type: Option<&str>,
    extra: &[(&'static str, String)],
    body: &[u8],
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nDate: {}\r\n", http_date(crate::common::time::current_wall_time()));
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    w.write_all(&out)?;
    w.flush()
}

/// RFC 7231 IMF-fixdate.
fn http_date(ms: i64) -> String {
    let (y, mo, d, h, m, s, _, wd) = crate::common::time::civil_from_millis(ms);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{}, {d:02} {} {y} {h:02}:{m:02}:{s:02} GMT", WD[wd], MO[(mo - 1) as usize])
}

/// Reads one request head: a line at a time, the whole head bounded by
/// `MAX_HEADER_BYTES` and by the idle timeout from its first byte.
pub fn read_request(r: &mut impl BufRead, idle: Duration) -> Result<Request, BadRequest> {
    let started = Instant::now();
    let mut budget = MAX_HEADER_BYTES;
    // Blank lines before a request line are allowed (RFC 7230 3.5).
    let line = loop {
        let l = read_line(r, &mut budget, true)?;
        if !l.is_empty() {
            break l;
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(BadRequest::Malformed("request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(BadRequest::Malformed("method"));
    }
    let keep_alive_default = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Err(BadRequest::VersionNotSupported),
        _ => return Err(BadRequest::Malformed("version")),
    };
    let mut keep_alive = keep_alive_default;
    let mut has_host = false;
    let mut content_length = 0u64;
    let mut chunked = false;
    loop {
        if started.elapsed() > idle {
            return Err(BadRequest::Closed);
        }
        let h = read_line(r, &mut budget, false)?;
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            return Err(BadRequest::Malformed("header"));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep_alive = false;
                } else if v.contains("keep-alive") {
                    keep_alive = true;
                }
            }
            "content-length" => content_length = value.parse().map_err(|_| BadRequest::Malformed("content-length"))?,
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "host" => has_host = true,
            _ => {}
        }
    }
    // RFC 7230 5.4: an HTTP/1.1 request without Host is refused ("400 No Host").
    if keep_alive_default && !has_host {
        return Err(BadRequest::Malformed("No Host"));
    }
    let (path, query) = split_target(target)?;
    Ok(Request { method: method.to_owned(), path, query, keep_alive, content_length, chunked })
}

/// One CRLF- (or LF-) terminated line within the head's byte budget.
fn read_line(r: &mut impl BufRead, budget: &mut usize, request_line: bool) -> Result<String, BadRequest> {
    let mut buf = Vec::new();
    loop {
        let avail = match r.fill_buf() {
            Ok([]) => return Err(BadRequest::Closed),
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(BadRequest::Closed),
        };
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if take > *budget {
            return Err(if request_line { BadRequest::UriTooLong } else { BadRequest::HeadersTooLarge });
        }
        *budget -= take;
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            break;
        }
    }
    while matches!(buf.last(), Some(b'\n') | Some(b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| BadRequest::Malformed("encoding"))
}

/// The path (decoded, dot segments resolved) and the query parameters of a request
/// target, origin form or absolute form.
fn split_target(target: &str) -> Result<(String, BTreeMap<String, String>), BadRequest> {
    let mut t = target;
    if let Some(rest) = t.strip_prefix("http://").or_else(|| t.strip_prefix("https://")) {
        t = rest.find('/').map(|i| &rest[i..]).unwrap_or("/");
    }
    if !t.starts_with('/') {
        return Err(BadRequest::Malformed("target"));
    }
    let t = t.split('#').next().unwrap_or(t);
    let (raw_path, raw_query) = t.split_once('?').unwrap_or((t, ""));
    let decoded = percent_decode(raw_path, false).ok_or(BadRequest::Malformed("path encoding"))?;
    let mut segs: Vec<&str> = Vec::new();
    for seg in decoded.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                if segs.pop().is_none() {
                    return Err(BadRequest::Malformed("path above root"));
                }
            }
            s => segs.push(s),
        }
    }
    let mut path = String::from("/");
    path.push_str(&segs.join("/"));
    let mut query = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k, true).ok_or(BadRequest::Malformed("query encoding"))?;
        let v = percent_decode(v, true).ok_or(BadRequest::Malformed("query encoding"))?;
        // The servlet hands over each parameter's first value.
        query.entry(k).or_insert(v);
    }
    Ok((path, query))
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Request, BadRequest> {
        read_request(&mut io::Cursor::new(raw.as_bytes().to_vec()), Duration::from_secs(5))
    }

    #[test]
    fn request_heads() {
        let r = parse("GET /commands/stmk?traceMask=12&traceMask=3&x=a+b%21 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str(), r.keep_alive), ("GET", "/commands/stmk", true));
        assert_eq!(r.query.get("traceMask").map(String::as_str), Some("12"));
        assert_eq!(r.query.get("x").map(String::as_str), Some("a b!"));
        let r = parse("GET http://127.0.0.1:8080/commands/../commands/./ruok HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!((r.path.as_str(), r.keep_alive), ("/commands/ruok", false));
        assert_eq!(parse("GET /../x HTTP/1.1\r\nHost: h\r\n\r\n"), Err(BadRequest::Malformed("path above root")));
        assert_eq!(parse("GARBAGE\r\n\r\n"), Err(BadRequest::Malformed("request line")));
        assert_eq!(parse("GET / HTTP/2.0\r\n\r\n"), Err(BadRequest::VersionNotSupported));
        assert_eq!(parse("GET / HTTP/1.1\r\nHost: x"), Err(BadRequest::Closed));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(10_000));
        assert_eq!(parse(&long), Err(BadRequest::UriTooLong));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(2_000));
        assert_eq!(parse(&many), Err(BadRequest::HeadersTooLarge));
        assert_eq!(parse("GET /x HTTP/1.1\r\n\r\n"), Err(BadRequest::Malformed("No Host")));
        assert_eq!(parse("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n"), Err(BadRequest::Malformed("path encoding")));
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
