//! Dynamic reconfiguration decisions, apart from IO: the configuration a `reconfig`
//! request asks for (PrepRequestProcessor's `OpCode.reconfig` case), the designated
//! leader of a committed reconfig (`Leader.getDesignatedLeader`), and the text of the
//! dynamic and static files (`QuorumPeerConfig.writeDynamicConfig` / `editStaticConfig`).
//! The peer applies them (`QuorumPeer::process_reconfig`); these functions only decide.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::proto::proto::ReconfigRequest;
use crate::proto::Code;
use crate::server::quorum::flexible::{QuorumMaj, QuorumVerifier};
use crate::server::quorum::quorum_peer_config::{parse_properties, ConfigException};
use crate::server::quorum::quorum_server::{QuorumAddr, QuorumServer};

/// Why a reconfig request is refused: the code the client gets and the text upstream
/// logs with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub msg: String,
}

impl Refusal {
    fn new(code: Code, msg: impl Into<String>) -> Refusal {
        Refusal { code, msg: msg.into() }
    }
}

/// `StringUtils.split`: pieces trimmed, empty ones dropped.
fn split_trimmed(s: &str, sep: char) -> Vec<String> {
    s.split(sep).map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// `Long.parseLong` of a request's server id. A NumberFormatException escapes upstream's
/// reconfig case, and `pRequest` answers any such exception MARSHALLINGERROR.
fn parse_sid(s: &str) -> Result<i64, Refusal> {
    s.parse::<i64>().map_err(|_| Refusal::new(Code::MarshallingError, format!("For input string: \"{s}\"")))
}

/// The configuration a reconfig request asks for, numbered `zxid` (the version of a
/// configuration is the zxid of the txn that proposed it). `last_seen` is the newest
/// configuration the leader knows (committed, since a pending one refuses earlier).
pub fn next_quorum_verifier(
    last_seen: &QuorumVerifier,
    req: &ReconfigRequest,
    zxid: i64,
    standalone_enabled: bool,
    multi_address_enabled: bool,
) -> Result<QuorumVerifier, Refusal> {
    let mut qv = match &req.new_members {
        Some(members) => {
            log::info!("Non-incremental reconfig");
            // Commas or newlines separate the members.
            let text = members.replace(',', "\n");
            let props: Vec<(String, String)> = parse_properties(&text).into_iter().map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
            let qv = QuorumVerifier::from_props(&props, multi_address_enabled).map_err(|e: ConfigException| Refusal::new(Code::BadArguments, e.msg))?;
            // parseDynamicConfig's IllegalArgumentExceptions are not caught by the
            // reconfig case: pRequest answers them MARSHALLINGERROR.
            if qv.voting_count() == 0 {
                if !standalone_enabled {
                    return Err(Refusal::new(Code::MarshallingError, "standaloneEnabled = false then number of participants should be >0"));
                }
                if qv.observing_count() > 0 {
                    return Err(Refusal::new(Code::MarshallingError, "Observers w/o participants is an invalid configuration"));
                }
            } else if qv.voting_count() == 1 && standalone_enabled && qv.observing_count() > 0 {
                return Err(Refusal::new(Code::MarshallingError, "Observers w/o quorum is an invalid configuration"));
            }
            qv
        }
        None => {
            log::info!("Incremental reconfig");
            let QuorumVerifier::Maj(_) = last_seen else {
                let msg = "Incremental reconfiguration requested but last configuration seen has a non-majority quorum system";
                log::warn!("{msg}");
                return Err(Refusal::new(Code::BadArguments, msg));
            };
            let mut next: BTreeMap<i64, QuorumServer> = last_seen.all_members().clone();
            if let Some(leaving) = &req.leaving_servers {
                for l in split_trimmed(leaving, ',') {
                    next.remove(&parse_sid(&l)?);
                }
            }
            if let Some(joining) = &req.joining_servers {
                for j in split_trimmed(joining, ',') {
                    let parts = split_trimmed(&j, '=');
                    if parts.len() != 2 {
                        return Err(Refusal::new(Code::BadArguments, "Wrong format of server string"));
                    }
                    let id = &parts[0][parts[0].rfind('.').map(|i| i + 1).unwrap_or(0)..];
                    let sid = parse_sid(id)?;
                    let qs = QuorumServer::parse(sid, &parts[1], multi_address_enabled)
                        .map_err(|_| Refusal::new(Code::BadArguments, "Reconfiguration failed"))?;
                    if qs.client_addr.is_none() || qs.election_addr.is_empty() || qs.addr.is_empty() {
                        return Err(Refusal::new(
                            Code::BadArguments,
                            "Wrong format of server string - each server should have 3 ports specified",
                        ));
                    }
                    for other in next.values() {
                        if other.id != qs.id {
                            check_address_duplicate(&qs, other)?;
                        }
                    }
                    next.insert(sid, qs);
                }
            }
            let mut maj = QuorumMaj::default();
            maj.members.all = next;
            QuorumVerifier::Maj(maj)
        }
    };
    qv.set_version(zxid);
    if standalone_enabled && qv.voting_count() < 2 {
        let msg = "Reconfig failed - new configuration must include at least 2 followers";
        log::warn!("{msg}");
        return Err(Refusal::new(Code::BadArguments, msg));
    } else if qv.voting_count() < 1 {
        let msg = "Reconfig failed - new configuration must include at least 1 follower";
        log::warn!("{msg}");
        return Err(Refusal::new(Code::BadArguments, msg));
    }
    Ok(qv)
}

/// The addresses of a server that another may not share: wildcard and loopback ones
/// are exempt (`excludedSpecialAddresses`), so every test ensemble on 127.0.0.1 passes.
fn checked_addrs(s: &QuorumServer) -> Vec<QuorumAddr> {
    let mut v: Vec<QuorumAddr> = s.addr.all().to_vec();
    v.extend(s.client_addr.iter().cloned());
    v.extend(s.election_addr.all().iter().cloned());
    v.retain(|a| match a.host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => !(ip.is_unspecified() || ip.is_loopback()),
        Err(_) => a.host != "localhost",
    });
    v
}

