//! Fleet persistence; see `mftplus_store::FleetStore`.
//!
//! Like the rest of this crate: every write runs on the single writer connection, inside a
//! `BEGIN IMMEDIATE` transaction when it has more than one statement, with cached prepared
//! statements; reads use the reader pool. The column lists and row mappers live here, the
//! statements in one file per area.

mod customers;
mod hosts;
mod jobs;
mod key_rotation;
mod ops;
mod reports;

use async_trait::async_trait;
use mftplus_store::{
    BackupFacts, CustomerCounts, CustomerRow, CustomerUpdate, DesiredEdit, EventFilter, EventRow,
    FleetStore, GuestReportRow, GuestRow, HostKeyRotation, HostKeyRotationRow, HostListing,
    HostReportRow, HostRow, LivenessRule, LivenessTransition, NewCustomer, NewEvent, NewGuest,
    NewGuestReport, NewHost, NewHostReport, NewNotificationLog, NotificationLogRow, OpFilter,
    OpTransition, PruneCounts, ReportAck, SignedOpRow, StoreResult,
};
use rusqlite::{params, Connection, Row, Transaction, TransactionBehavior};

use crate::error::ResultExt;
use crate::SqliteStore;

/// Op statuses as stored (the wire names of `mftplus_types::fleet::op_status`).
pub(crate) mod op_status {
    pub const PENDING_SIGNATURE: &str = "pending_signature";
    pub const SIGNED: &str = "signed";
    pub const DELIVERED: &str = "delivered";
    pub const EXPIRED: &str = "expired";
    /// The statuses that end an op's life, which stamp `finished_at_ms`.
    pub const FINAL: [&str; 4] = ["executed", "failed", EXPIRED, "rejected"];
}

pub(crate) const BLOCKED: &str = "blocked";

pub(crate) const CUSTOMER_COLUMNS: &str = "id, name, email, domain, locale, status, \
     retrieval_password_hash, config_json, created_at_ms, updated_at_ms";

/// The checker's liveness of the `hosts` row in scope: its row in the narrow `host_liveness`
/// table (migration 0015), created with the host; `ok` should one ever be missing.
macro_rules! liveness_of_host {
    () => {
        "COALESCE((SELECT l.liveness FROM host_liveness l WHERE l.host_id = hosts.id), 'ok')"
    };
}
pub(crate) use liveness_of_host;

/// Selected `FROM hosts` (unaliased: the liveness subquery names the table).
pub(crate) const HOST_COLUMNS: &str = concat!(
    "id, customer_id, key_hash, hostname, platform, \
     agent_version, controller_version, applied_generation, last_report_at_ms, \
     last_backups_json, pending_signature_json, desired_json, desired_generation, \
     desired_updated_at_ms, recovery_mode_until_ms, backup_namespace, repository_fingerprint, \
     escrow, escrow_at_ms, ",
    liveness_of_host!(),
    ", backup_missed_json, enrolled_at_ms, poll_interval_seconds"
);

pub(crate) const GUEST_COLUMNS: &str = "id, customer_id, host_id, key_hash, display_name, \
     desired_spec_json, controller_version, status, last_seen_at_ms, last_report_at_ms, \
     created_at_ms";

pub(crate) const OP_COLUMNS: &str = "id, customer_id, host_id, guest_id, op_type, op_blob, \
     signature, status, nonce, issued_at_ms, expires_at_ms, created_by, created_at_ms, \
     signed_at_ms, delivered_at_ms, finished_at_ms, result_json";

pub(crate) const EVENT_COLUMNS: &str =
    "id, at_ms, kind, severity, customer_id, host_id, guest_id, op_id, details_json";

pub(crate) fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<CustomerRow> {
    Ok(CustomerRow {
        id: row.get(0)?,
        name: row.get(1)?,
        email: row.get(2)?,
        domain: row.get(3)?,
        locale: row.get(4)?,
        status: row.get(5)?,
        retrieval_password_hash: row.get(6)?,
        config_json: row.get(7)?,
        created_at_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
    })
}

pub(crate) fn host_from_row(row: &Row<'_>) -> rusqlite::Result<HostRow> {
    Ok(HostRow {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        key_hash: row.get(2)?,
        hostname: row.get(3)?,
        platform: row.get(4)?,
        agent_version: row.get(5)?,
        controller_version: row.get(6)?,
        applied_generation: row.get(7)?,
        last_report_at_ms: row.get(8)?,
        last_backups_json: row.get(9)?,
        pending_signature_json: row.get(10)?,
        desired_json: row.get(11)?,
        desired_generation: row.get(12)?,
        desired_updated_at_ms: row.get(13)?,
        recovery_mode_until_ms: row.get(14)?,
        backup_namespace: row.get(15)?,
        repository_fingerprint: row.get(16)?,
        escrow: row.get(17)?,
        escrow_at_ms: row.get(18)?,
        liveness: row.get(19)?,
        backup_missed_json: row.get(20)?,
        enrolled_at_ms: row.get(21)?,
        poll_interval_seconds: row.get(22)?,
    })
}

