//! Prometheus metrics, served on their own listener so they never share the API's exposure.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::chunk_commit::CommitStats;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub auth_failures: AtomicU64,
    pub access_denied: AtomicU64,
    pub rate_limited: AtomicU64,
    pub audit_events: AtomicU64,
    pub audit_write_failures: AtomicU64,
    /// Chunks a transfer recorded that the payload store no longer has (an alert).
    pub chunks_missing: AtomicU64,
    /// Handlers that overran `server.limits.handler_seconds` (answered 503, finished later).
    pub handler_timeouts: AtomicU64,
    /// Shared with the chunk committer, which counts into it.
    pub chunk_commits: Arc<CommitStats>,
    /// Fleet checker passes this replica ran under the `fleet-checker` lease: summed over the
    /// replicas it grows by one per interval, whatever their number.
    pub checker_passes: AtomicU64,
    /// 1 while this replica held the lease at its last pass: which replica runs the fleet's
    /// background work.
    pub checker_lease_held: AtomicU64,
}

impl Metrics {
    pub fn record_request(&self, route: &'static str, status: u16) {
        *mftplus_base::sync::lock(&self.requests)
            .entry((route, status))
            .or_insert(0) += 1;
    }

    /// The unlabelled counters: name, help, value.
    fn counters(&self) -> [(&'static str, &'static str, &AtomicU64); 10] {
        [
            (
                "mftplus_auth_failures_total",
                "Requests with a credential that was refused.",
                &self.auth_failures,
            ),
            (
                "mftplus_access_denied_total",
                "Authenticated requests refused by RBAC.",
                &self.access_denied,
            ),
            (
                "mftplus_rate_limited_total",
                "Requests refused by a rate limit.",
                &self.rate_limited,
            ),
            (
                "mftplus_audit_events_total",
                "Audit log entries written.",
                &self.audit_events,
            ),
            (
                "mftplus_audit_write_failures_total",
                "Audit entries that could not be written.",
                &self.audit_write_failures,
            ),
            (
                "mftplus_chunks_missing_total",
                "Recorded chunks the payload store no longer has; alert on any increase.",
                &self.chunks_missing,
            ),
            (
                "mftplus_handler_timeouts_total",
                "Requests answered 503 because their handler overran its budget.",
                &self.handler_timeouts,
            ),
            (
                "mftplus_chunk_commit_batches_total",
                "Transactions of the chunk committer, each after one blob sync.",
                &self.chunk_commits.batches,
            ),
            (
                "mftplus_chunk_commit_rows_total",
                "Chunk rows committed by the chunk committer.",
                &self.chunk_commits.rows,
            ),
            (
                "mftplus_fleet_checker_passes_total",
                "Fleet checker passes this replica ran under the fleet-checker lease.",
                &self.checker_passes,
            ),
        ]
    }

    pub fn render(&self, uptime_secs: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP mftplus_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE mftplus_http_requests_total counter\n");
        for ((route, status), count) in mftplus_base::sync::lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "mftplus_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        for (name, help, value) in self.counters() {
            write_metric(
                &mut out,
                "counter",
                name,
                help,
                value.load(Ordering::Relaxed),
            );
        }
        let gauges = [
            (
                "mftplus_chunk_commit_pending",
                "Chunk rows waiting for their commit.",
                self.chunk_commits.pending.load(Ordering::Relaxed) as u64,
            ),
            (
                "mftplus_fleet_checker_lease_held",
                "1 while this replica holds the fleet-checker lease.",
                self.checker_lease_held.load(Ordering::Relaxed),
            ),
            (
                "mftplus_uptime_seconds",
                "Seconds since start.",
                uptime_secs,
            ),
        ];
        for (name, help, value) in gauges {
            write_metric(&mut out, "gauge", name, help, value);
        }
        out
    }
}

/// One unlabelled sample with its HELP and TYPE lines (Prometheus text format).
fn write_metric(out: &mut String, kind: &str, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}
