//! Wire types shared by every MFTPlus component: request and response bodies of the HTTP API,
//! the stable error codes, and the parsing of user-facing values such as durations.
//!
//! This crate is deliberately inert: no HTTP server, no database, no async runtime. Anything that
//! crosses a process boundary is defined here once, so the cloud, the client and the tests agree.

pub mod api;
pub mod certificates;
pub mod duration;
pub mod error;
pub mod fleet;
pub mod hubs;
pub mod links;
pub mod requests;
pub mod routes;
pub mod transfers;

pub use error::{ApiErrorBody, ErrorCode, ErrorInfo};

/// Version of this build, reported by `/health` and `mftctl status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Prefix of every API key (seed 001: `prefix: "mftpk_"`).
pub const API_KEY_PREFIX: &str = "mftpk_";
