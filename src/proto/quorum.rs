//! `module org.apache.zookeeper.server.quorum` and `...server.persistence`.

use crate::jute_record;
use super::data::Id;

jute_record! {
    pub struct LearnerInfo { pub serverid: i64, pub protocol_version: i32, pub config_version: i64 }
}

jute_record! {
    pub struct QuorumPacket { pub r#type: i32, pub zxid: i64, pub data: Option<Vec<u8>>, pub authinfo: Vec<Id> }
}

jute_record! {
    pub struct QuorumAuthPacket { pub magic: i64, pub status: i32, pub token: Option<Vec<u8>> }
}

jute_record! {
    pub struct FileHeader { pub magic: i32, pub version: i32, pub dbid: i64 }
}
