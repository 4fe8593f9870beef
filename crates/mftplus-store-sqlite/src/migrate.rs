//! Embedded, append-only migrations. A database that records a migration this release does
//! not ship was written by a newer release and is refused before anything is changed
//! (`docs/upgrading.md`).

use mftplus_store::{StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// `(name, sql)` in the order they apply. Names match `mftplus-store-postgres` one for one.
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

/// How a [`StoreError::Migration`] refusing a newer database starts, so callers and tests can
/// tell it from a migration that failed. Same text in `mftplus-store-postgres`.
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

fn migration_error(name: &str, err: rusqlite::Error) -> StoreError {
    StoreError::Migration(format!("{name}: {err}"))
}

pub(crate) fn run(conn: &mut Connection, now_ms: i64) -> StoreResult<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             name          TEXT PRIMARY KEY NOT NULL,
             applied_at_ms INTEGER NOT NULL
         )",
    )
    .map_err(|err| migration_error("schema_migrations", err))?;
    refuse_newer(&applied(conn)?)?;

    for (name, sql) in MIGRATIONS {
        // IMMEDIATE takes the write lock before the check, so two processes opening the same
        // file at once cannot both decide a migration is pending.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|err| migration_error(name, err))?;
        let applied = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE name = ?1",
                params![name],
                |_| Ok(()),
            )
            .optional()
            .map_err(|err| migration_error(name, err))?
            .is_some();
        if applied {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|err| migration_error(name, err))?;
        tx.execute(
            "INSERT INTO schema_migrations (name, applied_at_ms) VALUES (?1, ?2)",
            params![name, now_ms],
        )
        .map_err(|err| migration_error(name, err))?;
        tx.commit().map_err(|err| migration_error(name, err))?;
    }
    Ok(())
}

pub(crate) fn applied(conn: &Connection) -> StoreResult<Vec<String>> {
    let exists: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
            [],
            |row| row.get(0),
        )
        .map_err(crate::error::map)?;
    if !exists {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT name FROM schema_migrations ORDER BY name")
        .map_err(crate::error::map)?;
    let names = stmt
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
        .map_err(crate::error::map)?;
    Ok(names)
}
