//! Hostile clients and broken networks against the real cloud (issue 13): a cloud that takes
//! connections and never answers, bodies the cloud would refuse offered while it is down, and a
//! `hub.db` written by a hub of schema 2.

mod common;
mod offline_support;

use common::*;
use mftplus_client::AgentClient;
use offline_support::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const JSON: Option<&str> = Some("application/json");

/// `(status, body, x-hub-offline)` of a POST through the hub with a host key.
async fn post(
    hub: &TestHub,
    path: &str,
    key: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new()
        .post(hub.url(path))
        .bearer_auth(key)
        .body(body.to_string());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let queued = answer
        .headers()
        .get("x-hub-offline")
        .map(|v| v.to_str().unwrap().to_string());
    (status, answer.json().await.unwrap_or(Value::Null), queued)
}

/// Takes every connection to `addr` and never answers; aborting the task closes them all.
async fn stall(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(err) => {
                tries += 1;
                assert!(tries < 100, "cannot bind {addr}: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_that_never_answers_is_offline_for_queueable_writes() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let timings = mftplus_hub::Timings {
        queue_answer_budget: Duration::from_secs(1),
        // Without the budget an agent would wait this long for its answer.
        upstream_timeout: Duration::from_secs(30),
        ..fast_timings()
    };
    let hub = site.hub_with(&[], timings).await;
    let agent = AgentClient::new(&hub.url(""), &host.host_key).unwrap();
    agent.host_report(&report(&host.host_id, 0)).await.unwrap();

    cloud.stop().await;
    let staller = stall(site.addr).await;
    let body = |seq| serde_json::to_string(&report(&host.host_id, seq)).unwrap();
    let started = Instant::now();
    let (status, envelope, queued_header) =
        post(&hub, "/api/v1/host-report", &host.host_key, JSON, &body(1)).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{envelope}");
    assert_eq!(queued_header.as_deref(), Some("queued"));
    assert_eq!(
        envelope["blocked"], false,
        "the cached envelope: {envelope}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}: the write went to the cloud first"
    );
    assert!(
        took < Duration::from_secs(5),
        "answered after {took:?}, not within the 1 s budget"
    );
    // The next report queues behind it at once: per-host order.
    let (status, _, queued_header) =
        post(&hub, "/api/v1/host-report", &host.host_key, JSON, &body(2)).await;
    assert_eq!((status, queued_header.as_deref()), (200, Some("queued")));
    assert_eq!(queued(&hub), 2);

    // The stalled cloud goes away and a real one answers: each report arrives once, in order.
    staller.abort();
    let _ = staller.await;
    let cloud = site.restart_cloud().await;
    wait_drained(&hub).await;
    assert_eq!(stored_seqs(&cloud, &host.host_id).await, seqs(0..3));
    assert_eq!(hub.state.offline.as_ref().unwrap().dead_letter(), 0);
    hub.stop().await;
}

#[tokio::test]
async fn bodies_the_cloud_would_refuse_are_refused_by_the_hub_with_its_code_and_never_queued() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    let hub = site.hub(&[]).await;
    let key = host.host_key.as_str();
    let valid = |seq| serde_json::to_string(&report(&host.host_id, seq)).unwrap();
    let (status, body, _) = post(&hub, "/api/v1/host-report", key, JSON, &valid(0)).await;
    assert_eq!(status, 200, "{body}");

    let report_path = "/api/v1/host-report";
    let cases = [
        (JSON, "{not json".to_string()),
        (JSON, json!({"host_id": host.host_id}).to_string()),
        (
            JSON,
            json!({"host_id": host.host_id, "agent_version": "", "applied_generation": 0})
                .to_string(),
        ),
        (Some("text/plain"), valid(1)),
    ];
    // What the cloud itself answers to each, through the hub while it is up.
    let mut online = Vec::new();
    for (content_type, body) in &cases {
        let (status, answer, _) = post(&hub, report_path, key, *content_type, body).await;
        online.push((status, answer["error"]["code"].clone()));
    }
    assert_eq!(
        online,
        vec![
            (400, json!("invalid_json")),
            (400, json!("validation_failed")),
            (400, json!("validation_failed")),
            (415, json!("unsupported_media_type")),
        ]
    );

    cloud.stop().await;
    for ((content_type, body), expected) in cases.iter().zip(&online) {
        let (status, answer, _) = post(&hub, report_path, key, *content_type, body).await;
        assert_eq!(
            &(status, answer["error"]["code"].clone()),
            expected,
            "offline, {body:?}: {answer}"
        );
    }
    let verdict = format!("/api/v1/hosts/{}/signed-ops/op_1/status", host.host_id);
    let (status, answer, _) = post(&hub, &verdict, key, JSON, r#"{"status":"delivered"}"#).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("validation_failed")),
        "{answer}"
    );
    assert_eq!(queued(&hub), 0, "nothing was queued");
    // The same key with a valid body is queued: the refusals were the bodies'.
    let (status, _, queued_header) = post(&hub, report_path, key, JSON, &valid(1)).await;
    assert_eq!((status, queued_header.as_deref()), (200, Some("queued")));
    assert_eq!(queued(&hub), 1);
    hub.stop().await;
}

/// `hub.db` as hubs of schema version 2 wrote it.
const SCHEMA_2: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
CREATE TABLE auth_cache (token_hash TEXT PRIMARY KEY NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE envelopes (token_hash TEXT PRIMARY KEY NOT NULL, sealed BLOB NOT NULL);
CREATE TABLE queue (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    route           TEXT NOT NULL,
    credential      BLOB NOT NULL,
    idempotency_key TEXT NOT NULL,
    body            BLOB NOT NULL,
    enqueued_at_ms  INTEGER NOT NULL
);
ALTER TABLE queue ADD COLUMN client_cert TEXT;
PRAGMA user_version = 2;
";

#[tokio::test]
async fn a_schema_2_hub_db_keeps_its_queued_rows_and_the_hub_replays_them() {
    let (site, cloud) = Site::start().await;
    let host = site.enroll(&cloud, 1).await.remove(0);
    // What an older hub left behind: one report queued while the cloud was away.
    let salt = [7_u8; 32];
    let sealer = mftplus_hub::auth_cache::Sealer::derive(site.deploy_key.as_bytes(), &salt);
    let idempotency_key = "queued-by-a-schema-2-hub";
    let credential = sealer
        .seal(host.host_key.as_bytes(), idempotency_key.as_bytes())
        .unwrap();
    let body = serde_json::to_vec(&report(&host.host_id, 4)).unwrap();
    let db = site.data_dir.join("hub.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(SCHEMA_2).unwrap();
    conn.execute(
        "INSERT INTO meta (name, value) VALUES ('salt', ?1)",
        [salt.to_vec()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO queue (route, credential, idempotency_key, body, enqueued_at_ms) \
         VALUES ('/api/v1/host-report', ?1, ?2, ?3, 1)",
        rusqlite::params![credential, idempotency_key, body],
    )
    .unwrap();
    drop(conn);

    let hub = site.hub(&[]).await;
    wait_drained(&hub).await;
    assert_eq!(
        stored_seqs(&cloud, &host.host_id).await,
        vec!["1.0.4".to_string()],
        "the row queued under schema 2 reached the cloud"
    );
    assert_eq!(hub.state.offline.as_ref().unwrap().dead_letter(), 0);
    let version: u32 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    hub.stop().await;
}
