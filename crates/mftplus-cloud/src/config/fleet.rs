//! Configuration of the fleet control plane: `fleet.*`, `notifications.*`, `edge_firewall.*`
//! (decision 0009).

use mftplus_base::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSection {
    /// Poll interval the envelope tells agents (they clamp it to 60–3600 s): the floor. A
    /// fleet larger than `report_capacity_per_second` allows at this interval is told a longer
    /// one (decision 0024).
    pub poll_interval_seconds: u64,
    /// Host reports per second the deployment is sized to take (all replicas together, on
    /// one database). The envelope's interval grows with the fleet so that the fleet's reports
    /// stay under this, up to 3,600 s; liveness thresholds grow with each host's interval.
    pub report_capacity_per_second: u64,
    /// Hosts one customer may enroll (seed 002: one host per customer).
    pub max_hosts_per_customer: u32,
    /// The operators' signing public keys in `allowed_signers` format, pinned on every agent
    /// at enrollment. The cloud holds public keys only.
    pub operator_keys_file: Option<PathBuf>,
    /// Controller config template (YAML); a built-in default when unset.
    pub controller_template_file: Option<PathBuf>,
    /// Public URL agents and controllers use to reach the cloud (written into generated
    /// controller configs); defaults to the address the request came to.
    pub public_url: Option<String>,
    /// How long an unsigned or undelivered op stays valid.
    pub op_ttl_seconds: u64,
    /// A host behind its desired generation for longer than this is `drifted`.
    pub drift_after_seconds: u64,
    /// Liveness thresholds: no host report for this long is `stale`, then `down`.
    pub stale_after_seconds: u64,
    pub down_after_seconds: u64,
    /// How often the checker (liveness, backup deadlines, op expiry) runs.
    pub check_interval_seconds: u64,
    pub report_retention_days: u64,
    pub event_retention_days: u64,
    /// Reports committed in one transaction at most (group commit).
    pub ingest_batch_max: usize,
    /// After an agent rotates its host key, how long the old key keeps working (it covers
    /// requests already in flight or queued on an edge hub, and an agent that must repeat the
    /// rotation after a crash). 0 refuses the old key at once (`docs/key-rotation.md`).
    pub host_key_grace_seconds: u64,
}

impl Default for FleetSection {
    fn default() -> Self {
        FleetSection {
            poll_interval_seconds: 300,
            // A third of what one small node's PostgreSQL took in docs/benchmarks.md (2,917
            // reports/s on 2 vCPUs), leaving the node room for transfers and the dashboard.
            report_capacity_per_second: 1_000,
            max_hosts_per_customer: 1,
            operator_keys_file: None,
            controller_template_file: None,
            public_url: None,
            op_ttl_seconds: 7 * 86_400,
            drift_after_seconds: 900,
            stale_after_seconds: 1800,
            down_after_seconds: 3600,
            check_interval_seconds: 60,
            report_retention_days: 30,
            event_retention_days: 365,
            ingest_batch_max: 1024,
            host_key_grace_seconds: 86_400,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsSection {
    pub enabled: bool,
    /// Operator-tier (English) recipients.
    pub operator_emails: Vec<String>,
    /// Per-event cooldown, e.g. `6h`; recoveries bypass it.
    pub cooldown: String,
    pub smtp: SmtpSection,
    pub webhooks: Vec<WebhookSection>,
}

impl Default for NotificationsSection {
    fn default() -> Self {
        NotificationsSection {
            enabled: true,
            operator_emails: Vec::new(),
            cooldown: "6h".into(),
            smtp: SmtpSection::default(),
            webhooks: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    /// Unset: no email is sent (logged as `failed` with a reason).
    pub host: Option<String>,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    /// Env: `MFTPLUS__NOTIFICATIONS__SMTP__PASSWORD` or `…_FILE`.
    pub password: Option<Secret>,
    /// `none`, `starttls` or `tls`.
    pub tls: String,
    pub timeout_seconds: u64,
}

impl Default for SmtpSection {
    fn default() -> Self {
        SmtpSection {
            host: None,
            port: 587,
            from: "mftplus@localhost".into(),
            username: None,
            password: None,
            tls: "starttls".into(),
            timeout_seconds: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSection {
    pub url: String,
    /// File holding the HMAC-SHA256 key of `X-Webhook-Signature` (mode 0600). A file, not an
    /// inline value, so the secret can never be printed with the list it sits in.
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeFirewallSection {
    pub cloudflare: CloudflareSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudflareSection {
    pub enabled: bool,
    pub base_url: String,
    /// Stays in the cloud: never emitted into a controller config.
    /// Env: `MFTPLUS__EDGE_FIREWALL__CLOUDFLARE__API_TOKEN` or `…_FILE`.
    pub api_token: Option<Secret>,
}

impl Default for CloudflareSection {
    fn default() -> Self {
        CloudflareSection {
            enabled: false,
            base_url: "https://api.cloudflare.com/client/v4".into(),
            api_token: None,
        }
    }
}

/// Edge hubs (`hubs.*`, decision 0010): what the phone-home answers tell hubs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubsSection {
    /// The newest hub release (semver); hubs more than two minor releases behind it are
    /// warned. Unset: this cloud's own version.
    pub latest_version: Option<String>,
    /// How often hubs send a heartbeat; a hub silent for three intervals is offline.
    pub heartbeat_interval_seconds: u64,
    /// SHA-256 (lowercase hex) of every enterprise license key; a hub presenting one of them
    /// runs in enterprise mode, every other hub in evaluation mode. Hashes, so the config never
    /// holds a usable license key.
    pub license_keys: Vec<String>,
    /// How long a rotated deploy key keeps working when the rotation names no grace.
    pub deploy_key_grace_seconds: u64,
}

impl Default for HubsSection {
    fn default() -> Self {
        HubsSection {
            latest_version: None,
            heartbeat_interval_seconds: 60,
            license_keys: Vec::new(),
            deploy_key_grace_seconds: 86_400,
        }
    }
}
