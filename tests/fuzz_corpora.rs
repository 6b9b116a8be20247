//! Replays the fuzzing corpora on stable Rust, without cargo-fuzz: every file of
//! `tests/fuzz/corpus/<target>/` (seeds) and `tests/fuzz/regressions/<target>/`
//! (minimized inputs of bugs the fuzzer found) goes through the same
//! `zookeeper::fuzz_targets` function the libFuzzer target calls. An input may be
//! refused with an error; a panic fails (with the file name), and so does an input
//! that does not finish within `PER_INPUT`. A target whose corpus directory is missing
//! or empty fails too, so the replay cannot pass by finding nothing.
//!
//! `generate_seeds` (ignored) rewrites the seed corpora from real encodings and real
//! files: Apache-written jute records (tests/fixtures/jute), frames and packets made by
//! our encoders, txn logs and snapshots written by Apache ZooKeeper 3.8 and by our
//! writer, the shipped and Debian zoo.cfg files:
//!
//!     cargo test --test fuzz_corpora -- --ignored generate_seeds --nocapture

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zookeeper::fuzz_targets::TARGETS;

/// Debug build, loaded CI machine: generous, but a hang still fails in bounded time.
const PER_INPUT: Duration = Duration::from_secs(30);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Runs one input on its own thread: Err names the file and what went wrong.
fn replay_one(name: &'static str, f: fn(&[u8]), file: &Path) -> Result<Duration, String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: unreadable: {e}", file.display()))?;
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::Builder::new()
        .name(format!("replay-{name}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(|| f(&data));
            let _ = tx.send(r.is_ok());
        })
        .map_err(|e| format!("{}: cannot spawn: {e}", file.display()))?;
    match rx.recv_timeout(PER_INPUT) {
        Ok(true) => Ok(start.elapsed()),
        Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!("{}: PANICKED in target {name}", file.display())),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("{}: did not finish within {PER_INPUT:?} (target {name})", file.display())),
    }
}

#[test]
fn every_target_has_a_libfuzzer_binary() {
    let cargo = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("tests/fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        let src = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        assert!(text.contains(&format!("zookeeper::fuzz_targets::{name}(")), "{} does not call the library function", src.display());
        assert!(cargo.contains(&format!("name = \"{name}\"")), "tests/fuzz/Cargo.toml has no [[bin]] {name}");
    }
}

#[test]
fn corpora_and_regressions_replay_without_panics() {
    let base = fuzz_dir();
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for &(name, f) in TARGETS {
        let corpus = files_in(&base.join("corpus").join(name));
        if corpus.is_empty() {
            failures.push(format!("tests/fuzz/corpus/{name}/ is missing or empty (run generate_seeds)"));
            continue;
        }
        let regressions = files_in(&base.join("regressions").join(name));
        let mut slowest = Duration::ZERO;
        for file in corpus.iter().chain(&regressions) {
            match replay_one(name, f, file) {
                Ok(d) => slowest = slowest.max(d),
                Err(e) => failures.push(e),
            }
        }
        summary.push(format!("{name}: {} seeds, {} regressions, slowest {slowest:?}", corpus.len(), regressions.len()));
    }
    // A regressions directory must be named after a target (a typo would skip it).
    if let Ok(rd) = std::fs::read_dir(base.join("regressions")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() && !TARGETS.iter().any(|(t, _)| *t == n) {
                failures.push(format!("tests/fuzz/regressions/{n}/ is not a target"));
            }
        }
    }
    zookeeper::fuzz_targets::cleanup();
    eprintln!("{}", summary.join("\n"));
    assert!(failures.is_empty(), "{} failing input(s):\n{}", failures.len(), failures.join("\n"));
}

// ------------------------------------------------------------ seed generator --

