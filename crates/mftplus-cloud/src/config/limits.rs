//! `server.limits`: what one connection and one request head may hold before the serve loop
//! refuses them (issue 13; `mftplus_pki::serve::Limits`, decision 0015). The defaults survive a
//! slowloris of a few thousand connections on a 2-core machine while legitimate requests keep
//! their latency (`bench/slowloris.sh`).

use super::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Deadline for a request's head; also closes an idle keep-alive connection.
    pub header_read_seconds: u64,
    /// Deadline between two pieces of a request body.
    pub body_idle_seconds: u64,
    /// How long a stop waits for requests in flight.
    pub drain_seconds: u64,
    /// How long a client waits for a handler's answer (503 `unavailable` past it; the handler
    /// still finishes). Chunk uploads and the audit export have none.
    pub handler_seconds: u64,
    /// Open connections overall.
    pub max_connections: usize,
    /// Open connections from one TCP peer address. An edge hub holds one connection per
    /// agent tunnel: raise this above the largest site's agent count.
    pub max_connections_per_address: usize,
    /// Longest request target (414 `uri_too_long` beyond).
    pub max_uri_bytes: usize,
    /// Most header fields, and their total size (431 `headers_too_large` beyond).
    pub max_header_count: usize,
    pub max_header_bytes: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let serve = mftplus_pki::serve::Limits::default();
        LimitsSection {
            header_read_seconds: serve.header_read.as_secs(),
            body_idle_seconds: serve.body_idle.as_secs(),
            drain_seconds: serve.drain.as_secs(),
            handler_seconds: 30,
            max_connections: serve.max_connections,
            max_connections_per_address: serve.max_connections_per_address,
            max_uri_bytes: serve.max_uri_bytes,
            max_header_count: serve.max_header_count,
            max_header_bytes: serve.max_header_bytes,
        }
    }
}

impl LimitsSection {
    /// The serve loop's limits.
    pub fn serve(&self) -> mftplus_pki::serve::Limits {
        mftplus_pki::serve::Limits {
            header_read: Duration::from_secs(self.header_read_seconds),
            body_idle: Duration::from_secs(self.body_idle_seconds),
            drain: Duration::from_secs(self.drain_seconds),
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            max_uri_bytes: self.max_uri_bytes,
            max_header_count: self.max_header_count,
            max_header_bytes: self.max_header_bytes,
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, rule: &str| {
            Err(ConfigError::Invalid(format!(
                "server.limits.{key} must be {rule}"
            )))
        };
        let positive = [
            ("header_read_seconds", self.header_read_seconds as usize),
            ("body_idle_seconds", self.body_idle_seconds as usize),
            ("handler_seconds", self.handler_seconds as usize),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return invalid(key, "at least 1");
            }
        }
        if self.max_connections_per_address > self.max_connections {
            return invalid(
                "max_connections_per_address",
                "at most server.limits.max_connections",
            );
        }
        if self.max_uri_bytes < 1024 {
            return invalid(
                "max_uri_bytes",
                "at least 1024 (the API's own paths need it)",
            );
        }
        if self.max_header_count < 16 {
            return invalid("max_header_count", "at least 16");
        }
        if self.max_header_bytes < 4096 {
            return invalid("max_header_bytes", "at least 4096");
        }
        Ok(())
    }
}
