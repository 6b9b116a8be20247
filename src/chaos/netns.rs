//! Network-namespace mode of `zk-chaos`: every peer runs in a network namespace of its
//! own, and a cut is a pair of blackhole routes, so a partition stops *every* packet
//! between the two peers — Zab traffic, election traffic, and the election callbacks to
//! the address an initiator advertises, which the link proxies cannot intercept.
//!
//! ```text
//!   root namespace: bridge zkc<run>b 10.77.K.254/24  (clients, 4lw checks)
//!        |veth zkc<run>v1    |veth zkc<run>v2    ...
//!   netns zkc<run>-1         netns zkc<run>-2
//!     eth0 10.77.K.1/24        eth0 10.77.K.2/24      (+ lo up)
//! ```
//!
//! `<run>` is the owner's pid and a letter (several networks per process, e.g. the CI
//! tests), so a later run can tell a crashed run's leftovers (owner gone) from a live
//! run's. `K` is the first /24 of 10.77.0.0/16 that no interface or route in the root
//! namespace uses, chosen under a file lock so two runs starting together differ.
//!
//! A cut between a and b adds `blackhole <ip b>/32` in a's namespace and
//! `blackhole <ip a>/32` in b's: neither sends anything to the other, established
//! connections stop (their retransmissions are dropped, so the peers' own read timeouts
//! fire) and a new `connect` fails at once (the kernel answers EINVAL for a blackhole
//! route). There is no iptables or nft on the development machine, and routes need
//! nothing but iproute2. The planning ([`pairs_between`], [`routes_for`], names and
//! addresses) is pure and tested without sockets; [`Network`] runs `ip`.

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The private /16 every run takes a /24 of.
const NET_A: u8 = 10;
const NET_B: u8 = 77;
/// The bridge's host number in the /24; peers are 1..=7.
const BRIDGE_HOST: u8 = 254;
/// Fixed ports: every peer has an address of its own.
pub const CLIENT_PORT: u16 = 2181;
pub const QUORUM_PORT: u16 = 2888;
pub const ELECTION_PORT: u16 = 3888;
const NAME_PREFIX: &str = "zkc";
/// Serializes the choice of a free /24 among processes (and threads: flock locks are
/// per open file).
const LOCK_FILE: &str = "/run/zk-chaos-netns.lock";

/// Unordered pairs of peers whose links are cut, `(low, high)`.
pub type Cuts = BTreeSet<(usize, usize)>;

/// Every pair with one peer in `a` and the other in `b` (a partition, a bridge's two
/// sides, an isolated leader are all such sets).
pub fn pairs_between(a: &[usize], b: &[usize]) -> Cuts {
    let mut out = Cuts::new();
    for &x in a {
        for &y in b {
            if x != y {
                out.insert((x.min(y), x.max(y)));
            }
        }
    }
    out
}

/// The blackhole routes a set of cuts needs: `(in the namespace of, to the address of)`,
/// both directions of every pair.
pub fn routes_for(cuts: &Cuts) -> Vec<(usize, usize)> {
    let mut r: Vec<(usize, usize)> = cuts.iter().flat_map(|&(a, b)| [(a, b), (b, a)]).collect();
    r.sort_unstable();
    r.dedup();
    r
}

/// Names and addresses of one run's network; no side effects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `<pid><letter>`.
    pub run: String,
    /// The third octet: the run's /24 is 10.77.K.0/24.
    pub k: u8,
    pub peers: usize,
}

