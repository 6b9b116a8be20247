//! `FinalRequestProcessor`: applies txns to the tree, answers reads, and sends every
//! reply. Watch events raised while a txn is applied are queued on their connections
//! before the reply, which gives upstream's ordering.

use std::sync::Arc;

use crate::common::time;
use crate::jute::{OutputArchive, Record};
use crate::proto::data::{Stat, ACL};
use crate::proto::multi::{MultiOperationRecord, MultiResponse, Op, OpResult};
use crate::proto::proto::*;
use crate::proto::{op_code, perms, Code};
use crate::server::auth;
use crate::server::data_tree::{DataTree, ProcessTxnResult};
use crate::server::prep_request_processor::OutstandingChanges;
use crate::server::request::Request;
use crate::server::server_cnxn::ServerCnxn;
use crate::server::txn_record::TxnRecord;
use crate::server::watch::WatcherMode;
use crate::server::zookeeper_server::ZooKeeperServer;

pub struct FinalRequestProcessor {
    zks: Arc<ZooKeeperServer>,
}

/// A request's accounting, ended in two steps around its reply.
struct Answered<'a> {
    zks: &'a ZooKeeperServer,
    cnxn: &'a ServerCnxn,
}

impl<'a> Answered<'a> {
    /// A read leaves the pipeline before its reply is queued: a client that keeps
    /// exactly the allowed number of reads in flight sends the next one as soon as a
    /// reply reaches it, and must not find the reader stopped because this count lagged.
    /// (The reply's bytes count from the moment it is queued.)
    fn new(zks: &'a ZooKeeperServer, cnxn: &'a ServerCnxn, op: i32) -> Self {
        cnxn.read_left_pipeline(op);
        Answered { zks, cnxn }
    }
}

/// The rest when dropped, after the reply is queued whichever way `respond` returns
/// (upstream decrements after sendBuffer): [`ZooKeeperServer::request_finished`].
impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.zks.request_finished(self.cnxn);
    }
}

/// A reply body, serialized after the ReplyHeader when the request succeeded.
enum Body {
    None,
    Create(CreateResponse),
    Create2(Create2Response),
    Stat(Stat),
    GetData(GetDataResponse),
    GetAcl(GetACLResponse),
    Children(GetChildrenResponse),
    Children2(GetChildren2Response),
    AllChildren(GetAllChildrenNumberResponse),
    Sync(SyncResponse),
    Multi(MultiResponse),
    Error(ErrorResponse),
    WhoAmI(WhoAmIResponse),
    Ephemerals(GetEphemeralsResponse),
}

impl Body {
    fn write(&self, out: &mut OutputArchive) {
        match self {
            Body::None => {}
            Body::Create(r) => r.serialize(out),
            Body::Create2(r) => r.serialize(out),
            Body::Stat(r) => r.serialize(out),
            Body::GetData(r) => r.serialize(out),
            Body::GetAcl(r) => r.serialize(out),
            Body::Children(r) => r.serialize(out),
            Body::Children2(r) => r.serialize(out),
            Body::AllChildren(r) => r.serialize(out),
            Body::Sync(r) => r.serialize(out),
            Body::Multi(r) => r.serialize(out),
            Body::Error(r) => r.serialize(out),
            Body::WhoAmI(r) => r.serialize(out),
            Body::Ephemerals(r) => r.serialize(out),
        }
    }
}

fn decode<R: Record>(b: &[u8]) -> Result<R, Code> {
    R::from_bytes(b).map_err(|e| {
        log::error!("Failed to decode request body: {e}");
        Code::MarshallingError
    })
}

impl FinalRequestProcessor {
    pub fn new(zks: Arc<ZooKeeperServer>) -> Self {
        FinalRequestProcessor { zks }
    }

