//! The fleet's background pass (SPEC §3 "Background work"): liveness, backup deadlines, op
//! expiry and pruning, then notifications for the events they produced. One replica runs it at
//! a time, under the `fleet-checker` lease in the database; every step is also safe to repeat.

use crate::state::AppState;
use mftplus_store::{BackupFacts, LivenessRule, NewEvent};
use mftplus_types::fleet::{DesiredState, StorageTarget};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

const LEASE: &str = "fleet-checker";

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub ran: bool,
    pub liveness_changes: usize,
    pub backups_missed: usize,
    pub ops_expired: usize,
    pub pruned_reports: u64,
}

pub async fn run(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let started_ms = state.clock.now_ms();
    crate::fleet::notify::init_cursor(&state).await;
    let every = Duration::from_secs(state.config.config.fleet.check_interval_seconds.max(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let report = pass(&state, started_ms).await;
                if report.liveness_changes + report.backups_missed + report.ops_expired > 0 {
                    tracing::info!(?report, "fleet checker pass");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// One pass, if this process holds (or takes) the lease. `grace_since_ms` is when this
/// checker started: no host is judged on silence from before then. Every replica counts the
/// fleet first, lease or not: each one answers reports with the interval sized for it.
pub async fn pass(state: &AppState, grace_since_ms: i64) -> PassReport {
    let holder = state.fleet.checker_holder.as_str();
    let fleet = &state.config.config.fleet;
    refresh_fleet_size(state).await;
    let now = state.clock.now_ms();
    let lease_ms = (fleet.check_interval_seconds as i64 * 3 * 1000).max(10_000);
    match state
        .store
        .try_acquire_lease(LEASE, holder, now, lease_ms)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            state.metrics.checker_lease_held.store(0, Ordering::Relaxed);
            return PassReport::default();
        }
        Err(err) => {
            state.metrics.checker_lease_held.store(0, Ordering::Relaxed);
            tracing::warn!(error = %err, "fleet checker lease failed");
            return PassReport::default();
        }
    }
    state.metrics.checker_lease_held.store(1, Ordering::Relaxed);
    state.metrics.checker_passes.fetch_add(1, Ordering::Relaxed);
    let mut report = PassReport {
        ran: true,
        ..PassReport::default()
    };
    // Each host is judged by the interval it was last told (decision 0024); the configured
    // thresholds are written for the configured interval.
    let rule = LivenessRule {
        now_ms: now,
        stale_after_ms: fleet.stale_after_seconds as i64 * 1000,
        down_after_ms: fleet.down_after_seconds as i64 * 1000,
        grace_since_ms,
        poll_interval_seconds: fleet.poll_interval_seconds as i64,
    };
    match state.store.liveness_pass(&rule).await {
        Ok(changes) => report.liveness_changes = changes.len(),
        Err(err) => tracing::warn!(error = %err, "liveness pass failed"),
    }
    match check_backups(state, now).await {
        Ok(missed) => report.backups_missed = missed,
        Err(err) => tracing::warn!(error = %err, "backup deadline check failed"),
    }
    match state.store.expire_ops(now).await {
        Ok(expired) => report.ops_expired = expired.len(),
        Err(err) => tracing::warn!(error = %err, "op expiry failed"),
    }
    let reports_before = now - fleet.report_retention_days as i64 * 86_400_000;
    let events_before = now - fleet.event_retention_days as i64 * 86_400_000;
    match state.store.prune_fleet(reports_before, events_before).await {
        Ok(counts) => report.pruned_reports = counts.host_reports + counts.guest_reports,
        Err(err) => tracing::warn!(error = %err, "pruning reports failed"),
    }
    notify_new_events(state).await;
    report
}

/// Counts the fleet for the adaptive poll interval, and says so when even the longest
/// interval cannot keep its reports under the configured capacity.
async fn refresh_fleet_size(state: &AppState) {
    let fleet = &state.config.config.fleet;
    let Some(hosts) = state.fleet.fleet_size.refresh(&*state.store).await else {
        return;
    };
    let capacity = fleet.report_capacity_per_second.max(1);
    if hosts.div_ceil(capacity) > crate::fleet::poll::MAX_SECONDS {
        tracing::warn!(
            hosts,
            capacity,
            "the fleet reports faster than fleet.report_capacity_per_second even at the \
             longest poll interval (3600 s); add capacity"
        );
    }
}

/// The field check on each host's latest report: a target whose policy has a backup schedule
/// and whose last successful backup is older than its deadline raises `expected_backup_missed`
/// once, until a backup succeeds again.
async fn check_backups(state: &AppState, now: i64) -> Result<usize, mftplus_store::StoreError> {
    let mut missed_total = 0;
    for facts in state.store.list_backup_facts().await? {
        let BackupFacts {
            host_id,
            customer_id,
            desired_json,
            last_backups_json,
            backup_missed_json,
        } = facts;
        let (Ok(desired), Ok(targets)) = (
            serde_json::from_str::<DesiredState>(&desired_json),
            serde_json::from_str::<Vec<StorageTarget>>(&last_backups_json),
        ) else {
            tracing::warn!(host = %host_id, "unreadable desired state or backup facts; skipped");
            continue;
        };
        let previous: BTreeSet<String> =
            serde_json::from_str(&backup_missed_json).unwrap_or_default();
        let overdue = mftplus_fleet::overdue_targets(&desired, &targets, now);
        if overdue == previous {
            continue;
        }
        let fresh = mftplus_fleet::newly_missed(&previous, &overdue);
        missed_total += fresh.len();
        let events: Vec<NewEvent> = fresh
            .iter()
            .map(|target| NewEvent {
                at_ms: now,
                kind: "expected_backup_missed".into(),
                severity: "warning".into(),
                customer_id: Some(customer_id.clone()),
                host_id: Some(host_id.clone()),
                guest_id: None,
                op_id: None,
                details_json: json!({"target": target, "policy": desired.storage.get(target).map(|p| p.backup)}).to_string(),
            })
            .collect();
        let overdue_json = serde_json::to_string(&overdue).unwrap_or_else(|_| "[]".into());
        state
            .store
            .set_backup_missed(&host_id, &overdue_json, &events)
            .await?;
    }
    Ok(missed_total)
}

use crate::fleet::notify::notify_new_events;
