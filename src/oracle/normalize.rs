//! What the oracle compares: a request's opcode and path, and a reply reduced to the
//! part two servers with the same data must agree on.
//!
//! A reply becomes a canonical summary string; two replies agree when their summaries
//! are equal. Left out because they legitimately differ between two servers:
//! the ReplyHeader zxid, and the Stat fields czxid, mzxid, pzxid, ctime and mtime.
//! Kept: the error code, data bytes, children (as a sorted set: both servers return a
//! hash-set order), ACLs, created paths (sequential names included: equal when both
//! servers started from the same data), and the Stat fields version, cversion,
//! aversion, dataLength, numChildren and ephemeralOwner — the owner mapped through the
//! session map (this connection's session, another proxied session, a container or
//! TTL marker, none), since the two servers hand out different session ids.

use std::fmt::Write as _;

use crate::jute::{InputArchive, Record};
use crate::proto::data::{Stat, ACL};
use crate::proto::multi::{MultiOperationRecord, MultiResponse, OpResult};
use crate::proto::proto::*;
use crate::client::watched_event::{event_type_name, keeper_state_name};
use crate::proto::{op_code, Code};

/// The Stat fields that are compared (the zxid and time fields never are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    pub version: bool,
    pub cversion: bool,
    pub aversion: bool,
    pub data_length: bool,
    pub num_children: bool,
    pub ephemeral_owner: bool,
}

/// The names `--ignore-stat-fields` accepts (upstream's Stat field names).
pub const STAT_FIELD_NAMES: &[&str] = &["version", "cversion", "aversion", "dataLength", "numChildren", "ephemeralOwner"];

impl Default for StatFields {
    fn default() -> Self {
        StatFields { version: true, cversion: true, aversion: true, data_length: true, num_children: true, ephemeral_owner: true }
    }
}

impl StatFields {
    /// All comparable fields but those named in `ignore` (comma or space separated).
    pub fn ignoring(ignore: &[String]) -> Result<StatFields, String> {
        let mut f = StatFields::default();
        for name in ignore.iter().flat_map(|s| s.split([',', ' '])).filter(|s| !s.is_empty()) {
            match name {
                "version" => f.version = false,
                "cversion" => f.cversion = false,
                "aversion" => f.aversion = false,
                "dataLength" => f.data_length = false,
                "numChildren" => f.num_children = false,
                "ephemeralOwner" => f.ephemeral_owner = false,
                // czxid & co are never compared: ignoring them again is harmless.
                "czxid" | "mzxid" | "pzxid" | "ctime" | "mtime" => {}
                other => {
                    return Err(format!("unknown Stat field '{other}' (comparable: {})", STAT_FIELD_NAMES.join(", ")))
                }
            }
        }
        Ok(f)
    }
}

/// A request as far as the comparator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub xid: i32,
    pub op: i32,
    /// The path the request names ("" when it names none; a multi lists its ops' paths).
    pub path: String,
}

/// Longest path text kept per request: reports stay one readable line, and a hostile
/// client's megabyte path is not copied into the pending map.
const MAX_PATH_TEXT: usize = 512;

fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Parses a request frame's header and path; None when the frame is too short to hold a
/// RequestHeader (such a frame is garbage and the connection is closed).
pub fn parse_request(frame: &[u8]) -> Option<RequestInfo> {
    let mut inp = InputArchive::new(frame);
    let h = RequestHeader::deserialize(&mut inp).ok()?;
    let path = match h.r#type {
        op_code::MULTI | op_code::MULTI_READ => match MultiOperationRecord::deserialize(&mut inp) {
            Ok(m) => m.ops.iter().map(|o| o.path()).collect::<Vec<_>>().join(","),
            Err(_) => String::new(),
        },
        // Every other request that names a node starts its body with the path.
        op_code::CREATE
        | op_code::CREATE2
        | op_code::CREATE_TTL
        | op_code::CREATE_CONTAINER
        | op_code::DELETE
        | op_code::DELETE_CONTAINER
        | op_code::EXISTS
        | op_code::GET_DATA
        | op_code::SET_DATA
        | op_code::GET_ACL
        | op_code::SET_ACL
        | op_code::GET_CHILDREN
        | op_code::GET_CHILDREN2
        | op_code::SYNC
        | op_code::CHECK
        | op_code::CHECK_WATCHES
        | op_code::REMOVE_WATCHES
        | op_code::ADD_WATCH
        | op_code::GET_ALL_CHILDREN_NUMBER
        | op_code::GET_EPHEMERALS => inp.read_string().unwrap_or_default(),
        _ => String::new(),
    };
    Some(RequestInfo { xid: h.xid, op: h.r#type, path: clip(path, MAX_PATH_TEXT) })
}

/// An opcode's name for reports (upstream's `Request.op2String`, without sync's colon).
pub fn op_name(op: i32) -> String {
    match op {
        op_code::SYNC => "sync".to_owned(),
        op_code::AUTH => "auth".to_owned(),
        op_code::SASL => "sasl".to_owned(),
        _ => op_code::name(op),
    }
}

/// An error code's name (`Code` variant, e.g. `NoNode`), or its number when unknown.
pub fn code_name(err: i32) -> String {
    match Code::from_i32(err) {
        Some(c) => format!("{c:?}"),
        None => format!("code {err}"),
    }
}

/// A watch event's identity: events of the two servers pair when these are equal.
pub fn event_key(e: &WatcherEvent) -> String {
    // The client's names; an unknown value is shown by its number, so two different
    // unknown values still differ.
    let name = |n: &str, v: i32| if n == "Unknown" { format!("{n}({v})") } else { n.to_owned() };
    format!(
        "{} {} {}",
        name(event_type_name(e.r#type), e.r#type),
        name(keeper_state_name(e.state), e.state),
        e.path
    )
}

/// Longest data shown literally; longer data is compared by length and CRC-32.
const MAX_DATA_TEXT: usize = 64;
/// Most child names listed; more are compared by count and CRC-32 of the sorted names.
const MAX_CHILDREN_TEXT: usize = 32;

fn data_text(data: &Option<Vec<u8>>) -> String {
    match data {
        None => "data=null".into(),
        Some(d) if d.len() <= MAX_DATA_TEXT => format!("data={:?}", String::from_utf8_lossy(d)),
        Some(d) => format!("data=<{} bytes crc32 {:08x}>", d.len(), crc32fast::hash(d)),
    }
}

fn children_text(children: &[String]) -> String {
    let mut sorted: Vec<&String> = children.iter().collect();
    sorted.sort();
    if sorted.len() <= MAX_CHILDREN_TEXT {
        let names: Vec<&str> = sorted.iter().map(|s| s.as_str()).collect();
        format!("children=[{}]", names.join(","))
    } else {
        let mut h = crc32fast::Hasher::new();
        for c in &sorted {
            h.update(c.as_bytes());
            h.update(b"/");
        }
        format!("children=<{} names crc32 {:08x}>", sorted.len(), h.finalize())
    }
}

fn acl_text(acl: &[ACL]) -> String {
    let items: Vec<String> = acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect();
    format!("acl=[{}]", items.join(","))
}

/// Reduces replies to summaries. A session that owns an ephemeral node is left as a
/// marker for [`resolve_owners`]: whether two session ids correspond is decided when
/// both replies are in (the session map may learn of the owner's session meanwhile).
pub struct Normalizer {
    pub fields: StatFields,
}

/// Encloses a raw ephemeralOwner session id in a summary.
const OWNER_MARK: char = '\u{1}';

/// Replaces the owner markers of a summary by `name(session id)`.
pub fn resolve_owners(summary: &str, name: impl Fn(i64) -> String) -> String {
    let mut out = String::with_capacity(summary.len());
    let mut parts = summary.split(OWNER_MARK);
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // Markers come in pairs: odd parts are session ids.
    while let (Some(id), rest) = (parts.next(), parts.next()) {
        match id.parse::<i64>() {
            Ok(o) => out.push_str(&name(o)),
            Err(_) => out.push_str(id),
        }
        out.push_str(rest.unwrap_or_default());
    }
    out
}

/// `EphemeralType`: TTL nodes carry 0xFF in the owner's top byte, containers
/// Long.MIN_VALUE; both are the same on any server and compare literally.
fn special_owner(owner: i64) -> Option<String> {
    if owner == 0 {
        Some("none".into())
    } else if owner == i64::MIN {
        Some("container".into())
    } else if (owner as u64) >> 56 == 0xff {
        Some(format!("ttl {}", owner & 0x00ff_ffff_ffff_ffff))
    } else {
        None
    }
}

impl Normalizer {
    pub fn stat(&self, s: &Stat) -> String {
        let f = &self.fields;
        let mut out = String::from("stat{");
        if f.version {
            let _ = write!(out, "version={} ", s.version);
        }
        if f.cversion {
            let _ = write!(out, "cversion={} ", s.cversion);
        }
        if f.aversion {
            let _ = write!(out, "aversion={} ", s.aversion);
        }
        if f.data_length {
            let _ = write!(out, "dataLength={} ", s.data_length);
        }
        if f.num_children {
            let _ = write!(out, "numChildren={} ", s.num_children);
        }
        if f.ephemeral_owner {
            let owner = special_owner(s.ephemeral_owner)
                .unwrap_or_else(|| format!("{OWNER_MARK}{}{OWNER_MARK}", s.ephemeral_owner));
            let _ = write!(out, "ephemeralOwner={owner} ");
        }
        if out.ends_with(' ') {
            out.pop();
        }
        out.push('}');
        out
    }

    fn op_result(&self, r: &OpResult) -> String {
        match r {
            OpResult::Create { path } => format!("create {path}"),
            OpResult::Create2 { path, stat } => format!("create2 {path} {}", self.stat(stat)),
            OpResult::Delete => "delete".into(),
            OpResult::SetData { stat } => format!("setData {}", self.stat(stat)),
            OpResult::Check => "check".into(),
            OpResult::GetChildren { children } => format!("getChildren {}", children_text(children)),
            OpResult::GetData { data, stat } => format!("getData {} {}", data_text(data), self.stat(stat)),
            OpResult::Error { err } => format!("error {}", code_name(*err)),
        }
    }

    /// The summary of a reply body to request `op`. An error reply has no body (multi's
    /// has its per-op results); a body that does not decode is shown by its length so
    /// two equally undecodable replies still compare equal.
    pub fn reply(&self, op: i32, err: i32, body: &[u8]) -> String {
        let mut out = code_name(err);
        if body.is_empty() {
            return out;
        }
        let decoded: Result<String, crate::jute::JuteError> = (|| {
            Ok(match op {
                op_code::CREATE => CreateResponse::from_bytes(body)?.path,
                op_code::CREATE2 | op_code::CREATE_TTL | op_code::CREATE_CONTAINER => {
                    let r = Create2Response::from_bytes(body)?;
                    format!("{} {}", r.path, self.stat(&r.stat))
                }
                op_code::EXISTS => self.stat(&ExistsResponse::from_bytes(body)?.stat),
                op_code::GET_DATA => {
                    let r = GetDataResponse::from_bytes(body)?;
                    format!("{} {}", data_text(&r.data), self.stat(&r.stat))
                }
                op_code::SET_DATA => self.stat(&SetDataResponse::from_bytes(body)?.stat),
                op_code::GET_ACL => {
                    let r = GetACLResponse::from_bytes(body)?;
                    format!("{} {}", acl_text(&r.acl), self.stat(&r.stat))
                }
                op_code::SET_ACL => self.stat(&SetACLResponse::from_bytes(body)?.stat),
                op_code::GET_CHILDREN => children_text(&GetChildrenResponse::from_bytes(body)?.children),
                op_code::GET_CHILDREN2 => {
                    let r = GetChildren2Response::from_bytes(body)?;
                    format!("{} {}", children_text(&r.children), self.stat(&r.stat))
                }
                op_code::SYNC => SyncResponse::from_bytes(body)?.path,
                op_code::MULTI | op_code::MULTI_READ => {
                    let r = MultiResponse::from_bytes(body)?;
                    let parts: Vec<String> = r.results.iter().map(|x| self.op_result(x)).collect();
                    format!("[{}]", parts.join("; "))
                }
                op_code::GET_EPHEMERALS => {
                    let mut e = GetEphemeralsResponse::from_bytes(body)?.ephemerals;
                    e.sort();
                    format!("ephemerals=[{}]", e.join(","))
                }
                op_code::GET_ALL_CHILDREN_NUMBER => {
                    format!("total={}", GetAllChildrenNumberResponse::from_bytes(body)?.total_number)
                }
                op_code::WHO_AM_I => {
                    let r = WhoAmIResponse::from_bytes(body)?;
                    let ids: Vec<String> = r.client_info.iter().map(|c| format!("{}:{}", c.auth_scheme, c.user)).collect();
                    format!("clientInfo=[{}]", ids.join(","))
                }
                // The ensemble configuration (reconfig's reply) is each server's own.
                op_code::RECONFIG => "<config not compared>".into(),
                _ => format!("<{} bytes>", body.len()),
            })
        })();
        out.push(' ');
        match decoded {
            Ok(s) => out.push_str(&s),
            Err(e) => {
                let _ = write!(out, "<undecodable {} bytes: {e}>", body.len());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::OutputArchive;

    fn norm(fields: StatFields) -> Normalizer {
        Normalizer { fields }
    }

    #[test]
    fn owners_are_resolved_late() {
        let n = norm(StatFields::default());
        let s = n.stat(&Stat { ephemeral_owner: 0x42, ..Default::default() });
        assert!(resolve_owners(&s, |o| format!("session {o:#x}")).ends_with("ephemeralOwner=session 0x42}"));
        let s = n.stat(&Stat { ephemeral_owner: i64::MIN, ..Default::default() });
        assert!(resolve_owners(&s, |_| unreachable!()).ends_with("ephemeralOwner=container}"));
    }

    #[test]
    fn zxids_and_times_are_not_compared() {
        let a = Stat { czxid: 1, mzxid: 2, ctime: 3, mtime: 4, version: 5, pzxid: 9, ..Default::default() };
        let b = Stat { czxid: 10, mzxid: 20, ctime: 30, mtime: 40, version: 5, pzxid: 90, ..Default::default() };
        let n = norm(StatFields::default());
        assert_eq!(n.stat(&a), n.stat(&b));
        let c = Stat { version: 6, ..a.clone() };
        assert_ne!(n.stat(&a), n.stat(&c));
        let n2 = norm(StatFields::ignoring(&["version".into()]).unwrap());
        assert_eq!(n2.stat(&a), n2.stat(&c));
        assert!(StatFields::ignoring(&["bogus".into()]).is_err());
    }

    #[test]
    fn children_order_is_not_compared_and_errors_have_names() {
        let n = norm(StatFields::default());
        let a = GetChildrenResponse { children: vec!["b".into(), "a".into()] }.to_bytes();
        let b = GetChildrenResponse { children: vec!["a".into(), "b".into()] }.to_bytes();
        assert_eq!(n.reply(op_code::GET_CHILDREN, 0, &a), n.reply(op_code::GET_CHILDREN, 0, &b));
        assert_eq!(n.reply(op_code::GET_DATA, -101, &[]), "NoNode");
        assert!(n.reply(op_code::GET_DATA, 0, &[1, 2]).contains("undecodable"));
    }

    #[test]
    fn request_paths_are_parsed() {
        let mut out = OutputArchive::new();
        RequestHeader { xid: 7, r#type: op_code::GET_DATA }.serialize(&mut out);
        GetDataRequest { path: "/a".into(), watch: false }.serialize(&mut out);
        let r = parse_request(out.as_slice()).unwrap();
        assert_eq!((r.xid, r.op, r.path.as_str()), (7, op_code::GET_DATA, "/a"));
        assert_eq!(parse_request(&[0, 0, 0]), None);
    }
}
