//! `Learner`: what followers and observers share — the connection to the leader
//! (`connectToLeader`, `registerWithLeader`), the synchronisation (`syncWithLeader`),
//! PING replies with the sessions our clients used, REQUEST forwarding and session
//! revalidation. The roles' own loops are in `follower.rs` and `observer.rs`.
//!
//! Synchronisation follows the corrected order of later releases (ZOOKEEPER-3911,
//! -4643, -4646, -4685, -4785, checked against upstream's TLA+ spec) on 3.8's wire
//! format: at NEWLEADER the learner logs and applies only the committed txns, fsyncs
//! them, then writes currentEpoch, then acks; uncommitted proposals are logged (and
//! acked) only after UPTODATE; a gap in a DIFF's proposals within an epoch is refused.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use parking_lot::Mutex;

use crate::common::tls_stream::TlsStream;
use crate::jute::{OutputArchive, Record};
use crate::proto::quorum::{LearnerInfo, QuorumPacket};
use crate::server::persistence::file_snap::deserialize_snapshot_body;
use crate::server::persistence::snap_stream::SnapStream;
use crate::server::persistence::util::deserialize_txn_entry;
use crate::server::persistence::FileTxnLog;
use crate::server::quorum::quorum_packet::{self as qp, encode_parts, packet_to_string, PacketReader};
use crate::server::quorum::quorum_peer::{QuorumPeer, SyncMode};
use crate::server::quorum::quorum_server::QuorumServer;
use crate::server::quorum::quorum_x509_util;
use crate::server::request::Request;
use crate::server::server_cnxn::ServerCnxn;
use crate::server::util::zxid_utils::{epoch_from_zxid, make_zxid};
use crate::server::zookeeper_server::{LearnerLink, ZooKeeperServer};

/// `ExitCode.QUORUM_PACKET_ERROR`.
pub const QUORUM_PACKET_ERROR: i32 = 13;
/// `ExitCode.UNMATCHED_TXN_COMMIT`.
pub const UNMATCHED_TXN_COMMIT: i32 = 12;

/// The learner's socket to the leader: one writer shared by every thread that sends
/// (`leaderOs`, synchronized upstream), the reader owned by the QuorumPeer thread.
pub struct LeaderConnection {
    writer: Mutex<BufWriter<TlsStream>>,
    sock: TlsStream,
    closed: AtomicBool,
    pub leader_addr: String,
    pending_revalidations: Mutex<HashMap<i64, Arc<ServerCnxn>>>,
}

