//! `SASLAuthenticationProvider`: the `sasl` ACL scheme, registered by
//! `authProvider.<n>=org.apache.zookeeper.server.auth.SASLAuthenticationProvider` (the
//! property `zookeeper.authProvider.<n>`). Ids are what SASL authenticated
//! (`sasl:bob`); `zookeeper.superUser` matches every sasl ACL and
//! `zookeeper.letAnySaslUserDoX` names an ACL id any sasl user matches.

use crate::system_properties;

pub const CLASS_NAME: &str = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider";

/// `ProviderRegistry`: is the provider configured?
pub fn is_registered() -> bool {
    system_properties::all_sorted()
        .iter()
        .any(|(k, v)| k.starts_with("zookeeper.authProvider.") && v.trim() == CLASS_NAME)
}

/// `matches(id, aclExpr)`.
pub fn matches(id: &str, acl_expr: &str) -> bool {
    if let Some(su) = system_properties::get("zookeeper.superUser") {
        if id == su || id == acl_expr {
            return true;
        }
    }
    if id == acl_expr {
        return true;
    }
    system_properties::get("zookeeper.letAnySaslUserDoX").is_some_and(|x| acl_expr == x)
}

/// `isValid`: a Kerberos-style name, `primary[/instance][@REALM]`.
pub fn is_valid(id: &str) -> bool {
    let (rest, realm) = match id.split_once('@') {
        Some((r, realm)) => (r, Some(realm)),
        None => (id, None),
    };
    let ok_part = |p: &str| !p.is_empty() && !p.contains('/') && !p.contains('@');
    let names_ok = match rest.split_once('/') {
        Some((primary, instance)) => ok_part(primary) && ok_part(instance),
        None => ok_part(rest),
    };
    names_ok && realm.is_none_or(ok_part)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kerberos_names() {
        assert!(super::is_valid("bob"));
        assert!(super::is_valid("zookeeper/host@EXAMPLE.COM"));
        assert!(!super::is_valid(""));
        assert!(!super::is_valid("a/b/c"));
        assert!(!super::is_valid("a@b@c"));
    }
}
