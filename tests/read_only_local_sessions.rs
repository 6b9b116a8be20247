//! Local sessions (`localSessionsEnabled`, `localSessionsUpgradingEnabled`) and read-only
//! mode (`-Dreadonlymode.enabled=true`), side by side: the same steps against a 3-node
//! Apache 3.8 ensemble and a 3-node ensemble of our peers (plus a mixed one), each step
//! written down as a line of a transcript; the transcripts must be equal.
//!
//! What Apache 3.8.0 does (and so what the transcripts say):
//! - with local sessions, a new session is local to the server the client connected to:
//!   `mntr` counts it in `zk_local_sessions`; it cannot be resumed on another server
//!   (the handshake answers timeout 0: expired); it expires on its own server;
//! - an ephemeral from a local session fails with EPHEMERALONLOCALSESSION (-120)
//!   unless upgrading is on; then the session becomes global first and the ephemeral is
//!   seen on every server, and is gone from all of them when the session closes;
//! - a peer cut off from its quorum starts a read-only server after 2 s of LOOKING:
//!   `isro` says `ro`, `srvr` says `READ-ONLY mode; ...` and `Mode: read-only`; clients
//!   that allow read-only mode read, writes get NOTREADONLY (-119), other clients are
//!   refused; without local sessions no client gets a session at all;
//! - once the quorum is back a client that started read-only finds the read-write
//!   server (`isro` probes) and moves there, with a new session.

mod common;

#[path = "support/raw_client.rs"]
mod raw_client;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl, Mode};
use common::{apache_classpath, describe_output, require_apache, run_kazoo, run_with_timeout};
use raw_client::{Handshake, RawClient};
use zookeeper::client::{States, ZooKeeper};
use zookeeper::client::zookeeper::ops;
use zookeeper::proto::{ids, CreateMode};

const T: Duration = Duration::from_secs(40);
const TICK: u32 = 500;

fn spec(imps: &[Impl], read_only: bool, local: bool, upgrading: bool) -> EnsembleSpec {
    let mut s = EnsembleSpec::of(imps).tick_time(TICK).fle_debug(false).cfg(&format!(
        "localSessionsEnabled={local}\nlocalSessionsUpgradingEnabled={upgrading}\n4lw.commands.whitelist=*\n"
    ));
    if read_only {
        s = s.apache_jvm_arg("-Dreadonlymode.enabled=true").ours_arg("-Dreadonlymode.enabled=true");
    }
    s
}

/// A transcript of observations, printed as it grows.
struct Transcript {
    name: String,
    lines: Vec<String>,
}

impl Transcript {
    fn new(name: &str) -> Transcript {
        Transcript { name: name.to_owned(), lines: Vec::new() }
    }
    fn note(&mut self, line: impl Into<String>) {
        let line = line.into();
        eprintln!("[{}] {line}", self.name);
        self.lines.push(line);
    }
}

fn code_of<T>(r: Result<T, zookeeper::client::KeeperError>) -> String {
    match r {
        Ok(_) => "OK".into(),
        Err(e) => format!("{:?}", e.code),
    }
}

/// Our client; waits up to `within` for a connected state and returns it.
fn client(connect: &str, timeout_ms: i32, read_only: bool, within: Duration) -> (ZooKeeper, States) {
    let zk = ZooKeeper::connect_with(connect, timeout_ms, None, None, read_only).expect("client");
    let state = wait_state(&zk, within, |s| s.is_connected());
    (zk, state)
}

