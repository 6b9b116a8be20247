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

use crate::common::tls_stream::{self, TlsStream};
use crate::common::x509_util::{self, SslSettings, QUORUM_PREFIX};
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;

/// `X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS`.
pub const DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MS: u64 = 5000;

struct Contexts {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    /// Modification times of the stores the contexts were built from.
    stamps: Vec<Option<(SystemTime, u64, u64)>>,
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
        // QuorumPeer.setSslQuorum's words.
        if cfg.ssl_quorum {
            log::info!("Using TLS encrypted quorum communication");
        } else {
            log::info!("Using insecure (non-TLS) quorum communication");
        }
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
        if tls_stream::starts_tls(&sock, self.handshake_detection_timeout)? {
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
}

/// Connects to `addr` within `timeout`, with TLS when `x509` says so.
pub fn connect(x509: Option<&QuorumX509Util>, sock: TcpStream) -> io::Result<TlsStream> {
    match x509 {
        Some(x) if x.ssl_quorum => x.connect(sock),
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

/// What identifies a store's version on disk: a file replaced by rename has another
/// inode, one rewritten in place another modification time or length.
fn stamps(s: &SslSettings) -> Vec<Option<(SystemTime, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    [&s.key_store_location, &s.trust_store_location]
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(PathBuf::from(p.as_ref()?)).ok()?;
            Some((m.modified().ok()?, m.ino(), m.len()))
        })
        .collect()
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
