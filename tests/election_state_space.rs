//! A randomized sample of the election's state space, with fixed seeds: three real
//! `FastLeaderElection`s on the in-memory network, every message between two peers held
//! by the network and delivered by a scheduler in an order the seed picks — any
//! interleaving across links and within a link (stronger than TCP's per-link order),
//! with some messages delivered twice — and the peers' data drawn from small epochs
//! and zxids so that ties, decided by the sid, are common.
//!
//! Property: once messages flow (each is delivered within a few milliseconds, well
//! inside the 200 ms finalize wait), every peer decides, all for the same leader, and
//! that leader is the best proposal, the maximum of (epoch, zxid, sid); it LEADs and
//! the others FOLLOW.
//!
//! A failure names the trial's seed and its initial data; the seed replays the same
//! choices (thread timing may still differ).

#[path = "support/election.rs"]
mod election;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use election::{Ensemble, Fate, MemPeer, Net, Rng};
use zookeeper::server::quorum::vote::ServerState;
use zookeeper::server::util::zxid_utils::make_zxid;

const SIDS: [i64; 3] = [1, 2, 3];
const TRIALS: u64 = 96;
const PARALLEL: u64 = 4;
const BASE_SEED: u64 = 0x5EED_E1EC_7105;

struct Outcome {
    seed: u64,
    /// (sid, epoch, zxid) of each peer.
    inits: Vec<(i64, i64, i64)>,
    delivered: usize,
    duplicated: usize,
}

fn trial(seed: u64) -> Outcome {
    let mut rng = Rng(seed);
    let inits: Vec<(i64, i64, i64)> = SIDS
        .iter()
        .map(|&sid| {
            let epoch = rng.below(3) as i64;
            let counter = rng.below(3) as i64;
            // A peer's zxid never has an epoch above its current epoch.
            (sid, epoch, make_zxid(epoch, counter))
        })
        .collect();
    let ens = Ensemble::in_memory(&SIDS, &[]);
    let net = Net::new();
    net.set_filter(|_, _, _| Fate::Hold);
    let peers: Vec<MemPeer> = inits.iter().map(|&(sid, epoch, zxid)| MemPeer::new(&ens, &net, sid, zxid, epoch)).collect();

    let done = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicUsize::new(0));
    let duplicated = Arc::new(AtomicUsize::new(0));
    let scheduler = {
        let (net, done, delivered, duplicated) = (net.clone(), done.clone(), delivered.clone(), duplicated.clone());
        let mut rng = Rng(seed ^ 0xD15C_0DE5);
        thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                let n = net.held_len();
                if n == 0 {
                    thread::sleep(Duration::from_micros(500));
                    continue;
                }
                // Deliver a few at a time, each chosen at random among all held ones.
                for _ in 0..=rng.below(3) {
                    let n = net.held_len();
                    if n == 0 {
                        break;
                    }
                    if let Some((from, to, bytes)) = net.take_held_at(rng.below(n as u64) as usize) {
                        if rng.chance(0.05) {
                            net.hold(from, to, bytes.clone());
                            duplicated.fetch_add(1, Ordering::Relaxed);
                        }
                        net.deliver(from, to, bytes);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                thread::sleep(Duration::from_micros(200 + rng.below(1500)));
            }
        })
    };
    for p in &peers {
        p.elect();
    }
    let best = inits.iter().map(|&(sid, epoch, zxid)| (epoch, zxid, sid)).max().map(|k| k.2).unwrap_or(-1);
    let mut decided = Vec::new();
    for p in &peers {
        let v = p.decided(Duration::from_secs(15));
        decided.push((p.sid, v.map(|v| v.id), p.state()));
    }
    done.store(true, Ordering::Release);
    let _ = scheduler.join();
    for (sid, leader, state) in &decided {
        assert_eq!(*leader, Some(best), "seed {seed:#x}, inits (sid, epoch, zxid) {inits:?}: peer {sid} decided {leader:?}, want {best}; all: {decided:?}");
        let want = if *sid == best { ServerState::Leading } else { ServerState::Following };
        assert_eq!(*state, want, "seed {seed:#x}, inits {inits:?}: peer {sid}");
    }
    // In parallel: each WorkerReceiver notices the stop within its poll (500 ms).
    thread::scope(|s| {
        for p in &peers {
            s.spawn(|| p.shutdown());
        }
    });
    Outcome { seed, inits, delivered: delivered.load(Ordering::Relaxed), duplicated: duplicated.load(Ordering::Relaxed) }
}

#[test]
fn random_delivery_orders_elect_the_best_proposal() {
    let mut outcomes = Vec::new();
    for batch in 0..TRIALS / PARALLEL {
        let handles: Vec<_> = (0..PARALLEL).map(|i| BASE_SEED + batch * PARALLEL + i).map(|seed| thread::spawn(move || trial(seed))).collect();
        for h in handles {
            match h.join() {
                Ok(o) => outcomes.push(o),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
    }
    let delivered: usize = outcomes.iter().map(|o| o.delivered).sum();
    let duplicated: usize = outcomes.iter().map(|o| o.duplicated).sum();
    let ties = outcomes.iter().filter(|o| {
        let mut keys: Vec<(i64, i64)> = o.inits.iter().map(|&(_, e, z)| (e, z)).collect();
        keys.sort();
        keys.windows(2).any(|w| w[0] == w[1])
    });
    eprintln!(
        "{} trials (seeds {:#x}..): {delivered} messages delivered in the scheduler's order, {duplicated} of them twice; {} trials with tied data",
        outcomes.len(),
        outcomes.first().map(|o| o.seed).unwrap_or(0),
        ties.count()
    );
    assert_eq!(outcomes.len() as u64, TRIALS);
}
