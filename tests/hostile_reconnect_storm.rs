//! A reconnect storm after a leader change, on an ensemble of ours and one of Apache's
//! side by side: 300 sessions spread over three nodes, each holding an ephemeral; the
//! leader is killed with SIGKILL, and every session at once tries to reattach to the
//! surviving nodes with no back-off at all (a real client waits a random part of a
//! second between tries; this is the worst a fleet of them can do).
//!
//! What must hold, as on Apache: no session expires (each reattaches within its
//! timeout, which the new leader restarts for every session it inherits), every
//! ephemeral is still there, every reattached session can write, and the nodes keep
//! answering connects that come before they serve (closed, not hung).

mod common;
#[path = "support/raw_client.rs"]
mod raw_client;

use std::time::{Duration, Instant};

use common::ensemble::{Ensemble, EnsembleSpec, Impl};
use raw_client::{Handshake, RawClient};
use zookeeper::proto::consts::ids;
use zookeeper::proto::op_code;
use zookeeper::proto::proto::{CreateRequest, ExistsRequest, GetChildrenRequest, SetDataRequest};

const SESSIONS: usize = 300;
const TICK_MS: u32 = 200;
/// Long enough to outlive the election (a few ticks) and the storm.
const SESSION_MS: i32 = 20_000;
const WAIT: Duration = Duration::from_secs(60);
/// EPHEMERAL.
const EPHEMERAL: i32 = 1;

#[derive(Debug)]
struct Storm {
    /// From the leader's kill until the last session reattached.
    all_back: Duration,
    /// Handshakes tried, all sessions together.
    attempts: usize,
    /// Handshakes the server closed or left unanswered (it was not serving yet).
    refused: usize,
    /// Sessions the servers said had expired.
    expired: usize,
    /// Reattached sessions whose own ephemeral was still there and that could write.
    healthy: usize,
    /// Children of /storm seen by a fresh session afterwards.
    ephemerals_left: usize,
}

