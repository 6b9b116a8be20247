//! A small synchronous raw-protocol ZooKeeper client for tests.
//!
//! Include with `#[path = "support/raw_client.rs"] mod raw_client;`.
//! Every read has a deadline; malformed server data yields `Err`, never a panic.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use zookeeper::jute::{InputArchive, OutputArchive, Record};
use zookeeper::proto::proto::{
    AuthPacket, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, WatcherEvent,
};

/// Largest packet accepted from a server (anything larger is treated as garbage).
const MAX_PACKET: usize = 16 * 1024 * 1024;

pub type Result<T> = std::result::Result<T, String>;

pub struct RawClient {
    stream: TcpStream,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub timeout: Duration,
    next_xid: i32,
    /// Notifications (xid -1) received so far, in arrival order; not yet taken.
    pub events: Vec<WatcherEvent>,
    pub closed: bool,
    /// When set, every packet is written one byte at a time with this pause between
    /// bytes (a client on a terrible link, or one probing the server's framing).
    pub dribble: Option<Duration>,
    detached: bool,
}

fn read_exact_deadline(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let now = Instant::now();
        if now >= deadline {
            return Err("timeout".into());
        }
        let _ = stream.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Err("connection closed".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
                return Err("timeout".into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
    Ok(())
}

impl RawClient {
    /// Connects and performs the handshake (session timeout 30 s).
    pub fn connect(addr: &str) -> Result<RawClient> {
        Self::connect_with(addr, 30000, Duration::from_secs(10))
    }

    pub fn connect_with(addr: &str, session_timeout_ms: i32, io_timeout: Duration) -> Result<RawClient> {
        Self::connect_dribbling(addr, session_timeout_ms, io_timeout, None)
    }

    /// `connect_with`, writing the handshake (and, with `dribble` left set, every later
    /// packet) one byte at a time.
    pub fn connect_dribbling(addr: &str, session_timeout_ms: i32, io_timeout: Duration, dribble: Option<Duration>) -> Result<RawClient> {
        let sa: std::net::SocketAddr = addr.parse().map_err(|e| format!("bad addr {addr}: {e}"))?;
        let stream = TcpStream::connect_timeout(&sa, io_timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(io_timeout));
        let mut c = RawClient {
            stream,
            session_id: 0,
            passwd: vec![0; 16],
            timeout: io_timeout,
            next_xid: 1,
            events: Vec::new(),
            closed: false,
            dribble,
            detached: false,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: session_timeout_ms,
            session_id: 0,
            passwd: Some(vec![0; 16]),
        };
        let mut out = OutputArchive::new();
        req.serialize(&mut out);
        out.write_bool(false);
        c.send_packet(out.as_slice())?;
        let body = c.read_packet(Instant::now() + io_timeout)?;
        let resp = ConnectResponse::from_bytes(&body).map_err(|e| format!("bad ConnectResponse: {e}"))?;
        if resp.time_out <= 0 {
            return Err(format!("session refused: {resp:?}"));
        }
        c.session_id = resp.session_id;
        c.passwd = resp.passwd.unwrap_or_default();
        Ok(c)
    }

    fn send_packet(&mut self, body: &[u8]) -> Result<()> {
        if self.closed {
            return Err("connection closed".into());
        }
        let mut buf = Vec::with_capacity(body.len() + 4);
        buf.extend_from_slice(&(body.len() as i32).to_be_bytes());
        buf.extend_from_slice(body);
        if let Some(pause) = self.dribble {
            for b in &buf {
                if let Err(e) = self.stream.write_all(std::slice::from_ref(b)) {
                    self.closed = true;
                    return Err(format!("write error: {e}"));
                }
                std::thread::sleep(pause);
            }
            return Ok(());
        }
        self.stream.write_all(&buf).map_err(|e| {
            self.closed = true;
            format!("write error: {e}")
        })
    }

    fn read_packet(&mut self, deadline: Instant) -> Result<Vec<u8>> {
        let mut len = [0u8; 4];
        let r = read_exact_deadline(&mut self.stream, &mut len, deadline);
        if let Err(e) = r {
            if e != "timeout" {
                self.closed = true;
            }
            return Err(e);
        }
        let n = i32::from_be_bytes(len);
        if n < 0 || n as usize > MAX_PACKET {
            self.closed = true;
            return Err(format!("bad packet length {n}"));
        }
        let mut body = vec![0u8; n as usize];
        // A partial packet leaves the stream unusable: treat any failure as closed.
        read_exact_deadline(&mut self.stream, &mut body, deadline).map_err(|e| {
            self.closed = true;
            e
        })?;
        Ok(body)
    }

    /// Reads one packet; notifications are appended to `events` and reported as `None`.
    fn read_reply(&mut self, deadline: Instant) -> Result<Option<(ReplyHeader, Vec<u8>)>> {
        let body = self.read_packet(deadline)?;
        let mut inp = InputArchive::new(&body);
        let h = ReplyHeader::deserialize(&mut inp).map_err(|e| format!("bad ReplyHeader: {e}"))?;
        let rest = inp.rest().to_vec();
        if h.xid == -1 {
            let ev = WatcherEvent::from_bytes(&rest).map_err(|e| format!("bad WatcherEvent: {e}"))?;
            self.events.push(ev);
            return Ok(None);
        }
        Ok(Some((h, rest)))
    }

    /// Sends a request with an explicit xid and waits for the reply with that xid.
    pub fn call_xid(&mut self, xid: i32, op_type: i32, body: &[u8]) -> Result<(ReplyHeader, Vec<u8>)> {
        let mut out = OutputArchive::new();
        RequestHeader { xid, r#type: op_type }.serialize(&mut out);
        out.write_raw(body);
        self.send_packet(out.as_slice())?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_reply(deadline)? {
                None => continue,
                Some((h, b)) if h.xid == xid => return Ok((h, b)),
                Some((h, _)) if h.xid == -2 => continue, // a late ping reply
                Some((h, _)) => return Err(format!("unexpected reply xid {} (wanted {xid}), err {}", h.xid, h.err)),
            }
        }
    }

    /// Sends a request with the next xid; returns the reply header and body.
    pub fn call(&mut self, op_type: i32, body: &[u8]) -> Result<(ReplyHeader, Vec<u8>)> {
        let xid = self.next_xid;
        self.next_xid += 1;
        self.call_xid(xid, op_type, body)
    }

    /// Convenience: serializes a record as the body.
    pub fn call_rec<R: Record>(&mut self, op_type: i32, req: &R) -> Result<(ReplyHeader, Vec<u8>)> {
        self.call(op_type, &req.to_bytes())
    }

    pub fn ping(&mut self) -> Result<ReplyHeader> {
        self.call_xid(-2, 11, &[]).map(|(h, _)| h)
    }

    /// addAuth: xid -4, type 100. Returns the reply's err code.
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> Result<i32> {
        let p = AuthPacket { r#type: 0, scheme: scheme.to_string(), auth: Some(auth.to_vec()) };
        self.call_xid(-4, 100, &p.to_bytes()).map(|(h, _)| h.err)
    }

    /// closeSession (type -11); waits for the reply, then shuts the socket.
    pub fn close_session(&mut self) -> Result<ReplyHeader> {
        let r = self.call(-11, &[]).map(|(h, _)| h);
        let _ = self.stream.shutdown(Shutdown::Both);
        self.closed = true;
        r
    }

    /// Waits up to `timeout` for notifications; returns (and clears) all collected events.
    pub fn drain_events(&mut self, timeout: Duration) -> Vec<WatcherEvent> {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            match self.read_reply(deadline) {
                Ok(None) => {}
                Ok(Some(_)) => {}
                Err(_) => break,
            }
        }
        std::mem::take(&mut self.events)
    }

    /// Returns (and clears) the events collected so far without reading.
    pub fn take_events(&mut self) -> Vec<WatcherEvent> {
        std::mem::take(&mut self.events)
    }
}

/// What the server did with a raw ConnectRequest.
#[derive(Debug)]
pub enum Handshake {
    /// A ConnectResponse arrived: the decoded record and the raw packet body.
    Response(ConnectResponse, Vec<u8>),
    /// The server closed the connection without answering.
    Closed,
    /// Neither an answer nor a close within the io timeout.
    Timeout,
}

impl RawClient {
    /// Sends an arbitrary ConnectRequest (plus the readOnly=false byte) on a new TCP
    /// connection and reports what came back. The client is returned either way; after
    /// a valid response its `session_id`/`passwd` are those of the response.
    pub fn handshake(addr: &str, req: &ConnectRequest, io_timeout: Duration) -> Result<(RawClient, Handshake)> {
        let sa: std::net::SocketAddr = addr.parse().map_err(|e| format!("bad addr {addr}: {e}"))?;
        let stream = TcpStream::connect_timeout(&sa, io_timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(io_timeout));
        let mut c = RawClient {
            stream,
            session_id: 0,
            passwd: vec![0; 16],
            timeout: io_timeout,
            next_xid: 1,
            events: Vec::new(),
            closed: false,
            dribble: None,
            detached: false,
        };
        let mut out = OutputArchive::new();
        req.serialize(&mut out);
        out.write_bool(false);
        c.send_packet(out.as_slice())?;
        let hs = match c.read_packet(Instant::now() + io_timeout) {
            Ok(body) => {
                let resp = ConnectResponse::from_bytes(&body).map_err(|e| format!("bad ConnectResponse: {e}"))?;
                if resp.time_out > 0 {
                    c.session_id = resp.session_id;
                    c.passwd = resp.passwd.clone().unwrap_or_default();
                }
                Handshake::Response(resp, body)
            }
            Err(e) if e == "timeout" => Handshake::Timeout,
            Err(_) => Handshake::Closed,
        };
        Ok((c, hs))
    }

    /// Reattaches to an existing session on a new TCP connection.
    pub fn reconnect(addr: &str, session_id: i64, passwd: &[u8], session_timeout_ms: i32) -> Result<(RawClient, Handshake)> {
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: session_timeout_ms,
            session_id,
            passwd: Some(passwd.to_vec()),
        };
        Self::handshake(addr, &req, Duration::from_secs(10))
    }

    /// Reads (collecting notifications) until the server closes the connection;
    /// true if it did so within `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            let _ = self.read_reply(deadline);
        }
        self.closed
    }

    /// Waits (up to the io timeout) for the next reply to a request, skipping
    /// notifications and ping replies; for pipelined requests sent with `send_request`.
    pub fn recv_reply(&mut self) -> Result<(ReplyHeader, Vec<u8>)> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_reply(deadline)? {
                None => continue,
                Some((h, _)) if h.xid == -2 => continue,
                Some(r) => return Ok(r),
            }
        }
    }

    /// Sends a request without waiting for its reply.
    pub fn send_request(&mut self, xid: i32, op_type: i32, body: &[u8]) -> Result<()> {
        let mut out = OutputArchive::new();
        RequestHeader { xid, r#type: op_type }.serialize(&mut out);
        out.write_raw(body);
        self.send_packet(out.as_slice())
    }
}

