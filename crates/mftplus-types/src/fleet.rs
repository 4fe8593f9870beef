//! Wire types of the fleet control plane (SPEC §3): what agents and guest controllers report,
//! the control envelope they get back, the desired state they converge to, enrollment, signed
//! operations, events and the operator's views of customers, hosts and guests.
//!
//! Reports are read tolerantly (unknown fields are kept in the stored JSON and ignored here) so
//! an agent newer than the cloud still reports; the desired state keeps unknown fields in
//! `extra` so the cloud can tell that something it does not understand changed (and treat it as
//! destructive). Timestamps are RFC 3339 strings, numbers in desired state are integers (signed
//! op parameters refuse floats).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

mod key_rotation;
mod op_state;
pub mod queueable;
mod views;
pub use key_rotation::{HostKeyRotated, HostKeyRotationRequested};
pub use op_state::{OpStatus, UnknownOpStatus};
pub use queueable::{validate_queueable, ValidationError};
pub use views::*;

/// Prefix of a host (agent) key.
pub const HOST_KEY_PREFIX: &str = "mfth_";
/// Prefix of a guest (controller) key.
pub const GUEST_KEY_PREFIX: &str = "mftg_";
/// `POST /api/v1/host-report` refuses bodies above this with 413.
pub const MAX_HOST_REPORT_BYTES: usize = 4 * 1024 * 1024;
/// Header carrying a customer's retrieval password (enrollment, config retrieval, re-enroll).
pub const RETRIEVAL_PASSWORD_HEADER: &str = "x-retrieval-password";

/// The header a write is deduplicated by (decision 0011): an edge hub queues under it and the
/// cloud stores a write once per key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
pub const IDEMPOTENCY_KEY_RULE: &str =
    "Idempotency-Key must be 1–128 printable ASCII characters, without spaces";

/// The one rule for an `Idempotency-Key`, at the hub and at the cloud alike: a key the hub
/// accepted and queued is never refused by the cloud at replay.
pub fn is_valid_idempotency_key(key: &[u8]) -> bool {
    (1..=128).contains(&key.len()) && key.iter().all(|b| (0x21..=0x7e).contains(b))
}

// ---------------------------------------------------------------- reports (box → cloud)

/// `POST /api/v1/host-report`: the agent's heartbeat, poll and mirror of the box in one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostReport {
    /// Must be the host the presented key belongs to.
    pub host_id: String,
    pub agent_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_version: Option<String>,
    /// The desired-state generation the agent has converged to.
    pub applied_generation: u64,
    /// The agent's clock when it built the report (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_at: Option<String>,
    #[serde(default)]
    pub system: HostSystem,
    #[serde(default)]
    pub guests: Vec<GuestStatusReport>,
    #[serde(default)]
    pub storage_targets: Vec<StorageTarget>,
    /// Latest backup snapshot per target.
    #[serde(default)]
    pub backup_snapshots: Vec<SnapshotPointer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelHealth>,
    /// Destructive changes the agent refused because no valid signed op authorised them.
    #[serde(default)]
    pub pending_signature: Vec<PendingChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HostSystem {
    #[serde(default)]
    pub cpu_percent: f64,
    #[serde(default)]
    pub memory_used_bytes: u64,
    #[serde(default)]
    pub memory_total_bytes: u64,
    #[serde(default)]
    pub disk_used_bytes: u64,
    #[serde(default)]
    pub disk_total_bytes: u64,
    #[serde(default)]
    pub uptime_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum GuestStatus {
    Running,
    Stopped,
    #[default]
    Unknown,
}

impl GuestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestStatus::Running => "running",
            GuestStatus::Stopped => "stopped",
            GuestStatus::Unknown => "unknown",
        }
    }
}

/// One guest as the host sees it: authoritative up/down, every poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestStatusReport {
    pub guest_id: String,
    pub status: GuestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<GuestSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_version: Option<String>,
}

/// An attached drive or other storage target, identified by a durable id (filesystem UUID).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StorageTarget {
    pub durable_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub attached: bool,
    pub reachable: bool,
    pub data_bearing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRun>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restore_test: Option<BackupRun>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunOutcome {
    Ok,
    Failed,
}

