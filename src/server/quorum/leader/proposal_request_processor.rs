//! The leader's chain after PrepRequestProcessor (runs on the ProcessThread):
//! `ProposalRequestProcessor` hands every request to the CommitProcessor, then proposes
//! each txn and sends it to the SyncRequestProcessor to be logged; a learner's sync is
//! answered through `Leader.processSync` instead. The SyncRequestProcessor's next stage is
//! the [`AckRequestProcessor`] (the leader acks its own proposals once logged), and
//! FinalRequestProcessor runs behind the CommitProcessor through the
//! [`ToBeAppliedRequestProcessor`].

use std::sync::Arc;

use crossbeam_channel::Sender;

use super::Leader;
use crate::proto::op_code;
use crate::server::quorum::commit_processor::CommitSink;
use crate::server::request::{Request, OWNER_ME};
use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::request_processor::{RequestProcessor, SharedRequestProcessor};

pub struct ProposalRequestProcessor {
    pub leader: Arc<Leader>,
    pub commit: CommitSink,
    pub sync: Sender<Request>,
}

impl RequestProcessor for ProposalRequestProcessor {
    fn process_request(&mut self, mut request: Request) {
        let learner_sync = request.r#type == op_code::SYNC && request.owner.is_some_and(|o| o != OWNER_ME);
        if learner_sync {
            match request.owner.and_then(|o| self.leader.handler_by_owner(o)) {
                Some(h) => self.leader.process_sync(&h),
                None => log::warn!("Sync from a learner that is gone: {}", request.describe()),
            }
            return;
        }
        if request.hdr.is_none() {
            self.commit.request(request);
            return;
        }
        // The CommitProcessor must hold the request before its commit can exist: hand it
        // over first (as upstream), with the txn in wire form for the committed log.
        Leader::marshall(&mut request);
        let log_copy = request.log_copy();
        self.commit.request(request);
        if let Err(e) = self.leader.propose(&log_copy) {
            log::error!("Unable to propose {}: {e}", log_copy.describe());
            return;
        }
        if self.sync.send(log_copy).is_err() {
            log::warn!("SyncRequestProcessor has stopped");
        }
    }

    fn shutdown(&mut self) {
        self.commit.shutdown();
        let _ = self.sync.send(Request::new(None, 0, 0, crate::server::prep_request_processor::REQUEST_OF_DEATH, Vec::new(), Vec::new()));
    }
}

/// `AckRequestProcessor`: the leader's own ack of each logged proposal.
pub struct AckRequestProcessor {
    pub leader: Arc<Leader>,
}

impl RequestProcessor for AckRequestProcessor {
    fn process_request(&mut self, request: Request) {
        if let Some(hdr) = &request.hdr {
            self.leader.process_ack(self.leader.peer.myid, hdr.zxid);
        }
    }
}

/// `Leader.ToBeAppliedRequestProcessor`: after FinalRequestProcessor applied a txn, it is
/// no longer "to be applied". It runs behind the CommitProcessor, so its workers call it
/// for reads in parallel; writes (the only requests with a txn to mark applied) come one
/// at a time from the CommitProcessor thread. As upstream, the next stage is always the
/// FinalRequestProcessor.
pub struct ToBeAppliedRequestProcessor {
    pub leader: Arc<Leader>,
    pub next: FinalRequestProcessor,
}

impl SharedRequestProcessor for ToBeAppliedRequestProcessor {
    fn process_request(&self, request: Request) {
        let zxid = request.hdr.as_ref().map(|h| h.zxid);
        self.next.process_request(request);
        if let Some(z) = zxid {
            self.leader.applied(z);
        }
    }
}