mod seeds {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use zookeeper::jute::{OutputArchive, Record};
    use zookeeper::proto::data::{Id, ACL};
    use zookeeper::proto::multi::{MultiOperationRecord, Op};
    use zookeeper::proto::op_code;
    use zookeeper::proto::proto::*;
    use zookeeper::proto::quorum::{LearnerInfo, QuorumPacket};
    use zookeeper::proto::txn::*;
    use zookeeper::server::data_tree::DataTree;
    use zookeeper::server::persistence::file_snap::{serialize_snapshot_body, snapshot_bytes};
    use zookeeper::server::persistence::util::marshall_txn_entry;
    use zookeeper::server::persistence::FileTxnLog;
    use zookeeper::server::quorum::fast_leader_election::notification::build_msg;
    use zookeeper::server::quorum::quorum_cnx_manager::initial_message::{self, PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2};
    use zookeeper::server::quorum::quorum_packet::{self as qp, encode, encode_parts};
    use zookeeper::server::txn_record::TxnRecord;

    pub struct Corpus {
        dir: PathBuf,
        pub count: usize,
        pub bytes: usize,
    }

    impl Corpus {
        pub fn new(target: &str) -> Corpus {
            let dir = super::fuzz_dir().join("corpus").join(target);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Corpus { dir, count: 0, bytes: 0 }
        }

