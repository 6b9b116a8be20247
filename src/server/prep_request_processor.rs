//! `PrepRequestProcessor`: the first stage. For writes it validates the request against
//! the tree plus the changes already in flight (`outstandingChanges`), checks ACLs,
//! assigns the zxid and builds the txn; a failed write becomes an error txn that still
//! consumes its zxid. Runs on the thread `ProcessThread(sid:N cport:P):`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crossbeam_channel::Receiver;

use crate::common::java_hash;
use crate::common::path_utils;
use crate::common::time;
use crate::jute::{InputArchive, Record};
use crate::proto::data::{StatPersisted, ACL};
use crate::proto::multi::{MultiOperationRecord, Op};
use crate::proto::proto::*;
use crate::proto::txn::*;
use crate::proto::{op_code, perms, CreateMode, Code};
use crate::server::auth;
use crate::server::data_tree::{create_stat, DataTree};
use crate::server::digest_calculator::{node_digest, DIGEST_VERSION};
use crate::common::ephemeral_type::{self, EphemeralType, CONTAINER_EPHEMERAL_OWNER};
use crate::server::request::Request;
use crate::server::request_processor::RequestProcessor;
use crate::server::txn_record::TxnRecord;
use crate::server::zookeeper_server::ZooKeeperServer;

/// `ChangeRecord`: the state a path will have once the in-flight txns are applied.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    pub zxid: i64,
    pub path: String,
    /// None: the path is being deleted.
    pub stat: Option<StatPersisted>,
    pub child_count: i32,
    pub acl: Vec<ACL>,
    pub data: Option<Vec<u8>>,
    /// `precalculatedDigest`: this path's digest in this state, and the whole tree's
    /// digest once this change is applied (0 for a record read from the tree).
    pub node_digest: i64,
    pub tree_digest: i64,
}

impl ChangeRecord {
    fn duplicate(&self, zxid: i64) -> ChangeRecord {
        ChangeRecord { zxid, ..self.clone() }
    }
}

/// `ZooKeeperServer.outstandingChanges` and `outstandingChangesForPath`.
#[derive(Default)]
pub struct OutstandingChanges {
    pub changes: VecDeque<ChangeRecord>,
    pub for_path: HashMap<String, ChangeRecord>,
}

impl OutstandingChanges {
    /// Drops the records of txns up to `zxid` once FinalRequestProcessor applied them.
    pub fn applied(&mut self, zxid: i64) {
        while let Some(front) = self.changes.front() {
            if front.zxid > zxid {
                break;
            }
            let cr = match self.changes.pop_front() {
                Some(c) => c,
                None => break,
            };
            if cr.zxid < zxid {
                log::warn!("Zxid outstanding 0x{:x} is less than current 0x{:x}", cr.zxid, zxid);
            }
            if let Some(cur) = self.for_path.get(&cr.path) {
                if cur.zxid == cr.zxid {
                    self.for_path.remove(&cr.path);
                }
            }
        }
    }
}

type KResult<T> = Result<T, Code>;

pub struct PrepRequestProcessor {
    zks: Arc<ZooKeeperServer>,
    next: Box<dyn RequestProcessor>,
    digest_enabled: bool,
}


impl PrepRequestProcessor {
    pub fn new(zks: Arc<ZooKeeperServer>, next: Box<dyn RequestProcessor>) -> Self {
        PrepRequestProcessor { zks, next, digest_enabled: crate::server::persistence::util::digest_enabled() }
    }

