//! The dead letter against the stand-in cloud (issue 13): a queued write the cloud refuses on
//! replay is kept, not dropped; it is counted on `/hub/offline` and `/hub/diagnose`, listed
//! (without token or body) and replayed only with the hub's deploy key, and a replay sends it
//! to the cloud again.

mod common;

use common::*;
use mftplus_hub::testing::StandInCloud;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "mfth_agent_key_for_the_dead_letter";

async fn post_report(hub: &TestHub, version: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(hub.url("/api/v1/host-report"))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(&json!({"host_id": "h1", "agent_version": version, "applied_generation": 0}))
        .send()
        .await
        .unwrap()
}

async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = tokio::net::TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot bind {addr} again");
}

/// `(status, JSON body)` of a call to the hub's own dead-letter routes.
async fn call(
    hub: &TestHub,
    method: reqwest::Method,
    path: &str,
    auth: Option<&str>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, hub.url(path));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_write_refused_on_replay_is_kept_counted_listed_and_replayed_with_the_deploy_key() {
    let cloud = StandInCloud::start(&[KEY]).await;
    let addr = cloud.addr;
    let data = tempfile::tempdir().unwrap();
    let base = cloud.base_url();
    let data_dir = data.path().display().to_string();
    let vars = [
        ("CLOUD_API_URL", base.as_str()),
        ("HUB_REGISTRATION_KEY", KEY),
        ("HUB_DATA_DIR", data_dir.as_str()),
    ];
    let hub = TestHub::start(config(&vars), fast_timings()).await;
    hub.wait_registered().await;
    assert_eq!(post_report(&hub, "1.0.0", "k-first").await.status(), 200);

    cloud.stop().await;
    let answer = post_report(&hub, "1.0.1", "k-refused").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-hub-offline"], "queued");

    // The cloud comes back and refuses the row (as it refuses a report naming another host).
    let refusal =
        json!({"error": {"code": "forbidden", "message": "the report names another host"}});
    let cloud =
        StandInCloud::start_answering(rebind(addr).await, &[KEY], Some((403, refusal))).await;
    let offline = hub.state.offline.clone().unwrap();
    wait_until("the refusal", Duration::from_secs(20), || {
        offline.queued() == 0 && offline.dead_letter() == 1
    })
    .await;

    let metric: Value = reqwest::get(hub.url("/hub/offline"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (metric["queued"].as_u64(), metric["deadLetter"].as_u64()),
        (Some(0), Some(1))
    );
    let diagnosis: Value = reqwest::get(hub.url("/hub/diagnose"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(diagnosis["offline"], json!({"queued": 0, "deadLetter": 1}));

    // Only the hub's own deploy key lists or replays it.
    let list = "/hub/offline/dead-letter";
    let replay = "/hub/offline/dead-letter/replay";
    let near_miss = format!("Bearer {}x", &KEY[..KEY.len() - 1]);
    let refused = [
        None,
        Some("Bearer mft_dep_wrong"),
        Some(near_miss.as_str()),
        Some(KEY),
        Some("Basic bWZ0Og=="),
    ];
    for auth in refused {
        for (method, path) in [
            (reqwest::Method::GET, list),
            (reqwest::Method::POST, replay),
        ] {
            let (status, body) = call(&hub, method.clone(), path, auth).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
        }
    }
    assert_eq!(offline.dead_letter(), 1, "nothing moved without the key");

    let bearer = format!("Bearer {KEY}");
    let (status, listed) = call(&hub, reqwest::Method::GET, list, Some(&bearer)).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["deadLetter"], 1);
    let row = &listed["rows"][0];
    assert_eq!(row["route"], "/api/v1/host-report");
    assert_eq!(row["status"], 403);
    assert_eq!(row["code"], "forbidden");
    assert_eq!(row["idempotencyKey"], "k-refused");
    assert!(
        row["seq"].as_i64().is_some() && row["deadAt"].is_string(),
        "{row}"
    );
    let text = listed.to_string();
    assert!(!text.contains(TOKEN), "the listing shows the token: {text}");
    assert!(
        !text.contains("1.0.1"),
        "the listing shows the body: {text}"
    );

    // Fixed on the cloud's side; the operator replays, and the row is applied once.
    cloud.answer_reports_with(None);
    let (status, replayed) = call(&hub, reqwest::Method::POST, replay, Some(&bearer)).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["replayed"], 1);
    wait_until("the replayed row", Duration::from_secs(20), || {
        offline.queued() == 0
    })
    .await;
    assert_eq!(offline.dead_letter(), 0);
    let sent: Vec<u16> = cloud
        .reports()
        .iter()
        .filter(|r| r.header("idempotency-key") == vec!["k-refused"])
        .map(|r| r.status)
        .collect();
    assert_eq!(sent, vec![403, 200], "refused once, then applied once");
    let (_, listed) = call(&hub, reqwest::Method::GET, list, Some(&bearer)).await;
    assert_eq!(listed, json!({"deadLetter": 0, "rows": []}));
    hub.stop().await;
    cloud.stop().await;
}
