//! Criterion micro-benchmarks of the server's hot paths, one group each:
//!
//! - `jute`: encode / decode of the records every getData / setData / create carries,
//!   and of a txn log entry (TxnHeader + SetDataTxn);
//! - `data_tree`: create (batches of 1000), getData and setData in a tree of 100 000
//!   nodes with 100-byte data;
//! - `watch_trigger`: a WatchManager with 1 / 100 / 1000 watchers on one path, firing
//!   NodeDataChanged, with and without the per-watcher READ check (and, for scale,
//!   registering them);
//! - `txn_log_append`: FileTxnLog appends of a SetDataTxn, 1000 per commit without
//!   fsync; with fsync (few samples: the disk dominates); rolling to a new file.
//!
//! `cargo bench --bench micro` (about 70 s after the build; `-- <filter>` runs a subset,
//! e.g. `-- data_tree/`). `cargo test --bench micro`, as `cargo test --all-targets` runs it,
//! runs each benchmark once on a 1 000-node tree as a smoke test (under a second).
//! See docs/benchmarks.md for what each number means and the figures measured.

use std::hint::black_box;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use crossbeam_channel::Receiver;

use zookeeper::jute::{InputArchive, OutputArchive, Record};
use zookeeper::proto::data::{Id, Stat, ACL};
use zookeeper::proto::proto::{
    CreateRequest, GetDataRequest, GetDataResponse, ReplyHeader, RequestHeader, SetDataRequest,
};
use zookeeper::proto::txn::{CreateTxn, SetDataTxn, TxnHeader};
use zookeeper::proto::{event_type, ids, op_code, CreateMode};
use zookeeper::server::data_tree::DataTree;
use zookeeper::server::persistence::util;
use zookeeper::server::persistence::FileTxnLog;
use zookeeper::server::server_cnxn::{Outgoing, ServerCnxn, SharedStream};
use zookeeper::server::server_stats::SentStats;
use zookeeper::server::txn_record::TxnRecord;
use zookeeper::server::watch::{WatchManager, WatcherMode};

/// The payload size of the macro benchmarks (docs/benchmarks.md) and of typical
/// configuration / coordination znodes.
const DATA_LEN: usize = 100;
/// The node every single-path benchmark reads, writes or watches.
const HOT_PATH: &str = "/bench/n-0000012345";
/// Walk the tree with a prime stride so that consecutive operations touch unrelated
/// nodes (hash buckets and cache lines), as many clients do, not one hot node.
const STRIDE: usize = 7919;
/// Txns per commit in the no-fsync log benchmark, and creates per batch in the tree one.
const BATCH: usize = 1000;
/// A txn log is rolled (untimed) and its files deleted past this size, so a long run
/// does not fill the disk; it is below the 64 MiB preallocation, so each file is padded
/// once, on its first append, as a real log is.
const LOG_RECYCLE_BYTES: u64 = 48 << 20;

/// Criterion passes `--bench` only under `cargo bench`; without it (`cargo test`) it runs
/// each benchmark once, and an unoptimised 100 000-node tree would take most of the time.
fn smoke_test() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

fn tree_size() -> usize {
    if smoke_test() {
        1_000
    } else {
        100_000
    }
}

fn node_path(i: usize) -> String {
    // Sequential-node style names: 10-digit counter, as CreateMode::*_SEQUENTIAL makes.
    format!("/bench/n-{i:010}")
}

fn payload() -> Vec<u8> {
    (0..DATA_LEN).map(|i| b'a' + (i % 26) as u8).collect()
}

/// A full Stat as a node that has been written a few times has it.
fn full_stat() -> Stat {
    Stat {
        czxid: 0x1_0000_3039,
        mzxid: 0x1_0001_2f4a,
        ctime: 1_717_000_000_000,
        mtime: 1_717_000_123_456,
        version: 17,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: DATA_LEN as i32,
        num_children: 0,
        pzxid: 0x1_0000_3039,
    }
}

