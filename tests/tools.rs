//! The data-directory tools against Apache ZooKeeper 3.8's own: TxnLogToolkit
//! (dump, recover, chop), SnapshotFormatter (plain, -d, -json) and PurgeTxnLog must
//! print the same bytes and leave the same files when run on the same Apache-written
//! dataDir; and our server's autopurge keeps what it should.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use zookeeper::proto::data::ACL;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{CreateRequest, CreateTTLRequest};
use zookeeper::server::persistence::file_txn_log::get_log_files;
use zookeeper::server::persistence::util;

use common::{ApacheServer, OurServer};
use raw_client::RawClient;

const TIMEOUT: Duration = Duration::from_secs(120);

const WRITER_SCRIPT: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, make_acl
from kazoo.exceptions import NoNodeError
hosts = sys.argv[1]
zk = KazooClient(hosts=hosts, timeout=30)
zk.start()
zk.add_auth('digest', 'alice:secret')
alice = make_digest_acl('alice', 'secret', all=True)
ip = make_acl('ip', '127.0.0.1', all=True)
ro = make_acl('world', 'anyone', read=True)
zk.create('/app', b'root of app')
for i in range(60):
    zk.create('/app/n%03d' % i, ('v%d' % i).encode() * (i % 5))
for i in range(12):
    zk.create('/app/seq-', b's', sequence=True)
zk.create('/secure', b'alice only', acl=[alice, ip])
zk.create('/ro', b'read,only}%\n', acl=[ro])
zk.create('/bin', bytes([0, 1, 127, 128, 200, 255, 10]))
zk.create('/odd,name}%', b'x')
for i in range(0, 60, 3):
    zk.set('/app/n%03d' % i, b'changed%d' % i)
for i in range(1, 60, 4):
    zk.delete('/app/n%03d' % i)
for i in range(5):
    zk.set_acls('/app/n%03d' % (i * 6), [alice, ro])
t = zk.transaction()
t.create('/multi', b'm'); t.create('/multi/a', b'a'); t.set_data('/app/n000', b'multi'); t.delete('/app/n002'); t.check('/app', 0)
print('multi', t.commit())
t = zk.transaction()
t.create('/multi/b', b'b'); t.create('/multi/a', b'dup')
print('failed multi', t.commit())
try:
    zk.delete('/does/not/exist')
except NoNodeError:
    pass
zk2 = KazooClient(hosts=hosts, timeout=30); zk2.start()
for i in range(5):
    zk2.create('/app/gone%d' % i, b'e', ephemeral=True)
zk2.stop(); zk2.close()
zk3 = KazooClient(hosts=hosts, timeout=60); zk3.start()
for i in range(9):
    zk3.create('/app/eph%d' % i, b'e', ephemeral=True)
zk.create('/\u00fcn\u00efcode', '\u00fc'.encode())
zk.create('/empty', b'')
for i in range(40):
    zk.create('/many/c%02d' % i, b'%d' % i, makepath=True)
print('WROTE', flush=True)
import os
os._exit(0)
"#;

/// An Apache-written dataDir (several logs and snapshots), made once per process.
fn apache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut srv = ApacheServer::start_standalone("snapCount=40\n");
        let addr = srv.connect_string();
        {
            let mut c = RawClient::connect(&addr).expect("connect");
            let open = vec![ACL::new(31, "world", "anyone")];
            let req = CreateRequest {
                path: "/cont".into(),
                data: Some(b"c".to_vec()),
                acl: open.clone(),
                flags: 4,
            };
            let (h, _) = c.call_rec(op_code::CREATE_CONTAINER, &req).expect("container");
            assert_eq!(h.err, 0);
            let req = CreateTTLRequest {
                path: "/ttl".into(),
                data: Some(b"t".to_vec()),
                acl: open,
                flags: 5,
                ttl: 3_600_000,
            };
            let (h, _) = c.call_rec(op_code::CREATE_TTL, &req).expect("ttl");
            assert_eq!(h.err, 0);
        }
        let out = common::run_kazoo(WRITER_SCRIPT, &addr);
        assert!(out.status.success(), "kazoo: {}", String::from_utf8_lossy(&out.stderr));
        srv.kill();
        let keep = tempfile::tempdir().expect("tempdir").keep();
        copy_dir(&srv.data_dir(), &keep);
        keep
    })
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().expect("cp");
    assert!(st.success());
}

fn v2(dir: &Path) -> PathBuf {
    dir.join(util::VERSION_DIR)
}

fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort_by_key(|n| util::get_zxid_from_name(n, if prefix.starts_with("log") { "log" } else { "snapshot" }));
    v
}

