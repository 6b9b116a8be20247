//! Bad input on the election port of a running in-process ensemble (loopback sockets).
//!
//! Voters 1..4; 1 and 2 start first (2 of 4: no quorum, so they keep LOOKING), and a raw
//! client attacks peer 2 while it is LOOKING; then 3 starts and the three must elect 3;
//! then the same attacks hit peer 2 while it FOLLOWs; then 4 starts and must learn the
//! leader. Each attack checks what upstream's QuorumCnxManager / WorkerReceiver would
//! do (the Java method is named at each case), the log line, that the socket is closed
//! when upstream closes it, and that every thread it cost is given back: the peer's
//! worker count (`QuorumCnxManager::thread_count`) and the process's thread count
//! (/proc/self/task) return to their baseline. Connection-pool threads are counted
//! apart: like upstream's ThreadPoolExecutor they stay idle for 60 s to be reused, so
//! the test bounds them instead.
//!
//! One #[test]: the thread counts are process-wide, so nothing may run beside it.

#[path = "support/election.rs"]
mod election;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use election::{eventually, logs, process_threads, Ensemble};
use zookeeper::server::quorum::fast_leader_election::notification::{build_msg, decode, RawNotification};
use zookeeper::server::quorum::quorum_cnx_manager::initial_message::{encode, PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2};
use zookeeper::server::quorum::quorum_cnx_manager::{PACKETMAXSIZE, QUORUM_CNXN_THREADS_SIZE_DEFAULT};
use zookeeper::server::quorum::quorum_peer::run::{ElectionOnly, RunningPeer};
use zookeeper::server::quorum::vote::ServerState;

const WAIT: Duration = Duration::from_secs(5);
/// tickTime 200 × syncLimit 5: the read timeout of an election socket until its
/// handshake is done (`QuorumPeer.getQuorumCnxnTimeout` falls back to it).
const SOCKET_TIMEOUT: Duration = Duration::from_millis(1000);
/// Not in the configuration, larger than every member.
const STRANGER_HIGH: i64 = 99;
/// Not in the configuration, smaller than the target's id.
const STRANGER_LOW: i64 = 0;
/// A voter of the configuration that is not running (until the end).
const IDLE_VOTER: i64 = 4;

struct Cluster {
    ens: Ensemble,
    dirs: Vec<tempfile::TempDir>,
    peers: Vec<Arc<RunningPeer>>,
}

impl Cluster {
    fn start(&mut self, sid: i64) {
        let dir = tempfile::tempdir().expect("tmp");
        let peer = self.ens.peer(sid, dir.path(), 0, 0);
        self.peers.push(RunningPeer::start(peer, Arc::new(ElectionOnly)).expect("start"));
        self.dirs.push(dir);
    }

    fn get(&self, sid: i64) -> &Arc<RunningPeer> {
        self.peers.iter().find(|p| p.peer.myid == sid).expect("running peer")
    }

    fn pool_threads(&self) -> usize {
        self.peers.iter().map(|p| p.qcm.pool_thread_count()).sum()
    }

    /// Process threads that are not idle pool threads.
    fn fixed_threads(&self) -> i64 {
        process_threads() as i64 - self.pool_threads() as i64
    }

    fn states(&self) -> Vec<(i64, ServerState, i64)> {
        self.peers.iter().map(|p| (p.peer.myid, p.peer.peer_state(), p.peer.current_vote().id)).collect()
    }
}

/// What one attack must leave as it found it.
struct Baseline {
    workers: i64,
    fixed: i64,
    pool_max: usize,
}

struct Attacker<'a> {
    cluster: &'a Cluster,
    target: i64,
    addr: SocketAddr,
    base: Baseline,
}

