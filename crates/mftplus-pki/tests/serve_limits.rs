//! The serve loop's limits against raw clients on loopback: a client that trickles its headers
//! (slowloris), a keep-alive connection left idle and an upload that stalls are all closed
//! within their deadlines; handlers see the peer address; a stop lets the request in flight
//! finish.

use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::Router;
use mftplus_pki::serve::{serve, Limits};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const LIMITS: Limits = Limits {
    header_read: Duration::from_millis(500),
    body_idle: Duration::from_millis(500),
    drain: Duration::from_secs(5),
    max_connections: 20_000,
    max_connections_per_address: 1_024,
    max_uri_bytes: 8 * 1024,
    max_header_count: 100,
    max_header_bytes: 32 * 1024,
};

async fn start() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/upload",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(800)).await;
                "done"
            }),
        );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(tcp, app, LIMITS, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Everything the server sends until it closes; panics if it keeps the connection past `within`.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    stream.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_idle_keep_alive_and_stalled_bodies_are_cut_off() {
    let (addr, _stop) = start().await;
    tokio::task::spawn_blocking(move || {
        // Slowloris: half a request head, then nothing.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let started = Instant::now();
        read_until_closed(&mut slow, Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );

        // A keep-alive connection that answers one request and then sends nothing.
        let mut idle = TcpStream::connect(addr).unwrap();
        idle.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let text = read_until_closed(&mut idle, Duration::from_secs(5));
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains("127.0.0.1:"),
            "the handler saw the peer: {text}"
        );

        // An upload that stops halfway.
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled
            .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            .unwrap();
        let started = Instant::now();
        let text = read_until_closed(&mut stalled, Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(
            !text.contains(" 200 "),
            "a stalled body is not accepted: {text}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_the_request_in_flight_finish() {
    let (addr, stop) = start().await;
    let in_flight = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        read_until_closed(&mut stream, Duration::from_secs(5))
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let text = in_flight.await.unwrap();
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("done"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(addr).is_err(),
        "no new connection after the stop"
    );
}
