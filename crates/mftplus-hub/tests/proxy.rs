//! The proxy against the stand-in cloud: methods, paths, queries, headers, hop-by-hop removal,
//! forwarded headers, upgrades, error classification and connection reuse.

mod common;

use axum::body::Body;
use common::*;
use mftplus_hub::testing::StandInCloud;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn registered_pair(timings: mftplus_hub::Timings) -> (StandInCloud, TestHub) {
    let cloud = StandInCloud::start(&[KEY]).await;
    let hub = TestHub::start(cloud_config(&cloud.base_url()), timings).await;
    hub.wait_registered().await;
    (cloud, hub)
}

/// Heartbeats off the pool's back, so connection counts are the proxy's alone.
fn quiet_timings() -> mftplus_hub::Timings {
    mftplus_hub::Timings {
        heartbeat_every: Some(Duration::from_secs(3600)),
        revalidate_every: Duration::from_secs(3600),
        ..fast_timings()
    }
}

#[tokio::test]
async fn forwards_methods_paths_queries_and_end_to_end_headers() {
    let (cloud, hub) = registered_pair(quiet_timings()).await;
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        let body = if method == "GET" { "" } else { "payload bytes" };
        let request = http::Request::builder()
            .method(method)
            .uri(hub.url("/api/v1/echo/a/b%20c?x=1&y=two%20words&x=3"))
            .header("host", "hub.example:3002")
            .header("x-agent", "agent-7")
            .header("authorization", "Bearer agent-token")
            .header("connection", "x-drop")
            .header("x-drop", "must not pass")
            .header("keep-alive", "timeout=5")
            .header("proxy-authorization", "Basic Zm9vOmJhcg==")
            .header("te", "trailers")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https")
            .body(Body::from(body))
            .unwrap();
        let answer = send(request).await;
        assert_eq!(answer.status, 200, "{method}");
        let echo = answer.json();
        assert_eq!(echo["method"], method);
        assert_eq!(echo["path"], "/api/v1/echo/a/b%20c");
        assert_eq!(echo["query"], "x=1&y=two%20words&x=3");
        assert_eq!(echo["body"], body);
        let headers = &echo["headers"];
        assert_eq!(headers["x-agent"][0], "agent-7");
        assert_eq!(headers["authorization"][0], "Bearer agent-token");
        for gone in ["x-drop", "keep-alive", "proxy-authorization", "te"] {
            assert!(
                headers.get(gone).is_none(),
                "{gone} reached the cloud: {headers}"
            );
        }
        if let Some(connection) = headers.get("connection") {
            assert!(!connection.to_string().contains("x-drop"), "{connection}");
        }
        // Replaced, not appended: the hub is the first hop it trusts (issue 13).
        assert_eq!(headers["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));
        assert_eq!(headers["x-forwarded-proto"][0], "http");
        assert_eq!(headers["x-forwarded-host"][0], "hub.example:3002");
        assert_eq!(headers["host"][0], cloud.addr.to_string());
    }

    // Hop-by-hop headers in the cloud's answer stop at the hub too.
    let request = http::Request::get(hub.url("/api/v1/echo"))
        .header("x-echo-hop", "1")
        .body(Body::empty())
        .unwrap();
    let answer = send(request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["x-end-to-end"], "kept");
    for gone in ["x-secret", "keep-alive", "proxy-authenticate"] {
        assert!(
            !answer.headers.contains_key(gone),
            "{gone}: {:?}",
            answer.headers
        );
    }
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let (cloud, hub) = registered_pair(quiet_timings()).await;
    let before = cloud.state.connections.load(Ordering::SeqCst);
    for i in 0..20 {
        let answer = get(&hub.url(&format!("/api/v1/echo/{i}"))).await;
        assert_eq!(answer.status, 200);
    }
    let opened = cloud.state.connections.load(Ordering::SeqCst) - before;
    assert!(
        opened <= 1,
        "20 sequential requests opened {opened} upstream connections"
    );
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn an_upgrade_is_tunnelled_both_ways() {
    let (cloud, hub) = registered_pair(quiet_timings()).await;
    let mut stream = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    stream
        .write_all(
            b"GET /api/v1/upgrade HTTP/1.1\r\nHost: hub\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");

    for message in [b"hello through the hub".to_vec(), vec![7u8; 1 << 20]] {
        let (mut read, mut write) = stream.split();
        let send = async {
            write.write_all(&message).await.unwrap();
        };
        let mut back = vec![0u8; message.len()];
        let receive = async {
            read.read_exact(&mut back).await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(send, receive)
        })
        .await
        .expect("echo through the tunnel");
        assert_eq!(back, message);
    }
    drop(stream);
    hub.stop().await;
    cloud.stop().await;
}

#[tokio::test]
async fn a_dead_cloud_is_a_502_not_a_500() {
    let (cloud, hub) = registered_pair(quiet_timings()).await;
    cloud.stop().await;
    let answer = send(
        http::Request::post(hub.url("/api/v1/echo"))
            .body(Body::from("x"))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 502);
    let body = answer.json();
    assert_eq!(body["error"]["code"], "bad_gateway");
    // Production mode: the agent sees no internal detail.
    assert_eq!(body["error"]["message"], "cannot reach the cloud");
    assert_eq!(answer.headers["x-hub-error-source"], "upstream");
    // The request never reached the cloud, so even a POST may be retried.
    assert_eq!(answer.headers["x-hub-retry"], "safe");
    hub.stop().await;
}

#[tokio::test]
async fn a_silent_cloud_is_a_504() {
    let timings = mftplus_hub::Timings {
        upstream_timeout: Duration::from_millis(300),
        ..quiet_timings()
    };
    let (cloud, hub) = registered_pair(timings).await;
    let answer = get(&hub.url("/api/v1/slow?ms=3000")).await;
    assert_eq!(answer.status, 504);
    assert_eq!(answer.json()["error"]["code"], "gateway_timeout");
    assert_eq!(answer.headers["x-hub-retry"], "safe", "GET is idempotent");
    let answer = get(&hub.url("/api/v1/slow?ms=20")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"finally");
    hub.stop().await;
    cloud.stop().await;
}
