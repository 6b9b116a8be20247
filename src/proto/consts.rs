//! Protocol constants: `ZooDefs.OpCode`, `ZooDefs.Perms`, `ZooDefs.Ids`,
//! `KeeperException.Code`, `CreateMode`, `Watcher.Event`, `AddWatchMode`, `WatcherType`.

use super::data::{Id, ACL};

/// `ZooDefs.OpCode`.
pub mod op_code {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;

    /// The short names `cons` prints as `lop` (`Request.op2String` as used by ServerCnxn).
    pub fn short_name(op: i32) -> &'static str {
        match op {
            PING => "PING",
            CREATE_SESSION => "SESS",
            MULTI => "MULT",
            MULTI_READ => "MLTR",
            CREATE | CREATE2 | CREATE_TTL | CREATE_CONTAINER => "CREA",
            DELETE | DELETE_CONTAINER => "DELE",
            SET_DATA => "SETD",
            RECONFIG => "RECO",
            SET_ACL => "SETA",
            CLOSE_SESSION => "CLOS",
            SYNC => "SYNC",
            CHECK => "CHEC",
            EXISTS => "EXIS",
            GET_DATA => "GETD",
            SET_WATCHES => "SETW",
            SET_WATCHES2 => "STW2",
            ADD_WATCH => "ADDW",
            GET_ACL => "GETA",
            GET_CHILDREN | GET_CHILDREN2 => "GETC",
            GET_ALL_CHILDREN_NUMBER => "GETACN",
            CHECK_WATCHES => "CHKW",
            REMOVE_WATCHES => "REMW",
            WHO_AM_I => "HOMI",
            GET_EPHEMERALS => "GETE",
            _ => "NA",
        }
    }

    /// `Request.op2String`: the long names used in log lines.
    pub fn name(op: i32) -> String {
        let s = match op {
            NOTIFICATION => "notification",
            CREATE => "create",
            CREATE2 => "create2",
            CREATE_TTL => "createTtl",
            CREATE_CONTAINER => "createContainer",
            SET_WATCHES => "setWatches",
            SET_WATCHES2 => "setWatches2",
            DELETE => "delete",
            DELETE_CONTAINER => "deleteContainer",
            EXISTS => "exists",
            GET_DATA => "getData",
            CHECK => "check",
            MULTI => "multi",
            MULTI_READ => "multiRead",
            SET_DATA => "setData",
            SYNC => "sync:",
            GET_ACL => "getACL",
            SET_ACL => "setACL",
            GET_CHILDREN => "getChildren",
            GET_CHILDREN2 => "getChildren2",
            GET_ALL_CHILDREN_NUMBER => "getAllChildrenNumber",
            GET_EPHEMERALS => "getEphemerals",
            PING => "ping",
            CREATE_SESSION => "createSession",
            CLOSE_SESSION => "closeSession",
            ERROR => "error",
            RECONFIG => "reconfig",
            CHECK_WATCHES => "checkWatches",
            REMOVE_WATCHES => "removeWatches",
            ADD_WATCH => "addWatch",
            WHO_AM_I => "whoAmI",
            _ => return format!("unknown {op}"),
        };
        s.to_owned()
    }

    /// The client operations that change the tree and so go through the quorum: what a
    /// learner forwards (`FollowerRequestProcessor`), what waits for a commit
    /// (`CommitProcessor.needCommit`) and what a read-only server refuses
    /// (`ReadOnlyRequestProcessor`). Sessions and sync are decided apart by each.
    pub fn is_quorum_write(op: i32) -> bool {
        matches!(
            op,
            CREATE | CREATE2 | CREATE_TTL | CREATE_CONTAINER | DELETE | DELETE_CONTAINER | SET_DATA | RECONFIG | SET_ACL | MULTI | CHECK
        )
    }
}

/// `ZooDefs.Perms`.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 1 << 1;
    pub const CREATE: i32 = 1 << 2;
    pub const DELETE: i32 = 1 << 3;
    pub const ADMIN: i32 = 1 << 4;
    pub const ALL: i32 = READ | WRITE | CREATE | DELETE | ADMIN;
}

/// `ZooDefs.Ids`.
pub mod ids {
    use super::*;
    pub fn anyone_id_unsafe() -> Id {
        Id::new("world", "anyone")
    }
    pub fn auth_ids() -> Id {
        Id::new("auth", "")
    }
    pub fn open_acl_unsafe() -> Vec<ACL> {
        vec![ACL { perms: perms::ALL, id: anyone_id_unsafe() }]
    }
    pub fn creator_all_acl() -> Vec<ACL> {
        vec![ACL { perms: perms::ALL, id: auth_ids() }]
    }
    pub fn read_acl_unsafe() -> Vec<ACL> {
        vec![ACL { perms: perms::READ, id: anyone_id_unsafe() }]
    }
}

