//! The ensemble under test: Apache ZooKeeper 3.8 peers (`QuorumPeerMain`) and our
//! `zk-server` peers, any mix, and the network between them, in one of two modes
//! ([`NetMode`]):
//!
//! * `netns`: every peer in a network namespace of its own with its own address
//!   ([`super::netns`]); a cut is a pair of blackhole routes and stops every packet.
//! * `proxy`: every peer on loopback, with a [`LinkProxy`] on every directed link
//!   between two peers (quorum and election port); needs no root, but election
//!   callbacks to an initiator's advertised address bypass the proxies.
//!
//! ```text
//! <dir>/nodeN/zoo.cfg     proxy: own server.N line with the real ports, the others' through proxies
//! <dir>/nodeN/data/       dataDir (myid, version-2/)
//! <dir>/nodeN/server.log  stdout+stderr of every run, appended; "[zk-chaos]" marks events
//! ```

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::netns::{self, Network};
use super::proxy::LinkProxy;
use crate::bench::servers::{four_letter_word, free_port, guard_child, Kind, ServerPrograms};

/// How the peers are connected and links are cut (`--net`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetMode {
    /// Link proxies on loopback: no root needed, cuts miss election callbacks.
    Proxy,
    /// One network namespace per peer, cuts by blackhole routes: full partitions.
    Netns,
}

impl NetMode {
    /// `proxy`, `netns`, or `auto` (None: decide with [`NetMode::auto`]).
    pub fn parse(s: &str) -> Result<Option<NetMode>, String> {
        match s {
            "proxy" => Ok(Some(NetMode::Proxy)),
            "netns" => Ok(Some(NetMode::Netns)),
            "auto" => Ok(None),
            _ => Err(format!("unknown --net {s:?} (netns, proxy or auto)")),
        }
    }

    /// netns where this host allows it (root and a working `ip netns`), else proxy and
    /// the reason, which the caller should show: proxy cuts are not full partitions.
    pub fn auto() -> (NetMode, Option<String>) {
        match netns::unavailable() {
            None => (NetMode::Netns, None),
            Some(why) => (NetMode::Proxy, Some(why)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NetMode::Proxy => "proxy",
            NetMode::Netns => "netns",
        }
    }
}

const QUORUM_PEER_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
/// A smaller heap than the benchmarks': up to five JVMs share the machine.
const APACHE_JVM_FLAGS: &[&str] = &["-Xmx512m", "-XX:+UseSerialGC", "-Djava.net.preferIPv4Stack=true"];
const APACHE_LOG_FLAGS: &[&str] = &[
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.logFile=System.out",
];
const OURS_RUST_LOG: &str = "info";

/// zoo.cfg timing of the chaos ensembles: short ticks so that faults resolve quickly
/// and many fit in a run; the ratios are upstream's defaults (initLimit 10, syncLimit 5).
pub const TICK_TIME_MS: u32 = 500;
/// Small, so that snapshots are taken (and restored after kills) during a run.
pub const SNAP_COUNT: u32 = 2000;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGSTOP: i32 = 19;
const SIGCONT: i32 = 18;

pub struct Node {
    pub sid: usize,
    pub kind: Kind,
    client: SocketAddr,
    dir: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    pub fn client_addr(&self) -> SocketAddr {
        self.client
    }
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
    pub fn is_paused(&self) -> bool {
        self.paused
    }
    pub fn log_path(&self) -> &Path {
        &self.log
    }
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn mark(&self, what: &str) {
        if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(f, "[zk-chaos] {what}");
        }
    }

    /// The last lines of its log, for a report.
    pub fn log_tail(&self, lines: usize) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let v: Vec<&str> = s.lines().filter(|l| !l.starts_with("\tat ")).collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }
}

/// Per ordered pair (from, to): the proxies for the quorum and the election port.
struct Link {
    from: usize,
    to: usize,
    quorum: LinkProxy,
    election: LinkProxy,
}

enum Net {
    Proxies(Vec<Link>),
    Namespaces(Network),
}

pub struct Cluster {
    programs: ServerPrograms,
    pub nodes: Vec<Node>,
    net: Net,
}

