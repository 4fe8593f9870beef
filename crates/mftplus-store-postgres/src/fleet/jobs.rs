//! Events, and the background work over the fleet: liveness, backup deadlines, job leases,
//! pruning and the notification cooldown gate.

use deadpool_postgres::GenericClient;
use mftplus_store::{
    liveness, BackupFacts, EventFilter, EventRow, LivenessTransition, NewEvent, NewNotificationLog,
    NotificationLogRow, PruneCounts, StoreError, StoreResult,
};

use super::{event_from_row, insert_events, ACTIVE, EVENT_COLUMNS};
use crate::error::ResultExt;
use crate::sql;

/// Newest first, or oldest first after `after_id` (following).
pub(crate) async fn list_events<C: GenericClient>(
    client: &C,
    filter: &EventFilter,
) -> StoreResult<Vec<EventRow>> {
    let order = if filter.after_id.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE ($1::text IS NULL OR customer_id = $1) \
         AND ($2::text IS NULL OR host_id = $2) AND ($3::text IS NULL OR kind = $3) \
         AND ($4::bigint IS NULL OR id > $4) AND ($5::bigint IS NULL OR id < $5) \
         ORDER BY id {order} LIMIT $6"
    );
    sql::query(
        client,
        &sql,
        &[
            &filter.customer_id,
            &filter.host_id,
            &filter.kind,
            &filter.after_id,
            &filter.before_id,
            &i64::from(filter.limit),
        ],
    )
    .await?
    .iter()
    .map(event_from_row)
    .collect()
}

/// One statement over the whole table: compute every host's state, update those that change
/// (only if nobody changed them since), and record one event each. `limits` is
/// `[now, stale_after, down_after, grace_since]`. The caller wraps this in a transaction.
pub(crate) async fn liveness_pass<C: GenericClient>(
    client: &C,
    limits: [i64; 4],
) -> StoreResult<Vec<LivenessTransition>> {
    let [now_ms, stale_after_ms, down_after_ms, grace_since_ms] = limits;
    // The CTEs' row counts are guesses, and right after many hosts enrolled (statistics not yet
    // analysed) the planner guessed a handful and chose nested loops over 100,000 x 100,000
    // rows: minutes instead of a second (bench/fleet_load.sh). Hash and merge joins are right
    // at any size for this whole-table pass, so nested loops are off for this transaction only.
    client
        .batch_execute("SET LOCAL enable_nestloop = off")
        .await
        .db()?;
    let rows = sql::query(
        client,
        "WITH judged AS (\
           SELECT h.id, h.customer_id, h.liveness AS old, h.last_report_at_ms, \
             CASE WHEN $1 - GREATEST(h.last_report_at_ms, $4) >= $3 THEN $7::text \
                  WHEN $1 - GREATEST(h.last_report_at_ms, $4) >= $2 THEN $6::text \
                  ELSE $5::text END AS new \
           FROM hosts h JOIN customers c ON c.id = h.customer_id \
           WHERE h.last_report_at_ms IS NOT NULL AND c.status = $8), \
         changed AS (\
           UPDATE hosts SET liveness = j.new FROM judged j \
           WHERE hosts.id = j.id AND j.new <> j.old AND hosts.liveness = j.old \
           RETURNING hosts.id, hosts.customer_id, j.old, j.new, j.last_report_at_ms), \
         logged AS (\
           INSERT INTO events (at_ms, kind, severity, customer_id, host_id, details_json) \
           SELECT $1, \
             CASE new WHEN $7 THEN $9 WHEN $6 THEN $10 ELSE $11 END, \
             CASE new WHEN $7 THEN 'critical' WHEN $6 THEN 'warning' ELSE 'info' END, \
             customer_id, id, \
             jsonb_build_object('from', old, 'to', new, \
               'last_report_at_ms', last_report_at_ms)::text \
           FROM changed ORDER BY id COLLATE \"C\" RETURNING id, host_id) \
         SELECT c.id, c.customer_id, c.old, c.new, l.id \
         FROM changed c JOIN logged l ON l.host_id = c.id ORDER BY c.id COLLATE \"C\"",
        &[
            &now_ms,
            &stale_after_ms,
            &down_after_ms,
            &grace_since_ms,
            &liveness::OK,
            &liveness::STALE,
            &liveness::DOWN,
            &ACTIVE,
            &liveness::EVENT_DOWN,
            &liveness::EVENT_STALE,
            &liveness::EVENT_RECOVERED,
        ],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LivenessTransition {
                host_id: row.try_get(0).db()?,
                customer_id: row.try_get(1).db()?,
                from: row.try_get(2).db()?,
                to: row.try_get(3).db()?,
                event_id: row.try_get(4).db()?,
            })
        })
        .collect()
}

