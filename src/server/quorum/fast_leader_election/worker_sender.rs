//! `FastLeaderElection.Messenger.WorkerSender` (thread `WorkerSender[myid=N]`): takes
//! queued notifications, encodes them and hands them to the connection manager.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{select, Receiver};

use super::notification::{build_msg, ToSend};
use super::Shared;

/// Upstream polls its queue every 3 s to notice `stop`.
const POLL: Duration = Duration::from_millis(3000);

pub(crate) fn spawn(shared: Arc<Shared>, sendqueue: Receiver<ToSend>, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    let name = format!("WorkerSender[myid={}]", shared.peer.myid);
    thread::Builder::new().name(name).spawn(move || {
        while !shared.stop.load(Ordering::Acquire) {
            select! {
                recv(sendqueue) -> m => match m {
                    Ok(m) => process(&shared, m),
                    Err(_) => break,
                },
                recv(stop) -> _ => break,
                default(POLL) => {}
            }
        }
        log::info!("WorkerSender is down");
    })
}

fn process(shared: &Shared, m: ToSend) {
    let buf = build_msg(m.state.ordinal(), m.leader, m.zxid, m.election_epoch, m.peer_epoch, &m.config_data);
    shared.manager.to_send(m.sid, Arc::from(buf));
}
