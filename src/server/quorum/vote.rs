//! `Vote` and `QuorumPeer.ServerState`.

use std::fmt;

/// `QuorumPeer.ServerState`; the ordinal is what notifications carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerState {
    Looking,
    Following,
    Leading,
    Observing,
}

impl ServerState {
    pub fn ordinal(self) -> i32 {
        match self {
            ServerState::Looking => 0,
            ServerState::Following => 1,
            ServerState::Leading => 2,
            ServerState::Observing => 3,
        }
    }

    pub fn from_ordinal(v: i32) -> Option<ServerState> {
        match v {
            0 => Some(ServerState::Looking),
            1 => Some(ServerState::Following),
            2 => Some(ServerState::Leading),
            3 => Some(ServerState::Observing),
            _ => None,
        }
    }

    /// The enum constant's name, as upstream's logs print it.
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `Vote`: a proposed leader with its last zxid and epoch, the round (election epoch) it
/// was cast in, and the state of the voter.
#[derive(Debug, Clone, Copy)]
pub struct Vote {
    /// Notification format version (0 for legacy peers).
    pub version: i32,
    pub id: i64,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub state: ServerState,
}

impl Vote {
    /// `new Vote(id, zxid, peerEpoch)`: a proposal outside any round.
    pub fn new(id: i64, zxid: i64, peer_epoch: i64) -> Vote {
        Vote { version: 0, id, zxid, election_epoch: -1, peer_epoch, state: ServerState::Looking }
    }

    pub fn with_round(id: i64, zxid: i64, election_epoch: i64, peer_epoch: i64) -> Vote {
        Vote { version: 0, id, zxid, election_epoch, peer_epoch, state: ServerState::Looking }
    }

    pub fn with_state(id: i64, zxid: i64, election_epoch: i64, peer_epoch: i64, state: ServerState) -> Vote {
        Vote { version: 0, id, zxid, election_epoch, peer_epoch, state }
    }

    /// `Vote.equals`: while either side is looking every field of the proposal counts;
    /// between settled peers only the leader and its epoch do — and only the leader when
    /// exactly one side is a legacy (version 0) vote, which carries no reliable epoch.
    pub fn same_as(&self, o: &Vote) -> bool {
        if self.state == ServerState::Looking || o.state == ServerState::Looking {
            self.id == o.id && self.zxid == o.zxid && self.election_epoch == o.election_epoch && self.peer_epoch == o.peer_epoch
        } else if (self.version > 0) ^ (o.version > 0) {
            self.id == o.id
        } else {
            self.id == o.id && self.peer_epoch == o.peer_epoch
        }
    }
}

impl fmt::Display for Vote {
    /// `Vote.toString()`: `(id, zxid hex, peerEpoch hex)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {:x}, {:x})", self.id, self.zxid, self.peer_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_rules() {
        let a = Vote::with_round(3, 0x100, 2, 1);
        assert!(a.same_as(&Vote::with_round(3, 0x100, 2, 1)));
        assert!(!a.same_as(&Vote::with_round(3, 0x100, 3, 1)), "a looking vote compares the round");
        let f1 = Vote::with_state(3, 0x100, 2, 1, ServerState::Following);
        let f2 = Vote::with_state(3, 0x200, 9, 1, ServerState::Leading);
        assert!(f1.same_as(&f2), "settled votes compare leader and epoch only");
        let f3 = Vote::with_state(3, 0x200, 9, 2, ServerState::Leading);
        assert!(!f1.same_as(&f3));
        let mut v2 = f3;
        v2.version = 2;
        assert!(f1.same_as(&v2), "legacy vs versioned: leader only");
        assert_eq!(Vote::new(3, 0x1f, 2).to_string(), "(3, 1f, 2)");
        assert_eq!(ServerState::from_ordinal(4), None);
        for s in [ServerState::Looking, ServerState::Following, ServerState::Leading, ServerState::Observing] {
            assert_eq!(ServerState::from_ordinal(s.ordinal()), Some(s));
        }
    }
}
