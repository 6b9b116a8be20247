//! `org.apache.zookeeper.server.auth`: the `digest` and `ip` providers that upstream
//! registers by default (`ProviderRegistry`).

pub mod digest_authentication_provider;
pub mod ip_authentication_provider;
pub mod sasl_authentication_provider;

use crate::proto::data::{ClientInfo, Id};

/// The schemes with a server provider.
pub fn is_known_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "ip" | "x509") || scheme == "sasl" && sasl_authentication_provider::is_registered()
}

/// `X509AuthenticationProvider.matches`: the subject itself, or any id for the
/// configured super user.
fn x509_matches(id: &str, acl_expr: &str) -> bool {
    match crate::system_properties::get("zookeeper.X509AuthenticationProvider.superUser") {
        Some(su) => id == su || id == acl_expr,
        None => id == acl_expr,
    }
}

/// `isValid` of the scheme's provider; None when there is no provider.
pub fn is_valid(scheme: &str, id: &str) -> Option<bool> {
    match scheme {
        "digest" => Some(digest_authentication_provider::is_valid(id)),
        "ip" => Some(ip_authentication_provider::is_valid(id)),
        "x509" => Some(!id.is_empty()),
        "sasl" if sasl_authentication_provider::is_registered() => Some(sasl_authentication_provider::is_valid(id)),
        _ => None,
    }
}

/// `isAuthenticated`: ids of this scheme can stand for the `auth` pseudo-id.
pub fn is_authenticated(scheme: &str) -> Option<bool> {
    match scheme {
        "digest" => Some(true),
        "ip" => Some(false),
        "x509" => Some(true),
        "sasl" if sasl_authentication_provider::is_registered() => Some(true),
        _ => None,
    }
}

/// `matches(id, aclExpr)`; None when the scheme has no provider.
pub fn matches(scheme: &str, id: &str, acl_expr: &str) -> Option<bool> {
    match scheme {
        "digest" => Some(id == acl_expr),
        "ip" => Some(ip_authentication_provider::matches(id, acl_expr)),
        "x509" => Some(x509_matches(id, acl_expr)),
        "sasl" if sasl_authentication_provider::is_registered() => Some(sasl_authentication_provider::matches(id, acl_expr)),
        _ => None,
    }
}

/// `AuthUtil.getClientInfos`: what whoAmI returns.
pub fn client_infos(ids: &[Id]) -> Vec<ClientInfo> {
    ids.iter()
        .map(|id| ClientInfo {
            auth_scheme: id.scheme.clone(),
            user: match id.scheme.as_str() {
                "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
                _ => id.id.clone(),
            },
        })
        .collect()
}