        pub fn add(&mut self, name: &str, bytes: &[u8]) {
            std::fs::write(self.dir.join(name), bytes).unwrap();
            self.count += 1;
            self.bytes += bytes.len();
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jute").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn request(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
        let mut b = RequestHeader { xid, r#type: op }.to_bytes();
        b.extend_from_slice(body);
        frame(&b)
    }

    fn open_acl() -> Vec<ACL> {
        vec![ACL::new(31, "world", "anyone")]
    }

    /// Every request opcode with a body as Apache's jute writes it (the fixtures are
    /// written by Apache's record classes) or, where there is no fixture, ours.
    fn request_frames() -> Vec<(String, Vec<u8>)> {
        let fx = |op: i32, f: &str| (format!("{op}-{}", f.trim_end_matches(".bin")), request(op, op, &fixture(f)));
        let mut v = vec![
            fx(op_code::CREATE, "CreateRequest.bin"),
            fx(op_code::CREATE, "CreateRequest.null.bin"),
            fx(op_code::DELETE, "DeleteRequest.bin"),
            fx(op_code::EXISTS, "ExistsRequest.bin"),
            fx(op_code::GET_DATA, "GetDataRequest.bin"),
            fx(op_code::SET_DATA, "SetDataRequest.bin"),
            fx(op_code::SET_DATA, "SetDataRequest.null.bin"),
            fx(op_code::GET_ACL, "GetACLRequest.bin"),
            fx(op_code::SET_ACL, "SetACLRequest.bin"),
            fx(op_code::GET_CHILDREN, "GetChildrenRequest.bin"),
            fx(op_code::SYNC, "SyncRequest.bin"),
            fx(op_code::GET_CHILDREN2, "GetChildrenRequest.bin"),
            fx(op_code::CHECK, "CheckVersionRequest.bin"),
            fx(op_code::MULTI, "MultiOperationRecord.bin"),
            fx(op_code::MULTI, "MultiOperationRecord.create2.bin"),
            fx(op_code::MULTI, "MultiOperationRecord.empty.bin"),
            fx(op_code::MULTI_READ, "MultiOperationRecord.read.bin"),
            fx(op_code::CREATE2, "CreateRequest.bin"),
            fx(op_code::RECONFIG, "ReconfigRequest.bin"),
            fx(op_code::CHECK_WATCHES, "CheckWatchesRequest.bin"),
            fx(op_code::REMOVE_WATCHES, "RemoveWatchesRequest.bin"),
            fx(op_code::CREATE_CONTAINER, "CreateRequest.bin"),
            fx(op_code::CREATE_TTL, "CreateTTLRequest.bin"),
            fx(op_code::AUTH, "AuthPacket.bin"),
            fx(op_code::SET_WATCHES, "SetWatches.bin"),
            fx(op_code::SET_WATCHES2, "SetWatches2.bin"),
            fx(op_code::SASL, "GetSASLRequest.bin"),
            fx(op_code::GET_EPHEMERALS, "GetEphemeralsRequest.bin"),
            fx(op_code::GET_ALL_CHILDREN_NUMBER, "GetAllChildrenNumberRequest.bin"),
            fx(op_code::ADD_WATCH, "AddWatchRequest.bin"),
        ];
        v.push(("20-DeleteContainer".into(), request(20, op_code::DELETE_CONTAINER, b"/cont")));
        v.push(("11-ping".into(), request(-2, op_code::PING, &[])));
        v.push(("107-whoami".into(), request(9, op_code::WHO_AM_I, &[])));
        v.push(("-11-closeSession".into(), request(10, op_code::CLOSE_SESSION, &[])));
        let ttl = CreateTTLRequest { path: "/ttl".into(), data: Some(b"t".to_vec()), acl: open_acl(), flags: 5, ttl: 3_600_000 };
        let multi = MultiOperationRecord {
            ops: vec![
                Op::Create { op: op_code::CREATE_TTL, req: ttl, ttl_record: true },
                Op::Check(CheckVersionRequest { path: "/a".into(), version: 0 }),
                Op::SetData(SetDataRequest { path: "/a".into(), data: Some(b"x".to_vec()), version: -1 }),
                Op::Delete(DeleteRequest { path: "/a/b".into(), version: -1 }),
            ],
        };
        v.push(("14-multi-ours".into(), request(11, op_code::MULTI, &multi.to_bytes())));
        v
    }

    pub fn client(handshake: &mut Corpus, requests: &mut Corpus) {
        for f in ["ConnectRequest.bin", "ConnectRequest.empty.bin", "ConnectRequest.null.bin"] {
            let body = fixture(f);
            let stem = f.trim_end_matches(".bin");
            handshake.add(&format!("{stem}-oldclient"), &frame(&body));
            for ro in [0u8, 1] {
                let mut b = body.clone();
                b.push(ro);
                handshake.add(&format!("{stem}-ro{ro}"), &frame(&b));
            }
        }
        for w in [
            "ruok", "stat", "srvr", "conf", "cons", "crst", "dump", "envi", "mntr", "wchs", "wchc", "wchp", "isro", "srst", "gtmk",
            "dirs", "hash",
        ] {
            handshake.add(&format!("4lw-{w}"), w.as_bytes());
        }
        let mut stmk = b"stmk".to_vec();
        stmk.extend_from_slice(&0x1f2i64.to_be_bytes());
        handshake.add("4lw-stmk", &stmk);
        // A whole session: handshake, some requests, close.
        let mut session = frame(&{
            let mut b = fixture("ConnectRequest.bin");
            b.push(0);
            b
        });
        let frames = request_frames();
        for (name, f) in &frames {
            requests.add(name, f);
        }
        for (_, f) in frames.iter().take(12) {
            session.extend_from_slice(f);
        }
        session.extend_from_slice(&request(99, op_code::CLOSE_SESSION, &[]));
        handshake.add("session-transcript", &session);
        let all: Vec<u8> = frames.iter().flat_map(|(_, f)| f.clone()).collect();
        requests.add("all-opcodes", &all);
    }

    fn sample_txns() -> Vec<(TxnHeader, Option<TxnRecord>)> {
        let mut zxid = 0x1_0000_0000i64;
        let mut next = |client: i64, ty: i32| {
            zxid += 1;
            TxnHeader { client_id: client, cxid: (zxid & 0xff) as i32, zxid, time: 1_733_000_000_000 + zxid, r#type: ty }
        };
        let sub = |ty: i32, r: TxnRecord| Txn { r#type: ty, data: Some(r.to_bytes()) };
        vec![
            (next(0x55, op_code::CREATE_SESSION), Some(TxnRecord::CreateSession(CreateSessionTxn { time_out: 30000 }))),
            (
                next(0x55, op_code::CREATE),
                Some(TxnRecord::Create(CreateTxn { path: "/a".into(), data: Some(b"hello".to_vec()), acl: open_acl(), ephemeral: false, parent_c_version: 1 })),
            ),
            (
                next(0x55, op_code::CREATE),
                Some(TxnRecord::Create(CreateTxn { path: "/a/e".into(), data: None, acl: open_acl(), ephemeral: true, parent_c_version: 1 })),
            ),
            (next(0x55, op_code::SET_DATA), Some(TxnRecord::SetData(SetDataTxn { path: "/a".into(), data: Some(b"bye".to_vec()), version: 1 }))),
            (
                next(0x55, op_code::SET_ACL),
                Some(TxnRecord::SetAcl(SetACLTxn { path: "/a".into(), acl: vec![ACL::new(1, "digest", "u:x"), ACL::new(31, "ip", "10.0.0.0/8")], version: 1 })),
            ),
            (
                next(0x55, op_code::CREATE_CONTAINER),
                Some(TxnRecord::CreateContainer(CreateContainerTxn { path: "/c".into(), data: Some(vec![]), acl: open_acl(), parent_c_version: 3 })),
            ),
            (
                next(0x55, op_code::CREATE_TTL),
                Some(TxnRecord::CreateTtl(CreateTTLTxn { path: "/t".into(), data: Some(b"t".to_vec()), acl: open_acl(), parent_c_version: 4, ttl: 60000 })),
            ),
            (
                next(0x55, op_code::MULTI),
                Some(TxnRecord::Multi(MultiTxn {
                    txns: vec![
                        sub(op_code::CHECK, TxnRecord::Check(CheckVersionTxn { path: "/a".into(), version: 2 })),
                        sub(op_code::DELETE, TxnRecord::Delete(DeleteTxn { path: "/t".into() })),
                    ],
                })),
            ),
            (next(0x55, op_code::ERROR), Some(TxnRecord::Error(ErrorTxn { err: -101 }))),
            (next(0x55, op_code::DELETE), Some(TxnRecord::Delete(DeleteTxn { path: "/c".into() }))),
            (next(0x55, op_code::CLOSE_SESSION), Some(TxnRecord::CloseSession(CloseSessionTxn { paths2_delete: vec!["/a/e".into()] }))),
        ]
    }

    fn sample_tree() -> (DataTree, HashMap<i64, i32>) {
        let mut tree = DataTree::new();
        let mut sessions = HashMap::new();
        for (h, t) in sample_txns() {
            zookeeper::server::persistence::file_txn_snap_log::process_transaction(&h, t.as_ref(), &mut tree, &mut sessions);
        }
        sessions.insert(0x77, 4000);
        (tree, sessions)
    }

    fn digest(z: i64) -> TxnDigest {
        TxnDigest { version: 2, tree_digest: z }
    }

    pub fn quorum(c: &mut Corpus) {
        for f in ["QuorumPacket.bin", "QuorumPacket.empty.bin", "QuorumPacket.null.bin"] {
            c.add(&format!("fixture-{}", f.trim_end_matches(".bin")), &fixture(f));
        }
        // Leader side: what a 3.8 follower sends.
        let li = LearnerInfo { serverid: 2, protocol_version: qp::ZAB_PROTOCOL_VERSION, config_version: 0x1_0000_0000 };
        let mut s = encode_parts(qp::FOLLOWERINFO, 0x1_0000_0000, Some(&li.to_bytes())).to_vec();
        s.extend_from_slice(&encode_parts(qp::ACKEPOCH, 0x1_0000_0005, Some(&1i32.to_be_bytes())));
        s.extend_from_slice(&encode_parts(qp::ACK, 0x2_0000_0000, None));
        let mut ping = Vec::new();
        for (sid, to) in [(0x55i64, 30000i32), (0x56, 4000)] {
            ping.extend_from_slice(&sid.to_be_bytes());
            ping.extend_from_slice(&to.to_be_bytes());
        }
        s.extend_from_slice(&encode_parts(qp::PING, 0x2_0000_0000, Some(&ping)));
        let mut reval = 0x55i64.to_be_bytes().to_vec();
        reval.extend_from_slice(&30000i32.to_be_bytes());
        s.extend_from_slice(&encode_parts(qp::REVALIDATE, -1, Some(&reval)));
        for (_, f) in request_frames().iter().take(16) {
            // REQUEST data: session id, cxid, type, body (the client frame minus length and header).
            let hdr = &f[4..12];
            let mut d = 0x55i64.to_be_bytes().to_vec();
            d.extend_from_slice(hdr);
            d.extend_from_slice(&f[12..]);
            let p = QuorumPacket { r#type: qp::REQUEST, zxid: -1, data: Some(d), authinfo: vec![Id::new("digest", "u:x")] };
            s.extend_from_slice(&encode(&p));
        }
        c.add("leader-side-follower", &s);
        let old = encode_parts(qp::OBSERVERINFO, 0x1_0000_0000, Some(&3i64.to_be_bytes())).to_vec();
        c.add("leader-side-old-observer", &old);

        // Learner side: DIFF sync with proposals, NEWLEADER with the config, UPTODATE, broadcast.
        let config = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nserver.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183\nversion=100000000";
        let mut diff = encode_parts(qp::LEADERINFO, 0x2_0000_0000, Some(&qp::ZAB_PROTOCOL_VERSION.to_be_bytes())).to_vec();
        diff.extend_from_slice(&encode_parts(qp::DIFF, 0x1_0000_0003, None));
        let txns = sample_txns();
        for (h, t) in &txns[..4] {
            diff.extend_from_slice(&encode_parts(qp::PROPOSAL, h.zxid, Some(&marshall_txn_entry(h, t.as_ref(), Some(&digest(h.zxid))))));
            diff.extend_from_slice(&encode_parts(qp::COMMIT, h.zxid, None));
        }
        diff.extend_from_slice(&encode_parts(qp::NEWLEADER, 0x2_0000_0000, Some(config.as_bytes())));
        diff.extend_from_slice(&encode_parts(qp::UPTODATE, -1, None));
        for (h, t) in &txns[4..] {
            diff.extend_from_slice(&encode_parts(qp::PROPOSAL, h.zxid, Some(&marshall_txn_entry(h, t.as_ref(), Some(&digest(h.zxid))))));
            diff.extend_from_slice(&encode_parts(qp::COMMIT, h.zxid, None));
        }
        diff.extend_from_slice(&encode_parts(qp::PING, 0x2_0000_0000, None));
        let mut ans = 0x55i64.to_be_bytes().to_vec();
        ans.push(1);
        diff.extend_from_slice(&encode_parts(qp::REVALIDATE, -1, Some(&ans)));
        c.add("learner-side-diff", &diff);

        // Observer: INFORM / INFORMANDACTIVATE.
        let mut obs = encode_parts(qp::LEADERINFO, 0x2_0000_0000, Some(&qp::ZAB_PROTOCOL_VERSION.to_be_bytes())).to_vec();
        obs.extend_from_slice(&encode_parts(qp::DIFF, 0x1_0000_0000, None));
        obs.extend_from_slice(&encode_parts(qp::NEWLEADER, 0x2_0000_0000, Some(config.as_bytes())));
        obs.extend_from_slice(&encode_parts(qp::UPTODATE, -1, None));
        for (h, t) in &txns[..3] {
            obs.extend_from_slice(&encode_parts(qp::INFORM, h.zxid, Some(&marshall_txn_entry(h, t.as_ref(), Some(&digest(h.zxid))))));
        }
        let (h, t) = &txns[3];
        let mut ia = 1i64.to_be_bytes().to_vec();
        ia.extend_from_slice(&marshall_txn_entry(h, t.as_ref(), None));
        obs.extend_from_slice(&encode_parts(qp::INFORMANDACTIVATE, h.zxid, Some(&ia)));
        c.add("learner-side-observer", &obs);

        // SNAP sync: the snapshot body and signature follow the SNAP packet on the stream.
        let (tree, sessions) = sample_tree();
        let mut snap = encode_parts(qp::LEADERINFO, 0x2_0000_0000, Some(&qp::ZAB_PROTOCOL_VERSION.to_be_bytes())).to_vec();
        snap.extend_from_slice(&encode_parts(qp::SNAP, 0x1_0000_000b, None));
        let mut out = OutputArchive::new();
        serialize_snapshot_body(&tree, &sessions, &mut out);
        out.write_string("BenWasHere");
        snap.extend_from_slice(out.as_slice());
        snap.extend_from_slice(&encode_parts(qp::NEWLEADER, 0x2_0000_0000, Some(config.as_bytes())));
        snap.extend_from_slice(&encode_parts(qp::UPTODATE, -1, None));
        c.add("learner-side-snap", &snap);

        let mut trunc = encode_parts(qp::LEADERINFO, 0x2_0000_0000, Some(&qp::ZAB_PROTOCOL_VERSION.to_be_bytes())).to_vec();
        trunc.extend_from_slice(&encode_parts(qp::TRUNC, 0x1_0000_0002, None));
        trunc.extend_from_slice(&encode_parts(qp::NEWLEADER, 0x2_0000_0000, Some(config.as_bytes())));
        trunc.extend_from_slice(&encode_parts(qp::UPTODATE, -1, None));
        c.add("learner-side-trunc", &trunc);
    }

    pub fn election(c: &mut Corpus) {
        let config = b"server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\nserver.3=127.0.0.1:2890:3890:participant\nversion=0";
        let current = build_msg(0, 3, 0x1_0000_0004, 2, 1, config);
        let frames = |msgs: &[Vec<u8>]| -> Vec<u8> {
            msgs.iter()
                .flat_map(|m| {
                    let mut v = (m.len() as i32).to_be_bytes().to_vec();
                    v.extend_from_slice(m);
                    v
                })
                .collect()
        };
        let mut v1 = initial_message::encode(PROTOCOL_VERSION_V1, 3, &["127.0.0.1:3890".into()]);
        v1.extend_from_slice(&frames(&[current.clone(), build_msg(2, 3, 0x1_0000_0004, 2, 1, config)]));
        c.add("v1-current", &v1);
        let mut v2 = initial_message::encode(PROTOCOL_VERSION_V2, 2, &["10.0.0.2:3889".into(), "[::1]:3889".into(), "0.0.0.0:3889".into()]);
        v2.extend_from_slice(&frames(&[current.clone()]));
        c.add("v2-multiaddress", &v2);
        // Pre-3.5 peers: a bare sid, then the old layouts (28 and 40 bytes, version 1 without config).
        let mut old = 1i64.to_be_bytes().to_vec();
        let mut before_reconfig = current[..40].to_vec();
        before_reconfig.extend_from_slice(&1i32.to_be_bytes());
        old.extend_from_slice(&frames(&[current[..28].to_vec(), current[..40].to_vec(), before_reconfig]));
        c.add("bare-sid-legacy-layouts", &old);
    }

    fn trim_zeros(bytes: &[u8]) -> Vec<u8> {
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let mut v = bytes[..end].to_vec();
        // Keep a little of the preallocated tail: the reader must stop on it cleanly.
        v.extend_from_slice(&[0u8; 16]);
        v
    }

    pub fn ours_files(logs: &mut Corpus, snaps: &mut Corpus) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FileTxnLog::new(dir.path());
        log.set_prealloc_size(4096);
        log.set_force_sync(false);
        for (h, t) in sample_txns() {
            log.append(&h, t.as_ref(), Some(&digest(h.zxid))).unwrap();
        }
        log.commit().unwrap();
        log.close().unwrap();
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            logs.add("ours-all-types", &trim_zeros(&bytes));
            logs.add("ours-preallocated-4k", &bytes);
            // A torn tail: the last record cut short.
            let t = trim_zeros(&bytes);
            logs.add("ours-torn-tail", &t[..t.len() - 16 - 7]);
        }
        let (mut tree, sessions) = sample_tree();
        snaps.add("ours-no-digest", &snapshot_bytes(&tree, &sessions, 0, false));
        tree.last_processed_zxid = 1;
        snaps.add("ours-with-digest", &snapshot_bytes(&tree, &sessions, 0, true));
        snaps.add("ours-empty-tree", &snapshot_bytes(&DataTree::new(), &HashMap::new(), 0, true));
    }

    /// Files Apache ZooKeeper 3.8 writes: a log with the usual client txns and the
    /// snapshots of a start (empty tree) and a restart (the tree).
    pub fn apache_files(logs: &mut Corpus, snaps: &mut Corpus) {
        let mut srv = super::common::ApacheServer::start_standalone("");
        let addr = srv.connect_string();
        {
            let mut c = super::raw_client::RawClient::connect(&addr).expect("connect");
            let mk = |path: &str, flags: i32, data: &[u8]| CreateRequest { path: path.into(), data: Some(data.to_vec()), acl: open_acl(), flags };
            for (op, req) in [
                (op_code::CREATE, mk("/app", 0, b"config")),
                (op_code::CREATE, mk("/app/seq-", 2, b"")),
                (op_code::CREATE, mk("/app/eph", 1, b"e")),
                (op_code::CREATE_CONTAINER, mk("/cont", 4, b"c")),
                (op_code::CREATE2, mk("/app/x", 0, b"x")),
            ] {
                let (h, _) = c.call_rec(op, &req).expect("create");
                assert_eq!(h.err, 0, "{}", req.path);
            }
            let (h, _) = c.call_rec(op_code::SET_DATA, &SetDataRequest { path: "/app".into(), data: Some(b"v2".to_vec()), version: -1 }).unwrap();
            assert_eq!(h.err, 0);
            let (h, _) = c
                .call_rec(op_code::SET_ACL, &SetACLRequest { path: "/app/x".into(), acl: vec![ACL::new(31, "ip", "127.0.0.1")], version: -1 })
                .unwrap();
            assert_eq!(h.err, 0);
            let multi = MultiOperationRecord {
                ops: vec![
                    Op::Check(CheckVersionRequest { path: "/app".into(), version: 1 }),
                    Op::Delete(DeleteRequest { path: "/app/x".into(), version: -1 }),
                ],
            };
            let (h, _) = c.call_rec(op_code::MULTI, &multi).unwrap();
            assert_eq!(h.err, 0);
            // A failing multi is logged as an error txn.
            let (_, _) = c.call_rec(op_code::MULTI, &multi).unwrap();
            c.close_session().unwrap();
        }
        srv.stop_term(std::time::Duration::from_secs(20));
        srv.restart();
        srv.stop_term(std::time::Duration::from_secs(20));
        let v2 = srv.data_dir().join("version-2");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&v2).unwrap().flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).unwrap();
            if n.starts_with("log.") {
                logs.add(&format!("apache-{n}"), &trim_zeros(&bytes));
            } else if n.starts_with("snapshot.") {
                snaps.add(&format!("apache-{n}"), &bytes);
            }
        }
    }

