//! Online backup and restore of the database with the real `pg_dump` and `pg_restore`, for
//! `mftplus admin backup` and `mftplus admin restore` (decision 0019). The cloud's `backup`
//! module drives these; this module only knows PostgreSQL.
//!
//! A backup opens a `REPEATABLE READ, READ ONLY` transaction, exports its snapshot
//! (`pg_export_snapshot()`), reads the inventory in it (applied migrations, row counts, the
//! audit head, every chunk row) and runs `pg_dump --snapshot=…` while holding it open, so the
//! dump and the inventory describe the same instant while the cloud keeps writing. The dump is
//! in pg_dump's custom format, without owners or privileges, so it restores into a database the
//! restoring role owns.
//!
//! The tools are found on `PATH` and must be at least the server's major version. They get the
//! connection from `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE` and `PGPASSWORD` set on the child
//! only: the password never appears on a command line, where `ps` would show it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use mftplus_store::StoreError;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, IsolationLevel, NoTls, Transaction};

use crate::error::ResultExt;

/// What a backup or restore of the database could not do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The restore target already holds tables: nothing was changed.
    #[error("the target database {database:?} is not empty ({tables} tables); restore only into a new database (createdb) no cloud has opened yet")]
    TargetNotEmpty { database: String, tables: usize },
    #[error("{tool} is not installed or not on PATH (Debian: apt-get install postgresql-client)")]
    ToolMissing { tool: &'static str },
    /// The tool ran and failed; `message` is its standard error.
    #[error("{tool} failed ({status}): {message}")]
    Tool {
        tool: &'static str,
        status: String,
        message: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One chunk row as the snapshot holds it, with what the caller needs of its transfer. Chunks
/// kept in the database itself (decision 0037) are not listed: the database copy holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub transfer_id: String,
    /// The transfer's site (decision 0012): its payload is on that hub, not in the cloud's store.
    pub site: Option<String>,
    pub expires_at_ms: i64,
    pub idx: i64,
    pub size: i64,
    /// SHA-256 hex of the ciphertext chunk, as recorded.
    pub sha256: String,
}

/// The inventory of a database at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Applied migrations, in name order.
    pub migrations: Vec<String>,
    /// Rows per table, every table of the schema.
    pub row_counts: BTreeMap<String, u64>,
    /// `(seq, hash)` of the audit chain's head; `None` before the audit migration.
    pub audit_head: Option<(i64, String)>,
    /// Every chunk row, ordered by transfer and index.
    pub chunks: Vec<SnapshotChunk>,
}

