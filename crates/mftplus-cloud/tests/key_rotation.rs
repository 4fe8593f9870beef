//! Key rotation without downtime (`docs/key-rotation.md`), driven through the real clients
//! against a real cloud whose clock the tests move: a host key and a deploy key are each
//! replaced while a client keeps using the old one throughout its grace; the new one works; the
//! old one is refused once the grace is over; the audit log has the rotation and no key.

mod common;

use mftplus_base::Clock;
use mftplus_client::{AgentClient, Client, ClientError, Credential, HubClient};
use mftplus_cloud::testing::{TestCloud, TestOptions};
use mftplus_types::fleet::{CreateCustomer, EnrollRequest, HostReport, ReEnrollRequest};
use mftplus_types::hubs::{HubHeartbeatRequest, HubRegisterRequest};
use serde_json::json;

const GRACE: i64 = 3600;

async fn cloud() -> TestCloud {
    TestCloud::spawn_with(TestOptions {
        config_yaml: format!(
            "{}fleet:\n  host_key_grace_seconds: {GRACE}\nhubs:\n  deploy_key_grace_seconds: 600\n",
            TestOptions::default().config_yaml
        ),
        ..TestOptions::default()
    })
    .await
}

fn operator(cloud: &TestCloud) -> Client {
    Client::new(&cloud.url, Credential::ApiKey(cloud.admin_api_key.clone())).unwrap()
}

/// A fresh customer's box: (host id, its agent client, the retrieval password).
async fn enrolled(cloud: &TestCloud) -> (String, AgentClient, String) {
    let (host_id, _, agent, password) = enrolled_with_key(cloud).await;
    (host_id, agent, password)
}

/// [`enrolled`] with the host key itself: (host id, key, agent client, password).
async fn enrolled_with_key(cloud: &TestCloud) -> (String, String, AgentClient, String) {
    let created = operator(cloud)
        .create_customer(&CreateCustomer {
            id: None,
            name: "Kovács Kft".into(),
            email: "it@kovacs.example.com".into(),
            domain: None,
            locale: None,
            retrieval_password: None,
            config: None,
        })
        .await
        .unwrap();
    let anonymous = AgentClient::unenrolled(&cloud.url).unwrap();
    let enrolled = anonymous
        .enroll(
            &EnrollRequest {
                customer_id: created.customer.id.clone(),
                hostname: "box".into(),
                agent_version: "1.0.0".into(),
                platform: None,
            },
            &created.retrieval_password,
        )
        .await
        .unwrap();
    let agent = anonymous.with_key(&enrolled.host_key);
    (
        enrolled.host_id,
        enrolled.host_key,
        agent,
        created.retrieval_password,
    )
}

fn report(host_id: &str) -> HostReport {
    serde_json::from_value(
        json!({"host_id": host_id, "agent_version": "1.0.0", "applied_generation": 0}),
    )
    .unwrap()
}

#[track_caller]
fn refused(result: Result<impl std::fmt::Debug, ClientError>, status: u16, code: &str) {
    match result {
        Err(err) => {
            assert_eq!(err.status(), Some(status), "{err}");
            assert_eq!(err.code(), code, "{err}");
        }
        Ok(value) => panic!("expected {status} {code}, got {value:?}"),
    }
}

/// An RFC 3339 time between two instants (the cloud's clock runs between the test's reads).
#[track_caller]
fn within(text: &str, from_ms: i64, to_ms: i64) {
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis();
    assert!(
        (from_ms..=to_ms).contains(&at),
        "{text} not in [{from_ms}, {to_ms}]"
    );
}

async fn audit_of(cloud: &TestCloud, event: &str) -> Vec<mftplus_store::AuditRow> {
    let rows = cloud.state.store.list_audit(0, 10_000).await.unwrap();
    rows.into_iter().filter(|row| row.event == event).collect()
}

