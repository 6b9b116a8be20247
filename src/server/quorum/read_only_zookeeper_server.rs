//! `ReadOnlyZooKeeperServer` (`readonlymode.enabled`): while a peer looks for a leader
//! longer than max(2 s, tickTime), it serves reads from its database to clients that
//! said they can be read-only, as a partitioned server: `ReadOnlyRequestProcessor:<sid>`
//! answers writes, syncs and global session changes with NOTREADONLY and passes the
//! rest to Prep → Final. Its sessions are a learner's (`LearnerSessionTracker`): with
//! `localSessionsEnabled` new sessions are local and can be created here; without, no
//! client can get a session at all (as upstream).

use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::proto::op_code;
use crate::proto::proto::ReplyHeader;
use crate::proto::Code;
use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::prep_request_processor::{PrepRequestProcessor, REQUEST_OF_DEATH};
use crate::server::quorum::learner_session_tracker::LearnerSessionTracker;
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::request::Request;
use crate::server::session_tracker::SessionTracker;
use crate::server::zk_database::ZKDatabase;
use crate::server::zookeeper_server::{ServerKind, ZooKeeperServer};

/// `new ReadOnlyZooKeeperServer(...)` + `startup()`: the chain, the local session
/// tracker, then the peer's client port serves it.
pub fn start(peer: &Arc<QuorumPeer>, db: Arc<ZKDatabase>) -> std::io::Result<Arc<ZooKeeperServer>> {
    let tracker = LearnerSessionTracker::new(peer.myid, db.clone(), peer.tick_time, peer.config.local_sessions_enabled);
    let (zk, first_rx) = ZooKeeperServer::new(peer.config.clone(), db, peer.myid, ServerKind::ReadOnly, SessionTracker::Learner(tracker), Some(peer.clone()));
    let started = (|| -> std::io::Result<()> {
        let sid = peer.myid;
        let cport = peer.config.client_port;
        let (prep_tx, prep_rx) = bounded::<Request>(10_000);
        let prep = PrepRequestProcessor::new(zk.clone(), Box::new(FinalRequestProcessor::new(zk.clone())));
        zk.add_thread(std::thread::Builder::new().name(format!("ProcessThread(sid:{sid} cport:{cport}):")).spawn(move || prep.run(prep_rx))?);
        let z = zk.clone();
        zk.add_thread(
            std::thread::Builder::new()
                .name(format!("ReadOnlyRequestProcessor:{sid}"))
                .spawn(move || read_only_request_processor(&z, first_rx, prep_tx))?,
        );
        zk.start_session_trackers()?;
        Ok(())
    })();
    if let Err(e) = started {
        zk.shutdown();
        return Err(e);
    }
    zk.set_serving();
    peer.set_active_server(Some(zk.clone()));
    log::info!("Read-only server started");
    Ok(zk)
}

/// `ReadOnlyZooKeeperServer.shutdown`: the client port serves nothing, every
/// connection is closed, then the server stops.
pub fn shutdown(peer: &QuorumPeer, zk: &Arc<ZooKeeperServer>) {
    if peer.active_server().is_some_and(|a| Arc::ptr_eq(&a, zk)) {
        peer.set_active_server(None);
    }
    zk.close_all_connections();
    zk.shutdown();
}

/// Whether the read-only server refuses a request (`ReadOnlyRequestProcessor.run`).
pub fn refused(r: &Request) -> bool {
    match r.r#type {
        op_code::SYNC => true,
        t if op_code::is_quorum_write(t) => true,
        op_code::CLOSE_SESSION | op_code::CREATE_SESSION => !r.is_local_session,
        _ => false,
    }
}

fn read_only_request_processor(zk: &ZooKeeperServer, rx: Receiver<Request>, next: Sender<Request>) {
    while let Ok(r) = rx.recv() {
        if r.r#type == REQUEST_OF_DEATH {
            let _ = next.send(r);
            break;
        }
        if refused(&r) {
            send_error_response(zk, &r);
            continue;
        }
        if next.send(r).is_err() {
            break;
        }
    }
    log::info!("ReadOnlyRequestProcessor exited loop!");
}

/// `sendErrorResponse`: NOTREADONLY with the last processed zxid.
fn send_error_response(zk: &ZooKeeperServer, r: &Request) {
    let Some(cnxn) = &r.cnxn else { return };
    let hdr = ReplyHeader { xid: r.cxid, zxid: zk.last_processed_zxid(), err: Code::NotReadOnly.int() };
    cnxn.send_record::<ReplyHeader>(&hdr, None);
    // Upstream leaves these counted as in process; we end their accounting so that
    // refused requests cannot throttle the connection.
    cnxn.read_left_pipeline(r.r#type);
    zk.request_finished(cnxn);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_syncs_and_global_session_changes_are_refused() {
        let r = |t: i32, local: bool| {
            let mut r = Request::new(None, 1, 1, t, Vec::new(), Vec::new());
            r.is_local_session = local;
            r
        };
        for t in [op_code::CREATE, op_code::CREATE2, op_code::DELETE, op_code::SET_DATA, op_code::SET_ACL, op_code::MULTI, op_code::SYNC, op_code::CHECK] {
            assert!(refused(&r(t, false)), "{t}");
        }
        for t in [op_code::GET_DATA, op_code::EXISTS, op_code::GET_CHILDREN2, op_code::MULTI_READ, op_code::PING, op_code::SET_WATCHES] {
            assert!(!refused(&r(t, false)), "{t}");
        }
        assert!(refused(&r(op_code::CREATE_SESSION, false)));
        assert!(!refused(&r(op_code::CREATE_SESSION, true)));
        assert!(refused(&r(op_code::CLOSE_SESSION, false)));
        assert!(!refused(&r(op_code::CLOSE_SESSION, true)));
    }
}
