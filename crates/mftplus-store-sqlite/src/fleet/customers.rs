//! The `customers` table, and the customer deletion that takes everything of it along.

use mftplus_store::{
    liveness, CustomerCounts, CustomerRow, CustomerUpdate, NewCustomer, StoreError, StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension};

use super::{customer_from_row, immediate, op_status, CUSTOMER_COLUMNS};
use crate::error::ResultExt;

const ACTIVE: &str = "active";

fn load(conn: &Connection, id: &str) -> StoreResult<Option<CustomerRow>> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row(params![id], customer_from_row).optional())
        .db()
}

pub(crate) fn create(conn: &mut Connection, customer: &NewCustomer) -> StoreResult<CustomerRow> {
    let tx = immediate(conn)?;
    tx.prepare_cached(
        "INSERT INTO customers (id, name, email, domain, locale, status, \
         retrieval_password_hash, config_json, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            customer.id,
            customer.name,
            customer.email,
            customer.domain,
            customer.locale,
            ACTIVE,
            customer.retrieval_password_hash,
            customer.config_json,
            customer.created_at_ms
        ])
    })
    .db()?;
    let row = load(&tx, &customer.id)?
        .ok_or_else(|| StoreError::Backend("inserted customer vanished".into()))?;
    tx.commit().db()?;
    Ok(row)
}

pub(crate) fn get(conn: &Connection, id: &str) -> StoreResult<Option<CustomerRow>> {
    load(conn, id)
}

pub(crate) fn list(conn: &Connection) -> StoreResult<Vec<CustomerRow>> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY id");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_map([], customer_from_row)?.collect())
        .db()
}

/// Bytewise (BINARY), the order the cursor is defined in.
pub(crate) fn list_page(
    conn: &Connection,
    after_id: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<CustomerRow>> {
    let after = match after_id {
        Some(_) => "id > ?1",
        None => "?1 IS NULL",
    };
    let sql =
        format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE {after} ORDER BY id LIMIT ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![after_id, limit], customer_from_row)?
                .collect()
        })
        .db()
}

/// One statement: the hosts grouped by customer (through `hosts_customer_idx`) and the ops
/// awaiting a signature grouped the same way, joined to the customers asked about.
pub(crate) fn fleet_counts(
    conn: &Connection,
    customer_ids: &[String],
) -> StoreResult<Vec<CustomerCounts>> {
    if customer_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH wanted(id) AS (SELECT value FROM json_each(?1)), \
         host_counts AS (SELECT customer_id, COUNT(*) AS hosts, \
             SUM(CASE WHEN last_report_at_ms IS NOT NULL AND liveness = '{stale}' THEN 1 ELSE 0 END) AS stale, \
             SUM(CASE WHEN last_report_at_ms IS NOT NULL AND liveness = '{down}' THEN 1 ELSE 0 END) AS down, \
             SUM(CASE WHEN last_report_at_ms IS NULL THEN 1 ELSE 0 END) AS never \
           FROM hosts LEFT JOIN host_liveness ON host_liveness.host_id = hosts.id \
           WHERE customer_id IN (SELECT id FROM wanted) GROUP BY customer_id), \
         op_counts AS (SELECT customer_id, COUNT(*) AS awaiting FROM signed_ops \
           WHERE status = '{pending}' AND customer_id IN (SELECT id FROM wanted) \
           GROUP BY customer_id) \
         SELECT c.id, COALESCE(h.hosts, 0), COALESCE(h.stale, 0), COALESCE(h.down, 0), \
           COALESCE(h.never, 0), COALESCE(o.awaiting, 0) \
         FROM customers c LEFT JOIN host_counts h ON h.customer_id = c.id \
           LEFT JOIN op_counts o ON o.customer_id = c.id \
         WHERE c.id IN (SELECT id FROM wanted) ORDER BY c.id",
        stale = liveness::STALE,
        down = liveness::DOWN,
        pending = op_status::PENDING_SIGNATURE,
    );
    let ids = serde_json::Value::from(customer_ids.to_vec()).to_string();
    conn.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![ids], |row| {
                let count = |at: usize| row.get::<_, i64>(at).map(|n| n.max(0) as u64);
                Ok(CustomerCounts {
                    customer_id: row.get(0)?,
                    hosts: count(1)?,
                    stale: count(2)?,
                    down: count(3)?,
                    never: count(4)?,
                    awaiting_signature: count(5)?,
                })
            })?
            .collect()
        })
        .db()
}

pub(crate) fn update(
    conn: &mut Connection,
    id: &str,
    update: &CustomerUpdate,
) -> StoreResult<CustomerRow> {
    let tx = immediate(conn)?;
    let changed = tx
        .prepare_cached(
            "UPDATE customers SET name = COALESCE(?2, name), email = COALESCE(?3, email), \
             domain = CASE WHEN ?4 THEN ?5 ELSE domain END, locale = COALESCE(?6, locale), \
             status = COALESCE(?7, status), \
             retrieval_password_hash = COALESCE(?8, retrieval_password_hash), \
             config_json = COALESCE(?9, config_json), updated_at_ms = ?10 WHERE id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                id,
                update.name,
                update.email,
                update.domain.is_some(),
                update.domain.clone().flatten(),
                update.locale,
                update.status,
                update.retrieval_password_hash,
                update.config_json,
                update.updated_at_ms
            ])
        })
        .db()?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let row = load(&tx, id)?.ok_or(StoreError::NotFound)?;
    tx.commit().db()?;
    Ok(row)
}

/// Children first, so the foreign keys never see an orphan; events and the notification log
/// are history and stay.
pub(crate) fn delete(conn: &mut Connection, id: &str) -> StoreResult<()> {
    let tx = immediate(conn)?;
    for sql in [
        "DELETE FROM guest_reports WHERE customer_id = ?1",
        "DELETE FROM host_reports WHERE customer_id = ?1",
        "DELETE FROM signed_ops WHERE customer_id = ?1",
        "DELETE FROM customer_notifications WHERE customer_id = ?1",
        "DELETE FROM guests WHERE customer_id = ?1",
        "DELETE FROM hosts WHERE customer_id = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params![id]))
            .db()?;
    }
    let deleted = tx
        .prepare_cached("DELETE FROM customers WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute(params![id]))
        .db()?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().db()
}
