//! Time as a dependency, so expiry, throttling and retention are tested without sleeping. The
//! clock itself is `mftplus_base::clock`, the one every component injects; this module keeps
//! the API's timestamp format next to it.

pub use mftplus_base::clock::{Clock, OffsetClock, SharedClock, SystemClock};

/// RFC 3339 in UTC with millisecond precision, the one timestamp format of the API.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
