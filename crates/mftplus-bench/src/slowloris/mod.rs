//! A slowloris beside legitimate traffic, for `bench/slowloris.sh` (issue 13): how a server's
//! legitimate requests fare while many connections trickle a request head that never ends, and
//! how long the server lets such a connection live.
//!
//! One run, two measured phases on one timeline (after a short warm-up that is not counted):
//!
//! - **legitimate traffic** runs throughout: `GET path` at a fixed rate (open loop), spread
//!   round-robin over a few keep-alive HTTP/1.1 connections bound to `legit_source`. Each
//!   request has a scheduled time and its latency is measured from that time, not from when it
//!   was sent, so a stalled connection is charged for every request queued behind it (no
//!   coordinated omission). A request that fails (closed, reset, timed out, not a 200) counts
//!   as an error and its connection is replaced before the next one;
//! - **baseline**: that traffic alone;
//! - **under attack**: the same traffic while `attack_connections` tasks, each bound to one of
//!   `attack_sources` (round-robin: one address, or several to look like many clients),
//!   connect, send `GET / HTTP/1.1` and `Host`, then one more header line every `trickle` and
//!   never the blank line that ends the head. When the server closes such
//!   a connection the task records how long it lived, waits `reconnect_wait` and connects
//!   again, until the phase ends. A connection closed within `refused_within` of its connect
//!   counts as refused at once (a connection cap answering 503 and closing), the others as
//!   held until a deadline. The first connects are spread over [`RAMP`].
//!
//! HTTP is written and read by hand (request line and `Host` out; status line, headers,
//! `Content-Length` or chunked body in), so nothing in a client library retries, pools or
//! reorders behind the measurement's back. With `server_pid` the server's CPU time, resident
//! memory and open descriptors are read from `/proc` as well, and with `watch_pids` each of
//! the slowest requests says how long those processes ran and waited for a CPU meanwhile
//! (`/proc/PID/task/*/schedstat`, read every [`SCHED_EVERY`] on a thread of its own), which
//! tells the server's own work from another process holding its CPU, and both from this
//! tool being late (`wake_late_*`).

use crate::histogram::Histogram;
use crate::BenchError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// The attack's first connects are spread over this long rather than sent in one burst.
pub const RAMP: Duration = Duration::from_secs(1);
/// How often the number of attack connections held open is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the watched processes' scheduler statistics are read.
pub const SCHED_EVERY: Duration = Duration::from_millis(20);
/// Legitimate requests scheduled before the end but not answered this long after it are
/// counted as errors (`unsent`) instead of being waited for.
const TAIL_GRACE: Duration = Duration::from_secs(15);
/// How many of the slowest legitimate requests each phase lists.
const SLOWEST: usize = 5;
/// A response head larger than this is an error (the answers measured are ~100 bytes).
const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct SlowlorisOptions {
    pub target: SocketAddr,
    pub path: String,
    pub attack_connections: usize,
    /// Local addresses the attacking connections are bound to, round-robin (at least one).
    pub attack_sources: Vec<IpAddr>,
    pub legit_source: IpAddr,
    /// Legitimate requests per second, over all legitimate connections.
    pub legit_rate: f64,
    pub legit_connections: usize,
    /// Legitimate traffic before the baseline, not counted.
    pub warmup: Duration,
    pub baseline: Duration,
    pub attack: Duration,
    /// Between two header lines on an attacking connection.
    pub trickle: Duration,
    /// After the server closed an attacking connection, before the next connect.
    pub reconnect_wait: Duration,
    /// An attacking connection closed sooner than this after its connect was refused at once.
    pub refused_within: Duration,
    /// A legitimate request unanswered this long is an error (`timeout`).
    pub request_timeout: Duration,
    /// The server's process, for its CPU, memory and descriptors per phase.
    pub server_pid: Option<u32>,
    /// Processes whose scheduler statistics are sampled (the server and, behind a proxy, its
    /// upstream), to say of each slow request whether they ran, waited for a CPU, or slept.
    pub watch_pids: Vec<u32>,
}

