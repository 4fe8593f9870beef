//! Times `Store::liveness_pass` over a large fleet: every host has reported once, then the pass
//! runs as if 45 minutes had gone by (every host turns `stale`, one event each), and once more
//! at the same instant (nothing changes: the cost of the pass the checker runs every minute
//! on a healthy fleet). Each pass also reports the time of each statement it sent, as the
//! store measured it (`mftplus_store::statements`).

use crate::report;
use crate::seed;
use crate::BenchError;
use mftplus_store::statements::{record, summarise};
use mftplus_store::{LivenessRule, NewHostReport, Store};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Hosts per customer. Enrollment counts a customer's hosts in its transaction, so one giant
/// customer would make seeding quadratic; real fleets have one host per customer anyway.
const HOSTS_PER_CUSTOMER: usize = 1_000;
/// Reports per `ingest_host_reports` call, about what the cloud's group committer batches.
const INGEST_BATCH: usize = 1_000;
const MINUTE_MS: i64 = 60_000;
/// The interval every host was told, and the one the rule is written for.
const POLL_SECONDS: i64 = 300;

/// One statement of a pass: its SQL (shortened), how often it ran and its total time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatementTime {
    pub sql: String,
    pub count: usize,
    pub ms: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LivenessSummary {
    pub hosts: usize,
    pub seed_s: f64,
    pub ingest_s: f64,
    /// The pass that moves every host to `stale` (one update and one event per host).
    pub first_pass_ms: f64,
    pub first_transitions: usize,
    /// The same pass again: nothing to change.
    pub second_pass_ms: f64,
    pub second_transitions: usize,
    pub first_pass_statements: Vec<StatementTime>,
    pub second_pass_statements: Vec<StatementTime>,
}

fn statement_times(statements: &[mftplus_store::statements::Statement]) -> Vec<StatementTime> {
    summarise(statements)
        .into_iter()
        .map(|(sql, count, took)| StatementTime {
            sql: sql.chars().take(90).collect(),
            count,
            ms: took.as_secs_f64() * 1000.0,
        })
        .collect()
}

fn minimal_row(host: &seed::SeededHost, customer_id: &str, at_ms: i64) -> NewHostReport {
    let report = report::minimal(&host.host_id);
    NewHostReport {
        host_id: host.host_id.clone(),
        customer_id: customer_id.into(),
        received_at_ms: at_ms,
        agent_version: report.agent_version.clone(),
        controller_version: None,
        applied_generation: 0,
        cpu_percent: 0.0,
        memory_used_bytes: 0,
        memory_total_bytes: 0,
        disk_used_bytes: 0,
        disk_total_bytes: 0,
        guests_total: 0,
        guests_running: 0,
        last_backups_json: "[]".into(),
        pending_signature_json: "[]".into(),
        report_json: serde_json::to_string(&report).unwrap_or_default(),
        poll_interval_seconds: POLL_SECONDS,
        guests: Vec::new(),
        idempotency_key: None,
    }
}

pub async fn run(
    database_url: &str,
    hosts: usize,
    concurrency: usize,
) -> Result<LivenessSummary, BenchError> {
    let store: Arc<dyn Store> = mftplus_cloud::db::open(database_url).await?;
    let reported_at = chrono::Utc::now().timestamp_millis();

    let seeding = Instant::now();
    let mut groups = Vec::new();
    let mut first = 0;
    while first < hosts {
        let count = HOSTS_PER_CUSTOMER.min(hosts - first);
        let customer_id = seed::create_customer(&*store, count).await?;
        let made = seed::create_hosts(
            store.clone(),
            &customer_id,
            first,
            count,
            0,
            count as u32,
            concurrency,
        )
        .await?;
        groups.push((customer_id, made));
        first += count;
    }
    let seed_s = seeding.elapsed().as_secs_f64();

    let ingesting = Instant::now();
    for (customer_id, made) in &groups {
        for chunk in made.chunks(INGEST_BATCH) {
            let rows: Vec<NewHostReport> = chunk
                .iter()
                .map(|host| minimal_row(host, customer_id, reported_at))
                .collect();
            for ack in store.ingest_host_reports(&rows).await? {
                ack?;
            }
        }
    }
    let ingest_s = ingesting.elapsed().as_secs_f64();

    // 45 minutes later: past `stale` (30 min), before `down` (60 min), the checker's defaults.
    let rule = LivenessRule {
        now_ms: reported_at + 45 * MINUTE_MS,
        stale_after_ms: 30 * MINUTE_MS,
        down_after_ms: 60 * MINUTE_MS,
        grace_since_ms: 0,
        poll_interval_seconds: POLL_SECONDS,
    };
    let timer = Instant::now();
    let (first_changes, first) = record(store.liveness_pass(&rule)).await;
    let first_pass_ms = timer.elapsed().as_secs_f64() * 1000.0;
    let first_changes = first_changes?;
    let timer = Instant::now();
    let (second_changes, second) = record(store.liveness_pass(&rule)).await;
    let second_pass_ms = timer.elapsed().as_secs_f64() * 1000.0;
    let second_changes = second_changes?;

    Ok(LivenessSummary {
        hosts,
        seed_s,
        ingest_s,
        first_pass_ms,
        first_transitions: first_changes.len(),
        second_pass_ms,
        second_transitions: second_changes.len(),
        first_pass_statements: statement_times(&first),
        second_pass_statements: statement_times(&second),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_host_goes_stale_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        // Crosses a customer boundary (1,000 hosts each) and an ingest batch.
        let summary = run(&url, 1_003, 4).await.unwrap();
        assert_eq!(summary.hosts, 1_003);
        assert_eq!(summary.first_transitions, 1_003);
        assert_eq!(summary.second_transitions, 0);
        assert!(summary.first_pass_ms > 0.0 && summary.second_pass_ms > 0.0);
        assert!(
            summary
                .first_pass_statements
                .iter()
                .any(|statement| statement.sql.starts_with("INSERT INTO events")),
            "{:?}",
            summary.first_pass_statements
        );
    }
}
