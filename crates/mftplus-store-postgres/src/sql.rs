//! Thin helpers over [`GenericClient`] so every query uses the per-connection statement cache
//! and maps errors the same way, on a pooled client and inside a transaction alike.

use deadpool_postgres::GenericClient;
use mftplus_store::StoreResult;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::ResultExt;

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) async fn query<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.db()?;
    client.query(&statement, params).await.db()
}

pub(crate) async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let statement = client.prepare_cached(sql).await.db()?;
    client.query_opt(&statement, params).await.db()
}

pub(crate) async fn query_one<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Row> {
    let statement = client.prepare_cached(sql).await.db()?;
    client.query_one(&statement, params).await.db()
}

pub(crate) async fn execute<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let statement = client.prepare_cached(sql).await.db()?;
    client.execute(&statement, params).await.db()
}
