//! Thin helpers over [`GenericClient`] so every query uses the per-connection statement cache
//! and maps errors the same way, on a pooled client and inside a transaction alike.
//!
//! They are also where the statements a caller records (`mftplus_store::statements`) are
//! seen: each completed query, and the fleet's transactions' `BEGIN` and `COMMIT`, with the
//! round trip's time. Outside a recording nothing is kept.

use std::time::Instant;

use deadpool_postgres::{GenericClient, Object, Transaction};
use mftplus_store::statements::StatementLog;
use mftplus_store::StoreResult;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::ResultExt;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Times the statement when a recording is in scope.
struct Recording {
    log: Option<std::sync::Arc<StatementLog>>,
    started: Instant,
}

impl Recording {
    fn start() -> Recording {
        Recording {
            log: mftplus_store::statements::current(),
            started: Instant::now(),
        }
    }

    /// Records `sql` once the statement answered (a failed one is recorded too: it was sent).
    fn done<T>(self, sql: &str, result: T) -> T {
        if let Some(log) = self.log {
            log.push(sql, self.started.elapsed());
        }
        result
    }
}

pub(crate) async fn query<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.db()?;
    let recording = Recording::start();
    recording.done(sql, client.query(&statement, params).await.db())
}

pub(crate) async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let statement = client.prepare_cached(sql).await.db()?;
    let recording = Recording::start();
    recording.done(sql, client.query_opt(&statement, params).await.db())
}

pub(crate) async fn query_one<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Row> {
    let statement = client.prepare_cached(sql).await.db()?;
    let recording = Recording::start();
    recording.done(sql, client.query_one(&statement, params).await.db())
}

pub(crate) async fn execute<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql).await.db()?;
    let recording = Recording::start();
    recording.done(sql, client.execute(&statement, params).await.db())
}

/// Statements without parameters or results (`SET LOCAL …`), in the simple protocol.
pub(crate) async fn batch<C: GenericClient>(client: &C, sql: &str) -> StoreResult<()> {
    let recording = Recording::start();
    recording.done(sql, client.batch_execute(sql).await.db())
}

pub(crate) async fn begin(client: &mut Object) -> StoreResult<Transaction<'_>> {
    let recording = Recording::start();
    recording.done("BEGIN", client.transaction().await.db())
}

pub(crate) async fn commit(tx: Transaction<'_>) -> StoreResult<()> {
    let recording = Recording::start();
    recording.done("COMMIT", tx.commit().await.db())
}
