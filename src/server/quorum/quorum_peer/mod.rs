//! `QuorumPeer`: one replicated server. This struct is what upstream's other quorum
//! classes reach through `self`: identity, membership, the peer state and current vote,
//! and the epochs. The `QuorumPeer[myid=N](plain=…)(secure=…)` thread that runs the
//! LOOKING / FOLLOWING / LEADING / OBSERVING loop is in [`run`].
//!
//! Locks: each field group has its own small lock and none is held while another is
//! taken, except `status` → nothing. The election thread, the WorkerReceiver and the
//! 4lw commands only read.

pub mod dynamic_config;
pub mod epochs;
pub mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, RwLock};

use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;
use crate::server::quorum::quorum_server::{LearnerType, MultipleAddresses, QuorumServer};
use crate::server::quorum::vote::{ServerState, Vote};
use crate::system_properties;

/// `QuorumPeer.OBSERVER_ID`: the sid pre-3.5 observers announced.
pub const OBSERVER_ID: i64 = i64::MAX;

/// `QuorumPeer.ZabState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZabState {
    Election,
    Discovery,
    Synchronization,
    Broadcast,
}

impl ZabState {
    pub fn name(self) -> &'static str {
        match self {
            ZabState::Election => "election",
            ZabState::Discovery => "discovery",
            ZabState::Synchronization => "synchronization",
            ZabState::Broadcast => "broadcast",
        }
    }
}

/// `QuorumPeer.SyncMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    None,
    Diff,
    Snap,
    Trunc,
}

impl SyncMode {
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::None => "none",
            SyncMode::Diff => "diff",
            SyncMode::Snap => "snap",
            SyncMode::Trunc => "trunc",
        }
    }
}

#[derive(Debug, Clone)]
struct Status {
    state: ServerState,
    zab_state: ZabState,
    sync_mode: SyncMode,
    leader_id: i64,
    leader_address: Option<String>,
}

pub struct QuorumPeer {
    pub myid: i64,
    pub config: QuorumPeerConfig,
    pub tick_time: i32,
    pub init_limit: i32,
    pub sync_limit: i32,
    /// `<dataDir>/version-2`, where the epoch files live.
    pub snap_dir: PathBuf,
    qv: RwLock<Arc<QuorumVerifier>>,
    last_seen_qv: RwLock<Option<Arc<QuorumVerifier>>>,
    learner_type: Mutex<LearnerType>,
    status: Mutex<Status>,
    current_vote: Mutex<Vote>,
    pub epochs: epochs::Epochs,
    last_logged_zxid: AtomicI64,
    running: AtomicBool,
    /// `start_fle` / `end_fle`: elapsed-clock ms around the last election.
    pub start_fle: AtomicI64,
    pub end_fle: AtomicI64,
    pub election_time_taken: AtomicI64,
    /// The bound client port, for the thread name.
    pub client_address: Mutex<Option<SocketAddr>>,
    /// What the client port serves: the server of the current role once it serves.
    pub server_holder: Arc<crate::server::server_cnxn_factory::ServerHolder>,
    /// The leader while this peer leads (4lw, monitoring).
    leader: Mutex<Option<Arc<crate::server::quorum::leader::Leader>>>,
    /// The database, once loaded: the last logged zxid comes from it.
    db: Mutex<Option<Arc<crate::server::zk_database::ZKDatabase>>>,
    /// `sslQuorum` / `portUnification`: the TLS side of the election and quorum ports.
    pub x509: Option<Arc<crate::server::quorum::quorum_x509_util::QuorumX509Util>>,
    /// `authServer` / `authLearner` (`quorum.auth.*`).
    pub quorum_auth: crate::server::quorum::auth::QuorumAuth,
    /// `reconfigFlag`: a committed reconfig decided this peer's next role.
    reconfig_flag: AtomicBool,
    /// `shuttingDownLE`: the election restarts before the next lookForLeader.
    shutting_down_le: AtomicBool,
    /// `myAddrs`: this server's own line. Kept when a reconfig removes it from the
    /// view: a removed server still dials peers (its initial message names its
    /// election address; an empty one is refused by Apache's "Unreasonable buffer
    /// length: 0") and follows the new leader as a non-voting participant.
    my_server: RwLock<QuorumServer>,
    /// `qcmRef`: the connection manager, once started (reconfig reaches new members).
    qcm: Mutex<Weak<crate::server::quorum::quorum_cnx_manager::QuorumCnxManager>>,
}