    /// `ZooKeeperServer.processTxn`: session bookkeeping, then the tree, then drop
    /// the outstanding change records the txn made current.
    fn apply(&self, request: &Request) -> ProcessTxnResult {
        if request.hdr.is_none() {
            // A local session's close is no txn, but the session ends all the same.
            if request.r#type == op_code::CLOSE_SESSION && request.is_local_session {
                self.zks.session_tracker().remove_session(request.session_id);
            }
            return ProcessTxnResult::default();
        }
        self.session_bookkeeping(request);
        let (rc, release) = {
            let mut oc = self.zks.outstanding_changes.lock();
            let mut tree = self.zks.tree.write();
            let rc = Self::apply_locked(&self.zks, &mut oc, &mut tree, request);
            (rc, tree.take_memory_release())
        };
        if release {
            log::debug!("znode count halved from its peak: releasing free memory");
            crate::common::memory::release_free_memory();
        }
        rc
    }

    /// `processTxnForSessionEvents`: the session table (persisted in snapshots) and the
    /// tracker follow the applied createSession / closeSession txns. The session id of a
    /// txn is its header's client id.
    fn session_bookkeeping(&self, request: &Request) {
        let Some(hdr) = request.hdr.as_ref() else { return };
        match hdr.r#type {
            op_code::CREATE_SESSION => {
                if let Some(TxnRecord::CreateSession(t)) = &request.txn {
                    let added = self.zks.db.sessions.lock().insert(hdr.client_id, t.time_out).is_none();
                    self.zks.session_tracker().commit_session(hdr.client_id, t.time_out, added);
                }
            }
            op_code::CLOSE_SESSION => {
                self.zks.db.sessions.lock().remove(&hdr.client_id);
                self.zks.session_tracker().remove_session(hdr.client_id);
            }
            _ => {}
        }
    }

    fn apply_locked(zks: &ZooKeeperServer, oc: &mut OutstandingChanges, tree: &mut DataTree, request: &Request) -> ProcessTxnResult {
        let Some(hdr) = request.hdr.as_ref() else { return ProcessTxnResult::default() };
        let rc = tree.process_txn(hdr, request.txn.as_ref());
        if let Some(d) = &request.digest {
            tree.compare_digest(hdr, d);
        }
        oc.applied(hdr.zxid);
        // A quorum server keeps the txn for learner syncs (`addCommittedProposal`).
        if let Some(bytes) = &request.txn_bytes {
            zks.db.add_committed_proposal(hdr.zxid, bytes.clone());
        }
        rc
    }

    /// Requests whose apply and reply touch nothing but the tree and their connection:
    /// a run of them is applied under one hold of the tree's write lock.
    fn batchable(request: &Request) -> bool {
        request.hdr.is_some()
            && matches!(
                request.r#type,
                op_code::CREATE
                    | op_code::CREATE2
                    | op_code::CREATE_TTL
                    | op_code::CREATE_CONTAINER
                    | op_code::DELETE
                    | op_code::DELETE_CONTAINER
                    | op_code::SET_DATA
                    | op_code::SET_ACL
                    | op_code::MULTI
                    | op_code::CHECK
            )
    }

    /// A group commit's requests, in order. Runs of plain write txns are applied and
    /// answered under one hold of the tree's write lock instead of one per txn: while a
    /// fuzzy snapshot walks the tree in read-lock slices, a lock per txn meant one txn
    /// per slice (~270 txns/s, and half-second latency spikes at 1M nodes). Each reply
    /// is still queued right after its own txn, so watch events and replies leave in
    /// the order upstream's one-at-a-time FinalRequestProcessor gives them.
    pub fn process_batch(&self, requests: &mut Vec<Request>) {
        let mut it = requests.drain(..).peekable();
        while let Some(first) = it.next() {
            if !Self::batchable(&first) {
                self.process_request(first);
                continue;
            }
            let mut oc = self.zks.outstanding_changes.lock();
            let mut tree = self.zks.tree.write();
            let mut next = Some(first);
            while let Some(request) = next {
                let rc = Self::apply_locked(&self.zks, &mut oc, &mut tree, &request);
                let last_zxid = tree.last_processed_zxid;
                self.respond(request, rc, last_zxid);
                next = it.next_if(Self::batchable);
            }
            let release = tree.take_memory_release();
            drop(tree);
            drop(oc);
            if release {
                log::debug!("znode count halved from its peak: releasing free memory");
                crate::common::memory::release_free_memory();
            }
        }
    }

    pub fn process_request(&self, request: Request) {
        let rc = self.apply(&request);
        if request.r#type == op_code::CLOSE_SESSION && request.cnxn.is_none() {
            // Expired by the tracker: close whatever connection still holds the session.
            self.zks.close_session_cnxns(request.session_id);
            return;
        }
        let last_zxid = self.zks.tree.read().last_processed_zxid;
        self.respond(request, rc, last_zxid);
    }

    /// Builds and queues the reply of an applied request. For a batchable request this
    /// runs with the tree's write lock held, so it must not take the tree lock.
    fn respond(&self, request: Request, rc: ProcessTxnResult, last_zxid: i64) {
        let Some(cnxn) = request.cnxn.clone() else { return };
        let _answered = Answered::new(&self.zks, &cnxn, request.r#type);
        let mut last_op = "NA";
        let (err, body) = match self.handle(&request, &cnxn, &rc, &mut last_op) {
            Ok(Handled::Reply(b)) => (Code::Ok, b),
            Ok(Handled::ReplyErr(c, b)) => (c, b),
            Ok(Handled::Done) => return,
            Err(code) => (code, Body::None),
        };
        let end = time::current_elapsed_time();
        cnxn.update_stats_for_response(request.cxid as i64, last_zxid, last_op, request.create_time, end);
        self.zks.stats.update_latency_for(end - request.create_time, request.hdr.is_some());
        let hdr = ReplyHeader { xid: request.cxid, zxid: last_zxid, err: err.int() };
        if matches!(body, Body::None) {
            cnxn.send_response(&hdr, None);
        } else {
            cnxn.send_response(&hdr, Some(&|o: &mut OutputArchive| body.write(o)));
        }
        if request.r#type == op_code::CLOSE_SESSION {
            cnxn.send_close();
        }
    }

    fn handle(&self, request: &Request, cnxn: &Arc<ServerCnxn>, rc: &ProcessTxnResult, last_op: &mut &'static str) -> Result<Handled, Code> {
        let zks = &self.zks;
        if let Some(hdr) = &request.hdr {
            if hdr.r#type == op_code::ERROR {
                if let Some(e) = request.exception {
                    return Err(e);
                }
                if let Some(TxnRecord::Error(e)) = &request.txn {
                    return Err(Code::from_i32(e.err).unwrap_or(Code::SystemError));
                }
                return Err(Code::SystemError);
            }
        }
        if let Some(e) = request.exception {
            if e == Code::SessionMoved {
                cnxn.send_close();
                return Ok(Handled::Done);
            }
            if request.r#type != op_code::MULTI {
                return Err(e);
            }
        }
        if request.throttled {
            return Err(Code::Throttled);
        }
        let body_bytes = request.request.as_slice();
        *last_op = op_code::short_name(request.r#type);
        let code = |c: i32| Code::from_i32(c).unwrap_or(Code::SystemError);
        let body = match request.r#type {
            op_code::PING => {
                let end = time::current_elapsed_time();
                let last_zxid = zks.tree.read().last_processed_zxid;
                cnxn.update_stats_for_response(request.cxid as i64, last_zxid, "PING", request.create_time, end);
                zks.stats.update_latency_for(end - request.create_time, false);
                cnxn.send_record::<ReplyHeader>(&ReplyHeader { xid: -2, zxid: last_zxid, err: 0 }, None);
                return Ok(Handled::Done);
            }
            op_code::CREATE_SESSION => {
                let end = time::current_elapsed_time();
                cnxn.update_stats_for_response(request.cxid as i64, rc.zxid, "SESS", request.create_time, end);
                zks.stats.update_latency_for(end - request.create_time, request.hdr.is_some());
                zks.finish_session_init(cnxn, true);
                return Ok(Handled::Done);
            }
            op_code::MULTI => {
                let mut results = Vec::with_capacity(rc.multi_result.len());
                for sub in &rc.multi_result {
                    results.push(match sub.r#type {
                        op_code::CHECK => OpResult::Check,
                        op_code::CREATE => OpResult::Create { path: sub.path.clone() },
                        op_code::CREATE2 | op_code::CREATE_TTL | op_code::CREATE_CONTAINER => {
                            OpResult::Create2 { path: sub.path.clone(), stat: sub.stat.clone().unwrap_or_default() }
                        }
                        op_code::DELETE | op_code::DELETE_CONTAINER => OpResult::Delete,
                        op_code::SET_DATA => OpResult::SetData { stat: sub.stat.clone().unwrap_or_default() },
                        op_code::ERROR => {
                            if sub.err == Code::SessionMoved.int() {
                                cnxn.send_close();
                                return Ok(Handled::Done);
                            }
                            OpResult::Error { err: sub.err }
                        }
                        _ => return Err(Code::MarshallingError),
                    });
                }
                Body::Multi(MultiResponse { results })
            }
            op_code::MULTI_READ => {
                let m: MultiOperationRecord = decode(body_bytes)?;
                let mut results = Vec::with_capacity(m.ops.len());
                for op in &m.ops {
                    let r = match op {
                        Op::GetChildren(g) => self
                            .get_children(&g.path, request, None)
                            .map(|(children, _)| OpResult::GetChildren { children }),
                        Op::GetData(g) => {
                            self.get_data(&g.path, request, None).map(|(data, stat)| OpResult::GetData { data, stat })
                        }
                        // Upstream throws an IOException here: MARSHALLINGERROR, with the
                        // results gathered so far still sent as the body.
                        _ => {
                            return Ok(Handled::ReplyErr(Code::MarshallingError, Body::Multi(MultiResponse { results })))
                        }
                    };
                    results.push(r.unwrap_or_else(|c| OpResult::Error { err: c.int() }));
                }
                Body::Multi(MultiResponse { results })
            }
            op_code::CREATE => {
                return Ok(Handled::ReplyErr(code(rc.err), Body::Create(CreateResponse { path: rc.path.clone() })))
            }
            op_code::CREATE2 | op_code::CREATE_TTL | op_code::CREATE_CONTAINER => {
                return Ok(Handled::ReplyErr(
                    code(rc.err),
                    Body::Create2(Create2Response { path: rc.path.clone(), stat: rc.stat.clone().unwrap_or_default() }),
                ))
            }
            op_code::DELETE | op_code::DELETE_CONTAINER => return Ok(Handled::ReplyErr(code(rc.err), Body::None)),
            op_code::SET_DATA | op_code::SET_ACL => {
                return Ok(Handled::ReplyErr(code(rc.err), Body::Stat(rc.stat.clone().unwrap_or_default())))
            }
            op_code::RECONFIG => {
                // The committed configuration as this server now has it (processReconfig
                // ran before the commit reached here).
                let data = zks.quorum_peer.as_ref().map(|p| p.quorum_verifier().to_string().into_bytes());
                return Ok(Handled::ReplyErr(
                    code(rc.err),
                    Body::GetData(GetDataResponse { data, stat: rc.stat.clone().unwrap_or_default() }),
                ));
            }
            op_code::CLOSE_SESSION => return Ok(Handled::ReplyErr(code(rc.err), Body::None)),
            op_code::SYNC => {
                let r: SyncRequest = decode(body_bytes)?;
                Body::Sync(SyncResponse { path: r.path })
            }
            op_code::CHECK => return Ok(Handled::ReplyErr(code(rc.err), Body::Stat(rc.stat.clone().unwrap_or_default()))),
            op_code::EXISTS => {
                let r: ExistsRequest = decode(body_bytes)?;
                if r.path.contains('\0') {
                    return Err(Code::BadArguments);
                }
                let w = if r.watch { Some(cnxn) } else { None };
                let stat = zks.tree.write().stat_node(&r.path, w)?;
                Body::Stat(stat)
            }
            op_code::GET_DATA => {
                let r: GetDataRequest = decode(body_bytes)?;
                let (data, stat) = self.get_data(&r.path, request, if r.watch { Some(cnxn) } else { None })?;
                Body::GetData(GetDataResponse { data, stat })
            }
            op_code::SET_WATCHES | op_code::SET_WATCHES2 => {
                let (rel, d, e, c, p, pr) = if request.r#type == op_code::SET_WATCHES {
                    let r: SetWatches = decode(body_bytes)?;
                    (r.relative_zxid, r.data_watches, r.exist_watches, r.child_watches, vec![], vec![])
                } else {
                    let r: SetWatches2 = decode(body_bytes)?;
                    (
                        r.relative_zxid,
                        r.data_watches,
                        r.exist_watches,
                        r.child_watches,
                        r.persistent_watches,
                        r.persistent_recursive_watches,
                    )
                };
                zks.tree.write().set_watches(rel, &d, &e, &c, &p, &pr, cnxn);
                Body::None
            }
            op_code::ADD_WATCH => {
                let r: AddWatchRequest = decode(body_bytes)?;
                let mode = WatcherMode::from_zoo_def(r.mode).ok_or(Code::MarshallingError)?;
                zks.tree.write().add_watch(&r.path, cnxn, mode);
                Body::Error(ErrorResponse { err: 0 })
            }
            op_code::GET_ACL => {
                let r: GetACLRequest = decode(body_bytes)?;
                let tree = zks.tree.read();
                let n = tree.get_node(&r.path).ok_or(Code::NoNode)?;
                let acl = tree.acl_of(n);
                zks.check_acl(&acl, perms::READ | perms::ADMIN, &request.auth_info)?;
                let stat = n.copy_stat();
                let acl = if zks.check_acl(&acl, perms::ADMIN, &request.auth_info).is_ok() {
                    acl
                } else {
                    acl.into_iter()
                        .map(|a| {
                            if a.id.scheme == "digest" {
                                let user = a.id.id.split(':').next().unwrap_or("");
                                ACL::new(a.perms, "digest", &format!("{user}:x"))
                            } else {
                                a
                            }
                        })
                        .collect()
                };
                Body::GetAcl(GetACLResponse { acl, stat })
            }
            op_code::GET_CHILDREN => {
                let r: GetChildrenRequest = decode(body_bytes)?;
                let (children, _) = self.get_children(&r.path, request, if r.watch { Some(cnxn) } else { None })?;
                Body::Children(GetChildrenResponse { children })
            }
            op_code::GET_ALL_CHILDREN_NUMBER => {
                let r: GetAllChildrenNumberRequest = decode(body_bytes)?;
                let tree = zks.tree.read();
                let n = tree.get_node(&r.path).ok_or(Code::NoNode)?;
                zks.check_acl(tree.acl_cache.acl_ref(n.acl), perms::READ, &request.auth_info)?;
                Body::AllChildren(GetAllChildrenNumberResponse { total_number: tree.all_children_number(&r.path) })
            }
            op_code::GET_CHILDREN2 => {
                let r: GetChildren2Request = decode(body_bytes)?;
                let (children, stat) = self.get_children(&r.path, request, if r.watch { Some(cnxn) } else { None })?;
                Body::Children2(GetChildren2Response { children, stat })
            }
            op_code::CHECK_WATCHES => {
                let r: CheckWatchesRequest = decode(body_bytes)?;
                if !(1..=3).contains(&r.r#type) {
                    return Err(Code::MarshallingError);
                }
                // Upstream's PathParentIterator.next() computes the parent eagerly with
                // substring(0, lastIndexOf('/')): a non-empty path without '/' throws
                // StringIndexOutOfBoundsException, which becomes MARSHALLINGERROR.
                if !r.path.is_empty() && !r.path.contains('/') {
                    return Err(Code::MarshallingError);
                }
                if !zks.tree.read().contains_watcher(&r.path, r.r#type, cnxn.id) {
                    return Err(Code::NoWatcher);
                }
                Body::None
            }
            op_code::REMOVE_WATCHES => {
                let r: RemoveWatchesRequest = decode(body_bytes)?;
                if !(1..=3).contains(&r.r#type) {
                    return Err(Code::MarshallingError);
                }
                if !zks.tree.write().remove_watch(&r.path, r.r#type, cnxn.id) {
                    return Err(Code::NoWatcher);
                }
                Body::None
            }
            op_code::WHO_AM_I => Body::WhoAmI(WhoAmIResponse { client_info: auth::client_infos(&request.auth_info) }),
            op_code::GET_EPHEMERALS => {
                let r: GetEphemeralsRequest = decode(body_bytes)?;
                let all = zks.tree.read().ephemerals_of(request.session_id);
                let prefix = r.prefix_path.trim();
                let ephemerals = if prefix.is_empty() || prefix == "/" {
                    all
                } else {
                    all.into_iter().filter(|p| p.starts_with(r.prefix_path.as_str())).collect()
                };
                Body::Ephemerals(GetEphemeralsResponse { ephemerals })
            }
            _ => Body::None,
        };
        Ok(Handled::Reply(body))
    }

    fn get_data(&self, path: &str, request: &Request, w: Option<&Arc<ServerCnxn>>) -> Result<(Option<Vec<u8>>, Stat), Code> {
        let zks = &self.zks;
        {
            let tree = zks.tree.read();
            let n = tree.get_node(path).ok_or(Code::NoNode)?;
            zks.check_acl(tree.acl_cache.acl_ref(n.acl), perms::READ, &request.auth_info)?;
            if w.is_none() {
                // The read-lock path: counted in read_per_namespace as DataTree.getData is.
                crate::server::metrics::server_metrics::record_read(path, n.data_len() as i64);
                return Ok((n.data_vec(), n.copy_stat()));
            }
        }
        zks.tree.write().get_data(path, w)
    }

    fn get_children(&self, path: &str, request: &Request, w: Option<&Arc<ServerCnxn>>) -> Result<(Vec<String>, Stat), Code> {
        let zks = &self.zks;
        {
            let tree = zks.tree.read();
            let n = tree.get_node(path).ok_or(Code::NoNode)?;
            zks.check_acl(tree.acl_cache.acl_ref(n.acl), perms::READ, &request.auth_info)?;
            if w.is_none() {
                crate::server::metrics::server_metrics::record_read(path, n.children.iter().map(|c| c.encode_utf16().count() as i64).sum());
                return Ok((n.children.iter().map(str::to_owned).collect(), n.copy_stat()));
            }
        }
        zks.tree.write().get_children(path, w)
    }
}

impl crate::server::request_processor::RequestProcessor for FinalRequestProcessor {
    fn process_request(&mut self, request: Request) {
        FinalRequestProcessor::process_request(self, request)
    }

    fn process_batch(&mut self, requests: &mut Vec<Request>) {
        FinalRequestProcessor::process_batch(self, requests)
    }
}

impl crate::server::request_processor::SharedRequestProcessor for FinalRequestProcessor {
    fn process_request(&self, request: Request) {
        FinalRequestProcessor::process_request(self, request)
    }
}

enum Handled {
    Reply(Body),
    /// A write's reply: its code comes from applying the txn; the body is sent as
    /// upstream does (it builds the response before looking at the code).
    ReplyErr(Code, Body),
    Done,
}