/// `KeeperException.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    Throttled = -127,
}

impl Code {
    pub fn from_i32(v: i32) -> Option<Code> {
        use Code::*;
        Some(match v {
            0 => Ok,
            -1 => SystemError,
            -2 => RuntimeInconsistency,
            -3 => DataInconsistency,
            -4 => ConnectionLoss,
            -5 => MarshallingError,
            -6 => Unimplemented,
            -7 => OperationTimeout,
            -8 => BadArguments,
            -12 => UnknownSession,
            -13 => NewConfigNoQuorum,
            -14 => ReconfigInProgress,
            -100 => ApiError,
            -101 => NoNode,
            -102 => NoAuth,
            -103 => BadVersion,
            -108 => NoChildrenForEphemerals,
            -110 => NodeExists,
            -111 => NotEmpty,
            -112 => SessionExpired,
            -113 => InvalidCallback,
            -114 => InvalidAcl,
            -115 => AuthFailed,
            -118 => SessionMoved,
            -119 => NotReadOnly,
            -120 => EphemeralOnLocalSession,
            -121 => NoWatcher,
            -122 => RequestTimeout,
            -123 => ReconfigDisabled,
            -124 => SessionClosedRequireSaslAuth,
            -125 => QuotaExceeded,
            -127 => Throttled,
            _ => return None,
        })
    }

    pub fn int(self) -> i32 {
        self as i32
    }

    /// The text `KeeperException.getCodeMessage` gives.
    pub fn message(self) -> &'static str {
        use Code::*;
        match self {
            Ok => "ok",
            SystemError => "SystemError",
            RuntimeInconsistency => "RuntimeInconsistency",
            DataInconsistency => "DataInconsistency",
            ConnectionLoss => "ConnectionLoss",
            MarshallingError => "MarshallingError",
            Unimplemented => "Unimplemented",
            OperationTimeout => "OperationTimeout",
            BadArguments => "BadArguments",
            UnknownSession => "Unknown error UNKNOWNSESSION",
            NewConfigNoQuorum => "NewConfigNoQuorum",
            ReconfigInProgress => "ReconfigInProgress",
            ApiError => "APIError",
            NoNode => "NoNode",
            NoAuth => "NoAuth",
            BadVersion => "BadVersion",
            NoChildrenForEphemerals => "NoChildrenForEphemerals",
            NodeExists => "NodeExists",
            NotEmpty => "Directory not empty",
            SessionExpired => "Session expired",
            InvalidCallback => "Invalid callback",
            InvalidAcl => "InvalidACL",
            AuthFailed => "AuthFailed",
            SessionMoved => "Session moved",
            NotReadOnly => "Not a read-only call",
            EphemeralOnLocalSession => "Ephemeral node on local session",
            NoWatcher => "No such watcher",
            RequestTimeout => "Request timeout",
            ReconfigDisabled => "Reconfig is disabled",
            SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
            QuotaExceeded => "Quota has exceeded",
            Throttled => "Op throttled due to high load",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// `CreateMode`, by its wire flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn from_flag(flag: i32) -> Option<CreateMode> {
        use CreateMode::*;
        Some(match flag {
            0 => Persistent,
            1 => Ephemeral,
            2 => PersistentSequential,
            3 => EphemeralSequential,
            4 => Container,
            5 => PersistentWithTtl,
            6 => PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    pub fn flag(self) -> i32 {
        use CreateMode::*;
        match self {
            Persistent => 0,
            Ephemeral => 1,
            PersistentSequential => 2,
            EphemeralSequential => 3,
            Container => 4,
            PersistentWithTtl => 5,
            PersistentSequentialWithTtl => 6,
        }
    }

    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

/// `Watcher.Event.EventType`.
pub mod event_type {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// `Watcher.Event.KeeperState`.
pub mod keeper_state {
    pub const DISCONNECTED: i32 = 0;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const SASL_AUTHENTICATED: i32 = 6;
    pub const EXPIRED: i32 = -112;
    pub const CLOSED: i32 = 7;
}

/// `AddWatchMode`.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// `Watcher.WatcherType` as used by checkWatches/removeWatches.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}
