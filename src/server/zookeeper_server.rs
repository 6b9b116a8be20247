//! `ZooKeeperServer`: the standalone server — database, session tracker, processor
//! chain (Prep → Sync → Final) and the handshake/packet entry points that
//! `ServerCnxnFactory` calls.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Sender};
use parking_lot::{Mutex, RwLock};

use crate::common::java_random::JavaRandom;
use crate::common::time;
use crate::jute::{InputArchive, OutputArchive, Record};
use crate::proto::data::{Id, ACL};
use crate::proto::proto::{AuthPacket, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use crate::proto::{op_code, Code};
use crate::server::auth::digest_authentication_provider as digest;
use crate::server::data_tree::DataTree;
use crate::server::persistence::FileTxnSnapLog;
use crate::common::quotas::{self, StatsTrack};
use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::prep_request_processor::{OutstandingChanges, PrepRequestProcessor, REQUEST_OF_DEATH};
use crate::server::request_processor::QueueProcessor;
use crate::server::session_tracker::SessionTracker;
use crate::server::zk_database::ZKDatabase;
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;
use crate::server::request::{Request, OWNER_ME};
use crate::server::server_cnxn::{RecvLimits, RecvThrottleReason, ServerCnxn};
use crate::server::server_cnxn_factory::CnxnTable;
use crate::server::server_stats::ServerStats;
use crate::server::session_tracker_impl::SessionTrackerImpl;
use crate::server::sync_request_processor::SyncRequestProcessor;
use crate::server::auth;
use crate::server::blue_throttle::BlueThrottle;
use crate::server::request_throttler::{self, RequestThrottler, ThrottlerSettings};
use crate::system_properties;

/// `ZooKeeperServer.superSecret`, mixed into the session password seed.
const SUPER_SECRET: i64 = 0xB3415C00;

/// Queue capacity between stages; a full queue blocks the connection readers. The
/// readers normally stop well before that, at globalOutstandingLimit (see RecvLimits).
const STAGE_QUEUE_CAPACITY: usize = 10_000;

/// Why the connection must be closed after a packet (upstream's IOException /
/// CloseRequestException from processConnectRequest/processPacket).
#[derive(Debug)]
pub struct CloseConnection(pub String);

/// Which chain of processors a server runs (upstream: the ZooKeeperServer subclass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Standalone,
    Leader,
    Follower,
    Observer,
    /// `ReadOnlyZooKeeperServer`: a partitioned peer serving reads while it looks for a
    /// leader (`readonlymode.enabled`).
    ReadOnly,
}

impl ServerKind {
    /// A server of an ensemble (`QuorumZooKeeperServer`).
    pub fn is_quorum(self) -> bool {
        self != ServerKind::Standalone
    }
}

/// What a learner's server asks of its connection to the leader.
pub trait LearnerLink: Send + Sync {
    /// `validateSession`: ask the leader whether a reconnecting client's session is
    /// alive; the answer finishes the client's handshake.
    fn validate_session(&self, cnxn: &Arc<ServerCnxn>, session_id: i64, timeout: i32);
}

pub struct ZooKeeperServer {
    pub config: QuorumPeerConfig,
    pub server_id: i64,
    pub kind: ServerKind,
    pub db: Arc<ZKDatabase>,
    /// The database's tree (the same lock as `db.tree`).
    pub tree: Arc<RwLock<DataTree>>,
    pub outstanding_changes: Mutex<OutstandingChanges>,
    session_tracker: SessionTracker,
    hzxid: AtomicI64,
    submit: Sender<Request>,
    pub stats: ServerStats,
    /// Every open client connection, indexed by address and session.
    pub cnxns: Mutex<CnxnTable>,
    /// The most connections open at once since memory was last handed back (see
    /// [`ZooKeeperServer::remove_cnxn`]).
    cnxn_peak: std::sync::atomic::AtomicUsize,
    /// Connections added and not yet through `remove_cnxn` (their watches not dropped).
    cnxns_holding_watches: std::sync::atomic::AtomicUsize,
    running: AtomicBool,
    /// `shutdown` ran (a quorum server may stop without ever having served).
    shut_down: AtomicBool,
    /// Run by `shutdown` before the threads are joined: stops stages that do not sit
    /// behind the first processor (a learner's sync thread, its commit processor).
    on_shutdown: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    pub start_time: i64,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    skip_acl: bool,
    enforce_quota: bool,
    /// Where the txn logs and snapshots live (the SyncThread owns the log writer).
    pub txn_snap_log: FileTxnSnapLog,
    /// A snapshot thread is running; at most one at a time.
    pub snapshot_in_progress: AtomicBool,
    /// A learner's connection to its leader (revalidation of reconnecting sessions).
    pub learner_link: Mutex<Option<Arc<dyn LearnerLink>>>,
    /// The quorum peer this server belongs to, for the 4lw and monitoring.
    pub quorum_peer: Option<Arc<crate::server::quorum::quorum_peer::QuorumPeer>>,
    /// Requests from connections submitted and not yet answered (`requestsInProcess`).
    in_process: AtomicI64,
    /// When connection readers stop reading (read once at start).
    pub recv_limits: RecvLimits,
    /// Between the connections and the first processor (`requestThrottler`).
    request_throttler: Arc<RequestThrottler>,
    /// Consulted for every ConnectRequest (`connThrottle`).
    pub conn_throttle: BlueThrottle,
    /// `authHelper`: enforced authentication (checked at start by the mains).
    pub auth_helper: crate::server::authentication_helper::AuthenticationHelper,
}

