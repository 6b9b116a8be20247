//! `ConnectStringParser`: `host1:port1,host2:port2/chroot`.

use crate::common::path_utils;

pub const DEFAULT_PORT: u16 = 2181;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// (host, port), unresolved.
    pub servers: Vec<(String, u16)>,
    pub chroot: Option<String>,
}

pub fn parse(connect: &str) -> Result<ConnectString, String> {
    let (hosts, chroot) = match connect.find('/') {
        Some(i) => {
            let c = &connect[i..];
            path_utils::validate_path(c)?;
            (&connect[..i], if c.len() == 1 { None } else { Some(c.to_owned()) })
        }
        None => (connect, None),
    };
    let mut servers = Vec::new();
    for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (host, port) = if let Some(rest) = h.strip_prefix('[') {
            // [ipv6]:port
            let end = rest.find(']').ok_or_else(|| format!("invalid IPv6 address: {h}"))?;
            let host = &rest[..end];
            let port = rest[end + 1..].strip_prefix(':').unwrap_or("");
            (host.to_owned(), port)
        } else {
            match h.rfind(':') {
                Some(i) => (h[..i].to_owned(), &h[i + 1..]),
                None => (h.to_owned(), ""),
            }
        };
        let port = if port.is_empty() { DEFAULT_PORT } else { port.parse::<u16>().map_err(|_| format!("invalid port in {h}"))? };
        servers.push((host, port));
    }
    if servers.is_empty() {
        return Err("A HostProvider may not be empty!".into());
    }
    Ok(ConnectString { servers, chroot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let c = parse("a:1,b,[::1]:3/app/x").unwrap();
        assert_eq!(c.servers, vec![("a".into(), 1), ("b".into(), 2181), ("::1".into(), 3)]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(parse("a:1/").unwrap().chroot, None);
        assert!(parse("a:1/bad/").is_err());
        assert!(parse("").is_err());
    }
}
