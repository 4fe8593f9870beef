//! The closed-loop load generator: `connections` tasks, each with its own share of the hosts
//! and its own keep-alive connection, each sending the next host's report as soon as the
//! previous answer arrived. Nothing is shared while measuring (each task keeps its own
//! histogram and counters; they merge at the end), so the generator's own cost stays flat.

use crate::histogram::Histogram;
use crate::report;
use crate::seed::SeededHost;
use crate::BenchError;
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base URL of the cloud, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub duration: Duration,
    /// Excluded from the figures: connections open, caches fill, the committer finds its pace.
    pub warmup: Duration,
    pub connections: usize,
    pub report_bytes: usize,
}

/// What one run measured; printed as one JSON line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoadSummary {
    pub hosts: usize,
    pub connections: usize,
    pub report_bytes: usize,
    pub duration_s: f64,
    /// Requests completed in the measured window, whatever their answer.
    pub requests: u64,
    /// Of those, answered 200.
    pub ok: u64,
    /// Everything else, by status code (`transport` for connection errors).
    pub errors: BTreeMap<String, u64>,
    /// Successful reports per second.
    pub reports_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU the generator itself used, in percent of one core: near 100 means the generator,
    /// not the cloud, may be the limit.
    pub generator_cpu_percent: f64,
}

#[derive(Default)]
struct TaskResult {
    latency_us: Histogram,
    requests: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

struct Target {
    auth: HeaderValue,
    body: Bytes,
}

/// Process CPU time (user + system) from `/proc/self/stat`, in seconds. Linux reports it in
/// clock ticks, which are 100 per second on every platform this runs on.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub async fn run(hosts: &[SeededHost], options: &LoadOptions) -> Result<LoadSummary, BenchError> {
    if hosts.is_empty() {
        return Err(BenchError::Invalid("the key file lists no hosts".into()));
    }
    let connections = options.connections.clamp(1, hosts.len());
    let endpoint = format!("{}/api/v1/host-report", options.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;

    // Every byte that goes on the wire is prepared before the clock starts.
    let mut shares: Vec<Vec<Target>> = (0..connections).map(|_| Vec::new()).collect();
    for (index, host) in hosts.iter().enumerate() {
        let auth = HeaderValue::from_str(&format!("Bearer {}", host.key)).map_err(|_| {
            BenchError::Invalid(format!("the key of {} is not a header", host.host_id))
        })?;
        let body = Bytes::from(report::serialised(
            &host.host_id,
            index,
            options.report_bytes,
        ));
        shares[index % connections].push(Target { auth, body });
    }

    let started = Instant::now();
    let measure_from = started + options.warmup;
    let stop_at = measure_from + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for share in shares {
        let client = client.clone();
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let mut result = TaskResult::default();
            let json = HeaderValue::from_static("application/json");
            for target in share.iter().cycle() {
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let outcome = client
                    .post(&endpoint)
                    .header(AUTHORIZATION, target.auth.clone())
                    .header(CONTENT_TYPE, json.clone())
                    .body(target.body.clone())
                    .send()
                    .await;
                let status = match outcome {
                    // The answer is read in full so the connection goes back to the pool.
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.bytes().await {
                            Ok(_) => Some(status),
                            Err(_) => None,
                        }
                    }
                    Err(_) => None,
                };
                let done = Instant::now();
                if done < measure_from || done >= stop_at {
                    continue;
                }
                result.requests += 1;
                result
                    .latency_us
                    .record(done.duration_since(sent).as_micros() as u64);
                match status {
                    Some(200) => result.ok += 1,
                    Some(code) => *result.errors.entry(code.to_string()).or_default() += 1,
                    None => *result.errors.entry("transport".into()).or_default() += 1,
                }
            }
            result
        });
    }

    // The generator's CPU over the measured window only.
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_at_start = process_cpu_seconds();
    tokio::time::sleep_until(stop_at.into()).await;
    let cpu_at_end = process_cpu_seconds();

    let mut total = TaskResult::default();
    while let Some(joined) = tasks.join_next().await {
        let part = joined.map_err(|err| BenchError::Invalid(err.to_string()))?;
        total.latency_us.merge(&part.latency_us);
        total.requests += part.requests;
        total.ok += part.ok;
        for (code, count) in part.errors {
            *total.errors.entry(code).or_default() += count;
        }
    }
    let seconds = options.duration.as_secs_f64();
    let cpu = match (cpu_at_start, cpu_at_end) {
        (Some(a), Some(b)) => (b - a) / seconds * 100.0,
        _ => f64::NAN,
    };
    Ok(LoadSummary {
        hosts: hosts.len(),
        connections,
        report_bytes: options.report_bytes,
        duration_s: seconds,
        requests: total.requests,
        ok: total.ok,
        errors: total.errors,
        reports_per_s: total.ok as f64 / seconds,
        p50_ms: ms(total.latency_us.quantile(0.50)),
        p90_ms: ms(total.latency_us.quantile(0.90)),
        p99_ms: ms(total.latency_us.quantile(0.99)),
        max_ms: ms(total.latency_us.max()),
        generator_cpu_percent: cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_readable() {
        let cpu = process_cpu_seconds().expect("/proc/self/stat parses");
        assert!(cpu >= 0.0);
    }
}
