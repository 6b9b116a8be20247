//! `org.apache.zookeeper.server.quorum.auth`: SASL between peers (`quorum.auth.*`).
//! The connecting peer (the learner of the exchange) authenticates to the accepting
//! one (the server of the exchange) with DIGEST-MD5 over `QuorumAuthPacket`s, right
//! after the election's initial message and before a learner's first quorum packet.
//! With `quorum.auth.enableSasl=false` both sides are upstream's Null variants: no
//! packets at all.

pub mod sasl_quorum_auth_learner;
pub mod sasl_quorum_auth_server;

use std::io::{self, Read, Write};

use crate::server::quorum::quorum_packet::PacketReader;
use crate::server::quorum::quorum_peer_config::QuorumSaslConfig;

pub use sasl_quorum_auth_learner::SaslQuorumAuthLearner;
pub use sasl_quorum_auth_server::SaslQuorumAuthServer;

/// `QuorumAuth.QUORUM_AUTH_MAGIC_NUMBER`: upstream writes `-0xa0dbcafecafe1234L`, a
/// negated negative literal, so the value on the wire is positive.
pub const QUORUM_AUTH_MAGIC_NUMBER: i64 = (0xa0db_cafe_cafe_1234_u64 as i64).wrapping_neg();
/// The SASL protocol and server name of the quorum exchange (digest-uri
/// `zookeeper-quorum/zk-quorum-sasl-md5`).
pub const QUORUM_SERVER_PROTOCOL_NAME: &str = "zookeeper-quorum";
pub const QUORUM_SERVER_SASL_DIGEST: &str = "zk-quorum-sasl-md5";
/// A token longer than this is garbage, not DIGEST-MD5 (jute's default maxbuffer).
const MAX_TOKEN: usize = 0xfffff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Success,
    Error,
}

impl Status {
    fn code(self) -> i32 {
        match self {
            Status::InProgress => 0,
            Status::Success => 1,
            Status::Error => -1,
        }
    }

    /// `Status.getStatus`: an unknown code is an error.
    fn from_code(c: i32) -> Status {
        match c {
            0 => Status::InProgress,
            1 => Status::Success,
            -1 => Status::Error,
            other => {
                log::error!("Unknown status:{other}!");
                Status::Error
            }
        }
    }
}

/// The `QuorumAuthPacket` record: magic, status, token (a jute buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumAuthPacket {
    pub magic: i64,
    pub status: Status,
    pub token: Vec<u8>,
}

impl QuorumAuthPacket {
    pub fn new(status: Status, token: &[u8]) -> QuorumAuthPacket {
        QuorumAuthPacket { magic: QUORUM_AUTH_MAGIC_NUMBER, status, token: token.to_vec() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16 + self.token.len());
        b.extend_from_slice(&self.magic.to_be_bytes());
        b.extend_from_slice(&self.status.code().to_be_bytes());
        b.extend_from_slice(&(self.token.len() as i32).to_be_bytes());
        b.extend_from_slice(&self.token);
        b
    }

    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.encode())?;
        out.flush()
    }

    pub fn read_from(r: &mut impl Read) -> io::Result<QuorumAuthPacket> {
        let mut h = [0u8; 16];
        r.read_exact(&mut h)?;
        let magic = i64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
        let status = Status::from_code(i32::from_be_bytes([h[8], h[9], h[10], h[11]]));
        let len = i32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let token = if len < 0 {
            Vec::new()
        } else if len as usize > MAX_TOKEN {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("Unreasonable length = {len}")));
        } else {
            let mut t = vec![0u8; len as usize];
            r.read_exact(&mut t)?;
            t
        };
        Ok(QuorumAuthPacket { magic, status, token })
    }
}

/// `QuorumAuth.nextPacketIsAuth`: whether the next eight bytes are the magic, without
/// taking them.
pub fn next_packet_is_auth<R: Read>(din: &mut PacketReader<R>) -> io::Result<bool> {
    let mut head = [0u8; 8];
    din.read_exact(&mut head)?;
    din.unread(head.to_vec());
    Ok(i64::from_be_bytes(head) == QUORUM_AUTH_MAGIC_NUMBER)
}

