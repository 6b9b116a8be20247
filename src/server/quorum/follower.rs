//! `Follower.followLeader`: connect, register, sync, then apply the leader's packets
//! until the connection breaks or the peer stops.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::proto::quorum::QuorumPacket;
use crate::server::final_request_processor::FinalRequestProcessor;
use crate::server::quorum::learner::{self, LeaderConnection, LeaderReader};
use crate::server::quorum::learner_zookeeper_server::LearnerServer;
use crate::server::quorum::quorum_packet::{self as qp, packet_to_string};
use crate::server::quorum::quorum_peer::run::record_election_time;
use crate::server::quorum::quorum_peer::{QuorumPeer, ZabState};
use crate::server::request_processor::RequestProcessor;
use crate::server::zk_database::ZKDatabase;

pub fn follow_leader(peer: &Arc<QuorumPeer>, db: &Arc<ZKDatabase>) {
    let taken = record_election_time(peer);
    log::info!("FOLLOWING - LEADER ELECTION TOOK - {taken} MS");
    let ls = LearnerServer::new(peer, db.clone(), false);
    let mut conn_holder: Option<Arc<LeaderConnection>> = None;
    let mut connected_at: Option<Instant> = None;
    let mut completed_sync = false;
    peer.set_zab_state(ZabState::Discovery);
    let res = (|| -> io::Result<()> {
        let leader = learner::find_leader(peer).ok_or_else(|| io::Error::other("no leader in the view"))?;
        let (conn, mut reader) = learner::connect_to_leader(peer, &leader)?;
        conn_holder = Some(conn.clone());
        connected_at = Some(Instant::now());
        let new_epoch_zxid = learner::register_with_leader(peer, &conn, &mut reader, qp::FOLLOWERINFO)?;
        let new_epoch = crate::server::util::zxid_utils::epoch_from_zxid(new_epoch_zxid);
        if new_epoch < peer.epochs.accepted() {
            log::error!(
                "Proposed leader epoch {:x} is less than our accepted epoch {:x}",
                new_epoch_zxid,
                peer.epochs.accepted()
            );
            return Err(io::Error::other("Error: Epoch of leader is lower"));
        }
        let leader_host = leader.addr.all().iter().map(|a| a.host.clone()).collect::<Vec<_>>().join("|");
        peer.set_leader_address_and_id(Some(leader_host), leader.id);
        peer.set_zab_state(ZabState::Synchronization);
        let mut final_p = FinalRequestProcessor::new(ls.zk.clone());
        let final_p = &mut final_p as &mut dyn RequestProcessor;
        let outcome = learner::sync_with_leader(peer, &ls.zk, &conn, &mut reader, new_epoch_zxid, false, &mut |r| final_p.process_request(r))?;
        ls.start(peer, conn.clone(), outcome.txn_log)?;
        ls.zk.set_serving();
        peer.set_active_server(Some(ls.zk.clone()));
        peer.update_election_vote(outcome.new_epoch);
        for r in outcome.not_logged {
            ls.log_request(r);
        }
        for z in outcome.committed {
            ls.commit(z);
        }
        peer.set_zab_state(ZabState::Broadcast);
        completed_sync = true;
        let mut last_queued = 0i64;
        while peer.is_running() {
            let p = reader.read_packet()?;
            process_packet(peer, &ls, &conn, &mut reader, p, &mut last_queued)?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        log::warn!("Exception when following the leader: {e}");
    }
    learner::close_leader_connection(conn_holder.as_deref(), connected_at, completed_sync);
    log::info!("shutdown Follower");
    peer.set_active_server(None);
    ls.zk.shutdown();
    learner::settle_database_after_learning(peer, db);
    peer.set_last_logged_zxid(db.last_processed_zxid());
}

/// Whether a PROPOSAL follows the one queued before it (a gap is only logged).
pub fn proposal_in_order(last_queued: i64, zxid: i64) -> bool {
    // Java's long arithmetic wraps; so does ours (a hostile Long.MAX_VALUE must not panic).
    zxid == last_queued.wrapping_add(1)
}

fn process_packet(peer: &QuorumPeer, ls: &LearnerServer, conn: &LeaderConnection, _reader: &mut LeaderReader, p: QuorumPacket, last_queued: &mut i64) -> io::Result<()> {
    match p.r#type {
        qp::PING => learner::ping(conn, &ls.zk, &p)?,
        qp::PROPOSAL => {
            let r = learner::request_from_txn_bytes(p.data.as_deref().unwrap_or(&[]))?;
            let zxid = r.hdr.as_ref().map(|h| h.zxid).unwrap_or(-1);
            if !proposal_in_order(*last_queued, zxid) {
                log::warn!("Got zxid 0x{zxid:x} expected 0x{:x}", last_queued.wrapping_add(1));
            }
            *last_queued = zxid;
            if let Some(qv) = learner::reconfig_qv(&r, peer.is_multi_address_enabled()) {
                peer.set_last_seen_quorum_verifier(qv, true);
            }
            ls.log_request(r);
            crate::server::fault_points::hit("follower.proposal.queued");
        }
        qp::COMMIT => {
            crate::server::fault_points::hit("follower.commit.received");
            ls.commit(p.zxid)
        }
        qp::COMMITANDACTIVATE => {
            // The new configuration applies before the commit writes it to the tree.
            let qv = ls.pending_reconfig(peer.is_multi_address_enabled());
            let leader = learner::suggested_leader(p.data.as_deref().unwrap_or(&[]));
            let major = match (qv, leader) {
                (Some(qv), Some(leader)) => peer.process_reconfig(qv, Some((leader, p.zxid)), true),
                _ => {
                    log::warn!("COMMITANDACTIVATE 0x{:x} without a pending reconfig", p.zxid);
                    false
                }
            };
            ls.commit(p.zxid);
            if major {
                return Err(learner::reconfig_error());
            }
        }
        qp::UPTODATE => log::error!("Received an UPTODATE message after Follower started"),
        qp::REVALIDATE => conn.revalidate_answer(&ls.zk, &p),
        qp::SYNC => ls.sync(),
        _ => log::warn!("Unknown packet type: {}", packet_to_string(&p)),
    }
    Ok(())
}
