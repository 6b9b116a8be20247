//! `StaticHostProvider`: the server list, shuffled once, tried round-robin, sleeping
//! `spin_delay` after each full cycle without success; every `next` resolves the name
//! it hands out again (no caching, as upstream).
//!
//! `update_server_list` is the client half of dynamic reconfiguration (ZOOKEEPER-1355):
//! given the new list and the server this client is connected to, it decides whether the
//! client should move so that the expected number of clients per server evens out, and
//! if so enters *reconfig mode*, in which `next` tries the servers that joined with
//! probability `p_new` and the ones that stayed with `p_old` before falling back to the
//! round-robin.
//!
//! The decisions draw from a `java.util.Random`-exact generator (`nextFloat`,
//! `nextInt(bound)` and `Collections.shuffle` over `JavaRandom`), so a provider seeded
//! like upstream's makes the very same choices (see `same_choices_as_upstream` below).
//! State sits behind one lock, as upstream's methods are `synchronized`: the SendThread
//! calls `next`/`on_connected` while the application calls `update_server_list`.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::common::java_random::JavaRandom;
use crate::common::time;

/// One server of the list: the host as the connect string names it and its port
/// (upstream's `InetSocketAddress.createUnresolved`).
pub type Server = (String, u16);

/// What `next` hands out: the server and, when its name resolved, the address to dial.
/// Upstream returns the unresolved address and lets the connect attempt fail; here the
/// caller sees `addr: None` and moves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    pub host: String,
    pub port: u16,
    pub addr: Option<SocketAddr>,
}

impl ServerAddress {
    pub fn unresolved(host: &str, port: u16) -> ServerAddress {
        ServerAddress { host: host.to_owned(), port, addr: None }
    }

    pub fn resolved(host: &str, addr: SocketAddr) -> ServerAddress {
        ServerAddress { host: host.to_owned(), port: addr.port(), addr: Some(addr) }
    }
}

/// `StaticHostProvider.Resolver`: every address of a name; injectable so tests need no
/// DNS.
pub type Resolver = Arc<dyn Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync>;

/// `InetAddress.getAllByName`: an IP literal is its own answer, anything else asks the
/// system resolver.
pub fn system_resolver() -> Resolver {
    Arc::new(|host: &str| {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        (host, 0u16).to_socket_addrs().map(|addrs| addrs.map(|a| a.ip()).collect())
    })
}

/// `InetSocketAddress.equals` between two unresolved addresses: same port, host names
/// equal ignoring case. Splits the new list into old and new servers (`contains`).
fn same_entry(a: &Server, b: &Server) -> bool {
    a.1 == b.1 && a.0.eq_ignore_ascii_case(&b.0)
}

/// Upstream's test of "my server is in the new config": same port and either the same
/// address or the same host string. Entries of the list are unresolved, so the address
/// side only applies when the entry is an IP literal (the form upstream's tests use).
fn is_my_server(entry: &Server, me: &ServerAddress) -> bool {
    if entry.1 != me.port {
        return false;
    }
    if entry.0.eq_ignore_ascii_case(&me.host) {
        return true;
    }
    match entry.0.parse::<IpAddr>() {
        Ok(ip) => me.addr.map(|a| a.ip()) == Some(ip) || me.host.parse::<IpAddr>().ok() == Some(ip),
        Err(_) => false,
    }
}

/// Everything upstream guards with `synchronized (this)`.
struct State {
    server_addresses: Vec<Server>,
    source_of_randomness: JavaRandom,
    last_index: isize,
    current_index: isize,
    // Used to migrate clients during reconfiguration.
    reconfig_mode: bool,
    old_servers: Vec<Server>,
    new_servers: Vec<Server>,
    current_index_old: isize,
    current_index_new: isize,
    p_old: f32,
    p_new: f32,
}

impl State {
    fn index_of(&self, s: &Server) -> isize {
        self.server_addresses.iter().position(|a| same_entry(a, s)).map_or(-1, |i| i as isize)
    }

    fn server_at_index(&self, i: isize) -> Option<Server> {
        if i < 0 {
            return None;
        }
        self.server_addresses.get(i as usize).cloned()
    }

    /// `nextHostInReconfigMode`: one of `new_servers` with probability `p_new`, else one
    /// of `old_servers`; once one side is exhausted the other is tried regardless, and
    /// `None` once both are (back to the round-robin).
    fn next_host_in_reconfig_mode(&mut self) -> Option<Server> {
        let take_new = self.source_of_randomness.next_float() <= self.p_new;
        // A new server if one is left untried, and either the draw says so or every
        // old server has been tried already.
        if ((self.current_index_new + 1) as usize) < self.new_servers.len()
            && (take_new || (self.current_index_old + 1) as usize >= self.old_servers.len())
        {
            self.current_index_new += 1;
            return Some(self.new_servers[self.current_index_new as usize].clone());
        }
        if ((self.current_index_old + 1) as usize) < self.old_servers.len() {
            self.current_index_old += 1;
            return Some(self.old_servers[self.current_index_old as usize].clone());
        }
        None
    }

