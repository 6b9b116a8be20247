//! Raw Zab (quorum port) packets, for tests that talk to a leader's quorum port
//! without a learner of their own.

use zookeeper::jute::{OutputArchive, Record};
use zookeeper::proto::quorum::{LearnerInfo, QuorumPacket};

/// A serialized `QuorumPacket` (type, zxid, data, no auth info).
pub fn packet(t: i32, zxid: i64, data: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = OutputArchive::new();
    QuorumPacket { r#type: t, zxid, data, authinfo: Vec::new() }.serialize(&mut out);
    out.into_inner()
}

/// A serialized `LearnerInfo` of server `sid` (protocol 0x10000, config version 0):
/// the data of a FOLLOWERINFO / OBSERVERINFO packet.
pub fn learner_info(sid: i64) -> Vec<u8> {
    let mut out = OutputArchive::new();
    LearnerInfo { serverid: sid, protocol_version: 0x10000, config_version: 0 }.serialize(&mut out);
    out.into_inner()
}
