//! The shared store contract on a fresh PostgreSQL database per test, plus the promises only
//! PostgreSQL makes: several processes (here: several independent stores) on one database.

use std::sync::Arc;

use mftplus_store::{NewAuditEntry, Store};
use mftplus_store_postgres::testing::fresh_database;
use mftplus_store_postgres::{PostgresStore, MIGRATIONS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_a_fresh_database() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.expect("connect");
    mftplus_store::contract::run_all(Arc::new(store)).await;
    db.drop_now().await;
}

/// Grants (decision 0022) alone, for a quick run; `run_all` includes them. Two independent
/// stores stand for two cloud processes racing on one transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_contract() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect(db.url()).await.expect("connect"));
    store.migrate().await.unwrap();
    mftplus_store::contract::transfer_grants(&*store).await;
    mftplus_store::contract::concurrent_grants(store).await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_migrating_at_once_apply_each_migration_once() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(PostgresStore::connect(db.url()).await.unwrap()));
    }
    let tasks: Vec<_> = stores
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("concurrent migrate");
    }
    let names: Vec<String> = MIGRATIONS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(stores[0].applied_migrations().await.unwrap(), names);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_appending_at_once_share_one_chain() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let first = Arc::new(PostgresStore::connect(db.url()).await.unwrap());
    let second = Arc::new(PostgresStore::connect(db.url()).await.unwrap());
    first.migrate().await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|index| {
            let store = if index % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { store.append_audit(&audit_entry(index)).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("append");
    }
    let rows = second.list_audit(0, 100).await.unwrap();
    let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1].prev_hash, pair[0].hash,
            "the chain forked at seq {}",
            pair[1].seq
        );
    }
    db.drop_now().await;
}

#[tokio::test]
async fn audit_rows_cannot_be_updated_but_can_be_deleted() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    store.append_audit(&audit_entry(1)).await.unwrap();
    store.append_audit(&audit_entry(2)).await.unwrap();

    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let err = client
        .execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1", &[])
        .await
        .expect_err("an UPDATE on audit_log must fail");
    let message = err
        .as_db_error()
        .map(|db| db.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("append-only"), "unexpected error: {err:?}");
    let deleted = client
        .execute("DELETE FROM audit_log WHERE seq = 1", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 1, "retention pruning deletes rows");
    drop(client);
    drop(store);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_guard_drops_the_database() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let name = db.name().to_string();
    let store = PostgresStore::connect(db.url()).await.unwrap();
    store.ping().await.unwrap();
    // The store's pool still holds a session; the guard must end it and drop anyway.
    drop(db);
    let admin_url = std::env::var(mftplus_store_postgres::testing::URL_ENV).unwrap();
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let left = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(
        left.is_none(),
        "database {name} still exists after its guard was dropped"
    );
}

#[tokio::test]
async fn connect_rejects_a_bad_url() {
    let err = PostgresStore::connect("not a url").await.unwrap_err();
    assert!(
        matches!(err, mftplus_store::StoreError::Backend(_)),
        "{err:?}"
    );
}

fn audit_entry(index: i64) -> NewAuditEntry {
    NewAuditEntry {
        ts_ms: 1_000 + index,
        event: "user.create".into(),
        actor: "admin@example.com".into(),
        target: format!("user:{index}"),
        outcome: "success".into(),
        client_ip: "127.0.0.1".into(),
        details: serde_json::json!({"index": index}),
    }
}