impl ZooKeeperServer {
    /// A server on `db` with no threads yet; the returned receiver is the queue of the
    /// first processor, which the caller's chain consumes.
    pub fn new(
        config: QuorumPeerConfig,
        db: Arc<ZKDatabase>,
        server_id: i64,
        kind: ServerKind,
        session_tracker: SessionTracker,
        quorum_peer: Option<Arc<crate::server::quorum::quorum_peer::QuorumPeer>>,
    ) -> (Arc<ZooKeeperServer>, crossbeam_channel::Receiver<Request>) {
        let (first_tx, first_rx) = bounded::<Request>(STAGE_QUEUE_CAPACITY);
        let zxid = db.last_processed_zxid();
        let zks = Arc::new(ZooKeeperServer {
            server_id,
            kind,
            tree: db.tree.clone(),
            txn_snap_log: db.txn_snap_log.clone(),
            db,
            outstanding_changes: Mutex::new(OutstandingChanges::default()),
            session_tracker,
            hzxid: AtomicI64::new(zxid),
            submit: first_tx,
            stats: ServerStats::default(),
            cnxns: Mutex::new(CnxnTable::default()),
            cnxn_peak: std::sync::atomic::AtomicUsize::new(0),
            cnxns_holding_watches: std::sync::atomic::AtomicUsize::new(0),
            // A quorum role serves only once it has synced (`startServing`).
            running: AtomicBool::new(kind == ServerKind::Standalone),
            shut_down: AtomicBool::new(false),
            on_shutdown: Mutex::new(Vec::new()),
            start_time: time::current_wall_time(),
            threads: Mutex::new(Vec::new()),
            snapshot_in_progress: AtomicBool::new(false),
            in_process: AtomicI64::new(0),
            recv_limits: RecvLimits::from_system_properties(),
            skip_acl: system_properties::get_or("zookeeper.skipACL", "no") == "yes",
            enforce_quota: system_properties::get_bool_or("zookeeper.enforceQuota", false),
            learner_link: Mutex::new(None),
            quorum_peer,
            config,
            request_throttler: Arc::new(RequestThrottler::new(ThrottlerSettings::from_system_properties())),
            conn_throttle: BlueThrottle::from_system_properties(),
            auth_helper: crate::server::authentication_helper::AuthenticationHelper::from_system_properties().unwrap_or_default(),
        });
        // `startRequestThrottler`. Without its thread requests are submitted directly,
        // which is also what an off throttler (the default) amounts to.
        if let Err(e) = zks.request_throttler.start(&zks) {
            log::error!("Unable to start the RequestThrottler thread, requests will not be throttled: {e}");
        }
        if zks.enforce_quota {
            log::info!("zookeeper.enforceQuota = true, Quota Enforce enables");
        }
        if zks.skip_acl {
            log::info!("skipACL==\"yes\", ACL checks will be skipped");
        }
        (zks, first_rx)
    }

    /// Builds the standalone server around a loaded tree and starts the processor and
    /// session tracker threads (`ZooKeeperServer.startup`).
    pub fn start(
        config: QuorumPeerConfig,
        txn_snap_log: FileTxnSnapLog,
        tree: DataTree,
        sessions: HashMap<i64, i32>,
    ) -> std::io::Result<Arc<ZooKeeperServer>> {
        let restored = crate::server::persistence::Restored { tree, sessions, snapshot: None, replayed: 0, committed: Vec::new() };
        let db = ZKDatabase::new(txn_snap_log, restored);
        let sessions = db.sessions.lock().clone();
        let tracker = SessionTrackerImpl::new(config.tick_time, 1, &sessions);
        let (zks, prep_rx) = ZooKeeperServer::new(config, db, 0, ServerKind::Standalone, SessionTracker::Global(tracker.clone()), None);
        let (sync_tx, sync_rx) = bounded::<Request>(STAGE_QUEUE_CAPACITY);
        let cport = zks.config.client_port;
        let prep = PrepRequestProcessor::new(zks.clone(), Box::new(QueueProcessor(sync_tx)));
        zks.add_thread(
            thread::Builder::new()
                .name(format!("ProcessThread(sid:{} cport:{}):", zks.server_id, cport))
                .spawn(move || prep.run(prep_rx))?,
        );
        let sync = SyncRequestProcessor::new(zks.clone(), Box::new(FinalRequestProcessor::new(zks.clone())), zks.txn_snap_log.txn_log());
        zks.add_thread(
            thread::Builder::new()
                .name(format!("SyncThread:{}", zks.server_id))
                .spawn(move || sync.run(sync_rx))?,
        );
        zks.start_session_trackers()?;
        // "Make a clean snapshot" of what was loaded, as upstream's loadData does — but on
        // the Snapshot Thread instead of before serving: the logs already hold everything
        // it contains, and on a large tree it would otherwise add seconds to every restart.
        // Not fsynced, as upstream's `takeSnapshot()` (syncSnap false): a file torn by a
        // crash fails its seal and the previous snapshot plus the logs are used instead.
        zks.start_snapshot_thread(false);
        Ok(zks)
    }

    /// Starts the expiry threads of this server's trackers (global on a standalone
    /// server or leader, local with `localSessionsEnabled`); expired sessions are closed
    /// through this server's pipeline.
    pub fn start_session_trackers(self: &Arc<Self>) -> std::io::Result<()> {
        for tracker in self.session_tracker.expiring_trackers() {
            let weak = Arc::downgrade(self);
            let t = tracker.start(Box::new(move |sid, _to| {
                if let Some(z) = weak.upgrade() {
                    z.expire(sid);
                }
            }))?;
            self.add_thread(t);
        }
        Ok(())
    }

