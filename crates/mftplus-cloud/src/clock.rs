//! Time as a dependency, so expiry, throttling and retention are tested without sleeping. The
//! clock itself is `mftplus_base::clock`, the one every component injects; this module keeps
//! the API's timestamp format next to it.

pub use mftplus_base::clock::{rfc3339, Clock, OffsetClock, SharedClock, SystemClock};
