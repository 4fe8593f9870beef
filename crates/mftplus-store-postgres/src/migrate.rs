//! Embedded, append-only migrations, applied under an advisory lock. A database that records a
//! migration this release does not ship was written by a newer release and is refused before
//! anything is changed (`docs/upgrading.md`).

use mftplus_store::{StoreError, StoreResult};
use tokio_postgres::{Client, NoTls};

use crate::sql;

/// `(name, sql)` in the order they apply. Names match `mftplus-store-sqlite` one for one.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_identity",
        include_str!("../migrations/0001_identity.sql"),
    ),
    ("0002_audit", include_str!("../migrations/0002_audit.sql")),
    (
        "0003_transfers",
        include_str!("../migrations/0003_transfers.sql"),
    ),
    ("0004_fleet", include_str!("../migrations/0004_fleet.sql")),
    ("0005_hubs", include_str!("../migrations/0005_hubs.sql")),
    (
        "0006_idempotency",
        include_str!("../migrations/0006_idempotency.sql"),
    ),
    ("0007_sites", include_str!("../migrations/0007_sites.sql")),
    (
        "0008_certificates",
        include_str!("../migrations/0008_certificates.sql"),
    ),
    (
        "0009_key_rotation",
        include_str!("../migrations/0009_key_rotation.sql"),
    ),
    (
        "0010_transfer_listing",
        include_str!("../migrations/0010_transfer_listing.sql"),
    ),
    (
        "0011_host_listing",
        include_str!("../migrations/0011_host_listing.sql"),
    ),
    (
        "0012_listing_filters",
        include_str!("../migrations/0012_listing_filters.sql"),
    ),
    (
        "0013_transfer_grants",
        include_str!("../migrations/0013_transfer_grants.sql"),
    ),
    (
        "0014_transfer_links",
        include_str!("../migrations/0014_transfer_links.sql"),
    ),
    (
        "0015_poll_interval_liveness",
        include_str!("../migrations/0015_poll_interval_liveness.sql"),
    ),
    (
        "0016_host_transfer_parties",
        include_str!("../migrations/0016_host_transfer_parties.sql"),
    ),
    (
        "0017_pending_downloads",
        include_str!("../migrations/0017_pending_downloads.sql"),
    ),
    (
        "0018_file_requests",
        include_str!("../migrations/0018_file_requests.sql"),
    ),
    (
        "0019_inline_chunks",
        include_str!("../migrations/0019_inline_chunks.sql"),
    ),
];

/// Session-level advisory lock key ("mftplus" + 1): held while migrating so replicas starting
/// together apply each migration exactly once, one after the other.
const MIGRATION_LOCK: i64 = 0x6d66_7470_6c75_7301;

/// How a [`StoreError::Migration`] refusing a newer database starts, so callers and tests can
/// tell it from a migration that failed. Same text in `mftplus-store-sqlite`.
pub const NEWER_SCHEMA: &str = "the database schema is newer than this release";

/// Refuses a database migrated by a newer release: its schema is not ours to guess at, and
/// older code writing to it could damage rows the newer one relies on.
fn refuse_newer(applied: &[String]) -> StoreResult<()> {
    let unknown: Vec<&str> = applied
        .iter()
        .map(String::as_str)
        .filter(|name| !MIGRATIONS.iter().any(|(known, _)| known == name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(StoreError::Migration(format!(
        "{NEWER_SCHEMA}: it records migrations this release does not have ({}); run the \
         release that wrote it, or restore the backup taken before the upgrade",
        unknown.join(", ")
    )))
}

fn failed(context: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(format!("{context}: {err}"))
}

/// Uses its own connection rather than a pooled one: if anything goes wrong the connection is
/// dropped, which releases the advisory lock, and no pooled session is left holding it.
pub(crate) async fn run(config: &tokio_postgres::Config, now_ms: i64) -> StoreResult<()> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|err| failed("connect", err))?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|err| failed("advisory lock", err))?;
    let result = apply_pending(&mut client, now_ms).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|err| failed("advisory unlock", err));
    drop(client);
    // The driver ends once the client is gone; its error, if any, already surfaced above.
    let _ = driver.await;
    result.and(unlocked.map(drop))
}

async fn apply_pending(client: &mut Client, now_ms: i64) -> StoreResult<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 name          TEXT PRIMARY KEY,
                 applied_at_ms BIGINT NOT NULL
             )",
        )
        .await
        .map_err(|err| failed("schema_migrations", err))?;
    let applied: Vec<String> = client
        .query("SELECT name FROM schema_migrations", &[])
        .await
        .map_err(|err| failed("schema_migrations", err))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    refuse_newer(&applied)?;
    for (name, sql) in MIGRATIONS {
        let tx = client
            .transaction()
            .await
            .map_err(|err| failed(name, err))?;
        let applied = tx
            .query_opt("SELECT 1 FROM schema_migrations WHERE name = $1", &[name])
            .await
            .map_err(|err| failed(name, err))?
            .is_some();
        if applied {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|err| failed(name, err))?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at_ms) VALUES ($1, $2)",
            &[name, &now_ms],
        )
        .await
        .map_err(|err| failed(name, err))?;
        tx.commit().await.map_err(|err| failed(name, err))?;
    }
    Ok(())
}

pub(crate) async fn applied<C: deadpool_postgres::GenericClient>(
    client: &C,
) -> StoreResult<Vec<String>> {
    let rows = sql::query(
        client,
        "SELECT to_regclass('schema_migrations') IS NOT NULL",
        &[],
    )
    .await?;
    let exists = rows
        .first()
        .map(|row| row.get::<_, bool>(0))
        .unwrap_or(false);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sql::query(
        client,
        "SELECT name FROM schema_migrations ORDER BY name COLLATE \"C\"",
        &[],
    )
    .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
