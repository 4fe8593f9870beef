//! Events, and the background work over the fleet: liveness, backup deadlines, job leases,
//! pruning and the notification cooldown gate.

use mftplus_store::{
    liveness, BackupFacts, EventFilter, EventRow, LivenessRule, LivenessTransition, NewEvent,
    NewNotificationLog, NotificationLogRow, PruneCounts, StoreError, StoreResult,
};
use rusqlite::{params, params_from_iter, types::Value, Connection, Transaction};

use super::{event_from_row, immediate, insert_event, EVENT_COLUMNS};
use crate::error::ResultExt;

const ACTIVE: &str = "active";

pub(crate) fn append_events(conn: &mut Connection, events: &[NewEvent]) -> StoreResult<Vec<i64>> {
    let tx = immediate(conn)?;
    let ids = events
        .iter()
        .map(|event| insert_event(&tx, event))
        .collect::<StoreResult<Vec<_>>>()?;
    tx.commit().db()?;
    Ok(ids)
}

pub(crate) fn list_events(conn: &Connection, filter: &EventFilter) -> StoreResult<Vec<EventRow>> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    for (column, value) in [
        ("customer_id", &filter.customer_id),
        ("host_id", &filter.host_id),
        ("kind", &filter.kind),
    ] {
        if let Some(value) = value {
            values.push(Value::Text(value.clone()));
            conditions.push(format!("{column} = ?{}", values.len()));
        }
    }
    if let Some(after_id) = filter.after_id {
        values.push(Value::Integer(after_id));
        conditions.push(format!("id > ?{}", values.len()));
    }
    if let Some(before_id) = filter.before_id {
        values.push(Value::Integer(before_id));
        conditions.push(format!("id < ?{}", values.len()));
    }
    values.push(Value::Integer(i64::from(filter.limit)));
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    // Following (`after_id`) reads forwards from a point; the timeline reads backwards.
    let order = if filter.after_id.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events {filter_sql} ORDER BY id {order} LIMIT ?{}",
        values.len()
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(values), event_from_row)?
                .collect()
        })
        .db()
}

/// A host's target state under the rule (`?1` now, `?2` stale after, `?3` down after, `?4`
/// grace since, `?5` the configured poll interval, `?6`..`?8` ok, stale, down): its
/// thresholds scale with the interval it was last told (`LivenessRule`).
const TARGET: &str = "CASE \
     WHEN ?1 - MAX(h.last_report_at_ms, ?4) \
          >= ?3 * MAX(COALESCE(h.poll_interval_seconds, ?5), ?5) / ?5 THEN ?8 \
     WHEN ?1 - MAX(h.last_report_at_ms, ?4) \
          >= ?2 * MAX(COALESCE(h.poll_interval_seconds, ?5), ?5) / ?5 THEN ?7 \
     ELSE ?6 END";

