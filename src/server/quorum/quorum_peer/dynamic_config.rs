//! The peer's side of dynamic reconfiguration (QuorumPeer's `setQuorumVerifier`,
//! `setLastSeenQuorumVerifier`, `processReconfig`, `updateLearnerType`, `updateVote`
//! and the reconfig flag): which configuration is committed and which was last seen,
//! the files that record them, and what a new one means for this peer's role.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::QuorumPeer;
use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::quorum_server::LearnerType;
use crate::server::quorum::reconfig::{dynamic_file_text, edited_static_config};
use crate::server::quorum::vote::Vote;
use crate::server::util::atomic_file_writing_idiom::write_atomically;


impl QuorumPeer {
    pub fn is_reconfig_enabled(&self) -> bool {
        self.config.reconfig_enabled
    }

    /// `<zoo.cfg>.dynamic.next`.
    fn next_dynamic_config_filename(&self) -> Option<PathBuf> {
        match &self.config.config_file {
            Some(f) => Some(PathBuf::from(format!("{}.dynamic.next", f.display()))),
            None => {
                log::warn!("configFilename is null! This should only happen in tests.");
                None
            }
        }
    }

    /// `needEraseClientInfoFromStaticConfig`: this server's line now carries its client
    /// address, so zoo.cfg's `clientPort` would contradict a later one.
    fn need_erase_client_info_from_static_config(&self) -> bool {
        self.quorum_verifier()
            .all_members()
            .get(&self.myid)
            .is_some_and(|s| s.client_addr.is_some() && !s.is_client_addr_from_static)
    }

    /// `setLastSeenQuorumVerifier`: a proposed configuration (a reconfig's PROPOSAL, the
    /// leader's NEWLEADER). Recorded in `zoo.cfg.dynamic.next` when `write_to_disk`, and
    /// the connection manager reaches out to its new members.
    pub fn set_last_seen_quorum_verifier(&self, qv: QuorumVerifier, write_to_disk: bool) {
        if !self.is_reconfig_enabled() {
            log::info!("Dynamic reconfig is disabled, we don't store the last seen config.");
            return;
        }
        {
            let mut ls = self.last_seen_qv.write();
            if let Some(cur) = ls.as_ref() {
                if cur.version() > qv.version() {
                    log::error!("setLastSeenQuorumVerifier called with stale config {}. Current version: {}", qv.version(), self.quorum_verifier().version());
                }
                if cur.version() == qv.version() {
                    return;
                }
            }
            *ls = Some(Arc::new(qv.clone()));
        }
        self.connect_new_peers();
        if write_to_disk {
            if let Some(f) = self.next_dynamic_config_filename() {
                if let Err(e) = write_atomically(&f, dynamic_file_text(&qv, true).as_bytes()) {
                    log::error!("Error writing next dynamic config file to disk: {e}");
                }
            }
        }
    }

    /// `connectNewPeers`: members of the last-seen configuration the committed one lacks.
    fn connect_new_peers(&self) {
        let Some(qcm) = self.qcm() else { return };
        let committed = self.quorum_verifier();
        let Some(ls) = self.last_seen_quorum_verifier() else { return };
        for sid in ls.all_members().keys() {
            if *sid != self.myid && !committed.all_members().contains_key(sid) {
                qcm.connect_one(*sid);
            }
        }
    }

    /// `setQuorumVerifier`: commits a configuration (ignored unless newer than the
    /// committed one). With `write_to_disk` it becomes `zoo.cfg.dynamic.<version>` and
    /// zoo.cfg points at it. Returns the previous committed configuration.
    pub fn set_quorum_verifier(&self, qv: QuorumVerifier, write_to_disk: bool) -> Arc<QuorumVerifier> {
        let prev = self.quorum_verifier();
        if prev.version() >= qv.version() {
            log::debug!("{} setQuorumVerifier called with known or old config {}. Current version: {}", self.myid, qv.version(), prev.version());
            return prev;
        }
        let qv = Arc::new(qv);
        *self.qv.write() = qv.clone();
        let last_seen_version = {
            let mut ls = self.last_seen_qv.write();
            if ls.as_ref().map(|l| qv.version() > l.version()).unwrap_or(true) {
                *ls = Some(qv.clone());
            }
            ls.as_ref().map(|l| l.version()).unwrap_or(qv.version())
        };
        if write_to_disk {
            match &self.config.config_file {
                Some(cfg) => {
                    let dynamic = PathBuf::from(format!("{}.dynamic.{:x}", cfg.display(), qv.version()));
                    let written = write_atomically(&dynamic, dynamic_file_text(&qv, false).as_bytes()).and_then(|()| {
                        let canonical = std::fs::canonicalize(&dynamic)?;
                        let static_text = std::fs::read_to_string(cfg)?;
                        let edited = edited_static_config(&static_text, &canonical.to_string_lossy(), self.need_erase_client_info_from_static_config());
                        write_atomically(cfg, edited.as_bytes())
                    });
                    if let Err(e) = written {
                        log::error!("Error closing file: {e}");
                    }
                }
                None => log::info!("writeToDisk == true but configFilename == null"),
            }
        }
        if let Some(me) = qv.all_members().get(&self.myid) {
            self.set_my_server(me.clone());
        }
        if qv.version() == last_seen_version {
            if let Some(next) = self.next_dynamic_config_filename() {
                if next.exists() {
                    if let Err(e) = std::fs::remove_file(&next) {
                        log::error!("deleting {} failed: {e}", next.display());
                    }
                }
            }
        }
        prev
    }

