//! Fleet-scale timings on a real file: report ingest in committer-sized batches and a
//! liveness pass over 100,000 hosts. Ignored by default (they take a while in debug builds);
//! run with `cargo test -p mftplus-store-sqlite --release --test fleet_scale -- --ignored
//! --nocapture`. The bounds are loose enough for a debug build on a busy machine; the printed
//! figures are what to look at.

use std::time::Instant;

use mftplus_store::statements::{record, summarise};
use mftplus_store::{FleetStore, LivenessRule, NewHostReport, Store};
use mftplus_store_sqlite::SqliteStore;

const HOSTS: usize = 100_000;
const BASE: i64 = 1_700_000_000_000;

/// Enrols the hosts directly, in one transaction: the store's one-host-per-call enrolment is
/// not what is being measured.
fn seed(path: &std::path::Path) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT INTO customers (id, name, email, locale, status, retrieval_password_hash, \
         config_json, created_at_ms, updated_at_ms) \
         VALUES ('cus-scale', 'Scale', 's@example.com', 'en', 'active', 'x', '{}', 0, 0)",
        [],
    )
    .unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO hosts (id, customer_id, key_hash, hostname, enrolled_at_ms, \
                 agent_version, desired_json, desired_updated_at_ms, last_report_at_ms) \
                 VALUES (?1, 'cus-scale', ?1, ?1, 0, '1.0.0', '{}', 0, ?2)",
            )
            .unwrap();
        for index in 0..HOSTS {
            stmt.execute(rusqlite::params![format!("hst-{index:06}"), BASE])
                .unwrap();
        }
    }
    tx.execute(
        "INSERT INTO host_liveness (host_id) SELECT id FROM hosts",
        [],
    )
    .unwrap();
    tx.commit().unwrap();
}

fn report(index: usize, at: i64) -> NewHostReport {
    let host_id = format!("hst-{index:06}");
    NewHostReport {
        report_json: format!(r#"{{"host":"{host_id}","cpu":3.5,"guests":[]}}"#),
        host_id,
        customer_id: "cus-scale".into(),
        received_at_ms: at,
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

/// This process's CPU time (user + system) in ms, from `/proc/self/stat` (10 ms ticks): on a
/// shared machine, what the pass cost, whatever else ran beside it.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which ends at the last ')'): utime is the 12th, stime
    // the 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 10
}

fn rule(now_ms: i64) -> LivenessRule {
    LivenessRule {
        now_ms,
        stale_after_ms: 1_800_000,
        down_after_ms: 3_600_000,
        grace_since_ms: 0,
        poll_interval_seconds: 300,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing run; see the module docs"]
async fn ingest_and_liveness_at_fleet_scale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scale.db");
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    seed(&path);

    let batches = 40;
    let started = Instant::now();
    for batch in 0..batches {
        let reports: Vec<NewHostReport> = (0..1_000)
            .map(|at| report((batch * 1_000 + at) % HOSTS, BASE + 1))
            .collect();
        let acks = store.ingest_host_reports(&reports).await.unwrap();
        assert!(acks.iter().all(|ack| ack.is_ok()));
    }
    let elapsed = started.elapsed();
    let rate = (batches * 1_000) as f64 / elapsed.as_secs_f64();
    println!("ingest: {rate:.0} reports/s ({batches} batches of 1000 in {elapsed:?})");

    let started = Instant::now();
    let cpu = cpu_ms();
    let quiet = store.liveness_pass(&rule(BASE + 10)).await.unwrap();
    let quiet_elapsed = started.elapsed();
    assert!(quiet.is_empty());
    println!(
        "liveness pass, {HOSTS} hosts, no change: {quiet_elapsed:?} ({} ms CPU)",
        cpu_ms() - cpu
    );

    let started = Instant::now();
    let cpu = cpu_ms();
    let (all, statements) = record(store.liveness_pass(&rule(BASE + 1_800_001))).await;
    let all_elapsed = started.elapsed();
    assert_eq!(all.unwrap().len(), HOSTS, "every host went stale");
    println!(
        "liveness pass, {HOSTS} hosts, all stale: {all_elapsed:?} ({} ms CPU)",
        cpu_ms() - cpu
    );
    for (sql, count, took) in summarise(&statements) {
        let sql: String = sql.chars().take(80).collect();
        println!("  {took:>12?} {count:>3}x {sql}");
    }
    assert!(quiet_elapsed.as_secs() < 5 && all_elapsed.as_secs() < 30);
}
