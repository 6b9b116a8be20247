//! `QuorumPeerConfig`: zoo.cfg parsing with upstream's keys, defaults and errors. Keys it
//! does not know become the system property `zookeeper.<key>`, as upstream does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::server::quorum::flexible::QuorumVerifier;
use crate::server::quorum::quorum_server::{LearnerType, QuorumAddr};
use crate::system_properties;

/// `QuorumPeerConfig.ConfigException`, or an `IllegalArgumentException` thrown while
/// parsing — upstream's `parse(path)` wraps only the latter in "Error processing <path>".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigException {
    pub msg: String,
    pub illegal_argument: bool,
}

impl ConfigException {
    pub fn new(msg: impl Into<String>) -> ConfigException {
        ConfigException { msg: msg.into(), illegal_argument: false }
    }

    pub fn illegal_argument(msg: impl Into<String>) -> ConfigException {
        ConfigException { msg: msg.into(), illegal_argument: true }
    }
}

impl fmt::Display for ConfigException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for ConfigException {}

/// `QuorumPeerConfig.UNSET_SERVERID`.
pub const UNSET_SERVERID: i64 = -1;

#[derive(Debug, Clone)]
pub struct QuorumPeerConfig {
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: i32,
    pub client_port_address: Option<String>,
    pub secure_client_port: i32,
    /// `secureClientPortAddress` (the wildcard address when unset).
    pub secure_client_port_address: Option<String>,
    pub client_port_listen_backlog: i32,
    pub tick_time: i32,
    pub max_client_cnxns: i32,
    pub min_session_timeout: i32,
    pub max_session_timeout: i32,
    pub init_limit: i32,
    pub sync_limit: i32,
    pub connect_to_learner_master_limit: i32,
    pub election_alg: i32,
    pub snap_retain_count: i32,
    pub purge_interval: i32,
    pub standalone_enabled: bool,
    pub reconfig_enabled: bool,
    pub local_sessions_enabled: bool,
    pub local_sessions_upgrading_enabled: bool,
    pub quorum_listen_on_all_ips: bool,
    pub sync_enabled: bool,
    pub observer_master_port: i32,
    /// `peerType`, corrected to the role the server list gives this server.
    pub peer_type: LearnerType,
    pub multi_address_enabled: bool,
    pub multi_address_reachability_check_enabled: bool,
    pub multi_address_reachability_check_timeout_ms: i32,
    /// `quorum.cnxn.threads.size`: upper bound of the election connection pool.
    pub quorum_cnxn_threads_size: i32,
    /// `sslQuorum`: the election and quorum ports speak TLS (`ssl.quorum.*` stores).
    pub ssl_quorum: bool,
    /// `portUnification`: those ports also take plain connections (rolling upgrades).
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`: new connections use the key and trust stores as
    /// they are on disk now.
    pub ssl_quorum_reload_cert_files: bool,
    /// `quorum.auth.*`: SASL between peers.
    pub quorum_sasl: QuorumSaslConfig,
    pub dynamic_config_file: Option<PathBuf>,
    /// `myid`, or [`UNSET_SERVERID`].
    pub server_id: i64,
    /// The membership (`server.N`, `group.N`, `weight.N`, `version`); none in a plain
    /// standalone configuration.
    pub quorum_verifier: Option<QuorumVerifier>,
    /// `<zoo.cfg>.dynamic.next`: the last proposed membership (reconfig).
    pub last_seen_quorum_verifier: Option<QuorumVerifier>,
    /// The whole config file as read.
    pub initial_config: String,
    /// `metricsProvider.className` and the other `metricsProvider.<k>` keys (as `<k>`).
    pub metrics_provider_class_name: String,
    pub metrics_provider_configuration: BTreeMap<String, String>,
    /// Every key=value read (for `conf`-like dumps).
    pub raw: BTreeMap<String, String>,
}

/// `quorum.auth.*` (`QuorumAuth`): SASL between peers on the election and quorum ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumSaslConfig {
    /// `quorum.auth.enableSasl`: authenticate peers at all.
    pub enabled: bool,
    /// `quorum.auth.serverRequireSasl`: refuse a connecting peer that does not.
    pub server_require: bool,
    /// `quorum.auth.learnerRequireSasl`: this peer, connecting, must authenticate.
    pub learner_require: bool,
    /// JAAS section of the learner's credentials (`QuorumLearner`).
    pub learner_login_context: String,
    /// JAAS section of the server's users (`QuorumServer`).
    pub server_login_context: String,
    pub kerberos_service_principal: Option<String>,
}

impl QuorumSaslConfig {
    /// The combinations `QuorumPeerConfig.parseProperties` refuses.
    fn validate(&self) -> Result<(), ConfigException> {
        let refuse = |a: &str, b: &str| Err(ConfigException::illegal_argument(format!("{a} is disabled, so cannot enable {b}")));
        if !self.enabled && self.server_require {
            return refuse("quorum.auth.enableSasl", "quorum.auth.serverRequireSasl");
        }
        if !self.enabled && self.learner_require {
            return refuse("quorum.auth.enableSasl", "quorum.auth.learnerRequireSasl");
        }
        if !self.learner_require && self.server_require {
            return refuse("quorum.auth.learnerRequireSasl", "quorum.auth.serverRequireSasl");
        }
        Ok(())
    }
}

impl Default for QuorumSaslConfig {
    fn default() -> Self {
        QuorumSaslConfig {
            enabled: false,
            server_require: false,
            learner_require: false,
            learner_login_context: "QuorumLearner".into(),
            server_login_context: "QuorumServer".into(),
            kerberos_service_principal: None,
        }
    }
}

impl Default for QuorumPeerConfig {
    fn default() -> Self {
        QuorumPeerConfig {
            config_file: None,
            data_dir: PathBuf::new(),
            data_log_dir: PathBuf::new(),
            client_port: 0,
            client_port_address: None,
            secure_client_port: 0,
            secure_client_port_address: None,
            client_port_listen_backlog: -1,
            tick_time: 3000,
            max_client_cnxns: 60,
            min_session_timeout: -1,
            max_session_timeout: -1,
            init_limit: 0,
            sync_limit: 0,
            connect_to_learner_master_limit: 0,
            election_alg: 3,
            snap_retain_count: 3,
            purge_interval: 0,
            standalone_enabled: true,
            reconfig_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            quorum_listen_on_all_ips: false,
            sync_enabled: true,
            observer_master_port: 0,
            peer_type: LearnerType::Participant,
            multi_address_enabled: false,
            multi_address_reachability_check_enabled: true,
            multi_address_reachability_check_timeout_ms: 1000,
            quorum_cnxn_threads_size: 20,
            ssl_quorum: false,
            port_unification: false,
            ssl_quorum_reload_cert_files: false,
            quorum_sasl: QuorumSaslConfig::default(),
            dynamic_config_file: None,
            server_id: UNSET_SERVERID,
            quorum_verifier: None,
            last_seen_quorum_verifier: None,
            initial_config: String::new(),
            metrics_provider_class_name: crate::server::metrics::DEFAULT_METRICS_PROVIDER.into(),
            metrics_provider_configuration: BTreeMap::new(),
            raw: BTreeMap::new(),
        }
    }
}

/// Reads a Java `.properties` text: `#`/`!` comments, `=`, `:` or blank separators,
/// backslash line continuations and escapes.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if logical.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!')) {
            continue;
        }
        let trailing = trimmed.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&trimmed[..trimmed.len() - 1]);
            if lines.peek().is_some() {
                continue;
            }
        } else {
            logical.push_str(trimmed);
        }
        let l = std::mem::take(&mut logical);
        let mut key = String::new();
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        key.push(unescape(n));
                    }
                }
                '=' | ':' => break,
                c if c.is_whitespace() => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                    if chars.peek().is_some_and(|&c| c == '=' || c == ':') {
                        chars.next();
                    }
                    break;
                }
                c => key.push(c),
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    value.push(unescape(n));
                }
            } else {
                value.push(c);
            }
        }
        out.push((key, value));
    }
    out
}