    /// The locked part of `next`: the server to try and whether to sleep first.
    fn next_server(&mut self, may_sleep: bool) -> (Server, bool) {
        let mut need_to_sleep = false;
        if self.reconfig_mode {
            if let Some(addr) = self.next_host_in_reconfig_mode() {
                self.current_index = self.index_of(&addr);
                return (addr, false);
            }
            // Tried every server of the new plan and could not connect.
            self.reconfig_mode = false;
            need_to_sleep = may_sleep;
        }
        self.current_index += 1;
        if self.current_index as usize >= self.server_addresses.len() {
            self.current_index = 0;
        }
        let addr = self.server_addresses[self.current_index as usize].clone();
        // Sleep once a whole cycle has failed since the last successful connection.
        need_to_sleep = need_to_sleep || (self.current_index == self.last_index && may_sleep);
        if self.last_index == -1 {
            // Never sleep before the very first connection attempt.
            self.last_index = 0;
        }
        (addr, need_to_sleep)
    }
}

pub struct StaticHostProvider {
    state: Mutex<State>,
    resolver: Resolver,
    /// Picks one of a name's addresses (upstream: `Collections.shuffle` with the default
    /// `Random`). Kept apart from the seeded source so resolving never shifts the
    /// rebalancing draws.
    address_random: Mutex<JavaRandom>,
}

impl StaticHostProvider {
    /// Seeded at random, resolving through the system (`StaticHostProvider(Collection)`).
    /// Upstream mixes the clock with the object's identity hash; the clock alone is not
    /// enough: java.util.Random's first draws barely differ between neighbouring seeds,
    /// so clients created in the same few milliseconds shuffled their hosts alike (a
    /// test connecting 30 times in a row landed on the same server every time). std's
    /// RandomState keys are random per process and distinct per call.
    pub fn new(servers: Vec<Server>) -> Result<Self, String> {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_i64(time::current_wall_time());
        Self::with_seed(servers, h.finish() as i64, system_resolver())
    }

    /// `StaticHostProvider(Collection, long)` / `(Collection, Resolver)`: deterministic
    /// choices for tests.
    pub fn with_seed(servers: Vec<Server>, seed: i64, resolver: Resolver) -> Result<Self, String> {
        if servers.is_empty() {
            return Err("A HostProvider may not be empty!".into());
        }
        let mut source_of_randomness = JavaRandom::new(seed);
        let mut server_addresses = servers;
        source_of_randomness.shuffle(&mut server_addresses);
        Ok(StaticHostProvider {
            state: Mutex::new(State {
                server_addresses,
                source_of_randomness,
                last_index: -1,
                current_index: -1,
                reconfig_mode: false,
                old_servers: Vec::new(),
                new_servers: Vec::new(),
                current_index_old: -1,
                current_index_new: -1,
                p_old: 0.0,
                p_new: 0.0,
            }),
            resolver,
            address_random: Mutex::new(JavaRandom::new(seed.rotate_left(17) ^ time::current_wall_time())),
        })
    }

    pub fn size(&self) -> usize {
        self.state.lock().server_addresses.len()
    }

    /// `getServerAtIndex`.
    pub fn server_at_index(&self, i: isize) -> Option<Server> {
        self.state.lock().server_at_index(i)
    }

    /// `getServerAtCurrentIndex`.
    pub fn server_at_current_index(&self) -> Option<Server> {
        let st = self.state.lock();
        st.server_at_index(st.current_index)
    }

    /// The next server to try, resolved now. In reconfig mode it follows the rebalancing
    /// plan; otherwise round-robin, sleeping `spin_delay` (outside the lock, as upstream)
    /// when a whole cycle failed.
    pub fn next(&self, spin_delay: Duration) -> ServerAddress {
        let (server, need_to_sleep) = self.state.lock().next_server(!spin_delay.is_zero());
        if need_to_sleep {
            std::thread::sleep(spin_delay);
        }
        self.resolve(&server)
    }