fn java(class: &str, args: &[&str], cwd: &Path, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(common::JAVA);
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.util.ServiceUtils=off",
        "-cp",
    ])
    .arg(common::apache_classpath())
    .arg(class)
    .args(args)
    .current_dir(cwd);
    common::run_with_timeout(cmd, stdin, TIMEOUT)
}

fn ours(bin: &str, args: &[&str], cwd: &Path, stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(cwd);
    common::run_with_timeout(cmd, stdin, TIMEOUT)
}

const TXN_TOOL: &str = env!("CARGO_BIN_EXE_zk-txn-log-toolkit");
const SNAP_TOOL: &str = env!("CARGO_BIN_EXE_zk-snapshot-toolkit");
const PURGE_TOOL: &str = env!("CARGO_BIN_EXE_zk-purge");

fn same(what: &str, a: &Output, b: &Output) {
    let (sa, sb) = (String::from_utf8_lossy(&a.stdout), String::from_utf8_lossy(&b.stdout));
    assert!(
        a.stdout == b.stdout,
        "{what}: stdout differs\n{}\n--- apache stderr ---\n{}\n--- ours stderr ---\n{}",
        common::line_diff("apache", &sa, "ours", &sb),
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert_eq!(a.status.code(), b.status.code(), "{what}: exit codes");
}

#[test]
fn txn_log_dump_matches_apache() {
    let dir = v2(apache_dir());
    let logs = names(&dir, "log.");
    assert!(logs.len() >= 3, "want several logs: {logs:?}");
    let mut lines = 0;
    for log in &logs {
        for flags in [&[][..], &["-d"][..], &["--dump"][..]] {
            let mut args: Vec<&str> = flags.to_vec();
            args.push(log);
            let a = java("org.apache.zookeeper.server.persistence.TxnLogToolkit", &args, &dir, b"");
            let b = ours(TXN_TOOL, &args, &dir, b"");
            same(&format!("TxnLogToolkit {args:?}"), &a, &b);
            assert!(a.status.success());
            lines += a.stdout.split(|&c| c == b'\n').count();
        }
    }
    assert!(lines > 200);
    // Errors and help.
    for args in [&["no-such-log"][..], &["-h"][..], &[][..], &["--bogus", "x"][..]] {
        let a = java("org.apache.zookeeper.server.persistence.TxnLogToolkit", args, &dir, b"");
        let b = ours(TXN_TOOL, args, &dir, b"");
        same(&format!("TxnLogToolkit {args:?}"), &a, &b);
    }
}

#[test]
fn txn_log_recover_and_chop_match_apache() {
    let src = v2(apache_dir());
    let logs = names(&src, "log.");
    let log = &logs[1];
    let work_a = tempfile::tempdir().unwrap();
    let work_b = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(src.join(log)).unwrap();
    // Flip a byte of the 1st and the 3rd record's checksum.
    bytes[16 + 7] ^= 0x5a;
    let len0 = i32::from_be_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let second = 16 + 8 + 4 + len0 + 1;
    let len1 = i32::from_be_bytes(bytes[second + 8..second + 12].try_into().unwrap()) as usize;
    let third = second + 8 + 4 + len1 + 1;
    bytes[third + 3] ^= 0x01;
    for w in [work_a.path(), work_b.path()] {
        std::fs::write(w.join("bad.log"), &bytes).unwrap();
    }
    let tk = "org.apache.zookeeper.server.persistence.TxnLogToolkit";
    // Plain dump reports the two CRC errors.
    let a = java(tk, &["bad.log"], work_a.path(), b"");
    let b = ours(TXN_TOOL, &["bad.log"], work_b.path(), b"");
    same("dump of a bad log", &a, &b);
    assert_eq!(String::from_utf8_lossy(&a.stdout).matches("CRC ERROR - ").count(), 2);
    // Interactive recovery (answers y, then n after a bad answer) and forced recovery.
    let cases: [(&[&str], &[u8]); 4] = [
        (&["-r", "bad.log"], b"y\nmaybe no\n"),
        (&["-r", "-v", "bad.log"], b"yes y\n"),
        (&["--recover", "--yes", "bad.log"], b""),
        (&["-r", "-y", "-v", "bad.log"], b""),
    ];
    for (args, input) in cases {
        for w in [work_a.path(), work_b.path()] {
            let _ = std::fs::remove_file(w.join("bad.log.fixed"));
        }
        let a = java(tk, args, work_a.path(), input);
        let b = ours(TXN_TOOL, args, work_b.path(), input);
        same(&format!("recover {args:?}"), &a, &b);
        let fa = std::fs::read(work_a.path().join("bad.log.fixed")).unwrap();
        let fb = std::fs::read(work_b.path().join("bad.log.fixed")).unwrap();
        assert!(fa == fb, "recovered files differ ({} vs {} bytes)", fa.len(), fb.len());
    }
    // The forced recovery's output reads cleanly with both toolkits (the last case).
    for w in [work_a.path(), work_b.path()] {
        let a = java(tk, &["bad.log.fixed"], w, b"");
        let b = ours(TXN_TOOL, &["bad.log.fixed"], w, b"");
        same("dump of the fixed log", &a, &b);
        let s = String::from_utf8_lossy(&a.stdout);
        assert!(!s.contains("CRC ERROR") && s.contains("EOF reached after"), "{s}");
    }
    // An existing .fixed file stops recovery.
    let a = java(tk, &["-r", "-y", "bad.log"], work_a.path(), b"");
    let b = ours(TXN_TOOL, &["-r", "-y", "bad.log"], work_b.path(), b"");
    same("recover onto an existing file", &a, &b);
    // Abort.
    for w in [work_a.path(), work_b.path()] {
        let _ = std::fs::remove_file(w.join("bad.log.fixed"));
    }
    let a = java(tk, &["-r", "bad.log"], work_a.path(), b"a\n");
    let b = ours(TXN_TOOL, &["-r", "bad.log"], work_b.path(), b"a\n");
    same("abort", &a, &b);
    assert_eq!(String::from_utf8_lossy(&a.stderr).trim(), String::from_utf8_lossy(&b.stderr).trim());

    // Chop: to a zxid in the middle, to the last zxid (upstream fails), to one absent.
    let good = src.join(log);
    for w in [work_a.path(), work_b.path()] {
        std::fs::copy(&good, w.join(log)).unwrap();
    }
    let start = util::get_zxid_from_name(log, "log");
    let mid = format!("0x{:x}", start + 3);
    let dec = format!("{}", start + 1);
    for z in [mid.as_str(), dec.as_str(), "0x1", "999999"] {
        let args = ["-c", "-z", z, log.as_str()];
        let a = java(tk, &args, work_a.path(), b"");
        let b = ours(TXN_TOOL, &args, work_b.path(), b"");
        same(&format!("chop {args:?}"), &a, &b);
        let zv = zookeeper::server::persistence::txn_log_toolkit::java_long_decode(z).unwrap();
        let out = format!("{log}.chopped{zv}");
        let fa = std::fs::read(work_a.path().join(&out)).unwrap();
        let fb = std::fs::read(work_b.path().join(&out)).unwrap();
        assert!(fa == fb, "chopped files differ for {z}");
    }
}

#[test]
fn snapshot_formatter_matches_apache() {
    let dir = v2(apache_dir());
    let snaps = names(&dir, "snapshot.");
    assert!(snaps.len() >= 3, "{snaps:?}");
    let sf = "org.apache.zookeeper.server.SnapshotFormatter";
    let ts = regex_free_timestamp;
    for s in &snaps {
        for flags in [&[][..], &["-d"][..], &["-json"][..]] {
            let mut args: Vec<&str> = flags.to_vec();
            args.push(s);
            let mut a = java(sf, &args, &dir, b"");
            let mut b = ours(SNAP_TOOL, &args, &dir, b"");
            if flags == ["-json"] {
                a.stdout = ts(&a.stdout);
                b.stdout = ts(&b.stdout);
            }
            same(&format!("SnapshotFormatter {args:?}"), &a, &b);
            assert!(a.status.success());
        }
    }
    for args in [&["nope"][..], &[][..], &["-d", "-json", snaps[0].as_str()][..], &[snaps[0].as_str(), "extra"][..]] {
        let a = java(sf, args, &dir, b"");
        let b = ours(SNAP_TOOL, args, &dir, b"");
        same(&format!("SnapshotFormatter {args:?}"), &a, &b);
        assert_eq!(a.stderr, b.stderr, "stderr of {args:?}");
    }
}

/// Replaces the `"timestamp":<ms>` of the JSON header (the only varying part).
fn regex_free_timestamp(out: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(out).into_owned();
    let key = "\"timestamp\":";
    match s.find(key) {
        Some(i) => {
            let from = i + key.len();
            let end = s[from..].find('}').map(|j| from + j).unwrap_or(s.len());
            format!("{}T{}", &s[..from], &s[end..]).into_bytes()
        }
        None => out.to_vec(),
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v = names(dir, "log.");
    v.extend(names(dir, "snapshot."));
    v
}

#[test]
fn purge_matches_apache() {
    let src = apache_dir();
    let snaps = names(&v2(src), "snapshot.");
    assert!(snaps.len() >= 6, "want ≥ 6 snapshots: {snaps:?}");
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    copy_dir(src, a_dir.path());
    copy_dir(src, b_dir.path());
    let pa = a_dir.path().to_string_lossy().into_owned();
    let pb = b_dir.path().to_string_lossy().into_owned();
    let a = java("org.apache.zookeeper.server.PurgeTxnLog", &[&pa, "-n", "3"], a_dir.path(), b"");
    let b = ours(PURGE_TOOL, &[&pb, "-n", "3"], b_dir.path(), b"");
    assert!(a.status.success() && b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let la = listing(&v2(a_dir.path()));
    let lb = listing(&v2(b_dir.path()));
    assert_eq!(la, lb, "remaining files");
    assert_eq!(names(&v2(a_dir.path()), "snapshot.").len(), 3);
    assert!(la.len() < listing(&v2(src)).len(), "nothing was purged");
    let mut oa: Vec<String> = String::from_utf8_lossy(&a.stdout).replace(&pa, "D").lines().map(str::to_owned).collect();
    let mut ob: Vec<String> = String::from_utf8_lossy(&b.stdout).replace(&pb, "D").lines().map(str::to_owned).collect();
    oa.sort();
    ob.sort();
    assert_eq!(oa, ob, "Removing file: lines");
    assert!(oa.iter().all(|l| l.starts_with("Removing file: ")), "{oa:?}");

    // Separate snapDir and dataLogDir arguments; bad counts and paths.
    let b2 = tempfile::tempdir().unwrap();
    copy_dir(src, b2.path());
    let p2 = b2.path().to_string_lossy().into_owned();
    let b = ours(PURGE_TOOL, &[&p2, &p2, "-n", "4"], b2.path(), b"");
    assert!(b.status.success());
    assert_eq!(names(&v2(b2.path()), "snapshot.").len(), 4);
    for args in [&[pa.as_str(), "-n", "2"][..], &[pa.as_str(), "-n", "x"][..], &["/no/such", "-n", "3"][..], &[pa.as_str()][..]] {
        let a = java("org.apache.zookeeper.server.PurgeTxnLog", args, a_dir.path(), b"");
        let b = ours(PURGE_TOOL, args, a_dir.path(), b"");
        same(&format!("PurgeTxnLog {args:?}"), &a, &b);
        assert_eq!(a.stderr, b.stderr, "stderr of {args:?}");
    }
}

#[test]
fn autopurge_keeps_retain_count() {
    let mut srv = OurServer::start_standalone(
        "snapCount=10\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\n",
        &["-Dzookeeper.autopurge.purgeIntervalMs=200"],
    );
    let addr = srv.connect_string();
    let mut c = RawClient::connect(&addr).expect("connect");
    let open = vec![ACL::new(31, "world", "anyone")];
    let dir = v2(&srv.data_dir());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    let mut max_seen = 0;
    // Write until snapshots have been taken well beyond the retain count.
    let mut snapshots_made = std::collections::BTreeSet::new();
    while snapshots_made.len() < 8 {
        assert!(Instant::now() < deadline, "too few snapshots: {snapshots_made:?}");
        let req = CreateRequest {
            path: format!("/n{i}"),
            data: Some(vec![b'x'; 10]),
            acl: open.clone(),
            flags: 0,
        };
        let (h, _) = c.call_rec(op_code::CREATE, &req).expect("create");
        assert_eq!(h.err, 0);
        i += 1;
        for s in names(&dir, "snapshot.") {
            snapshots_made.insert(util::get_zxid_from_name(&s, "snapshot"));
        }
        max_seen = max_seen.max(names(&dir, "snapshot.").len());
    }
    // Quiet: let a few purge rounds pass.
    std::thread::sleep(Duration::from_millis(1000));
    let snaps = names(&dir, "snapshot.");
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    let oldest = util::get_zxid_from_name(&snaps[0], "snapshot");
    let all_logs: Vec<PathBuf> = names(&dir, "log.").iter().map(|n| dir.join(n)).collect();
    let needed = get_log_files(all_logs.clone(), oldest);
    assert_eq!(all_logs, needed, "logs kept beyond what snapshot.{oldest:x} needs");
    assert!(needed.first().map(|f| util::zxid_of(f, "log") <= oldest).unwrap_or(false));
    let log = srv.log_contents();
    for l in ["autopurge.snapRetainCount set to 3", "autopurge.purgeInterval set to 1", "Purge task started."] {
        assert!(log.contains(l), "missing {l:?} in the server log");
    }
    eprintln!("snapshots seen at once: {max_seen}, made: {}", snapshots_made.len());
    srv.kill();

    // purgeInterval=0: not scheduled.
    let mut srv = OurServer::start_standalone("autopurge.purgeInterval=0\n", &[]);
    assert!(srv.log_contents().contains("Purge task is not scheduled."));
    srv.kill();
}