fn wait_state(zk: &ZooKeeper, within: Duration, ok: impl Fn(States) -> bool) -> States {
    let deadline = Instant::now() + within;
    loop {
        let s = zk.state();
        if ok(s) || Instant::now() >= deadline {
            return s;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn mntr_value(e: &Ensemble, sid: u64, key: &str) -> String {
    let text = e.node(sid).four_letter("mntr");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")).map(str::to_owned))
        .unwrap_or_else(|| format!("<no zk_{key}>"))
}

fn poll_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn exists_on(e: &Ensemble, sid: u64, path: &str) -> Option<bool> {
    let (zk, st) = client(&e.node(sid).connect_string(), 10_000, false, Duration::from_secs(10));
    let r = if st.is_connected() { zk.exists(path, None).ok().map(|s| s.is_some()) } else { None };
    zk.close();
    r
}

/// `srvr` lines that do not change from run to run.
fn srvr_summary(e: &Ensemble, sid: u64) -> String {
    let text = e.node(sid).four_letter("srvr");
    text.lines()
        .filter(|l| l.starts_with("READ-ONLY") || l.starts_with("Mode:"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The Java shell in batch mode without `-waitforconnection` (its latch waits for
/// SyncConnected, which a read-only connection never gives).
fn java_zkcli(connect: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("/usr/bin/java");
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.net.preferIPv4Stack=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dorg.slf4j.simpleLogger.logFile=System.err",
    ])
    .env_remove("JAVA_TOOL_OPTIONS")
    .env_remove("_JAVA_OPTIONS")
    .arg("-cp")
    .arg(apache_classpath())
    .arg("org.apache.zookeeper.ZooKeeperMain")
    .args(["-server", connect])
    .args(args);
    run_with_timeout(cmd, b"", Duration::from_secs(40))
}

fn our_zkcli(connect: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zk-cli"));
    cmd.env_remove("RUST_LOG").args(["-server", connect]).args(args);
    run_with_timeout(cmd, b"", Duration::from_secs(40))
}

/// What a shell printed for a read of a node holding `ro-data`, or a write in read-only
/// mode, reduced to what both shells print.
fn shell_outcome(o: &std::process::Output) -> String {
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if all.lines().any(|l| l.trim() == "ro-data") {
        "read ro-data".into()
    } else if all.contains("Not a read-only call") {
        "Not a read-only call".into()
    } else if all.contains("Ephemeral node on local session") {
        "Ephemeral node on local session".into()
    } else {
        format!("other (status {:?})", o.status.code())
    }
}

const KAZOO_RO: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
zk = KazooClient(hosts=sys.argv[1], read_only=True, timeout=10)
zk.start(timeout=15)
print("state", zk.client_state)
print("get", zk.get("/ro")[0].decode())
try:
    zk.create("/kazoo-w", b"x")
    print("create ok")
except NotReadOnlyCallError:
    print("create NotReadOnlyCallError")
zk.stop()
zk.close()
try:
    plain = KazooClient(hosts=sys.argv[1], timeout=4)
    plain.start(timeout=4)
    print("plain connected")
    plain.stop()
except Exception as e:
    print("plain", type(e).__name__)
"#;

// -------------------------------------------------------------- scenarios --

/// Local sessions with upgrading, then read-only mode and the way back, on a
/// three-node ensemble of `imps`.
fn local_and_read_only_scenario(name: &str, imps: &[Impl], survivor: u64) -> Vec<String> {
    let mut t = Transcript::new(name);
    let mut e = Ensemble::start(spec(imps, true, true, true));
    e.wait_for_mode_all(T);
    let all = e.connect_string();
    let others: Vec<u64> = e.sids().into_iter().filter(|s| *s != survivor).collect();
    let on_survivor = e.node(survivor).connect_string();

    // A session is local to its server.
    let before: i64 = mntr_value(&e, survivor, "local_sessions").parse().unwrap_or(-1);
    let (zk, st) = client(&on_survivor, 10_000, false, T);
    t.note(format!("client on {survivor}: {st:?}"));
    let after: i64 = mntr_value(&e, survivor, "local_sessions").parse().unwrap_or(-1);
    t.note(format!("zk_local_sessions grew by {}", after - before));
    t.note(format!("create /ro: {}", code_of(zk.create("/ro", Some(b"ro-data"), &ids::open_acl_unsafe(), CreateMode::Persistent))));
    // Upgrading: the ephemeral is created once the session is global, and every server
    // has it.
    t.note(format!("create ephemeral /eph: {}", code_of(zk.create("/eph", None, &ids::open_acl_unsafe(), CreateMode::Ephemeral))));
    let after_upgrade: i64 = mntr_value(&e, survivor, "local_sessions").parse().unwrap_or(-1);
    t.note(format!("zk_local_sessions after the upgrade: {}", after_upgrade - before));
    for sid in e.sids() {
        let seen = poll_until(Duration::from_secs(10), || exists_on(&e, sid, "/eph") == Some(true));
        t.note(format!("/eph on {sid}: {seen}"));
    }
    let multi = zk.multi(vec![ops::create("/eph-multi", None, &ids::open_acl_unsafe(), CreateMode::Ephemeral)]);
    t.note(format!("multi with an ephemeral: {}", if multi.is_ok() { "OK".to_string() } else { format!("{:?}", multi.err().map(|e| e.0.code)) }));
    zk.close();
    for sid in e.sids() {
        let gone = poll_until(Duration::from_secs(10), || exists_on(&e, sid, "/eph") == Some(false));
        t.note(format!("/eph gone on {sid} after close: {gone}"));
    }

    // A local session cannot move to another server; on its own it resumes.
    let other = others[0];
    match RawClient::connect_with(&on_survivor, 4000, Duration::from_secs(10)) {
        Ok(c) => {
            let elsewhere = RawClient::reconnect(&e.node(other).connect_string(), c.session_id, &c.passwd, 4000);
            t.note(format!("local session resumed on another server: {}", handshake_outcome(elsewhere.map(|x| x.1))));
            let home = RawClient::reconnect(&on_survivor, c.session_id, &c.passwd, 4000);
            t.note(format!("local session resumed on its server: {}", handshake_outcome(home.map(|x| x.1))));
        }
        Err(err) => t.note(format!("raw connect failed: {err}")),
    }
    // Expiry of a local session whose client went away (the reconnect above left none).
    let base: i64 = mntr_value(&e, survivor, "local_sessions").parse().unwrap_or(-1);
    let abandoned = RawClient::connect_with(&on_survivor, 2000, Duration::from_secs(10)).is_ok();
    let grew = mntr_value(&e, survivor, "local_sessions").parse::<i64>().unwrap_or(-1) > base;
    let expired = poll_until(Duration::from_secs(15), || {
        let v = mntr_value(&e, survivor, "local_sessions").parse::<i64>().unwrap_or(-1);
        (0..=base).contains(&v)
    });
    t.note(format!("abandoned local session: connected {abandoned}, counted {grew}, expired {expired}"));

    // A global session (upgraded for its ephemeral), alive when the partition comes.
    let (global_zk, _) = client(&all, 10_000, false, T);
    let _ = global_zk.create("/global-eph", None, &ids::open_acl_unsafe(), CreateMode::Ephemeral);
    let global_session = (global_zk.session_id(), global_zk.session_passwd());

    // Partition: the survivor alone.
    for s in &others {
        e.kill(*s);
    }
    let ro = poll_until(T, || e.node(survivor).mode() == Some(Mode::ReadOnly));
    t.note(format!("survivor read-only: {ro}"));
    t.note(format!("srvr: {}", srvr_summary(&e, survivor)));
    t.note(format!("isro: {}", e.node(survivor).four_letter("isro")));
    t.note(format!("mntr zk_server_state: {}", mntr_value(&e, survivor, "server_state")));

    let (ro_zk, st) = client(&on_survivor, 10_000, true, T);
    t.note(format!("read-only client: {st:?}"));
    t.note(format!(
        "get /ro: {}",
        match ro_zk.get_data("/ro", None) {
            Ok((d, _)) => String::from_utf8_lossy(&d.unwrap_or_default()).into_owned(),
            Err(err) => format!("{:?}", err.code),
        }
    ));
    t.note(format!("ls /: {}", ro_zk.get_children("/", None).map(|mut v| { v.sort(); v.join(",") }).unwrap_or_else(|e| format!("{:?}", e.code))));
    t.note(format!("create: {}", code_of(ro_zk.create("/w", None, &ids::open_acl_unsafe(), CreateMode::Persistent))));
    t.note(format!("setData: {}", code_of(ro_zk.set_data("/ro", Some(b"w"), -1))));
    t.note(format!("delete: {}", code_of(ro_zk.delete("/ro", -1))));
    t.note(format!("sync: {}", code_of(ro_zk.sync("/ro"))));
    t.note(format!("local sessions on the read-only server: {}", mntr_value(&e, survivor, "local_sessions").parse::<i64>().map(|v| v >= 1).unwrap_or(false)));
    // Its session resumes there; a global session does not.
    let local_session = (ro_zk.session_id(), ro_zk.session_passwd());
    t.note(format!("read-only client's session resumed: {}", raw_read_only_handshake(&on_survivor, local_session.0, &local_session.1)));
    t.note(format!("global session resumed read-only: {}", raw_read_only_handshake(&on_survivor, global_session.0, &global_session.1)));
    global_zk.close();
    ro_zk.close();

    let (plain, st) = client(&on_survivor, 10_000, false, Duration::from_secs(4));
    t.note(format!("read-write client on the read-only server: {st:?}"));
    plain.close();

    t.note(format!("Java zkCli -r get: {}", shell_outcome(&java_zkcli(&on_survivor, &["-r", "get", "/ro"]))));
    t.note(format!("Java zkCli -r create: {}", shell_outcome(&java_zkcli(&on_survivor, &["-r", "create", "/w"]))));
    t.note(format!("our zkCli -r get: {}", shell_outcome(&our_zkcli(&on_survivor, &["-r", "get", "/ro"]))));
    t.note(format!("our zkCli -r create: {}", shell_outcome(&our_zkcli(&on_survivor, &["-r", "create", "/w"]))));
    let k = run_kazoo(KAZOO_RO, &on_survivor);
    let kout = String::from_utf8_lossy(&k.stdout).into_owned();
    if !k.status.success() {
        eprintln!("{}", describe_output("kazoo", &k));
    }
    t.note(format!("kazoo: {}", kout.lines().collect::<Vec<_>>().join("; ")));

    // The way back: a client that connected read-only finds the read-write server.
    let (wanderer, st) = client(&all, 10_000, true, T);
    let ro_session = wanderer.session_id();
    t.note(format!("client with all servers: {st:?}"));
    for s in &others {
        e.restart(*s);
    }
    let back = poll_until(Duration::from_secs(60), || matches!(e.node(survivor).mode(), Some(Mode::Leader | Mode::Follower)));
    t.note(format!("survivor back in the quorum: {back}"));
    let st = wait_state(&wanderer, Duration::from_secs(60), |s| s == States::Connected);
    t.note(format!("client found a read-write server: {st:?}"));
    t.note(format!("its session changed: {}", wanderer.session_id() != ro_session));
    t.note(format!("it writes: {}", code_of(wanderer.create("/after", None, &ids::open_acl_unsafe(), CreateMode::Persistent))));
    wanderer.close();
    t.lines
}

fn handshake_outcome(h: Result<Handshake, String>) -> String {
    match h {
        Ok(Handshake::Response(r, _)) if r.time_out > 0 => "valid".into(),
        Ok(Handshake::Response(..)) => "expired (timeout 0)".into(),
        Ok(Handshake::Closed) => "closed".into(),
        Ok(Handshake::Timeout) => "no answer".into(),
        Err(e) => format!("error {e}"),
    }
}

/// Local sessions without upgrading: no ephemerals, on the leader or a follower.
fn no_upgrade_scenario(name: &str, imps: &[Impl]) -> Vec<String> {
    let mut t = Transcript::new(name);
    let e = Ensemble::start(spec(imps, false, true, false));
    let modes = e.wait_for_mode_all(T);
    let mut sids: Vec<u64> = e.sids();
    sids.sort_by_key(|s| modes.get(s) != Some(&Mode::Leader));
    for sid in sids {
        let role = if modes.get(&sid) == Some(&Mode::Leader) { "leader" } else { "follower" };
        let (zk, st) = client(&e.node(sid).connect_string(), 10_000, false, T);
        t.note(format!("{role}: client {st:?}"));
        t.note(format!("{role}: create persistent: {}", code_of(zk.create(&format!("/p{sid}"), None, &ids::open_acl_unsafe(), CreateMode::Persistent))));
        t.note(format!("{role}: create ephemeral: {}", code_of(zk.create(&format!("/e{sid}"), None, &ids::open_acl_unsafe(), CreateMode::Ephemeral))));
        t.note(format!(
            "{role}: create ephemeral sequential: {}",
            code_of(zk.create(&format!("/s{sid}-"), None, &ids::open_acl_unsafe(), CreateMode::EphemeralSequential))
        ));
        let multi = zk.multi(vec![
            ops::create(&format!("/m{sid}"), None, &ids::open_acl_unsafe(), CreateMode::Persistent),
            ops::create(&format!("/me{sid}"), None, &ids::open_acl_unsafe(), CreateMode::Ephemeral),
        ]);
        t.note(format!(
            "{role}: multi with an ephemeral: {}",
            match multi {
                Ok(_) => "OK".into(),
                Err((err, results)) => format!("{:?} {:?}", err.code, results),
            }
        ));
        t.note(format!("{role}: still connected: {:?}", zk.state()));
        t.note(format!("{role}: the session is still local: {}", mntr_value(&e, sid, "local_sessions") != "0"));
        zk.close();
    }
    t.note(format!(
        "Java zkCli create -e: {}",
        shell_outcome(&java_zkcli(&e.node(1).connect_string(), &["create", "-e", "/java-e"]))
    ));
    t.lines
}

/// Read-only mode without local sessions: the peer serves no client at all.
fn read_only_without_local_sessions(name: &str, imp: Impl) -> Vec<String> {
    let mut t = Transcript::new(name);
    let mut e = Ensemble::new(spec(&[imp, imp, imp], true, false, false));
    e.start_nodes(&[1]);
    let ro = poll_until(T, || e.node(1).mode() == Some(Mode::ReadOnly));
    t.note(format!("lone peer read-only: {ro}"));
    t.note(format!("isro: {}", e.node(1).four_letter("isro")));
    if std::env::var("ZKRS_RO_MNTR").is_ok() {
        eprintln!("[{name}] mntr:\n{}\nconf:\n{}\nstat:\n{}", e.node(1).four_letter("mntr"), e.node(1).four_letter("conf"), e.node(1).four_letter("stat"));
    }
    let (zk, st) = client(&e.node(1).connect_string(), 10_000, true, Duration::from_secs(4));
    t.note(format!("read-only client: {st:?}"));
    zk.close();
    // What the server sends for the createSession it refuses: NOTREADONLY in a reply
    // header where the client expects its ConnectResponse.
    t.note(format!("raw read-only handshake: {}", raw_read_only_handshake(&e.node(1).connect_string(), 0, &[0; 16])));
    t.lines
}

/// A handshake with readOnly=true: what came back.
fn raw_read_only_handshake(addr: &str, session_id: i64, passwd: &[u8]) -> String {
    use std::io::{Read, Write};
    use zookeeper::jute::{OutputArchive, Record};
    let req = &zookeeper::proto::proto::ConnectRequest { protocol_version: 0, last_zxid_seen: 0, time_out: 10_000, session_id, passwd: Some(passwd.to_vec()) };
    let Ok(mut s) = std::net::TcpStream::connect(addr) else { return "connect failed".into() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut out = OutputArchive::new();
    req.serialize(&mut out);
    out.write_bool(true);
    let body = out.as_slice().to_vec();
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    if s.write_all(&frame).is_err() {
        return "write failed".into();
    }
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return "no answer".into();
    }
    let n = i32::from_be_bytes(len).clamp(0, 1 << 16) as usize;
    let mut buf = vec![0u8; n];
    if s.read_exact(&mut buf).is_err() {
        return format!("{n} bytes announced, fewer sent");
    }
    if n == 16 {
        // A ReplyHeader where the ConnectResponse belongs.
        let err = i32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]);
        return format!("reply header, xid {} err {err}", i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]));
    }
    match zookeeper::proto::proto::ConnectResponse::from_bytes(&buf) {
        Ok(r) if r.time_out > 0 => format!("valid, read-only flag {}", buf.last().copied().unwrap_or(0)),
        Ok(_) => "expired (timeout 0)".into(),
        Err(e) => format!("{n} bytes, undecodable: {e}"),
    }
}

type Scenario = Box<dyn FnOnce() -> Vec<String> + Send>;
type Results = Arc<Mutex<Vec<(&'static str, Vec<String>)>>>;

/// One scenario pair at a time: each runs six peers and Java clients, on two cores.
static HEAVY: Mutex<()> = Mutex::new(());

/// Runs the scenario for each implementation at the same time and compares.
fn side_by_side(cases: Vec<(&'static str, Scenario)>) {
    require_apache();
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let results: Results = Arc::default();
    let handles: Vec<_> = cases
        .into_iter()
        .map(|(name, f)| {
            let r = results.clone();
            thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let lines = f();
                    r.lock().unwrap_or_else(|p| p.into_inner()).push((name, lines));
                })
                .expect("spawn scenario")
        })
        .collect();
    let mut panicked = Vec::new();
    for h in handles {
        let name = h.thread().name().unwrap_or("?").to_owned();
        if h.join().is_err() {
            panicked.push(name);
        }
    }
    assert!(panicked.is_empty(), "scenarios failed: {panicked:?}");
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    results.sort_by_key(|(n, _)| *n != "apache");
    let (first_name, first) = &results[0];
    for (name, lines) in &results[1..] {
        assert_eq!(
            first, lines,
            "{first_name} and {name} differ:\n{}",
            common::line_diff(first_name, &first.join("\n"), name, &lines.join("\n"))
        );
    }
}

// ------------------------------------------------------------------ tests --

#[test]
fn local_sessions_and_read_only_mode_as_apache() {
    side_by_side(vec![
        ("apache", Box::new(|| local_and_read_only_scenario("apache", &[Impl::Apache; 3], 1))),
        ("ours", Box::new(|| local_and_read_only_scenario("ours", &[Impl::Ours; 3], 1))),
    ]);
}

/// Our peer as the read-only survivor of an otherwise Apache ensemble: its local
/// sessions are upgraded through an Apache leader, and it rejoins that ensemble.
#[test]
fn our_peer_among_apache_peers_as_apache() {
    side_by_side(vec![
        ("apache", Box::new(|| local_and_read_only_scenario("apache", &[Impl::Apache; 3], 3))),
        ("mixed", Box::new(|| local_and_read_only_scenario("mixed", &[Impl::Apache, Impl::Apache, Impl::Ours], 3))),
    ]);
}

#[test]
fn ephemeral_on_local_session_without_upgrading_as_apache() {
    side_by_side(vec![
        ("apache", Box::new(|| no_upgrade_scenario("apache", &[Impl::Apache; 3]))),
        ("ours", Box::new(|| no_upgrade_scenario("ours", &[Impl::Ours; 3]))),
    ]);
}

#[test]
fn read_only_without_local_sessions_serves_nobody_as_apache() {
    side_by_side(vec![
        ("apache", Box::new(|| read_only_without_local_sessions("apache", Impl::Apache))),
        ("ours", Box::new(|| read_only_without_local_sessions("ours", Impl::Ours))),
    ]);
}
