//! `LearnerHandler` (thread `LearnerHandler-<addr>`): the leader's side of one learner
//! connection — discovery (FOLLOWERINFO/OBSERVERINFO, LEADERINFO, ACKEPOCH), the sync
//! decided by [`sync_plan`], NEWLEADER and its ACK, UPTODATE, then the learner's
//! packets (ACK, PING, REVALIDATE, REQUEST). Its `Sender-<addr>` thread writes the
//! queued packets, flushing whenever the queue runs dry.

pub mod sync_plan;

use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use crate::common::tls_stream::TlsStream;
use crate::jute::OutputArchive;
use crate::proto::op_code;
use crate::proto::quorum::QuorumPacket;
use crate::server::persistence::file_snap::serialize_snapshot_body;
use crate::server::quorum::quorum_x509_util;
use crate::server::quorum::leader::{Leader, StateSummary};
use crate::server::quorum::quorum_packet::{self as qp, encode_parts, packet_to_string, read_packet, PacketReader};
use crate::server::quorum::quorum_server::LearnerType;
use crate::server::request::Request;
use crate::server::util::zxid_utils::{epoch_from_zxid, make_zxid};

use sync_plan::{plan_sync, SyncInputs, SyncItem};

/// A packet waiting for the Sender thread.
enum Queued {
    Packet { kind: i32, zxid: i64, bytes: Arc<[u8]>, at: Instant },
    /// `proposalOfDeath`: the Sender stops.
    Death,
}

/// `SyncLimitCheck`: the oldest proposal sent to the learner and not yet acked must
/// not be older than syncLimit ticks.
#[derive(Default)]
struct SyncLimitCheck {
    started: bool,
    /// (zxid, time sent) of the oldest unacked proposal, and of the newest one.
    oldest: Option<(i64, Instant)>,
    newest: Option<(i64, Instant)>,
}

impl SyncLimitCheck {
    fn update_proposal(&mut self, zxid: i64, t: Instant) {
        if !self.started {
            return;
        }
        if self.oldest.is_none() {
            self.oldest = Some((zxid, t));
        } else {
            self.newest = Some((zxid, t));
        }
    }

    fn update_ack(&mut self, zxid: i64) {
        if self.oldest.map(|o| o.0) == Some(zxid) {
            self.oldest = self.newest.take();
        } else if let Some((n, _)) = self.newest.filter(|n| n.0 == zxid) {
            log::warn!(
                "ACK for 0x{n:x} received before ACK for 0x{:x}",
                self.oldest.map(|o| o.0).unwrap_or(0)
            );
            self.newest = None;
        }
    }

    fn check(&self, now: Instant, limit: Duration) -> bool {
        match self.oldest {
            Some((_, t)) => now.duration_since(t) < limit,
            None => true,
        }
    }
}

pub struct LearnerHandler {
    sid: AtomicI64,
    version: AtomicI32,
    learner_type: Mutex<LearnerType>,
    /// Owner of the sessions this learner's clients use (SessionTracker owners).
    pub owner: u64,
    pub remote: SocketAddr,
    sock: TcpStream,
    queue: Sender<Queued>,
    queue_rx: Mutex<Option<Receiver<Queued>>>,
    sending_started: AtomicBool,
    tick_of_next_ack_deadline: AtomicI64,
    running: AtomicBool,
    sync_limit: Mutex<SyncLimitCheck>,
    leader: Weak<Leader>,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub requests_received: AtomicU64,
    /// When the learner connected (ms since the epoch).
    established: i64,
    /// Bytes of the packets waiting in the queue (`queuedPacketsSize`).
    queued_bytes: AtomicI64,
    /// The zxid of the last packet sent that carried one, -1 before.
    last_zxid: AtomicI64,
}

