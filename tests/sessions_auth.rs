//! Sessions and authentication, side by side with Apache 3.8: session reattach with
//! id + password, refused reconnects, timeout negotiation, SetWatches / SetWatches2
//! on a reconnected session, the super digest, unknown auth schemes, ip ACLs and
//! skipACL. Each scenario runs against both servers; the normalised transcripts must
//! be equal AND equal to what upstream's source says (so two equally broken servers
//! cannot pass).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::time::{Duration, Instant};

use common::{line_diff, ApacheServer, OurServer};
use raw_client::{Handshake, RawClient};
use zookeeper::jute::Record;
use zookeeper::proto::data::{Id, ACL};
use zookeeper::proto::proto::*;
use zookeeper::proto::{event_type, ids, op_code, perms};

const SUPER: &str = "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

fn compare(what: &str, apache: &[String], ours: &[String], expected: &[&str]) {
    let a = apache.join("\n");
    let o = ours.join("\n");
    let e = expected.join("\n");
    assert_eq!(a, e, "{what}: Apache does not behave as the test expects:\n{}", line_diff("expected", &e, "apache", &a));
    assert_eq!(o, a, "{what}: ours differs from Apache:\n{}", line_diff("apache", &a, "ours", &o));
}

fn create(c: &mut RawClient, path: &str, flags: i32, acl: Vec<ACL>) -> (i32, i64) {
    let (h, _) = c
        .call_rec(op_code::CREATE, &CreateRequest { path: path.into(), data: Some(b"x".to_vec()), acl, flags })
        .expect("create");
    (h.err, h.zxid)
}

fn open_create(c: &mut RawClient, path: &str, flags: i32) -> i32 {
    create(c, path, flags, ids::open_acl_unsafe()).0
}

fn exists(c: &mut RawClient, path: &str, watch: bool) -> i32 {
    c.call_rec(op_code::EXISTS, &ExistsRequest { path: path.into(), watch }).expect("exists").0.err
}

fn get_data(c: &mut RawClient, path: &str) -> i32 {
    c.call_rec(op_code::GET_DATA, &GetDataRequest { path: path.into(), watch: false }).expect("getData").0.err
}

fn set_data(c: &mut RawClient, path: &str) -> i32 {
    c.call_rec(op_code::SET_DATA, &SetDataRequest { path: path.into(), data: Some(b"y".to_vec()), version: -1 })
        .expect("setData")
        .0
        .err
}

fn delete(c: &mut RawClient, path: &str) -> i32 {
    c.call_rec(op_code::DELETE, &DeleteRequest { path: path.into(), version: -1 }).expect("delete").0.err
}

fn ev_name(t: i32) -> &'static str {
    match t {
        event_type::NODE_CREATED => "NodeCreated",
        event_type::NODE_DELETED => "NodeDeleted",
        event_type::NODE_DATA_CHANGED => "NodeDataChanged",
        event_type::NODE_CHILDREN_CHANGED => "NodeChildrenChanged",
        _ => "Other",
    }
}