/// The legitimate traffic of one phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LegitPhase {
    pub seconds: f64,
    /// Requests scheduled in the phase (rate × seconds).
    pub scheduled: u64,
    /// Answered 200, in full.
    pub ok: u64,
    /// 200s per second of the phase.
    pub rate_per_s: f64,
    /// Everything else, by kind: `connect`, `closed`, `reset`, `timeout`, `malformed`,
    /// `status_NNN`, `unsent`.
    pub errors: BTreeMap<String, u64>,
    pub error_count: u64,
    /// Latency from each request's scheduled time to the end of its answer.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// From the request's first byte written to the end of its answer: the latency without
    /// the wait for a busy connection or a new one, and without this tool's timer (tokio wakes
    /// a sleep up to a millisecond late, which the latency above includes).
    pub service_p50_ms: f64,
    pub service_p99_ms: f64,
    pub service_max_ms: f64,
    /// How late this tool sent a request whose connection was idle at its scheduled time:
    /// its own timer and CPU, not the server. A stall here is the client's.
    pub wake_late_p99_ms: f64,
    pub wake_late_max_ms: f64,
    /// The slowest requests, to tell a stall of the server (service ≈ latency) from one of
    /// this tool (`wake_late`) or a queue behind a slow request on the same connection.
    pub slowest: Vec<Slow>,
    /// New legitimate connections opened in the phase (the first ones are opened before).
    pub reconnects: u64,
    /// CPU this tool used in the phase, percent of one core.
    pub generator_cpu_percent: f64,
    /// The server's CPU in the phase, percent of one core (with `server_pid`).
    pub server_cpu_percent: Option<f64>,
    /// The server's VmRSS at the end of the phase, KiB (with `server_pid`).
    pub server_rss_kib: Option<u64>,
    /// How busy each CPU of the machine was in the phase (all processes), percent: beside
    /// `server_cpu_percent` and `generator_cpu_percent` it shows what else ran.
    pub cpu_busy_percent: Vec<f64>,
}

/// One slow legitimate request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slow {
    /// Its scheduled time, seconds from the start of the phase.
    pub at_s: f64,
    pub latency_ms: f64,
    pub service_ms: f64,
    /// How late it was sent on an idle connection (0 when it waited for the connection).
    pub wake_late_ms: f64,
    pub connection: usize,
    /// What each watched process did while it was in flight (from `/proc/PID/task/*/schedstat`,
    /// sampled every [`SCHED_EVERY`], so over a window a little wider than the request).
    pub sched: Vec<SchedShare>,
    #[serde(skip)]
    in_flight: Option<(Instant, Instant)>,
}

/// CPU time and run-queue wait of one process's threads over a window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SchedShare {
    pub pid: u32,
    pub window_ms: f64,
    /// On a CPU.
    pub ran_ms: f64,
    /// Runnable but waiting for a CPU (someone else had it).
    pub waited_ms: f64,
}

/// What the attacking connections met.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackSummary {
    pub connections: usize,
    pub seconds: f64,
    pub trickle_seconds: f64,
    /// Connects that succeeded (the first ones and every reconnect).
    pub opened: u64,
    pub connect_errors: u64,
    /// Closed by the server (end of stream, reset, or a failed write) before the phase ended.
    pub closed_by_server: u64,
    /// Of those, closed within `refused_within_s` of the connect.
    pub refused_at_once: u64,
    pub refused_within_s: f64,
    /// Of the closed ones, how many got some answer first, by status (`none`: closed silently).
    pub answers: BTreeMap<String, u64>,
    /// How long the connections that were not refused at once lived, connect to close.
    pub held_closed: u64,
    pub lifetime_min_s: f64,
    pub lifetime_p50_s: f64,
    pub lifetime_p99_s: f64,
    pub lifetime_max_s: f64,
    /// Still open when the phase ended (their lifetime is not known).
    pub open_at_end: u64,
    /// Longest-lived of those at the end, seconds.
    pub open_at_end_oldest_s: f64,
    /// Attacking connections open at once, sampled every 100 ms over the phase.
    pub held_avg: f64,
    pub held_max: i64,
    /// Slowest connect, ms (a full accept queue shows here).
    pub connect_max_ms: f64,
    /// Most descriptors the server had open during the phase (with `server_pid`).
    pub server_fds_max: Option<u64>,
    /// Most VmRSS of the server during the phase, KiB (with `server_pid`).
    pub server_rss_max_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlowlorisSummary {
    pub target: String,
    pub path: String,
    pub legit_rate: f64,
    pub legit_connections: usize,
    pub baseline: LegitPhase,
    pub under_attack: LegitPhase,
    pub attack: AttackSummary,
}

mod attack;
mod http;
mod legit;
mod procfs;
#[cfg(test)]
mod tests;

use attack::*;
use http::*;
use legit::*;
use procfs::*;

// --- the run ------------------------------------------------------------------------------------

