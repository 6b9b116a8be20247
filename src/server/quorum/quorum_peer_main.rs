//! `QuorumPeerMain.runFromConfig`: a replicated server — load the database, check the
//! epochs, open the client port (serving nothing until a role serves), start the
//! election and the QuorumPeer thread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::server::persistence::FileTxnSnapLog;
use crate::server::quorum::learner::init_config_node_on;
use crate::server::quorum::quorum_peer::run::{RunningPeer, ZabRoles};
use crate::server::quorum::quorum_peer::QuorumPeer;
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;
use crate::server::server_cnxn_factory::{ClientTls, ServerCnxnFactory};
use crate::server::zk_database::ZKDatabase;
use crate::server::zookeeper_server_main::exit_code;

/// A running replicated server: its peer and its client port.
pub struct QuorumPeerMain {
    pub peer: Arc<RunningPeer>,
    pub factory: Option<ServerCnxnFactory>,
    /// The secure client port (`secureClientPort`), TLS.
    pub secure_factory: Option<ServerCnxnFactory>,
    pub admin_server: Option<crate::server::admin::jetty_admin_server::JettyAdminServer>,
    pub metrics_provider: crate::server::metrics::MetricsProvider,
}

pub fn run_from_config(cfg: QuorumPeerConfig) -> Result<QuorumPeerMain, (i32, String)> {
    crate::server::zookeeper_server_main::set_log_myid(cfg.server_id);
    log::info!("Starting quorum peer, myid={}", cfg.server_id);
    let unexpected = |e: String| {
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    };
    crate::server::datadir_cleanup_manager::DatadirCleanupManager::new(
        cfg.data_dir.clone(),
        cfg.data_log_dir.clone(),
        cfg.snap_retain_count,
        cfg.purge_interval,
    )
    .start();
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
    let snap_dir = snap_log.snap_dir.clone();
    let db = ZKDatabase::new(snap_log, restored);
    let client_addr = client_address(&cfg);
    let secure = crate::server::zookeeper_server_main::secure_client_setup(&cfg).map_err(unexpected)?;
    let plain_port_tls = crate::server::zookeeper_server_main::plain_port_tls().map_err(unexpected)?;
    let max_cnxns = cfg.max_client_cnxns;
    let backlog = cfg.client_port_listen_backlog;
    let metrics_class = cfg.metrics_provider_class_name.clone();
    let metrics_props = cfg.metrics_provider_configuration.clone();
    let peer = QuorumPeer::new(cfg, db.last_processed_zxid(), snap_dir).map_err(unexpected)?;
    let metrics_provider = crate::server::metrics::start(
        &metrics_class,
        &metrics_props,
        crate::server::metrics::prometheus_metrics_provider::Source::Quorum(peer.clone()),
    )
    .map_err(unexpected)?;
    peer.set_database(db.clone());
    init_config_node_on(&peer, &db);
    // ServerCnxnFactory.configure: the JAAS Server section, if any.
    crate::server::zookeeper_sasl_server::configure_sasl_login().map_err(unexpected)?;
    crate::server::authentication_helper::AuthenticationHelper::from_system_properties().map_err(|e| {
        log::error!("Invalid arguments, exiting abnormally: {e}");
        (exit_code::INVALID_INVOCATION, format!("Invalid arguments, exiting abnormally\n{e}"))
    })?;
    let factory = match client_addr {
        Some(addr) => {
            let f = ServerCnxnFactory::start_with_holder_tls(peer.server_holder.clone(), max_cnxns, addr, backlog, plain_port_tls.clone())
                .map_err(|e| unexpected(format!("Unable to bind the client port {addr}: {e}")))?;
            *peer.client_address.lock() = Some(f.local_address());
            Some(f)
        }
        None => None,
    };
    let secure_factory = match secure {
        Some((addr, tls)) => Some(
            ServerCnxnFactory::start_with_holder_tls(peer.server_holder.clone(), max_cnxns, addr, backlog, ClientTls::Secure(tls))
                .map_err(|e| unexpected(format!("Unable to bind the secure client port {addr}: {e}")))?,
        ),
        None => None,
    };
    // QuorumPeer.start: a peer whose AdminServer cannot start still joins the ensemble.
    let admin_server = match crate::server::admin::start(crate::server::admin::jetty_admin_server::Target::Quorum(peer.clone())) {
        Ok(a) => a,
        Err(e) => {
            log::warn!("Problem starting AdminServer: {e}");
            None
        }
    };
    let running = RunningPeer::start(peer, Arc::new(ZabRoles { db })).map_err(|e| unexpected(e.to_string()))?;
    Ok(QuorumPeerMain { peer: running, factory, secure_factory, admin_server, metrics_provider })
}

/// `clientPortAddress` (from the server line or the static keys), if a client port is set.
fn client_address(cfg: &QuorumPeerConfig) -> Option<SocketAddr> {
    if cfg.client_port <= 0 {
        return None;
    }
    let port = u16::try_from(cfg.client_port).ok()?;
    match cfg.client_port_address.as_deref() {
        None => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        Some(a) => (a, port).to_socket_addrs().ok()?.next(),
    }
}
