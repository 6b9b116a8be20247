//! `module org.apache.zookeeper.txn`: what the log, snapshots and Zab proposals carry.

use crate::jute_record;
use super::data::ACL;

jute_record! {
    pub struct TxnDigest { pub version: i32, pub tree_digest: i64 }
}

jute_record! {
    pub struct TxnHeader { pub client_id: i64, pub cxid: i32, pub zxid: i64, pub time: i64, pub r#type: i32 }
}

jute_record! {
    pub struct CreateTxnV0 { pub path: String, pub data: Option<Vec<u8>>, pub acl: Vec<ACL>, pub ephemeral: bool }
}

jute_record! {
    pub struct CreateTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<ACL>,
        pub ephemeral: bool,
        pub parent_c_version: i32,
    }
}

jute_record! {
    pub struct CreateTTLTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<ACL>,
        pub parent_c_version: i32,
        pub ttl: i64,
    }
}

jute_record! {
    pub struct CreateContainerTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<ACL>,
        pub parent_c_version: i32,
    }
}

jute_record! {
    pub struct DeleteTxn { pub path: String }
}

jute_record! {
    pub struct SetDataTxn { pub path: String, pub data: Option<Vec<u8>>, pub version: i32 }
}

jute_record! {
    pub struct CheckVersionTxn { pub path: String, pub version: i32 }
}

jute_record! {
    pub struct SetACLTxn { pub path: String, pub acl: Vec<ACL>, pub version: i32 }
}

jute_record! {
    pub struct SetMaxChildrenTxn { pub path: String, pub max: i32 }
}

jute_record! {
    pub struct CreateSessionTxn { pub time_out: i32 }
}

jute_record! {
    pub struct CloseSessionTxn { pub paths2_delete: Vec<String> }
}

jute_record! {
    pub struct ErrorTxn { pub err: i32 }
}

jute_record! {
    pub struct Txn { pub r#type: i32, pub data: Option<Vec<u8>> }
}

jute_record! {
    pub struct MultiTxn { pub txns: Vec<Txn> }
}
