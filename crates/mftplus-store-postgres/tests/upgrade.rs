//! Upgrades from earlier releases (`docs/upgrading.md`): every `testdata/upgrade/<release>/`
//! holds a `cloud.pg.sql`, a plain `pg_dump` of a database that release's code wrote
//! (`mftplus_store::contract::fixture`). Each is restored with the real `psql` into a fresh
//! database; today's code must migrate it forward, read the release's rows back and pass the
//! whole store contract on it. A database from a newer release must be refused untouched.
//!
//! `make_fixture` (ignored) is the writer `scripts/make-upgrade-fixtures.sh` runs at a release.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use mftplus_store::contract::{self, fixture};
use mftplus_store::{Store, StoreError};
use mftplus_store_postgres::testing::fresh_database;
use mftplus_store_postgres::{PostgresStore, MIGRATIONS, NEWER_SCHEMA};

const FILE: &str = "cloud.pg.sql";
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

/// The migrations `manifest.json` says the release's dump has.
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

/// Runs a PostgreSQL client tool, panicking with its output when it fails.
fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run {tool} ({err}): install the PostgreSQL client (postgresql-client)")
        });
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Loads a plain dump into a database, stopping at the first error.
fn restore(url: &str, dump: &Path) {
    let dump = dump.to_str().expect("a UTF-8 path");
    run(
        "psql",
        &["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", dump],
    );
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
        let Some(db) = fresh_database().await else {
            return;
        };
        eprintln!("upgrading the PostgreSQL fixture of {release}");
        restore(db.url(), &dir.join(FILE));
        let store = PostgresStore::connect(db.url()).await.expect("connect");
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            manifest_migrations(&release, &dir),
            "{release}: the dump is what its manifest says"
        );
        store.migrate().await.expect("migrate forward");
        assert_eq!(
            store.applied_migrations().await.unwrap(),
            current(),
            "{release}: upgraded to today's schema"
        );
        fixture::check(&store).await;
        contract::run_all(Arc::new(store)).await;
        db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_release_is_refused() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let (release, dir) = releases().pop().unwrap();
    restore(db.url(), &dir.join(FILE));
    let store = PostgresStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    // What a newer release leaves: a migration this one does not ship.
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO schema_migrations (name, applied_at_ms) \
             VALUES ('9999_from_the_future', 1)",
            &[],
        )
        .await
        .unwrap();
    let count_tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";
    let tables_before: i64 = client.query_one(count_tables, &[]).await.unwrap().get(0);

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
    let tables_after: i64 = client.query_one(count_tables, &[]).await.unwrap().get(0);
    assert_eq!(tables_after, tables_before, "nothing was created in it");
    drop((client, store));
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_reads_back_on_todays_code_and_the_contract_passes_beside_it() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    fixture::write(&store).await;
    fixture::check(&store).await;
    contract::run_all(Arc::new(store)).await;
    db.drop_now().await;
}

/// Writes `cloud.pg.sql` (the real `pg_dump`, plain SQL) and its manifest entry into
/// `$MFTPLUS_UPGRADE_FIXTURE_DIR` (run by `scripts/make-upgrade-fixtures.sh`), or into a
/// temporary directory as a self-test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes a release fixture; run by scripts/make-upgrade-fixtures.sh"]
async fn make_fixture() {
    let Some(db) = fresh_database().await else {
        panic!("the PostgreSQL fixture needs PostgreSQL");
    };
    let scratch = tempfile::tempdir().unwrap();
    let out = std::env::var_os(OUT_ENV).map_or(scratch.path().to_path_buf(), PathBuf::from);
    let store = PostgresStore::connect(db.url()).await.unwrap();
    fixture::write(&store).await;
    let migrations = store.applied_migrations().await.unwrap();
    drop(store);

    // Owners and grants name roles of this machine; a restore must not need them.
    let target = out.join(FILE);
    let file = format!("--file={}", target.display());
    let args = [
        "--no-owner",
        "--no-privileges",
        "--format=plain",
        &file,
        db.url(),
    ];
    run("pg_dump", &args);
    let entry = serde_json::json!({
        "schema": "schema_migrations",
        "migrations": migrations,
        "pg_dump": run("pg_dump", &["--version"]).trim(),
        "writer": "crates/mftplus-store-postgres/tests/upgrade.rs make_fixture",
    });
    let manifest = out.join(format!("{FILE}.manifest.json"));
    std::fs::write(&manifest, format!("{entry:#}\n")).unwrap();
    db.drop_now().await;

    let Some(db) = fresh_database().await else {
        return;
    };
    restore(db.url(), &target);
    let store = PostgresStore::connect(db.url()).await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), current());
    fixture::check(&store).await;
    drop(store);
    db.drop_now().await;
}
