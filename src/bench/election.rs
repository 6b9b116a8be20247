//! `zk-bench election`: leader election of Apache ZooKeeper 3.8 ensembles
//! (`QuorumPeerMain`) and of our `zk-server` ensembles, side by side in one run, with the
//! same zoo.cfg (port scheme, tickTime, limits) for both.
//!
//! Method (docs/benchmarks.md, "Leader election"):
//! * **start -> leader**: per round, `n` peers on fresh dataDirs are spawned at once
//!   (sids 1..n, a few ms apart); the time from the first spawn until every peer has
//!   logged its decision (`Peer state changed: leading|following`, which both log at
//!   the moment FastLeaderElection decides) with exactly one leader. The leader's own
//!   `LEADING - LEADER ELECTION TOOK - N MS` (start of its election to its role, without
//!   process start-up) is reported beside it. Apache and ours alternate which goes
//!   first per round.
//! * **leader kill -> new leader**: on the ensemble of the last start round, once every
//!   peer serves (`srvr` shows a Mode): kill -9 of the leader, time until every survivor
//!   has logged a new decision with one leader, and until the new leader serves again;
//!   then the old leader is restarted and rejoins before the next round. Survivors only
//!   notice a dead leader through their Zab connection to it: an implementation whose
//!   leader does not listen on its quorum port (ours until Zab lands) is reported as
//!   "n/a (needs Zab)".
//! * **idle footprint**: VmRSS and thread count of one follower (and the leader) of
//!   each implementation, after the ensemble has been idle for a moment.
//!
//! Logs are read by polling the files every 2 ms, so times are +-2 ms.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::compare::median;
use super::servers::{four_letter_word, free_port, guard_child, rss_kib, Kind, ServerPrograms, WorkDir, APACHE_JVM_FLAGS};
use super::{json_f64, json_str, print_title};

pub(super) const QUORUM_PEER_MAIN: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";
/// Apache's logging: info (the decision lines are QuorumPeer's, Leader's and Learner's
/// info lines), as ours logs at info.
pub(super) const APACHE_LOG_FLAGS: &[&str] = &[
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.logFile=System.out",
];
pub(super) const OURS_RUST_LOG: &str = "info";
const KINDS: [Kind; 2] = [Kind::Apache, Kind::Ours];
const POLL: Duration = Duration::from_millis(2);

/// Parameters of `zk-bench election`.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub programs: ServerPrograms,
    /// Ensemble sizes (voters), e.g. [3, 5].
    pub sizes: Vec<usize>,
    /// Rounds of each measurement per size and implementation.
    pub rounds: usize,
    pub tick_time: u32,
    pub smoke: bool,
    /// Longest wait for one election (or for serving).
    pub timeout: Duration,
    /// Idle time before the footprint is read.
    pub idle: Duration,
    pub keep_dir: bool,
}

impl ElectionConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.sizes.is_empty() || self.sizes.iter().any(|&n| n < 3) {
            return Err(format!("--sizes must list ensemble sizes of at least 3, not {:?}", self.sizes));
        }
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if !self.smoke && self.rounds < 3 {
            return Err(format!("--rounds {} is too few for a median (at least 3); use --smoke for a quick check", self.rounds));
        }
        if self.tick_time == 0 {
            return Err("--tick-time must be positive".into());
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ peers --

/// New complete lines of a growing log file.
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    fn new(path: PathBuf) -> LogTail {
        LogTail { path, offset: 0, partial: Vec::new() }
    }

    fn lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(mut f) = fs::File::open(&self.path) else { return out };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return out;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return out;
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            out.push(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        out
    }

    /// Skips what is in the file now.
    fn skip_to_end(&mut self) {
        let _ = self.lines();
    }
}

pub(super) struct Peer {
    pub(super) client_port: u16,
    quorum_port: u16,
    dir: PathBuf,
    cfg: PathBuf,
    log: PathBuf,
    tail: LogTail,
    child: Option<Child>,
}

