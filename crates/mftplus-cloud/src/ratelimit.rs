//! Request rate limits (fixed one-minute windows per credential and per client address) and
//! failed-login throttling. In memory, per process: with several replicas each enforces its own
//! share, which bounds abuse without a shared store on the hot path.

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

/// Counts failed logins per account and per address; past the limit, logins are refused
/// without checking the password until the failures age out.
pub struct LoginThrottle {
    max_failures: u32,
    lockout_secs: i64,
    failures: Mutex<HashMap<String, (i64, u32)>>,
}

impl LoginThrottle {
    pub fn new(max_failures: u32, lockout_secs: u64) -> LoginThrottle {
        LoginThrottle {
            max_failures,
            lockout_secs: lockout_secs as i64,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(retry_after_secs)` when any of the keys is locked out.
    pub fn locked(&self, keys: &[String], now_secs: i64) -> Option<u64> {
        let failures = mftplus_base::sync::lock(&self.failures);
        keys.iter()
            .filter_map(|key| failures.get(key))
            .filter(|(first, count)| {
                *count >= self.max_failures && now_secs - first < self.lockout_secs
            })
            .map(|(first, _)| (first + self.lockout_secs - now_secs).max(1) as u64)
            .max()
    }

    pub fn record_failure(&self, keys: &[String], now_secs: i64) {
        let mut failures = mftplus_base::sync::lock(&self.failures);
        if failures.len() >= MAX_TRACKED {
            let lockout = self.lockout_secs;
            failures.retain(|_, (first, _)| now_secs - *first < lockout);
        }
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert((now_secs, 0));
            if now_secs - entry.0 >= self.lockout_secs {
                *entry = (now_secs, 0);
            }
            entry.1 += 1;
        }
    }

    pub fn clear(&self, key: &str) {
        mftplus_base::sync::lock(&self.failures).remove(key);
    }
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

    #[test]
    fn login_lockout() {
        let throttle = LoginThrottle::new(3, 900);
        let keys = vec!["email:a".to_string()];
        for _ in 0..3 {
            assert!(throttle.locked(&keys, 1000).is_none());
            throttle.record_failure(&keys, 1000);
        }
        assert_eq!(throttle.locked(&keys, 1100), Some(800));
        assert!(throttle.locked(&keys, 1900).is_none());
    }
}
