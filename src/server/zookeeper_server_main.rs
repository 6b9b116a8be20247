//! `ZooKeeperServerMain` / `QuorumPeerMain` entry: parse the configuration, start the
//! standalone server and its client port, and wait.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::server::container_manager::ContainerManager;
use crate::server::persistence::FileTxnSnapLog;
use crate::server::quorum::quorum_peer_config::QuorumPeerConfig;
use crate::server::server_cnxn_factory::{ClientTls, ServerCnxnFactory, ServerHolder};
use crate::server::zookeeper_server::ZooKeeperServer;
use crate::system_properties;

/// `ExitCode`.
pub mod exit_code {
    pub const UNEXPECTED_ERROR: i32 = 1;
    pub const INVALID_INVOCATION: i32 = 2;
    pub const UNABLE_TO_ACCESS_DATADIR: i32 = 3;
    pub const ERROR_STARTING_ADMIN_SERVER: i32 = 4;
}

/// A running standalone server: its client port and its AdminServer.
pub struct ZooKeeperServerMain {
    pub factory: ServerCnxnFactory,
    /// The secure client port (`secureClientPort`), TLS.
    pub secure_factory: Option<ServerCnxnFactory>,
    pub admin_server: Option<crate::server::admin::jetty_admin_server::JettyAdminServer>,
    pub metrics_provider: crate::server::metrics::MetricsProvider,
}

impl ZooKeeperServerMain {
    /// `shutdown`: the client port (and the server behind it), then the AdminServer.
    pub fn shutdown(&mut self) {
        if let Some(f) = self.secure_factory.as_mut() {
            f.shutdown();
        }
        self.factory.shutdown();
        if let Some(a) = self.admin_server.as_mut() {
            a.shutdown();
        }
        self.metrics_provider.stop();
    }
}

pub const USAGE: &str = "Usage: ZooKeeperServerMain configfile | port datadir [ticktime] [maxcnxns]";

/// The `myid` of upstream's log MDC, once a quorum peer knows it (-1: none).
static LOG_MYID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(-1);

/// Puts `[myid:N]` in every later log line, as upstream's MDC does for a quorum peer.
pub fn set_log_myid(id: i64) {
    LOG_MYID.store(id, std::sync::atomic::Ordering::Relaxed);
}

/// Log lines in upstream's log4j layout:
/// `2024-01-01 00:00:00,000 [myid:] - INFO  [thread:target] - message`.
pub fn init_logging() {
    let env = env_logger::Env::default().filter_or("RUST_LOG", std::env::var("ZOO_LOG_LEVEL").unwrap_or_else(|_| "info".into()));
    let _ = env_logger::Builder::from_env(env)
        .format(|buf, record| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let ms = now.as_millis() as i64;
            let date = iso_date(ms);
            let t = std::thread::current();
            let myid = LOG_MYID.load(std::sync::atomic::Ordering::Relaxed);
            let myid = if myid >= 0 { myid.to_string() } else { String::new() };
            writeln!(
                buf,
                "{date} [myid:{myid}] - {:<5} [{}:{}] - {}",
                record.level(),
                t.name().unwrap_or("main"),
                record.target().rsplit("::").next().unwrap_or(""),
                record.args()
            )
        })
        .try_init();
}

fn iso_date(ms: i64) -> String {
    let (y, mo, d, h, m, s, milli, _) = crate::common::time::civil_from_millis(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02},{milli:03}")
}

