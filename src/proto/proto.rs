//! `module org.apache.zookeeper.proto`: client requests and responses.

use crate::jute_record;
use super::data::{ClientInfo, Stat, ACL};

jute_record! {
    /// The handshake request. On the wire it may be followed by a bare `readOnly` boolean
    /// that is not part of the record (see `server_cnxn`).
    pub struct ConnectRequest {
        pub protocol_version: i32,
        pub last_zxid_seen: i64,
        pub time_out: i32,
        pub session_id: i64,
        pub passwd: Option<Vec<u8>>,
    }
}

jute_record! {
    pub struct ConnectResponse {
        pub protocol_version: i32,
        pub time_out: i32,
        pub session_id: i64,
        pub passwd: Option<Vec<u8>>,
    }
}

jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! { pub struct RequestHeader { pub xid: i32, pub r#type: i32 } }
jute_record! { pub struct MultiHeader { pub r#type: i32, pub done: bool, pub err: i32 } }
jute_record! { pub struct AuthPacket { pub r#type: i32, pub scheme: String, pub auth: Option<Vec<u8>> } }
jute_record! { pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 } }
jute_record! { pub struct GetDataRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct SetDataRequest { pub path: String, pub data: Option<Vec<u8>>, pub version: i32 } }
jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: Option<String>,
        pub leaving_servers: Option<String>,
        pub new_members: Option<String>,
        pub cur_config_id: i64,
    }
}
jute_record! { pub struct SetDataResponse { pub stat: Stat } }
jute_record! { pub struct GetSASLRequest { pub token: Option<Vec<u8>> } }
jute_record! { pub struct SetSASLRequest { pub token: Option<Vec<u8>> } }
jute_record! { pub struct SetSASLResponse { pub token: Option<Vec<u8>> } }
jute_record! {
    pub struct CreateRequest { pub path: String, pub data: Option<Vec<u8>>, pub acl: Vec<ACL>, pub flags: i32 }
}
jute_record! {
    pub struct CreateTTLRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<ACL>,
        pub flags: i32,
        pub ttl: i64,
    }
}
jute_record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct GetChildrenRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct GetAllChildrenNumberRequest { pub path: String } }
jute_record! { pub struct GetChildren2Request { pub path: String, pub watch: bool } }
jute_record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct GetMaxChildrenRequest { pub path: String } }
jute_record! { pub struct GetMaxChildrenResponse { pub max: i32 } }
jute_record! { pub struct SetMaxChildrenRequest { pub path: String, pub max: i32 } }
jute_record! { pub struct SyncRequest { pub path: String } }
jute_record! { pub struct SyncResponse { pub path: String } }
jute_record! { pub struct GetACLRequest { pub path: String } }
jute_record! { pub struct SetACLRequest { pub path: String, pub acl: Vec<ACL>, pub version: i32 } }
jute_record! { pub struct SetACLResponse { pub stat: Stat } }
jute_record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
jute_record! { pub struct WatcherEvent { pub r#type: i32, pub state: i32, pub path: String } }
jute_record! { pub struct ErrorResponse { pub err: i32 } }
jute_record! { pub struct CreateResponse { pub path: String } }
jute_record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
jute_record! { pub struct ExistsRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct ExistsResponse { pub stat: Stat } }
jute_record! { pub struct GetDataResponse { pub data: Option<Vec<u8>>, pub stat: Stat } }
jute_record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
jute_record! { pub struct GetAllChildrenNumberResponse { pub total_number: i32 } }
jute_record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
jute_record! { pub struct GetACLResponse { pub acl: Vec<ACL>, pub stat: Stat } }
jute_record! { pub struct CheckWatchesRequest { pub path: String, pub r#type: i32 } }
jute_record! { pub struct RemoveWatchesRequest { pub path: String, pub r#type: i32 } }
jute_record! { pub struct GetEphemeralsRequest { pub prefix_path: String } }
jute_record! { pub struct GetEphemeralsResponse { pub ephemerals: Vec<String> } }
jute_record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }
