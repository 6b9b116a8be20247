//! Named fault points for the crash/interleaving tests (the upstream bug history this
//! port must not repeat: ZOOKEEPER-3911, -4643, -4646, -4685, -4785, ...). Off unless the
//! system property `zookeeper.rs.faultPoints` is set (zoo.cfg key `rs.faultPoints`, or
//! `-Dzookeeper.rs.faultPoints=` on the command line):
//!
//! `rs.faultPoints=<point>=<action>[,<point>=<action>...]` with actions
//! - `crash`: exit at once with status 97, like a kill -9 at that instant (nothing
//!   buffered in the process survives; what reached the OS does);
//! - `crash@N`: crash at the N-th time the point is reached;
//! - `delay:MS`: sleep MS milliseconds there (to force an interleaving).
//!
//! Each hit of an armed point is logged ("Fault point <name>: <action>") so a test can
//! wait for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The process status of an injected crash.
pub const CRASH_EXIT_CODE: i32 = 97;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Crash { at: u64 },
    Delay(u64),
}

struct Armed {
    action: Action,
    hits: AtomicU64,
}

fn parse(spec: &str) -> HashMap<String, Armed> {
    let mut out = HashMap::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, action)) = item.split_once('=') else {
            log::warn!("Ignoring fault point without an action: {item}");
            continue;
        };
        let action = if action == "crash" {
            Action::Crash { at: 1 }
        } else if let Some(n) = action.strip_prefix("crash@") {
            match n.parse::<u64>() {
                Ok(n) if n > 0 => Action::Crash { at: n },
                _ => {
                    log::warn!("Ignoring fault point {item}: bad count");
                    continue;
                }
            }
        } else if let Some(ms) = action.strip_prefix("delay:") {
            match ms.parse::<u64>() {
                Ok(ms) => Action::Delay(ms),
                Err(_) => {
                    log::warn!("Ignoring fault point {item}: bad delay");
                    continue;
                }
            }
        } else {
            log::warn!("Ignoring fault point {item}: unknown action");
            continue;
        };
        out.insert(name.trim().to_owned(), Armed { action, hits: AtomicU64::new(0) });
    }
    out
}

fn armed() -> &'static HashMap<String, Armed> {
    static ARMED: OnceLock<HashMap<String, Armed>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let spec = crate::system_properties::get("zookeeper.rs.faultPoints").unwrap_or_default();
        let m = parse(&spec);
        if !m.is_empty() {
            log::warn!("Fault points armed (for tests only): {spec}");
        }
        m
    })
}

/// Marks a fault point; does nothing unless the point is armed.
pub fn hit(point: &str) {
    let m = armed();
    if m.is_empty() {
        return;
    }
    let Some(a) = m.get(point) else { return };
    let n = a.hits.fetch_add(1, Ordering::AcqRel) + 1;
    match a.action {
        Action::Crash { at } if n == at => {
            log::warn!("Fault point {point}: crash");
            std::process::exit(CRASH_EXIT_CODE);
        }
        Action::Crash { .. } => {}
        Action::Delay(ms) => {
            log::warn!("Fault point {point}: delay {ms} ms");
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions() {
        let m = parse("a=crash, b=crash@3,c=delay:250,d=nonsense,e");
        assert_eq!(m.get("a").map(|x| x.action.clone()), Some(Action::Crash { at: 1 }));
        assert_eq!(m.get("b").map(|x| x.action.clone()), Some(Action::Crash { at: 3 }));
        assert_eq!(m.get("c").map(|x| x.action.clone()), Some(Action::Delay(250)));
        assert!(!m.contains_key("d") && !m.contains_key("e"));
    }
}
