//! `QuorumPeer.QuorumServer` and `LearnerType`: one `server.N` line of the membership,
//! plus `MultipleAddresses` (the `|`-separated address list of ZOOKEEPER-3188).
//!
//! Addresses keep the host text as configured, like Java's `InetSocketAddress` keeps its
//! host string: it is what goes back on the wire (the election initial message, the
//! config text in notifications and NEWLEADER), so a Java peer sees exactly what its own
//! configuration says. Name resolution happens when a socket is opened.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::server::quorum::quorum_peer_config::ConfigException;

/// `QuorumPeer.LearnerType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LearnerType {
    Participant,
    Observer,
}

impl LearnerType {
    /// `LearnerType.toString()` as upstream's logs print it.
    pub fn name(self) -> &'static str {
        match self {
            LearnerType::Participant => "PARTICIPANT",
            LearnerType::Observer => "OBSERVER",
        }
    }
}

/// A host and port as written in the configuration (`InetSocketAddress` created from a
/// host string).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuorumAddr {
    pub host: String,
    pub port: u16,
}

impl QuorumAddr {
    pub fn new(host: &str, port: u16) -> QuorumAddr {
        QuorumAddr { host: host.to_owned(), port }
    }

    /// `new InetSocketAddress(host, port)`: the port must fit 0..=65535.
    fn parse(host: &str, port_text: &str) -> Result<QuorumAddr, ConfigException> {
        let port: i32 = port_text
            .parse()
            .map_err(|_| ConfigException::new(format!("Address unresolved: {host}:{port_text}")))?;
        let port = u16::try_from(port).map_err(|_| ConfigException::illegal_argument(format!("port out of range:{port}")))?;
        Ok(QuorumAddr::new(host, port))
    }

    /// The first address the host resolves to.
    pub fn resolve(&self) -> io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}: no address", self.host)))
    }

    /// `InetAddress.isAnyLocalAddress()` of the resolved host (0.0.0.0, ::).
    pub fn is_wildcard(&self) -> bool {
        is_wildcard_host(&self.host)
    }

    /// `QuorumServer.delimitedHostString`: IPv6 hosts in brackets.
    pub fn delimited_host_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `NetUtils.formatInetAddr`: the resolved IP (IPv6 in brackets), or the host text when
    /// it does not resolve.
    pub fn format_inet_addr(&self) -> String {
        match self.resolve() {
            Ok(SocketAddr::V4(a)) => format!("{}:{}", a.ip(), a.port()),
            Ok(SocketAddr::V6(a)) => format!("[{}]:{}", a.ip(), a.port()),
            Err(_) => format!("{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Display for QuorumAddr {
    /// `InetSocketAddress.toString()`: `host/ip:port`, `/ip:port` for a literal address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let literal = self.host.parse::<IpAddr>().is_ok();
        match self.resolve() {
            Ok(a) if literal => write!(f, "/{}:{}", a.ip(), self.port),
            Ok(a) => write!(f, "{}/{}:{}", self.host, a.ip(), self.port),
            Err(_) => write!(f, "{}/<unresolved>:{}", self.host, self.port),
        }
    }
}

/// `InitialMessage.isWildcardAddress`: a host that resolves to the any-local address.
pub fn is_wildcard_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    match h.parse::<IpAddr>() {
        Ok(ip) => ip.is_unspecified(),
        Err(_) => false,
    }
}

/// `MultipleAddresses`: the addresses one server can be reached at (one unless
/// `multiAddress.enabled`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipleAddresses(pub Vec<QuorumAddr>);

impl MultipleAddresses {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn all(&self) -> &[QuorumAddr] {
        &self.0
    }

    /// `getOne()`: the first configured address.
    pub fn one(&self) -> Option<&QuorumAddr> {
        self.0.first()
    }

