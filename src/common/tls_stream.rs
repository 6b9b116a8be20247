//! A TCP socket shared by a reader and a writer thread, with an optional TLS session
//! on top (rustls, client or server side): the reader decrypts what it reads, the
//! writer encrypts what it writes, each holding the session's lock only while it works
//! on records, never while blocked on a read. Without TLS it is the plain socket, shared
//! rather than `dup`ed (one descriptor per connection).

use std::net::TcpStream;

use parking_lot::Mutex;

/// The one socket of a connection, shared by its reader thread, its writer thread and
/// whoever closes it. Upstream holds one SocketChannel per client; `try_clone` would
/// `dup` the descriptor for each holder and so triple what every client costs against
/// the open-files limit. On the secure client port the TLS session sits on top: the
/// reader decrypts what it reads, the writer encrypts what it writes, each holding the
/// session's lock only while it works on records (never while blocked on a read).
#[derive(Clone)]
pub struct TlsStream {
    sock: std::sync::Arc<TcpStream>,
    tls: Option<std::sync::Arc<TlsSession>>,
}

pub struct TlsSession {
    conn: Mutex<(rustls::Connection, Vec<u8>)>,
}

impl TlsStream {
    pub fn new(s: TcpStream) -> TlsStream {
        TlsStream { sock: std::sync::Arc::new(s), tls: None }
    }

    /// The server side of a TLS connection; the handshake runs with the first read.
    pub fn tls(s: TcpStream, config: std::sync::Arc<rustls::ServerConfig>) -> std::io::Result<TlsStream> {
        let conn = rustls::Connection::Server(rustls::ServerConnection::new(config).map_err(std::io::Error::other)?);
        Ok(TlsStream::with(s, conn))
    }

    /// The client side of a TLS connection to `name`; the handshake runs with the first
    /// write and read.
    pub fn tls_client(
        s: TcpStream,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> std::io::Result<TlsStream> {
        let conn = rustls::Connection::Client(rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?);
        Ok(TlsStream::with(s, conn))
    }

    fn with(s: TcpStream, conn: rustls::Connection) -> TlsStream {
        TlsStream {
            sock: std::sync::Arc::new(s),
            tls: Some(std::sync::Arc::new(TlsSession { conn: Mutex::new((conn, Vec::new())) })),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Runs the handshake to its end now (`SSLSocket.startHandshake`) rather than with
    /// the first read or write: before the stream is shared, so holding the session's
    /// lock across the socket's reads here blocks nobody.
    pub fn handshake(&self) -> std::io::Result<()> {
        let Some(t) = &self.tls else { return Ok(()) };
        let mut g = t.conn.lock();
        let conn = &mut g.0;
        // complete_io runs until the handshake is done (an early close is UnexpectedEof).
        if conn.is_handshaking() {
            conn.complete_io(&mut &*self.sock)?;
        }
        while conn.wants_write() {
            conn.write_tls(&mut &*self.sock)?;
        }
        Ok(())
    }

    /// The negotiated protocol and cipher suite as a JDK names them (`TLSv1.2`,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`), for upstream's log lines.
    pub fn negotiated(&self) -> Option<(String, String)> {
        let t = self.tls.as_ref()?;
        let g = t.conn.lock();
        let protocol = match g.0.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            other => format!("{other:?}"),
        };
        let suite = format!("{:?}", g.0.negotiated_cipher_suite()?.suite());
        let suite = match suite.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => suite,
        };
        Some((protocol, suite))
    }

    /// The client certificate chain's leaf, once the handshake is done.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let t = self.tls.as_ref()?;
        let g = t.conn.lock();
        g.0.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec())
    }

    fn tls_read(&self, t: &TlsSession, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::Read;
        loop {
            {
                let mut g = t.conn.lock();
                let (conn, pending) = &mut *g;
                // Raw bytes a full buffer could not take last time.
                if !pending.is_empty() {
                    let mut s: &[u8] = pending;
                    let k = conn.read_tls(&mut s)?;
                    pending.drain(..k);
                    if let Err(e) = conn.process_new_packets() {
                        let _ = conn.write_tls(&mut &*self.sock);
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                    }
                }
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    // A close without close_notify (a JVM killed or closing its socket
                    // bare) ends the stream like a plain close: every frame on these
                    // ports carries its length, so a cut frame is still seen as one.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
                while conn.wants_write() {
                    conn.write_tls(&mut &*self.sock)?;
                }
                if !pending.is_empty() {
                    continue;
                }
            }
            let mut raw = [0u8; 16 * 1024];
            let n = (&*self.sock).read(&mut raw)?;
            let mut g = t.conn.lock();
            let (conn, pending) = &mut *g;
            let mut s: &[u8] = &raw[..n];
            let k = conn.read_tls(&mut s)?;
            pending.extend_from_slice(&raw[k..n]);
            if let Err(e) = conn.process_new_packets() {
                // The alert tells the peer why, as a JDK server does.
                let _ = conn.write_tls(&mut &*self.sock);
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
            }
            if n == 0 {
                // End of stream: what was decrypted is still there, then EOF.
                return match conn.reader().read(buf) {
                    Ok(n) => Ok(n),
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::UnexpectedEof) => Ok(0),
                    Err(e) => Err(e),
                };
            }
        }
    }

    fn tls_write(&self, t: &TlsSession, buf: &[u8]) -> std::io::Result<usize> {
        use std::io::Write;
        let mut g = t.conn.lock();
        let conn = &mut g.0;
        let n = conn.writer().write(buf)?;
        while conn.wants_write() {
            conn.write_tls(&mut &*self.sock)?;
        }
        Ok(n)
    }
}

