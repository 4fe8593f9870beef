//! Foundations every MFTPlus component shares, so each has one definition instead of a copy
//! per crate: the clock ([`clock`]), secrets that never print ([`Secret`]), files only
//! their owner may read ([`private_file`]), the lock-poisoning policy ([`sync`]) and large
//! sequential file I/O past the page cache ([`direct_io`]).
//!
//! What it is not: no HTTP, no database, no async runtime, no wire types (those are
//! `mftplus-types`). Anything here must be small enough that every crate can depend on it.

pub mod clock;
pub mod direct_io;
pub mod private_file;
mod secret;
pub mod sync;

pub use clock::{Clock, OffsetClock, SharedClock, SystemClock};
pub use private_file::{
    check_private, ensure_private_dir, read_private_to_string, write_private, PrivateFileError,
};
pub use secret::Secret;