impl LeaderConnection {
    /// `writePacket`: a packet (already encoded), flushed if asked.
    pub fn write_packet(&self, bytes: &[u8], flush: bool) -> io::Result<()> {
        let mut w = self.writer.lock();
        w.write_all(bytes)?;
        if flush {
            w.flush()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> io::Result<()> {
        self.writer.lock().flush()
    }

    pub fn set_read_timeout(&self, ms: u64) {
        let _ = self.sock.set_read_timeout(Some(Duration::from_millis(ms.max(1))));
    }

    /// `closeSocket`.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.sock.shutdown(Shutdown::Both);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `request`: forward a client request (session, cxid, type, body, auth ids).
    pub fn request(&self, r: &Request) -> io::Result<()> {
        let mut data = Vec::with_capacity(16 + r.request.len());
        data.extend_from_slice(&r.session_id.to_be_bytes());
        data.extend_from_slice(&r.cxid.to_be_bytes());
        data.extend_from_slice(&r.r#type.to_be_bytes());
        data.extend_from_slice(&r.request);
        let p = QuorumPacket { r#type: qp::REQUEST, zxid: -1, data: Some(data), authinfo: r.auth_info.clone() };
        self.write_packet(&qp::encode(&p), true)
    }

    /// `revalidate`: the leader's answer to a REVALIDATE finishes the client's handshake.
    pub fn revalidate_answer(&self, zk: &ZooKeeperServer, p: &QuorumPacket) {
        let Some((session_id, valid)) = parse_revalidate_answer(p.data.as_deref().unwrap_or(&[])) else {
            log::warn!("Malformed REVALIDATE answer from the leader");
            return;
        };
        match self.pending_revalidations.lock().remove(&session_id) {
            None => log::warn!("Missing session 0x{session_id:x} for validation"),
            Some(cnxn) => zk.finish_session_init(&cnxn, valid),
        }
    }
}

impl LearnerLink for LeaderConnection {
    /// `validateSession`.
    fn validate_session(&self, cnxn: &Arc<ServerCnxn>, session_id: i64, timeout: i32) {
        log::info!("Revalidating client: 0x{session_id:x}");
        let mut data = Vec::with_capacity(12);
        data.extend_from_slice(&session_id.to_be_bytes());
        data.extend_from_slice(&timeout.to_be_bytes());
        self.pending_revalidations.lock().insert(session_id, cnxn.clone());
        if let Err(e) = self.write_packet(&encode_parts(qp::REVALIDATE, -1, Some(&data)), true) {
            log::warn!("Unable to revalidate session 0x{session_id:x}: {e}");
        }
    }
}

/// The reading half, owned by the QuorumPeer thread.
pub type LeaderReader = crate::server::quorum::quorum_packet::PeerReader;

/// `findLeader`: the server our vote names.
pub fn find_leader(peer: &QuorumPeer) -> Option<QuorumServer> {
    let id = peer.current_vote().id;
    let s = peer.view_member(id);
    if s.is_none() {
        log::warn!("Couldn't find the leader with id = {id}");
    }
    s
}

/// `connectToLeader` (`LeaderConnector-<addr>`): up to 5 attempts 100 ms apart
/// (`leaderConnectDelayDuringRetryMs`) within initLimit ticks (or
/// connectToLearnerMasterLimit ticks).
pub fn connect_to_leader(peer: &QuorumPeer, leader: &QuorumServer) -> io::Result<(Arc<LeaderConnection>, LeaderReader)> {
    let addr = leader.addr.one().cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "leader has no quorum address"))?;
    let tick = i64::from(peer.tick_time);
    let limit = if peer.config.connect_to_learner_master_limit > 0 { peer.config.connect_to_learner_master_limit } else { peer.init_limit };
    let connect_timeout = Duration::from_millis((tick * i64::from(limit)).max(1) as u64);
    let delay = Duration::from_millis(crate::system_properties::get_i64("zookeeper.leaderConnectDelayDuringRetryMs").unwrap_or(100).max(0) as u64);
    let start = Instant::now();
    let mut last_err = io::Error::new(io::ErrorKind::TimedOut, "connectToLeader exceeded on retries.");
    for tries in 0..5 {
        let remaining = connect_timeout.saturating_sub(start.elapsed());
        if remaining.is_zero() {
            log::error!("connectToLeader exceeded on retries.");
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connectToLeader exceeded on retries."));
        }
        let res = addr.resolve().and_then(|sa| TcpStream::connect_timeout(&sa, remaining));
        match res {
            Ok(sock) => {
                let nodelay = crate::system_properties::get_or("follower.nodelay", "true") == "true";
                sock.set_nodelay(nodelay)?;
                sock.set_read_timeout(Some(Duration::from_millis((tick * i64::from(peer.init_limit)).max(1) as u64)))?;
                // Learner.createSocket: TLS with sslQuorum, the handshake before anything else.
                let sock = quorum_x509_util::connect(peer.x509.as_deref(), sock)?;
                if let Some(learner) = &peer.quorum_auth.learner {
                    if let Err(e) = learner.authenticate(&sock) {
                        let _ = sock.shutdown(Shutdown::Both);
                        return Err(e);
                    }
                }
                log::info!("Successfully connected to leader, using address: {addr}");
                let reader = PacketReader::new(BufReader::with_capacity(64 * 1024, sock.clone()));
                let conn = Arc::new(LeaderConnection {
                    writer: Mutex::new(BufWriter::with_capacity(64 * 1024, sock.clone())),
                    sock,
                    closed: AtomicBool::new(false),
                    leader_addr: format!("{addr}"),
                    pending_revalidations: Mutex::new(HashMap::new()),
                });
                return Ok((conn, reader));
            }
            Err(e) => {
                let remaining = connect_timeout.saturating_sub(start.elapsed());
                if remaining <= delay {
                    log::error!("Unexpected exception, connectToLeader exceeded. tries={tries}, remaining init limit={}, connecting to {addr}: {e}", remaining.as_millis());
                    return Err(e);
                } else if tries >= 4 {
                    log::error!("Unexpected exception, retries exceeded. tries={tries}, remaining init limit={}, connecting to {addr}: {e}", remaining.as_millis());
                    return Err(e);
                }
                log::warn!("Unexpected exception, tries={tries}, remaining init limit={}, connecting to {addr}: {e}", remaining.as_millis());
                last_err = e;
            }
        }
        std::thread::sleep(delay);
    }
    Err(last_err)
}

/// `registerWithLeader`: FOLLOWERINFO / OBSERVERINFO with our accepted epoch; the
/// leader's LEADERINFO names the new epoch, which we accept (durably) before ACKEPOCH.
/// Returns the new epoch's first zxid.
pub fn register_with_leader(peer: &QuorumPeer, conn: &LeaderConnection, reader: &mut LeaderReader, pkt_type: i32) -> io::Result<i64> {
    let last_logged_zxid = peer.last_logged_zxid();
    let li = LearnerInfo { serverid: peer.myid, protocol_version: qp::ZAB_PROTOCOL_VERSION, config_version: peer.quorum_verifier().version() };
    let mut out = OutputArchive::new();
    li.serialize(&mut out);
    conn.write_packet(&encode_parts(pkt_type, make_zxid(peer.epochs.accepted(), 0), Some(out.as_slice())), true)?;
    let p = reader.read_packet()?;
    let new_epoch = epoch_from_zxid(p.zxid);
    if p.r#type == qp::LEADERINFO {
        let accepted = peer.epochs.accepted();
        let epoch_bytes: i32 = if new_epoch > accepted {
            let cur = peer.epochs.current() as i32;
            peer.epochs.set_accepted(new_epoch)?;
            cur
        } else if new_epoch == accepted {
            // We already took part in this epoch's discovery: nothing new to report.
            -1
        } else {
            return Err(io::Error::other(format!("Leaders epoch, {new_epoch} is less than accepted epoch, {accepted}")));
        };
        conn.write_packet(&encode_parts(qp::ACKEPOCH, last_logged_zxid, Some(&epoch_bytes.to_be_bytes())), true)?;
        Ok(make_zxid(new_epoch, 0))
    } else {
        if new_epoch > peer.epochs.accepted() {
            peer.epochs.set_accepted(new_epoch)?;
        }
        if p.r#type != qp::NEWLEADER {
            log::error!("First packet should have been NEWLEADER");
            return Err(io::Error::other("First packet should have been NEWLEADER"));
        }
        Ok(p.zxid)
    }
}

