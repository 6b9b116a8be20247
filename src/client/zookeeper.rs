//! `ZooKeeper`: the application's handle. Synchronous calls block until their reply;
//! `*_async` calls take a callback that runs on the EventThread in reply order.

use std::sync::Arc;
use std::time::Duration;

use super::client_cnxn::{ClientCnxn, Completion, Packet, Reply, WatchRegistration};
pub use super::client_cnxn::States;
use super::connect_string_parser;
use super::keeper_error::{KeeperError, Result};
use super::watched_event::Watcher;
use super::zk_watch_manager::{WatchKind, ZKWatchManager};
use crate::common::path_utils;
use crate::jute::Record;
use crate::proto::data::{ClientInfo, Stat, ACL};
use crate::proto::multi::{MultiOperationRecord, MultiResponse, Op, OpResult};
use crate::proto::proto::*;
use crate::proto::{add_watch_mode, op_code, Code, CreateMode};
use crate::system_properties;

pub struct ZooKeeper {
    cnxn: ClientCnxn,
    watch_manager: Arc<ZKWatchManager>,
    request_timeout: Option<Duration>,
}

fn check(r: &Reply, path: Option<&str>) -> Result<()> {
    if r.err == 0 {
        Ok(())
    } else {
        Err(KeeperError::from_raw(r.err, path))
    }
}

fn decode<R: Record>(r: &Reply) -> Result<R> {
    R::from_bytes(&r.body).map_err(|_| KeeperError::new(Code::MarshallingError))
}

fn bad_path(path: &str, e: String) -> KeeperError {
    log::debug!("invalid path {path}: {e}");
    KeeperError::with_path(Code::BadArguments, path)
}

impl ZooKeeper {
    /// Connects in the background, like upstream's constructor: the handle is usable at
    /// once; requests wait in the outgoing queue until the session is established.
    pub fn connect(connect_string: &str, session_timeout_ms: i32, watcher: Option<Watcher>) -> Result<ZooKeeper> {
        Self::connect_with(connect_string, session_timeout_ms, watcher, None, false)
    }

    /// With a session to resume (id and password) and/or read-only allowed.
    pub fn connect_with(
        connect_string: &str,
        session_timeout_ms: i32,
        watcher: Option<Watcher>,
        session: Option<(i64, Vec<u8>)>,
        can_be_read_only: bool,
    ) -> Result<ZooKeeper> {
        let cs = connect_string_parser::parse(connect_string).map_err(|e| {
            log::error!("{e}");
            KeeperError::new(Code::BadArguments)
        })?;
        log::info!("Initiating client connection, connectString={connect_string} sessionTimeout={session_timeout_ms}");
        let watch_manager = Arc::new(ZKWatchManager::new(watcher));
        let cnxn = ClientCnxn::start(cs.servers, cs.chroot, session_timeout_ms, watch_manager.clone(), session, can_be_read_only)
            .map_err(|_| KeeperError::new(Code::SystemError))?;
        let request_timeout = system_properties::get_i64("zookeeper.request.timeout").filter(|t| *t > 0).map(|t| Duration::from_millis(t as u64));
        Ok(ZooKeeper { cnxn, watch_manager, request_timeout })
    }

    pub fn state(&self) -> States {
        self.cnxn.shared.state()
    }

