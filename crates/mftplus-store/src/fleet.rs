//! Persistence of the fleet control plane (SPEC §3): customers, hosts, guests, the two report
//! streams, signed operations, events, notification bookkeeping and job leases.
//!
//! The host row has two drivers and every column belongs to exactly one (seed 002 §1):
//! - **intent** (operator actions only): `desired_json`, `desired_generation`,
//!   `desired_updated_at_ms`, `recovery_mode_until_ms`;
//! - **reality** (reports only): `agent_version`, `controller_version`, `applied_generation`,
//!   `last_report_at_ms`, `last_backups_json`, `pending_signature_json`;
//! - **DR record** (box-reported through the escrow route): `backup_namespace`,
//!   `repository_fingerprint`, `escrow`, `escrow_at_ms`;
//! - **checker state** (background jobs only): `liveness`, `backup_missed_json`.
//!
//! Report ingest never writes an intent column, and operator edits never write a reality
//! column; the contract suite checks both.

use async_trait::async_trait;

use crate::StoreResult;

// ---------------------------------------------------------------- customers

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub id: String,
    pub name: String,
    pub email: String,
    pub domain: Option<String>,
    pub locale: String,
    /// Argon2id PHC string of the retrieval password.
    pub retrieval_password_hash: String,
    /// JSON object of overrides for the controller config template.
    pub config_json: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub domain: Option<String>,
    pub locale: String,
    /// `active` or `blocked`.
    pub status: String,
    pub retrieval_password_hash: String,
    pub config_json: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// How many of a customer's hosts need attention, and its ops awaiting a signature
/// ([`FleetStore::customer_fleet_counts`]). Liveness counts as the operator sees it: a host
/// that never reported counts as `never` only, whatever its stored liveness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerCounts {
    pub customer_id: String,
    pub hosts: u64,
    /// Hosts that reported and are `stale` now.
    pub stale: u64,
    /// Hosts that reported and are `down` now.
    pub down: u64,
    /// Hosts that never reported.
    pub never: u64,
    /// Signed ops in `pending_signature`.
    pub awaiting_signature: u64,
}

/// `Some` fields are applied; `domain: Some(None)` clears the domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub domain: Option<Option<String>>,
    pub locale: Option<String>,
    pub status: Option<String>,
    pub retrieval_password_hash: Option<String>,
    pub config_json: Option<String>,
    pub updated_at_ms: i64,
}

// ---------------------------------------------------------------- hosts and guests

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHost {
    pub id: String,
    pub customer_id: String,
    /// SHA-256 hex of the host key; unique.
    pub key_hash: String,
    pub hostname: String,
    pub platform: Option<String>,
    pub agent_version: String,
    /// The desired state the host starts from (JSON), generation 0.
    pub desired_json: String,
    pub enrolled_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRow {
    pub id: String,
    pub customer_id: String,
    pub key_hash: String,
    pub hostname: String,
    pub platform: Option<String>,
    // reality
    pub agent_version: String,
    pub controller_version: Option<String>,
    pub applied_generation: i64,
    pub last_report_at_ms: Option<i64>,
    /// JSON array of the latest report's storage targets with their last backup.
    pub last_backups_json: String,
    /// JSON array of the destructive changes the agent last reported as waiting.
    pub pending_signature_json: String,
    /// The poll interval the answer to its latest report told the host (seconds); `None`
    /// before its first report under a cloud that records it. Liveness judges the host by it.
    pub poll_interval_seconds: Option<i64>,
    // intent
    pub desired_json: String,
    pub desired_generation: i64,
    pub desired_updated_at_ms: i64,
    pub recovery_mode_until_ms: Option<i64>,
    // DR record
    pub backup_namespace: Option<String>,
    pub repository_fingerprint: Option<String>,
    pub escrow: Option<String>,
    pub escrow_at_ms: Option<i64>,
    // checker state
    /// `ok`, `stale` or `down`.
    pub liveness: String,
    /// JSON array of `durable_id`s whose backup is currently overdue.
    pub backup_missed_json: String,
    pub enrolled_at_ms: i64,
}

/// The order of a hosts listing ([`FleetStore::list_hosts_page`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostOrder {
    /// By id, bytewise.
    #[default]
    Id,
    /// The longest silent first (the "missing hosts" view): never reported before any report,
    /// then the oldest `last_report_at_ms`, ties by id bytewise.
    LastReport,
}

