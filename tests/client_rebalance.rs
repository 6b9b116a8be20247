//! `ZooKeeper::update_server_list` against a live 3-node ensemble of our peers: when
//! the server the client is connected to is left out of the new list, the client drops
//! that connection and reconnects to one of the listed servers with the same session
//! (its ephemeral survives); when the new list still has its server and is no larger,
//! nothing happens. The probabilistic choices themselves are unit-tested in
//! `src/client/static_host_provider.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl};
use zookeeper::client::{States, WatchedEvent, Watcher, ZooKeeper};
use zookeeper::proto::{ids, keeper_state, CreateMode};

const WAIT: Duration = Duration::from_secs(40);

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_leaves_a_server_dropped_from_the_list_and_keeps_its_session() {
    let ens = Ensemble::start(EnsembleSpec::of(&[Impl::Ours, Impl::Ours, Impl::Ours]).tick_time(200));
    ens.wait_for_mode_all(WAIT);
    let ports: Vec<u16> = ens.sids().into_iter().map(|s| ens.node(s).client_port()).collect();
    let all = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",");

    let states: Arc<Mutex<Vec<i32>>> = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    let watcher: Watcher = Arc::new(move |e: &WatchedEvent| {
        if e.path.is_none() {
            seen.lock().expect("not poisoned").push(e.state);
        }
    });
    let zk = ZooKeeper::connect(&all, 10_000, Some(watcher)).expect("connect");
    wait_until("the session", || zk.state() == States::Connected);
    let session = zk.session_id();
    zk.create("/rebalance", None, &ids::open_acl_unsafe(), CreateMode::Ephemeral).expect("ephemeral");
    let first = zk.testable_remote_socket_address().expect("connected to a server");

    // Same servers (same size, mine in it): no reason to move.
    let connects = states.lock().expect("not poisoned").len();
    zk.update_server_list(&format!("{all}/ignored-chroot")).expect("same list");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(zk.testable_remote_socket_address(), Some(first), "moved although its server stayed");
    assert_eq!(states.lock().expect("not poisoned").len(), connects, "a state change without a reason");

    // The list without my server: the client must move to one of the others.
    let others: Vec<String> = ports.iter().filter(|p| **p != first.port()).map(|p| format!("127.0.0.1:{p}")).collect();
    zk.update_server_list(&others.join(",")).expect("smaller list");
    wait_until("a connection to a listed server", || {
        zk.state() == States::Connected && zk.testable_remote_socket_address().is_some_and(|a| a.port() != first.port())
    });
    let now = zk.testable_remote_socket_address().expect("connected");
    assert!(others.contains(&now.to_string()), "{now} is not one of {others:?}");
    assert_eq!(zk.session_id(), session, "the session was not kept");
    assert!(zk.exists("/rebalance", None).expect("exists").is_some(), "the ephemeral is gone");
    let log = states.lock().expect("not poisoned").clone();
    assert_eq!(&log[connects..], &[keeper_state::DISCONNECTED, keeper_state::SYNC_CONNECTED], "{log:?}");

    // A malformed list is refused and changes nothing.
    assert!(zk.update_server_list("").is_err());
    assert!(zk.update_server_list("127.0.0.1:1/bad/").is_err());
    assert_eq!(zk.testable_remote_socket_address(), Some(now));
    zk.close();
}
