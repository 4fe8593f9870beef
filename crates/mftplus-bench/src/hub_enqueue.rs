//! The edge hub's offline queue without HTTP: `tasks` concurrent producers push host reports
//! through `mftplus_hub::queue::Enqueuer` (seal the token, hand the row to the group-commit
//! writer, wait for its commit) into a fresh `hub.db`, for a fixed time. Beside the same load
//! over HTTP (`load` against a hub whose cloud is down) it shows what the HTTP path costs.

use crate::histogram::Histogram;
use crate::report;
use crate::BenchError;
use mftplus_hub::auth_cache::open_db;
use mftplus_hub::queue::{Enqueuer, QueuedWrite};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct EnqueueOptions {
    /// Where `hub.db` is created (must exist; use a fresh directory).
    pub data_dir: std::path::PathBuf,
    pub tasks: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub report_bytes: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnqueueSummary {
    pub tasks: usize,
    pub report_bytes: usize,
    pub duration_s: f64,
    /// Rows committed in the measured window.
    pub committed: u64,
    pub errors: u64,
    pub writes_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Default)]
struct TaskResult {
    latency_us: Histogram,
    committed: u64,
    errors: u64,
}

pub async fn run(options: &EnqueueOptions) -> Result<EnqueueSummary, BenchError> {
    let (conn, sealer) = open_db(&options.data_dir, "mft_dep_bench_enqueue_key")
        .map_err(|e| BenchError::Invalid(e.to_string()))?;
    let enqueuer = Enqueuer::start(Arc::new(Mutex::new(conn)), Arc::new(sealer));
    let tasks = options.tasks.max(1);
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let stop_at = measure_from + options.duration;
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let enqueuer = enqueuer.clone();
        let host_id = format!("host-{task:05}");
        let body = report::serialised(&host_id, task, options.report_bytes);
        let token = format!("mfth_bench{task:05}abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
        set.spawn(async move {
            let mut result = TaskResult::default();
            let mut n = 0_u64;
            loop {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                n += 1;
                let write = QueuedWrite {
                    route: mftplus_types::routes::HOST_REPORT.to_string(),
                    token: token.clone(),
                    idempotency_key: format!("{task:05}-{n:016x}"),
                    body: body.clone(),
                    enqueued_at_ms: 0,
                    client_cert: None,
                };
                let outcome = enqueuer.enqueue(write).await;
                let done = Instant::now();
                if done < measure_from || done >= stop_at {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        result.committed += 1;
                        result
                            .latency_us
                            .record(done.duration_since(sent).as_micros() as u64);
                    }
                    Err(_) => result.errors += 1,
                }
            }
            result
        });
    }
    let mut total = TaskResult::default();
    while let Some(joined) = set.join_next().await {
        let part = joined.map_err(|err| BenchError::Invalid(err.to_string()))?;
        total.latency_us.merge(&part.latency_us);
        total.committed += part.committed;
        total.errors += part.errors;
    }
    let seconds = options.duration.as_secs_f64();
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(EnqueueSummary {
        tasks,
        report_bytes: options.report_bytes,
        duration_s: seconds,
        committed: total.committed,
        errors: total.errors,
        writes_per_s: total.committed as f64 / seconds,
        p50_ms: ms(total.latency_us.quantile(0.50)),
        p99_ms: ms(total.latency_us.quantile(0.99)),
        max_ms: ms(total.latency_us.max()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_rows_into_a_fresh_database() {
        let dir = tempfile::tempdir().unwrap();
        let summary = run(&EnqueueOptions {
            data_dir: dir.path().to_path_buf(),
            tasks: 4,
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(50),
            report_bytes: 512,
        })
        .await
        .unwrap();
        assert!(summary.committed > 0, "{summary:?}");
        assert_eq!(summary.errors, 0);
    }
}