    /// `startServing`: clients may now be served.
    pub fn set_serving(&self) {
        self.running.store(true, Ordering::Release);
    }

    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Something to stop when the server shuts down.
    pub fn on_shutdown(&self, f: Box<dyn FnOnce() + Send>) {
        self.on_shutdown.lock().push(f);
    }

    /// `submitLearnerRequest`: a request a learner forwarded goes straight to the first
    /// processor (its client's session was touched on the learner).
    pub fn submit_learner_request(&self, si: Request) {
        if self.submit.send(si).is_err() {
            log::warn!("Learner request submitted after shutdown");
        }
    }

    /// Registers a thread the server joins on shutdown.
    pub fn add_thread(&self, t: thread::JoinHandle<()>) {
        self.threads.lock().push(t);
    }

    /// Sets the zxid counter (a new leader starts its epoch at `epoch << 32`).
    pub fn set_zxid(&self, zxid: i64) {
        self.hzxid.store(zxid, Ordering::Release);
    }

    /// `takeSnapshot`: a fuzzy snapshot of the tree and sessions to
    /// `snapshot.<lastProcessedZxid at start>`; requests keep flowing meanwhile (the
    /// tree is read-locked one chunk at a time). The txn log was rolled just before, so
    /// replay from this zxid repairs whatever the snapshot caught half-way.
    pub fn take_snapshot(&self, sync: bool) -> std::io::Result<()> {
        let sessions = self.db.sessions.lock().clone();
        let start = time::current_elapsed_time();
        let file = self.txn_snap_log.snap().save_fuzzy(&self.tree, &sessions, sync)?;
        log::info!(
            "Snapshot taken: {} in {} ms",
            file.display(),
            time::current_elapsed_time() - start
        );
        Ok(())
    }

    /// Starts a snapshot on a "Snapshot Thread" unless one is running ("Too busy to snap,
    /// skipping", as upstream's snapThreadMutex).
    pub fn start_snapshot_thread(self: &Arc<Self>, sync: bool) {
        if self.snapshot_in_progress.swap(true, Ordering::AcqRel) {
            log::warn!("Too busy to snap, skipping");
            return;
        }
        let zks = self.clone();
        let spawned = thread::Builder::new().name("Snapshot Thread".into()).spawn(move || {
            if let Err(e) = zks.take_snapshot(sync) {
                log::error!("Unexpected exception: {e}");
            }
            // The snapshot's own buffers were just freed, and a snapshot follows every
            // snapCount/2 txns: a regular point to hand freed memory back.
            crate::common::memory::release_free_memory();
            zks.snapshot_in_progress.store(false, Ordering::Release);
        });
        if let Err(e) = spawned {
            log::error!("Unable to start the snapshot thread: {e}");
            self.snapshot_in_progress.store(false, Ordering::Release);
        }
    }