    /// `processReconfig`: commit `qv` and write it down. `/zookeeper/config` is the
    /// caller's: a committed reconfig txn sets it when applied, and
    /// [`Self::init_config_in_zk_database`] does for a configuration with no txn (the
    /// version-0 bump, one learnt in election). Kept apart because the leader commits
    /// under its own lock, which may not wait for the tree's. Returns whether this peer's role or leader changed — then the caller leaves
    /// its role, and the peer goes straight to the role the flag records
    /// (`updateServerState`).
    pub fn process_reconfig(&self, qv: QuorumVerifier, suggested_leader: Option<(i64, i64)>, restart_le: bool) -> bool {
        if !self.is_reconfig_enabled() {
            log::debug!("Reconfig feature is disabled, skip reconfig processing.");
            return false;
        }
        let prev = self.set_quorum_verifier(qv.clone(), true);
        if prev.version() < qv.version() && !prev.same_as(&qv) {
            if restart_le {
                self.restart_leader_election(&prev, &qv);
            }
            // `cnxnFactory.reconfigure`: upstream moves the client port; ours keeps it.
            let bound = *self.client_address.lock();
            if let (Some(new), Some(bound)) = (qv.all_members().get(&self.myid).and_then(|me| me.client_addr.as_ref()).and_then(|a| a.resolve().ok()), bound) {
                if new != bound {
                    log::warn!("Client address of server {} changed by reconfig to {new}; the client port stays on {bound} until restart", self.myid);
                }
            }
            let role_change = self.update_learner_type(&qv);
            let leader_change = match suggested_leader {
                Some((leader, zxid)) => self.update_vote(leader, zxid),
                None => {
                    let current = self.current_vote().id;
                    let before = prev.all_members().get(&current).filter(|_| prev.is_voter(current));
                    let after = qv.all_members().get(&current).filter(|_| qv.is_voter(current));
                    let changed = match (before, after) {
                        (Some(b), Some(a)) => b.addr.is_empty() || !b.addr.same_set(&a.addr),
                        _ => true,
                    };
                    self.reconfig_flag_clear();
                    changed
                }
            };
            return role_change || leader_change;
        }
        false
    }

    /// `initConfigInZKDatabase`: `/zookeeper/config` holds the committed configuration.
    pub fn init_config_in_zk_database(&self) {
        if let Some(db) = self.database() {
            let cur = self.quorum_verifier();
            db.tree.write().set_config_node(cur.to_string().as_bytes(), cur.version());
        }
    }

    /// `restartLeaderElection`: the connection manager must know the new members. Ours
    /// reaches every member of the current view on demand, so it reconnects at once;
    /// the election itself restarts when the peer is next LOOKING.
    fn restart_leader_election(&self, old: &QuorumVerifier, new: &QuorumVerifier) {
        if old.same_as(new) {
            return;
        }
        log::warn!("Restarting Leader Election");
        self.shutting_down_le.store(true, Ordering::Release);
        if let Some(qcm) = self.qcm() {
            for sid in new.all_members().keys() {
                if *sid != self.myid {
                    qcm.connect_one(*sid);
                }
            }
        }
    }

    /// `updateLearnerType`.
    fn update_learner_type(&self, qv: &QuorumVerifier) -> bool {
        let want = if qv.is_observer(self.myid) { LearnerType::Observer } else { LearnerType::Participant };
        let mut lt = self.learner_type.lock();
        if *lt == want {
            return false;
        }
        *lt = want;
        drop(lt);
        if qv.is_observer(self.myid) {
            log::info!("Becoming an observer");
        } else if qv.is_voter(self.myid) {
            log::info!("Becoming a voting participant");
        } else {
            log::info!("Becoming a non-voting participant");
        }
        self.reconfig_flag_set();
        true
    }

    /// `updateVote`: the designated leader of a committed reconfig.
    fn update_vote(&self, designated_leader: i64, zxid: i64) -> bool {
        let current = self.current_vote();
        if designated_leader != current.id {
            // Upstream's two-argument Vote: no epochs until the new role updates them.
            self.set_current_vote(Vote::new(designated_leader, zxid, -1));
            self.reconfig_flag_set();
            log::warn!("Suggested leader: {designated_leader}");
            return true;
        }
        false
    }

    pub fn reconfig_flag_set(&self) {
        self.reconfig_flag.store(true, Ordering::Release);
    }

    pub fn reconfig_flag_clear(&self) {
        self.reconfig_flag.store(false, Ordering::Release);
    }

    pub fn reconfig_flag(&self) -> bool {
        self.reconfig_flag.load(Ordering::Acquire)
    }

    pub fn is_shutting_down_le(&self) -> bool {
        self.shutting_down_le.load(Ordering::Acquire)
    }

    /// Asks the running election to end its round (WorkerReceiver's processReconfig).
    pub fn request_election_restart(&self) {
        self.shutting_down_le.store(true, Ordering::Release);
    }

    /// `shuttingDownLE`, taken: the election restarts before the next lookForLeader.
    pub fn take_shutting_down_le(&self) -> bool {
        self.shutting_down_le.swap(false, Ordering::AcqRel)
    }
}