#[tokio::test]
async fn a_host_key_rotation_keeps_the_old_key_working_through_its_grace() {
    let cloud = cloud().await;
    let (host_id, old, _) = enrolled(&cloud).await;
    old.host_report(&report(&host_id)).await.unwrap();
    let started = cloud.clock.now_ms();

    let rotated = old.rotate_host_key(&host_id, "rotation-1").await.unwrap();
    assert_eq!(rotated.host_id, host_id);
    assert!(rotated.host_key.starts_with("mfth_") && rotated.host_key.len() == 45);
    assert!(!rotated.repeated);
    within(
        &rotated.previous_key_valid_until,
        started + GRACE * 1000,
        cloud.clock.now_ms() + GRACE * 1000,
    );
    let new = old.with_key(&rotated.host_key);

    // Both keys work during the grace, for every host route.
    for agent in [&old, &new] {
        agent.host_report(&report(&host_id)).await.unwrap();
        agent.desired_state(&host_id).await.unwrap();
        agent.signed_ops(&host_id).await.unwrap();
    }

    // The agent lost the answer: the same call again gets the same key; another call with the
    // replaced key does not get a second one.
    let again = old.rotate_host_key(&host_id, "rotation-1").await.unwrap();
    assert_eq!(again.host_key, rotated.host_key);
    assert!(again.repeated);
    assert_eq!(
        again.previous_key_valid_until,
        rotated.previous_key_valid_until
    );
    refused(
        old.rotate_host_key(&host_id, "someone-else").await,
        409,
        "key_rotated",
    );

    // Late in the grace the old key still reports; past it, it is refused and the new one is not.
    cloud.clock.advance_secs(GRACE - 60);
    old.host_report(&report(&host_id)).await.unwrap();
    cloud.clock.advance_secs(61);
    refused(
        old.host_report(&report(&host_id)).await,
        401,
        "token_revoked",
    );
    refused(
        old.rotate_host_key(&host_id, "rotation-1").await,
        401,
        "token_revoked",
    );
    new.host_report(&report(&host_id)).await.unwrap();

    // Audited, once per answer, without a key; the database keeps the new key sealed only.
    let audit = audit_of(&cloud, "host_key_rotated").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0].actor, format!("host:{host_id}"));
    assert_eq!(audit[0].target, host_id);
    assert_eq!(audit[0].details["repeated"], false);
    assert_eq!(audit[1].details["repeated"], true);
    for row in &audit {
        let text = row.details.to_string();
        assert!(!text.contains("mfth_"), "no key in the audit: {text}");
    }
    let kept = cloud
        .state
        .store
        .get_host_key_rotation(&host_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!kept.sealed_new_key.contains(&rotated.host_key));
    assert!(!kept.sealed_new_key.contains("mfth_"));
}

#[tokio::test]
async fn rotating_again_ends_the_first_grace_and_a_re_enrollment_ends_every_grace() {
    let cloud = cloud().await;
    let (host_id, first, password) = enrolled(&cloud).await;
    let second_key = first
        .rotate_host_key(&host_id, "r1")
        .await
        .unwrap()
        .host_key;
    let second = first.with_key(&second_key);
    let third_key = second
        .rotate_host_key(&host_id, "r2")
        .await
        .unwrap()
        .host_key;
    let third = first.with_key(&third_key);
    // The second rotation keeps the second key for its grace; the first key is gone at once.
    refused(
        first.host_report(&report(&host_id)).await,
        401,
        "unauthenticated",
    );
    second.host_report(&report(&host_id)).await.unwrap();
    third.host_report(&report(&host_id)).await.unwrap();
    // A repeat of the first rotation cannot bring anything back.
    refused(
        first.rotate_host_key(&host_id, "r1").await,
        401,
        "unauthenticated",
    );

    operator(&cloud).arm_recovery(&host_id, 600).await.unwrap();
    let restored = AgentClient::unenrolled(&cloud.url)
        .unwrap()
        .re_enroll(
            &host_id,
            &ReEnrollRequest {
                hostname: "box-2".into(),
                agent_version: "1.0.0".into(),
            },
            &password,
        )
        .await
        .unwrap();
    refused(
        second.host_report(&report(&host_id)).await,
        401,
        "unauthenticated",
    );
    refused(
        third.host_report(&report(&host_id)).await,
        401,
        "unauthenticated",
    );
    first
        .with_key(&restored.host_key)
        .host_report(&report(&host_id))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_host_key_acts_only_on_its_own_rotation() {
    let cloud = cloud().await;
    let (host_id, key, agent, _) = enrolled_with_key(&cloud).await;
    let (other_id, _, _) = enrolled(&cloud).await;
    refused(
        agent.rotate_host_key(&other_id, "x").await,
        403,
        "forbidden",
    );
    let reply = reqwest::Client::new()
        .post(format!("{}/api/v1/hosts/{host_id}/key/rotate", cloud.url))
        .header("x-api-key", &cloud.admin_api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        401,
        "an operator key does not rotate a host key"
    );
    // A malformed idempotency key is refused before anything changes.
    let reply = reqwest::Client::new()
        .post(format!("{}/api/v1/hosts/{host_id}/key/rotate", cloud.url))
        .bearer_auth(&key)
        .header("idempotency-key", "has space")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    agent.host_report(&report(&host_id)).await.unwrap();
}

fn register_request(hostname: &str) -> HubRegisterRequest {
    HubRegisterRequest {
        protocol: 1,
        hub_version: "0.1.0".into(),
        hostname: hostname.into(),
        platform: "linux".into(),
        license_key: None,
    }
}

fn beat() -> HubHeartbeatRequest {
    HubHeartbeatRequest {
        hub_version: "0.1.0".into(),
        uptime_seconds: 5,
        healthy: true,
        issues: Vec::new(),
    }
}

#[tokio::test]
async fn a_deploy_key_rotation_keeps_the_old_key_working_through_its_grace() {
    let cloud = cloud().await;
    let op = operator(&cloud);
    let created = op.create_deploy_key("jhb-hub-prod").await.unwrap();
    let api = format!("{}/api", cloud.url);
    let old = HubClient::new(&api, &created.key).unwrap();
    let hub_id = old
        .register(&register_request("hub-01"))
        .await
        .unwrap()
        .hub_id;

    let rotated = op.rotate_deploy_key(&created.id, Some(900)).await.unwrap();
    assert_eq!(rotated.label, "jhb-hub-prod");
    assert_eq!(rotated.replaces, created.id);
    assert_ne!(rotated.key, created.key);
    assert!(rotated.key.starts_with("mft_dep_"));
    let keys = op.list_deploy_keys().await.unwrap();
    let old_info = keys.iter().find(|k| k.id == created.id).unwrap();
    assert_eq!(old_info.status, "rotated");
    assert_eq!(
        old_info.expires_at.as_deref(),
        Some(rotated.previous_valid_until.as_str())
    );
    let new_info = keys.iter().find(|k| k.id == rotated.id).unwrap();
    assert_eq!(
        (new_info.status.as_str(), new_info.replaces.as_deref()),
        ("active", Some(created.id.as_str()))
    );

    // The hub keeps phoning home with the old key during the grace.
    old.heartbeat(&hub_id, &beat()).await.unwrap();
    old.validate(&hub_id, &register_request("hub-01"))
        .await
        .unwrap();
    assert_eq!(op.get_hub(&hub_id).await.unwrap().status, "online");

    // Restarted with the new key, it is the same hub.
    let new = HubClient::new(&api, &rotated.key).unwrap();
    let again = new.register(&register_request("hub-01")).await.unwrap();
    assert_eq!(again.hub_id, hub_id, "the hub keeps its id");
    let info = op.get_hub(&hub_id).await.unwrap();
    assert_eq!(info.deploy_key_id, rotated.id);
    assert_eq!(info.deploy_key_label, "jhb-hub-prod");
    new.heartbeat(&hub_id, &beat()).await.unwrap();
    assert_eq!(op.list_hubs().await.unwrap().len(), 1);

    // Past the grace the old key is refused as revoked; the new one is not.
    cloud.clock.advance_secs(901);
    refused(
        old.register(&register_request("hub-02")).await,
        401,
        "token_revoked",
    );
    new.heartbeat(&hub_id, &beat()).await.unwrap();
    let keys = op.list_deploy_keys().await.unwrap();
    assert_eq!(
        keys.iter().find(|k| k.id == created.id).unwrap().status,
        "revoked"
    );

    // Rotating it again is refused; so are an unknown id and a grace too long.
    refused(
        op.rotate_deploy_key(&created.id, None).await,
        409,
        "conflict",
    );
    refused(
        op.rotate_deploy_key("dk_nope", None).await,
        404,
        "not_found",
    );
    refused(
        op.rotate_deploy_key(&rotated.id, Some(31 * 86_400)).await,
        400,
        "validation_failed",
    );

    let audit = audit_of(&cloud, "deploy_key_rotated").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, cloud.admin_email);
    assert_eq!(audit[0].target, created.id);
    assert_eq!(audit[0].details["new_id"], rotated.id);
    let text = audit[0].details.to_string();
    assert!(!text.contains(&rotated.key) && !text.contains(&created.key));
}

