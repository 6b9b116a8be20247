//! On-disk formats (txn logs and snapshots) against Apache ZooKeeper 3.8, both ways,
//! without our server: Apache writes a dataDir that our reader must decode and replay
//! to exactly what the clients saw; our writer builds a dataDir that Apache must load
//! and serve unchanged. Plus torn tails, corrupt records and corrupt snapshots.

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use zookeeper::jute::Record;
use zookeeper::proto::data::{Stat, ACL};
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{CreateRequest, CreateTTLRequest};
use zookeeper::proto::txn::*;
use zookeeper::server::data_tree::DataTree;
use zookeeper::server::digest_calculator::tree_digest;
use zookeeper::server::persistence::file_snap::{self, read_snapshot_file};
use zookeeper::server::persistence::file_txn_log::LogEntry;
use zookeeper::server::persistence::util;
use zookeeper::server::persistence::{FileSnap, FileTxnLog};
use zookeeper::server::txn_record::TxnRecord;
use zookeeper::system_properties;

use common::ApacheServer;
use raw_client::RawClient;

/// digest id of alice:secret (base64 SHA-1 of "alice:secret").
const ALICE: &str = "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=";

fn setup() {
    // Read once per process by the Stat copy: must be on before any tree is used.
    system_properties::set("zookeeper.extendedTypesEnabled", "true");
}

// ------------------------------------------------------------- helpers --

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn stat_line(s: &Stat) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {} {} {}",
        s.czxid,
        s.mzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children,
        s.pzxid
    )
}

/// One line per node outside /zookeeper: path, data, client Stat, ACLs — the same
/// format as DUMP_SCRIPT prints.
fn tree_lines(tree: &DataTree) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, node) in tree.nodes() {
        if path == "/zookeeper" || path.starts_with("/zookeeper/") {
            continue;
        }
        let data = match node.data() {
            Some(d) => hex(d),
            None => "null".into(),
        };
        let acls: Vec<String> = tree
            .acl_of(node)
            .iter()
            .map(|a| format!("{}:{}:{}", a.perms, a.id.scheme, a.id.id))
            .collect();
        out.insert(format!(
            "N\t{path}\t{data}\t{}\t{}",
            stat_line(&node.copy_stat()),
            acls.join(",")
        ));
    }
    out
}

const DUMP_FN: &str = r#"
def dump(zk):
    def walk(p):
        data, st = zk.get(p)
        acls, _ = zk.get_acls(p)
        d = 'null' if data is None else data.hex()
        s = ' '.join(str(x) for x in (st.czxid, st.mzxid, st.ctime, st.mtime, st.version, st.cversion,
                                       st.aversion, st.ephemeralOwner, st.dataLength, st.numChildren, st.pzxid))
        a = ','.join('%d:%s:%s' % (x.perms, x.id.scheme, x.id.id) for x in acls)
        print('N\t%s\t%s\t%s\t%s' % (p, d, s, a))
        for k in sorted(zk.get_children(p)):
            c = ('' if p == '/' else p) + '/' + k
            if c != '/zookeeper':
                walk(c)
    walk('/')
    sys.stdout.flush()
"#;

fn dump_lines(stdout: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with("N\t"))
        .map(str::to_owned)
        .collect()
}

fn diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> String {
    let only_a: Vec<&String> = a.difference(b).take(10).collect();
    let only_b: Vec<&String> = b.difference(a).take(10).collect();
    format!(
        "only in ours ({}): {only_a:#?}\nonly in apache ({}): {only_b:#?}",
        a.difference(b).count(),
        b.difference(a).count()
    )
}

/// `FileTxnSnapLog.processTransaction`: session bookkeeping, then the tree.
fn apply(tree: &mut DataTree, sessions: &mut HashMap<i64, i32>, e: &LogEntry) {
    match (e.header.r#type, &e.txn) {
        (op_code::CREATE_SESSION, Some(TxnRecord::CreateSession(c))) => {
            sessions.insert(e.header.client_id, c.time_out);
        }
        (op_code::CLOSE_SESSION, _) => {
            sessions.remove(&e.header.client_id);
        }
        _ => {}
    }
    tree.process_txn(&e.header, e.txn.as_ref());
}

fn version2(data_dir: &Path) -> PathBuf {
    data_dir.join(util::VERSION_DIR)
}