fn txn_header(zxid: i64, ty: i32) -> TxnHeader {
    TxnHeader { client_id: 0x1000_0a1b_2c3d_0001, cxid: zxid as i32, zxid, time: 1_717_000_000_000 + zxid, r#type: ty }
}

fn set_data_txn(path: &str) -> TxnRecord {
    TxnRecord::SetData(SetDataTxn { path: path.to_owned(), data: Some(payload()), version: 18 })
}

// ------------------------------------------------------------------- jute --

/// Benchmarks encode and decode of one wire form. `encode` must produce the bytes that
/// `decode` reads back.
fn jute_pair<T>(c: &mut Criterion, name: &str, encode: impl Fn() -> Vec<u8>, decode: impl Fn(&[u8]) -> T) {
    let bytes = encode();
    // Guards the benchmark itself: decoding what was encoded must work.
    black_box(decode(&bytes));
    let mut g = c.benchmark_group("jute");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(format!("{name}/encode"), |b| b.iter(&encode));
    g.bench_function(format!("{name}/decode"), |b| b.iter(|| decode(black_box(&bytes))));
    g.finish();
}

fn bench_jute(c: &mut Criterion) {
    let data = payload();
    let stat = full_stat();
    let open = ids::open_acl_unsafe();

    // A client's getData: RequestHeader + GetDataRequest, decoded by the server as
    // ZooKeeperServer does (one InputArchive over the packet, header then body).
    let req_hdr = RequestHeader { xid: 4711, r#type: op_code::GET_DATA };
    let get_req = GetDataRequest { path: HOT_PATH.into(), watch: false };
    jute_pair(
        c,
        "get_data_request",
        || {
            let mut out = OutputArchive::new();
            black_box(&req_hdr).serialize(&mut out);
            black_box(&get_req).serialize(&mut out);
            out.into_inner()
        },
        |b| {
            let mut inp = InputArchive::new(b);
            let h = RequestHeader::deserialize(&mut inp).expect("decode RequestHeader");
            (h, GetDataRequest::deserialize(&mut inp).expect("decode GetDataRequest"))
        },
    );

    // The reply, framed as ServerCnxn::send_response frames it: length placeholder,
    // ReplyHeader, body, length patched in.
    let reply_hdr = ReplyHeader { xid: 4711, zxid: 0x1_0001_2f4a, err: 0 };
    let get_resp = GetDataResponse { data: Some(data.clone()), stat: stat.clone() };
    jute_pair(
        c,
        "get_data_response",
        || {
            let mut out = OutputArchive::with_buffer(Vec::with_capacity(64));
            out.write_int(-1);
            black_box(&reply_hdr).serialize(&mut out);
            black_box(&get_resp).serialize(&mut out);
            let mut frame = out.into_inner();
            let len = (frame.len() - 4) as i32;
            frame[..4].copy_from_slice(&len.to_be_bytes());
            frame
        },
        |b| {
            let mut inp = InputArchive::new(&b[4..]);
            let h = ReplyHeader::deserialize(&mut inp).expect("decode ReplyHeader");
            (h, GetDataResponse::deserialize(&mut inp).expect("decode GetDataResponse"))
        },
    );

    let set_req = SetDataRequest { path: HOT_PATH.into(), data: Some(data.clone()), version: -1 };
    jute_pair(
        c,
        "set_data_request",
        || black_box(&set_req).to_bytes(),
        |b| SetDataRequest::from_bytes(b).expect("decode SetDataRequest"),
    );

    let create_req = CreateRequest {
        path: HOT_PATH.into(),
        data: Some(data.clone()),
        acl: open.clone(),
        flags: CreateMode::Persistent.flag(),
    };
    jute_pair(
        c,
        "create_request",
        || black_box(&create_req).to_bytes(),
        |b| CreateRequest::from_bytes(b).expect("decode CreateRequest"),
    );

    // A txn log entry as FileTxnLog::append makes it: TxnHeader + SetDataTxn (no digest:
    // the sync processor passes none), then its Adler-32; read back as FileTxnIterator
    // does (checksum check, then deserialize_txn_entry).
    let hdr = txn_header(0x1_0001_2f4a, op_code::SET_DATA);
    let txn = set_data_txn(HOT_PATH);
    jute_pair(
        c,
        "txn_entry_set_data",
        || {
            let entry = util::marshall_txn_entry(black_box(&hdr), Some(black_box(&txn)), None);
            black_box(util::adler32(&entry));
            entry
        },
        |b| {
            black_box(util::adler32(b));
            util::deserialize_txn_entry(b).expect("decode txn entry")
        },
    );
}

// -------------------------------------------------------------- data_tree --

/// `/bench` with `n` children of 100 bytes each, open ACL, applied through processTxn as
/// a server replaying its log would build it.
fn populated_tree(n: usize) -> DataTree {
    let mut t = DataTree::new();
    let open = ids::open_acl_unsafe();
    let create = |path: String| {
        TxnRecord::Create(CreateTxn { path, data: Some(payload()), acl: open.clone(), ephemeral: false, parent_c_version: -1 })
    };
    let mut zxid = 1;
    let r = t.process_txn(&txn_header(zxid, op_code::CREATE), Some(&create("/bench".into())));
    assert_eq!(r.err, 0, "create /bench");
    for i in 0..n {
        zxid += 1;
        let r = t.process_txn(&txn_header(zxid, op_code::CREATE), Some(&create(node_path(i))));
        assert_eq!(r.err, 0, "create {}", node_path(i));
    }
    t
}

fn bench_data_tree(c: &mut Criterion) {
    let n = tree_size();
    let setup = Instant::now();
    let mut tree = populated_tree(n);
    if !smoke_test() {
        eprintln!("data_tree: built {} nodes in {:.2?}", tree.node_count(), setup.elapsed());
    }
    let mut zxid = tree.last_processed_zxid;
    let open = ids::open_acl_unsafe();

    let mut g = c.benchmark_group("data_tree");
    g.sample_size(20);

    // Creates of new siblings (what a PrepRequestProcessor-made CreateTxn does when
    // applied), BATCH at a time; the batch is deleted again untimed so that every batch
    // lands in a tree of the same size.
    let fresh: Vec<TxnRecord> = (n..n + BATCH)
        .map(|i| {
            TxnRecord::Create(CreateTxn {
                path: node_path(i),
                data: Some(payload()),
                acl: open.clone(),
                ephemeral: false,
                parent_c_version: -1,
            })
        })
        .collect();
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(BenchmarkId::new("create_batch", format!("{BATCH}_into_{n}")), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for t in &fresh {
                    zxid += 1;
                    black_box(tree.process_txn(&txn_header(zxid, op_code::CREATE), Some(t)));
                }
                timed += start.elapsed();
                for i in n..n + BATCH {
                    zxid += 1;
                    tree.delete_node(&node_path(i), zxid).expect("delete a benchmark node");
                }
            }
            timed
        })
    });

    g.throughput(Throughput::Elements(1));
    let paths: Vec<String> = (0..n).map(node_path).collect();
    let mut i = 0;
    // The read FinalRequestProcessor does for getData without a watch: data copy + Stat.
    g.bench_function(BenchmarkId::new("get_data", format!("of_{n}")), |b| {
        b.iter(|| {
            i = (i + STRIDE) % n;
            black_box(tree.get_data(&paths[i], None).expect("node exists"))
        })
    });

    // setData through processTxn, walking the tree as get_data does (a smaller ring of
    // targets would stay in cache and flatter it); the txns are built up front so that
    // building them is not measured.
    let sets: Vec<TxnRecord> = paths.iter().map(|p| set_data_txn(p)).collect();
    let mut k = 0;
    g.bench_function(BenchmarkId::new("set_data", format!("of_{n}")), |b| {
        b.iter(|| {
            k = (k + STRIDE) % n;
            zxid += 1;
            let r = tree.process_txn(&txn_header(zxid, op_code::SET_DATA), Some(&sets[k]));
            debug_assert_eq!(r.err, 0);
            black_box(r)
        })
    });
    g.finish();
}