/// Where the previous page of a hosts listing ended: its last host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCursor {
    pub id: String,
    /// [`HostOrder::LastReport`] only: that host's `last_report_at_ms` (`None`: never).
    pub last_report_at_ms: Option<i64>,
}

/// Which hosts a page lists, in which order, after which host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostListing {
    pub customer_id: Option<String>,
    /// Liveness as the operator sees it: [`liveness::NEVER`] is a host that never reported
    /// (whatever its stored liveness); `ok`, `stale` and `down` are hosts that reported, with
    /// that stored liveness. Another word matches no host.
    pub liveness: Option<String>,
    pub order: HostOrder,
    pub after: Option<HostCursor>,
    pub limit: u32,
}

/// A host key replaced with a grace for the old one (`docs/key-rotation.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyRotation {
    pub host_id: String,
    /// The hash the rotation replaces; it must still be the host's key.
    pub expected_key_hash: String,
    pub new_key_hash: String,
    /// Until when the replaced key still authenticates.
    pub previous_valid_until_ms: i64,
    /// The caller's `Idempotency-Key`: a repeat with the old key and this key gets the same
    /// new key.
    pub idempotency_key: String,
    /// The new key sealed under a key derived from the replaced one, which the cloud does not
    /// keep: only a caller presenting the old key can have it opened again.
    pub sealed_new_key: String,
    pub at_ms: i64,
}

/// The kept record of a host's latest graced key rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyRotationRow {
    pub host_id: String,
    pub previous_key_hash: String,
    pub previous_valid_until_ms: i64,
    pub idempotency_key: String,
    pub sealed_new_key: String,
    pub rotated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGuest {
    pub id: String,
    pub customer_id: String,
    pub host_id: String,
    pub key_hash: String,
    pub display_name: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestRow {
    pub id: String,
    pub customer_id: String,
    pub host_id: String,
    pub key_hash: String,
    pub display_name: String,
    // intent
    pub desired_spec_json: Option<String>,
    // reality
    pub controller_version: Option<String>,
    /// `running`, `stopped` or `unknown`, from the host report.
    pub status: String,
    /// When a host report last listed the guest.
    pub last_seen_at_ms: Option<i64>,
    /// When the guest controller itself last reported.
    pub last_report_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

// ---------------------------------------------------------------- reports

/// The guest part of a host report: reality for one guest row of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestReality {
    pub guest_id: String,
    pub status: String,
    pub controller_version: Option<String>,
}

/// One host report, already validated and denormalised by the cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHostReport {
    pub host_id: String,
    pub customer_id: String,
    pub received_at_ms: i64,
    pub agent_version: String,
    pub controller_version: Option<String>,
    pub applied_generation: i64,
    pub cpu_percent: f64,
    pub memory_used_bytes: i64,
    pub memory_total_bytes: i64,
    pub disk_used_bytes: i64,
    pub disk_total_bytes: i64,
    pub guests_total: i64,
    pub guests_running: i64,
    pub last_backups_json: String,
    pub pending_signature_json: String,
    /// The report as received, verbatim.
    pub report_json: String,
    /// The poll interval the envelope answering this report tells the host (seconds), kept on
    /// the host so liveness judges it by the interval it was actually given.
    pub poll_interval_seconds: i64,
    /// Reality of the guests the report lists; only guests of this host are touched.
    pub guests: Vec<GuestReality>,
    /// The sender's `Idempotency-Key` (an edge hub replaying its offline queue). A report whose
    /// (host, key) was already ingested is acknowledged without being stored or applied again.
    pub idempotency_key: Option<String>,
}