pub(crate) async fn list_backup_facts<C: GenericClient>(
    client: &C,
) -> StoreResult<Vec<BackupFacts>> {
    sql::query(
        client,
        "SELECT h.id, h.customer_id, h.desired_json, h.last_backups_json, h.backup_missed_json \
         FROM hosts h JOIN customers c ON c.id = h.customer_id \
         WHERE h.last_report_at_ms IS NOT NULL AND h.liveness <> $1 AND c.status = $2 \
         ORDER BY h.id COLLATE \"C\"",
        &[&liveness::DOWN, &ACTIVE],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(BackupFacts {
            host_id: row.try_get(0).db()?,
            customer_id: row.try_get(1).db()?,
            desired_json: row.try_get(2).db()?,
            last_backups_json: row.try_get(3).db()?,
            backup_missed_json: row.try_get(4).db()?,
        })
    })
    .collect()
}

/// The caller wraps this in a transaction.
pub(crate) async fn set_backup_missed<C: GenericClient>(
    tx: &C,
    host_id: &str,
    backup_missed_json: &str,
    events: &[NewEvent],
) -> StoreResult<Vec<i64>> {
    let changed = sql::execute(
        tx,
        "UPDATE hosts SET backup_missed_json = $2 WHERE id = $1",
        &[&host_id, &backup_missed_json],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    insert_events(tx, events).await
}

/// One upsert whose update only happens when the lease is free to take: the row count is the
/// answer, and PostgreSQL's row lock makes two replicas' attempts take turns.
pub(crate) async fn try_acquire_lease<C: GenericClient>(
    client: &C,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> StoreResult<bool> {
    let changed = sql::execute(
        client,
        "INSERT INTO job_leases (name, holder, until_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
         WHERE job_leases.holder = excluded.holder OR job_leases.until_ms <= $4",
        &[&name, &holder, &now_ms.saturating_add(ttl_ms), &now_ms],
    )
    .await?;
    Ok(changed > 0)
}

/// The caller wraps this in a transaction.
pub(crate) async fn prune<C: GenericClient>(
    tx: &C,
    reports_before_ms: i64,
    events_before_ms: i64,
) -> StoreResult<PruneCounts> {
    // Keys live as long as the reports they guard.
    sql::execute(
        tx,
        "DELETE FROM report_idempotency WHERE received_at_ms < $1",
        &[&reports_before_ms],
    )
    .await?;
    let host_reports = sql::execute(
        tx,
        "DELETE FROM host_reports WHERE received_at_ms < $1",
        &[&reports_before_ms],
    )
    .await?;
    let guest_reports = sql::execute(
        tx,
        "DELETE FROM guest_reports WHERE received_at_ms < $1",
        &[&reports_before_ms],
    )
    .await?;
    let events = sql::execute(
        tx,
        "DELETE FROM events WHERE at_ms < $1",
        &[&events_before_ms],
    )
    .await?;
    let notifications = sql::execute(
        tx,
        "DELETE FROM notification_log WHERE at_ms < $1",
        &[&reports_before_ms],
    )
    .await?;
    Ok(PruneCounts {
        host_reports,
        guest_reports,
        events,
        notifications,
    })
}

/// Same shape as the lease: the conditional upsert is the atomic check-and-stamp.
pub(crate) async fn claim_notification<C: GenericClient>(
    client: &C,
    key: &str,
    customer_id: Option<&str>,
    now_ms: i64,
    cooldown_ms: i64,
    bypass: bool,
) -> StoreResult<bool> {
    let changed = sql::execute(
        client,
        "INSERT INTO customer_notifications (key, customer_id, last_sent_at_ms) \
         VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET \
         customer_id = excluded.customer_id, last_sent_at_ms = excluded.last_sent_at_ms \
         WHERE $5 OR customer_notifications.last_sent_at_ms <= $4",
        &[
            &key,
            &customer_id,
            &now_ms,
            &now_ms.saturating_sub(cooldown_ms),
            &bypass,
        ],
    )
    .await?;
    Ok(changed > 0)
}

pub(crate) async fn log_notification<C: GenericClient>(
    client: &C,
    entry: &NewNotificationLog,
) -> StoreResult<i64> {
    sql::query_one(
        client,
        "INSERT INTO notification_log (at_ms, event_id, customer_id, tier, channel, recipient, \
         status, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &entry.at_ms,
            &entry.event_id,
            &entry.customer_id,
            &entry.tier,
            &entry.channel,
            &entry.recipient,
            &entry.status,
            &entry.error,
        ],
    )
    .await?
    .try_get(0)
    .db()
}

pub(crate) async fn list_notifications<C: GenericClient>(
    client: &C,
    limit: u32,
) -> StoreResult<Vec<NotificationLogRow>> {
    sql::query(
        client,
        "SELECT id, at_ms, event_id, customer_id, tier, channel, recipient, status, error \
         FROM notification_log ORDER BY id DESC LIMIT $1",
        &[&i64::from(limit)],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(NotificationLogRow {
            id: row.try_get(0).db()?,
            at_ms: row.try_get(1).db()?,
            event_id: row.try_get(2).db()?,
            customer_id: row.try_get(3).db()?,
            tier: row.try_get(4).db()?,
            channel: row.try_get(5).db()?,
            recipient: row.try_get(6).db()?,
            status: row.try_get(7).db()?,
            error: row.try_get(8).db()?,
        })
    })
    .collect()
}