impl LearnerHandler {
    /// Starts the handler thread for an accepted learner socket.
    pub fn start(leader: &Arc<Leader>, sock: TcpStream) -> io::Result<()> {
        let remote = sock.peer_addr()?;
        let (tx, rx) = unbounded();
        let h = Arc::new(LearnerHandler {
            sid: AtomicI64::new(-1),
            version: AtomicI32::new(0x1),
            learner_type: Mutex::new(LearnerType::Participant),
            owner: leader.next_owner_id(),
            remote,
            sock: sock.try_clone()?,
            queue: tx,
            queue_rx: Mutex::new(Some(rx)),
            sending_started: AtomicBool::new(false),
            tick_of_next_ack_deadline: AtomicI64::new(0),
            running: AtomicBool::new(true),
            sync_limit: Mutex::new(SyncLimitCheck::default()),
            leader: Arc::downgrade(leader),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            requests_received: AtomicU64::new(0),
            established: crate::common::time::current_wall_time(),
            queued_bytes: AtomicI64::new(0),
            last_zxid: AtomicI64::new(-1),
        });
        let h2 = h.clone();
        let l = leader.clone();
        thread::Builder::new().name(format!("LearnerHandler-{}", fmt_remote(&remote))).spawn(move || {
            h2.run(&l, sock);
        })?;
        Ok(())
    }

    pub fn sid(&self) -> i64 {
        self.sid.load(Ordering::Acquire)
    }

    pub fn version(&self) -> i32 {
        self.version.load(Ordering::Acquire)
    }

    pub fn learner_type(&self) -> LearnerType {
        *self.learner_type.lock()
    }

