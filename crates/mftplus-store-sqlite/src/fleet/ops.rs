//! The `signed_ops` lifecycle: each step is one transaction with the event that records it.

use mftplus_store::{NewEvent, OpFilter, OpTransition, SignedOpRow, StoreError, StoreResult};
use rusqlite::{params, params_from_iter, types::Value, Connection, OptionalExtension};

use super::{
    immediate, insert_event, mirror_guest_specs, op_from_row, op_status, publish_desired, BLOCKED,
    OP_COLUMNS,
};
use crate::error::ResultExt;

const EVENT_DELIVERED: &str = "op_delivered";
const EVENT_EXPIRED: &str = "op_expired";

fn load(conn: &Connection, id: &str) -> StoreResult<Option<SignedOpRow>> {
    let sql = format!("SELECT {OP_COLUMNS} FROM signed_ops WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], op_from_row).optional())
        .db()
}

pub(crate) fn get(conn: &Connection, id: &str) -> StoreResult<Option<SignedOpRow>> {
    load(conn, id)
}

pub(crate) fn list(conn: &Connection, filter: &OpFilter) -> StoreResult<Vec<SignedOpRow>> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    for (column, value) in [
        ("host_id", &filter.host_id),
        ("customer_id", &filter.customer_id),
    ] {
        if let Some(value) = value {
            values.push(Value::Text(value.clone()));
            conditions.push(format!("{column} = ?{}", values.len()));
        }
    }
    if !filter.statuses.is_empty() {
        let first = values.len() + 1;
        values.extend(filter.statuses.iter().cloned().map(Value::Text));
        let marks: Vec<String> = (first..=values.len()).map(|at| format!("?{at}")).collect();
        conditions.push(format!("status IN ({})", marks.join(", ")));
    }
    values.push(Value::Integer(i64::from(filter.limit)));
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM signed_ops {filter_sql} \
         ORDER BY created_at_ms DESC, id DESC LIMIT ?{}",
        values.len()
    );
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(values), op_from_row)?
                .collect()
        })
        .db()
}

pub(crate) fn transition(conn: &mut Connection, step: &OpTransition) -> StoreResult<SignedOpRow> {
    let tx = immediate(conn)?;
    let op = load(&tx, &step.op_id)?.ok_or(StoreError::NotFound)?;
    if !step.from.iter().any(|status| *status == op.status) {
        return Err(StoreError::Conflict("op_status".into()));
    }
    let finished = op_status::FINAL.contains(&step.to.as_str());
    tx.prepare_cached(
        "UPDATE signed_ops SET status = ?2, signature = COALESCE(?3, signature), \
         result_json = COALESCE(?4, result_json), \
         signed_at_ms = CASE WHEN ?2 = ?6 THEN ?5 ELSE signed_at_ms END, \
         delivered_at_ms = CASE WHEN ?2 = ?7 THEN ?5 ELSE delivered_at_ms END, \
         finished_at_ms = CASE WHEN ?8 THEN ?5 ELSE finished_at_ms END WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            step.op_id,
            step.to,
            step.signature,
            step.result_json,
            step.at_ms,
            op_status::SIGNED,
            op_status::DELIVERED,
            finished
        ])
    })
    .db()?;
    if let Some(desired) = &step.desired_after {
        publish_desired(&tx, &op.host_id, desired, step.at_ms)?;
        mirror_guest_specs(&tx, &op.host_id, &step.guest_specs)?;
    }
    let event = NewEvent {
        op_id: Some(op.id.clone()),
        ..step.event.clone()
    };
    insert_event(&tx, &event)?;
    let row = load(&tx, &step.op_id)?.ok_or(StoreError::NotFound)?;
    tx.commit().db()?;
    Ok(row)
}

fn op_event(op: &SignedOpRow, at_ms: i64, kind: &str, severity: &str) -> NewEvent {
    NewEvent {
        at_ms,
        kind: kind.to_string(),
        severity: severity.to_string(),
        customer_id: Some(op.customer_id.clone()),
        host_id: Some(op.host_id.clone()),
        guest_id: op.guest_id.clone(),
        op_id: Some(op.id.clone()),
        details_json: serde_json::json!({ "op_type": op.op_type }).to_string(),
    }
}

pub(crate) fn deliver(
    conn: &mut Connection,
    host_id: &str,
    now_ms: i64,
) -> StoreResult<Vec<SignedOpRow>> {
    let tx = immediate(conn)?;
    let blocked: Option<bool> = tx
        .prepare_cached(
            "SELECT c.status = ?2 FROM hosts h JOIN customers c ON c.id = h.customer_id \
             WHERE h.id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![host_id, BLOCKED], |row| row.get(0))
                .optional()
        })
        .db()?;
    if blocked != Some(false) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "UPDATE signed_ops SET status = ?3, delivered_at_ms = ?2 \
         WHERE host_id = ?1 AND status = ?4 AND expires_at_ms >= ?2 RETURNING {OP_COLUMNS}"
    );
    let delivered: Vec<SignedOpRow> = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![host_id, now_ms, op_status::DELIVERED, op_status::SIGNED],
                op_from_row,
            )?
            .collect()
        })
        .db()?;
    for op in &delivered {
        insert_event(&tx, &op_event(op, now_ms, EVENT_DELIVERED, "info"))?;
    }
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM signed_ops WHERE host_id = ?1 AND status = ?2 \
         AND expires_at_ms >= ?3 ORDER BY issued_at_ms, id"
    );
    let ops = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![host_id, op_status::DELIVERED, now_ms], op_from_row)?
                .collect()
        })
        .db()?;
    tx.commit().db()?;
    Ok(ops)
}

/// An op that was signed and still did not run is worth a warning; one nobody signed is not.
pub(crate) fn expire(conn: &mut Connection, now_ms: i64) -> StoreResult<Vec<SignedOpRow>> {
    let tx = immediate(conn)?;
    let sql = format!(
        "UPDATE signed_ops SET status = ?2, finished_at_ms = ?1 \
         WHERE status IN (?3, ?4, ?5) AND expires_at_ms < ?1 RETURNING {OP_COLUMNS}"
    );
    let mut expired: Vec<SignedOpRow> = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![
                    now_ms,
                    op_status::EXPIRED,
                    op_status::PENDING_SIGNATURE,
                    op_status::SIGNED,
                    op_status::DELIVERED
                ],
                op_from_row,
            )?
            .collect()
        })
        .db()?;
    expired.sort_by(|a, b| a.id.cmp(&b.id));
    for op in &expired {
        let severity = if op.signed_at_ms.is_some() {
            "warning"
        } else {
            "info"
        };
        insert_event(&tx, &op_event(op, now_ms, EVENT_EXPIRED, severity))?;
    }
    tx.commit().db()?;
    Ok(expired)
}
