//! The fleet's hot path sends as many statements with 100,000 hosts as with 1,000
//! (`mftplus_store::contract::hot_path`, issue 17), counted where this store sends them, and
//! none of the per-request statements reads a fleet-sized table (`hosts`, `host_liveness`,
//! `customers`) sequentially: PostgreSQL's generic plan for each (the one it uses whatever the
//! parameters) has no `Seq Scan` on them. (On the tables this fleet leaves empty, such as
//! pending ops, a sequential read is what the planner rightly picks.)

use mftplus_store::contract::hot_path::{self, HOSTS_PER_CUSTOMER, POLL_SECONDS, REPORTED_AT_MS};
use mftplus_store::Store;
use mftplus_store_postgres::testing::{fresh_database, TestDatabase};
use mftplus_store_postgres::PostgresStore;
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// The contract's fleet, set-based: customers, hosts (all reported, told the same interval)
/// and their liveness rows, named as `hot_path` names them; then statistics, as autovacuum
/// would gather them on a fleet this size.
async fn seed(url: &str, hosts: usize) {
    let client = connect(url).await;
    let customers = hosts.div_ceil(HOSTS_PER_CUSTOMER) as i64;
    let (hosts, per_customer) = (hosts as i64, HOSTS_PER_CUSTOMER as i64);
    client
        .execute(
            "INSERT INTO customers (id, name, email, locale, status, retrieval_password_hash, \
               config_json, created_at_ms, updated_at_ms) \
             SELECT format('cus-scale-%s', lpad(i::text, 5, '0')), 'Scale', 's@example.com', \
               'en', 'active', 'x', '{}', 0, 0 FROM generate_series(0, $1::bigint - 1) i",
            &[&customers],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO hosts (id, customer_id, key_hash, hostname, enrolled_at_ms, \
               agent_version, desired_json, desired_updated_at_ms, last_report_at_ms, \
               poll_interval_seconds) \
             SELECT format('hst-scale-%s', lpad(i::text, 7, '0')), \
               format('cus-scale-%s', lpad((i / $2::bigint)::text, 5, '0')), \
               format('key-scale-%s', lpad(i::text, 7, '0')), \
               format('scale-%s', lpad(i::text, 7, '0')), 0, '1.0.0', '{}', 0, $3, $4 \
             FROM generate_series(0, $1::bigint - 1) i",
            &[&hosts, &per_customer, &REPORTED_AT_MS, &POLL_SECONDS],
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO host_liveness (host_id) SELECT id FROM hosts; \
             ANALYZE customers; ANALYZE hosts; ANALYZE host_liveness",
        )
        .await
        .unwrap();
}

async fn seeded(hosts: usize) -> Option<(TestDatabase, PostgresStore)> {
    let db = fresh_database().await?;
    let store = PostgresStore::connect(db.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    seed(db.url(), hosts).await;
    Some((db, store))
}

/// Sequential reads of the tables that grow with the fleet.
const FLEET_SIZED: [&str; 3] = [
    "Seq Scan on hosts ",
    "Seq Scan on host_liveness ",
    "Seq Scan on customers ",
];

/// `$n` placeholders of a statement: how many NULLs its `EXECUTE` takes.
fn parameters(sql: &str) -> usize {
    (1..=64)
        .rev()
        .find(|n| sql.contains(&format!("${n}")))
        .unwrap_or(0)
}

/// The per-request calls (everything but the checker's whole-fleet passes) never read a
/// fleet-sized table sequentially. Each statement is prepared and explained with the generic
/// plan, which is the plan for any parameter values.
async fn assert_no_seq_scans(url: &str, measured: &hot_path::Measurement) {
    let client = connect(url).await;
    client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let per_request = measured
        .iter()
        .filter(|(name, _)| name.starts_with("auth") || name.starts_with("ingest"));
    for (name, statements) in per_request {
        for statement in statements {
            let sql = statement.sql.as_str();
            if matches!(sql, "BEGIN" | "COMMIT") {
                continue;
            }
            client
                .batch_execute(&format!("DEALLOCATE ALL; PREPARE hot AS {sql}"))
                .await
                .unwrap_or_else(|err| panic!("{name}: cannot prepare `{sql}`: {err}"));
            let nulls = vec!["NULL"; parameters(sql)].join(", ");
            let execute = if nulls.is_empty() {
                "EXECUTE hot".to_string()
            } else {
                format!("EXECUTE hot({nulls})")
            };
            let plan: Vec<String> = client
                .query(&format!("EXPLAIN {execute}"), &[])
                .await
                .unwrap_or_else(|err| panic!("{name}: cannot explain `{sql}`: {err}"))
                .iter()
                .map(|row| row.get(0))
                .collect();
            let whole = |step: &String| FLEET_SIZED.iter().any(|scan| step.contains(scan));
            assert!(
                !plan.iter().any(whole),
                "{name}: `{sql}` reads a table sequentially:\n{}",
                plan.join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_path_statements_do_not_grow_with_the_fleet() {
    let (small_hosts, large_hosts) = (1_000, 100_000);
    let Some((small_db, small)) = seeded(small_hosts).await else {
        return;
    };
    let Some((large_db, large)) = seeded(large_hosts).await else {
        return;
    };
    let few = hot_path::measure(&small, small_hosts).await;
    let many = hot_path::measure(&large, large_hosts).await;
    let table = hot_path::assert_fleet_independent((small_hosts, &few), (large_hosts, &many));
    println!("{table}");
    assert_no_seq_scans(large_db.url(), &many).await;
    assert_eq!(large.backend(), "postgres");
    drop((small, large));
    small_db.drop_now().await;
    large_db.drop_now().await;
}
