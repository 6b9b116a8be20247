//! Property tests of the election's pure functions: the order on proposals, vote
//! equality, the notification and initial-message codecs (round trips, and no panic on
//! any bytes a peer or a stranger can send), quorum systems (monotone, intersecting), and
//! the rule of which end of an election connection survives.
//!
//! proptest shrinks a failure to a small case and prints it; a failing seed is not
//! persisted (no regressions file is written into the source tree).

use std::collections::BTreeSet;

use proptest::prelude::*;

use zookeeper::server::quorum::fast_leader_election::notification::{build_msg, decode, Layout, CURRENT_VERSION};
use zookeeper::server::quorum::fast_leader_election::predicates::{total_order_predicate, Proposal};
use zookeeper::server::quorum::flexible::QuorumVerifier;
use zookeeper::server::quorum::quorum_cnx_manager::initial_message::{self, InitialMessageError, PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2};
use zookeeper::server::quorum::quorum_cnx_manager::{keeps_connection, ConnectionDecision};
use zookeeper::server::quorum::quorum_server::QuorumServer;
use zookeeper::server::quorum::vote::{ServerState, Vote};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// Small domains so that equal fields (the interesting cases of an order) are common.
fn proposal() -> impl Strategy<Value = Proposal> {
    (prop_oneof![0i64..4, any::<i64>()], prop_oneof![0i64..4, any::<i64>()], prop_oneof![0i64..4, any::<i64>()])
        .prop_map(|(id, zxid, epoch)| Proposal { id, zxid, epoch })
}

fn state() -> impl Strategy<Value = ServerState> {
    prop_oneof![Just(ServerState::Looking), Just(ServerState::Following), Just(ServerState::Leading), Just(ServerState::Observing)]
}

fn vote() -> impl Strategy<Value = Vote> {
    (0i32..3, 0i64..3, 0i64..3, 0i64..3, 0i64..3, state()).prop_map(|(version, id, zxid, election_epoch, peer_epoch, state)| Vote {
        version,
        id,
        zxid,
        election_epoch,
        peer_epoch,
        state,
    })
}

/// Text rich in the characters address and config parsers split on, plus any character
/// (multi-byte ones included).
fn tricky_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just('['),
            Just(']'),
            Just(':'),
            Just('|'),
            Just(';'),
            Just('='),
            Just('.'),
            Just('\n'),
            Just('\\'),
            proptest::char::range('0', '9'),
            Just('\u{e9}'),
            Just('\u{1F600}'),
            any::<char>(),
        ],
        0..max,
    )
    .prop_map(String::from_iter)
}

/// `read_initial` as the acceptor runs it: a non-negative first long is a bare sid,
/// a negative one a protocol version followed by the rest of the message.
fn parse_initial(bytes: &[u8]) -> Option<Result<initial_message::InitialMessage, InitialMessageError>> {
    let first = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    if first >= 0 {
        return None;
    }
    let mut rest = &bytes[8..];
    Some(initial_message::parse(first, &mut rest))
}

fn members_text(n: i64) -> String {
    (1..=n).map(|i| format!("server.{i}=127.0.0.1:{}:{}\n", 10_000 + i, 20_000 + i)).collect()
}

/// A majority verifier over voters 1..=n.
fn majority(n: i64) -> QuorumVerifier {
    let qv = QuorumVerifier::from_config_string(&members_text(n), false).expect("majority config");
    assert!(matches!(qv, QuorumVerifier::Maj(_)));
    qv
}

/// A hierarchical verifier: voters 1..=n dealt into `groups` groups by `assign`, each
/// with weight `weights[i]` (0 allowed: such a server never counts).
fn hierarchical(n: i64, assign: &[usize], weights: &[i64]) -> QuorumVerifier {
    let groups = assign.iter().copied().max().unwrap_or(0) + 1;
    let mut text = members_text(n);
    for g in 0..groups {
        let sids: Vec<String> = (1..=n).filter(|i| assign[*i as usize - 1] == g).map(|i| i.to_string()).collect();
        if !sids.is_empty() {
            text.push_str(&format!("group.{}={}\n", g + 1, sids.join(":")));
        }
    }
    for i in 1..=n {
        text.push_str(&format!("weight.{i}={}\n", weights[i as usize - 1]));
    }
    let qv = QuorumVerifier::from_config_string(&text, false).expect("hierarchical config");
    assert!(matches!(qv, QuorumVerifier::Hierarchical(_)));
    qv
}

fn subset(n: i64, mask: u32) -> Vec<i64> {
    (1..=n).filter(|i| mask & (1 << (i - 1)) != 0).collect()
}