impl Cluster {
    /// Writes the configs and builds the network (proxies or namespaces); no peer runs yet.
    pub fn new(kinds: &[Kind], programs: &ServerPrograms, dir: &Path, mode: NetMode) -> Result<Cluster, String> {
        match mode {
            NetMode::Proxy => Cluster::with_proxies(kinds, programs, dir),
            NetMode::Netns => Cluster::with_namespaces(kinds, programs, dir),
        }
    }

    fn with_namespaces(kinds: &[Kind], programs: &ServerPrograms, dir: &Path) -> Result<Cluster, String> {
        let n = kinds.len();
        let net = Network::create(n)?;
        let mut servers = String::new();
        for sid in 1..=n {
            let ip = net.plan.peer_ip(sid);
            let _ = writeln!(servers, "server.{sid}={ip}:{}:{};{ip}:{}", netns::QUORUM_PORT, netns::ELECTION_PORT, netns::CLIENT_PORT);
        }
        let mut nodes = Vec::new();
        for sid in 1..=n {
            let ip = net.plan.peer_ip(sid);
            let header = format!("# Written by zk-chaos: peer {sid} runs in network namespace {}.\n", net.plan.netns(sid));
            let client = SocketAddr::from((ip, netns::CLIENT_PORT));
            nodes.push(write_node(dir, sid, kinds[sid - 1], client, &header, &servers)?);
        }
        Ok(Cluster { programs: programs.clone(), nodes, net: Net::Namespaces(net) })
    }

    fn with_proxies(kinds: &[Kind], programs: &ServerPrograms, dir: &Path) -> Result<Cluster, String> {
        let n = kinds.len();
        let mut real = Vec::new();
        for _ in 0..n {
            real.push((free_port()?, free_port()?, free_port()?));
        }
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut links = Vec::new();
        let mut via = vec![vec![(0u16, 0u16); n + 1]; n + 1];
        for from in 1..=n {
            for to in 1..=n {
                if from == to {
                    continue;
                }
                let (_, q, e) = real[to - 1];
                let (pq, pe) = (free_port()?, free_port()?);
                let quorum = LinkProxy::start(&format!("{from}->{to}:quorum"), addr(pq), addr(q))?;
                let election = LinkProxy::start(&format!("{from}->{to}:election"), addr(pe), addr(e))?;
                via[from][to] = (pq, pe);
                links.push(Link { from, to, quorum, election });
            }
        }
        let mut nodes = Vec::new();
        for sid in 1..=n {
            let mut servers = String::new();
            for other in 1..=n {
                let (c, q, e) = real[other - 1];
                let (q, e) = if other == sid { (q, e) } else { via[sid][other] };
                let _ = writeln!(servers, "server.{other}=127.0.0.1:{q}:{e};127.0.0.1:{c}");
            }
            let header = "# Written by zk-chaos: the other peers are reached through its link proxies.\n";
            nodes.push(write_node(dir, sid, kinds[sid - 1], addr(real[sid - 1].0), header, &servers)?);
        }
        Ok(Cluster { programs: programs.clone(), nodes, net: Net::Proxies(links) })
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, sid: usize) -> &Node {
        &self.nodes[sid - 1]
    }

    /// `host:port,...` of every peer, for clients.
    pub fn connect_string(&self) -> String {
        self.nodes.iter().map(|n| n.client_addr().to_string()).collect::<Vec<_>>().join(",")
    }

    fn command(&self, n: &Node) -> Command {
        match n.kind {
            Kind::Apache => {
                let mut c = Command::new(&self.programs.java);
                c.args(APACHE_JVM_FLAGS)
                    .arg(format!("-Dzookeeper.log.dir={}", n.dir.display()))
                    .args(APACHE_LOG_FLAGS)
                    .arg("-cp")
                    .arg(self.programs.apache_classpath())
                    .arg(QUORUM_PEER_MAIN)
                    .arg(&n.cfg);
                c
            }
            Kind::Ours => {
                let mut c = Command::new(&self.programs.ours);
                c.env("RUST_LOG", std::env::var("ZKCHAOS_RUST_LOG").unwrap_or_else(|_| OURS_RUST_LOG.into())).arg(&n.cfg);
                c
            }
        }
    }