/// `QuorumServer.checkAddressDuplicate`.
fn check_address_duplicate(me: &QuorumServer, other: &QuorumServer) -> Result<(), Refusal> {
    let theirs = checked_addrs(other);
    for my in checked_addrs(me) {
        if let Some(o) = theirs.iter().find(|o| **o == my) {
            return Err(Refusal::new(Code::BadArguments, format!("{my} of server.{} conflicts {o} of server.{}", me.id, other.id)));
        }
    }
    Ok(())
}

/// `Leader.getDesignatedLeader`: who leads the new configuration once a reconfig
/// commits. The leader stays if it is a voter of the new configuration at the same
/// quorum address; otherwise a voter of the new configuration that acked the reconfig,
/// preferring one that also acked the most of the proposals outstanding after it.
/// `new_acks` is the reconfig's ack set for the new configuration; `later_acks` the
/// ack sets (one per active configuration) of each outstanding proposal after it, in
/// zxid order.
pub fn designated_leader(
    myid: i64,
    my_quorum_addr: &[QuorumAddr],
    new_qv: &QuorumVerifier,
    new_acks: &BTreeSet<i64>,
    later_acks: &[Vec<BTreeSet<i64>>],
) -> i64 {
    if let Some(me) = new_qv.all_members().get(&myid) {
        if new_qv.is_voter(myid) && me.addr.all() == my_quorum_addr {
            return myid;
        }
    }
    let mut candidates: BTreeSet<i64> = new_acks.iter().copied().filter(|s| *s != myid).collect();
    // Upstream takes the first of a HashSet<Long>: for small ids, the lowest.
    let Some(mut current) = candidates.iter().next().copied() else { return myid };
    for sets in later_acks {
        for acks in sets {
            candidates.retain(|c| acks.contains(c));
            match candidates.iter().next() {
                None => return current,
                Some(c) => current = *c,
            }
            if candidates.len() == 1 {
                return current;
            }
        }
    }
    current
}