impl Peer {
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    pub(super) fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client_port))
    }
    pub(super) fn log_report(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().filter(|l| !l.starts_with("\tat ")).collect();
        format!("--- last lines of {} ---\n{}\n--- end ---", self.log.display(), lines[lines.len().saturating_sub(25)..].join("\n"))
    }
}

/// What a peer decided, when zk-bench saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Leading,
    Following,
}

fn decision(line: &str) -> Option<Role> {
    let rest = line.split("Peer state changed: ").nth(1)?;
    if rest.starts_with("leading") {
        Some(Role::Leading)
    } else if rest.starts_with("following") {
        Some(Role::Following)
    } else {
        None
    }
}

fn election_took(line: &str) -> Option<u64> {
    let rest = line.split("LEADING - LEADER ELECTION TOOK - ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// One ensemble of one implementation: `<dir>/nodeN/{zoo.cfg,data/myid,server.log}`.
pub(super) struct Cluster {
    pub(super) kind: Kind,
    programs: ServerPrograms,
    pub(super) peers: Vec<Peer>,
}

/// The outcome of one election.
pub(super) struct Elected {
    pub(super) leader: usize,
    /// From the reference instant until every peer waited for had decided.
    pub(super) all_decided: Duration,
    /// Until the leader decided.
    pub(super) leader_decided: Duration,
    /// The leader's `LEADER ELECTION TOOK`, if it logged one within a second.
    pub(super) took_ms: Option<u64>,
}

impl Cluster {
    pub(super) fn new(kind: Kind, programs: &ServerPrograms, n: usize, tick_time: u32, dir: &Path) -> Result<Cluster, String> {
        let mut peers = Vec::new();
        let mut servers = String::new();
        let mut ports = Vec::new();
        for sid in 1..=n {
            let (c, q, e) = (free_port()?, free_port()?, free_port()?);
            ports.push((c, q, e));
            let _ = writeln!(servers, "server.{sid}=127.0.0.1:{q}:{e};127.0.0.1:{c}");
        }
        for sid in 1..=n {
            let nd = dir.join(format!("node{sid}"));
            let data = nd.join("data");
            fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            fs::write(data.join("myid"), format!("{sid}\n")).map_err(|e| format!("cannot write myid: {e}"))?;
            let (c, q, _) = ports[sid - 1];
            let cfg = nd.join("zoo.cfg");
            let text = format!(
                "# Written by zk-bench election; identical for Apache and zookeeper-rs but for the ports.\n\
                 tickTime={tick_time}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={c}\nclientPortAddress=127.0.0.1\n\
                 maxClientCnxns=0\nadmin.enableServer=false\n4lw.commands.whitelist=*\nstandaloneEnabled=false\nreconfigEnabled=false\n{servers}",
                data.display()
            );
            fs::write(&cfg, text).map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
            let log = nd.join("server.log");
            peers.push(Peer { client_port: c, quorum_port: q, dir: nd, cfg, tail: LogTail::new(log.clone()), log, child: None });
        }
        Ok(Cluster { kind, programs: programs.clone(), peers })
    }

    pub(super) fn peer(&self, sid: usize) -> &Peer {
        &self.peers[sid - 1]
    }

    fn command(&self, p: &Peer) -> Command {
        match self.kind {
            Kind::Apache => {
                let mut c = Command::new(&self.programs.java);
                c.args(APACHE_JVM_FLAGS)
                    .arg(format!("-Dzookeeper.log.dir={}", p.dir.display()))
                    .args(APACHE_LOG_FLAGS)
                    .arg("-cp")
                    .arg(self.programs.apache_classpath())
                    .arg(QUORUM_PEER_MAIN)
                    .arg(&p.cfg);
                c
            }
            Kind::Ours => {
                let mut c = Command::new(&self.programs.ours);
                c.env("RUST_LOG", OURS_RUST_LOG).arg(&p.cfg);
                c
            }
        }
    }

    /// Starts peer `sid` (appending to its log); its log is read from the current end.
    pub(super) fn spawn(&mut self, sid: usize) -> Result<(), String> {
        let mut cmd = self.command(self.peer(sid));
        let p = &mut self.peers[sid - 1];
        if p.child.is_some() {
            return Err(format!("{} peer {sid} is already running", self.kind.name()));
        }
        p.tail.skip_to_end();
        let logf = fs::OpenOptions::new().create(true).append(true).open(&p.log).map_err(|e| format!("cannot open {}: {e}", p.log.display()))?;
        let logf2 = logf.try_clone().map_err(|e| format!("cannot dup the log file: {e}"))?;
        cmd.current_dir(&p.dir).stdin(Stdio::null()).stdout(logf).stderr(logf2);
        guard_child(&mut cmd);
        let child = cmd.spawn().map_err(|e| format!("cannot start {} peer {sid} ({cmd:?}): {e}", self.kind.name()))?;
        p.child = Some(child);
        Ok(())
    }

    pub(super) fn kill(&mut self, sid: usize) {
        if let Some(mut c) = self.peers[sid - 1].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Skips what the logs of `sids` hold now: the next decision waited for comes after.
    pub(super) fn skip_logs(&mut self, sids: &[usize]) {
        for &sid in sids {
            self.peers[sid - 1].tail.skip_to_end();
        }
    }

    pub(super) fn kill_all(&mut self) {
        for sid in 1..=self.peers.len() {
            self.kill(sid);
        }
    }

    pub(super) fn check_alive(&mut self, sids: &[usize]) -> Result<(), String> {
        for &sid in sids {
            let p = &mut self.peers[sid - 1];
            if let Some(c) = p.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    return Err(format!("{} peer {sid} exited ({st})\n{}", self.kind.name(), p.log_report()));
                }
            }
        }
        Ok(())
    }

    /// Waits until each of `sids` has logged a decision (since its log was last read)
    /// and exactly one of them leads; times are from `t0`.
    pub(super) fn wait_elected(&mut self, sids: &[usize], t0: Instant, timeout: Duration) -> Result<Elected, String> {
        let deadline = Instant::now() + timeout;
        let mut decided: Vec<Option<(Role, Duration)>> = vec![None; self.peers.len() + 1];
        let mut took: Option<u64> = None;
        loop {
            let now = t0.elapsed();
            for &sid in sids {
                for l in self.peers[sid - 1].tail.lines() {
                    if decided[sid].is_none() {
                        if let Some(r) = decision(&l) {
                            decided[sid] = Some((r, now));
                        }
                    } else if took.is_none() && decided[sid].is_some_and(|(r, _)| r == Role::Leading) {
                        took = election_took(&l);
                    }
                }
            }
            if sids.iter().all(|&s| decided[s].is_some()) {
                break;
            }
            self.check_alive(sids)?;
            if Instant::now() >= deadline {
                let state: Vec<String> = sids.iter().map(|&s| format!("{s}: {:?}", decided[s])).collect();
                let logs: Vec<String> = sids.iter().filter(|&&s| decided[s].is_none()).map(|&s| self.peer(s).log_report()).collect();
                return Err(format!("{} ensemble: no election within {timeout:?} ({})\n{}", self.kind.name(), state.join(", "), logs.join("\n")));
            }
            thread::sleep(POLL);
        }
        let leaders: Vec<usize> = sids.iter().copied().filter(|&s| decided[s].is_some_and(|(r, _)| r == Role::Leading)).collect();
        let leader = match (leaders.len(), sids.len()) {
            (1, _) => leaders[0],
            // A single peer rejoining an ensemble follows: its leader is elsewhere.
            (0, 1) => return Ok(Elected { leader: 0, all_decided: t0.elapsed(), leader_decided: Duration::ZERO, took_ms: None }),
            _ => return Err(format!("{} ensemble: {} peers of {sids:?} decided to lead: {leaders:?}", self.kind.name(), leaders.len())),
        };
        let all_decided = sids.iter().filter_map(|&s| decided[s].map(|(_, t)| t)).max().unwrap_or_default();
        let leader_decided = decided[leader].map(|(_, t)| t).unwrap_or_default();
        // The leader's "LEADER ELECTION TOOK" follows its decision within some ms.
        let until = Instant::now() + Duration::from_secs(1);
        while took.is_none() && Instant::now() < until {
            for l in self.peers[leader - 1].tail.lines() {
                took = took.or_else(|| election_took(&l));
            }
            thread::sleep(POLL);
        }
        Ok(Elected { leader, all_decided, leader_decided, took_ms: took })
    }

    /// Waits until each of `sids` answers `srvr` with a Mode line; time from `t0`.
    pub(super) fn wait_serving(&mut self, sids: &[usize], t0: Instant, timeout: Duration) -> Result<Duration, String> {
        let deadline = Instant::now() + timeout;
        let mut left: Vec<usize> = sids.to_vec();
        loop {
            left.retain(|&s| !four_letter_word(self.peer(s).client_addr(), "srvr", Duration::from_secs(1)).is_ok_and(|a| a.contains("\nMode: ")));
            if left.is_empty() {
                return Ok(t0.elapsed());
            }
            self.check_alive(sids)?;
            if Instant::now() >= deadline {
                return Err(format!("{} ensemble: peers {left:?} not serving within {timeout:?}\n{}", self.kind.name(), self.peer(left[0]).log_report()));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// True when peer `sid` listens on its quorum (Zab) port.
    fn listens_on_quorum_port(&self, sid: usize) -> bool {
        let p = self.peer(sid);
        p.pid().is_some_and(|pid| listening_ports(pid).contains(&p.quorum_port))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// TCP ports process `pid` listens on (/proc/net/tcp{,6} rows in state LISTEN whose
/// inode is one of the process's sockets).
fn listening_ports(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = fs::read_link(e.path()) {
                if let Some(n) = t.to_string_lossy().strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse::<u64>().ok()) {
                    inodes.insert(n);
                }
            }
        }
    }
    let mut out = HashSet::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(s) = fs::read_to_string(f) else { continue };
        for l in s.lines().skip(1) {
            let c: Vec<&str> = l.split_whitespace().collect();
            if c.len() < 10 || c[3] != "0A" || !c[9].parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                continue;
            }
            if let Some(p) = c[1].rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok()) {
                out.insert(p);
            }
        }
    }
    out
}

