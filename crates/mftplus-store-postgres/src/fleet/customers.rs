//! The `customers` table, and the customer deletion that takes everything of it along.

use deadpool_postgres::GenericClient;
use mftplus_store::{
    liveness, CustomerCounts, CustomerRow, CustomerUpdate, NewCustomer, StoreError, StoreResult,
};

use super::{customer_from_row, op_status, ACTIVE, CUSTOMER_COLUMNS};
use crate::error::ResultExt;
use crate::sql;

pub(crate) async fn create<C: GenericClient>(
    client: &C,
    customer: &NewCustomer,
) -> StoreResult<CustomerRow> {
    let sql = format!(
        "INSERT INTO customers (id, name, email, domain, locale, status, \
         retrieval_password_hash, config_json, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {CUSTOMER_COLUMNS}"
    );
    let row = sql::query_one(
        client,
        &sql,
        &[
            &customer.id,
            &customer.name,
            &customer.email,
            &customer.domain,
            &customer.locale,
            &ACTIVE,
            &customer.retrieval_password_hash,
            &customer.config_json,
            &customer.created_at_ms,
        ],
    )
    .await?;
    customer_from_row(&row)
}

pub(crate) async fn get<C: GenericClient>(
    client: &C,
    id: &str,
) -> StoreResult<Option<CustomerRow>> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1");
    sql::query_opt(client, &sql, &[&id])
        .await?
        .as_ref()
        .map(customer_from_row)
        .transpose()
}

/// Byte order, as SQLite sorts.
pub(crate) async fn list<C: GenericClient>(client: &C) -> StoreResult<Vec<CustomerRow>> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers ORDER BY id COLLATE \"C\"");
    sql::query(client, &sql, &[])
        .await?
        .iter()
        .map(customer_from_row)
        .collect()
}

/// Byte order, as SQLite sorts: the cursor is defined bytewise.
pub(crate) async fn list_page<C: GenericClient>(
    client: &C,
    after_id: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<CustomerRow>> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers \
         WHERE ($1::text IS NULL OR id COLLATE \"C\" > $1::text COLLATE \"C\") \
         ORDER BY id COLLATE \"C\" LIMIT $2"
    );
    sql::query(client, &sql, &[&after_id, &i64::from(limit)])
        .await?
        .iter()
        .map(customer_from_row)
        .collect()
}

/// One statement: the hosts grouped by customer (through `hosts_customer_idx`) and the ops
/// awaiting a signature grouped the same way, joined to the customers asked about.
pub(crate) async fn fleet_counts<C: GenericClient>(
    client: &C,
    customer_ids: &[String],
) -> StoreResult<Vec<CustomerCounts>> {
    if customer_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH host_counts AS (SELECT customer_id, COUNT(*) AS hosts, \
             COUNT(*) FILTER (WHERE last_report_at_ms IS NOT NULL AND liveness = '{stale}') AS stale, \
             COUNT(*) FILTER (WHERE last_report_at_ms IS NOT NULL AND liveness = '{down}') AS down, \
             COUNT(*) FILTER (WHERE last_report_at_ms IS NULL) AS never \
           FROM hosts LEFT JOIN host_liveness ON host_liveness.host_id = hosts.id \
           WHERE customer_id = ANY($1) GROUP BY customer_id), \
         op_counts AS (SELECT customer_id, COUNT(*) AS awaiting FROM signed_ops \
           WHERE status = '{pending}' AND customer_id = ANY($1) GROUP BY customer_id) \
         SELECT c.id, COALESCE(h.hosts, 0), COALESCE(h.stale, 0), COALESCE(h.down, 0), \
           COALESCE(h.never, 0), COALESCE(o.awaiting, 0) \
         FROM customers c LEFT JOIN host_counts h ON h.customer_id = c.id \
           LEFT JOIN op_counts o ON o.customer_id = c.id \
         WHERE c.id = ANY($1) ORDER BY c.id COLLATE \"C\"",
        stale = liveness::STALE,
        down = liveness::DOWN,
        pending = op_status::PENDING_SIGNATURE,
    );
    let rows = sql::query(client, &sql, &[&customer_ids]).await?;
    rows.iter()
        .map(|row| {
            let count = |at: usize| row.try_get::<_, i64>(at).map(|n| n.max(0) as u64).db();
            Ok(CustomerCounts {
                customer_id: row.try_get(0).db()?,
                hosts: count(1)?,
                stale: count(2)?,
                down: count(3)?,
                never: count(4)?,
                awaiting_signature: count(5)?,
            })
        })
        .collect()
}

pub(crate) async fn update<C: GenericClient>(
    client: &C,
    id: &str,
    update: &CustomerUpdate,
) -> StoreResult<CustomerRow> {
    let sql = format!(
        "UPDATE customers SET name = COALESCE($2, name), email = COALESCE($3, email), \
         domain = CASE WHEN $4 THEN $5 ELSE domain END, locale = COALESCE($6, locale), \
         status = COALESCE($7, status), \
         retrieval_password_hash = COALESCE($8, retrieval_password_hash), \
         config_json = COALESCE($9, config_json), updated_at_ms = $10 WHERE id = $1 \
         RETURNING {CUSTOMER_COLUMNS}"
    );
    let domain = update.domain.clone().flatten();
    let row = sql::query_opt(
        client,
        &sql,
        &[
            &id,
            &update.name,
            &update.email,
            &update.domain.is_some(),
            &domain,
            &update.locale,
            &update.status,
            &update.retrieval_password_hash,
            &update.config_json,
            &update.updated_at_ms,
        ],
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    customer_from_row(&row)
}

/// The caller wraps this in a transaction. The customer row is locked first, so an enrolment
/// running at the same time (which locks it too) either finishes before or finds it gone.
/// Events and the notification log are history and stay.
pub(crate) async fn delete<C: GenericClient>(tx: &C, id: &str) -> StoreResult<()> {
    if sql::query_opt(
        tx,
        "SELECT 1 FROM customers WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .await?
    .is_none()
    {
        return Err(StoreError::NotFound);
    }
    for statement in [
        "DELETE FROM guest_reports WHERE customer_id = $1",
        "DELETE FROM host_reports WHERE customer_id = $1",
        "DELETE FROM signed_ops WHERE customer_id = $1",
        "DELETE FROM customer_notifications WHERE customer_id = $1",
        "DELETE FROM guests WHERE customer_id = $1",
        "DELETE FROM hosts WHERE customer_id = $1",
        "DELETE FROM customers WHERE id = $1",
    ] {
        sql::execute(tx, statement, &[&id]).await?;
    }
    Ok(())
}