fn names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

// ----------------------------------------------------- (b) Apache → us --

const WRITER_SCRIPT: &str = r#"
import sys, os
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
for i in range(120):
    zk.create('/app/n%03d' % i, ('v%d' % i).encode() * (i % 7))
for i in range(40):
    zk.create('/app/seq-', b's', sequence=True)
zk.create('/secure', b'alice only', acl=[alice])
for i in range(20):
    zk.create('/secure/c%d' % i, b'x', acl=[alice, ip])
zk.create('/ro', b'read only', acl=[ro])
zk.create('/ipnode', b'ip', acl=[ip])
for i in range(0, 120, 3):
    zk.set('/app/n%03d' % i, b'changed%d' % i)
for i in range(0, 120, 5):
    zk.set('/app/n%03d' % i, b'again')
for i in range(1, 120, 4):
    zk.delete('/app/n%03d' % i)
for i in range(10):
    zk.set_acls('/app/n%03d' % (i * 6), [alice, ro])
t = zk.transaction()
t.create('/multi', b'm'); t.create('/multi/a', b'a'); t.set_data('/app/n000', b'multi'); t.delete('/app/n002')
print('multi', t.commit())
t = zk.transaction()
t.create('/multi/b', b'b'); t.create('/multi/a', b'dup')
print('failed multi', t.commit())
try:
    zk.delete('/does/not/exist')
except NoNodeError:
    pass
zk2 = KazooClient(hosts=hosts, timeout=30); zk2.start()
for i in range(10):
    zk2.create('/app/gone%d' % i, b'e', ephemeral=True)
zk2.stop(); zk2.close()
zk3 = KazooClient(hosts=hosts, timeout=60); zk3.start()
for i in range(15):
    zk3.create('/app/eph%d' % i, b'e', ephemeral=True)
zk3.create('/app/ephseq-', b'e', ephemeral=True, sequence=True)
zk.create('/\u00fcn\u00efcode', '\u00fc'.encode())
zk.create('/big', b'B' * 200000)
zk.create('/empty', b'')
print('WROTE', flush=True)
dump(zk)
os._exit(0)
"#;