/// The end of a follower's or observer's time with a leader (`Learner.closeSocket` and the
/// line upstream logs as it leaves `followLeader` / `observeLeader`).
pub fn close_leader_connection(conn: Option<&LeaderConnection>, connected_at: Option<Instant>, completed_sync: bool) {
    if let Some(c) = conn {
        c.close();
        if let Some(t) = connected_at {
            log::info!(
                "Disconnected from leader (with address: {}). Was connected for {}ms. Sync state: {completed_sync}",
                c.leader_addr,
                t.elapsed().as_millis()
            );
        }
    }
}

/// A proposal received during the sync.
pub struct PacketInFlight {
    pub request: Request,
}

impl PacketInFlight {
    fn zxid(&self) -> i64 {
        self.request.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1)
    }
}

/// Turns a PROPOSAL's (or INFORM's) data into a request carrying header, txn, digest
/// and the bytes themselves.
/// The leader's answer to REVALIDATE: session id and whether the session is valid.
pub fn parse_revalidate_answer(d: &[u8]) -> Option<(i64, bool)> {
    let id = d.get(0..8).map(BigEndian::read_i64)?;
    Some((id, *d.get(8)? != 0))
}

/// INFORM / PROPOSAL data is a txn entry; INFORMANDACTIVATE puts the suggested leader's
/// sid (a long) in front of it.
pub fn inform_txn_bytes(packet_type: i32, data: &[u8]) -> &[u8] {
    if packet_type == qp::INFORMANDACTIVATE {
        data.get(8..).unwrap_or(&[])
    } else {
        data
    }
}

