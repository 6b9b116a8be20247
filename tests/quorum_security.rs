//! The election and quorum ports secured as a Java deployment secures them, in mixed
//! Rust/Apache ensembles: `sslQuorum=true` with PEM `ssl.quorum.*` stores (both ends
//! present certificates, and each checks the other's address against its
//! certificate), `portUnification` for a rolling switch to TLS, and quorum SASL
//! DIGEST-MD5 (`quorum.auth.*` with the JAAS `QuorumServer` / `QuorumLearner`
//! sections). Each ensemble elects, serves writes through every node, survives the
//! loss of its leader, and refuses peers that do not hold the right credentials.
//!
//! Run: `cargo test --test quorum_security -- --nocapture`.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::certs::Certs;
use common::ensemble::*;
use raw_client::{create, get_data, RawClient};
use zookeeper::jute::Record;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::SyncRequest;

const T: Duration = Duration::from_secs(60);
const SAN: &str = "DNS:localhost,IP:127.0.0.1";

fn certs() -> Certs {
    let c = Certs::new();
    c.make("ca", "/CN=zk-quorum-ca", None, SAN);
    c.make("peer", "/CN=localhost", Some("ca"), SAN);
    // Signed by the same CA, but naming another host: a JDK peer refuses it from
    // 127.0.0.1 under hostname verification.
    c.make("elsewhere", "/CN=elsewhere.example", Some("ca"), "DNS:elsewhere.example");
    c.make("rogue-ca", "/CN=rogue-ca", None, SAN);
    c.make("rogue", "/CN=localhost", Some("rogue-ca"), SAN);
    c
}

/// zoo.cfg lines of quorum TLS with `keystore` as the peer's key store.
fn ssl_quorum_cfg(c: &Certs, keystore: &str) -> String {
    format!(
        "sslQuorum=true\n\
         ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\n\
         ssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        c.path(&format!("{keystore}.pem")).display(),
        c.path("ca.crt").display()
    )
}

/// Writes through every running node, then reads every write back through each.
fn writes_reach_every_node(ens: &Ensemble, tag: &str) {
    let alive: Vec<u64> = ens.sids().into_iter().filter(|&s| ens.node(s).alive()).collect();
    writes_reach_every_node_of(ens, &alive, tag);
}

/// Elects, serves, loses its leader (kill -9), elects again, and the old leader
/// rejoins: every step over the secured ports.
fn elect_serve_fail_over(ens: &mut Ensemble, tag: &str) -> u64 {
    let first = ens.wait_for_leader(T);
    ens.wait_for_mode_all(T);
    writes_reach_every_node(ens, &format!("{tag}-a"));
    ens.kill(first);
    let second = ens.wait_for_leader(T);
    assert_ne!(second, first);
    // The leader serves before its followers finish syncing.
    ens.wait_for_mode_all(T);
    writes_reach_every_node(ens, &format!("{tag}-b"));
    ens.node_mut(first).start();
    ens.wait_for_mode_all(T);
    writes_reach_every_node(ens, &format!("{tag}-c"));
    first
}

/// Whether `port` closes a connection that sends `bytes` in plain text, within 10 s.
fn closes_plaintext(port: u16, bytes: &[u8]) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return true };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

/// The election initial message of protocol version 1 from sid 99.
fn plain_initial_message() -> Vec<u8> {
    let addr = b"127.0.0.1:1";
    let mut b = (-65535i64).to_be_bytes().to_vec();
    b.extend_from_slice(&99i64.to_be_bytes());
    b.extend_from_slice(&(addr.len() as i32).to_be_bytes());
    b.extend_from_slice(addr);
    b
}

#[test]
fn mixed_ensemble_over_quorum_tls() {
    let c = certs();
    let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Apache]).cfg(&ssl_quorum_cfg(&c, "peer"));
    let mut ens = Ensemble::start(spec);
    let first = elect_serve_fail_over(&mut ens, "tls");
    // Both kinds of peer logged TLS sessions with each other.
    let ours = ens.node(2).log_contents();
    assert!(ours.contains("SSL handshake complete with") || ours.contains("Accepted TLS connection from"), "{}", ens.node(2).log_tail(40));
    for sid in [1, 3] {
        let log = ens.node(sid).log_contents();
        assert!(log.contains("Accepted TLS connection from") || log.contains("SSL handshake complete with"), "node {sid}: {}", ens.node(sid).log_tail(40));
    }
    // Plain text on our election and (if it leads) quorum port is refused; the
    // ensemble keeps serving.
    let n2 = ens.node(2);
    assert!(closes_plaintext(n2.election_port(), &plain_initial_message()), "our election port kept a plaintext peer");
    // Logged once the connection is closed, as upstream's caller logs the exception.
    ens.node(2).wait_for_log("Blocked insecure connection attempt", 0, Duration::from_secs(10));
    writes_reach_every_node(&ens, "tls-d");
    println!("[quorum-tls] Apache 1 + ours 2 + Apache 3 with sslQuorum: elected, served, failed over from {first}, rejoined");
}

