//! `RequestProcessor`: one stage of a server's request chain. A stage either runs on
//! the thread of the stage before it (upstream's synchronous `processRequest` calls) or
//! hands requests to its own thread through a queue ([`QueueProcessor`]).

use crossbeam_channel::Sender;

use crate::server::prep_request_processor::REQUEST_OF_DEATH;
use crate::server::request::Request;

pub trait RequestProcessor: Send {
    fn process_request(&mut self, request: Request);

    /// The requests of one group commit, in order, after their txns reached the disk.
    fn process_batch(&mut self, requests: &mut Vec<Request>) {
        for r in requests.drain(..) {
            self.process_request(r);
        }
    }

    /// Called once when the chain shuts down.
    fn shutdown(&mut self) {}
}

/// A stage that several threads may call at once (`&self`): what runs behind the
/// CommitProcessor, whose worker pool hands it reads of different sessions in parallel
/// (upstream's FinalRequestProcessor is shared the same way by `CommitProcWorkThread`s).
pub trait SharedRequestProcessor: Send + Sync {
    fn process_request(&self, request: Request);

    /// Called once when the chain shuts down.
    fn shutdown(&self) {}
}

/// Hands requests to the next stage's thread.
pub struct QueueProcessor(pub Sender<Request>);

impl RequestProcessor for QueueProcessor {
    fn process_request(&mut self, request: Request) {
        if self.0.send(request).is_err() {
            log::debug!("Request dropped: the next stage has stopped");
        }
    }

    fn shutdown(&mut self) {
        let _ = self.0.send(Request::new(None, 0, 0, REQUEST_OF_DEATH, Vec::new(), Vec::new()));
    }
}
