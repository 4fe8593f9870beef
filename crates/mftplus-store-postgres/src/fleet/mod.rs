//! Fleet persistence; see `mftplus_store::FleetStore`.
//!
//! Like the rest of this crate: what must be atomic is one statement or one transaction, rows
//! that a step depends on are locked (`FOR UPDATE`) before it reads them, and batches are
//! set-based (`unnest` of parameter arrays), so their round trips do not grow with their size.
//! The column lists and row mappers live here, the statements in one file per area.

mod customers;
mod hosts;
mod jobs;
mod key_rotation;
mod ops;
mod reports;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mftplus_store::{
    BackupFacts, CustomerCounts, CustomerRow, CustomerUpdate, DesiredEdit, EventFilter, EventRow,
    FleetStore, GuestReportRow, GuestRow, HostKeyRotation, HostKeyRotationRow, HostListing,
    HostReportRow, HostRow, LivenessRule, LivenessTransition, NewCustomer, NewEvent, NewGuest,
    NewGuestReport, NewHost, NewHostReport, NewNotificationLog, NotificationLogRow, OpFilter,
    OpTransition, PruneCounts, ReportAck, SignedOpRow, StoreResult,
};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::{sql, PostgresStore};

/// Op statuses as stored (the wire names of `mftplus_types::fleet::op_status`).
pub(crate) mod op_status {
    pub const PENDING_SIGNATURE: &str = "pending_signature";
    pub const SIGNED: &str = "signed";
    pub const DELIVERED: &str = "delivered";
    pub const EXPIRED: &str = "expired";
    /// The statuses that end an op's life, which stamp `finished_at_ms`.
    pub const FINAL: [&str; 4] = ["executed", "failed", EXPIRED, "rejected"];
}

pub(crate) const ACTIVE: &str = "active";
pub(crate) const BLOCKED: &str = "blocked";

pub(crate) const CUSTOMER_COLUMNS: &str = "id, name, email, domain, locale, status, \
     retrieval_password_hash, config_json, created_at_ms, updated_at_ms";

/// The checker's liveness of the `hosts` row in scope: its row in the narrow `host_liveness`
/// table (migration 0015), created with the host; `ok` should one ever be missing (and for
/// the host an `INSERT … RETURNING` is creating, whose row comes next).
macro_rules! liveness_of_host {
    () => {
        "COALESCE((SELECT l.liveness FROM host_liveness l WHERE l.host_id = hosts.id), 'ok')"
    };
}
pub(crate) use liveness_of_host;

/// Selected from, or returned by a write to, `hosts` (unaliased: the liveness subquery names
/// the table).
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

pub(crate) fn customer_from_row(row: &Row) -> StoreResult<CustomerRow> {
    Ok(CustomerRow {
        id: row.try_get(0).db()?,
        name: row.try_get(1).db()?,
        email: row.try_get(2).db()?,
        domain: row.try_get(3).db()?,
        locale: row.try_get(4).db()?,
        status: row.try_get(5).db()?,
        retrieval_password_hash: row.try_get(6).db()?,
        config_json: row.try_get(7).db()?,
        created_at_ms: row.try_get(8).db()?,
        updated_at_ms: row.try_get(9).db()?,
    })
}

pub(crate) fn host_from_row(row: &Row) -> StoreResult<HostRow> {
    Ok(HostRow {
        id: row.try_get(0).db()?,
        customer_id: row.try_get(1).db()?,
        key_hash: row.try_get(2).db()?,
        hostname: row.try_get(3).db()?,
        platform: row.try_get(4).db()?,
        agent_version: row.try_get(5).db()?,
        controller_version: row.try_get(6).db()?,
        applied_generation: row.try_get(7).db()?,
        last_report_at_ms: row.try_get(8).db()?,
        last_backups_json: row.try_get(9).db()?,
        pending_signature_json: row.try_get(10).db()?,
        desired_json: row.try_get(11).db()?,
        desired_generation: row.try_get(12).db()?,
        desired_updated_at_ms: row.try_get(13).db()?,
        recovery_mode_until_ms: row.try_get(14).db()?,
        backup_namespace: row.try_get(15).db()?,
        repository_fingerprint: row.try_get(16).db()?,
        escrow: row.try_get(17).db()?,
        escrow_at_ms: row.try_get(18).db()?,
        liveness: row.try_get(19).db()?,
        backup_missed_json: row.try_get(20).db()?,
        enrolled_at_ms: row.try_get(21).db()?,
        poll_interval_seconds: row.try_get(22).db()?,
    })
}

