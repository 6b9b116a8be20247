//! `QuorumPeerMain.runFromConfig`: a replicated server — load the database, check the
//! epochs, start the election and the QuorumPeer thread.

use std::sync::Arc;

use crate::server::persistence::FileTxnSnapLog;
use crate::server::quorum::quorum_peer::run::{ElectionOnly, RunningPeer};
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;
use crate::server::zookeeper_server_main::exit_code;

pub fn run_from_config(cfg: QuorumPeerConfig) -> Result<Arc<RunningPeer>, (i32, String)> {
    crate::server::zookeeper_server_main::set_log_myid(cfg.server_id);
    log::info!("Starting quorum peer, myid={}", cfg.server_id);
    let unexpected = |e: String| {
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    };
    let snap_log = FileTxnSnapLog::new(&cfg.data_log_dir, &cfg.data_dir).map_err(|e| {
        log::error!("Unable to access datadir, exiting abnormally: {e}");
        (exit_code::UNABLE_TO_ACCESS_DATADIR, format!("Unable to access datadir, exiting abnormally\n{e}"))
    })?;
    if !cfg.quorum_verifier.as_ref().is_some_and(|qv| qv.all_members().contains_key(&cfg.server_id)) {
        return Err(unexpected(format!("My id {} not in the peer list", cfg.server_id)));
    }
    let restored = snap_log.restore().map_err(|e| {
        log::error!("Unable to load database on disk: {e}");
        unexpected(format!("Unable to run quorum server : {e}"))
    })?;
    let zxid = restored.tree.last_processed_zxid;
    let peer = QuorumPeer::new(cfg, zxid, snap_log.snap_dir.clone()).map_err(unexpected)?;
    RunningPeer::start(peer, Arc::new(ElectionOnly)).map_err(|e| unexpected(e.to_string()))
}