    pub fn session_tracker(&self) -> &SessionTracker {
        &self.session_tracker
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// `skipACL=yes`.
    pub fn skips_acl(&self) -> bool {
        self.skip_acl
    }

    pub fn zxid(&self) -> i64 {
        self.hzxid.load(Ordering::Acquire)
    }

    pub fn next_zxid(&self) -> i64 {
        self.hzxid.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.tree.read().last_processed_zxid
    }

    pub fn min_session_timeout(&self) -> i32 {
        self.config.min_session_timeout
    }

    pub fn max_session_timeout(&self) -> i32 {
        self.config.max_session_timeout
    }

    /// `getInProcess`: requests of connections handed to the first processor and not
    /// yet answered (those still queued in the RequestThrottler are not counted).
    pub fn in_process(&self) -> i64 {
        self.in_process.load(Ordering::SeqCst)
    }

    /// `getInflight`: requests queued in the RequestThrottler.
    pub fn inflight(&self) -> i64 {
        self.request_throttler.inflight()
    }

    /// What `shouldThrottle` holds against `globalOutstandingLimit`: the larger of the
    /// in-process and the throttler-queued counts.
    fn global_outstanding(&self, in_process: i64) -> i64 {
        in_process.max(self.inflight())
    }

    /// Whether `cnxn`'s reader must stop before its next request (upstream's
    /// `shouldThrottle`, plus the per-connection bounds of [`RecvLimits`]).
    pub fn recv_throttle_reason(&self, cnxn: &ServerCnxn, parked: bool) -> Option<RecvThrottleReason> {
        cnxn.recv_throttle_reason(self.global_outstanding(self.in_process()), parked)
    }

    /// FinalRequestProcessor queued the reply of a request of `cnxn` (or had none to
    /// send): `decInProcess` (which wakes a stalled RequestThrottler) and
    /// `decrOutstandingAndCheckThrottle` in one.
    pub fn request_finished(&self, cnxn: &ServerCnxn) {
        let in_process = self.in_process.fetch_sub(1, Ordering::SeqCst) - 1;
        self.request_throttler.throttle_wake();
        cnxn.request_answered(self.global_outstanding(in_process));
    }

    /// A request that was submitted will not reach the pipeline's end (`requestFinished`
    /// on upstream's drop paths): its connection's counts are released as if answered.
    pub fn request_dropped(&self, si: &Request) {
        if let Some(c) = &si.cnxn {
            c.request_dropped(si.r#type, self.global_outstanding(self.in_process()));
        }
    }

    pub fn outstanding_requests(&self) -> i64 {
        self.cnxns.lock().values().map(|c| c.outstanding.load(Ordering::Relaxed)).sum()
    }

    /// `generatePasswd`: 16 bytes from java.util.Random(sessionId ^ superSecret).
    pub fn generate_passwd(session_id: i64) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        JavaRandom::new(session_id ^ SUPER_SECRET).next_bytes(&mut p);
        p
    }

    /// `checkACL`.
    pub fn check_acl(&self, acl: &[ACL], perm: i32, ids: &[Id]) -> Result<(), Code> {
        if self.skip_acl || acl.is_empty() {
            return Ok(());
        }
        if ids.iter().any(|i| i.scheme == "super") {
            return Ok(());
        }
        for a in acl {
            if a.perms & perm == 0 {
                continue;
            }
            if a.id.scheme == "world" && a.id.id == "anyone" {
                return Ok(());
            }
            for auth_id in ids {
                if auth_id.scheme == a.id.scheme && auth::matches(&a.id.scheme, &auth_id.id, &a.id.id) == Some(true) {
                    return Ok(());
                }
            }
        }
        Err(Code::NoAuth)
    }

    /// `checkQuota`: only with `zookeeper.enforceQuota=true`, as upstream. Checked
    /// against the committed tree (not the in-flight changes), like upstream. Exceeding
    /// a soft limit logs; exceeding a hard limit fails with QuotaExceeded.
    pub fn check_quota(&self, path: &str, last: Option<&[u8]>, data: Option<&[u8]>, op: i32) -> Result<(), Code> {
        if !self.enforce_quota {
            return Ok(());
        }
        let tree = self.tree.read();
        let Some(prefix) = tree.max_prefix_with_quota(path) else { return Ok(()) };
        let bytes = data.map(|d| d.len() as i64).unwrap_or(0);
        let (bytes_diff, count_diff) = match op {
            op_code::CREATE => (bytes, 1),
            _ => (bytes - last.map(|d| d.len() as i64).unwrap_or(0), 0),
        };
        let limit_path = quotas::limit_path(&prefix);
        let Some(limit_node) = tree.get_node(&limit_path) else {
            log::error!("Missing limit node for quota {limit_path}");
            return Ok(());
        };
        let limits = StatsTrack::from_bytes(limit_node.data());
        let check_count = count_diff != 0 && (limits.count() > -1 || limits.get("countHardLimit") > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.get("byteHardLimit") > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let stat_path = quotas::stat_path(&prefix);
        let Some(stat_node) = tree.get_node(&stat_path) else {
            log::error!("Missing node for stat {stat_path}");
            return Ok(());
        };
        let current = StatsTrack::from_bytes(stat_node.data());
        let check = |what: &str, new: i64, hard: i64, soft: i64| -> Result<(), Code> {
            let is_hard = hard > -1;
            let limit = if is_hard { hard } else { soft };
            if new > limit {
                let kind = if is_hard { "hard" } else { "soft" };
                let w = if what == "count" { "Count" } else { "Byte" };
                log::warn!("Quota exceeded: {prefix} [current {what}={new}, {kind}{w}Limit={limit}]");
                if is_hard {
                    return Err(Code::QuotaExceeded);
                }
            }
            Ok(())
        };
        if check_count {
            check("count", current.count() + count_diff, limits.get("countHardLimit"), limits.count())?;
        }
        if check_bytes {
            check("bytes", current.bytes() + bytes_diff, limits.get("byteHardLimit"), limits.bytes())?;
        }
        Ok(())
    }

    /// `setLocalSessionFlag` of a quorum server: every new session is local when local
    /// sessions are enabled; a closeSession is local if its session is.
    fn set_local_session_flag(&self, si: &mut Request) {
        if !self.kind.is_quorum() {
            return;
        }
        match si.r#type {
            // Every new session is local when local sessions are on.
            op_code::CREATE_SESSION if self.config.local_sessions_enabled => si.is_local_session = true,
            op_code::CLOSE_SESSION => {
                let local = self.session_tracker.is_local_session(si.session_id);
                si.is_local_session = local;
                if self.kind == ServerKind::ReadOnly {
                    if !local {
                        log::warn!("Submitting global closeSession request for session 0x{:x} in ReadOnly mode", si.session_id);
                    }
                } else {
                    log::info!(
                        "Submitting {} closeSession request for session 0x{:x}",
                        if local { "local" } else { "global" },
                        si.session_id
                    );
                }
            }
            _ => {}
        }
    }

    /// `QuorumZooKeeperServer.checkUpgradeSession`: a local session that creates an
    /// ephemeral node (create, create2, or a multi with one) must become global first.
    /// Returns the createSession request that upgrades it, or EphemeralOnLocalSession
    /// when upgrading is off.
    pub fn check_upgrade_session(&self, request: &Request) -> Result<Option<Request>, Code> {
        use crate::proto::proto::CreateRequest;
        use crate::proto::CreateMode;
        let Some(local) = self.session_tracker.local() else { return Ok(None) };
        if request.throttled {
            return Ok(None);
        }
        if !matches!(request.r#type, op_code::CREATE | op_code::CREATE2 | op_code::MULTI) || !local.is_local(request.session_id) {
            return Ok(None);
        }
        let is_ephemeral = |flags: i32| CreateMode::from_flag(flags).is_some_and(|m| m.is_ephemeral());
        let ephemeral = if request.r#type == op_code::MULTI {
            match crate::proto::multi::MultiOperationRecord::from_bytes(&request.request) {
                Ok(m) => m.ops.iter().any(|op| match op {
                    crate::proto::multi::Op::Create { op, req, .. } if *op == op_code::CREATE || *op == op_code::CREATE2 => is_ephemeral(req.flags),
                    _ => false,
                }),
                // Upstream's decoding fails with an IOException: no upgrade, the request
                // goes on and fails where it is prepared.
                Err(_) => false,
            }
        } else {
            match CreateRequest::from_bytes(&request.request) {
                Ok(c) => is_ephemeral(c.flags),
                Err(_) => false,
            }
        };
        if !ephemeral {
            return Ok(None);
        }
        if !self.config.local_sessions_upgrading_enabled {
            return Err(Code::EphemeralOnLocalSession);
        }
        Ok(self.make_upgrade_request(request.session_id))
    }

