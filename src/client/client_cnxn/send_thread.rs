//! `ClientCnxn.SendThread`: connects (host list, random back-off), performs the
//! handshake, replays auth and watches, writes requests in order and pings; its reader
//! companion matches replies with the pending queue and hands notifications to the
//! EventThread. Any IO error drops the connection: pending requests fail with
//! ConnectionLoss, a Disconnected event is queued, and the SendThread reconnects.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use crate::common::tls_stream::TlsStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver};

use super::{Completion, Connection, Packet, Reply, Shared, States};
use crate::client::static_host_provider::ServerAddress;
use crate::client::watched_event::WatchedEvent;
use crate::common::java_random::JavaRandom;
use crate::common::time;
use crate::jute::{self, InputArchive, OutputArchive, Record};
use crate::proto::proto::{AuthPacket, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, SetWatches, SetWatches2, WatcherEvent};
use crate::proto::{keeper_state, op_code};

/// Internal marker asking the SendThread to stop.
pub const OP_SHUTDOWN: i32 = i32::MIN;
const PING_XID: i32 = -2;
const AUTH_XID: i32 = -4;
const NOTIFICATION_XID: i32 = -1;
const MAX_SEND_PING_INTERVAL: u64 = 10_000;
/// `SET_WATCHES_MAX_LENGTH`: paths per SetWatches batch, in characters.
const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;
/// `minPingRwTimeout` / `maxPingRwTimeout`: how often a client connected to a read-only
/// server looks for a read-write one, doubling from the first to the second.
const MIN_PING_RW_TIMEOUT: u64 = 100;
const MAX_PING_RW_TIMEOUT: u64 = 60_000;

pub struct SendThread {
    shared: Arc<Shared>,
    outgoing: Receiver<Packet>,
    xid: i32,
    random: JavaRandom,
    name: String,
    /// `rwServerAddress`: a read-write server found while connected read-only; the
    /// next connection goes there.
    rw_server_address: Option<ServerAddress>,
    ping_rw_timeout: u64,
    last_ping_rw_server: Instant,
}

fn frame(hdr: Option<&RequestHeader>, body: &[u8]) -> Vec<u8> {
    let mut out = OutputArchive::with_buffer(Vec::with_capacity(body.len() + 12));
    out.write_int(-1);
    if let Some(h) = hdr {
        h.serialize(&mut out);
    }
    out.write_raw(body);
    let mut f = out.into_inner();
    let len = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    f
}

fn read_frame(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > jute::max_buffer() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("Packet len {n} is out of range!")));
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

impl SendThread {
    pub fn start(
        prefix: &str,
        first_host: &str,
        shared: Arc<Shared>,
        outgoing: Receiver<Packet>,
    ) -> std::io::Result<thread::JoinHandle<()>> {
        let name = format!("{prefix}-SendThread({first_host})");
        let t = SendThread {
            shared,
            outgoing,
            xid: 1,
            random: JavaRandom::new(time::current_wall_time()),
            name: name.clone(),
            rw_server_address: None,
            ping_rw_timeout: MIN_PING_RW_TIMEOUT,
            last_ping_rw_server: Instant::now(),
        };
        thread::Builder::new().name(name).spawn(move || t.run())
    }

    fn next_xid(&mut self) -> i32 {
        let x = self.xid;
        self.xid = if self.xid == i32::MAX { 1 } else { self.xid + 1 };
        x
    }