impl Attacker<'_> {
    fn new(cluster: &Cluster, target: i64) -> Attacker<'_> {
        let port = cluster.ens.election_port(target);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let rp = cluster.get(target);
        // Settle: the peer's own connections are up and stay so.
        let mut last = (-1, -1);
        assert!(
            eventually(Duration::from_secs(10), || {
                std::thread::sleep(Duration::from_millis(300));
                let now = (rp.qcm.thread_count(), cluster.fixed_threads());
                let stable = now == last;
                last = now;
                stable
            }),
            "no steady thread count"
        );
        let base = Baseline {
            workers: rp.qcm.thread_count(),
            fixed: cluster.fixed_threads(),
            pool_max: cluster.pool_threads() + 4,
        };
        Attacker { cluster, target, addr, base }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, WAIT).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    fn workers(&self) -> i64 {
        self.cluster.get(self.target).qcm.thread_count()
    }

    /// Every thread the attack cost is back: the peer's workers, the process's threads
    /// (pool threads apart), and the pool stayed small.
    fn assert_no_thread_kept(&self, case: &str) {
        let ok = eventually(WAIT, || self.workers() == self.base.workers && self.cluster.fixed_threads() == self.base.fixed);
        assert!(
            ok,
            "{case}: threads not given back: workers {} (baseline {}), process threads {} (baseline {}, pool {})",
            self.workers(),
            self.base.workers,
            self.cluster.fixed_threads(),
            self.base.fixed,
            self.cluster.pool_threads()
        );
        assert!(self.cluster.pool_threads() <= self.base.pool_max, "{case}: pool grew to {}", self.cluster.pool_threads());
        assert!(self.cluster.pool_threads() <= self.cluster.peers.len() * QUORUM_CNXN_THREADS_SIZE_DEFAULT);
    }

    /// Sends `bytes` on a fresh connection, expects the peer to close it within `within`
    /// and a log line with every one of `log`, then that no thread is kept.
    fn expect_dropped(&self, case: &str, bytes: &[u8], log: &[&str], within: Duration) {
        let mark = logs::mark();
        let mut s = self.connect();
        let _ = s.write_all(bytes);
        assert!(closed_by_peer(&mut s, within), "{case}: connection not closed within {within:?}");
        logs::expect(mark, log, WAIT);
        self.assert_no_thread_kept(case);
    }

    /// A connection with a valid handshake from `sid`, kept by the target (sid > target).
    fn handshake(&self, sid: i64) -> TcpStream {
        let mut s = self.connect();
        s.write_all(&encode(PROTOCOL_VERSION_V1, sid, &["127.0.0.1:1".into()])).expect("handshake");
        let rp = self.cluster.get(self.target);
        assert!(eventually(WAIT, || rp.qcm.connected_to_peer(sid)), "handshake from {sid} not kept");
        assert!(eventually(WAIT, || self.workers() == self.base.workers + 2), "no worker pair for {sid}");
        s
    }
}

/// Reads until EOF (true) or until `wait` passes with the socket still open (false).
fn closed_by_peer(s: &mut TcpStream, wait: Duration) -> bool {
    let end = Instant::now() + wait;
    let mut b = [0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Reads frames until one decodes to a notification that satisfies `want`.
fn await_notification(s: &mut TcpStream, want: impl Fn(&RawNotification) -> bool) -> Option<RawNotification> {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        s.set_read_timeout(Some(end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)))).ok()?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let len = i32::from_be_bytes(len);
        if !(1..=PACKETMAXSIZE).contains(&len) {
            return None;
        }
        let mut b = vec![0u8; len as usize];
        s.read_exact(&mut b).ok()?;
        if let Ok(n) = decode(&b) {
            if want(&n) {
                return Some(n);
            }
        }
    }
    None
}

