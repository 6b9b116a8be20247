//! Dynamic reconfiguration (`reconfig`, opcode 16) the way operators run it, on
//! all-Apache, all-Rust and mixed ensembles; every expectation is what Apache ZooKeeper
//! 3.8.0 (Debian) does, and the bad-request test takes its expected answers from an
//! Apache ensemble run in the same test.
//!
//! Common settings: tickTime 500, initLimit 10, syncLimit 5, `standaloneEnabled=false`,
//! `reconfigEnabled=true`, super user `super` through
//! `-Dzookeeper.DigestAuthenticationProvider.superDigest` (JVM flag for Apache, same
//! `-D` argument for our `zk-server`). Clients authenticate with `addauth digest
//! super:<pw>`; zkCli runs interactively (commands on stdin) so that `addauth` and
//! `reconfig` share one session — no `skipACL` needed.
//!
//! Scenario ([`run_scenario`]), participants 1-3, observer 6, joiners 4 and 5:
//!
//! 0. start 1, 2, 3, 6: the version-0 config is re-versioned by the first leader
//!    (`0x<epoch>00000000`), every node agrees on `/zookeeper/config` and has written
//!    `zoo.cfg.dynamic.<version>` and `dynamicConfigFile=` into its zoo.cfg; a client
//!    write load (sequential creates under `/load`) runs from here to the end;
//! 1. start joiners 4 and 5 (their zoo.cfg: the current members plus themselves), then
//!    `reconfig -add server.4=...,server.5=...` → the 6 nodes agree on the new config,
//!    same files on every node, Modes: the leader unchanged, 1-5 follow, 6 observes;
//! 2. `reconfig -remove <leader>,<another original participant>` (the client may see
//!    ConnectionLoss: the leader steps down) → another leader among the remaining
//!    voters; the removed ones wrote the file too and go on as non-voting followers
//!    serving the same config (as Apache's do); then they are stopped (SIGTERM), as an
//!    operator would;
//! 3. `reconfig -add server.6=...:participant;...` → 6 follows; then back to
//!    `:observer` → 6 observes; agreement and files after each; then a follower is
//!    SIGKILLed and restarted on the files the reconfigs left and rejoins, same config;
//! 4. the load stops: every acknowledged `/load` znode exists on every remaining node
//!    (after `sync`), and the remaining nodes hold the same `/load` children.
//!
//! | test                                             | 1 | 2 | 3 | 4 (joins) | 5 (joins) | 6 (observer) | reconfig by, through |
//! |--------------------------------------------------|---|---|---|-----------|-----------|--------------|----------------------|
//! | `apache_only`                                    | J | J | J | J         | J         | J            | our client library, node 2 |
//! | `rust_only`                                      | R | R | R | R         | R         | R            | our client library, node 2 |
//! | `mixed_reconfig_by_apache_zkcli_against_rust_node` | J | R | J | R       | J         | R            | Java zkCli, node 2 (R) |
//! | `mixed_reconfig_by_our_zkcli_against_java_node`  | R | J | R | J         | R         | J            | our zk-cli, node 2 (J) |
//!
//! [`bad_requests`]: the same reconfig requests (our client library, through a follower)
//! against a 3-node Apache ensemble and a 3-node ensemble of ours, plus a 1-node
//! ensemble with `reconfigEnabled=false` each; the answers and whether
//! `/zookeeper/config` changed must be Apache's, and the documented codes are asserted
//! too. Then one interactive zkCli session (config / config -c / config -s and the bad
//! reconfigs) by Java zkCli and by our zk-cli against both ensembles: normalised
//! transcripts must equal Java zkCli's against Apache.
//!
//! Apache JVMs at once stay ≤ 6 (a process-wide budget, [`reserve_jvms`]): tests whose
//! JVMs fit together run in parallel, the others wait.
//!
//! `ZKRS_TEST_OURS=apache` runs every node on Apache (a check of this test);
//! `ZKRS_TEST_SHOW=1` prints the step log and zkCli transcripts.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl, MemberSpec, Mode, PeerType};
use common::{describe_output, free_port, java_client_command_with, line_diff, ours_is_apache, run_with_timeout};
use regex::Regex;
use zookeeper::client::{KeeperError, ZooKeeper};
use zookeeper::proto::data::Stat;
use zookeeper::proto::{ids, Code, CreateMode};
use zookeeper::server::auth::digest_authentication_provider::generate_digest;

const TICK_MS: u32 = 500;
/// Bound of every wait for a convergence (config agreement, Modes, files).
const WAIT: Duration = Duration::from_secs(45);
/// Bound for a client session to connect.
const CONNECT_WAIT: Duration = Duration::from_secs(15);
/// Session timeout of our clients (within tickTime*2 .. tickTime*20).
const SESSION_MS: i32 = 8000;
/// `zookeeper.request.timeout` of our clients: no blocking call waits longer.
const REQUEST_TIMEOUT_MS: &str = "10000";
/// The super user's `id:password`.
const SUPER: &str = "super:reconfig-test";
/// Apache JVMs that may run at once (test servers and zkCli).
const JVM_BUDGET: usize = 6;

const LOAD_DIR: &str = "/load";

fn show() -> bool {
    std::env::var_os("ZKRS_TEST_SHOW").is_some()
}

// ------------------------------------------------------------ JVM budget --

struct Budget {
    used: Mutex<usize>,
    cv: Condvar,
}

/// Held while a test runs its JVMs; gives them back on Drop (also when panicking).
struct JvmReservation(usize);

/// Waits until `n` (at most [`JVM_BUDGET`]) Apache JVMs may start.
fn reserve_jvms(n: usize) -> JvmReservation {
    let n = n.min(JVM_BUDGET);
    let b = budget();
    let mut used = b.used.lock().unwrap_or_else(|e| e.into_inner());
    while *used + n > JVM_BUDGET {
        used = b.cv.wait(used).unwrap_or_else(|e| e.into_inner());
    }
    *used += n;
    JvmReservation(n)
}

fn budget() -> &'static Budget {
    static B: OnceLock<Budget> = OnceLock::new();
    B.get_or_init(|| Budget { used: Mutex::new(0), cv: Condvar::new() })
}

impl Drop for JvmReservation {
    fn drop(&mut self) {
        let b = budget();
        *b.used.lock().unwrap_or_else(|e| e.into_inner()) -= self.0;
        b.cv.notify_all();
    }
}

/// Apache JVMs of a spec (every node under `ZKRS_TEST_OURS=apache`).
fn apache_nodes(spec: &EnsembleSpec) -> usize {
    if ours_is_apache() {
        spec.members.len()
    } else {
        spec.members.iter().filter(|m| m.imp == Impl::Apache).count()
    }
}

// ---------------------------------------------------------------- setup --

fn init_client_props() {
    // Read by ZooKeeper::connect: no blocking call of our clients waits forever.
    zookeeper::system_properties::set("zookeeper.request.timeout", REQUEST_TIMEOUT_MS);
}

fn super_digest_arg() -> String {
    format!("-Dzookeeper.DigestAuthenticationProvider.superDigest={}", generate_digest(SUPER))
}

