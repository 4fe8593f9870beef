//! Times `Store::liveness_pass` over a large fleet: every host has reported once, then the pass
//! runs as if 45 minutes had gone by (every host turns `stale`, one event each), and once more
//! at the same instant (nothing changes: the cost of the pass the checker runs every minute
//! on a healthy fleet).

use crate::report;
use crate::seed;
use crate::BenchError;
use mftplus_store::{NewHostReport, Store};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Hosts per customer. Enrollment counts a customer's hosts in its transaction, so one giant
/// customer would make seeding quadratic; real fleets have one host per customer anyway.
const HOSTS_PER_CUSTOMER: usize = 1_000;
/// Reports per `ingest_host_reports` call, about what the cloud's group committer batches.
const INGEST_BATCH: usize = 1_000;
const MINUTE_MS: i64 = 60_000;

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
    let now = reported_at + 45 * MINUTE_MS;
    let (stale, down) = (30 * MINUTE_MS, 60 * MINUTE_MS);
    let timer = Instant::now();
    let first_changes = store.liveness_pass(now, stale, down, 0).await?;
    let first_pass_ms = timer.elapsed().as_secs_f64() * 1000.0;
    let timer = Instant::now();
    let second_changes = store.liveness_pass(now, stale, down, 0).await?;
    let second_pass_ms = timer.elapsed().as_secs_f64() * 1000.0;

    Ok(LivenessSummary {
        hosts,
        seed_s,
        ingest_s,
        first_pass_ms,
        first_transitions: first_changes.len(),
        second_pass_ms,
        second_transitions: second_changes.len(),
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
    }
}