    /// `getWildcardAddresses()`: the same ports on 0.0.0.0 (quorumListenOnAllIPs).
    pub fn wildcard(&self) -> Vec<QuorumAddr> {
        let mut v: Vec<QuorumAddr> = self.0.iter().map(|a| QuorumAddr::new("0.0.0.0", a.port)).collect();
        v.dedup();
        v
    }

    /// Equality as `MultipleAddresses.equals`: the same set of addresses.
    pub fn same_set(&self, other: &MultipleAddresses) -> bool {
        let mut a = self.0.clone();
        let mut b = other.0.clone();
        a.sort();
        b.sort();
        a == b
    }
}

/// `ConfigUtils.getHostAndPort`: `host:port[:port...]`, or `[v6]:port...`. Like Java's
/// `String.split`, trailing empty parts are dropped.
pub fn get_host_and_port(s: &str) -> Result<Vec<String>, ConfigException> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(i) = rest.find(']') else {
            return Err(ConfigException::new(format!("{s} starts with '[' but has no matching ']:'")));
        };
        // Upstream skips the one character after the ']' (meant to be ':') whatever it is.
        // Count it as a character, not a byte: the text may come off the wire (an
        // election initial message, a notification's config), and slicing inside a
        // multi-byte character would panic the thread reading it.
        let mut after = rest[i + 1..].chars();
        if after.next().is_none() {
            return Ok(vec![s.replace(['[', ']'], "")]);
        }
        let ports = after.as_str();
        if ports.is_empty() {
            return Err(ConfigException::new(format!("{s} doesn't have a port after colon")));
        }
        let mut out = vec![rest[..i].to_owned()];
        out.extend(java_split(ports, ':'));
        return Ok(out);
    }
    Ok(java_split(s, ':'))
}

/// `String.split(regex)` for a one-character separator: trailing empty strings removed
/// (but an empty input gives one empty string).
pub fn java_split(s: &str, sep: char) -> Vec<String> {
    let mut parts: Vec<String> = s.split(sep).map(str::to_owned).collect();
    if s.is_empty() {
        return parts;
    }
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() {
        parts.clear();
    }
    parts
}

/// `QuorumPeer.QuorumServer`.
#[derive(Debug, Clone)]
pub struct QuorumServer {
    pub id: i64,
    /// Quorum (Zab) addresses: the first port of the line.
    pub addr: MultipleAddresses,
    /// Election addresses: the second port.
    pub election_addr: MultipleAddresses,
    pub client_addr: Option<QuorumAddr>,
    /// The host of the last address of the line.
    pub hostname: String,
    pub learner_type: LearnerType,
    /// The client address came from `clientPort`/`clientPortAddress`, not from the line;
    /// the canonical text then leaves it out.
    pub is_client_addr_from_static: bool,
}

const WRONG_FORMAT: &str = " does not have the form server_config or server_config;client_config where server_config is the pipe separated list of host:port:port or host:port:port:type and client_config is port or host:port";