/// The configuration a reconfig txn carries (its setData of `/zookeeper/config`).
pub fn reconfig_qv(r: &Request, multi_address_enabled: bool) -> Option<crate::server::quorum::flexible::QuorumVerifier> {
    if r.hdr.as_ref()?.r#type != crate::proto::op_code::RECONFIG {
        return None;
    }
    let Some(crate::server::txn_record::TxnRecord::SetData(t)) = &r.txn else { return None };
    let text = String::from_utf8_lossy(t.data.as_deref().unwrap_or(&[])).into_owned();
    match crate::server::quorum::flexible::QuorumVerifier::from_config_string(&text, multi_address_enabled) {
        Ok(qv) => Some(qv),
        Err(e) => {
            log::error!("Bad configuration in reconfig txn 0x{:x}: {}", r.zxid, e.msg);
            None
        }
    }
}

/// The designated leader a COMMITANDACTIVATE / INFORMANDACTIVATE names first.
pub fn suggested_leader(data: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(data.get(..8)?.try_into().ok()?))
}

/// What a learner does when the configuration changes under it so much that its role
/// or leader changed: it leaves the leader ("changes proposed in reconfig").
pub fn reconfig_error() -> io::Error {
    io::Error::other("changes proposed in reconfig")
}

pub fn request_from_txn_bytes(data: &[u8]) -> io::Result<Request> {
    let (hdr, txn, digest) = deserialize_txn_entry(data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut r = Request::new(None, hdr.client_id, hdr.cxid, hdr.r#type, Vec::new(), Vec::new());
    r.zxid = hdr.zxid;
    r.hdr = Some(hdr);
    r.txn = txn;
    r.digest = digest;
    r.txn_bytes = Some(Arc::from(data.to_vec()));
    Ok(r)
}

/// `enforceContinuousProposal` (ZOOKEEPER-4785): within an epoch the proposals of a sync
/// must follow each other; a hole means lost data, and the sync is refused.
pub fn enforce_continuous_proposal(last_queued: i64, zxid: i64) -> io::Result<i64> {
    // Java's long arithmetic wraps: a hostile zxid of Long.MAX_VALUE must not panic.
    let expected = last_queued.wrapping_add(1);
    if last_queued == 0 {
        log::info!("DIFF sync got first proposal 0x{zxid:x}");
    } else if zxid != expected {
        if epoch_from_zxid(zxid) <= epoch_from_zxid(last_queued) {
            let msg = format!("DIFF sync got proposal 0x{zxid:x}, last queued 0x{last_queued:x}, expected 0x{expected:x}");
            log::error!("{msg}");
            return Err(io::Error::other(msg));
        }
        log::warn!("DIFF sync got new epoch proposal 0x{zxid:x}, last queued 0x{last_queued:x}, expected 0x{expected:x}");
    }
    Ok(zxid)
}

/// What a sync leaves for the role to finish once its request processors run.
pub struct SyncOutcome {
    /// Proposals received after NEWLEADER and not yet logged, in order.
    pub not_logged: VecDeque<Request>,
    /// Zxids committed after NEWLEADER, in order.
    pub committed: VecDeque<i64>,
    /// The txn log writer the SyncRequestProcessor continues with.
    pub txn_log: FileTxnLog,
    pub new_epoch: i64,
}

/// `syncWithLeader`, up to and including UPTODATE. `zk` is the role's server, not yet
/// running; `apply` applies a committed txn straight to the database (no client waits).
/// Observers pass `observer = true` (INFORMs instead of PROPOSAL + COMMIT).
pub fn sync_with_leader(
    peer: &QuorumPeer,
    zk: &Arc<ZooKeeperServer>,
    conn: &LeaderConnection,
    reader: &mut LeaderReader,
    new_leader_zxid: i64,
    observer: bool,
    apply: &mut dyn FnMut(Request),
) -> io::Result<SyncOutcome> {
    let new_epoch = epoch_from_zxid(new_leader_zxid);
    let db = zk.db.clone();
    let mut snapshot_needed = true;
    let mut sync_snapshot = false;
    // After a TRUNC the leader's proposals continue the truncated history.
    let mut last_queued = 0i64;
    let first = reader.read_packet()?;
    match first.r#type {
        qp::DIFF => {
            log::info!("Getting a diff from the leader 0x{:x}", first.zxid);
            peer.set_sync_mode(SyncMode::Diff);
            // Without any snapshot on disk a restart could not rebuild this state from the
            // logs alone: write one (upstream forces it when upgrading from old versions).
            if db.txn_snap_log.snap().find_most_recent_snapshot().ok().flatten().is_none() {
                log::info!("Forcing a snapshot write as part of upgrading from an older Zookeeper. This should only happen while upgrading.");
                sync_snapshot = true;
            } else {
                snapshot_needed = false;
            }
        }
        qp::SNAP => {
            peer.set_sync_mode(SyncMode::Snap);
            log::info!("Getting a snapshot from leader 0x{:x}", first.zxid);
            db.clear();
            let mut stream = SnapStream::for_stream(&mut *reader);
            let (tree, sessions) = deserialize_snapshot_body(&mut stream, 0)?;
            let signature = stream.decode(|a| a.read_string()).map_err(io::Error::from)?;
            let (_, rest) = stream.into_remainder();
            reader.unread(rest);
            if signature != "BenWasHere" {
                log::error!("Missing signature. Got {signature}");
                return Err(io::Error::other("Missing signature"));
            }
            *db.tree.write() = tree;
            *db.sessions.lock() = sessions;
            db.set_last_processed_zxid(first.zxid);
            sync_snapshot = true;
            crate::server::fault_points::hit("learner.snap.loaded");
        }
        qp::TRUNC => {
            peer.set_sync_mode(SyncMode::Trunc);
            log::warn!("Truncating log to get in sync with the leader 0x{:x}", first.zxid);
            let truncated = match db.truncate_log(first.zxid) {
                Ok(t) => t,
                Err(e) => {
                    log::error!("Not able to truncate the log 0x{:x}: {e}", first.zxid);
                    false
                }
            };
            if !truncated {
                log::error!("Not able to truncate the log 0x{:x}", first.zxid);
                std::process::exit(QUORUM_PACKET_ERROR);
            }
            db.set_last_processed_zxid(first.zxid);
            last_queued = first.zxid;
            crate::server::fault_points::hit("learner.trunc.done");
        }
        _ => {
            log::error!("Got unexpected packet from leader: {}, exiting ... ", packet_to_string(&first));
            std::process::exit(QUORUM_PACKET_ERROR);
        }
    }
    init_config_node(peer, zk);
    peer.set_last_logged_zxid(db.last_processed_zxid());

    let mut txn_log = db.txn_snap_log.txn_log();
    let mut is_pre_zab1_0 = true;
    let mut write_to_txn_log = !snapshot_needed;
    let mut committed: VecDeque<i64> = VecDeque::new();
    let mut not_logged: VecDeque<PacketInFlight> = VecDeque::new();
    let multi = peer.is_multi_address_enabled();
    let mut new_leader_qv: Option<crate::server::quorum::flexible::QuorumVerifier> = None;
    while peer.is_running() {
        let p = reader.read_packet()?;
        match p.r#type {
            qp::PROPOSAL => {
                let r = request_from_txn_bytes(p.data.as_deref().unwrap_or(&[]))?;
                let pif = PacketInFlight { request: r };
                last_queued = enforce_continuous_proposal(last_queued, pif.zxid())?;
                if let Some(qv) = reconfig_qv(&pif.request, multi) {
                    peer.set_last_seen_quorum_verifier(qv, true);
                }
                not_logged.push_back(pif);
            }
            qp::COMMIT | qp::COMMITANDACTIVATE => {
                if p.r#type == qp::COMMITANDACTIVATE {
                    if let Some(pif) = not_logged.front().filter(|f| f.zxid() == p.zxid) {
                        if let (Some(qv), Some(leader)) = (reconfig_qv(&pif.request, multi), suggested_leader(p.data.as_deref().unwrap_or(&[]))) {
                            let major = peer.process_reconfig(qv, Some((leader, p.zxid)), true);
                            peer.init_config_in_zk_database();
                            if major {
                                return Err(reconfig_error());
                            }
                        }
                    }
                }
                if !write_to_txn_log {
                    match not_logged.front() {
                        Some(pif) if pif.zxid() == p.zxid => {
                            if let Some(pif) = not_logged.pop_front() {
                                apply(pif.request);
                            }
                        }
                        Some(pif) => log::warn!("Committing 0x{:x}, but next proposal is 0x{:x}", p.zxid, pif.zxid()),
                        None => log::warn!("Committing 0x{:x}, but got no proposal", p.zxid),
                    }
                } else {
                    committed.push_back(p.zxid);
                }
            }
            qp::INFORM | qp::INFORMANDACTIVATE => {
                let r = request_from_txn_bytes(inform_txn_bytes(p.r#type, p.data.as_deref().unwrap_or(&[])))?;
                let pif = PacketInFlight { request: r };
                if p.r#type == qp::INFORM {
                    last_queued = enforce_continuous_proposal(last_queued, pif.zxid())?;
                } else if let (Some(qv), Some(leader)) = (reconfig_qv(&pif.request, multi), suggested_leader(p.data.as_deref().unwrap_or(&[]))) {
                    let major = peer.process_reconfig(qv, Some((leader, p.zxid)), true);
                    peer.init_config_in_zk_database();
                    if major {
                        return Err(reconfig_error());
                    }
                }
                if !write_to_txn_log {
                    apply(pif.request);
                } else {
                    committed.push_back(p.zxid);
                    not_logged.push_back(pif);
                }
            }
            qp::UPTODATE => {
                log::info!("Learner received UPTODATE message");
                if let Some(qv) = new_leader_qv.take() {
                    let major = peer.process_reconfig(qv, None, true);
                    peer.init_config_in_zk_database();
                    if major {
                        return Err(reconfig_error());
                    }
                }
                if !is_pre_zab1_0 {
                    log::info!("{} proposals to log and {} commits received after NEWLEADER", not_logged.len(), committed.len());
                }
                crate::server::fault_points::hit("learner.uptodate");
                if is_pre_zab1_0 {
                    zk.take_snapshot(sync_snapshot).map_err(|e| io::Error::other(format!("snapshot failed: {e}")))?;
                    peer.epochs.set_current(new_epoch)?;
                }
                break;
            }
            qp::NEWLEADER => {
                log::info!("Learner received NEWLEADER message");
                if let Some(d) = p.data.as_deref().filter(|d| d.len() > 1) {
                    match crate::server::quorum::flexible::QuorumVerifier::from_config_string(&String::from_utf8_lossy(d), multi) {
                        Ok(qv) => {
                            peer.set_last_seen_quorum_verifier(qv.clone(), true);
                            new_leader_qv = Some(qv);
                        }
                        Err(e) => log::error!("Bad configuration in NEWLEADER: {}", e.msg),
                    }
                }
                crate::server::fault_points::hit("learner.newleader.beforePersist");
                // What we persist now may belong to the new epoch before currentEpoch
                // does: leave a note so that a crash in between can be told from damage.
                peer.epochs.begin_update(new_epoch)?;
                if snapshot_needed {
                    // Always durable: a learner that acks NEWLEADER must survive a crash
                    // with what it acked (ZOOKEEPER-3642).
                    zk.take_snapshot(true).map_err(|e| io::Error::other(format!("snapshot failed: {e}")))?;
                }
                write_to_txn_log = true;
                is_pre_zab1_0 = false;
                if !observer && !committed.is_empty() {
                    let start = Instant::now();
                    while let Some(zxid) = committed.pop_front() {
                        match not_logged.front() {
                            None => {
                                log::warn!("Committing 0x{zxid:x}, but got no proposal");
                                continue;
                            }
                            Some(pif) if pif.zxid() != zxid => {
                                log::warn!("Committing 0x{zxid:x}, but next proposal is 0x{:x}", pif.zxid());
                                continue;
                            }
                            Some(_) => {}
                        }
                        let Some(pif) = not_logged.pop_front() else { continue };
                        append_to_log(&mut txn_log, &pif.request)?;
                        apply(pif.request);
                    }
                    txn_log.commit()?;
                    log::info!(
                        "It took {}ms to persist and commit txns in packetsCommitted. {} outstanding txns left in packetsNotLogged",
                        start.elapsed().as_millis(),
                        not_logged.len()
                    );
                }
                crate::server::fault_points::hit("learner.newleader.afterPersist");
                peer.epochs.set_current(new_epoch)?;
                peer.epochs.end_update();
                log::info!("Set the current epoch to {new_epoch}");
                crate::server::fault_points::hit("learner.newleader.afterEpoch");
                conn.set_read_timeout((i64::from(peer.tick_time) * i64::from(peer.sync_limit)).max(1) as u64);
                peer.set_sync_mode(SyncMode::None);
                conn.write_packet(&encode_parts(qp::ACK, new_leader_zxid, None), true)?;
                log::info!("Sent NEWLEADER ack to leader with zxid {new_leader_zxid:x}");
                crate::server::fault_points::hit("learner.newleader.afterAck");
            }
            other => log::warn!("Unexpected packet type {} during sync", qp::type_name(other)),
        }
    }
    if !peer.is_running() {
        return Err(io::Error::other("peer is shutting down"));
    }
    conn.write_packet(&encode_parts(qp::ACK, make_zxid(new_epoch, 0), None), true)?;
    peer.set_last_logged_zxid(db.last_processed_zxid());
    Ok(SyncOutcome { not_logged: not_logged.into_iter().map(|p| p.request).collect(), committed, txn_log, new_epoch })
}