    pub fn is_alive(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// `synced`: alive, and heard from within its ack deadline.
    pub fn synced(&self, tick: i64) -> bool {
        self.is_alive() && tick <= self.tick_of_next_ack_deadline.load(Ordering::Acquire)
    }

    pub fn queue_packet(&self, kind: i32, zxid: i64, bytes: Arc<[u8]>) {
        self.queued_bytes.fetch_add(bytes.len() as i64, Ordering::Relaxed);
        let _ = self.queue.send(Queued::Packet { kind, zxid, bytes, at: Instant::now() });
    }

    /// `getLearnerHandlerInfo` (the AdminServer's `observers`).
    pub fn info(&self) -> crate::server::admin::json_outputter::Json {
        let mut m = crate::server::admin::json_outputter::JsonObject::new();
        m.put("remote_socket_address", fmt_remote(&self.remote));
        m.put("sid", self.sid());
        m.put("established", self.established);
        m.put("queued_packets", self.queued_count());
        m.put("queued_packets_size", self.queued_bytes.load(Ordering::Relaxed));
        m.put("packets_received", self.packets_received.load(Ordering::Relaxed));
        m.put("packets_sent", self.packets_sent.load(Ordering::Relaxed));
        m.put("requests", self.requests_received.load(Ordering::Relaxed));
        m.put("last_zxid", self.last_zxid.load(Ordering::Relaxed));
        m.into_json()
    }

    /// `resetObserverConnectionStats`.
    pub fn reset_connection_stats(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.requests_received.store(0, Ordering::Relaxed);
        self.last_zxid.store(-1, Ordering::Relaxed);
    }

    pub fn queued_count(&self) -> usize {
        self.queue.len()
    }

    /// `ping`: with the sender running, a PING carrying the last proposed zxid — unless
    /// the learner has not acked a proposal within syncLimit, which drops it.
    pub fn ping(&self, last_proposed: i64, sync_timeout_ms: u64) {
        if !self.sending_started.load(Ordering::Acquire) {
            return;
        }
        let ok = self.sync_limit.lock().check(Instant::now(), Duration::from_millis(sync_timeout_ms));
        if ok {
            self.queue_packet(qp::PING, last_proposed, encode_parts(qp::PING, last_proposed, None));
        } else {
            log::warn!("Closing connection to peer due to transaction timeout.");
            self.shutdown();
        }
    }

    /// `shutdown`: stop the Sender, close the socket, leave the leader's lists.
    pub fn shutdown(&self) {
        let _ = self.queue.send(Queued::Death);
        let _ = self.sock.shutdown(Shutdown::Both);
        self.running.store(false, Ordering::Release);
        if let Some(l) = self.leader.upgrade() {
            l.remove_learner_handler(self);
        }
    }

    fn run(self: &Arc<Self>, leader: &Arc<Leader>, sock: TcpStream) {
        leader.add_learner_handler(self.clone());
        self.tick_of_next_ack_deadline.store(leader.tick_of_initial_ack_deadline(), Ordering::Release);
        let result = self.run_inner(leader, sock);
        if let Err(e) = result {
            log::error!("Unexpected exception in LearnerHandler: {e}");
        }
        log::warn!("******* GOODBYE {} ********", fmt_remote(&self.remote));
        self.shutdown();
    }

    fn run_inner(self: &Arc<Self>, leader: &Arc<Leader>, sock: TcpStream) -> io::Result<()> {
        let _ = sock.set_read_timeout(Some(Duration::from_millis((i64::from(leader.peer.init_limit) * i64::from(leader.peer.tick_time)).max(1) as u64)));
        // The quorum port's UnifiedServerSocket: TLS detection and handshake here, in
        // the handler's thread, not the acceptor's.
        let sock = quorum_x509_util::accept(leader.peer.x509.as_deref(), sock)?;
        let mut ia = PacketReader::new(BufReader::new(sock.clone()));
        if let Some(server) = &leader.peer.quorum_auth.server {
            if let Err(e) = server.authenticate(&sock, &mut ia) {
                log::error!("Server failed to authenticate quorum learner, addr: {}, closing connection: {e}", fmt_remote(&self.remote));
                return Ok(());
            }
        }
        let mut oa = BufWriter::with_capacity(64 * 1024, sock.clone());
        let first = read_packet(&mut ia)?;
        self.on_packet();
        if first.r#type != qp::FOLLOWERINFO && first.r#type != qp::OBSERVERINFO {
            log::error!("First packet {} is not FOLLOWERINFO or OBSERVERINFO!", packet_to_string(&first));
            return Ok(());
        }
        match &first.data {
            Some(d) => {
                let li = parse_learner_info(d);
                if let Some(sid) = li.sid {
                    self.sid.store(sid, Ordering::Release);
                }
                if let Some(v) = li.protocol_version {
                    self.version.store(v, Ordering::Release);
                }
                if let Some(config_version) = li.config_version {
                    if config_version > leader.peer.quorum_verifier().version() {
                        return Err(io::Error::other("Follower is ahead of the leader (has a later activated configuration)"));
                    }
                }
            }
            None => self.sid.store(leader.get_and_decrement_follower_counter(), Ordering::Release),
        }
        let sid = self.sid();
        let info = leader.peer_info(sid);
        if info.is_empty() {
            log::info!("Follower sid: {sid} not in the current config {:x}", leader.peer.quorum_verifier().version());
        } else {
            log::info!("Follower sid: {sid} : info : {info}");
        }
        if first.r#type == qp::OBSERVERINFO {
            *self.learner_type.lock() = LearnerType::Observer;
        }
        let last_accepted_epoch = epoch_from_zxid(first.zxid);
        let new_epoch = leader.get_epoch_to_propose(sid, last_accepted_epoch).map_err(|t| io::Error::new(io::ErrorKind::TimedOut, t.0))?;
        let new_leader_zxid = make_zxid(new_epoch, 0);
        let ss = if self.version() < qp::ZAB_PROTOCOL_VERSION {
            let ss = StateSummary { current_epoch: epoch_from_zxid(first.zxid), last_zxid: first.zxid };
            leader.wait_for_epoch_ack(sid, ss).map_err(|t| io::Error::new(io::ErrorKind::TimedOut, t.0))?;
            ss
        } else {
            let ver = qp::ZAB_PROTOCOL_VERSION.to_be_bytes().to_vec();
            oa.write_all(&encode_parts(qp::LEADERINFO, new_leader_zxid, Some(&ver)))?;
            oa.flush()?;
            let ack = read_packet(&mut ia)?;
            self.on_packet();
            if ack.r#type != qp::ACKEPOCH {
                log::error!("{} is not ACKEPOCH", packet_to_string(&ack));
                return Ok(());
            }
            let epoch = parse_ack_epoch(ack.data.as_deref());
            let ss = StateSummary { current_epoch: i64::from(epoch), last_zxid: ack.zxid };
            leader.wait_for_epoch_ack(sid, ss).map_err(|t| io::Error::new(io::ErrorKind::Other, t.0))?;
            ss
        };
        let peer_last_zxid = ss.last_zxid;
        let (need_snap, snap_zxid) = self.sync_follower(leader, peer_last_zxid);
        if need_snap {
            crate::server::fault_points::hit("leader.snap.beforeSend");
            let db = &leader.zk.db;
            let zxid_to_send = db.last_processed_zxid();
            oa.write_all(&encode_parts(qp::SNAP, zxid_to_send, None))?;
            oa.flush()?;
            log::info!(
                "Sending snapshot last zxid of peer is 0x{peer_last_zxid:x}, zxid of leader is 0x{snap_zxid:x}, send zxid of db as 0x{zxid_to_send:x}, 0 concurrent snapshot sync, snapshot sync was {} from throttle",
                if self.learner_type() == LearnerType::Observer { "not exempt" } else { "exempt" }
            );
            let body = {
                let sessions = db.sessions.lock().clone();
                let tree = db.tree.read();
                let mut out = OutputArchive::with_buffer(Vec::with_capacity(1 << 20));
                serialize_snapshot_body(&tree, &sessions, &mut out);
                out.write_string("BenWasHere");
                out.into_inner()
            };
            oa.write_all(&body)?;
            oa.flush()?;
        }
        // Forwarding has started: proposals made from here on reach the learner before NEWLEADER.
        crate::server::fault_points::hit("leader.newleader.beforeQueue");
        log::debug!("Sending NEWLEADER message to {sid}");
        if self.version() < qp::ZAB_PROTOCOL_VERSION {
            oa.write_all(&encode_parts(qp::NEWLEADER, new_leader_zxid, None))?;
            oa.flush()?;
        } else {
            let qv_bytes = leader.peer.last_seen_quorum_verifier().map(|q| q.to_string()).unwrap_or_else(|| leader.peer.quorum_verifier().to_string());
            self.queue_packet(qp::NEWLEADER, new_leader_zxid, encode_parts(qp::NEWLEADER, new_leader_zxid, Some(qv_bytes.as_bytes())));
        }
        self.start_sending_packets(oa)?;
        let ack = read_packet(&mut ia)?;
        self.on_packet();
        if ack.r#type != qp::ACK {
            log::error!("Next packet was supposed to be an ACK, but received packet: {}", packet_to_string(&ack));
            return Ok(());
        }
        log::debug!("Received NEWLEADER-ACK message from {sid}");
        crate::server::fault_points::hit("leader.newleaderAck.received");
        leader.wait_for_new_leader_ack(sid, ack.zxid).map_err(|t| io::Error::new(io::ErrorKind::TimedOut, t.0))?;
        self.sync_limit.lock().started = true;
        let _ = sock.set_read_timeout(Some(Duration::from_millis(leader.sync_timeout_ms())));
        leader.wait_for_startup();
        log::debug!("Sending UPTODATE message to {sid}");
        crate::server::fault_points::hit("leader.uptodate.beforeSend");
        self.queue_packet(qp::UPTODATE, -1, encode_parts(qp::UPTODATE, -1, None));
        loop {
            let p = read_packet(&mut ia)?;
            self.on_packet();
            self.tick_of_next_ack_deadline.store(leader.tick_of_next_ack_deadline(), Ordering::Release);
            self.handle_packet(leader, p)?;
        }
    }

    fn on_packet(&self) {
        self.packets_received.fetch_add(1, Ordering::Relaxed);
    }

    fn handle_packet(self: &Arc<Self>, leader: &Arc<Leader>, p: QuorumPacket) -> io::Result<()> {
        match p.r#type {
            qp::ACK => {
                if self.learner_type() == LearnerType::Observer {
                    log::debug!("Received ACK from Observer {}", self.sid());
                }
                self.sync_limit.lock().update_ack(p.zxid);
                leader.process_ack(self.sid(), p.zxid);
            }
            qp::PING => {
                // Touch every session the learner's clients used.
                for (sess, to) in ping_sessions(p.data.as_deref().unwrap_or(&[])) {
                    leader.zk.session_tracker().touch_session(sess, to);
                }
            }
            qp::REVALIDATE => self.revalidate(leader, &p),
            qp::REQUEST => {
                let (session_id, cxid, t, body) = parse_request_packet(p.data.as_deref().unwrap_or(&[]))?;
                let mut si = Request::new(None, session_id, cxid, t, body.to_vec(), p.authinfo.clone());
                si.owner = Some(self.owner);
                leader.zk.submit_learner_request(si);
                self.requests_received.fetch_add(1, Ordering::Relaxed);
            }
            _ => log::warn!("unexpected quorum packet, type: {}", packet_to_string(&p)),
        }
        Ok(())
    }

    /// `revalidateSession`: is a reconnecting client's session alive? If so it now
    /// belongs to this learner.
    fn revalidate(&self, leader: &Arc<Leader>, p: &QuorumPacket) {
        let Some((session_id, timeout)) = parse_revalidate(p.data.as_deref().unwrap_or(&[])) else {
            log::warn!("Malformed REVALIDATE from {}", self.sid());
            return;
        };
        let tracker = leader.zk.session_tracker();
        // `checkIfValidGlobalSession`: another server's local session cannot move here.
        let valid = (!leader.zk.config.local_sessions_enabled || tracker.is_global_session(session_id))
            && tracker.touch_session(session_id, timeout);
        if valid && tracker.set_owner(session_id, self.owner).is_err() {
            log::error!("Somehow session 0x{session_id:x} expired right after being renewed! (impossible)");
        }
        log::debug!("Session 0x{session_id:x} is valid: {valid}");
        let mut out = Vec::with_capacity(9);
        out.extend_from_slice(&session_id.to_be_bytes());
        out.push(u8::from(valid));
        self.queue_packet(qp::REVALIDATE, -1, encode_parts(qp::REVALIDATE, -1, Some(&out)));
    }

    /// `syncFollower`: decide and queue the sync, and start forwarding — all while the
    /// committed log cannot change. Returns (needSnap, the leader's last zxid).
    fn sync_follower(self: &Arc<Self>, leader: &Arc<Leader>, peer_last_zxid: i64) -> (bool, i64) {
        let db = leader.zk.db.clone();
        let force_snap = crate::system_properties::get_bool("zookeeper.forceSnapshotSync");
        let sid = self.sid();
        // Lock order: the tree, then the committed log. The commit path applies a txn
        // and adds it to the committed log while it holds the tree's write lock; taking
        // the tree (even to read) inside the committed log's lock deadlocks with it. Held
        // here, the tree also cannot move while the decision is made. Nothing below may
        // lock the tree again (a second read lock behind a waiting writer blocks).
        let tree = db.tree.read();
        let last_processed = tree.last_processed_zxid;
        let out = db.with_committed_log(|log| {
            let committed: Vec<_> = log.proposals.iter().cloned().collect();
            log::info!(
                "Synchronizing with Learner sid: {sid} maxCommittedLog=0x{:x} minCommittedLog=0x{:x} lastProcessedZxid=0x{last_processed:x} peerLastZxid=0x{peer_last_zxid:x}",
                log.max,
                log.min
            );
            let inputs = SyncInputs {
                peer_last_zxid,
                last_processed_zxid: last_processed,
                min_committed: log.min,
                max_committed: log.max,
                committed: &committed,
                force_snap,
                txn_log_sync_enabled: db.is_txn_log_sync_enabled(),
            };
            let plan = plan_sync(&inputs, |from| db.proposals_from_txn_log(from, db.calculate_txn_log_size_limit()));
            for n in &plan.notes {
                log::info!("{n} sid: {sid}");
            }
            for item in &plan.items {
                match item {
                    SyncItem::Diff(z) => self.queue_packet(qp::DIFF, *z, encode_parts(qp::DIFF, *z, None)),
                    SyncItem::Trunc(z) => self.queue_packet(qp::TRUNC, *z, encode_parts(qp::TRUNC, *z, None)),
                    SyncItem::Proposal(p) => self.queue_packet(qp::PROPOSAL, p.zxid, encode_parts(qp::PROPOSAL, p.zxid, Some(&p.data))),
                    SyncItem::Commit(z) => self.queue_packet(qp::COMMIT, *z, encode_parts(qp::COMMIT, *z, None)),
                }
            }
            log::debug!("Start forwarding 0x{:x} for peer sid: {sid}", plan.current_zxid);
            let leader_last_zxid = leader.start_forwarding(self, plan.current_zxid);
            (plan.need_snap, leader_last_zxid)
        });
        drop(tree);
        out
    }

    /// `startSendingPackets`: the `Sender-<addr>` thread owns the writer from now on.
    fn start_sending_packets(self: &Arc<Self>, oa: BufWriter<TlsStream>) -> io::Result<()> {
        let Some(rx) = self.queue_rx.lock().take() else {
            log::error!("Attempting to start sending thread after it already started");
            return Ok(());
        };
        let me = self.clone();
        thread::Builder::new().name(format!("Sender-{}", fmt_remote(&self.remote))).spawn(move || me.send_packets(rx, oa))?;
        self.sending_started.store(true, Ordering::Release);
        Ok(())
    }

    /// `sendPackets`: write queued packets, flushing when the queue runs dry.
    fn send_packets(self: Arc<Self>, rx: Receiver<Queued>, mut oa: BufWriter<TlsStream>) {
        while let Ok(q) = rx.recv() {
            let Queued::Packet { kind, zxid, bytes, at } = q else { break };
            self.queued_bytes.fetch_sub(bytes.len() as i64, Ordering::Relaxed);
            if zxid > 0 {
                self.last_zxid.store(zxid, Ordering::Relaxed);
            }
            crate::server::metrics::server_metrics::record_learner_queue(self.sid(), rx.len() as i64, at.elapsed().as_millis() as i64);
            if kind == qp::PROPOSAL {
                self.sync_limit.lock().update_proposal(zxid, Instant::now());
            }
            if oa.write_all(&bytes).is_err() {
                break;
            }
            self.packets_sent.fetch_add(1, Ordering::Relaxed);
            if rx.is_empty() && oa.flush().is_err() {
                break;
            }
        }
        let _ = oa.flush();
        if self.is_alive() {
            log::warn!("Unexpected exception at {}: send failed", fmt_remote(&self.remote));
            self.shutdown();
        }
    }
}

