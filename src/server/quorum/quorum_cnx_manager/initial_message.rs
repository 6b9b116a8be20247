//! `QuorumCnxManager.InitialMessage`: what the connecting peer sends first on an election
//! connection — protocol version, its server id and its election address(es). Pure
//! encoding and parsing; the socket side is in `QuorumCnxManager`.

use std::io::{self, Read};

use byteorder::{BigEndian, ReadBytesExt};

use crate::server::quorum::quorum_server::{get_host_and_port, is_wildcard_host, QuorumAddr};

/// Sent by every peer since 3.5 (ZOOKEEPER-107): one `host:port`.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// Since 3.6 (ZOOKEEPER-3188), only with `multiAddress.enabled`: `host:port|host:port`.
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// Longest address text accepted (`maxBuffer`).
pub const MAX_BUFFER: i32 = 2048;

/// What the acceptor learnt from the first bytes of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMessage {
    pub sid: i64,
    /// Election addresses of the sender, wildcard ones left out.
    pub election_addr: Vec<QuorumAddr>,
}

/// `InitialMessageException`: the message text is what upstream logs.
#[derive(Debug)]
pub enum InitialMessageError {
    /// A malformed message (logged as "Initial message parsing error!").
    Bad(String),
    /// The socket failed or timed out ("Exception reading or writing challenge").
    Io(io::Error),
}

impl From<io::Error> for InitialMessageError {
    fn from(e: io::Error) -> Self {
        InitialMessageError::Io(e)
    }
}

/// Encodes the initial message a connecting peer sends.
pub fn encode(protocol_version: i64, my_sid: i64, addresses: &[String]) -> Vec<u8> {
    let addr = addresses.join("|");
    let mut out = Vec::with_capacity(20 + addr.len());
    out.extend_from_slice(&protocol_version.to_be_bytes());
    out.extend_from_slice(&my_sid.to_be_bytes());
    out.extend_from_slice(&(addr.len() as i32).to_be_bytes());
    out.extend_from_slice(addr.as_bytes());
    out
}

/// Reads what follows the first long when that long is a protocol version (negative):
/// the sid, the address length and the addresses.
pub fn parse<R: Read>(protocol_version: i64, r: &mut R) -> Result<InitialMessage, InitialMessageError> {
    if protocol_version != PROTOCOL_VERSION_V1 && protocol_version != PROTOCOL_VERSION_V2 {
        return Err(InitialMessageError::Bad(format!("Got unrecognized protocol version {protocol_version}")));
    }
    let sid = r.read_i64::<BigEndian>()?;
    let remaining = r.read_i32::<BigEndian>()?;
    if remaining <= 0 || remaining > MAX_BUFFER {
        return Err(InitialMessageError::Bad(format!("Unreasonable buffer length: {remaining}")));
    }
    let mut b = vec![0u8; remaining as usize];
    let mut num_read = 0;
    while num_read < b.len() {
        match r.read(&mut b[num_read..]) {
            Ok(0) => break,
            Ok(n) => num_read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if num_read == 0 => return Err(e.into()),
            Err(_) => break,
        }
    }
    if num_read != b.len() {
        return Err(InitialMessageError::Bad(format!("Read only {num_read} bytes out of {remaining} sent by server {sid}")));
    }
    let text = String::from_utf8_lossy(&b);
    let mut addresses = Vec::new();
    for addr in text.split('|') {
        let host_port = get_host_and_port(addr).map_err(|_| InitialMessageError::Bad(format!("Badly formed address: {addr}")))?;
        if host_port.len() != 2 {
            return Err(InitialMessageError::Bad(format!("Badly formed address: {addr}")));
        }
        let port: u16 = host_port[1]
            .parse()
            .map_err(|_| InitialMessageError::Bad(format!("Bad port number: {}", host_port[1])))?;
        if !is_wildcard_host(&host_port[0]) {
            addresses.push(QuorumAddr::new(&host_port[0], port));
        }
    }
    Ok(InitialMessage { sid, election_addr: addresses })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_bytes(b: &[u8]) -> Result<InitialMessage, InitialMessageError> {
        let mut r = b;
        let v = r.read_i64::<BigEndian>().unwrap();
        parse(v, &mut r)
    }

    fn bad(b: &[u8]) -> String {
        match parse_bytes(b) {
            Err(InitialMessageError::Bad(m)) => m,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_v1_and_v2() {
        let m = parse_bytes(&encode(PROTOCOL_VERSION_V1, 3, &["127.0.0.1:3888".into()])).unwrap();
        assert_eq!(m, InitialMessage { sid: 3, election_addr: vec![QuorumAddr::new("127.0.0.1", 3888)] });
        let m = parse_bytes(&encode(PROTOCOL_VERSION_V2, 4, &["[::1]:1".into(), "0.0.0.0:2".into(), "h:3".into()])).unwrap();
        assert_eq!(m.election_addr, vec![QuorumAddr::new("::1", 1), QuorumAddr::new("h", 3)], "wildcards dropped");
    }

    #[test]
    fn refuses_what_upstream_refuses() {
        assert_eq!(bad(&encode(-7, 3, &["h:1".into()])), "Got unrecognized protocol version -7");
        let mut m = encode(PROTOCOL_VERSION_V1, 3, &["h:1".into()]);
        m[16..20].copy_from_slice(&5000i32.to_be_bytes());
        assert_eq!(bad(&m), "Unreasonable buffer length: 5000");
        m[16..20].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(bad(&m), "Unreasonable buffer length: -1");
        let mut m = encode(PROTOCOL_VERSION_V1, 3, &["host:1".into()]);
        m.truncate(m.len() - 2);
        assert_eq!(bad(&m), "Read only 4 bytes out of 6 sent by server 3");
        assert_eq!(bad(&encode(PROTOCOL_VERSION_V1, 3, &["nohost".into()])), "Badly formed address: nohost");
        assert_eq!(bad(&encode(PROTOCOL_VERSION_V1, 3, &["h:1:2".into()])), "Badly formed address: h:1:2");
        assert_eq!(bad(&encode(PROTOCOL_VERSION_V1, 3, &["h:x".into()])), "Bad port number: x");
        assert!(matches!(parse_bytes(&encode(PROTOCOL_VERSION_V1, 3, &[])[..12]), Err(InitialMessageError::Io(_))));
    }

    #[test]
    fn multibyte_text_after_a_bracket_is_no_panic() {
        // Used to slice inside the 'é' and panic the pool thread, which then never gave
        // its slot back: 20 such connections left the peer unable to connect at all.
        assert_eq!(bad(&encode(PROTOCOL_VERSION_V1, 3, &["[a]\u{e9}".into()])), "Badly formed address: [a]\u{e9}");
        let m = parse_bytes(&encode(PROTOCOL_VERSION_V1, 3, &["[a]\u{e9}7".into()])).unwrap();
        assert_eq!(m.election_addr, vec![QuorumAddr::new("a", 7)], "the character after ']' is skipped, as upstream does");
    }
}