pub(super) fn threads_of(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

// ------------------------------------------------------------ measuring --

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(super) fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn ratio(ours: f64, apache: f64) -> f64 {
    if apache > 0.0 && ours.is_finite() {
        ours / apache
    } else {
        f64::NAN
    }
}

fn fmt_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.3}x")
    } else {
        "n/a".into()
    }
}

fn fmt_ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.0}")
    } else {
        "n/a".into()
    }
}

/// Apache first in rounds 1, 3, ...; ours first in rounds 2, 4, ...
pub(super) fn order(round: usize) -> [Kind; 2] {
    if round.is_multiple_of(2) {
        [Kind::Apache, Kind::Ours]
    } else {
        [Kind::Ours, Kind::Apache]
    }
}

pub(super) fn idx(k: Kind) -> usize {
    match k {
        Kind::Apache => 0,
        Kind::Ours => 1,
    }
}

#[derive(Default)]
struct StartRounds {
    all: Vec<f64>,
    leader: Vec<f64>,
    took: Vec<f64>,
    leaders: Vec<usize>,
}

#[derive(Default)]
struct KillRounds {
    /// None: not measurable (no Zab); the reason.
    unsupported: Option<String>,
    decided: Vec<f64>,
    serving: Vec<f64>,
    leaders: Vec<usize>,
}