impl QuorumPeer {
    /// Builds the peer for a distributed configuration. `last_logged_zxid` comes from the
    /// loaded database; the epochs are checked against it (`loadDataBase`).
    pub fn new(config: QuorumPeerConfig, last_logged_zxid: i64, snap_dir: PathBuf) -> Result<Arc<QuorumPeer>, String> {
        let qv = config.quorum_verifier.clone().ok_or_else(|| "no quorum membership in the configuration".to_string())?;
        let myid = config.server_id;
        if !qv.all_members().contains_key(&myid) {
            return Err(format!("My id {myid} not in the peer list"));
        }
        let epochs = epochs::Epochs::load(&snap_dir, last_logged_zxid)?;
        let current_epoch = epochs.current();
        let qv = Arc::new(qv);
        let my_server = qv.all_members().get(&myid).cloned().ok_or_else(|| format!("My id {myid} not in the peer list"))?;
        // `setQuorumVerifier` at start: the last seen configuration is at least the
        // committed one.
        let last_seen = match config.last_seen_quorum_verifier.clone() {
            Some(ls) if ls.version() > qv.version() => Some(Arc::new(ls)),
            _ => Some(qv.clone()),
        };
        let x509 = crate::server::quorum::quorum_x509_util::QuorumX509Util::from_config(&config)?;
        let quorum_auth = crate::server::quorum::auth::QuorumAuth::from_config(&config.quorum_sasl)?;
        Ok(Arc::new(QuorumPeer {
            myid,
            tick_time: config.tick_time,
            init_limit: config.init_limit,
            sync_limit: config.sync_limit,
            snap_dir,
            qv: RwLock::new(qv),
            last_seen_qv: RwLock::new(last_seen),
            learner_type: Mutex::new(config.peer_type),
            status: Mutex::new(Status {
                state: ServerState::Looking,
                zab_state: ZabState::Election,
                sync_mode: SyncMode::None,
                leader_id: -1,
                leader_address: None,
            }),
            current_vote: Mutex::new(Vote::new(myid, last_logged_zxid, current_epoch)),
            epochs,
            last_logged_zxid: AtomicI64::new(last_logged_zxid),
            running: AtomicBool::new(true),
            start_fle: AtomicI64::new(0),
            end_fle: AtomicI64::new(0),
            election_time_taken: AtomicI64::new(0),
            client_address: Mutex::new(None),
            server_holder: crate::server::server_cnxn_factory::ServerHolder::new(None),
            leader: Mutex::new(None),
            db: Mutex::new(None),
            x509,
            quorum_auth,
            my_server: RwLock::new(my_server),
            reconfig_flag: AtomicBool::new(false),
            shutting_down_le: AtomicBool::new(false),
            qcm: Mutex::new(Weak::new()),
            config,
        }))
    }

    /// `setZooKeeperServer`: what the client port serves (None while not serving); the
    /// previous server's connections are closed.
    pub fn set_active_server(&self, zks: Option<Arc<crate::server::zookeeper_server::ZooKeeperServer>>) {
        let old = self.server_holder.get();
        self.server_holder.set(zks.clone());
        if let Some(o) = old {
            if zks.as_ref().map(|z| !Arc::ptr_eq(z, &o)).unwrap_or(true) {
                o.close_all_connections();
            }
        }
    }

    /// `setAddrs`: this server's line as a new configuration gives it.
    pub(crate) fn set_my_server(&self, qs: QuorumServer) {
        *self.my_server.write() = qs;
    }

    pub fn set_qcm(&self, qcm: &Arc<crate::server::quorum::quorum_cnx_manager::QuorumCnxManager>) {
        *self.qcm.lock() = Arc::downgrade(qcm);
    }

    pub fn qcm(&self) -> Option<Arc<crate::server::quorum::quorum_cnx_manager::QuorumCnxManager>> {
        self.qcm.lock().upgrade()
    }

    pub fn set_leader(&self, l: Option<Arc<crate::server::quorum::leader::Leader>>) {
        *self.leader.lock() = l;
    }

    pub fn leader(&self) -> Option<Arc<crate::server::quorum::leader::Leader>> {
        self.leader.lock().clone()
    }

    pub fn set_database(&self, db: Arc<crate::server::zk_database::ZKDatabase>) {
        self.set_last_logged_zxid(db.last_processed_zxid());
        *self.db.lock() = Some(db);
    }

    /// The peer's database, once loaded.
    pub fn database(&self) -> Option<Arc<crate::server::zk_database::ZKDatabase>> {
        self.db.lock().clone()
    }

    pub fn active_server(&self) -> Option<Arc<crate::server::zookeeper_server::ZooKeeperServer>> {
        self.server_holder.get()
    }

    pub fn quorum_verifier(&self) -> Arc<QuorumVerifier> {
        self.qv.read().clone()
    }

    pub fn last_seen_quorum_verifier(&self) -> Option<Arc<QuorumVerifier>> {
        self.last_seen_qv.read().clone()
    }

    /// `getView()`: every member of the committed configuration.
    pub fn view_member(&self, sid: i64) -> Option<QuorumServer> {
        self.qv.read().all_members().get(&sid).cloned()
    }