/// One backup or restore-test run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BackupRun {
    /// RFC 3339.
    pub at: String,
    pub status: RunOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotPointer {
    /// `durable_id` of the target the snapshot belongs to.
    pub target: String,
    pub snapshot_id: String,
    /// RFC 3339.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TunnelHealth {
    pub healthy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A destructive change the agent will not make without a signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PendingChange {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    #[serde(default)]
    pub params: Value,
}

/// The reply to every host report: the report is the heartbeat and the poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ControlEnvelope {
    pub poll_interval_seconds: u64,
    /// The customer is blocked: keep reporting, change nothing.
    pub blocked: bool,
    pub desired_generation: u64,
    /// Signed ops wait at `GET /hosts/{id}/signed-ops`.
    pub has_signed_ops: bool,
    /// An operator asked for a new host key: rotate it (`POST /hosts/{id}/key/rotate`).
    /// Absent (false) from older clouds; older agents ignore it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotate_key: bool,
}

/// `POST /api/v1/report`: the guest controller's slimmed, app-domain report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestReport {
    /// Must be the guest the presented key belongs to, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_version: Option<String>,
    /// Guest-level CPU and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    /// The app inventory, mirrored as reported.
    #[serde(default)]
    pub apps: Vec<Value>,
    /// The customer's geo policy for the edge firewall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<GeoPolicy>,
    #[serde(default)]
    pub log_issues: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum GeoMode {
    /// Only the listed countries may reach the customer's sites.
    Allow,
    /// The listed countries are blocked.
    Block,
    /// No geo rule.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GeoPolicy {
    pub mode: GeoMode,
    /// ISO 3166-1 alpha-2 codes, upper case.
    #[serde(default)]
    pub countries: Vec<String>,
}

// ---------------------------------------------------------------- desired state (cloud → box)

/// `GET /api/v1/hosts/{id}/desired-state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DesiredStateResponse {
    pub generation: u64,
    pub desired_state: DesiredState,
}

/// The operator's intent for one host. Maps are keyed by guest id and storage `durable_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DesiredState {
    #[serde(default)]
    pub guests: BTreeMap<String, GuestDesired>,
    #[serde(default)]
    pub storage: BTreeMap<String, StoragePolicy>,
    #[serde(default)]
    pub versions: Versions,
    /// Fields this cloud does not know; any change to them is treated as destructive.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestDesired {
    pub spec: GuestSpec,
    #[serde(default)]
    pub run_state: RunState,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestSpec {
    /// What runs the guest. An agent refuses a kind its driver cannot run, and an unknown
    /// kind is refused when the desired state is read, never classified by guesswork.
    #[serde(default)]
    pub kind: GuestKind,
    #[serde(default)]
    pub cpu_cores: u32,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub disk_gb: u64,
    /// Golden image (or container image) the guest runs.
    #[serde(default)]
    pub image: String,
    /// Restore the guest from this snapshot (destructive on an existing guest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The kind of a guest, which decides the driver that runs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum GuestKind {
    /// A virtual machine from a golden image (the Proxmox VE driver).
    #[default]
    Vm,
    /// A container from a local image (the Docker Engine driver).
    Container,
}

impl GuestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestKind::Vm => "vm",
            GuestKind::Container => "container",
        }
    }
}

impl std::fmt::Display for GuestKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    #[default]
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoragePolicy {
    /// e.g. `bulk`, `system`, `backup`.
    pub role: String,
    /// e.g. `fast`, `slow`.
    pub class: String,
    #[serde(default)]
    pub backup: BackupSchedule,
    /// Wipe the drive (destructive).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wipe: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum BackupSchedule {
    #[default]
    None,
    Hourly,
    Daily,
    Weekly,
}

