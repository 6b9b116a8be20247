//! The AdminServer (`org.apache.zookeeper.server.admin`): an HTTP endpoint running the
//! same commands as the four-letter words, answering JSON. `AdminServerFactory` decides
//! from the `zookeeper.admin.*` properties (zoo.cfg's `admin.*` keys) whether and where
//! it runs.

pub mod commands;
pub mod jetty_admin_server;
pub mod json_outputter;

use crate::system_properties;

/// `JettyAdminServer`'s defaults.
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_COMMAND_URL: &str = "/commands";
const DEFAULT_ADDRESS: &str = "0.0.0.0";

#[derive(Debug, Clone, PartialEq)]
pub struct AdminServerConfig {
    pub address: String,
    pub port: u16,
    pub idle_timeout_ms: u64,
    pub command_url: String,
    /// `admin.portUnification`: HTTPS and HTTP on the one port.
    pub port_unification: bool,
    /// `admin.forceHttps`: HTTPS only.
    pub force_https: bool,
}

/// Java's `Integer.getInteger`: an unparsable value is the default.
fn int_property(key: &str, default: i64) -> i64 {
    system_properties::get(key).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

impl AdminServerConfig {
    /// `AdminServerFactory.createAdminServer`: None when `zookeeper.admin.enableServer`
    /// is exactly `false` (the DummyAdminServer).
    pub fn from_system_properties() -> Option<AdminServerConfig> {
        if system_properties::get("zookeeper.admin.enableServer").as_deref() == Some("false") {
            return None;
        }
        let port = int_property("zookeeper.admin.serverPort", DEFAULT_PORT as i64);
        Some(AdminServerConfig {
            address: system_properties::get_or("zookeeper.admin.serverAddress", DEFAULT_ADDRESS),
            // Jetty refuses a port outside 0..65535 when it starts.
            port: u16::try_from(port).unwrap_or(u16::MAX),
            idle_timeout_ms: int_property("zookeeper.admin.idleTimeout", DEFAULT_IDLE_TIMEOUT_MS as i64).max(0) as u64,
            command_url: system_properties::get_or("zookeeper.admin.commandURL", DEFAULT_COMMAND_URL),
            port_unification: system_properties::get_bool("zookeeper.admin.portUnification"),
            force_https: system_properties::get_bool("zookeeper.admin.forceHttps"),
        })
    }

    pub fn check_port(&self) -> Result<(), String> {
        let port = int_property("zookeeper.admin.serverPort", DEFAULT_PORT as i64);
        if !(0..=65535).contains(&port) {
            return Err(format!("port out of range:{port}"));
        }
        Ok(())
    }

    /// HTTPS as `JettyAdminServer` sets it up: the quorum's key and trust stores
    /// (`ssl.quorum.*`), no client certificates asked for (Jetty's default).
    pub fn tls(&self) -> Result<crate::server::util::http_server::HttpTls, String> {
        use crate::common::x509_util::{self, ClientAuth, SslSettings, QUORUM_PREFIX};
        use crate::server::util::http_server::HttpTls;
        if !self.port_unification && !self.force_https {
            return Ok(HttpTls::Plain);
        }
        let loaded = SslSettings::from_system_properties(QUORUM_PREFIX).and_then(|mut s| {
            s.client_auth = ClientAuth::None;
            let cfg = x509_util::server_config(&s)?;
            log::info!("Successfully loaded private key from {}", s.key_store_location.as_deref().unwrap_or(""));
            log::info!("Successfully loaded certificate authority from {}", s.trust_store_location.as_deref().unwrap_or(""));
            Ok(cfg)
        });
        let cfg = loaded.map_err(|e| {
            log::error!("Failed to load authentication certificates for admin server. {e}");
            e
        })?;
        Ok(if self.force_https { HttpTls::Force(cfg) } else { HttpTls::Unified(cfg) })
    }
}

/// Starts the AdminServer if enabled: Ok(None) when disabled, Err(the message of
/// upstream's AdminServerException) when it cannot start.
pub fn start(target: jetty_admin_server::Target) -> Result<Option<jetty_admin_server::JettyAdminServer>, String> {
    let Some(cfg) = AdminServerConfig::from_system_properties() else {
        return Ok(None);
    };
    if let Err(why) = cfg.check_port() {
        return Err(format!(
            "Problem starting AdminServer on address {}, port {} and command URL {}: {why}",
            cfg.address,
            int_property("zookeeper.admin.serverPort", DEFAULT_PORT as i64),
            cfg.command_url
        ));
    }
    jetty_admin_server::JettyAdminServer::start(cfg, target).map(Some)
}