// ---------------------------------------------------------- watch_trigger --

/// `n` server-side connections for the watch tables. A ServerCnxn owns a socket, so each
/// gets a clone of one accepted loopback connection (nothing is ever sent on it: watch
/// events go to the outgoing queue, which the benchmark drains untimed).
struct Watchers {
    cnxns: Vec<Arc<ServerCnxn>>,
    queue: Receiver<Outgoing>,
    // Keeps the peer open for the lifetime of the connections.
    _client: TcpStream,
}

fn watchers(n: usize) -> Watchers {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    let addr = listener.local_addr().expect("listener address");
    let client = TcpStream::connect(addr).expect("connect to the loopback listener");
    let (server_side, remote): (TcpStream, SocketAddr) = listener.accept().expect("accept the loopback connection");
    let (tx, queue) = crossbeam_channel::unbounded();
    let sent = Arc::new(SentStats::default());
    // Every connection shares the one accepted socket, as a connection's threads do.
    let shared = SharedStream::new(server_side);
    let cnxns = (0..n)
        .map(|i| {
            let c = ServerCnxn::new(i as u64 + 1, remote, tx.clone(), shared.clone(), sent.clone());
            c.set_session_id(0x1000_0a1b_2c3d_0000 + i as i64);
            // As ServerCnxnFactory does for every connection: its `ip` identity.
            c.add_auth_info(Id::new("ip", &remote.ip().to_string()));
            Arc::new(c)
        })
        .collect();
    Watchers { cnxns, queue, _client: client }
}