    pub fn session_id(&self) -> i64 {
        self.cnxn.shared.session_id.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn session_passwd(&self) -> Vec<u8> {
        self.cnxn.shared.passwd.lock().clone()
    }

    pub fn session_timeout(&self) -> i32 {
        self.cnxn.shared.negotiated_timeout.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces the default watcher (`register`).
    pub fn register(&self, w: Watcher) {
        *self.watch_manager.default_watcher.lock() = Some(w);
    }

    fn server_path(&self, p: &str) -> String {
        self.cnxn.shared.prepend_chroot(p)
    }

    fn call(&self, op: i32, body: Vec<u8>, watch: Option<WatchRegistration>) -> Reply {
        self.cnxn.submit(op, body, watch, self.request_timeout)
    }

    fn call_async(&self, op: i32, body: Vec<u8>, watch: Option<WatchRegistration>, cb: Box<dyn FnOnce(Reply) + Send>) {
        self.cnxn.queue_packet(Packet::new(op, body, watch, Completion::Async(cb)));
    }

    fn create_request(&self, path: &str, data: Option<&[u8]>, acl: &[ACL], mode: CreateMode, ttl: i64) -> Result<(i32, Vec<u8>)> {
        let check_path = if mode.is_sequential() { format!("{path}1") } else { path.to_owned() };
        path_utils::validate_path(&check_path).map_err(|e| bad_path(path, e))?;
        if acl.is_empty() {
            return Err(KeeperError::with_path(Code::InvalidAcl, path));
        }
        // EphemeralType.validateTTL, checked client-side as upstream's client does.
        if mode.is_ttl() && crate::server::ephemeral_type::ttl_to_ephemeral_owner(ttl).is_none() {
            return Err(KeeperError::with_path(Code::BadArguments, path));
        }
        let server_path = self.server_path(path);
        let op = if mode.is_ttl() {
            op_code::CREATE_TTL
        } else if mode.is_container() {
            op_code::CREATE_CONTAINER
        } else {
            op_code::CREATE2
        };
        let body = if mode.is_ttl() {
            CreateTTLRequest { path: server_path, data: data.map(<[u8]>::to_vec), acl: acl.to_vec(), flags: mode.flag(), ttl }.to_bytes()
        } else {
            CreateRequest { path: server_path, data: data.map(<[u8]>::to_vec), acl: acl.to_vec(), flags: mode.flag() }.to_bytes()
        };
        Ok((op, body))
    }

    /// `create`: the actual path (sequential suffix included) and the new node's Stat.
    pub fn create2(&self, path: &str, data: Option<&[u8]>, acl: &[ACL], mode: CreateMode, ttl: i64) -> Result<(String, Stat)> {
        let (op, body) = self.create_request(path, data, acl, mode, ttl)?;
        let r = self.call(op, body, None);
        check(&r, Some(path))?;
        let rsp: Create2Response = decode(&r)?;
        Ok((self.cnxn.shared.strip_chroot(&rsp.path), rsp.stat))
    }

    pub fn create(&self, path: &str, data: Option<&[u8]>, acl: &[ACL], mode: CreateMode) -> Result<String> {
        self.create2(path, data, acl, mode, 0).map(|(p, _)| p)
    }

    pub fn create_async(&self, path: &str, data: Option<&[u8]>, acl: &[ACL], mode: CreateMode, cb: impl FnOnce(Result<String>) + Send + 'static) {
        match self.create_request(path, data, acl, mode, 0) {
            Err(e) => cb(Err(e)),
            Ok((op, body)) => {
                let shared = self.cnxn.shared.clone();
                let p = path.to_owned();
                self.call_async(op, body, None, Box::new(move |r| {
                    cb(check(&r, Some(&p)).and_then(|_| decode::<Create2Response>(&r)).map(|c| shared.strip_chroot(&c.path)))
                }));
            }
        }
    }

    pub fn delete(&self, path: &str, version: i32) -> Result<()> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        // delete("/") goes out as "/" even under a chroot: it never deletes the chroot.
        let server_path = if path == "/" { "/".to_owned() } else { self.server_path(path) };
        let r = self.call(op_code::DELETE, DeleteRequest { path: server_path, version }.to_bytes(), None);
        check(&r, Some(path))
    }

    pub fn exists(&self, path: &str, watch: Option<Watcher>) -> Result<Option<Stat>> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Data, exists: true });
        let watching = reg.is_some();
        let r = self.call(op_code::EXISTS, ExistsRequest { path: self.server_path(path), watch: watching }.to_bytes(), reg);
        if r.err == Code::NoNode.int() {
            return Ok(None);
        }
        check(&r, Some(path))?;
        Ok(Some(decode::<ExistsResponse>(&r)?.stat))
    }

    pub fn get_data(&self, path: &str, watch: Option<Watcher>) -> Result<(Option<Vec<u8>>, Stat)> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Data, exists: false });
        let watching = reg.is_some();
        let r = self.call(op_code::GET_DATA, GetDataRequest { path: self.server_path(path), watch: watching }.to_bytes(), reg);
        check(&r, Some(path))?;
        let rsp: GetDataResponse = decode(&r)?;
        Ok((rsp.data, rsp.stat))
    }

    pub fn get_data_async(&self, path: &str, cb: impl FnOnce(Result<(Option<Vec<u8>>, Stat)>) + Send + 'static) {
        if let Err(e) = path_utils::validate_path(path) {
            return cb(Err(bad_path(path, e)));
        }
        let p = path.to_owned();
        self.call_async(op_code::GET_DATA, GetDataRequest { path: self.server_path(path), watch: false }.to_bytes(), None, Box::new(move |r| {
            cb(check(&r, Some(&p)).and_then(|_| decode::<GetDataResponse>(&r)).map(|g| (g.data, g.stat)))
        }));
    }

    pub fn set_data(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let req = SetDataRequest { path: self.server_path(path), data: data.map(<[u8]>::to_vec), version };
        let r = self.call(op_code::SET_DATA, req.to_bytes(), None);
        check(&r, Some(path))?;
        Ok(decode::<SetDataResponse>(&r)?.stat)
    }

    pub fn set_data_async(&self, path: &str, data: Option<&[u8]>, version: i32, cb: impl FnOnce(Result<Stat>) + Send + 'static) {
        if let Err(e) = path_utils::validate_path(path) {
            return cb(Err(bad_path(path, e)));
        }
        let p = path.to_owned();
        let req = SetDataRequest { path: self.server_path(path), data: data.map(<[u8]>::to_vec), version };
        self.call_async(op_code::SET_DATA, req.to_bytes(), None, Box::new(move |r| {
            cb(check(&r, Some(&p)).and_then(|_| decode::<SetDataResponse>(&r)).map(|s| s.stat))
        }));
    }

    pub fn get_children2(&self, path: &str, watch: Option<Watcher>) -> Result<(Vec<String>, Stat)> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Child, exists: false });
        let watching = reg.is_some();
        let r = self.call(op_code::GET_CHILDREN2, GetChildren2Request { path: self.server_path(path), watch: watching }.to_bytes(), reg);
        check(&r, Some(path))?;
        let rsp: GetChildren2Response = decode(&r)?;
        Ok((rsp.children, rsp.stat))
    }

    pub fn get_children(&self, path: &str, watch: Option<Watcher>) -> Result<Vec<String>> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Child, exists: false });
        let watching = reg.is_some();
        let r = self.call(op_code::GET_CHILDREN, GetChildrenRequest { path: self.server_path(path), watch: watching }.to_bytes(), reg);
        check(&r, Some(path))?;
        Ok(decode::<GetChildrenResponse>(&r)?.children)
    }

    pub fn get_acl(&self, path: &str) -> Result<(Vec<ACL>, Stat)> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let r = self.call(op_code::GET_ACL, GetACLRequest { path: self.server_path(path) }.to_bytes(), None);
        check(&r, Some(path))?;
        let rsp: GetACLResponse = decode(&r)?;
        Ok((rsp.acl, rsp.stat))
    }

    pub fn set_acl(&self, path: &str, acl: &[ACL], version: i32) -> Result<Stat> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        if acl.is_empty() {
            return Err(KeeperError::with_path(Code::InvalidAcl, path));
        }
        let r = self.call(op_code::SET_ACL, SetACLRequest { path: self.server_path(path), acl: acl.to_vec(), version }.to_bytes(), None);
        check(&r, Some(path))?;
        Ok(decode::<SetACLResponse>(&r)?.stat)
    }

    pub fn sync(&self, path: &str) -> Result<String> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let r = self.call(op_code::SYNC, SyncRequest { path: self.server_path(path) }.to_bytes(), None);
        check(&r, Some(path))?;
        Ok(self.cnxn.shared.strip_chroot(&decode::<SyncResponse>(&r)?.path))
    }

    /// `multi`: all or nothing. On failure the error is the first failing op's code and
    /// the per-op results are returned alongside.
    pub fn multi(&self, ops: Vec<Op>) -> std::result::Result<Vec<OpResult>, (KeeperError, Vec<OpResult>)> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let ops: Vec<Op> = ops.into_iter().map(|o| self.chroot_op(o)).collect();
        let read = ops.iter().all(|o| o.is_read());
        let body = MultiOperationRecord { ops }.to_bytes();
        let r = self.call(if read { op_code::MULTI_READ } else { op_code::MULTI }, body, None);
        if r.err != 0 {
            return Err((KeeperError::from_raw(r.err, None), Vec::new()));
        }
        let rsp: MultiResponse = decode(&r).map_err(|e| (e, Vec::new()))?;
        let results: Vec<OpResult> = rsp
            .results
            .into_iter()
            .map(|res| match res {
                OpResult::Create { path } => OpResult::Create { path: self.cnxn.shared.strip_chroot(&path) },
                OpResult::Create2 { path, stat } => OpResult::Create2 { path: self.cnxn.shared.strip_chroot(&path), stat },
                o => o,
            })
            .collect();
        if !read {
            if let Some(err) = results.iter().find_map(|o| match o {
                OpResult::Error { err } if *err != 0 => Some(*err),
                _ => None,
            }) {
                return Err((KeeperError::from_raw(err, None), results));
            }
        }
        Ok(results)
    }

    fn chroot_op(&self, op: Op) -> Op {
        match op {
            Op::Create { op, mut req, ttl_record } => {
                req.path = self.server_path(&req.path);
                Op::Create { op, req, ttl_record }
            }
            Op::Delete(mut r) => {
                r.path = self.server_path(&r.path);
                Op::Delete(r)
            }
            Op::SetData(mut r) => {
                r.path = self.server_path(&r.path);
                Op::SetData(r)
            }
            Op::Check(mut r) => {
                r.path = self.server_path(&r.path);
                Op::Check(r)
            }
            Op::GetChildren(mut r) => {
                r.path = self.server_path(&r.path);
                Op::GetChildren(r)
            }
            Op::GetData(mut r) => {
                r.path = self.server_path(&r.path);
                Op::GetData(r)
            }
        }
    }

    /// `getEphemerals`: the prefix is sent as given (no chroot), as upstream does.
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let r = self.call(op_code::GET_EPHEMERALS, GetEphemeralsRequest { prefix_path: prefix.to_owned() }.to_bytes(), None);
        check(&r, Some(prefix))?;
        Ok(decode::<GetEphemeralsResponse>(&r)?.ephemerals)
    }

    pub fn get_all_children_number(&self, path: &str) -> Result<i32> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let r = self.call(op_code::GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest { path: self.server_path(path) }.to_bytes(), None);
        check(&r, Some(path))?;
        Ok(decode::<GetAllChildrenNumberResponse>(&r)?.total_number)
    }

    /// `addWatch`: PERSISTENT (0) or PERSISTENT_RECURSIVE (1).
    pub fn add_watch(&self, path: &str, watcher: Watcher, mode: i32) -> Result<()> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let kind = if mode == add_watch_mode::PERSISTENT_RECURSIVE { WatchKind::PersistentRecursive } else { WatchKind::Persistent };
        let reg = WatchRegistration { path: path.to_owned(), watcher, kind, exists: false };
        let r = self.call(op_code::ADD_WATCH, AddWatchRequest { path: self.server_path(path), mode }.to_bytes(), Some(reg));
        check(&r, Some(path))
    }

    /// `removeAllWatches` (opcode 18); `local` removes client-side even if the server fails.
    pub fn remove_all_watches(&self, path: &str, watcher_type: i32, local: bool) -> Result<()> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        let r = self.call(op_code::REMOVE_WATCHES, RemoveWatchesRequest { path: self.server_path(path), r#type: watcher_type }.to_bytes(), None);
        if r.err == 0 || local {
            let kinds: &[WatchKind] = match watcher_type {
                1 => &[WatchKind::Child],
                2 => &[WatchKind::Data, WatchKind::Exist],
                _ => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive],
            };
            self.watch_manager.remove(path, kinds);
        }
        check(&r, Some(path))
    }

    /// `addAuthInfo`: sent now (when connected) and replayed on every reconnect.
    pub fn add_auth_info(&self, scheme: &str, auth: &[u8]) {
        self.cnxn.shared.auth.lock().push((scheme.to_owned(), auth.to_vec()));
        let ap = AuthPacket { r#type: 0, scheme: scheme.to_owned(), auth: Some(auth.to_vec()) };
        self.cnxn.queue_packet(Packet::new(op_code::AUTH, ap.to_bytes(), None, Completion::None));
    }

    pub fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let r = self.call(op_code::WHO_AM_I, Vec::new(), None);
        Ok(decode::<WhoAmIResponse>(&r).map(|w| w.client_info).unwrap_or_default())
    }

    /// `close`: closeSession, then stop both threads (a Closed event reaches watchers).
    pub fn close(&self) {
        if self.state().is_alive() {
            let r = self.cnxn.submit(op_code::CLOSE_SESSION, Vec::new(), None, Some(Duration::from_millis(self.session_timeout().max(1000) as u64)));
            if r.err != 0 {
                log::debug!("closeSession answered {}", r.err);
            }
        }
        self.cnxn.shutdown();
        log::info!("Session: 0x{:x} closed", self.session_id());
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        if self.state().is_alive() {
            self.close();
        } else {
            self.cnxn.shutdown();
        }
    }
}