#[test]
fn our_leader_and_followers_over_quorum_tls() {
    let c = certs();
    // Ours on the higher sids: ours leads first, then an Apache node or ours after the kill.
    let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Ours]).cfg(&ssl_quorum_cfg(&c, "peer"));
    let mut ens = Ensemble::start(spec);
    let first = elect_serve_fail_over(&mut ens, "tls-ours");
    assert_eq!(ens.node(first).imp(), Impl::Ours, "the first leader is the highest sid");
}

/// A peer whose certificate the others must refuse: signed by another CA, or naming
/// another host. It never joins; the others keep their quorum.
#[test]
fn peers_with_bad_certificates_are_refused_both_ways() {
    let c = certs();
    // Ours naming another host: refused by Apache's and our server-side host check;
    // an Apache peer from another CA: refused by our chain check (and Apache's).
    for (bad, imp) in [("elsewhere", Impl::Ours), ("rogue", Impl::Apache)] {
        let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, imp])
            .cfg(&ssl_quorum_cfg(&c, "peer"))
            .node_cfg(3, &format!("ssl.quorum.keyStore.location={}", c.path(&format!("{bad}.pem")).display()));
        let ens = Ensemble::start(spec);
        node_3_is_kept_out(&ens, &format!("node 3 with the {bad} certificate ({imp:?})"), &format!("bad-{bad}"));
    }
}

/// Nodes 1 and 2 form the quorum without node 3 (2, ours and the higher sid of the two,
/// leads) and serve writes; node 3 still serves nothing a few seconds later.
fn node_3_is_kept_out(ens: &Ensemble, what: &str, tag: &str) {
    assert_eq!(ens.wait_for_leader(T), 2, "{what}");
    ens.wait_for_modes(&[1, 2], T);
    std::thread::sleep(Duration::from_secs(3));
    assert!(ens.node(3).mode().is_none(), "{what} serves: {}", ens.node(3).log_tail(30));
    writes_reach_every_node_of(ens, &[1, 2], tag);
}

/// Writes through each of `sids`, then reads every write back through each.
fn writes_reach_every_node_of(ens: &Ensemble, sids: &[u64], tag: &str) {
    let mut paths = Vec::new();
    for &sid in sids {
        let mut c = RawClient::connect(&ens.node(sid).connect_string()).unwrap_or_else(|e| panic!("connect {sid}: {e}"));
        let path = format!("/{tag}-via{sid}");
        assert_eq!(create(&mut c, &path, b"v", 0), 0, "create {path} through {sid}");
        paths.push(path);
    }
    for &sid in sids {
        let mut c = RawClient::connect(&ens.node(sid).connect_string()).unwrap_or_else(|e| panic!("connect {sid}: {e}"));
        let _ = c.call(op_code::SYNC, &SyncRequest { path: "/".into() }.to_bytes());
        for p in &paths {
            assert_eq!(get_data(&mut c, p, false), 0, "{p} read through {sid}");
        }
    }
}

/// A rolling switch to TLS as upstream documents it: every node on
/// `portUnification=true` (accepting both), then `sslQuorum=true` node by node.
#[test]
fn rolling_switch_to_tls_with_port_unification() {
    let c = certs();
    let tls = ssl_quorum_cfg(&c, "peer");
    let unified = format!("portUnification=true\n{}", tls.replace("sslQuorum=true\n", "sslQuorum=false\n"));
    let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Ours]).cfg(&unified);
    let mut ens = Ensemble::start(spec);
    ens.wait_for_mode_all(T);
    writes_reach_every_node(&ens, "roll-0");
    for sid in [1, 2, 3] {
        let cfg_path = ens.node(sid).cfg_path().to_path_buf();
        let text = std::fs::read_to_string(&cfg_path).expect("zoo.cfg");
        std::fs::write(&cfg_path, text.replace("sslQuorum=false", "sslQuorum=true")).expect("zoo.cfg");
        ens.node_mut(sid).restart();
        ens.wait_for_mode_all(T);
        writes_reach_every_node(&ens, &format!("roll-{sid}"));
    }
    let log = ens.node(2).log_contents();
    assert!(log.contains("Accepted plaintext connection from") && log.contains("Accepted TLS connection from"), "{}", ens.node(2).log_tail(40));
}

fn jaas(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("quorum-jaas.conf");
    std::fs::write(
        &p,
        "QuorumServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_peer=\"s3cret\";\n};\n\
         QuorumLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"peer\"\n  password=\"s3cret\";\n};\n\
         BadLearner {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  username=\"peer\"\n  password=\"wrong\";\n};\n",
    )
    .expect("jaas");
    p
}

const SASL_CFG: &str = "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\n";

