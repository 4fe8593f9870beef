//! `Idempotency-Key` on the report routes over HTTP (decision 0011): a repeated key is
//! acknowledged with the same envelope but stored once; a malformed key is refused (400 `validation_failed`).

mod common;
mod fleet_support;

use fleet_support::*;
use mftplus_cloud::testing::TestCloud;
use serde_json::Value;

async fn post(cloud: &TestCloud, host: &Enrolled, seq: u64, key: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/host-report", cloud.url))
        .bearer_auth(&host.host_key)
        .json(&report(&host.host_id, seq));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_repeated_key_is_acknowledged_and_stored_once() {
    let cloud = TestCloud::spawn().await;
    let host = enroll(&cloud).await;
    let first = post(&cloud, &host, 0, Some("hub-7f3a")).await;
    let again = post(&cloud, &host, 1, Some("hub-7f3a")).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(again, first, "the replay gets the same envelope");
    assert_eq!(post(&cloud, &host, 2, None).await.0, 200);
    assert_eq!(
        post(&cloud, &host, 3, None).await.0,
        200,
        "no key, no dedup"
    );

    for bad in ["", "has space", &"k".repeat(129)] {
        let (status, body) = post(&cloud, &host, 9, Some(bad)).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed");
    }

    let rows = mftplus_client::Client::new(
        &cloud.url,
        mftplus_client::Credential::ApiKey(cloud.admin_api_key.clone()),
    )
    .unwrap()
    .host_reports(&host.host_id, Some(100))
    .await
    .unwrap();
    let mut generations: Vec<u64> = rows
        .iter()
        .map(|r| r.report["applied_generation"].as_u64().unwrap())
        .collect();
    generations.sort();
    assert_eq!(generations, vec![0, 2, 3]);
}