impl std::fmt::Debug for LearnerHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LearnerHandler {{ sid: {}, remote: {} }}", self.sid(), self.remote)
    }
}

fn fmt_remote(a: &SocketAddr) -> String {
    format!("/{a}")
}

/// The opcodes a learner forwards to the leader (FollowerRequestProcessor).
pub fn is_forwarded_write(t: i32) -> bool {
    op_code::is_quorum_write(t)
}

// ------------------------------------------------ what a learner's packets carry --

/// The fields of FOLLOWERINFO / OBSERVERINFO data (`LearnerInfo`: sid, protocol
/// version, config version), each present only when the learner sent enough bytes
/// (pre-3.4 learners send the sid alone), as `LearnerHandler.run` reads them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfoFields {
    pub sid: Option<i64>,
    pub protocol_version: Option<i32>,
    pub config_version: Option<i64>,
}

fn be_i64(d: &[u8], at: usize) -> Option<i64> {
    d.get(at..at.checked_add(8)?).map(BigEndian::read_i64)
}

fn be_i32(d: &[u8], at: usize) -> Option<i32> {
    d.get(at..at.checked_add(4)?).map(BigEndian::read_i32)
}

pub fn parse_learner_info(d: &[u8]) -> LearnerInfoFields {
    LearnerInfoFields { sid: be_i64(d, 0), protocol_version: be_i32(d, 8), config_version: be_i64(d, 12) }
}

