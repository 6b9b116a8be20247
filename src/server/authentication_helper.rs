//! `AuthenticationHelper`: `zookeeper.enforce.auth.enabled` with
//! `zookeeper.enforce.auth.schemes`, or `zookeeper.sessionRequireClientSASLAuth` (which
//! means enforcement with `sasl`). A connection that sends a request before it holds
//! an id of one of the schemes gets SESSIONCLOSEDREQUIRESASLAUTH and is closed.

use crate::proto::data::Id;
use crate::system_properties;

pub const ENFORCE_AUTH_ENABLED: &str = "zookeeper.enforce.auth.enabled";
pub const ENFORCE_AUTH_SCHEMES: &str = "zookeeper.enforce.auth.schemes";
pub const SESSION_REQUIRE_CLIENT_SASL_AUTH: &str = "zookeeper.sessionRequireClientSASLAuth";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthenticationHelper {
    pub enforce_auth_enabled: bool,
    pub enforce_auth_schemes: Vec<String>,
}

/// Java's `Boolean.parseBoolean`.
fn parse_bool(v: Option<String>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

impl AuthenticationHelper {
    /// `initConfigurations` + `validateConfiguredProperties`: Err is the message upstream
    /// throws (and the server does not start).
    pub fn from_system_properties() -> Result<AuthenticationHelper, String> {
        let mut h = AuthenticationHelper::default();
        if parse_bool(system_properties::get(SESSION_REQUIRE_CLIENT_SASL_AUTH)) {
            h.enforce_auth_enabled = true;
            h.enforce_auth_schemes.push("sasl".into());
        } else {
            h.enforce_auth_enabled = parse_bool(system_properties::get(ENFORCE_AUTH_ENABLED));
            if let Some(s) = system_properties::get(ENFORCE_AUTH_SCHEMES) {
                h.enforce_auth_schemes.extend(s.split(',').map(|x| x.trim().to_owned()));
            }
        }
        log::info!("{ENFORCE_AUTH_ENABLED} = {}", h.enforce_auth_enabled);
        log::info!("{ENFORCE_AUTH_SCHEMES} = [{}]", h.enforce_auth_schemes.join(", "));
        if h.enforce_auth_enabled {
            if h.enforce_auth_schemes.is_empty() {
                let msg = format!("{ENFORCE_AUTH_ENABLED} is true {ENFORCE_AUTH_SCHEMES} must be  configured.");
                log::error!("{msg}");
                return Err(msg);
            }
            if let Some(s) = h.enforce_auth_schemes.iter().find(|s| !crate::server::auth::is_known_scheme(s)) {
                let msg = format!("Authentication scheme {s} is not available.");
                log::error!("{msg}");
                return Err(msg);
            }
        }
        Ok(h)
    }

    /// `isSaslAuthRequired`.
    pub fn is_sasl_auth_required(&self) -> bool {
        self.enforce_auth_enabled && self.enforce_auth_schemes.iter().any(|s| s == "sasl")
    }

    /// `enforceAuthentication`'s test: None when the connection may go on, else the
    /// schemes it holds (for the log line).
    pub fn refuses(&self, auth_info: &[Id]) -> Option<Vec<String>> {
        if !self.enforce_auth_enabled || auth_info.iter().any(|id| self.enforce_auth_schemes.contains(&id.scheme)) {
            return None;
        }
        Some(auth_info.iter().map(|id| id.scheme.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcement() {
        let h = AuthenticationHelper { enforce_auth_enabled: true, enforce_auth_schemes: vec!["sasl".into()] };
        assert!(h.is_sasl_auth_required());
        assert_eq!(h.refuses(&[Id::new("ip", "127.0.0.1")]), Some(vec!["ip".to_string()]));
        assert_eq!(h.refuses(&[Id::new("ip", "127.0.0.1"), Id::new("sasl", "bob")]), None);
        let off = AuthenticationHelper::default();
        assert_eq!(off.refuses(&[]), None);
        assert!(!off.is_sasl_auth_required());
    }
}