fn unescape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\x0c',
        c => c,
    }
}

fn parse_int(v: &str) -> Result<i32, ConfigException> {
    v.parse::<i32>().map_err(|_| ConfigException::illegal_argument(format!("For input string: \"{v}\"")))
}

fn parse_long_value(v: &str) -> Result<i64, ConfigException> {
    v.parse::<i64>().map_err(|_| ConfigException::illegal_argument(format!("For input string: \"{v}\"")))
}

/// `QuorumPeerConfig.parseBoolean`: only `true` / `false`, any case.
fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigException> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigException::new(format!("Invalid option {v} for {key}. Choose 'true' or 'false.'")))
    }
}

/// `getVersionFromFilename`: the hex suffix after the last dot of a dynamic file name.
pub fn version_from_filename(name: &str) -> Option<i64> {
    let i = name.rfind('.')?;
    i64::from_str_radix(&name[i + 1..], 16).ok()
}

impl QuorumPeerConfig {
    /// `QuorumPeerConfig.parse(path)`.
    pub fn parse(path: &Path) -> Result<QuorumPeerConfig, ConfigException> {
        log::info!("Reading configuration from: {}", path.display());
        let wrap = |e: ConfigException, file: &Path| {
            if e.illegal_argument {
                ConfigException::new(format!("Error processing {}: {}", file.display(), e.msg))
            } else {
                e
            }
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            if !path.exists() {
                ConfigException::new(format!("Error processing {}: {} file is missing", path.display(), path.display()))
            } else {
                ConfigException::new(format!("Error processing {}: {e}", path.display()))
            }
        })?;
        let mut cfg = QuorumPeerConfig { config_file: Some(path.to_path_buf()), initial_config: text.clone(), ..Default::default() };
        cfg.parse_properties(&text).map_err(|e| wrap(e, path))?;
        if cfg.dynamic_config_file.is_none() && cfg.is_distributed() && cfg.reconfig_enabled {
            // `backupOldConfig`: the membership is about to move out of zoo.cfg (the
            // first activated config rewrites it); keep the file as the operator wrote it.
            let bak = PathBuf::from(format!("{}.bak", path.display()));
            crate::server::util::atomic_file_writing_idiom::write_atomically(&bak, text.as_bytes())
                .map_err(|e| ConfigException::new(format!("Error processing {}: {e}", path.display())))?;
        }
        if let Some(dyn_file) = cfg.dynamic_config_file.clone() {
            let dyn_text = std::fs::read_to_string(&dyn_file)
                .map_err(|e| ConfigException::new(format!("Error processing {}: {e}", dyn_file.display())))?;
            let mut props = trimmed(parse_properties(&dyn_text));
            if props.iter().any(|(k, _)| k == "version") {
                return Err(ConfigException::new("dynamic file shouldn't have version inside"));
            }
            if let Some(v) = version_from_filename(&dyn_file.to_string_lossy()) {
                props.push(("version".into(), format!("{v:x}")));
            }
            cfg.setup_quorum_peer_config(&props, false).map_err(|e| wrap(e, &dyn_file))?;
            let next = PathBuf::from(format!("{}.dynamic.next", path.display()));
            if let Ok(next_text) = std::fs::read_to_string(&next) {
                let props = trimmed(parse_properties(&next_text));
                cfg.last_seen_quorum_verifier = QuorumVerifier::from_props(&props, cfg.multi_address_enabled).ok();
            }
        }
        Ok(cfg)
    }

    /// `parseProperties` over a config text (no myid lookup happens without a data dir
    /// that holds one). Errors carry the unwrapped message.
    pub fn parse_text(text: &str) -> Result<QuorumPeerConfig, ConfigException> {
        let mut c = QuorumPeerConfig { initial_config: text.to_owned(), ..Default::default() };
        c.parse_properties(text)?;
        Ok(c)
    }

    fn parse_properties(&mut self, text: &str) -> Result<(), ConfigException> {
        let c = self;
        let mut data_dir: Option<String> = None;
        let mut data_log_dir: Option<String> = None;
        let props = trimmed(parse_properties(text));
        let has_dynamic_file = props.iter().any(|(k, _)| k == "dynamicConfigFile");
        let mut peer_type_set = false;
        // java.util.Properties keeps the last value of a repeated key.
        let mut quorum_props: Vec<(String, String)> = Vec::new();
        for (key, value) in props {
            c.raw.insert(key.clone(), value.clone());
            if key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight") || key == "version" {
                quorum_props.retain(|(k, _)| *k != key);
                quorum_props.push((key.clone(), value.clone()));
            }
            match key.as_str() {
                "dataDir" => data_dir = Some(value),
                "dataLogDir" => data_log_dir = Some(value),
                "clientPort" => c.client_port = parse_int(&value)?,
                "localSessionsEnabled" => c.local_sessions_enabled = parse_bool(&key, &value)?,
                "localSessionsUpgradingEnabled" => c.local_sessions_upgrading_enabled = parse_bool(&key, &value)?,
                "clientPortAddress" => c.client_port_address = Some(value),
                "secureClientPort" => c.secure_client_port = parse_int(&value)?,
                "secureClientPortAddress" => c.secure_client_port_address = Some(value.trim().to_owned()),
                "observerMasterPort" => c.observer_master_port = parse_int(&value)?,
                "clientPortListenBacklog" => c.client_port_listen_backlog = parse_int(&value)?,
                "tickTime" => c.tick_time = parse_int(&value)?,
                "maxClientCnxns" => c.max_client_cnxns = parse_int(&value)?,
                "minSessionTimeout" => c.min_session_timeout = parse_int(&value)?,
                "maxSessionTimeout" => c.max_session_timeout = parse_int(&value)?,
                "initLimit" => c.init_limit = parse_int(&value)?,
                "syncLimit" => c.sync_limit = parse_int(&value)?,
                "connectToLearnerMasterLimit" => c.connect_to_learner_master_limit = parse_int(&value)?,
                "electionAlg" => {
                    c.election_alg = parse_int(&value)?;
                    if c.election_alg != 3 {
                        return Err(ConfigException::new("Invalid electionAlg value. Only 3 is supported."));
                    }
                }
                "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = parse_bool(&key, &value)?,
                "peerType" => {
                    c.peer_type = match value.to_lowercase().as_str() {
                        "observer" => LearnerType::Observer,
                        "participant" => LearnerType::Participant,
                        _ => return Err(ConfigException::new(format!("Unrecognised peertype: {value}"))),
                    };
                    peer_type_set = true;
                }
                "syncEnabled" => c.sync_enabled = parse_bool(&key, &value)?,
                "dynamicConfigFile" => c.dynamic_config_file = Some(PathBuf::from(value)),
                "autopurge.snapRetainCount" => c.snap_retain_count = parse_int(&value)?,
                "autopurge.purgeInterval" => c.purge_interval = parse_int(&value)?,
                "standaloneEnabled" => c.standalone_enabled = parse_bool(&key, &value)?,
                "reconfigEnabled" => c.reconfig_enabled = parse_bool(&key, &value)?,
                "sslQuorum" => c.ssl_quorum = parse_bool(&key, &value)?,
                "portUnification" => c.port_unification = parse_bool(&key, &value)?,
                "sslQuorumReloadCertFiles" => c.ssl_quorum_reload_cert_files = parse_bool(&key, &value)?,
                k if (k.starts_with("server.") || k.starts_with("group") || k.starts_with("weight")) && has_dynamic_file => {
                    return Err(ConfigException::new(format!("parameter: {k} must be in a separate dynamic config file")));
                }
                "quorum.auth.enableSasl" => c.quorum_sasl.enabled = parse_bool(&key, &value)?,
                "quorum.auth.serverRequireSasl" => c.quorum_sasl.server_require = parse_bool(&key, &value)?,
                "quorum.auth.learnerRequireSasl" => c.quorum_sasl.learner_require = parse_bool(&key, &value)?,
                "quorum.auth.learner.saslLoginContext" => c.quorum_sasl.learner_login_context = value.trim().to_owned(),
                "quorum.auth.server.saslLoginContext" => c.quorum_sasl.server_login_context = value.trim().to_owned(),
                "quorum.auth.kerberos.servicePrincipal" => c.quorum_sasl.kerberos_service_principal = Some(value.trim().to_owned()),
                "quorum.cnxn.threads.size" => c.quorum_cnxn_threads_size = parse_int(&value)?,
                "jvm.pause.info-threshold.ms" | "jvm.pause.warn-threshold.ms" | "jvm.pause.sleep.time.ms" => {
                    parse_long_value(&value)?;
                }
                "jvm.pause.monitor" => {
                    parse_bool(&key, &value)?;
                }
                "metricsProvider.className" => c.metrics_provider_class_name = value.clone(),
                k if k.starts_with("metricsProvider.") => {
                    c.metrics_provider_configuration.insert(k["metricsProvider.".len()..].to_owned(), value.clone());
                }
                "multiAddress.enabled" => c.multi_address_enabled = parse_bool(&key, &value)?,
                "multiAddress.reachabilityCheckTimeoutMs" => c.multi_address_reachability_check_timeout_ms = parse_int(&value)?,
                "multiAddress.reachabilityCheckEnabled" => c.multi_address_reachability_check_enabled = parse_bool(&key, &value)?,
                "oraclePath" => {}
                _ => {
                    // server.N, group.N, weight.N and version are membership keys, read
                    // below (upstream also turns them into system properties).
                    system_properties::set(&format!("zookeeper.{key}"), &value);
                }
            }
        }
        let _ = peer_type_set;
        log::info!("metricsProvider.className is {}", c.metrics_provider_class_name);
        if !crate::server::metrics::is_known_provider(&c.metrics_provider_class_name) {
            return Err(ConfigException::new(format!(
                "metrics provider class was not found: {} (this server has {} and {})",
                c.metrics_provider_class_name,
                crate::server::metrics::DEFAULT_METRICS_PROVIDER,
                crate::server::metrics::PROMETHEUS_METRICS_PROVIDER
            )));
        }
        let autopurge_min = 3;
        if c.snap_retain_count < autopurge_min {
            log::warn!("Invalid autopurge.snapRetainCount: {}. Defaulting to {autopurge_min}", c.snap_retain_count);
            c.snap_retain_count = autopurge_min;
        }
        let Some(dd) = data_dir else {
            return Err(ConfigException::illegal_argument("dataDir is not set"));
        };
        c.data_dir = PathBuf::from(&dd);
        c.data_log_dir = PathBuf::from(data_log_dir.unwrap_or(dd));
        c.quorum_sasl.validate()?;
        if c.client_port == 0 {
            log::info!("clientPort is not set");
            if c.client_port_address.is_some() {
                return Err(ConfigException::illegal_argument("clientPortAddress is set but clientPort is not set"));
            }
        }
        if c.secure_client_port == 0 {
            log::info!("secureClientPort is not set");
            if c.secure_client_port_address.is_some() {
                return Err(ConfigException::illegal_argument("secureClientPortAddress is set but secureClientPort is not set"));
            }
        } else if let Some(a) = &c.secure_client_port_address {
            log::info!("secureClientPortAddress is {a}:{}", c.secure_client_port);
        }
        if c.observer_master_port <= 0 {
            log::info!("observerMasterPort is not set");
        } else {
            log::info!("observerMasterPort is {}", c.observer_master_port);
        }
        if c.tick_time == 0 {
            return Err(ConfigException::illegal_argument("tickTime is not set"));
        }
        if c.min_session_timeout == -1 {
            c.min_session_timeout = c.tick_time * 2;
        }
        if c.max_session_timeout == -1 {
            c.max_session_timeout = c.tick_time * 20;
        }
        if c.min_session_timeout > c.max_session_timeout {
            return Err(ConfigException::illegal_argument("minSessionTimeout must not be larger than maxSessionTimeout"));
        }
        system_properties::set("zookeeper.reconfigEnabled", if c.reconfig_enabled { "true" } else { "false" });
        // The membership comes from this file unless a dynamic file is named.
        if c.dynamic_config_file.is_none() {
            c.setup_quorum_peer_config(&quorum_props, true)?;
        }
        Ok(())
    }

    /// `setupQuorumPeerConfig`: membership, myid, client address, peer type, checks.
    fn setup_quorum_peer_config(&mut self, props: &[(String, String)], backward_compatible: bool) -> Result<(), ConfigException> {
        self.quorum_verifier = self.parse_dynamic_config(props, backward_compatible)?;
        self.setup_my_id()?;
        self.setup_client_port()?;
        self.setup_peer_type();
        self.check_validity()
    }

    /// `parseDynamicConfig`: builds the verifier and applies upstream's member-count
    /// rules. No `server.` lines at all is a plain standalone configuration.
    fn parse_dynamic_config(&self, props: &[(String, String)], backward_compatible: bool) -> Result<Option<QuorumVerifier>, ConfigException> {
        if !backward_compatible {
            for (k, _) in props {
                if !(k.starts_with("group") || k.starts_with("weight") || k.starts_with("server.") || k == "version") {
                    return Err(ConfigException::new(format!("Unrecognised parameter: {k}")));
                }
            }
        }
        // Upstream always builds a verifier; with no members it is only a "standalone"
        // marker, which `is_distributed` treats like none.
        let qv = QuorumVerifier::from_props(props, self.multi_address_enabled || system_properties::get_bool("zookeeper.multiAddress.enabled"))?;
        let voters = qv.voting_count();
        let observers = qv.observing_count();
        if voters == 0 {
            if !self.standalone_enabled {
                return Err(ConfigException::illegal_argument("standaloneEnabled = false then number of participants should be >0"));
            }
            if observers > 0 {
                return Err(ConfigException::illegal_argument("Observers w/o participants is an invalid configuration"));
            }
            return Ok(None);
        } else if voters == 1 && self.standalone_enabled {
            log::error!("Invalid configuration, only one server specified (ignoring)");
            if observers > 0 {
                return Err(ConfigException::illegal_argument("Observers w/o quorum is an invalid configuration"));
            }
        } else if voters <= 2 {
            log::warn!("No server failure will be tolerated. You need at least 3 servers.");
        } else if voters % 2 == 0 {
            log::warn!("Non-optimal configuration, consider an odd number of servers.");
        }
        Ok(Some(qv))
    }

    /// `setupMyId`: the first line of `<dataDir>/myid`, when the file exists.
    fn setup_my_id(&mut self) -> Result<(), ConfigException> {
        let file = self.data_dir.join("myid");
        if !file.is_file() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&file).map_err(|e| ConfigException::illegal_argument(format!("{}: {e}", file.display())))?;
        let line = text.split(['\n', '\r']).next().unwrap_or("");
        self.server_id = line
            .parse::<i64>()
            .map_err(|_| ConfigException::illegal_argument(format!("serverid {line} is not a number")))?;
        Ok(())
    }

    /// `setupClientPort`: the `;client` part of this server's line is the client
    /// address; a different static `clientPort`/`clientPortAddress` is an error.
    fn setup_client_port(&mut self) -> Result<(), ConfigException> {
        if self.server_id == UNSET_SERVERID {
            return Ok(());
        }
        let static_addr = self.static_client_address();
        let sid = self.server_id;
        let Some(qs) = self.quorum_verifier.as_mut().and_then(|qv| qv.members_mut().all.get_mut(&sid)) else {
            return Ok(());
        };
        match (&static_addr, &qs.client_addr) {
            (Some(st), Some(dynamic)) => {
                let differs = if st.is_wildcard() { st.port != dynamic.port } else { st != dynamic };
                if differs {
                    return Err(ConfigException::new(format!(
                        "client address for this server (id = {sid}) in static config file is {st} is different from client address found in dynamic file: {dynamic}"
                    )));
                }
            }
            (Some(st), None) => {
                qs.client_addr = Some(st.clone());
                qs.is_client_addr_from_static = true;
            }
            _ => {}
        }
        if let Some(dynamic) = qs.client_addr.clone() {
            if !qs.is_client_addr_from_static {
                self.client_port = i32::from(dynamic.port);
                self.client_port_address = Some(dynamic.host.clone());
            }
        }
        Ok(())
    }

    /// `clientPortAddress` as upstream builds it: the wildcard address unless an address
    /// is configured.
    pub fn static_client_address(&self) -> Option<QuorumAddr> {
        if self.client_port == 0 {
            return None;
        }
        let port = u16::try_from(self.client_port).ok()?;
        Some(QuorumAddr::new(self.client_port_address.as_deref().unwrap_or("0.0.0.0"), port))
    }

    /// `setupPeerType`: the role in the server list wins over `peerType`.
    fn setup_peer_type(&mut self) {
        let by_list = match &self.quorum_verifier {
            Some(qv) if qv.is_observer(self.server_id) => LearnerType::Observer,
            _ => LearnerType::Participant,
        };
        if by_list != self.peer_type {
            log::warn!(
                "Peer type from servers list ({}) doesn't match peerType ({}). Defaulting to servers list.",
                by_list.name(),
                self.peer_type.name()
            );
            self.peer_type = by_list;
        }
    }

    /// `checkValidity`.
    fn check_validity(&self) -> Result<(), ConfigException> {
        if self.is_distributed() {
            if self.init_limit == 0 {
                return Err(ConfigException::illegal_argument("initLimit is not set"));
            }
            if self.sync_limit == 0 {
                return Err(ConfigException::illegal_argument("syncLimit is not set"));
            }
            if self.server_id == UNSET_SERVERID {
                return Err(ConfigException::illegal_argument("myid file is missing"));
            }
        }
        Ok(())
    }

    /// `isDistributed`: a membership with more than one voter, or any membership when
    /// standalone mode is disabled.
    pub fn is_distributed(&self) -> bool {
        match &self.quorum_verifier {
            Some(qv) => !self.standalone_enabled || qv.voting_count() > 1,
            None => false,
        }
    }
}