pub(crate) fn guest_from_row(row: &Row) -> StoreResult<GuestRow> {
    Ok(GuestRow {
        id: row.try_get(0).db()?,
        customer_id: row.try_get(1).db()?,
        host_id: row.try_get(2).db()?,
        key_hash: row.try_get(3).db()?,
        display_name: row.try_get(4).db()?,
        desired_spec_json: row.try_get(5).db()?,
        controller_version: row.try_get(6).db()?,
        status: row.try_get(7).db()?,
        last_seen_at_ms: row.try_get(8).db()?,
        last_report_at_ms: row.try_get(9).db()?,
        created_at_ms: row.try_get(10).db()?,
    })
}

pub(crate) fn op_from_row(row: &Row) -> StoreResult<SignedOpRow> {
    Ok(SignedOpRow {
        id: row.try_get(0).db()?,
        customer_id: row.try_get(1).db()?,
        host_id: row.try_get(2).db()?,
        guest_id: row.try_get(3).db()?,
        op_type: row.try_get(4).db()?,
        op_blob: row.try_get(5).db()?,
        signature: row.try_get(6).db()?,
        status: row.try_get(7).db()?,
        nonce: row.try_get(8).db()?,
        issued_at_ms: row.try_get(9).db()?,
        expires_at_ms: row.try_get(10).db()?,
        created_by: row.try_get(11).db()?,
        created_at_ms: row.try_get(12).db()?,
        signed_at_ms: row.try_get(13).db()?,
        delivered_at_ms: row.try_get(14).db()?,
        finished_at_ms: row.try_get(15).db()?,
        result_json: row.try_get(16).db()?,
    })
}

pub(crate) fn event_from_row(row: &Row) -> StoreResult<EventRow> {
    Ok(EventRow {
        id: row.try_get(0).db()?,
        at_ms: row.try_get(1).db()?,
        kind: row.try_get(2).db()?,
        severity: row.try_get(3).db()?,
        customer_id: row.try_get(4).db()?,
        host_id: row.try_get(5).db()?,
        guest_id: row.try_get(6).db()?,
        op_id: row.try_get(7).db()?,
        details_json: row.try_get(8).db()?,
    })
}

/// Inserts the events in one statement; returns their ids in the order given.
pub(crate) async fn insert_events<C: GenericClient>(
    client: &C,
    events: &[NewEvent],
) -> StoreResult<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let at: Vec<i64> = events.iter().map(|e| e.at_ms).collect();
    let kind: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let severity: Vec<&str> = events.iter().map(|e| e.severity.as_str()).collect();
    let customer: Vec<Option<&str>> = events.iter().map(|e| e.customer_id.as_deref()).collect();
    let host: Vec<Option<&str>> = events.iter().map(|e| e.host_id.as_deref()).collect();
    let guest: Vec<Option<&str>> = events.iter().map(|e| e.guest_id.as_deref()).collect();
    let op: Vec<Option<&str>> = events.iter().map(|e| e.op_id.as_deref()).collect();
    let details: Vec<&str> = events.iter().map(|e| e.details_json.as_str()).collect();
    // Ids come from one sequence in insertion order, which follows `ORDER BY ord`; sorting
    // the returned ids therefore restores the caller's order.
    let mut ids = sql::query(
        client,
        "INSERT INTO events (at_ms, kind, severity, customer_id, host_id, guest_id, op_id, \
         details_json) \
         SELECT at_ms, kind, severity, customer_id, host_id, guest_id, op_id, details_json \
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[]) WITH ORDINALITY \
         AS e(at_ms, kind, severity, customer_id, host_id, guest_id, op_id, details_json, ord) \
         ORDER BY ord RETURNING id",
        &[
            &at, &kind, &severity, &customer, &host, &guest, &op, &details,
        ],
    )
    .await?
    .iter()
    .map(|row| row.try_get(0).db())
    .collect::<StoreResult<Vec<i64>>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// Mirrors desired specs onto this host's guest rows; other hosts' guests and unknown ids are
/// left alone.
pub(crate) async fn mirror_guest_specs<C: GenericClient>(
    client: &C,
    host_id: &str,
    specs: &[(String, Option<String>)],
) -> StoreResult<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = specs.iter().map(|(id, _)| id.as_str()).collect();
    let values: Vec<Option<&str>> = specs.iter().map(|(_, spec)| spec.as_deref()).collect();
    sql::execute(
        client,
        "UPDATE guests SET desired_spec_json = s.spec \
         FROM unnest($2::text[], $3::text[]) AS s(id, spec) \
         WHERE guests.id = s.id AND guests.host_id = $1",
        &[&host_id, &ids, &values],
    )
    .await?;
    Ok(())
}

