//! The process-wide equivalent of Java system properties.
//!
//! Upstream reads many settings with `System.getProperty` (for example `jute.maxbuffer`,
//! `zookeeper.4lw.commands.whitelist`, `zookeeper.extendedTypesEnabled`), and
//! `QuorumPeerConfig` turns every zoo.cfg key it does not know into the property
//! `zookeeper.<key>`. We keep the same model: properties come from `-Dkey=value` arguments
//! (what `SERVER_JVMFLAGS`/`JVMFLAGS` carry for Java) and from zoo.cfg pass-through.

use std::collections::HashMap;

use parking_lot::RwLock;

static PROPS: RwLock<Option<HashMap<String, String>>> = RwLock::new(None);

/// Bumped on every change, so hot-path readers can cache a value and notice updates.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub fn generation() -> u64 {
    GENERATION.load(std::sync::atomic::Ordering::Acquire)
}

pub fn set(key: &str, value: &str) {
    PROPS.write().get_or_insert_with(HashMap::new).insert(key.to_owned(), value.to_owned());
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

pub fn clear(key: &str) {
    if let Some(m) = PROPS.write().as_mut() {
        m.remove(key);
    }
    GENERATION.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
}

pub fn get(key: &str) -> Option<String> {
    PROPS.read().as_ref().and_then(|m| m.get(key).cloned())
}

pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// `Boolean.getBoolean` semantics: true only for the text "true", ignoring case.
pub fn get_bool(key: &str) -> bool {
    get(key).map(|v| v.trim().eq_ignore_ascii_case("true")).unwrap_or(false)
}

/// Like `Boolean.parseBoolean(System.getProperty(key, default))`.
pub fn get_bool_or(key: &str, default: bool) -> bool {
    match get(key) {
        Some(v) => v.trim().eq_ignore_ascii_case("true"),
        None => default,
    }
}

/// `Integer.getInteger`/`Long.getLong` style: unparsable values fall back to None.
pub fn get_i64(key: &str) -> Option<i64> {
    get(key).and_then(|v| parse_java_long(v.trim()))
}

pub fn get_usize(key: &str) -> Option<usize> {
    get_i64(key).and_then(|v| usize::try_from(v).ok())
}

/// `Long.decode`: decimal, `0x`/`#` hex, leading 0 octal, optional sign.
pub fn parse_java_long(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")).or_else(|| body.strip_prefix('#')) {
        i64::from_str_radix(h, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse::<i64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Applies `-Dkey=value` arguments and returns the remaining ones.
pub fn apply_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut rest = Vec::new();
    for a in args {
        if let Some(kv) = a.strip_prefix("-D") {
            match kv.split_once('=') {
                Some((k, v)) => set(k, v),
                None => set(kv, ""),
            }
        } else {
            rest.push(a);
        }
    }
    rest
}

/// Every property set, sorted by key (the AdminServer's `system_properties`).
pub fn all_sorted() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = PROPS.read().as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    v.sort();
    v
}