    pub fn epochs(c: &mut Corpus) {
        let mk = |zxid: i64, flags: u8, parts: &[&str]| {
            let mut v = zxid.to_be_bytes().to_vec();
            v.push(flags);
            v.extend_from_slice(parts.join("\0").as_bytes());
            v
        };
        // What write_long_to_file (and Apache's writeLongToFile) leaves: decimal, no newline.
        let dir = tempfile::tempdir().unwrap();
        zookeeper::server::persistence::epoch_file::write_long_to_file(dir.path(), "currentEpoch", 2).unwrap();
        let written = std::fs::read_to_string(dir.path().join("currentEpoch")).unwrap();
        c.add("both-equal", &mk(0x2_0000_0005, 0b11, &[&written, &written]));
        c.add("accepted-ahead", &mk(0x2_0000_0005, 0b11, &["2", "3"]));
        c.add("accepted-behind", &mk(0x2_0000_0005, 0b11, &["3", "2"]));
        c.add("missing-both", &mk(0x1_0000_0001, 0, &[]));
        c.add("tmp-repair", &mk(0x3_0000_0001, 0b111, &["2", "3", "3"]));
        c.add("updating-epoch", &mk(0x3_0000_0001, 0b1011, &["2", "3", "", "3"]));
        c.add("garbage", &mk(0x1, 0b11, &["abc", "1\n2"]));
        c.add("newline", &mk(0x1_0000_0000, 0b11, &["1\n", "1\r\n"]));
    }

