//! The adaptive poll interval (issue 17, decision 0024): the envelope's
//! `poll_interval_seconds` grows with the fleet so that its reports stay under
//! `fleet.report_capacity_per_second`, the way Nomad sizes heartbeats to its cluster.
//!
//! While the fleet fits, every host is told exactly the configured `poll_interval_seconds`.
//! Past that, the fleet's interval is the one at which it reports at capacity (between 60 and
//! 3,600 s) and each host is told it plus up to a tenth more, a jitter fixed by its id (so a
//! host's interval is stable and hosts that started together drift apart). Jitter only ever
//! lengthens an interval, so the reports per second stay under capacity. Past
//! `capacity × 3,600` hosts the interval stops at an hour and the node is overrun: the checker
//! logs it, and the operator adds capacity.
//!
//! The fleet size comes from the checker, which counts the hosts once per pass on every
//! replica ([`FleetSize::refresh`]); a report reads the cached number and costs no query.
//! Each host's interval is stored with its report, and liveness judges the host by it
//! (`mftplus_store::LivenessRule`), so a host told an hour is not called stale by a
//! five-minute rule, whichever way the fleet changed since.

use mftplus_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};

/// The longest interval the cloud tells (agents clamp to it too).
pub const MAX_SECONDS: u64 = 3_600;
/// The shortest interval a stretched fleet is told.
pub const MIN_STRETCHED_SECONDS: u64 = 60;
/// Jitter adds up to `interval / JITTER_DIVISOR`.
const JITTER_DIVISOR: u64 = 10;

/// The interval that keeps `fleet_size` hosts at or under `capacity` reports per second: the
/// configured floor while that is enough, else the shortest interval that is (60–3,600 s).
pub fn fleet_interval(fleet_size: u64, floor_seconds: u64, capacity_per_second: u64) -> u64 {
    let needed = fleet_size.div_ceil(capacity_per_second.max(1));
    if needed <= floor_seconds {
        floor_seconds
    } else {
        needed.clamp(MIN_STRETCHED_SECONDS, MAX_SECONDS.max(floor_seconds))
    }
}

/// What the envelope tells `host_id`: [`fleet_interval`], plus the host's own jitter when the
/// fleet is stretched past the floor.
pub fn host_interval(
    host_id: &str,
    fleet_size: u64,
    floor_seconds: u64,
    capacity_per_second: u64,
) -> u64 {
    let interval = fleet_interval(fleet_size, floor_seconds, capacity_per_second);
    if interval <= floor_seconds {
        return interval;
    }
    let jitter = fnv1a(host_id.as_bytes()) % (interval / JITTER_DIVISOR + 1);
    (interval + jitter).min(MAX_SECONDS.max(floor_seconds))
}

/// FNV-1a: a fixed, portable hash, so a host gets the same jitter from every replica and
/// every release (the standard library's hasher promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The fleet size this process sizes intervals for: enrolled hosts, as last counted.
#[derive(Debug, Default)]
pub struct FleetSize(AtomicU64);

impl FleetSize {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts the hosts (one statement); on failure the last count stays.
    pub async fn refresh(&self, store: &dyn Store) -> Option<u64> {
        match store.count_hosts().await {
            Ok(count) => {
                self.0.store(count, Ordering::Relaxed);
                Some(count)
            }
            Err(err) => {
                tracing::warn!(error = %err, "counting the fleet failed; keeping the last size");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_holds_while_the_fleet_fits() {
        // 1,000 reports/s at 300 s: up to 300,000 hosts fit.
        assert_eq!(fleet_interval(0, 300, 1_000), 300);
        assert_eq!(fleet_interval(300_000, 300, 1_000), 300);
        assert_eq!(host_interval("h-any", 300_000, 300, 1_000), 300);
        // An operator's short interval (tests, demos) is kept while it fits.
        assert_eq!(fleet_interval(10, 1, 1_000), 1);
    }

    #[test]
    fn a_larger_fleet_is_told_a_longer_interval_that_keeps_it_under_capacity() {
        assert_eq!(fleet_interval(300_001, 300, 1_000), 301);
        // Ten times what the floor allows: ten times the interval.
        assert_eq!(fleet_interval(3_000_000, 300, 1_000), 3_000);
        for fleet in [300_001_u64, 450_000, 1_000_000, 3_000_000] {
            let interval = fleet_interval(fleet, 300, 1_000);
            assert!(
                fleet as f64 / interval as f64 <= 1_000.0,
                "{fleet}: {interval}"
            );
        }
    }

    #[test]
    fn stretched_intervals_stay_between_a_minute_and_an_hour() {
        assert_eq!(fleet_interval(2, 1, 1), MIN_STRETCHED_SECONDS);
        assert_eq!(fleet_interval(10_000_000, 300, 1_000), MAX_SECONDS);
        assert_eq!(fleet_interval(u64::MAX, 300, 1), MAX_SECONDS);
        assert_eq!(host_interval("h-x", u64::MAX, 300, 1), MAX_SECONDS);
        // Capacity 0 is refused by validation; here it counts as 1.
        assert_eq!(fleet_interval(100, 60, 0), 100);
    }

    #[test]
    fn jitter_is_per_host_stable_upward_and_at_most_a_tenth() {
        let (fleet, floor, capacity) = (1_000_000, 300, 1_000);
        let base = fleet_interval(fleet, floor, capacity);
        let told: Vec<u64> = (0..2_000)
            .map(|n| host_interval(&format!("h-{n:016x}"), fleet, floor, capacity))
            .collect();
        assert!(told.iter().all(|t| (base..=base + base / 10).contains(t)));
        let distinct: std::collections::BTreeSet<_> = told.iter().collect();
        assert!(
            distinct.len() > 50,
            "spread over the tenth: {}",
            distinct.len()
        );
        assert_eq!(
            host_interval("h-0000000000000007", fleet, floor, capacity),
            told[7],
            "the same host, the same interval"
        );
        // Reports per second of the whole fleet stay under capacity with the jitter.
        let rate: f64 = told.iter().map(|t| 1.0 / *t as f64).sum::<f64>() * (fleet / 2_000) as f64;
        assert!(rate <= capacity as f64, "{rate}");
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
