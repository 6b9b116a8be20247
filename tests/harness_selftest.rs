//! Checks of the test harness itself (tests/common), against Apache
//! ZooKeeper only, so that a failure here means "the harness or the machine
//! is broken", not "zk-server is broken".

mod common;

use common::*;
use std::time::Duration;

#[test]
fn apache_standalone_answers_ruok_and_srvr() {
    let zk = ApacheServer::start_standalone("");
    assert_eq!(zk.four_letter("ruok"), "imok");
    let srvr = zk.four_letter("srvr");
    assert!(srvr.contains("Mode: standalone"), "srvr answer:\n{srvr}");
    assert!(srvr.contains("Zookeeper version: 3.8."), "srvr answer:\n{srvr}");
    assert!(srvr.contains("Node count: "), "srvr answer:\n{srvr}");
    // Apache creates its snapshot/txn-log directory below dataDir.
    assert!(zk.data_dir().join("version-2").is_dir(), "no version-2 in {}", zk.data_dir().display());
    // slf4j-simple is on the classpath: the log is not empty.
    let log = zk.log_contents();
    assert!(log.contains("ZooKeeperServer"), "Apache log without ZooKeeperServer lines:\n{log}");
    assert_eq!(zk.connect_string(), format!("127.0.0.1:{}", zk.port()));
}

#[test]
fn extra_cfg_lines_are_applied() {
    let zk = ApacheServer::start_standalone("maxSessionTimeout=12345\nminSessionTimeout=4321");
    let conf = zk.four_letter("conf");
    assert!(conf.contains("maxSessionTimeout=12345"), "conf answer:\n{conf}");
    assert!(conf.contains("minSessionTimeout=4321"), "conf answer:\n{conf}");
}

#[test]
fn server_is_killed_on_drop() {
    let zk = ApacheServer::start_standalone("");
    let pid = zk.pid().expect("pid");
    let addr = zk.connect_string();
    drop(zk);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "JVM {pid} still exists after drop"
    );
    assert!(
        four_letter_word(&addr, "ruok", Duration::from_secs(2)).is_err(),
        "something still answers on {addr}"
    );
}

#[test]
fn server_is_killed_when_test_panics() {
    let pid = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(|| {
        let zk = ApacheServer::start_standalone("");
        *pid.lock().unwrap() = zk.pid();
        panic!("expected panic");
    });
    assert!(r.is_err());
    let pid = pid.lock().unwrap().expect("server started");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "JVM {pid} survived a panic");
}

#[test]
fn free_ports_are_distinct() {
    let ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
    let set: std::collections::HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(set.len(), ports.len());
}

#[test]
fn the_three_clients_reach_apache() {
    let zk = ApacheServer::start_standalone("");
    let c = zk.connect_string();

    let java = run_java_zkcli(&c, &["ls", "/"]);
    let out = String::from_utf8_lossy(&java.stdout);
    assert!(java.status.success() && out.contains("[zookeeper]"), "{}", describe_output("zkCli", &java));

    let py = run_kazoo(
        "import sys\nfrom kazoo.client import KazooClient\n\
         zk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=30)\n\
         print(sorted(zk.get_children('/'))); zk.stop(); zk.close()\n",
        &c,
    );
    assert!(
        py.status.success() && String::from_utf8_lossy(&py.stdout).trim() == "['zookeeper']",
        "{}",
        describe_output("kazoo", &py)
    );

    let cm = run_cli_mt(&c, "ls /\n");
    let err = String::from_utf8_lossy(&cm.stderr);
    assert!(err.contains("/: rc = 0") && err.contains("\tzookeeper"), "{}", describe_output("cli_mt", &cm));
    assert!(!err.contains("[harness]"), "{}", describe_output("cli_mt", &cm));
}

#[test]
fn line_diff_shows_changes() {
    let d = line_diff("a", "x\ny\nz\n", "b", "x\nY\nz\n");
    assert!(d.contains("-y") && d.contains("+Y"), "{d}");
    assert!(line_diff("a", "x\n", "b", "x\n").contains("(no differences)"));
}
