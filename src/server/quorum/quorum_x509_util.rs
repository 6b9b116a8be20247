//! `QuorumX509Util` and the socket side of `sslQuorum`: the TLS contexts of the election
//! and quorum ports, read from the `ssl.quorum.*` keys (`zookeeper.ssl.quorum.*`), the
//! connecting side's `createSSLSocket` + `startHandshake`, and the checks a JDK peer's
//! `ZKTrustManager` makes on top of the chain (the peer's address against its
//! certificate, both ways).
//!
//! Both ends of a quorum connection authenticate: a peer's key store is its server
//! certificate and its client certificate at once, and `ssl.quorum.clientAuth` defaults
//! to `need`.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rustls::pki_types::ServerName;

use crate::common::tls_stream::TlsStream;
use crate::common::x509_util::{self, SslSettings, QUORUM_PREFIX};
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;

/// `X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS`.
pub const DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS: u64 = 5000;

struct Contexts {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    /// Modification times of the stores the contexts were built from.
    stamps: Vec<Option<SystemTime>>,
}

/// The quorum TLS settings of one peer.
pub struct QuorumX509Util {
    settings: SslSettings,
    /// `sslQuorum`: connect with TLS, accept only TLS unless `portUnification`.
    pub ssl_quorum: bool,
    /// `portUnification`: accept TLS and plain connections alike.
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`.
    reload: bool,
    handshake_detection_timeout: Duration,
    contexts: Mutex<Contexts>,
}

impl QuorumX509Util {
    /// None when neither `sslQuorum` nor `portUnification` is on; Err names what is
    /// wrong with the stores or keys, for a start that must fail rather than fall back
    /// to plain text.
    pub fn from_config(cfg: &QuorumPeerConfig) -> Result<Option<Arc<QuorumX509Util>>, String> {
        if !cfg.ssl_quorum && !cfg.port_unification {
            return Ok(None);
        }
        let settings = SslSettings::from_system_properties(QUORUM_PREFIX)?;
        let timeout = match crate::system_properties::get(&format!("{QUORUM_PREFIX}handshakeDetectionTimeoutMillis")) {
            None => DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => ms,
                _ => {
                    log::warn!("Invalid value for {QUORUM_PREFIX}handshakeDetectionTimeoutMillis: {v}, using the default value of {DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS}");
                    DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS
                }
            },
        };
        let contexts = build(&settings)?;
        Ok(Some(Arc::new(QuorumX509Util {
            settings,
            ssl_quorum: cfg.ssl_quorum,
            port_unification: cfg.port_unification,
            reload: cfg.ssl_quorum_reload_cert_files,
            handshake_detection_timeout: Duration::from_millis(timeout),
            contexts: Mutex::new(contexts),
        })))
    }

    /// The contexts for a new connection; with `sslQuorumReloadCertFiles` rebuilt first
    /// when a store changed on disk (upstream's FileChangeWatcher resets the context).
    fn contexts(&self) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
        let mut g = self.contexts.lock();
        if self.reload && stamps(&self.settings) != g.stamps {
            match build(&self.settings) {
                Ok(c) => {
                    log::info!("Reloaded the quorum key and trust stores");
                    *g = c;
                }
                // A store caught half-written: keep the old context, try again next time.
                Err(e) => log::warn!("Failed to reload the quorum key and trust stores, keeping the old ones: {e}"),
            }
        }
        (g.server.clone(), g.client.clone())
    }

    /// The connecting side (`createSSLSocket` + `startHandshake`) over a connected
    /// socket; logs the session as upstream's QuorumCnxManager and Learner do.
    pub fn connect(&self, sock: TcpStream) -> io::Result<TlsStream> {
        let peer = sock.peer_addr()?;
        let (_, client) = self.contexts();
        let name = ServerName::IpAddress(peer.ip().into());
        let s = TlsStream::tls_client(sock, client, name)?;
        s.handshake()?;
        if let Some((protocol, suite)) = s.negotiated() {
            log::info!("SSL handshake complete with {} - {protocol} - {suite}", java_addr(peer));
        }
        Ok(s)
    }

    /// The accepting side (`UnifiedServerSocket.UnifiedSocket.detectMode`): the first
    /// five bytes say whether the peer starts a TLS handshake. A TLS peer is
    /// handshaken and its certificate checked against its address; a plain one is
    /// taken with `portUnification` and refused otherwise. Runs off the accept thread:
    /// it waits up to `handshakeDetectionTimeoutMillis` for the bytes.
    pub fn accept(&self, sock: TcpStream) -> io::Result<TlsStream> {
        let peer = sock.peer_addr()?;
        let litmus = peek_litmus(&sock, self.handshake_detection_timeout)?;
        if litmus.len() == 5 && is_tls_record(&litmus) {
            let (server, _) = self.contexts();
            let s = TlsStream::tls(sock, server)?;
            s.handshake()?;
            if self.settings.hostname_verification && self.settings.client_auth != x509_util::ClientAuth::None {
                if let Some(cert) = s.peer_certificate() {
                    verify_peer_address(&cert, peer.ip())?;
                }
            }
            if let Some((protocol, suite)) = s.negotiated() {
                log::info!("Accepted TLS connection from {} - {protocol} - {suite}", java_addr(peer));
            }
            Ok(s)
        } else if self.port_unification {
            log::info!("Accepted plaintext connection from {}", java_addr(peer));
            Ok(TlsStream::new(sock))
        } else {
            let _ = sock.shutdown(std::net::Shutdown::Both);
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "Blocked insecure connection attempt"))
        }
    }

    /// Whether a connecting peer uses TLS (`sslQuorum`).
    pub fn connects_secure(&self) -> bool {
        self.ssl_quorum
    }
}

/// Connects to `addr` within `timeout`, with TLS when `x509` says so.
pub fn connect(x509: Option<&QuorumX509Util>, sock: TcpStream) -> io::Result<TlsStream> {
    match x509 {
        Some(x) if x.connects_secure() => x.connect(sock),
        _ => Ok(TlsStream::new(sock)),
    }
}

/// Takes an accepted connection, detecting TLS when `x509` is set.
pub fn accept(x509: Option<&QuorumX509Util>, sock: TcpStream) -> io::Result<TlsStream> {
    match x509 {
        Some(x) => x.accept(sock),
        None => Ok(TlsStream::new(sock)),
    }
}

fn build(s: &SslSettings) -> Result<Contexts, String> {
    let stamps = stamps(s);
    let server = x509_util::server_config(s)?;
    let client = x509_util::client_config(s)?;
    Ok(Contexts { server, client, stamps })
}

fn stamps(s: &SslSettings) -> Vec<Option<SystemTime>> {
    [&s.key_store_location, &s.trust_store_location]
        .into_iter()
        .map(|p| p.as_ref().and_then(|p| std::fs::metadata(PathBuf::from(p)).and_then(|m| m.modified()).ok()))
        .collect()
}

/// Up to five bytes the peer has sent, without taking them from the socket; fewer if
/// it sends fewer before the timeout or closes.
fn peek_litmus(sock: &TcpStream, timeout: Duration) -> io::Result<Vec<u8>> {
    let old = sock.read_timeout()?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 5];
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            log::warn!("Socket mode detection timed out after {} ms, assuming PLAINTEXT", timeout.as_millis());
            break;
        }
        sock.set_read_timeout(Some(left))?;
        match sock.peek(&mut buf) {
            Ok(0) => break,
            Ok(n) if n > got => got = n,
            // The same bytes again: wait a little for more.
            Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                log::warn!("Socket mode detection timed out after {} ms, assuming PLAINTEXT", timeout.as_millis());
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                sock.set_read_timeout(old)?;
                return Err(e);
            }
        }
    }
    sock.set_read_timeout(old)?;
    Ok(buf[..got].to_vec())
}

/// Netty's `SslHandler.isEncrypted` on a record header: a TLS content type (change
/// cipher spec, alert, handshake, application data, heartbeat), major version 3, and a
/// plausible length. The first bytes of a plain quorum connection are a big-endian
/// protocol version or server id (0xffff0000 or 0xffff0001 …), never one of these.
pub fn is_tls_record(h: &[u8]) -> bool {
    if h.len() < 5 {
        return false;
    }
    let content_type_ok = matches!(h[0], 20..=24);
    let len = u16::from_be_bytes([h[3], h[4]]) as usize;
    content_type_ok && h[1] == 3 && len > 0 && len <= 16384 + 2048
}

/// `ZKTrustManager.checkClientTrusted` with client hostname verification, which
/// `QuorumX509Util` turns on: the connecting peer's certificate must name its address.
fn verify_peer_address(cert_der: &[u8], ip: IpAddr) -> io::Result<()> {
    if x509_util::cert_names_address(cert_der, ip) {
        Ok(())
    } else {
        log::error!("Failed to verify host address: {ip}");
        Err(io::Error::new(io::ErrorKind::PermissionDenied, "Failed to verify both host address and host name"))
    }
}

/// `InetSocketAddress.toString()` of a literal address: `/127.0.0.1:2888`.
fn java_addr(a: SocketAddr) -> String {
    format!("/{}:{}", a.ip(), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_and_plain_quorum_headers() {
        // A ClientHello record header.
        assert!(is_tls_record(&[22, 3, 1, 0, 200]));
        assert!(is_tls_record(&[22, 3, 3, 2, 0]));
        // The election protocol version (-65536 / -65535) and a small server id.
        assert!(!is_tls_record(&(-65536i64).to_be_bytes()[..5]));
        assert!(!is_tls_record(&(-65535i64).to_be_bytes()[..5]));
        assert!(!is_tls_record(&3i64.to_be_bytes()[..5]));
        // A learner's first quorum packet: type FOLLOWERINFO (11) as an int.
        assert!(!is_tls_record(&11i32.to_be_bytes().iter().chain(&[0u8]).copied().collect::<Vec<_>>()));
        assert!(!is_tls_record(&[22, 3, 1]));
        assert!(!is_tls_record(&[22, 3, 1, 0, 0]));
    }
}
