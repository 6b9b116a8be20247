//! `BlueThrottle`: the connection throttle consulted for every ConnectRequest.
//!
//! Two mechanisms, both off by default (as upstream's `BlueThrottle`):
//! * a token bucket: `maxTokens` tokens, `fillCount` more every `fillTime` ms; a
//!   connection that finds fewer tokens than it needs is rejected;
//! * BLUE random early drop (enabled by a `freezeTime` other than -1): at most once per
//!   `freezeTime` ms the drop probability rises by `dropIncrease` while the bucket is
//!   empty and falls by `dropDecrease` while it is at most `decreasePoint` of the way to
//!   empty; each connection is dropped with that probability before the bucket is
//!   even looked at.
//!
//! The arithmetic follows upstream step for step (integer refill, `Math.round` of the
//! threshold); time and the random source are parameters so that tests can replay a
//! decision sequence exactly ([`BlueThrottle::check_limit_at`] and [`BlueSettings`]).

use parking_lot::Mutex;

use crate::common::split_mix::Rng;
use crate::common::time;
use crate::system_properties;

pub const CONNECTION_THROTTLE_TOKENS: &str = "zookeeper.connection_throttle_tokens";
pub const CONNECTION_THROTTLE_FILL_TIME: &str = "zookeeper.connection_throttle_fill_time";
pub const CONNECTION_THROTTLE_FILL_COUNT: &str = "zookeeper.connection_throttle_fill_count";
pub const CONNECTION_THROTTLE_FREEZE_TIME: &str = "zookeeper.connection_throttle_freeze_time";
pub const CONNECTION_THROTTLE_DROP_INCREASE: &str = "zookeeper.connection_throttle_drop_increase";
pub const CONNECTION_THROTTLE_DROP_DECREASE: &str = "zookeeper.connection_throttle_drop_decrease";
pub const CONNECTION_THROTTLE_DECREASE_RATIO: &str = "zookeeper.connection_throttle_decrease_ratio";
pub const WEIGHED_CONNECTION_THROTTLE: &str = "zookeeper.connection_throttle_weight_enabled";
pub const GLOBAL_SESSION_WEIGHT: &str = "zookeeper.connection_throttle_global_session_weight";
pub const LOCAL_SESSION_WEIGHT: &str = "zookeeper.connection_throttle_local_session_weight";
pub const RENEW_SESSION_WEIGHT: &str = "zookeeper.connection_throttle_renew_session_weight";

/// Everything the throttle is configured with, as upstream's static initializer works it
/// out from the system properties (weights validated, tokens scaled by the global
/// weight when weighing is on).
#[derive(Clone, Debug, PartialEq)]
pub struct BlueSettings {
    pub max_tokens: i64,
    pub fill_time: i64,
    pub fill_count: i64,
    pub freeze_time: i64,
    pub drop_increase: f64,
    pub drop_decrease: f64,
    pub decrease_point: f64,
    pub weight_enabled: bool,
    pub global_weight: i64,
    pub local_weight: i64,
    pub renew_weight: i64,
}

impl Default for BlueSettings {
    /// Upstream's defaults: throttling off (0 tokens), BLUE off (freeze time -1).
    fn default() -> Self {
        BlueSettings {
            max_tokens: 0,
            fill_time: 1,
            fill_count: 1,
            freeze_time: -1,
            drop_increase: 0.02,
            drop_decrease: 0.002,
            decrease_point: 0.0,
            weight_enabled: false,
            global_weight: 3,
            local_weight: 1,
            renew_weight: 2,
        }
    }
}

fn int_prop(key: &str, default: i64) -> i64 {
    // `Integer.getInteger`: an unparsable or out-of-range value is the default.
    system_properties::get_i64(key).filter(|v| i32::try_from(*v).is_ok()).unwrap_or(default)
}

fn double_prop(key: &str, default: f64) -> f64 {
    match system_properties::get(key) {
        None => default,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(d) => d,
            Err(_) => {
                // Upstream's Double.parseDouble would fail the class initializer.
                log::warn!("Invalid value {v} for {key}; using the default {default}");
                default
            }
        },
    }
}