    pub fn zoo_cfg(c: &mut Corpus) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (name, p) in [
            ("conf-zoo.cfg", root.join("conf/zoo.cfg")),
            ("conf-zoo_sample.cfg", root.join("conf/zoo_sample.cfg")),
            ("debian-zoo.cfg", PathBuf::from("/etc/zookeeper/conf/zoo.cfg")),
        ] {
            if let Ok(b) = std::fs::read(&p) {
                c.add(name, &b);
            }
        }
        c.add(
            "ensemble",
            b"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zk\nclientPort=2181\n4lw.commands.whitelist=*\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890:observer\npeerType=participant\n",
        );
        c.add(
            "dynamic",
            b"standaloneEnabled=false\nreconfigEnabled=true\ndataDir=/tmp/zk\nserver.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=[::1]:2889:3889:participant;2182\nserver.3=h3:2890:3890|h3b:2891:3891:participant;127.0.0.1:2183\nmultiAddress.enabled=true\nversion=100000003\n",
        );
        c.add(
            "hierarchical",
            b"dataDir=/tmp/zk\nclientPort=2181\ngroup.1=1:2:3\ngroup.2=4:5:6\nweight.1=1\nweight.2=1\nweight.3=1\nweight.4=1\nweight.5=1\nweight.6=0\nserver.1=a:1:2\nserver.2=a:3:4\nserver.3=a:5:6\nserver.4=a:7:8\nserver.5=a:9:10\nserver.6=a:11:12\n",
        );
        c.add(
            "limits-and-quirks",
            b"dataDir=/tmp/zk\nclientPortAddress=127.0.0.1\nclientPort=2181\nsecureClientPort=2281\nmaxClientCnxns=0\nminSessionTimeout=-1\nmaxSessionTimeout=40000\nautopurge.snapRetainCount=3\nautopurge.purgeInterval=1\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\nsnapCount=10\npreAllocSize=64\nsyncEnabled=true\nelectionAlg=3\nquorumListenOnAllIPs=true\n# comment\n  key with spaces = value \\\n continued\n",
        );
    }
}