#[derive(Default, Clone, Copy)]
struct Footprint {
    follower_rss_kib: u64,
    follower_threads: usize,
    leader_rss_kib: u64,
    leader_threads: usize,
}

#[derive(Default)]
struct SizeResult {
    start: [StartRounds; 2],
    kill: [KillRounds; 2],
    footprint: [Footprint; 2],
}

/// Runs the benchmark, printing tables as it goes and one JSON line at the end. On
/// failure the ensembles' directories are kept and named.
pub fn election(cfg: &ElectionConfig) -> Result<(), String> {
    cfg.validate()?;
    cfg.programs.check()?;
    let mut work = WorkDir::new("zk-bench-election")?;
    let r = run_in(cfg, work.path());
    if r.is_err() || cfg.keep_dir {
        work.keep();
        eprintln!("zk-bench: ensemble directories and logs kept in {}", work.path().display());
    }
    r
}

fn run_in(cfg: &ElectionConfig, work: &Path) -> Result<(), String> {
    print_title("zk-bench election: Apache ZooKeeper 3.8 (QuorumPeerMain) vs zookeeper-rs zk-server ensembles", cfg.smoke);
    println!("  sizes {:?}; {} rounds per measurement, size and implementation; tickTime={} initLimit=10 syncLimit=5", cfg.sizes, cfg.rounds, cfg.tick_time);
    println!("  apache: {} {} {} -cp <jars> {QUORUM_PEER_MAIN} zoo.cfg", cfg.programs.java.display(), APACHE_JVM_FLAGS.join(" "), APACHE_LOG_FLAGS.join(" "));
    println!("  ours:   RUST_LOG={OURS_RUST_LOG} {} zoo.cfg", cfg.programs.ours.display());
    println!("  every peer on 127.0.0.1 with 3 free ports (client, quorum, election); fresh dataDirs; work dir {}", work.display());
    let mut results = Vec::new();
    for &n in &cfg.sizes {
        results.push((n, measure_size(cfg, n, work)?));
    }
    print_final(cfg, &results);
    println!("{}", summary_json(cfg, &results));
    Ok(())
}