impl RawClient {
    /// The connection's socket, for a test that goes on by hand (a half-written frame,
    /// say); the client no longer shuts it down when dropped.
    pub fn into_stream(mut self) -> TcpStream {
        let s = self.stream.try_clone().unwrap_or_else(|e| panic!("clone socket: {e}"));
        self.closed = true;
        self.detached = true;
        s
    }
}

impl Drop for RawClient {
    fn drop(&mut self) {
        if !self.detached {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

// One request each, answering the reply's error code (tests that compare servers
// run the same operations against both).

pub fn create(c: &mut RawClient, path: &str, data: &[u8], flags: i32) -> i32 {
    let req = zookeeper::proto::proto::CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: vec![zookeeper::proto::data::ACL::new(31, "world", "anyone")],
        flags,
    };
    c.call(zookeeper::proto::op_code::CREATE, &req.to_bytes()).expect("create").0.err
}

pub fn get_data(c: &mut RawClient, path: &str, watch: bool) -> i32 {
    c.call(zookeeper::proto::op_code::GET_DATA, &zookeeper::proto::proto::GetDataRequest { path: path.into(), watch }.to_bytes()).expect("getData").0.err
}

pub fn exists(c: &mut RawClient, path: &str, watch: bool) -> i32 {
    c.call(zookeeper::proto::op_code::EXISTS, &zookeeper::proto::proto::ExistsRequest { path: path.into(), watch }.to_bytes()).expect("exists").0.err
}

pub fn children(c: &mut RawClient, path: &str, watch: bool) -> i32 {
    c.call(zookeeper::proto::op_code::GET_CHILDREN, &zookeeper::proto::proto::GetChildrenRequest { path: path.into(), watch }.to_bytes())
        .expect("getChildren")
        .0
        .err
}

pub fn set_data(c: &mut RawClient, path: &str, data: &[u8], version: i32) -> i32 {
    let req = zookeeper::proto::proto::SetDataRequest { path: path.into(), data: Some(data.to_vec()), version };
    c.call(zookeeper::proto::op_code::SET_DATA, &req.to_bytes()).expect("setData").0.err
}