impl QuorumServer {
    /// Parses the value of a `server.<sid>` line.
    pub fn parse(sid: i64, address_str: &str, multi_address_enabled: bool) -> Result<QuorumServer, ConfigException> {
        let server_client_parts = java_split(address_str, ';');
        let first = server_client_parts.first().cloned().unwrap_or_default();
        let server_addresses = java_split(&first, '|');
        let mut qs = QuorumServer {
            id: sid,
            addr: MultipleAddresses::default(),
            election_addr: MultipleAddresses::default(),
            client_addr: None,
            hostname: String::new(),
            learner_type: LearnerType::Participant,
            is_client_addr_from_static: false,
        };
        if server_client_parts.len() == 2 {
            let client_parts = get_host_and_port(&server_client_parts[1])?;
            if client_parts.len() > 2 || client_parts.is_empty() {
                return Err(ConfigException::new(format!("{address_str}{WRONG_FORMAT}")));
            }
            let host = if client_parts.len() == 2 { client_parts[0].as_str() } else { "0.0.0.0" };
            let port = &client_parts[client_parts.len() - 1];
            // Upstream names the (still unset) hostname field in this message.
            let port: i32 = port.parse().map_err(|_| ConfigException::new(format!("Address unresolved: null:{port}")))?;
            let port = u16::try_from(port).map_err(|_| ConfigException::illegal_argument(format!("port out of range:{port}")))?;
            qs.client_addr = Some(QuorumAddr::new(host, port));
        }
        if !multi_address_enabled && server_addresses.len() > 1 {
            return Err(ConfigException::new(format!(
                "Multiple address feature is disabled, but multiple addresses were specified for sid {sid}"
            )));
        }
        let mut new_type: Option<LearnerType> = None;
        for server_address in &server_addresses {
            let parts = get_host_and_port(server_address)?;
            if server_client_parts.len() > 2 || parts.len() < 3 || parts.len() > 4 {
                return Err(ConfigException::new(format!("{address_str}{WRONG_FORMAT}")));
            }
            let host = parts[0].as_str();
            let a = QuorumAddr::parse(host, &parts[1])?;
            qs.addr.0.push(a.clone());
            let e = QuorumAddr::parse(host, &parts[2])?;
            qs.election_addr.0.push(e.clone());
            if a.port == e.port {
                return Err(ConfigException::new(format!(
                    "Client and election port must be different! Please update the configuration file on server.{sid}"
                )));
            }
            if parts.len() == 4 {
                let t = match parts[3].trim().to_lowercase().as_str() {
                    "observer" => LearnerType::Observer,
                    "participant" => LearnerType::Participant,
                    _ => return Err(ConfigException::new(format!("Unrecognised peertype: {}", parts[3]))),
                };
                match new_type {
                    None => new_type = Some(t),
                    Some(prev) if prev != t => {
                        return Err(ConfigException::new(format!(
                            "Multiple addresses should have similar roles: {} vs {}",
                            qs.learner_type.name(),
                            t.name()
                        )))
                    }
                    _ => {}
                }
            }
            qs.hostname = host.to_owned();
        }
        if let Some(t) = new_type {
            qs.learner_type = t;
        }
        Ok(qs)
    }

    /// `QuorumServer.toString()`: the canonical line value, as sent in notifications.
    pub fn to_config_string(&self) -> String {
        let mut out = String::new();
        if !self.addr.is_empty() && !self.election_addr.is_empty() {
            let mut a = self.addr.0.clone();
            let mut e = self.election_addr.0.clone();
            a.sort_by(|x, y| x.host.cmp(&y.host));
            e.sort_by(|x, y| x.host.cmp(&y.host));
            let joined: Vec<String> = a
                .iter()
                .zip(e.iter())
                .map(|(a, e)| format!("{}:{}:{}", a.delimited_host_string(), a.port, e.port))
                .collect();
            out.push_str(&joined.join("|"));
        }
        out.push_str(match self.learner_type {
            LearnerType::Observer => ":observer",
            LearnerType::Participant => ":participant",
        });
        if let Some(c) = &self.client_addr {
            if !self.is_client_addr_from_static {
                out.push_str(&format!(";{}:{}", c.delimited_host_string(), c.port));
            }
        }
        out
    }