/// tickTime/limits of zab_interop, reconfig on, the super digest for both kinds.
fn base_spec(members: Vec<MemberSpec>, reconfig: bool) -> EnsembleSpec {
    let d = super_digest_arg();
    EnsembleSpec::new(members)
        .tick_time(TICK_MS)
        .init_limit(10)
        .sync_limit(5)
        .reconfig_enabled(reconfig)
        .apache_jvm_arg(&d)
        .ours_arg(&d)
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if ok() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A session on `connect`, connected (panics after [`CONNECT_WAIT`]).
fn connect(connect: &str) -> ZooKeeper {
    try_connect(connect).unwrap_or_else(|e| panic!("{e}"))
}

fn try_connect(connect: &str) -> Result<ZooKeeper, String> {
    let zk = ZooKeeper::connect(connect, SESSION_MS, None).map_err(|e| format!("connect {connect}: {:?}", e.code))?;
    if wait_until(CONNECT_WAIT, || zk.state().is_connected()) {
        Ok(zk)
    } else {
        zk.close();
        Err(format!("no session on {connect} within {CONNECT_WAIT:?}"))
    }
}

// --------------------------------------------------------- config text --

/// `/zookeeper/config`: `server.N=...` lines and the version.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Config {
    /// sid -> `host:q:e:role;host:c`
    servers: BTreeMap<u64, String>,
    version: u64,
    raw: String,
}

impl Config {
    fn members(&self) -> BTreeMap<u64, PeerType> {
        self.servers
            .iter()
            .map(|(s, v)| (*s, if v.contains(":observer") { PeerType::Observer } else { PeerType::Participant }))
            .collect()
    }
    /// The `server.N=...` lines as the dynamic file has them: sorted as strings.
    fn file_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self.servers.iter().map(|(s, r)| format!("server.{s}={r}")).collect();
        v.sort();
        v
    }
}

fn config_line_re() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r"^server\.(\d+)=(127\.0\.0\.1:\d+:\d+:(?:participant|observer);127\.0\.0\.1:\d+)$").unwrap()
    })
}

/// Parses and checks the text format (upstream-ops.md §5.2): one line per member,
/// `version=<hex>` last, no trailing newline.
fn parse_config(text: &str) -> Result<Config, String> {
    if text.ends_with('\n') {
        return Err(format!("trailing newline in {text:?}"));
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let (last, members) = lines.split_last().ok_or("empty config")?;
    let v = last.strip_prefix("version=").ok_or_else(|| format!("last line is not version=...: {text:?}"))?;
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
        return Err(format!("version not lower-case hex: {text:?}"));
    }
    let version = u64::from_str_radix(v, 16).map_err(|e| format!("version {v}: {e}"))?;
    let mut servers = BTreeMap::new();
    for l in members {
        let c = config_line_re().captures(l).ok_or_else(|| format!("bad server line {l:?} in {text:?}"))?;
        let sid: u64 = c[1].parse().unwrap();
        if servers.insert(sid, c[2].to_string()).is_some() {
            return Err(format!("server.{sid} twice in {text:?}"));
        }
    }
    Ok(Config { servers, version, raw: text.to_string() })
}

/// The config text lines the ensemble's nodes would have for `members`.
fn expected_servers(ens: &Ensemble, members: &BTreeMap<u64, PeerType>) -> BTreeMap<u64, String> {
    members
        .iter()
        .map(|(&sid, &role)| {
            let spec = ens.server_spec(sid, role);
            (sid, spec.split_once('=').unwrap().1.to_string())
        })
        .collect()
}

fn members_str(m: &BTreeMap<u64, PeerType>) -> String {
    m.iter()
        .map(|(s, r)| format!("{s}{}", if *r == PeerType::Observer { "(obs)" } else { "" }))
        .collect::<Vec<_>>()
        .join(",")
}

// ------------------------------------------------------------- readers --

/// One session per node, for reading `/zookeeper/config` and `/load` after `sync`.
#[derive(Default)]
struct Readers {
    map: HashMap<u64, ZooKeeper>,
}

impl Readers {
    fn session(&mut self, ens: &Ensemble, sid: u64) -> Result<&ZooKeeper, String> {
        if !self.map.contains_key(&sid) {
            let zk = try_connect(&ens.node(sid).connect_string())?;
            self.map.insert(sid, zk);
        }
        Ok(&self.map[&sid])
    }

    fn fail<T>(&mut self, sid: u64, what: &str, e: KeeperError) -> Result<T, String> {
        // A fresh session next time (the old one may be expired or stuck).
        if let Some(zk) = self.map.remove(&sid) {
            zk.close();
        }
        Err(format!("{what}: {:?}", e.code))
    }

    /// `sync` + `getConfig` on node `sid`.
    fn config(&mut self, ens: &Ensemble, sid: u64) -> Result<(String, Stat), String> {
        let zk = self.session(ens, sid)?;
        let r = zk.sync("/zookeeper/config").and_then(|_| zk.get_config(None));
        match r {
            Ok((d, st)) => Ok((String::from_utf8_lossy(&d.unwrap_or_default()).into_owned(), st)),
            Err(e) => self.fail(sid, "sync+getConfig", e),
        }
    }

    /// `sync` + `getChildren(/load)` on node `sid`.
    fn load_children(&mut self, ens: &Ensemble, sid: u64) -> Result<BTreeSet<String>, String> {
        let zk = self.session(ens, sid)?;
        let r = zk.sync(LOAD_DIR).and_then(|_| zk.get_children(LOAD_DIR, None));
        match r {
            Ok(v) => Ok(v.into_iter().collect()),
            Err(e) => self.fail(sid, "sync+getChildren", e),
        }
    }

    fn forget(&mut self, sid: u64) {
        if let Some(zk) = self.map.remove(&sid) {
            zk.close();
        }
    }

    fn close_all(&mut self) {
        for (_, zk) in self.map.drain() {
            zk.close();
        }
    }
}