#[test]
fn apache_data_dir_reads_and_replays() {
    setup();
    let mut srv = ApacheServer::start_standalone("snapCount=100\n");
    let addr = srv.connect_string();
    // Containers and TTL nodes (kazoo has no API for them).
    {
        let mut c = RawClient::connect(&addr).expect("connect");
        let open = vec![ACL::new(31, "world", "anyone")];
        let mk = |path: &str, flags: i32| CreateRequest {
            path: path.into(),
            data: Some(b"c".to_vec()),
            acl: open.clone(),
            flags,
        };
        for (op, req) in [
            (op_code::CREATE_CONTAINER, mk("/cont", 4)),
            (op_code::CREATE, mk("/cont/child", 0)),
            (op_code::CREATE_CONTAINER, mk("/cont-empty", 4)),
        ] {
            let (h, _) = c.call_rec(op, &req).expect("create");
            assert_eq!(h.err, 0, "{}", req.path);
        }
        for (path, flags) in [("/ttl", 5), ("/ttlseq-", 6)] {
            let req = CreateTTLRequest {
                path: path.into(),
                data: Some(b"t".to_vec()),
                acl: open.clone(),
                flags,
                ttl: 3_600_000,
            };
            let (h, _) = c.call_rec(op_code::CREATE_TTL, &req).expect("createTTL");
            assert_eq!(h.err, 0, "{path}");
        }
    }
    let out = common::run_kazoo(&format!("{DUMP_FN}\n{WRITER_SCRIPT}"), &addr);
    assert!(
        out.status.success(),
        "kazoo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = dump_lines(&out.stdout);
    srv.kill();
    assert!(expected.len() > 150, "dump too small: {}", expected.len());

    let dir = version2(&srv.data_dir());
    let logs = names(&dir, "log.");
    let snaps = names(&dir, "snapshot.");
    eprintln!("logs: {logs:?}\nsnapshots: {snaps:?}");
    assert!(logs.len() >= 2, "want several logs: {logs:?}");
    assert!(snaps.len() >= 2, "want a snapshot besides snapshot.0: {snaps:?}");

    // Every txn of every log decodes, checksums match, zxids ascend.
    let log = FileTxnLog::new(&dir);
    let mut it = log.read(0).unwrap();
    let entries: Vec<LogEntry> = it.by_ref().map(|e| e.expect("txn decodes")).collect();
    assert!(entries.len() > 300, "only {} txns", entries.len());
    // Standalone zxids 1, 2, 3, ... without gaps, across all files.
    assert!(entries.iter().enumerate().all(|(i, e)| e.header.zxid == i as i64 + 1));
    assert!(it.torn_tails().iter().all(|t| t.all_zero), "{:?}", it.torn_tails());
    let no_digest: BTreeSet<i32> = entries
        .iter()
        .filter(|e| e.digest.is_none())
        .map(|e| e.header.r#type)
        .collect();
    // Every txn but the plain error txn (PrepRequestProcessor adds none to those).
    assert_eq!(
        no_digest,
        [op_code::ERROR].into_iter().collect(),
        "Apache 3.8 logs carry TxnDigests"
    );
    let types: BTreeSet<i32> = entries.iter().map(|e| e.header.r#type).collect();
    for t in [
        op_code::CREATE_SESSION,
        op_code::CLOSE_SESSION,
        op_code::CREATE,
        op_code::SET_DATA,
        op_code::DELETE,
        op_code::SET_ACL,
        op_code::MULTI,
        op_code::ERROR,
        op_code::CREATE_CONTAINER,
        op_code::CREATE_TTL,
    ] {
        assert!(types.contains(&t), "no txn of type {t} in {types:?}");
    }
    assert_eq!(log.get_last_logged_zxid(), entries.last().unwrap().header.zxid);

    // Every snapshot decodes with matching seals; remember their digest trailers.
    let mut trailers = HashMap::new();
    for s in &snaps {
        let l = read_snapshot_file(&dir.join(s)).unwrap_or_else(|e| panic!("{s}: {e}"));
        let t = l.trailer.expect("3.8 snapshots have a digest trailer");
        if t.zxid > 0 {
            trailers.insert(t.zxid, t.digest);
        }
    }

    // Digests: replaying everything from snapshot.0 must reproduce Apache's digest
    // after every txn and at every snapshot trailer.
    let base = read_snapshot_file(&dir.join("snapshot.0")).unwrap();
    let (mut tree, mut sessions) = (base.tree, base.sessions);
    let mut checked_trailers = 0;
    for e in &entries {
        apply(&mut tree, &mut sessions, e);
        if let Some(d) = e.digest.as_ref() {
            assert_eq!(
                d.tree_digest,
                tree_digest(&tree),
                "digest after txn 0x{:x} type {}",
                e.header.zxid,
                e.header.r#type
            );
        }
        if let Some(want) = trailers.get(&e.header.zxid) {
            assert_eq!(*want, tree_digest(&tree));
            checked_trailers += 1;
        }
    }
    assert_eq!(checked_trailers, trailers.len());
    assert_eq!(tree_lines(&tree), expected, "{}", diff(&tree_lines(&tree), &expected));

    // Restore as the server does: newest valid snapshot, then the log after its zxid.
    let loaded = FileSnap::new(&dir).deserialize().unwrap().expect("a snapshot");
    assert_eq!(
        loaded.file.file_name().unwrap().to_string_lossy(),
        *snaps
            .iter()
            .max_by_key(|n| util::get_zxid_from_name(n, "snapshot"))
            .unwrap()
    );
    let (mut tree, mut sessions, from) = (loaded.tree, loaded.sessions, loaded.zxid);
    let mut pending = loaded.pending_digest;
    for e in log.read(from + 1).unwrap() {
        let e = e.unwrap();
        assert!(e.header.zxid > from);
        apply(&mut tree, &mut sessions, &e);
        if let Some(d) = pending {
            if d.zxid == e.header.zxid {
                assert!(d.matches(&tree), "snapshot digest at 0x{:x}", d.zxid);
                pending = None;
            }
        }
    }
    assert_eq!(tree_lines(&tree), expected, "{}", diff(&tree_lines(&tree), &expected));
    // The ephemerals of the session that was never closed, and its session entry.
    let owners: BTreeSet<i64> = tree
        .ephemerals_map()
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(o, _)| *o)
        .collect();
    assert_eq!(owners.len(), 1);
    assert!(owners.iter().all(|o| sessions.contains_key(o)));
    assert_eq!(tree.ttls().len(), 2);
    assert_eq!(tree.containers().len(), 2);
}

// ----------------------------------------------------- (c) us → Apache --

struct Builder {
    tree: DataTree,
    sessions: HashMap<i64, i32>,
    zxid: i64,
    time: i64,
    entries: Vec<(TxnHeader, Option<TxnRecord>)>,
}

impl Builder {
    fn txn(&mut self, client: i64, ty: i32, txn: Option<TxnRecord>) {
        self.zxid += 1;
        self.time += 7;
        let hdr = TxnHeader {
            client_id: client,
            cxid: self.zxid as i32 & 0xffff,
            zxid: self.zxid,
            time: self.time,
            r#type: ty,
        };
        match (ty, &txn) {
            (op_code::CREATE_SESSION, Some(TxnRecord::CreateSession(c))) => {
                self.sessions.insert(client, c.time_out);
            }
            (op_code::CLOSE_SESSION, _) => {
                self.sessions.remove(&client);
            }
            _ => {}
        }
        let rc = self.tree.process_txn(&hdr, txn.as_ref());
        assert_eq!(rc.err, 0, "txn {ty} failed");
        self.entries.push((hdr, txn));
    }

    fn pcv(&self, path: &str) -> i32 {
        let parent = match path.rfind('/') {
            Some(0) => "/",
            Some(i) => &path[..i],
            None => "/",
        };
        self.tree.get_node(parent).map(|n| n.stat.cversion + 1).unwrap_or(1)
    }

    fn create(&mut self, client: i64, path: &str, data: Option<&[u8]>, acl: &[ACL], ephemeral: bool) {
        let t = CreateTxn {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            acl: acl.to_vec(),
            ephemeral,
            parent_c_version: self.pcv(path),
        };
        self.txn(client, op_code::CREATE2, Some(TxnRecord::Create(t)));
    }
}

#[test]
fn our_data_dir_is_served_by_apache() {
    setup();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    let dir = version2(&data_dir);
    std::fs::create_dir_all(&dir).unwrap();

    let open = vec![ACL::new(31, "world", "anyone")];
    let alice = vec![ACL::new(31, "digest", ALICE)];
    let mixed = vec![
        ACL::new(31, "digest", ALICE),
        ACL::new(1, "ip", "127.0.0.1"),
        ACL::new(1, "world", "anyone"),
    ];
    let ro = vec![ACL::new(1, "world", "anyone")];
    let (s1, s2) = (0x1000_0abc_0000_0001i64, 0x1000_0abc_0000_0002i64);
    let mut b = Builder {
        tree: DataTree::new(),
        sessions: HashMap::new(),
        zxid: 0x1_0000_0000,
        time: now - 60_000,
        entries: Vec::new(),
    };
    b.txn(
        s1,
        op_code::CREATE_SESSION,
        Some(TxnRecord::CreateSession(CreateSessionTxn { time_out: 40000 })),
    );
    b.create(s1, "/app", Some(b"app data"), &open, false);
    for i in 0..150 {
        let acl = match i % 3 {
            0 => &open,
            1 => &mixed,
            _ => &ro,
        };
        let data = format!("value-{i}").repeat(i % 5);
        b.create(s1, &format!("/app/n{i:03}"), Some(data.as_bytes()), acl, false);
    }
    b.create(s1, "/secure", Some(b"alice"), &alice, false);
    b.create(s1, "/nulldata", None, &open, false);
    for i in 0..10 {
        b.create(s1, &format!("/app/eph{i}"), Some(b"e"), &open, true);
    }
    let pcv = b.pcv("/cont");
    b.txn(
        s1,
        op_code::CREATE_CONTAINER,
        Some(TxnRecord::CreateContainer(CreateContainerTxn {
            path: "/cont".into(),
            data: Some(b"c".to_vec()),
            acl: open.clone(),
            parent_c_version: pcv,
        })),
    );
    b.create(s1, "/cont/kid", Some(b"k"), &open, false);
    let pcv = b.pcv("/ttl");
    b.txn(
        s1,
        op_code::CREATE_TTL,
        Some(TxnRecord::CreateTtl(CreateTTLTxn {
            path: "/ttl".into(),
            data: Some(b"t".to_vec()),
            acl: open.clone(),
            parent_c_version: pcv,
            ttl: 3_600_000,
        })),
    );
    for i in (0..150).step_by(4) {
        b.txn(
            s1,
            op_code::SET_DATA,
            Some(TxnRecord::SetData(SetDataTxn {
                path: format!("/app/n{i:03}"),
                data: Some(b"set once".to_vec()),
                version: 1,
            })),
        );
    }

    // Snapshot here; everything after goes to the log only.
    let snap_zxid = b.zxid;
    b.tree.last_processed_zxid = snap_zxid;
    let snap = FileSnap::new(&dir);
    let snap_path = snap.save(&b.tree, &b.sessions, true).unwrap();
    assert_eq!(
        snap_path.file_name().unwrap().to_string_lossy(),
        format!("snapshot.{snap_zxid:x}")
    );
    let first_log_entry = b.entries.len();

    b.txn(
        s2,
        op_code::CREATE_SESSION,
        Some(TxnRecord::CreateSession(CreateSessionTxn { time_out: 40000 })),
    );
    for i in 0..5 {
        b.create(s2, &format!("/app/s2eph{i}"), Some(b"x"), &open, true);
    }
    for i in (1..150).step_by(6) {
        b.txn(
            s1,
            op_code::DELETE,
            Some(TxnRecord::Delete(DeleteTxn {
                path: format!("/app/n{i:03}"),
            })),
        );
    }
    for i in (0..150).step_by(9) {
        if i % 6 == 1 {
            continue;
        }
        b.txn(
            s1,
            op_code::SET_ACL,
            Some(TxnRecord::SetAcl(SetACLTxn {
                path: format!("/app/n{i:03}"),
                acl: alice.clone(),
                version: 0,
            })),
        );
    }
    let pcv_m = b.pcv("/multi");
    let subs = vec![
        TxnRecord::Create(CreateTxn {
            path: "/multi".into(),
            data: Some(b"m".to_vec()),
            acl: open.clone(),
            ephemeral: false,
            parent_c_version: pcv_m,
        })
        .to_sub_txn(op_code::CREATE),
        TxnRecord::Create(CreateTxn {
            path: "/multi/a".into(),
            data: Some(b"a".to_vec()),
            acl: ro.clone(),
            ephemeral: false,
            parent_c_version: 1,
        })
        .to_sub_txn(op_code::CREATE),
        TxnRecord::SetData(SetDataTxn {
            path: "/app/n000".into(),
            data: Some(b"by multi".to_vec()),
            version: 2,
        })
        .to_sub_txn(op_code::SET_DATA),
        TxnRecord::Delete(DeleteTxn {
            path: "/app/n003".into(),
        })
        .to_sub_txn(op_code::DELETE),
    ];
    b.txn(s1, op_code::MULTI, Some(TxnRecord::Multi(MultiTxn { txns: subs })));
    // A session that ends: its ephemerals go with its closeSession.
    let s3 = 0x1000_0abc_0000_0003i64;
    b.txn(
        s3,
        op_code::CREATE_SESSION,
        Some(TxnRecord::CreateSession(CreateSessionTxn { time_out: 30000 })),
    );
    b.create(s3, "/gone", Some(b"g"), &open, true);
    b.txn(
        s3,
        op_code::CLOSE_SESSION,
        Some(TxnRecord::CloseSession(CloseSessionTxn {
            paths2_delete: vec!["/gone".into()],
        })),
    );
    assert!(b.tree.get_node("/gone").is_none());

    // The log, with exact TxnDigests (the tree digest after each txn).
    let mut replay = read_snapshot_file(&snap_path).unwrap();
    assert_eq!(replay.digest_checked, Some(true));
    let mut log = FileTxnLog::new(&dir);
    log.set_prealloc_size(1024 * 1024);
    for (i, (hdr, txn)) in b.entries[first_log_entry..].iter().enumerate() {
        replay.tree.process_txn(hdr, txn.as_ref());
        let d = TxnDigest {
            version: zookeeper::server::digest_calculator::DIGEST_VERSION,
            tree_digest: tree_digest(&replay.tree),
        };
        log.append(hdr, txn.as_ref(), Some(&d)).unwrap();
        if i == 20 {
            log.commit().unwrap();
            log.roll_log().unwrap();
        }
    }
    log.commit().unwrap();
    drop(log);
    assert_eq!(names(&dir, "log.").len(), 2);
    let ours = tree_lines(&b.tree);
    assert_eq!(tree_lines(&replay.tree), ours);

    let mut srv = ApacheServer::start_standalone(&format!("dataDir={}\n", data_dir.display()));
    let script = format!(
        "import sys, os\nfrom kazoo.client import KazooClient\n{DUMP_FN}\nzk = KazooClient(hosts=sys.argv[1], timeout=30)\nzk.start()\nzk.add_auth('digest', 'alice:secret')\ndump(zk)\nos._exit(0)\n"
    );
    let out = common::run_kazoo(&script, &srv.connect_string());
    assert!(
        out.status.success(),
        "kazoo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srvr = srv.four_letter("srvr");
    let log_text = srv.log_contents();
    srv.kill();
    let theirs = dump_lines(&out.stdout);
    assert!(theirs.len() > 140, "{}", theirs.len());
    assert_eq!(ours, theirs, "{}", diff(&ours, &theirs));
    // Apache used our snapshot (and its digest trailer) and then our log.
    assert!(
        log_text.contains(&format!("Reading snapshot {}", snap_path.display())),
        "{log_text}"
    );
    assert!(
        log_text.contains(&format!("with zxid as 0x{snap_zxid:x}, and digest value as ")),
        "{log_text}"
    );
    assert!(srvr.contains("Zxid: 0x"), "{srvr}");
    for bad in [
        "Digests are not matching",
        "problem reading snap file",
        "CRC check failed",
        "Not able to find valid snapshots",
    ] {
        assert!(!log_text.contains(bad), "Apache logged {bad:?}:\n{log_text}");
    }
    // Apache restored exactly our last zxid (its first own txn, the dump session, is +1).
    let last = b.zxid;
    let apache_zxid = srvr
        .lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x"))
        .map(|h| i64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    assert!(
        apache_zxid == last || apache_zxid == last + 1,
        "apache at 0x{apache_zxid:x}, we wrote up to 0x{last:x}"
    );
    // And its own start-up snapshot (written on top of our files) is readable by us.
    let apache_snap = dir.join(format!("snapshot.{last:x}"));
    let l = read_snapshot_file(&apache_snap).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tree_lines(&l.tree), ours);
    assert_eq!(
        l.trailer.map(|t| (t.zxid, t.digest)),
        Some((last, tree_digest(&b.tree)))
    );
}

// ------------------------------------------------- (a) + (d) local files --

fn sample_log(dir: &Path, n: i64) -> Vec<(TxnHeader, TxnRecord)> {
    let mut log = FileTxnLog::new(dir);
    log.set_prealloc_size(4096);
    log.set_force_sync(false);
    let mut v = Vec::new();
    for z in 1..=n {
        let hdr = TxnHeader {
            client_id: 1,
            cxid: z as i32,
            zxid: z,
            time: 1000 + z,
            r#type: op_code::SET_DATA,
        };
        let t = TxnRecord::SetData(SetDataTxn {
            path: format!("/p{z}"),
            data: Some(vec![z as u8; 50]),
            version: z as i32,
        });
        log.append(
            &hdr,
            Some(&t),
            Some(&TxnDigest {
                version: 2,
                tree_digest: z,
            }),
        )
        .unwrap();
        v.push((hdr, t));
    }
    log.commit().unwrap();
    v
}

#[test]
fn torn_tail_and_corruption() {
    setup();
    let d = tempfile::tempdir().unwrap();
    let written = sample_log(d.path(), 10);
    let f = d.path().join("log.1");
    let all: Vec<LogEntry> = FileTxnLog::new(d.path()).read(1).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(all.len(), 10);
    assert_eq!(
        all.iter()
            .map(|e| (e.header.clone(), e.txn.clone().unwrap()))
            .collect::<Vec<_>>(),
        written
    );
    let (last_off, last_end) = (all[9].offset, all[9].end_offset);
    let pristine = std::fs::read(&f).unwrap();

    // Torn tail: the last record cut halfway, file shortened.
    std::fs::write(&f, &pristine[..(last_off + (last_end - last_off) / 2) as usize]).unwrap();
    let mut it = FileTxnLog::new(d.path()).read(1).unwrap();
    let got: Vec<i64> = it.by_ref().map(|e| e.unwrap().header.zxid).collect();
    assert_eq!(got, (1..=9).collect::<Vec<_>>());
    let t = &it.torn_tails()[0];
    assert_eq!((t.offset, t.reason, t.all_zero), (last_off, "end of file", false));
    assert_eq!(FileTxnLog::new(d.path()).get_last_logged_zxid(), 9);

    // Torn tail inside preallocated space: half the record, zeros after it.
    let mut b = pristine.clone();
    for x in &mut b[(last_off + (last_end - last_off) / 2) as usize..] {
        *x = 0;
    }
    std::fs::write(&f, &b).unwrap();
    let mut it = FileTxnLog::new(d.path()).read(1).unwrap();
    assert_eq!(it.by_ref().map(|e| e.unwrap().header.zxid).last(), Some(9));
    assert_eq!(it.torn_tails()[0].offset, last_off);
    assert_eq!(it.torn_tails()[0].reason, "missing end-of-record byte");

    // Zero-filled last record: a clean end.
    let mut b = pristine.clone();
    for x in &mut b[last_off as usize..] {
        *x = 0;
    }
    std::fs::write(&f, &b).unwrap();
    let mut it = FileTxnLog::new(d.path()).read(1).unwrap();
    assert_eq!(it.by_ref().count(), 9);
    assert!(it.torn_tails()[0].all_zero);

    // A flipped byte in a middle record: an error naming file and offset.
    let mut b = pristine.clone();
    let mid = &all[4];
    b[(mid.offset + 30) as usize] ^= 0x40;
    std::fs::write(&f, &b).unwrap();
    let res: Vec<_> = FileTxnLog::new(d.path()).read(1).unwrap().collect();
    assert_eq!(res.len(), 5);
    let err = res[4].as_ref().err().unwrap().to_string();
    assert!(
        err.contains("CRC check failed") && err.contains("log.1") && err.contains(&format!("offset {}", mid.offset)),
        "{err}"
    );

    // A log header with a bad magic.
    let mut b = pristine.clone();
    b[3] = b'X';
    std::fs::write(&f, &b).unwrap();
    let err = FileTxnLog::new(d.path()).read(1).err().unwrap().to_string();
    assert!(err.contains("invalid magic number") && err.contains("log.1"), "{err}");

    // Truncate keeps up to and including the given zxid.
    std::fs::write(&f, &pristine).unwrap();
    let mut log = FileTxnLog::new(d.path());
    log.truncate(6).unwrap();
    assert_eq!(std::fs::metadata(&f).unwrap().len(), all[5].end_offset);
    assert_eq!(log.get_last_logged_zxid(), 6);
}

#[test]
fn snapshot_round_trip_and_bad_checksum_falls_back() {
    setup();
    let d = tempfile::tempdir().unwrap();
    let mut tree = DataTree::new();
    let acl = vec![ACL::new(31, "digest", ALICE)];
    for (z, p) in [(1, "/a"), (2, "/a/b"), (3, "/c")] {
        let hdr = TxnHeader {
            client_id: 9,
            cxid: z,
            zxid: z as i64,
            time: 5,
            r#type: op_code::CREATE,
        };
        let t = TxnRecord::Create(CreateTxn {
            path: p.into(),
            data: Some(p.as_bytes().to_vec()),
            acl: acl.clone(),
            ephemeral: z == 3,
            parent_c_version: -1,
        });
        assert_eq!(tree.process_txn(&hdr, Some(&t)).err, 0);
    }
    let sessions: HashMap<i64, i32> = [(9, 30000)].into_iter().collect();
    let snap = FileSnap::new(d.path());
    tree.last_processed_zxid = 2;
    let older = snap.save(&tree, &sessions, false).unwrap();
    tree.last_processed_zxid = 3;
    let newer = snap.save(&tree, &sessions, true).unwrap();
    let l = snap.deserialize().unwrap().unwrap();
    assert_eq!((l.zxid, &l.file), (3, &newer));
    assert_eq!(tree_lines(&l.tree), tree_lines(&tree));
    assert_eq!(l.sessions, sessions);
    assert_eq!(l.tree.ephemerals_of(9), vec!["/c".to_string()]);
    // Flip one byte inside the node data of the newer file: the seal catches it and the
    // older snapshot is used.
    let mut b = std::fs::read(&newer).unwrap();
    let pos = b.windows(4).position(|w| w == b"/a/b").unwrap() + 9;
    b[pos] ^= 0x20;
    std::fs::write(&newer, &b).unwrap();
    let err = read_snapshot_file(&newer).err().unwrap().to_string();
    assert!(
        err.contains("CRC corruption") && err.contains(&newer.display().to_string()),
        "{err}"
    );
    let l = snap.deserialize().unwrap().unwrap();
    assert_eq!((l.zxid, &l.file), (2, &older));
    // A truncated file fails the validity check and is not even tried.
    std::fs::write(&newer, &b[..b.len() - 3]).unwrap();
    assert!(!util::is_valid_snapshot(&newer).unwrap());
    assert_eq!(snap.find_n_valid_snapshots(100).unwrap(), vec![older.clone()]);
    // Without digest trailer (digest disabled writers, pre-3.6 files): still readable.
    let bytes = file_snap::snapshot_bytes(&tree, &sessions, -1, false);
    let p = d.path().join("snapshot.5");
    std::fs::write(&p, bytes).unwrap();
    let l = read_snapshot_file(&p).unwrap();
    assert!(l.trailer.is_none());
    // Compressed snapshots: a clear error.
    let gz = d.path().join("snapshot.6.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 0, 0]).unwrap();
    assert!(read_snapshot_file(&gz)
        .err()
        .unwrap()
        .to_string()
        .contains("not supported"));
    assert_eq!(snap.deserialize().unwrap().unwrap().zxid, 5);
}

#[test]
fn entry_round_trip_all_types() {
    setup();
    let hdr = |ty| TxnHeader {
        client_id: 3,
        cxid: 4,
        zxid: 5,
        time: 6,
        r#type: ty,
    };
    let open = vec![ACL::new(31, "world", "anyone")];
    let cases = vec![
        (
            op_code::CREATE_SESSION,
            Some(TxnRecord::CreateSession(CreateSessionTxn { time_out: 5000 })),
        ),
        (
            op_code::CLOSE_SESSION,
            Some(TxnRecord::CloseSession(CloseSessionTxn {
                paths2_delete: vec!["/x".into()],
            })),
        ),
        (
            op_code::CREATE_TTL,
            Some(TxnRecord::CreateTtl(CreateTTLTxn {
                path: "/t".into(),
                data: None,
                acl: open.clone(),
                parent_c_version: 3,
                ttl: 99,
            })),
        ),
        (op_code::ERROR, Some(TxnRecord::Error(ErrorTxn { err: -101 }))),
        (
            op_code::SET_ACL,
            Some(TxnRecord::SetAcl(SetACLTxn {
                path: "/t".into(),
                acl: open.clone(),
                version: 2,
            })),
        ),
    ];
    for (ty, txn) in cases {
        for digest in [
            None,
            Some(TxnDigest {
                version: 2,
                tree_digest: -77,
            }),
        ] {
            let bytes = util::marshall_txn_entry(&hdr(ty), txn.as_ref(), digest.as_ref());
            let (h, t, d) = util::deserialize_txn_entry(&bytes).unwrap();
            assert_eq!((h, t, d), (hdr(ty), txn.clone(), digest));
        }
    }
    // closeSession from old logs: no body.
    let bytes = util::marshall_txn_entry(&hdr(op_code::CLOSE_SESSION), None, None);
    assert_eq!(util::deserialize_txn_entry(&bytes).unwrap().1, None);
    // A pre-3.3 create without parentCVersion reads with -1.
    let v0 = CreateTxnV0 {
        path: "/o".into(),
        data: Some(b"d".to_vec()),
        acl: open,
        ephemeral: false,
    };
    let mut bytes = hdr(op_code::CREATE).to_bytes();
    bytes.extend(v0.to_bytes());
    match util::deserialize_txn_entry(&bytes).unwrap().1 {
        Some(TxnRecord::Create(c)) => assert_eq!((c.path.as_str(), c.parent_c_version), ("/o", -1)),
        other => panic!("{other:?}"),
    }
}