    /// `resolve`: one of the name's current addresses at random; unresolved when the
    /// name has none.
    fn resolve(&self, (host, port): &Server) -> ServerAddress {
        match (self.resolver)(host) {
            Ok(ips) if !ips.is_empty() => {
                let pick = if ips.len() == 1 { 0 } else { (self.address_random.lock().next_int() as u32 as usize) % ips.len() };
                ServerAddress::resolved(host, SocketAddr::new(ips[pick], *port))
            }
            Ok(_) => ServerAddress::unresolved(host, *port),
            Err(e) => {
                log::error!("Unable to resolve address: {host}:{port} ({e})");
                ServerAddress::unresolved(host, *port)
            }
        }
    }

    /// `onConnected`: the cycle restarts from here, and the rebalancing plan is done.
    pub fn on_connected(&self) {
        let mut st = self.state.lock();
        st.last_index = st.current_index;
        st.reconfig_mode = false;
    }

    /// `updateServerList`: installs `servers` and returns whether this client should
    /// drop its connection for the load to balance. It should when
    /// a) `current_host` is not in the new list, or
    /// b) the ensemble grew: each old server should lose some clients to the new ones,
    ///    so this client moves with probability `1 - |old list| / |new list|` — the
    ///    expected number of clients per server becomes the same everywhere.
    ///
    /// When it should, reconfig mode is on: `next` tries new servers with probability
    /// `p_new` and servers that stayed with `p_old` (the latter only when the current
    /// server left, shrinking the ensemble). `current_host` is `None` when not connected;
    /// then the server of the plan in progress, or the last (first) server is used.
    pub fn update_server_list(&self, servers: Vec<Server>, current_host: Option<&ServerAddress>) -> Result<bool, String> {
        let mut st = self.state.lock();
        let mut shuffled = servers;
        st.source_of_randomness.shuffle(&mut shuffled);
        if shuffled.is_empty() {
            return Err("A HostProvider may not be empty!".into());
        }

        // The "current" server: during a plan, the one the plan would pick now (upstream
        // calls next(0) here, with its side effects on the indexes and the draws).
        let my_server = if st.reconfig_mode {
            let (s, _) = st.next_server(false);
            ServerAddress::unresolved(&s.0, s.1)
        } else if let Some(h) = current_host {
            h.clone()
        } else {
            // Not connected: the last server connected to, else the first of the list.
            let i = if st.last_index >= 0 { st.last_index as usize } else { 0 };
            let s = &st.server_addresses[i.min(st.server_addresses.len() - 1)];
            ServerAddress::unresolved(&s.0, s.1)
        };
        let my_server_in_new_config = shuffled.iter().any(|a| is_my_server(a, &my_server));

        st.reconfig_mode = true;
        // Servers that were in the previous list, and servers that joined.
        let (old, new): (Vec<Server>, Vec<Server>) =
            shuffled.iter().cloned().partition(|a| st.server_addresses.iter().any(|s| same_entry(s, a)));
        let num_old = old.len() as i64;
        let num_new = new.len() as i64;
        let size = st.server_addresses.len() as i64;

        if num_old + num_new > size {
            // The ensemble grew.
            if my_server_in_new_config {
                // My server stays but its load must drop: move with probability
                // 1 - |old| / |new|.
                if st.source_of_randomness.next_float() <= 1.0 - (size as f32) / ((num_old + num_new) as f32) {
                    st.p_new = 1.0;
                    st.p_old = 0.0;
                } else {
                    st.reconfig_mode = false;
                }
            } else {
                // My server left and the old servers must shed load: go to a new one.
                st.p_new = 1.0;
                st.p_old = 0.0;
            }
        } else if my_server_in_new_config {
            // Same size or smaller, my server stays: its load should grow, stay.
            st.reconfig_mode = false;
        } else {
            // My server left a same-size or smaller ensemble: spread over the rest so
            // that old and new servers end up with the same expected load. (Float
            // division as upstream: 0/0 gives NaN, which the `<=` draw never takes.)
            st.p_old = (num_old * (size - (num_old + num_new))) as f32 / ((num_old + num_new) * (size - num_old)) as f32;
            st.p_new = 1.0 - st.p_old;
        }

        st.current_index = if !st.reconfig_mode {
            match st.server_at_index(st.current_index) {
                Some(cur) => shuffled.iter().position(|a| same_entry(a, &cur)).map_or(-1, |i| i as isize),
                None => -1,
            }
        } else {
            -1
        };
        st.server_addresses = shuffled;
        st.old_servers = old;
        st.new_servers = new;
        st.current_index_old = -1;
        st.current_index_new = -1;
        st.last_index = st.current_index;
        Ok(st.reconfig_mode)
    }
}

#[cfg(test)]
mod tests {
    //! Upstream's StaticHostProviderTest. As there, one `Random(1)` per test seeds every
    //! provider with `nextLong()`, and server i of a list is 10.10.10.i:1234+i, listed
    //! from the highest i down.
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    const SLACK_PERCENT: f64 = 10.0;
    const NUM_CLIENTS: usize = 10_000;