impl Plan {
    pub fn new(pid: u32, letter: char, k: u8, peers: usize) -> Plan {
        Plan { run: format!("{pid}{letter}"), k, peers }
    }
    pub fn netns(&self, sid: usize) -> String {
        format!("{NAME_PREFIX}{}-{sid}", self.run)
    }
    /// The root-namespace end of peer `sid`'s veth (at most 15 bytes: pid ≤ 7 digits).
    pub fn veth(&self, sid: usize) -> String {
        format!("{NAME_PREFIX}{}v{sid}", self.run)
    }
    pub fn bridge(&self) -> String {
        format!("{NAME_PREFIX}{}b", self.run)
    }
    pub fn peer_ip(&self, sid: usize) -> Ipv4Addr {
        Ipv4Addr::new(NET_A, NET_B, self.k, sid as u8)
    }
    pub fn bridge_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(NET_A, NET_B, self.k, BRIDGE_HOST)
    }

    /// `ip` argument lists that build the network, in order.
    pub fn setup_commands(&self) -> Vec<Vec<String>> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
        let br = self.bridge();
        let mut c = vec![
            s(&["link", "add", &br, "type", "bridge"]),
            s(&["addr", "add", &format!("{}/24", self.bridge_ip()), "dev", &br]),
            s(&["link", "set", &br, "up"]),
        ];
        for sid in 1..=self.peers {
            let (ns, veth) = (self.netns(sid), self.veth(sid));
            c.push(s(&["netns", "add", &ns]));
            c.push(s(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]));
            c.push(s(&["link", "set", &veth, "master", &br, "up"]));
            c.push(s(&["-n", &ns, "addr", "add", &format!("{}/24", self.peer_ip(sid)), "dev", "eth0"]));
            c.push(s(&["-n", &ns, "link", "set", "eth0", "up"]));
            c.push(s(&["-n", &ns, "link", "set", "lo", "up"]));
        }
        c
    }

    /// `ip` argument lists that remove it; each may fail (already gone) independently.
    /// Deleting the root end of a veth removes both ends at once; deleting a namespace
    /// would leave its veth to the kernel's deferred cleanup.
    pub fn teardown_commands(&self) -> Vec<Vec<String>> {
        let mut c = Vec::new();
        for sid in 1..=self.peers {
            c.push(vec!["link".into(), "del".into(), self.veth(sid)]);
            c.push(vec!["netns".into(), "del".into(), self.netns(sid)]);
        }
        c.push(vec!["link".into(), "del".into(), self.bridge()]);
        c
    }

    /// The `ip` arguments that add (or delete) the route of `routes_for`'s `(in, to)`.
    pub fn route_command(&self, add: bool, inside: usize, to: usize) -> Vec<String> {
        let verb = if add { "add" } else { "del" };
        vec!["-n".into(), self.netns(inside), "route".into(), verb.into(), "blackhole".into(), format!("{}/32", self.peer_ip(to))]
    }
}

/// The owner pid in one of our names (`zkc<pid><letter>-<sid>`, `zkc<pid><letter>v<sid>`,
/// `zkc<pid><letter>b`), or None for a name that is not ours.
pub fn owner_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let pid: u32 = rest[..digits].parse().ok()?;
    let mut tail = rest[digits..].chars();
    if !tail.next()?.is_ascii_lowercase() {
        return None;
    }
    let tail: String = tail.collect();
    let ok = tail == "b"
        || tail.strip_prefix('-').or_else(|| tail.strip_prefix('v')).is_some_and(|sid| !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(pid)
}