    fn run(mut self) {
        let mut first = true;
        while self.shared.state().is_alive() && !self.shared.closing.load(Ordering::Acquire) {
            if !first {
                let ms = (self.random.next_int() as u32 % 1000) as u64;
                thread::sleep(Duration::from_millis(ms));
            }
            first = false;
            // The provider (re)resolves the name each time; in reconfig mode it follows
            // the rebalancing plan of the last update_server_list.
            let server = match self.rw_server_address.take() {
                Some(s) => s,
                None => self.shared.hosts.next(Duration::from_secs(1)),
            };
            let Some(addr) = server.addr else {
                log::warn!("Unable to resolve address: {}:{}", server.host, server.port);
                continue;
            };
            self.shared.set_state(States::Connecting);
            log::info!("Opening socket connection to server {addr}.");
            let outcome = self.connect(&server, addr);
            match outcome {
                Ok(Some(stream)) => {
                    self.shared.hosts.on_connected();
                    self.serve(stream, addr);
                }
                Ok(None) => {
                    // Expired.
                    self.shared.connection.lock().take();
                    return;
                }
                Err(e) => {
                    log::warn!("Session 0x{:x} for server {addr}, Closing socket connection. Attempting reconnect except it is a SessionExpiredException. ({e})", self.shared.session_id.load(Ordering::Acquire));
                    self.cleanup();
                }
            }
            self.shared.connection.lock().take();
        }
        self.cleanup();
        log::info!("SendThread exited loop for session: 0x{:x}", self.shared.session_id.load(Ordering::Acquire));
        self.shared.set_state(States::Closed);
        self.shared.queue_state_event(keeper_state::CLOSED);
        self.shared.events.queue_death();
    }