/// Publishes a new desired state: generation + 1.
pub(crate) async fn publish_desired<C: GenericClient>(
    client: &C,
    host_id: &str,
    desired_json: &str,
    at_ms: i64,
) -> StoreResult<u64> {
    sql::execute(
        client,
        "UPDATE hosts SET desired_json = $2, desired_generation = desired_generation + 1, \
         desired_updated_at_ms = $3 WHERE id = $1",
        &[&host_id, &desired_json, &at_ms],
    )
    .await
}

/// Runs `$body` with `$tx` bound to a fresh transaction and commits when it returns `Ok`;
/// on `Err` the transaction is dropped, which rolls it back.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = sql::begin(&mut client).await?;
        let value = $body.await?;
        sql::commit($tx).await?;
        Ok(value)
    }};
}

#[async_trait]
impl FleetStore for PostgresStore {
    async fn create_customer(&self, customer: &NewCustomer) -> StoreResult<CustomerRow> {
        customers::create(&self.client().await?, customer).await
    }

    async fn get_customer(&self, id: &str) -> StoreResult<Option<CustomerRow>> {
        customers::get(&self.client().await?, id).await
    }

    async fn list_customers(&self) -> StoreResult<Vec<CustomerRow>> {
        customers::list(&self.client().await?).await
    }

    async fn list_customers_page(
        &self,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<CustomerRow>> {
        customers::list_page(&self.client().await?, after_id, limit).await
    }

    async fn customer_fleet_counts(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<Vec<CustomerCounts>> {
        customers::fleet_counts(&self.client().await?, customer_ids).await
    }

    async fn update_customer(&self, id: &str, update: &CustomerUpdate) -> StoreResult<CustomerRow> {
        customers::update(&self.client().await?, id, update).await
    }

    async fn delete_customer(&self, id: &str) -> StoreResult<()> {
        in_tx!(self, |tx| customers::delete(&tx, id))
    }

    async fn create_host(
        &self,
        host: &NewHost,
        max_hosts_per_customer: u32,
    ) -> StoreResult<HostRow> {
        in_tx!(self, |tx| hosts::create(&tx, host, max_hosts_per_customer))
    }

    async fn get_host(&self, id: &str) -> StoreResult<Option<HostRow>> {
        hosts::load(&self.client().await?, "id", id).await
    }

    async fn get_host_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<HostRow>> {
        hosts::load(&self.client().await?, "key_hash", key_hash).await
    }

    async fn list_hosts(&self, customer_id: Option<&str>) -> StoreResult<Vec<HostRow>> {
        hosts::list(&self.client().await?, customer_id).await
    }

    async fn list_hosts_page(&self, listing: &HostListing) -> StoreResult<Vec<HostRow>> {
        hosts::list_page(&self.client().await?, listing).await
    }

    async fn apply_desired_edit(&self, edit: &DesiredEdit) -> StoreResult<HostRow> {
        in_tx!(self, |tx| hosts::apply_desired_edit(&tx, edit))
    }

    async fn bump_customer_generations(&self, customer_id: &str, at_ms: i64) -> StoreResult<u64> {
        hosts::bump_generations(&self.client().await?, customer_id, at_ms).await
    }

    async fn set_recovery_mode(
        &self,
        host_id: &str,
        until_ms: Option<i64>,
    ) -> StoreResult<HostRow> {
        hosts::set_recovery_mode(&self.client().await?, host_id, until_ms).await
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
            host_id,
            new_key_hash,
            hostname,
            agent_version,
            now_ms,
        };
        in_tx!(self, |tx| hosts::rotate_key(&tx, &rotation))
    }

    async fn rotate_host_key_with_grace(
        &self,
        rotation: &HostKeyRotation,
    ) -> StoreResult<HostKeyRotationRow> {
        in_tx!(self, |tx| key_rotation::rotate(&tx, rotation))
    }

    async fn request_host_key_rotation(
        &self,
        host_id: &str,
        requested_by: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        key_rotation::request(&self.client().await?, host_id, requested_by, at_ms).await
    }

    async fn get_host_key_rotation(
        &self,
        host_id: &str,
    ) -> StoreResult<Option<HostKeyRotationRow>> {
        key_rotation::load(&self.client().await?, "host_id", host_id).await
    }

    async fn get_host_key_rotation_by_previous_hash(
        &self,
        key_hash: &str,
    ) -> StoreResult<Option<HostKeyRotationRow>> {
        key_rotation::load(&self.client().await?, "previous_key_hash", key_hash).await
    }

    async fn put_escrow(
        &self,
        host_id: &str,
        backup_namespace: &str,
        repository_fingerprint: &str,
        wrapped_key: &str,
        at_ms: i64,
    ) -> StoreResult<()> {
        hosts::put_escrow(
            &self.client().await?,
            [
                host_id,
                backup_namespace,
                repository_fingerprint,
                wrapped_key,
            ],
            at_ms,
        )
        .await
    }

    async fn create_guest(&self, guest: &NewGuest) -> StoreResult<GuestRow> {
        hosts::create_guest(&self.client().await?, guest).await
    }

    async fn get_guest(&self, id: &str) -> StoreResult<Option<GuestRow>> {
        hosts::get_guest(&self.client().await?, "id", id).await
    }

    async fn get_guest_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<GuestRow>> {
        hosts::get_guest(&self.client().await?, "key_hash", key_hash).await
    }

    async fn list_guests(
        &self,
        host_id: Option<&str>,
        customer_id: Option<&str>,
    ) -> StoreResult<Vec<GuestRow>> {
        hosts::list_guests(&self.client().await?, host_id, customer_id).await
    }

    async fn ingest_host_reports(
        &self,
        reports: &[NewHostReport],
    ) -> StoreResult<Vec<StoreResult<ReportAck>>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        in_tx!(self, |tx| reports::ingest_host(&tx, reports))
    }

