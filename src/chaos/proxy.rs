//! A TCP proxy in front of one peer's quorum or election port, as seen by one other
//! peer: the way `zk-chaos` cuts links between ensemble members without root, `tc` or
//! network namespaces.
//!
//! Every peer's zoo.cfg names each *other* peer at a proxy address of its own (peer i
//! reaches peer j through the proxy `i->j`), while a peer's own `server.N` line keeps its
//! real ports. That is only safe with `reconfigEnabled=false`: the configs differ in
//! addresses, and a peer must never adopt another's view (upstream's
//! `QuorumPeer.processReconfig` is a no-op then).
//!
//! A cut behaves like a partition, not like a refused connection: the proxy keeps
//! accepting, reads what each side sends and throws it away. Peers notice only through
//! their own timeouts (`syncLimit`, the election's notification timeouts), as they would
//! on a real network. Connections that lived through a cut are closed when it heals
//! (their bytes were lost; TCP would have given up on them too), so the peers reconnect.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use parking_lot::Mutex;

/// How often blocked accepts and reads look at the stop and cut flags.
const POLL: Duration = Duration::from_millis(50);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

struct Conn {
    a: TcpStream,
    b: Option<TcpStream>,
    /// Set by a cut: nothing more is forwarded; closed at the heal.
    blackholed: AtomicBool,
}

impl Conn {
    fn close(&self) {
        let _ = self.a.shutdown(Shutdown::Both);
        if let Some(b) = &self.b {
            let _ = b.shutdown(Shutdown::Both);
        }
    }
}

struct State {
    cut: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<Arc<Conn>>>,
}

