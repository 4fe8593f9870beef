//! Events, and the background work over the fleet: liveness, backup deadlines, job leases,
//! pruning and the notification cooldown gate.

use deadpool_postgres::GenericClient;
use mftplus_store::{
    liveness, BackupFacts, EventFilter, EventRow, LivenessRule, LivenessTransition, NewEvent,
    NewNotificationLog, NotificationLogRow, PruneCounts, StoreError, StoreResult,
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

/// One statement over the whole fleet, whatever its size and however many hosts change:
/// judge every host, move those that change in `host_liveness` (only if nobody moved them
/// since), record one event each and answer the changes. The caller wraps it in a
/// transaction.
///
/// Measured at 100,000 hosts (docs/benchmarks.md, "Liveness pass"): the state lives in the
/// narrow `host_liveness` table, whose pages keep room for the new versions (HOT updates, no
/// index entry per change); the hosts' wide rows and their four indexes are only read. The
/// changes are judged once into a materialized set before anything joins them, so the steady
/// pass (no change) stops after one hash join instead of hashing the fleet three times, and
/// blocked customers are an anti-join against the few of them rather than a join with every
/// customer.
pub(crate) async fn liveness_pass<C: GenericClient>(
    client: &C,
    rule: &LivenessRule,
) -> StoreResult<Vec<LivenessTransition>> {
    // The CTEs' row counts are guesses, and right after many hosts enrolled (statistics not yet
    // analysed) the planner guessed a handful and chose nested loops over 100,000 x 100,000
    // rows: minutes instead of a second (bench/fleet_load.sh). Hash and merge joins are right
    // at any size for this whole-table pass, so nested loops are off for this transaction only.
    // The sorts of a pass where every host changes fit in memory with room to spare at
    // 100,000 hosts; on disk they cost a tenth of a second more.
    sql::batch(
        client,
        "SET LOCAL enable_nestloop = off; SET LOCAL work_mem = '64MB'",
    )
    .await?;
    let rows = sql::query(
        client,
        "WITH judged AS MATERIALIZED (\
           SELECT h.id, h.customer_id, l.liveness AS old, h.last_report_at_ms, t.new \
           FROM hosts h JOIN host_liveness l ON l.host_id = h.id, \
           LATERAL (SELECT CASE \
             WHEN $1 - GREATEST(h.last_report_at_ms, $4) \
               >= $3 * GREATEST(COALESCE(h.poll_interval_seconds, $5), $5) / $5 THEN $8::text \
             WHEN $1 - GREATEST(h.last_report_at_ms, $4) \
               >= $2 * GREATEST(COALESCE(h.poll_interval_seconds, $5), $5) / $5 THEN $7::text \
             ELSE $6::text END AS new) t \
           WHERE h.last_report_at_ms IS NOT NULL AND t.new <> l.liveness \
             AND NOT EXISTS (SELECT 1 FROM customers c \
               WHERE c.id = h.customer_id AND c.status <> $9)), \
         changed AS (\
           UPDATE host_liveness SET liveness = j.new FROM judged j \
           WHERE host_liveness.host_id = j.id AND host_liveness.liveness = j.old \
           RETURNING j.id, j.customer_id, j.old, j.new, j.last_report_at_ms) \
         INSERT INTO events (at_ms, kind, severity, customer_id, host_id, details_json) \
         SELECT $1, \
           CASE new WHEN $8 THEN $10 WHEN $7 THEN $11 ELSE $12 END, \
           CASE new WHEN $8 THEN 'critical' WHEN $7 THEN 'warning' ELSE 'info' END, \
           customer_id, id, \
           format('{\"from\":\"%s\",\"to\":\"%s\",\"last_report_at_ms\":%s}', old, new, \
             last_report_at_ms) \
         FROM changed ORDER BY id COLLATE \"C\" \
         RETURNING host_id, customer_id, kind, details_json, id",
        &[
            &rule.now_ms,
            &rule.stale_after_ms,
            &rule.down_after_ms,
            &rule.grace_since_ms,
            &rule.poll_interval_seconds.max(1),
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
    let mut transitions = rows
        .iter()
        .map(|row| {
            let kind: &str = row.try_get(2).db()?;
            let details: &str = row.try_get(3).db()?;
            Ok(LivenessTransition {
                host_id: row.try_get(0).db()?,
                customer_id: row.try_get(1).db()?,
                from: previous_state(details)?,
                to: state_after(kind).to_string(),
                event_id: row.try_get(4).db()?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING promises no order; bytewise by host id, as the trait does.
    transitions.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    Ok(transitions)
}

/// The state an event's host left: its details' `from`. Read here rather than with
/// `->> 'from'` in `RETURNING`, which parses 100,000 documents in the server for half a second.
fn previous_state(details: &str) -> StoreResult<String> {
    serde_json::from_str::<serde_json::Value>(details)
        .ok()
        .and_then(|details| Some(details.get("from")?.as_str()?.to_string()))
        .ok_or_else(|| StoreError::Backend(format!("liveness event details: {details}")))
}

/// The state a liveness event's host moved to.
fn state_after(kind: &str) -> &'static str {
    match kind {
        k if k == liveness::EVENT_DOWN => liveness::DOWN,
        k if k == liveness::EVENT_STALE => liveness::STALE,
        _ => liveness::OK,
    }
}

/// Every enrolled host.
pub(crate) async fn count_hosts<C: GenericClient>(client: &C) -> StoreResult<u64> {
    let count: i64 = sql::query_one(client, "SELECT COUNT(*) FROM hosts", &[])
        .await?
        .try_get(0)
        .db()?;
    Ok(count.max(0) as u64)
}

pub(crate) async fn list_backup_facts<C: GenericClient>(
    client: &C,
) -> StoreResult<Vec<BackupFacts>> {
    sql::query(
        client,
        "SELECT h.id, h.customer_id, h.desired_json, h.last_backups_json, h.backup_missed_json \
         FROM hosts h JOIN customers c ON c.id = h.customer_id \
           LEFT JOIN host_liveness l ON l.host_id = h.id \
         WHERE h.last_report_at_ms IS NOT NULL AND COALESCE(l.liveness, 'ok') <> $1 \
           AND c.status = $2 ORDER BY h.id COLLATE \"C\"",
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