    /// `QuorumServer.equals`: same id, type, quorum and election addresses and client
    /// address.
    pub fn same_as(&self, o: &QuorumServer) -> bool {
        self.id == o.id
            && self.learner_type == o.learner_type
            && self.addr.same_set(&o.addr)
            && self.election_addr.same_set(&o.election_addr)
            && self.client_addr == o.client_addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_of_a_server_line() {
        let s = QuorumServer::parse(1, "127.0.0.1:2888:3888", false).unwrap();
        assert_eq!(s.addr.0, vec![QuorumAddr::new("127.0.0.1", 2888)]);
        assert_eq!(s.election_addr.0, vec![QuorumAddr::new("127.0.0.1", 3888)]);
        assert_eq!(s.learner_type, LearnerType::Participant);
        assert_eq!(s.client_addr, None);
        assert_eq!(s.to_config_string(), "127.0.0.1:2888:3888:participant");

        let s = QuorumServer::parse(2, "h:1:2:observer;2181", false).unwrap();
        assert_eq!(s.learner_type, LearnerType::Observer);
        assert_eq!(s.client_addr, Some(QuorumAddr::new("0.0.0.0", 2181)));
        assert_eq!(s.to_config_string(), "h:1:2:observer;0.0.0.0:2181");

        let s = QuorumServer::parse(3, "[::1]:1:2;[::1]:5", false).unwrap();
        assert_eq!(s.to_config_string(), "[::1]:1:2:participant;[::1]:5");

        let s = QuorumServer::parse(4, "b:1:2|a:3:4", true).unwrap();
        assert_eq!(s.to_config_string(), "a:3:4|b:1:2:participant");
    }

    #[test]
    fn rejects_bad_lines_with_upstream_messages() {
        let e = QuorumServer::parse(1, "h:1:1", false).unwrap_err();
        assert_eq!(e.msg, "Client and election port must be different! Please update the configuration file on server.1");
        let e = QuorumServer::parse(1, "h:1", false).unwrap_err();
        assert!(e.msg.starts_with("h:1 does not have the form server_config"), "{e}");
        let e = QuorumServer::parse(1, "h:x:2", false).unwrap_err();
        assert_eq!(e.msg, "Address unresolved: h:x");
        let e = QuorumServer::parse(1, "h:1:2:boss", false).unwrap_err();
        assert_eq!(e.msg, "Unrecognised peertype: boss");
        let e = QuorumServer::parse(7, "a:1:2|b:3:4", false).unwrap_err();
        assert_eq!(e.msg, "Multiple address feature is disabled, but multiple addresses were specified for sid 7");
        let e = QuorumServer::parse(1, "a:1:2:observer|b:3:4:participant", true).unwrap_err();
        assert_eq!(e.msg, "Multiple addresses should have similar roles: PARTICIPANT vs PARTICIPANT");
        let e = QuorumServer::parse(1, "[::1:1:2", false).unwrap_err();
        assert_eq!(e.msg, "[::1:1:2 starts with '[' but has no matching ']:'");
        let e = QuorumServer::parse(1, "h:1:2;a:b:c", false).unwrap_err();
        assert!(e.msg.ends_with("and client_config is port or host:port"), "{e}");
        let e = QuorumServer::parse(1, "h:1:70000", false).unwrap_err();
        assert_eq!(e.msg, "port out of range:70000");
    }

    #[test]
    fn bracketed_host_with_a_multibyte_character_after_the_bracket() {
        // Reached with text off the wire: must be an error, never a panic.
        assert_eq!(get_host_and_port("[a]\u{e9}1:2").unwrap(), vec!["a", "1", "2"]);
        assert_eq!(get_host_and_port("[a]\u{e9}").unwrap_err().msg, "[a]\u{e9} doesn't have a port after colon");
        assert_eq!(get_host_and_port("[a]").unwrap(), vec!["a"]);
        assert_eq!(get_host_and_port("[a]:").unwrap_err().msg, "[a]: doesn't have a port after colon");
        assert_eq!(QuorumServer::parse(1, "[a]\u{e9}1:2", false).unwrap().to_config_string(), "a:1:2:participant");
        assert!(QuorumServer::parse(1, "[a]\u{e9}:2:3", false).is_err());
    }

    #[test]
    fn java_split_drops_trailing_empties() {
        assert_eq!(java_split("a:b::", ':'), vec!["a", "b"]);
        assert_eq!(java_split(":a", ':'), vec!["", "a"]);
        assert_eq!(java_split("", ':'), vec![""]);
    }
}
