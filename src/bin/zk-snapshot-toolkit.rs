//! `zk-snapshot-toolkit`: thin command-line wrapper over `zookeeper::server::snapshot_formatter`.

fn main() {
    let args = zookeeper::system_properties::apply_args(std::env::args().skip(1));
    std::process::exit(zookeeper::server::snapshot_formatter::main_with_args(&args));
}
