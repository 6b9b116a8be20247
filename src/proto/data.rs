//! `module org.apache.zookeeper.data`.

use crate::jute_record;

jute_record! {
    /// An identity: scheme (`world`, `auth`, `digest`, `ip`, ...) and id.
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    pub struct ACL { pub perms: i32, pub id: Id }
}

jute_record! {
    /// The Stat a client sees (68 bytes on the wire).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    /// The Stat a server stores (in snapshots): no dataLength/numChildren.
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }
}

jute_record! {
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }
}

impl ACL {
    pub fn new(perms: i32, scheme: &str, id: &str) -> ACL {
        ACL { perms, id: Id::new(scheme, id) }
    }
}