impl BlueSettings {
    /// Reads the `zookeeper.connection_throttle_*` properties (`BlueThrottle`'s static
    /// block), with its warnings for weights that make no sense.
    pub fn from_system_properties() -> BlueSettings {
        let tokens = int_prop(CONNECTION_THROTTLE_TOKENS, 0);
        let fill_count = int_prop(CONNECTION_THROTTLE_FILL_COUNT, 1);
        let weight_enabled = system_properties::get_bool(WEIGHED_CONNECTION_THROTTLE);
        let (global_weight, local_weight, renew_weight) = validated_weights(
            int_prop(GLOBAL_SESSION_WEIGHT, 3),
            int_prop(LOCAL_SESSION_WEIGHT, 1),
            int_prop(RENEW_SESSION_WEIGHT, 2),
        );
        // The configured tokens count global sessions.
        let scale = if weight_enabled { global_weight } else { 1 };
        let s = BlueSettings {
            max_tokens: scale * tokens,
            fill_time: int_prop(CONNECTION_THROTTLE_FILL_TIME, 1),
            fill_count: scale * fill_count,
            freeze_time: int_prop(CONNECTION_THROTTLE_FREEZE_TIME, -1),
            drop_increase: double_prop(CONNECTION_THROTTLE_DROP_INCREASE, 0.02),
            drop_decrease: double_prop(CONNECTION_THROTTLE_DROP_DECREASE, 0.002),
            decrease_point: double_prop(CONNECTION_THROTTLE_DECREASE_RATIO, 0.0),
            weight_enabled,
            global_weight,
            local_weight,
            renew_weight,
        };
        // Upstream logs this from a static initializer: once per process, not once per
        // server (a quorum peer makes a new one on every role change).
        static LOGGED: std::sync::Once = std::sync::Once::new();
        LOGGED.call_once(|| {
            if s.weight_enabled {
                log::info!("Weighed connection throttling is enabled. But it will only be effective if connection throttling is enabled");
                log::info!(
                    "The weights for different session types are: global {} renew {} local {}",
                    s.global_weight,
                    s.renew_weight,
                    s.local_weight
                );
            } else {
                log::info!("Weighed connection throttling is disabled");
            }
        });
        s
    }
}

/// Upstream's checks of the session weights: each must be positive, and neither a
/// global nor a renewed session may weigh less than a local one.
pub fn validated_weights(global: i64, local: i64, renew: i64) -> (i64, i64, i64) {
    let g = if global <= 0 {
        log::warn!("Invalid global session weight {global}. It should be larger than 0");
        3
    } else if global < local {
        log::warn!("The global session weight {global} is less than the local session weight {local}. Use the local session weight.");
        local
    } else {
        global
    };
    let l = if local <= 0 {
        log::warn!("Invalid local session weight {local}. It should be larger than 0");
        1
    } else {
        local
    };
    let r = if renew <= 0 {
        log::warn!("Invalid renew session weight {renew}. It should be larger than 0");
        2
    } else if renew < local {
        log::warn!("The renew session weight {renew} is less than the local session weight {local}. Use the local session weight.");
        local
    } else {
        renew
    };
    (g, l, r)
}

/// Where BLUE draws its uniform numbers in [0, 1) from.
pub trait UniformSource: Send {
    fn next_double(&mut self) -> f64;
}