/// What the control envelope needs, read in the ingest transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportAck {
    pub desired_generation: i64,
    pub blocked: bool,
    /// Ops in `signed` or `delivered` wait for this host (never for a blocked customer).
    pub has_signed_ops: bool,
    /// An operator asked the agent to rotate its host key, and it has not yet.
    pub rotate_key: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostReportRow {
    pub id: i64,
    pub host_id: String,
    pub customer_id: String,
    pub received_at_ms: i64,
    pub applied_generation: i64,
    pub cpu_percent: f64,
    pub memory_used_bytes: i64,
    pub memory_total_bytes: i64,
    pub disk_used_bytes: i64,
    pub disk_total_bytes: i64,
    pub guests_total: i64,
    pub guests_running: i64,
    pub report_json: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewGuestReport {
    pub guest_id: String,
    pub host_id: String,
    pub customer_id: String,
    pub received_at_ms: i64,
    pub controller_version: Option<String>,
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<i64>,
    pub memory_total_bytes: Option<i64>,
    pub report_json: String,
    /// As on `NewHostReport`, scoped by the guest.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GuestReportRow {
    pub id: i64,
    pub guest_id: String,
    pub host_id: String,
    pub customer_id: String,
    pub received_at_ms: i64,
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<i64>,
    pub memory_total_bytes: Option<i64>,
    pub report_json: String,
}

// ---------------------------------------------------------------- signed ops and events

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignedOp {
    pub id: String,
    pub customer_id: String,
    pub host_id: String,
    pub guest_id: Option<String>,
    pub op_type: String,
    /// Canonical JSON, stored and served byte for byte.
    pub op_blob: String,
    /// Unique across all ops.
    pub nonce: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedOpRow {
    pub id: String,
    pub customer_id: String,
    pub host_id: String,
    pub guest_id: Option<String>,
    pub op_type: String,
    pub op_blob: String,
    pub signature: Option<String>,
    pub status: String,
    pub nonce: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub created_by: String,
    pub created_at_ms: i64,
    pub signed_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// JSON reported by the agent with the final status.
    pub result_json: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpFilter {
    pub host_id: Option<String>,
    pub customer_id: Option<String>,
    /// Any of these statuses; empty means all.
    pub statuses: Vec<String>,
    pub limit: u32,
}

/// One lifecycle step of an op, applied atomically with its event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpTransition {
    pub op_id: String,
    /// The op must currently be in one of these, else `Conflict("op_status")`.
    pub from: Vec<String>,
    pub to: String,
    /// Set with `signed`.
    pub signature: Option<String>,
    /// Set with the final statuses.
    pub result_json: Option<String>,
    /// When an executed op changes the desired state (e.g. the removed guest leaves it): the
    /// new desired JSON, published with generation + 1 in the same transaction.
    pub desired_after: Option<String>,
    /// With `desired_after`: the guest rows' mirrored specs, as in [`DesiredEdit`].
    pub guest_specs: Vec<(String, Option<String>)>,
    pub at_ms: i64,
    /// Recorded in the same transaction; its `op_id` is set by the store.
    pub event: NewEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub at_ms: i64,
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub customer_id: Option<String>,
    pub host_id: Option<String>,
    pub guest_id: Option<String>,
    pub op_id: Option<String>,
    /// JSON object.
    pub details_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub severity: String,
    pub customer_id: Option<String>,
    pub host_id: Option<String>,
    pub guest_id: Option<String>,
    pub op_id: Option<String>,
    pub details_json: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub customer_id: Option<String>,
    pub host_id: Option<String>,
    pub kind: Option<String>,
    /// Only events with `id > after_id` (for following the timeline).
    pub after_id: Option<i64>,
    /// Only events with `id < before_id` (the cursor of the timeline, read backwards).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// An operator edit of one host's desired state, applied in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredEdit {
    pub host_id: String,
    /// `Conflict("generation")` unless the host's generation is this one.
    pub expected_generation: Option<i64>,
    /// The new published desired state (benign changes applied); `None` leaves it and its
    /// generation alone (an edit with only destructive changes).
    pub desired_json: Option<String>,
    /// Destructive changes, inserted as `pending_signature`.
    pub ops: Vec<NewSignedOp>,
    pub events: Vec<NewEvent>,
    /// `guests.desired_spec_json` of the host's guest rows, mirrored from the new desired
    /// state: `(guest_id, spec JSON or None when the guest left it)`. Rows that do not exist
    /// are skipped.
    pub guest_specs: Vec<(String, Option<String>)>,
    pub at_ms: i64,
}

// ---------------------------------------------------------------- background work

/// How a liveness pass judges hosts. A host's age is `now - max(last_report_at, grace_since)`
/// (so a cloud that was down itself does not call every host down when it starts). Its
/// thresholds are `stale_after_ms` and `down_after_ms` scaled by how much longer than
/// `poll_interval_seconds` the interval it was last told is (`HostRow::poll_interval_seconds`;
/// never scaled below 1): a host told to report every 3,600 s where the configured interval is
/// 300 s is stale after twelve times `stale_after_ms`, the same number of missed reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessRule {
    pub now_ms: i64,
    pub stale_after_ms: i64,
    pub down_after_ms: i64,
    pub grace_since_ms: i64,
    /// The configured (floor) poll interval the thresholds are written for; at least 1.
    pub poll_interval_seconds: i64,
}

impl LivenessRule {
    /// The thresholds for a host told `told_seconds` (`None`: the configured interval), as
    /// the stores compute them in SQL; for tests and documentation.
    pub fn thresholds_for(&self, told_seconds: Option<i64>) -> (i64, i64) {
        let floor = self.poll_interval_seconds.max(1);
        let told = told_seconds.unwrap_or(floor).max(floor);
        (
            self.stale_after_ms.saturating_mul(told) / floor,
            self.down_after_ms.saturating_mul(told) / floor,
        )
    }
}

/// A liveness change of one host, with the event the store recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessTransition {
    pub host_id: String,
    pub customer_id: String,
    pub from: String,
    pub to: String,
    pub event_id: i64,
}