    /// Connect + handshake. Ok(None): the session expired (state Closed, event queued).
    fn connect(&mut self, server: &ServerAddress, addr: SocketAddr) -> std::io::Result<Option<TlsStream>> {
        let to = self.shared.session_timeout.max(1) as u64;
        let connect_timeout = Duration::from_millis((to / self.shared.hosts.size().max(1) as u64).max(1));
        let sock = TcpStream::connect_timeout(&addr, connect_timeout)?;
        // From here the socket is the client's remote address (updateServerList's
        // current host) and what testableCloseSocket closes, handshake included.
        match sock.try_clone() {
            Ok(socket) => *self.shared.connection.lock() = Some(Connection { server: server.clone(), socket }),
            Err(e) => log::warn!("cannot share the socket to {addr}: {e}; updateServerList will not see this connection"),
        }
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(connect_timeout))?;
        // `zookeeper.client.secure`: TLS with the `zookeeper.ssl.*` stores (upstream's
        // ClientCnxnSocketNetty), the server checked against its address.
        let mut stream = if crate::common::x509_util::client_secure() {
            let settings = crate::common::x509_util::SslSettings::from_system_properties(crate::common::x509_util::CLIENT_PREFIX)
                .map_err(std::io::Error::other)?;
            let cfg = crate::common::x509_util::client_config(&settings).map_err(std::io::Error::other)?;
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            TlsStream::tls_client(sock, cfg, name)?
        } else {
            TlsStream::new(sock)
        };
        log::info!("Socket connection established, initiating session, client: {}, server: {addr}", stream.local_addr().map(|a| a.to_string()).unwrap_or_default());
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.shared.last_zxid.load(Ordering::Acquire),
            time_out: self.shared.session_timeout,
            session_id: if self.shared.seen_rw_server_before.load(Ordering::Acquire) { self.shared.session_id.load(Ordering::Acquire) } else { 0 },
            passwd: Some(self.shared.passwd.lock().clone()),
        };
        let mut out = OutputArchive::new();
        req.serialize(&mut out);
        out.write_bool(self.shared.can_be_read_only);
        stream.write_all(&frame(None, out.as_slice()))?;
        let buf = read_frame(&mut stream)?;
        let mut inp = InputArchive::new(&buf);
        let rsp = ConnectResponse::deserialize(&mut inp)?;
        let read_only = inp.read_bool().unwrap_or(false);
        if rsp.time_out <= 0 {
            log::warn!(
                "Unable to reconnect to ZooKeeper service, session 0x{:x} has expired",
                self.shared.session_id.load(Ordering::Acquire)
            );
            self.shared.set_state(States::Closed);
            self.shared.queue_state_event(keeper_state::EXPIRED);
            self.fail_all(-112);
            self.shared.events.queue_death();
            return Ok(None);
        }
        if !self.shared.can_be_read_only && read_only {
            log::error!("Read/write client got connected to read-only server");
        }
        self.shared.negotiated_timeout.store(rsp.time_out, Ordering::Release);
        self.shared.session_id.store(rsp.session_id, Ordering::Release);
        *self.shared.passwd.lock() = rsp.passwd.unwrap_or_default();
        self.shared.set_state(if read_only { States::ConnectedReadOnly } else { States::Connected });
        if !read_only {
            self.shared.seen_rw_server_before.store(true, Ordering::Release);
        }
        log::info!(
            "Session establishment complete on server {addr}, session id = 0x{:x}, negotiated timeout = {}{}",
            rsp.session_id,
            rsp.time_out,
            if read_only { " (READ-ONLY mode)" } else { "" }
        );
        self.shared.queue_state_event(if read_only { keeper_state::CONNECTED_READ_ONLY } else { keeper_state::SYNC_CONNECTED });
        // ZooKeeperSaslClient: the SASL exchange goes first; auth packets, watches and
        // requests wait for it (upstream's tunnelAuthInProgress).
        if let Some(creds) = sasl_client_credentials() {
            if !self.sasl_authenticate(&mut stream, &creds)? {
                return Ok(None);
            }
        }
        Ok(Some(stream))
    }

    /// DIGEST-MD5 with the JAAS `Client` section's account. Ok(false): the server
    /// refused (state AuthFailed, its event queued, the handle dead).
    fn sasl_authenticate(&mut self, stream: &mut TlsStream, creds: &SaslCredentials) -> std::io::Result<bool> {
        use crate::common::digest_md5::{DigestMd5Client, PROTOCOL, SERVER_NAME};
        use crate::proto::proto::{GetSASLRequest, SetSASLResponse};
        let mut client = DigestMd5Client::new(&creds.username, &creds.password, PROTOCOL, SERVER_NAME);
        // DIGEST-MD5 has no initial response: an empty token asks for the challenge.
        let mut token: Vec<u8> = Vec::new();
        loop {
            let xid = self.next_xid();
            let body = GetSASLRequest { token: Some(token) }.to_bytes();
            stream.write_all(&frame(Some(&RequestHeader { xid, r#type: op_code::SASL }), &body))?;
            let reply = loop {
                let buf = read_frame(stream)?;
                let mut inp = InputArchive::new(&buf);
                let hdr = ReplyHeader::deserialize(&mut inp)?;
                if hdr.xid == xid {
                    break (hdr, inp.rest().to_vec());
                }
            };
            let (hdr, rest) = reply;
            if hdr.err != 0 {
                log::error!("SASL authentication failed using login context 'Client' with exception: {}", crate::proto::Code::from_i32(hdr.err).map(|c| format!("{c:?}")).unwrap_or_else(|| hdr.err.to_string()));
                self.shared.set_state(States::AuthFailed);
                self.shared.queue_state_event(keeper_state::AUTH_FAILED);
                self.fail_all(-115);
                self.shared.events.queue_death();
                return Ok(false);
            }
            let server_token = SetSASLResponse::from_bytes(&rest)?.token.unwrap_or_default();
            let next = match client.evaluate_challenge(&server_token) {
                Ok(t) => t,
                Err(e) => {
                    log::error!("SASL authentication failed using login context 'Client' with exception: {e}");
                    self.shared.set_state(States::AuthFailed);
                    self.shared.queue_state_event(keeper_state::AUTH_FAILED);
                    self.fail_all(-115);
                    self.shared.events.queue_death();
                    return Ok(false);
                }
            };
            if client.is_complete() {
                self.shared.queue_state_event(keeper_state::SASL_AUTHENTICATED);
                return Ok(true);
            }
            token = next;
        }
    }

    /// The connected phase: replay auth and watches, then write requests and pings
    /// until the connection breaks or the handle closes.
    fn serve(&mut self, stream: TlsStream, addr: SocketAddr) {
        let read_timeout = (self.shared.negotiated_timeout.load(Ordering::Acquire).max(3) as u64) * 2 / 3;
        let read_half = stream.clone();
        let _ = read_half.set_read_timeout(Some(Duration::from_millis(read_timeout.max(1))));
        let (dead_tx, dead_rx) = bounded::<String>(1);
        let shared = self.shared.clone();
        let reader = thread::Builder::new()
            .name(format!("{}-reader", self.name))
            .spawn(move || {
                let why = read_loop(read_half, &shared, read_timeout);
                let _ = dead_tx.send(why);
            });
        let reader = match reader {
            Ok(r) => r,
            Err(_) => return self.cleanup(),
        };
        let mut w = BufWriter::with_capacity(64 * 1024, stream.clone());
        let mut last_send = Instant::now();
        let mut ok = self.prime(&mut w).is_ok();
        let mut shutdown = false;
        while ok {
            let idle = last_send.elapsed().as_millis() as u64;
            let half = read_timeout / 2;
            let interval = half.saturating_sub(if idle > 1000 { 1000 } else { 0 }).min(MAX_SEND_PING_INTERVAL);
            let mut wait = Duration::from_millis(interval.saturating_sub(idle).max(1));
            // Connected read-only: look for a read-write server now and then.
            if self.shared.state() == States::ConnectedReadOnly {
                let mut idle_ping_rw = self.last_ping_rw_server.elapsed().as_millis() as u64;
                if idle_ping_rw >= self.ping_rw_timeout {
                    self.last_ping_rw_server = Instant::now();
                    idle_ping_rw = 0;
                    self.ping_rw_timeout = (2 * self.ping_rw_timeout).min(MAX_PING_RW_TIMEOUT);
                    if let Some(found) = self.ping_rw_server() {
                        log::warn!(
                            "Session 0x{:x} for server {addr}, Closing socket connection. Attempting reconnect except it is a SessionExpiredException or SessionTimeoutException. ({found})",
                            self.shared.session_id.load(Ordering::Acquire)
                        );
                        break;
                    }
                }
                wait = wait.min(Duration::from_millis(self.ping_rw_timeout.saturating_sub(idle_ping_rw).max(1)));
            }
            select! {
                recv(self.outgoing) -> p => match p {
                    Ok(p) if p.op == OP_SHUTDOWN => { shutdown = true; break; }
                    Ok(p) => {
                        ok = self.write_packet(&mut w, p).is_ok();
                        // Write whatever else is queued before flushing.
                        while ok {
                            match self.outgoing.try_recv() {
                                Ok(p) if p.op == OP_SHUTDOWN => { shutdown = true; break; }
                                Ok(p) => ok = self.write_packet(&mut w, p).is_ok(),
                                Err(_) => break,
                            }
                        }
                        ok = ok && w.flush().is_ok();
                        last_send = Instant::now();
                        if shutdown { break; }
                    }
                    Err(_) => { shutdown = true; break; }
                },
                recv(dead_rx) -> why => {
                    log::info!("{}, closing socket connection and attempting reconnect", why.unwrap_or_default());
                    ok = false;
                }
                default(wait) => {
                    let f = frame(Some(&RequestHeader { xid: PING_XID, r#type: op_code::PING }), &[]);
                    ok = w.write_all(&f).and_then(|_| w.flush()).is_ok();
                    last_send = Instant::now();
                }
            }
        }
        let _ = w.flush();
        let _ = stream.shutdown(Shutdown::Both);
        let _ = reader.join();
        log::debug!("connection to {addr} closed");
        if shutdown {
            self.shared.closing.store(true, Ordering::Release);
        }
        self.cleanup();
    }

    /// `pingRwServer`: asks the next server of the list whether it is read-write
    /// (`isro`). Returns the reason to leave the current connection if it is.
    fn ping_rw_server(&mut self) -> Option<String> {
        let server = self.shared.hosts.next(Duration::ZERO);
        let addr = server.addr?;
        log::info!("Checking server {addr} for being r/w. Timeout {}", self.ping_rw_timeout);
        let result = (|| -> std::io::Result<String> {
            let mut sock = TcpStream::connect_timeout(&addr, Duration::from_millis(1000))?;
            sock.set_read_timeout(Some(Duration::from_millis(1000)))?;
            sock.set_nodelay(true)?;
            sock.write_all(b"isro")?;
            sock.flush()?;
            sock.shutdown(Shutdown::Write)?;
            let mut out = Vec::new();
            sock.take(64).read_to_end(&mut out)?;
            let text = String::from_utf8_lossy(&out);
            Ok(text.lines().next().unwrap_or("").to_owned())
        })();
        match result {
            Ok(r) if r == "rw" => {
                self.ping_rw_timeout = MIN_PING_RW_TIMEOUT;
                self.rw_server_address = Some(server);
                Some(format!("Majority server found at {}:{}", addr.ip(), addr.port()))
            }
            Ok(_) => None,
            // The server is not up.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => None,
            Err(e) => {
                log::warn!("Exception while seeking for r/w server. ({e})");
                None
            }
        }
    }

    /// `primeConnection`: auth packets, then SetWatches batches.
    fn prime(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        for (scheme, auth) in self.shared.auth.lock().iter() {
            let ap = AuthPacket { r#type: 0, scheme: scheme.clone(), auth: Some(auth.clone()) };
            w.write_all(&frame(Some(&RequestHeader { xid: AUTH_XID, r#type: op_code::AUTH }), &ap.to_bytes()))?;
        }
        let [data, exist, child, persistent, recursive] = self.shared.watch_manager.watched_paths();
        let total = data.len() + exist.len() + child.len() + persistent.len() + recursive.len();
        if total > 0 {
            let rel = self.shared.last_zxid.load(Ordering::Acquire);
            let map = |v: Vec<String>| v.into_iter().map(|p| self.shared.prepend_chroot(&p)).collect::<Vec<_>>();
            let (data, exist, child, persistent, recursive) = (map(data), map(exist), map(child), map(persistent), map(recursive));
            let chars: usize = [&data, &exist, &child, &persistent, &recursive].iter().flat_map(|v| v.iter()).map(|p| p.len()).sum();
            if chars > SET_WATCHES_MAX_LENGTH {
                log::warn!("{chars} characters of watched paths exceed one SetWatches batch; sending them in one");
            }
            let (op, body) = if persistent.is_empty() && recursive.is_empty() {
                (op_code::SET_WATCHES, SetWatches { relative_zxid: rel, data_watches: data, exist_watches: exist, child_watches: child }.to_bytes())
            } else {
                (
                    op_code::SET_WATCHES2,
                    SetWatches2 {
                        relative_zxid: rel,
                        data_watches: data,
                        exist_watches: exist,
                        child_watches: child,
                        persistent_watches: persistent,
                        persistent_recursive_watches: recursive,
                    }
                    .to_bytes(),
                )
            };
            self.write_packet(w, Packet::new(op, body, None, Completion::None))?;
        }
        w.flush()
    }

    fn write_packet(&mut self, w: &mut impl Write, mut p: Packet) -> std::io::Result<()> {
        let xid = if p.op == op_code::AUTH { AUTH_XID } else { self.next_xid() };
        p.xid = xid;
        let f = frame(Some(&RequestHeader { xid, r#type: p.op }), &p.body);
        if p.op != op_code::AUTH {
            // Pending before the write: the reply may arrive before write_all returns.
            self.shared.pending.lock().push_back(p);
        }
        w.write_all(&f)
    }

    /// Fail pending and queued requests (ConnectionLoss, or the code for a dead
    /// session), queue Disconnected while the handle is alive.
    fn cleanup(&mut self) {
        // As upstream's cleanup closes the socket before Disconnected is queued: a
        // watcher reacting to it sees no current server.
        self.shared.connection.lock().take();
        let state = self.shared.state();
        let err = match state {
            States::Closed => -112,
            States::AuthFailed => -115,
            _ => -4,
        };
        self.fail_all(err);
        if state.is_alive() && !self.shared.closing.load(Ordering::Acquire) {
            self.shared.set_state(States::Connecting);
            self.shared.queue_state_event(keeper_state::DISCONNECTED);
        }
    }

    fn fail_all(&mut self, err: i32) {
        let pending: Vec<Packet> = self.shared.pending.lock().drain(..).collect();
        for p in pending {
            self.shared.complete(p.done, Reply::loss(err));
        }
        while let Ok(p) = self.outgoing.try_recv() {
            if p.op == OP_SHUTDOWN {
                self.shared.closing.store(true, Ordering::Release);
                continue;
            }
            self.shared.complete(p.done, Reply::loss(err));
        }
    }
}

/// The reader half: returns why the connection ended.
fn read_loop(stream: TlsStream, shared: &Arc<Shared>, read_timeout: u64) -> String {
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    loop {
        let buf = match read_frame(&mut r) {
            Ok(b) => b,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return format!(
                    "Client session timed out, have not heard from server in {read_timeout}ms for session id 0x{:x}",
                    shared.session_id.load(Ordering::Acquire)
                );
            }
            Err(e) => return format!("Unable to read additional data from server sessionid 0x{:x}, likely server has closed socket ({e})", shared.session_id.load(Ordering::Acquire)),
        };
        let mut inp = InputArchive::new(&buf);
        let hdr = match ReplyHeader::deserialize(&mut inp) {
            Ok(h) => h,
            Err(e) => return format!("bad reply header: {e}"),
        };
        let body = inp.rest().to_vec();
        match hdr.xid {
            PING_XID => continue,
            AUTH_XID => {
                if hdr.err == crate::proto::Code::AuthFailed.int() {
                    shared.set_state(States::AuthFailed);
                    shared.queue_state_event(keeper_state::AUTH_FAILED);
                    shared.events.queue_death();
                    return "Authentication failed".into();
                }
                continue;
            }
            NOTIFICATION_XID => {
                let ev = match WatcherEvent::from_bytes(&body) {
                    Ok(e) => e,
                    Err(e) => return format!("bad notification: {e}"),
                };
                let path = shared.strip_chroot(&ev.path);
                let watchers = shared.watch_manager.materialize(ev.r#type, Some(&path));
                shared.events.queue_event(WatchedEvent { event_type: ev.r#type, state: ev.state, path: Some(path) }, watchers);
                continue;
            }
            _ => {}
        }
        let p = shared.pending.lock().pop_front();
        let Some(p) = p else {
            return format!("Nothing in the queue, but got {}", hdr.xid);
        };
        if p.xid != hdr.xid {
            let expected = p.xid;
            shared.complete(p.done, Reply::loss(-4));
            return format!("Xid out of order. Got Xid {} with err {} expected Xid {expected} for a packet with details", hdr.xid, hdr.err);
        }
        if hdr.zxid > 0 {
            shared.last_zxid.store(hdr.zxid, Ordering::Release);
        }
        let body = if hdr.err == 0 { body } else { Vec::new() };
        shared.finish_packet(p, &hdr, body);
    }
}

/// The account of the JAAS `Client` section (`zookeeper.sasl.clientconfig`), when SASL
/// is on (`zookeeper.sasl.client`, default true) and the file has one.
pub struct SaslCredentials {
    pub username: String,
    pub password: String,
}

fn sasl_client_credentials() -> Option<SaslCredentials> {
    use crate::common::jaas_configuration;
    use crate::system_properties;
    if system_properties::get("zookeeper.sasl.client").is_some_and(|v| !v.eq_ignore_ascii_case("true")) {
        return None;
    }
    let section = system_properties::get_or("zookeeper.sasl.clientconfig", "Client");
    let cfg = match jaas_configuration::load_from_system_property()? {
        Ok(c) => c,
        Err(e) => {
            log::warn!("Will not attempt to authenticate using SASL ({e})");
            return None;
        }
    };
    let Some(entries) = cfg.get(&section) else {
        log::warn!("Will not attempt to authenticate using SASL (no '{section}' section in the JAAS configuration)");
        return None;
    };
    entries.iter().find_map(|e| {
        Some(SaslCredentials { username: e.options.get("username")?.clone(), password: e.options.get("password")?.clone() })
    })
}
