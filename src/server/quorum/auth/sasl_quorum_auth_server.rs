//! `SaslQuorumAuthServer`: the accepting peer's side of quorum SASL, checking the
//! `user_<name>` entries of the JAAS `QuorumServer` section.

use std::collections::HashMap;
use std::io::{self, Read};

use super::{next_packet_is_auth, section, QuorumAuthPacket, Status, QUORUM_SERVER_PROTOCOL_NAME, QUORUM_SERVER_SASL_DIGEST};
use crate::common::digest_md5::DigestMd5Server;
use crate::common::jaas_configuration::JaasConfiguration;
use crate::common::tls_stream::TlsStream;
use crate::server::quorum::quorum_packet::PacketReader;

/// `SaslQuorumAuthServer.MAX_RETRIES`.
const MAX_RETRIES: u32 = 5;

pub struct SaslQuorumAuthServer {
    require: bool,
    users: HashMap<String, String>,
}

fn failed(m: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, m)
}

impl SaslQuorumAuthServer {
    pub fn new(require: bool, login_context: &str, cfg: &JaasConfiguration) -> Result<SaslQuorumAuthServer, String> {
        let users = section(cfg, login_context)?
            .iter()
            .flat_map(|e| e.options.iter().filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_owned(), v.clone()))))
            .collect();
        Ok(SaslQuorumAuthServer { require, users })
    }

    /// `authenticate`: a peer that sends no auth packet passes unless SASL is required;
    /// one that fails is answered ERROR and, when required, refused (Err closes the
    /// connection), else let through with a warning as upstream does.
    pub fn authenticate<R: Read>(&self, sock: &TlsStream, din: &mut PacketReader<R>) -> io::Result<()> {
        let remote = sock.peer_addr().map(|a| format!("/{a}")).unwrap_or_default();
        if !next_packet_is_auth(din)? {
            if self.require {
                log::error!("Failed to authenticate using SASL: Learner not trying to authenticate and authentication is required");
                return Err(failed("Learner not trying to authenticate and authentication is required".into()));
            }
            return Ok(());
        }
        let mut out = sock;
        match self.exchange(&mut out, din) {
            Ok(true) => {
                log::info!("Successfully completed the authentication using SASL. learner addr: {remote}");
                Ok(())
            }
            Ok(false) => {
                log::warn!("Failed to authenticate using SASL, server addr: {remote}, retries={} exceeded.", MAX_RETRIES + 1);
                Ok(())
            }
            Err(e) => {
                if let Err(w) = QuorumAuthPacket::new(Status::Error, &[]).write_to(&mut out) {
                    log::warn!("Exception while sending failed status: {w}");
                }
                if self.require {
                    log::error!("Failed to authenticate using SASL: {e}");
                    Err(failed(format!("Failed to authenticate using SASL: {e}")))
                } else {
                    log::warn!("Failed to authenticate using SASL: {e}");
                    log::warn!("Maintaining learner connection despite SASL authentication failure. server addr: {remote}, quorum.auth.serverRequireSasl: false");
                    Ok(())
                }
            }
        }
    }

    /// The DIGEST-MD5 rounds; Ok(false) when the retries ran out (ERROR already sent).
    fn exchange<R: Read>(&self, out: &mut &TlsStream, din: &mut PacketReader<R>) -> io::Result<bool> {
        let mut token = QuorumAuthPacket::read_from(din)?.token;
        let mut ss = DigestMd5Server::new(QUORUM_SERVER_PROTOCOL_NAME, QUORUM_SERVER_SASL_DIGEST);
        let mut tries = 0;
        loop {
            let challenge = ss.evaluate_response(&token, &self.users).map_err(|e| failed(e.0))?;
            if ss.is_complete() {
                QuorumAuthPacket::new(Status::Success, &challenge).write_to(out)?;
                return Ok(true);
            }
            tries += 1;
            if tries > MAX_RETRIES {
                QuorumAuthPacket::new(Status::Error, &challenge).write_to(out)?;
                return Ok(false);
            }
            QuorumAuthPacket::new(Status::InProgress, &challenge).write_to(out)?;
            token = QuorumAuthPacket::read_from(din)?.token;
        }
    }
}