/// A fixed handful of set-based statements in one transaction, however many hosts there are
/// and however many change. The events are the pass's own record of what changed: judge
/// every host once, straight into one event per change (in host id order); move those hosts
/// in `host_liveness` from the new events; read the changes back from them.
///
/// Measured at 100,000 hosts (docs/benchmarks.md, "Liveness pass"): reading `hosts` in its
/// id index's order instead of the table's costs half a second of random page reads, so the
/// judging scan is `NOT INDEXED` and sorts the (few, or in the worst case all) changes
/// instead; inserting them in host id order keeps the events' host index appending; the state
/// lives in the narrow `host_liveness` table so a pass where every host changes rewrites
/// small rows, not every wide host row; and the changes are read back with a plain `SELECT`
/// rather than `RETURNING`, which buffers every row once more.
pub(crate) fn liveness_pass(
    conn: &mut Connection,
    rule: &LivenessRule,
) -> StoreResult<Vec<LivenessTransition>> {
    let tx = immediate(conn)?;
    // AUTOINCREMENT: every event this pass writes gets an id above this one. We hold the
    // write lock, so the ids above it are exactly this pass's events.
    let before: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .db()?;
    let judge = format!(
        "INSERT INTO events (at_ms, kind, severity, customer_id, host_id, details_json) \
         SELECT ?1, CASE new WHEN ?8 THEN ?10 WHEN ?7 THEN ?11 ELSE ?12 END, \
           CASE new WHEN ?8 THEN 'critical' WHEN ?7 THEN 'warning' ELSE 'info' END, \
           customer_id, id, \
           json_object('from', old, 'to', new, 'last_report_at_ms', last_report_at_ms) \
         FROM (\
           SELECT h.id, h.customer_id, l.liveness AS old, h.last_report_at_ms, {TARGET} AS new \
           FROM hosts h NOT INDEXED JOIN host_liveness l ON l.host_id = h.id \
             JOIN customers c ON c.id = h.customer_id \
           WHERE h.last_report_at_ms IS NOT NULL AND c.status = ?9) \
         WHERE new <> old ORDER BY id"
    );
    let changed = tx
        .prepare_cached(&judge)
        .and_then(|mut stmt| {
            stmt.execute(params![
                rule.now_ms,
                rule.stale_after_ms,
                rule.down_after_ms,
                rule.grace_since_ms,
                rule.poll_interval_seconds.max(1),
                liveness::OK,
                liveness::STALE,
                liveness::DOWN,
                ACTIVE,
                liveness::EVENT_DOWN,
                liveness::EVENT_STALE,
                liveness::EVENT_RECOVERED
            ])
        })
        .db()?;
    if changed == 0 {
        tx.commit().db()?;
        return Ok(Vec::new());
    }
    let new_state = params![
        before,
        liveness::EVENT_DOWN,
        liveness::EVENT_STALE,
        liveness::DOWN,
        liveness::STALE,
        liveness::OK
    ];
    let moved = tx
        .prepare_cached(
            "UPDATE host_liveness SET liveness = \
               CASE e.kind WHEN ?2 THEN ?4 WHEN ?3 THEN ?5 ELSE ?6 END \
             FROM events e WHERE e.id > ?1 AND host_liveness.host_id = e.host_id",
        )
        .and_then(|mut stmt| stmt.execute(new_state))
        .db()?;
    if moved != changed {
        return Err(StoreError::Backend(format!(
            "liveness pass moved {moved} hosts for {changed} changes"
        )));
    }
    let transitions = read_transitions(&tx, new_state)?;
    tx.commit().db()?;
    Ok(transitions)
}

/// The events this pass wrote (ids above `?1`), as changes: in id order, which is host id
/// order (bytewise, as the trait promises).
fn read_transitions(
    tx: &Transaction<'_>,
    new_state: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<LivenessTransition>> {
    tx.prepare_cached(
        "SELECT host_id, customer_id, details_json ->> 'from', \
           CASE kind WHEN ?2 THEN ?4 WHEN ?3 THEN ?5 ELSE ?6 END, id \
         FROM events WHERE id > ?1 ORDER BY id",
    )
    .and_then(|mut stmt| {
        stmt.query_map(new_state, |row| {
            Ok(LivenessTransition {
                host_id: row.get(0)?,
                customer_id: row.get(1)?,
                from: row.get(2)?,
                to: row.get(3)?,
                event_id: row.get(4)?,
            })
        })?
        .collect()
    })
    .db()
}

/// Every enrolled host: SQLite counts the smallest index of `hosts`.
pub(crate) fn count_hosts(conn: &Connection) -> StoreResult<u64> {
    conn.prepare_cached("SELECT COUNT(*) FROM hosts")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
        .db()
        .map(|count| count.max(0) as u64)
}

pub(crate) fn list_backup_facts(conn: &Connection) -> StoreResult<Vec<BackupFacts>> {
    conn.prepare_cached(
        "SELECT h.id, h.customer_id, h.desired_json, h.last_backups_json, h.backup_missed_json \
         FROM hosts h JOIN customers c ON c.id = h.customer_id \
           LEFT JOIN host_liveness l ON l.host_id = h.id \
         WHERE h.last_report_at_ms IS NOT NULL AND COALESCE(l.liveness, 'ok') <> ?1 \
           AND c.status = ?2 ORDER BY h.id",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![liveness::DOWN, ACTIVE], |row| {
            Ok(BackupFacts {
                host_id: row.get(0)?,
                customer_id: row.get(1)?,
                desired_json: row.get(2)?,
                last_backups_json: row.get(3)?,
                backup_missed_json: row.get(4)?,
            })
        })?
        .collect()
    })
    .db()
}

