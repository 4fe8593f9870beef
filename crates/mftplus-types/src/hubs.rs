//! Wire types of the edge-hub phone-home protocol v1 (SPEC §4, decision 0010) and of the
//! operator's views of deploy keys and hubs.
//!
//! A hub authenticates with a deploy key (`Authorization: Bearer mft_dep_…`). Requests carry
//! `protocol`; a cloud refuses a protocol newer than [`PROTOCOL_VERSION`] with 400, so a hub
//! can tell "upgrade the cloud" from any other failure. Unknown fields are ignored, so a newer
//! hub's additions do not break an older cloud within one protocol version.

use serde::{Deserialize, Serialize};

/// Prefix of a deploy key.
pub const DEPLOY_KEY_PREFIX: &str = "mft_dep_";
/// The phone-home protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// `license_mode` of a hub without a recognised license key.
pub const LICENSE_EVALUATION: &str = "evaluation";
/// `license_mode` of a hub whose license key the cloud recognises.
pub const LICENSE_ENTERPRISE: &str = "enterprise";
/// The warning of a hub more than two minor releases behind the cloud's latest.
pub const WARNING_VERSIONS_BEHIND: &str = "more than two versions behind";

/// Hub statuses as operators see them.
pub mod hub_status {
    pub const ONLINE: &str = "online";
    pub const OFFLINE: &str = "offline";
    pub const DEGRADED: &str = "degraded";
}

fn default_protocol() -> u32 {
    PROTOCOL_VERSION
}

/// `POST /api/v1/hubs/register` and `POST /api/v1/hubs/{hub_id}/validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HubRegisterRequest {
    #[serde(default = "default_protocol")]
    pub protocol: u32,
    pub hub_version: String,
    pub hostname: String,
    pub platform: String,
    #[serde(default)]
    pub license_key: Option<String>,
}

/// The answer to register and validate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HubRegisterResponse {
    pub hub_id: String,
    pub heartbeat_interval_seconds: u64,
    /// [`LICENSE_EVALUATION`] or [`LICENSE_ENTERPRISE`].
    pub license_mode: String,
    pub latest_version: String,
    pub versions_behind: u32,
    /// Human-readable: an unknown license key, or [`WARNING_VERSIONS_BEHIND`].
    pub warning: Option<String>,
}

/// `POST /api/v1/hubs/{hub_id}/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HubHeartbeatRequest {
    pub hub_version: String,
    #[serde(default)]
    pub uptime_seconds: u64,
    pub healthy: bool,
    /// The issue strings of the hub's `/hub/diagnose`.
    #[serde(default)]
    pub issues: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HubHeartbeatResponse {
    /// `ok`.
    pub status: String,
    pub heartbeat_interval_seconds: u64,
}

/// `POST /api/v1/hubs/deploy-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDeployKey {
    pub label: String,
}

/// The answer to creating a deploy key: `key` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CreatedDeployKey {
    pub id: String,
    pub label: String,
    pub key: String,
    pub prefix: String,
    pub created_at: String,
}

/// A deploy key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeployKeyInfo {
    pub id: String,
    pub label: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// `active`, `rotated` (replaced, still accepted until `expires_at`) or `revoked`
    /// (revoked, or past its grace after a rotation).
    pub status: String,
    /// Hubs registered with this key.
    pub hubs: u32,
    /// After a rotation: when this (old) key stops being accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The id of the key this one replaced, when it came from a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// `POST /api/v1/hubs/deploy-keys/{id}/rotate`; without a body the cloud's
/// `hubs.deploy_key_grace_seconds` applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateDeployKey {
    /// How long the old key keeps working (at most 30 days; 0 stops it at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_seconds: Option<u64>,
}

/// The answer to a rotation: the new key, shown this once, and when the old one stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RotatedDeployKey {
    pub id: String,
    pub label: String,
    pub key: String,
    pub prefix: String,
    pub created_at: String,
    /// The id of the key it replaces.
    pub replaces: String,
    /// RFC 3339: when the replaced key stops being accepted.
    pub previous_valid_until: String,
}

/// A hub as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HubInfo {
    pub hub_id: String,
    pub hostname: String,
    pub hub_version: String,
    pub platform: String,
    pub license_mode: String,
    pub deploy_key_id: String,
    pub deploy_key_label: String,
    pub registered_at: String,
    pub last_seen_at: String,
    pub last_validated_at: Option<String>,
    /// `online`, `offline` or `degraded` (see [`hub_status`]).
    pub status: String,
    pub versions_behind: u32,
    pub warning: Option<String>,
    /// From the latest heartbeat.
    #[serde(default)]
    pub healthy: bool,
    #[serde(default)]
    pub issues: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_request_reads_the_protocol_example() {
        let body = r#"{"protocol":1,"hub_version":"0.1.0","hostname":"hub-server-01","platform":"linux","license_key":null}"#;
        let parsed: HubRegisterRequest = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.protocol, 1);
        assert_eq!(parsed.license_key, None);
        let without: HubRegisterRequest = serde_json::from_str(
            r#"{"hub_version":"0.1.0","hostname":"h","platform":"linux","extra":true}"#,
        )
        .unwrap();
        assert_eq!(
            without.protocol, PROTOCOL_VERSION,
            "a missing protocol is v1"
        );
    }

    #[test]
    fn register_response_has_the_contract_fields() {
        let value = serde_json::to_value(HubRegisterResponse {
            hub_id: "hub_0123456789abcdef".into(),
            heartbeat_interval_seconds: 60,
            license_mode: LICENSE_EVALUATION.into(),
            latest_version: "0.1.0".into(),
            versions_behind: 0,
            warning: None,
        })
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({"hub_id":"hub_0123456789abcdef","heartbeat_interval_seconds":60,
                "license_mode":"evaluation","latest_version":"0.1.0","versions_behind":0,
                "warning":null})
        );
    }
}

/// How an edge hub tells the cloud whose request it forwards (issue 13). The hub strips any of
/// these a client sent and sets all three on every request it forwards (proxy, offline queue,
/// site paths); the cloud believes the address only when the hub id and its deploy key prove a
/// registered hub, and then limits, throttles and audits the request as that client's.
pub mod forwarding {
    /// The address of the client the hub serves (an IP address, no port).
    pub const CLIENT_ADDR_HEADER: &str = "x-mftplus-client-addr";
    /// The id of the registered hub that forwarded the request.
    pub const PROXY_HUB_HEADER: &str = "x-mftplus-proxy-hub";
    /// The forwarding hub's deploy key, proving the two headers above.
    pub const PROXY_KEY_HEADER: &str = "x-mftplus-proxy-key";
    /// Every forwarding header a client might send to be believed; a hub drops them all
    /// before setting its own.
    pub const CLIENT_SUPPLIED: [&str; 7] = [
        "x-forwarded-for",
        "x-real-ip",
        "forwarded",
        "true-client-ip",
        CLIENT_ADDR_HEADER,
        PROXY_HUB_HEADER,
        PROXY_KEY_HEADER,
    ];
}