pub(crate) fn guest_from_row(row: &Row<'_>) -> rusqlite::Result<GuestRow> {
    Ok(GuestRow {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        host_id: row.get(2)?,
        key_hash: row.get(3)?,
        display_name: row.get(4)?,
        desired_spec_json: row.get(5)?,
        controller_version: row.get(6)?,
        status: row.get(7)?,
        last_seen_at_ms: row.get(8)?,
        last_report_at_ms: row.get(9)?,
        created_at_ms: row.get(10)?,
    })
}

pub(crate) fn op_from_row(row: &Row<'_>) -> rusqlite::Result<SignedOpRow> {
    Ok(SignedOpRow {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        host_id: row.get(2)?,
        guest_id: row.get(3)?,
        op_type: row.get(4)?,
        op_blob: row.get(5)?,
        signature: row.get(6)?,
        status: row.get(7)?,
        nonce: row.get(8)?,
        issued_at_ms: row.get(9)?,
        expires_at_ms: row.get(10)?,
        created_by: row.get(11)?,
        created_at_ms: row.get(12)?,
        signed_at_ms: row.get(13)?,
        delivered_at_ms: row.get(14)?,
        finished_at_ms: row.get(15)?,
        result_json: row.get(16)?,
    })
}

pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: row.get(0)?,
        at_ms: row.get(1)?,
        kind: row.get(2)?,
        severity: row.get(3)?,
        customer_id: row.get(4)?,
        host_id: row.get(5)?,
        guest_id: row.get(6)?,
        op_id: row.get(7)?,
        details_json: row.get(8)?,
    })
}

pub(crate) fn immediate(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .db()
}

/// Inserts one event inside the caller's transaction; returns its id.
pub(crate) fn insert_event(conn: &Connection, event: &NewEvent) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO events (at_ms, kind, severity, customer_id, host_id, guest_id, op_id, \
         details_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                event.at_ms,
                event.kind,
                event.severity,
                event.customer_id,
                event.host_id,
                event.guest_id,
                event.op_id,
                event.details_json
            ],
            |row| row.get(0),
        )
    })
    .db()
}

/// Mirrors desired specs onto this host's guest rows; other hosts' guests and unknown ids are
/// left alone.
pub(crate) fn mirror_guest_specs(
    conn: &Connection,
    host_id: &str,
    specs: &[(String, Option<String>)],
) -> StoreResult<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached("UPDATE guests SET desired_spec_json = ?3 WHERE id = ?1 AND host_id = ?2")
        .db()?;
    for (guest_id, spec) in specs {
        stmt.execute(params![guest_id, host_id, spec]).db()?;
    }
    Ok(())
}