/// Dumps the database `url` names into the new file `dest` (created 0600; it must not exist)
/// with `pg_dump`, consistently while other sessions keep writing, and returns the inventory of
/// the dumped instant.
pub async fn backup(url: &str, dest: &Path) -> Result<Snapshot, BackupError> {
    let config = parse(url)?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|source| BackupError::Io {
            context: format!("cannot create {}", dest.display()),
            source,
        })?;
    let (mut client, driver) = connect(&config).await?;
    let result = async {
        let tx = snapshot_transaction(&mut client).await?;
        let exported: String = tx
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .db()?
            .get(0);
        let snapshot = inventory(&tx).await?;
        let mut args: Vec<OsString> = vec![
            format!("--snapshot={exported}").into(),
            "--format=custom".into(),
            "--no-owner".into(),
            "--no-privileges".into(),
            "--file".into(),
        ];
        args.push(dest.as_os_str().to_owned());
        run_tool("pg_dump", &config, args).await?;
        tx.commit().await.db()?;
        Ok(snapshot)
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// The inventory of the database `url` names, read in one snapshot.
pub async fn inspect(url: &str) -> Result<Snapshot, BackupError> {
    let config = parse(url)?;
    let (mut client, driver) = connect(&config).await?;
    let result = async {
        let tx = snapshot_transaction(&mut client).await?;
        let snapshot = inventory(&tx).await?;
        tx.commit().await.db()?;
        Ok(snapshot)
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// Tables outside the system schemas of the database `url` names.
pub async fn table_count(url: &str) -> Result<usize, BackupError> {
    let config = parse(url)?;
    let (client, driver) = connect(&config).await?;
    let result = count_tables(&client).await;
    drop(client);
    let _ = driver.await;
    result
}

/// Loads the dump `dump` into the database `url` names, which must exist and hold no table
/// ([`BackupError::TargetNotEmpty`] otherwise, and nothing changes). `pg_restore` runs in a
/// single transaction and stops at the first error, so a failed restore leaves the database
/// empty.
pub async fn restore(url: &str, dump: &Path) -> Result<(), BackupError> {
    let config = parse(url)?;
    let tables = table_count(url).await?;
    if tables > 0 {
        return Err(BackupError::TargetNotEmpty {
            database: config.get_dbname().unwrap_or_default().to_string(),
            tables,
        });
    }
    let mut args: Vec<OsString> = vec![
        "--no-owner".into(),
        "--no-privileges".into(),
        "--exit-on-error".into(),
        "--single-transaction".into(),
        // Only the name: host, port, user and password come from the environment.
        format!("--dbname={}", config.get_dbname().unwrap_or_default()).into(),
    ];
    args.push(dump.as_os_str().to_owned());
    run_tool("pg_restore", &config, args).await
}

/// The database name `url` names, for messages: the URL itself may hold the password.
pub fn database_name(url: &str) -> Option<String> {
    parse(url).ok()?.get_dbname().map(str::to_string)
}

fn parse(url: &str) -> Result<tokio_postgres::Config, BackupError> {
    url.parse()
        .map_err(|err| StoreError::Backend(format!("invalid PostgreSQL URL: {err}")).into())
}

async fn connect(
    config: &tokio_postgres::Config,
) -> Result<(Client, tokio::task::JoinHandle<()>), BackupError> {
    let (client, connection) = config.connect(NoTls).await.db()?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, driver))
}

async fn snapshot_transaction(client: &mut Client) -> Result<Transaction<'_>, BackupError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .db()?)
}

async fn count_tables(client: &Client) -> Result<usize, BackupError> {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_tables
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .db()?;
    Ok(row.get::<_, i64>(0).max(0) as usize)
}

/// The environment that tells a PostgreSQL tool where to connect, from the URL's parts.
fn tool_env(config: &tokio_postgres::Config) -> Vec<(&'static str, OsString)> {
    let mut env = Vec::new();
    let hosts: Vec<OsString> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => OsString::from(name),
            Host::Unix(path) => path.as_os_str().to_owned(),
        })
        .collect();
    if !hosts.is_empty() {
        env.push(("PGHOST", hosts.join(std::ffi::OsStr::new(","))));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        env.push(("PGPORT", ports.join(",").into()));
    }
    if let Some(user) = config.get_user() {
        env.push(("PGUSER", user.into()));
    }
    if let Some(name) = config.get_dbname() {
        env.push(("PGDATABASE", name.into()));
    }
    if let Some(password) = config.get_password() {
        env.push((
            "PGPASSWORD",
            String::from_utf8_lossy(password).into_owned().into(),
        ));
    }
    env
}

