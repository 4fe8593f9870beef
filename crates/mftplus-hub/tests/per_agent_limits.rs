//! Issue 13's acceptance through a real hub and a real cloud: behind one hub, each agent is
//! its own address to the cloud. Agent A's wrong logins throttle A alone; A's flood is
//! rate-limited without costing agent B its reports or the hub its heartbeat; and the forwarding
//! headers A forges change nothing the cloud records.

mod common;
mod offline_support;

use common::*;
use mftplus_cloud::clock::Clock as _;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

const AGENT_A: &str = "127.0.0.2";
const AGENT_B: &str = "127.0.0.3";
const FORGED: &str = "203.0.113.77";
const PER_ADDRESS_PER_MINUTE: usize = 100;

fn agent(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login(hub: &TestHub, from: &str, password: &str) -> (u16, Value) {
    let answer = agent(from)
        .post(hub.url("/api/v1/auth/login"))
        .header("x-forwarded-for", FORGED)
        .header("x-mftplus-client-addr", FORGED)
        .json(&json!({"email": "admin@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_behind_one_hub_are_limited_and_throttled_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("cloud.db").display());
    let cloud = TestCloud::spawn_with(TestOptions {
        database_url: Some(db_url),
        config_yaml: format!(
            "rate_limit:\n  per_credential_per_minute: 100000\n  per_address_per_minute: {PER_ADDRESS_PER_MINUTE}\n\
             auth:\n  login:\n    base_delay_seconds: 60\n    account_max_delay_seconds: 60\n"
        ),
    })
    .await;
    // A fresh one-minute window, so the flood below cannot straddle two.
    cloud
        .clock
        .advance_secs(61 - cloud.clock.now_secs().rem_euclid(60));
    let operator = offline_support::operator(&cloud);
    let deploy_key = operator.create_deploy_key("site-a").await.unwrap().key;
    let customer = operator
        .create_customer(
            &serde_json::from_value(json!({"name": "Acme", "email": "ops@example.com"})).unwrap(),
        )
        .await
        .unwrap();
    let anonymous = mftplus_client::AgentClient::unenrolled(&cloud.url).unwrap();
    let host_b = anonymous
        .enroll(
            &mftplus_types::fleet::EnrollRequest {
                customer_id: customer.customer.id.clone(),
                hostname: "box-b".into(),
                agent_version: "1.0.0".into(),
                platform: None,
            },
            &customer.retrieval_password,
        )
        .await
        .unwrap();
    let data_dir = dir.path().join("hub-data");
    std::fs::create_dir(&data_dir).unwrap();
    let cloud_api = format!("{}/api", cloud.url);
    let data_dir = data_dir.display().to_string();
    let timings = mftplus_hub::Timings {
        heartbeat_every: Some(Duration::from_millis(500)),
        revalidate_every: Duration::from_secs(3600),
        ..fast_timings()
    };
    let hub = TestHub::start(
        config(&[
            ("CLOUD_API_URL", cloud_api.as_str()),
            ("HUB_REGISTRATION_KEY", deploy_key.as_str()),
            ("HUB_DATA_DIR", data_dir.as_str()),
            ("NODE_ENV", "development"),
        ]),
        timings,
    )
    .await;
    hub.wait_registered().await;

    // Agent A's five wrong passwords throttle A's address for this account…
    for _ in 0..5 {
        assert_eq!(login(&hub, AGENT_A, "not the password").await.0, 401);
    }
    let (status, body) = login(&hub, AGENT_A, &cloud.admin_password).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // …and nobody else: B signs in with the right password at once.
    let (status, body) = login(&hub, AGENT_B, &cloud.admin_password).await;
    assert_eq!(status, 200, "agent B's sign-in: {body:?}");

    // The cloud recorded A's own address, never the one A forged.
    let audit = operator.audit_page(0, 1000).await.unwrap();
    let refused: Vec<String> = audit
        .entries
        .iter()
        .filter(|e| e.event == "login_failed" || e.event == "login_throttled")
        .map(|e| e.client_ip.clone())
        .collect();
    assert_eq!(refused.len(), 6, "{refused:?}");
    assert!(refused.iter().all(|ip| ip == AGENT_A), "{refused:?}");

    // Agent A floods: the cloud limits A's address, through the hub.
    let flood = agent(AGENT_A);
    let mut limited = 0;
    for _ in 0..(PER_ADDRESS_PER_MINUTE + 50) {
        let answer = flood
            .get(hub.url("/api/v1/health"))
            .header("x-forwarded-for", FORGED)
            .send()
            .await
            .unwrap();
        if answer.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 50, "A's flood was limited: {limited} refused");
    let before = hub.state.phone_home().last_heartbeat;
    // B's reports still land, answered by the cloud (not from the hub's queue).
    let answer = agent(AGENT_B)
        .post(hub.url("/api/v1/host-report"))
        .bearer_auth(&host_b.host_key)
        .json(
            &json!({"host_id": host_b.host_id, "agent_version": "1.0.1", "applied_generation": 0}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("x-hub-offline").is_none());
    // And the hub's own heartbeat goes on being accepted.
    wait_until(
        "a heartbeat after the flood",
        Duration::from_secs(10),
        || hub.state.phone_home().last_heartbeat > before,
    )
    .await;
    assert!(hub.state.phone_home().refused.is_none());
}
