//! `FastLeaderElection.Messenger.WorkerReceiver` (thread `WorkerReceiver[myid=N]`):
//! decodes what the connection manager received and
//! - answers a sender that is not a voter (an observer) with our current vote;
//! - while we are LOOKING, queues the notification for `lookForLeader`, and answers a
//!   LOOKING sender that is in an older round with our proposal;
//! - once we have settled, answers a LOOKING sender with the vote we settled on, so
//!   that a peer joining late learns the leader.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::notification::{decode, DecodeError, Layout, RawNotification, ToSend};
use super::{Notification, Shared};
use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::quorum_cnx_manager::Message;
use crate::server::quorum::vote::ServerState;

/// Upstream polls every 3 s to notice `stop`; a shorter poll lets a shutdown finish
/// promptly (an idle wake-up every half second costs nothing measurable).
const POLL: Duration = Duration::from_millis(500);

pub(crate) fn spawn(shared: Arc<Shared>) -> std::io::Result<JoinHandle<()>> {
    let name = format!("WorkerReceiver[myid={}]", shared.peer.myid);
    thread::Builder::new().name(name).spawn(move || {
        while !shared.stop.load(Ordering::Acquire) {
            if let Some(m) = shared.manager.poll_recv_queue(POLL) {
                handle(&shared, m);
            }
        }
        log::info!("WorkerReceiver is down");
    })
}

/// One received message, as the body of upstream's receive loop.
pub(crate) fn handle(shared: &Shared, response: Message) {
    let capacity = response.buffer.len();
    let raw = match decode(&response.buffer) {
        Ok(r) => r,
        Err(DecodeError::Short(len)) => {
            log::error!("Got a short response from server {}: {len}", response.sid);
            return;
        }
        Err(DecodeError::Malformed(why)) => {
            log::warn!(
                "Skipping the processing of a partial / malformed response message sent by sid={} (message length: {capacity}): {why}",
                response.sid
            );
            return;
        }
    };
    match raw.layout {
        Layout::Legacy28 => log::info!("Backward compatibility mode (28 bits), server id: {}", response.sid),
        Layout::Legacy40 => log::info!("Backward compatibility mode (36 bits), server id: {}", response.sid),
        Layout::BeforeReconfig => log::info!("Backward compatibility mode (before reconfig), server id: {}", response.sid),
        Layout::Current => {}
    }
    let config_version = process_config(shared, &raw, response.sid);
    let peer = &shared.peer;

    if !shared.valid_voter(response.sid) {
        // An observer (or a stranger): tell it what we decided, in our current round.
        let current = peer.current_vote();
        let _ = shared.sendqueue.send(ToSend {
            leader: current.id,
            zxid: current.zxid,
            election_epoch: shared.logicalclock.load(Ordering::Acquire),
            state: peer.peer_state(),
            sid: response.sid,
            peer_epoch: current.peer_epoch,
            config_data: shared.config_bytes(),
        });
        return;
    }
    log::debug!("Receive new notification message. My id = {}", peer.myid);
    let Some(ackstate) = raw.server_state() else {
        return;
    };
    let n = Notification {
        version: raw.version,
        leader: raw.leader,
        zxid: raw.zxid,
        election_epoch: raw.election_epoch,
        state: ackstate,
        sid: response.sid,
        peer_epoch: raw.peer_epoch,
        config_version,
    };
    log::info!(
        "Notification: my state:{}; n.sid:{}, n.state:{}, n.leader:{}, n.round:0x{:x}, n.peerEpoch:0x{:x}, n.zxid:0x{:x}, message format version:0x{:x}, n.config version:0x{}",
        peer.peer_state(),
        n.sid,
        n.state,
        n.leader,
        n.election_epoch,
        n.peer_epoch,
        n.zxid,
        n.version,
        n.config_version.map(|v| format!("{v:x}")).unwrap_or_else(|| "0".into())
    );
    if peer.peer_state() == ServerState::Looking {
        let looking_behind = ackstate == ServerState::Looking && n.election_epoch < shared.logicalclock.load(Ordering::Acquire);
        let _ = shared.recvqueue_tx.send(n);
        if looking_behind {
            // Bring a peer that is in an older round up to ours.
            let v = shared.get_vote();
            let _ = shared.sendqueue.send(ToSend {
                leader: v.id,
                zxid: v.zxid,
                election_epoch: shared.logicalclock.load(Ordering::Acquire),
                state: peer.peer_state(),
                sid: response.sid,
                peer_epoch: v.peer_epoch,
                config_data: shared.config_bytes(),
            });
        }
    } else if ackstate == ServerState::Looking {
        // We have settled and the sender has not: tell it who leads.
        let current = peer.current_vote();
        log::debug!(
            "Sending new notification. My id ={} recipient={} zxid=0x{:x} leader={} config version = {:x}",
            peer.myid,
            response.sid,
            current.zxid,
            current.id,
            peer.quorum_verifier().version()
        );
        let _ = shared.sendqueue.send(ToSend {
            leader: current.id,
            zxid: current.zxid,
            election_epoch: current.election_epoch,
            state: peer.peer_state(),
            sid: response.sid,
            peer_epoch: current.peer_epoch,
            config_data: shared.config_bytes(),
        });
    }
}

/// Parses the sender's config. A LOOKING peer adopts a newer one (`processReconfig`, a
/// no-op while reconfigEnabled=false) and restarts its election under it.
fn process_config(shared: &Shared, raw: &RawNotification, sid: i64) -> Option<i64> {
    let bytes = raw.config.as_ref()?;
    let text = String::from_utf8_lossy(bytes);
    match QuorumVerifier::from_config_string(&text, shared.peer.is_multi_address_enabled()) {
        Ok(rqv) => {
            let cur = shared.peer.quorum_verifier();
            if rqv.version() > cur.version() {
                log::info!("{} Received version: {:x} my version: {:x}", shared.peer.myid, rqv.version(), cur.version());
                if shared.peer.peer_state() == ServerState::Looking {
                    log::debug!("Invoking processReconfig(), state: {}", shared.peer.peer_state());
                    let version = rqv.version();
                    let changed = !rqv.same_as(&cur);
                    if shared.peer.is_reconfig_enabled() {
                        shared.peer.process_reconfig(rqv, None, false);
                        shared.peer.init_config_in_zk_database();
                    }
                    if changed && shared.peer.is_reconfig_enabled() {
                        log::info!("restarting leader election");
                        shared.peer.request_election_restart();
                    } else if changed {
                        log::info!("Reconfig is disabled: keeping config version {:x}, not restarting leader election", cur.version());
                    }
                    return Some(version);
                } else {
                    log::debug!("Skip processReconfig(), state: {}", shared.peer.peer_state());
                }
            }
            Some(rqv.version())
        }
        Err(e) => {
            log::error!("Something went wrong while processing config received from {sid}: {e}");
            None
        }
    }
}
