//! The customer's geo policy, reported by its guest controller, reconciled by the cloud into
//! the edge firewall, and the operator's remove-all override. Cloudflare cannot run here: the
//! real client talks to the local fake in `mftplus_notify::testing` (docs say so).

mod common;
mod fleet_support;

use common::*;
use fleet_support::*;
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_notify::testing::cloudflare::{FakeCloudflare, TOKEN, ZONE};
use serde_json::json;

#[tokio::test]
async fn guest_geo_policy_reaches_the_edge_firewall_and_can_be_removed() {
    let cf = FakeCloudflare::start().await;
    cf.seed(&["hand-written admin block"]);
    let config = format!(
        "rate_limit:\n  per_credential_per_minute: 100000\n  per_address_per_minute: 100000\n\
         edge_firewall:\n  cloudflare:\n    enabled: true\n    base_url: {}\n    api_token: {TOKEN}\n",
        cf.base_url
    );
    let cloud = TestCloud::spawn_with(TestOptions {
        config_yaml: config,
        ..TestOptions::default()
    })
    .await;
    let customer_id = customer(&cloud, json!({"cloudflare_zone_id": ZONE})).await;
    let host = enroll_into(&cloud, &customer_id).await;
    let guest_key = Cred::Bearer(guest(&cloud, &host, "ctrl").await);
    let tag = format!("mftplus:{customer_id}");
    let geo =
        |mode: &str, countries: &[&str]| json!({"geo": {"mode": mode, "countries": countries}});

    let reply = call(
        &cloud,
        &guest_key,
        "POST",
        "/api/v1/report",
        Some(geo("block", &["RU", "KP"])),
    )
    .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let rules = cf.rules_of(&tag);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(rules[0]["expression"].as_str().unwrap().contains("\"RU\""));

    // The same policy again changes nothing at the edge.
    let writes = cf.mutations();
    call(
        &cloud,
        &guest_key,
        "POST",
        "/api/v1/report",
        Some(geo("block", &["RU", "KP"])),
    )
    .await;
    assert_eq!(cf.mutations(), writes);

    // A new policy replaces the rule.
    call(
        &cloud,
        &guest_key,
        "POST",
        "/api/v1/report",
        Some(geo("allow", &["HU"])),
    )
    .await;
    let rules = cf.rules_of(&tag);
    assert_eq!(rules.len(), 1);
    assert!(rules[0]["expression"].as_str().unwrap().contains("\"HU\""));

    // Self-lockout: the operator removes every rule the cloud manages for the customer, and
    // only those.
    let removed = call(
        &cloud,
        &admin(&cloud),
        "POST",
        &format!("/api/v1/customers/{customer_id}/geo/remove-all"),
        None,
    )
    .await;
    assert_eq!(removed.status, 200, "{:?}", removed.body);
    assert_eq!(removed.body["removed"], 1);
    assert!(cf.rules_of(&tag).is_empty());
    assert_eq!(cf.rules().len(), 1, "the hand-written rule stays");
    let events = call(
        &cloud,
        &admin(&cloud),
        "GET",
        &format!("/api/v1/events?customer={customer_id}"),
        None,
    )
    .await;
    let kinds: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"geo_applied") && kinds.contains(&"geo_rules_removed"),
        "{kinds:?}"
    );

    // The token never leaves the cloud: not in the controller config, not in config get.
    let config = with_password(
        &cloud,
        "GET",
        &format!("/api/v1/config/{customer_id}"),
        RETRIEVAL_PASSWORD,
        None,
    )
    .await;
    assert!(!config.body.to_string().contains(TOKEN));
    let shown = call(
        &cloud,
        &admin(&cloud),
        "GET",
        "/api/v1/server-config/edge_firewall.cloudflare.api_token",
        None,
    )
    .await;
    assert!(!shown.body.to_string().contains(TOKEN), "{:?}", shown.body);
}
