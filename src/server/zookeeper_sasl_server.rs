//! `ZooKeeperSaslServer` + `ServerCnxnFactory.configureSaslLogin` +
//! `SaslServerCallbackHandler`: client SASL with DIGEST-MD5 against the `Server` section
//! (`zookeeper.sasl.serverconfig`) of the JAAS file a Java deployment already has. Its
//! `user_<name>="<password>"` options are the accounts; a client that authenticates
//! gets the id `sasl:<name>` (and `super` when `zookeeper.superUser` names it).
//! Kerberos (GSSAPI) is refused at start with a clear error, never ignored.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::common::jaas_configuration::{self, JAAS_CONF_KEY};
use crate::system_properties;

pub const LOGIN_CONTEXT_NAME_KEY: &str = "zookeeper.sasl.serverconfig";
pub const DEFAULT_LOGIN_CONTEXT_NAME: &str = "Server";
/// `ZooKeeperServer.ALLOW_SASL_FAILED_CLIENTS`.
pub const ALLOW_SASL_FAILED_CLIENTS: &str = "zookeeper.allowSaslFailedClients";
const SASL_SUPER_USER: &str = "zookeeper.superUser";

/// The server's login: the accounts its callback handler answers with.
#[derive(Debug, Default)]
pub struct SaslServerLogin {
    pub credentials: HashMap<String, String>,
}

static LOGIN: OnceLock<Option<Arc<SaslServerLogin>>> = OnceLock::new();

/// The login configured at start, if any (a connection's SASL packets are answered
/// against it).
pub fn login() -> Option<Arc<SaslServerLogin>> {
    LOGIN.get().cloned().flatten()
}

/// `configureSaslLogin`: reads the JAAS file, if one is set. Ok(None) without one (or
/// without the section while neither the file nor the section name was asked for).
pub fn configure_sasl_login() -> Result<Option<Arc<SaslServerLogin>>, String> {
    let r = load();
    if let Ok(l) = &r {
        let _ = LOGIN.set(l.clone());
    }
    r
}

fn load() -> Result<Option<Arc<SaslServerLogin>>, String> {
    let section_name = system_properties::get_or(LOGIN_CONTEXT_NAME_KEY, DEFAULT_LOGIN_CONTEXT_NAME);
    let jaas_file = system_properties::get(JAAS_CONF_KEY);
    let context_set = system_properties::get(LOGIN_CONTEXT_NAME_KEY).is_some();
    // As upstream: no file, or a file without the section, is a server without SASL;
    // a file that cannot be read or parsed is an error.
    let Some(cfg) = jaas_configuration::load_from_system_property() else {
        return Ok(None);
    };
    let cfg = cfg.map_err(|e| format!("{} ({e})", no_section(&section_name, jaas_file.as_deref(), context_set)))?;
    let Some(entries) = cfg.get(&section_name) else {
        return Ok(None);
    };
    let mut login = SaslServerLogin::default();
    for e in entries {
        if e.login_module.contains("Krb5LoginModule") {
            return Err(format!(
                "Could not configure server because SASL configuration did not allow the  ZooKeeper server to authenticate itself properly: \
                 section '{section_name}' uses {}, and Kerberos (GSSAPI) is not supported by this server; use DigestLoginModule (DIGEST-MD5)",
                e.login_module
            ));
        }
        for (k, v) in &e.options {
            if let Some(user) = k.strip_prefix("user_") {
                login.credentials.insert(user.to_owned(), v.clone());
            }
        }
    }
    log::info!("SASL login from section '{section_name}': DIGEST-MD5 for {} user(s)", login.credentials.len());
    Ok(Some(Arc::new(login)))
}

fn no_section(section: &str, file: Option<&str>, context_set: bool) -> String {
    let mut m = format!("No JAAS configuration section named '{section}' was found");
    if let Some(f) = file {
        m.push_str(&format!(" in '{f}'."));
    }
    if context_set {
        m.push_str(&format!(" But {LOGIN_CONTEXT_NAME_KEY} was set."));
    }
    m
}

/// `isSaslSuperUser`: `zookeeper.superUser` or any `zookeeper.superUser.<x>` names it.
pub fn is_sasl_super_user(id: &str) -> bool {
    if id.is_empty() {
        return false;
    }
    system_properties::all_sorted().iter().any(|(k, v)| {
        k.strip_prefix(SASL_SUPER_USER).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')) && v == id
    })
}

/// `shouldAllowSaslFailedClientsConnect`.
pub fn allow_sasl_failed_clients() -> bool {
    system_properties::get_bool(ALLOW_SASL_FAILED_CLIENTS)
}