/// Readings of this process and the server at one instant.
#[derive(Debug, Clone)]
struct Reading {
    at: Instant,
    cpus: Vec<(u64, u64)>,
    own_cpu: Option<f64>,
    server_cpu: Option<f64>,
    server_rss: Option<u64>,
}

fn read_now(server_pid: Option<u32>) -> Reading {
    Reading {
        at: Instant::now(),
        cpus: cpu_jiffies(),
        own_cpu: cpu_seconds(None),
        server_cpu: server_pid.and_then(|pid| cpu_seconds(Some(pid))),
        server_rss: server_pid.and_then(rss_kib),
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn phase_summary(counts: &LegitCounts, seconds: f64, from: &Reading, to: &Reading) -> LegitPhase {
    let spent = to
        .at
        .duration_since(from.at)
        .as_secs_f64()
        .max(f64::EPSILON);
    LegitPhase {
        seconds,
        scheduled: counts.scheduled,
        ok: counts.ok,
        rate_per_s: counts.ok as f64 / seconds,
        error_count: counts.errors.values().sum(),
        errors: counts.errors.clone(),
        p50_ms: ms(counts.latency_us.quantile(0.50)),
        p90_ms: ms(counts.latency_us.quantile(0.90)),
        p99_ms: ms(counts.latency_us.quantile(0.99)),
        p999_ms: ms(counts.latency_us.quantile(0.999)),
        max_ms: ms(counts.latency_us.max()),
        service_p50_ms: ms(counts.service_us.quantile(0.50)),
        service_p99_ms: ms(counts.service_us.quantile(0.99)),
        service_max_ms: ms(counts.service_us.max()),
        wake_late_p99_ms: ms(counts.wake_late_us.quantile(0.99)),
        wake_late_max_ms: ms(counts.wake_late_us.max()),
        slowest: counts.slowest.clone(),
        reconnects: counts.reconnects,
        generator_cpu_percent: percent(from.own_cpu, to.own_cpu, spent).unwrap_or(f64::NAN),
        server_cpu_percent: percent(from.server_cpu, to.server_cpu, spent),
        server_rss_kib: to.server_rss,
        cpu_busy_percent: busy_percent(&from.cpus, &to.cpus),
    }
}

/// Runs the warm-up, the baseline and the attack phase (see the module docs).
pub async fn run(options: SlowlorisOptions) -> Result<SlowlorisSummary, BenchError> {
    if !(options.legit_rate > 0.0 && options.legit_rate.is_finite()) {
        return Err(BenchError::Invalid("--legit-rate must be above 0".into()));
    }
    if options.attack_sources.is_empty() {
        return Err(BenchError::Invalid(
            "--attack-source names no address".into(),
        ));
    }
    if options.trickle.is_zero() {
        return Err(BenchError::Invalid(
            "--trickle-seconds must be above 0".into(),
        ));
    }
    let options = Arc::new(options);
    // The legitimate connections are open before the clock starts.
    let mut streams = Vec::with_capacity(options.legit_connections.max(1));
    for _ in 0..options.legit_connections.max(1) {
        let stream = connect_from(options.legit_source, options.target)
            .await
            .map_err(|e| {
                BenchError::Invalid(format!(
                    "connecting to {} from {}: {e}",
                    options.target, options.legit_source
                ))
            })?;
        streams.push(stream);
    }
    let start = Instant::now() + Duration::from_millis(50);
    let baseline_from = start + options.warmup;
    let attack_from = baseline_from + options.baseline;
    let end = attack_from + options.attack;
    let timeline = Timeline {
        start,
        baseline_from,
        attack_from,
        end,
    };

    // The watched processes' scheduler statistics, read on a thread of their own so the
    // readings keep their pace whatever this runtime is doing.
    let sched_stop = Arc::new(AtomicBool::new(false));
    let sched_thread = {
        let stop = sched_stop.clone();
        let mut series = SchedSeries {
            pids: options.watch_pids.clone(),
            readings: Vec::new(),
        };
        std::thread::spawn(move || {
            while !series.pids.is_empty() && !stop.load(Ordering::Relaxed) {
                series.sample();
                std::thread::sleep(SCHED_EVERY);
            }
            series.sample();
            series
        })
    };

    let mut legit = tokio::task::JoinSet::new();
    for (index, stream) in streams.into_iter().enumerate() {
        legit.spawn(legit_connection(
            options.clone(),
            timeline,
            index,
            Some(stream),
        ));
    }

    tokio::time::sleep_until(baseline_from).await;
    let at_baseline = read_now(options.server_pid);
    tokio::time::sleep_until(attack_from).await;
    let at_attack = read_now(options.server_pid);

    let held = Arc::new(AtomicI64::new(0));
    let mut attackers = tokio::task::JoinSet::new();
    let n = options.attack_connections;
    for i in 0..n {
        let offset = RAMP.mul_f64(i as f64 / n.max(1) as f64);
        let source = options.attack_sources[i % options.attack_sources.len()];
        attackers.spawn(attacker(
            options.clone(),
            source,
            attack_from + offset,
            end,
            held.clone(),
        ));
    }
    // Sample what is held open (and the server's descriptors and memory) until the end.
    let (mut samples, mut held_sum, mut held_max) = (0u64, 0i64, 0i64);
    let (mut fds_max, mut rss_max) = (None::<u64>, None::<u64>);
    let mut tick = tokio::time::interval_at(attack_from + SAMPLE_EVERY, SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut since_server_sample = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now_held = held.load(Ordering::Relaxed);
                samples += 1;
                held_sum += now_held;
                held_max = held_max.max(now_held);
                since_server_sample += 1;
                // The server's /proc once a second: a directory of thousands of descriptors
                // is not free to list.
                if let (Some(pid), true) = (options.server_pid, since_server_sample >= 10) {
                    since_server_sample = 0;
                    fds_max = fds_max.max(open_fds(pid));
                    rss_max = rss_max.max(rss_kib(pid));
                }
            }
            () = tokio::time::sleep_until(end) => break,
        }
    }
    let at_end = read_now(options.server_pid);
    if let Some(pid) = options.server_pid {
        rss_max = rss_max.max(at_end.server_rss);
        fds_max = fds_max.max(open_fds(pid));
    }

    let mut attack = AttackCounts::default();
    while let Some(joined) = attackers.join_next().await {
        let part = joined.map_err(|e| BenchError::Invalid(e.to_string()))?;
        attack.merge(&part);
    }
    let mut traffic = LegitResult::default();
    while let Some(joined) = legit.join_next().await {
        let part = joined.map_err(|e| BenchError::Invalid(e.to_string()))?;
        traffic.baseline.merge(&part.baseline);
        traffic.attack.merge(&part.attack);
    }
    sched_stop.store(true, Ordering::Relaxed);
    let series = sched_thread
        .join()
        .map_err(|_| BenchError::Invalid("the scheduler sampler panicked".into()))?;
    for slow in traffic
        .baseline
        .slowest
        .iter_mut()
        .chain(traffic.attack.slowest.iter_mut())
    {
        if let Some((sent, done)) = slow.in_flight {
            slow.sched = series.over(sent, done);
        }
    }

    let mut lifetimes = Histogram::default();
    for ms in &attack.lifetimes_ms {
        lifetimes.record(*ms);
    }
    let seconds = |d: Duration| d.as_secs_f64();
    let lifetime_s = |ms: u64| ms as f64 / 1000.0;
    Ok(SlowlorisSummary {
        target: options.target.to_string(),
        path: options.path.clone(),
        legit_rate: options.legit_rate,
        legit_connections: options.legit_connections.max(1),
        baseline: phase_summary(
            &traffic.baseline,
            seconds(options.baseline),
            &at_baseline,
            &at_attack,
        ),
        under_attack: phase_summary(
            &traffic.attack,
            seconds(options.attack),
            &at_attack,
            &at_end,
        ),
        attack: AttackSummary {
            connections: n,
            seconds: seconds(options.attack),
            trickle_seconds: seconds(options.trickle),
            opened: attack.opened,
            connect_errors: attack.connect_errors,
            closed_by_server: attack.closed_by_server,
            refused_at_once: attack.refused_at_once,
            refused_within_s: seconds(options.refused_within),
            answers: attack.answers,
            held_closed: lifetimes.count(),
            lifetime_min_s: lifetime_s(attack.lifetimes_ms.iter().copied().min().unwrap_or(0)),
            lifetime_p50_s: lifetime_s(lifetimes.quantile(0.50)),
            lifetime_p99_s: lifetime_s(lifetimes.quantile(0.99)),
            lifetime_max_s: lifetime_s(lifetimes.max()),
            open_at_end: attack.open_at_end,
            open_at_end_oldest_s: lifetime_s(attack.open_at_end_oldest_ms),
            held_avg: if samples == 0 {
                0.0
            } else {
                held_sum as f64 / samples as f64
            },
            held_max,
            connect_max_ms: ms(attack.connect_max_us),
            server_fds_max: fds_max,
            server_rss_max_kib: rss_max,
        },
    })
}
