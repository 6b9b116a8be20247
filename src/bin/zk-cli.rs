//! `zk-cli`: thin command-line wrapper over `zookeeper::cli::zookeeper_main` (zkCli).
//! Leading `-Dkey=value` words set system properties (bin/zkCli.sh passes those of
//! CLIENT_JVMFLAGS/JVMFLAGS). Client logging goes to stderr only when RUST_LOG asks.

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = env_logger::Builder::from_default_env().target(env_logger::Target::Stderr).try_init();
    }
    let all: Vec<String> = std::env::args().skip(1).collect();
    let defines = all.iter().take_while(|a| a.starts_with("-D")).count();
    zookeeper::system_properties::apply_args(all[..defines].iter().cloned());
    zookeeper::cli::zookeeper_main::main_with_args(&all[defines..])
}