    /// `makeUpgradeRequest`: atomically, the session stops being local and a global
    /// createSession with its timeout is made.
    fn make_upgrade_request(&self, session_id: i64) -> Option<Request> {
        let local = self.session_tracker.local()?;
        let _g = local.upgrade_guard();
        if !local.is_local(session_id) {
            return None;
        }
        let tracker = &self.session_tracker;
        let timeout = local.upgrade_session(session_id, |id, to| {
            tracker.track_session(id, to);
        })?;
        Some(Request::new(None, session_id, 0, op_code::CREATE_SESSION, timeout.to_be_bytes().to_vec(), Vec::new()))
    }

    /// `submitRequest` / `enqueueRequest`: every request of a connection, and every
    /// createSession and closeSession the server makes, goes through the
    /// RequestThrottler (a learner's forwarded requests do not: `submitLearnerRequest`).
    pub fn submit_request(&self, mut si: Request) {
        // Counted against the connection from now on, queued or not, as upstream's
        // `incrOutstandingAndCheckThrottle` before the request is enqueued.
        if let Some(c) = &si.cnxn {
            c.request_submitted(si.r#type);
        }
        if self.request_throttler.enabled() {
            self.request_throttler.submit_request(self, si);
        } else {
            self.request_throttler.record_submitted(&mut si, 0);
            self.submit_request_now(si);
        }
    }

    /// `submitRequestNow`: touch the session, then hand the request to the first stage.
    pub fn submit_request_now(&self, mut si: Request) {
        if let Some(c) = &si.cnxn {
            let id = c.session_id();
            if !self.session_tracker.touch_session(id, c.session_timeout()) {
                log::debug!("Dropping request: session 0x{id:x} is not present or closing");
                self.request_dropped(&si);
                return;
            }
        }
        if Request::is_valid(si.r#type) {
            self.set_local_session_flag(&mut si);
            if si.cnxn.is_some() {
                self.in_process.fetch_add(1, Ordering::SeqCst);
            }
            // LeaderRequestProcessor / Follower- and ObserverRequestProcessor: the
            // upgrade goes ahead of the request that needs it.
            if matches!(self.kind, ServerKind::Leader | ServerKind::Follower | ServerKind::Observer) {
                match self.check_upgrade_session(&si) {
                    Ok(Some(up)) => {
                        if self.submit.send(up).is_err() {
                            log::warn!("Request submitted after shutdown");
                        }
                    }
                    Ok(None) => {}
                    Err(code) => {
                        log::warn!("Error creating upgrade request: KeeperErrorCode = {}", code.message());
                        si.exception = Some(code);
                    }
                }
            }
            if self.submit.send(si).is_err() {
                log::warn!("Request submitted after shutdown");
            }
        } else {
            log::warn!("Received packet at server of unknown type {}", si.r#type);
            self.request_dropped(&si);
            // UnimplementedRequestProcessor: answer, then close the connection.
            if let Some(c) = &si.cnxn {
                let hdr = ReplyHeader { xid: si.cxid, zxid: si.zxid, err: Code::Unimplemented.int() };
                c.send_record::<ReplyHeader>(&hdr, None);
                c.send_close();
            }
        }
    }

    /// `expire`: the session tracker gave up on a session; close it like a client would.
    pub fn expire(&self, session_id: i64) {
        let mut si = Request::new(None, session_id, 0, op_code::CLOSE_SESSION, Vec::new(), Vec::new());
        si.owner = Some(OWNER_ME);
        self.submit_request(si);
    }

    /// `processConnectRequest`. The reply for a new session is sent when its
    /// createSession txn is applied; for a reconnect, at once.
    pub fn process_connect_request(&self, cnxn: &Arc<ServerCnxn>, buf: &[u8]) -> Result<(), CloseConnection> {
        let (req, read_only) = decode_connect_request(buf)?;
        // The connection throttle: a new session costs a global or local session's
        // weight, a reconnect a renewal's (1 each unless weighing is on).
        let local_sessions = self.session_tracker.local().is_some();
        let need = self.conn_throttle.required_tokens(req.session_id != 0, local_sessions);
        if !self.conn_throttle.check_limit(need) {
            // NIOServerCnxn's handling of ClientCnxnLimitException.
            request_throttler::METRICS.connection_rejected.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "Closing session 0x{:x}: ClientCnxnLimitException: Connection throttle rejected connection",
                cnxn.session_id()
            );
            return Err(CloseConnection("Connection throttle rejected connection".into()));
        }
        request_throttler::METRICS.connection_token_deficit.add(self.conn_throttle.deficit());
        request_throttler::METRICS.connection_request_count.fetch_add(1, Ordering::Relaxed);
        let read_only = match read_only {
            Some(b) => {
                cnxn.is_old_client.store(false, Ordering::Release);
                b
            }
            None => {
                log::warn!(
                    "Connection request from old client {}; will be dropped if server is in r-o mode",
                    crate::server::server_cnxn::fmt_addr(&cnxn.remote)
                );
                false
            }
        };
        if !read_only && self.kind == ServerKind::ReadOnly {
            let msg = format!("Refusing session request for not-read-only client {}", crate::server::server_cnxn::fmt_addr(&cnxn.remote));
            log::info!("{msg}");
            return Err(CloseConnection(msg));
        }
        let last = self.last_processed_zxid();
        if req.last_zxid_seen > last {
            let msg = format!(
                "Refusing session request for client {} as it has seen zxid 0x{:x} our last zxid is 0x{:x} client must try another server",
                crate::server::server_cnxn::fmt_addr(&cnxn.remote),
                req.last_zxid_seen,
                last
            );
            log::info!("{msg}");
            return Err(CloseConnection(msg));
        }
        let timeout = req.time_out.max(self.min_session_timeout()).min(self.max_session_timeout());
        cnxn.set_session_timeout(timeout);
        if req.session_id == 0 {
            let id = self.session_tracker.create_session(timeout);
            self.cnxns.lock().bind_session(cnxn, id);
            let mut si = Request::new(Some(cnxn.clone()), id, 0, op_code::CREATE_SESSION, timeout.to_be_bytes().to_vec(), Vec::new());
            si.owner = Some(OWNER_ME);
            self.submit_request(si);
        } else {
            let id = req.session_id;
            // `ReadOnlyZooKeeperServer.validateSession`: only the leader could renew a
            // global session.
            if self.kind == ServerKind::ReadOnly && self.session_tracker.is_global_session(id) {
                let msg = format!("Refusing global session reconnection in RO mode {}", crate::server::server_cnxn::fmt_addr(&cnxn.remote));
                log::info!("{msg}");
                return Err(CloseConnection(msg));
            }
            // Any other connection of this session goes first (client reconnect).
            // Collected first: the table's lock must not be held while they close.
            let others = self.cnxns.lock().of_session(id);
            for o in others {
                if o.id != cnxn.id {
                    log::info!("Closing previous connection of session 0x{id:x}: client reconnected");
                    o.close();
                }
            }
            self.cnxns.lock().bind_session(cnxn, id);
            let pw = req.passwd.unwrap_or_default();
            if pw != Self::generate_passwd(id) {
                self.finish_session_init(cnxn, false);
            } else if matches!(self.kind, ServerKind::Follower | ServerKind::Observer) && !self.session_tracker.is_local_session(id) {
                // `LearnerZooKeeperServer.revalidateSession`: only the leader knows a
                // session that is not one of our local ones.
                let link = self.learner_link.lock().clone();
                match link {
                    Some(l) => l.validate_session(cnxn, id, timeout),
                    None => self.finish_session_init(cnxn, false),
                }
            } else {
                // `revalidateSession`: alive, and owned by this server from now on.
                let valid = self.session_tracker.touch_session(id, timeout)
                    && self.session_tracker.set_owner(id, OWNER_ME).is_ok();
                self.finish_session_init(cnxn, valid);
            }
        }
        Ok(())
    }

    /// `finishSessionInit`: the ConnectResponse (and the readOnly byte if the client
    /// sent one); an invalid session gets zeros and the connection is closed.
    pub fn finish_session_init(&self, cnxn: &Arc<ServerCnxn>, valid: bool) {
        let rsp = ConnectResponse {
            protocol_version: 0,
            time_out: if valid { cnxn.session_timeout() } else { 0 },
            session_id: if valid { cnxn.session_id() } else { 0 },
            passwd: Some(if valid { Self::generate_passwd(cnxn.session_id()) } else { vec![0u8; 16] }),
        };
        let mut out = OutputArchive::new();
        out.write_int(-1);
        rsp.serialize(&mut out);
        if !cnxn.is_old_client.load(Ordering::Acquire) {
            out.write_bool(self.kind == ServerKind::ReadOnly);
        }
        let mut frame = out.into_inner();
        let len = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        cnxn.send_frame(frame);
        // The ConnectResponse may be on the wire before the connection learns the
        // outcome below; a test widens that window here.
        crate::server::fault_points::hit("session.response.queued");
        if valid {
            // Debug, as upstream's finishSessionInit: at info, a session storm costs the
            // commit thread a formatted log line per session.
            log::debug!(
                "Established session 0x{:x} with negotiated timeout {} for client {}",
                cnxn.session_id(),
                cnxn.session_timeout(),
                crate::server::server_cnxn::fmt_addr(&cnxn.remote)
            );
        } else {
            log::info!(
                "Invalid session 0x{:x} for client {}, probably expired",
                cnxn.session_id(),
                crate::server::server_cnxn::fmt_addr(&cnxn.remote)
            );
            cnxn.send_close();
        }
        cnxn.session_initialized(valid);
    }

    /// `processPacket`: auth is handled here, in the connection's thread; everything
    /// else goes down the pipeline.
    pub fn process_packet(&self, cnxn: &Arc<ServerCnxn>, buf: &[u8]) -> Result<(), CloseConnection> {
        let (h, body) = decode_request_header(buf)?;
        if h.r#type == op_code::AUTH {
            log::info!("got auth packet {}", crate::server::server_cnxn::fmt_addr(&cnxn.remote));
            let ap = AuthPacket::from_bytes(body).map_err(|e| CloseConnection(format!("malformed auth packet: {e}")))?;
            let ok = match ap.scheme.as_str() {
                "digest" => {
                    let id = String::from_utf8_lossy(ap.auth.as_deref().unwrap_or(&[])).into_owned();
                    let d = digest::generate_digest(&id);
                    if digest::super_digest().as_deref() == Some(d.as_str()) {
                        cnxn.add_auth_info(Id::new("super", ""));
                    }
                    cnxn.add_auth_info(Id::new("digest", &d));
                    true
                }
                "ip" => {
                    cnxn.add_auth_info(Id::new("ip", &cnxn.remote.ip().to_string()));
                    true
                }
                _ => false,
            };
            if ok {
                log::info!(
                    "Session 0x{:x}: auth success for scheme {} and address {}",
                    cnxn.session_id(),
                    ap.scheme,
                    crate::server::server_cnxn::fmt_addr(&cnxn.remote)
                );
                cnxn.send_record::<ReplyHeader>(&ReplyHeader { xid: h.xid, zxid: 0, err: 0 }, None);
            } else {
                log::warn!("No authentication provider for scheme: {} has [ip, digest]", ap.scheme);
                self.stats.auth_failed_count.fetch_add(1, Ordering::Relaxed);
                cnxn.send_record::<ReplyHeader>(&ReplyHeader { xid: h.xid, zxid: 0, err: Code::AuthFailed.int() }, None);
                cnxn.send_close();
                return Err(CloseConnection("auth failed".into()));
            }
            return Ok(());
        }
        if h.r#type == op_code::SASL {
            return self.process_sasl(cnxn, h.xid, body);
        }
        if let Some(schemes) = self.auth_helper.refuses(&cnxn.auth_info()) {
            log::error!(
                "Client authentication scheme(s) [{}] does not match with any of the expected authentication scheme [{}], closing session.",
                schemes.join(", "),
                self.auth_helper.enforce_auth_schemes.join(", ")
            );
            cnxn.send_record::<ReplyHeader>(&ReplyHeader { xid: h.xid, zxid: 0, err: Code::SessionClosedRequireSaslAuth.int() }, None);
            cnxn.send_close();
            return Err(CloseConnection("authentication required".into()));
        }
        let mut si = Request::new(Some(cnxn.clone()), cnxn.session_id(), h.xid, h.r#type, body.to_vec(), cnxn.auth_info());
        si.owner = Some(OWNER_ME);
        self.submit_request(si);
        Ok(())
    }

