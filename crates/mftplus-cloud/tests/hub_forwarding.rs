//! Client addresses through edge hubs (issue 13): the cloud believes the address a hub forwards
//! for only when the hub proves itself (its id and deploy key), and then rate-limits, throttles
//! and audits each agent by its own address — one chatty agent no longer costs the others, or
//! the hub's own heartbeat, their requests. Anyone else's forwarding headers change nothing.

mod common;
mod hub_support;

use common::*;
use hub_support::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_types::hubs::forwarding::{CLIENT_ADDR_HEADER, PROXY_HUB_HEADER, PROXY_KEY_HEADER};
use serde_json::{json, Value};

async fn cloud(per_address_per_minute: u32) -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "rate_limit:\n  per_credential_per_minute: 100000\n  per_address_per_minute: {per_address_per_minute}\n"
        ),
        ..TestOptions::default()
    })
    .await
}

/// The headers a hub sets when it forwards for `addr`.
fn forwarded(hub_id: &str, key: &str, addr: &str) -> Vec<(String, String)> {
    vec![
        (CLIENT_ADDR_HEADER.into(), addr.into()),
        (PROXY_HUB_HEADER.into(), hub_id.into()),
        (PROXY_KEY_HEADER.into(), key.into()),
        // What an agent might add itself: never believed from it.
        ("x-forwarded-for".into(), "203.0.113.66".into()),
    ]
}

async fn wrong_login(cloud: &TestCloud, headers: &[(String, String)]) -> Reply {
    let body =
        serde_json::to_vec(&json!({"email": "admin@example.com", "password": "not the password"}))
            .unwrap();
    let mut headers = headers.to_vec();
    headers.push(("content-type".into(), "application/json".into()));
    call_raw(
        cloud,
        &Cred::None,
        "POST",
        "/api/v1/auth/login",
        body,
        &headers,
    )
    .await
}

/// The client addresses the audit log recorded for refused logins (failed or throttled),
/// oldest first.
async fn refused_login_addresses(cloud: &TestCloud) -> Vec<String> {
    let audit = call(
        cloud,
        &admin(cloud),
        "GET",
        "/api/v1/audit?limit=1000",
        None,
    )
    .await;
    let mut entries: Vec<&Value> = audit.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "login_failed" || e["event"] == "login_throttled")
        .collect();
    entries.sort_by_key(|e| e["seq"].as_i64());
    entries
        .iter()
        .map(|e| e["client_ip"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn a_proven_hub_names_the_agent_and_nobody_else_can() {
    let cloud = cloud(100_000).await;
    let (key, hub_id) = registered_hub(&cloud).await;
    let other_key = deploy_key(&cloud, "another-site").await;

    // The hub's own proof: the agent's address is what the cloud records.
    wrong_login(&cloud, &forwarded(&hub_id, &key.key, "10.20.0.7")).await;
    // An agent forging the headers without the key, with an unknown key, or with another
    // key's hub id: the connection's own address is recorded.
    wrong_login(&cloud, &forwarded(&hub_id, "", "10.20.0.8")).await;
    wrong_login(
        &cloud,
        &forwarded(
            &hub_id,
            "mft_dep_0000000000000000000000000000000000000000",
            "10.20.0.9",
        ),
    )
    .await;
    wrong_login(&cloud, &forwarded(&hub_id, &other_key.key, "10.20.0.10")).await;
    // Half the headers: not believed either.
    wrong_login(&cloud, &[(CLIENT_ADDR_HEADER.into(), "10.20.0.11".into())]).await;
    // Not an address: not believed.
    wrong_login(&cloud, &forwarded(&hub_id, &key.key, "10.20.0.12:5555")).await;

    assert_eq!(
        refused_login_addresses(&cloud).await,
        vec![
            "10.20.0.7",
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1"
        ]
    );
}

#[tokio::test]
async fn one_agents_flood_does_not_cost_the_others_or_the_hubs_heartbeat() {
    let cloud = cloud(10).await;
    // Start at the top of a one-minute window, so the flood cannot straddle two.
    use mftplus_cloud::clock::Clock as _;
    cloud
        .clock
        .advance_secs(61 - cloud.clock.now_secs().rem_euclid(60));
    let (key, hub_id) = registered_hub(&cloud).await;
    let health = |headers: Vec<(String, String)>| {
        let cloud = &cloud;
        async move {
            call_raw(
                cloud,
                &Cred::None,
                "GET",
                "/api/v1/health",
                vec![],
                &headers,
            )
            .await
        }
    };
    // The registration above used some of the hub's own budget; the flood uses agent A's.
    let mut refused = 0;
    for _ in 0..30 {
        if health(forwarded(&hub_id, &key.key, "10.30.0.1"))
            .await
            .status
            == 429
        {
            refused += 1;
        }
    }
    assert!(
        refused >= 20,
        "agent A's flood was limited: {refused} refused"
    );
    let limited = health(forwarded(&hub_id, &key.key, "10.30.0.1")).await;
    assert_eq!((limited.status, limited.code()), (429, "rate_limited"));
    // Agent B behind the same hub keeps its own budget.
    let other = health(forwarded(&hub_id, &key.key, "10.30.0.2")).await;
    assert_eq!(other.status, 200, "agent B: {:?}", other.body);
    // The hub's own heartbeat comes without forwarding headers: its address, its budget.
    let beat = call(
        &cloud,
        &key.cred(),
        "POST",
        &format!("/api/v1/hubs/{hub_id}/heartbeat"),
        Some(heartbeat_body(true)),
    )
    .await;
    assert_eq!(beat.status, 200, "the hub's heartbeat: {:?}", beat.body);
}
