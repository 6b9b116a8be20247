//! `EphemeralType`: what a node's stored ephemeralOwner encodes.

use crate::system_properties;

/// Long.MIN_VALUE marks a container node.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
/// The top byte 0xFF marks a TTL node; the low 40 bits hold the TTL in ms.
pub const TTL_MASK: i64 = 0xFF00_0000_0000_0000u64 as i64;
pub const MAX_TTL: i64 = 0x00FF_FFFF_FFFF;
/// With extended types on, server ids above this would collide with TTL owners.
pub const MAX_EXTENDED_SERVER_ID: i64 = 0xfe;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralType {
    Void,
    Normal,
    Container,
    Ttl,
}

/// `EphemeralType.extendedEphemeralTypesEnabled()`: the `zookeeper.extendedTypesEnabled`
/// property (zoo.cfg `extendedTypesEnabled=true`).
pub fn extended_types_enabled() -> bool {
    // Read once, like upstream's static field: it is consulted on every Stat copy.
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| system_properties::get_bool("zookeeper.extendedTypesEnabled"))
}

pub fn get(ephemeral_owner: i64) -> EphemeralType {
    if ephemeral_owner == CONTAINER_EPHEMERAL_OWNER {
        return EphemeralType::Container;
    }
    if extended_types_enabled() && (ephemeral_owner & TTL_MASK) == TTL_MASK {
        return EphemeralType::Ttl;
    }
    if ephemeral_owner != 0 {
        EphemeralType::Normal
    } else {
        EphemeralType::Void
    }
}

pub fn ttl_to_ephemeral_owner(ttl: i64) -> Option<i64> {
    if ttl > MAX_TTL || ttl <= 0 {
        return None;
    }
    Some(TTL_MASK | ttl)
}

pub fn ttl_of(ephemeral_owner: i64) -> i64 {
    ephemeral_owner & MAX_TTL
}

/// What `DataNode.copyStat` reports as ephemeralOwner: only real sessions show.
pub fn client_visible_owner(ephemeral_owner: i64) -> i64 {
    match get(ephemeral_owner) {
        EphemeralType::Container | EphemeralType::Ttl => 0,
        _ => ephemeral_owner,
    }
}