    async fn ingest_guest_reports(
        &self,
        reports: &[NewGuestReport],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        in_tx!(self, |tx| reports::ingest_guest(&tx, reports))
    }

    async fn list_host_reports(
        &self,
        host_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<HostReportRow>> {
        reports::list_host(&self.client().await?, host_id, limit).await
    }

    async fn list_guest_reports(
        &self,
        guest_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<GuestReportRow>> {
        reports::list_guest(&self.client().await?, guest_id, limit).await
    }

    async fn get_op(&self, id: &str) -> StoreResult<Option<SignedOpRow>> {
        ops::load(&self.client().await?, id, false).await
    }

    async fn list_ops(&self, filter: &OpFilter) -> StoreResult<Vec<SignedOpRow>> {
        ops::list(&self.client().await?, filter).await
    }

    async fn transition_op(&self, transition: &OpTransition) -> StoreResult<SignedOpRow> {
        in_tx!(self, |tx| ops::transition(&tx, transition))
    }

    async fn deliver_ops(&self, host_id: &str, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
        in_tx!(self, |tx| ops::deliver(&tx, host_id, now_ms))
    }

    async fn expire_ops(&self, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
        ops::expire(&self.client().await?, now_ms).await
    }

    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
        insert_events(&self.client().await?, events).await
    }

    async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<EventRow>> {
        jobs::list_events(&self.client().await?, filter).await
    }

    async fn liveness_pass(&self, rule: &LivenessRule) -> StoreResult<Vec<LivenessTransition>> {
        in_tx!(self, |tx| jobs::liveness_pass(&tx, rule))
    }

    async fn count_hosts(&self) -> StoreResult<u64> {
        jobs::count_hosts(&self.client().await?).await
    }

    async fn list_backup_facts(&self) -> StoreResult<Vec<BackupFacts>> {
        jobs::list_backup_facts(&self.client().await?).await
    }

    async fn set_backup_missed(
        &self,
        host_id: &str,
        backup_missed_json: &str,
        events: &[NewEvent],
    ) -> StoreResult<Vec<i64>> {
        in_tx!(self, |tx| jobs::set_backup_missed(
            &tx,
            host_id,
            backup_missed_json,
            events
        ))
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> StoreResult<bool> {
        jobs::try_acquire_lease(&self.client().await?, name, holder, now_ms, ttl_ms).await
    }

    async fn prune_fleet(
        &self,
        reports_before_ms: i64,
        events_before_ms: i64,
    ) -> StoreResult<PruneCounts> {
        in_tx!(self, |tx| jobs::prune(
            &tx,
            reports_before_ms,
            events_before_ms
        ))
    }

    async fn claim_notification(
        &self,
        key: &str,
        customer_id: Option<&str>,
        now_ms: i64,
        cooldown_ms: i64,
        bypass: bool,
    ) -> StoreResult<bool> {
        jobs::claim_notification(
            &self.client().await?,
            key,
            customer_id,
            now_ms,
            cooldown_ms,
            bypass,
        )
        .await
    }

    async fn log_notification(&self, entry: &NewNotificationLog) -> StoreResult<i64> {
        jobs::log_notification(&self.client().await?, entry).await
    }

    async fn list_notifications(&self, limit: u32) -> StoreResult<Vec<NotificationLogRow>> {
        jobs::list_notifications(&self.client().await?, limit).await
    }
}
