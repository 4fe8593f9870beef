//! The database half of a backup, chosen once from the URL's scheme as `db.rs` does: the SQL
//! and the tools live in each store crate's `backup` module; this adapter gives both one shape.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mftplus_store_postgres::backup as pg;
use mftplus_store_sqlite::backup as lite;

use super::BackupError;

/// One chunk row of a snapshot, with what the payload copy needs of its transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub transfer_id: String,
    pub site: Option<String>,
    pub expires_at_ms: i64,
    pub idx: i64,
    pub size: i64,
    pub sha256: String,
}

/// A database's inventory at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub migrations: Vec<String>,
    pub row_counts: BTreeMap<String, u64>,
    pub audit_head: Option<(i64, String)>,
    pub chunks: Vec<ChunkRecord>,
}

/// Where the configured database is.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(PathBuf),
    /// The URL holds the password: never printed.
    Postgres(String),
}

impl Database {
    pub fn from_url(url: &str) -> Result<Database, BackupError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_string()));
        }
        if url.starts_with("sqlite:") {
            return match mftplus_store_sqlite::parse_url(url)
                .map_err(|err| BackupError::Config(err.to_string()))?
            {
                mftplus_store_sqlite::SqliteLocation::File(path) => Ok(Database::Sqlite(path)),
                mftplus_store_sqlite::SqliteLocation::Memory => Err(BackupError::Config(
                    "an in-memory database cannot be backed up or restored".into(),
                )),
            };
        }
        Err(BackupError::Config(
            "database.url must start with sqlite: or postgres://".into(),
        ))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// What the copy is called inside a backup.
    pub fn file_name(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "database.sqlite3",
            Database::Postgres(_) => "database.pgdump",
        }
    }

    /// Migrations this release ships for the backend.
    pub fn known_migrations(&self) -> Vec<&'static str> {
        let list = match self {
            Database::Sqlite(_) => mftplus_store_sqlite::MIGRATIONS,
            Database::Postgres(_) => mftplus_store_postgres::MIGRATIONS,
        };
        list.iter().map(|(name, _)| *name).collect()
    }

    /// Where the database is, for messages: the file, or only the database name.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite file {}", path.display()),
            Database::Postgres(url) => {
                let name = pg::database_name(url).unwrap_or_default();
                format!("postgres database {name:?}")
            }
        }
    }

    /// A consistent copy into the new file `dest`, and the inventory of its instant.
    pub async fn backup(&self, dest: &Path) -> Result<Snapshot, BackupError> {
        match self {
            Database::Sqlite(path) => {
                let (path, dest) = (path.clone(), dest.to_path_buf());
                blocking(move || lite::backup_file(&path, &dest))
                    .await?
                    .map(from_lite)
                    .map_err(lite_error)
            }
            Database::Postgres(url) => pg::backup(url, dest).await.map(from_pg).map_err(pg_error),
        }
    }

    pub async fn inspect(&self) -> Result<Snapshot, BackupError> {
        match self {
            Database::Sqlite(path) => {
                let path = path.clone();
                blocking(move || lite::inspect_file(&path))
                    .await?
                    .map(from_lite)
                    .map_err(lite_error)
            }
            Database::Postgres(url) => pg::inspect(url).await.map(from_pg).map_err(pg_error),
        }
    }

    pub async fn table_count(&self) -> Result<usize, BackupError> {
        match self {
            Database::Sqlite(path) => {
                let path = path.clone();
                blocking(move || lite::table_count(&path))
                    .await?
                    .map_err(lite_error)
            }
            Database::Postgres(url) => pg::table_count(url).await.map_err(pg_error),
        }
    }

    /// Loads the copy `file` into this (empty) database.
    pub async fn restore(&self, file: &Path) -> Result<(), BackupError> {
        match self {
            Database::Sqlite(path) => {
                let (path, file) = (path.clone(), file.to_path_buf());
                blocking(move || lite::restore_file(&file, &path))
                    .await?
                    .map_err(lite_error)
            }
            Database::Postgres(url) => pg::restore(url, file).await.map_err(pg_error),
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| BackupError::Database(format!("database task failed: {err}")))
}

fn lite_error(err: lite::BackupError) -> BackupError {
    match err {
        lite::BackupError::TargetNotEmpty { .. } => BackupError::TargetNotEmpty(err.to_string()),
        other => BackupError::Database(other.to_string()),
    }
}

fn pg_error(err: pg::BackupError) -> BackupError {
    match err {
        pg::BackupError::TargetNotEmpty { .. } => BackupError::TargetNotEmpty(err.to_string()),
        other => BackupError::Database(other.to_string()),
    }
}

fn from_lite(s: lite::Snapshot) -> Snapshot {
    Snapshot {
        migrations: s.migrations,
        row_counts: s.row_counts,
        audit_head: s.audit_head,
        chunks: s
            .chunks
            .into_iter()
            .map(|c| ChunkRecord {
                transfer_id: c.transfer_id,
                site: c.site,
                expires_at_ms: c.expires_at_ms,
                idx: c.idx,
                size: c.size,
                sha256: c.sha256,
            })
            .collect(),
    }
}

fn from_pg(s: pg::Snapshot) -> Snapshot {
    Snapshot {
        migrations: s.migrations,
        row_counts: s.row_counts,
        audit_head: s.audit_head,
        chunks: s
            .chunks
            .into_iter()
            .map(|c| ChunkRecord {
                transfer_id: c.transfer_id,
                site: c.site,
                expires_at_ms: c.expires_at_ms,
                idx: c.idx,
                size: c.size,
                sha256: c.sha256,
            })
            .collect(),
    }
}
