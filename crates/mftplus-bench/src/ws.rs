//! Upgraded (WebSocket-style) connections held through a proxy, for `bench/hub_proxy.sh`.
//!
//! `echo` is the upstream: it answers any request carrying `Connection: upgrade` with 101 and
//! then echoes bytes; every other request gets 503 (so a hub pointed at it keeps retrying its
//! registration, which leaves its proxy path open). `hold` opens N upgraded connections through
//! the proxy, pings each one every few seconds with a small payload and checks the echo.
//!
//! It is not a WebSocket implementation: after the 101 the bytes are not framed. A proxy that
//! forwards upgrades copies bytes blindly, so framing would measure nothing more.

use crate::BenchError;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Request heads larger than this are refused (the bench sends ~100 bytes).
const MAX_HEAD: usize = 16 * 1024;
const PING: &[u8; 16] = b"ping-0123456789\n";

/// Reads up to the blank line ending an HTTP/1.1 head; returns the head and any bytes after.
async fn read_head(stream: &mut TcpStream) -> Result<(String, Vec<u8>), BenchError> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(BenchError::Invalid(
                "connection closed before a full head".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(BenchError::Invalid("head too large".into()));
        }
    }
}

fn asks_upgrade(head: &str) -> bool {
    head.lines().skip(1).any(|line| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        name.trim().eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    })
}

async fn echo_one(mut stream: TcpStream) -> Result<(), BenchError> {
    let (head, rest) = read_head(&mut stream).await?;
    if !asks_upgrade(&head) {
        let body = r#"{"error":{"code":"echo_only","message":"upgrade requests only"}}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).await?;
        return Ok(());
    }
    stream
        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await?;
    stream.write_all(&rest).await?;
    let (mut reader, mut writer) = stream.split();
    tokio::io::copy(&mut reader, &mut writer).await?;
    Ok(())
}

/// Serves the echo upstream on `listener` until the process is stopped.
pub async fn echo(listener: TcpListener) -> Result<(), BenchError> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            // A peer that goes away is the normal end of a held connection.
            let _ = echo_one(stream).await;
        });
    }
}

#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// `host:port` of the proxy (the hub).
    pub via: String,
    pub connections: usize,
    /// Connections being opened at once.
    pub open_concurrency: usize,
    pub ping_every: Duration,
    /// How long to hold after all connections are open.
    pub hold: Duration,
}

#[derive(Debug, Serialize)]
pub struct HoldSummary {
    pub requested: usize,
    pub opened: usize,
    pub open_failures: usize,
    pub open_seconds: f64,
    pub pings_ok: u64,
    pub ping_failures: u64,
    /// Connections still open (every ping answered) when the hold ended.
    pub alive_at_end: u64,
    pub first_error: Option<String>,
}

async fn open_one(via: &str) -> Result<TcpStream, BenchError> {
    let mut stream = TcpStream::connect(via).await?;
    stream.set_nodelay(true)?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {via}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let (head, rest) = read_head(&mut stream).await?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "101" || !rest.is_empty() {
        let first = head.lines().next().unwrap_or("").to_string();
        return Err(BenchError::Invalid(format!("no upgrade: {first}")));
    }
    Ok(stream)
}

async fn ping(stream: &mut TcpStream) -> Result<(), BenchError> {
    stream.write_all(PING).await?;
    let mut back = [0u8; PING.len()];
    stream.read_exact(&mut back).await?;
    if &back != PING {
        return Err(BenchError::Invalid("echo differs from the ping".into()));
    }
    Ok(())
}

/// Opens the connections, announces `holding N` on stderr, pings each one every
/// `ping_every` for `hold`, then closes them all.
pub async fn hold(options: &HoldOptions) -> Result<HoldSummary, BenchError> {
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(options.open_concurrency.max(1)));
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..options.connections {
        let via = options.via.clone();
        let gate = gate.clone();
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await;
            open_one(&via).await
        });
    }
    let mut streams = Vec::with_capacity(options.connections);
    let mut first_error = None;
    while let Some(joined) = opening.join_next().await {
        match joined {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(e)) => {
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let opened = streams.len();
    let open_seconds = started.elapsed().as_secs_f64();
    eprintln!("holding {opened} of {} connections", options.connections);

    let pings_ok = Arc::new(AtomicU64::new(0));
    let ping_failures = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + options.hold;
    let mut holders = tokio::task::JoinSet::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let (ok, failed) = (pings_ok.clone(), ping_failures.clone());
        let every = options.ping_every;
        // Spread the pings over the interval instead of sending them all in one burst.
        let offset = every.mul_f64(i as f64 / opened.max(1) as f64);
        holders.spawn(async move {
            let mut next = tokio::time::Instant::now() + offset;
            while next < deadline {
                tokio::time::sleep_until(next).await;
                if ping(&mut stream).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
                ok.fetch_add(1, Ordering::Relaxed);
                next += every;
            }
            tokio::time::sleep_until(deadline).await;
            true
        });
    }
    let mut alive_at_end = 0;
    while let Some(joined) = holders.join_next().await {
        if joined.unwrap_or(false) {
            alive_at_end += 1;
        }
    }
    Ok(HoldSummary {
        requested: options.connections,
        opened,
        open_failures: options.connections - opened,
        open_seconds,
        pings_ok: pings_ok.load(Ordering::Relaxed),
        ping_failures: ping_failures.load(Ordering::Relaxed),
        alive_at_end,
        first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_is_read_from_the_connection_header() {
        assert!(asks_upgrade(
            "GET / HTTP/1.1\r\nHost: x\r\nconnection: keep-alive, Upgrade\r\n\r\n"
        ));
        assert!(!asks_upgrade(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
        ));
    }

    #[tokio::test]
    async fn held_connections_echo_through_the_upstream_directly() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(echo(listener));
        let summary = hold(&HoldOptions {
            via: addr,
            connections: 20,
            open_concurrency: 5,
            ping_every: Duration::from_millis(100),
            hold: Duration::from_millis(350),
        })
        .await
        .unwrap();
        server.abort();
        assert_eq!(summary.opened, 20, "{summary:?}");
        assert_eq!(summary.alive_at_end, 20, "{summary:?}");
        assert!(summary.pings_ok >= 40, "{summary:?}");
        assert_eq!(summary.ping_failures, 0);
    }
}
