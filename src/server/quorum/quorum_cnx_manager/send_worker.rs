//! `QuorumCnxManager.SendWorker` (thread `SendWorker:<sid>`): writes the peer's queued
//! messages as `int length ‖ payload` frames. On a new connection it first re-sends the
//! last message sent to that peer if nothing newer waits, because the previous
//! connection may have died with it unread; duplicates are harmless to the election.

use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{bounded, select, Receiver, Sender};
use parking_lot::Mutex;

use super::QuorumCnxManager;
use crate::common::circular_blocking_queue::CircularBlockingQueue;
use crate::common::tls_stream::TlsStream;

/// How long the worker waits on its queue before checking whether it should stop
/// (upstream polls with 1000 ms).
const POLL: Duration = Duration::from_millis(1000);

/// The handle both workers of a connection and the manager share.
pub struct SendWorker {
    pub sid: i64,
    /// Tells apart successive workers for the same peer.
    pub id: u64,
    sock: TlsStream,
    running: AtomicBool,
    /// Dropped by `finish` to wake the worker at once.
    stop: Mutex<Option<Sender<()>>>,
    /// The paired RecvWorker still counts as running.
    recv_running: AtomicBool,
}

impl SendWorker {
    pub(crate) fn new(sid: i64, id: u64, sock: TlsStream) -> (Arc<SendWorker>, Receiver<()>) {
        let (tx, rx) = bounded(0);
        let sw = Arc::new(SendWorker {
            sid,
            id,
            sock,
            running: AtomicBool::new(true),
            stop: Mutex::new(Some(tx)),
            recv_running: AtomicBool::new(true),
        });
        (sw, rx)
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// `SendWorker.finish`: close the socket (which also ends the RecvWorker's read),
    /// stop both workers and unregister. Only the first call does anything.
    pub fn finish(&self, qcm: &QuorumCnxManager) -> bool {
        log::debug!("Calling SendWorker.finish for {}", self.sid);
        if !self.running.swap(false, Ordering::AcqRel) {
            return false;
        }
        let _ = self.sock.shutdown(Shutdown::Both);
        self.stop.lock().take();
        self.finish_recv(qcm);
        log::debug!("Removing entry from senderWorkerMap sid={}", self.sid);
        qcm.remove_sender_worker(self.sid, self.id);
        qcm.thread_cnt.fetch_sub(1, Ordering::AcqRel);
        false
    }

    /// `RecvWorker.finish`.
    pub(crate) fn finish_recv(&self, qcm: &QuorumCnxManager) {
        if self.recv_running.swap(false, Ordering::AcqRel) {
            log::debug!("RecvWorker.finish called. sid: {}. myId: {}", self.sid, qcm.my_sid);
            qcm.thread_cnt.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn recv_running(&self) -> bool {
        self.recv_running.load(Ordering::Acquire)
    }
}

fn send(out: &mut TlsStream, b: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(4 + b.len());
    frame.extend_from_slice(&(b.len() as i32).to_be_bytes());
    frame.extend_from_slice(b);
    out.write_all(&frame)?;
    out.flush()
}

pub(crate) fn spawn(
    qcm: Arc<QuorumCnxManager>,
    sw: Arc<SendWorker>,
    queue: Arc<CircularBlockingQueue<Arc<[u8]>>>,
    stop: Receiver<()>,
    sock: TlsStream,
) -> io::Result<()> {
    qcm.thread_cnt.fetch_add(1, Ordering::AcqRel);
    let sw2 = sw.clone();
    let q2 = qcm.clone();
    let spawned = thread::Builder::new().name(format!("SendWorker:{}", sw.sid)).spawn(move || run(q2, sw2, queue, stop, sock));
    if let Err(e) = spawned {
        sw.finish(&qcm);
        return Err(e);
    }
    Ok(())
}

fn run(qcm: Arc<QuorumCnxManager>, sw: Arc<SendWorker>, queue: Arc<CircularBlockingQueue<Arc<[u8]>>>, stop: Receiver<()>, mut out: TlsStream) {
    let sid = sw.sid;
    if queue.is_empty() {
        if let Some(b) = qcm.last_message_sent(sid) {
            log::debug!("Attempting to send lastMessage to sid={sid}");
            if let Err(e) = send(&mut out, &b) {
                log::error!("Failed to send last message. Shutting down thread. {e}");
                sw.finish(&qcm);
            }
        }
    }
    log::debug!("SendWorker thread started towards {sid}. myId: {}", qcm.my_sid);
    let rx = queue.receiver().clone();
    while sw.is_running() && !qcm.is_shutdown() {
        let b = select! {
            recv(rx) -> m => m.ok(),
            recv(stop) -> _ => None,
            default(POLL) => None,
        };
        if let Some(b) = b {
            qcm.set_last_message_sent(sid, b.clone());
            if let Err(e) = send(&mut out, &b) {
                log::warn!("Exception when using channel: for id {sid} my id = {}: {e}", qcm.my_sid);
                break;
            }
        }
    }
    sw.finish(&qcm);
    log::warn!("Send worker leaving thread id {sid} my id = {}", qcm.my_sid);
}
