//! `Request`: one client (or internal) request as it travels the processor chain.

use std::sync::Arc;

use crate::common::time;
use crate::proto::data::Id;
use crate::proto::op_code;
use crate::proto::txn::TxnHeader;
use crate::proto::Code;
use crate::server::server_cnxn::ServerCnxn;
use crate::server::txn_record::TxnRecord;

/// The owner marker of requests that arrive on this server's client port
/// (upstream's `ServerCnxn.me`).
pub const OWNER_ME: u64 = 1;

pub struct Request {
    pub cnxn: Option<Arc<ServerCnxn>>,
    pub session_id: i64,
    pub cxid: i32,
    pub r#type: i32,
    /// The request body (what follows the RequestHeader).
    pub request: Vec<u8>,
    pub auth_info: Vec<Id>,
    pub owner: Option<u64>,
    pub hdr: Option<TxnHeader>,
    pub txn: Option<TxnRecord>,
    /// A KeeperException raised while preparing the request.
    pub exception: Option<Code>,
    pub zxid: i64,
    pub create_time: i64,
    /// The txn as a PROPOSAL carries it (TxnHeader ‖ body ‖ [TxnDigest]), once a quorum
    /// server has it in that form: written to the txn log as is and kept in the
    /// committedLog for learner syncs.
    pub txn_bytes: Option<std::sync::Arc<[u8]>>,
    /// The TxnDigest that came with a proposal.
    pub digest: Option<crate::proto::txn::TxnDigest>,
    /// `isLocalSession`: a createSession/closeSession of a local session, which no
    /// other server hears of.
    pub is_local_session: bool,
    /// `commitProcQueueStartTime`: when the CommitProcessor got the request (-1: never).
    pub commit_proc_queue_start_time: i64,
    /// `commitRecvTime`: when the CommitProcessor got the request's commit (-1: never).
    pub commit_recv_time: i64,
    /// `isThrottled`: it waited in the RequestThrottler longer than
    /// `zookeeper.throttled_op_wait_time`. It then passes through the pipeline untouched
    /// (not prepared, not forwarded to the leader, not committed, not applied) and is
    /// answered THROTTLEDOP in its turn.
    pub throttled: bool,
    /// `Request.qv`: the configuration a reconfig proposes (leader only).
    pub qv: Option<std::sync::Arc<crate::server::quorum::flexible::QuorumVerifier>>,
}

impl Request {
    pub fn new(
        cnxn: Option<Arc<ServerCnxn>>,
        session_id: i64,
        cxid: i32,
        r#type: i32,
        request: Vec<u8>,
        auth_info: Vec<Id>,
    ) -> Self {
        Request {
            cnxn,
            session_id,
            cxid,
            r#type,
            request,
            auth_info,
            owner: None,
            hdr: None,
            txn: None,
            exception: None,
            zxid: -1,
            create_time: time::current_elapsed_time(),
            txn_bytes: None,
            digest: None,
            is_local_session: false,
            commit_proc_queue_start_time: -1,
            commit_recv_time: -1,
            throttled: false,
            qv: None,
        }
    }

    /// `Request.isThrottlable`: session lifecycle and pings are never throttled.
    pub fn is_throttlable(&self) -> bool {
        !matches!(self.r#type, op_code::PING | op_code::CLOSE_SESSION | op_code::CREATE_SESSION)
    }

    /// The copy of a txn request the SyncRequestProcessor logs on a quorum server: the
    /// header and the wire bytes, nothing that answers a client.
    pub fn log_copy(&self) -> Request {
        let mut r = Request::new(None, self.session_id, self.cxid, self.r#type, Vec::new(), Vec::new());
        r.hdr = self.hdr.clone();
        r.zxid = self.zxid;
        r.txn_bytes = self.txn_bytes.clone();
        r.create_time = self.create_time;
        r.qv = self.qv.clone();
        if r.txn_bytes.is_none() {
            r.txn = self.txn.clone();
            r.digest = self.digest.clone();
        }
        r
    }

    /// `Request.isValid`: the types the pipeline accepts.
    pub fn is_valid(t: i32) -> bool {
        use op_code::*;
        matches!(
            t,
            CREATE | CREATE2 | CREATE_TTL | CREATE_CONTAINER | DELETE | DELETE_CONTAINER | EXISTS
                | GET_DATA | SET_DATA | GET_ACL | SET_ACL | GET_CHILDREN | SYNC | PING | GET_CHILDREN2
                | CHECK | MULTI | MULTI_READ | RECONFIG | CHECK_WATCHES | REMOVE_WATCHES | CREATE_SESSION
                | CLOSE_SESSION | SET_WATCHES | SET_WATCHES2 | GET_EPHEMERALS | GET_ALL_CHILDREN_NUMBER
                | ADD_WATCH | WHO_AM_I
        )
    }

    /// `Request.toString()`-ish for log lines.
    pub fn describe(&self) -> String {
        format!(
            "sessionid:0x{:x} type:{} cxid:0x{:x} zxid:0x{:x} txntype:{}",
            self.session_id,
            op_code::name(self.r#type),
            self.cxid,
            self.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1),
            self.hdr.as_ref().map(|h| h.r#type.to_string()).unwrap_or_else(|| "unknown".into())
        )
    }
}