/// `writeDynamicConfig`: the membership lines (and `version=` when `keep_version`, as
/// the `.next` file has it) sorted as strings, joined by newlines, no newline at the end.
pub fn dynamic_file_text(qv: &QuorumVerifier, keep_version: bool) -> String {
    let mut lines: Vec<String> = parse_properties(&qv.to_string())
        .into_iter()
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| keep_version || !k.starts_with("version"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// `editStaticConfig`: zoo.cfg without its membership keys (and without the client
/// address keys when the server line now carries it), pointing at the dynamic file.
/// Comments go, and the keys come in `Properties` order, as upstream writes them.
pub fn edited_static_config(static_text: &str, dynamic_path: &str, erase_client_port_address: bool) -> String {
    let pairs = parse_properties(static_text).into_iter().map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
    let mut out = String::new();
    for (k, v) in crate::common::java_hash::properties_order(pairs) {
        let drop = k.starts_with("server.")
            || k.starts_with("group")
            || k.starts_with("weight")
            || k.starts_with("dynamicConfigFile")
            || k.starts_with("peerType")
            || (erase_client_port_address && (k.starts_with("clientPort") || k.starts_with("clientPortAddress")));
        if !drop {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out.push_str(&format!("dynamicConfigFile={dynamic_path}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qv(text: &str) -> QuorumVerifier {
        QuorumVerifier::from_config_string(text, false).unwrap()
    }

    fn req(join: Option<&str>, leave: Option<&str>, members: Option<&str>) -> ReconfigRequest {
        ReconfigRequest {
            joining_servers: join.map(str::to_owned),
            leaving_servers: leave.map(str::to_owned),
            new_members: members.map(str::to_owned),
            cur_config_id: -1,
        }
    }

    const THREE: &str = "server.1=127.0.0.1:1:2:participant;127.0.0.1:10\nserver.2=127.0.0.1:3:4:participant;127.0.0.1:11\nserver.3=127.0.0.1:5:6:participant;127.0.0.1:12\nversion=100000000";

    #[test]
    fn incremental_add_and_remove() {
        let cur = qv(THREE);
        let next = next_quorum_verifier(&cur, &req(Some("server.4=127.0.0.1:7:8:participant;127.0.0.1:13"), Some("1"), None), 0x100000005, true, false).unwrap();
        assert_eq!(next.voting_ids(), vec![2, 3, 4]);
        assert_eq!(next.version(), 0x100000005);
        assert!(next.to_string().ends_with("version=100000005"));
        // Removing an id that is not a member changes nothing but the version.
        let same = next_quorum_verifier(&cur, &req(None, Some("9"), None), 7, true, false).unwrap();
        assert_eq!(same.voting_ids(), vec![1, 2, 3]);
    }

    #[test]
    fn refusals_carry_upstream_codes() {
        let cur = qv(THREE);
        let r = |j: Option<&str>, l: Option<&str>, m: Option<&str>| next_quorum_verifier(&cur, &req(j, l, m), 9, true, false).unwrap_err().code;
        assert_eq!(r(None, Some("1,2"), None), Code::BadArguments);
        assert_eq!(r(Some("server.4=127.0.0.1:7:8"), None, None), Code::BadArguments);
        assert_eq!(r(Some("server.4"), None, None), Code::BadArguments);
        assert_eq!(r(Some("server.4=127.0.0.1:x:8;9"), None, None), Code::BadArguments);
        assert_eq!(r(None, Some("one"), None), Code::MarshallingError);
        assert_eq!(r(None, None, Some("")), Code::BadArguments);
        assert_eq!(r(None, None, Some("server.1=127.0.0.1:1:2:observer")), Code::MarshallingError);
        // With standaloneEnabled=false one voter is enough, none is not.
        assert!(next_quorum_verifier(&cur, &req(None, Some("1,2"), None), 9, false, false).is_ok());
        assert_eq!(next_quorum_verifier(&cur, &req(None, None, Some("server.1=127.0.0.1:1:2:observer")), 9, false, false).unwrap_err().code, Code::MarshallingError);
    }

    #[test]
    fn non_incremental_members_take_commas() {
        let cur = qv(THREE);
        let next = next_quorum_verifier(&cur, &req(None, None, Some("server.1=127.0.0.1:1:2;10,server.2=127.0.0.1:3:4;11")), 0x200000001, true, false).unwrap();
        assert_eq!(next.voting_ids(), vec![1, 2]);
    }

    #[test]
    fn duplicate_addresses_are_refused_except_loopback() {
        let cur = qv("server.1=10.0.0.1:1:2:participant;10.0.0.1:10\nserver.2=10.0.0.2:3:4;10.0.0.2:11\nversion=1");
        let e = next_quorum_verifier(&cur, &req(Some("server.3=10.0.0.1:1:9;10.0.0.3:12"), None, None), 9, true, false).unwrap_err();
        assert_eq!(e.code, Code::BadArguments);
        assert!(next_quorum_verifier(&cur, &req(Some("server.3=10.0.0.3:1:9;10.0.0.3:12"), None, None), 9, true, false).is_ok());
    }

    #[test]
    fn designated_leader_prefers_itself_then_the_most_up_to_date_acker() {
        let new_qv = qv("server.2=127.0.0.1:3:4\nserver.3=127.0.0.1:5:6\nserver.4=127.0.0.1:7:8\nversion=5");
        let me = vec![QuorumAddr::new("127.0.0.1", 1)];
        let acks: BTreeSet<i64> = [1, 2, 3].into_iter().collect();
        assert_eq!(designated_leader(1, &me, &new_qv, &acks, &[]), 2);
        let later = vec![vec![[1, 3].into_iter().collect::<BTreeSet<i64>>()]];
        assert_eq!(designated_leader(1, &me, &new_qv, &acks, &later), 3);
        let stays = qv("server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\nversion=5");
        assert_eq!(designated_leader(1, &me, &stays, &acks, &later), 1);
        // Same id at a new quorum address: it hands over.
        let moved = qv("server.1=127.0.0.1:9:2\nserver.2=127.0.0.1:3:4\nversion=5");
        assert_eq!(designated_leader(1, &me, &moved, &acks, &[]), 2);
    }

    #[test]
    fn dynamic_and_static_file_texts() {
        let q = qv("server.2=127.0.0.1:3:4;127.0.0.1:11\nserver.1=127.0.0.1:1:2;127.0.0.1:10\nversion=100000000");
        assert_eq!(
            dynamic_file_text(&q, false),
            "server.1=127.0.0.1:1:2:participant;127.0.0.1:10\nserver.2=127.0.0.1:3:4:participant;127.0.0.1:11"
        );
        assert!(dynamic_file_text(&q, true).ends_with("\nversion=100000000"));
        let st = edited_static_config("# c\ntickTime=500\nserver.1=a:1:2\nclientPort=2181\npeerType=participant\ndataDir=/d\n", "/x/zoo.cfg.dynamic.1", true);
        // Properties order: what Apache 3.8 on Java 17 writes for these keys.
        assert_eq!(st, "dataDir=/d\ntickTime=500\ndynamicConfigFile=/x/zoo.cfg.dynamic.1\n");
        let kept = edited_static_config("clientPort=2181\n", "/d", false);
        assert_eq!(kept, "clientPort=2181\ndynamicConfigFile=/d\n");
    }
}