    /// `processSasl`: one token of the client's SASL exchange, answered in its turn.
    fn process_sasl(&self, cnxn: &Arc<ServerCnxn>, xid: i32, body: &[u8]) -> Result<(), CloseConnection> {
        use crate::proto::proto::{GetSASLRequest, SetSASLResponse};
        use crate::server::zookeeper_sasl_server as sasl;
        log::debug!("Responding to client SASL token.");
        let req = GetSASLRequest::from_bytes(body).map_err(|e| CloseConnection(format!("malformed SASL request: {e}")))?;
        let token = req.token.unwrap_or_default();
        let Some(login) = sasl::login() else {
            // Upstream: no SaslServer for the connection; the NullPointerException is
            // logged and the client gets an empty OK.
            log::error!("cnxn.saslServer is null: cnxn object did not initialize its saslServer properly.");
            cnxn.send_record(&ReplyHeader { xid, zxid: 0, err: 0 }, Some(&SetSASLResponse { token: None }));
            return Ok(());
        };
        let mut guard = cnxn.sasl_server.lock();
        let server = guard.get_or_insert_with(crate::common::digest_md5::DigestMd5Server::default);
        let response = match server.evaluate_response(&token, &login.credentials) {
            Ok(t) => {
                if server.is_complete() {
                    let id = server.authorization_id().unwrap_or_default().to_owned();
                    log::info!("Session 0x{:x}: adding SASL authorization for authorizationID: {id}", cnxn.session_id());
                    cnxn.add_auth_info(Id::new("sasl", &id));
                    if sasl::is_sasl_super_user(&id) {
                        cnxn.add_auth_info(Id::new("super", ""));
                        log::info!("Session 0x{:x}: Authenticated Id '{id}' as super user", cnxn.session_id());
                    }
                }
                Some(t)
            }
            Err(e) => {
                log::warn!("Client {} failed to SASL authenticate: {e}", crate::server::server_cnxn::fmt_addr(&cnxn.remote));
                let required = self.auth_helper.is_sasl_auth_required();
                if sasl::allow_sasl_failed_clients() && !required {
                    log::warn!("Maintaining client connection despite SASL authentication failure.");
                    None
                } else {
                    let err = if required {
                        log::warn!(
                            "Closing client connection due to server requires client SASL authenticaiton,but client SASL authentication has failed, or client is not configured with SASL authentication."
                        );
                        Code::SessionClosedRequireSaslAuth
                    } else {
                        log::warn!("Closing client connection due to SASL authentication failure.");
                        Code::AuthFailed
                    };
                    cnxn.send_record(&ReplyHeader { xid, zxid: 0, err: err.int() }, Some(&SetSASLResponse { token: None }));
                    cnxn.send_close();
                    return Err(CloseConnection("SASL authentication failed".into()));
                }
            }
        };
        drop(guard);
        cnxn.send_record(&ReplyHeader { xid, zxid: 0, err: 0 }, Some(&SetSASLResponse { token: response }));
        Ok(())
    }

