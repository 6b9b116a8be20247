//! `QuorumMaj`: every voter weighs 1; a set is a quorum when it holds more than half of
//! the voters.

use super::{parse_members, same_members, Members};
use crate::server::quorum::quorum_peer_config::ConfigException;

#[derive(Debug, Clone, Default)]
pub struct QuorumMaj {
    pub members: Members,
    pub version: i64,
}

impl QuorumMaj {
    pub fn from_props(props: &[(String, String)], multi_address_enabled: bool) -> Result<QuorumMaj, ConfigException> {
        let (members, version) = parse_members(props, multi_address_enabled)?;
        Ok(QuorumMaj { members, version })
    }

    /// `half`: voters / 2.
    pub fn half(&self) -> usize {
        self.members.voting().count() / 2
    }

    /// `containsQuorum`: upstream counts the set's size (the ack sets it is given hold
    /// voters only).
    pub fn contains_quorum(&self, ids: &[i64]) -> bool {
        ids.len() > self.half()
    }

    pub fn same_as(&self, o: &QuorumMaj) -> bool {
        self.version == o.version || same_members(&self.members, &o.members)
    }
}