/// Runs `ip <args>`; the error carries its stderr.
fn ip(args: &[String]) -> Result<(), String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {} {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn ip_output(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("cannot run ip {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("ip {}: {} {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Why this host cannot run netns mode, or None if it can (root and a working `ip`).
pub fn unavailable() -> Option<String> {
    if !is_root() {
        return Some("not running as root (network namespaces need CAP_NET_ADMIN)".into());
    }
    match ip_output(&["netns", "list"]) {
        Ok(_) => None,
        Err(e) => Some(format!("`ip netns` does not work: {e}")),
    }
}

/// Names of the namespaces that exist (`ip netns list`, first word of each line).
pub fn list_netns() -> Result<Vec<String>, String> {
    Ok(ip_output(&["netns", "list"])?.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect())
}

fn list_links() -> Result<Vec<String>, String> {
    // "3: name@peer: <...>" per line with -o.
    Ok(ip_output(&["-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces, veths and bridges of runs whose owner no longer exists (a
/// crashed or killed run); returns what it removed.
pub fn remove_stale() -> Result<Vec<String>, String> {
    let mut removed = Vec::new();
    let me = std::process::id();
    // Links first: a veth's root end takes its namespace end along.
    for name in list_links()? {
        if let Some(pid) = owner_of(&name) {
            if pid != me && !pid_alive(pid) && ip(&["link".into(), "del".into(), name.clone()]).is_ok() {
                removed.push(name);
            }
        }
    }
    for name in list_netns()? {
        if let Some(pid) = owner_of(&name) {
            if pid != me && !pid_alive(pid) && ip(&["netns".into(), "del".into(), name.clone()]).is_ok() {
                removed.push(name);
            }
        }
    }
    Ok(removed)
}

/// Whether 10.77.k.0/24 is unused in the root namespace: no address in it and no route
/// to it but the default one.
fn subnet_free(k: u8, addrs: &str) -> Result<bool, String> {
    let prefix = format!("{NET_A}.{NET_B}.{k}.");
    if addrs.contains(&format!("inet {prefix}")) {
        return Ok(false);
    }
    let probe = format!("{prefix}1");
    let routes = ip_output(&["-4", "route", "show", "to", "match", &probe])?;
    Ok(routes.lines().all(|l| l.trim().is_empty() || l.starts_with("default")))
}

/// Live networks of this process, torn down by [`cleanup_on_signal`].
fn registry() -> &'static Mutex<Vec<Plan>> {
    static R: OnceLock<Mutex<Vec<Plan>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// Pids of the peers this process runs in namespaces, killed by [`cleanup_on_signal`].
fn child_pids() -> &'static Mutex<Vec<u32>> {
    static P: OnceLock<Mutex<Vec<u32>>> = OnceLock::new();
    P.get_or_init(|| Mutex::new(Vec::new()))
}

pub(crate) fn register_child(pid: u32) {
    if let Ok(mut v) = child_pids().lock() {
        v.push(pid);
    }
}

pub(crate) fn unregister_child(pid: u32) {
    if let Ok(mut v) = child_pids().lock() {
        v.retain(|&p| p != pid);
    }
}

/// Temporary ensemble directories of running runs, removed by [`cleanup_on_signal`]
/// (a 30-minute run holds gigabytes).
fn scratch_dirs() -> &'static Mutex<Vec<PathBuf>> {
    static D: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    D.get_or_init(|| Mutex::new(Vec::new()))
}

pub(crate) fn register_scratch_dir(dir: &Path) {
    if let Ok(mut v) = scratch_dirs().lock() {
        v.push(dir.to_path_buf());
    }
}

pub(crate) fn unregister_scratch_dir(dir: &Path) {
    if let Ok(mut v) = scratch_dirs().lock() {
        v.retain(|d| d != dir);
    }
}

/// For a signal handler thread (zk-chaos's SIGINT/SIGTERM): kills the peers, removes
/// every network this process made and its temporary ensemble directories. Destructors
/// do not run when a signal ends the process, and a namespace outlives its creator.
pub fn cleanup_on_signal() {
    if let Ok(pids) = child_pids().lock() {
        for &p in pids.iter() {
            // SAFETY: plain syscall; the pid is one of our children (not yet reaped,
            // so it cannot have been reused).
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
    }
    let plans: Vec<Plan> = registry().lock().map(|v| v.clone()).unwrap_or_default();
    for p in &plans {
        for c in p.teardown_commands() {
            let _ = ip(&c);
        }
    }
    let dirs: Vec<PathBuf> = scratch_dirs().lock().map(|v| v.clone()).unwrap_or_default();
    for d in &dirs {
        let _ = fs::remove_dir_all(d);
    }
}

/// One run's namespaces, bridge and cuts; removed on drop.
pub struct Network {
    pub plan: Plan,
    cuts: Cuts,
    torn_down: bool,
}

static NEXT_LETTER: AtomicU32 = AtomicU32::new(0);

impl Network {
    /// Removes stale leftovers, picks a free /24, and builds the network for `peers`.
    pub fn create(peers: usize) -> Result<Network, String> {
        if !(1..=BRIDGE_HOST as usize - 1).contains(&peers) {
            return Err(format!("{peers} peers do not fit a /24"));
        }
        match remove_stale() {
            Ok(r) if !r.is_empty() => log::warn!("removed leftovers of crashed zk-chaos runs: {}", r.join(" ")),
            Ok(_) => {}
            Err(e) => return Err(format!("looking for stale namespaces: {e}")),
        }
        let n = NEXT_LETTER.fetch_add(1, Ordering::Relaxed);
        let letter = char::from(b'a' + (n % 26) as u8);
        let lock = fs::OpenOptions::new().create(true).truncate(false).write(true).open(LOCK_FILE).map_err(|e| format!("cannot open {LOCK_FILE}: {e}"))?;
        // SAFETY: flock on a descriptor we own; released when `lock` is closed.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!("flock {LOCK_FILE}: {}", std::io::Error::last_os_error()));
        }
        let addrs = ip_output(&["-4", "-o", "addr", "show"])?;
        let mut k = None;
        for cand in 1..=250u8 {
            if subnet_free(cand, &addrs)? {
                k = Some(cand);
                break;
            }
        }
        let k = k.ok_or("no free /24 in 10.77.0.0/16")?;
        let plan = Plan::new(std::process::id(), letter, k, peers);
        if let Ok(mut r) = registry().lock() {
            r.push(plan.clone());
        }
        let net = Network { plan, cuts: Cuts::new(), torn_down: false };
        for c in net.plan.setup_commands() {
            // On failure the drop removes what was made.
            ip(&c).map_err(|e| format!("building the chaos network: {e}"))?;
        }
        drop(lock);
        log::info!("network namespaces {}..={} on 10.77.{k}.0/24, bridge {}", net.plan.netns(1), net.plan.netns(peers), net.plan.bridge());
        Ok(net)
    }

    /// The command line that runs `program` inside peer `sid`'s namespace. `ip netns
    /// exec` execs (no fork): the spawned pid is the program's own, so kill -9 and
    /// SIGSTOP reach the peer.
    pub fn wrap(&self, sid: usize, program: &Command) -> Command {
        let mut c = Command::new("ip");
        c.arg("netns").arg("exec").arg(self.plan.netns(sid)).arg(program.get_program()).args(program.get_args());
        for (k, v) in program.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = program.get_current_dir() {
            c.current_dir(d);
        }
        c
    }

    pub fn cuts(&self) -> &Cuts {
        &self.cuts
    }

    /// Adds the cuts (both directions of every pair) not already in place.
    pub fn cut(&mut self, pairs: &Cuts) -> Result<(), String> {
        let new: Cuts = pairs.difference(&self.cuts).copied().collect();
        for (inside, to) in routes_for(&new) {
            ip(&self.plan.route_command(true, inside, to))?;
        }
        self.cuts.extend(new);
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&mut self) -> Result<(), String> {
        let mut first_err = None;
        for (inside, to) in routes_for(&self.cuts) {
            if let Err(e) = ip(&self.plan.route_command(false, inside, to)) {
                first_err.get_or_insert(e);
            }
        }
        self.cuts.clear();
        first_err.map_or(Ok(()), Err)
    }

    /// Runs `f` on a new thread that has entered peer `sid`'s namespace: sockets it
    /// creates live there for good, whichever thread uses them later (for tests).
    pub fn in_netns<R: Send + 'static>(&self, sid: usize, f: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
        let path = format!("/run/netns/{}", self.plan.netns(sid));
        std::thread::spawn(move || {
            let fd = fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
            // SAFETY: setns on a namespace file we opened; it changes only this thread.
            if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_string())?
    }

    /// Removes the namespaces, veths and bridge; the peers must be stopped first (a
    /// namespace with a process in it lives on without its name). Idempotent.
    pub fn teardown(&mut self) -> Result<(), String> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        for c in self.plan.teardown_commands() {
            // Parts may be missing after a failed setup.
            let _ = ip(&c);
        }
        if let Ok(mut r) = registry().lock() {
            r.retain(|p| p != &self.plan);
        }
        let ours: Vec<String> = (1..=self.plan.peers).map(|s| self.plan.netns(s)).collect();
        let left: Vec<String> = list_netns()?.into_iter().filter(|n| ours.contains(n)).collect();
        let links: Vec<String> = list_links()?.into_iter().filter(|l| l.starts_with(&format!("{NAME_PREFIX}{}", self.plan.run)) && owner_of(l).is_some()).collect();
        if left.is_empty() && links.is_empty() {
            Ok(())
        } else {
            Err(format!("left behind: {left:?} {links:?}"))
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            log::warn!("removing the chaos network: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_parse_back() {
        let p = Plan::new(4_194_304, 'z', 9, 7);
        assert_eq!(p.netns(7), "zkc4194304z-7");
        assert!(p.veth(7).len() <= 15 && p.bridge().len() <= 15, "{} {}", p.veth(7), p.bridge());
        for n in [p.netns(3), p.veth(3), p.bridge()] {
            assert_eq!(owner_of(&n), Some(4_194_304), "{n}");
        }
        for n in ["zkc", "zkc12", "zkc12a", "zkc12a-", "zkcab-1", "zkc12A-1", "zkc12a-x", "eth0", "zkc12av", "zkc12ab2"] {
            assert_eq!(owner_of(n), None, "{n}");
        }
        assert_eq!(p.peer_ip(3), Ipv4Addr::new(10, 77, 9, 3));
        assert_eq!(p.bridge_ip(), Ipv4Addr::new(10, 77, 9, 254));
    }

    #[test]
    fn partitions_become_pairwise_cuts_both_ways() {
        // Leader 2 of 3 isolated.
        let c = pairs_between(&[2], &[1, 3]);
        assert_eq!(c, Cuts::from([(1, 2), (2, 3)]));
        assert_eq!(routes_for(&c), vec![(1, 2), (2, 1), (2, 3), (3, 2)]);
        // A minority of two out of five: 2 × 3 pairs, 12 routes, none inside a side.
        let c = pairs_between(&[4, 1], &[2, 3, 5]);
        assert_eq!(c.len(), 6);
        assert!(!c.contains(&(1, 4)) && !c.contains(&(2, 3)));
        assert_eq!(routes_for(&c).len(), 12);
        // The 5-peer bridge: {1,2} | {3,4}, 5 reaches all.
        let c = pairs_between(&[1, 2], &[3, 4]);
        assert_eq!(c, Cuts::from([(1, 3), (1, 4), (2, 3), (2, 4)]));
        assert!(routes_for(&c).iter().all(|&(a, b)| a != 5 && b != 5));
        // Overlaps collapse.
        let mut both = pairs_between(&[1], &[2, 3]);
        both.extend(pairs_between(&[2], &[1]));
        assert_eq!(routes_for(&both).len(), 4);
    }

    #[test]
    fn commands_name_the_right_namespaces() {
        let p = Plan::new(42, 'a', 5, 3);
        let setup = p.setup_commands();
        assert_eq!(setup.len(), 3 + 3 * 6);
        assert!(setup.iter().any(|c| c.join(" ") == "-n zkc42a-2 addr add 10.77.5.2/24 dev eth0"));
        assert!(setup.iter().any(|c| c.join(" ") == "link add zkc42av3 type veth peer name eth0 netns zkc42a-3"));
        assert_eq!(p.route_command(true, 1, 3).join(" "), "-n zkc42a-1 route add blackhole 10.77.5.3/32");
        assert_eq!(p.route_command(false, 3, 1).join(" "), "-n zkc42a-3 route del blackhole 10.77.5.1/32");
        let td = p.teardown_commands();
        assert_eq!(td.last().map(|c| c.join(" ")), Some("link del zkc42ab".to_string()));
    }
}