#[tokio::test]
async fn a_deploy_key_rotation_without_a_grace_uses_the_configured_one() {
    let cloud = cloud().await;
    let op = operator(&cloud);
    let created = op.create_deploy_key("cpt").await.unwrap();
    let started = cloud.clock.now_ms();
    let rotated = op.rotate_deploy_key(&created.id, None).await.unwrap();
    within(
        &rotated.previous_valid_until,
        started + 600_000,
        cloud.clock.now_ms() + 600_000,
    );
    let old = HubClient::new(&format!("{}/api", cloud.url), &created.key).unwrap();
    old.register(&register_request("hub-x")).await.unwrap();
    cloud.clock.advance_secs(600);
    refused(
        old.register(&register_request("hub-x")).await,
        401,
        "token_revoked",
    );
}

#[tokio::test]
async fn an_operator_asks_and_the_envelope_says_so_until_the_agent_rotates() {
    let cloud = cloud().await;
    let (host_id, agent, _) = enrolled(&cloud).await;
    let op = operator(&cloud);
    assert!(
        !agent
            .host_report(&report(&host_id))
            .await
            .unwrap()
            .rotate_key
    );

    let requested = op.request_host_key_rotation(&host_id).await.unwrap();
    assert_eq!(requested.host_id, host_id);
    op.request_host_key_rotation(&host_id).await.unwrap();
    let envelope = agent.host_report(&report(&host_id)).await.unwrap();
    assert!(envelope.rotate_key, "{envelope:?}");
    assert!(
        agent
            .host_report(&report(&host_id))
            .await
            .unwrap()
            .rotate_key
    );

    let rotated = agent.rotate_host_key(&host_id, "asked").await.unwrap();
    let new = agent.with_key(&rotated.host_key);
    assert!(!new.host_report(&report(&host_id)).await.unwrap().rotate_key);
    // The old key still reports during the grace, and is not asked again.
    assert!(
        !agent
            .host_report(&report(&host_id))
            .await
            .unwrap()
            .rotate_key
    );

    refused(
        op.request_host_key_rotation("h-nope").await,
        404,
        "not_found",
    );
    let audit = audit_of(&cloud, "host_key_rotation_requested").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0].actor, cloud.admin_email);
    assert_eq!(audit[0].target, host_id);
}
