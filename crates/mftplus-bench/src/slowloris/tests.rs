//! The bench tool's own checks, including a whole run against a toy server.

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
        match tokio::time::timeout_at(head_started + deadline, stream.read_buf(&mut buf)).await {
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
    let (baseline, attacked, attack) = (&summary.baseline, &summary.under_attack, &summary.attack);
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