fn storm(imps: &[Impl], who: &str) -> Storm {
    let spec = EnsembleSpec::of(imps).tick_time(TICK_MS).init_limit(25).sync_limit(10).cfg("maxSessionTimeout=30000\nmaxClientCnxns=0\n");
    let mut ens = Ensemble::start(spec);
    let leader = ens.wait_for_leader(WAIT);
    // Followers serve once synced, a moment after the leader does.
    ens.wait_for_mode_all(WAIT);
    let addrs: Vec<(u64, String)> = ens.sids().into_iter().map(|s| (s, format!("127.0.0.1:{}", ens.node(s).client_port()))).collect();

    let mut setup = RawClient::connect_with(&addrs[0].1, SESSION_MS, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let req = CreateRequest { path: "/storm".into(), data: None, acl: ids::open_acl_unsafe(), flags: 0 };
    let (h, _) = setup.call_rec(op_code::CREATE, &req).unwrap_or_else(|e| panic!("{who}: create /storm: {e}"));
    assert_eq!(h.err, 0, "{who}: create /storm");
    drop(setup);

    // (session id, password) of each session, connected round-robin to the three nodes.
    let mut creds = Vec::with_capacity(SESSIONS);
    let mut conns = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let addr = &addrs[i % addrs.len()].1;
        // Setting up is not what is measured: a session that a loaded machine does not
        // open within 10 s (Apache once, in CI) is tried once more, as a client would.
        let mut c = RawClient::connect_with(addr, SESSION_MS, Duration::from_secs(10))
            .or_else(|_| RawClient::connect_with(addr, SESSION_MS, Duration::from_secs(20)))
            .unwrap_or_else(|e| panic!("{who}: session {i}: {e}"));
        let req = CreateRequest { path: format!("/storm/e{i:04}"), data: Some(vec![1]), acl: ids::open_acl_unsafe(), flags: EPHEMERAL };
        let (h, _) = c.call_rec(op_code::CREATE, &req).unwrap_or_else(|e| panic!("{who}: ephemeral {i}: {e}"));
        assert_eq!(h.err, 0, "{who}: ephemeral {i}");
        creds.push((c.session_id, c.passwd.clone()));
        conns.push(c);
    }

    ens.kill(leader);
    let killed = Instant::now();
    drop(conns);
    let survivors: Vec<&String> = addrs.iter().filter(|(s, _)| *s != leader).map(|(_, a)| a).collect();

    let mut attached: Vec<Option<RawClient>> = (0..SESSIONS).map(|_| None).collect();
    let (mut attempts, mut refused, mut expired) = (0, 0, 0);
    let mut dead = vec![false; SESSIONS];
    let mut all_back = None;
    while killed.elapsed() < WAIT {
        let mut pending = 0;
        for i in 0..SESSIONS {
            if attached[i].is_some() || dead[i] {
                continue;
            }
            pending += 1;
            let addr = survivors[(i + attempts) % survivors.len()];
            attempts += 1;
            match RawClient::reconnect(addr, creds[i].0, &creds[i].1, SESSION_MS) {
                Ok((c, Handshake::Response(resp, _))) if resp.time_out > 0 => {
                    assert_eq!(resp.session_id, creds[i].0, "{who}: reattached to another session");
                    attached[i] = Some(c);
                }
                Ok((_, Handshake::Response(_, _))) => {
                    expired += 1;
                    dead[i] = true;
                }
                Ok(_) | Err(_) => refused += 1,
            }
        }
        if pending == 0 {
            all_back = Some(killed.elapsed());
            break;
        }
    }
    let all_back = all_back.unwrap_or_else(|| {
        panic!(
            "{who}: {} of {SESSIONS} sessions still not reattached {WAIT:?} after the leader was killed ({expired} expired)\n{}",
            attached.iter().filter(|c| c.is_none()).count(),
            ens.describe_all(40)
        )
    });

    let mut healthy = 0;
    for (i, c) in attached.iter_mut().enumerate() {
        let Some(c) = c else { continue };
        let mine = format!("/storm/e{i:04}");
        let exists = c.call_rec(op_code::EXISTS, &ExistsRequest { path: mine.clone(), watch: false });
        let write = c.call_rec(op_code::SET_DATA, &SetDataRequest { path: mine, data: Some(vec![2]), version: -1 });
        if matches!((exists, write), (Ok((e, _)), Ok((w, _))) if e.err == 0 && w.err == 0) {
            healthy += 1;
        }
    }
    let mut check = RawClient::connect_with(survivors[0], SESSION_MS, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{who}: connect: {e}"));
    let (h, body) = check
        .call_rec(op_code::GET_CHILDREN, &GetChildrenRequest { path: "/storm".into(), watch: false })
        .unwrap_or_else(|e| panic!("{who}: getChildren: {e}"));
    assert_eq!(h.err, 0);
    let ephemerals_left = i32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    let s = Storm { all_back, attempts, refused, expired, healthy, ephemerals_left };
    eprintln!(
        "[hostile] {who:6} reconnect storm: {SESSIONS} sessions back {:.2} s after the leader (sid {leader}) was killed; \
         {} handshakes ({} refused while no leader), {} expired, {} healthy, {} ephemerals left",
        s.all_back.as_secs_f64(),
        s.attempts,
        s.refused,
        s.expired,
        s.healthy,
        s.ephemerals_left
    );
    s
}

#[test]
fn reconnect_storm_after_leader_change_loses_no_session_like_apache() {
    let a = storm(&[Impl::Apache, Impl::Apache, Impl::Apache], "apache");
    let o = storm(&[Impl::Ours, Impl::Ours, Impl::Ours], "ours");
    // Ours leads first (sid 3 wins the first election); Apache's sid 2 takes over.
    let m = storm(&[Impl::Ours, Impl::Apache, Impl::Ours], "mixed");
    for (who, s) in [("apache", &a), ("ours", &o), ("mixed", &m)] {
        assert_eq!(s.expired, 0, "{who}: sessions expired in the storm: {s:?}");
        assert_eq!(s.healthy, SESSIONS, "{who}: sessions that reattached but lost their ephemeral or could not write: {s:?}");
        assert_eq!(s.ephemerals_left, SESSIONS, "{who}: ephemerals after the storm: {s:?}");
        // The storm was real: the survivors turned handshakes away while electing.
        assert!(s.attempts > SESSIONS, "{who}: every session got back on its first try: {s:?}");
    }
    // Within the session timeout, which is what keeps them alive.
    assert!(o.all_back < Duration::from_millis(SESSION_MS as u64), "ours: {o:?}");
}