pub(crate) fn set_backup_missed(
    conn: &mut Connection,
    host_id: &str,
    backup_missed_json: &str,
    events: &[NewEvent],
) -> StoreResult<Vec<i64>> {
    let tx = immediate(conn)?;
    let changed = tx
        .prepare_cached("UPDATE hosts SET backup_missed_json = ?2 WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![host_id, backup_missed_json]))
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let ids = events
        .iter()
        .map(|event| insert_event(&tx, event))
        .collect::<StoreResult<Vec<_>>>()?;
    tx.commit().db()?;
    Ok(ids)
}

/// One upsert whose update only happens when the lease is free to take: the row count is the
/// answer.
pub(crate) fn try_acquire_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    now_ms: i64,
    ttl_ms: i64,
) -> StoreResult<bool> {
    conn.prepare_cached(
        "INSERT INTO job_leases (name, holder, until_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms \
         WHERE job_leases.holder = excluded.holder OR job_leases.until_ms <= ?4",
    )
    .and_then(|mut stmt| stmt.execute(params![name, holder, now_ms.saturating_add(ttl_ms), now_ms]))
    .db()
    .map(|changed| changed > 0)
}

pub(crate) fn prune(
    conn: &mut Connection,
    reports_before_ms: i64,
    events_before_ms: i64,
) -> StoreResult<PruneCounts> {
    let tx = immediate(conn)?;
    // Keys live as long as the reports they guard: a replay older than that is not expected.
    tx.prepare_cached("DELETE FROM report_idempotency WHERE received_at_ms < ?1")
        .and_then(|mut stmt| stmt.execute(params![reports_before_ms]))
        .db()?;
    let mut counts = [0_u64; 4];
    for (count, (sql, before)) in counts.iter_mut().zip([
        (
            "DELETE FROM host_reports WHERE received_at_ms < ?1",
            reports_before_ms,
        ),
        (
            "DELETE FROM guest_reports WHERE received_at_ms < ?1",
            reports_before_ms,
        ),
        ("DELETE FROM events WHERE at_ms < ?1", events_before_ms),
        (
            "DELETE FROM notification_log WHERE at_ms < ?1",
            reports_before_ms,
        ),
    ]) {
        *count = tx
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![before]))
            .db()? as u64;
    }
    tx.commit().db()?;
    let [host_reports, guest_reports, events, notifications] = counts;
    Ok(PruneCounts {
        host_reports,
        guest_reports,
        events,
        notifications,
    })
}

/// Same shape as the lease: the conditional upsert is the atomic check-and-stamp.
pub(crate) fn claim_notification(
    conn: &Connection,
    key: &str,
    customer_id: Option<&str>,
    now_ms: i64,
    cooldown_ms: i64,
    bypass: bool,
) -> StoreResult<bool> {
    conn.prepare_cached(
        "INSERT INTO customer_notifications (key, customer_id, last_sent_at_ms) \
         VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET \
         customer_id = excluded.customer_id, last_sent_at_ms = excluded.last_sent_at_ms \
         WHERE ?5 OR customer_notifications.last_sent_at_ms <= ?4",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            key,
            customer_id,
            now_ms,
            now_ms.saturating_sub(cooldown_ms),
            bypass
        ])
    })
    .db()
    .map(|changed| changed > 0)
}

pub(crate) fn log_notification(conn: &Connection, entry: &NewNotificationLog) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO notification_log (at_ms, event_id, customer_id, tier, channel, recipient, \
         status, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                entry.at_ms,
                entry.event_id,
                entry.customer_id,
                entry.tier,
                entry.channel,
                entry.recipient,
                entry.status,
                entry.error
            ],
            |row| row.get(0),
        )
    })
    .db()
}

pub(crate) fn list_notifications(
    conn: &Connection,
    limit: u32,
) -> StoreResult<Vec<NotificationLogRow>> {
    conn.prepare_cached(
        "SELECT id, at_ms, event_id, customer_id, tier, channel, recipient, status, error \
         FROM notification_log ORDER BY id DESC LIMIT ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![limit], |row| {
            Ok(NotificationLogRow {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                event_id: row.get(2)?,
                customer_id: row.get(3)?,
                tier: row.get(4)?,
                channel: row.get(5)?,
                recipient: row.get(6)?,
                status: row.get(7)?,
                error: row.get(8)?,
            })
        })?
        .collect()
    })
    .db()
}