    pub fn start(&mut self, sid: usize) -> Result<(), String> {
        let mut cmd = self.command(self.node(sid));
        if let Net::Namespaces(net) = &self.net {
            cmd = net.wrap(sid, &cmd);
        }
        let n = &mut self.nodes[sid - 1];
        if n.child.is_some() {
            return Ok(());
        }
        n.mark("start");
        let logf = fs::OpenOptions::new().create(true).append(true).open(&n.log).map_err(|e| format!("cannot open {}: {e}", n.log.display()))?;
        let logf2 = logf.try_clone().map_err(|e| format!("cannot dup the log file: {e}"))?;
        cmd.current_dir(&n.dir).stdin(Stdio::null()).stdout(logf).stderr(logf2);
        guard_child(&mut cmd);
        let child = cmd.spawn().map_err(|e| format!("cannot start {} peer {sid}: {e}", n.kind.name()))?;
        netns::register_child(child.id());
        n.child = Some(child);
        n.paused = false;
        Ok(())
    }

    /// kill -9.
    pub fn kill(&mut self, sid: usize) {
        let n = &mut self.nodes[sid - 1];
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            netns::unregister_child(c.id());
            n.mark("kill -9");
        }
        n.paused = false;
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub fn pause(&mut self, sid: usize) {
        let n = &mut self.nodes[sid - 1];
        if let Some(c) = &n.child {
            n.mark("SIGSTOP");
            // SAFETY: plain syscall on our own child's pid.
            unsafe { kill(c.id() as i32, SIGSTOP) };
            n.paused = true;
        }
    }

    pub fn resume(&mut self, sid: usize) {
        let n = &mut self.nodes[sid - 1];
        if let Some(c) = &n.child {
            // SAFETY: as in pause.
            unsafe { kill(c.id() as i32, SIGCONT) };
            n.mark("SIGCONT");
        }
        n.paused = false;
    }