    /// Register a new connection (upstream's factory `addCnxn`).
    pub fn add_cnxn(&self, cnxn: Arc<ServerCnxn>) {
        let mut cs = self.cnxns.lock();
        if cs.insert(cnxn) {
            self.cnxns_holding_watches.fetch_add(1, Ordering::AcqRel);
        }
        self.cnxn_peak.fetch_max(cs.len(), Ordering::Relaxed);
    }

    /// `getClientCnxnCount`: the open connections from one address, kept as a count
    /// (upstream's `ipMap`) so that `maxClientCnxns` costs the same at 20 000
    /// connections as at 20.
    pub fn client_cnxn_count(&self, ip: std::net::IpAddr) -> usize {
        self.cnxns.lock().count_from(ip)
    }

    /// Forget a closed connection: registry and watches (`removeCnxn`).
    pub fn remove_cnxn(&self, cnxn: &ServerCnxn) {
        self.unregister_cnxn(cnxn);
        if cnxn.watches_dropped.swap(true, Ordering::AcqRel) {
            return;
        }
        self.tree.write().remove_cnxn(cnxn.id);
        // Counted here, after the watches went, not at unregistering: the trim below
        // must come after the memory it is for was freed.
        let left = self
            .cnxns_holding_watches
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_sub(1)))
            .unwrap_or(1)
            .saturating_sub(1);
        // Thousands of sessions leaving free their connections' buffers and watches
        // inside glibc's arenas, where they would stay (`common::memory`): each time
        // the count halves from a peak of many, hand the free pages back. One trim per
        // halving, by whichever connection crosses the mark.
        let peak = self.cnxn_peak.load(Ordering::Relaxed);
        if should_release_after_close(peak, left)
            && self.cnxn_peak.compare_exchange(peak, left, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            log::debug!("{left} connections left of {peak}: releasing free memory");
            crate::common::memory::release_free_memory();
        }
    }

    /// Takes a connection out of the table and its indexes (idempotent). The closing thread does this before the socket closes, as
    /// upstream's `close` → `removeCnxn`: a client that saw its connection end and asks
    /// `srvr` at once is not shown it still counted. Dropping its watches, which needs
    /// the tree's lock, may come after, on the closer thread.
    pub fn unregister_cnxn(&self, cnxn: &ServerCnxn) {
        self.cnxns.lock().remove(cnxn);
    }

    /// `closeAllConnections`.
    pub fn close_all_connections(&self) {
        let cs: Vec<Arc<ServerCnxn>> = self.cnxns.lock().values().cloned().collect();
        for c in cs {
            c.close();
        }
    }

    /// Closes every connection of a session (`ServerCnxnFactory.closeSession`): at once,
    /// as upstream's `cnxn.close`, not after what is queued, which a client that stopped
    /// reading would never let go out.
    pub fn close_session_cnxns(&self, session_id: i64) -> bool {
        let cs = self.cnxns.lock().of_session(session_id);
        for c in &cs {
            c.close();
        }
        !cs.is_empty()
    }

    pub fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.running.store(false, Ordering::Release);
        log::info!("shutting down");
        // First, as upstream: what is queued may still be processed (up to the
        // throttler's shutdown timeout) while sessions and the processors are alive.
        self.request_throttler.shutdown();
        self.session_tracker.shutdown();
        let _ = self.submit.send(Request::new(None, 0, 0, REQUEST_OF_DEATH, Vec::new(), Vec::new()));
        let hooks: Vec<Box<dyn FnOnce() + Send>> = std::mem::take(&mut *self.on_shutdown.lock());
        for h in hooks {
            h();
        }
        let cs: Vec<Arc<ServerCnxn>> = self.cnxns.lock().values().cloned().collect();
        for c in cs {
            c.close();
        }
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
        if self.kind != ServerKind::Standalone {
            // `shutdown(false)`: the database outlives the role; bring it up to what the
            // log holds (see `ZKDatabase::fast_forward_database`).
            if let Err(e) = self.db.fast_forward_database() {
                log::error!("Error updating DB: {e}");
                if let Err(e) = self.db.load_database() {
                    log::error!("Unable to reload the database from disk: {e}");
                }
            }
        }
    }
}

