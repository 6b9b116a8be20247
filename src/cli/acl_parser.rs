//! `AclParser`: `scheme:id:perms[,scheme:id:perms...]` as zkCli takes it.

use crate::proto::data::ACL;
use crate::proto::perms;

/// Parses the list. Malformed entries and unknown permission letters are reported on
/// stderr and skipped, as upstream does (an empty result is then an invalid ACL).
pub fn parse(acl_string: &str) -> Vec<ACL> {
    let mut acl = Vec::new();
    for a in java_split(acl_string, ',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            super::err(&format!("{a} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            super::err(&format!("{a} does not have the form scheme:id:perm"));
            continue;
        }
        acl.push(ACL::new(perm_from_string(&a[last + 1..]), &a[..first], &a[first + 1..last]));
    }
    acl
}

/// Java's `String.split` with a one-character separator: trailing empty strings dropped.
pub fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut v: Vec<&str> = s.split(sep).collect();
    while v.last() == Some(&"") {
        v.pop();
    }
    v
}

fn perm_from_string(s: &str) -> i32 {
    let mut perm = 0;
    for c in s.chars() {
        match c {
            'r' => perm |= perms::READ,
            'w' => perm |= perms::WRITE,
            'c' => perm |= perms::CREATE,
            'd' => perm |= perms::DELETE,
            'a' => perm |= perms::ADMIN,
            other => super::err(&format!("Unknown perm type: {other}")),
        }
    }
    perm
}

/// `ZKUtil.getPermString`: the letters in the order c d r w a.
pub fn perm_string(p: i32) -> String {
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses() {
        let a = super::parse("world:anyone:cdrwa,digest:u:h=:r,ip:10.0.0.1:ra");
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].id.id, "u:h=");
        assert_eq!(super::perm_string(a[0].perms), "cdrwa");
        assert_eq!(super::perm_string(a[2].perms), "ra");
        assert!(super::parse("foo").is_empty());
    }
}
