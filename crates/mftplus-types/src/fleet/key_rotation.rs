//! Host-key rotation on the wire (`docs/key-rotation.md`): the agent's own rotation and an
//! operator's request for one.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/hosts/{id}/key/rotate`: the host's new key. The key that made the call keeps
/// working until `previous_key_valid_until`; repeating the call with that key and the same
/// `Idempotency-Key` answers the same new key (an agent that crashed before storing it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostKeyRotated {
    pub host_id: String,
    /// Shown once per rotation; the cloud keeps only its SHA-256.
    pub host_key: String,
    /// RFC 3339: when the replaced key stops working.
    pub previous_key_valid_until: String,
    /// `true` when this answers a repeated call (same old key, same `Idempotency-Key`).
    #[serde(default)]
    pub repeated: bool,
}

/// `POST /api/v1/hosts/{id}/key/rotation`: an operator asked the host's agent to rotate its
/// key; it does at its next report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostKeyRotationRequested {
    pub host_id: String,
    /// RFC 3339.
    pub requested_at: String,
}