/// Runs `tool` with `args` on a blocking thread; its standard error becomes the error.
async fn run_tool(
    tool: &'static str,
    config: &tokio_postgres::Config,
    args: Vec<OsString>,
) -> Result<(), BackupError> {
    let env = tool_env(config);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(tool)
            .args(&args)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .output()
    })
    .await
    .map_err(|err| StoreError::Backend(format!("{tool} task failed: {err}")))?;
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::ToolMissing { tool })
        }
        Err(source) => {
            return Err(BackupError::Io {
                context: format!("cannot run {tool}"),
                source,
            })
        }
    };
    if output.status.success() {
        return Ok(());
    }
    Err(BackupError::Tool {
        tool,
        status: output.status.to_string(),
        message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn inventory(tx: &Transaction<'_>) -> Result<Snapshot, BackupError> {
    let tables: Vec<String> = tx
        .query(
            "SELECT tablename::text FROM pg_catalog.pg_tables
             WHERE schemaname = current_schema() ORDER BY tablename COLLATE \"C\"",
            &[],
        )
        .await
        .db()?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut row_counts = BTreeMap::new();
    for table in &tables {
        let row = tx
            .query_one(&format!("SELECT count(*) FROM {}", quoted(table)), &[])
            .await
            .db()?;
        row_counts.insert(table.clone(), row.get::<_, i64>(0).max(0) as u64);
    }
    let has = |name: &str| tables.iter().any(|t| t == name);
    let migrations = if has("schema_migrations") {
        tx.query(
            "SELECT name FROM schema_migrations ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await
        .db()?
        .iter()
        .map(|row| row.get(0))
        .collect()
    } else {
        Vec::new()
    };
    let audit_head = if has("audit_head") {
        tx.query_opt("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
            .await
            .db()?
            .map(|row| (row.get(0), row.get(1)))
    } else {
        None
    };
    let chunks = if has("transfer_chunks") {
        chunk_rows(
            tx,
            migrations
                .iter()
                .any(|m: &String| m == INLINE_CHUNKS_MIGRATION),
        )
        .await?
    } else {
        Vec::new()
    };
    Ok(Snapshot {
        migrations,
        row_counts,
        audit_head,
        chunks,
    })
}

/// The migration that let chunks live in their rows; a database before it has none.
const INLINE_CHUNKS_MIGRATION: &str = "0019_inline_chunks";

async fn chunk_rows(
    tx: &Transaction<'_>,
    inline_column: bool,
) -> Result<Vec<SnapshotChunk>, BackupError> {
    let only_stored = if inline_column {
        "WHERE c.data IS NULL"
    } else {
        ""
    };
    let rows = tx
        .query(
            &format!(
                "SELECT c.transfer_id, t.site, t.expires_at_ms, c.idx, c.size, c.sha256
                 FROM transfer_chunks c JOIN transfers t ON t.id = c.transfer_id {only_stored}
                 ORDER BY c.transfer_id COLLATE \"C\", c.idx"
            ),
            &[],
        )
        .await
        .db()?;
    Ok(rows
        .iter()
        .map(|row| SnapshotChunk {
            transfer_id: row.get(0),
            site: row.get(1),
            expires_at_ms: row.get(2),
            idx: row.get(3),
            size: row.get(4),
            sha256: row.get(5),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mftplus_store::{NewAuditEntry, Store};

    #[tokio::test]
    async fn a_dump_restores_only_into_an_empty_database_with_the_same_inventory() {
        let Some(source) = crate::testing::fresh_database().await else {
            return;
        };
        let store = crate::PostgresStore::connect(source.url()).await.unwrap();
        store.migrate().await.unwrap();
        store
            .append_audit(&NewAuditEntry {
                ts_ms: 2,
                event: "user_created".into(),
                actor: "system".into(),
                target: "a@example.com".into(),
                outcome: "success".into(),
                client_ip: String::new(),
                details: serde_json::json!({"n": 1}),
            })
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!("mftplus-pg-backup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dump = dir.join("database.pgdump");
        let _ = std::fs::remove_file(&dump);
        let snapshot = backup(source.url(), &dump).await.unwrap();
        assert_eq!(snapshot.row_counts["audit_log"], 1);
        assert_eq!(snapshot.audit_head.as_ref().map(|h| h.0), Some(1));
        assert!(matches!(
            backup(source.url(), &dump).await,
            Err(BackupError::Io { .. })
        ));

        let target = crate::testing::fresh_database().await.unwrap();
        assert_eq!(table_count(target.url()).await.unwrap(), 0);
        restore(target.url(), &dump).await.unwrap();
        assert_eq!(inspect(target.url()).await.unwrap(), snapshot);
        match restore(target.url(), &dump).await {
            Err(BackupError::TargetNotEmpty { tables, .. }) => assert!(tables > 5),
            other => panic!("expected a refusal, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