fn measure_size(cfg: &ElectionConfig, n: usize, work: &Path) -> Result<SizeResult, String> {
    let sids: Vec<usize> = (1..=n).collect();
    let mut res = SizeResult::default();
    let mut kept: [Option<Cluster>; 2] = [None, None];
    // ---- start -> leader
    for round in 0..cfg.rounds {
        for k in order(round) {
            if let Some(mut old) = kept[idx(k)].take() {
                old.kill_all();
            }
            let dir = work.join(format!("{}-{n}-start{}", k.name(), round + 1));
            let mut c = Cluster::new(k, &cfg.programs, n, cfg.tick_time, &dir)?;
            let t0 = Instant::now();
            for &s in &sids {
                c.spawn(s)?;
            }
            let e = c.wait_elected(&sids, t0, cfg.timeout)?;
            eprintln!(
                "  [{n} peers, start round {}] {:<6} all decided {:>6.0} ms, leader {} decided {:>6.0} ms, its LEADER ELECTION TOOK {} ms",
                round + 1,
                k.name(),
                ms(e.all_decided),
                e.leader,
                ms(e.leader_decided),
                e.took_ms.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
            );
            let r = &mut res.start[idx(k)];
            r.all.push(ms(e.all_decided));
            r.leader.push(ms(e.leader_decided));
            r.took.push(e.took_ms.map(|t| t as f64).unwrap_or(f64::NAN));
            r.leaders.push(e.leader);
            if round + 1 == cfg.rounds {
                kept[idx(k)] = Some(c);
            } else {
                drop(c);
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
    print_start(cfg, n, &res.start);

    // ---- idle footprint and leader kill -> new leader, on the last round's ensembles
    for k in KINDS {
        let Some(c) = kept[idx(k)].as_mut() else { continue };
        let leader = *res.start[idx(k)].leaders.last().unwrap_or(&n);
        let follower = sids.iter().copied().find(|&s| s != leader).unwrap_or(1);
        // Zab (ours: once it lands) opens the leader's quorum port right after the decision.
        let zab_deadline = Instant::now() + Duration::from_secs(5);
        let mut zab = c.listens_on_quorum_port(leader);
        while !zab && Instant::now() < zab_deadline {
            thread::sleep(Duration::from_millis(20));
            zab = c.listens_on_quorum_port(leader);
        }
        if zab {
            c.wait_serving(&sids, Instant::now(), cfg.timeout)?;
        }
        thread::sleep(cfg.idle);
        c.check_alive(&sids)?;
        let (fp, lp) = (c.peer(follower).pid().unwrap_or(0), c.peer(leader).pid().unwrap_or(0));
        res.footprint[idx(k)] = Footprint {
            follower_rss_kib: rss_kib(fp)?.0,
            follower_threads: threads_of(fp),
            leader_rss_kib: rss_kib(lp)?.0,
            leader_threads: threads_of(lp),
        };
        if !zab {
            res.kill[idx(k)].unsupported = Some("n/a (needs Zab)".into());
            eprintln!("  [{n} peers, kill] {}: leader {leader} does not listen on its quorum port: kill -> new leader n/a (needs Zab)", k.name());
            continue;
        }
        let mut leader = leader;
        for round in 0..cfg.rounds {
            let survivors: Vec<usize> = sids.iter().copied().filter(|&s| s != leader).collect();
            for &s in &survivors {
                c.peers[s - 1].tail.skip_to_end();
            }
            let t0 = Instant::now();
            c.kill(leader);
            let e = c.wait_elected(&survivors, t0, cfg.timeout)?;
            let serving = c.wait_serving(&[e.leader], t0, cfg.timeout)?;
            eprintln!(
                "  [{n} peers, kill round {}] {:<6} leader {leader} killed: all survivors decided {:>6.0} ms, new leader {} serving {:>6.0} ms",
                round + 1,
                k.name(),
                ms(e.all_decided),
                e.leader,
                ms(serving)
            );
            let r = &mut res.kill[idx(k)];
            r.decided.push(ms(e.all_decided));
            r.serving.push(ms(serving));
            r.leaders.push(e.leader);
            if round + 1 < cfg.rounds {
                // The old leader rejoins (and follows) before the next round.
                c.spawn(leader)?;
                let back = c.wait_elected(&[leader], Instant::now(), cfg.timeout)?;
                if back.leader != 0 {
                    return Err(format!("{} ensemble: restarted peer {leader} leads again while {} leads", k.name(), e.leader));
                }
                c.wait_serving(&sids, Instant::now(), cfg.timeout)?;
            }
            leader = e.leader;
        }
    }
    drop(kept);
    print_kill(cfg, n, &res.kill);
    print_footprint(n, &res.footprint);
    Ok(res)
}

fn print_start(cfg: &ElectionConfig, n: usize, s: &[StartRounds; 2]) {
    println!("\n== {n} peers: start -> leader: spawn of {n} peers -> every peer decided, one leader (ms; fresh dataDirs each round) ==");
    println!(
        "{:<7} {:<7} {:>12} {:>12} {:>9} {:>9} {:>16} {:>16}",
        "round", "first", "apache all", "ours all", "a leader", "o leader", "apache FLE took", "ours FLE took"
    );
    for r in 0..cfg.rounds {
        println!(
            "{:<7} {:<7} {:>12.0} {:>12.0} {:>9} {:>9} {:>16} {:>16}",
            r + 1,
            order(r)[0].name(),
            s[0].all[r],
            s[1].all[r],
            s[0].leaders[r],
            s[1].leaders[r],
            fmt_ms(s[0].took[r]),
            fmt_ms(s[1].took[r])
        );
    }
    let took = |v: &[f64]| v.iter().copied().filter(|x| x.is_finite()).collect::<Vec<_>>();
    for (label, f) in [("median", median as fn(&[f64]) -> f64), ("max", max as fn(&[f64]) -> f64)] {
        println!(
            "{:<15} {:>12.0} {:>12.0} {:>9} {:>9} {:>16} {:>16}   ratio ours/apache {} (FLE took: {})",
            label,
            f(&s[0].all),
            f(&s[1].all),
            "",
            "",
            fmt_ms(f(&took(&s[0].took))),
            fmt_ms(f(&took(&s[1].took))),
            fmt_ratio(ratio(f(&s[1].all), f(&s[0].all))),
            fmt_ratio(ratio(f(&took(&s[1].took)), f(&took(&s[0].took))))
        );
    }
}

fn print_kill(cfg: &ElectionConfig, n: usize, k: &[KillRounds; 2]) {
    println!("\n== {n} peers: leader kill -9 -> every survivor decided with one leader / new leader serving (ms) ==");
    for kind in KINDS {
        let r = &k[idx(kind)];
        if let Some(why) = &r.unsupported {
            println!("{:<7} {why}", kind.name());
            continue;
        }
        let rows: Vec<String> = r.decided.iter().zip(&r.serving).zip(&r.leaders).map(|((d, s), l)| format!("{d:.0}/{s:.0} (->{l})")).collect();
        println!("{:<7} rounds: {}", kind.name(), rows.join("  "));
        println!(
            "{:<7} decided median {:.0} max {:.0}; serving median {:.0} max {:.0} ({} rounds)",
            kind.name(),
            median(&r.decided),
            max(&r.decided),
            median(&r.serving),
            max(&r.serving),
            r.decided.len().min(cfg.rounds)
        );
    }
}

fn print_footprint(n: usize, f: &[Footprint; 2]) {
    println!("\n== {n} peers: idle footprint (VmRSS, threads) ==");
    println!("{:<10} {:>14} {:>14} {:>8}", "", "apache", "ours", "ratio");
    let mib = |k: u64| k as f64 / 1024.0;
    let rows = [
        ("follower RSS", mib(f[0].follower_rss_kib), mib(f[1].follower_rss_kib), "MiB"),
        ("follower threads", f[0].follower_threads as f64, f[1].follower_threads as f64, ""),
        ("leader RSS", mib(f[0].leader_rss_kib), mib(f[1].leader_rss_kib), "MiB"),
        ("leader threads", f[0].leader_threads as f64, f[1].leader_threads as f64, ""),
    ];
    for (label, a, o, unit) in rows {
        println!("{label:<18} {a:>10.1} {unit:<3} {o:>10.1} {unit:<3} {:>8}", fmt_ratio(ratio(o, a)));
    }
}

fn print_final(cfg: &ElectionConfig, results: &[(usize, SizeResult)]) {
    println!("\n== election: ratios ours/Apache ({} rounds; < 1 = ours faster / smaller) ==", cfg.rounds);
    println!("{:>10}  {:<52} {:>10} {:>10}", "ratio", "metric", "apache", "ours");
    let row = |label: String, a: f64, o: f64| println!("{:>10}  {label:<52} {:>10} {:>10}", fmt_ratio(ratio(o, a)), fmt_ms(a), fmt_ms(o));
    for (n, r) in results {
        let s = &r.start;
        let finite = |v: &[f64]| v.iter().copied().filter(|x| x.is_finite()).collect::<Vec<_>>();
        row(format!("{n} peers start -> leader, median (ms)"), median(&s[0].all), median(&s[1].all));
        row(format!("{n} peers start -> leader, max (ms)"), max(&s[0].all), max(&s[1].all));
        row(format!("{n} peers leader's LEADER ELECTION TOOK, median (ms)"), median(&finite(&s[0].took)), median(&finite(&s[1].took)));
        let k = &r.kill;
        for (label, f) in [("median", median as fn(&[f64]) -> f64), ("max", max as fn(&[f64]) -> f64)] {
            let v = |kr: &KillRounds| if kr.unsupported.is_some() { f64::NAN } else { f(&kr.decided) };
            let (a, o) = (v(&k[0]), v(&k[1]));
            let label = format!("{n} peers leader kill -> new leader, {label} (ms)");
            match &k[1].unsupported {
                Some(why) => println!("{:>10}  {label:<52} {:>10} {:>10}", "n/a", fmt_ms(a), why),
                None => row(label, a, o),
            }
        }
        let f = &r.footprint;
        let mib = |k: u64| k as f64 / 1024.0;
        println!("{:>10}  {:<52} {:>10.1} {:>10.1}", fmt_ratio(ratio(mib(f[1].follower_rss_kib), mib(f[0].follower_rss_kib))), format!("{n} peers idle follower RSS (MiB)"), mib(f[0].follower_rss_kib), mib(f[1].follower_rss_kib));
        println!("{:>10}  {:<52} {:>10} {:>10}", fmt_ratio(ratio(f[1].follower_threads as f64, f[0].follower_threads as f64)), format!("{n} peers idle follower threads"), f[0].follower_threads, f[1].follower_threads);
    }
}

fn summary_json(cfg: &ElectionConfig, results: &[(usize, SizeResult)]) -> String {
    let stat = |v: &[f64]| {
        let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        format!("{{\"median\":{},\"max\":{}}}", json_f64(median(&f), 1), json_f64(max(&f), 1))
    };
    let pair = |a: &[f64], o: &[f64]| {
        let fin = |v: &[f64]| v.iter().copied().filter(|x| x.is_finite()).collect::<Vec<_>>();
        format!("{{\"apache\":{},\"ours\":{},\"median_ratio\":{}}}", stat(a), stat(o), json_f64(ratio(median(&fin(o)), median(&fin(a))), 3))
    };
    let mut s = String::from("{\"bench\":\"zk-bench-election\"");
    let _ = write!(s, ",\"smoke\":{},\"rounds\":{},\"tick_time\":{},\"sizes\":{{", cfg.smoke, cfg.rounds, cfg.tick_time);
    for (i, (n, r)) in results.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let k = |kr: &KillRounds| match &kr.unsupported {
            Some(why) => json_str(why),
            None => format!("{{\"decided\":{},\"serving\":{}}}", stat(&kr.decided), stat(&kr.serving)),
        };
        let f = &r.footprint;
        let _ = write!(
            s,
            "\"{n}\":{{\"start_to_leader_ms\":{},\"leader_election_took_ms\":{},\"kill_to_leader_ms\":{{\"apache\":{},\"ours\":{}}},\
\"follower_rss_kib\":{{\"apache\":{},\"ours\":{}}},\"follower_threads\":{{\"apache\":{},\"ours\":{}}}}}",
            pair(&r.start[0].all, &r.start[1].all),
            pair(&r.start[0].took, &r.start[1].took),
            k(&r.kill[0]),
            k(&r.kill[1]),
            f[0].follower_rss_kib,
            f[1].follower_rss_kib,
            f[0].follower_threads,
            f[1].follower_threads
        );
    }
    s.push_str("}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_and_took_lines_of_both() {
        let apache = "17:24:50.760 [QuorumPeer[myid=3](plain=127.0.0.1:41259)(secure=disabled)] INFO QuorumPeer - Peer state changed: following";
        let ours = "2026-12-04 17:24:50,006 [myid:2] - INFO  [QuorumPeer[myid=2](plain=disabled)(secure=disabled):quorum_peer] - Peer state changed: leading";
        assert_eq!(decision(apache), Some(Role::Following));
        assert_eq!(decision(ours), Some(Role::Leading));
        assert_eq!(decision("x INFO QuorumPeer - Peer state changed: looking"), None);
        assert_eq!(decision("x INFO QuorumPeer - Peer state changed: following - discovery"), Some(Role::Following));
        assert_eq!(election_took("17:47:00.795 [QuorumPeer[myid=3]] INFO Leader - LEADING - LEADER ELECTION TOOK - 365 MS"), Some(365));
        assert_eq!(election_took("x - FOLLOWING - LEADER ELECTION TOOK - 3 MS"), None);
    }

    #[test]
    fn log_tail_returns_complete_lines_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("l.log");
        fs::write(&p, "a\nb").unwrap();
        let mut t = LogTail::new(p.clone());
        assert_eq!(t.lines(), vec!["a".to_string()]);
        fs::write(&p, "a\nbc\n").unwrap();
        assert_eq!(t.lines(), vec!["bc".to_string()]);
        assert!(t.lines().is_empty());
    }
}
