//! `SyncRequestProcessor`: logs txns and hands them on in batches (group commit). Runs
//! on the thread `SyncThread:N`; in a standalone server FinalRequestProcessor runs on
//! this thread too.
//!
//! Until the persistence layer lands the "log" is the in-memory tree itself: a batch is
//! collected as upstream collects `toFlush` (until the queue runs dry or `maxBatchSize`
//! requests), then flushed to the next processor in order. The disk write and fsync will
//! slot in at `flush`.

use std::sync::Arc;

use crossbeam_channel::{Receiver, TryRecvError};

use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::prep_request_processor::REQUEST_OF_DEATH;
use crate::server::request::Request;
use crate::server::zookeeper_server::ZooKeeperServer;
use crate::system_properties;

pub struct SyncRequestProcessor {
    _zks: Arc<ZooKeeperServer>,
    next: FinalRequestProcessor,
    max_batch_size: usize,
}

impl SyncRequestProcessor {
    pub fn new(zks: Arc<ZooKeeperServer>, next: FinalRequestProcessor) -> Self {
        let max_batch_size = system_properties::get_i64("zookeeper.maxBatchSize").unwrap_or(1000).max(1) as usize;
        SyncRequestProcessor { _zks: zks, next, max_batch_size }
    }

    pub fn run(mut self, queue: Receiver<Request>) {
        let mut to_flush: Vec<Request> = Vec::new();
        'outer: loop {
            let first = if to_flush.is_empty() {
                match queue.recv() {
                    Ok(r) => r,
                    Err(_) => break,
                }
            } else {
                match queue.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => {
                        self.flush(&mut to_flush);
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                }
            };
            if first.r#type == REQUEST_OF_DEATH {
                break 'outer;
            }
            to_flush.push(first);
            if to_flush.len() >= self.max_batch_size {
                self.flush(&mut to_flush);
            }
        }
        self.flush(&mut to_flush);
        log::info!("SyncRequestProcessor exited!");
    }

    fn flush(&mut self, to_flush: &mut Vec<Request>) {
        for r in to_flush.drain(..) {
            self.next.process_request(r);
        }
    }
}
