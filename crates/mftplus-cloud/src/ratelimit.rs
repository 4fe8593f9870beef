//! Request rate limits (fixed one-minute windows per credential and per client address) and
//! failed-login throttling with growing delays (never a lock an attacker could impose on an
//! account's owner). In memory, per process: with several replicas each enforces its own share,
//! which bounds abuse without a shared store on the hot path.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

const WINDOW_SECS: i64 = 60;
const MAX_TRACKED: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset_secs: u64,
}

/// Windows are keyed by a 64-bit hash of the subject, so the hot path allocates nothing.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<u64, (i64, u32)>>,
}

impl RateLimiter {
    pub fn check(&self, subject: impl Hash, limit: u32, now_secs: i64) -> Decision {
        let mut hasher = DefaultHasher::new();
        subject.hash(&mut hasher);
        let key = hasher.finish();
        let window = now_secs - now_secs.rem_euclid(WINDOW_SECS);
        let reset_secs = (window + WINDOW_SECS - now_secs) as u64;
        let mut windows = mftplus_base::sync::lock(&self.windows);
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| *start == window);
        }
        let entry = windows.entry(key).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= limit {
            return Decision {
                allowed: false,
                limit,
                remaining: 0,
                reset_secs,
            };
        }
        entry.1 += 1;
        Decision {
            allowed: true,
            limit,
            remaining: limit - entry.1,
            reset_secs,
        }
    }
}

/// How long an address that signed in to an account stays exempt from that account's throttle.
const KNOWN_GOOD_SECS: i64 = 30 * 86_400;

/// Which of the three login throttles refused an attempt; the audit records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleKind {
    /// One account from one address.
    AccountAddress,
    /// One address, whatever the account.
    Address,
    /// One account, from addresses that have not signed in to it lately.
    Account,
}

impl ThrottleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleKind::AccountAddress => "account_address",
            ThrottleKind::Address => "address",
            ThrottleKind::Account => "account",
        }
    }
}

/// An attempt refused without checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub kind: ThrottleKind,
    /// Whole seconds until an attempt is admitted again (at least 1).
    pub retry_after: u64,
}

/// The thresholds and delays of [`LoginThrottle`] (`auth.login.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one (account, address) pair before that pair waits.
    pub per_account_address: u32,
    /// Failures from one address, any account, before that address waits.
    pub per_address: u32,
    /// Failures of one account, any address, before unknown addresses wait (briefly).
    pub per_account: u32,
    /// Failures are counted in a window of this length from the first one.
    pub window_secs: u64,
    /// The first delay past a threshold; each further failure doubles it.
    pub base_delay_secs: u64,
    /// Cap of the pair and address delays.
    pub max_delay_secs: u64,
    /// Cap of the account delay: short, so an attacker cannot turn it into a lock.
    pub account_max_delay_secs: u64,
}

impl ThrottlePolicy {
    pub fn from_config(login: &crate::config::LoginSection) -> ThrottlePolicy {
        ThrottlePolicy {
            per_account_address: login.max_failures,
            per_address: login.per_address_failures,
            per_account: login.per_account_failures,
            window_secs: login.lockout_seconds,
            base_delay_secs: login.base_delay_seconds,
            max_delay_secs: login.max_delay_seconds,
            account_max_delay_secs: login.account_max_delay_seconds,
        }
    }

    fn threshold(&self, kind: ThrottleKind) -> u32 {
        match kind {
            ThrottleKind::AccountAddress => self.per_account_address,
            ThrottleKind::Address => self.per_address,
            ThrottleKind::Account => self.per_account,
        }
    }