/// Waits until every node of `sids` serves, reads the same config after `sync`, with
/// exactly `members` (the harness's ports; explicit roles; `;client` parts) and a version
/// other than `old_version`; checks `mzxid` = version and `dataLength`. Panics with what
/// each node said and the logs after [`WAIT`].
fn wait_config_agreement(
    ens: &Ensemble,
    readers: &mut Readers,
    sids: &[u64],
    members: &BTreeMap<u64, PeerType>,
    old_version: Option<u64>,
    what: &str,
) -> Config {
    let want = expected_servers(ens, members);
    let deadline = Instant::now() + WAIT;
    let mut last: BTreeMap<u64, String> = BTreeMap::new();
    loop {
        let mut got: BTreeMap<u64, Config> = BTreeMap::new();
        for &sid in sids {
            if ens.node(sid).mode().is_none() {
                last.insert(sid, format!("not serving (srvr: {:?})", ens.node(sid).four_letter("srvr").lines().next()));
                continue;
            }
            match readers.config(ens, sid) {
                Ok((text, st)) => match parse_config(&text) {
                    Ok(c) => {
                        assert_eq!(
                            st.mzxid as u64, c.version,
                            "{what}: node {sid}: /zookeeper/config mzxid {:#x} is not its version ({text:?})",
                            st.mzxid
                        );
                        assert_eq!(st.data_length as usize, text.len(), "{what}: node {sid}: dataLength vs text {text:?}");
                        last.insert(sid, format!("version {:x}: {}", c.version, members_str(&c.members())));
                        got.insert(sid, c);
                    }
                    Err(e) => panic!("{what}: node {sid}: /zookeeper/config is malformed: {e}\n{}", ens.describe_all(40)),
                },
                Err(e) => {
                    last.insert(sid, e);
                }
            }
        }
        if got.len() == sids.len() {
            let versions: BTreeSet<u64> = got.values().map(|c| c.version).collect();
            let first = got.values().next().unwrap().clone();
            let all_same = versions.len() == 1 && got.values().all(|c| c.raw == first.raw || c.servers == first.servers);
            if all_same && first.servers == want && Some(first.version) != old_version {
                return first;
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: nodes {sids:?} do not agree on /zookeeper/config with members {} (version other than {:x?}) within {WAIT:?}:\n{}\n{}",
                members_str(members),
                old_version,
                last.iter().map(|(s, l)| format!("  node {s}: {l}")).collect::<Vec<_>>().join("\n"),
                ens.describe_all(40)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Every node of `sids` has `zoo.cfg.dynamic.<version>` with the config's server lines
/// (sorted, no version line, no trailing newline), its zoo.cfg points at it with
/// `dynamicConfigFile=` and lists neither `server.` lines nor `clientPort`/
/// `clientPortAddress` (they come from its server line), and `zoo.cfg.bak` exists
/// (upstream-ops.md §5.1).
fn wait_dynamic_files(ens: &Ensemble, sids: &[u64], cfg: &Config, what: &str) {
    let name = format!("zoo.cfg.dynamic.{:x}", cfg.version);
    let want = cfg.file_lines().join("\n");
    let mut problems = Vec::new();
    let ok = wait_until(WAIT, || {
        problems.clear();
        for &sid in sids {
            let n = ens.node(sid);
            let path = n.dir().join(&name);
            match std::fs::read_to_string(&path) {
                Ok(t) if t == want => {}
                Ok(t) => problems.push(format!("node {sid}: {name} is {t:?}, expected {want:?}")),
                Err(e) => problems.push(format!("node {sid}: {}: {e}", path.display())),
            }
            let zcfg = std::fs::read_to_string(n.cfg_path()).unwrap_or_default();
            let ptr: Vec<&str> = zcfg.lines().filter_map(|l| l.strip_prefix("dynamicConfigFile=")).collect();
            if ptr.len() != 1 || !ptr[0].ends_with(&format!("/{name}")) {
                problems.push(format!("node {sid}: zoo.cfg dynamicConfigFile lines {ptr:?}, expected one ending in /{name}"));
            }
            if zcfg.lines().any(|l| l.starts_with("server.")) {
                problems.push(format!("node {sid}: zoo.cfg still has server. lines:\n{zcfg}"));
            }
            // Its client address comes from its server line: clientPort(Address) dropped.
            if zcfg.lines().any(|l| l.starts_with("clientPort=") || l.starts_with("clientPortAddress=")) {
                problems.push(format!("node {sid}: the rewritten zoo.cfg keeps clientPort/clientPortAddress:\n{zcfg}"));
            }
            if !n.dir().join("zoo.cfg.bak").exists() {
                problems.push(format!("node {sid}: no zoo.cfg.bak"));
            }
        }
        problems.is_empty()
    });
    if !ok {
        let listing: Vec<String> = sids
            .iter()
            .map(|&s| {
                let mut files: Vec<String> = std::fs::read_dir(ens.node(s).dir())
                    .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                    .unwrap_or_default();
                files.sort();
                format!("  node {s}: {files:?}")
            })
            .collect();
        panic!("{what}: dynamic config files not as expected within {WAIT:?}:\n{}\nfiles:\n{}\n{}", problems.join("\n"), listing.join("\n"), ens.describe_all(30));
    }
}

/// Waits until, among `sids`, exactly one voter says `Mode: leader` (not `not_leader`),
/// the other voters `follower` and the observers `observer`. Returns the leader.
fn wait_roles(ens: &Ensemble, members: &BTreeMap<u64, PeerType>, not_leader: Option<u64>, what: &str) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let modes: BTreeMap<u64, Option<Mode>> = members.keys().map(|&s| (s, ens.node(s).mode())).collect();
        let leaders: Vec<u64> = modes.iter().filter(|(_, m)| **m == Some(Mode::Leader)).map(|(s, _)| *s).collect();
        let ok = leaders.len() == 1
            && Some(leaders[0]) != not_leader
            && members.iter().all(|(s, r)| match (r, modes[s]) {
                (PeerType::Observer, m) => m == Some(Mode::Observer),
                (PeerType::Participant, m) => m == Some(Mode::Leader) || m == Some(Mode::Follower),
            });
        if ok {
            return leaders[0];
        }
        if Instant::now() >= deadline {
            panic!(
                "{what}: expected one leader (not {not_leader:?}) among the voters of {}, followers, observers; srvr Modes: {modes:?}\n{}",
                members_str(members),
                ens.describe_all(50)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ------------------------------------------------------------ issuing --

/// Who sends the reconfig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Issuer {
    /// `zookeeper::client::ZooKeeper::reconfig`.
    Library,
    /// Apache's `ZooKeeperMain`, interactive (commands on stdin).
    JavaZkCli,
    /// Our `zk-cli`, interactive.
    OurZkCli,
}

/// Which credentials the issuing session carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    Super,
    None,
    /// `addauth digest bob:bob`: authenticated, not super.
    OtherDigest,
}

/// One reconfig request (zkCli syntax in comments).
#[derive(Clone, Debug, Default)]
struct Req {
    /// `-add a,b`
    add: Vec<String>,
    /// `-remove 1,2` (strings: a bad request may name a non-number)
    remove: Vec<String>,
    /// `-members a,b` (non-incremental)
    members: Vec<String>,
    /// `-v <hex>`; -1: none
    from: i64,
}

impl Req {
    fn add(specs: &[String]) -> Req {
        Req { add: specs.to_vec(), from: -1, ..Default::default() }
    }
    fn remove(ids: &[u64]) -> Req {
        Req { remove: ids.iter().map(u64::to_string).collect(), from: -1, ..Default::default() }
    }
    fn cli_line(&self) -> String {
        let mut s = "reconfig".to_string();
        if self.from != -1 {
            s.push_str(&format!(" -v {:x}", self.from));
        }
        if !self.members.is_empty() {
            s.push_str(&format!(" -members {}", self.members.join(",")));
        }
        if !self.add.is_empty() {
            s.push_str(&format!(" -add {}", self.add.join(",")));
        }
        if !self.remove.is_empty() {
            s.push_str(&format!(" -remove {}", self.remove.join(",")));
        }
        s
    }
}

/// What a reconfig answered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    Committed(String),
    Err(Code),
    /// Unrecognised zkCli output.
    Other(String),
}

impl Answer {
    fn short(&self) -> String {
        match self {
            Answer::Committed(t) => match parse_config(t) {
                Ok(c) => format!("committed version {:x} [{}]", c.version, members_str(&c.members())),
                Err(e) => format!("committed, malformed: {e}"),
            },
            Answer::Err(c) => format!("{c:?} ({})", c.int()),
            Answer::Other(s) => format!("unrecognised: {s}"),
        }
    }
}

fn auth_lines(auth: Auth) -> Vec<String> {
    match auth {
        Auth::Super => vec![format!("addauth digest {SUPER}")],
        Auth::OtherDigest => vec!["addauth digest bob:bob".to_string()],
        Auth::None => vec![],
    }
}

/// Sends `req` through node `sid`.
fn issue(ens: &Ensemble, issuer: Issuer, sid: u64, auth: Auth, req: &Req) -> (Answer, String) {
    let connect = ens.node(sid).connect_string();
    match issuer {
        Issuer::Library => {
            let zk = match try_connect(&connect) {
                Ok(zk) => zk,
                Err(e) => panic!("reconfig client: {e}\n{}", ens.describe_all(40)),
            };
            match auth {
                Auth::Super => zk.add_auth_info("digest", SUPER.as_bytes()),
                Auth::OtherDigest => zk.add_auth_info("digest", b"bob:bob"),
                Auth::None => {}
            }
            let opt = |v: &Vec<String>| (!v.is_empty()).then(|| v.join(","));
            let (j, l, m) = (opt(&req.add), opt(&req.remove), opt(&req.members));
            let r = zk.reconfig(j.as_deref(), l.as_deref(), m.as_deref(), req.from);
            zk.close();
            let a = match r {
                Ok((d, _)) => Answer::Committed(String::from_utf8_lossy(&d.unwrap_or_default()).into_owned()),
                Err(e) => Answer::Err(e.code),
            };
            let desc = format!("library: {}", a.short());
            (a, desc)
        }
        Issuer::JavaZkCli | Issuer::OurZkCli => {
            let mut lines = auth_lines(auth);
            lines.push(req.cli_line());
            lines.push("quit".into());
            let out = run_zkcli(issuer, &connect, &lines);
            (parse_cli_answer(&out), describe_output(&format!("{issuer:?} {}", req.cli_line()), &out))
        }
    }
}

fn zkcli_command(issuer: Issuer, connect: &str) -> Command {
    let mut cmd = match issuer {
        Issuer::JavaZkCli => java_client_command_with("org.apache.zookeeper.ZooKeeperMain", &[]),
        Issuer::OurZkCli => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_zk-cli"));
            c.env_remove("RUST_LOG").env("TZ", "UTC");
            c
        }
        Issuer::Library => unreachable!(),
    };
    cmd.args(["-server", connect, "-waitforconnection"]);
    cmd
}

/// One interactive zkCli session: `lines` on stdin (then EOF), 60 s limit.
fn run_zkcli(issuer: Issuer, connect: &str, lines: &[String]) -> Output {
    let mut input = lines.join("\n");
    input.push('\n');
    run_with_timeout(zkcli_command(issuer, connect), input.as_bytes(), Duration::from_secs(60))
}

/// zkCli's text for a failed reconfig (CliWrapperException) → code.
fn cli_error_code(text: &str) -> Option<Code> {
    const FRIENDLY: &[(&str, Code)] = &[
        ("Insufficient permission", Code::NoAuth),
        ("version No is not valid", Code::BadVersion),
        ("Another reconfiguration is in progress", Code::ReconfigInProgress),
        ("No quorum of new config is connected", Code::NewConfigNoQuorum),
        ("Arguments are not valid", Code::BadArguments),
    ];
    for (m, c) in FRIENDLY {
        if text.contains(m) {
            return Some(*c);
        }
    }
    (-130..=0).filter_map(Code::from_i32).find(|c| *c != Code::Ok && text.contains(&format!("KeeperErrorCode = {}", c.message())))
}

fn parse_cli_answer(out: &Output) -> Answer {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(i) = stdout.find("Committed new configuration:\n") {
        let rest = &stdout[i + "Committed new configuration:\n".len()..];
        let mut text = Vec::new();
        for l in rest.lines() {
            text.push(l);
            if l.starts_with("version=") {
                break;
            }
        }
        return Answer::Committed(text.join("\n"));
    }
    let all = format!("{stdout}\n{stderr}");
    match cli_error_code(&all) {
        Some(c) => Answer::Err(c),
        None => Answer::Other(all.chars().take(600).collect()),
    }
}

// ------------------------------------------------------------- load --

#[derive(Default)]
struct LoadState {
    acked: Vec<String>,
    /// Creates that failed: path -> code (ConnectionLoss etc.: outcome unknown).
    failed: Vec<(String, Code)>,
    reconnects: usize,
}

/// Sequential creates `/load/nNNNNNN` on one session over every node, from a thread,
/// tolerating ConnectionLoss (and reconnecting after expiry) until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<LoadState>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Load {
    fn start(connect: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(LoadState::default()));
        let (st, sp) = (state.clone(), stop.clone());
        let handle = thread::Builder::new()
            .name("reconfig-load".into())
            .spawn(move || {
                let acl = ids::open_acl_unsafe();
                let mut zk: Option<ZooKeeper> = None;
                let mut i = 0u64;
                while !sp.load(Ordering::Acquire) {
                    if zk.as_ref().map_or(true, |z| !z.state().is_alive()) {
                        if let Some(z) = zk.take() {
                            z.close();
                            st.lock().unwrap().reconnects += 1;
                        }
                        match ZooKeeper::connect(&connect, SESSION_MS, None) {
                            Ok(z) => zk = Some(z),
                            Err(_) => {
                                thread::sleep(Duration::from_millis(200));
                                continue;
                            }
                        }
                    }
                    i += 1;
                    let path = format!("{LOAD_DIR}/n{i:06}");
                    match zk.as_ref().unwrap().create(&path, Some(&b"x"[..]), &acl, CreateMode::Persistent) {
                        Ok(_) => st.lock().unwrap().acked.push(path),
                        Err(e) => {
                            st.lock().unwrap().failed.push((path, e.code));
                            thread::sleep(Duration::from_millis(100));
                        }
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                if let Some(z) = zk {
                    z.close();
                }
            })
            .expect("spawn load thread");
        Load { stop, state, handle: Some(handle) }
    }

    fn acked(&self) -> usize {
        self.state.lock().unwrap().acked.len()
    }

    fn finish(mut self) -> LoadState {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            h.join().expect("load thread panicked");
        }
        std::mem::take(&mut *self.state.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

// -------------------------------------------------------------- steps --

struct Steps {
    name: String,
    start: Instant,
    last: Instant,
    log: Vec<String>,
}

impl Steps {
    fn new(name: &str) -> Steps {
        let now = Instant::now();
        Steps { name: name.into(), start: now, last: now, log: Vec::new() }
    }
    fn done(&mut self, what: String) {
        let now = Instant::now();
        let line = format!("{what} [{:.1}s]", (now - self.last).as_secs_f64());
        if show() {
            eprintln!("[reconfig] {}: {line}", self.name);
        }
        self.log.push(line);
        self.last = now;
    }
    fn summary(&self) -> String {
        format!("{}: total {:.1}s\n  {}", self.name, self.start.elapsed().as_secs_f64(), self.log.join("\n  "))
    }
}

/// Sends a reconfig that must take effect: a committed answer whose text has `members`,
/// or ConnectionLoss (the leader may step down before answering; the agreement wait that
/// follows decides). Anything else panics.
fn reconfig_ok(ens: &Ensemble, issuer: Issuer, sid: u64, req: &Req, members: &BTreeMap<u64, PeerType>, what: &str) -> String {
    let (a, desc) = issue(ens, issuer, sid, Auth::Super, req);
    match &a {
        Answer::Committed(t) => {
            let c = parse_config(t).unwrap_or_else(|e| panic!("{what}: the reconfig answer is malformed: {e}\n{desc}"));
            assert_eq!(c.servers, expected_servers(ens, members), "{what}: the committed config has other members\n{desc}");
        }
        Answer::Err(Code::ConnectionLoss) => {}
        _ => panic!("{what}: `{}` through node {sid} answered {}\n{desc}\n{}", req.cli_line(), a.short(), ens.describe_all(40)),
    }
    a.short()
}

// ----------------------------------------------------------- scenario --

struct Scenario {
    name: &'static str,
    /// Implementations of sids 1..=6 (4, 5 join; 6 observes).
    imps: [Impl; 6],
    issuer: Issuer,
    /// The node the reconfigs go through (another staying node if it is removed).
    through: u64,
}

fn run_scenario(sc: Scenario) {
    init_client_props();
    let members = vec![
        MemberSpec::participant(1, sc.imps[0]),
        MemberSpec::participant(2, sc.imps[1]),
        MemberSpec::participant(3, sc.imps[2]),
        MemberSpec::joiner(4, sc.imps[3]),
        MemberSpec::joiner(5, sc.imps[4]),
        MemberSpec::observer(6, sc.imps[5]),
    ];
    let spec = base_spec(members, true);
    let _jvms = reserve_jvms(apache_nodes(&spec) + usize::from(sc.issuer == Issuer::JavaZkCli));
    let mut st = Steps::new(sc.name);
    let mut ens = Ensemble::new(spec);
    ens.start_all();
    let mut readers = Readers::default();
    use PeerType::{Observer as O, Participant as P};

    // 0. initial config, re-versioned by the first leader
    let mut members: BTreeMap<u64, PeerType> = [(1, P), (2, P), (3, P), (6, O)].into_iter().collect();
    let leader0 = wait_roles(&ens, &members, None, "start");
    let cfg0 = wait_config_agreement(&ens, &mut readers, &[1, 2, 3, 6], &members, Some(0), "initial config");
    assert!(
        cfg0.version >> 32 >= 1 && cfg0.version & 0xffff_ffff == 0,
        "the initial config must be re-versioned to the first NEWLEADER zxid (0x<epoch>00000000), got {:#x}",
        cfg0.version
    );
    wait_dynamic_files(&ens, &[1, 2, 3, 6], &cfg0, "initial config");
    st.done(format!("start: leader {leader0}, config version {:x}, files written", cfg0.version));

    {
        let zk = connect(&ens.connect_string_of(&[1, 2, 3, 6]));
        zk.create(LOAD_DIR, None, &ids::open_acl_unsafe(), CreateMode::Persistent).expect("create /load");
        zk.close();
    }
    let load = Load::start(ens.connect_string());
    assert!(wait_until(WAIT, || load.acked() >= 20), "the load made no progress\n{}", ens.describe_all(30));

    // 1. joiners 4 and 5
    ens.start_joiner(4);
    ens.start_joiner(5);
    // A joiner is a non-voting follower once synced with the leader.
    for j in [4, 5] {
        assert!(
            wait_until(WAIT, || ens.node(j).mode() == Some(Mode::Follower)),
            "joiner {j} does not serve as a (non-voting) follower: srvr {:?}\n{}",
            ens.node(j).four_letter("srvr"),
            ens.describe_all(40)
        );
    }
    st.done("joiners 4, 5 started and following".into());
    let through = sc.through;
    let before = load.acked();
    // A data watch on /zookeeper/config on every node of the old config: the reconfig
    // is a setData of that node, and each must fire (NodeDataChanged) once it applies.
    let (watch_tx, watch_rx) = std::sync::mpsc::channel::<(u64, i32, Option<String>)>();
    let mut watchers = Vec::new();
    for sid in [1u64, 2, 3, 6] {
        let zk = connect(&ens.connect_string_of(&[sid]));
        let tx = watch_tx.clone();
        let w: zookeeper::client::Watcher = Arc::new(move |e: &zookeeper::client::WatchedEvent| {
            let _ = tx.send((sid, e.event_type, e.path.clone()));
        });
        zk.get_config(Some(w)).unwrap_or_else(|e| panic!("config with a watch on {sid}: {e}"));
        watchers.push(zk);
    }
    members.insert(4, P);
    members.insert(5, P);
    let req = Req::add(&[ens.server_spec(4, P), ens.server_spec(5, P)]);
    let ans = reconfig_ok(&ens, sc.issuer, through, &req, &members, "add 4,5");
    let all6 = [1, 2, 3, 4, 5, 6];
    let cfg1 = wait_config_agreement(&ens, &mut readers, &all6, &members, Some(cfg0.version), "after adding 4,5");
    wait_dynamic_files(&ens, &all6, &cfg1, "after adding 4,5");
    let leader1 = wait_roles(&ens, &members, None, "after adding 4,5");
    assert_eq!(leader1, leader0, "adding servers must not change the leader");
    let mut fired = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while fired.len() < 4 && Instant::now() < deadline {
        if let Ok((sid, ty, path)) = watch_rx.recv_timeout(Duration::from_millis(200)) {
            assert_eq!(
                (ty, path.as_deref()),
                (zookeeper::proto::event_type::NODE_DATA_CHANGED, Some("/zookeeper/config")),
                "node {sid}: the reconfig must fire the data watch on /zookeeper/config"
            );
            fired.insert(sid);
        }
    }
    assert_eq!(fired.len(), 4, "data watches on /zookeeper/config fired only on {fired:?} of 1, 2, 3, 6");
    for zk in watchers {
        zk.close();
    }
    st.done(format!("`{}` -> {ans}; all 6 agree on {:x}; leader still {leader1}", req.cli_line(), cfg1.version));

    // 2. remove the leader and another original participant
    let other = [1, 2, 3].into_iter().find(|&s| s != leader1 && s != through).expect("a third original participant");
    let through = if through == leader1 { [2, 4, 5].into_iter().find(|&s| s != leader1 && s != other).unwrap() } else { through };
    members.remove(&leader1);
    members.remove(&other);
    let req = Req::remove(&[leader1, other]);
    let ans = reconfig_ok(&ens, sc.issuer, through, &req, &members, "remove the leader");
    let staying: Vec<u64> = members.keys().copied().collect();
    let cfg2 = wait_config_agreement(&ens, &mut readers, &staying, &members, Some(cfg1.version), "after removing the leader");
    let leader2 = wait_roles(&ens, &members, Some(leader1), "after removing the leader");
    // The removed servers activate the config too (and write its file); they are not
    // shut down but go on as non-voting followers of the new leader (upstream docs:
    // "We do not shut the server down automatically"), serving the new config.
    let mut with_removed = staying.clone();
    with_removed.extend([leader1, other]);
    wait_dynamic_files(&ens, &with_removed, &cfg2, "after removing the leader");
    for s in [leader1, other] {
        assert!(
            wait_until(WAIT, || ens.node(s).mode() == Some(Mode::Follower)),
            "removed server {s} does not go on as a non-voting follower: srvr {:?}\n{}",
            ens.node(s).four_letter("srvr"),
            ens.describe_all(40)
        );
    }
    let seen = wait_config_agreement(&ens, &mut readers, &with_removed, &members, Some(cfg1.version), "removed servers");
    assert_eq!(seen.version, cfg2.version, "the removed servers serve another config");
    st.done(format!(
        "`{}` -> {ans}; {staying:?} agree on {:x}; new leader {leader2}; removed {leader1}, {other} follow (non-voting) with that config",
        req.cli_line(),
        cfg2.version
    ));
    for s in [leader1, other] {
        readers.forget(s);
        ens.node_mut(s).stop(Duration::from_secs(10));
    }
    assert!(
        wait_until(WAIT, || load.acked() > before + 20),
        "the load made no progress through the reconfigs ({} acknowledged)\n{}",
        load.acked(),
        ens.describe_all(30)
    );

    // 3. the observer becomes a participant, then an observer again
    members.insert(6, P);
    let req = Req::add(&[ens.server_spec(6, P)]);
    let ans = reconfig_ok(&ens, sc.issuer, through, &req, &members, "observer to participant");
    let cfg3 = wait_config_agreement(&ens, &mut readers, &staying, &members, Some(cfg2.version), "observer 6 -> participant");
    wait_dynamic_files(&ens, &staying, &cfg3, "observer 6 -> participant");
    let leader3 = wait_roles(&ens, &members, None, "observer 6 -> participant");
    st.done(format!("`{}` -> {ans}; agree on {:x}; leader {leader3}, 6 follows", req.cli_line(), cfg3.version));

    members.insert(6, O);
    let req = Req::add(&[ens.server_spec(6, O)]);
    let ans = reconfig_ok(&ens, sc.issuer, through, &req, &members, "participant to observer");
    let cfg4 = wait_config_agreement(&ens, &mut readers, &staying, &members, Some(cfg3.version), "6 -> observer again");
    wait_dynamic_files(&ens, &staying, &cfg4, "6 -> observer again");
    let leader4 = wait_roles(&ens, &members, None, "6 -> observer again");
    st.done(format!("`{}` -> {ans}; agree on {:x}; leader {leader4}, 6 observes", req.cli_line(), cfg4.version));

    // A member restarts on the files the reconfigs left (zoo.cfg -> dynamicConfigFile)
    // and rejoins with the same config.
    let restarted = staying.iter().copied().find(|&s| s != leader4 && s != through && members[&s] == P).expect("a follower to restart");
    ens.node_mut(restarted).restart();
    let leader5 = wait_roles(&ens, &members, None, "after restarting a follower");
    assert_eq!(leader5, leader4, "restarting follower {restarted} changed the leader");
    readers.forget(restarted);
    let cfg5 = wait_config_agreement(&ens, &mut readers, &staying, &members, None, "after restarting a follower");
    assert_eq!(cfg5.version, cfg4.version, "node {restarted} restarted: the config version changed");
    st.done(format!("follower {restarted} restarted (SIGKILL) on its dynamic config: rejoined, config {:x}", cfg5.version));

    // 4. nothing acknowledged is lost
    let before = load.acked();
    assert!(wait_until(WAIT, || load.acked() > before + 20), "the load stalled after the last reconfig\n{}", ens.describe_all(30));
    let ls = load.finish();
    let mut sets: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for &sid in &staying {
        let mut last = String::new();
        let ok = wait_until(WAIT, || match readers.load_children(&ens, sid) {
            Ok(s) => {
                sets.insert(sid, s);
                true
            }
            Err(e) => {
                last = e;
                false
            }
        });
        assert!(ok, "node {sid}: cannot read {LOAD_DIR}: {last}\n{}", ens.describe_all(30));
    }
    for (sid, set) in &sets {
        let lost: Vec<&String> = ls.acked.iter().filter(|p| !set.contains(p.trim_start_matches("/load/"))).collect();
        assert!(lost.is_empty(), "node {sid} lacks {} acknowledged znodes, e.g. {:?}\n{}", lost.len(), &lost[..lost.len().min(5)], ens.describe_all(30));
    }
    let first = sets.values().next().unwrap();
    for (sid, set) in &sets {
        assert_eq!(set, first, "node {sid}'s {LOAD_DIR} children differ from node {}'s", sets.keys().next().unwrap());
    }
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for (_, c) in &ls.failed {
        *codes.entry(format!("{c:?}")).or_default() += 1;
    }
    st.done(format!(
        "load: {} acknowledged, all on {staying:?}; {} failed {codes:?} ({} of them present), {} reconnects",
        ls.acked.len(),
        ls.failed.len(),
        ls.failed.iter().filter(|(p, _)| first.contains(p.trim_start_matches("/load/"))).count(),
        ls.reconnects
    ));
    readers.close_all();
    eprintln!("[reconfig] {}", st.summary());
}

use Impl::{Apache as J, Ours as R};

#[test]
fn apache_only() {
    run_scenario(Scenario { name: "apache_only", imps: [J, J, J, J, J, J], issuer: Issuer::Library, through: 2 });
}

#[test]
fn rust_only() {
    run_scenario(Scenario { name: "rust_only", imps: [R, R, R, R, R, R], issuer: Issuer::Library, through: 2 });
}

#[test]
fn mixed_reconfig_by_apache_zkcli_against_rust_node() {
    run_scenario(Scenario {
        name: "mixed_reconfig_by_apache_zkcli_against_rust_node",
        imps: [J, R, J, R, J, R],
        issuer: Issuer::JavaZkCli,
        through: 2,
    });
}

#[test]
fn mixed_reconfig_by_our_zkcli_against_java_node() {
    run_scenario(Scenario {
        name: "mixed_reconfig_by_our_zkcli_against_java_node",
        imps: [R, J, R, J, R, J],
        issuer: Issuer::OurZkCli,
        through: 2,
    });
}

// -------------------------------------------------------- bad requests --

/// What must come back, besides "the same as Apache".
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A documented error code; the config must be unchanged.
    Code(Code),
    /// Some error (which one: Apache's); the config must be unchanged.
    AnyError,
    /// Apache commits: same members, a new version.
    CommittedSameMembers,
}

struct BadStep {
    name: &'static str,
    auth: Auth,
    req: Req,
    expect: Expect,
    /// On the one-node ensemble with reconfigEnabled=false.
    disabled: bool,
}

/// Ports no server listens on, for servers that do not run.
struct Ghosts(BTreeMap<u64, (u16, u16, u16)>);

impl Ghosts {
    fn new() -> Ghosts {
        Ghosts([7, 8, 9].into_iter().map(|s| (s, (free_port(), free_port(), free_port()))).collect())
    }
    fn spec(&self, sid: u64) -> String {
        let (q, e, c) = self.0[&sid];
        format!("server.{sid}=127.0.0.1:{q}:{e}:participant;127.0.0.1:{c}")
    }
    fn spec_without_client(&self, sid: u64) -> String {
        let (q, e, _) = self.0[&sid];
        format!("server.{sid}=127.0.0.1:{q}:{e}:participant")
    }
    fn observer_only(&self, sid: u64) -> String {
        let (q, e, c) = self.0[&sid];
        format!("server.{sid}=127.0.0.1:{q}:{e}:observer;127.0.0.1:{c}")
    }
}

fn bad_steps(g: &Ghosts, stale_from: i64) -> Vec<BadStep> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let step = |name, auth, req, expect| BadStep { name, auth, req, expect, disabled: false };
    vec![
        step("not super (no auth)", Auth::None, Req { remove: s(&["99"]), from: -1, ..Default::default() }, Expect::Code(Code::NoAuth)),
        step("not super (digest bob)", Auth::OtherDigest, Req { remove: s(&["99"]), from: -1, ..Default::default() }, Expect::Code(Code::NoAuth)),
        // The ACL is checked last: bad arguments win over a missing permission.
        step("not super, no voters left", Auth::None, Req { remove: s(&["1", "2", "3"]), from: -1, ..Default::default() }, Expect::Code(Code::BadArguments)),
        step("no voters left", Auth::Super, Req { remove: s(&["1", "2", "3"]), from: -1, ..Default::default() }, Expect::Code(Code::BadArguments)),
        step("observer only (non-incremental)", Auth::Super, Req { members: vec![g.observer_only(7)], from: -1, ..Default::default() }, Expect::AnyError),
        step("joiner without client port", Auth::Super, Req { add: vec![g.spec_without_client(7)], from: -1, ..Default::default() }, Expect::Code(Code::BadArguments)),
        step("non-numeric server id", Auth::Super, Req { remove: s(&["abc"]), from: -1, ..Default::default() }, Expect::AnyError),
        step(
            "three servers that do not run",
            Auth::Super,
            Req { add: vec![g.spec(7), g.spec(8), g.spec(9)], from: -1, ..Default::default() },
            Expect::Code(Code::NewConfigNoQuorum),
        ),
        step(
            "remove 2,3, add one that does not run",
            Auth::Super,
            Req { add: vec![g.spec(7)], remove: s(&["2", "3"]), from: -1, ..Default::default() },
            Expect::Code(Code::NewConfigNoQuorum),
        ),
        step("unknown server id", Auth::Super, Req { remove: s(&["99"]), from: -1, ..Default::default() }, Expect::CommittedSameMembers),
        // The version before the previous step's commit.
        step("stale fromConfig", Auth::Super, Req { remove: s(&["99"]), from: stale_from, ..Default::default() }, Expect::Code(Code::BadVersion)),
        BadStep {
            name: "reconfigEnabled=false",
            auth: Auth::Super,
            req: Req { remove: s(&["99"]), from: -1, ..Default::default() },
            expect: Expect::Code(Code::ReconfigDisabled),
            disabled: true,
        },
    ]
}

/// The result of one bad step, in a form that compares across implementations.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BadResult {
    answer: String,
    /// "unchanged", "same members, new version", or what changed.
    config: String,
}

fn read_config_on(ens: &Ensemble, readers: &mut Readers, sid: u64) -> Config {
    let mut last = String::new();
    let mut out = None;
    let ok = wait_until(WAIT, || match readers.config(ens, sid).and_then(|(t, _)| parse_config(&t)) {
        Ok(c) => {
            out = Some(c);
            true
        }
        Err(e) => {
            last = e;
            false
        }
    });
    assert!(ok, "node {sid}: cannot read /zookeeper/config: {last}\n{}", ens.describe_all(30));
    out.unwrap()
}

/// Runs the bad steps against one implementation; returns step name -> result and the
/// Java zkCli transcripts (see [`zkcli_transcripts`]). Deviations from the documented
/// answers go to `problems`.
fn run_bad_requests(imp: Impl, problems: &mut Vec<String>) -> (Vec<(String, BadResult)>, (String, String)) {
    let tag = format!("{imp:?}");
    let spec = base_spec((1..=3).map(|s| MemberSpec::participant(s, imp)).collect(), true);
    let disabled_spec = base_spec(vec![MemberSpec::participant(1, imp)], false);
    let mut ens = Ensemble::new(spec);
    ens.start_all();
    let mut dis = Ensemble::new(disabled_spec);
    dis.start_all();
    let all: BTreeMap<u64, PeerType> = (1..=3).map(|s| (s, PeerType::Participant)).collect();
    wait_roles(&ens, &all, None, &format!("{tag}: bad-request ensemble"));
    wait_roles(&dis, &[(1, PeerType::Participant)].into_iter().collect(), None, &format!("{tag}: reconfig-disabled node"));
    let mut readers = Readers::default();
    let mut dreaders = Readers::default();
    // Through a follower: the request is forwarded to the leader.
    let leader = ens.leader().unwrap();
    let through = (1..=3).find(|&s| s != leader).unwrap();
    let c0 = wait_config_agreement(&ens, &mut readers, &[1, 2, 3], &all, None, &format!("{tag}: initial"));
    let dcfg = read_config_on(&dis, &mut dreaders, 1);
    let ghosts = Ghosts::new();
    let mut results = Vec::new();
    let mut cur = c0.clone();
    // The stale version is the initial one, which "unknown server id" supersedes first.
    for step in bad_steps(&ghosts, c0.version as i64) {
        let (e, r, before) = if step.disabled { (&dis, &mut dreaders, dcfg.clone()) } else { (&ens, &mut readers, cur.clone()) };
        let (ans, desc) = issue(e, Issuer::Library, if step.disabled { 1 } else { through }, step.auth, &step.req);
        let after = read_config_on(e, r, if step.disabled { 1 } else { through });
        let config = if after == before {
            "unchanged".to_string()
        } else if after.servers == before.servers {
            "same members, new version".to_string()
        } else {
            format!("CHANGED to {:x} [{}]", after.version, members_str(&after.members()))
        };
        let ok = match step.expect {
            Expect::Code(c) => ans == Answer::Err(c) && config == "unchanged",
            Expect::AnyError => matches!(ans, Answer::Err(_)) && config == "unchanged",
            Expect::CommittedSameMembers => matches!(ans, Answer::Committed(_)) && config == "same members, new version",
        };
        if !ok {
            problems.push(format!("{tag}: {}: `{}` expected {:?}, got {} with config {config} ({desc})", step.name, step.req.cli_line(), step.expect, ans.short()));
        }
        let answer = match &ans {
            Answer::Committed(_) => "committed".to_string(),
            a => a.short(),
        };
        if !step.disabled {
            cur = after;
        }
        results.push((step.name.to_string(), BadResult { answer, config }));
    }
    assert_eq!(dcfg.version, 0, "{tag}: with reconfigEnabled=false the config version stays 0: {}", dcfg.raw);

    // Apache's Java zkCli against this ensemble: config outputs and the bad reconfigs.
    let transcripts = zkcli_transcripts(&ens, &dis, through, &ghosts, Issuer::JavaZkCli);
    readers.close_all();
    dreaders.close_all();
    (results, transcripts)
}

/// One interactive zkCli session through node `through`: `config`, `config -c`,
/// `config -s`, a reconfig without auth, then as super every bad reconfig of
/// [`bad_steps`] (zkCli syntax), a good one, `config -c`; and one on the
/// reconfigEnabled=false node. Returns the normalised transcripts (main, disabled).
fn zkcli_transcripts(ens: &Ensemble, dis: &Ensemble, through: u64, ghosts: &Ghosts, shell: Issuer) -> (String, String) {
    let script = vec![
        "config".to_string(),
        "config -c".into(),
        "config -s".into(),
        "reconfig -remove 99".into(),
        format!("addauth digest {SUPER}"),
        "reconfig -remove 1,2,3".into(),
        "reconfig -v 1 -remove 99".into(),
        format!("reconfig -add {}", ghosts.spec_without_client(7)),
        format!("reconfig -add {},{},{}", ghosts.spec(7), ghosts.spec(8), ghosts.spec(9)),
        "reconfig -remove abc".into(),
        format!("reconfig -members {}", ghosts.observer_only(7)),
        "reconfig -remove 99".into(),
        "config -c".into(),
        "quit".into(),
    ];
    let mut symbols: Vec<(String, String)> = Vec::new();
    for n in ens.nodes() {
        symbols.push((n.client_port().to_string(), format!("C{}", n.sid())));
        symbols.push((n.quorum_port().to_string(), format!("Q{}", n.sid())));
        symbols.push((n.election_port().to_string(), format!("E{}", n.sid())));
    }
    for (sid, (q, e, c)) in &ghosts.0 {
        symbols.push((c.to_string(), format!("C{sid}")));
        symbols.push((q.to_string(), format!("Q{sid}")));
        symbols.push((e.to_string(), format!("E{sid}")));
    }
    let out = run_zkcli(shell, &ens.node(through).connect_string(), &script);
    let main = normalise_cli(&out, &symbols);
    let dscript = [format!("addauth digest {SUPER}"), "reconfig -remove 99".into(), "config".into(), "quit".into()];
    let n = dis.node(1);
    let dsymbols = [
        (n.client_port().to_string(), "C1".to_string()),
        (n.quorum_port().to_string(), "Q1".to_string()),
        (n.election_port().to_string(), "E1".to_string()),
    ];
    let dout = run_zkcli(shell, &n.connect_string(), &dscript);
    (main, normalise_cli(&dout, &dsymbols))
}

/// zkCli output without banners and log noise; ports → `C1`/`Q1`/`E1`, config versions
/// (zxids) → `V0`, `V1`, ... in order of appearance, times → `T`, the `config -c` host
/// list sorted (upstream prints it in hash order). stdout and stderr separately (their
/// interleaving is not defined).
fn normalise_cli(out: &Output, symbols: &[(String, String)]) -> String {
    let versions = std::cell::RefCell::new(Vec::<u64>::new());
    let exception_re = Regex::new(r"^[A-Za-z.$]*Exception: ").unwrap();
    let noise = |l: &str| {
        l.trim().is_empty()
            || l.starts_with("Connecting to ")
            || l.starts_with("WATCHER::")
            || l.starts_with("WatchedEvent state:")
            || l.starts_with("Welcome to ZooKeeper!")
            || l.starts_with("JLine support is")
            || l.starts_with("SLF4J:")
            || l.starts_with("\tat ")
            || l.starts_with('[')
            // the WARN of a send thread closing races with `quit`: its exception line
            || exception_re.is_match(l)
    };
    let ver_re = Regex::new(r"\b(?:0x)?([0-9a-f]{9,16})\b").unwrap();
    let port_re = Regex::new(r"\b\d{4,5}\b").unwrap();
    let norm = |l: &str| -> String {
        let mut s = port_re
            .replace_all(l, |c: &regex::Captures| symbols.iter().find(|(p, _)| p == &c[0]).map_or(c[0].to_string(), |(_, n)| n.clone()))
            .into_owned();
        s = ver_re
            .replace_all(&s, |c: &regex::Captures| {
                let Ok(v) = u64::from_str_radix(&c[1], 16) else { return c[0].to_string() };
                let mut vs = versions.borrow_mut();
                let i = vs.iter().position(|x| *x == v).unwrap_or_else(|| {
                    vs.push(v);
                    vs.len() - 1
                });
                format!("V{i}")
            })
            .into_owned();
        if s.starts_with("mtime = ") {
            s = "mtime = T".into();
        }
        // `config -c`: "<version> host:port,host:port,..."
        if let Some((v, hosts)) = s.split_once(' ') {
            if v.starts_with('V') && hosts.contains("127.0.0.1:") && !hosts.contains(' ') {
                let mut h: Vec<&str> = hosts.split(',').collect();
                h.sort();
                s = format!("{v} {}", h.join(","));
            }
        }
        s
    };
    let mut t = String::new();
    for (name, b) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        for l in String::from_utf8_lossy(b).lines().filter(|l| !noise(l)) {
            t.push_str(&format!("{name}: {}\n", norm(l)));
        }
    }
    t.push_str(&format!("exit: {:?}\n", out.status.code()));
    t
}

