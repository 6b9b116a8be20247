//! `StaticHostProvider`: the server list, shuffled once, tried round-robin, sleeping
//! `spin_delay` after each full cycle without success.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::common::java_random::JavaRandom;
use crate::common::time;

pub struct StaticHostProvider {
    servers: Vec<(String, u16)>,
    last_index: isize,
    current_index: isize,
    random: JavaRandom,
}

impl StaticHostProvider {
    pub fn new(mut servers: Vec<(String, u16)>) -> Self {
        let mut random = JavaRandom::new(time::current_wall_time() ^ 0x5DEE_CE66);
        // Fisher-Yates with the seeded generator (Collections.shuffle's shape).
        for i in (1..servers.len()).rev() {
            let j = (random.next_int() as u32 as usize) % (i + 1);
            servers.swap(i, j);
        }
        StaticHostProvider { servers, last_index: -1, current_index: -1, random }
    }

    pub fn size(&self) -> usize {
        self.servers.len()
    }

    /// The next address to try; sleeps `spin_delay` when a whole cycle failed.
    pub fn next(&mut self, spin_delay: Duration) -> Option<SocketAddr> {
        self.current_index += 1;
        if self.current_index as usize >= self.servers.len() {
            self.current_index = 0;
        }
        // As StaticHostProvider.next: sleep once a whole cycle of servers has failed
        // since the last successful connection, but never before the very first attempt.
        let needs_sleep = self.current_index == self.last_index && !spin_delay.is_zero();
        if self.last_index == -1 {
            self.last_index = 0;
        }
        if needs_sleep {
            std::thread::sleep(spin_delay);
        }
        let (host, port) = &self.servers[self.current_index as usize];
        let addrs: Vec<SocketAddr> = (host.as_str(), *port).to_socket_addrs().map(|a| a.collect()).unwrap_or_default();
        if addrs.is_empty() {
            log::warn!("Unable to resolve address: {host}:{port}");
            return None;
        }
        let pick = (self.random.next_int() as u32 as usize) % addrs.len();
        Some(addrs[pick])
    }

    pub fn on_connected(&mut self) {
        self.last_index = self.current_index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Upstream sleeps only after a full cycle has failed, never before the first
    /// attempt (a new session used to wait a whole spin delay before connecting).
    #[test]
    fn sleeps_after_a_failed_cycle_not_before_the_first_attempt() {
        let spin = Duration::from_millis(300);
        let mut one = StaticHostProvider::new(vec![("127.0.0.1".into(), 2181)]);
        let t = Instant::now();
        assert!(one.next(spin).is_some());
        assert!(t.elapsed() < spin, "first attempt slept");
        let t = Instant::now();
        one.next(spin);
        assert!(t.elapsed() >= spin, "second attempt at the only server did not sleep");

        let mut three = StaticHostProvider::new(vec![
            ("127.0.0.1".into(), 2181),
            ("127.0.0.1".into(), 2182),
            ("127.0.0.1".into(), 2183),
        ]);
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
}
