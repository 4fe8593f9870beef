//! The fleet's hot path sends as many statements with 100,000 hosts as with 1,000
//! (`mftplus_store::contract::hot_path`, issue 17), counted by SQLite's own profile hook, and
//! none of the per-request statements scans a table: SQLite's plan for each is a search.

use mftplus_store::contract::hot_path::{self, HOSTS_PER_CUSTOMER, POLL_SECONDS, REPORTED_AT_MS};
use mftplus_store::statements::Statement;
use mftplus_store::Store;
use mftplus_store_sqlite::SqliteStore;
use rusqlite::{params, Connection};
use std::path::Path;

/// The contract's fleet, set-based in one transaction: customers, hosts (all reported, told
/// the same interval) and their liveness rows, named as `hot_path` names them.
fn seed(path: &Path, hosts: usize) {
    let mut conn = Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    let customers = hosts.div_ceil(HOSTS_PER_CUSTOMER);
    tx.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO customers (id, name, email, locale, status, retrieval_password_hash, \
           config_json, created_at_ms, updated_at_ms) \
         SELECT printf('cus-scale-%05d', i), 'Scale', 's@example.com', 'en', 'active', 'x', \
           '{}', 0, 0 FROM n",
        params![customers as i64],
    )
    .unwrap();
    tx.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO hosts (id, customer_id, key_hash, hostname, enrolled_at_ms, agent_version, \
           desired_json, desired_updated_at_ms, last_report_at_ms, poll_interval_seconds) \
         SELECT printf('hst-scale-%07d', i), printf('cus-scale-%05d', i / ?2), \
           printf('key-scale-%07d', i), printf('scale-%07d', i), 0, '1.0.0', '{}', 0, ?3, ?4 \
         FROM n",
        params![
            hosts as i64,
            HOSTS_PER_CUSTOMER as i64,
            REPORTED_AT_MS,
            POLL_SECONDS
        ],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO host_liveness (host_id) SELECT id FROM hosts",
        [],
    )
    .unwrap();
    tx.commit().unwrap();
}

async fn seeded(dir: &Path, hosts: usize) -> SqliteStore {
    let path = dir.join(format!("fleet-{hosts}.db"));
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    seed(&path, hosts);
    store
}

/// The per-request calls (everything but the checker's whole-fleet passes) search, never scan:
/// `EXPLAIN QUERY PLAN` of each statement they sent (the plan does not depend on the values).
fn assert_no_scans(path: &Path, measured: &hot_path::Measurement) {
    let conn = Connection::open(path).unwrap();
    let per_request = measured
        .iter()
        .filter(|(name, _)| name.starts_with("auth") || name.starts_with("ingest"));
    for (name, statements) in per_request {
        for Statement { sql, .. } in statements {
            if matches!(sql.as_str(), "BEGIN IMMEDIATE" | "COMMIT") {
                continue;
            }
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let unbound = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(unbound), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN ")),
                "{name}: `{sql}` scans: {plan:#?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_path_statements_do_not_grow_with_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let (small_hosts, large_hosts) = (1_000, 100_000);
    let small = seeded(dir.path(), small_hosts).await;
    let large = seeded(dir.path(), large_hosts).await;
    let few = hot_path::measure(&small, small_hosts).await;
    let many = hot_path::measure(&large, large_hosts).await;
    let table = hot_path::assert_fleet_independent((small_hosts, &few), (large_hosts, &many));
    println!("{table}");
    assert_no_scans(&dir.path().join(format!("fleet-{large_hosts}.db")), &many);
    assert_eq!(small.backend(), "sqlite");
}