    fn server_addresses(size: u8) -> Vec<Server> {
        (1..=size).rev().map(|i| (format!("10.10.10.{i}"), 1234 + i as u16)).collect()
    }

    fn hostnames(size: u8) -> Vec<Server> {
        (1..=size).rev().map(|i| (format!("testhost-{i}.testdomain.com"), 1234 + i as u16)).collect()
    }

    fn ip(a: &str) -> IpAddr {
        a.parse().expect("test literal")
    }

    /// Upstream's `getHostProvider`, over the IP-literal resolver (no DNS in tests).
    fn host_provider(r: &mut JavaRandom, size: u8) -> StaticHostProvider {
        provider_of(r, server_addresses(size))
    }

    fn provider_of(r: &mut JavaRandom, servers: Vec<Server>) -> StaticHostProvider {
        StaticHostProvider::with_seed(servers, r.next_long(), system_resolver()).expect("non-empty")
    }

    fn at(ip_last: u8) -> ServerAddress {
        ServerAddress::resolved(&format!("10.10.10.{ip_last}"), SocketAddr::new(ip(&format!("10.10.10.{ip_last}")), 1234 + ip_last as u16))
    }

    /// The server index (0-based, as upstream's `getPort() - 1235`).
    fn slot(s: &ServerAddress) -> usize {
        (s.port - 1235) as usize
    }

    fn lower_bound_cps(clients: usize, servers: usize) -> f64 {
        (1.0 - SLACK_PERCENT / 100.0) * clients as f64 / servers as f64
    }

    fn upper_bound_cps(clients: usize, servers: usize) -> f64 {
        (1.0 + SLACK_PERCENT / 100.0) * clients as f64 / servers as f64
    }

    fn assert_balanced(counts: &[usize], servers: std::ops::Range<usize>, n: usize) {
        for i in servers {
            let c = counts[i] as f64;
            assert!(c <= upper_bound_cps(NUM_CLIENTS, n) && c >= lower_bound_cps(NUM_CLIENTS, n), "server {i}: {c} clients of {NUM_CLIENTS} over {n}: {counts:?}");
        }
    }

