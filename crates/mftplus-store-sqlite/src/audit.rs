//! The hash-chained `audit_log` and its `audit_head`.

use mftplus_store::{AuditFilter, AuditRow, NewAuditEntry, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row, TransactionBehavior};

use crate::error::ResultExt;

fn from_row(row: &Row<'_>) -> rusqlite::Result<(AuditRow, String)> {
    let details: String = row.get(7)?;
    Ok((
        AuditRow {
            seq: row.get(0)?,
            ts_ms: row.get(1)?,
            event: row.get(2)?,
            actor: row.get(3)?,
            target: row.get(4)?,
            outcome: row.get(5)?,
            client_ip: row.get(6)?,
            details: serde_json::Value::Null,
            prev_hash: row.get(8)?,
            hash: row.get(9)?,
        },
        details,
    ))
}

/// Reads the head, links the new entry to it and moves the head, all in one IMMEDIATE
/// transaction: the write lock is held from the read on, so no other connection or process can
/// append in between and fork the chain.
pub(crate) fn append(
    conn: &mut Connection,
    entries: &[NewAuditEntry],
) -> StoreResult<Vec<AuditRow>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    let rows = entries
        .iter()
        .map(|entry| append_in(&tx, entry))
        .collect::<StoreResult<Vec<_>>>()?;
    tx.commit().db()?;
    Ok(rows)
}

fn append_in(tx: &Connection, entry: &NewAuditEntry) -> StoreResult<AuditRow> {
    let (head_seq, prev_hash): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .db()?;
    let seq = head_seq + 1;
    let hash = entry.chain_hash(seq, &prev_hash);
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, ts_ms, event, actor, target, outcome, client_ip, details, \
         prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            seq,
            entry.ts_ms,
            entry.event,
            entry.actor,
            entry.target,
            entry.outcome,
            entry.client_ip,
            mftplus_crypto::canonical_json(&entry.details),
            prev_hash,
            hash
        ])
    })
    .db()?;
    tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .and_then(|mut stmt| stmt.execute(params![seq, hash]))
        .db()?;
    Ok(AuditRow {
        seq,
        ts_ms: entry.ts_ms,
        event: entry.event.clone(),
        actor: entry.actor.clone(),
        target: entry.target.clone(),
        outcome: entry.outcome.clone(),
        client_ip: entry.client_ip.clone(),
        details: entry.details.clone(),
        prev_hash,
        hash,
    })
}

pub(crate) fn list(conn: &Connection, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditRow>> {
    let raw: Vec<(AuditRow, String)> = conn
        .prepare_cached(
            "SELECT seq, ts_ms, event, actor, target, outcome, client_ip, details, prev_hash, \
             hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![after_seq, limit], from_row)?
                .collect()
        })
        .db()?;
    with_details(raw)
}

/// The filtered page: each condition present becomes a `WHERE` term with its own parameter.
pub(crate) fn search(conn: &Connection, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let texts = [("event =", &filter.event), ("actor =", &filter.actor)];
    for (term, value) in texts {
        if let Some(value) = value {
            values.push(Value::Text(value.clone()));
            conditions.push(format!("{term} ?{}", values.len()));
        }
    }
    let numbers = [
        ("ts_ms >=", filter.from_ms),
        ("ts_ms <", filter.until_ms),
        ("seq >", filter.after_seq),
        ("seq <", filter.before_seq),
    ];
    for (term, value) in numbers {
        if let Some(value) = value {
            values.push(Value::Integer(value));
            conditions.push(format!("{term} ?{}", values.len()));
        }
    }
    values.push(Value::Integer(i64::from(filter.limit)));
    let filter_sql = match conditions.is_empty() {
        true => String::new(),
        false => format!("WHERE {}", conditions.join(" AND ")),
    };
    let order = if filter.newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT seq, ts_ms, event, actor, target, outcome, client_ip, details, prev_hash, hash \
         FROM audit_log {filter_sql} ORDER BY seq {order} LIMIT ?{}",
        values.len()
    );
    let raw: Vec<(AuditRow, String)> = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(values), from_row)?
                .collect()
        })
        .db()?;
    with_details(raw)
}

fn with_details(raw: Vec<(AuditRow, String)>) -> StoreResult<Vec<AuditRow>> {
    raw.into_iter()
        .map(|(mut row, details)| {
            row.details = serde_json::from_str(&details).map_err(|err| {
                StoreError::Backend(format!(
                    "audit entry {} has invalid details: {err}",
                    row.seq
                ))
            })?;
            Ok(row)
        })
        .collect()
}

/// Only a prefix of the log is ever removed: an old entry that follows a newer one (writers'
/// clocks differ) waits until everything before it goes, so what remains always verifies from
/// its first entry's `prev_hash`.
pub(crate) fn prune(conn: &Connection, before_ms: i64) -> StoreResult<u64> {
    conn.prepare_cached(
        "DELETE FROM audit_log WHERE ts_ms < ?1 AND seq < \
         COALESCE((SELECT MIN(seq) FROM audit_log WHERE ts_ms >= ?1), 9223372036854775807)",
    )
    .and_then(|mut stmt| stmt.execute(params![before_ms]))
    .db()
    .map(|deleted| deleted as u64)
}