#[test]
#[ignore = "rewrites tests/fuzz/corpus; needs Apache ZooKeeper 3.8 (Debian packages)"]
fn generate_seeds() {
    zookeeper::system_properties::set("zookeeper.extendedTypesEnabled", "true");
    let mut handshake = seeds::Corpus::new("client_handshake");
    let mut requests = seeds::Corpus::new("client_request");
    seeds::client(&mut handshake, &mut requests);
    let mut quorum = seeds::Corpus::new("quorum_packets");
    seeds::quorum(&mut quorum);
    let mut election = seeds::Corpus::new("election");
    seeds::election(&mut election);
    let mut logs = seeds::Corpus::new("txn_log");
    let mut snaps = seeds::Corpus::new("snapshot");
    seeds::ours_files(&mut logs, &mut snaps);
    seeds::apache_files(&mut logs, &mut snaps);
    let mut epochs = seeds::Corpus::new("epoch_files");
    seeds::epochs(&mut epochs);
    let mut cfg = seeds::Corpus::new("zoo_cfg");
    seeds::zoo_cfg(&mut cfg);
    let all = [&handshake, &requests, &quorum, &election, &logs, &snaps, &epochs, &cfg];
    let total: usize = all.iter().map(|c| c.bytes).sum();
    for (c, n) in all.iter().zip(["client_handshake", "client_request", "quorum_packets", "election", "txn_log", "snapshot", "epoch_files", "zoo_cfg"]) {
        eprintln!("{n}: {} files, {} bytes", c.count, c.bytes);
    }
    eprintln!("total {total} bytes");
    assert!(total < 1_000_000, "seed corpus too large: {total} bytes");
}
