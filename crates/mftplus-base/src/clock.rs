//! Time as a dependency, so expiry, throttling, retention and report intervals are tested by
//! moving time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
    /// Unix seconds, rounded down (also before 1970).
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// The system clock plus an offset that tests move forward.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// RFC 3339 in UTC with millisecond precision, the one timestamp format of the API and the
/// command lines.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_forward_and_seconds_round_down() {
        let clock = OffsetClock::default();
        let before = clock.now_secs();
        clock.advance_secs(3600);
        assert!(clock.now_secs() >= before + 3600);
        struct Fixed(i64);
        impl Clock for Fixed {
            fn now_ms(&self) -> i64 {
                self.0
            }
        }
        assert_eq!(Fixed(-1).now_secs(), -1);
        assert_eq!(Fixed(1999).now_secs(), 1);
    }
}
