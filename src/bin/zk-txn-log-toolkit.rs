//! `zk-txn-log-toolkit`: thin command-line wrapper over `zookeeper::server::persistence::txn_log_toolkit`.

fn main() {
    let args = zookeeper::system_properties::apply_args(std::env::args().skip(1));
    std::process::exit(zookeeper::server::persistence::txn_log_toolkit::main_with_args(&args));
}
