//! Events, and the background work over the fleet: liveness, backup deadlines, job leases,
//! pruning and the notification cooldown gate.

use mftplus_store::{
    liveness, BackupFacts, EventFilter, EventRow, LivenessTransition, NewEvent, NewNotificationLog,
    NotificationLogRow, PruneCounts, StoreError, StoreResult,
};
use rusqlite::{params, params_from_iter, types::Value, Connection};

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

pub(crate) struct LivenessLimits {
    pub now_ms: i64,
    pub stale_after_ms: i64,
    pub down_after_ms: i64,
    pub grace_since_ms: i64,
}

fn liveness_event(target: &str) -> (&'static str, &'static str) {
    match target {
        liveness::DOWN => (liveness::EVENT_DOWN, "critical"),
        liveness::STALE => (liveness::EVENT_STALE, "warning"),
        _ => (liveness::EVENT_RECOVERED, "info"),
    }
}

/// One scan computes every host's state and keeps only those that change; the writes are then
/// proportional to the changes, which are few in a steady fleet.
pub(crate) fn liveness_pass(
    conn: &mut Connection,
    limits: &LivenessLimits,
) -> StoreResult<Vec<LivenessTransition>> {
    let tx = immediate(conn)?;
    let changes: Vec<(String, String, String, String, i64)> = tx
        .prepare_cached(
            "SELECT id, customer_id, liveness, target, last_report_at_ms FROM (\
               SELECT h.id, h.customer_id, h.liveness, h.last_report_at_ms, \
                 CASE WHEN ?1 - MAX(h.last_report_at_ms, ?4) >= ?3 THEN ?7 \
                      WHEN ?1 - MAX(h.last_report_at_ms, ?4) >= ?2 THEN ?6 \
                      ELSE ?5 END AS target \
               FROM hosts h JOIN customers c ON c.id = h.customer_id \
               WHERE h.last_report_at_ms IS NOT NULL AND c.status = ?8) \
             WHERE liveness <> target ORDER BY id",
        )
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    limits.now_ms,
                    limits.stale_after_ms,
                    limits.down_after_ms,
                    limits.grace_since_ms,
                    liveness::OK,
                    liveness::STALE,
                    liveness::DOWN,
                    ACTIVE
                ],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )?
            .collect()
        })
        .db()?;
    let mut transitions = Vec::with_capacity(changes.len());
    if !changes.is_empty() {
        let mut update = tx
            .prepare_cached("UPDATE hosts SET liveness = ?2 WHERE id = ?1")
            .db()?;
        for (host_id, customer_id, from, to, last_report_at_ms) in changes {
            update.execute(params![host_id, to]).db()?;
            let (kind, severity) = liveness_event(&to);
            let details = serde_json::json!({
                "from": from,
                "to": to,
                "last_report_at_ms": last_report_at_ms,
            });
            let event_id = insert_event(
                &tx,
                &NewEvent {
                    at_ms: limits.now_ms,
                    kind: kind.to_string(),
                    severity: severity.to_string(),
                    customer_id: Some(customer_id.clone()),
                    host_id: Some(host_id.clone()),
                    guest_id: None,
                    op_id: None,
                    details_json: details.to_string(),
                },
            )?;
            transitions.push(LivenessTransition {
                host_id,
                customer_id,
                from,
                to,
                event_id,
            });
        }
    }
    tx.commit().db()?;
    Ok(transitions)
}

pub(crate) fn list_backup_facts(conn: &Connection) -> StoreResult<Vec<BackupFacts>> {
    conn.prepare_cached(
        "SELECT h.id, h.customer_id, h.desired_json, h.last_backups_json, h.backup_missed_json \
         FROM hosts h JOIN customers c ON c.id = h.customer_id \
         WHERE h.last_report_at_ms IS NOT NULL AND h.liveness <> ?1 AND c.status = ?2 \
         ORDER BY h.id",
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
