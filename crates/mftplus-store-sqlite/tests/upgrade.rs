//! Upgrades from earlier releases (`docs/upgrading.md`): every `testdata/upgrade/<release>/`
//! holds a `cloud.sqlite` that release's code wrote (`mftplus_store::contract::fixture`). Today's
//! code must open a copy, migrate it forward, read the release's rows back and pass the whole
//! store contract on it; a database from a newer release must be refused untouched.
//!
//! `make_fixture` (ignored) is the writer `scripts/make-upgrade-fixtures.sh` runs at a release.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mftplus_store::contract::{self, fixture};
use mftplus_store::{Store, StoreError};
use mftplus_store_sqlite::{SqliteStore, MIGRATIONS, NEWER_SCHEMA};

const FILE: &str = "cloud.sqlite";
/// Where `make_fixture` writes; a temporary directory when unset.
const OUT_ENV: &str = "MFTPLUS_UPGRADE_FIXTURE_DIR";

/// `(release, directory)` of every release fixture, oldest name first.
fn releases() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/upgrade");
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|err| panic!("{}: {err}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir());
    let mut releases: Vec<(String, PathBuf)> = entries
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    releases.sort();
    assert!(
        !releases.is_empty(),
        "no release fixtures under {}: run scripts/make-upgrade-fixtures.sh",
        root.display()
    );
    releases
}

/// The migrations `manifest.json` says the release's file has.
fn manifest_migrations(release: &str, dir: &Path) -> Vec<String> {
    let path = dir.join("manifest.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest.json");
    assert_eq!(manifest["release"], release, "{}", path.display());
    let names = manifest["files"][FILE]["migrations"]
        .as_array()
        .unwrap_or_else(|| panic!("{} lists no migrations for {FILE}", path.display()));
    names
        .iter()
        .map(|name| name.as_str().expect("a migration name").to_string())
        .collect()
}

/// A private copy of the release's file, so the test never changes the fixture.
fn copy_of(dir: &Path) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().join(FILE);
    std::fs::copy(dir.join(FILE), &path)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.join(FILE).display()));
    (temp, path)
}

fn current() -> Vec<String> {
    MIGRATIONS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_release_fixture_upgrades_and_passes_the_contract() {
    for (release, dir) in releases() {
        eprintln!("upgrading the SQLite fixture of {release}");
        let (_temp, path) = copy_of(&dir);
        let store = SqliteStore::open(&path).expect("open the fixture");
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            manifest_migrations(&release, &dir),
            "{release}: the file is what its manifest says"
        );
        store.migrate().await.expect("migrate forward");
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            current(),
            "{release}: upgraded to today's schema"
        );
        fixture::check(&store).await;
        contract::run_all(Arc::new(store)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_release_is_refused() {
    let (release, dir) = releases().pop().unwrap();
    let (_temp, path) = copy_of(&dir);
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    drop(store);
    // What a newer release leaves: a migration this one does not ship.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (name, applied_at_ms) VALUES ('9999_from_the_future', 1)",
        [],
    )
    .unwrap();
    let tables = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .unwrap()
    };
    let tables_before = tables(&conn);
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    match store.migrate().await {
        Err(StoreError::Migration(message)) => {
            assert!(message.starts_with(NEWER_SCHEMA), "{message}");
            assert!(message.contains("9999_from_the_future"), "{message}");
        }
        other => panic!("{release}+1: a newer database must be refused, got {other:?}"),
    }
    let mut expected = current();
    expected.push("9999_from_the_future".into());
    assert_eq!(store.applied_migrations().await.unwrap(), expected);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(tables(&conn), tables_before, "nothing was created in it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_reads_back_on_todays_code_and_the_contract_passes_beside_it() {
    let temp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&temp.path().join(FILE)).unwrap();
    fixture::write(&store).await;
    fixture::check(&store).await;
    contract::run_all(Arc::new(store)).await;
}

/// Writes `cloud.sqlite` and its manifest entry into `$MFTPLUS_UPGRADE_FIXTURE_DIR` (run by
/// `scripts/make-upgrade-fixtures.sh`), or into a temporary directory as a self-test.
#[tokio::test]
#[ignore = "writes a release fixture; run by scripts/make-upgrade-fixtures.sh"]
async fn make_fixture() {
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os(OUT_ENV).map_or(scratch.path().to_path_buf(), PathBuf::from);
    let work = scratch.path().join("work.db");
    let store = SqliteStore::open(&work).unwrap();
    fixture::write(&store).await;
    let migrations = store.applied_migrations().await.unwrap();
    drop(store);

    // One compact file without its WAL: what a backup of a stopped cloud looks like.
    let target = out.join(FILE);
    let _ = std::fs::remove_file(&target);
    let conn = rusqlite::Connection::open(&work).unwrap();
    conn.execute("VACUUM INTO ?1", [target.to_str().expect("a UTF-8 path")])
        .expect("VACUUM INTO");
    drop(conn);
    let entry = serde_json::json!({
        "schema": "schema_migrations",
        "migrations": migrations,
        "writer": "crates/mftplus-store-sqlite/tests/upgrade.rs make_fixture",
    });
    let manifest = out.join(format!("{FILE}.manifest.json"));
    std::fs::write(&manifest, format!("{entry:#}\n")).unwrap();

    let (_temp, copy) = copy_of(&out);
    let store = SqliteStore::open(&copy).unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), current());
    fixture::check(&store).await;
}