#[test]
fn bad_requests() {
    init_client_props();
    // 3 + 1 servers at a time, plus one zkCli.
    let _jvms = reserve_jvms(5);
    let t0 = Instant::now();
    let mut apache_problems = Vec::new();
    let (apache, (apache_cli, apache_dcli)) = run_bad_requests(Impl::Apache, &mut apache_problems);
    let t_apache = t0.elapsed();
    let mut report = String::new();
    for (name, r) in &apache {
        report.push_str(&format!("  {name}: {} / config {}\n", r.answer, r.config));
    }
    if show() {
        eprintln!("[reconfig] bad_requests, Apache:\n{report}===== Java zkCli on Apache =====\n{apache_cli}===== reconfigEnabled=false =====\n{apache_dcli}");
    }
    assert!(apache_problems.is_empty(), "Apache does not answer as documented (the test is wrong):\n{}\n{report}", apache_problems.join("\n"));
    for key in ["Insufficient permission : ", "Arguments are not valid : ", "version No is not valid : ", "No quorum of new config", "Committed new configuration:", "KeeperErrorCode = MarshallingError"] {
        assert!(apache_cli.contains(key), "the Java zkCli reference lacks {key:?}:\n{apache_cli}");
    }
    assert!(apache_dcli.contains("KeeperErrorCode = Reconfig is disabled"), "{apache_dcli}");

    let mut problems = Vec::new();
    let t1 = Instant::now();
    let (ours, (ours_cli, ours_dcli)) = run_bad_requests(Impl::Ours, &mut problems);
    for ((name, a), (_, o)) in apache.iter().zip(&ours) {
        if a != o {
            problems.push(format!("{name}: Apache {a:?}, ours {o:?}"));
        }
    }
    if show() {
        eprintln!("===== Java zkCli on ours =====\n{ours_cli}===== reconfigEnabled=false =====\n{ours_dcli}");
    }
    for (what, want, got) in [("", &apache_cli, &ours_cli), (" (reconfigEnabled=false)", &apache_dcli, &ours_dcli)] {
        if want != got {
            problems.push(format!("Java zkCli{what}: ours differs from Apache:\n{}", line_diff("Apache", want, "ours", got)));
        }
    }
    eprintln!(
        "[reconfig] bad_requests: Apache {:.1}s, ours {:.1}s; Apache's answers:\n{report}",
        t_apache.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "bad reconfig requests: ours differs from Apache:\n{}\n--- Apache's answers ---\n{report}", problems.join("\n\n"));
}