/// Connections at which a mass departure is worth a `malloc_trim`: below this many, what
/// they held is small next to everything else.
const RELEASE_PEAK_MIN: usize = 256;

/// After a close leaving `left` connections: has the count halved from a `peak` of many?
pub fn should_release_after_close(peak: usize, left: usize) -> bool {
    peak >= RELEASE_PEAK_MIN && left <= peak / 2
}

/// The first frame of a client connection (`processConnectRequest`'s decoding): the
/// ConnectRequest and, from 3.4 clients on, a trailing readOnly byte (None for an old
/// client that sends none).
pub fn decode_connect_request(buf: &[u8]) -> Result<(ConnectRequest, Option<bool>), CloseConnection> {
    let mut inp = InputArchive::new(buf);
    let req = ConnectRequest::deserialize(&mut inp).map_err(|e| CloseConnection(format!("Connection request malformed: {e}")))?;
    Ok((req, inp.read_bool().ok()))
}

/// Every later frame (`processPacket`'s decoding): the RequestHeader and the body that
/// the opcode's record is read from.
pub fn decode_request_header(buf: &[u8]) -> Result<(RequestHeader, &[u8]), CloseConnection> {
    let mut inp = InputArchive::new(buf);
    let h = RequestHeader::deserialize(&mut inp).map_err(|e| CloseConnection(format!("malformed request header: {e}")))?;
    Ok((h, inp.rest()))
}

#[cfg(test)]
mod tests {
    use super::should_release_after_close;

    #[test]
    fn memory_is_released_each_time_many_connections_halve() {
        assert!(!should_release_after_close(100, 0), "few connections: not worth a trim");
        assert!(!should_release_after_close(10_000, 5_001));
        assert!(should_release_after_close(10_000, 5_000));
        assert!(should_release_after_close(256, 0));
        // The peak is then reset to what is left: the next halving trims again.
        assert!(!should_release_after_close(5_000, 2_501));
        assert!(should_release_after_close(5_000, 2_500));
    }
}