impl std::ops::Deref for TlsStream {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.sock
    }
}

impl std::io::Read for &TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &self.tls {
            Some(t) => self.tls_read(t, buf),
            None => (&*self.sock).read(buf),
        }
    }
}

impl std::io::Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self).read(buf)
    }
}

impl std::io::Write for &TlsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &self.tls {
            Some(t) => self.tls_write(t, buf),
            None => (&*self.sock).write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.sock).flush()
    }
}

impl std::io::Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        (&*self).flush()
    }
}


/// `UnifiedServerSocket.detectMode` / Netty's `SslHandler.isEncrypted` on the first
/// bytes of an accepted connection: whether the peer opens with a TLS record. Waits up
/// to `timeout` for five bytes; fewer (or none) are plain text, as upstream assumes.
pub fn starts_tls(sock: &TcpStream, timeout: std::time::Duration) -> std::io::Result<bool> {
    let litmus = peek_litmus(sock, timeout, false)?;
    Ok(litmus.len() == 5 && is_tls_record(&litmus))
}

/// The client port's `client.portUnification` (Netty's `DualModeSslHandler`): as
/// [`starts_tls`], but a first byte that cannot open a TLS handshake (22) decides for
/// plain text at once, so that a four-letter word (four bytes) is answered.
pub fn client_starts_tls(sock: &TcpStream, timeout: std::time::Duration) -> std::io::Result<bool> {
    let litmus = peek_litmus(sock, timeout, true)?;
    Ok(litmus.len() == 5 && is_tls_record(&litmus))
}

/// Up to five bytes the peer has sent, without taking them from the socket; fewer if
/// it sends fewer before the timeout or closes, or (`first_byte_decides`) once the
/// first byte is not a handshake record's.
fn peek_litmus(sock: &TcpStream, timeout: std::time::Duration, first_byte_decides: bool) -> std::io::Result<Vec<u8>> {
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
            Ok(n) if first_byte_decides && buf[0] != 22 => {
                got = n;
                break;
            }
            Ok(n) if n > got => got = n,
            // The same bytes again: wait a little for more.
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                log::warn!("Socket mode detection timed out after {} ms, assuming PLAINTEXT", timeout.as_millis());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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
/// protocol version or server id (0xffff0000 or 0xffff0001 …), a plain client's a
/// frame length (0x00…) or a four-letter word: never one of these.
pub fn is_tls_record(h: &[u8]) -> bool {
    if h.len() < 5 {
        return false;
    }
    let content_type_ok = matches!(h[0], 20..=24);
    let len = u16::from_be_bytes([h[3], h[4]]) as usize;
    content_type_ok && h[1] == 3 && len > 0 && len <= 16384 + 2048
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
