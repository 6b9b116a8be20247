//! `zk-purge`: thin command-line wrapper over `zookeeper::server::purge_txn_log`.

fn main() {
    let args = zookeeper::system_properties::apply_args(std::env::args().skip(1));
    std::process::exit(zookeeper::server::purge_txn_log::main_with_args(&args));
}
