//! The election notification on the wire (`FastLeaderElection.buildMsg` and the decoding
//! in `WorkerReceiver`). Big-endian: state int, leader long, zxid long, electionEpoch
//! long, peerEpoch long, version int (0x2), config length int, config text — 44 bytes plus
//! the config. Receivers still take the 28-byte (pre-3.4) and 40-byte (pre-3.5) forms.

use std::sync::Arc;

use crate::server::quorum::vote::ServerState;
use crate::server::util::zxid_utils::epoch_from_zxid;

/// `Notification.CURRENTVERSION`.
pub const CURRENT_VERSION: i32 = 0x2;

/// `FastLeaderElection.ToSend`: what the WorkerSender encodes for one recipient.
#[derive(Debug, Clone)]
pub struct ToSend {
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub state: ServerState,
    /// Recipient.
    pub sid: i64,
    pub peer_epoch: i64,
    /// The sender's config text (`QuorumVerifier.toString()`), UTF-8.
    pub config_data: Arc<[u8]>,
}

/// `buildMsg` (the 44-byte + config form every 3.8 peer sends).
pub fn build_msg(state: i32, leader: i64, zxid: i64, election_epoch: i64, peer_epoch: i64, config: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(44 + config.len());
    b.extend_from_slice(&state.to_be_bytes());
    b.extend_from_slice(&leader.to_be_bytes());
    b.extend_from_slice(&zxid.to_be_bytes());
    b.extend_from_slice(&election_epoch.to_be_bytes());
    b.extend_from_slice(&peer_epoch.to_be_bytes());
    b.extend_from_slice(&CURRENT_VERSION.to_be_bytes());
    b.extend_from_slice(&(config.len() as i32).to_be_bytes());
    b.extend_from_slice(config);
    b
}

/// Which legacy layout a message used (each is logged as upstream does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 28 bytes: no peer epoch (taken from the zxid), no version.
    Legacy28,
    /// 40 bytes: peer epoch, 4 ignored bytes, no version.
    Legacy40,
    /// A version field, 0 or 1: no config.
    BeforeReconfig,
    /// Version > 1 with a config text.
    Current,
}

/// A decoded message; the state is still the raw ordinal (upstream only checks it after
/// deciding whether the sender is a voter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNotification {
    pub state: i32,
    pub leader: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub version: i32,
    pub config: Option<Vec<u8>>,
    pub layout: Layout,
}

impl RawNotification {
    pub fn server_state(&self) -> Option<ServerState> {
        ServerState::from_ordinal(self.state)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer than 28 bytes: "Got a short response from server {sid}: {len}".
    Short(usize),
    /// A field runs past the end, or a bad config length: "Skipping the processing of a
    /// partial / malformed response message".
    Malformed(String),
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.pos..self.pos + N)?;
        self.pos += N;
        s.try_into().ok()
    }

    fn int(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    fn long(&mut self) -> Option<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

/// Decodes a notification as the 3.8 WorkerReceiver does.
pub fn decode(buf: &[u8]) -> Result<RawNotification, DecodeError> {
    let capacity = buf.len();
    if capacity < 28 {
        return Err(DecodeError::Short(capacity));
    }
    let mut c = Cursor { b: buf, pos: 0 };
    let underflow = || DecodeError::Malformed("BufferUnderflowException".into());
    let state = c.int().ok_or_else(underflow)?;
    let leader = c.long().ok_or_else(underflow)?;
    let zxid = c.long().ok_or_else(underflow)?;
    let election_epoch = c.long().ok_or_else(underflow)?;
    if capacity == 28 {
        return Ok(RawNotification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch: epoch_from_zxid(zxid),
            version: 0,
            config: None,
            layout: Layout::Legacy28,
        });
    }
    let peer_epoch = c.long().ok_or_else(underflow)?;
    if capacity == 40 {
        return Ok(RawNotification { state, leader, zxid, election_epoch, peer_epoch, version: 0, config: None, layout: Layout::Legacy40 });
    }
    let version = c.int().ok_or_else(underflow)?;
    if version <= 0x1 {
        return Ok(RawNotification { state, leader, zxid, election_epoch, peer_epoch, version, config: None, layout: Layout::BeforeReconfig });
    }
    let config_length = c.int().ok_or_else(underflow)?;
    if config_length < 0 || config_length as usize > capacity {
        return Err(DecodeError::Malformed(format!(
            "Invalid configLength in notification message! capacity={capacity}, version={version}, configLength={config_length}"
        )));
    }
    let start = c.pos;
    let config = buf.get(start..start + config_length as usize).ok_or_else(underflow)?.to_vec();
    Ok(RawNotification { state, leader, zxid, election_epoch, peer_epoch, version, config: Some(config), layout: Layout::Current })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_form_round_trips() {
        let cfg = b"server.1=127.0.0.1:1:2:participant\nversion=0";
        let m = build_msg(2, 3, 0x1_0000_0005, 7, 1, cfg);
        assert_eq!(m.len(), 44 + cfg.len());
        let n = decode(&m).unwrap();
        assert_eq!(n.server_state(), Some(ServerState::Leading));
        assert_eq!((n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version), (3, 0x1_0000_0005, 7, 1, 2));
        assert_eq!(n.config.as_deref(), Some(&cfg[..]));
        assert_eq!(n.layout, Layout::Current);
    }

    #[test]
    fn legacy_forms() {
        let m = build_msg(0, 3, 0x4_0000_0001, 7, 9, b"");
        let n = decode(&m[..28]).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.layout), (4, 0, Layout::Legacy28), "peer epoch from the zxid");
        let n = decode(&m[..40]).unwrap();
        assert_eq!((n.peer_epoch, n.version, n.layout), (9, 0, Layout::Legacy40));
        let mut v1 = m[..40].to_vec();
        v1[36..40].copy_from_slice(&1i32.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        let n = decode(&v1).unwrap();
        assert_eq!((n.version, n.layout), (1, Layout::BeforeReconfig));
    }

    #[test]
    fn malformed_forms() {
        let m = build_msg(0, 3, 1, 7, 9, b"abc");
        assert_eq!(decode(&m[..27]), Err(DecodeError::Short(27)));
        assert!(matches!(decode(&m[..36]), Err(DecodeError::Malformed(_))), "36 bytes is not a legacy form");
        assert!(matches!(decode(&m[..42]), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode(&m[..45]), Err(DecodeError::Malformed(_))), "config cut short");
        let mut neg = m.clone();
        neg[40..44].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(decode(&neg), Err(DecodeError::Malformed(_))));
        let mut huge = m.clone();
        huge[40..44].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(decode(&huge), Err(DecodeError::Malformed(_))));
        // An unknown state still decodes; the receiver drops it.
        let n = decode(&build_msg(9, 1, 1, 1, 1, b"")).unwrap();
        assert_eq!(n.server_state(), None);
    }
}