    /// `getCurrentAndNextConfigVoters`.
    pub fn current_and_next_config_voters(&self) -> Vec<i64> {
        let mut ids = self.qv.read().voting_ids();
        if let Some(ls) = self.last_seen_qv.read().as_ref() {
            for id in ls.voting_ids() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// `getElectionAddress()`: this server's election addresses.
    pub fn election_address(&self) -> MultipleAddresses {
        self.my_server.read().election_addr.clone()
    }

    /// `getQuorumAddress()`: this server's Zab addresses.
    pub fn quorum_address(&self) -> MultipleAddresses {
        self.my_server.read().addr.clone()
    }

    pub fn learner_type(&self) -> LearnerType {
        *self.learner_type.lock()
    }

    pub fn is_multi_address_enabled(&self) -> bool {
        self.config.multi_address_enabled
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    pub fn stop_running(&self) {
        self.running.store(false, Ordering::Release);
    }

    pub fn peer_state(&self) -> ServerState {
        self.status.lock().state
    }

    /// `setPeerState`: LOOKING clears the leader and returns to the election phase; other
    /// states are logged as `Peer state changed: following - ...`.
    pub fn set_peer_state(&self, s: ServerState) {
        let detailed = {
            let mut st = self.status.lock();
            st.state = s;
            if s == ServerState::Looking {
                st.leader_id = -1;
                st.leader_address = None;
                st.zab_state = ZabState::Election;
            }
            detailed(&st)
        };
        log::info!("Peer state changed: {detailed}");
    }

    pub fn set_zab_state(&self, z: ZabState) {
        let detailed = {
            let mut st = self.status.lock();
            st.zab_state = z;
            detailed(&st)
        };
        log::info!("Peer state changed: {detailed}");
    }

    pub fn set_sync_mode(&self, m: SyncMode) {
        let detailed = {
            let mut st = self.status.lock();
            st.sync_mode = m;
            detailed(&st)
        };
        log::info!("Peer state changed: {detailed}");
    }

    pub fn zab_state(&self) -> ZabState {
        self.status.lock().zab_state
    }

    pub fn sync_mode(&self) -> SyncMode {
        self.status.lock().sync_mode
    }

    /// `getDetailedPeerState`: `following - broadcast`, `leading - discovery`, ...
    pub fn detailed_peer_state(&self) -> String {
        detailed(&self.status.lock())
    }

    pub fn set_leader_address_and_id(&self, addr: Option<String>, id: i64) {
        let mut st = self.status.lock();
        st.leader_address = addr;
        st.leader_id = id;
    }

    pub fn leader_id(&self) -> i64 {
        self.status.lock().leader_id
    }

    pub fn leader_address(&self) -> Option<String> {
        self.status.lock().leader_address.clone()
    }

    pub fn current_vote(&self) -> Vote {
        *self.current_vote.lock()
    }

    pub fn set_current_vote(&self, v: Vote) {
        *self.current_vote.lock() = v;
    }

    /// `updateElectionVote`: after synchronising, every member answers joiners with the
    /// new epoch (leader, zxid and round unchanged).
    pub fn update_election_vote(&self, new_epoch: i64) {
        let mut v = self.current_vote.lock();
        *v = Vote::with_state(v.id, v.zxid, v.election_epoch, new_epoch, v.state);
    }

    /// `getLastLoggedZxid`: the highest zxid in the local database.
    pub fn last_logged_zxid(&self) -> i64 {
        if let Some(db) = self.db.lock().as_ref() {
            return db.last_processed_zxid();
        }
        self.last_logged_zxid.load(Ordering::Acquire)
    }

    pub fn set_last_logged_zxid(&self, z: i64) {
        self.last_logged_zxid.store(z, Ordering::Release);
    }

    /// `quorumCnxnTimeoutMs` if set, else tickTime × syncLimit: the read timeout of an
    /// election socket until its handshake is done.
    pub fn quorum_cnxn_socket_timeout_ms(&self) -> u64 {
        let configured = system_properties::get_i64("zookeeper.quorumCnxnTimeoutMs").unwrap_or(-1);
        if configured > 0 {
            configured as u64
        } else {
            (i64::from(self.tick_time) * i64::from(self.sync_limit)).max(1) as u64
        }
    }

    /// `QuorumPeer[myid=N](plain=addr)(secure=disabled)`.
    pub fn thread_name(&self) -> String {
        let plain = match *self.client_address.lock() {
            Some(SocketAddr::V4(a)) => format!("{}:{}", a.ip(), a.port()),
            Some(SocketAddr::V6(a)) => format!("[{}]:{}", a.ip(), a.port()),
            None => "disabled".into(),
        };
        format!("QuorumPeer[myid={}](plain={plain})(secure=disabled)", self.myid)
    }
}

fn detailed(st: &Status) -> String {
    let mut s = st.state.name().to_lowercase();
    if st.zab_state != ZabState::Election {
        s.push_str(" - ");
        s.push_str(st.zab_state.name());
    }
    if st.sync_mode != SyncMode::None {
        s.push_str(" - ");
        s.push_str(st.sync_mode.name());
    }
    s
}
