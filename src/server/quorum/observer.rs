//! `Observer.observeLeader`: like a follower, but it never votes or acks: it learns
//! committed txns from INFORM packets.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::quorum::learner::{self, LeaderConnection};
use crate::server::quorum::learner_zookeeper_server::LearnerServer;
use crate::server::quorum::quorum_packet::{self as qp, packet_to_string};
use crate::server::quorum::quorum_peer::{QuorumPeer, ZabState};
use crate::server::request_processor::RequestProcessor;
use crate::server::zk_database::ZKDatabase;

pub fn observe_leader(peer: &Arc<QuorumPeer>, db: &Arc<ZKDatabase>) {
    let ls = LearnerServer::new(peer, db.clone(), true);
    let mut conn_holder: Option<Arc<LeaderConnection>> = None;
    let mut connected_at: Option<Instant> = None;
    let mut completed_sync = false;
    peer.set_zab_state(ZabState::Discovery);
    let res = (|| -> io::Result<()> {
        let leader = learner::find_leader(peer).ok_or_else(|| io::Error::other("no leader in the view"))?;
        let (conn, mut reader) = learner::connect_to_leader(peer, &leader)?;
        conn_holder = Some(conn.clone());
        connected_at = Some(Instant::now());
        let new_leader_zxid = learner::register_with_leader(peer, &conn, &mut reader, qp::OBSERVERINFO)?;
        let leader_host = leader.addr.all().iter().map(|a| a.host.clone()).collect::<Vec<_>>().join("|");
        peer.set_leader_address_and_id(Some(leader_host), leader.id);
        peer.set_zab_state(ZabState::Synchronization);
        let mut final_p = FinalRequestProcessor::new(ls.zk.clone());
        let final_p = &mut final_p as &mut dyn RequestProcessor;
        let outcome = learner::sync_with_leader(peer, &ls.zk, &conn, &mut reader, new_leader_zxid, true, &mut |r| final_p.process_request(r))?;
        ls.start(peer, conn.clone(), outcome.txn_log)?;
        ls.zk.set_serving();
        peer.set_active_server(Some(ls.zk.clone()));
        peer.update_election_vote(outcome.new_epoch);
        let mut committed = outcome.committed;
        for r in outcome.not_logged {
            let zxid = r.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1);
            if committed.front() != Some(&zxid) {
                log::warn!("Committing 0x{:x}, but next proposal is 0x{zxid:x}", committed.front().copied().unwrap_or(-1));
                continue;
            }
            committed.pop_front();
            ls.commit_request(r);
        }
        peer.set_zab_state(ZabState::Broadcast);
        completed_sync = true;
        while peer.is_running() {
            let p = reader.read_packet()?;
            match p.r#type {
                qp::PING => learner::ping(&conn, &ls.zk, &p)?,
                qp::PROPOSAL => log::warn!("Ignoring proposal"),
                qp::COMMIT => log::warn!("Ignoring commit"),
                qp::UPTODATE => log::error!("Received an UPTODATE message after Observer started"),
                qp::REVALIDATE => conn.revalidate_answer(&ls.zk, &p),
                qp::SYNC => ls.sync(),
                qp::INFORM => {
                    ls.commit_request(learner::request_from_txn_bytes(learner::inform_txn_bytes(p.r#type, p.data.as_deref().unwrap_or(&[])))?);
                }
                qp::INFORMANDACTIVATE => {
                    let data = p.data.as_deref().unwrap_or(&[]);
                    let r = learner::request_from_txn_bytes(learner::inform_txn_bytes(p.r#type, data))?;
                    let major = match (learner::reconfig_qv(&r, peer.is_multi_address_enabled()), learner::suggested_leader(data)) {
                        (Some(qv), Some(leader)) => peer.process_reconfig(qv, Some((leader, p.zxid)), true),
                        _ => false,
                    };
                    ls.commit_request(r);
                    if major {
                        return Err(learner::reconfig_error());
                    }
                }
                _ => log::warn!("Unknown packet type: {}", packet_to_string(&p)),
            }
        }
        Ok(())
    })();
    if let Err(e) = res {
        log::warn!("Exception when observing the leader: {e}");
    }
    learner::close_leader_connection(conn_holder.as_deref(), connected_at, completed_sync);
    peer.set_active_server(None);
    ls.zk.shutdown();
    learner::settle_database_after_learning(peer, db);
    peer.set_last_logged_zxid(db.last_processed_zxid());
    // `Observer.waitForObserverElectionDelay`: a random pause (default < 200 ms) so that
    // observers do not all rush the new leader.
    let bound = crate::system_properties::get_i64("zookeeper.observer.election.DelayMs").unwrap_or(200).max(0) as u64;
    if bound > 0 && peer.is_running() {
        let jitter = (crate::common::time::current_elapsed_time() as u64).wrapping_mul(2654435761) % bound;
        std::thread::sleep(Duration::from_millis(jitter));
    }
}
