//! 64 MiB up and 64 MiB down through the hub while the process's resident memory is sampled:
//! a hub that buffered a body whole would grow by at least the body's size. Alone in its own
//! test binary so no other test's allocations blur the measurement.

mod common;

use axum::body::{Body, Bytes};
use common::*;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use mftplus_hub::testing::{pattern_byte, pattern_chunk, StandInCloud};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOTAL: u64 = 64 * 1024 * 1024;
const CHUNK: u64 = 64 * 1024;
/// Far below the 64 MiB a buffering hub would need for one body.
const MAX_GROWTH_BYTES: u64 = 24 * 1024 * 1024;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Samples RSS every few milliseconds until told to stop; returns the peak.
fn sample_peak() -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let task = tokio::spawn(async move {
        let mut peak = 0;
        while !flag.load(Ordering::SeqCst) {
            peak = peak.max(rss_bytes());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        peak.max(rss_bytes())
    });
    (done, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_mib_each_way_with_bounded_memory() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let timings = mftplus_hub::Timings {
        heartbeat_every: Some(Duration::from_secs(3600)),
        revalidate_every: Duration::from_secs(3600),
        ..fast_timings()
    };
    let hub = TestHub::start(cloud_config(&cloud.base_url()), timings).await;
    hub.wait_registered().await;
    // Warm every path once so one-off allocations (TLS roots, pools, buffers) are in the baseline.
    assert_eq!(
        get(&hub.url("/api/v1/stream?bytes=1048576")).await.status,
        200
    );

    let baseline = rss_bytes();
    let (done, peak) = sample_peak();

    // Upload: generated on the fly, never held whole by the test either.
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let chunks = futures_util::stream::iter(0..TOTAL / CHUNK).map(move |i| {
        counter.fetch_add(CHUNK, Ordering::Relaxed);
        Ok::<_, std::io::Error>(Frame::data(pattern_chunk(i * CHUNK, CHUNK as usize)))
    });
    let upload = http::Request::post(hub.url("/api/v1/sink"))
        .header("content-type", "application/octet-stream")
        .body(Body::new(StreamBody::new(chunks)))
        .unwrap();
    let answer = send(upload).await;
    assert_eq!(answer.status, 200);
    let seen = answer.json();
    assert_eq!(seen["bytes"], TOTAL, "{seen}");
    assert_eq!(seen["pattern_ok"], true);
    assert_eq!(sent.load(Ordering::Relaxed), TOTAL);

    // Download: checked frame by frame as it arrives.
    let response = client()
        .request(
            http::Request::get(hub.url(&format!("/api/v1/stream?bytes={TOTAL}")))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let data: Bytes = match frame.unwrap().into_data() {
            Ok(data) => data,
            Err(_) => continue,
        };
        for (i, byte) in data.iter().enumerate() {
            assert_eq!(
                *byte,
                pattern_byte(received + i as u64),
                "at {}",
                received + i as u64
            );
        }
        received += data.len() as u64;
    }
    assert_eq!(received, TOTAL);

    done.store(true, Ordering::SeqCst);
    let peak = peak.await.unwrap();
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "RSS baseline {} MiB, peak growth {} KiB",
        baseline >> 20,
        growth >> 10
    );
    assert!(
        growth < MAX_GROWTH_BYTES,
        "RSS grew by {} MiB while 128 MiB streamed through the hub",
        growth / (1024 * 1024)
    );
    hub.stop().await;
    cloud.stop().await;
}