/// ACKEPOCH data: the learner's current epoch (-1 when it sent none).
pub fn parse_ack_epoch(data: Option<&[u8]>) -> i32 {
    data.and_then(|d| be_i32(d, 0)).unwrap_or(-1)
}

/// A learner's PING data: (session id, timeout) pairs; a partial pair at the end is ignored.
pub fn ping_sessions(d: &[u8]) -> impl Iterator<Item = (i64, i32)> + '_ {
    d.chunks_exact(12).filter_map(|c| Some((be_i64(c, 0)?, be_i32(c, 8)?)))
}

/// A forwarded client request: session id, cxid, opcode and the request body.
pub fn parse_request_packet(d: &[u8]) -> io::Result<(i64, i32, i32, &[u8])> {
    match (be_i64(d, 0), be_i32(d, 8), be_i32(d, 12), d.get(16..)) {
        (Some(session_id), Some(cxid), Some(t), Some(body)) => Ok((session_id, cxid, t, body)),
        _ => Err(io::Error::new(io::ErrorKind::InvalidData, "REQUEST packet too short")),
    }
}

/// REVALIDATE from a learner: session id and timeout.
pub fn parse_revalidate(d: &[u8]) -> Option<(i64, i32)> {
    Some((be_i64(d, 0)?, be_i32(d, 8)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learner_payloads_parse_what_is_there_and_refuse_short_ones() {
        let mut li = 7i64.to_be_bytes().to_vec();
        assert_eq!(parse_learner_info(&li), LearnerInfoFields { sid: Some(7), protocol_version: None, config_version: None });
        li.extend_from_slice(&0x10000i32.to_be_bytes());
        li.extend_from_slice(&5i64.to_be_bytes());
        assert_eq!(parse_learner_info(&li), LearnerInfoFields { sid: Some(7), protocol_version: Some(0x10000), config_version: Some(5) });
        assert_eq!(parse_ack_epoch(None), -1);
        assert_eq!(parse_ack_epoch(Some(&[0, 0, 0])), -1);
        assert_eq!(parse_ack_epoch(Some(&3i32.to_be_bytes())), 3);
        let mut ping = li[..12].to_vec();
        ping.push(1);
        assert_eq!(ping_sessions(&ping).collect::<Vec<_>>(), vec![(7, 0x10000)], "a partial pair is ignored");
        assert!(parse_request_packet(&li[..15]).is_err());
        assert_eq!(parse_request_packet(&li).unwrap(), (7, 0x10000, 0, &[0, 0, 0, 5][..]));
        assert_eq!(parse_revalidate(&li[..11]), None);
        assert_eq!(parse_revalidate(&li[..12]), Some((7, 0x10000)));
    }

    #[test]
    fn sync_limit_tracks_the_oldest_unacked_proposal() {
        let mut c = SyncLimitCheck::default();
        let t0 = Instant::now();
        c.update_proposal(1, t0);
        assert!(c.oldest.is_none(), "not started: nothing tracked");
        c.started = true;
        c.update_proposal(1, t0);
        c.update_proposal(2, t0);
        c.update_proposal(3, t0);
        assert!(!c.check(t0 + Duration::from_secs(5), Duration::from_secs(2)));
        c.update_ack(1);
        assert_eq!(c.oldest.map(|o| o.0), Some(3), "after the oldest is acked, the newest is tracked");
        c.update_ack(3);
        assert!(c.oldest.is_none());
        // An ack of the newer one first only forgets the newer one.
        c.update_proposal(4, t0);
        c.update_proposal(5, t0);
        c.update_ack(5);
        assert_eq!(c.oldest.map(|o| o.0), Some(4));
        assert!(!c.check(t0 + Duration::from_secs(5), Duration::from_secs(2)), "4 is still unacked");
        c.update_ack(4);
        assert!(c.check(t0 + Duration::from_secs(5), Duration::from_secs(2)));
    }
}
