//! `QuorumPeerConfig`: zoo.cfg parsing with upstream's keys, defaults and errors. Keys it
//! does not know become the system property `zookeeper.<key>`, as upstream does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::system_properties;

/// `QuorumPeerConfig.ConfigException`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigException(pub String);

impl fmt::Display for ConfigException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigException {}

/// One `server.N` line (only what the standalone decision needs so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumServerLine {
    pub sid: i64,
    pub spec: String,
    pub observer: bool,
}

#[derive(Debug, Clone)]
pub struct QuorumPeerConfig {
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: i32,
    pub client_port_address: Option<String>,
    pub secure_client_port: i32,
    pub client_port_listen_backlog: i32,
    pub tick_time: i32,
    pub max_client_cnxns: i32,
    pub min_session_timeout: i32,
    pub max_session_timeout: i32,
    pub init_limit: i32,
    pub sync_limit: i32,
    pub election_alg: i32,
    pub snap_retain_count: i32,
    pub purge_interval: i32,
    pub standalone_enabled: bool,
    pub reconfig_enabled: bool,
    pub local_sessions_enabled: bool,
    pub servers: Vec<QuorumServerLine>,
    /// Every key=value read, in file order of first appearance (for `conf`-like dumps).
    pub raw: BTreeMap<String, String>,
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
            client_port_listen_backlog: -1,
            tick_time: 3000,
            max_client_cnxns: 60,
            min_session_timeout: -1,
            max_session_timeout: -1,
            init_limit: 0,
            sync_limit: 0,
            election_alg: 3,
            snap_retain_count: 3,
            purge_interval: 0,
            standalone_enabled: true,
            reconfig_enabled: false,
            local_sessions_enabled: false,
            servers: Vec::new(),
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

fn parse_int(key: &str, v: &str) -> Result<i32, ConfigException> {
    v.parse::<i32>()
        .map_err(|_| ConfigException(format!("NumberFormatException: For input string: \"{v}\" (key {key})")))
}

fn parse_bool(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

impl QuorumPeerConfig {
    /// `QuorumPeerConfig.parse(path)`.
    pub fn parse(path: &Path) -> Result<QuorumPeerConfig, ConfigException> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if !path.exists() {
                ConfigException(format!("Error processing {}: {} file is missing", path.display(), path.display()))
            } else {
                ConfigException(format!("Error processing {}: {e}", path.display()))
            }
        })?;
        // Upstream wraps only IllegalArgumentExceptions in "Error processing <path>";
        // the ConfigExceptions parseProperties throws itself pass through unchanged.
        let thrown_directly = |m: &str| m.starts_with("Invalid electionAlg value") || m.starts_with("Unrecognised peertype: ");
        let mut cfg = Self::parse_text(&text).map_err(|e| {
            if thrown_directly(&e.0) {
                e
            } else {
                ConfigException(format!("Error processing {}: {}", path.display(), e.0))
            }
        })?;
        cfg.config_file = Some(path.to_path_buf());
        Ok(cfg)
    }

    /// `parseProperties`.
    pub fn parse_text(text: &str) -> Result<QuorumPeerConfig, ConfigException> {
        let mut c = QuorumPeerConfig::default();
        let mut data_dir: Option<String> = None;
        let mut data_log_dir: Option<String> = None;
        for (k, v) in parse_properties(text) {
            let key = k.trim().to_owned();
            let value = v.trim().to_owned();
            c.raw.insert(key.clone(), value.clone());
            match key.as_str() {
                "dataDir" => data_dir = Some(value),
                "dataLogDir" => data_log_dir = Some(value),
                "clientPort" => c.client_port = parse_int(&key, &value)?,
                "localSessionsEnabled" => c.local_sessions_enabled = parse_bool(&value),
                "localSessionsUpgradingEnabled" => {}
                "clientPortAddress" => c.client_port_address = Some(value),
                "secureClientPort" => c.secure_client_port = parse_int(&key, &value)?,
                "secureClientPortAddress" => {}
                "observerMasterPort" => {
                    parse_int(&key, &value)?;
                }
                "clientPortListenBacklog" => c.client_port_listen_backlog = parse_int(&key, &value)?,
                "tickTime" => c.tick_time = parse_int(&key, &value)?,
                "maxClientCnxns" => c.max_client_cnxns = parse_int(&key, &value)?,
                "minSessionTimeout" => c.min_session_timeout = parse_int(&key, &value)?,
                "maxSessionTimeout" => c.max_session_timeout = parse_int(&key, &value)?,
                "initLimit" => c.init_limit = parse_int(&key, &value)?,
                "syncLimit" => c.sync_limit = parse_int(&key, &value)?,
                "connectToLearnerMasterLimit" => {
                    parse_int(&key, &value)?;
                }
                "electionAlg" => {
                    c.election_alg = parse_int(&key, &value)?;
                    if c.election_alg != 3 {
                        return Err(ConfigException("Invalid electionAlg value. Only 3 is supported.".into()));
                    }
                }
                "quorumListenOnAllIPs" | "syncEnabled" | "dynamicConfigFile" | "sslQuorum" | "portUnification"
                | "sslQuorumReloadCertFiles" | "multiAddress.enabled" | "multiAddress.reachabilityCheckEnabled"
                | "oraclePath" | "metricsProvider.className" => {}
                "peerType" => {
                    let l = value.to_lowercase();
                    if l != "observer" && l != "participant" {
                        return Err(ConfigException(format!("Unrecognised peertype: {value}")));
                    }
                }
                "autopurge.snapRetainCount" => c.snap_retain_count = parse_int(&key, &value)?,
                "autopurge.purgeInterval" => c.purge_interval = parse_int(&key, &value)?,
                "standaloneEnabled" => c.standalone_enabled = parse_bool(&value),
                "reconfigEnabled" => c.reconfig_enabled = parse_bool(&value),
                "quorum.cnxn.threads.size" | "multiAddress.reachabilityCheckTimeoutMs" => {
                    parse_int(&key, &value)?;
                }
                "jvm.pause.info-threshold.ms" | "jvm.pause.warn-threshold.ms" | "jvm.pause.sleep.time.ms" => {
                    value
                        .parse::<i64>()
                        .map_err(|_| ConfigException(format!("NumberFormatException: For input string: \"{value}\"")))?;
                }
                k if k.starts_with("server.") => {
                    let sid = k["server.".len()..]
                        .parse::<i64>()
                        .map_err(|_| ConfigException(format!("NumberFormatException: For input string: \"{}\"", &k[7..])))?;
                    let observer = value.split(';').next().unwrap_or("").ends_with(":observer");
                    c.servers.push(QuorumServerLine { sid, spec: value.clone(), observer });
                }
                k if k.starts_with("group.") || k.starts_with("weight.") || k.starts_with("quorum.auth.")
                    || k.starts_with("metricsProvider.") || k == "jvm.pause.monitor" || k == "version" => {}
                _ => {
                    system_properties::set(&format!("zookeeper.{key}"), &value);
                }
            }
        }
        let autopurge_min = 3;
        if c.snap_retain_count < autopurge_min {
            log::warn!("Invalid autopurge.snapRetainCount: {}. Defaulting to {autopurge_min}", c.snap_retain_count);
            c.snap_retain_count = autopurge_min;
        }
        let Some(dd) = data_dir else {
            return Err(ConfigException("dataDir is not set".into()));
        };
        c.data_dir = PathBuf::from(&dd);
        c.data_log_dir = PathBuf::from(data_log_dir.unwrap_or(dd));
        if c.client_port == 0 {
            log::info!("clientPort is not set");
            if c.client_port_address.is_some() {
                return Err(ConfigException("clientPortAddress is set but clientPort is not set".into()));
            }
        }
        if c.tick_time == 0 {
            return Err(ConfigException("tickTime is not set".into()));
        }
        if c.min_session_timeout == -1 {
            c.min_session_timeout = c.tick_time * 2;
        }
        if c.max_session_timeout == -1 {
            c.max_session_timeout = c.tick_time * 20;
        }
        if c.min_session_timeout > c.max_session_timeout {
            return Err(ConfigException("minSessionTimeout must not be larger than maxSessionTimeout".into()));
        }
        system_properties::set("zookeeper.reconfigEnabled", if c.reconfig_enabled { "true" } else { "false" });
        Ok(c)
    }

    /// `isDistributed`: more than one voter, or any server line with standalone disabled.
    pub fn is_distributed(&self) -> bool {
        let voters = self.servers.iter().filter(|s| !s.observer).count();
        !self.servers.is_empty() && (!self.standalone_enabled || voters > 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(QuorumPeerConfig::parse_text("clientPort=1").unwrap_err().0, "dataDir is not set");
        assert!(QuorumPeerConfig::parse_text("dataDir=/x\ntickTime=abc").is_err());
        assert_eq!(
            QuorumPeerConfig::parse_text("dataDir=/x\nminSessionTimeout=10\nmaxSessionTimeout=5").unwrap_err().0,
            "minSessionTimeout must not be larger than maxSessionTimeout"
        );
        assert_eq!(
            QuorumPeerConfig::parse_text("dataDir=/x\nelectionAlg=1").unwrap_err().0,
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
}
