//! `ZooKeeper`: the application's handle. Synchronous calls block until their reply;
//! `*_async` calls take a callback that runs on the EventThread in reply order.

use std::sync::Arc;
use std::time::Duration;

use super::client_cnxn::{ClientCnxn, Completion, Packet, Reply, Shared, WatchRegistration};
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

/// One request: what to send, and how to turn the reply into the caller's result.
/// Shared by the synchronous and the callback form of every call.
struct Call<T> {
    op: i32,
    body: Vec<u8>,
    watch: Option<WatchRegistration>,
    decode: Box<dyn FnOnce(Reply, &Shared) -> Result<T> + Send>,
}

impl<T> Call<T> {
    fn new(op: i32, body: Vec<u8>, watch: Option<WatchRegistration>, decode: impl FnOnce(Reply, &Shared) -> Result<T> + Send + 'static) -> Self {
        Call { op, body, watch, decode: Box::new(decode) }
    }
}

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

    /// `updateServerList`: the client side of dynamic reconfiguration. Installs the
    /// servers of `connect_string` and, if the provider decides this client should move
    /// for the load to even out over the new ensemble (it always does when its server
    /// left; with probability `1 - old/new` when the ensemble grew), drops the current
    /// connection so the SendThread reconnects by the rebalancing plan, keeping the
    /// session. As upstream's ConnectStringParser, a chroot in the string is validated
    /// and then ignored: the handle keeps the chroot it was created with. A malformed
    /// string (or one without servers) is BadArguments, as in `connect`.
    pub fn update_server_list(&self, connect_string: &str) -> Result<()> {
        let cs = connect_string_parser::parse(connect_string).map_err(|e| {
            log::error!("{e}");
            KeeperError::new(Code::BadArguments)
        })?;
        let moving = self.cnxn.update_server_list(cs.servers).map_err(|e| {
            log::error!("{e}");
            KeeperError::new(Code::BadArguments)
        })?;
        log::info!("Server list updated to {connect_string}{}", if moving { "; reconnecting to rebalance" } else { "" });
        Ok(())
    }

    /// `testableRemoteSocketAddress`: the server the client has a socket to, if any.
    pub fn testable_remote_socket_address(&self) -> Option<std::net::SocketAddr> {
        self.cnxn.remote_socket_address()
    }

    /// `testableCloseSocket`: drop the current connection (the session is kept; the
    /// client reconnects to the next server).
    pub fn testable_close_socket(&self) {
        self.cnxn.testable_close_socket()
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
        if mode.is_ttl() && crate::common::ephemeral_type::ttl_to_ephemeral_owner(ttl).is_none() {
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

    fn validated(&self, path: &str) -> Result<String> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        Ok(self.server_path(path))
    }

    fn sync_call<T>(&self, c: Result<Call<T>>) -> Result<T> {
        let c = c?;
        let r = self.call(c.op, c.body, c.watch);
        (c.decode)(r, &self.cnxn.shared)
    }

    fn async_call<T: 'static>(&self, c: Result<Call<T>>, cb: impl FnOnce(Result<T>) + Send + 'static) {
        match c {
            Err(e) => cb(Err(e)),
            Ok(c) => {
                let shared = self.cnxn.shared.clone();
                let decode = c.decode;
                self.call_async(c.op, c.body, c.watch, Box::new(move |r| cb(decode(r, &shared))));
            }
        }
    }

    fn delete_call(&self, path: &str, version: i32) -> Result<Call<()>> {
        path_utils::validate_path(path).map_err(|e| bad_path(path, e))?;
        // delete("/") goes out as "/" even under a chroot: it never deletes the chroot.
        let server_path = if path == "/" { "/".to_owned() } else { self.server_path(path) };
        let p = path.to_owned();
        Ok(Call::new(op_code::DELETE, DeleteRequest { path: server_path, version }.to_bytes(), None, move |r, _| check(&r, Some(&p))))
    }

    pub fn delete(&self, path: &str, version: i32) -> Result<()> {
        self.sync_call(self.delete_call(path, version))
    }

    pub fn delete_async(&self, path: &str, version: i32, cb: impl FnOnce(Result<()>) + Send + 'static) {
        self.async_call(self.delete_call(path, version), cb)
    }

    fn exists_call(&self, path: &str, watch: Option<Watcher>) -> Result<Call<Option<Stat>>> {
        let sp = self.validated(path)?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Data, exists: true });
        let watching = reg.is_some();
        let p = path.to_owned();
        Ok(Call::new(op_code::EXISTS, ExistsRequest { path: sp, watch: watching }.to_bytes(), reg, move |r, _| {
            if r.err == Code::NoNode.int() {
                return Ok(None);
            }
            check(&r, Some(&p))?;
            Ok(Some(decode::<ExistsResponse>(&r)?.stat))
        }))
    }

    /// `exists`: NoNode is not an error here; a watch is set either way.
    pub fn exists(&self, path: &str, watch: Option<Watcher>) -> Result<Option<Stat>> {
        self.sync_call(self.exists_call(path, watch))
    }

    pub fn exists_async(&self, path: &str, watch: Option<Watcher>, cb: impl FnOnce(Result<Option<Stat>>) + Send + 'static) {
        self.async_call(self.exists_call(path, watch), cb)
    }

    fn get_data_call(&self, path: &str, watch: Option<Watcher>) -> Result<Call<(Option<Vec<u8>>, Stat)>> {
        let sp = self.validated(path)?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Data, exists: false });
        let watching = reg.is_some();
        let p = path.to_owned();
        Ok(Call::new(op_code::GET_DATA, GetDataRequest { path: sp, watch: watching }.to_bytes(), reg, move |r, _| {
            check(&r, Some(&p))?;
            let rsp: GetDataResponse = decode(&r)?;
            Ok((rsp.data, rsp.stat))
        }))
    }

    pub fn get_data(&self, path: &str, watch: Option<Watcher>) -> Result<(Option<Vec<u8>>, Stat)> {
        self.sync_call(self.get_data_call(path, watch))
    }

    pub fn get_data_async(&self, path: &str, cb: impl FnOnce(Result<(Option<Vec<u8>>, Stat)>) + Send + 'static) {
        self.async_call(self.get_data_call(path, None), cb)
    }

    pub fn get_data_watch_async(&self, path: &str, watch: Option<Watcher>, cb: impl FnOnce(Result<(Option<Vec<u8>>, Stat)>) + Send + 'static) {
        self.async_call(self.get_data_call(path, watch), cb)
    }

    fn set_data_call(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Call<Stat>> {
        let sp = self.validated(path)?;
        let p = path.to_owned();
        let req = SetDataRequest { path: sp, data: data.map(<[u8]>::to_vec), version };
        Ok(Call::new(op_code::SET_DATA, req.to_bytes(), None, move |r, _| {
            check(&r, Some(&p))?;
            Ok(decode::<SetDataResponse>(&r)?.stat)
        }))
    }

    pub fn set_data(&self, path: &str, data: Option<&[u8]>, version: i32) -> Result<Stat> {
        self.sync_call(self.set_data_call(path, data, version))
    }

    pub fn set_data_async(&self, path: &str, data: Option<&[u8]>, version: i32, cb: impl FnOnce(Result<Stat>) + Send + 'static) {
        self.async_call(self.set_data_call(path, data, version), cb)
    }

    fn get_children2_call(&self, path: &str, watch: Option<Watcher>) -> Result<Call<(Vec<String>, Stat)>> {
        let sp = self.validated(path)?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Child, exists: false });
        let watching = reg.is_some();
        let p = path.to_owned();
        Ok(Call::new(op_code::GET_CHILDREN2, GetChildren2Request { path: sp, watch: watching }.to_bytes(), reg, move |r, _| {
            check(&r, Some(&p))?;
            let rsp: GetChildren2Response = decode(&r)?;
            Ok((rsp.children, rsp.stat))
        }))
    }

    pub fn get_children2(&self, path: &str, watch: Option<Watcher>) -> Result<(Vec<String>, Stat)> {
        self.sync_call(self.get_children2_call(path, watch))
    }

    pub fn get_children2_async(&self, path: &str, watch: Option<Watcher>, cb: impl FnOnce(Result<(Vec<String>, Stat)>) + Send + 'static) {
        self.async_call(self.get_children2_call(path, watch), cb)
    }

    fn get_children_call(&self, path: &str, watch: Option<Watcher>) -> Result<Call<Vec<String>>> {
        let sp = self.validated(path)?;
        let reg = watch.map(|w| WatchRegistration { path: path.to_owned(), watcher: w, kind: WatchKind::Child, exists: false });
        let watching = reg.is_some();
        let p = path.to_owned();
        Ok(Call::new(op_code::GET_CHILDREN, GetChildrenRequest { path: sp, watch: watching }.to_bytes(), reg, move |r, _| {
            check(&r, Some(&p))?;
            Ok(decode::<GetChildrenResponse>(&r)?.children)
        }))
    }

    pub fn get_children(&self, path: &str, watch: Option<Watcher>) -> Result<Vec<String>> {
        self.sync_call(self.get_children_call(path, watch))
    }

    pub fn get_children_async(&self, path: &str, watch: Option<Watcher>, cb: impl FnOnce(Result<Vec<String>>) + Send + 'static) {
        self.async_call(self.get_children_call(path, watch), cb)
    }

    fn get_acl_call(&self, path: &str) -> Result<Call<(Vec<ACL>, Stat)>> {
        let sp = self.validated(path)?;
        let p = path.to_owned();
        Ok(Call::new(op_code::GET_ACL, GetACLRequest { path: sp }.to_bytes(), None, move |r, _| {
            check(&r, Some(&p))?;
            let rsp: GetACLResponse = decode(&r)?;
            Ok((rsp.acl, rsp.stat))
        }))
    }

    pub fn get_acl(&self, path: &str) -> Result<(Vec<ACL>, Stat)> {
        self.sync_call(self.get_acl_call(path))
    }

    pub fn get_acl_async(&self, path: &str, cb: impl FnOnce(Result<(Vec<ACL>, Stat)>) + Send + 'static) {
        self.async_call(self.get_acl_call(path), cb)
    }

    fn set_acl_call(&self, path: &str, acl: &[ACL], version: i32) -> Result<Call<Stat>> {
        let sp = self.validated(path)?;
        if acl.is_empty() {
            return Err(KeeperError::with_path(Code::InvalidAcl, path));
        }
        let p = path.to_owned();
        Ok(Call::new(op_code::SET_ACL, SetACLRequest { path: sp, acl: acl.to_vec(), version }.to_bytes(), None, move |r, _| {
            check(&r, Some(&p))?;
            Ok(decode::<SetACLResponse>(&r)?.stat)
        }))
    }

    pub fn set_acl(&self, path: &str, acl: &[ACL], version: i32) -> Result<Stat> {
        self.sync_call(self.set_acl_call(path, acl, version))
    }

    pub fn set_acl_async(&self, path: &str, acl: &[ACL], version: i32, cb: impl FnOnce(Result<Stat>) + Send + 'static) {
        self.async_call(self.set_acl_call(path, acl, version), cb)
    }

    fn sync_path_call(&self, path: &str) -> Result<Call<String>> {
        let sp = self.validated(path)?;
        let p = path.to_owned();
        Ok(Call::new(op_code::SYNC, SyncRequest { path: sp }.to_bytes(), None, move |r, shared| {
            check(&r, Some(&p))?;
            Ok(shared.strip_chroot(&decode::<SyncResponse>(&r)?.path))
        }))
    }

    pub fn sync(&self, path: &str) -> Result<String> {
        self.sync_call(self.sync_path_call(path))
    }

    pub fn sync_async(&self, path: &str, cb: impl FnOnce(Result<String>) + Send + 'static) {
        self.async_call(self.sync_path_call(path), cb)
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
        multi_result(&r, read, &self.cnxn.shared)
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
        // ZKWatchManager.removeWatcher, run on the reply: the path must have a local
        // watcher of the type (persistent ones count for Children and Data) ...
        let (present, kinds): (&[WatchKind], &[WatchKind]) = match watcher_type {
            1 => (&[WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive], &[WatchKind::Child]),
            2 => (&[WatchKind::Data, WatchKind::Exist, WatchKind::Persistent, WatchKind::PersistentRecursive], &[WatchKind::Data, WatchKind::Exist]),
            _ => (
                &[WatchKind::Data, WatchKind::Exist, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive],
                &[WatchKind::Data, WatchKind::Exist, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive],
            ),
        };
        if !self.watch_manager.contains(path, present) {
            return Err(KeeperError::with_path(Code::NoWatcher, path));
        }
        if r.err == 0 || local {
            // ... and only watchers of exactly that type are removed; the removed
            // watchers are told (Child/Data/PersistentWatchRemoved for the path).
            let removed = self.watch_manager.take(path, kinds);
            if removed.is_empty() && r.err == 0 {
                return Err(KeeperError::with_path(Code::NoWatcher, path));
            }
            for (kind, watchers) in removed {
                let event_type = match kind {
                    WatchKind::Child => crate::proto::event_type::CHILD_WATCH_REMOVED,
                    WatchKind::Data | WatchKind::Exist => crate::proto::event_type::DATA_WATCH_REMOVED,
                    WatchKind::Persistent | WatchKind::PersistentRecursive => crate::proto::event_type::PERSISTENT_WATCH_REMOVED,
                };
                let ev = super::WatchedEvent { event_type, state: crate::proto::keeper_state::SYNC_CONNECTED, path: Some(path.to_owned()) };
                self.cnxn.shared.events.queue_event(ev, watchers);
            }
        }
        check(&r, Some(path))
    }

    pub fn get_ephemerals_async(&self, prefix: &str, cb: impl FnOnce(Result<Vec<String>>) + Send + 'static) {
        let p = prefix.to_owned();
        let body = GetEphemeralsRequest { prefix_path: prefix.to_owned() }.to_bytes();
        self.async_call(
            Ok(Call::new(op_code::GET_EPHEMERALS, body, None, move |r, _| {
                check(&r, Some(&p))?;
                Ok(decode::<GetEphemeralsResponse>(&r)?.ephemerals)
            })),
            cb,
        )
    }

    pub fn get_all_children_number_async(&self, path: &str, cb: impl FnOnce(Result<i32>) + Send + 'static) {
        let call = self.validated(path).map(|sp| {
            let p = path.to_owned();
            Call::new(op_code::GET_ALL_CHILDREN_NUMBER, GetAllChildrenNumberRequest { path: sp }.to_bytes(), None, move |r, _| {
                check(&r, Some(&p))?;
                Ok(decode::<GetAllChildrenNumberResponse>(&r)?.total_number)
            })
        });
        self.async_call(call, cb)
    }

    pub fn add_watch_async(&self, path: &str, watcher: Watcher, mode: i32, cb: impl FnOnce(Result<()>) + Send + 'static) {
        let call = self.validated(path).map(|sp| {
            let kind = if mode == add_watch_mode::PERSISTENT_RECURSIVE { WatchKind::PersistentRecursive } else { WatchKind::Persistent };
            let reg = WatchRegistration { path: path.to_owned(), watcher, kind, exists: false };
            let p = path.to_owned();
            Call::new(op_code::ADD_WATCH, AddWatchRequest { path: sp, mode }.to_bytes(), Some(reg), move |r, _| check(&r, Some(&p)))
        });
        self.async_call(call, cb)
    }

    pub fn who_am_i_async(&self, cb: impl FnOnce(Result<Vec<ClientInfo>>) + Send + 'static) {
        self.async_call(
            Ok(Call::new(op_code::WHO_AM_I, Vec::new(), None, |r, _| Ok(decode::<WhoAmIResponse>(&r).map(|w| w.client_info).unwrap_or_default()))),
            cb,
        )
    }

    /// `multi` with a callback: the results, or the first error with the per-op results.
    pub fn multi_async(
        &self,
        ops: Vec<Op>,
        cb: impl FnOnce(std::result::Result<Vec<OpResult>, (KeeperError, Vec<OpResult>)>) + Send + 'static,
    ) {
        if ops.is_empty() {
            return cb(Ok(Vec::new()));
        }
        let ops: Vec<Op> = ops.into_iter().map(|o| self.chroot_op(o)).collect();
        let read = ops.iter().all(|o| o.is_read());
        let body = MultiOperationRecord { ops }.to_bytes();
        let shared = self.cnxn.shared.clone();
        self.call_async(
            if read { op_code::MULTI_READ } else { op_code::MULTI },
            body,
            None,
            Box::new(move |r| cb(multi_result(&r, read, &shared))),
        );
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

    /// `getConfig`: getData of `/zookeeper/config`, never chrooted; a watch is
    /// registered under that same path. Errors name `/zookeeper/config`.
    pub fn get_config(&self, watch: Option<Watcher>) -> Result<(Option<Vec<u8>>, Stat)> {
        const CONFIG_NODE: &str = "/zookeeper/config";
        let reg = watch.map(|w| WatchRegistration { path: CONFIG_NODE.to_owned(), watcher: w, kind: WatchKind::Data, exists: false });
        let watching = reg.is_some();
        let r = self.call(op_code::GET_DATA, GetDataRequest { path: CONFIG_NODE.to_owned(), watch: watching }.to_bytes(), reg);
        check(&r, Some(CONFIG_NODE))?;
        let rsp: GetDataResponse = decode(&r)?;
        Ok((rsp.data, rsp.stat))
    }

    /// `ZooKeeperAdmin.reconfigure` (opcode 16): the new config data and its Stat.
    /// Absent lists go out as null strings, as ZooKeeperAdmin sends them: upstream's
    /// leader treats a present `newMembers`, even an empty one, as a non-incremental
    /// reconfig.
    pub fn reconfig(&self, joining: Option<&str>, leaving: Option<&str>, members: Option<&str>, from_config: i64) -> Result<(Option<Vec<u8>>, Stat)> {
        let req = ReconfigRequest {
            joining_servers: joining.map(str::to_owned),
            leaving_servers: leaving.map(str::to_owned),
            new_members: members.map(str::to_owned),
            cur_config_id: from_config,
        };
        let r = self.call(op_code::RECONFIG, req.to_bytes(), None);
        // ZooKeeperAdmin raises its errors with the path "" (zkCli: "... : ").
        check(&r, Some(""))?;
        let rsp: GetDataResponse = decode(&r)?;
        Ok((rsp.data, rsp.stat))
    }

    /// `close`: closeSession, then stop both threads (a Closed event reaches watchers).
    pub fn close(&self) {
        if self.state().is_alive() {
            // As upstream's queuePacket does for closeSession: from now on a dropped
            // connection is the expected end, not a Disconnected to reconnect from.
            self.cnxn.shared.closing.store(true, std::sync::atomic::Ordering::Release);
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

/// Decodes a multi reply: for a write multi, the first failing op's code is the error.
fn multi_result(r: &Reply, read: bool, shared: &Shared) -> std::result::Result<Vec<OpResult>, (KeeperError, Vec<OpResult>)> {
    if r.err != 0 {
        return Err((KeeperError::from_raw(r.err, None), Vec::new()));
    }
    let rsp: MultiResponse = decode(r).map_err(|e| (e, Vec::new()))?;
    let results: Vec<OpResult> = rsp
        .results
        .into_iter()
        .map(|res| match res {
            OpResult::Create { path } => OpResult::Create { path: shared.strip_chroot(&path) },
            OpResult::Create2 { path, stat } => OpResult::Create2 { path: shared.strip_chroot(&path), stat },
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
