//! The hash-chained `audit_log` and its `audit_head`.

use deadpool_postgres::GenericClient;
use mftplus_store::{AuditFilter, AuditRow, NewAuditEntry, StoreError, StoreResult};
use tokio_postgres::Row;

use crate::error::ResultExt;
use crate::sql;

fn from_row(row: &Row) -> StoreResult<AuditRow> {
    let seq: i64 = row.try_get(0).db()?;
    let details: &str = row.try_get(7).db()?;
    let details = serde_json::from_str(details).map_err(|err| {
        StoreError::Backend(format!("audit entry {seq} has invalid details: {err}"))
    })?;
    Ok(AuditRow {
        seq,
        ts_ms: row.try_get(1).db()?,
        event: row.try_get(2).db()?,
        actor: row.try_get(3).db()?,
        target: row.try_get(4).db()?,
        outcome: row.try_get(5).db()?,
        client_ip: row.try_get(6).db()?,
        details,
        prev_hash: row.try_get(8).db()?,
        hash: row.try_get(9).db()?,
    })
}

/// Runs inside the caller's transaction. `FOR UPDATE` on the single head row makes every other
/// appender, in this process or another, wait until this one commits, so each entry links to
/// the entry committed just before it.
pub(crate) async fn append<C: GenericClient>(
    tx: &C,
    entry: &NewAuditEntry,
) -> StoreResult<AuditRow> {
    let head = sql::query_one(
        tx,
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        &[],
    )
    .await?;
    let head_seq: i64 = head.try_get(0).db()?;
    let prev_hash: String = head.try_get(1).db()?;
    let seq = head_seq + 1;
    let hash = entry.chain_hash(seq, &prev_hash);
    let details = mftplus_crypto::canonical_json(&entry.details);
    sql::execute(
        tx,
        "INSERT INTO audit_log (seq, ts_ms, event, actor, target, outcome, client_ip, details, \
         prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &seq,
            &entry.ts_ms,
            &entry.event,
            &entry.actor,
            &entry.target,
            &entry.outcome,
            &entry.client_ip,
            &details,
            &prev_hash,
            &hash,
        ],
    )
    .await?;
    sql::execute(
        tx,
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&seq, &hash],
    )
    .await?;
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

pub(crate) async fn list<C: GenericClient>(
    client: &C,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Vec<AuditRow>> {
    sql::query(
        client,
        "SELECT seq, ts_ms, event, actor, target, outcome, client_ip, details, prev_hash, hash \
         FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after_seq, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// The filtered page: an absent condition is a `NULL` parameter that matches every row.
pub(crate) async fn search<C: GenericClient>(
    client: &C,
    filter: &AuditFilter,
) -> StoreResult<Vec<AuditRow>> {
    let order = if filter.newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT seq, ts_ms, event, actor, target, outcome, client_ip, details, prev_hash, hash \
         FROM audit_log WHERE ($1::text IS NULL OR event = $1) \
         AND ($2::text IS NULL OR actor = $2) AND ($3::bigint IS NULL OR ts_ms >= $3) \
         AND ($4::bigint IS NULL OR ts_ms < $4) AND ($5::bigint IS NULL OR seq > $5) \
         AND ($6::bigint IS NULL OR seq < $6) ORDER BY seq {order} LIMIT $7"
    );
    sql::query(
        client,
        &sql,
        &[
            &filter.event,
            &filter.actor,
            &filter.from_ms,
            &filter.until_ms,
            &filter.after_seq,
            &filter.before_seq,
            &i64::from(filter.limit),
        ],
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Only a prefix of the log is ever removed: an old entry that follows a newer one (writers'
/// clocks differ) waits until everything before it goes, so what remains always verifies from
/// its first entry's `prev_hash`. Appends commit in `seq` order (they queue on the head row),
/// so this statement's snapshot never sees a later entry without the earlier ones.
pub(crate) async fn prune<C: GenericClient>(client: &C, before_ms: i64) -> StoreResult<u64> {
    sql::execute(
        client,
        "DELETE FROM audit_log WHERE ts_ms < $1 AND seq < \
         COALESCE((SELECT MIN(seq) FROM audit_log WHERE ts_ms >= $1), 9223372036854775807)",
        &[&before_ms],
    )
    .await
}
