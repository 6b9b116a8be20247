//! `zk-server`: what `java org.apache.zookeeper.server.quorum.QuorumPeerMain` is to
//! Apache ZooKeeper. Arguments: `[-Dkey=value ...] zoo.cfg` or
//! `[-Dkey=value ...] port dataDir [tickTime] [maxClientCnxns]`.

use zookeeper::server::zookeeper_server_main as main_mod;
use zookeeper::system_properties;

fn main() {
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
            Ok(main) => {
                main.peer.join();
                log::info!("Exiting normally");
                std::process::exit(0);
            }
            Err((code, msg)) => {
                eprintln!("{msg}");
                std::process::exit(code);
            }
        }
    }
    match main_mod::run_from_config(cfg) {
        Ok(_factory) => loop {
            std::thread::park();
        },
        Err((code, msg)) => {
            eprintln!("{msg}");
            std::process::exit(code);
        }
    }
}