/// Publishes a new desired state: generation + 1.
pub(crate) fn publish_desired(
    conn: &Connection,
    host_id: &str,
    desired_json: &str,
    at_ms: i64,
) -> StoreResult<usize> {
    conn.prepare_cached(
        "UPDATE hosts SET desired_json = ?2, desired_generation = desired_generation + 1, \
         desired_updated_at_ms = ?3 WHERE id = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![host_id, desired_json, at_ms]))
    .db()
}

#[async_trait]
impl FleetStore for SqliteStore {
    async fn create_customer(&self, customer: &NewCustomer) -> StoreResult<CustomerRow> {
        let customer = customer.clone();
        self.write(move |conn| customers::create(conn, &customer))
            .await
    }

    async fn get_customer(&self, id: &str) -> StoreResult<Option<CustomerRow>> {
        let id = id.to_owned();
        self.read(move |conn| customers::get(conn, &id)).await
    }

    async fn list_customers(&self) -> StoreResult<Vec<CustomerRow>> {
        self.read(|conn| customers::list(conn)).await
    }

    async fn list_customers_page(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRow>> {
        let after_id = after_id.map(str::to_owned);
        self.read(move |conn| customers::list_page(conn, after_id.as_deref(), limit))
            .await
    }

    async fn customer_fleet_counts(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<Vec<CustomerCounts>> {
        let customer_ids = customer_ids.to_vec();
        self.read(move |conn| customers::fleet_counts(conn, &customer_ids))
            .await
    }

    async fn update_customer(&self, id: &str, update: &CustomerUpdate) -> StoreResult<CustomerRow> {
        let (id, update) = (id.to_owned(), update.clone());
        self.write(move |conn| customers::update(conn, &id, &update))
            .await
    }

    async fn delete_customer(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| customers::delete(conn, &id)).await
    }

    async fn create_host(
        &self,
        host: &NewHost,
        max_hosts_per_customer: u32,
    ) -> StoreResult<HostRow> {
        let host = host.clone();
        self.write(move |conn| hosts::create(conn, &host, max_hosts_per_customer))
            .await
    }

    async fn get_host(&self, id: &str) -> StoreResult<Option<HostRow>> {
        let id = id.to_owned();
        self.read(move |conn| hosts::get(conn, &id)).await
    }

    async fn get_host_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<HostRow>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| hosts::get_by_key_hash(conn, &key_hash))
            .await
    }

    async fn list_hosts(&self, customer_id: Option<&str>) -> StoreResult<Vec<HostRow>> {
        let customer_id = customer_id.map(str::to_owned);
        self.read(move |conn| hosts::list(conn, customer_id.as_deref()))
            .await
    }

    async fn list_hosts_page(&self, listing: &HostListing) -> StoreResult<Vec<HostRow>> {
        let listing = listing.clone();
        self.read(move |conn| hosts::list_page(conn, &listing))
            .await
    }

    async fn apply_desired_edit(&self, edit: &DesiredEdit) -> StoreResult<HostRow> {
        let edit = edit.clone();
        self.write(move |conn| hosts::apply_desired_edit(conn, &edit))
            .await
    }

    async fn bump_customer_generations(&self, customer_id: &str, at_ms: i64) -> StoreResult<u64> {
        let customer_id = customer_id.to_owned();
        self.write(move |conn| hosts::bump_generations(conn, &customer_id, at_ms))
            .await
    }

    async fn set_recovery_mode(
        &self,
        host_id: &str,
        until_ms: Option<i64>,
    ) -> StoreResult<HostRow> {
        let host_id = host_id.to_owned();
        self.write(move |conn| hosts::set_recovery_mode(conn, &host_id, until_ms))
            .await
    }

    async fn rotate_host_key(
        &self,
        host_id: &str,
        new_key_hash: &str,
        hostname: &str,
        agent_version: &str,
        now_ms: i64,
    ) -> StoreResult<HostRow> {
        let rotation = hosts::KeyRotation {
            host_id: host_id.to_owned(),
            new_key_hash: new_key_hash.to_owned(),
            hostname: hostname.to_owned(),
            agent_version: agent_version.to_owned(),
            now_ms,
        };
        self.write(move |conn| hosts::rotate_key(conn, &rotation))
            .await
    }

    async fn rotate_host_key_with_grace(
        &self,
        rotation: &HostKeyRotation,
    ) -> StoreResult<HostKeyRotationRow> {
        let rotation = rotation.clone();
        self.write(move |conn| key_rotation::rotate(conn, &rotation))
            .await
    }

    async fn request_host_key_rotation(
        &self,
        host_id: &str,
        requested_by: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        let (host_id, requested_by) = (host_id.to_owned(), requested_by.to_owned());
        self.write(move |conn| key_rotation::request(conn, &host_id, &requested_by, at_ms))
            .await
    }

    async fn get_host_key_rotation(
        &self,
        host_id: &str,
    ) -> StoreResult<Option<HostKeyRotationRow>> {
        let host_id = host_id.to_owned();
        self.read(move |conn| key_rotation::load(conn, "host_id", &host_id))
            .await
    }

    async fn get_host_key_rotation_by_previous_hash(
        &self,
        key_hash: &str,
    ) -> StoreResult<Option<HostKeyRotationRow>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| key_rotation::load(conn, "previous_key_hash", &key_hash))
            .await
    }

    async fn put_escrow(
        &self,
        host_id: &str,
        backup_namespace: &str,
        repository_fingerprint: &str,
        wrapped_key: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        let values = [
            host_id.to_owned(),
            backup_namespace.to_owned(),
            repository_fingerprint.to_owned(),
            wrapped_key.to_owned(),
        ];
        self.write(move |conn| hosts::put_escrow(conn, &values, at_ms))
            .await
    }

    async fn create_guest(&self, guest: &NewGuest) -> StoreResult<GuestRow> {
        let guest = guest.clone();
        self.write(move |conn| hosts::create_guest(conn, &guest))
            .await
    }

    async fn get_guest(&self, id: &str) -> StoreResult<Option<GuestRow>> {
        let id = id.to_owned();
        self.read(move |conn| hosts::get_guest(conn, "id", &id))
            .await
    }

    async fn get_guest_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<GuestRow>> {
        let key_hash = key_hash.to_owned();
        self.read(move |conn| hosts::get_guest(conn, "key_hash", &key_hash))
            .await
    }

    async fn list_guests(
        &self,
        host_id: Option<&str>,
        customer_id: Option<&str>,
    ) -> StoreResult<Vec<GuestRow>> {
        let (host_id, customer_id) = (host_id.map(str::to_owned), customer_id.map(str::to_owned));
        self.read(move |conn| hosts::list_guests(conn, host_id.as_deref(), customer_id.as_deref()))
            .await
    }

    async fn ingest_host_reports(
        &self,
        reports: &[NewHostReport],
    ) -> StoreResult<Vec<StoreResult<ReportAck>>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let reports = reports.to_vec();
        self.write(move |conn| reports::ingest_host(conn, &reports))
            .await
    }

    async fn ingest_guest_reports(
        &self,
        reports: &[NewGuestReport],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let reports = reports.to_vec();
        self.write(move |conn| reports::ingest_guest(conn, &reports))
            .await
    }

    async fn list_host_reports(
        &self,
        host_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<HostReportRow>> {
        let host_id = host_id.to_owned();
        self.read(move |conn| reports::list_host(conn, &host_id, limit))
            .await
    }

    async fn list_guest_reports(
        &self,
        guest_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<GuestReportRow>> {
        let guest_id = guest_id.to_owned();
        self.read(move |conn| reports::list_guest(conn, &guest_id, limit))
            .await
    }

    async fn get_op(&self, id: &str) -> StoreResult<Option<SignedOpRow>> {
        let id = id.to_owned();
        self.read(move |conn| ops::get(conn, &id)).await
    }

    async fn list_ops(&self, filter: &OpFilter) -> StoreResult<Vec<SignedOpRow>> {
        let filter = filter.clone();
        self.read(move |conn| ops::list(conn, &filter)).await
    }

    async fn transition_op(&self, transition: &OpTransition) -> StoreResult<SignedOpRow> {
        let transition = transition.clone();
        self.write(move |conn| ops::transition(conn, &transition))
            .await
    }

    async fn deliver_ops(&self, host_id: &str, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
        let host_id = host_id.to_owned();
        self.write(move |conn| ops::deliver(conn, &host_id, now_ms))
            .await
    }

    async fn expire_ops(&self, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
        self.write(move |conn| ops::expire(conn, now_ms)).await
    }

    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let events = events.to_vec();
        self.write(move |conn| jobs::append_events(conn, &events))
            .await
    }

    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<EventRow>> {
        let filter = filter.clone();
        self.read(move |conn| jobs::list_events(conn, &filter))
            .await
    }

    async fn liveness_pass(&self, rule: &LivenessRule) -> StoreResult<Vec<LivenessTransition>> {
        let rule = *rule;
        self.write(move |conn| jobs::liveness_pass(conn, &rule))
            .await
    }

    async fn count_hosts(&self) -> StoreResult<u64> {
        self.read(|conn| jobs::count_hosts(conn)).await
    }

    async fn list_backup_facts(&self) -> StoreResult<Vec<BackupFacts>> {
        self.read(|conn| jobs::list_backup_facts(conn)).await
    }

    async fn set_backup_missed(
        &self,
        host_id: &str,
        backup_missed_json: &str,
        events: &[NewEvent],
    ) -> StoreResult<Vec<i64>> {
        let (host_id, missed, events) = (
            host_id.to_owned(),
            backup_missed_json.to_owned(),
            events.to_vec(),
        );
        self.write(move |conn| jobs::set_backup_missed(conn, &host_id, &missed, &events))
            .await
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |conn| jobs::try_acquire_lease(conn, &name, &holder, now_ms, ttl_ms))
            .await
    }

    async fn prune_fleet(
        &self,
        reports_before_ms: i64,
        events_before_ms: i64,
    ) -> StoreResult<PruneCounts> {
        self.write(move |conn| jobs::prune(conn, reports_before_ms, events_before_ms))
            .await
    }

    async fn claim_notification(
        &self,
        key: &str,
        customer_id: Option<&str>,
        now_ms: i64,
        cooldown_ms: i64,
        bypass: bool,
    ) -> StoreResult<bool> {
        let (key, customer_id) = (key.to_owned(), customer_id.map(str::to_owned));
        self.write(move |conn| {
            jobs::claim_notification(
                conn,
                &key,
                customer_id.as_deref(),
                now_ms,
                cooldown_ms,
                bypass,
            )
        })
        .await
    }

    async fn log_notification(&self, entry: &NewNotificationLog) -> StoreResult<i64> {
        let entry = entry.clone();
        self.write(move |conn| jobs::log_notification(conn, &entry))
            .await
    }

    async fn list_notifications(&self, limit: u32) -> StoreResult<Vec<NotificationLogRow>> {
        self.read(move |conn| jobs::list_notifications(conn, limit))
            .await
    }
}