    /// `base × 2^(failures − threshold)`, capped; `None` below the threshold.
    fn delay(&self, kind: ThrottleKind, failures: u32) -> Option<i64> {
        let excess = failures.checked_sub(self.threshold(kind))?;
        let cap = match kind {
            ThrottleKind::Account => self.account_max_delay_secs,
            _ => self.max_delay_secs,
        };
        let factor = 1u64.checked_shl(excess).unwrap_or(u64::MAX);
        let delay = self.base_delay_secs.saturating_mul(factor).min(cap);
        Some(i64::try_from(delay).unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, String),
    Address(String),
    Account(String),
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    /// When the window of these failures began.
    start: i64,
    failures: u32,
    /// The first second at which an attempt is admitted again.
    until: i64,
}

#[derive(Default)]
struct ThrottleState {
    counters: HashMap<Key, Counter>,
    /// Last successful sign-in of each (account, address).
    known_good: HashMap<(String, String), i64>,
}

/// Failed-login throttling that an attacker cannot turn against the account's owner (decision
/// 0007): failures are counted per (account, address), per address and per account. Past a
/// threshold, attempts from that pair or address are refused without a password check for a
/// delay that doubles with each further failure; an account under attack from many addresses
/// only gets a short delay, and not for addresses that signed in to it lately. Refused attempts
/// are not failures, so hammering from one address never raises the account's count much.
///
/// Times are whole seconds; a delay of `d` refuses attempts until the clock reads more than `d`
/// seconds past the failure, so the wait is never shorter than the delay.
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    state: Mutex<ThrottleState>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> LoginThrottle {
        LoginThrottle {
            policy,
            state: Mutex::new(ThrottleState::default()),
        }
    }

    pub fn from_config(login: &crate::config::LoginSection) -> LoginThrottle {
        LoginThrottle::new(ThrottlePolicy::from_config(login))
    }

    fn keys(&self, account: &str, address: &str, known: bool) -> Vec<(Key, ThrottleKind)> {
        let mut keys = vec![
            (
                Key::Pair(account.to_string(), address.to_string()),
                ThrottleKind::AccountAddress,
            ),
            (Key::Address(address.to_string()), ThrottleKind::Address),
        ];
        if !known {
            keys.push((Key::Account(account.to_string()), ThrottleKind::Account));
        }
        keys
    }

    /// Whether an attempt for `account` from `address` may check its password now. Admitting an
    /// attempt past a threshold holds the slot for one more delay, so parallel requests get one
    /// password check per delay, not one each.
    pub fn check(&self, account: &str, address: &str, now_secs: i64) -> Result<(), Throttled> {
        let mut state = mftplus_base::sync::lock(&self.state);
        let known = state
            .known_good
            .get(&(account.to_string(), address.to_string()))
            .is_some_and(|at| now_secs - at < KNOWN_GOOD_SECS);
        let keys = self.keys(account, address, known);
        let refused = keys
            .iter()
            .filter_map(|(key, kind)| {
                let counter = state.counters.get(key)?;
                (counter.until > now_secs).then(|| Throttled {
                    kind: *kind,
                    retry_after: (counter.until - now_secs) as u64,
                })
            })
            .max_by_key(|throttled| throttled.retry_after);
        if let Some(throttled) = refused {
            return Err(throttled);
        }
        let window = self.window();
        for (key, kind) in &keys {
            if let Some(counter) = state.counters.get_mut(key) {
                if now_secs - counter.start < window {
                    if let Some(delay) = self.policy.delay(*kind, counter.failures) {
                        counter.until = hold(now_secs, delay);
                    }
                }
            }
        }
        Ok(())
    }

    /// A password check failed: counts against the pair, the address and the account.
    pub fn record_failure(&self, account: &str, address: &str, now_secs: i64) {
        let window = self.window();
        let mut state = mftplus_base::sync::lock(&self.state);
        if state.counters.len() >= MAX_TRACKED {
            state
                .counters
                .retain(|_, c| now_secs - c.start < window || c.until > now_secs);
        }
        for (key, kind) in self.keys(account, address, false) {
            let counter = state.counters.entry(key).or_insert(Counter {
                start: now_secs,
                failures: 0,
                until: 0,
            });
            if now_secs - counter.start >= window {
                counter.start = now_secs;
                counter.failures = 0;
            }
            counter.failures = counter.failures.saturating_add(1);
            if let Some(delay) = self.policy.delay(kind, counter.failures) {
                counter.until = counter.until.max(hold(now_secs, delay));
            }
        }
    }

    /// A password check succeeded: clears that pair's count only (the address and the account
    /// keep theirs) and remembers the address as known for the account.
    pub fn record_success(&self, account: &str, address: &str, now_secs: i64) {
        let pair = (account.to_string(), address.to_string());
        let mut state = mftplus_base::sync::lock(&self.state);
        state
            .counters
            .remove(&Key::Pair(pair.0.clone(), pair.1.clone()));
        let known_good = &mut state.known_good;
        if known_good.len() >= MAX_TRACKED && !known_good.contains_key(&pair) {
            known_good.retain(|_, at| now_secs - *at < KNOWN_GOOD_SECS);
            if known_good.len() >= MAX_TRACKED {
                let oldest = known_good
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    known_good.remove(&oldest);
                }
            }
        }
        known_good.insert(pair, now_secs);
    }

    fn window(&self) -> i64 {
        i64::try_from(self.policy.window_secs).unwrap_or(i64::MAX)
    }
}