/// Builders for multi ops (`Op.create`, `Op.delete`, ...).
pub mod ops {
    use super::*;

    pub fn create(path: &str, data: Option<&[u8]>, acl: &[ACL], mode: CreateMode) -> Op {
        let op = if mode.is_container() { op_code::CREATE_CONTAINER } else { op_code::CREATE };
        Op::Create {
            op,
            req: CreateTTLRequest { path: path.to_owned(), data: data.map(<[u8]>::to_vec), acl: acl.to_vec(), flags: mode.flag(), ttl: -1 },
            ttl_record: false,
        }
    }

    pub fn delete(path: &str, version: i32) -> Op {
        Op::Delete(DeleteRequest { path: path.to_owned(), version })
    }

    pub fn set_data(path: &str, data: Option<&[u8]>, version: i32) -> Op {
        Op::SetData(SetDataRequest { path: path.to_owned(), data: data.map(<[u8]>::to_vec), version })
    }

    pub fn check(path: &str, version: i32) -> Op {
        Op::Check(CheckVersionRequest { path: path.to_owned(), version })
    }

    pub fn get_data(path: &str) -> Op {
        Op::GetData(GetDataRequest { path: path.to_owned(), watch: false })
    }

    pub fn get_children(path: &str) -> Op {
        Op::GetChildren(GetChildrenRequest { path: path.to_owned(), watch: false })
    }
}
