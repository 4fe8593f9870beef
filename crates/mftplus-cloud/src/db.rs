//! Picks the storage backend once, from the database URL's scheme.

use mftplus_store::{Store, StoreError};
use std::sync::Arc;

pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(mftplus_store_postgres::PostgresStore::connect(url).await?)
        } else if url.starts_with("sqlite:") {
            Arc::new(mftplus_store_sqlite::SqliteStore::open_url(url)?)
        } else {
            return Err(StoreError::Backend(
                "DATABASE_URL must start with sqlite: or postgres://".into(),
            ));
        };
    store.migrate().await?;
    Ok(store)
}