    #[test]
    fn java_draws_match_java_util_random() {
        // Printed by OpenJDK 17: r = new Random(42); r.nextInt(), r.nextFloat(),
        // r.nextInt(10), r.nextLong(); Collections.shuffle([0..9], new Random(7)).
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next_int(), -1170105035);
        assert_eq!(r.next_float(), 0.054665208_f32);
        assert_eq!(r.next_int_bounded(10), 8);
        assert_eq!(r.next_long(), 884324181205335268);
        let mut v: Vec<i32> = (0..10).collect();
        JavaRandom::new(7).shuffle(&mut v);
        assert_eq!(v, [0, 1, 9, 3, 7, 4, 8, 5, 2, 6]);
    }

    /// Upstream sleeps only after a full cycle has failed, never before the first
    /// attempt (a new session used to wait a whole spin delay before connecting).
    #[test]
    fn sleeps_after_a_failed_cycle_not_before_the_first_attempt() {
        let spin = Duration::from_millis(300);
        let one = StaticHostProvider::new(vec![("127.0.0.1".into(), 2181)]).expect("non-empty");
        let t = Instant::now();
        assert!(one.next(spin).addr.is_some());
        assert!(t.elapsed() < spin, "first attempt slept");
        let t = Instant::now();
        one.next(spin);
        assert!(t.elapsed() >= spin, "second attempt at the only server did not sleep");

        let three = StaticHostProvider::new(vec![("127.0.0.1".into(), 2181), ("127.0.0.1".into(), 2182), ("127.0.0.1".into(), 2183)])
            .expect("non-empty");
        let t = Instant::now();
        for _ in 0..3 {
            three.next(spin);
        }
        assert!(t.elapsed() < spin, "slept within the first cycle");
        let t = Instant::now();
        three.next(spin);
        assert!(t.elapsed() >= spin, "no sleep after a whole failed cycle");
        // A successful connection resets the cycle: the next server is tried at once.
        three.on_connected();
        let t = Instant::now();
        three.next(spin);
        assert!(t.elapsed() < spin, "slept right after a connection");
    }

    /// testNextGoesRound, testTwoConsequitiveCallsToNextReturnDifferentElement,
    /// testOnConnectDoesNotReset, testNextDoesNotSleepForZero.
    #[test]
    fn next_goes_round() {
        let mut r = JavaRandom::new(1);
        let hp = host_provider(&mut r, 2);
        let first = hp.next(Duration::ZERO);
        let second = hp.next(Duration::ZERO);
        assert_ne!(first, second);
        assert_eq!(first, hp.next(Duration::ZERO));
        hp.on_connected();
        assert_eq!(second, hp.next(Duration::ZERO), "onConnected does not reset the round");
        let t = Instant::now();
        hp.next(Duration::ZERO);
        assert!(t.elapsed() < Duration::from_millis(50));
    }

    /// testEmptyServerAddressesList.
    #[test]
    fn empty_list_is_refused() {
        assert!(StaticHostProvider::new(Vec::new()).is_err());
        let hp = StaticHostProvider::new(vec![("a".into(), 1)]).expect("non-empty");
        assert!(hp.update_server_list(Vec::new(), None).is_err());
        assert_eq!(hp.size(), 1);
    }

    fn counting_resolver(calls: Arc<AtomicUsize>, answer: impl Fn(&str) -> std::io::Result<Vec<IpAddr>> + Send + Sync + 'static) -> Resolver {
        Arc::new(move |h: &str| {
            calls.fetch_add(1, Ordering::SeqCst);
            answer(h)
        })
    }

    /// testInvalidHostAddresses, testReResolvingSingle/Multiple, testEmptyResolution:
    /// every `next` resolves again; an unresolvable name comes back unresolved.
    #[test]
    fn resolves_on_every_next() {
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = counting_resolver(calls.clone(), |_| Err(std::io::Error::other("unknown host")));
        let hp = StaticHostProvider::with_seed(vec![("a".into(), 1234)], 1, failing).expect("non-empty");
        assert_eq!(hp.next(Duration::ZERO), ServerAddress::unresolved("a", 1234));

        let calls = Arc::new(AtomicUsize::new(0));
        let two = counting_resolver(calls.clone(), |h| {
            Ok(if h.eq_ignore_ascii_case("www.apache.org") { vec![ip("192.168.1.1"), ip("192.168.1.2")] } else { Vec::new() })
        });
        let hp = StaticHostProvider::with_seed(vec![("www.apache.org".into(), 1234), ("www.google.com".into(), 1234)], 1, two)
            .expect("non-empty");
        let mut seen = std::collections::HashSet::new();
        // The address pick is random per process (not from the seed), so ten calls (five
        // on www.apache.org) all land on one address one time in sixteen: go on until
        // both were seen, within a bound that a fair pick misses with odds of 2^-99.
        let mut nexts = 0;
        while nexts < 10 || (seen.len() < 2 && nexts < 200) {
            nexts += 1;
            let n = hp.next(Duration::ZERO);
            hp.on_connected();
            if n.host == "www.google.com" {
                assert_eq!(n.addr, None, "empty resolution gives the unresolved address");
            } else {
                let a = n.addr.expect("resolved");
                assert!(a == SocketAddr::new(ip("192.168.1.1"), 1234) || a == SocketAddr::new(ip("192.168.1.2"), 1234));
                seen.insert(a);
            }
            assert_eq!(hp.size(), 2, "resolving keeps the size of the list");
        }
        assert_eq!(calls.load(Ordering::SeqCst), nexts, "no caching of resolved addresses");
        assert_eq!(seen.len(), 2, "a name's addresses are picked at random");
    }

    /// testUpdateClientMigrateOrNot.
    #[test]
    fn update_client_migrate_or_not() {
        let mut r = JavaRandom::new(1);
        let hp = host_provider(&mut r, 4); // 10.10.10.4:1238 .. 10.10.10.1:1235
        let mut my_server = at(3);

        // Fewer servers, mine stays.
        assert!(!hp.update_server_list(server_addresses(3), Some(&my_server)).expect("non-empty"));
        hp.on_connected();
        // Same number of servers, mine stays.
        assert!(!hp.update_server_list(server_addresses(3), Some(&my_server)).expect("non-empty"));
        hp.on_connected();
        // Fewer servers, mine left.
        assert!(hp.update_server_list(server_addresses(2), Some(&my_server)).expect("non-empty"));
        hp.on_connected();
        // Same number, mine left.
        assert!(hp.update_server_list(server_addresses(2), Some(&my_server)).expect("non-empty"));
        hp.on_connected();
        // More servers, mine left: 10.10.10.4 .. 10.10.10.2 while connected to .1.
        let new_list: Vec<Server> = (2..=4u8).rev().map(|i| (format!("10.10.10.{i}"), 1234 + i as u16)).collect();
        my_server = at(1);
        assert!(hp.update_server_list(new_list, Some(&my_server)).expect("non-empty"));
        hp.on_connected();

        // More servers, mine stays: 9 → 10 servers, so 1 - 9/10 of the clients move.
        let mut disconnects = 0;
        for _ in 0..NUM_CLIENTS {
            let c = host_provider(&mut r, 9);
            if c.update_server_list(server_addresses(10), Some(&my_server)).expect("non-empty") {
                disconnects += 1;
            }
        }
        assert!((disconnects as f64) < upper_bound_cps(NUM_CLIENTS, 10), "{disconnects}");
        assert!((disconnects as f64) > lower_bound_cps(NUM_CLIENTS, 10), "{disconnects}");
        assert_eq!(disconnects, 981, "upstream's provider, same seeds");
    }

    /// testUpdateMigrationGoesRound: with p_new = 1 the plan tries every joining server,
    /// then the ones that stayed, then goes back to the plain round-robin.
    #[test]
    fn update_migration_goes_round() {
        let mut r = JavaRandom::new(1);
        let hp = host_provider(&mut r, 4); // 1238, 1237, 1236, 1235
        let new_list: Vec<Server> = (3..=12u8).rev().map(|i| (format!("10.10.10.{i}"), 1234 + i as u16)).collect();
        let old_staying: Vec<u16> = vec![1238, 1237];
        let new_coming: Vec<u16> = (5..=12u16).map(|i| 1234 + i).collect();

        assert!(hp.update_server_list(new_list.clone(), Some(&at(1))).expect("non-empty"));
        // The order upstream's provider takes with the same seed (new servers, old
        // servers, then the round-robin over the shuffled list).
        let order: Vec<u16> = {
            let copy = provider_of(&mut JavaRandom::new(1), server_addresses(4));
            assert!(copy.update_server_list(new_list.clone(), Some(&at(1))).expect("non-empty"));
            (0..20).map(|_| copy.next(Duration::ZERO).port).collect()
        };
        assert_eq!(order, [1242, 1243, 1244, 1241, 1245, 1246, 1240, 1239, 1237, 1238, 1246, 1240, 1239, 1237, 1242, 1243, 1244, 1241, 1245, 1238]);
        let mut seen = Vec::new();
        for _ in 0..new_coming.len() {
            let p = hp.next(Duration::ZERO).port;
            assert!(new_coming.contains(&p) && !seen.contains(&p), "{p} after {seen:?}");
            seen.push(p);
        }
        seen.clear();
        for _ in 0..old_staying.len() {
            let p = hp.next(Duration::ZERO).port;
            assert!(old_staying.contains(&p) && !seen.contains(&p), "{p} after {seen:?}");
            seen.push(p);
        }
        let first = hp.next(Duration::ZERO);
        for _ in 0..new_list.len() - 1 {
            hp.next(Duration::ZERO);
        }
        assert_eq!(first, hp.next(Duration::ZERO));
        hp.on_connected();
    }

    /// One round of upstream's load tests: every client learns `new_list`; those told
    /// to move take `next(0)`. Returns clients per server.
    fn rebalance(clients: &[StaticHostProvider], cur: &mut [Option<ServerAddress>], new_list: &[Server]) -> [usize; 9] {
        let mut counts = [0usize; 9];
        for (hp, c) in clients.iter().zip(cur.iter_mut()) {
            if hp.update_server_list(new_list.to_vec(), c.as_ref()).expect("non-empty") {
                *c = Some(hp.next(Duration::ZERO));
            }
            counts[slot(c.as_ref().expect("connected"))] += 1;
            hp.on_connected();
        }
        counts
    }

    /// testUpdateLoadBalancing: 10 000 clients over 9 servers; servers leave and join,
    /// and after every change each server has its share ± 10 %.
    #[test]
    fn update_load_balancing() {
        let mut r = JavaRandom::new(1);
        let clients: Vec<StaticHostProvider> = (0..NUM_CLIENTS).map(|_| host_provider(&mut r, 9)).collect();
        let mut cur: Vec<Option<ServerAddress>> = Vec::with_capacity(NUM_CLIENTS);
        let mut counts = [0usize; 9];
        for hp in &clients {
            let s = hp.next(Duration::ZERO);
            counts[slot(&s)] += 1;
            cur.push(Some(s));
            hp.on_connected();
        }
        assert_balanced(&counts, 0..9, 9);
        assert_eq!(counts, UPSTREAM_LOAD_BALANCING[0]);

        // Remove server 8 (the last of 9).
        let counts = rebalance(&clients, &mut cur, &server_addresses(8));
        assert_balanced(&counts, 0..8, 8);
        assert_eq!(counts[8], 0);
        assert_eq!(counts, UPSTREAM_LOAD_BALANCING[1]);

        // Remove 6 and 7.
        let counts = rebalance(&clients, &mut cur, &server_addresses(6));
        assert_balanced(&counts, 0..6, 6);
        assert_eq!(&counts[6..], &[0, 0, 0]);
        assert_eq!(counts, UPSTREAM_LOAD_BALANCING[2]);

        // Remove 0, add back 6, 7 and 8.
        let list: Vec<Server> = (2..=9u8).rev().map(|i| (format!("10.10.10.{i}"), 1234 + i as u16)).collect();
        let counts = rebalance(&clients, &mut cur, &list);
        assert_eq!(counts[0], 0);
        assert_balanced(&counts, 1..9, 8);
        assert_eq!(counts, UPSTREAM_LOAD_BALANCING[3]);

        // Add back 0.
        let counts = rebalance(&clients, &mut cur, &server_addresses(9));
        assert_balanced(&counts, 0..9, 9);
        assert_eq!(counts, UPSTREAM_LOAD_BALANCING[4]);
    }

    /// Clients per server after each round of testUpdateLoadBalancing, as upstream's
    /// StaticHostProvider (zookeeper 3.8.0 jar, OpenJDK 17) gives them with the same
    /// seeds: the Rust provider makes the very same choices.
    const UPSTREAM_LOAD_BALANCING: [[usize; 9]; 5] = [
        [1098, 1112, 1160, 1077, 1099, 1083, 1119, 1122, 1130],
        [1224, 1262, 1319, 1231, 1246, 1218, 1241, 1259, 0],
        [1653, 1681, 1749, 1624, 1675, 1618, 0, 0, 0],
        [0, 1281, 1313, 1201, 1248, 1200, 1266, 1206, 1285],
        [1134, 1124, 1165, 1064, 1102, 1069, 1145, 1055, 1142],
    ];

    /// testNoCurrentHostDuringNormalMode: half the clients are not connected when the
    /// list changes (no current host; first the never-connected case, then the
    /// connected-before case).
    #[test]
    fn no_current_host_during_normal_mode() {
        let mut r = JavaRandom::new(1);
        let clients: Vec<StaticHostProvider> = (0..NUM_CLIENTS).map(|_| host_provider(&mut r, 9)).collect();
        let mut cur: Vec<Option<ServerAddress>> =
            clients.iter().enumerate().map(|(i, hp)| if i >= NUM_CLIENTS / 2 { Some(hp.next(Duration::ZERO)) } else { None }).collect();

        // Remove 7 and 8; current host None with last_index -1 for the first half.
        let mut counts = [0usize; 9];
        for (hp, c) in clients.iter().zip(cur.iter_mut()) {
            if hp.update_server_list(server_addresses(7), c.as_ref()).expect("non-empty") {
                *c = Some(hp.next(Duration::ZERO));
            } else if c.is_none() {
                // Not moved: it is on the first server of the list.
                let (h, p) = hp.server_at_index(0).expect("non-empty");
                *c = Some(ServerAddress::unresolved(&h, p));
            }
            counts[slot(c.as_ref().expect("set"))] += 1;
            hp.on_connected();
        }
        assert_balanced(&counts, 0..7, 7);
        assert_eq!(&counts[7..], &[0, 0]);
        assert_eq!(counts, [1438, 1419, 1453, 1362, 1457, 1397, 1474, 0, 0], "upstream's provider, same seeds");

        // Add back 7; current host None with last_index ≥ 0 for the first half.
        let mut counts = [0usize; 9];
        for (i, (hp, c)) in clients.iter().zip(cur.iter_mut()).enumerate() {
            let mine = if i < NUM_CLIENTS / 2 { None } else { c.clone() };
            if hp.update_server_list(server_addresses(8), mine.as_ref()).expect("non-empty") {
                *c = Some(hp.next(Duration::ZERO));
            }
            counts[slot(c.as_ref().expect("set"))] += 1;
            hp.on_connected();
        }
        assert_balanced(&counts, 0..8, 8);
        assert_eq!(counts, [1271, 1241, 1276, 1206, 1276, 1220, 1287, 1223, 0], "upstream's provider, same seeds");
    }

    /// testReconfigDuringReconfigMode: a second list arrives before the client followed
    /// the first plan; the "current" server is then the one the plan picks.
    #[test]
    fn reconfig_during_reconfig_mode() {
        let mut r = JavaRandom::new(1);
        let clients: Vec<StaticHostProvider> = (0..NUM_CLIENTS).map(|_| host_provider(&mut r, 9)).collect();
        let cur: Vec<ServerAddress> = clients.iter().map(|hp| hp.next(Duration::ZERO)).collect();
        for (hp, c) in clients.iter().zip(&cur) {
            hp.update_server_list(server_addresses(7), Some(c)).expect("non-empty");
        }
        let mut counts = [0usize; 9];
        for (i, (hp, c)) in clients.iter().zip(&cur).enumerate() {
            let mine = if i < NUM_CLIENTS / 2 { None } else { Some(c) };
            let now = if hp.update_server_list(server_addresses(9), mine).expect("non-empty") {
                hp.next(Duration::ZERO)
            } else {
                // The index was set by the plan's pick inside update_server_list.
                let (h, p) = hp.server_at_current_index().expect("current index set");
                ServerAddress::unresolved(&h, p)
            };
            counts[slot(&now)] += 1;
            hp.on_connected();
        }
        assert_balanced(&counts, 0..9, 9);
        assert_eq!(counts, [1108, 1120, 1142, 1083, 1122, 1073, 1142, 1113, 1097], "upstream's provider, same seeds");
    }

    /// testUpdateServerList_UnresolvedHostnames_*: host names compare as names.
    #[test]
    fn update_with_unresolved_hostnames() {
        let mut r = JavaRandom::new(1);
        let mine = ServerAddress::unresolved("testhost-3.testdomain.com", 1237);
        // Fewer servers, mine stays.
        let hp = provider_of(&mut r, hostnames(4));
        assert!(!hp.update_server_list(hostnames(3), Some(&mine)).expect("non-empty"));
        // Same number, mine stays.
        let hp = provider_of(&mut r, hostnames(3));
        assert!(!hp.update_server_list(hostnames(3), Some(&mine)).expect("non-empty"));
        // Fewer, mine left.
        let hp = provider_of(&mut r, hostnames(3));
        assert!(hp.update_server_list(hostnames(2), Some(&mine)).expect("non-empty"));
        // Same number, mine (testhost-4 on 1237) is not in it.
        let hp = provider_of(&mut r, hostnames(3));
        assert!(hp.update_server_list(hostnames(3), Some(&ServerAddress::unresolved("testhost-4.testdomain.com", 1237))).expect("non-empty"));
    }

    /// testUpdateServerList_{Resolved,UnResolved}With{Resolved,UnResolved}Address_*:
    /// the connection's host is the name it was reached by, resolved or not.
    #[test]
    fn update_with_resolved_and_unresolved_current_host() {
        let counter = Arc::new(AtomicUsize::new(1));
        let test_resolver: Resolver = Arc::new(move |name: &str| {
            if name.contains("resolvable") {
                let n = counter.fetch_add(1, Ordering::SeqCst) % 10;
                Ok(vec![IpAddr::from([10, 0, 0, n as u8])])
            } else {
                Err(std::io::Error::other("unknown host"))
            }
        });
        let one = |h: &str| StaticHostProvider::with_seed(vec![(h.to_owned(), 1235)], 1, test_resolver.clone()).expect("non-empty");

        // Resolved current host, same name in the new list: stay.
        let hp = one("testhost-1.resolvable.zk");
        let current = hp.next(Duration::from_millis(100));
        assert!(current.addr.is_some());
        assert!(!hp.update_server_list(vec![("testhost-1.resolvable.zk".into(), 1235)], Some(&current)).expect("non-empty"));

        // Unresolvable current host, another name in the new list: move.
        let hp = one("testhost-1.zookeepertest.zk");
        let current = hp.next(Duration::from_millis(100));
        assert!(current.addr.is_none());
        assert!(hp.update_server_list(vec![("testhost-1.resolvable.zk".into(), 1235)], Some(&current)).expect("non-empty"));

        // Unresolvable current host, same name in the new list: stay.
        let hp = one("testhost-1.zookeepertest.zk");
        let current = hp.next(Duration::from_millis(100));
        assert!(!hp.update_server_list(vec![("testhost-1.zookeepertest.zk".into(), 1235)], Some(&current)).expect("non-empty"));
    }

    /// The list as the decision sees it: the current server matched by address when the
    /// new list names it by IP literal.
    #[test]
    fn current_host_matches_an_ip_literal_entry() {
        let mine = ServerAddress::resolved("localhost", SocketAddr::new(ip("127.0.0.1"), 2181));
        assert!(is_my_server(&("127.0.0.1".into(), 2181), &mine));
        assert!(is_my_server(&("LOCALHOST".into(), 2181), &mine));
        assert!(!is_my_server(&("127.0.0.1".into(), 2182), &mine));
        assert!(is_my_server(&("0:0:0:0:0:0:0:1".into(), 1), &ServerAddress::unresolved("::1", 1)));
    }
}
