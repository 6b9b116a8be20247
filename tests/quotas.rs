//! Quotas side by side with Apache 3.8: the `/zookeeper/quota` nodes zkCli's setquota
//! writes, the stats the server keeps in `zookeeper_stats`, and (with
//! `zookeeper.enforceQuota=true`) hard limits answered with QuotaExceeded (-125).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use common::{ApacheServer, OurServer};
use raw_client::RawClient;
use zookeeper::jute::Record;
use zookeeper::proto::proto::*;
use zookeeper::proto::{ids, op_code};

fn create(c: &mut RawClient, path: &str, data: &[u8]) -> i32 {
    let req = CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: ids::open_acl_unsafe(), flags: 0 };
    c.call_rec(op_code::CREATE, &req).expect("create").0.err
}

fn get(c: &mut RawClient, path: &str) -> String {
    let (h, body) = c.call_rec(op_code::GET_DATA, &GetDataRequest { path: path.into(), watch: false }).expect("get");
    if h.err != 0 {
        return format!("err {}", h.err);
    }
    let r = GetDataResponse::from_bytes(&body).expect("decode");
    String::from_utf8_lossy(&r.data.unwrap_or_default()).into_owned()
}

fn set(c: &mut RawClient, path: &str, data: &[u8]) -> i32 {
    let req = SetDataRequest { path: path.into(), data: Some(data.to_vec()), version: -1 };
    c.call_rec(op_code::SET_DATA, &req).expect("set").0.err
}

fn delete(c: &mut RawClient, path: &str) -> i32 {
    c.call_rec(op_code::DELETE, &DeleteRequest { path: path.into(), version: -1 }).expect("delete").0.err
}

fn scenario(addr: &str) -> Vec<String> {
    let mut c = RawClient::connect(addr).expect("connect");
    let mut out = Vec::new();
    out.push(format!("create /a {}", create(&mut c, "/a", b"12345")));
    out.push(format!("create /a/x {}", create(&mut c, "/a/x", b"123")));
    out.push(format!("create /b {}", create(&mut c, "/b", b"")));
    // What zkCli's `setquota -N 4 /a` and `setquota -b 10 /b` write.
    out.push(format!("create quota /a {}", create(&mut c, "/zookeeper/quota/a", b"")));
    out.push(format!(
        "limits /a {}",
        create(&mut c, "/zookeeper/quota/a/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4")
    ));
    out.push(format!("stats /a {}", create(&mut c, "/zookeeper/quota/a/zookeeper_stats", b"count=0,bytes=0")));
    out.push(format!("create quota /b {}", create(&mut c, "/zookeeper/quota/b", b"")));
    out.push(format!("limits /b {}", create(&mut c, "/zookeeper/quota/b/zookeeper_limits", b"count=-1,bytes=10")));
    out.push(format!("stats /b {}", create(&mut c, "/zookeeper/quota/b/zookeeper_stats", b"count=0,bytes=0")));
    out.push(format!("stats of /a: {}", get(&mut c, "/zookeeper/quota/a/zookeeper_stats")));
    for i in 0..4 {
        out.push(format!("create /a/n{i} {}", create(&mut c, &format!("/a/n{i}"), b"ab")));
    }
    out.push(format!("stats of /a: {}", get(&mut c, "/zookeeper/quota/a/zookeeper_stats")));
    out.push(format!("set /a/x {}", set(&mut c, "/a/x", b"1234567890")));
    out.push(format!("delete /a/n0 {}", delete(&mut c, "/a/n0")));
    out.push(format!("stats of /a: {}", get(&mut c, "/zookeeper/quota/a/zookeeper_stats")));
    // /b has only a soft byte limit: writes past it succeed (and are logged).
    out.push(format!("set /b {}", set(&mut c, "/b", b"0123456789abcdef")));
    out.push(format!("create /b/c {}", create(&mut c, "/b/c", b"xyz")));
    out.push(format!("stats of /b: {}", get(&mut c, "/zookeeper/quota/b/zookeeper_stats")));
    // Removing the limits node forgets the quota.
    out.push(format!("delete limits /a {}", delete(&mut c, "/zookeeper/quota/a/zookeeper_limits")));
    out.push(format!("create /a/after {}", create(&mut c, "/a/after", b"")));
    out.push(format!("stats of /a: {}", get(&mut c, "/zookeeper/quota/a/zookeeper_stats")));
    out
}

#[test]
fn quotas_match_apache() {
    let prop = "-Dzookeeper.enforceQuota=true";
    let apache = ApacheServer::start_standalone_with_jvm_args("", &[prop]);
    let a = scenario(&apache.connect_string());
    drop(apache);
    let ours = OurServer::start_standalone("", &[prop]);
    let o = scenario(&ours.connect_string());
    eprintln!("{}", o.join("\n"));
    assert_eq!(a, o, "apache vs ours:\n{}", common::line_diff("apache", &a.join("\n"), "ours", &o.join("\n")));
    // The hard count limit (4, the node itself included) must have bitten.
    assert!(o.iter().any(|l| l.ends_with("-125")), "no QuotaExceeded seen: {o:#?}");
    assert!(o.contains(&"stats of /a: count=2,bytes=8".to_owned()), "stats not computed: {o:#?}");
}