#[test]
fn mixed_ensemble_with_quorum_sasl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = jaas(dir.path());
    let prop = format!("-Djava.security.auth.login.config={}", j.display());
    let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Ours]).cfg(SASL_CFG).apache_jvm_arg(&prop).ours_arg(&prop);
    let mut ens = Ensemble::start(spec);
    elect_serve_fail_over(&mut ens, "sasl");
    for sid in [1, 2, 3] {
        let log = ens.node(sid).log_contents();
        assert!(log.contains("Successfully completed the authentication using SASL"), "node {sid}: {}", ens.node(sid).log_tail(40));
    }
}

/// A learner with the wrong password (a node of ours, then an Apache node) is refused
/// by both kinds of server; one that sends no SASL at all too.
#[test]
fn quorum_sasl_refuses_wrong_and_missing_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = jaas(dir.path());
    let prop = format!("-Djava.security.auth.login.config={}", j.display());
    for (imp, bad_cfg) in [
        (Impl::Ours, "quorum.auth.learner.saslLoginContext=BadLearner"),
        (Impl::Apache, "quorum.auth.learner.saslLoginContext=BadLearner"),
        (Impl::Ours, "quorum.auth.enableSasl=false\nquorum.auth.learnerRequireSasl=false\nquorum.auth.serverRequireSasl=false"),
    ] {
        let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, imp])
            .cfg(SASL_CFG)
            .node_cfg(3, bad_cfg)
            .apache_jvm_arg(&prop)
            .ours_arg(&prop);
        let ens = Ensemble::start(spec);
        node_3_is_kept_out(&ens, &format!("node 3 ({imp:?}, {bad_cfg})"), "sasl-bad");
        let refused = ens.node(1).log_contents() + &ens.node(2).log_contents();
        assert!(refused.contains("Failed to authenticate using SASL") || refused.contains("Authentication failed"), "{imp:?} {bad_cfg}");
    }
}

/// Settings that cannot work stop the start with a clear error, never a plain-text or
/// unauthenticated quorum.
#[test]
fn bad_quorum_security_settings_stop_the_start() {
    let c = certs();
    let missing = c.path("missing.pem");
    for (cfg, want) in [
        ("sslQuorum=true\n".to_string(), "ssl.quorum.keyStore.location is not set"),
        (format!("sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location={}\n", missing.display(), c.path("ca.crt").display()), "missing.pem"),
        ("quorum.auth.serverRequireSasl=true\n".to_string(), "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"),
        ("quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n".to_string(), "Failed to initialize authentication mechanism using SASL"),
    ] {
        let spec = EnsembleSpec::of(&[Impl::Ours, Impl::Ours]).node_cfg(1, &cfg);
        let mut ens = Ensemble::start(spec);
        let deadline = Instant::now() + Duration::from_secs(20);
        let st = loop {
            if let Some(st) = ens.node_mut(1).exit_status() {
                break st;
            }
            assert!(Instant::now() < deadline, "{cfg}: still running:\n{}", ens.node(1).log_tail(20));
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(!st.success(), "{cfg}: {st:?}");
        let log = ens.node(1).log_contents();
        assert!(log.contains(want), "{cfg}: the log lacks {want:?}:\n{}", ens.node(1).log_tail(20));
    }
}

/// `sslQuorumReloadCertFiles=true`: a peer refused for its certificate joins once its
/// key store file is replaced by a good one, without a restart.
#[test]
fn a_reloaded_key_store_lets_a_refused_peer_join() {
    let c = certs();
    let swapped = c.path("node3.pem");
    std::fs::copy(c.path("elsewhere.pem"), &swapped).expect("copy");
    let spec = EnsembleSpec::of(&[Impl::Apache, Impl::Ours, Impl::Ours])
        .cfg(&ssl_quorum_cfg(&c, "peer"))
        .node_cfg(3, &format!("sslQuorumReloadCertFiles=true\nssl.quorum.keyStore.location={}", swapped.display()));
    let ens = Ensemble::start(spec);
    assert_eq!(ens.wait_for_leader(T), 2);
    std::thread::sleep(Duration::from_secs(2));
    assert!(ens.node(3).mode().is_none(), "node 3 serves with the elsewhere certificate: {}", ens.node(3).log_tail(30));
    let pid = ens.node(3).pid();
    // Written to a temporary name and renamed, as certificate managers do.
    let tmp = c.path("node3.pem.tmp");
    std::fs::copy(c.path("peer.pem"), &tmp).expect("copy");
    std::fs::rename(&tmp, &swapped).expect("rename");
    assert_eq!(ens.node(3).wait_for_mode(T), Mode::Follower, "{}", ens.node(3).log_tail(30));
    assert_eq!(ens.node(3).pid(), pid, "node 3 was restarted");
    assert!(ens.node(3).log_contents().contains("Reloaded the quorum key and trust stores"));
    writes_reach_every_node(&ens, "reloaded");
}