fn bench_watch_trigger(c: &mut Criterion) {
    const SIZES: [usize; 3] = [1, 100, 1000];
    let w = watchers(SIZES[SIZES.len() - 1]);
    // What DataTree::set_data passes: the node's ACL, which decides per watcher whether
    // the event may be delivered (CVE-2024-23944 fix).
    let acl: Vec<ACL> = ids::open_acl_unsafe();

    let mut g = c.benchmark_group("watch_trigger");
    for &n in &SIZES {
        g.throughput(Throughput::Elements(n as u64));
        // One setData's trigger: every one-shot watch fires, is removed, and its event is
        // serialized and queued on its connection.
        g.bench_with_input(BenchmarkId::new("data_changed", n), &n, |b, &n| {
            b.iter_batched_ref(
                || {
                    while w.queue.try_recv().is_ok() {}
                    let mut wm = WatchManager::new();
                    for cnxn in &w.cnxns[..n] {
                        wm.add_watch(HOT_PATH, cnxn, WatcherMode::Standard);
                    }
                    wm
                },
                |wm| black_box(wm.trigger_watch_acl(HOT_PATH, event_type::NODE_DATA_CHANGED, Some(&acl), None)),
                BatchSize::SmallInput,
            )
        });
        // The same without the per-watcher READ check (acl None), to show its share.
        g.bench_with_input(BenchmarkId::new("data_changed_no_acl_check", n), &n, |b, &n| {
            b.iter_batched_ref(
                || {
                    while w.queue.try_recv().is_ok() {}
                    let mut wm = WatchManager::new();
                    for cnxn in &w.cnxns[..n] {
                        wm.add_watch(HOT_PATH, cnxn, WatcherMode::Standard);
                    }
                    wm
                },
                |wm| black_box(wm.trigger_watch_acl(HOT_PATH, event_type::NODE_DATA_CHANGED, None, None)),
                BatchSize::SmallInput,
            )
        });
        // For scale: registering those watches (getData/exists with watch=true).
        g.bench_with_input(BenchmarkId::new("add_watch", n), &n, |b, &n| {
            b.iter_batched(
                WatchManager::new,
                |mut wm| {
                    for cnxn in &w.cnxns[..n] {
                        wm.add_watch(HOT_PATH, cnxn, WatcherMode::Standard);
                    }
                    wm
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    while w.queue.try_recv().is_ok() {}
}

// --------------------------------------------------------- txn_log_append --

/// A scratch log directory next to the build output rather than in /tmp: /tmp may be a
/// tmpfs, where fsync costs nothing and the fsync figures would mean nothing.
fn log_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("zk-micro-txnlog-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a scratch txn log directory")
}

fn remove_logs(dir: &Path, keep: Option<&Path>) {
    let entries = std::fs::read_dir(dir).expect("list the scratch log directory");
    for e in entries {
        let p: PathBuf = e.expect("read the scratch log directory").path();
        if Some(p.as_path()) != keep {
            std::fs::remove_file(&p).expect("remove a scratch log file");
        }
    }
}

/// Rolls and deletes the log once it is large (untimed by the callers).
fn recycle(log: &mut FileTxnLog, dir: &Path) {
    if log.current_log_size() > LOG_RECYCLE_BYTES {
        log.roll_log().expect("roll the log");
        log.commit().expect("commit after roll");
        remove_logs(dir, None);
    }
}

fn bench_txn_log(c: &mut Criterion) {
    let txn = set_data_txn(HOT_PATH);
    let mut zxid: i64 = 0x1_0000_0000;
    let mut g = c.benchmark_group("txn_log_append");

    // The sync processor's work for one full batch with zookeeper.forceSync=no: BATCH
    // appends (serialize, checksum, buffer, 8 KiB writes), one commit (flush).
    {
        let dir = log_dir();
        let mut log = FileTxnLog::new(dir.path());
        log.set_force_sync(false);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(BenchmarkId::new("no_fsync", format!("{BATCH}_then_commit")), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    for _ in 0..BATCH {
                        zxid += 1;
                        log.append(&txn_header(zxid, op_code::SET_DATA), Some(&txn), None).expect("append");
                    }
                    log.commit().expect("commit");
                    timed += start.elapsed();
                    recycle(&mut log, dir.path());
                }
                timed
            })
        });
    }

    // Rolling over: roll_log, then the append that creates `log.<zxid>` (header written,
    // file preallocated to 64 MiB, sparse), then a commit. The old file is deleted
    // untimed.
    {
        let dir = log_dir();
        let mut log = FileTxnLog::new(dir.path());
        log.set_force_sync(false);
        zxid += 1;
        log.append(&txn_header(zxid, op_code::SET_DATA), Some(&txn), None).expect("first append");
        g.throughput(Throughput::Elements(1));
        g.bench_function("roll_over", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    log.roll_log().expect("roll");
                    zxid += 1;
                    log.append(&txn_header(zxid, op_code::SET_DATA), Some(&txn), None).expect("append to a new file");
                    log.commit().expect("commit");
                    timed += start.elapsed();
                    let current = log.current_log_file().map(Path::to_path_buf);
                    remove_logs(dir.path(), current.as_deref());
                }
                timed
            })
        });
    }

    // With fsync (the default, forceSync=yes): the commit's fdatasync is nearly all of
    // it, and depends on the disk, not on this code. Few samples.
    {
        let dir = log_dir();
        let mut log = FileTxnLog::new(dir.path());
        log.set_force_sync(true);
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(3));
        for per_commit in [1usize, BATCH] {
            g.throughput(Throughput::Elements(per_commit as u64));
            g.bench_function(BenchmarkId::new("FSYNC_disk_bound", format!("{per_commit}_then_commit")), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        for _ in 0..per_commit {
                            zxid += 1;
                            log.append(&txn_header(zxid, op_code::SET_DATA), Some(&txn), None).expect("append");
                        }
                        log.commit().expect("commit with fsync");
                        timed += start.elapsed();
                        recycle(&mut log, dir.path());
                    }
                    timed
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = micro;
    // Short runs: the whole suite must stay well under two minutes on a shared
    // 2-core machine; these paths are stable enough for 2 s of samples.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench_jute, bench_data_tree, bench_watch_trigger, bench_txn_log
}
criterion_main!(micro);