/// What the backup-deadline check reads per host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFacts {
    pub host_id: String,
    pub customer_id: String,
    pub desired_json: String,
    pub last_backups_json: String,
    pub backup_missed_json: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotificationLog {
    pub at_ms: i64,
    pub event_id: Option<i64>,
    pub customer_id: Option<String>,
    pub tier: String,
    pub channel: String,
    pub recipient: String,
    pub status: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationLogRow {
    pub id: i64,
    pub at_ms: i64,
    pub event_id: Option<i64>,
    pub customer_id: Option<String>,
    pub tier: String,
    pub channel: String,
    pub recipient: String,
    pub status: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneCounts {
    pub host_reports: u64,
    pub guest_reports: u64,
    pub events: u64,
    pub notifications: u64,
}

/// Liveness event kinds, one per target state.
pub mod liveness {
    pub const OK: &str = "ok";
    pub const STALE: &str = "stale";
    pub const DOWN: &str = "down";
    /// Not a stored state: what a host that never reported shows (and is filtered by).
    pub const NEVER: &str = "never";
    pub const EVENT_STALE: &str = "host_stale";
    pub const EVENT_DOWN: &str = "host_down";
    pub const EVENT_RECOVERED: &str = "host_recovered";
}

#[async_trait]
pub trait FleetStore: Send + Sync {
    // ---- customers ----
    /// `Conflict("id")` when the id is taken.
    async fn create_customer(&self, customer: &NewCustomer) -> StoreResult<CustomerRow>;
    async fn get_customer(&self, id: &str) -> StoreResult<Option<CustomerRow>>;
    /// Ordered by id.
    async fn list_customers(&self) -> StoreResult<Vec<CustomerRow>>;
    /// At most `limit` customers whose id sorts after `after_id` (bytewise), ordered by id:
    /// the customers listing's keyset cursor.
    async fn list_customers_page(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRow>>;
    /// The host and awaiting-signature op counts of these customers in one statement, whatever
    /// their number: one entry per listed customer that exists (zeros when it has nothing),
    /// ordered by id; unknown ids are absent.
    async fn customer_fleet_counts(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<Vec<CustomerCounts>>;
    /// `NotFound` when absent.
    async fn update_customer(&self, id: &str, update: &CustomerUpdate) -> StoreResult<CustomerRow>;
    /// Deletes the customer with its hosts, guests, reports, ops and notification state in
    /// one transaction; events stay (the timeline is history). `NotFound` when absent.
    async fn delete_customer(&self, id: &str) -> StoreResult<()>;

    // ---- hosts ----
    /// Inserts the host unless its customer already has `max_hosts_per_customer` hosts
    /// (`Conflict("host_limit")`), checked in the same transaction. `Conflict("id")` when the
    /// id is taken, `NotFound` when the customer does not exist.
    async fn create_host(
        &self,
        host: &NewHost,
        max_hosts_per_customer: u32,
    ) -> StoreResult<HostRow>;
    async fn get_host(&self, id: &str) -> StoreResult<Option<HostRow>>;
    async fn get_host_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<HostRow>>;
    /// Ordered by id; all hosts, or one customer's.
    async fn list_hosts(&self, customer_id: Option<&str>) -> StoreResult<Vec<HostRow>>;
    /// At most `listing.limit` hosts after `listing.after` in the listing's order, narrowed
    /// by customer and liveness. The listing's keyset cursor: bounded whatever the fleet holds.
    async fn list_hosts_page(&self, listing: &HostListing) -> StoreResult<Vec<HostRow>>;
    /// Applies an operator edit atomically (see [`DesiredEdit`]); returns the host after it.
    async fn apply_desired_edit(&self, edit: &DesiredEdit) -> StoreResult<HostRow>;
    /// Republishes every host of the customer (generation + 1, same desired state) so agents
    /// refetch and reconverge; returns how many hosts.
    async fn bump_customer_generations(&self, customer_id: &str, at_ms: i64) -> StoreResult<u64>;
    /// Sets or clears recovery mode. `NotFound` when absent.
    async fn set_recovery_mode(&self, host_id: &str, until_ms: Option<i64>)
        -> StoreResult<HostRow>;
    /// Replaces the host key if recovery mode is armed at `now_ms` (`until > now`), clearing
    /// it, any key kept through an earlier rotation's grace and any rotation request in the
    /// same transaction (the old keys stop at once); `Conflict("recovery_not_armed")`
    /// otherwise.
    async fn rotate_host_key(
        &self,
        host_id: &str,
        new_key_hash: &str,
        hostname: &str,
        agent_version: &str,
        now_ms: i64,
    ) -> StoreResult<HostRow>;
    /// Replaces the host key with `rotation.new_key_hash` and keeps the replaced hash valid
    /// until `previous_valid_until_ms`, with the sealed new key for a repeated call, and clears
    /// an operator's rotation request, in one transaction; a later rotation replaces the kept
    /// row, and the recovery rotation ([`FleetStore::rotate_host_key`]) drops it. `NotFound` when the host is gone,
    /// `Conflict("key_rotated")` when its key is no longer `expected_key_hash` (another
    /// rotation won).
    async fn rotate_host_key_with_grace(
        &self,
        rotation: &HostKeyRotation,
    ) -> StoreResult<HostKeyRotationRow>;
    /// Asks the host's agent to rotate its key: report acks say `rotate_key` until
    /// [`FleetStore::rotate_host_key_with_grace`] (or a recovery rotation) clears it. Asking
    /// again keeps the first request's time. `NotFound` when the host does not exist.
    async fn request_host_key_rotation(
        &self,
        host_id: &str,
        requested_by: &str,
        at_ms: i64,
    ) -> StoreResult<()>;
    /// The host's latest graced rotation, if one is kept.
    async fn get_host_key_rotation(&self, host_id: &str)
        -> StoreResult<Option<HostKeyRotationRow>>;
    /// The kept rotation whose replaced key has this hash, whether or not its grace is over
    /// (the caller compares with its clock).
    async fn get_host_key_rotation_by_previous_hash(
        &self,
        key_hash: &str,
    ) -> StoreResult<Option<HostKeyRotationRow>>;
    /// Stores the DR record verbatim. `NotFound` when absent.
    async fn put_escrow(
        &self,
        host_id: &str,
        backup_namespace: &str,
        repository_fingerprint: &str,
        wrapped_key: &str,
        at_ms: i64,
    ) -> StoreResult<()>;

    // ---- guests ----
    /// `Conflict("id")` when the id is taken.
    async fn create_guest(&self, guest: &NewGuest) -> StoreResult<GuestRow>;
    async fn get_guest(&self, id: &str) -> StoreResult<Option<GuestRow>>;
    async fn get_guest_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<GuestRow>>;
    /// Ordered by id, narrowed by host and/or customer.
    async fn list_guests(
        &self,
        host_id: Option<&str>,
        customer_id: Option<&str>,
    ) -> StoreResult<Vec<GuestRow>>;

    // ---- report ingest (group commit) ----
    /// Records a batch of host reports in one transaction: inserts each into `host_reports`,
    /// updates the host's reality columns, updates the listed guests of that host, and reads
    /// what the envelope needs. One entry per report, in order: `NotFound` for a host that is
    /// gone (recording nothing for it). The outer error means nothing was recorded.
    async fn ingest_host_reports(
        &self,
        reports: &[NewHostReport],
    ) -> StoreResult<Vec<StoreResult<ReportAck>>>;
    /// Same for guest reports: inserts into `guest_reports` and stamps the guest's
    /// `last_report_at_ms` and `controller_version`.
    async fn ingest_guest_reports(
        &self,
        reports: &[NewGuestReport],
    ) -> StoreResult<Vec<StoreResult<()>>>;
    /// Newest first.
    async fn list_host_reports(&self, host_id: &str, limit: u32)
        -> StoreResult<Vec<HostReportRow>>;
    /// Newest first.
    async fn list_guest_reports(
        &self,
        guest_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<GuestReportRow>>;

    // ---- signed ops ----
    async fn get_op(&self, id: &str) -> StoreResult<Option<SignedOpRow>>;
    /// Newest first.
    async fn list_ops(&self, filter: &OpFilter) -> StoreResult<Vec<SignedOpRow>>;
    /// Applies one lifecycle step with its event (and, for an executed op, the desired-state
    /// change) atomically. `NotFound`, or `Conflict("op_status")` when the op is not in one
    /// of `from`.
    async fn transition_op(&self, transition: &OpTransition) -> StoreResult<SignedOpRow>;
    /// The ops an agent fetches: moves this host's `signed` ops to `delivered` (with a
    /// `op_delivered` event each) and returns them with those already `delivered`, oldest
    /// first, excluding expired ones (`expires_at_ms < now_ms`). Empty for a blocked customer.
    async fn deliver_ops(&self, host_id: &str, now_ms: i64) -> StoreResult<Vec<SignedOpRow>>;
    /// Moves `pending_signature`, `signed` and `delivered` ops with `expires_at_ms < now_ms` to
    /// `expired`, with an `op_expired` event each; returns them.
    async fn expire_ops(&self, now_ms: i64) -> StoreResult<Vec<SignedOpRow>>;

    // ---- events ----
    /// Returns the ids, in order.
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<i64>>;
    /// Newest first, unless `after_id` is set: then oldest first (following).
    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<EventRow>>;

    // ---- background work ----
    /// One liveness pass over every host that has reported and whose customer is active,
    /// judged by `rule` (see [`LivenessRule`]): an age at or past the host's down threshold is
    /// `down`, past its stale threshold `stale`, else `ok`. Each host whose state changes is
    /// updated and gets one event (`host_stale`, `host_down`, or `host_recovered` when it
    /// returns to `ok`), in one transaction; returns the changes, ordered by host id. A fixed
    /// number of statements whatever the fleet's size or the number of changes.
    async fn liveness_pass(&self, rule: &LivenessRule) -> StoreResult<Vec<LivenessTransition>>;
    /// Enrolled hosts, of every customer: the fleet size the adaptive poll interval is sized
    /// for. One statement over the table; the cloud calls it once per checker interval and
    /// caches the answer, never per request.
    async fn count_hosts(&self) -> StoreResult<u64>;
    /// Hosts that have reported, are not `down`, and whose customer is active.
    async fn list_backup_facts(&self) -> StoreResult<Vec<BackupFacts>>;
    /// Writes the checker's overdue set for a host with its events, atomically.
    async fn set_backup_missed(
        &self,
        host_id: &str,
        backup_missed_json: &str,
        events: &[NewEvent],
    ) -> StoreResult<Vec<i64>>;
    /// Takes or renews the lease `name` for `holder` until `now + ttl` if it is free, expired
    /// or already this holder's; `false` when another holder has it. What makes once-only
    /// work safe with several cloud replicas on one database.
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool>;
    /// Deletes reports and notification log entries received before `reports_before_ms`,
    /// and events before `events_before_ms`.
    async fn prune_fleet(
        &self,
        reports_before_ms: i64,
        events_before_ms: i64,
    ) -> StoreResult<PruneCounts>;

    // ---- notifications ----
    /// Cooldown gate: if `key` was never sent, or last sent at or before
    /// `now - cooldown_ms`, or `bypass`, stamps it `now` and returns `true`; else `false`.
    /// Atomic, so two replicas never both send.
    async fn claim_notification(
        &self,
        key: &str,
        customer_id: Option<&str>,
        now_ms: i64,
        cooldown_ms: i64,
        bypass: bool,
    ) -> StoreResult<bool>;
    async fn log_notification(&self, entry: &NewNotificationLog) -> StoreResult<i64>;
    /// Newest first.
    async fn list_notifications(&self, limit: u32) -> StoreResult<Vec<NotificationLogRow>>;
}
