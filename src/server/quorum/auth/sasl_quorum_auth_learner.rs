//! `SaslQuorumAuthLearner`: the connecting peer's side of quorum SASL, with the
//! username and password of the JAAS `QuorumLearner` section.

use std::io;

use super::{section, QuorumAuthPacket, Status, QUORUM_SERVER_PROTOCOL_NAME, QUORUM_SERVER_SASL_DIGEST};
use crate::common::digest_md5::DigestMd5Client;
use crate::common::jaas_configuration::JaasConfiguration;
use crate::common::tls_stream::TlsStream;

pub struct SaslQuorumAuthLearner {
    require: bool,
    username: String,
    password: String,
}

fn failed(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, m)
}

impl SaslQuorumAuthLearner {
    pub fn new(require: bool, login_context: &str, cfg: &JaasConfiguration) -> Result<SaslQuorumAuthLearner, String> {
        let entries = section(cfg, login_context)?;
        let (username, password) = entries
            .iter()
            .find_map(|e| Some((e.options.get("username")?.clone(), e.options.get("password")?.clone())))
            .ok_or_else(|| format!("Failed to initialize authentication mechanism using SASL: section '{login_context}' has no username and password"))?;
        Ok(SaslQuorumAuthLearner { require, username, password })
    }

    /// `authenticate`: an empty first token (DIGEST-MD5 has no initial response), the
    /// digest-response to the challenge, then the server's SUCCESS with `rspauth`.
    /// Reads exactly the packets of the exchange, so nothing after it is consumed.
    pub fn authenticate(&self, sock: &TlsStream) -> io::Result<()> {
        let remote = sock.peer_addr().map(|a| format!("/{a}")).unwrap_or_default();
        if !self.require {
            log::info!("Skipping SASL authentication as quorum.auth.learnerRequireSasl=false");
            return Ok(());
        }
        let mut client = DigestMd5Client::new(&self.username, &self.password, QUORUM_SERVER_PROTOCOL_NAME, QUORUM_SERVER_SASL_DIGEST);
        let mut out = sock;
        let mut inp = sock;
        QuorumAuthPacket::new(Status::InProgress, &[]).write_to(&mut out)?;
        let mut packet = QuorumAuthPacket::read_from(&mut inp)?;
        let mut status = packet.status;
        while !client.is_complete() {
            match status {
                Status::Success => {
                    let rest = client.evaluate_challenge(&packet.token).map_err(|e| failed(e.0))?;
                    if !rest.is_empty() || !client.is_complete() {
                        return Err(failed("Protocol error: attempting to send response after completion".into()));
                    }
                }
                Status::InProgress => {
                    let response = client.evaluate_challenge(&packet.token).map_err(|e| failed(e.0))?;
                    QuorumAuthPacket::new(Status::InProgress, &response).write_to(&mut out)?;
                    packet = QuorumAuthPacket::read_from(&mut inp)?;
                    status = packet.status;
                }
                Status::Error => return Err(failed(format!("Authentication failed against server addr: {remote}"))),
            }
        }
        if status != Status::Success {
            return Err(failed(format!("Authentication failed against server addr: {remote}, qpStatus: {status:?}")));
        }
        log::info!("Successfully completed the authentication using SASL. server addr: {remote}, status: SUCCESS");
        Ok(())
    }
}