    pub fn run(mut self, queue: Receiver<Request>) {
        while let Ok(mut request) = queue.recv() {
            if request.r#type == REQUEST_OF_DEATH {
                break;
            }
            self.p_request(&mut request);
            self.next.process_request(request);
        }
        self.next.shutdown();
        log::info!("PrepRequestProcessor exited loop!");
    }

    fn p_request(&self, request: &mut Request) {
        request.hdr = None;
        request.txn = None;
        request.digest = None;
        // A throttled request is only carried along to be answered THROTTLEDOP.
        if !request.throttled {
            self.p_request_helper(request);
        }
        request.zxid = self.zks.zxid();
        // `setTxnDigest`: every txn carries the tree digest it leads to, which every
        // server checks after applying it.
        if self.digest_enabled && request.hdr.is_some() {
            request.digest = Some(TxnDigest { version: DIGEST_VERSION, tree_digest: self.current_tree_digest() });
        }
    }

    fn next_zxid(&self) -> i64 {
        self.zks.next_zxid()
    }

    fn check_session(&self, request: &Request) -> KResult<()> {
        self.zks.session_tracker().check_session(request.session_id, request.owner)
    }

    fn p_request_helper(&self, request: &mut Request) {
        let body = std::mem::take(&mut request.request);
        let result: Result<(), PrepError> = (|| {
            match request.r#type {
                op_code::CREATE | op_code::CREATE2 | op_code::CREATE_CONTAINER => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<CreateRequest>(&body)?;
                    let r = CreateTTLRequest { path: r.path, data: r.data, acl: r.acl, flags: r.flags, ttl: -1 };
                    self.p_request2_txn_create(request.r#type, request, &r)?;
                }
                op_code::CREATE_TTL => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<CreateTTLRequest>(&body)?;
                    self.p_request2_txn_create(request.r#type, request, &r)?;
                }
                op_code::DELETE_CONTAINER => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let path = String::from_utf8_lossy(&body).into_owned();
                    self.p_delete_container(request, &path)?;
                }
                op_code::DELETE => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<DeleteRequest>(&body)?;
                    self.p_delete(request, &r)?;
                }
                op_code::SET_DATA => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<SetDataRequest>(&body)?;
                    self.p_set_data(request, &r)?;
                }
                op_code::RECONFIG => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<ReconfigRequest>(&body)?;
                    self.p_reconfig(request, &r)?;
                }
                op_code::SET_ACL => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<SetACLRequest>(&body)?;
                    self.p_set_acl(request, &r)?;
                }
                op_code::CHECK => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let r = decode::<CheckVersionRequest>(&body)?;
                    self.p_check(request, &r)?;
                }
                op_code::MULTI => self.p_multi(request, &body)?,
                // A local session's createSession/closeSession is no txn.
                op_code::CREATE_SESSION | op_code::CLOSE_SESSION if request.is_local_session => {}
                op_code::CREATE_SESSION => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    let mut inp = InputArchive::new(&body);
                    let to = inp.read_int()?;
                    request.txn = Some(TxnRecord::CreateSession(CreateSessionTxn { time_out: to }));
                    self.zks.session_tracker().track_session(request.session_id, to);
                    let _ = self.zks.session_tracker().check_session(request.session_id, request.owner);
                }
                op_code::CLOSE_SESSION => {
                    let zxid = self.next_zxid();
                    self.set_hdr(request, zxid, request.r#type);
                    self.p_close_session(request);
                }
                op_code::SYNC
                | op_code::EXISTS
                | op_code::GET_DATA
                | op_code::GET_ACL
                | op_code::GET_CHILDREN
                | op_code::GET_ALL_CHILDREN_NUMBER
                | op_code::GET_CHILDREN2
                | op_code::PING
                | op_code::SET_WATCHES
                | op_code::SET_WATCHES2
                | op_code::CHECK_WATCHES
                | op_code::REMOVE_WATCHES
                | op_code::GET_EPHEMERALS
                | op_code::MULTI_READ
                | op_code::ADD_WATCH
                | op_code::WHO_AM_I => self.check_session(request)?,
                t => log::warn!("unknown type {t}"),
            }
            Ok(())
        })();
        request.request = body;
        match result {
            Ok(()) => {}
            Err(PrepError::Keeper(code)) => {
                if let Some(h) = request.hdr.as_mut() {
                    h.r#type = op_code::ERROR;
                    request.txn = Some(TxnRecord::Error(ErrorTxn { err: code.int() }));
                }
                if code.int() > Code::ApiError.int() {
                    log::info!(
                        "Got user-level KeeperException when processing {} Error:KeeperErrorCode = {}",
                        request.describe(),
                        code.message()
                    );
                }
                request.exception = Some(code);
            }
            Err(PrepError::Marshalling(e)) => {
                log::error!("Failed to process {}: {e}", request.describe());
                if let Some(h) = request.hdr.as_mut() {
                    h.r#type = op_code::ERROR;
                    request.txn = Some(TxnRecord::Error(ErrorTxn { err: Code::MarshallingError.int() }));
                }
                request.exception = Some(Code::MarshallingError);
            }
        }
    }

    fn set_hdr(&self, request: &mut Request, zxid: i64, ty: i32) {
        if request.hdr.is_none() {
            request.hdr = Some(TxnHeader {
                client_id: request.session_id,
                cxid: request.cxid,
                zxid,
                time: time::current_wall_time(),
                r#type: ty,
            });
        }
    }

    fn hdr_zxid(request: &Request) -> i64 {
        request.hdr.as_ref().map(|h| h.zxid).unwrap_or(0)
    }

    fn hdr_time(request: &Request) -> i64 {
        request.hdr.as_ref().map(|h| h.time).unwrap_or(0)
    }

    // ------------------------------------------------------ change records --

    fn get_record_for_path(&self, oc: &OutstandingChanges, tree: &DataTree, path: &str) -> KResult<ChangeRecord> {
        let rec = match oc.for_path.get(path) {
            Some(c) => Some(c.clone()),
            None => tree.get_node(path).map(|n| ChangeRecord {
                zxid: -1,
                path: path.to_owned(),
                stat: Some(n.stat.clone()),
                child_count: n.children.len() as i32,
                acl: tree.acl_of(n),
                data: n.data_vec(),
                node_digest: if self.digest_enabled { node_digest(path, n.data(), &n.stat) } else { 0 },
                tree_digest: 0,
            }),
        };
        match rec {
            Some(r) if r.stat.is_some() => Ok(r),
            _ => Err(Code::NoNode),
        }
    }

    fn record(&self, path: &str) -> KResult<ChangeRecord> {
        let oc = self.zks.outstanding_changes.lock();
        let tree = self.zks.tree.read();
        self.get_record_for_path(&oc, &tree, path)
    }

    fn add_change_record(&self, mut c: ChangeRecord) {
        let mut oc = self.zks.outstanding_changes.lock();
        if self.digest_enabled {
            // `precalculateDigest`: the tree's digest after this change, from the digest
            // after every change still in flight (or the tree's own).
            let tree = self.zks.tree.read();
            let prev = match oc.for_path.get(&c.path) {
                Some(r) => r.node_digest,
                None => tree.get_node(&c.path).map(|n| node_digest(&c.path, n.data(), &n.stat)).unwrap_or(0),
            };
            let new = match &c.stat {
                Some(st) => node_digest(&c.path, c.data.as_deref(), st),
                None => 0,
            };
            let current = oc.changes.back().map(|r| r.tree_digest).unwrap_or_else(|| tree.digest());
            c.node_digest = new;
            c.tree_digest = current.wrapping_sub(prev).wrapping_add(new);
        }
        oc.for_path.insert(c.path.clone(), c.clone());
        oc.changes.push_back(c);
    }

    /// `getCurrentTreeDigest`.
    fn current_tree_digest(&self) -> i64 {
        let oc = self.zks.outstanding_changes.lock();
        match oc.changes.back() {
            Some(r) => r.tree_digest,
            None => self.zks.tree.read().digest(),
        }
    }

    // ---------------------------------------------------------- validation --

    fn validate_path(path: &str, session: i64) -> KResult<()> {
        path_utils::validate_path(path).map_err(|reason| {
            log::info!("Invalid path {path} with session 0x{session:x}, reason: {reason}");
            Code::BadArguments
        })
    }

    fn get_parent_path_and_validate(path: &str) -> KResult<String> {
        match path.rfind('/') {
            Some(i) if !path.contains('\0') && !DataTree::is_special_path(path) => Ok(path[..i].to_owned()),
            _ => Err(Code::BadArguments),
        }
    }

    fn validate_path_for_create(path: &str) -> KResult<String> {
        match path.rfind('/') {
            Some(i) if !path.contains('\0') => Ok(path[..i].to_owned()),
            _ => Err(Code::BadArguments),
        }
    }

    fn check_and_inc_version(current: i32, expected: i32) -> KResult<i32> {
        if expected != -1 && expected != current {
            return Err(Code::BadVersion);
        }
        Ok(current.wrapping_add(1))
    }

    fn check_acl(&self, acl: &[ACL], perm: i32, ids: &[crate::proto::data::Id]) -> KResult<()> {
        self.zks.check_acl(acl, perm, ids)
    }

    /// `fixupACL`: dedupe, expand `auth`, reject unknown or invalid ids.
    pub fn fixup_acl(auth_info: &[crate::proto::data::Id], acls: &[ACL]) -> KResult<Vec<ACL>> {
        let mut uniq: Vec<ACL> = Vec::with_capacity(acls.len());
        for a in acls {
            if !uniq.contains(a) {
                uniq.push(a.clone());
            }
        }
        if uniq.is_empty() {
            return Err(Code::InvalidAcl);
        }
        let mut rv = Vec::new();
        for a in uniq {
            let id = &a.id;
            if id.scheme == "world" && id.id == "anyone" {
                rv.push(a.clone());
            } else if id.scheme == "auth" {
                let mut valid = false;
                for cid in auth_info {
                    match auth::is_authenticated(&cid.scheme) {
                        None => log::error!("Missing AuthenticationProvider for {}", cid.scheme),
                        Some(true) => {
                            valid = true;
                            rv.push(ACL { perms: a.perms, id: cid.clone() });
                        }
                        Some(false) => {}
                    }
                }
                if !valid {
                    return Err(Code::InvalidAcl);
                }
            } else {
                match auth::is_valid(&id.scheme, &id.id) {
                    Some(true) => rv.push(a.clone()),
                    _ => return Err(Code::InvalidAcl),
                }
            }
        }
        Ok(rv)
    }

    // ---------------------------------------------------------- operations --

    fn p_request2_txn_create(&self, ty: i32, request: &mut Request, r: &CreateTTLRequest) -> KResult<()> {
        let path = r.path.clone();
        // CreateMode.fromFlag throws KeeperException(BadArguments) for unknown flags.
        let mode = CreateMode::from_flag(r.flags).ok_or(Code::BadArguments)?;
        // validateCreateRequest
        if mode.is_ttl() && !ephemeral_type::extended_types_enabled() {
            return Err(Code::Unimplemented);
        }
        if mode.is_ttl() {
            if ephemeral_type::ttl_to_ephemeral_owner(r.ttl).is_none() {
                return Err(Code::BadArguments);
            }
        } else if r.ttl >= 0 {
            return Err(Code::BadArguments);
        }
        if mode.is_ephemeral() {
            // Set when a local session could not be upgraded.
            if let Some(e) = request.exception {
                return Err(e);
            }
            self.zks.session_tracker().check_global_session(request.session_id, request.owner)?;
        } else {
            self.check_session(request)?;
        }
        let parent_path = Self::validate_path_for_create(&path)?;
        let list_acl = Self::fixup_acl(&request.auth_info, &r.acl)?;
        let parent = self.record(&parent_path)?;
        self.check_acl(&parent.acl, perms::CREATE, &request.auth_info)?;
        let parent_stat = parent.stat.clone().unwrap_or_default();
        let parent_cversion = parent_stat.cversion;
        let mut path = path;
        if mode.is_sequential() {
            path = format!("{path}{}", format_seq(parent_cversion));
        }
        Self::validate_path(&path, request.session_id)?;
        match self.record(&path) {
            Ok(_) => return Err(Code::NodeExists),
            Err(Code::NoNode) => {}
            Err(e) => return Err(e),
        }
        if ephemeral_type::get(parent_stat.ephemeral_owner) == EphemeralType::Normal {
            return Err(Code::NoChildrenForEphemerals);
        }
        let new_cversion = parent_cversion.wrapping_add(1);
        self.zks.check_quota(&path, None, r.data.as_deref(), op_code::CREATE)?;
        request.txn = Some(match ty {
            op_code::CREATE_CONTAINER => TxnRecord::CreateContainer(CreateContainerTxn {
                path: path.clone(),
                data: r.data.clone(),
                acl: list_acl.clone(),
                parent_c_version: new_cversion,
            }),
            op_code::CREATE_TTL => TxnRecord::CreateTtl(CreateTTLTxn {
                path: path.clone(),
                data: r.data.clone(),
                acl: list_acl.clone(),
                parent_c_version: new_cversion,
                ttl: r.ttl,
            }),
            _ => TxnRecord::Create(CreateTxn {
                path: path.clone(),
                data: r.data.clone(),
                acl: list_acl.clone(),
                ephemeral: mode.is_ephemeral(),
                parent_c_version: new_cversion,
            }),
        });
        let owner = if mode.is_container() {
            CONTAINER_EPHEMERAL_OWNER
        } else if mode.is_ttl() {
            ephemeral_type::ttl_to_ephemeral_owner(r.ttl).unwrap_or(0)
        } else if mode.is_ephemeral() {
            request.session_id
        } else {
            0
        };
        let zxid = Self::hdr_zxid(request);
        let s = create_stat(zxid, Self::hdr_time(request), owner);
        let mut p = parent.duplicate(zxid);
        p.child_count += 1;
        if let Some(st) = p.stat.as_mut() {
            st.cversion = new_cversion;
            st.pzxid = zxid;
        }
        self.add_change_record(p);
        self.add_change_record(ChangeRecord {
            zxid,
            path,
            stat: Some(s),
            child_count: 0,
            acl: list_acl,
            data: r.data.clone(),
            node_digest: 0,
            tree_digest: 0,
        });
        Ok(())
    }

    fn p_delete_container(&self, request: &mut Request, path: &str) -> KResult<()> {
        let parent_path = Self::get_parent_path_and_validate(path)?;
        let node = self.record(path)?;
        if node.child_count > 0 {
            return Err(Code::NotEmpty);
        }
        if ephemeral_type::get(node.stat.as_ref().map(|s| s.ephemeral_owner).unwrap_or(0)) == EphemeralType::Normal {
            return Err(Code::BadVersion);
        }
        let parent = self.record(&parent_path)?;
        request.txn = Some(TxnRecord::Delete(DeleteTxn { path: path.to_owned() }));
        self.add_delete_records(request, parent, path);
        Ok(())
    }

    fn add_delete_records(&self, request: &Request, parent: ChangeRecord, path: &str) {
        let zxid = Self::hdr_zxid(request);
        let mut p = parent.duplicate(zxid);
        p.child_count -= 1;
        if let Some(st) = p.stat.as_mut() {
            st.pzxid = zxid;
        }
        self.add_change_record(p);
        self.add_change_record(ChangeRecord {
            zxid,
            path: path.to_owned(),
            stat: None,
            child_count: -1,
            acl: Vec::new(),
            data: None,
            node_digest: 0,
            tree_digest: 0,
        });
    }

    fn p_delete(&self, request: &mut Request, r: &DeleteRequest) -> KResult<()> {
        self.check_session(request)?;
        let parent_path = Self::get_parent_path_and_validate(&r.path)?;
        let parent = self.record(&parent_path)?;
        self.check_acl(&parent.acl, perms::DELETE, &request.auth_info)?;
        let node = self.record(&r.path)?;
        Self::check_and_inc_version(node.stat.as_ref().map(|s| s.version).unwrap_or(0), r.version)?;
        if node.child_count > 0 {
            return Err(Code::NotEmpty);
        }
        request.txn = Some(TxnRecord::Delete(DeleteTxn { path: r.path.clone() }));
        self.add_delete_records(request, parent, &r.path);
        Ok(())
    }

    fn p_set_data(&self, request: &mut Request, r: &SetDataRequest) -> KResult<()> {
        self.check_session(request)?;
        Self::validate_path(&r.path, request.session_id)?;
        let node = self.record(&r.path)?;
        self.check_acl(&node.acl, perms::WRITE, &request.auth_info)?;
        self.zks.check_quota(&r.path, node.data.as_deref(), r.data.as_deref(), op_code::SET_DATA)?;
        let new_version = Self::check_and_inc_version(node.stat.as_ref().map(|s| s.version).unwrap_or(0), r.version)?;
        request.txn = Some(TxnRecord::SetData(SetDataTxn { path: r.path.clone(), data: r.data.clone(), version: new_version }));
        let zxid = Self::hdr_zxid(request);
        let mut n = node.duplicate(zxid);
        if let Some(st) = n.stat.as_mut() {
            st.version = new_version;
            st.mtime = Self::hdr_time(request);
            st.mzxid = zxid;
        }
        n.data = r.data.clone();
        self.add_change_record(n);
        Ok(())
    }

    /// The reconfig case of `pRequest2Txn`: the leader turns the request into a setData
    /// of `/zookeeper/config` carrying the new configuration, numbered by this txn.
    fn p_reconfig(&self, request: &mut Request, r: &ReconfigRequest) -> Result<(), PrepError> {
        if !crate::system_properties::get_bool("zookeeper.reconfigEnabled") {
            log::error!("Reconfig operation requested but reconfig feature is disabled.");
            return Err(Code::ReconfigDisabled.into());
        }
        if self.zks.skips_acl() {
            log::warn!("skipACL is set, reconfig operation will skip ACL checks!");
        }
        self.check_session(request)?;
        // Only a leader reconfigures: upstream's cast to LeaderZooKeeperServer fails on
        // a standalone server.
        let leader = match (&self.zks.kind, self.zks.quorum_peer.as_ref().and_then(|p| p.leader())) {
            (crate::server::zookeeper_server::ServerKind::Leader, Some(l)) => l,
            _ => return Err(Code::Unimplemented.into()),
        };
        let peer = &leader.peer;
        let committed = peer.quorum_verifier();
        let last_seen = peer.last_seen_quorum_verifier().unwrap_or_else(|| committed.clone());
        if last_seen.version() != committed.version() {
            return Err(Code::ReconfigInProgress.into());
        }
        if r.cur_config_id != -1 && r.cur_config_id != last_seen.version() {
            log::info!(
                "Reconfiguration from version {} failed -- last seen version is {}",
                r.cur_config_id,
                last_seen.version()
            );
            return Err(Code::BadVersion.into());
        }
        let zxid = Self::hdr_zxid(request);
        let qv = crate::server::quorum::reconfig::next_quorum_verifier(
            &last_seen,
            r,
            zxid,
            peer.config.standalone_enabled,
            peer.is_multi_address_enabled(),
        )
        .map_err(|refusal| {
            log::info!("Reconfig refused: {}", refusal.msg);
            if refusal.code == Code::MarshallingError {
                PrepError::Marshalling(refusal.msg)
            } else {
                PrepError::Keeper(refusal.code)
            }
        })?;
        if !leader.is_quorum_synced(&qv) {
            log::warn!("Reconfig failed - there must be a connected and synced quorum in new configuration");
            return Err(Code::NewConfigNoQuorum.into());
        }
        let node = self.record(crate::common::quotas::CONFIG_ZOOKEEPER)?;
        self.check_acl(&node.acl, perms::WRITE, &request.auth_info)?;
        let text = qv.to_string().into_bytes();
        request.txn = Some(TxnRecord::SetData(SetDataTxn { path: crate::common::quotas::CONFIG_ZOOKEEPER.to_owned(), data: Some(text.clone()), version: -1 }));
        let mut n = node.duplicate(zxid);
        if let Some(st) = n.stat.as_mut() {
            st.version = -1;
            st.mtime = Self::hdr_time(request);
            st.mzxid = zxid;
        }
        n.data = Some(text);
        self.add_change_record(n);
        request.qv = Some(std::sync::Arc::new(qv));
        Ok(())
    }

    fn p_set_acl(&self, request: &mut Request, r: &SetACLRequest) -> KResult<()> {
        self.check_session(request)?;
        Self::validate_path(&r.path, request.session_id)?;
        let list_acl = Self::fixup_acl(&request.auth_info, &r.acl)?;
        let node = self.record(&r.path)?;
        self.check_acl(&node.acl, perms::ADMIN, &request.auth_info)?;
        let new_version = Self::check_and_inc_version(node.stat.as_ref().map(|s| s.aversion).unwrap_or(0), r.version)?;
        request.txn = Some(TxnRecord::SetAcl(SetACLTxn { path: r.path.clone(), acl: list_acl.clone(), version: new_version }));
        let zxid = Self::hdr_zxid(request);
        let mut n = node.duplicate(zxid);
        if let Some(st) = n.stat.as_mut() {
            st.aversion = new_version;
        }
        n.acl = list_acl;
        self.add_change_record(n);
        Ok(())
    }

    fn p_check(&self, request: &mut Request, r: &CheckVersionRequest) -> KResult<()> {
        self.check_session(request)?;
        Self::validate_path(&r.path, request.session_id)?;
        let node = self.record(&r.path)?;
        self.check_acl(&node.acl, perms::READ, &request.auth_info)?;
        let v = Self::check_and_inc_version(node.stat.as_ref().map(|s| s.version).unwrap_or(0), r.version)?;
        request.txn = Some(TxnRecord::Check(CheckVersionTxn { path: r.path.clone(), version: v }));
        Ok(())
    }

    fn p_close_session(&self, request: &mut Request) {
        let zxid = Self::hdr_zxid(request);
        // Upstream copies the session's HashSet, applies the in-flight changes and lists
        // it; the resulting order is the order ephemerals are deleted and watchers hear.
        let paths: Vec<String> = {
            let oc = self.zks.outstanding_changes.lock();
            let mut es = self.zks.tree.read().ephemerals_of(request.session_id);
            let mut cap = java_hash::clone_capacity(es.len());
            for c in &oc.changes {
                match &c.stat {
                    None => es.retain(|p| p != &c.path),
                    Some(s) if s.ephemeral_owner == request.session_id => {
                        if !es.contains(&c.path) {
                            es.push(c.path.clone());
                            if es.len() > cap * 3 / 4 {
                                cap *= 2;
                            }
                        }
                    }
                    _ => {}
                }
            }
            java_hash::iteration_order(es, cap, |p| java_hash::string_hash(p))
        };
        for p in &paths {
            if let Ok(parent_path) = Self::get_parent_path_and_validate(p) {
                if let Ok(parent) = self.record(&parent_path) {
                    let mut pr = parent.duplicate(zxid);
                    if let Some(st) = pr.stat.as_mut() {
                        st.pzxid = zxid;
                    }
                    self.add_change_record(pr);
                }
            }
            self.add_change_record(ChangeRecord {
                zxid,
                path: p.clone(),
                stat: None,
                child_count: 0,
                acl: Vec::new(),
                data: None,
                node_digest: 0,
                tree_digest: 0,
            });
        }
        if crate::system_properties::get_bool_or("zookeeper.closeSessionTxn.enabled", true) {
            request.txn = Some(TxnRecord::CloseSession(CloseSessionTxn { paths2_delete: paths }));
        }
        self.zks.session_tracker().set_session_closing(request.session_id);
    }

    fn pending_changes(&self, ops: &[Op]) -> HashMap<String, ChangeRecord> {
        let oc = self.zks.outstanding_changes.lock();
        let mut m = HashMap::new();
        for op in ops {
            let path = op.path();
            if let Some(c) = oc.for_path.get(path) {
                m.insert(path.to_owned(), c.clone());
            }
            let Some(i) = path.rfind('/') else { continue };
            if path.contains('\0') {
                continue;
            }
            let parent = &path[..i];
            if let Some(c) = oc.for_path.get(parent) {
                m.insert(parent.to_owned(), c.clone());
            }
        }
        m
    }

    fn rollback_pending_changes(&self, zxid: i64, pending: &HashMap<String, ChangeRecord>) {
        let mut oc = self.zks.outstanding_changes.lock();
        while let Some(back) = oc.changes.back() {
            if back.zxid != zxid {
                break;
            }
            if let Some(c) = oc.changes.pop_back() {
                oc.for_path.remove(&c.path);
            }
        }
        let Some(first) = oc.changes.front().map(|c| c.zxid) else { return };
        for c in pending.values() {
            if c.zxid < first {
                continue;
            }
            oc.for_path.insert(c.path.clone(), c.clone());
        }
    }

    fn p_multi(&self, request: &mut Request, body: &[u8]) -> Result<(), PrepError> {
        let multi = match MultiOperationRecord::from_bytes(body) {
            Ok(m) => m,
            Err(e) => {
                let zxid = self.next_zxid();
                self.set_hdr(request, zxid, op_code::MULTI);
                return Err(PrepError::Marshalling(e.to_string()));
            }
        };
        if multi.ops.iter().any(|o| o.is_read()) {
            // Upstream fails on the missing txn of a read op and answers MarshallingError.
            let zxid = self.next_zxid();
            self.set_hdr(request, zxid, op_code::MULTI);
            return Err(PrepError::Marshalling("read op in multi".into()));
        }
        let zxid = self.next_zxid();
        let pending = self.pending_changes(&multi.ops);
        request.hdr = Some(TxnHeader {
            client_id: request.session_id,
            cxid: request.cxid,
            zxid,
            time: time::current_wall_time(),
            r#type: request.r#type,
        });
        let mut txns = Vec::with_capacity(multi.ops.len());
        let mut failed: Option<Code> = None;
        for op in &multi.ops {
            let (ty, rec) = if failed.is_some() {
                (op_code::ERROR, TxnRecord::Error(ErrorTxn { err: Code::RuntimeInconsistency.int() }))
            } else {
                request.txn = None;
                let r: KResult<()> = match op {
                    Op::Create { op, req, .. } => self.p_request2_txn_create(*op, request, req),
                    Op::Delete(r) => self.p_delete(request, r),
                    Op::SetData(r) => self.p_set_data(request, r),
                    Op::Check(r) => self.p_check(request, r),
                    // Reads cannot be in a multi: the record decoder refuses mixing, and a
                    // read-only "multi" reaches here only as garbage.
                    _ => Err(Code::MarshallingError),
                };
                match r {
                    Ok(()) => match request.txn.take() {
                        Some(t) => (op.op_code(), t),
                        None => (op_code::ERROR, TxnRecord::Error(ErrorTxn { err: Code::MarshallingError.int() })),
                    },
                    Err(code) => {
                        if code.int() > Code::ApiError.int() {
                            log::info!(
                                "Got user-level KeeperException when processing {} aborting remaining multi ops. Error Path:{} Error:KeeperErrorCode = {}",
                                request.describe(),
                                op.path(),
                                code.message()
                            );
                        }
                        failed = Some(code);
                        request.exception = Some(code);
                        self.rollback_pending_changes(zxid, &pending);
                        (op_code::ERROR, TxnRecord::Error(ErrorTxn { err: code.int() }))
                    }
                }
            };
            txns.push(rec.to_sub_txn(ty));
        }
        request.txn = Some(TxnRecord::Multi(MultiTxn { txns }));
        Ok(())
    }
}

/// The sentinel that stops the processor threads (upstream's `Request.requestOfDeath`).
pub const REQUEST_OF_DEATH: i32 = i32::MIN;

/// `String.format("%010d", n)`, negative numbers included (`-000000001`).
pub fn format_seq(n: i32) -> String {
    if n < 0 {
        format!("-{:09}", -(n as i64))
    } else {
        format!("{n:010}")
    }
}

fn decode<R: Record>(body: &[u8]) -> Result<R, PrepError> {
    R::from_bytes(body).map_err(|e| PrepError::Marshalling(e.to_string()))
}

enum PrepError {
    Keeper(Code),
    Marshalling(String),
}

impl From<Code> for PrepError {
    fn from(c: Code) -> Self {
        PrepError::Keeper(c)
    }
}

impl From<crate::jute::JuteError> for PrepError {
    fn from(e: crate::jute::JuteError) -> Self {
        PrepError::Marshalling(e.to_string())
    }
}