impl UniformSource for Rng {
    /// 53 random bits, as `java.util.Random.nextDouble` takes.
    fn next_double(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The bucket and BLUE state; all of it changes under one lock, as upstream's
/// synchronized methods.
pub struct BlueState {
    pub settings: BlueSettings,
    pub tokens: i64,
    pub last_time: i64,
    pub last_freeze: i64,
    pub drop: f64,
    rng: Box<dyn UniformSource>,
}

impl BlueState {
    pub fn new(settings: BlueSettings, now: i64, rng: Box<dyn UniformSource>) -> BlueState {
        BlueState { tokens: settings.max_tokens, last_time: now, last_freeze: now, drop: 0.0, settings, rng }
    }

    /// `checkLimit`: whether a connection that needs `need` tokens may proceed at `now`
    /// (ms of the monotonic clock); takes the tokens if so.
    pub fn check_limit_at(&mut self, need: i64, now: i64) -> bool {
        let s = &self.settings;
        if s.max_tokens == 0 {
            return true;
        }
        // Upstream divides by fillTime unguarded; a fillTime below 1 ms would make every
        // later check fail with an ArithmeticException. We treat it as 1 ms.
        let fill_time = s.fill_time.max(1);
        let diff = now - self.last_time;
        if diff > s.fill_time {
            // Integer refill, the remainder of the interval is lost as upstream.
            let refill = diff.saturating_mul(s.fill_count) / fill_time;
            self.tokens = self.tokens.saturating_add(refill).min(s.max_tokens);
            self.last_time = now;
        }
        if s.freeze_time != -1 && !self.check_blue(now) {
            return false;
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    /// `checkBlue`: adapts the drop probability at most once per freeze time, then
    /// draws whether this connection is dropped.
    pub fn check_blue(&mut self, now: i64) -> bool {
        let s = &self.settings;
        let length = s.max_tokens - self.tokens;
        let limit = s.max_tokens;
        let diff = now - self.last_freeze;
        let threshold = java_round(s.max_tokens as f64 * s.decrease_point);
        if diff > s.freeze_time {
            if length == limit && self.drop < 1.0 {
                self.drop = (self.drop + s.drop_increase).min(1.0);
            } else if length <= threshold && self.drop > 0.0 {
                self.drop = (self.drop - s.drop_decrease).max(0.0);
            }
            self.last_freeze = now;
        }
        self.rng.next_double() >= self.drop
    }

    /// `getDeficit`.
    pub fn deficit(&self) -> i64 {
        self.settings.max_tokens - self.tokens
    }
}

/// `Math.round(double)`: the closest long, ties toward positive infinity.
fn java_round(x: f64) -> i64 {
    (x + 0.5).floor() as i64
}

/// The server's connection throttle (`ZooKeeperServer.connThrottle()`).
pub struct BlueThrottle {
    state: Mutex<BlueState>,
}

impl BlueThrottle {
    pub fn new(settings: BlueSettings, rng: Box<dyn UniformSource>) -> BlueThrottle {
        BlueThrottle { state: Mutex::new(BlueState::new(settings, time::current_elapsed_time(), rng)) }
    }

    /// Configured from the system properties, with a random source seeded from the
    /// clock (upstream's `new Random()`).
    pub fn from_system_properties() -> BlueThrottle {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (std::process::id() as u64) << 32;
        Self::new(BlueSettings::from_system_properties(), Box::new(Rng::new(seed)))
    }

    pub fn check_limit(&self, need: i64) -> bool {
        self.state.lock().check_limit_at(need, time::current_elapsed_time())
    }

    /// `getDropChance`, the `connection_drop_probability` gauge.
    pub fn drop_chance(&self) -> f64 {
        self.state.lock().drop
    }

    pub fn deficit(&self) -> i64 {
        self.state.lock().deficit()
    }

    /// Tokens a new connection needs (`processConnectRequest`): 1, or with weighing on
    /// the weight of a new local or global session, or of a session renewal.
    pub fn required_tokens(&self, renew: bool, local_sessions: bool) -> i64 {
        let st = self.state.lock();
        required_tokens(&st.settings, renew, local_sessions)
    }
}

/// See [`BlueThrottle::required_tokens`].
pub fn required_tokens(s: &BlueSettings, renew: bool, local_sessions: bool) -> i64 {
    if !s.weight_enabled {
        1
    } else if renew {
        s.renew_weight
    } else if local_sessions {
        s.local_weight
    } else {
        s.global_weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that replays fixed numbers, so each BLUE draw is known.
    struct Fixed(Vec<f64>, usize);
    impl UniformSource for Fixed {
        fn next_double(&mut self) -> f64 {
            let v = self.0[self.1 % self.0.len()];
            self.1 += 1;
            v
        }
    }

    fn bucket(tokens: i64, fill_time: i64, fill_count: i64) -> BlueState {
        let s = BlueSettings { max_tokens: tokens, fill_time, fill_count, ..BlueSettings::default() };
        BlueState::new(s, 1000, Box::new(Rng::new(1)))
    }

    #[test]
    fn zero_tokens_never_throttles() {
        let mut b = bucket(0, 1, 1);
        assert!((0..10_000).all(|_| b.check_limit_at(5, 1000)));
    }

    #[test]
    fn bucket_empties_then_refills_by_whole_intervals() {
        let mut b = bucket(20, 1000, 2);
        let accepted = (0..200).filter(|_| b.check_limit_at(1, 1000)).count();
        assert_eq!(accepted, 20);
        assert_eq!(b.deficit(), 20);
        // Not more than fillTime later: nothing refilled.
        assert!(!b.check_limit_at(1, 2000));
        // 2.5 intervals: 5 tokens, and the half interval is lost (lastTime = now).
        assert!(b.check_limit_at(1, 3500));
        assert_eq!(b.tokens, 4);
        assert!(b.check_limit_at(1, 3501));
        assert_eq!(b.tokens, 3);
        // A long pause fills up to maxTokens, no more.
        assert!(b.check_limit_at(1, 1_000_000));
        assert_eq!(b.tokens, 19);
    }

    #[test]
    fn a_connection_needing_more_than_is_left_takes_nothing() {
        let mut b = bucket(5, 1000, 1);
        assert!(b.check_limit_at(3, 1000));
        assert!(!b.check_limit_at(3, 1000));
        assert_eq!(b.tokens, 2);
        assert!(b.check_limit_at(2, 1000));
    }

    #[test]
    fn blue_raises_the_drop_chance_while_empty_and_lowers_it_when_refilled() {
        let s = BlueSettings {
            max_tokens: 2,
            fill_time: 1_000_000,
            fill_count: 1,
            freeze_time: 10,
            drop_increase: 0.25,
            drop_decrease: 0.5,
            decrease_point: 0.0,
            ..BlueSettings::default()
        };
        // Draws of 0.6: dropped once the chance exceeds 0.6.
        let mut b = BlueState::new(s, 0, Box::new(Fixed(vec![0.6], 0)));
        assert!(b.check_limit_at(1, 0));
        assert!(b.check_limit_at(1, 0));
        assert!(!b.check_limit_at(1, 5), "bucket empty, chance still 0");
        assert_eq!(b.drop, 0.0);
        // Each freeze period with the bucket empty adds 0.25.
        assert!(!b.check_limit_at(1, 16));
        assert_eq!(b.drop, 0.25);
        assert!(!b.check_limit_at(1, 20), "within the freeze time: unchanged");
        assert_eq!(b.drop, 0.25);
        b.check_limit_at(1, 30);
        b.check_limit_at(1, 45);
        assert_eq!(b.drop, 0.75);
        b.check_limit_at(1, 60);
        b.check_limit_at(1, 75);
        assert_eq!(b.drop, 1.0, "capped at 1");
        // Tokens are back, but BLUE drops before the bucket is looked at.
        b.tokens = 2;
        assert!(!b.check_limit_at(1, 80), "chance 1: dropped with tokens left");
        assert_eq!(b.tokens, 2);
        // Full bucket (deficit 0 <= round(2 * 0.0)): the chance falls by 0.5 per period,
        // and a draw of 0.6 is then admitted.
        assert!(b.check_limit_at(1, 90));
        assert_eq!(b.drop, 0.5);
        assert_eq!(b.tokens, 1);
    }

    #[test]
    fn blue_draws_are_reproducible_from_a_seed() {
        let s = BlueSettings { max_tokens: 10, fill_time: 1, fill_count: 1, freeze_time: 0, drop_increase: 0.1, ..BlueSettings::default() };
        let run = |seed| {
            let mut b = BlueState::new(s.clone(), 0, Box::new(Rng::new(seed)));
            (0..500).map(|i| b.check_limit_at(1, i / 20)).collect::<Vec<bool>>()
        };
        assert_eq!(run(7), run(7));
        let admitted = run(7).iter().filter(|a| **a).count();
        // One token per ms refills 25 tokens over the run, plus the initial 10; BLUE
        // drops some of the connections that would have found a token.
        assert!(admitted > 0 && admitted <= 35, "admitted {admitted}");
    }

    #[test]
    fn weights() {
        assert_eq!(validated_weights(3, 1, 2), (3, 1, 2));
        assert_eq!(validated_weights(0, 1, 2), (3, 1, 2));
        assert_eq!(validated_weights(2, 4, 1), (4, 4, 4));
        assert_eq!(validated_weights(3, -1, 0), (3, 1, 2));
        let mut s = BlueSettings::default();
        assert_eq!(required_tokens(&s, true, true), 1);
        s.weight_enabled = true;
        assert_eq!(required_tokens(&s, false, false), 3);
        assert_eq!(required_tokens(&s, false, true), 1);
        assert_eq!(required_tokens(&s, true, false), 2);
    }

    #[test]
    fn java_rounding() {
        assert_eq!(java_round(2.5), 3);
        assert_eq!(java_round(2.4999), 2);
        assert_eq!(java_round(-2.5), -2);
        assert_eq!(java_round(0.0), 0);
    }
}
