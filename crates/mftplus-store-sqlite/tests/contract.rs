//! The shared store contract, plus the SQLite-only promises: file permissions, the append-only
//! trigger and the migration list.

use std::path::Path;
use std::sync::Arc;

use mftplus_store::{NewAuditEntry, Store};
use mftplus_store_sqlite::{SqliteStore, MIGRATIONS};

fn fresh_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mftplus.db");
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_a_fresh_file() {
    let (_dir, path) = fresh_file();
    let store = SqliteStore::open(&path).expect("open");
    mftplus_store::contract::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_in_memory() {
    let store = SqliteStore::open_url("sqlite::memory:").expect("open in memory");
    mftplus_store::contract::run_all(Arc::new(store)).await;
}

/// Grants (decision 0022) alone, for a quick run; `run_all` includes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_contract() {
    let (_dir, path) = fresh_file();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).expect("open"));
    store.migrate().await.unwrap();
    mftplus_store::contract::transfer_grants(&*store).await;
    mftplus_store::contract::concurrent_grants(store).await;
}

#[tokio::test]
async fn applies_every_embedded_migration_and_reopens() {
    let (_dir, path) = fresh_file();
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open_url(&url).expect("open by url");
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        Vec::<String>::new()
    );
    store.migrate().await.unwrap();
    let names: Vec<String> = MIGRATIONS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(store.applied_migrations().await.unwrap(), names);
    store.append_audit(&audit_entry()).await.unwrap();
    drop(store);

    // Data and the chain head survive a reopen; migrating again changes nothing.
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), names);
    let second = store.append_audit(&audit_entry()).await.unwrap();
    assert_eq!(second.seq, 2);
}

#[test]
fn embedded_migrations_match_the_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        embedded, on_disk,
        "every file under migrations/ must be in MIGRATIONS, in order"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = fresh_file();
    // A loose file left behind by hand is tightened too.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    store.append_audit(&audit_entry()).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|err| panic!("{file}: {err}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} must be owner-only");
    }
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_but_can_be_deleted() {
    let (_dir, path) = fresh_file();
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    store.append_audit(&audit_entry()).await.unwrap();
    store.append_audit(&audit_entry()).await.unwrap();

    let conn = rusqlite_conn(&path);
    let err = conn
        .execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1", [])
        .expect_err("an UPDATE on audit_log must fail");
    assert!(
        err.to_string().contains("append-only"),
        "unexpected error: {err}"
    );
    let deleted = conn
        .execute("DELETE FROM audit_log WHERE seq = 1", [])
        .unwrap();
    assert_eq!(deleted, 1, "retention pruning deletes rows");
}

#[tokio::test]
async fn readers_see_a_schema_created_after_they_opened() {
    let (_dir, path) = fresh_file();
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    // Readers were opened before the schema existed; they must still see it.
    assert_eq!(store.count_users().await.unwrap(), 0);
    assert!(store.list_audit(0, 10).await.unwrap().is_empty());
}

fn rusqlite_conn(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn audit_entry() -> NewAuditEntry {
    NewAuditEntry {
        ts_ms: 1_000,
        event: "user.create".into(),
        actor: "admin@example.com".into(),
        target: "user:1".into(),
        outcome: "success".into(),
        client_ip: "127.0.0.1".into(),
        details: serde_json::json!({"role": "viewer"}),
    }
}
