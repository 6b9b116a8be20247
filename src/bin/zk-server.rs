//! `zk-server`: what `java org.apache.zookeeper.server.quorum.QuorumPeerMain` is to
//! Apache ZooKeeper. Arguments: `[-Dkey=value ...] zoo.cfg` or
//! `[-Dkey=value ...] port dataDir [tickTime] [maxClientCnxns]`.
//!
//! SIGTERM, SIGINT and SIGHUP stop the server gracefully (see [`stop_on_signal`]); a
//! second signal exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zookeeper::common::signals::{self, TerminationSignals};
use zookeeper::server::zookeeper_server_main as main_mod;
use zookeeper::system_properties;

/// How long a graceful stop may take before the process exits anyway: under
/// `bin/zkServer.sh stop`'s default wait (ZOO_STOP_TIMEOUT, 10 s) before its SIGKILL.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(8);

/// Set once a signal began the stop: the peer's thread ending is then no reason to
/// exit with 0.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn main() {
    // Before any thread starts, so that every thread inherits the mask.
    let signals = TerminationSignals::block();
    let args = system_properties::apply_args(std::env::args().skip(1));
    main_mod::init_logging();
    // Before any server thread: snapshot-sized buffers (a SNAP for a learner, a
    // snapshot file) must go back to the OS when freed; see the function.
    zookeeper::common::memory::fix_mmap_threshold();
    let cfg = match main_mod::parse_args(&args) {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("{msg}");
            std::process::exit(code);
        }
    };
    if cfg.is_distributed() {
        match zookeeper::server::quorum::quorum_peer_main::run_from_config(cfg) {
            Ok(mut main) => {
                let peer = main.peer.clone();
                let waiter = std::thread::Builder::new().name("QuorumPeerMain".into()).spawn(move || {
                    peer.join();
                    if !STOPPING.load(Ordering::Acquire) {
                        log::info!("Exiting normally");
                        std::process::exit(0);
                    }
                });
                if let Err(e) = waiter {
                    eprintln!("Unable to start the QuorumPeerMain thread: {e}");
                    std::process::exit(1);
                }
                stop_on_signal(signals, move || {
                    // The client port first (no new sessions, connections closed with
                    // their sessions kept, the role's pipeline flushed), then the peer.
                    if let Some(mut f) = main.secure_factory.take() {
                        f.shutdown();
                    }
                    if let Some(mut f) = main.factory.take() {
                        f.shutdown();
                    }
                    main.peer.shutdown();
                    if let Some(a) = main.admin_server.as_mut() {
                        a.shutdown();
                    }
                    main.metrics_provider.stop();
                });
            }
            Err((code, msg)) => {
                eprintln!("{msg}");
                std::process::exit(code);
            }
        }
    }
    match main_mod::run_from_config(cfg) {
        Ok(mut main) => stop_on_signal(signals, move || main.shutdown()),
        Err((code, msg)) => {
            eprintln!("{msg}");
            std::process::exit(code);
        }
    }
}

/// Waits for a termination signal, then stops: no new connections, requests in the
/// pipeline answered, the txn log flushed and fsynced, client connections closed
/// without closing their sessions (clients move to another server, or come back after
/// a restart), the peer's election and quorum connections closed. Exits with the
/// status a JVM gives for the signal (143 for SIGTERM), as Apache's server does.
/// Upstream installs no hook and the JVM just dies; we stop in order and log each step.
fn stop_on_signal(signals: TerminationSignals, stop: impl FnOnce() + Send + 'static) -> ! {
    let sig = signals.wait();
    STOPPING.store(true, Ordering::Release);
    log::info!("Received signal {}, shutting down (a second signal exits at once)", signals::name(sig));
    signals.exit_on_next();
    if signals::run_bounded(stop, SHUTDOWN_LIMIT) {
        log::info!("Shutdown complete");
    } else {
        log::warn!("Shutdown did not complete within {} ms, exiting", SHUTDOWN_LIMIT.as_millis());
    }
    log::info!("Exiting with status {}", signals::exit_status(sig));
    std::process::exit(signals::exit_status(sig));
}