/// Parses the arguments (after `-D` properties were applied) into a config.
pub fn parse_args(args: &[String]) -> Result<QuorumPeerConfig, (i32, String)> {
    match args.len() {
        1 => {
            let cfg = QuorumPeerConfig::parse(&PathBuf::from(&args[0])).map_err(|e| {
                log::error!("Invalid config, exiting abnormally: {e}");
                (exit_code::INVALID_INVOCATION, format!("Invalid config, exiting abnormally\n{e}"))
            })?;
            if !cfg.is_distributed() {
                log::warn!("Either no config or no quorum defined in config, running in standalone mode");
            }
            Ok(cfg)
        }
        2..=4 => {
            let bad = |what: &str| (exit_code::INVALID_INVOCATION, format!("Invalid arguments, exiting abnormally\n{what}\n{USAGE}"));
            let mut text = format!("clientPort={}\ndataDir={}\n", args[0], args[1]);
            if let Some(t) = args.get(2) {
                text.push_str(&format!("tickTime={t}\n"));
            }
            if let Some(m) = args.get(3) {
                text.push_str(&format!("maxClientCnxns={m}\n"));
            }
            QuorumPeerConfig::parse_text(&text).map_err(|e| bad(&e.msg))
        }
        _ => Err((exit_code::INVALID_INVOCATION, format!("Invalid arguments, exiting abnormally\n{USAGE}"))),
    }
}

/// `runFromConfig`: returns once the server is serving; the factory owns the threads.
pub fn run_from_config(cfg: QuorumPeerConfig) -> Result<ZooKeeperServerMain, (i32, String)> {
    // QuorumPeerMain starts the autopurge task first; its thread outlives this handle.
    crate::server::datadir_cleanup_manager::DatadirCleanupManager::new(
        cfg.data_dir.clone(),
        cfg.data_log_dir.clone(),
        cfg.snap_retain_count,
        cfg.purge_interval,
    )
    .start();
    log::info!("Starting server");
    if system_properties::get_bool("zookeeper.extendedTypesEnabled") {
        log::info!("extendedTypesEnabled=true: TTL nodes enabled");
    }
    let snap_log = FileTxnSnapLog::new(&cfg.data_log_dir, &cfg.data_dir).map_err(|e| {
        log::error!("Unable to access datadir, exiting abnormally: {e}");
        (exit_code::UNABLE_TO_ACCESS_DATADIR, format!("Unable to access datadir, exiting abnormally\n{e}"))
    })?;
    let restored = snap_log.restore().map_err(|e| {
        log::error!("Unable to load database on disk: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unable to load database on disk\n{e}"))
    })?;
    let mut tree = restored.tree;
    // Sessions that owned ephemerals but are gone from the session table died with the
    // previous run: drop their ephemerals (ZooKeeperServer.loadData).
    let dead: Vec<i64> = tree.ephemerals_map().keys().filter(|s| !restored.sessions.contains_key(s)).copied().collect();
    for s in dead {
        log::info!("Killing dead session 0x{s:x} found in the loaded data");
        tree.kill_session_local(s);
    }
    log::info!(
        "tickTime set to {}, minSessionTimeout set to {}, maxSessionTimeout set to {}",
        cfg.tick_time,
        cfg.min_session_timeout,
        cfg.max_session_timeout
    );
    let addr = client_address(&cfg).map_err(|e| (exit_code::UNEXPECTED_ERROR, e))?;
    let secure = secure_client_setup(&cfg).map_err(|e| {
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    })?;
    let plain_port_tls = plain_port_tls().map_err(|e| {
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    })?;
    let backlog = cfg.client_port_listen_backlog;
    let zks = ZooKeeperServer::start(cfg, snap_log, tree, restored.sessions)
        .map_err(|e| (exit_code::UNEXPECTED_ERROR, format!("Unable to start server: {e}")))?;
    // ServerCnxnFactory.configure: the JAAS Server section, if any.
    crate::server::zookeeper_sasl_server::configure_sasl_login().map_err(|e| {
        zks.shutdown();
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    })?;
    // Upstream's IllegalArgumentException from the server's constructor.
    crate::server::authentication_helper::AuthenticationHelper::from_system_properties().map_err(|e| {
        zks.shutdown();
        log::error!("Invalid arguments, exiting abnormally: {e}");
        (exit_code::INVALID_INVOCATION, format!("Invalid arguments, exiting abnormally\n{e}"))
    })?;
    let metrics_provider = crate::server::metrics::start(
        &zks.config.metrics_provider_class_name,
        &zks.config.metrics_provider_configuration,
        crate::server::metrics::prometheus_metrics_provider::Source::Standalone(zks.clone()),
    )
    .map_err(|e| {
        zks.shutdown();
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    })?;
    // Upstream starts the AdminServer before the client port, and a server whose
    // AdminServer cannot start does not serve at all.
    let admin_server = crate::server::admin::start(crate::server::admin::jetty_admin_server::Target::Standalone(zks.clone()))
        .map_err(|e| {
            zks.shutdown();
            log::error!("Unable to start AdminServer, exiting abnormally: {e}");
            (exit_code::ERROR_STARTING_ADMIN_SERVER, format!("Unable to start AdminServer, exiting abnormally\n{e}"))
        })?;
    let max = zks.config.max_client_cnxns;
    let factory = ServerCnxnFactory::start_with_holder_tls(ServerHolder::new(Some(zks.clone())), max, addr, backlog, plain_port_tls).map_err(|e| {
        zks.shutdown();
        log::error!("Unexpected exception, exiting abnormally: {e}");
        (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
    })?;
    let secure_factory = match secure {
        Some((saddr, tls)) => Some(ServerCnxnFactory::start_secure(zks.clone(), saddr, backlog, tls).map_err(|e| {
            zks.shutdown();
            log::error!("Unexpected exception, exiting abnormally: {e}");
            (exit_code::UNEXPECTED_ERROR, format!("Unexpected exception, exiting abnormally\n{e}"))
        })?),
        None => None,
    };
    ContainerManager::new(zks)
        .start()
        .map_err(|e| (exit_code::UNEXPECTED_ERROR, format!("Unable to start ContainerManager: {e}")))?;
    Ok(ZooKeeperServerMain { factory, secure_factory, admin_server, metrics_provider })
}

