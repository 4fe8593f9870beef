//! The `signed_ops` lifecycle: each step is one transaction (or one statement) with the event
//! that records it.

use deadpool_postgres::GenericClient;
use mftplus_store::{NewEvent, OpFilter, OpTransition, SignedOpRow, StoreError, StoreResult};

use super::{
    insert_events, mirror_guest_specs, op_from_row, op_status, publish_desired, BLOCKED, OP_COLUMNS,
};
use crate::sql;

/// The prefixed column list, for statements that join or return from a CTE.
fn prefixed(prefix: &str) -> String {
    OP_COLUMNS
        .split(", ")
        .map(|column| format!("{prefix}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn load<C: GenericClient>(
    client: &C,
    id: &str,
    lock: bool,
) -> StoreResult<Option<SignedOpRow>> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let sql = format!("SELECT {OP_COLUMNS} FROM signed_ops WHERE id = $1 {lock}");
    sql::query_opt(client, &sql, &[&id])
        .await?
        .as_ref()
        .map(op_from_row)
        .transpose()
}

/// Ties on `created_at_ms` are broken by id in byte order, as SQLite does.
pub(crate) async fn list<C: GenericClient>(
    client: &C,
    filter: &OpFilter,
) -> StoreResult<Vec<SignedOpRow>> {
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM signed_ops WHERE ($1::text IS NULL OR host_id = $1) \
         AND ($2::text IS NULL OR customer_id = $2) \
         AND (cardinality($3::text[]) = 0 OR status = ANY($3)) \
         ORDER BY created_at_ms DESC, id COLLATE \"C\" DESC LIMIT $4"
    );
    sql::query(
        client,
        &sql,
        &[
            &filter.host_id,
            &filter.customer_id,
            &filter.statuses,
            &i64::from(filter.limit),
        ],
    )
    .await?
    .iter()
    .map(op_from_row)
    .collect()
}

/// The caller wraps this in a transaction; the op row is locked before its status is judged.
pub(crate) async fn transition<C: GenericClient>(
    tx: &C,
    step: &OpTransition,
) -> StoreResult<SignedOpRow> {
    let op = load(tx, &step.op_id, true)
        .await?
        .ok_or(StoreError::NotFound)?;
    if !step.from.iter().any(|status| *status == op.status) {
        return Err(StoreError::Conflict("op_status".into()));
    }
    let finished = op_status::FINAL.contains(&step.to.as_str());
    let sql = format!(
        "UPDATE signed_ops SET status = $2, signature = COALESCE($3, signature), \
         result_json = COALESCE($4, result_json), \
         signed_at_ms = CASE WHEN $2 = $6 THEN $5 ELSE signed_at_ms END, \
         delivered_at_ms = CASE WHEN $2 = $7 THEN $5 ELSE delivered_at_ms END, \
         finished_at_ms = CASE WHEN $8 THEN $5 ELSE finished_at_ms END WHERE id = $1 \
         RETURNING {OP_COLUMNS}"
    );
    let row = sql::query_one(
        tx,
        &sql,
        &[
            &step.op_id,
            &step.to,
            &step.signature,
            &step.result_json,
            &step.at_ms,
            &op_status::SIGNED,
            &op_status::DELIVERED,
            &finished,
        ],
    )
    .await?;
    if let Some(desired) = &step.desired_after {
        publish_desired(tx, &op.host_id, desired, step.at_ms).await?;
        mirror_guest_specs(tx, &op.host_id, &step.guest_specs).await?;
    }
    let event = NewEvent {
        op_id: Some(op.id.clone()),
        ..step.event.clone()
    };
    insert_events(tx, &[event]).await?;
    op_from_row(&row)
}

/// The caller wraps this in a transaction. Two statements: move `signed` to `delivered` with
/// an event each, then read what the host gets; both only for an active customer.
pub(crate) async fn deliver<C: GenericClient>(
    tx: &C,
    host_id: &str,
    now_ms: i64,
) -> StoreResult<Vec<SignedOpRow>> {
    sql::execute(
        tx,
        "WITH moved AS (\
           UPDATE signed_ops SET status = $3, delivered_at_ms = $2 \
           WHERE host_id = $1 AND status = $4 AND expires_at_ms >= $2 \
             AND EXISTS (SELECT 1 FROM hosts h JOIN customers c ON c.id = h.customer_id \
                         WHERE h.id = $1 AND c.status <> $5) \
           RETURNING id, customer_id, host_id, guest_id, op_type) \
         INSERT INTO events (at_ms, kind, severity, customer_id, host_id, guest_id, op_id, \
           details_json) \
         SELECT $2, 'op_delivered', 'info', customer_id, host_id, guest_id, id, \
           jsonb_build_object('op_type', op_type)::text FROM moved ORDER BY id COLLATE \"C\"",
        &[
            &host_id,
            &now_ms,
            &op_status::DELIVERED,
            &op_status::SIGNED,
            &BLOCKED,
        ],
    )
    .await?;
    let sql = format!(
        "SELECT {OP_COLUMNS} FROM signed_ops WHERE host_id = $1 AND status = $2 \
         AND expires_at_ms >= $3 \
         AND EXISTS (SELECT 1 FROM hosts h JOIN customers c ON c.id = h.customer_id \
                     WHERE h.id = $1 AND c.status <> $4) \
         ORDER BY issued_at_ms, id COLLATE \"C\""
    );
    sql::query(
        tx,
        &sql,
        &[&host_id, &op_status::DELIVERED, &now_ms, &BLOCKED],
    )
    .await?
    .iter()
    .map(op_from_row)
    .collect()
}

/// One statement. An op that was signed and still did not run is worth a warning; one nobody
/// signed is not.
pub(crate) async fn expire<C: GenericClient>(
    client: &C,
    now_ms: i64,
) -> StoreResult<Vec<SignedOpRow>> {
    let sql = format!(
        "WITH expired AS (\
           UPDATE signed_ops SET status = $2, finished_at_ms = $1 \
           WHERE status IN ($3, $4, $5) AND expires_at_ms < $1 RETURNING {OP_COLUMNS}), \
         logged AS (\
           INSERT INTO events (at_ms, kind, severity, customer_id, host_id, guest_id, op_id, \
             details_json) \
           SELECT $1, 'op_expired', \
             CASE WHEN signed_at_ms IS NULL THEN 'info' ELSE 'warning' END, \
             customer_id, host_id, guest_id, id, \
             jsonb_build_object('op_type', op_type)::text \
           FROM expired ORDER BY id COLLATE \"C\") \
         SELECT {} FROM expired e ORDER BY e.id COLLATE \"C\"",
        prefixed("e")
    );
    sql::query(
        client,
        &sql,
        &[
            &now_ms,
            &op_status::EXPIRED,
            &op_status::PENDING_SIGNATURE,
            &op_status::SIGNED,
            &op_status::DELIVERED,
        ],
    )
    .await?
    .iter()
    .map(op_from_row)
    .collect()
}