fn initial_with_len(sid: i64, len: i32, body: &[u8]) -> Vec<u8> {
    let mut m = PROTOCOL_VERSION_V1.to_be_bytes().to_vec();
    m.extend_from_slice(&sid.to_be_bytes());
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Every attack, against `target` in whatever state it is in.
fn attack(cluster: &Cluster, target: i64) {
    let a = Attacker::new(cluster, target);
    let me = format!("my id = {target}");
    let t = SOCKET_TIMEOUT + WAIT;

    // --- Before or during the handshake (QuorumCnxManager.handleConnection and
    // --- InitialMessage.parse): each closes the socket and logs why.
    a.expect_dropped("garbage (0xff...)", &[0xff; 24], &["Initial message parsing error!", "Got unrecognized protocol version -1"], t);
    a.expect_dropped("wrong protocol version", &encode(-7, 7, &["127.0.0.1:1".into()]), &["Got unrecognized protocol version -7"], t);
    a.expect_dropped("address length 2049", &initial_with_len(7, 2049, b"x"), &["Unreasonable buffer length: 2049"], t);
    a.expect_dropped("address length -1", &initial_with_len(7, -1, b""), &["Unreasonable buffer length: -1"], t);
    a.expect_dropped("address length 0", &initial_with_len(7, 0, b""), &["Unreasonable buffer length: 0"], t);
    for (addr, why) in [("nohost", "Badly formed address: nohost"), ("h:x", "Bad port number: x"), ("h:1:2", "Badly formed address: h:1:2")] {
        a.expect_dropped(addr, &encode(PROTOCOL_VERSION_V2, 7, &[addr.into()]), &[why], t);
    }
    a.expect_dropped("multi-byte after ']'", &encode(PROTOCOL_VERSION_V1, 7, &["[a]\u{e9}".into()]), &["Badly formed address: [a]\u{e9}"], t);
    // The address cut short: "Read only 4 bytes out of 10". The client half-closes so the
    // parse sees EOF at once.
    {
        let mark = logs::mark();
        let mut s = a.connect();
        s.write_all(&initial_with_len(7, 10, b"h:12")).expect("write");
        s.shutdown(Shutdown::Write).expect("half close");
        assert!(closed_by_peer(&mut s, t), "short address: not closed");
        logs::expect(mark, &["Read only 4 bytes out of 10 sent by server 7"], WAIT);
        a.assert_no_thread_kept("short address");
    }
    // Three bytes then EOF: an IO error while reading the first long.
    {
        let mark = logs::mark();
        let mut s = a.connect();
        s.write_all(&[1, 2, 3]).expect("write");
        s.shutdown(Shutdown::Write).expect("half close");
        assert!(closed_by_peer(&mut s, t), "3 bytes: not closed");
        logs::expect(mark, &["Exception reading or writing challenge"], WAIT);
        a.assert_no_thread_kept("3 bytes");
    }
    // Silence: dropped once the handshake read times out (tickTime × syncLimit), not
    // before, and not much later. Upstream reads it on the listener thread (or the
    // pool with SASL) with the same SO_TIMEOUT.
    {
        let mark = logs::mark();
        let start = Instant::now();
        let mut s = a.connect();
        assert!(closed_by_peer(&mut s, SOCKET_TIMEOUT * 4), "silent connection kept");
        let took = start.elapsed();
        assert!(took >= SOCKET_TIMEOUT.mul_f32(0.8), "dropped after {took:?}, before the socket timeout");
        assert!(took <= SOCKET_TIMEOUT * 3, "dropped only after {took:?}");
        logs::expect(mark, &["Exception reading or writing challenge"], WAIT);
        a.assert_no_thread_kept("silent");
    }
    // 25 bad addresses in a row (more than the pool's 20 threads) and the peer still
    // handshakes: no pool thread was lost on the way (the multi-byte address used to
    // panic a pool thread and leak its slot).
    for i in 0..25 {
        let mut s = a.connect();
        let _ = s.write_all(&encode(PROTOCOL_VERSION_V1, 7, &[format!("[a]\u{e9}{}", if i % 2 == 0 { "" } else { ":" })]));
        assert!(closed_by_peer(&mut s, t), "bad address {i}: not closed");
    }
    a.assert_no_thread_kept("25 bad addresses");

    // --- A bare positive long is a pre-3.5 sid: "GET / HT" is a sid larger than ours, so
    // --- upstream keeps it (handleConnection) and its RecvWorker then refuses the first
    // --- "length" ("TP/1" = 1414541105 > PACKETMAXSIZE).
    {
        let mark = logs::mark();
        let mut s = a.connect();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        assert!(closed_by_peer(&mut s, t), "HTTP: not closed");
        let sid = i64::from_be_bytes(*b"GET / HT");
        let len = i32::from_be_bytes(*b"TP/1");
        logs::expect(mark, &[&format!("Connection broken for id {sid}, {me}"), &format!("Received packet with invalid packet: {len}")], WAIT);
        a.assert_no_thread_kept("HTTP");
    }

    // --- Unknown sids. Larger than ours: kept (handleConnection's last branch), and, not
    // --- being a voter, answered with our current vote (WorkerReceiver's
    // --- `!validVoter(response.sid)` branch) — whatever state it claims.
    {
        let rp = cluster.get(target);
        let mut s = a.handshake(STRANGER_HIGH);
        s.write_all(&frame(&build_msg(7, 77, 0, 0, 0, b""))).expect("frame");
        // (A new connection first repeats the last message sent to that sid, maybe from
        // an earlier phase — SendWorker.run's lastMessageSent — so wait for the answer.)
        let state = rp.peer.peer_state();
        let n = await_notification(&mut s, |n| {
            n.server_state() == Some(state) && (state == ServerState::Looking || n.leader == rp.peer.current_vote().id)
        });
        assert!(n.is_some(), "a stranger gets our vote ({state})");
        s.shutdown(Shutdown::Both).expect("close");
        a.assert_no_thread_kept("unknown larger sid");
    }
    // Smaller than ours: dropped, and we dial back the address it gave
    // (handleConnection -> connectOne(sid, electionAddr)) and keep that connection.
    {
        let back = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = back.local_addr().expect("addr").port();
        let mut s = a.connect();
        s.write_all(&encode(PROTOCOL_VERSION_V1, STRANGER_LOW, &[format!("127.0.0.1:{port}")])).expect("handshake");
        assert!(closed_by_peer(&mut s, t), "unknown smaller sid: not closed");
        back.set_nonblocking(false).expect("blocking");
        let (mut c, _) = accept_within(&back, WAIT).expect("the peer dials back");
        let mut hdr = [0u8; 20];
        c.read_exact(&mut hdr).expect("its initial message");
        assert_eq!(i64::from_be_bytes(hdr[..8].try_into().expect("8")), PROTOCOL_VERSION_V1);
        assert_eq!(i64::from_be_bytes(hdr[8..16].try_into().expect("8")), target, "dialled back as {target}");
        assert!(eventually(WAIT, || a.workers() == a.base.workers + 2), "the dialled-back connection is kept");
        c.shutdown(Shutdown::Both).expect("close");
        a.assert_no_thread_kept("unknown smaller sid");
    }
    // Smaller, with only a wildcard address: nothing to dial (connectOne(sid) finds no
    // such server).
    {
        let mark = logs::mark();
        let mut s = a.connect();
        s.write_all(&encode(PROTOCOL_VERSION_V1, STRANGER_LOW, &["0.0.0.0:1".into()])).expect("handshake");
        assert!(closed_by_peer(&mut s, t), "wildcard: not closed");
        logs::expect(mark, &[&format!("Invalid server id: {STRANGER_LOW}")], WAIT);
        a.assert_no_thread_kept("unknown smaller sid, wildcard address");
    }
    // Our own sid: a configuration error; the socket is closed (upstream only logs).
    a.expect_dropped("our own sid", &encode(PROTOCOL_VERSION_V1, target, &["127.0.0.1:1".into()]), &["a server with our own ID"], t);

    // --- Frames after a valid handshake (RecvWorker.run): a length outside
    // --- 1..=PACKETMAXSIZE ends the connection and both workers.
    for len in [0, -1, PACKETMAXSIZE + 1] {
        let mark = logs::mark();
        let mut s = a.handshake(STRANGER_HIGH);
        s.write_all(&len.to_be_bytes()).expect("length");
        assert!(closed_by_peer(&mut s, t), "frame length {len}: not closed");
        logs::expect(mark, &[&format!("Connection broken for id {STRANGER_HIGH}, {me}"), &format!("Received packet with invalid packet: {len}")], WAIT);
        a.assert_no_thread_kept(&format!("frame length {len}"));
    }
    // Half a notification, then the client goes away.
    {
        let mark = logs::mark();
        let mut s = a.handshake(STRANGER_HIGH);
        let full = frame(&build_msg(0, 1, 0, 1, 0, b""));
        s.write_all(&full[..24]).expect("half");
        s.shutdown(Shutdown::Both).expect("close");
        logs::expect(mark, &[&format!("Connection broken for id {STRANGER_HIGH}, {me}")], WAIT);
        a.assert_no_thread_kept("half a notification");
    }

    // --- Notifications from a voter (WorkerReceiver.run): malformed ones are dropped,
    // --- the connection stays, and nothing reaches the election.
    {
        let rp = cluster.get(target);
        let mut s = a.handshake(IDLE_VOTER);
        let valid = build_msg(0, 1, 0, 1, 0, b"");
        let with_config_length = |len: i32, tail: &[u8]| {
            let mut m = valid[..40].to_vec();
            m.extend_from_slice(&len.to_be_bytes());
            m.extend_from_slice(tail);
            m
        };
        let cases: Vec<(&str, Vec<u8>, Vec<String>)> = vec![
            ("27 bytes", valid[..27].to_vec(), vec![format!("Got a short response from server {IDLE_VOTER}: 27")]),
            ("36 bytes", valid[..36].to_vec(), vec![format!("malformed response message sent by sid={IDLE_VOTER} (message length: 36)")]),
            ("negative configLength", with_config_length(-5, b"abcdef"), vec!["configLength=-5".into()]),
            ("configLength > message", with_config_length(1000, b"abcdef"), vec!["configLength=1000".into()]),
            ("configLength past the end", with_config_length(30, b"abcdef"), vec!["(message length: 50)".into(), "BufferUnderflowException".into()]),
        ];
        for (case, bytes, expect) in cases {
            let mark = logs::mark();
            s.write_all(&frame(&bytes)).expect("frame");
            let parts: Vec<&str> = expect.iter().map(String::as_str).collect();
            logs::expect(mark, &parts, WAIT);
            assert_eq!(a.workers(), a.base.workers + 2, "{case}: the connection stays");
        }
        // State 7 from a voter: dropped without a word (the state switch's `default`).
        // A LOOKING vote in an older round behind it, with unparsable config text: the
        // config error is logged (configFromString) and the vote still processed — a
        // LOOKING voter in an older round is answered (by the LOOKING peer with its
        // proposal, by a settled one with its vote).
        let mark = logs::mark();
        s.write_all(&frame(&build_msg(7, 77, 0, 1, 0, b""))).expect("state 7");
        s.write_all(&frame(&build_msg(0, 78, 0, 0, 0, "this is = not : a config\n[a]\u{e9}".as_bytes()))).expect("bad config");
        logs::expect(mark, &[&format!("Something went wrong while processing config received from {IDLE_VOTER}")], WAIT);
        let state = rp.peer.peer_state();
        let n = await_notification(&mut s, |n| n.election_epoch > 0 && n.server_state() == Some(state)).expect("an answer to the old-round vote");
        assert!(n.leader != 78);
        logs::expect(mark, &["n.leader:78"], WAIT);
        assert!(logs::find(mark, &["n.leader:77"]).is_empty(), "state 7 reached the election");
        s.shutdown(Shutdown::Both).expect("close");
        a.assert_no_thread_kept("voter notifications");
    }
}

fn accept_within(l: &TcpListener, wait: Duration) -> Option<(TcpStream, SocketAddr)> {
    l.set_nonblocking(true).ok()?;
    let end = Instant::now() + wait;
    while Instant::now() < end {
        match l.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false).ok()?;
                return Some((s, a));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn bad_input_on_the_election_port() {
    logs::install();
    let mut cluster = Cluster { ens: Ensemble::loopback(&[1, 2, 3, IDLE_VOTER], &[], ""), dirs: Vec::new(), peers: Vec::new() };
    let started = Instant::now();

    // 1 and 2 alone are no quorum of four: peer 2 is LOOKING while attacked.
    cluster.start(1);
    cluster.start(2);
    assert!(eventually(WAIT, || cluster.get(2).qcm.connected_to_peer(1)), "1 and 2 connected");
    attack(&cluster, 2);
    assert_eq!(cluster.get(2).peer.peer_state(), ServerState::Looking, "no quorum yet, whatever was sent");
    assert_eq!(cluster.get(1).peer.peer_state(), ServerState::Looking);

    // The ensemble still elects: 3 joins and the three elect 3.
    cluster.start(3);
    assert!(
        eventually(Duration::from_secs(20), || cluster.peers.iter().all(|p| p.peer.peer_state() != ServerState::Looking)),
        "no election after the attacks: {:?}",
        cluster.states()
    );
    let elected = cluster.states();
    assert_eq!(elected, vec![(1, ServerState::Following, 3), (2, ServerState::Following, 3), (3, ServerState::Leading, 3)]);
    let clocks: Vec<i64> = cluster.peers.iter().map(|p| p.fle.logical_clock()).collect();

    // The same against the settled follower: it keeps its leader.
    attack(&cluster, 2);
    assert_eq!(cluster.states(), elected, "the attacks changed the election's outcome");
    assert_eq!(cluster.peers.iter().map(|p| p.fle.logical_clock()).collect::<Vec<_>>(), clocks, "a new round started");

    // A new peer still learns the leader.
    cluster.start(IDLE_VOTER);
    let p4 = cluster.get(IDLE_VOTER).clone();
    assert!(eventually(Duration::from_secs(20), || p4.peer.peer_state() != ServerState::Looking), "peer 4 did not settle");
    assert_eq!((p4.peer.peer_state(), p4.peer.current_vote().id), (ServerState::Following, 3));

    for p in &cluster.peers {
        p.shutdown();
    }
    assert!(
        eventually(WAIT, || cluster.peers.iter().all(|p| p.qcm.thread_count() == 0)),
        "workers left after shutdown: {:?}",
        cluster.peers.iter().map(|p| p.qcm.thread_count()).collect::<Vec<_>>()
    );
    eprintln!("bad_input_on_the_election_port: {:?}", started.elapsed());
}