/// One direction of one link: `listen` forwards to `target` unless cut.
pub struct LinkProxy {
    name: String,
    listen: SocketAddr,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl LinkProxy {
    /// Binds `listen` (a free loopback port) and starts the accept thread
    /// `ChaosProxy-<name>`.
    pub fn start(name: &str, listen: SocketAddr, target: SocketAddr) -> Result<LinkProxy, String> {
        let listener = TcpListener::bind(listen).map_err(|e| format!("proxy {name}: cannot bind {listen}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("proxy {name}: {e}"))?;
        let state = Arc::new(State { cut: AtomicBool::new(false), stop: AtomicBool::new(false), conns: Mutex::new(Vec::new()) });
        let st = state.clone();
        let tname = name.to_owned();
        let acceptor = thread::Builder::new()
            .name(format!("ChaosProxy-{name}"))
            .spawn(move || accept_loop(&tname, listener, target, st))
            .map_err(|e| format!("proxy {name}: cannot start its thread: {e}"))?;
        Ok(LinkProxy { name: name.to_owned(), listen, state, acceptor: Some(acceptor) })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn is_cut(&self) -> bool {
        self.state.cut.load(Ordering::Acquire)
    }

    /// From now on nothing crosses: live connections and new ones are read and discarded.
    pub fn cut(&self) {
        // Under the lock, so a connection being registered sees either the flag or the
        // marking (see accept_loop).
        let conns = self.state.conns.lock();
        self.state.cut.store(true, Ordering::Release);
        for c in conns.iter() {
            c.blackholed.store(true, Ordering::Release);
        }
        log::debug!("proxy {}: cut", self.name);
    }

    /// Traffic flows again; connections that lived through the cut are closed.
    pub fn heal(&self) {
        let mut conns = self.state.conns.lock();
        self.state.cut.store(false, Ordering::Release);
        conns.retain(|c| {
            if c.blackholed.load(Ordering::Acquire) {
                c.close();
                false
            } else {
                true
            }
        });
        log::debug!("proxy {}: healed", self.name);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        for c in self.state.conns.lock().drain(..) {
            c.close();
        }
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(name: &str, listener: TcpListener, target: SocketAddr, st: Arc<State>) {
    let mut pumps: Vec<JoinHandle<()>> = Vec::new();
    while !st.stop.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((a, _)) => {
                let _ = a.set_nonblocking(false);
                let _ = a.set_nodelay(true);
                let cut = st.cut.load(Ordering::Acquire);
                let b = if cut {
                    None
                } else {
                    match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
                        Ok(b) => {
                            let _ = b.set_nodelay(true);
                            Some(b)
                        }
                        // The peer is down: the client sees the close, as with no proxy.
                        Err(_) => {
                            let _ = a.shutdown(Shutdown::Both);
                            continue;
                        }
                    }
                };
                let conn = Arc::new(Conn { a, b, blackholed: AtomicBool::new(cut) });
                {
                    // A cut that came while connecting to the target applies too.
                    let mut conns = st.conns.lock();
                    if st.cut.load(Ordering::Acquire) {
                        conn.blackholed.store(true, Ordering::Release);
                    }
                    conns.push(conn.clone());
                }
                for forward in [true, false] {
                    let (c, s) = (conn.clone(), st.clone());
                    if forward || conn.b.is_some() {
                        if let Ok(h) = thread::Builder::new().name(format!("ChaosProxyPump-{name}")).spawn(move || pump(&c, forward, &s)) {
                            pumps.push(h);
                        } else {
                            conn.close();
                        }
                    }
                }
                pumps.retain(|h| !h.is_finished());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => thread::sleep(POLL),
            Err(e) => {
                log::warn!("proxy {name}: accept failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
    for h in pumps {
        let _ = h.join();
    }
}

/// Copies one direction (`a -> b` when `forward`, else `b -> a`) until either side
/// closes, the proxy stops, or — once blackholed — forever discarding.
fn pump(c: &Conn, forward: bool, st: &State) {
    let (mut from, to) = match (forward, &c.b) {
        (true, b) => (&c.a, b.as_ref()),
        (false, Some(b)) => (b, Some(&c.a)),
        (false, None) => return,
    };
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if st.stop.load(Ordering::Acquire) {
            return;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if c.blackholed.load(Ordering::Acquire) {
                    continue;
                }
                let Some(mut to) = to else { continue };
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => break,
        }
    }
    // A close crosses only a live link: across a partition nobody hears it.
    if !c.blackholed.load(Ordering::Acquire) {
        c.close();
        st.conns.lock().retain(|x| !std::ptr::eq(x.as_ref(), c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn free_addr() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    }

    /// An echo server; returns its address.
    fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                thread::spawn(move || {
                    let mut s = s;
                    let mut b = [0u8; 1024];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn forwards_then_blackholes_then_closes_at_heal() {
        let p = LinkProxy::start("t", free_addr(), echo()).expect("proxy");
        let mut s = TcpStream::connect(p.listen_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        assert_eq!(roundtrip(&mut s, b"hello").expect("echo"), b"hello");

        p.cut();
        // Writes still succeed, nothing comes back: a partition, not a reset.
        let t0 = Instant::now();
        let r = roundtrip(&mut s, b"lost");
        assert!(r.is_err(), "data crossed a cut link: {r:?}");
        assert!(t0.elapsed() >= Duration::from_millis(400));
        // A new connection during the cut is accepted and hears nothing either.
        let mut s2 = TcpStream::connect(p.listen_addr()).expect("connect during cut");
        s2.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        assert!(roundtrip(&mut s2, b"x").is_err());

        p.heal();
        // Connections that lived through the cut are closed at the heal ...
        let mut b = [0u8; 8];
        s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
        // ... and new ones work again.
        let mut s3 = TcpStream::connect(p.listen_addr()).expect("connect after heal");
        s3.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        assert_eq!(roundtrip(&mut s3, b"again").expect("echo after heal"), b"again");
    }

    #[test]
    fn target_down_closes_the_client() {
        let p = LinkProxy::start("down", free_addr(), free_addr()).expect("proxy");
        let mut s = TcpStream::connect(p.listen_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let mut b = [0u8; 4];
        assert!(matches!(s.read(&mut b), Ok(0) | Err(_)));
    }
}