fn events(evs: &[WatcherEvent]) -> String {
    let v: Vec<String> = evs.iter().map(|e| format!("{}({}) {}", ev_name(e.r#type), e.state, e.path)).collect();
    format!("[{}]", v.join(", "))
}

/// The handshake outcome, normalised: session ids and passwords as relations.
fn describe(hs: &Handshake, sid: i64, pw: &[u8]) -> String {
    match hs {
        Handshake::Response(r, raw) => {
            if r.time_out <= 0 {
                let zero = raw.iter().all(|b| *b == 0);
                format!(
                    "refused: timeOut={} sessionId={} passwd={:?} body_len={} all_zero={zero}",
                    r.time_out,
                    r.session_id,
                    r.passwd.as_deref().map(|p| p.len()),
                    raw.len()
                )
            } else {
                format!(
                    "accepted: timeOut={} same_session={} same_passwd={}",
                    r.time_out,
                    r.session_id == sid,
                    r.passwd.as_deref() == Some(pw)
                )
            }
        }
        Handshake::Closed => "closed without response".into(),
        Handshake::Timeout => "no response (timeout)".into(),
    }
}

// ------------------------------------------------------------ 1a reconnect --

/// tickTime 500 → min 1000, max 10000 ms.
const FAST_TICK: &str = "tickTime=500";

fn reconnect_scenario(addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut c1 = RawClient::connect_with(addr, 4000, Duration::from_secs(10)).expect("connect");
    let (sid, pw) = (c1.session_id, c1.passwd.clone());
    out.push(format!("c1 create ephemeral /e: {}", open_create(&mut c1, "/e", 1)));

    // Reattach on a new connection: same session, negotiated timeout of the new request.
    let (mut c2, hs) = RawClient::reconnect(addr, sid, &pw, 4000).expect("reconnect");
    out.push(format!("c2 reconnect: {}", describe(&hs, sid, &pw)));
    out.push(format!("c1 closed by server: {}", c1.wait_closed(Duration::from_secs(5))));
    out.push(format!("c2 exists /e: {}", exists(&mut c2, "/e", false)));
    let (mut c3, hs) = RawClient::reconnect(addr, sid, &pw, 6000).expect("reconnect");
    out.push(format!("c3 reconnect asking 6000: {}", describe(&hs, sid, &pw)));
    out.push(format!("c2 closed by server: {}", c2.wait_closed(Duration::from_secs(5))));

    // Wrong password: zero response, then close. (Upstream closes the session's other
    // connections before it checks the password.)
    let mut bad = pw.clone();
    bad[0] ^= 0xff;
    let (mut w, hs) = RawClient::reconnect(addr, sid, &bad, 4000).expect("reconnect");
    out.push(format!("wrong password: {}", describe(&hs, sid, &pw)));
    out.push(format!("wrong password connection closed: {}", w.wait_closed(Duration::from_secs(5))));
    out.push(format!("c3 closed by server: {}", c3.wait_closed(Duration::from_secs(5))));

    // The session survived the bad attempt.
    let (mut c4, hs) = RawClient::reconnect(addr, sid, &pw, 4000).expect("reconnect");
    out.push(format!("c4 reconnect: {}", describe(&hs, sid, &pw)));
    out.push(format!("c4 exists /e: {}", exists(&mut c4, "/e", false)));

    // lastZxidSeen ahead of the server: closed without any response.
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x7fff_0000_0000,
        time_out: 4000,
        session_id: 0,
        passwd: Some(vec![0; 16]),
    };
    let (_z, hs) = RawClient::handshake(addr, &req, Duration::from_secs(10)).expect("handshake");
    out.push(format!("lastZxidSeen ahead: {}", describe(&hs, 0, &[])));

    // Let the session expire (drop c4 without closeSession), then try to reattach.
    drop(c4);
    let mut watcher = RawClient::connect(addr).expect("connect");
    let end = Instant::now() + Duration::from_secs(20);
    let mut gone = false;
    while Instant::now() < end && !gone {
        gone = exists(&mut watcher, "/e", false) == -101;
        std::thread::sleep(Duration::from_millis(100));
    }
    out.push(format!("/e gone after expiry: {gone}"));
    let (mut x, hs) = RawClient::reconnect(addr, sid, &pw, 4000).expect("reconnect");
    out.push(format!("reconnect after expiry: {}", describe(&hs, sid, &pw)));
    out.push(format!("expired connection closed: {}", x.wait_closed(Duration::from_secs(5))));
    out
}

#[test]
fn reconnect_parity() {
    let apache = ApacheServer::start_standalone(FAST_TICK);
    let ours = OurServer::start_standalone(FAST_TICK, &[]);
    let a = reconnect_scenario(&apache.connect_string());
    let o = reconnect_scenario(&ours.connect_string());
    // Body of a refused ConnectResponse: protocolVersion, timeOut, sessionId, 16-byte
    // password (length + bytes), readOnly — 37 bytes, all zero except the length 16.
    let refused = "refused: timeOut=0 sessionId=0 passwd=Some(16) body_len=37 all_zero=false";
    compare(
        "reconnect",
        &a,
        &o,
        &[
            "c1 create ephemeral /e: 0",
            "c2 reconnect: accepted: timeOut=4000 same_session=true same_passwd=true",
            "c1 closed by server: true",
            "c2 exists /e: 0",
            "c3 reconnect asking 6000: accepted: timeOut=6000 same_session=true same_passwd=true",
            "c2 closed by server: true",
            &format!("wrong password: {refused}"),
            "wrong password connection closed: true",
            "c3 closed by server: true",
            "c4 reconnect: accepted: timeOut=4000 same_session=true same_passwd=true",
            "c4 exists /e: 0",
            "lastZxidSeen ahead: closed without response",
            "/e gone after expiry: true",
            &format!("reconnect after expiry: {refused}"),
            "expired connection closed: true",
        ],
    );
}

/// The exact bytes of a refused ConnectResponse.
#[test]
fn refused_connect_response_bytes() {
    fn raw(addr: &str) -> Vec<u8> {
        let (_c, hs) = RawClient::reconnect(addr, 0x1234_5678, &[7u8; 16], 4000).expect("reconnect");
        match hs {
            Handshake::Response(_, raw) => raw,
            other => panic!("expected a response, got {other:?}"),
        }
    }
    let apache = ApacheServer::start_standalone("");
    let ours = OurServer::start_standalone("", &[]);
    let a = raw(&apache.connect_string());
    let o = raw(&ours.connect_string());
    let mut expected = vec![0u8; 4 + 4 + 8];
    expected.extend_from_slice(&16i32.to_be_bytes());
    expected.extend_from_slice(&[0u8; 16]);
    expected.push(0); // readOnly
    assert_eq!(a, expected, "Apache's refused ConnectResponse");
    assert_eq!(o, a, "ours vs Apache");
}

// ------------------------------------------------- 1b timeout negotiation --

fn negotiate(addr: &str, asks: &[i32]) -> Vec<String> {
    asks.iter()
        .map(|&t| {
            let req = ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: t, session_id: 0, passwd: Some(vec![0; 16]) };
            let (mut c, hs) = RawClient::handshake(addr, &req, Duration::from_secs(10)).expect("handshake");
            let r = match hs {
                Handshake::Response(r, _) => format!("asked {t} -> {}", r.time_out),
                other => format!("asked {t} -> {other:?}"),
            };
            let _ = c.close_session();
            r
        })
        .collect()
}

#[test]
fn timeout_negotiation_defaults() {
    // tickTime 2000 → min 4000, max 40000.
    let asks = [1, 3999, 4000, 15000, 40001, 36_000_000];
    let apache = ApacheServer::start_standalone("");
    let ours = OurServer::start_standalone("", &[]);
    let a = negotiate(&apache.connect_string(), &asks);
    let o = negotiate(&ours.connect_string(), &asks);
    compare(
        "default negotiation",
        &a,
        &o,
        &[
            "asked 1 -> 4000",
            "asked 3999 -> 4000",
            "asked 4000 -> 4000",
            "asked 15000 -> 15000",
            "asked 40001 -> 40000",
            "asked 36000000 -> 40000",
        ],
    );
}

#[test]
fn timeout_negotiation_explicit() {
    let cfg = "minSessionTimeout=3000\nmaxSessionTimeout=7000";
    let asks = [1, 2999, 5000, 7001, 36_000_000];
    let apache = ApacheServer::start_standalone(cfg);
    let ours = OurServer::start_standalone(cfg, &[]);
    let a = negotiate(&apache.connect_string(), &asks);
    let o = negotiate(&ours.connect_string(), &asks);
    compare(
        "explicit negotiation",
        &a,
        &o,
        &["asked 1 -> 3000", "asked 2999 -> 3000", "asked 5000 -> 5000", "asked 7001 -> 7000", "asked 36000000 -> 7000"],
    );
}

// ---------------------------------------------------------- 1c SetWatches --

fn set_watches_scenario(addr: &str, v2: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut a = RawClient::connect(addr).expect("connect");
    for p in ["/d", "/del", "/u", "/p", "/q", "/gone", "/rr"] {
        open_create(&mut a, p, 0);
    }
    open_create(&mut a, "/p/c1", 0);
    let (_, rel) = create(&mut a, "/q/c1", 0, ids::open_acl_unsafe());

    // Changes after relativeZxid.
    out.push(format!("setData /d: {}", set_data(&mut a, "/d")));
    out.push(format!("delete /del: {}", delete(&mut a, "/del")));
    out.push(format!("delete /gone: {}", delete(&mut a, "/gone")));
    out.push(format!("create /ex: {}", open_create(&mut a, "/ex", 0)));
    out.push(format!("create /p/c2: {}", open_create(&mut a, "/p/c2", 0)));
    out.push(format!("setData /q: {}", set_data(&mut a, "/q"))); // mzxid, not pzxid

    // A session, reattached on a new connection, re-registers its watches.
    let b0 = RawClient::connect(addr).expect("connect");
    let (mut b, hs) = RawClient::reconnect(addr, b0.session_id, &b0.passwd.clone(), 30000).expect("reconnect");
    out.push(format!("b reconnect: {}", describe(&hs, b0.session_id, &b0.passwd)));
    let data = vec!["/d".to_string(), "/del".into(), "/u".into(), "/q".into()];
    let exist = vec!["/ex".to_string(), "/nx".into(), "/p".into()];
    let child = vec!["/p".to_string(), "/q".into(), "/gone".into()];
    let (op, body) = if v2 {
        let r = SetWatches2 {
            relative_zxid: rel,
            data_watches: data,
            exist_watches: exist,
            child_watches: child,
            persistent_watches: vec!["/pp".into()],
            persistent_recursive_watches: vec!["/rr".into()],
        };
        (op_code::SET_WATCHES2, r.to_bytes())
    } else {
        let r = SetWatches { relative_zxid: rel, data_watches: data, exist_watches: exist, child_watches: child };
        (op_code::SET_WATCHES, r.to_bytes())
    };
    let (h, rest) = b.call_xid(-8, op, &body).expect("setWatches");
    out.push(format!("setWatches reply: xid={} err={} body_len={}", h.xid, h.err, rest.len()));
    out.push(format!("events before the reply: {}", events(&b.take_events())));
    out.push(format!("events after the reply: {}", events(&b.drain_events(Duration::from_millis(300)))));

    // Re-armed watches fire on the next change; the fired ones are gone.
    set_data(&mut a, "/u");
    set_data(&mut a, "/d");
    open_create(&mut a, "/nx", 0);
    open_create(&mut a, "/q/c2", 0);
    set_data(&mut a, "/q");
    open_create(&mut a, "/p/c3", 0);
    if v2 {
        open_create(&mut a, "/pp", 0);
        set_data(&mut a, "/pp");
        set_data(&mut a, "/pp");
        open_create(&mut a, "/rr/x", 0);
        open_create(&mut a, "/rr/x/y", 0);
        set_data(&mut a, "/rr/x/y");
        delete(&mut a, "/rr/x/y");
    }
    let _ = b.ping();
    out.push(format!("events after changes: {}", events(&b.drain_events(Duration::from_millis(500)))));
    out
}

fn set_watches_expected(v2: bool) -> Vec<String> {
    let mut v: Vec<String> = [
        "setData /d: 0",
        "delete /del: 0",
        "delete /gone: 0",
        "create /ex: 0",
        "create /p/c2: 0",
        "setData /q: 0",
        "b reconnect: accepted: timeOut=30000 same_session=true same_passwd=true",
        "setWatches reply: xid=-8 err=0 body_len=0",
        "events before the reply: [NodeDataChanged(3) /d, NodeDeleted(3) /del, NodeDataChanged(3) /q, \
         NodeCreated(3) /ex, NodeCreated(3) /p, NodeChildrenChanged(3) /p, NodeDeleted(3) /gone]",
        "events after the reply: []",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tail = if v2 {
        "events after changes: [NodeDataChanged(3) /u, NodeCreated(3) /nx, NodeChildrenChanged(3) /q, \
         NodeCreated(3) /pp, NodeDataChanged(3) /pp, NodeDataChanged(3) /pp, NodeCreated(3) /rr/x, \
         NodeCreated(3) /rr/x/y, NodeDataChanged(3) /rr/x/y, NodeDeleted(3) /rr/x/y]"
    } else {
        "events after changes: [NodeDataChanged(3) /u, NodeCreated(3) /nx, NodeChildrenChanged(3) /q]"
    };
    v.push(tail.to_string());
    v
}

fn set_watches_parity(v2: bool) {
    let apache = ApacheServer::start_standalone("");
    let ours = OurServer::start_standalone("", &[]);
    let a = set_watches_scenario(&apache.connect_string(), v2);
    let o = set_watches_scenario(&ours.connect_string(), v2);
    let e = set_watches_expected(v2);
    let e: Vec<&str> = e.iter().map(|s| s.as_str()).collect();
    compare(if v2 { "SetWatches2" } else { "SetWatches" }, &a, &o, &e);
}

#[test]
fn set_watches_v1_parity() {
    set_watches_parity(false);
}

#[test]
fn set_watches_v2_parity() {
    set_watches_parity(true);
}

// ------------------------------------------------------------------ 1d auth --

fn digest(id_pw: &str) -> String {
    zookeeper::server::auth::digest_authentication_provider::generate_digest(id_pw)
}

fn acl(scheme: &str, id: &str) -> Vec<ACL> {
    vec![ACL { perms: perms::ALL, id: Id { scheme: scheme.into(), id: id.into() } }]
}

fn who_am_i(c: &mut RawClient) -> String {
    let (h, body) = c.call(op_code::WHO_AM_I, &[]).expect("whoAmI");
    if h.err != 0 {
        return format!("err {}", h.err);
    }
    let r = WhoAmIResponse::from_bytes(&body).expect("WhoAmIResponse");
    let v: Vec<String> = r.client_info.iter().map(|i| format!("{}:{}", i.auth_scheme, i.user)).collect();
    v.join(" ")
}

fn auth_scenario(addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut alice = RawClient::connect(addr).expect("connect");
    out.push(format!("alice addauth: {}", alice.add_auth("digest", b"alice:secret").expect("auth")));
    out.push(format!("alice whoAmI: {}", who_am_i(&mut alice)));
    let alice_acl = acl("digest", &digest("alice:secret"));
    out.push(format!("create /sec: {}", create(&mut alice, "/sec", 0, alice_acl.clone()).0));
    out.push(format!("create /sec2: {}", create(&mut alice, "/sec2", 0, alice_acl).0));

    let mut anon = RawClient::connect(addr).expect("connect");
    out.push(format!("anon getData /sec: {}", get_data(&mut anon, "/sec")));
    out.push(format!("anon setData /sec: {}", set_data(&mut anon, "/sec")));
    out.push(format!("anon whoAmI: {}", who_am_i(&mut anon)));

    let mut sup = RawClient::connect(addr).expect("connect");
    out.push(format!("super addauth: {}", sup.add_auth("digest", b"super:test").expect("auth")));
    out.push(format!("super whoAmI: {}", who_am_i(&mut sup)));
    out.push(format!("super getData /sec: {}", get_data(&mut sup, "/sec")));
    out.push(format!("super setData /sec: {}", set_data(&mut sup, "/sec")));
    out.push(format!("super create /sec/kid: {}", open_create(&mut sup, "/sec/kid", 0)));
    let (h, _) = sup.call_rec(op_code::GET_ACL, &GetACLRequest { path: "/sec".into() }).expect("getACL");
    out.push(format!("super getACL /sec: {}", h.err));
    out.push(format!("super delete /sec/kid: {}", delete(&mut sup, "/sec/kid")));
    out.push(format!("super delete /sec: {}", delete(&mut sup, "/sec")));
    // A wrong super password is just another digest identity.
    let mut fake = RawClient::connect(addr).expect("connect");
    out.push(format!("fake super addauth: {}", fake.add_auth("digest", b"super:wrong").expect("auth")));
    out.push(format!("fake super whoAmI: {}", who_am_i(&mut fake)));
    out.push(format!("fake super getData /sec2: {}", get_data(&mut fake, "/sec2")));

    // Unknown scheme: AuthFailed, then the server closes the connection.
    let mut x = RawClient::connect(addr).expect("connect");
    out.push(format!("addauth foo: {}", x.add_auth("foo", b"bar").expect("auth")));
    out.push(format!("foo connection closed: {}", x.wait_closed(Duration::from_secs(5))));

    // ip ACLs: the client is 127.0.0.1.
    out.push(format!("create /ipok: {}", create(&mut anon, "/ipok", 0, acl("ip", "127.0.0.1")).0));
    out.push(format!("create /ipnet: {}", create(&mut anon, "/ipnet", 0, acl("ip", "127.0.0.0/8")).0));
    out.push(format!("create /ipno: {}", create(&mut anon, "/ipno", 0, acl("ip", "10.0.0.0/8")).0));
    out.push(format!("anon getData /ipok: {}", get_data(&mut anon, "/ipok")));
    out.push(format!("anon setData /ipnet: {}", set_data(&mut anon, "/ipnet")));
    out.push(format!("anon getData /ipno: {}", get_data(&mut anon, "/ipno")));
    out.push(format!("anon setData /ipno: {}", set_data(&mut anon, "/ipno")));
    out.push(format!("super getData /ipno: {}", get_data(&mut sup, "/ipno")));
    out
}

#[test]
fn auth_parity() {
    let apache = ApacheServer::start_standalone_with_jvm_args("", &[SUPER]);
    let ours = OurServer::start_standalone("", &[SUPER]);
    let a = auth_scenario(&apache.connect_string());
    let o = auth_scenario(&ours.connect_string());
    compare(
        "auth",
        &a,
        &o,
        &[
            "alice addauth: 0",
            // Upstream keeps authInfo in a ConcurrentHashMap-backed set: whoAmI lists
            // the ids in hash-bucket order, not in the order they were added.
            "alice whoAmI: digest:alice ip:127.0.0.1",
            "create /sec: 0",
            "create /sec2: 0",
            "anon getData /sec: -102",
            "anon setData /sec: -102",
            "anon whoAmI: ip:127.0.0.1",
            "super addauth: 0",
            "super whoAmI: super: ip:127.0.0.1 digest:super",
            "super getData /sec: 0",
            "super setData /sec: 0",
            "super create /sec/kid: 0",
            "super getACL /sec: 0",
            "super delete /sec/kid: 0",
            "super delete /sec: 0",
            "fake super addauth: 0",
            "fake super whoAmI: ip:127.0.0.1 digest:super",
            "fake super getData /sec2: -102",
            "addauth foo: -115",
            "foo connection closed: true",
            "create /ipok: 0",
            "create /ipnet: 0",
            "create /ipno: 0",
            "anon getData /ipok: 0",
            "anon setData /ipnet: 0",
            "anon getData /ipno: -102",
            "anon setData /ipno: -102",
            "super getData /ipno: 0",
        ],
    );
}

fn skip_acl_scenario(addr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut alice = RawClient::connect(addr).expect("connect");
    alice.add_auth("digest", b"alice:secret").expect("auth");
    out.push(format!("create /sec: {}", create(&mut alice, "/sec", 0, acl("digest", &digest("alice:secret"))).0));
    out.push(format!("create /ro: {}", create(&mut alice, "/ro", 0, ids::read_acl_unsafe()).0));
    let mut anon = RawClient::connect(addr).expect("connect");
    out.push(format!("anon getData /sec: {}", get_data(&mut anon, "/sec")));
    out.push(format!("anon setData /sec: {}", set_data(&mut anon, "/sec")));
    out.push(format!("anon create /sec/kid: {}", open_create(&mut anon, "/sec/kid", 0)));
    out.push(format!("anon setData /ro: {}", set_data(&mut anon, "/ro")));
    out.push(format!("anon delete /sec/kid: {}", delete(&mut anon, "/sec/kid")));
    out.push(format!("anon delete /sec: {}", delete(&mut anon, "/sec")));
    out
}

#[test]
fn skip_acl_parity() {
    let apache = ApacheServer::start_standalone("skipACL=yes");
    let ours = OurServer::start_standalone("skipACL=yes", &[]);
    let a = skip_acl_scenario(&apache.connect_string());
    let o = skip_acl_scenario(&ours.connect_string());
    compare(
        "skipACL",
        &a,
        &o,
        &[
            "create /sec: 0",
            "create /ro: 0",
            "anon getData /sec: 0",
            "anon setData /sec: 0",
            "anon create /sec/kid: 0",
            "anon setData /ro: 0",
            "anon delete /sec/kid: 0",
            "anon delete /sec: 0",
        ],
    );
}