fn append_to_log(txn_log: &mut FileTxnLog, r: &Request) -> io::Result<()> {
    let (Some(hdr), Some(bytes)) = (&r.hdr, &r.txn_bytes) else { return Ok(()) };
    txn_log.append_entry(hdr.zxid, hdr.r#type, bytes).map(|_| ())
}

/// What a learner's database holds once its role has ended (`zk.shutdown(fullyShutDown)`
/// with `fullyShutDown` = "still in a SNAP sync"): a SNAP sync cut short before NEWLEADER
/// left the leader's snapshot in memory only, so the database is reloaded from disk
/// (ZOOKEEPER-3642: voting with, and later diffing from, a zxid the disk does not have
/// loses what the snapshot brought); otherwise the txns logged but never committed are
/// applied (`fastForwardDataBase`).
pub fn settle_database_after_learning(peer: &QuorumPeer, db: &crate::server::zk_database::ZKDatabase) {
    if peer.sync_mode() == SyncMode::Snap {
        log::warn!("Left the leader during a SNAP sync: reloading the database from disk");
        db.clear();
        if let Err(e) = db.load_database() {
            log::error!("Unable to reload the database from disk: {e}");
            db.clear();
        }
        peer.set_sync_mode(SyncMode::None);
    } else {
        crate::server::zk_database::fast_forward(db);
    }
}

/// `initConfigInZKDatabase`: `/zookeeper/config` holds the membership text.
pub fn init_config_node(peer: &QuorumPeer, zk: &ZooKeeperServer) {
    init_config_node_on(peer, &zk.db);
}

pub fn init_config_node_on(peer: &QuorumPeer, db: &crate::server::zk_database::ZKDatabase) {
    let qv = peer.quorum_verifier();
    db.tree.write().set_config_node(qv.to_string().as_bytes(), qv.version());
}

/// `ping`: answer the leader's PING with the sessions our clients used since the last.
pub fn ping(conn: &LeaderConnection, zk: &ZooKeeperServer, p: &QuorumPacket) -> io::Result<()> {
    let mut data = Vec::new();
    if let Some(t) = zk.session_tracker().learner() {
        for (id, to) in t.take_touch_snapshot() {
            data.extend_from_slice(&id.to_be_bytes());
            data.extend_from_slice(&to.to_be_bytes());
        }
    }
    let reply = QuorumPacket { r#type: p.r#type, zxid: p.zxid, data: Some(data), authinfo: p.authinfo.clone() };
    conn.write_packet(&qp::encode(&reply), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_proposals() {
        assert_eq!(enforce_continuous_proposal(0, 0x1_0000_0005).unwrap(), 0x1_0000_0005);
        assert_eq!(enforce_continuous_proposal(0x1_0000_0005, 0x1_0000_0006).unwrap(), 0x1_0000_0006);
        assert!(enforce_continuous_proposal(0x1_0000_0005, 0x1_0000_0008).is_err(), "a hole within an epoch");
        assert_eq!(enforce_continuous_proposal(0x1_0000_0005, 0x2_0000_0001).unwrap(), 0x2_0000_0001, "a new epoch may start anywhere");
    }
}