/// Both properties of a quorum system, over every subset of the voters (n <= 9: at most
/// 512 subsets, 2^18 pairs — checked on the quorums only).
fn check_quorum_system(qv: &QuorumVerifier, n: i64) -> Result<(), TestCaseError> {
    let all = 1u32 << n;
    let quorums: Vec<u32> = (0..all).filter(|m| qv.contains_quorum(&subset(n, *m))).collect();
    let is_quorum: BTreeSet<u32> = quorums.iter().copied().collect();
    for &q in &quorums {
        // Monotone: adding any one voter keeps a quorum (so does any superset, by induction).
        for i in 0..n {
            let sup = q | (1 << i);
            prop_assert!(is_quorum.contains(&sup), "{:?} is a quorum but {:?} is not", subset(n, q), subset(n, sup));
        }
    }
    for &a in &quorums {
        for &b in &quorums {
            prop_assert!(a & b != 0, "quorums {:?} and {:?} do not intersect", subset(n, a), subset(n, b));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// totalOrderPredicate with a positive weight is a strict total order on
    /// (epoch, zxid, id): irreflexive, asymmetric, transitive, and any two distinct
    /// proposals are comparable.
    #[test]
    fn total_order_is_strict_and_total(a in proposal(), b in proposal(), c in proposal(), w in 1i64..5) {
        let gt = |x: Proposal, y: Proposal| total_order_predicate(w, x, y);
        prop_assert!(!gt(a, a));
        prop_assert!(!(gt(a, b) && gt(b, a)));
        if gt(a, b) && gt(b, c) {
            prop_assert!(gt(a, c));
        }
        if a != b {
            prop_assert!(gt(a, b) || gt(b, a));
        }
        // ...and it is the lexicographic order of (epoch, zxid, id).
        prop_assert_eq!(gt(a, b), (a.epoch, a.zxid, a.id) > (b.epoch, b.zxid, b.id));
        // A weight-0 server never beats anything.
        prop_assert!(!total_order_predicate(0, a, b));
    }

    /// Vote equality (`Vote.equals`) is symmetric and reflexive.
    #[test]
    fn vote_equality_is_symmetric(a in vote(), b in vote()) {
        prop_assert_eq!(a.same_as(&b), b.same_as(&a));
        prop_assert!(a.same_as(&a));
    }

    /// What buildMsg writes, the receiver reads back field for field.
    #[test]
    fn notification_round_trips(
        state in any::<i32>(),
        leader in any::<i64>(),
        zxid in any::<i64>(),
        election_epoch in any::<i64>(),
        peer_epoch in any::<i64>(),
        config in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let m = build_msg(state, leader, zxid, election_epoch, peer_epoch, &config);
        prop_assert_eq!(m.len(), 44 + config.len());
        let n = decode(&m).expect("a built message decodes");
        prop_assert_eq!(
            (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version, n.layout),
            (state, leader, zxid, election_epoch, peer_epoch, CURRENT_VERSION, Layout::Current)
        );
        prop_assert_eq!(n.config, Some(config));
    }

    /// Any bytes, whatever their length: decode returns, and never reads past the end.
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        let _ = decode(&bytes);
    }

    /// A well-formed header with any version, config length and tail.
    #[test]
    fn decode_never_panics_on_a_forged_header(
        version in prop_oneof![Just(CURRENT_VERSION), any::<i32>()],
        config_length in prop_oneof![-3i32..300, any::<i32>()],
        tail in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut m = build_msg(0, 1, 2, 3, 4, b"")[..36].to_vec();
        m.extend_from_slice(&version.to_be_bytes());
        m.extend_from_slice(&config_length.to_be_bytes());
        m.extend_from_slice(&tail);
        if let Ok(n) = decode(&m) {
            if let Some(c) = n.config {
                prop_assert_eq!(c.len() as i64, i64::from(config_length));
                prop_assert!(c.len() <= tail.len());
            }
        }
    }

    /// The acceptor's side of the handshake on arbitrary bytes: an answer, never a panic.
    #[test]
    fn initial_message_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse_initial(&bytes);
    }

    /// A correct frame around arbitrary address text (the parse reaches the address
    /// parser): never a panic, and a success only with addresses that have a port.
    #[test]
    fn initial_message_addresses_never_panic(
        v2 in any::<bool>(),
        sid in any::<i64>(),
        text in tricky_text(40),
    ) {
        let version = if v2 { PROTOCOL_VERSION_V2 } else { PROTOCOL_VERSION_V1 };
        let msg = initial_message::encode(version, sid, &[text]);
        if let Some(Ok(m)) = parse_initial(&msg) {
            prop_assert_eq!(m.sid, sid);
        }
    }

    /// Our own initial message always parses back to our sid and address.
    #[test]
    fn initial_message_round_trips(sid in any::<i64>(), port in 1u16.., host in "[a-z][a-z0-9.-]{0,20}") {
        let msg = initial_message::encode(PROTOCOL_VERSION_V1, sid, &[format!("{host}:{port}")]);
        let m = parse_initial(&msg).expect("protocol version").expect("parses");
        prop_assert_eq!(m.sid, sid);
        prop_assert_eq!(m.election_addr.len(), 1);
        prop_assert_eq!(&m.election_addr[0].host, &host);
        prop_assert_eq!(m.election_addr[0].port, port);
    }

    /// A notification's config text is parsed on the WorkerReceiver thread: any text is
    /// an answer (a verifier or an error), never a panic.
    #[test]
    fn config_text_never_panics(
        lines in prop::collection::vec(
            (
                prop_oneof![
                    Just("server.1"), Just("server.2"), Just("group.1"), Just("group.2"),
                    Just("weight.1"), Just("weight.2"), Just("version"), Just("x"),
                ],
                prop_oneof![
                    tricky_text(30),
                    ("\\[[a-z:]{0,3}\\]", tricky_text(12)).prop_map(|(a, b)| a + &b),
                    any::<i64>().prop_map(|v| v.to_string()),
                    Just("1:2".to_string()),
                ],
            ),
            0..8,
        ),
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let _ = QuorumVerifier::from_config_string(&text, false);
        let _ = QuorumVerifier::from_config_string(&text, true);
    }

    /// One `server.N` value of such a text, the part that splits on ':', '|', ';' and
    /// brackets.
    #[test]
    fn server_line_never_panics(
        value in prop_oneof![
            tricky_text(30),
            ("\\[[a-z:]{0,3}\\]", tricky_text(12)).prop_map(|(a, b)| a + &b),
        ],
        multi in any::<bool>(),
    ) {
        let _ = QuorumServer::parse(1, &value, multi);
        let _ = QuorumVerifier::from_config_string(&format!("server.1={value}\nversion=1"), multi);
    }

    /// Majority quorums: a superset of a quorum is a quorum; any two quorums meet.
    #[test]
    fn majority_quorums_are_monotone_and_intersect(n in 1i64..=9) {
        check_quorum_system(&majority(n), n)?;
    }

    /// Hierarchical quorums (groups, weights 0..=3): the same two properties.
    #[test]
    fn hierarchical_quorums_are_monotone_and_intersect(
        (n, assign, weights) in (1i64..=9).prop_flat_map(|n| (
            Just(n),
            prop::collection::vec(0usize..4, n as usize),
            prop::collection::vec(0i64..=3, n as usize),
        )),
    ) {
        check_quorum_system(&hierarchical(n, &assign, &weights), n)?;
    }

    /// Between two distinct sids exactly one direction of connection survives (the one
    /// dialled by the larger sid); whoever drops a connection from a smaller sid dials it
    /// back, so the pair always ends up connected.
    #[test]
    fn exactly_one_direction_keeps_the_connection(a in any::<i64>(), b in any::<i64>()) {
        let survives = |from: i64, to: i64| {
            keeps_connection(from, to, true) == ConnectionDecision::Keep
                && keeps_connection(to, from, false) == ConnectionDecision::Keep
        };
        if a == b {
            prop_assert_eq!(keeps_connection(a, b, false), ConnectionDecision::SameId);
        } else {
            prop_assert!(survives(a, b) != survives(b, a));
            prop_assert_eq!(survives(a, b), a > b);
            // The dropped direction: the larger end dials back.
            let (small, large) = if a < b { (a, b) } else { (b, a) };
            prop_assert_eq!(keeps_connection(small, large, true), ConnectionDecision::Drop);
            prop_assert_eq!(keeps_connection(large, small, false), ConnectionDecision::DropAndConnectBack);
        }
    }
}

/// The quorum checks above also run on the shapes upstream documents.
#[test]
fn documented_hierarchies() {
    // Three groups of three, equal weights.
    let qv = hierarchical(9, &[0, 0, 0, 1, 1, 1, 2, 2, 2], &[1; 9]);
    assert!(qv.contains_quorum(&[1, 2, 4, 5]));
    assert!(!qv.contains_quorum(&[1, 2, 3, 4]));
    check_quorum_system(&qv, 9).expect("quorum system");
    check_quorum_system(&majority(4), 4).expect("quorum system");
}