/// The secure client port's address and TLS configuration, when `secureClientPort` is
/// set (`ssl.*` keys, as `ClientX509Util` reads them).
pub fn secure_client_setup(cfg: &QuorumPeerConfig) -> Result<Option<(SocketAddr, std::sync::Arc<rustls::ServerConfig>)>, String> {
    if cfg.secure_client_port <= 0 {
        return Ok(None);
    }
    let port = u16::try_from(cfg.secure_client_port).map_err(|_| format!("bad secureClientPort {}", cfg.secure_client_port))?;
    let addr = match &cfg.secure_client_port_address {
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        Some(a) => (a.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("secureClientPortAddress {a}: {e}"))?
            .next()
            .ok_or_else(|| format!("secureClientPortAddress {a} resolves to nothing"))?,
    };
    let settings = crate::common::x509_util::SslSettings::from_system_properties(crate::common::x509_util::CLIENT_PREFIX)?;
    let tls = crate::common::x509_util::server_config(&settings)?;
    Ok(Some((addr, tls)))
}

/// What the plain client port speaks: plain text, or with `client.portUnification`
/// (`zookeeper.client.portUnification`) TLS too, with the `ssl.*` settings.
pub fn plain_port_tls() -> Result<ClientTls, String> {
    if !crate::system_properties::get_bool("zookeeper.client.portUnification") {
        return Ok(ClientTls::Plain);
    }
    let settings = crate::common::x509_util::SslSettings::from_system_properties(crate::common::x509_util::CLIENT_PREFIX)?;
    Ok(ClientTls::Unified(crate::common::x509_util::server_config(&settings)?))
}

fn client_address(cfg: &QuorumPeerConfig) -> Result<SocketAddr, String> {
    let port = u16::try_from(cfg.client_port).map_err(|_| format!("bad clientPort {}", cfg.client_port))?;
    match &cfg.client_port_address {
        None => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        Some(a) => (a.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("clientPortAddress {a}: {e}"))?
            .next()
            .ok_or_else(|| format!("clientPortAddress {a} resolves to nothing")),
    }
}