/// `QuorumPeer.authServer` / `authLearner`: both None with SASL off.
#[derive(Default)]
pub struct QuorumAuth {
    pub server: Option<SaslQuorumAuthServer>,
    pub learner: Option<SaslQuorumAuthLearner>,
}

impl QuorumAuth {
    /// Logs the settings as `QuorumPeer` does and reads the JAAS sections; Err when
    /// SASL is on and a section is missing, for a start that must fail.
    pub fn from_config(c: &QuorumSaslConfig) -> Result<QuorumAuth, String> {
        log::info!("quorum.auth.serverRequireSasl set to {}", c.server_require);
        log::info!("quorum.auth.learnerRequireSasl set to {}", c.learner_require);
        if !c.enabled {
            log::info!("QuorumPeer communication is not secured! (SASL auth disabled)");
            return Ok(QuorumAuth::default());
        }
        log::info!("quorum.auth.enableSasl set to {}", c.enabled);
        log::info!("quorum.auth.learner.saslLoginContext set to {}", c.learner_login_context);
        log::info!("quorum.auth.server.saslLoginContext set to {}", c.server_login_context);
        let cfg = match crate::common::jaas_configuration::load_from_system_property() {
            Some(Ok(cfg)) => cfg,
            Some(Err(e)) => return Err(format!("Failed to initialize authentication mechanism using SASL: {e}")),
            None => {
                return Err(format!(
                    "Failed to initialize authentication mechanism using SASL: no JAAS configuration ({} is not set)",
                    crate::common::jaas_configuration::JAAS_CONF_KEY
                ))
            }
        };
        Ok(QuorumAuth {
            server: Some(SaslQuorumAuthServer::new(c.server_require, &c.server_login_context, &cfg)?),
            learner: Some(SaslQuorumAuthLearner::new(c.learner_require, &c.learner_login_context, &cfg)?),
        })
    }
}

/// The JAAS section `name`, refusing Kerberos as the client port's SASL does.
fn section<'a>(
    cfg: &'a crate::common::jaas_configuration::JaasConfiguration,
    name: &str,
) -> Result<&'a [crate::common::jaas_configuration::AppConfigurationEntry], String> {
    let entries = cfg.get(name).filter(|e| !e.is_empty()).ok_or_else(|| {
        format!("Failed to initialize authentication mechanism using SASL: SASL-authentication failed because the specified JAAS configuration section '{name}' could not be found.")
    })?;
    if let Some(e) = entries.iter().find(|e| e.login_module.contains("Krb5LoginModule")) {
        return Err(format!(
            "Failed to initialize authentication mechanism using SASL: section '{name}' uses {}, and Kerberos (GSSAPI) is not supported by this server; use DigestLoginModule (DIGEST-MD5)",
            e.login_module
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_and_packet_layout() {
        assert_eq!(QUORUM_AUTH_MAGIC_NUMBER, 0x5f24_3501_3501_edcc);
        let p = QuorumAuthPacket::new(Status::InProgress, b"abc");
        let b = p.encode();
        assert_eq!(&b[..8], &0x5f24_3501_3501_edcc_i64.to_be_bytes());
        assert_eq!(&b[8..12], &[0, 0, 0, 0]);
        assert_eq!(&b[12..16], &[0, 0, 0, 3]);
        assert_eq!(QuorumAuthPacket::read_from(&mut &b[..]).unwrap(), p);
        let err = QuorumAuthPacket::new(Status::Error, b"").encode();
        assert_eq!(&err[8..12], &(-1i32).to_be_bytes());
        // A garbage length is refused, a truncated packet is an error, not a panic.
        let mut bad = b.clone();
        bad[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(QuorumAuthPacket::read_from(&mut &bad[..]).is_err());
        assert!(QuorumAuthPacket::read_from(&mut &b[..10]).is_err());
    }
}
