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

pub(crate) struct LivenessLimits {
    pub now_ms: i64,
    pub stale_after_ms: i64,
    pub down_after_ms: i64,
    pub grace_since_ms: i64,
}

/// Two set-based statements over the whole table in one transaction: record an event for
/// every host whose state changes (reading `from` and `to` back from the event), then move
/// those hosts. Nothing else writes between them, so both see the same hosts.
pub(crate) fn liveness_pass(
    conn: &mut Connection,
    limits: &LivenessLimits,
) -> StoreResult<Vec<LivenessTransition>> {
    const JUDGED: &str = "SELECT id, customer_id, liveness, target, last_report_at_ms FROM (\
           SELECT h.id, h.customer_id, h.liveness, h.last_report_at_ms, \
             CASE WHEN ?1 - MAX(h.last_report_at_ms, ?4) >= ?3 THEN ?7 \
                  WHEN ?1 - MAX(h.last_report_at_ms, ?4) >= ?2 THEN ?6 \
                  ELSE ?5 END AS target \
           FROM hosts h JOIN customers c ON c.id = h.customer_id \
           WHERE h.last_report_at_ms IS NOT NULL AND c.status = ?8) \
         WHERE liveness <> target";
    let params = params![
        limits.now_ms,
        limits.stale_after_ms,
        limits.down_after_ms,
        limits.grace_since_ms,
        liveness::OK,
        liveness::STALE,
        liveness::DOWN,
        ACTIVE,
        liveness::EVENT_DOWN,
        liveness::EVENT_STALE,
        liveness::EVENT_RECOVERED
    ];
    let tx = immediate(conn)?;
    let insert = format!(
        "INSERT INTO events (at_ms, kind, severity, customer_id, host_id, details_json) \
         SELECT ?1, CASE target WHEN ?7 THEN ?9 WHEN ?6 THEN ?10 ELSE ?11 END, \
           CASE target WHEN ?7 THEN 'critical' WHEN ?6 THEN 'warning' ELSE 'info' END, \
           customer_id, id, \
           json_object('from', liveness, 'to', target, 'last_report_at_ms', last_report_at_ms) \
         FROM ({JUDGED}) ORDER BY id \
         RETURNING host_id, customer_id, details_json ->> 'from', details_json ->> 'to', id"
    );
    let mut transitions: Vec<LivenessTransition> = tx
        .prepare_cached(&insert)
        .and_then(|mut stmt| {
            stmt.query_map(params, |row| {
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
        .db()?;
    if !transitions.is_empty() {
        let update = format!(
            "UPDATE hosts SET liveness = j.target FROM ({JUDGED}) AS j WHERE hosts.id = j.id"
        );
        let moved = tx
            .prepare_cached(&update)
            .and_then(|mut stmt| stmt.execute(&params[..8]))
            .db()?;
        if moved != transitions.len() {
            return Err(StoreError::Backend(format!(
                "liveness pass moved {moved} hosts for {} events",
                transitions.len()
            )));
        }
    }
    tx.commit().db()?;
    transitions.sort_by(|a, b| a.host_id.cmp(&b.host_id));
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
