//! Fleet-scale timings on PostgreSQL: report ingest in committer-sized batches and a liveness
//! pass over 100,000 hosts, with the time of each statement the store sent. Ignored by
//! default; run with `cargo test -p mftplus-store-postgres --release --test fleet_scale --
//! --ignored --nocapture` (needs `MFTPLUS_TEST_PG_URL`). The bounds are loose; the printed
//! figures are what to look at (docs/benchmarks.md, "Liveness pass").

use std::time::Instant;

use mftplus_store::contract::hot_path::{customer_id, host_id, REPORTED_AT_MS};
use mftplus_store::statements::{record, summarise, Statement};
use mftplus_store::{FleetStore, LivenessRule, NewHostReport, Store};
use mftplus_store_postgres::testing::fresh_database;
use mftplus_store_postgres::PostgresStore;
use tokio_postgres::NoTls;

const HOSTS: usize = 100_000;
const MINUTE_MS: i64 = 60_000;

/// One customer per host, every host enrolled and `ok`, none reported yet; then statistics,
/// as autovacuum would gather them on a fleet this size.
async fn seed(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "INSERT INTO customers (id, name, email, locale, status, retrieval_password_hash, \
               config_json, created_at_ms, updated_at_ms) \
             SELECT format('cus-scale-%s', lpad(i::text, 5, '0')), 'Scale', 's@example.com', \
               'en', 'active', 'x', '{{}}', 0, 0 FROM generate_series(0, {last}) i; \
             INSERT INTO hosts (id, customer_id, key_hash, hostname, enrolled_at_ms, \
               agent_version, desired_json, desired_updated_at_ms) \
             SELECT format('hst-scale-%s', lpad(i::text, 7, '0')), \
               format('cus-scale-%s', lpad(i::text, 5, '0')), \
               format('key-scale-%s', lpad(i::text, 7, '0')), 'scale', 0, '1.0.0', \
               '{{\"guests\":{{}}}}', 0 FROM generate_series(0, {last}) i; \
             INSERT INTO host_liveness (host_id) SELECT id FROM hosts; \
             ANALYZE customers; ANALYZE hosts; ANALYZE host_liveness",
            last = HOSTS - 1
        ))
        .await
        .unwrap();
}

fn report(n: usize) -> NewHostReport {
    let host_id = host_id(n);
    NewHostReport {
        report_json: format!(r#"{{"host_id":"{host_id}","cpu":3.5,"guests":[]}}"#),
        customer_id: customer_id(n),
        host_id,
        received_at_ms: REPORTED_AT_MS,
        agent_version: "1.0.1".into(),
        controller_version: Some("2.0.0".into()),
        applied_generation: 0,
        cpu_percent: 3.5,
        memory_used_bytes: 1 << 30,
        memory_total_bytes: 8 << 30,
        disk_used_bytes: 1 << 34,
        disk_total_bytes: 1 << 36,
        guests_total: 0,
        guests_running: 0,
        last_backups_json: "[]".into(),
        pending_signature_json: "[]".into(),
        poll_interval_seconds: 300,
        guests: Vec::new(),
        idempotency_key: None,
    }
}

fn rule(now_ms: i64) -> LivenessRule {
    LivenessRule {
        now_ms,
        stale_after_ms: 30 * MINUTE_MS,
        down_after_ms: 60 * MINUTE_MS,
        grace_since_ms: 0,
        poll_interval_seconds: 300,
    }
}

/// CPU time (user + system, ms) of this database's server processes other than `client`'s
/// own, from `/proc/<pid>/stat` (the server runs on this machine): what the pass cost the
/// server, whatever else ran beside it.
async fn server_cpu_ms(client: &tokio_postgres::Client) -> u64 {
    let rows = client
        .query(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .filter_map(|row| {
            let pid: i32 = row.get(0);
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
            Some((fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?) * 10)
        })
        .sum()
}

fn print_statements(statements: &[Statement]) {
    for (sql, count, took) in summarise(statements) {
        let sql: String = sql.chars().take(80).collect();
        println!("  {took:>12?} {count:>3}x {sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing run; see the module docs"]
async fn ingest_and_liveness_at_fleet_scale() {
    let Some(db) = fresh_database().await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    seed(db.url()).await;

    // Every host reports once, as the benchmark's fleet has: the host rows get their second
    // versions, as they would in service.
    let started = Instant::now();
    for batch in 0..HOSTS / 1_000 {
        let reports: Vec<NewHostReport> = (0..1_000).map(|at| report(batch * 1_000 + at)).collect();
        let acks = store.ingest_host_reports(&reports).await.unwrap();
        assert!(acks.iter().all(|ack| ack.is_ok()));
    }
    let elapsed = started.elapsed();
    println!(
        "ingest: {:.0} reports/s (100 batches of 1000 in {elapsed:?})",
        HOSTS as f64 / elapsed.as_secs_f64()
    );

    let (observer, connection) = tokio_postgres::connect(db.url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    let later = REPORTED_AT_MS + 45 * MINUTE_MS;
    for (name, now, expected) in [
        ("no change", REPORTED_AT_MS + MINUTE_MS, 0),
        ("all stale", later, HOSTS),
        ("no change again", later, 0),
    ] {
        let cpu = server_cpu_ms(&observer).await;
        let started = Instant::now();
        let (changes, statements) = record(store.liveness_pass(&rule(now))).await;
        let elapsed = started.elapsed();
        let cpu = server_cpu_ms(&observer).await - cpu;
        assert_eq!(changes.unwrap().len(), expected, "{name}");
        println!("liveness pass, {HOSTS} hosts, {name}: {elapsed:?} ({cpu} ms server CPU)");
        print_statements(&statements);
        assert!(elapsed.as_secs() < 60, "{name}: {elapsed:?}");
    }
    drop((store, observer));
    db.drop_now().await;
}