/// Our `zk-cli` against an Apache ensemble: the zkCli session of [`bad_requests`]
/// (config outputs, the error texts of every failed reconfig, a committed one) must be
/// Java zkCli's. Client-side only: both shells talk to the same Apache servers.
#[test]
fn our_zkcli_reconfig_transcript_matches_java_zkcli() {
    init_client_props();
    let _jvms = reserve_jvms(5);
    let apache = || (1..=3).map(|s| MemberSpec::participant(s, Impl::Apache)).collect::<Vec<_>>();
    let mut ens = Ensemble::new(base_spec(apache(), true));
    ens.start_all();
    let mut dis = Ensemble::new(base_spec(vec![MemberSpec::participant(1, Impl::Apache)], false));
    dis.start_all();
    let all: BTreeMap<u64, PeerType> = (1..=3).map(|s| (s, PeerType::Participant)).collect();
    let leader = wait_roles(&ens, &all, None, "zkCli ensemble");
    wait_roles(&dis, &[(1, PeerType::Participant)].into_iter().collect(), None, "reconfig-disabled node");
    let through = (1..=3).find(|&s| s != leader).unwrap();
    let ghosts = Ghosts::new();
    let (java, java_d) = zkcli_transcripts(&ens, &dis, through, &ghosts, Issuer::JavaZkCli);
    let (ours, ours_d) = zkcli_transcripts(&ens, &dis, through, &ghosts, Issuer::OurZkCli);
    if show() {
        eprintln!("===== Java zkCli =====\n{java}{java_d}===== our zk-cli =====\n{ours}{ours_d}");
    }
    assert!(java.contains("Committed new configuration:") && java.contains("Insufficient permission"), "{java}");
    let mut problems = Vec::new();
    for (what, want, got) in [("", &java, &ours), (" (reconfigEnabled=false)", &java_d, &ours_d)] {
        if want != got {
            problems.push(format!("our zk-cli{what} differs from Java zkCli:\n{}", line_diff("Java zkCli", want, "our zk-cli", got)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