    /// Cuts (both directions, both ports) every link between a member of `a` and one of
    /// `b`: in netns mode every packet between them, in proxy mode what goes through the
    /// proxies.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) -> Result<(), String> {
        match &mut self.net {
            Net::Proxies(links) => {
                for l in links.iter() {
                    if (a.contains(&l.from) && b.contains(&l.to)) || (b.contains(&l.from) && a.contains(&l.to)) {
                        l.quorum.cut();
                        l.election.cut();
                    }
                }
            }
            Net::Namespaces(net) => net.cut(&netns::pairs_between(a, b)).map_err(|e| format!("cutting {a:?} | {b:?}: {e}"))?,
        }
        for n in &self.nodes {
            n.mark(&format!("partition {a:?} | {b:?}"));
        }
        Ok(())
    }

    pub fn heal(&mut self) -> Result<(), String> {
        match &mut self.net {
            Net::Proxies(links) => {
                for l in links.iter() {
                    l.quorum.heal();
                    l.election.heal();
                }
            }
            Net::Namespaces(net) => net.heal().map_err(|e| format!("healing: {e}"))?,
        }
        for n in &self.nodes {
            n.mark("heal");
        }
        Ok(())
    }

    /// Which links are cut, as "from->to" (proxies) or "a<->b" (namespaces), for reports.
    pub fn cut_links(&self) -> Vec<String> {
        match &self.net {
            Net::Proxies(links) => links.iter().filter(|l| l.quorum.is_cut()).map(|l| format!("{}->{}", l.from, l.to)).collect(),
            Net::Namespaces(net) => net.cuts().iter().map(|(a, b)| format!("{a}<->{b}")).collect(),
        }
    }

    /// What the network is, for the report.
    pub fn describe_net(&self) -> String {
        match &self.net {
            Net::Proxies(links) => format!("proxy: peers on 127.0.0.1, {} link proxies (election callbacks bypass them)", links.len() * 2),
            Net::Namespaces(net) => format!(
                "netns: one namespace per peer ({}..{}), peers at {}..{}, bridge {} at {}; cuts are blackhole routes",
                net.plan.netns(1),
                net.plan.netns(self.nodes.len()),
                net.plan.peer_ip(1),
                net.plan.peer_ip(self.nodes.len()),
                net.plan.bridge(),
                net.plan.bridge_ip()
            ),
        }
    }

    /// Stops every peer and removes the namespaces (netns mode); an error names what
    /// was left behind. Proxies go with the cluster.
    pub fn shut_down(&mut self) -> Result<(), String> {
        self.stop_all();
        match &mut self.net {
            Net::Proxies(_) => Ok(()),
            Net::Namespaces(net) => net.teardown(),
        }
    }

    /// Exits of peers that should be running (a crash is a finding).
    pub fn check_alive(&mut self) -> Result<(), String> {
        for n in &mut self.nodes {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    n.child = None;
                    return Err(format!("{} peer {} exited by itself ({st})\n{}", n.kind.name(), n.sid, n.log_tail(30)));
                }
            }
        }
        Ok(())
    }

    /// `srvr`'s Mode of a peer, if it answers and serves.
    pub fn mode(&self, sid: usize) -> Option<String> {
        let n = self.node(sid);
        if !n.is_running() || n.paused {
            return None;
        }
        let a = four_letter_word(n.client_addr(), "srvr", Duration::from_secs(1)).ok()?;
        a.lines().find_map(|l| l.strip_prefix("Mode: ")).map(|m| m.trim().to_owned())
    }

    /// The sid of the peer that says it leads, if exactly one does.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<usize> = (1..=self.size()).filter(|&s| self.mode(s).as_deref() == Some("leader")).collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// Waits until every running, unpaused peer serves as leader or follower with one
    /// leader among them.
    pub fn wait_serving(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            let modes: Vec<(usize, Option<String>)> =
                self.nodes.iter().filter(|n| n.is_running() && !n.paused).map(|n| (n.sid, self.mode(n.sid))).collect();
            let leaders = modes.iter().filter(|(_, m)| m.as_deref() == Some("leader")).count();
            if leaders == 1 && modes.iter().all(|(_, m)| matches!(m.as_deref(), Some("leader") | Some("follower"))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tails: Vec<String> = self.nodes.iter().map(|n| format!("--- peer {} ({}) ---\n{}", n.sid, n.kind.name(), n.log_tail(15))).collect();
                return Err(format!("ensemble not serving within {timeout:?}: modes {modes:?}\n{}", tails.join("\n")));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Keeps the newest 3 snapshots and the logs they need on every peer, as upstream's
    /// autopurge would (whose interval is at least an hour: too slow for a run that
    /// writes gigabytes in 30 minutes).
    pub fn purge(&self) {
        for n in &self.nodes {
            let d = n.data_dir();
            if let Err(e) = crate::server::purge_txn_log::purge(&d, &d, 3) {
                log::warn!("purging {}: {e}", d.display());
            }
        }
    }

    pub fn stop_all(&mut self) {
        for sid in 1..=self.size() {
            if self.nodes[sid - 1].paused {
                self.resume(sid);
            }
            self.kill(sid);
        }
    }
}

/// Writes `<dir>/node<sid>/` (myid, zoo.cfg) and returns the node.
fn write_node(dir: &Path, sid: usize, kind: Kind, client: SocketAddr, header: &str, servers: &str) -> Result<Node, String> {
    let nd = dir.join(format!("node{sid}"));
    let data = nd.join("data");
    fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    fs::write(data.join("myid"), format!("{sid}\n")).map_err(|e| format!("cannot write myid: {e}"))?;
    let cfg = nd.join("zoo.cfg");
    let text = format!(
        "{header}tickTime={TICK_TIME_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n\
         clientPortAddress={}\nmaxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=*\n\
         standaloneEnabled=false\nreconfigEnabled=false\nsnapCount={SNAP_COUNT}\n{servers}",
        data.display(),
        client.port(),
        client.ip()
    );
    fs::write(&cfg, text).map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
    let log = nd.join("server.log");
    Ok(Node { sid, kind, client, dir: nd, cfg, log, child: None, paused: false })
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