impl BackupSchedule {
    /// How long after the last successful backup the next one is overdue, in seconds: the
    /// period plus slack for a run that starts late or takes long.
    pub fn deadline_secs(self) -> Option<i64> {
        match self {
            BackupSchedule::None => None,
            BackupSchedule::Hourly => Some(2 * 3600),
            BackupSchedule::Daily => Some(26 * 3600),
            BackupSchedule::Weekly => Some(8 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Versions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden_image: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One difference between two desired states, as the cloud classified it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DesiredChange {
    /// `benign` (published at once) or `destructive` (needs a signed op).
    pub kind: ChangeKind,
    /// The op name, e.g. `guest.create`, `guest.remove`, `storage.detach`.
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    /// Where in the desired state, e.g. `/guests/web`.
    pub path: String,
    /// For destructive changes: the exact params of the op the agent will check.
    pub params: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Benign,
    Destructive,
}

/// `PUT /api/v1/hosts/{id}/desired-state` (and the body of the dry-run diff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PutDesiredState {
    pub desired_state: DesiredState,
    /// Refuse with 409 unless the current generation is this one (optimistic locking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_generation: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PutDesiredStateResponse {
    pub generation: u64,
    /// Benign changes, now in the published desired state.
    pub published: Vec<DesiredChange>,
    /// Destructive changes, each waiting for a signature as an op.
    pub pending_ops: Vec<OpInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DesiredDiff {
    pub generation: u64,
    pub changes: Vec<DesiredChange>,
}

// ---------------------------------------------------------------- enrollment and DR

/// `POST /api/v1/enroll`, with the customer's retrieval password in `X-Retrieval-Password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EnrollRequest {
    pub customer_id: String,
    pub hostname: String,
    pub agent_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EnrollResponse {
    pub host_id: String,
    pub customer_id: String,
    /// Shown once; the cloud keeps only its SHA-256.
    pub host_key: String,
    /// The pinned operator signing keys, in `allowed_signers` format.
    pub operator_keys: String,
    pub poll_interval_seconds: u64,
}

/// `POST /api/v1/hosts/{id}/guests`: the agent mints a guest controller's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestBootstrapRequest {
    pub guest_id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GuestBootstrap {
    pub guest_id: String,
    pub host_id: String,
    pub customer_id: String,
    /// Shown once.
    pub guest_key: String,
}

/// `PUT /api/v1/hosts/{id}/escrow`: stored verbatim; the cloud cannot open the wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EscrowUpload {
    pub backup_namespace: String,
    pub repository_fingerprint: String,
    pub wrapped_key: String,
}

/// `POST /api/v1/hosts/{id}/recovery`: arm recovery mode (TTL clamped to 60 s – 4 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ArmRecovery {
    pub ttl_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecoveryState {
    pub host_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_mode_until: Option<String>,
}

/// `POST /api/v1/hosts/{id}/re-enroll` (retrieval password, recovery mode armed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReEnrollRequest {
    pub hostname: String,
    pub agent_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReEnrollResponse {
    pub host_id: String,
    pub customer_id: String,
    /// The new key; the old one stops working at once.
    pub host_key: String,
    pub operator_keys: String,
    pub restore: RestoreDirective,
}

/// What a fresh box needs to rebuild the lost one, from the durable sources only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RestoreDirective {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_fingerprint: Option<String>,
    /// The wrapped backup key exactly as escrowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_key: Option<String>,
    pub generation: u64,
    pub desired_state: DesiredState,
}

// ---------------------------------------------------------------- signed operations

/// [`OpStatus`] as the strings the stores write into their TEXT columns.
pub mod op_status {
    use super::OpStatus;

    pub const PENDING_SIGNATURE: &str = OpStatus::PendingSignature.as_str();
    pub const SIGNED: &str = OpStatus::Signed.as_str();
    pub const DELIVERED: &str = OpStatus::Delivered.as_str();
    pub const EXECUTED: &str = OpStatus::Executed.as_str();
    pub const FAILED: &str = OpStatus::Failed.as_str();
    pub const EXPIRED: &str = OpStatus::Expired.as_str();
    pub const REJECTED: &str = OpStatus::Rejected.as_str();
    pub const ALL: [&str; 7] = [
        PENDING_SIGNATURE,
        SIGNED,
        DELIVERED,
        EXECUTED,
        FAILED,
        EXPIRED,
        REJECTED,
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OpInfo {
    pub op_id: String,
    pub customer_id: String,
    pub host_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    pub op_type: String,
    /// The canonical op blob, exactly the bytes to sign (UTF-8 JSON).
    pub blob: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub status: String,
    pub nonce: String,
    pub issued_at: String,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// `PUT /api/v1/ops/{id}/signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SignOp {
    /// Armored SSHSIG over the exact blob bytes, namespace `mftplus-op-v1`.
    pub signature: String,
}

/// `POST /api/v1/hosts/{id}/signed-ops/{op_id}/status` (agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OpStatusUpdate {
    /// `executed`, `failed` or `rejected`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

// ---------------------------------------------------------------- events and notifications

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EventInfo {
    pub id: i64,
    pub at: String,
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
    pub details: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NotificationInfo {
    pub id: i64,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// `operator` or `customer`.
    pub tier: String,
    /// `email` or `webhook`.
    pub channel: String,
    pub recipient: String,
    /// `sent`, `failed` or `suppressed` (cooldown).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod idempotency_tests {
    use super::is_valid_idempotency_key;

    #[test]
    fn keys_are_1_to_128_visible_ascii_characters() {
        assert!(is_valid_idempotency_key(b"00042-000000000000abcd"));
        assert!(is_valid_idempotency_key(&[b'k'; 128]));
        for bad in [
            &b""[..],
            b"has space",
            b"tab\there",
            "ékezet".as_bytes(),
            &[b'k'; 129],
        ] {
            assert!(!is_valid_idempotency_key(bad), "{bad:?}");
        }
    }
}
