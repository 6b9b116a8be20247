//! The nemesis: which fault comes next (a pure choice from the seed and what the
//! ensemble looks like), and applying and undoing it on the [`Cluster`].

use std::time::Duration;

use super::cluster::Cluster;
use super::Rng;

/// The kinds of fault a run may use (`--faults`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// kill -9 of a peer (the leader half of the time), restarted on the same dataDir.
    Kill,
    /// SIGSTOP / SIGCONT of a peer (the leader half of the time); one pause in three
    /// outlasts the session timeout.
    Pause,
    /// Link cuts: the leader isolated from everyone, a random minority cut off, and on
    /// five peers a bridge (two pairs that only reach each other through the fifth).
    Partition,
}

impl FaultKind {
    pub fn parse(s: &str) -> Result<FaultKind, String> {
        match s {
            "kill" => Ok(FaultKind::Kill),
            "pause" => Ok(FaultKind::Pause),
            "partition" => Ok(FaultKind::Partition),
            _ => Err(format!("unknown fault {s:?} (kill, pause, partition)")),
        }
    }
    pub fn all() -> Vec<FaultKind> {
        vec![FaultKind::Kill, FaultKind::Pause, FaultKind::Partition]
    }
}

/// One fault, with its targets resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Kill { sid: usize, down: Duration },
    Pause { sid: usize, pause: Duration },
    /// Links between the two sides are cut (both directions).
    Partition { a: Vec<usize>, b: Vec<usize>, name: &'static str, hold: Duration },
    /// Every link between the pairs `a` and `b` is cut; `bridge` reaches both.
    Bridge { a: Vec<usize>, b: Vec<usize>, bridge: usize, hold: Duration },
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::Kill { sid, down } => format!("kill -9 peer {sid}, restart after {down:?}"),
            Fault::Pause { sid, pause } => format!("SIGSTOP peer {sid} for {pause:?}"),
            Fault::Partition { a, b, name, hold } => format!("partition ({name}) {a:?} | {b:?} for {hold:?}"),
            Fault::Bridge { a, b, bridge, hold } => format!("bridge: {a:?} | {b:?} joined only by {bridge}, for {hold:?}"),
        }
    }
}

/// Chooses the next fault. `n` peers, `leader` if one is known; `session_timeout`
/// makes the long pauses long.
pub fn choose(rng: &mut Rng, kinds: &[FaultKind], n: usize, leader: Option<usize>, session_timeout: Duration) -> Fault {
    let kind = kinds[rng.below(kinds.len() as u64) as usize];
    let random_peer = |rng: &mut Rng| rng.below(n as u64) as usize + 1;
    let target = |rng: &mut Rng| match leader {
        Some(l) if rng.below(2) == 0 => l,
        _ => random_peer(rng),
    };
    let hold = |rng: &mut Rng| Duration::from_millis(2000 + rng.below(4000));
    match kind {
        FaultKind::Kill => {
            let sid = target(rng);
            Fault::Kill { sid, down: Duration::from_millis(500 + rng.below(3000)) }
        }
        FaultKind::Pause => {
            let sid = target(rng);
            let pause = if rng.below(3) == 0 {
                session_timeout + session_timeout / 2 + Duration::from_millis(rng.below(2000))
            } else {
                Duration::from_millis(500 + rng.below(2500))
            };
            Fault::Pause { sid, pause }
        }
        FaultKind::Partition => {
            let all: Vec<usize> = (1..=n).collect();
            let choice = rng.below(if n >= 5 { 3 } else { 2 });
            match (choice, leader) {
                (0, Some(l)) => Fault::Partition {
                    a: vec![l],
                    b: all.iter().copied().filter(|&s| s != l).collect(),
                    name: "leader isolated",
                    hold: hold(rng),
                },
                (2, _) => {
                    let mut order = all.clone();
                    rng.shuffle(&mut order);
                    Fault::Bridge { a: order[0..2].to_vec(), b: order[2..4].to_vec(), bridge: order[4], hold: hold(rng) }
                }
                _ => {
                    let mut order = all.clone();
                    rng.shuffle(&mut order);
                    let minority = 1 + rng.below(((n - 1) / 2) as u64) as usize;
                    let mut a = order[..minority].to_vec();
                    let mut b = order[minority..].to_vec();
                    a.sort_unstable();
                    b.sort_unstable();
                    Fault::Partition { a, b, name: "random minority", hold: hold(rng) }
                }
            }
        }
    }
}

/// Applies a fault and undoes it when its time is up; `sleep` waits (so a run can stop
/// between steps). Returns an error if a peer could not be restarted or a cut could not be
/// made or undone.
pub fn apply(cluster: &mut Cluster, fault: &Fault, sleep: &mut dyn FnMut(Duration)) -> Result<(), String> {
    match fault {
        Fault::Kill { sid, down } => {
            cluster.kill(*sid);
            sleep(*down);
            cluster.start(*sid)
        }
        Fault::Pause { sid, pause } => {
            cluster.pause(*sid);
            sleep(*pause);
            cluster.resume(*sid);
            Ok(())
        }
        // A bridge is the partition of its two pairs: the bridging peer is on neither side,
        // so it keeps its links to all four.
        Fault::Partition { a, b, hold, .. } | Fault::Bridge { a, b, hold, .. } => {
            let cut = cluster.partition(a, b);
            if cut.is_ok() {
                sleep(*hold);
            }
            // Heal even after a failed cut: part of it may be in place.
            let healed = cluster.heal();
            cut.and(healed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_are_valid_and_seeded() {
        for n in [3usize, 5] {
            let mut r1 = Rng::new(7);
            let mut r2 = Rng::new(7);
            for _ in 0..500 {
                let f = choose(&mut r1, &FaultKind::all(), n, Some(2), Duration::from_secs(4));
                assert_eq!(f, choose(&mut r2, &FaultKind::all(), n, Some(2), Duration::from_secs(4)));
                match f {
                    Fault::Kill { sid, .. } | Fault::Pause { sid, .. } => assert!((1..=n).contains(&sid)),
                    Fault::Partition { a, b, .. } => {
                        assert!(!a.is_empty() && !b.is_empty());
                        assert_eq!(a.len() + b.len(), n);
                        assert!(a.len() < b.len(), "the cut-off side is a minority: {a:?} {b:?}");
                    }
                    Fault::Bridge { a, b, bridge, .. } => {
                        assert_eq!(n, 5);
                        assert!(!a.contains(&bridge) && !b.contains(&bridge));
                        assert_eq!(a.len() + b.len(), 4);
                    }
                }
            }
        }
    }

    #[test]
    fn some_pauses_outlast_the_session() {
        let mut r = Rng::new(1);
        let long = (0..300)
            .filter(|_| matches!(choose(&mut r, &[FaultKind::Pause], 3, None, Duration::from_secs(4)), Fault::Pause { pause, .. } if pause > Duration::from_secs(4)))
            .count();
        assert!(long > 30, "{long} long pauses of 300");
    }
}
