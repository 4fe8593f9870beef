//! The legitimate traffic: open-loop requests timed from their schedule.

use super::*;

/// Which part of the timeline a scheduled instant falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Warmup,
    Baseline,
    Attack,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Timeline {
    pub(super) start: Instant,
    pub(super) baseline_from: Instant,
    pub(super) attack_from: Instant,
    pub(super) end: Instant,
}

impl Timeline {
    pub(super) fn phase_start(&self, phase: Phase) -> Instant {
        match phase {
            Phase::Warmup => self.start,
            Phase::Baseline => self.baseline_from,
            Phase::Attack => self.attack_from,
        }
    }

    pub(super) fn phase_of(&self, at: Instant) -> Phase {
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
pub(super) struct LegitCounts {
    pub(super) latency_us: Histogram,
    pub(super) service_us: Histogram,
    pub(super) wake_late_us: Histogram,
    pub(super) slowest: Vec<Slow>,
    pub(super) scheduled: u64,
    pub(super) ok: u64,
    pub(super) errors: BTreeMap<String, u64>,
    pub(super) reconnects: u64,
}

impl LegitCounts {
    pub(super) fn error(&mut self, key: String) {
        *self.errors.entry(key).or_default() += 1;
    }

    /// Keeps the [`SLOWEST`] requests by latency.
    pub(super) fn note_slow(&mut self, slow: Slow) {
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

    pub(super) fn merge(&mut self, other: &LegitCounts) {
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
pub(super) struct LegitResult {
    pub(super) baseline: LegitCounts,
    pub(super) attack: LegitCounts,
}

impl LegitResult {
    pub(super) fn phase(&mut self, phase: Phase) -> Option<&mut LegitCounts> {
        match phase {
            Phase::Warmup => None,
            Phase::Baseline => Some(&mut self.baseline),
            Phase::Attack => Some(&mut self.attack),
        }
    }
}

/// One request on `stream`: write, then read the whole answer.
pub(super) async fn exchange(
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
pub(super) async fn legit_connection(
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