fn trimmed(props: Vec<(String, String)>) -> Vec<(String, String)> {
    props.into_iter().map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_security_keys() {
        let base = "dataDir=/tmp/x\nclientPort=2181\nserver.1=127.0.0.1:2888:3888\n";
        let c = QuorumPeerConfig::parse_text(base).unwrap();
        assert!(!c.ssl_quorum && !c.port_unification && !c.quorum_sasl.enabled);
        assert_eq!((c.quorum_sasl.learner_login_context.as_str(), c.quorum_sasl.server_login_context.as_str()), ("QuorumLearner", "QuorumServer"));
        let c = QuorumPeerConfig::parse_text(&format!(
            "{base}sslQuorum=true\nportUnification=true\nquorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true\nquorum.auth.learner.saslLoginContext=L\n"
        ))
        .unwrap();
        assert!(c.ssl_quorum && c.port_unification && c.quorum_sasl.enabled && c.quorum_sasl.server_require && c.quorum_sasl.learner_require);
        assert_eq!(c.quorum_sasl.learner_login_context, "L");
        // The combinations QuorumPeerConfig refuses, with its words.
        for (extra, msg) in [
            ("quorum.auth.serverRequireSasl=true\n", "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"),
            ("quorum.auth.learnerRequireSasl=true\n", "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl"),
            (
                "quorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\n",
                "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
            ),
        ] {
            let e = QuorumPeerConfig::parse_text(&format!("{base}{extra}")).unwrap_err();
            assert_eq!(e.msg, msg);
        }
        assert!(QuorumPeerConfig::parse_text(&format!("{base}sslQuorum=maybe\n")).is_err());
    }

    #[test]
    fn defaults_and_passthrough() {
        let c = QuorumPeerConfig::parse_text("dataDir=/tmp/x\nclientPort=2181\nsnapCount=7\n# c\n").unwrap();
        assert_eq!(c.tick_time, 3000);
        assert_eq!(c.min_session_timeout, 6000);
        assert_eq!(c.max_session_timeout, 60000);
        assert_eq!(c.max_client_cnxns, 60);
        assert_eq!(system_properties::get("zookeeper.snapCount").as_deref(), Some("7"));
        assert!(!c.is_distributed());
    }

    #[test]
    fn errors() {
        assert_eq!(QuorumPeerConfig::parse_text("clientPort=1").unwrap_err().msg, "dataDir is not set");
        assert!(QuorumPeerConfig::parse_text("dataDir=/x\ntickTime=abc").is_err());
        assert_eq!(
            QuorumPeerConfig::parse_text("dataDir=/x\nminSessionTimeout=10\nmaxSessionTimeout=5").unwrap_err().msg,
            "minSessionTimeout must not be larger than maxSessionTimeout"
        );
        assert_eq!(
            QuorumPeerConfig::parse_text("dataDir=/x\nelectionAlg=1").unwrap_err().msg,
            "Invalid electionAlg value. Only 3 is supported."
        );
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("a = b\nc:d\ne f\n! x\nlong=one\\\n  two\n");
        assert_eq!(p, vec![
            ("a".into(), "b".into()),
            ("c".into(), "d".into()),
            ("e".into(), "f".into()),
            ("long".into(), "onetwo".into()),
        ]);
    }

    fn quorum_cfg(dir: &Path, extra: &str, myid: Option<&str>) -> Result<QuorumPeerConfig, ConfigException> {
        if let Some(id) = myid {
            std::fs::write(dir.join("myid"), id).unwrap();
        }
        let text = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nserver.1=127.0.0.1:2881:3881\nserver.2=127.0.0.1:2882:3882;127.0.0.1:2192\nserver.3=127.0.0.1:2883:3883:observer\n{extra}",
            dir.display()
        );
        let f = dir.join("zoo.cfg");
        std::fs::write(&f, text).unwrap();
        QuorumPeerConfig::parse(&f)
    }

    #[test]
    fn quorum_membership_myid_and_client_address() {
        let d = tempfile::tempdir().unwrap();
        let c = quorum_cfg(d.path(), "", Some("2\n")).unwrap();
        assert!(c.is_distributed());
        assert_eq!(c.server_id, 2);
        assert_eq!(c.client_port, 2192);
        assert_eq!(c.client_port_address.as_deref(), Some("127.0.0.1"));
        let qv = c.quorum_verifier.as_ref().unwrap();
        assert_eq!(qv.voting_ids(), vec![1, 2]);
        assert_eq!(c.peer_type, LearnerType::Participant);

        let d = tempfile::tempdir().unwrap();
        let c = quorum_cfg(d.path(), "peerType=participant\n", Some("3")).unwrap();
        assert_eq!(c.peer_type, LearnerType::Observer, "the server list decides the role");
        // server 1 has no client part: the static clientPort fills it in and the
        // canonical text leaves it out.
        let d = tempfile::tempdir().unwrap();
        let c = quorum_cfg(d.path(), "clientPort=2181\n", Some("1")).unwrap();
        assert_eq!(c.client_port, 2181);
        let text = c.quorum_verifier.as_ref().unwrap().to_string();
        assert!(text.starts_with("server.1=127.0.0.1:2881:3881:participant\nserver.2=127.0.0.1:2882:3882:participant;127.0.0.1:2192\n"), "{text}");
    }

    #[test]
    fn quorum_errors_as_upstream() {
        let d = tempfile::tempdir().unwrap();
        let e = quorum_cfg(d.path(), "", None).unwrap_err();
        assert_eq!(e.msg, format!("Error processing {}: myid file is missing", d.path().join("zoo.cfg").display()));
        let d = tempfile::tempdir().unwrap();
        let e = quorum_cfg(d.path(), "", Some("abc")).unwrap_err();
        assert!(e.msg.ends_with("serverid abc is not a number"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let e = quorum_cfg(d.path(), "clientPort=2999\n", Some("2")).unwrap_err();
        assert!(e.msg.starts_with("client address for this server (id = 2) in static config file is"), "{e}");
        assert!(!e.illegal_argument);
        let e = QuorumPeerConfig::parse_text("dataDir=/x\nserver.1=h:1:2\nserver.2=h:3:4\n").unwrap_err();
        assert_eq!(e.msg, "initLimit is not set");
        let e = QuorumPeerConfig::parse_text("dataDir=/x\ninitLimit=5\nserver.1=h:1:2\nserver.2=h:3:4\n").unwrap_err();
        assert_eq!(e.msg, "syncLimit is not set");
        let e = QuorumPeerConfig::parse_text("dataDir=/x\nstandaloneEnabled=false\nserver.1=h:1:2:observer\n").unwrap_err();
        assert_eq!(e.msg, "standaloneEnabled = false then number of participants should be >0");
        let e = QuorumPeerConfig::parse_text("dataDir=/x\nserver.1=h:1:2:observer\n").unwrap_err();
        assert_eq!(e.msg, "Observers w/o participants is an invalid configuration");
        let e = QuorumPeerConfig::parse_text("dataDir=/x\nserver.1=h:1:2\nserver.2=h:1:2:observer\n").unwrap_err();
        assert_eq!(e.msg, "Observers w/o quorum is an invalid configuration");
        let e = QuorumPeerConfig::parse_text("dataDir=/x\nsyncEnabled=maybe\n").unwrap_err();
        assert_eq!(e.msg, "Invalid option maybe for syncEnabled. Choose 'true' or 'false.'");
        let e = QuorumPeerConfig::parse_text("dataDir=/x\ndynamicConfigFile=/d\nserver.1=h:1:2\n").unwrap_err();
        assert_eq!(e.msg, "parameter: server.1 must be in a separate dynamic config file");
        // One voter with standalone enabled: a standalone server.
        let c = QuorumPeerConfig::parse_text("dataDir=/x\nserver.1=h:1:2\n").unwrap();
        assert!(!c.is_distributed());
        let c = QuorumPeerConfig::parse_text("dataDir=/x\nstandaloneEnabled=false\ninitLimit=1\nsyncLimit=1\nserver.1=h:1:2\n");
        assert_eq!(c.unwrap_err().msg, "myid file is missing");
    }
}