/// The first second at which an attempt is admitted after `delay` from `now`.
fn hold(now_secs: i64, delay: i64) -> i64 {
    now_secs.saturating_add(delay).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_and_resets() {
        let limiter = RateLimiter::default();
        for expected_remaining in (0..3).rev() {
            let d = limiter.check("k", 3, 120);
            assert!(d.allowed);
            assert_eq!(d.remaining, expected_remaining);
        }
        let d = limiter.check("k", 3, 150);
        assert!(!d.allowed);
        assert_eq!(d.reset_secs, 30);
        assert!(limiter.check("k", 3, 180).allowed);
        assert!(limiter.check("other", 3, 150).allowed);
    }

    fn policy() -> ThrottlePolicy {
        ThrottlePolicy {
            per_account_address: 3,
            per_address: 6,
            per_account: 10,
            window_secs: 900,
            base_delay_secs: 1,
            max_delay_secs: 16,
            account_max_delay_secs: 4,
        }
    }

    fn refused(throttle: &LoginThrottle, account: &str, address: &str, now: i64) -> Throttled {
        throttle
            .check(account, address, now)
            .expect_err("the attempt is refused")
    }

    /// Fails `n` password checks, each admitted at `now` first.
    fn fail(throttle: &LoginThrottle, account: &str, address: &str, now: i64, n: u32) {
        for _ in 0..n {
            throttle.check(account, address, now).expect("admitted");
            throttle.record_failure(account, address, now);
        }
    }

    #[test]
    fn pair_delay_grows_and_is_capped() {
        let throttle = LoginThrottle::new(policy());
        fail(&throttle, "a", "ip1", 1000, 3);
        // Delay 1 s after the third failure: refused for the rest of second 1000 and second 1001.
        let first = refused(&throttle, "a", "ip1", 1000);
        assert_eq!(first.kind, ThrottleKind::AccountAddress);
        assert_eq!(first.retry_after, 2);
        assert_eq!(refused(&throttle, "a", "ip1", 1001).retry_after, 1);
        // Each further failure doubles the delay: 2, 4, 8, then 16 and capped there.
        let mut now = 1002;
        for expected in [2i64, 4, 8, 16, 16, 16] {
            fail(&throttle, "a", "ip1", now, 1);
            let t = refused(&throttle, "a", "ip1", now);
            assert_eq!(
                (t.kind, t.retry_after),
                (ThrottleKind::AccountAddress, expected as u64 + 1)
            );
            assert!(throttle.check("a", "ip1", now + expected).is_err());
            now += expected + 1;
        }
        // Another address is not held back by this pair, nor is this address for another account.
        assert!(throttle.check("a", "ip2", now - 1).is_ok());
        assert!(throttle.check("b", "ip1", now - 1).is_ok());
    }

    #[test]
    fn refused_attempts_do_not_count() {
        let throttle = LoginThrottle::new(policy());
        fail(&throttle, "a", "ip1", 1000, 3);
        for _ in 0..1000 {
            assert!(throttle.check("a", "ip1", 1001).is_err());
        }
        // Still the first delay: the refusals added nothing to any count.
        assert!(throttle.check("a", "ip1", 1002).is_ok());
        throttle.record_failure("a", "ip1", 1002);
        assert_eq!(refused(&throttle, "a", "ip1", 1002).retry_after, 3);
        let state = mftplus_base::sync::lock(&throttle.state);
        assert_eq!(state.counters[&Key::Account("a".into())].failures, 4);
        assert_eq!(state.counters[&Key::Address("ip1".into())].failures, 4);
    }

    #[test]
    fn an_admitted_attempt_holds_the_slot() {
        let throttle = LoginThrottle::new(policy());
        fail(&throttle, "a", "ip1", 1000, 3);
        assert!(throttle.check("a", "ip1", 1002).is_ok());
        // A parallel attempt before the first one's outcome waits one more delay.
        assert_eq!(refused(&throttle, "a", "ip1", 1002).retry_after, 2);
    }

    #[test]
    fn address_throttle_spans_accounts() {
        let throttle = LoginThrottle::new(policy());
        for account in ["a", "b", "c", "d", "e", "f"] {
            fail(&throttle, account, "ip1", 1000, 1);
        }
        let t = refused(&throttle, "g", "ip1", 1000);
        assert_eq!((t.kind, t.retry_after), (ThrottleKind::Address, 2));
        assert!(throttle.check("g", "ip2", 1000).is_ok());
        // A success from that address clears its pair only, not the address's count.
        throttle.record_success("a", "ip1", 1002);
        fail(&throttle, "g", "ip1", 1002, 1);
        let t = refused(&throttle, "a", "ip1", 1002);
        assert_eq!((t.kind, t.retry_after), (ThrottleKind::Address, 3));
    }

    #[test]
    fn account_delay_is_short_and_spares_known_addresses() {
        let throttle = LoginThrottle::new(policy());
        throttle.record_success("a", "home", 500);
        // Ten addresses, one failure each: none reaches its pair or address threshold.
        for i in 0..10 {
            fail(&throttle, "a", &format!("bot{i}"), 1000, 1);
        }
        let t = refused(&throttle, "a", "cafe", 1000);
        assert_eq!((t.kind, t.retry_after), (ThrottleKind::Account, 2));
        assert!(throttle.check("a", "home", 1000).is_ok(), "known address");
        // Many more failures: the account delay stops at its short cap, never a lock.
        let mut now = 1002;
        for i in 0..20 {
            fail(&throttle, "a", &format!("bot-b{i}"), now, 1);
            now += 5;
        }
        let t = refused(&throttle, "a", "cafe", now - 5);
        assert_eq!((t.kind, t.retry_after), (ThrottleKind::Account, 5));
        assert!(throttle.check("a", "cafe", now).is_ok());
        assert!(throttle.check("a", "home", now - 5).is_ok());
        // Known for 30 days, not forever.
        let later = 500 + KNOWN_GOOD_SECS;
        for i in 0..10 {
            fail(&throttle, "a", &format!("bot-c{i}"), later, 1);
        }
        assert_eq!(
            refused(&throttle, "a", "home", later).kind,
            ThrottleKind::Account
        );
    }

    #[test]
    fn success_clears_only_its_pair() {
        let throttle = LoginThrottle::new(policy());
        fail(&throttle, "a", "ip1", 1000, 3);
        fail(&throttle, "a", "ip2", 1000, 3);
        throttle.record_success("a", "ip1", 1000);
        assert!(throttle.check("a", "ip1", 1000).is_ok());
        assert_eq!(
            refused(&throttle, "a", "ip2", 1000).kind,
            ThrottleKind::AccountAddress
        );
        let state = mftplus_base::sync::lock(&throttle.state);
        assert_eq!(state.counters[&Key::Account("a".into())].failures, 6);
        assert_eq!(state.counters[&Key::Address("ip1".into())].failures, 3);
    }

    #[test]
    fn failures_age_out_with_the_window() {
        let throttle = LoginThrottle::new(policy());
        fail(&throttle, "a", "ip1", 1000, 2);
        // The window began at 1000: at 1900 the two old failures are forgotten.
        fail(&throttle, "a", "ip1", 1900, 2);
        assert!(throttle.check("a", "ip1", 1900).is_ok());
        throttle.record_failure("a", "ip1", 1900);
        assert_eq!(refused(&throttle, "a", "ip1", 1900).retry_after, 2);
    }

    #[test]
    fn delays_saturate_instead_of_overflowing() {
        let policy = ThrottlePolicy {
            max_delay_secs: u64::MAX,
            ..policy()
        };
        assert_eq!(policy.delay(ThrottleKind::AccountAddress, 2), None);
        assert_eq!(policy.delay(ThrottleKind::AccountAddress, 3), Some(1));
        assert_eq!(
            policy.delay(ThrottleKind::AccountAddress, 70),
            Some(i64::MAX)
        );
        assert_eq!(policy.delay(ThrottleKind::Account, 1000), Some(4));
        let throttle = LoginThrottle::new(policy);
        fail(&throttle, "a", "ip1", 1000, 3);
        for _ in 0..70 {
            throttle.record_failure("a", "ip1", 1000);
        }
        assert!(throttle.check("a", "ip1", i64::MAX - 1).is_err());
    }
}
