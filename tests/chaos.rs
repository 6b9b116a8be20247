//! The CI round of `zk-chaos` (docs/reliability.md): a short run on three of our peers
//! and one on two of ours with an Apache 3.8 peer, each with kills, pauses and link
//! cuts, and every check of a long run (linearizable registers, sequential creates,
//! multis, ephemerals, watches, identical trees). Long runs are `bin/zkChaos.sh`.
//!
//! The seed is new each run and printed; `ZKCHAOS_SEED` replays one. As root (CI) the
//! peers run in network namespaces and a further test shows that a cut there blocks
//! every path between two peers.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zookeeper::bench::servers::{ServerPrograms, DEFAULT_APACHE_JARS_DIR, DEFAULT_JAVA};
use zookeeper::chaos::cluster::NetMode;
use zookeeper::chaos::nemesis::FaultKind;
use zookeeper::chaos::{parse_layout, run, ChaosConfig};

fn seed() -> u64 {
    std::env::var("ZKCHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64 % 1_000_000).unwrap_or(1))
}

/// netns as root (CI runs as root: a namespace that cannot be built fails the test
/// there, it is not skipped), link proxies otherwise; `ZKCHAOS_NET` forces one.
fn net_mode() -> NetMode {
    if let Ok(s) = std::env::var("ZKCHAOS_NET") {
        if let Some(m) = NetMode::parse(&s).expect("ZKCHAOS_NET") {
            return m;
        }
    }
    let (m, why) = NetMode::auto();
    if let Some(why) = why {
        println!("zk-chaos: using link proxies, not namespaces: {why}");
    }
    m
}

fn round(layout: &str, secs: u64) {
    let seed = seed();
    let net = net_mode();
    let cfg = ChaosConfig {
        programs: ServerPrograms {
            java: PathBuf::from(DEFAULT_JAVA),
            apache_jars_dir: PathBuf::from(DEFAULT_APACHE_JARS_DIR),
            ours: PathBuf::from(env!("CARGO_BIN_EXE_zk-server")),
        },
        layout: parse_layout(layout).expect("layout"),
        duration: Duration::from_secs(secs),
        clients: 4,
        registers: 3,
        epoch: Duration::from_secs(10),
        faults: FaultKind::all(),
        session_timeout_ms: 4000,
        check_reads: false,
        net,
        seed,
        keep_dir: false,
        dir: None,
    };
    let rep = run(&cfg).unwrap_or_else(|e| panic!("zk-chaos {layout} (seed {seed}) could not run: {e}"));
    println!("{}", rep.text);
    assert!(rep.passed(), "zk-chaos {layout} seed {seed}: {} finding(s); directory kept at {:?}:\n{}", rep.findings.len(), rep.dir, rep.findings.join("\n"));
    assert!(rep.faults >= 3, "only {} faults in {secs} s:\n{}", rep.faults, rep.text);
    assert!(rep.ok > 500, "only {} successful ops:\n{}", rep.ok, rep.text);
    println!("zk-chaos {layout} ({}) seed {seed}: PASS ({} faults, {} leader changes, {} ops, {} unknown)", net.name(), rep.faults, rep.leader_changes, rep.ops, rep.unknown);
}

/// One test, so the two ensembles run one after the other (2 cores).
#[test]
fn chaos_round_rust3_then_rust2_java1() {
    round("rust3", 40);
    round("rust2-java1", 45);
}

mod netns_cut {
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;
    use std::sync::mpsc;
    use std::thread;
    use std::time::{Duration, Instant};

    use zookeeper::chaos::netns::{self, pairs_between, Network, ELECTION_PORT, QUORUM_PORT};

    /// Connects from peer `from`'s namespace (the root namespace if 0) to `to`'s `port`.
    fn connect(net: &Network, from: usize, to: usize, port: u16) -> io::Result<TcpStream> {
        let addr = SocketAddr::from((net.plan.peer_ip(to), port));
        let dial = move || TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        if from == 0 {
            dial()
        } else {
            net.in_netns(from, dial).map_err(io::Error::other)?
        }
    }

    /// Whether `msg` written on `a` arrives on `b` within 1.5 s.
    fn crosses(a: &mut TcpStream, b: &mut TcpStream, msg: &[u8]) -> bool {
        if a.write_all(msg).is_err() {
            return false;
        }
        let _ = b.set_read_timeout(Some(Duration::from_millis(1500)));
        let mut got = vec![0u8; msg.len()];
        b.read_exact(&mut got).is_ok() && got == msg
    }

    /// A cut between peers 1 and 2 in netns mode blocks both directions of live
    /// connections on the quorum and the election port, and new connections both ways —
    /// also 2 connecting to 1's own election address, the one 1 advertises in its
    /// initial message and upstream's `QuorumCnxManager` calls back, which bypassed the
    /// proxies — while peer 3 and the root namespace (clients) still reach both. Also:
    /// the pid `ip netns exec` gives is the program's own, in the right namespace; and
    /// nothing is left after the teardown.
    #[test]
    fn netns_cut_blocks_every_path_between_two_peers() {
        if !netns::is_root() {
            println!("skipped: network namespaces need root (CI runs as root and runs this)");
            return;
        }
        let mut net = Network::create(3).expect("building the network (as root this must work)");
        // Listeners on both ports of peers 1 and 2, bound inside their namespaces; every
        // accepted stream goes to the test, so it holds both ends of each connection.
        let mut accepted = Vec::new();
        for sid in [1usize, 2] {
            for port in [QUORUM_PORT, ELECTION_PORT] {
                let addr = SocketAddr::from((net.plan.peer_ip(sid), port));
                let l = net.in_netns(sid, move || TcpListener::bind(addr)).expect("enter the namespace").expect("bind");
                let (tx, rx) = mpsc::channel();
                thread::spawn(move || {
                    for s in l.incoming().flatten() {
                        if tx.send(s).is_err() {
                            break;
                        }
                    }
                });
                accepted.push(((sid, port), rx));
            }
        }
        let server_end = |to: usize, port: u16| -> TcpStream {
            let rx = &accepted.iter().find(|(k, _)| *k == (to, port)).expect("listener").1;
            rx.recv_timeout(Duration::from_secs(2)).expect("the listener accepted")
        };
        // Live connections both ways on both ports; (2, 1, election) is the callback path.
        let paths = [(1, 2, QUORUM_PORT), (1, 2, ELECTION_PORT), (2, 1, QUORUM_PORT), (2, 1, ELECTION_PORT)];
        let mut live = Vec::new();
        for &(from, to, port) in &paths {
            let mut a = connect(&net, from, to, port).unwrap_or_else(|e| panic!("{from}->{to}:{port} before the cut: {e}"));
            let mut b = server_end(to, port);
            assert!(crosses(&mut a, &mut b, b"there") && crosses(&mut b, &mut a, b"back"), "{from}->{to}:{port} before the cut");
            live.push((from, to, port, a, b));
        }

        net.cut(&pairs_between(&[1], &[2])).expect("cut");
        for (from, to, port, a, b) in &mut live {
            assert!(!crosses(a, b, b"lost"), "{from}->{to}:{port}: data crossed the cut");
            assert!(!crosses(b, a, b"lost too"), "{to}->{from}:{port}: data crossed the cut backwards");
        }
        for &(from, to, port) in &paths {
            let t0 = Instant::now();
            let r = connect(&net, from, to, port);
            assert!(r.is_err(), "{from}->{to}:{port}: a new connection crossed the cut");
            println!("connect {from}->{to}:{port} during the cut: {:?} after {:?}", r.err(), t0.elapsed());
        }
        // Only that pair is cut: peer 3 and the clients' namespace reach both.
        for (from, to) in [(3, 1), (3, 2), (1, 3), (0, 1), (0, 2)] {
            let port = if to == 3 { None } else { Some(ELECTION_PORT) };
            if let Some(port) = port {
                connect(&net, from, to, port).unwrap_or_else(|e| panic!("{from}->{to}:{port} during a 1|2 cut: {e}"));
                let _ = server_end(to, port);
            }
        }

        net.heal().expect("heal");
        assert!(net.cuts().is_empty());
        for &(from, to, port) in &paths {
            let mut a = connect(&net, from, to, port).unwrap_or_else(|e| panic!("{from}->{to}:{port} after the heal: {e}"));
            let mut b = server_end(to, port);
            assert!(crosses(&mut a, &mut b, b"healed"), "{from}->{to}:{port} after the heal");
        }

        // The pid a peer gets is the program's, inside its namespace: kill -9 and SIGSTOP
        // reach the server, not a wrapper.
        let mut child = net.wrap(2, Command::new("sleep").arg("30")).spawn().expect("spawn in the namespace");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        let exe = loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe of the child");
            if exe.file_name().is_some_and(|n| n != "ip") || Instant::now() > deadline {
                break exe;
            }
            thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(exe.file_name().and_then(|n| n.to_str()), Some("sleep"), "pid {pid} runs {exe:?}");
        let ns_of_child = std::fs::metadata(format!("/proc/{pid}/ns/net")).expect("netns of the child").ino();
        let ns2 = std::fs::metadata(format!("/run/netns/{}", net.plan.netns(2))).expect("netns file").ino();
        assert_eq!(ns_of_child, ns2, "the child is not in peer 2's namespace");
        let _ = child.kill();
        let _ = child.wait();

        drop(live);
        let names: Vec<String> = (1..=3).map(|s| net.plan.netns(s)).collect();
        net.teardown().expect("nothing left behind");
        let left: Vec<String> = netns::list_netns().expect("ip netns list").into_iter().filter(|n| names.contains(n)).collect();
        assert!(left.is_empty(), "namespaces left: {left:?}");
    }
}
